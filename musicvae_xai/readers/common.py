"""Shared melody-building helpers for the readers: bars, grid snapping, chord reduction, NoteSequences.

Times here are in quarter-note beats (float). ``make_sequence`` turns notes in beats plus the bars of
a piece into a tempo-normalised NoteSequence (60 qpm, so 1 s = 1 beat) whose time signatures mark
the bar lines the way ``musicvae_xai.representation.sequence_to_measures`` reads them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable, NamedTuple, Sequence

import numpy as np
from note_seq.protobuf import music_pb2

from musicvae_xai.readers import limits
from musicvae_xai.readers.errors import REASONS, ReaderError  # noqa: F401 (names of this module)

#: The part a MusicXML reader takes as the melody by default (the Bach chorales' melody).
MELODY_PART = "Soprano"

#: Onsets further than this from the nearest of the 24 ticks of a 4/4 measure (6 per beat, at 0,
#: 1/4, 1/3, 1/2, 2/3, 3/4 of the beat) are left where they are, so their bar is skipped as
#: ``off_grid``: 1/16 beat (31 ms at 120 bpm). Played onsets up to +-20 ms early or late at 120 bpm
#: (0.04 beat) snap to the right tick; offsets always snap (see ``quantise``).
ONSET_TOLERANCE = 1.0 / 16.0

_EPS = 1e-6
#: Grid points inside one beat, plus the next beat (float64 [7]).
_BEAT_GRID = np.array([0.0, 0.25, 1.0 / 3.0, 0.5, 2.0 / 3.0, 0.75, 1.0])


#: Tempo range (quarter notes per minute), time-signature note values and track-name length a
#: ``SourceStyle`` may hold.
STYLE_QPM = (1.0, 1000.0)
STYLE_DENOMINATORS = (1, 2, 4, 8, 16, 32)
STYLE_NAME_CHARS = 200


@dataclasses.dataclass(frozen=True)
class SourceStyle:
    """What a MIDI writer needs to give generated music the look of the file it came from: tempo
    (quarter notes per minute), time signature, General MIDI program (0-127) and track name."""

    qpm: float = 120.0
    numerator: int = 4
    denominator: int = 4
    program: int = 0
    track_name: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SourceStyle":
        """From ``to_dict``'s keys (others ignored); raises ValueError on out-of-range values (also
        numbers too large for their field, e.g. a program of 1e999)."""
        try:
            style = cls(qpm=float(d.get("qpm", 120.0)), numerator=int(d.get("numerator", 4)),
                        denominator=int(d.get("denominator", 4)), program=int(d.get("program", 0)),
                        track_name=str(d.get("track_name", ""))[:STYLE_NAME_CHARS])
        except OverflowError:
            raise ValueError("style holds a number too large for its field") from None
        if style != style.writable():
            raise ValueError(f"style out of range: {style}")
        return style

    def writable(self) -> "SourceStyle":
        """This style with every field in the range ``from_dict`` accepts and a MIDI writer can write
        (tempo clamped to ``STYLE_QPM``, program to 0..127, a time signature with no note value as
        4/4): a file that claims 60,000,000 qpm (1 microsecond per beat) is written back at 1000 qpm."""
        qpm = float(self.qpm) if math.isfinite(float(self.qpm)) else 120.0
        num, den = int(self.numerator), int(self.denominator)
        if num <= 0 or den not in STYLE_DENOMINATORS:
            num, den = 4, 4
        return SourceStyle(qpm=min(max(qpm, STYLE_QPM[0]), STYLE_QPM[1]), numerator=num, denominator=den,
                           program=min(max(int(self.program), 0), 127),
                           track_name=str(self.track_name)[:STYLE_NAME_CHARS])


@dataclasses.dataclass
class ReadResult:
    """What a reader made of one file: the melody NoteSequence (tempo-normalised), how far its notes
    were from the grid (``Quantisation``; None for notated sources, which are on the grid by
    construction), the ``SourceStyle`` a writer should give music made from it, and ``first_bar``:
    the number a score prints for the sequence's first bar (0 for a pickup, see ``first_bar_number``)."""

    sequence: music_pb2.NoteSequence
    quantisation: "Quantisation | None" = None
    style: SourceStyle = dataclasses.field(default_factory=SourceStyle)
    first_bar: int = 1

    def __post_init__(self):
        self.style = self.style.writable()  # what a file claims (any tempo) can always be written back

    @property
    def title(self) -> str:
        """The piece's title from the file's own metadata (ABC ``T:``, MusicXML work or movement
        title, MIDI sequence or first track name); '' when it has none."""
        return self.sequence.sequence_metadata.title


