"""Tests for musicvae_xai.representation: vocabulary, grid, and lossless measure <-> NoteSequence."""

import numpy as np
import pytest
from note_seq.protobuf import music_pb2

from musicvae_xai import representation as R
from musicvae_xai.representation import FULL_RANGE, Vocabulary


def test_vocabulary_default_order_and_size():
    v = Vocabulary()
    assert (v.min_pitch, v.max_pitch, v.size) == (55, 84, 34)
    assert v.tokens()[:3] == [55, 56, 57]
    assert v.tokens()[29] == 84
    assert v.tokens()[30:] == ["rest", "hold", "start", "end"]
    assert (v.rest_id, v.hold_id, v.start_id, v.end_id) == (30, 31, 32, 33)


def test_vocabulary_encode_decode():
    v = Vocabulary(55, 84)
    items = [55, 60, 84, "rest", "hold", "start", "end"]
    ids = v.encode(items)
    assert ids.dtype == np.int32
    assert ids.tolist() == [0, 5, 29, 30, 31, 32, 33]
    assert v.decode(ids) == items
    assert v.decode(np.arange(v.size)) == v.tokens()


def test_vocabulary_configurable_range_and_errors():
    v = Vocabulary(60, 71)
    assert v.size == 16 and v.encode([60, "hold"]).tolist() == [0, 13]
    with pytest.raises(ValueError):
        v.encode([59])
    with pytest.raises(ValueError):
        v.encode(["chord"])
    with pytest.raises(ValueError):
        v.decode([16])
    with pytest.raises(ValueError):
        Vocabulary(80, 70)
    assert Vocabulary(60, 71) == v and Vocabulary(60, 72) != v


def test_translate_transposes_and_checks_range():
    v = Vocabulary(55, 84)
    full = FULL_RANGE.encode([60, "hold", "rest", 84])
    assert v.decode(v.translate(full, FULL_RANGE, 0)) == [60, "hold", "rest", 84]
    assert v.decode(v.translate(full, FULL_RANGE, -5)) == [55, "hold", "rest", 79]
    with pytest.raises(ValueError):
        v.translate(full, FULL_RANGE, 1)


def test_tick_grid():
    assert len(R.TICK_POSITIONS) == 24
    assert R.tick_index(0.0) == 0 and R.tick_index(1 / 3) == 2 and R.tick_index(3.75) == 23
    assert R.tick_index(4.0) == 24
    assert R.tick_index(0.125) is None and R.tick_index(0.2) is None


def _random_measures(rng, n_measures, vocab, pad_start, pad_end):
    """On-grid token measures whose every measure has an onset and whose content ends in a note."""
    ticks = n_measures * 24
    toks = []
    body = ticks - pad_start - pad_end
    state = None
    for k in range(body):
        last = k == body - 1
        r = rng.random()
        if k == 0 or (r < 0.35 and not last) or (last and state == "rest"):
            toks.append(int(rng.integers(vocab.min_pitch, vocab.max_pitch + 1)))
            state = "note"
        elif r < 0.5 and state == "note" and not last and k < body - 2:
            toks.append("rest")
            state = "rest"
        elif state == "rest" and (pad_start + k) % 24 == 0:
            toks.append("rest")  # silence that crosses a bar line restarts as a rest
        else:
            toks.append("hold")
    items = ["start"] * pad_start + toks + ["end"] * pad_end
    ids = vocab.encode(items).reshape(n_measures, 24)
    # every measure needs an onset (measures without one are skipped as 'empty')
    for m in ids:
        if not (m < vocab.num_pitches).any():
            return None
    return ids


@pytest.mark.parametrize("seed", range(12))
def test_round_trip_measures_sequence_measures(seed):
    rng = np.random.default_rng(seed)
    vocab = FULL_RANGE
    ids = None
    while ids is None:
        ids = _random_measures(rng, 4, vocab, pad_start=int(rng.integers(0, 20)), pad_end=int(rng.integers(0, 20)))
    seq = R.measures_to_sequence(ids, vocab, qpm=60.0)
    ext = R.sequence_to_measures(seq)
    assert not ext.skipped
    np.testing.assert_array_equal(ext.measures, ids)


def _sequence(notes, sigs=((0.0, 4, 4),)):
    seq = music_pb2.NoteSequence()
    seq.tempos.add(time=0.0, qpm=60.0)
    for t, num, den in sigs:
        seq.time_signatures.add(time=t, numerator=num, denominator=den)
    for pitch, start, end in notes:
        seq.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=80)
    seq.total_time = max(n[2] for n in notes)
    return seq


