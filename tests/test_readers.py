"""Tests for musicvae_xai.readers: every reader on a few real files, and on bad files."""

import os

import numpy as np
import pytest

from musicvae_xai import representation as R
from musicvae_xai.readers import ReaderError, abc, midi, musicxml, pop909, symbtr
from musicvae_xai.readers.common import Bar, NoteEvent, layout_bars, make_sequence, skyline, snap_to_grid

PIANO_RIGHT = r"re:(?i)\bright\b"
# A well-formed header and track whose note-on has a data byte above 127.
_TRACK = bytes([0x00, 0x90, 0xFF, 0x40, 0x60, 0x80, 0x3C, 0x00, 0x00, 0xFF, 0x2F, 0x00])
CORRUPT_MIDI = (b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 1, 0xE0])
                + b"MTrk" + len(_TRACK).to_bytes(4, "big") + _TRACK)


def notes_of(seq):
    return [(n.pitch, round(n.start_time, 6), round(n.end_time, 6)) for n in seq.notes]


def assert_tempo_normalised(seq):
    assert R.tempo_normalised(seq) and len(seq.tempos) == 1
    assert len(seq.time_signatures) >= 1 and seq.time_signatures[0].time == 0.0


def assert_monophonic(seq):
    starts = np.array([n.start_time for n in seq.notes])
    ends = np.array([n.end_time for n in seq.notes])
    assert (np.diff(starts) > 0).all() and (ends[:-1] <= starts[1:] + 1e-9).all()


# ---------------------------------------------------------------- common helpers


def test_snap_to_grid_only_within_tolerance():
    got = snap_to_grid(np.array([0.002, 1.33, 2.49, 3.125, 4.99]), 0.02)
    np.testing.assert_allclose(got, [0.0, 1 + 1 / 3, 2.5, 3.125, 5.0])


def test_layout_bars_shifts_pickup_and_marks_irregular_bars():
    bars = [Bar(0.0, 1.0, 4, 4), Bar(1.0, 4.0, 4, 4), Bar(5.0, 3.0, 4, 4), Bar(8.0, 4.0, 4, 4), Bar(12, 3, 3, 4)]
    shift, events = layout_bars(bars)
    assert shift == 3.0
    assert events == [(0.0, 4, 4), (11.0, 4, 4), (15.0, 3, 4)]


def test_skyline_modes():
    ns = [NoteEvent(60, 0, 2), NoteEvent(64, 0, 1), NoteEvent(67, 1, 3), NoteEvent(65, 2.5, 4)]
    assert skyline(ns, "highest") == [NoteEvent(64, 0, 1), NoteEvent(67, 1, 3), NoteEvent(65, 2.5, 4)]
    assert skyline(ns, "skyline") == [NoteEvent(64, 0, 1), NoteEvent(67, 1, 2.5), NoteEvent(65, 2.5, 4)]
    assert NoteEvent(60, 0, 1) in skyline(ns, "legato")  # simultaneous onsets stay
    with pytest.raises(ReaderError) as e:
        make_sequence([NoteEvent(60, 1.0, 1.0)], [])
    assert e.value.reason == "no_notes"


# ---------------------------------------------------------------- MIDI


def test_cre_midi_pickup_is_shifted_to_the_bar_line(shared_datasets):
    seq = midi.read(shared_datasets / "irish_cre/MIDI/AchonryLassesreelThe.mid", track="first",
                    chords="skyline", pickup=True)
    assert_tempo_normalised(seq)
    # a one-beat triplet pickup, then G on the first downbeat (the file starts each note 1 tick late)
    assert notes_of(seq)[:4] == [(62, 3.0, 3.333333), (64, 3.333333, 3.666667), (66, 3.666667, 4.0), (67, 4.0, 5.0)]
    ext = R.sequence_to_measures(seq)
    assert len(ext.measures) > 10 and ext.skipped.get("off_grid", 0) == 0
    assert R.FULL_RANGE.decode(ext.measures[0])[:18] == ["start"] * 18


def test_cre_midi_melody_track_only(shared_datasets):
    path = shared_datasets / "irish_cre/MIDI/AchreidhJigThe.mid"  # melody + accompaniment tracks
    data = midi.load(path)
    assert sum(len(t.notes) > 0 for t in data.tracks) == 2
    seq = midi.read(path, track="first", chords="skyline", pickup=True)
    assert len(seq.notes) == 162 and min(n.pitch for n in seq.notes) > 55
    assert seq.time_signatures[0].numerator == 6 and seq.time_signatures[0].denominator == 8