def first_bar_number(bars: Sequence["Bar"]) -> int:
    """The number a score prints for the first of ``bars``: 0 when it is a pickup (shorter than its
    time signature; the first complete bar is bar 1), else 1."""
    return 0 if bars and bars[0].length < bars[0].nominal - _EPS else 1


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


def _nearest_grid_point(times: np.ndarray) -> np.ndarray:
    """The grid point nearest each time (beats, float64 [N]); a tie goes to the later point, as
    note-seq's ``quantize_to_step`` rounds half up."""
    times = np.asarray(times, dtype=np.float64)
    beat = np.floor(times)
    frac = times - beat
    dist = np.abs(frac[..., None] - _BEAT_GRID[::-1])  # reversed: argmin's first hit is the later point
    return beat + _BEAT_GRID[::-1][np.argmin(dist, axis=-1)]


#: Legato fill of played MIDI (``quantise(..., legato=True)``): a note released less than this many
#: beats before the next onset (on the grid, after snapping) is read as lasting until that onset,
#: when the gap is also shorter than the note itself. A performer who lifts each note at 70-90% of
#: its length (a quarter note played as 0.7 beat) means the written note; a rest of half a beat or
#: more, or one at least as long as the note before it, is a written rest and stays.
LEGATO_GAP = 0.5
#: Onsets this close to a tick (beats, 1/192) count as written on the grid: a file whose onsets all
#: are was written by a sequencer, a notation program or this project, and its rests are read as
#: written (no legato fill). 1/192 beat is 2.6 ms at 120 bpm, under any player's timing spread.
GRID_EXACT = 1.0 / 192.0


@dataclasses.dataclass(frozen=True)
class Quantisation:
    """How far a file's notes were from the grid (quarter-note beats, before snapping).

    notes: notes quantised; onset_mean/onset_max: mean and largest distance of an onset from its
    nearest tick; offset_mean/offset_max: the same for offsets; off_grid_onsets: onsets further than
    ``tolerance`` from every tick (left in place, so their bars are skipped as ``off_grid``);
    lengthened: notes the legato fill carried to the next onset (``LEGATO_GAP``); legato: whether the
    fill was asked for (it never applies to a file whose onsets are all on the grid).
    """

    notes: int
    onset_mean: float
    onset_max: float
    offset_mean: float
    offset_max: float
    off_grid_onsets: int
    tolerance: float
    lengthened: int = 0
    legato: bool = False

    @property
    def mean_error(self) -> float:
        """Mean onset quantisation error in beats (the file's headline figure)."""
        return self.onset_mean

    @property
    def max_error(self) -> float:
        """Largest onset quantisation error in beats."""
        return self.onset_max

    @property
    def played(self) -> bool:
        """True when some onset is off the grid by more than ``GRID_EXACT`` (a performance)."""
        return self.onset_max > GRID_EXACT

    def to_dict(self) -> dict:
        return {"notes": self.notes, "mean_error": round(self.onset_mean, 6), "max_error": round(self.onset_max, 6),
                "offset_mean_error": round(self.offset_mean, 6), "offset_max_error": round(self.offset_max, 6),
                "off_grid_onsets": self.off_grid_onsets, "tolerance": self.tolerance,
                "lengthened_notes": self.lengthened, "legato": self.legato}


