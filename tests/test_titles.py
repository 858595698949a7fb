"""Pieces are called by the titles their files give them (ABC ``T:``, MusicXML work or movement title,
MIDI sequence or first track name), with the file name when there is none: in what the readers
return, the explorer's upload answer and piece list, and the dataset's piece records. Titles beyond
Latin-1 go through reading, MIDI writing and reading back unchanged."""

import json

import mido
import pytest
from test_midi_io import VOCAB

from musicvae_xai import music_io
from musicvae_xai.explorer.data import load_music_data, read_upload
from musicvae_xai.readers import midi

TUNE = "X:1\nT:{title}\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|\n"


def musicxml(work: str = "", movement: str = "") -> str:
    head = (f"<work><work-title>{work}</work-title></work>" if work else "") + (
        f"<movement-title>{movement}</movement-title>" if movement else "")
    return ('<?xml version="1.0" encoding="UTF-8"?><score-partwise version="3.1">' + head
            + '<part-list><score-part id="P1"><part-name>Flute</part-name></score-part></part-list>'
            + '<part id="P1"><measure number="1"><attributes><divisions>1</divisions><time><beats>4</beats>'
            + "<beat-type>4</beat-type></time></attributes>"
            + "".join(f"<note><pitch><step>{s}</step><octave>4</octave></pitch><duration>1</duration>"
                      "<type>quarter</type></note>" for s in "CDEF")
            + "</measure></part></score-partwise>")


def midi_file(path, names: list, charset: str = "utf-8") -> str:
    """A type-1 MIDI file whose tracks have ``names`` ('' for none), written in ``charset``; the last
    track holds the notes."""
    mf = mido.MidiFile(type=1, ticks_per_beat=480, charset=charset)
    for k, name in enumerate(names):
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)] if name else [])
        if k == len(names) - 1:
            for pitch in (60, 62, 64, 65):
                track += [mido.Message("note_on", note=pitch, velocity=80, time=0),
                          mido.Message("note_off", note=pitch, velocity=0, time=480)]
        mf.tracks.append(track)
    mf.save(str(path))
    return str(path)


def test_each_format_gives_its_own_title(tmp_path):
    (tmp_path / "a.abc").write_text(TUNE.format(title="The Boys of Ballisodare"))
    assert music_io.read_file(tmp_path / "a.abc", VOCAB).title == "The Boys of Ballisodare"
    (tmp_path / "w.musicxml").write_text(musicxml(work="Suite", movement="Sarabande"))
    assert music_io.read_file(tmp_path / "w.musicxml", VOCAB).title == "Suite"
    (tmp_path / "m.musicxml").write_text(musicxml(movement="Sarabande"))
    assert music_io.read_file(tmp_path / "m.musicxml", VOCAB).title == "Sarabande"
    seq = midi_file(tmp_path / "seq.mid", ["Planxty Irwin", "Flute"])           # sequence name first
    assert midi.read_result(seq).title == "Planxty Irwin"
    first = midi_file(tmp_path / "first.mid", ["", "", "Whistle"])              # else the first track name
    assert music_io.read_file(first, VOCAB).title == "Whistle"
    none = midi_file(tmp_path / "none.mid", [""])
    measures = music_io.read_file(none, VOCAB)
    assert measures.title == "" and measures.name == "none.mid"                 # the file name instead


@pytest.mark.parametrize("title", ["Калинка", "茉莉花"])
def test_a_title_beyond_latin1_survives_read_write_and_read_back(tmp_path, title):
    abc = tmp_path / "tune.abc"
    abc.write_text(TUNE.format(title=title), encoding="utf-8")
    measures = music_io.read_file(abc, VOCAB)
    assert measures.title == title and measures.style.track_name == title
    written = music_io.write_midi(measures.tokens, tmp_path / "out.mid", VOCAB, style=measures.style,
                                  markers=[f"{title}, bar {b}" for b in measures.bar_numbers])
    back = music_io.read_file(written, VOCAB)
    assert back.title == title and back.style.track_name == title
    assert [m.text for m in mido.MidiFile(written, charset="utf-8").tracks[0] if m.type == "marker"] == [
        f"{title}, bar 1", f"{title}, bar 2"]
    xml = tmp_path / "tune.musicxml"
    xml.write_text(musicxml(work=title), encoding="utf-8")
    assert music_io.read_file(xml, VOCAB).title == title
    upload = read_upload("tune.mid", (tmp_path / "out.mid").read_bytes(), VOCAB)
    assert upload["title"] == title and upload["name"] == "tune.mid"


def test_a_latin1_track_name_is_read_as_written(tmp_path):
    path = midi_file(tmp_path / "café.mid", ["Café Waltz"], charset="latin1")
    assert b"Caf\xe9" in open(path, "rb").read()
    assert midi.read_result(path).title == "Café Waltz"


def test_the_explorer_lists_uploads_and_pieces_by_title(tmp_path, embedded_cache_dir):
    got = read_upload("ballisodare.abc", TUNE.format(title="The Boys of Ballisodare").encode(), VOCAB)
    assert got["title"] == "The Boys of Ballisodare" and got["name"] == "ballisodare.abc"
    untitled = read_upload("untitled.mid", open(midi_file(tmp_path / "u.mid", [""]), "rb").read(), VOCAB)
    assert untitled["title"] == "untitled.mid"
    seeds = load_music_data(None, VOCAB, cache_dir=str(embedded_cache_dir), train_limit=0).seed_json()
    titles = [p["title"] for p in seeds["pieces"]]
    assert titles and all(t and "#" not in t for t in titles), titles[:5]       # T: fields, no file names
    pieces = next(embedded_cache_dir.glob("embedded-*/pieces.json"))
    records = json.loads(pieces.read_text(encoding="utf-8"))
    records = records["pieces"] if isinstance(records, dict) else records
    assert "The Little Heathy Hill" in {r["title"] for r in records}
