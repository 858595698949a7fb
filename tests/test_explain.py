"""The library API (musicvae_xai.explain and the batched runner of musicvae_xai.inference) on a tiny
trained run: files -> measures -> z, traversals, decoding, MIDI out, and one-line errors."""

import mido
import numpy as np
import pytest

from musicvae_xai import inference
from musicvae_xai.config import ConfigError
from musicvae_xai.explain import Encoding, ExplainError, Explainer
from musicvae_xai.representation import Vocabulary

MODELS = ["measure_vae", "adversarial_vae"]


@pytest.fixture(scope="module", params=MODELS)
def explainer(request, tiny_trained_run):
    return Explainer.from_run_dir(tiny_trained_run(request.param), batch_size=7)


@pytest.fixture(scope="module")
def measures(explainer):
    return inference.split_tokens(explainer.config, "test")[:12]


def put(path, data: bytes):
    path.write_bytes(data)
    return path


def write_tune(path, pitches, numerator=4, ticks_per_beat=480, beats=1.0):
    """A one-track MIDI file: one note per ``beats`` beats."""
    mf = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    mf.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=4))
    for p in pitches:
        track.append(mido.Message("note_on", note=p, velocity=80, time=0))
        track.append(mido.Message("note_off", note=p, velocity=0, time=int(ticks_per_beat * beats)))
    mf.save(str(path))
    return path


def test_midi_round_trip_gives_back_the_measures(explainer, measures, tmp_path):
    path = explainer.write_midi(measures, tmp_path / "out" / "measures.mid")
    read = explainer.read_measures(path)
    np.testing.assert_array_equal(read.tokens, measures)
    np.testing.assert_array_equal(read.bar_numbers, np.arange(len(measures)) + 1)   # as a score numbers them
    assert read.shift == 0
    picked = explainer.read_measures(path, bar_numbers=[6, 3])
    np.testing.assert_array_equal(picked.tokens, measures[[5, 2]])
    np.testing.assert_array_equal(picked.bar_numbers, [6, 3])


def test_encode_file_matches_encoding_the_tokens(explainer, measures, tmp_path):
    path = explainer.write_midi(measures[:4], tmp_path / "four.mid")
    enc = explainer.encode_file(path, bar_numbers=[2, 4])
    direct = explainer.encode(measures[[1, 3]])
    np.testing.assert_allclose(enc.z, direct.z, atol=1e-6)
    np.testing.assert_array_equal(enc.z, enc.z_mean)                       # no seed: the mean
    assert enc.source.path == str(path) and list(enc.source.bar_numbers) == [2, 4]
    sampled = explainer.encode(measures[[1, 3]], sample_seed=3)
    assert not np.allclose(sampled.z, sampled.z_mean)
    np.testing.assert_array_equal(sampled.z, explainer.encode(measures[[1, 3]], sample_seed=3).z)
    assert (enc.controls is None) == (not explainer.model.needs_controls)


def test_out_of_range_melody_is_transposed_by_octaves(explainer, tmp_path):
    v = explainer.vocabulary
    high = [v.max_pitch + 5, v.max_pitch + 3, v.max_pitch + 1, v.max_pitch + 3]  # above the range
    path = write_tune(tmp_path / "high.mid", high)
    read = explainer.read_measures(path)
    assert read.shift == -12
    assert v.decode(read.tokens[0])[0] == high[0] - 12
    assert explainer.read_measures(path, transpose=-13).shift == -13
    with pytest.raises(ExplainError, match="leave the model's range"):
        explainer.read_measures(path, transpose=0)
    wide = write_tune(tmp_path / "wide.mid", [v.min_pitch - 10, v.max_pitch + 10, 60, 60])
    with pytest.raises(ExplainError, match=r"wide\.mid: the measures span .* wider than the model's range"):
        explainer.read_measures(wide)


