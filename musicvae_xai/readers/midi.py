"""MIDI reader: Standard MIDI Files parsed with mido, quantised in beats (MIDI ticks / ticks per
quarter), so tempo maps never matter.

Used for the CRÉ Irish tunes (first note track, highest note of chords, pickup phase corrected
from the tune length) and the piano-midi.de pieces (skyline of the track "Piano right"), and for
any melody a user brings (``Explainer.encode_file``, the serving client, the explorer's upload):
played or humanised notes are snapped to the 24-tick grid by ``readers.common.quantise``.
``load`` gives the raw per-track notes in ticks for other readers (POP909).
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from typing import Optional, Union

import mido
import numpy as np
from note_seq.protobuf import music_pb2

from musicvae_xai.readers import limits
from musicvae_xai.readers.common import (
    ONSET_TOLERANCE,
    Bar,
    NoteEvent,
    ReaderError,
    ReadResult,
    SourceStyle,
    build_sequence,
    first_bar_number,
    regular_bars,
    snap_to_grid,
)

DRUM_CHANNEL = 9
#: Default onset snap tolerance in beats (``readers.common.ONSET_TOLERANCE``: 1/16 beat).
SNAP_TOLERANCE = ONSET_TOLERANCE


@dataclasses.dataclass
class MidiTrack:
    """One track: its name, its notes as int64 [n, 4] rows (pitch, start_tick, end_tick, velocity),
    its first program change on a melodic channel (None if it has none) and how many drum
    (channel 10) notes it holds (left out of ``notes``)."""

    name: str
    notes: np.ndarray
    program: Optional[int] = None
    drum_notes: int = 0


@dataclasses.dataclass
class MidiData:
    """A parsed MIDI file: ticks per quarter, tracks, time signatures [(tick, num, den)], tempos
    [(tick, microseconds per quarter)], and the last tick of any track."""

    ticks_per_quarter: int
    tracks: list
    time_signatures: list
    tempos: list
    end_tick: int

    @property
    def title(self) -> str:
        """The file's title: the sequence name (the first track's name in a type-1 file, the track
        name of a type-0 file), else the first track name, else ''."""
        return next((t.name.strip() for t in self.tracks if t.name.strip()), "")

    def _no_melody(self) -> ReaderError:
        drums = sum(t.drum_notes for t in self.tracks)
        if drums:
            return ReaderError("no_melody", f"only drum notes (channel 10: {drums} notes), no melody track")
        return ReaderError("no_melody", f"no track has notes ({len(self.tracks)} empty "
                                        f"track{'s' * (len(self.tracks) != 1)})")

    def chosen(self, selector: Union[str, int, None]) -> list:
        """The MidiTracks ``selector`` picks (see ``track``)."""
        with_notes = [t for t in self.tracks if len(t.notes)]
        if selector is None:
            if not with_notes:
                raise self._no_melody()
            return with_notes
        if selector == "first":
            if not with_notes:
                raise self._no_melody()
            return with_notes[:1]
        if isinstance(selector, int):
            if not 0 <= selector < len(self.tracks):
                raise ReaderError("no_melody", f"no track {selector}")
            return [self.tracks[selector]]
        if selector.startswith("re:"):
            pattern = re.compile(selector[3:])
            chosen = [t for t in self.tracks if pattern.search(t.name)]
            if not chosen:
                raise ReaderError("no_melody", f"no track name matches {selector[3:]!r}")
            return chosen
        chosen = [t for t in self.tracks if t.name.strip().lower() == selector.strip().lower()][:1]
        if not chosen:
            raise ReaderError("no_melody", f"no track named {selector!r}")
        return chosen

    def track(self, selector: Union[str, int, None]) -> np.ndarray:
        """Notes int64 [n, 4] of the selected track(s).

        selector: None = every track merged; ``"first"`` = the first track that has notes; an int =
        that track index; ``"re:PATTERN"`` = every track whose name matches the regular expression
        (``re.search``), merged; any other str = the track with that name (case and surrounding
        spaces ignored). Raises ReaderError('no_melody') when nothing matches, or when no track has
        a melodic note (drums only, or empty tracks; the message says which).
        """
        arrays = [t.notes for t in self.chosen(selector) if len(t.notes)]
        if not arrays:
            return np.zeros((0, 4), np.int64)
        merged = np.concatenate(arrays)
        return merged[np.lexsort((-merged[:, 0], merged[:, 1]))]

    def style(self, selector: Union[str, int, None], at_tick: int = 0) -> SourceStyle:
        """Tempo, time signature at ``at_tick``, program and name of the selected melody track(s)."""
        tempo = next((t for tick, t in reversed(self.tempos) if tick <= at_tick), 500000)
        sig = next(((n, d) for tick, n, d in reversed(self.time_signatures) if tick <= at_tick), (4, 4))
        tracks = self.chosen(selector)
        with_notes = [t for t in tracks if len(t.notes)] or tracks
        program = next((t.program for t in with_notes if t.program is not None), 0)
        name = next((t.name.strip() for t in with_notes if t.name.strip()), "")
        return SourceStyle(qpm=round(60e6 / max(tempo, 1), 6), numerator=int(sig[0]), denominator=int(sig[1]),
                           program=int(program), track_name=name)


def load(path: Union[str, os.PathLike]) -> MidiData:
    """Parses a Standard MIDI File with mido. Raises ReaderError for empty, truncated or corrupt
    files, files over ``limits.MAX_BYTES`` (``too_large``) and notes past ``limits.MAX_BEATS``
    (``too_long``, checked on the raw ticks before anything per beat is built)."""
    data = limits.read_file(path)
    if not data:
        raise ReaderError("empty_file")
    return parse_smf(data)


def parse_smf(data: bytes) -> MidiData:
    """Standard MIDI file bytes -> MidiData (notes, track names, programs, time signatures, tempos).

    Note-on with velocity 0 is a note-off; overlapping notes of one pitch and channel are matched
    first-in first-out; notes never switched off end with their track; channel 10 (drums) is
    counted but left out. Times stay in ticks (each track's delta times summed), never seconds.
    """
    if data[:4] != b"MThd":
        raise ReaderError("unparseable", "no MThd header: not a standard MIDI file")
    try:
        mf = mido.MidiFile(file=io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - mido raises OSError, EOFError, ValueError, KeyError... on bad bytes
        raise ReaderError("unparseable", f"corrupt or truncated MIDI data ({type(e).__name__}: {e})") from None
    division = int(mf.ticks_per_beat)
    if division <= 0 or division & 0x8000:
        raise ReaderError("unparseable", "SMPTE or zero time division is not supported")
    tracks, sigs, tempos, end_tick = [], [], [], 0
    for mtrack in mf.tracks:
        track, last = _read_track(mtrack, sigs, tempos)
        tracks.append(track)
        end_tick = max(end_tick, last)
    last_note = max((int(t.notes[:, 2].max()) for t in tracks if len(t.notes)), default=0)
    limits.check_beats(last_note / division, "a note")
    return MidiData(division, tracks, sorted(sigs), sorted(tempos), end_tick)


def _read_track(mtrack, sigs: list, tempos: list) -> tuple:
    tick, name, program, drums = 0, "", None, 0
    sounding: dict = {}
    rows = []
    for msg in mtrack:
        tick += msg.time
        kind = msg.type
        if kind in ("note_on", "note_off"):
            if msg.channel == DRUM_CHANNEL:
                drums += kind == "note_on" and msg.velocity > 0
                continue
            key = (msg.channel, msg.note)
            if kind == "note_on" and msg.velocity > 0:
                sounding.setdefault(key, []).append((tick, msg.velocity))
            elif sounding.get(key):
                on, vel = sounding[key].pop(0)
                rows.append((msg.note, on, tick, vel))
        elif kind == "program_change":
            if program is None and msg.channel != DRUM_CHANNEL:
                program = int(msg.program)
        elif kind == "track_name":
            name = name or midi_text(str(msg.name))
        elif kind == "time_signature":
            sigs.append((tick, int(msg.numerator), int(msg.denominator)))
        elif kind == "set_tempo":
            tempos.append((tick, int(msg.tempo)))
    for (_, pitch), starts in sounding.items():  # notes never switched off end with the track
        rows.extend((pitch, on, tick, vel) for on, vel in starts)
    notes = np.array(sorted(rows, key=lambda r: (r[1], -r[0])), dtype=np.int64).reshape(-1, 4)
    return MidiTrack(name, notes, program, drums), tick


def midi_text(text: str) -> str:
    """A MIDI text as written: mido reads it as Latin-1 (the MIDI default); bytes that form UTF-8
    (what ``music_io.write_midi`` writes for a Cyrillic or Chinese title) are read as UTF-8."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


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


def _pickup_signature(bars: list) -> bool:
    """True when the first bar is one bar of a shorter metre right before another metre (1/4 then
    4/4, say): how DAWs and notation programs export an anacrusis."""
    if len(bars) < 2:
        return False
    first, second = bars[0], bars[1]
    return (first.length < second.nominal - 1e-6 and abs(second.start - first.start - first.length) < 1e-6
            and (first.numerator, first.denominator) != (second.numerator, second.denominator))


def read_result(path: Union[str, os.PathLike], *, track: Union[str, int, None] = None, chords: str = "none",
                pickup: bool = False, snap_tolerance: float = SNAP_TOLERANCE, piece_id: str = "",
                legato: bool = True) -> ReadResult:
    """Reads the melody of a MIDI file: the tempo-normalised NoteSequence (1 s = 1 quarter beat),
    how far its notes were from the grid (``Quantisation``, beats) and the melody's ``SourceStyle``.

    track: which track holds the melody (see ``MidiData.track``); chords: ``none``, ``highest``,
    ``legato`` or ``skyline`` (see ``readers.common.skyline``); pickup: when the file has a single
    time signature, find the bar phase from the accents or the tune length (``_pickup_length``) and
    treat what comes before the first bar line as a pickup (the CRÉ files start with the anacrusis
    at t=0). A file that opens with one bar of a shorter time signature followed by another (a DAW's
    way to write an anacrusis, e.g. 1/4 then 4/4) has that bar read as a pickup of the second.
    snap_tolerance: onsets within this many beats of the grid are snapped onto it, offsets always
    (``readers.common.quantise``). legato: in a played file (an onset off the grid), a note released
    shortly before the next onset lasts until it (``readers.common.LEGATO_GAP``); False reads the
    notes as played. The sequence's title is the file's sequence name (``MidiData.title``).
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
    distinct = {(num, den) for t, num, den in sigs if t < last_off}
    if pickup and len(distinct) <= 1 and bars:
        first = bars[0]
        timed = [(n.pitch, n.start - first.start, n.end - first.start, int(r[3]))
                 for n, r in zip(notes, rows, strict=True)]
        p = _pickup_length(timed, first.nominal, snap_tolerance)
        if p > 0:
            bars = [Bar(first.start, p, first.numerator, first.denominator)] + [
                Bar(b.start + p, b.length, b.numerator, b.denominator) for b in bars]
    elif _pickup_signature(bars):
        bars = [Bar(bars[0].start, bars[0].length, bars[1].numerator, bars[1].denominator)] + bars[1:]
    sequence, quantisation = build_sequence(notes, bars, piece_id=piece_id or str(path),
                                            snap_tolerance=snap_tolerance, chords=chords, title=data.title,
                                            legato=legato)
    style = data.style(track, at_tick=int(rows[0][1]))
    if bars[0].start <= notes[0].start < bars[0].start + bars[0].length:  # the signature bars use
        style = dataclasses.replace(style, numerator=bars[0].numerator, denominator=bars[0].denominator)
    return ReadResult(sequence, quantisation, style, first_bar_number(bars))


def read(path: Union[str, os.PathLike], *, track: Union[str, int, None] = None, chords: str = "none",
         pickup: bool = False, snap_tolerance: float = SNAP_TOLERANCE, piece_id: str = "",
         legato: bool = True) -> music_pb2.NoteSequence:
    """The melody NoteSequence of ``read_result`` (same arguments)."""
    return read_result(path, track=track, chords=chords, pickup=pickup, snap_tolerance=snap_tolerance,
                       piece_id=piece_id, legato=legato).sequence