def test_midi_parser_agrees_with_mido(shared_datasets):
    mido = pytest.importorskip("mido")
    for rel in ("irish_cre/MIDI/AchreidhJigThe.mid", "classical_piano_midi/midis/Chopin/chp_op18.mid"):
        ours = midi.load(shared_datasets / rel)
        mf = mido.MidiFile(shared_datasets / rel)
        assert [t.name for t in ours.tracks] == [t.name for t in mf.tracks]
        for track, ref in zip(ours.tracks, mf.tracks, strict=False):
            n_on = sum(1 for m in ref if m.type == "note_on" and m.velocity > 0 and m.channel != 9)
            assert len(track.notes) == n_on
        sigs = []
        tick = 0
        for m in mido.merge_tracks(mf.tracks):
            tick += m.time
            if m.type == "time_signature":
                sigs.append((tick, m.numerator, m.denominator))
        assert ours.time_signatures == sigs


def test_piano_midi_with_many_tempo_changes(shared_datasets):
    path = shared_datasets / "classical_piano_midi/midis/Chopin/chp_op18.mid"
    assert len(midi.load(path).tempos) > 100
    seq = midi.read(path, track=PIANO_RIGHT, chords="skyline")
    assert_tempo_normalised(seq)
    assert_monophonic(seq)
    assert [(t.time, t.numerator, t.denominator) for t in seq.time_signatures] == [(0.0, 3, 4), (990.0, 3, 8)]
    seq44 = midi.read(shared_datasets / "classical_piano_midi/midis/Clementi/clementi_opus36_1_1.mid",
                      track=PIANO_RIGHT, chords="skyline")
    assert len(R.sequence_to_measures(seq44).measures) > 20


def test_ticks_to_seconds_follows_the_tempo_map():
    data = midi.MidiData(480, [], [], [(0, 500000), (960, 1000000)], 0)
    np.testing.assert_allclose(midi.ticks_to_seconds(np.array([0, 480, 960, 1440]), data), [0, 0.5, 1.0, 2.0])


