"""POP909 reader: the ``MELODY`` track, with beats and bars from the song's ``beat_midi.txt``.

The MIDI time signatures are unreliable and the MIDI grid is shifted, so note times (seconds, from
the file's tempo map) are mapped to beat positions by interpolating between the annotated beat
times, snapped to the 1/4- and 1/3-beat grid, and cut at the next onset (the notes are played
legato). A bar runs from one row flagged as a 4/4 downbeat (third column 1.0) to the next; 4-beat
bars are 4/4, others get their own beat count as metre and are skipped downstream. The song's metre
comes from ``index.xlsx`` (read with the standard library): triple or compound-metre songs are
skipped; without the index, a song whose annotated bars are mostly not 4 beats long is skipped.
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Optional, Union
from xml.etree import ElementTree

import numpy as np
from note_seq.protobuf import music_pb2

from musicvae_xai.readers import limits, midi
from musicvae_xai.readers.common import Bar, NoteEvent, ReaderError, make_sequence, next_grid_point, snap_to_grid

MELODY_TRACK = "MELODY"
BEAT_FILE = "beat_midi.txt"
#: Onsets within this many beats of a grid point are snapped onto it (1/24 beat: half the
#: smallest gap of the grid, between 1/4 and 1/3).
SNAP_TOLERANCE = 1.0 / 24.0

_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def read_index(path: Union[str, os.PathLike]) -> dict:
    """``index.xlsx`` -> {song_id: {column: value}} using only zipfile + ElementTree.

    Reads the first worksheet, inline or shared strings. Raises ReaderError if it is not an xlsx.
    """
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            shared = []
            if "xl/sharedStrings.xml" in names:
                root = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
                shared = ["".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t"))
                          for si in root.findall("m:si", _NS)]
            sheet = sorted(n for n in names if re.match(r"xl/worksheets/sheet\d+\.xml$", n))[0]
            root = ElementTree.fromstring(z.read(sheet))
    except (zipfile.BadZipFile, KeyError, IndexError, ElementTree.ParseError, OSError) as e:
        raise ReaderError("unparseable", f"cannot read {os.fspath(path)}: {e}") from None
    rows = []
    for row in root.iter(f"{{{_NS['m']}}}row"):
        cells = {}
        for c in row.findall("m:c", _NS):
            column = re.match(r"[A-Z]+", c.get("r", "")).group(0)
            kind = c.get("t")
            if kind == "inlineStr":
                value = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
            else:
                v = c.find("m:v", _NS)
                value = v.text if v is not None else ""
                if kind == "s" and value:
                    value = shared[int(value)]
            cells[column] = value
        rows.append(cells)
    if not rows:
        return {}
    header = rows[0]
    table = {}
    for cells in rows[1:]:
        record = {header[k]: v for k, v in cells.items() if k in header}
        song = str(record.get("song_id", "")).strip()
        if song:
            if song.replace(".", "", 1).isdigit():
                song = f"{int(float(song)):03d}"
            table[song] = record
    return table


def is_simple_duple(record: dict) -> bool:
    """True when an index row says 2 beats per measure and 2 quavers per beat."""
    try:
        return int(float(record["num_beats_per_measure"])) == 2 and int(float(record["num_quavers_per_beat"])) == 2
    except (KeyError, ValueError):
        return True


def read_beats(path: Union[str, os.PathLike]) -> tuple:
    """``beat_midi.txt`` -> (beat times float64 [B] seconds, 4/4-downbeat flags bool [B])."""
    try:
        limits.check_bytes(os.path.getsize(path), f"beat file {os.fspath(path)}")
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as e:
        raise ReaderError("unparseable", f"beat file {os.fspath(path)}: {e}") from None
    if table.shape[0] < 2 or table.shape[1] < 3 or not np.all(np.diff(table[:, 0]) > 0):
        raise ReaderError("unparseable", f"beat file {os.fspath(path)} has no increasing beat times")
    return table[:, 0], table[:, 2] > 0.5


def seconds_to_beats(seconds: np.ndarray, beat_times: np.ndarray) -> np.ndarray:
    """Beat positions (float64) of times in seconds, interpolating between annotated beats and
    extrapolating with the first/last beat interval outside them."""
    seconds = np.asarray(seconds, dtype=np.float64)
    pos = np.interp(seconds, beat_times, np.arange(len(beat_times), dtype=np.float64))
    first, last = beat_times[1] - beat_times[0], beat_times[-1] - beat_times[-2]
    pos = np.where(seconds < beat_times[0], (seconds - beat_times[0]) / first, pos)
    return np.where(seconds > beat_times[-1], len(beat_times) - 1 + (seconds - beat_times[-1]) / last, pos)


def bars_from_downbeats(downbeat: np.ndarray) -> list:
    """Bars (in beat indices) from the downbeat flags: a 4-beat pickup bar before the first
    downbeat, then one bar per downbeat; a bar of n beats gets metre n/4."""
    idx = np.nonzero(downbeat)[0]
    if not len(idx):
        raise ReaderError("unparseable", "no 4/4 downbeat in the beat file")
    bars = [Bar(float(idx[0] - 4), 4.0, 4, 4)]
    ends = list(idx[1:]) + [len(downbeat)]
    for a, b in zip(idx, ends, strict=False):
        n = int(b - a)
        bars.append(Bar(float(a), float(n), n, 4))
    return bars


def read(path: Union[str, os.PathLike], *, beat_path: Optional[Union[str, os.PathLike]] = None,
         index: Optional[dict] = None, song_id: Optional[str] = None, snap_tolerance: float = SNAP_TOLERANCE,
         piece_id: str = "") -> music_pb2.NoteSequence:
    """Melody NoteSequence of one POP909 song ``NNN/NNN.mid`` (its beat file beside it by default).

    index: the parsed ``index.xlsx`` (``read_index``); songs it marks as not simple duple raise
    ReaderError('not_simple_duple'). Without an index, a song whose bars are mostly not 4 beats
    long raises the same.
    """
    path = os.fspath(path)
    beat_path = beat_path or os.path.join(os.path.dirname(path), BEAT_FILE)
    song_id = song_id or os.path.splitext(os.path.basename(path))[0]
    if index is not None and song_id in index and not is_simple_duple(index[song_id]):
        raise ReaderError("not_simple_duple", f"index.xlsx gives song {song_id} a triple or compound metre")
    data = midi.load(path)
    rows = data.track(MELODY_TRACK)
    if not len(rows):
        raise ReaderError("no_notes")
    if not os.path.exists(beat_path):
        raise ReaderError("unparseable", f"no beat file {beat_path}")
    beat_times, downbeat = read_beats(beat_path)
    bars = bars_from_downbeats(downbeat)
    if index is None or song_id not in index:
        four = sum(b.length for b in bars[1:] if b.length == 4)
        if four < 0.5 * sum(b.length for b in bars[1:]):
            raise ReaderError("not_simple_duple", "most annotated bars are not 4 beats long")
    start = seconds_to_beats(midi.ticks_to_seconds(rows[:, 1], data), beat_times)
    end = seconds_to_beats(midi.ticks_to_seconds(rows[:, 2], data), beat_times)
    # Onsets snap only within the tolerance (others stay off the grid and their bars are dropped);
    # offsets go to the nearest grid point after the onset (the notes are played legato).
    start = snap_to_grid(start, snap_tolerance)
    end = np.maximum(snap_to_grid(end, 0.5), next_grid_point(start))
    notes = [NoteEvent(int(p), float(s), float(e)) for p, s, e in zip(rows[:, 0], start, end, strict=False)]
    return make_sequence(notes, bars, piece_id=piece_id or path, chords="legato")