def test_musicxml_file_is_encoded(explainer, tmp_path):
    from music21 import meter, note, stream

    part = stream.Part()
    part.append(meter.TimeSignature("4/4"))
    for p in ["C4", "E4", "G4", "C5", "B4", "G4", "E4", "D4"]:
        part.append(note.Note(p, quarterLength=1.0))
    score = stream.Score([part])
    path = tmp_path / "scale.musicxml"
    score.write("musicxml", fp=str(path))
    enc = explainer.encode_file(path)
    assert enc.z.shape == (2, explainer.config.latent_dim)
    assert explainer.vocabulary.decode(enc.tokens[0])[:7] == [60, "hold", "hold", "hold", "hold", "hold", 64]


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mid", r"missing\.mid: no such file"),
    (lambda d: d, "is a folder"),
    (lambda d: put(d / "notes.txt", b"hi"), r"unsupported file type '\.txt'"),
    (lambda d: put(d / "bad.mid", b"MThd garbage"), r"bad\.mid: cannot read a melody"),
    (lambda d: put(d / "empty.mid", b""), r"empty\.mid: cannot read a melody \(empty file"),
    (lambda d: write_tune(d / "waltz.mid", [60, 62, 64] * 4, numerator=3),
     r"waltz\.mid: no usable 4/4 measure \(4 bars not in 4/4\)"),
    (lambda d: write_tune(d / "offgrid.mid", [60] * 8, beats=0.2),
     r"offgrid\.mid: no usable 4/4 measure \(every bar has onsets further than 0\.0625 beat from the 24-tick "
     r"grid; largest quantisation error 0\.067 beat"),
])
def test_bad_files_raise_one_line_naming_the_path(explainer, tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ExplainError, match=message) as info:
        explainer.read_measures(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_unusable_bar_is_named(explainer, measures, tmp_path):
    path = explainer.write_midi(measures[:3], tmp_path / "three.mid")
    with pytest.raises(ExplainError, match=r"three\.mid: bar 7 is not a usable 4/4 measure; usable bars: 1-3"):
        explainer.read_measures(path, bar_numbers=[7])
    with pytest.raises(ExplainError, match=r"three\.mid: bar 0 is not a usable 4/4 measure; usable bars: 1-3"):
        explainer.read_measures(path, bar_numbers=[0])        # no pickup: there is no bar 0
    with pytest.raises(TypeError, match=r"bars= \(0-based positions\) is now bar_numbers="):
        explainer.encode_file(path, bars=[1])


def test_traversal_shapes_values_and_measured_attributes(explainer, measures):
    enc = explainer.encode(measures[:3])
    for _k, control in enumerate(explainer.controls):
        tr = explainer.traverse(enc, control.attribute, steps=4)
        assert tr.control == control
        np.testing.assert_allclose(tr.values, np.linspace(control.low, control.high, 4), rtol=1e-6)
        assert tr.tokens.shape == (3, 4, 24) and tr.attributes.shape == (3, 4, len(explainer.attribute_names))
        np.testing.assert_allclose(tr.attributes, explainer.attributes(tr.tokens))
        expected_start = enc.z[:, control.index] if control.kind == "latent_dim" else enc.controls[:, control.index]
        np.testing.assert_allclose(tr.start, expected_start)


def test_traversal_at_the_start_value_reproduces_the_reconstruction(explainer, measures):
    enc = explainer.encode(measures[:1])
    recon = explainer.reconstruct(enc)
    for control in explainer.controls:
        start = explainer.traverse(enc, control, steps=2).start[0]
        tr = explainer.traverse(enc, control, values=[start])
        np.testing.assert_array_equal(tr.tokens[:, 0], recon)


def test_batched_runner_does_not_depend_on_batch_size(explainer, measures):
    other = inference.Runner(explainer.model, batch_size=256)
    z1, s1 = explainer.runner.encode(measures)      # batch size 7: two partial batches
    z2, s2 = other.encode(measures)
    np.testing.assert_allclose(z1, z2, atol=1e-5)
    c = explainer.runner.default_controls(measures)
    np.testing.assert_array_equal(explainer.runner.decode(z1, c), other.decode(z1, c))
    swept = explainer.runner.sweep(z1, c, 0, [-1.0, 0.0, 1.0])
    assert swept.shape == (len(measures), 3, 24)
    np.testing.assert_array_equal(swept, other.sweep(z1, c, 0, [-1.0, 0.0, 1.0]))


def test_controls_by_index_name_and_attribute(explainer):
    first = explainer.controls[0]
    assert explainer.control(0) == explainer.control(first.name) == explainer.control(first.attribute) == first
    with pytest.raises(ValueError, match="no control 'tempo'"):
        explainer.control("tempo")
    with pytest.raises(ValueError, match="out of range"):
        explainer.control(len(explainer.controls))


def test_to_sequence_and_write_midi(explainer, measures, tmp_path):
    seq = explainer.to_sequence(measures[:2], qpm=60.0)
    assert seq.total_time == pytest.approx(8.0)
    assert seq.time_signatures[0].numerator == 4
    path = explainer.write_midi(seq, tmp_path / "seq.mid")
    assert mido.MidiFile(path).length > 0
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExplainError, match="is a file"):
        explainer.write_midi(measures[:1], tmp_path / "file" / "x.mid")


