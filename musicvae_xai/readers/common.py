"""Shared melody-building helpers for the readers: bars, grid snapping, chord reduction, NoteSequences.

Times here are in quarter-note beats (float). ``make_sequence`` turns notes in beats plus the bars of
a piece into a tempo-normalised NoteSequence (60 qpm, so 1 s = 1 beat) whose time signatures mark
the bar lines the way ``musicvae_xai.representation.sequence_to_measures`` reads them.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, NamedTuple, Sequence

import numpy as np
from note_seq.protobuf import music_pb2

#: Skip reasons a reader may raise, with what they mean.
REASONS = {
    "unparseable": "the file (or one tune of a tunebook) could not be parsed",
    "empty_file": "the file has no bytes",
    "no_melody": "the melody part/track the dataset needs is not in the file",
    "no_notes": "the melody has no notes",
    "not_simple_duple": "the song's metre is triple or compound (POP909 index)",
}

_EPS = 1e-6
#: Grid points inside one beat, plus the next beat (float64 [7]).
_BEAT_GRID = np.array([0.0, 0.25, 1.0 / 3.0, 0.5, 2.0 / 3.0, 0.75, 1.0])


class ReaderError(Exception):
    """A file (or tune) that cannot give a melody. ``reason`` is a key of ``REASONS``."""

    def __init__(self, reason: str, message: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown reader skip reason {reason!r}")
        self.reason = reason
        self.message = message or REASONS[reason]
        super().__init__(f"{reason}: {self.message}")


class NoteEvent(NamedTuple):
    """One melody note: MIDI pitch, onset and offset in quarter-note beats."""

    pitch: int
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Bar:
    """One written bar: where it starts and how long it really is (beats), and its time signature."""

    start: float
    length: float
    numerator: int
    denominator: int

    @property
    def nominal(self) -> float:
        """Length the time signature asks for, in quarter-note beats."""
        return self.numerator * 4.0 / self.denominator


def layout_bars(bars: Sequence[Bar]) -> tuple[float, list[tuple[float, int, int]]]:
    """Time shift and time-signature events that reproduce ``bars`` on the representation's bar grid.

    Returns ``(shift, events)``: add ``shift`` beats to every time so that a first bar shorter than
    its time signature (a pickup) ends on the first bar line, and ``events`` = [(time, numerator,
    denominator)] in shifted time. An event is emitted at the first bar, wherever the time signature
    changes, and wherever a bar does not start where the previous bar's time signature says it
    should (after an incomplete or overfull bar), so such bars are cut short and skipped as
    ``incomplete_bar`` downstream.
    """
    if not bars:
        return 0.0, [(0.0, 4, 4)]
    first = bars[0]
    shift = -first.start + max(0.0, first.nominal - first.length)
    events = [(0.0, first.numerator, first.denominator)]
    current = (first.numerator, first.denominator)
    expected = first.nominal
    for bar in bars[1:]:
        start = bar.start + shift
        sig = (bar.numerator, bar.denominator)
        if abs(start - expected) > 1e-4 or sig != current:
            events.append((start, bar.numerator, bar.denominator))
            current = sig
        expected = start + bar.nominal
    return shift, events


def snap_to_grid(times: np.ndarray, tolerance: float) -> np.ndarray:
    """Moves each time (beats, float64 [N]) onto the 1/4- and 1/3-beat grid if it is within
    ``tolerance`` beats of a grid point; other times are returned unchanged."""
    times = np.asarray(times, dtype=np.float64)
    beat = np.floor(times)
    frac = times - beat
    dist = np.abs(frac[..., None] - _BEAT_GRID)
    nearest = np.argmin(dist, axis=-1)
    ok = np.take_along_axis(dist, nearest[..., None], axis=-1)[..., 0] <= tolerance
    return np.where(ok, beat + _BEAT_GRID[nearest], times)


def next_grid_point(times: np.ndarray) -> np.ndarray:
    """The first grid point strictly after each time (beats, float64 [N])."""
    times = np.asarray(times, dtype=np.float64)
    beat = np.floor(times)
    frac = times - beat
    later = _BEAT_GRID[None, :] > frac[..., None] + 1e-9
    first = np.argmax(later, axis=-1)  # the grid's last point (1.0) is always later
    return beat + _BEAT_GRID[first]


def skyline(notes: Sequence[NoteEvent], mode: str) -> list[NoteEvent]:
    """Reduces overlapping notes.

    mode ``none``: unchanged. ``highest``: of notes starting together keep the highest.
    ``legato``: cut every note at the next later onset (simultaneous onsets stay, so such bars are
    still detected as polyphonic). ``skyline``: both, i.e. at each onset keep the highest note and
    cut it off at the next onset.
    """
    if mode not in ("none", "highest", "legato", "skyline"):
        raise ValueError(f"unknown chord reduction {mode!r}")
    if mode == "none" or not notes:
        return list(notes)
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    start = np.array([n.start for n in notes], dtype=np.float64)
    end = np.array([n.end for n in notes], dtype=np.float64)
    order = np.lexsort((-pitch, start))  # by onset, highest first
    pitch, start, end = pitch[order], start[order], end[order]
    if mode in ("highest", "skyline"):
        first = np.concatenate([[True], np.diff(start) > _EPS])
        pitch, start, end = pitch[first], start[first], end[first]
    if mode in ("legato", "skyline"):
        onsets = start[np.concatenate([[True], np.diff(start) > _EPS])]
        k = np.searchsorted(onsets, start + _EPS, side="left")
        following = np.append(onsets, np.inf)[k]
        end = np.minimum(end, following)
    return [NoteEvent(int(p), float(s), float(e)) for p, s, e in zip(pitch, start, end)]


def make_sequence(notes: Iterable[NoteEvent], bars: Sequence[Bar], *, piece_id: str = "",
                  snap_tolerance: float | None = None, chords: str = "none",
                  title: str = "") -> music_pb2.NoteSequence:
    """Builds the tempo-normalised melody NoteSequence of a piece.

    notes: melody notes in beats (any order); bars: the written bars, in order (see ``layout_bars``);
    snap_tolerance: if given, onsets and offsets within this many beats of a grid point are snapped
    onto it (after the pickup shift, so the grid is the bar's grid); chords: see ``skyline``.
    Notes that end up shorter than zero length or before the first bar are dropped. Raises
    ``ReaderError('no_notes')`` if nothing is left.
    """
    shift, events = layout_bars(bars)
    notes = [n for n in notes if n.end > n.start]
    if not notes:
        raise ReaderError("no_notes")
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    start = np.array([n.start for n in notes], dtype=np.float64) + shift
    end = np.array([n.end for n in notes], dtype=np.float64) + shift
    if snap_tolerance is not None:
        start = snap_to_grid(start, snap_tolerance)
        end = snap_to_grid(end, snap_tolerance)
    keep = (end > start + _EPS) & (start >= -1e-4) & (pitch >= 0) & (pitch <= 127)
    shifted = [NoteEvent(int(p), max(0.0, float(s)), float(e))
               for p, s, e, k in zip(pitch, start, end, keep) if k]
    shifted = skyline(shifted, chords)
    if not shifted:
        raise ReaderError("no_notes")
    seq = music_pb2.NoteSequence()
    seq.id = piece_id
    seq.filename = piece_id
    if title:
        seq.sequence_metadata.title = title
    seq.ticks_per_quarter = 480
    seq.tempos.add(time=0.0, qpm=60.0)
    for time, num, den in events:
        seq.time_signatures.add(time=float(time), numerator=int(num), denominator=int(den))
    for n in sorted(shifted, key=lambda n: (n.start, -n.pitch)):
        seq.notes.add(pitch=n.pitch, velocity=80, start_time=n.start, end_time=n.end)
    seq.total_time = max(n.end for n in shifted)
    return seq


def regular_bars(time_signatures: Sequence[tuple[float, int, int]], end: float) -> list[Bar]:
    """Bars laid out from time-signature events [(time, num, den)] (beats) up to ``end`` beats.

    A bar cut short by the next event gets its real (shorter) length.
    """
    by_time = {}
    for t, num, den in sorted(time_signatures):
        by_time[round(float(t), 6)] = (int(num), int(den))  # the last event at a time wins
    sigs = [(t, num, den) for t, (num, den) in sorted(by_time.items()) if num > 0 and den > 0]
    sigs = sigs or [(0.0, 4, 4)]
    if sigs[0][0] > _EPS:
        sigs = [(0.0, 4, 4)] + sigs
    bars = []
    for k, (t, num, den) in enumerate(sigs):
        stop = sigs[k + 1][0] if k + 1 < len(sigs) else max(end, t + _EPS)
        nominal = num * 4.0 / den
        while t < stop - _EPS:
            bars.append(Bar(t, min(nominal, stop - t) if k + 1 < len(sigs) else nominal, num, den))
            t += nominal
    return bars
