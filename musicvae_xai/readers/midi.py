"""MIDI reader: quantises in beats (MIDI ticks / ticks per quarter), so tempo maps never matter.

Used for the CRÉ Irish tunes (first note track, highest note of chords, pickup phase corrected
from the tune length) and the piano-midi.de pieces (skyline of the track "Piano right").
``load`` gives the raw per-track notes in ticks for other readers (POP909).
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
from typing import Union

import numpy as np
from note_seq.protobuf import music_pb2

from musicvae_xai.readers.common import Bar, NoteEvent, ReaderError, make_sequence, regular_bars, snap_to_grid

DRUM_CHANNEL = 9
#: Default snap tolerance in beats: 1/48 beat, i.e. 10 ticks at 480 ticks per quarter.
SNAP_TOLERANCE = 1.0 / 48.0


@dataclasses.dataclass
class MidiTrack:
    """One track: its name and its notes as int64 [n, 4] rows (pitch, start_tick, end_tick, velocity)."""

    name: str
    notes: np.ndarray


@dataclasses.dataclass
class MidiData:
    """A parsed MIDI file: ticks per quarter, tracks, time signatures [(tick, num, den)], tempos
    [(tick, microseconds per quarter)], and the last tick of any track."""

    ticks_per_quarter: int
    tracks: list
    time_signatures: list
    tempos: list
    end_tick: int

    def track(self, selector: Union[str, int, None]) -> np.ndarray:
        """Notes int64 [n, 4] of the selected track(s).

        selector: None = every track merged; ``"first"`` = the first track that has notes; an int =
        that track index; ``"re:PATTERN"`` = every track whose name matches the regular expression
        (``re.search``), merged; any other str = the track with that name (case and surrounding
        spaces ignored). Raises ReaderError('no_melody') when nothing matches.
        """
        with_notes = [t for t in self.tracks if len(t.notes)]
        if selector is None:
            chosen = with_notes
        elif selector == "first":
            if not with_notes:
                raise ReaderError("no_notes")
            chosen = with_notes[:1]
        elif isinstance(selector, int):
            if not 0 <= selector < len(self.tracks):
                raise ReaderError("no_melody", f"no track {selector}")
            chosen = [self.tracks[selector]]
        elif selector.startswith("re:"):
            pattern = re.compile(selector[3:])
            chosen = [t for t in self.tracks if pattern.search(t.name)]
            if not chosen:
                raise ReaderError("no_melody", f"no track name matches {selector[3:]!r}")
        else:
            chosen = [t for t in self.tracks if t.name.strip().lower() == selector.strip().lower()][:1]
            if not chosen:
                raise ReaderError("no_melody", f"no track named {selector!r}")
        arrays = [t.notes for t in chosen if len(t.notes)]
        if not arrays:
            return np.zeros((0, 4), np.int64)
        merged = np.concatenate(arrays)
        return merged[np.lexsort((-merged[:, 0], merged[:, 1]))]


def load(path: Union[str, os.PathLike]) -> MidiData:
    """Parses a standard MIDI file. Raises ReaderError for empty, truncated or corrupt files."""
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ReaderError("empty_file")
    try:
        return parse_smf(data)
    except ReaderError:
        raise
    except (IndexError, ValueError, struct.error) as e:
        raise ReaderError("unparseable", f"corrupt or truncated MIDI data ({type(e).__name__}: {e})") from None


def _varlen(data: bytes, i: int) -> tuple:
    value = 0
    for _ in range(4):
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, i
    raise ValueError("variable-length quantity longer than 4 bytes")


def parse_smf(data: bytes) -> MidiData:
    """Standard MIDI file bytes -> MidiData (notes, track names, time signatures, tempos).

    A small reader of its own, several times faster than building mido messages, that keeps only
    what the readers need. Note-on with velocity 0 is a note-off; overlapping notes of one pitch and
    channel are matched first-in first-out; channel 10 (drums) is left out. Raises ValueError or
    IndexError on corrupt data (``load`` turns them into ReaderError).
    """
    if data[:4] != b"MThd":
        raise ReaderError("unparseable", "no MThd header: not a standard MIDI file")
    header_len = int.from_bytes(data[4:8], "big")
    _, n_tracks, division = struct.unpack(">HHH", data[8:14])
    if division <= 0 or division & 0x8000:
        raise ReaderError("unparseable", "SMPTE or zero time division is not supported")
    pos = 8 + header_len
    tracks, sigs, tempos, end_tick = [], [], [], 0
    while pos + 8 <= len(data) and len(tracks) < n_tracks:
        chunk, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        pos += 8
        if pos + length > len(data):
            raise ReaderError("unparseable", "truncated MIDI track")
        if chunk == b"MTrk":
            track, last = _parse_track(data, pos, pos + length, sigs, tempos)
            tracks.append(track)
            end_tick = max(end_tick, last)
        pos += length
    if len(tracks) < n_tracks:
        raise ReaderError("unparseable", f"truncated MIDI file: {len(tracks)} of {n_tracks} tracks")
    return MidiData(int(division), tracks, sorted(sigs), sorted(tempos), end_tick)


def _parse_track(data: bytes, i: int, end: int, sigs: list, tempos: list) -> tuple:
    tick, status, name = 0, None, ""
    sounding: dict = {}
    rows = []
    while i < end:
        delta, i = _varlen(data, i)
        tick += delta
        b = data[i]
        if b >= 0x80:
            status = b
            i += 1
        elif status is None:
            raise ValueError("running status without a status byte")
        if status == 0xFF:
            kind = data[i]
            length, i = _varlen(data, i + 1)
            payload = data[i:i + length]
            if len(payload) < length:
                raise ValueError("truncated meta event")
            i += length
            status = None
            if kind == 0x2F:
                break
            if kind == 0x03 and not name:
                name = payload.decode("latin-1")
            elif kind == 0x58 and length >= 2:
                sigs.append((tick, int(payload[0]), 2 ** int(payload[1])))
            elif kind == 0x51 and length == 3:
                tempos.append((tick, int.from_bytes(payload, "big")))
            continue
        if status in (0xF0, 0xF7):
            length, i = _varlen(data, i)
            i += length
            status = None
            continue
        kind, channel = status & 0xF0, status & 0x0F
        if kind in (0xC0, 0xD0):
            i += 1
            continue
        note, velocity = data[i], data[i + 1]
        i += 2
        if note > 127 or velocity > 127:
            raise ValueError("data byte above 127")
        if channel == DRUM_CHANNEL or kind not in (0x80, 0x90):
            continue
        if kind == 0x90 and velocity > 0:
            sounding.setdefault((channel, note), []).append((tick, velocity))
        else:
            started = sounding.get((channel, note))
            if started:
                on, vel = started.pop(0)
                rows.append((note, on, tick, vel))
    if i > end:
        raise ValueError("event runs past the end of its track")
    for (_, pitch), starts in sounding.items():  # notes never switched off end with the track
        rows.extend((pitch, on, tick, vel) for on, vel in starts)
    notes = np.array(sorted(rows, key=lambda r: (r[1], -r[0])), dtype=np.int64).reshape(-1, 4)
    return MidiTrack(name, notes), tick


def ticks_to_seconds(ticks: np.ndarray, data: MidiData) -> np.ndarray:
    """Absolute times in seconds (float64, same shape) of ``ticks`` under the file's tempo map."""
    ticks = np.asarray(ticks, dtype=np.float64)
    changes = [(0, 500000)] + [t for t in data.tempos if t[0] > 0]
    if data.tempos and data.tempos[0][0] == 0:
        changes[0] = (0, data.tempos[0][1])
    # keep the last tempo at any tick
    by_tick = {}
    for tick, tempo in changes:
        by_tick[tick] = tempo
    change_ticks = np.array(sorted(by_tick), dtype=np.float64)
    spt = np.array([by_tick[t] for t in sorted(by_tick)], dtype=np.float64) / 1e6 / data.ticks_per_quarter
    seconds_at = np.concatenate([[0.0], np.cumsum(np.diff(change_ticks) * spt[:-1])])
    k = np.searchsorted(change_ticks, ticks, side="right") - 1
    k = np.clip(k, 0, len(change_ticks) - 1)
    return seconds_at[k] + (ticks - change_ticks[k]) * spt[k]