def test_decode_checks_shapes_and_controls(explainer):
    z = np.zeros((2, explainer.config.latent_dim), np.float32)
    with pytest.raises(ValueError, match="z must have shape"):
        explainer.decode(np.zeros((2, explainer.config.latent_dim + 1)))
    if explainer.model.needs_controls:
        with pytest.raises(ValueError, match="needs controls"):
            explainer.runner.decode(z)
    else:
        assert explainer.decode(z).shape == (2, 24)


def test_from_run_dir_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Explainer.from_run_dir(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no saved configuration"):
        Explainer.from_run_dir(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Explainer.from_run_dir(tmp_path)


def test_sample_latent_and_subsample_are_seeded():
    mean, scale = np.zeros((5, 3), np.float32), np.ones((5, 3), np.float32)
    a = inference.sample_latent(mean, scale, 1)
    np.testing.assert_array_equal(a, inference.sample_latent(mean, scale, 1))
    assert not np.array_equal(a, inference.sample_latent(mean, scale, 2))
    np.testing.assert_array_equal(inference.sample_latent(mean, 0 * scale, 1), mean)
    np.testing.assert_array_equal(inference.subsample(10, 0, 0), np.arange(10))
    picked = inference.subsample(100, 10, 4)
    assert len(set(picked)) == 10 and list(picked) == sorted(picked)
    np.testing.assert_array_equal(picked, inference.subsample(100, 10, 4))


def test_encoding_is_a_plain_container():
    v = Vocabulary()
    tokens = np.full((2, 24), v.hold_id, np.int32)
    enc = Encoding(tokens, np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 3)), None)
    assert len(enc) == 2 and enc.source is None


def test_a_checkpoint_that_does_not_fit_the_model_is_refused(tmp_path, tiny_trained_run):
    import json
    import shutil

    import keras
    import tensorflow as tf

    run = tmp_path / "run"
    shutil.copytree(tiny_trained_run("measure_vae"), run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "latent_dim": config["latent_dim"] + 2}))
    with pytest.raises(ConfigError, match="the checkpoint does not match config.json"):
        Explainer.from_run_dir(run)
    (run / "config.json").write_text(json.dumps(config))
    for f in run.glob("ckpt-*"):
        f.unlink()
    other = keras.layers.Dense(3)
    other.build((None, 2))
    tf.train.CheckpointManager(tf.train.Checkpoint(model=other), str(run), 1).save(checkpoint_number=4)
    with pytest.raises(ConfigError, match=r"the checkpoint does not match the model \(\d+ of its objects"):
        Explainer.from_run_dir(run)


def test_humanised_midi_is_encoded_and_written_back_in_its_style(explainer, tmp_path):
    from midi_fixtures import humanised_midi, read_back

    source = tmp_path / "played.mid"
    humanised_midi(source, bpm=100.0, bpm_after=80.0, jitter_ms=20 * 100 / 120, lengths=(0.6, 0.98))
    enc = explainer.encode_file(source, bar_numbers=[0, 3, 6])   # the pickup, and bars either side of the tempo change
    assert enc.z.shape == (3, explainer.config.latent_dim)
    q = enc.source.quantisation
    assert q.off_grid_onsets == 0 and 0 < q.mean_error <= q.max_error <= 0.04 + 1e-3
    assert enc.source.skipped == {}
    style = enc.source.style
    assert (style.qpm, style.program, style.track_name) == (100.0, 73, "Flute")

    info = read_back(explainer.write_reconstruction(enc, tmp_path / "rec.mid"))
    assert info["qpm"] == [100.0] and info["programs"] == [73] and info["track_names"] == ["Flute"]
    assert info["time_signatures"] == [(4, 4)]
    assert info["markers"] == [(0.0, "bar 0 reconstructed"), (4.0, "bar 3 reconstructed"),
                               (8.0, "bar 6 reconstructed")]

    tr = explainer.traverse(enc, 0, values=[-1.5, 0.0, 1.5])
    info = read_back(explainer.write_traversal(tr, tmp_path / "sweep.mid", index=1, start=enc))
    ctrl = tr.control
    label = ctrl.attribute.replace("_", " ")
    label = label if ctrl.name == ctrl.attribute else f"{ctrl.name} {label}"
    assert [m for _, m in info["markers"]] == ["bar 3 input"] + [f"{label} = {v}" for v in ("-1.5", "+0.0", "+1.5")]
    assert [b for b, _ in info["markers"]] == [0.0, 4.0, 8.0, 12.0]
    assert info["qpm"] == [100.0] and info["track_names"] == ["Flute"]
    if ctrl.kind == "latent_dim":
        assert info["markers"][1][1].startswith(f"z[{ctrl.index}] ")