def test_round_trip_sequence_measures_sequence():
    notes = [(62, 1.0, 2.0), (64, 2.0, 2.25), (65, 2.25, 2.5), (67, 2.5, 4.5),  # across the bar line
             (69, 5.0, 5 + 1 / 3), (71, 5 + 1 / 3, 5 + 2 / 3), (72, 5 + 2 / 3, 6.0), (60, 7.0, 8.0)]
    ext = R.sequence_to_measures(_sequence(notes))
    assert len(ext.measures) == 2 and not ext.skipped
    first = FULL_RANGE.decode(ext.measures[0])
    assert first[:6] == ["start"] * 6 and first[6] == 62 and first[15] == 67 and first[16:] == ["hold"] * 8
    assert FULL_RANGE.decode(ext.measures[1])[:7] == ["hold"] * 3 + ["rest", "hold", "hold", 69]
    back = R.measures_to_sequence(ext.measures, FULL_RANGE, qpm=60.0)
    got = [(n.pitch, round(n.start_time, 6), round(n.end_time, 6)) for n in back.notes]
    assert got == [(p, round(s, 6), round(e, 6)) for p, s, e in notes]


def test_pickup_padding_and_end_padding():
    ext = R.sequence_to_measures(_sequence([(60, 3.0, 4.0), (62, 4.0, 6.0)]))
    items = [FULL_RANGE.decode(m) for m in ext.measures]
    assert items[0] == ["start"] * 18 + [60] + ["hold"] * 5
    assert items[1] == [62] + ["hold"] * 11 + ["end"] * 12


def test_off_grid_polyphonic_empty_and_metre_are_skipped():
    off_grid = R.sequence_to_measures(_sequence([(60, 0.0, 1.0), (62, 1.1, 2.0), (64, 4.0, 8.0)]))
    assert off_grid.skipped == {"off_grid": 1} and len(off_grid.measures) == 1
    poly = R.sequence_to_measures(_sequence([(60, 0.0, 2.0), (64, 1.0, 2.0), (67, 4.0, 5.0)]))
    assert poly.skipped == {"polyphonic": 1} and len(poly.measures) == 1
    empty = R.sequence_to_measures(_sequence([(60, 0.0, 1.0), (62, 8.0, 9.0)]))
    assert empty.skipped == {"empty": 1} and len(empty.measures) == 2
    waltz = _sequence([(60, 0.0, 3.0), (62, 3.0, 7.0)], sigs=((0.0, 3, 4), (3.0, 4, 4)))
    ext = R.sequence_to_measures(waltz)
    assert ext.skipped == {"not_4_4": 1} and len(ext.measures) == 1


def test_cut_time_needs_the_option():
    seq = _sequence([(60, 0.0, 2.0), (62, 2.0, 4.0)], sigs=((0.0, 2, 2),))
    assert R.sequence_to_measures(seq).skipped == {"not_4_4": 1}
    ext = R.sequence_to_measures(seq, allow_cut_time=True)
    assert len(ext.measures) == 1 and not ext.skipped


def test_no_notes_gives_no_measures():
    seq = music_pb2.NoteSequence()
    ext = R.sequence_to_measures(seq)
    assert ext.measures.shape == (0, 24) and ext.measures.dtype == np.int32


def test_fit_transposition_prefers_no_shift_then_octaves_then_semitones():
    from musicvae_xai.representation import FULL_RANGE, fit_transposition

    vocab = Vocabulary(55, 84)
    hold = FULL_RANGE.encode(["hold"])[0]
    measure = lambda *pitches: np.array([[*pitches] + [hold] * (24 - len(pitches))])  # noqa: E731
    assert fit_transposition(measure(60, 72), vocab) == 0
    assert fit_transposition(measure(40, 50), vocab) == 24           # two octaves up, not 15 semitones
    assert fit_transposition(measure(50, 78), vocab) == 5            # 28 semitones: no octave fits
    assert fit_transposition(measure(60, 72), vocab, transpose=-5) == -5
    assert fit_transposition(np.full((1, 24), hold), vocab) == 0     # nothing to fit
    with pytest.raises(ValueError, match="shifted by 30 leave the model's range 55..84"):
        fit_transposition(measure(60, 72), vocab, transpose=30)
    with pytest.raises(ValueError, match=r"span pitches 40..90 \(50 semitones\), wider than"):
        fit_transposition(measure(40, 90), vocab)
    with pytest.raises(ValueError, match="transpose must be an int"):
        fit_transposition(measure(60), vocab, transpose=True)