def _pickup_length(notes: list, bar_length: float, tolerance: float) -> float:
    """Length in beats of the pickup before the first bar line of a tune that starts at t=0.

    abc2midi (which made the CRÉ files) plays the first note of every bar loudest, so the bar phase
    is the most common position, modulo the bar, of the loudest notes (the very first note is left
    out: it is accented whatever its place). Without such accents, a tune length that is not a whole
    number of bars gives the pickup (length modulo the bar).
    """
    velocities = np.array([n[3] for n in notes[1:]])
    phase = None
    if len(velocities) and len(np.unique(velocities)) > 1:
        loud = [n[1] for n in notes[1:] if n[3] == velocities.max()]
        where = snap_to_grid(np.array(loud) % bar_length, tolerance) % bar_length
        values, counts = np.unique(np.round(where, 6), return_counts=True)
        if counts.max() >= 0.5 * len(where):
            phase = float(values[np.argmax(counts)])
    if phase is None:
        last_off = max(n[2] for n in notes)
        phase = float(snap_to_grid(np.array([last_off % bar_length]), tolerance)[0]) % bar_length
    return 0.0 if phase < 1e-6 or bar_length - phase < 1e-6 else phase


def read(path: Union[str, os.PathLike], *, track: Union[str, int, None] = None, chords: str = "none",
         pickup: bool = False, snap_tolerance: float = SNAP_TOLERANCE, piece_id: str = "") -> music_pb2.NoteSequence:
    """Reads the melody of a MIDI file as a tempo-normalised NoteSequence (1 s = 1 quarter beat).

    track: which track holds the melody (see ``MidiData.track``); chords: ``none``, ``highest``,
    ``legato`` or ``skyline`` (see ``readers.common.skyline``); pickup: when the file has a single
    time signature, find the bar phase from the accents or the tune length (``_pickup_length``) and
    treat what comes before the first bar line as a pickup (the CRÉ files start with the anacrusis
    at t=0);
    snap_tolerance: onsets/offsets within this many beats of the grid are snapped onto it.
    Raises ReaderError on unreadable files and files without the melody.
    """
    data = load(path)
    rows = data.track(track)
    if not len(rows):
        raise ReaderError("no_notes")
    tpq = float(data.ticks_per_quarter)
    notes = [NoteEvent(int(r[0]), r[1] / tpq, r[2] / tpq) for r in rows]
    last_off = max(n.end for n in notes)
    sigs = [(t / tpq, num, den) for t, num, den in data.time_signatures]
    bars = regular_bars(sigs, last_off)
    distinct = {(num, den) for _, num, den in sigs}
    if pickup and len(distinct) <= 1 and bars:
        first = bars[0]
        timed = [(n.pitch, n.start - first.start, n.end - first.start, int(r[3])) for n, r in zip(notes, rows)]
        p = _pickup_length(timed, first.nominal, snap_tolerance)
        if p > 0:
            bars = [Bar(first.start, p, first.numerator, first.denominator)] + [
                Bar(b.start + p, b.length, b.numerator, b.denominator) for b in bars]
    return make_sequence(notes, bars, piece_id=piece_id or str(path), snap_tolerance=snap_tolerance,
                         chords=chords)
