"""The one MIDI writer (music_io.write_midi) and the client commands that use it: files read
back with mido carry a track name, markers, and the input file's tempo, time signature, program
and track name."""

import numpy as np
import pytest

from midi_fixtures import humanised_midi, read_back
from musicvae_xai.readers import SourceStyle
from musicvae_xai.representation import Vocabulary
from musicvae_xai import music_io
from musicvae_xai.serving import commands
from musicvae_xai.serving import signatures as sigs

VOCAB = Vocabulary(55, 84)


def tokens_of(*bars):
    """Measures int32 [M, 24]: each bar one pitch held for the whole bar."""
    rows = []
    for p in bars:
        rows.append([VOCAB.encode_item(p)] + [VOCAB.hold_id] * 23)
    return np.array(rows, np.int32)


def test_default_file_has_a_track_name_tempo_signature_program_and_markers(tmp_path):
    path = music_io.write_midi(tokens_of(60, 62, 64), tmp_path / "a" / "out.mid", VOCAB,
                              markers=["one", None, "three"])
    info = read_back(path)
    assert info["track_names"] == [music_io.DEFAULT_TRACK_NAME]
    assert info["qpm"] == [120.0] and info["time_signatures"] == [(4, 4)] and info["programs"] == [0]
    assert info["markers"] == [(0.0, "one"), (8.0, "three")]
    assert info["notes"] == [(60, 0.0, 4.0), (62, 4.0, 8.0), (64, 8.0, 12.0)]


def test_style_is_kept_and_a_signature_of_another_length_becomes_four_four(tmp_path):
    style = SourceStyle(qpm=100.0, numerator=2, denominator=2, program=73, track_name="Flute")
    info = read_back(music_io.write_midi(tokens_of(60), tmp_path / "s.mid", VOCAB, style=style))
    assert (info["qpm"], info["time_signatures"], info["programs"], info["track_names"]) == (
        [100.0], [(2, 2)], [73], ["Flute"])
    waltz = SourceStyle(qpm=90.0, numerator=3, denominator=4)
    info = read_back(music_io.write_midi(tokens_of(60), tmp_path / "w.mid", VOCAB, style=waltz, qpm=80.0))
    assert info["time_signatures"] == [(4, 4)] and info["qpm"] == [80.0]


def test_bytes_out_and_a_note_sequence_in():
    from musicvae_xai.representation import measures_to_sequence

    data = music_io.write_midi(measures_to_sequence(tokens_of(60, 67), VOCAB, qpm=90.0), None)
    assert data[:4] == b"MThd"
    import io

    import mido
    mf = mido.MidiFile(file=io.BytesIO(data))
    notes = [(m.note, m.velocity > 0) for m in mf.tracks[0] if m.type == "note_on"]
    assert notes == [(60, True), (67, True)]


def test_written_measures_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    pitches = rng.integers(60, 80, size=(4, 24))
    tokens = np.where(rng.random((4, 24)) < 0.6, VOCAB.hold_id, pitches - VOCAB.min_pitch).astype(np.int32)
    tokens[:, 0] = pitches[:, 0] - VOCAB.min_pitch
    path = music_io.write_measures(tokens, VOCAB, str(tmp_path / "r.mid"))
    back = music_io.read_file(path, VOCAB)
    np.testing.assert_array_equal(back.tokens, tokens)
    assert back.quantisation.max_error == 0.0 and back.style.track_name == music_io.DEFAULT_TRACK_NAME


class EchoClient:
    """A stand-in for a serving client: reconstructs the input, sweeps by repeating it."""

    assets = {"vocabulary": VOCAB.to_dict()}

    def signature_spec(self, name):
        assert name == sigs.DECODE
        return {"outputs": {"probabilities": {"shape": [-1, 24, VOCAB.size]}}}

    def reconstruct(self, tokens):
        return {"tokens": np.asarray(tokens)}

    def traverse(self, tokens, control, values):
        tokens = np.asarray(tokens)
        return {"tokens": np.repeat(tokens[:, None], len(values), axis=1),
                "attributes": np.zeros((len(tokens), len(values), 4), np.float32)}


