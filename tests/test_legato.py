"""Played MIDI read as meant: a note released shortly before the next onset lasts until it (the legato
fill of ``readers.common.quantise``), a written rest stays a rest, a file on the grid is read as
written, and the number of notes lengthened is reported wherever the quantisation error is."""

import mido
import numpy as np
import pytest
from test_midi_io import VOCAB, EchoClient

from musicvae_xai import music_io
from musicvae_xai.explorer.data import read_upload
from musicvae_xai.readers import midi
from musicvae_xai.readers.common import GRID_EXACT, Quantisation, quantise
from musicvae_xai.serving import commands

#: Two bars of a flute line: (onset, written length) in beats, quarters, eighths and sixteenths.
LINE = [(0.0, 1.0), (1.0, 0.5), (1.5, 0.5), (2.0, 1.0), (3.0, 0.25), (3.25, 0.25), (3.5, 0.5),
        (4.0, 0.5), (4.5, 0.5), (5.0, 1.0), (6.0, 1.0), (7.0, 1.0)]
PITCHES = [72, 74, 76, 77, 79, 77, 76, 74, 72, 71, 72, 74]


def play(path, line, *, released=(0.70, 0.90), jitter=0.03, seed=0, ticks_per_beat=480, qpm=96.0):
    """Writes ``line`` [(onset, length)] as a flautist plays it: every note released at a fraction
    ``released`` of its written length, onsets up to ``jitter`` beats early or late."""
    rng = np.random.default_rng(seed)
    events = [(0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm))),
              (0, 0, mido.MetaMessage("time_signature", numerator=4, denominator=4))]
    for pitch, (onset, length) in zip(PITCHES, line, strict=False):
        start = max(0.0, onset + rng.uniform(-jitter, jitter))
        end = start + length * rng.uniform(*released)
        events += [(round(start * ticks_per_beat), 2, mido.Message("note_on", note=pitch, velocity=80)),
                   (round(end * ticks_per_beat), 1, mido.Message("note_off", note=pitch, velocity=0))]
    track = mido.MidiTrack()
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    mf = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    mf.tracks.append(track)
    mf.save(str(path))
    return path


def notes_of(result) -> list:
    return [(n.pitch, round(n.start_time, 4), round(n.end_time, 4)) for n in result.sequence.notes]


def test_notes_released_at_70_to_90_percent_come_back_full_length(tmp_path):
    path = play(tmp_path / "flute.mid", LINE)
    read = midi.read_result(path)
    want = [(p, on, on + length) for p, (on, length) in zip(PITCHES, LINE, strict=True)]
    got = notes_of(read)
    assert [(p, s) for p, s, _ in got] == [(p, s) for p, s, _ in want]
    assert [e for _, _, e in got[:-1]] == pytest.approx([e for _, _, e in want[:-1]])   # no rest anywhere
    tokens = music_io.read_file(path, VOCAB).tokens
    assert not (tokens == VOCAB.rest_id).any()

    played = midi.read_result(path, legato=False)                         # as played: shortened, rests after
    assert played.quantisation.lengthened == 0 and not played.quantisation.legato
    short = [(s, e) for _, s, e in notes_of(played)]
    detached = sum(e < following[0] - 1e-6 for (_, e), following in zip(short, short[1:], strict=False))
    assert detached >= 4 and read.quantisation.lengthened == detached and read.quantisation.legato
    assert (music_io.read_file(path, VOCAB, legato=False).tokens == VOCAB.rest_id).any()


def test_a_written_rest_stays_a_rest(tmp_path):
    # every note released at 75%: the first one, right before the next note, is held to it; the eighth
    # rest after the eighth note (beat 1.5), the quarter rest after the quarter (beat 3) and the
    # quarter rest after the half note (beat 6) are at least half a beat, so they are meant
    line = [(0.0, 1.0), (1.0, 0.5), (2.0, 1.0), (4.0, 2.0), (7.0, 1.0)]
    path = play(tmp_path / "rests.mid", line, released=(0.75, 0.75), jitter=0.02, seed=1)
    read = midi.read_result(path)
    assert [e for _, _, e in notes_of(read)] == pytest.approx([1.0, 4 / 3, 2.75, 5.5, 7.75], abs=1e-4)
    assert read.quantisation.lengthened == 1