def quantise(start: np.ndarray, end: np.ndarray, tolerance: float = ONSET_TOLERANCE,
             legato: bool = False) -> tuple:
    """Snaps played notes onto the 24-tick grid, the way note-seq's ``quantize_note_sequence`` does,
    on this project's non-uniform grid (times in beats from a bar line, float64 [N] each).

    Onsets go to the nearest tick (ties to the later one) when within ``tolerance`` beats, else stay
    put (their bar is then skipped as ``off_grid``). Offsets always go to the nearest tick; an offset
    that lands on or before its snapped onset moves to the next tick (note-seq's one-step minimum).
    Legato played with a slight overlap is kept monophonic: an offset that runs past the next later
    onset by at most ``tolerance`` is cut at that onset (note-seq has no such rule; without it, every
    overlapped note would make its bar ``polyphonic``).
    legato: when some onset is more than ``GRID_EXACT`` off the grid (played timing), a snapped note
    whose snapped gap to the next snapped onset is shorter than ``LEGATO_GAP`` and than the note
    itself is lengthened to that onset (``legato_fill``); the count is ``Quantisation.lengthened``.
    Returns ``(start, end, Quantisation)``, the times as float64 [N].
    """
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    if not len(start):
        return start, end, Quantisation(0, 0.0, 0.0, 0.0, 0.0, 0, float(tolerance), 0, bool(legato))
    on_grid = _nearest_grid_point(start)
    on_err = np.abs(on_grid - start)
    snap = on_err <= tolerance
    onsets = np.unique(start)
    following = np.append(onsets, np.inf)[np.searchsorted(onsets, start + _EPS, side="left")]
    overlap = (end > following) & (end - following <= tolerance)
    raw_end = np.where(overlap, following, end)
    off_grid = _nearest_grid_point(raw_end)
    off_err = np.abs(off_grid - end)
    new_start = np.where(snap, on_grid, start)
    next_tick = next_grid_point(new_start)
    new_end = np.where(off_grid > new_start + _EPS, off_grid, next_tick)
    # a cut offset ends exactly at the (snapped) onset that cut it
    cut_at = np.where(overlap, _nearest_grid_point(np.where(np.isfinite(following), following, 0.0)), np.inf)
    new_end = np.where(overlap & (cut_at > new_start + _EPS), np.minimum(new_end, cut_at), new_end)
    report = Quantisation(len(start), float(on_err.mean()), float(on_err.max()), float(off_err.mean()),
                          float(off_err.max()), int((~snap).sum()), float(tolerance), 0, bool(legato))
    if legato and report.played:
        new_end, lengthened = legato_fill(new_start, new_end, snap)
        report = dataclasses.replace(report, lengthened=lengthened)
    return new_start, new_end, report


def legato_fill(start: np.ndarray, end: np.ndarray, on_grid: np.ndarray, gap: float = LEGATO_GAP) -> tuple:
    """Lengthens each note to the next later onset when the silence between them is shorter than
    ``gap`` beats and shorter than the note (times in beats, float64 [N]; on_grid bool [N]: onsets
    that were snapped; only notes whose onset and next onset both were are changed).
    Returns ``(end float64 [N], number of notes lengthened)``."""
    onsets, first = np.unique(start, return_index=True)
    k = np.searchsorted(onsets, start + _EPS, side="left")
    has_next = k < len(onsets)
    following = np.append(onsets, np.inf)[k]
    next_on_grid = np.append(on_grid[first], False)[k]
    silence = following - end
    fill = (has_next & on_grid & next_on_grid & (silence > _EPS) & (silence < gap - _EPS)
            & (silence < end - start - _EPS))
    return np.where(fill, following, end), int(fill.sum())


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
    return [NoteEvent(int(p), float(s), float(e)) for p, s, e in zip(pitch, start, end, strict=False)]


def make_sequence(notes: Iterable[NoteEvent], bars: Sequence[Bar], *, piece_id: str = "",
                  snap_tolerance: float | None = None, chords: str = "none",
                  title: str = "", legato: bool = False) -> music_pb2.NoteSequence:
    """Builds the tempo-normalised melody NoteSequence of a piece (``build_sequence`` without its
    quantisation report)."""
    return build_sequence(notes, bars, piece_id=piece_id, snap_tolerance=snap_tolerance, chords=chords,
                          title=title, legato=legato)[0]