def test_client_reconstruct_and_traverse_keep_the_input_style(tmp_path):
    source = tmp_path / "flute.mid"
    humanised_midi(source, bpm=100.0, bpm_after=100.0, jitter_ms=20 * 100 / 120)   # +-0.04 beat at 100 bpm
    out = commands.run(EchoClient(), "reconstruct", commands.Options(midi=str(source), out=str(tmp_path / "rec.mid"),
                                                                      bar_numbers=[4, 5]))
    info = read_back(out["out"])
    assert info["qpm"] == [100.0] and info["programs"] == [73] and info["track_names"] == ["Flute"]
    assert info["time_signatures"] == [(4, 4)]
    assert info["markers"] == [(0.0, "bar 4 reconstructed"), (4.0, "bar 5 reconstructed")]
    out = commands.run(EchoClient(), "traverse", commands.Options(midi=str(source), out=str(tmp_path / "tr.mid"),
                                                                   bar_numbers=[2], control=1, values=[-1.5, 0.0, 1.5]))
    info = read_back(out["out"])
    assert info["qpm"] == [100.0] and info["track_names"] == ["Flute"]
    assert [m for _, m in info["markers"]] == ["bar 2: control 1 = -1.5", "bar 2: control 1 = +0.0",
                                               "bar 2: control 1 = +1.5"]
    out = commands.run(EchoClient(), "reconstruct", commands.Options(midi=str(source), out=str(tmp_path / "q.mid"),
                                                                      qpm=140.0))
    assert read_back(out["out"])["qpm"] == [140.0]


def test_client_reads_every_registered_format(tmp_path):
    """The serving client's input goes through music_io.read_file: an ABC or MusicXML file works as a MIDI
    file does, and a file type no reader knows is one line naming it."""
    abc = tmp_path / "tune.abc"
    abc.write_text("X:1\nT:Scale\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|\n")
    out = commands.run(EchoClient(), "reconstruct", commands.Options(midi=str(abc), out=str(tmp_path / "abc.mid")))
    assert out["measures"] == 2 and [m for _, m in read_back(out["out"])["markers"]] == [
        "bar 1 reconstructed", "bar 2 reconstructed"]
    xml = tmp_path / "tune.musicxml"
    from music21 import converter
    converter.parse(str(abc)).write("musicxml", fp=str(xml))
    out = commands.run(EchoClient(), "reconstruct", commands.Options(midi=str(xml), out=str(tmp_path / "xml.mid")))
    assert out["measures"] == 2
    (tmp_path / "tune.wav").write_bytes(b"RIFF")
    with pytest.raises(music_io.MusicFileError, match=r"tune\.wav: unsupported file type '\.wav'"):
        commands.run(EchoClient(), "reconstruct", commands.Options(midi=str(tmp_path / "tune.wav"), out="x.mid"))


def test_no_usable_measure_names_the_largest_quantisation_error(tmp_path):
    import mido

    mf = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mf.tracks.append(track)
    for k in range(8):     # every onset 0.1 beat late
        track.append(mido.Message("note_on", note=60, velocity=80, time=48 if k == 0 else 0))
        track.append(mido.Message("note_off", note=60, velocity=0, time=480))
    mf.save(str(tmp_path / "late.mid"))
    with pytest.raises(music_io.MusicFileError,
                       match=r"late\.mid: no usable 4/4 measure \(every bar has onsets further "
                             r"than 0\.0625 beat from the 24-tick grid; largest quantisation "
                             r"error 0\.100 beat\)"):
        music_io.read_file(str(tmp_path / "late.mid"), VOCAB)
    humanised_midi(tmp_path / "drums.mid", drums=True, bars=1)
    with pytest.raises(music_io.MusicFileError, match=r"drums\.mid: cannot read a melody \(no melody: only drum notes"):
        music_io.read_file(str(tmp_path / "drums.mid"), VOCAB)


def test_explorer_upload_of_a_humanised_file_reports_its_style_and_quantisation(tmp_path):
    from musicvae_xai.explorer.data import read_upload

    humanised_midi(tmp_path / "played.mid", bpm=100.0, bpm_after=100.0)
    result = read_upload("played.mid", (tmp_path / "played.mid").read_bytes(), VOCAB)
    assert result["bar_numbers"] == list(range(9)) and result["skipped"] == {}   # the pickup is bar 0
    assert result["style"] == {"qpm": 100.0, "numerator": 4, "denominator": 4, "program": 73, "track_name": "Flute"}
    assert 0 < result["quantisation"]["max_error"] <= 0.034 and result["quantisation"]["off_grid_onsets"] == 0
    style = SourceStyle.from_dict(result["style"])           # what /api/midi gets back from the page
    info = read_back(music_io.write_midi(result["tokens"][:2], tmp_path / "dl.mid", VOCAB, style=style,
                                        markers=["measure 1", "measure 2"]))
    assert info["qpm"] == [100.0] and info["track_names"] == ["Flute"] and len(info["markers"]) == 2
    with pytest.raises(ValueError, match="style out of range"):
        SourceStyle.from_dict({"qpm": 0})