def test_a_short_note_before_a_rest_as_long_as_itself_stays_detached():
    # sixteenth note, sixteenth rest: the silence is as long as the note, so it is a rest; the next
    # note, released a third of a beat early, is held to the last onset (beats)
    start, end, q = quantise(np.array([0.01, 0.5, 2.0]), np.array([0.23, 1.6, 2.9]), legato=True)
    assert end.tolist() == pytest.approx([0.25, 2.0, 3.0]) and q.lengthened == 1


def test_grid_exact_midi_is_read_as_written(tmp_path):
    # written by this project: an eighth note and a sixteenth rest, a note of 11/12 beat and a triplet
    # eighth rest; the rests are shorter than LEGATO_GAP and than the notes, but they are on the grid
    row = ([60, "hold", "hold", "rest", "hold", 62] + ["hold"] * 4 + ["rest", "hold"]
           + [64] + ["hold"] * 5 + [65] + ["hold"] * 5)
    tokens = VOCAB.encode(row)[None]
    path = music_io.write_midi(tokens, tmp_path / "ours.mid", VOCAB)
    on = music_io.read_file(path, VOCAB)
    np.testing.assert_array_equal(on.tokens, tokens)
    np.testing.assert_array_equal(music_io.read_file(path, VOCAB, legato=False).tokens, tokens)
    assert on.quantisation.lengthened == 0 and not on.quantisation.played
    # a notation program's export at its own resolution (96 ticks per beat) with triplets
    start = np.array([0.0, 1 / 3, 2 / 3, 1.0, 2.5])
    end = np.array([0.25, 2 / 3, 0.75, 2.25, 3.0])
    _, snapped, q = quantise(np.round(start * 96) / 96, np.round(end * 96) / 96, legato=True)
    assert q.onset_max <= GRID_EXACT and q.lengthened == 0
    assert snapped.tolist() == pytest.approx([0.25, 2 / 3, 0.75, 2.25, 3.0])
    _, jittered, q = quantise(start + [0.0, 0.0, 0.0, 0.0, 0.01], end, legato=True)   # one onset played
    assert q.lengthened == 2 and jittered.tolist() == pytest.approx([1 / 3, 2 / 3, 0.75, 2.5, 3.0])


def test_the_count_is_reported_with_the_quantisation_error(tmp_path):
    path = play(tmp_path / "flute.mid", LINE, seed=2)
    count = midi.read_result(path).quantisation.lengthened
    assert count > 0
    upload = read_upload("flute.mid", path.read_bytes(), VOCAB)["quantisation"]
    assert upload["lengthened_notes"] == count and upload["legato"] is True and upload["max_error"] > 0
    assert read_upload("flute.mid", path.read_bytes(), VOCAB, legato=False)["quantisation"]["lengthened_notes"] == 0
    summary = commands.run(EchoClient(), "reconstruct", commands.Options(midi=str(path), out=str(tmp_path / "r.mid")))
    assert summary["quantisation"]["lengthened_notes"] == count
    assert Quantisation(3, 0.01, 0.02, 0.1, 0.2, 0, 0.0625, 2, True).to_dict()["lengthened_notes"] == 2


def test_the_explorer_upload_takes_the_option(tmp_path):
    from musicvae_xai import pretrained
    from musicvae_xai.explorer.app import create_app
    from musicvae_xai.explorer.server import make_explorer

    path = play(tmp_path / "flute.mid", LINE, seed=3)
    web = create_app(*make_explorer(export=pretrained.export_dir(), load_data=False)).test_client()

    def upload(**form):
        return web.post("/api/upload", data={"file": (path.open("rb"), "flute.mid"), **form},
                        content_type="multipart/form-data")

    on, off = upload().get_json(), upload(legato="0").get_json()
    assert on["quantisation"]["lengthened_notes"] > 0 and off["quantisation"]["lengthened_notes"] == 0
    assert on["measures"]["tokens"] != off["measures"]["tokens"]
    bad = upload(legato="maybe")
    assert bad.status_code == 400 and "legato must be 1 or 0" in bad.get_json()["error"]
