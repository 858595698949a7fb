"""Tests for musicvae_xai.attributes: hand-computed values and numpy/TensorFlow agreement."""

import numpy as np
import pytest

from musicvae_xai import attributes as A
from musicvae_xai.representation import Vocabulary

V = Vocabulary(55, 84)
H, R, S, E = "hold", "rest", "start", "end"
# Sum of all 24 metrical weights: per beat w0 + (1 + 2 + 0.5 + 2 + 1), w0 = 0.20, 0.67, 0.25, 0.67.
TOTAL_WEIGHT = 0.20 + 0.67 + 0.25 + 0.67 + 4 * 6.5


def measure(onsets: dict, fill=H, first=R) -> np.ndarray:
    """Token ids [24]: pitches at the given ticks, ``fill`` elsewhere (``first`` at tick 0)."""
    items = [first] + [fill] * 23
    for tick, pitch in onsets.items():
        items[tick] = pitch
    return V.encode(items)


QUARTERS = measure({0: 60, 6: 64, 12: 67, 18: 72})        # C E G C on the beats
WHOLE = measure({0: 60})                                   # one whole note
OFFBEATS = measure({1: 60, 2: 62, 4: 59})                  # 1/4, 1/3, 2/3 of beat 1
SILENT = measure({}, fill=H, first=R)                      # rest
PADDED = V.encode([S] * 12 + [65] + [H] * 5 + [62] + [E] * 5)  # start/end padding are not onsets
BATCH = np.stack([QUARTERS, WHOLE, OFFBEATS, SILENT, PADDED])

EXPECTED = {
    A.RHYTHMIC_COMPLEXITY: [(0.20 + 0.67 + 0.25 + 0.67) / TOTAL_WEIGHT, 0.20 / TOTAL_WEIGHT,
                            (1 + 2 + 2) / TOTAL_WEIGHT, 0.0, (0.25 + 0.67) / TOTAL_WEIGHT],
    A.NOTE_RANGE: [12 / 26, 0.0, 3 / 26, 0.0, 3 / 26],
    A.NOTE_DENSITY: [4 / 24, 1 / 24, 3 / 24, 0.0, 2 / 24],
    A.AVERAGE_INTERVAL_JUMP: [(4 + 3 + 5) / 3, 0.0, (2 + 3) / 2, 0.0, 3.0],
    A.CONTOUR: [12 / 26, 0.0, -1 / 26, 0.0, -3 / 26],
}


@pytest.mark.parametrize("name", A.ATTRIBUTE_NAMES)
def test_numpy_attribute_matches_hand_computed(name):
    got = A.NUMPY_FUNCTIONS[name](BATCH, V)
    assert got.dtype == np.float32 and got.shape == (5,)
    np.testing.assert_allclose(got, EXPECTED[name], rtol=1e-6, atol=1e-6)


def test_public_function_names():
    for name in ("rhythmic_complexity", "note_range", "note_density", "average_interval_jump", "contour"):
        assert callable(getattr(A, name))


def test_rhythmic_complexity_range_and_nonzero():
    every_tick = V.encode([60] * 24)
    assert A.rhythmic_complexity(every_tick[None], V)[0] == pytest.approx(1.0)
    # the masking bug of one reference implementation gave 0 for every measure
    assert (A.rhythmic_complexity(BATCH[:3], V) > 0).all()


def test_compute_stacks_in_given_order():
    names = (A.NOTE_DENSITY, A.RHYTHMIC_COMPLEXITY)
    got = A.compute(BATCH, V, names)
    assert got.shape == (5, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got[:, 0], EXPECTED[A.NOTE_DENSITY], atol=1e-6)
    np.testing.assert_allclose(got[:, 1], EXPECTED[A.RHYTHMIC_COMPLEXITY], atol=1e-6)
    with pytest.raises(ValueError):
        A.compute(BATCH, V, ("tempo",))


def test_other_vocabulary_range():
    v = Vocabulary(40, 100)
    ids = v.encode([40, H, 100, H] + [H] * 20)
    assert A.note_range(ids[None], v)[0] == pytest.approx(60 / 26)
    assert A.average_interval_jump(ids[None], v)[0] == pytest.approx(60.0)


def test_numpy_and_tensorflow_agree_on_random_measures():
    tf = pytest.importorskip("tensorflow")
    from musicvae_xai import tf_attributes as T
    rng = np.random.default_rng(0)
    # mostly hold/rest with some pitches, like real measures, plus fully random ones
    real = np.where(rng.random((200, 24)) < 0.3, rng.integers(0, V.num_pitches, (200, 24)),
                    rng.choice([V.hold_id, V.rest_id, V.start_id, V.end_id], (200, 24)))
    ids = np.concatenate([real, rng.integers(0, V.size, (200, 24))]).astype(np.int32)
    want = A.compute(ids, V, A.ATTRIBUTE_NAMES)
    got = T.tf_compute(tf.constant(ids), V, A.ATTRIBUTE_NAMES).numpy()
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # inside a traced graph too, with a leading batch of batches
    graph = tf.function(lambda x: T.tf_compute(x, V, A.ATTRIBUTE_NAMES))
    got2 = graph(tf.constant(ids.reshape(4, 100, 24))).numpy().reshape(-1, len(A.ATTRIBUTE_NAMES))
    np.testing.assert_allclose(got2, want, rtol=1e-5, atol=1e-5)


def _rhythm(offsets) -> np.ndarray:
    """Token ids [24]: a note (pitch 67) at each of ``offsets`` (ticks inside a beat) of all four beats."""
    return measure({6 * beat + o: 67 for beat in range(4) for o in offsets})


def test_rhythmic_complexity_description_names_what_familiar_rhythms_measure():
    """The musician's explanation (explorer tooltips) quotes values the function really gives."""
    import re

    text = A.PRESENTATION[A.RHYTHMIC_COMPLEXITY].description
    quoted = {name: float(v) for v, name in [
        (re.search(rf"{re.escape(words)} \u2248 ([0-9.]+)", text).group(1), words)
        for words in ("four quarter notes", "eight eighth notes", "sixteen sixteenths",
                      "twelve eighth-note triplets")]}
    rhythms = {"four quarter notes": (0,), "eight eighth notes": (0, 3), "sixteen sixteenths": (0, 1, 3, 5),
               "twelve eighth-note triplets": (0, 2, 4)}
    got = A.rhythmic_complexity(np.stack([_rhythm(o) for o in rhythms.values()]), V)
    assert [round(float(g), 2) for g in got] == [quoted[name] for name in rhythms]
    assert A.rhythmic_complexity(_rhythm(range(6))[None], V)[0] == pytest.approx(1.0)  # every position
    assert A.rhythmic_complexity(SILENT[None], V)[0] == 0.0
    # beats 1 and 3 weigh least, then beats 2 and 4 and the off-beat eighths, then sixteenths, then triplets
    w = A.METRICAL_WEIGHTS
    assert max(w[0], w[12]) < min(w[6], w[18], w[3]) < w[1] == w[5] < w[2] == w[4]
    assert A.PRESENTATION[A.RHYTHMIC_COMPLEXITY].hint  # shown under the name, where the unit would be