def test_midi_missing_track_and_bad_files(tmp_path, shared_datasets):
    with pytest.raises(ReaderError) as e:
        midi.read(shared_datasets / "irish_cre/MIDI/AchreidhJigThe.mid", track="Piano right")
    assert e.value.reason == "no_melody"
    real = (shared_datasets / "irish_cre/MIDI/AchonryLassesreelThe.mid").read_bytes()
    cases = {"empty.mid": (b"", "empty_file"), "truncated.mid": (real[: len(real) // 2], "unparseable"),
             "garbage.mid": (os.urandom(2000), "unparseable"), "abc.mid": (b"X:1\nK:C\ncdef|\n", "unparseable"),
             "corrupt.mid": (CORRUPT_MIDI, "unparseable")}
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ReaderError) as e:
            midi.read(tmp_path / name)
        assert e.value.reason == reason, name


# ---------------------------------------------------------------- MusicXML


def test_bach_soprano_part(shared_datasets):
    seq = musicxml.read(shared_datasets / "classical_bach_chorales/bwv10.7.mxl")
    assert_tempo_normalised(seq)
    assert_monophonic(seq)
    ext = R.sequence_to_measures(seq)
    assert len(ext.measures) >= 8 and not ext.skipped.get("polyphonic")


def test_bach_soprano_found_when_not_first(shared_datasets):
    from music21 import converter

    path = shared_datasets / "classical_bach_chorales/bwv120.8-a.mxl"  # trumpets and timpani come first
    seq = musicxml.read(path)
    score = converter.parseFile(path, forceSource=True, storePickle=False)
    soprano = next(p for p in score.parts if p.partName == "Soprano")
    want = [int(n.pitch.midi) for n in soprano.stripTies().flatten().notes if not n.duration.isGrace]
    assert [n.pitch for n in seq.notes] == want


def test_musicxml_bad_files(tmp_path):
    for name, data, reason in (("empty.mxl", b"", "empty_file"), ("text.xml", b"not xml at all", "unparseable"),
                               ("garbage.mxl", os.urandom(500), "unparseable")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ReaderError) as e:
            musicxml.read(tmp_path / name)
        assert e.value.reason == reason, name


# ---------------------------------------------------------------- ABC


def test_abc_pickup_grace_and_chord(tmp_path):
    path = tmp_path / "book.abc"
    path.write_text("X:1\nT:Test\nM:4/4\nL:1/8\nK:G\nG2|{A}B2 [GBd]2 c4|d8|]\n")
    [tune] = abc.read_tunebook(path)
    assert tune.error is None and tune.tune.title == "Test"
    assert notes_of(tune.sequence) == [(67, 3.0, 4.0), (71, 4.0, 5.0), (74, 5.0, 6.0), (72, 6.0, 8.0), (74, 8.0, 12.0)]
    assert_tempo_normalised(tune.sequence)


def test_abc_one_bad_tune_does_not_kill_the_book(tmp_path):
    path = tmp_path / "book.abc"
    path.write_text("X:1\nT:a\nM:4/4\nL:1/4\nK:C\ncdef|g4|]\n\n"
                    "X:2\nT:broken\nM:4/4\nL:1/8\nK:C\n[[[[|||:::\n\n"
                    "X:3\nT:b\nN:a note that goes on\non a second line\nM:C|\nL:1/4\nK:D\ndefg|a4|]\n")
    results = abc.read_tunebook(path, id_prefix="book")
    assert [r.tune.number for r in results] == ["1", "2", "3"]
    assert results[0].sequence is not None and results[2].sequence is not None
    assert results[1].error.reason == "unparseable"
    assert results[2].sequence.time_signatures[0].numerator == 2
    assert results[0].sequence.id == "book#0:X1"


def test_abc_bad_files(tmp_path):
    for name, data, reason in (("empty.abc", b"", "empty_file"),
                               ("binary.abc", os.urandom(300) + b"\x00", "unparseable"),
                               ("notabc.abc", b"just some text\nwithout tunes\n", "unparseable")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ReaderError) as e:
            abc.read_tunebook(tmp_path / name)
        assert e.value.reason == reason, name


def test_oneills_parse_rate(shared_datasets):
    books = sorted((shared_datasets / "irish_oneills1850").glob("*.abc"))[::13]  # 3 of the 39 books
    results = [r for book in books for r in abc.read_tunebook(book)]
    assert len(results) >= 100
    parsed = sum(r.sequence is not None for r in results)
    assert parsed / len(results) >= 0.95


# ---------------------------------------------------------------- SymbTr


def test_koma53_rounding():
    assert [symbtr.koma53_to_midi(k) for k in (318, 327, 336, 340, 349, 305)] == [72, 74, 76, 77, 79, 69]
    assert symbtr.koma53_to_midi(313) == 71  # B4 one comma flat rounds to B4
    assert symbtr.koma53_to_midi(322) == 73  # C5 + 4 commas rounds to C#5


def test_symbtr_duyek_folk_song(shared_datasets):
    path = shared_datasets / "turkish_symbtr/txt/acem--turku--duyek--ordunun_dereleri--ordu.txt"
    seq = symbtr.read(path)
    assert_tempo_normalised(seq)
    assert (seq.time_signatures[0].numerator, seq.time_signatures[0].denominator) == (8, 8)
    # rest of 1/8 then C5, D5 sixteenths, E5 eighth; grace notes (Kod 8) are dropped
    assert notes_of(seq)[:3] == [(72, 0.5, 0.75), (74, 0.75, 1.0), (76, 1.0, 1.5)]
    rows = [ln.split("\t") for ln in path.read_text(encoding="utf-8").splitlines()[1:] if ln.strip()]
    sounding = [r for r in rows if r[1] != "51" and int(r[7] or 0) > 0 and r[3] != "Es"]
    assert len(seq.notes) == len(sounding)
    assert R.sequence_to_measures(seq).skipped.get("not_4_4", 0) > 10


def test_symbtr_sofyan_gives_four_four(shared_datasets):
    path = next((shared_datasets / "turkish_symbtr/txt").glob("*--turku--sofyan--*.txt"))
    seq = symbtr.read(path)
    assert (seq.time_signatures[0].numerator, seq.time_signatures[0].denominator) == (4, 4)
    assert len(R.sequence_to_measures(seq).measures) > 0


def test_symbtr_bad_files(tmp_path):
    for name, data, reason in (("empty.txt", b"", "empty_file"), ("other.txt", b"a\tb\tc\n1\t2\t3\n", "unparseable"),
                               ("garbage.txt", b"\xff\xfe" + os.urandom(300), "unparseable")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ReaderError) as e:
            symbtr.read(tmp_path / name)
        assert e.value.reason == reason, name


# ---------------------------------------------------------------- POP909


def test_pop909_index_without_openpyxl(shared_datasets):
    index = pop909.read_index(shared_datasets / "pop_pop909/POP909/index.xlsx")
    assert len(index) == 909
    assert pop909.is_simple_duple(index["001"]) and not pop909.is_simple_duple(index["014"])
    assert sum(not pop909.is_simple_duple(r) for r in index.values()) == 52


def test_pop909_song(shared_datasets):
    folder = shared_datasets / "pop_pop909/POP909"
    index = pop909.read_index(folder / "index.xlsx")
    seq = pop909.read(folder / "001/001.mid", index=index)
    assert_tempo_normalised(seq)
    onsets = np.array([n.start_time for n in seq.notes])
    assert np.isin(np.round((onsets % 1) * 12), [0, 3, 4, 6, 8, 9]).mean() > 0.9
    ends = np.array([n.end_time for n in seq.notes])
    assert (ends[:-1] <= onsets[1:] + 1e-9).all()  # legato notes cut at the next onset
    ext = R.sequence_to_measures(seq)
    assert len(ext.measures) > 30
    with pytest.raises(ReaderError) as e:
        pop909.read(folder / "014/014.mid", index=index)
    assert e.value.reason == "not_simple_duple"


def test_pop909_beat_mapping():
    beats = np.array([0.05, 0.55, 1.05, 1.55, 2.05])
    np.testing.assert_allclose(pop909.seconds_to_beats(np.array([0.05, 0.30, 1.3, 2.55, 0.0]), beats),
                               [0, 0.5, 2.5, 5.0, -0.1])
    bars = pop909.bars_from_downbeats(np.array([False, True, False, False, False, True, False, False, True]))
    assert [(b.start, b.length, b.numerator) for b in bars] == [(-3.0, 4.0, 4), (1.0, 4.0, 4), (5.0, 3.0, 3),
                                                                 (8.0, 1.0, 1)]


def test_pop909_bad_files(tmp_path, shared_datasets):
    song = tmp_path / "001"
    song.mkdir()
    (song / "001.mid").write_bytes((shared_datasets / "pop_pop909/POP909/001/001.mid").read_bytes())
    with pytest.raises(ReaderError) as e:  # no beat file
        pop909.read(song / "001.mid")
    assert e.value.reason == "unparseable"
    (song / "beat_midi.txt").write_text("not numbers\n")
    with pytest.raises(ReaderError) as e:
        pop909.read(song / "001.mid")
    assert e.value.reason == "unparseable"
    (tmp_path / "index.xlsx").write_bytes(b"not a zip")
    with pytest.raises(ReaderError):
        pop909.read_index(tmp_path / "index.xlsx")


# ---------------------------------------------------------------- played (humanised) MIDI

from midi_fixtures import BAR, humanised_midi  # noqa: E402


def _onset_ticks():
    """Tick index (0..23) of each written onset of ``BAR``."""
    return [int(np.argmin(np.abs(R.TICK_POSITIONS - onset))) for onset, _ in BAR]


@pytest.mark.parametrize("lengths", [(0.60, 0.70), (0.90, 0.98), (0.60, 0.98)])
def test_humanised_midi_is_quantised_onto_the_written_onsets(tmp_path, lengths):
    path = tmp_path / "played.mid"
    notes = humanised_midi(path, lengths=lengths, seed=int(lengths[0] * 100))
    result = midi.read_result(path, chords="skyline")
    ext = R.sequence_to_measures(result.sequence)
    assert dict(ext.skipped) == {}                                  # no bar lost to off_grid/polyphonic
    assert list(ext.bar_index) == list(range(9))                    # the pickup bar, then 8 bars
    decoded = [R.FULL_RANGE.decode(m) for m in ext.measures]
    assert decoded[0][:18] == ["start"] * 18 and decoded[0][18] == notes[0][0]   # 1-beat pickup
    for b in range(8):
        pitches = [p for p, _, _ in notes[1 + 7 * b: 8 + 7 * b]]
        assert [decoded[b + 1][t] for t in _onset_ticks()] == pitches, b
    q = result.quantisation
    assert q.notes == len(notes) and q.off_grid_onsets == 0
    assert 0 < q.mean_error <= q.max_error <= 0.04 + 1e-3      # +-20 ms at 120 bpm = +-0.04 beat
    assert q.offset_max > q.max_error                          # 60-98 % lengths: offsets moved further
    assert result.style.track_name == "Flute" and result.style.program == 73 and result.style.qpm == 120.0


def test_tempo_change_does_not_move_the_bars(tmp_path):
    a, b = tmp_path / "a.mid", tmp_path / "b.mid"
    humanised_midi(a, bpm=120, bpm_after=120, jitter_ms=0, lengths=(0.9, 0.9))
    humanised_midi(b, bpm=120, bpm_after=60, jitter_ms=0, lengths=(0.9, 0.9))
    ma = R.sequence_to_measures(midi.read(a)).measures
    mb = R.sequence_to_measures(midi.read(b)).measures
    np.testing.assert_array_equal(ma, mb)


def test_legato_overlap_and_staccato_stay_monophonic():
    start = np.array([0.0, 0.5, 1.02, 1.5])
    end = np.array([0.53, 0.8, 1.2, 1.52])  # overlaps the next onset by 0.03 beat; short notes
    s, e, q = midi_quantise(start, end)
    np.testing.assert_allclose(s, [0.0, 0.5, 1.0, 1.5])
    # cut at the next onset; nearest tick; one-tick minimum
    np.testing.assert_allclose(e, [0.5, 0.75, 1.25, 1.5 + 1 / 6])
    assert q.off_grid_onsets == 0 and q.max_error == pytest.approx(0.02)


def midi_quantise(start, end):
    from musicvae_xai.readers.common import quantise
    return quantise(start, end)


def test_onsets_beyond_the_tolerance_stay_off_the_grid_and_are_reported(tmp_path):
    path = tmp_path / "sloppy.mid"
    humanised_midi(path, pickup=False, jitter_ms=0, bars=2)
    import mido
    mf = mido.MidiFile(str(path))
    for msg in mf.tracks[0]:          # push every event 0.1 beat late: every onset is off the grid
        if msg.type == "time_signature" and msg.numerator == 4:
            break
    mf.tracks[0].insert(mf.tracks[0].index(msg) + 1, mido.MetaMessage("text", text="late", time=48))
    mf.save(str(path))
    result = midi.read_result(path)
    ext = R.sequence_to_measures(result.sequence)
    assert len(ext.measures) == 0 and set(ext.skipped) == {"off_grid"}
    assert result.quantisation.max_error == pytest.approx(0.1, abs=1e-6)
    assert result.quantisation.off_grid_onsets == result.quantisation.notes


def test_drums_only_and_empty_tracks_name_the_reason(tmp_path):
    humanised_midi(tmp_path / "drums.mid", drums=True, bars=1)
    with pytest.raises(ReaderError, match="only drum notes") as e:
        midi.read(tmp_path / "drums.mid")
    assert e.value.reason == "no_melody"
    import mido
    mf = mido.MidiFile()
    mf.tracks.extend([mido.MidiTrack([mido.MetaMessage("track_name", name="x")]), mido.MidiTrack()])
    mf.save(str(tmp_path / "empty_tracks.mid"))
    with pytest.raises(ReaderError, match=r"no track has notes \(2 empty tracks\)") as e:
        midi.read(tmp_path / "empty_tracks.mid", track="first")
    assert e.value.reason == "no_melody"


def test_humanised_midi_through_the_dataset_builders_reader_path(tmp_path):
    from musicvae_xai.datasets import sources

    folder = tmp_path / "irish_cre" / "MIDI"
    folder.mkdir(parents=True)
    humanised_midi(folder / "played.mid", seed=3)
    for source in (sources.sources("irish")[0], sources.sources("classical")[1]):
        if source.name == "classical_piano_midi":   # its melody is the track named "... right"
            humanised_midi(folder / "played.mid", seed=3, track_name="Piano right")
        result = sources.parse_file((source, str(folder.parent), "MIDI/played.mid", False))
        assert result.reason in (None, ""), result
        (piece,) = result.pieces
        assert len(piece.measures) >= 8 and not piece.skipped, (source.name, piece.skipped)