def build_sequence(notes: Iterable[NoteEvent], bars: Sequence[Bar], *, piece_id: str = "",
                   snap_tolerance: float | None = None, chords: str = "none", title: str = "",
                   legato: bool = False) -> tuple:
    """Builds the tempo-normalised melody NoteSequence of a piece; returns ``(sequence, Quantisation
    or None)``.

    notes: melody notes in beats (any order); bars: the written bars, in order (see ``layout_bars``);
    snap_tolerance: if given, the notes are quantised with ``quantise`` (onset tolerance in beats)
    after the pickup shift, so the grid is the bar's grid; legato: with ``snap_tolerance``, read
    notes of played timing as lasting until the next onset when released shortly before it
    (``quantise``); chords: see ``skyline``; title: the sequence's ``sequence_metadata.title``.
    Notes that end up shorter than zero length or before the first bar are dropped. Raises
    ``ReaderError('no_notes')`` if nothing is left, ``ReaderError('too_long')`` past
    ``limits.MAX_BEATS``.
    """

    notes = [n for n in notes if n.end > n.start]
    if not notes:
        raise ReaderError("no_notes")
    limits.check_beats(max(max(n.end for n in notes), bars[-1].start + bars[-1].length if bars else 0.0))
    shift, events = layout_bars(bars)
    pitch = np.array([n.pitch for n in notes], dtype=np.int64)
    start = np.array([n.start for n in notes], dtype=np.float64) + shift
    end = np.array([n.end for n in notes], dtype=np.float64) + shift
    report = None
    if snap_tolerance is not None:
        start, end, report = quantise(start, end, snap_tolerance, legato=legato)
    keep = (end > start + _EPS) & (start >= -1e-4) & (pitch >= 0) & (pitch <= 127)
    shifted = [NoteEvent(int(p), max(0.0, float(s)), float(e))
               for p, s, e, k in zip(pitch, start, end, keep, strict=False) if k]
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
    return seq, report


def regular_bars(time_signatures: Sequence[tuple[float, int, int]], end: float) -> list[Bar]:
    """Bars laid out from time-signature events [(time, num, den)] (beats) up to ``end`` beats.

    A bar cut short by the next event gets its real (shorter) length. Events after ``end`` are
    ignored; ``end`` past ``limits.MAX_BEATS`` raises ReaderError('too_long') before any bar is made.
    """

    limits.check_beats(end)
    time_signatures = [ts for ts in time_signatures if ts[0] < end]
    by_time = {}
    for t, num, den in sorted(time_signatures):
        by_time[round(float(t), 6)] = (int(num), int(den))  # the last event at a time wins
    sigs = [(t, num, den) for t, (num, den) in sorted(by_time.items()) if num > 0 and den > 0]
    sigs = sigs or [(0.0, 4, 4)]
    if sigs[0][0] > _EPS:
        sigs = [(0.0, 4, 4)] + sigs
    count = sum(((sigs[k + 1][0] if k + 1 < len(sigs) else end) - t) / (num * 4.0 / den)
                for k, (t, num, den) in enumerate(sigs))
    if count > limits.MAX_BEATS:  # e.g. a time signature of 1/2**100: tiny bars, each one a loop turn
        raise ReaderError("too_long", f"the time signatures make {count:.3g} bars, over the limit of "
                                      f"{limits.MAX_BEATS} (MUSICVAE_XAI_MAX_BEATS)")
    bars = []
    for k, (t, num, den) in enumerate(sigs):
        stop = sigs[k + 1][0] if k + 1 < len(sigs) else max(end, t + _EPS)
        nominal = num * 4.0 / den
        while t < stop - _EPS:
            bars.append(Bar(t, min(nominal, stop - t) if k + 1 < len(sigs) else nominal, num, den))
            t += nominal
    return bars
