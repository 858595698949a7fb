"""One 4/4 measure as 24 tokens, and conversion to and from note-seq NoteSequences.

The grid: 4 beats x 6 ticks. Inside a beat the ticks sit at 0, 1/4, 1/3, 1/2, 2/3 and 3/4 of the
beat, so both sixteenths and eighth-note triplets fit. The token at a tick is the MIDI pitch that
starts there, ``rest`` if a rest starts there, ``hold`` if the previous note or rest goes on, and
``start``/``end`` before the first and after the last note of a piece.

Time convention shared by every reader (see ``musicvae_xai.readers``): a melody NoteSequence is
*tempo-normalised*: it has a single tempo of 60 qpm, so one second is one quarter-note beat, and bar
lines are given by its ``time_signatures`` (each time-signature event starts a bar). Readers shift
pieces with a pickup so that the first full bar starts on a bar line; the incomplete bar before it is
then padded with ``start`` tokens.
"""

from __future__ import annotations

import collections
import dataclasses
from fractions import Fraction
from typing import Iterable, Sequence, Union

import numpy as np
from note_seq.protobuf import music_pb2

BEATS_PER_MEASURE = 4
TICKS_PER_BEAT = 6
MEASURE_TICKS = BEATS_PER_MEASURE * TICKS_PER_BEAT  # 24
#: Onset of each tick inside a beat, in beats.
TICK_OFFSETS = (Fraction(0), Fraction(1, 4), Fraction(1, 3), Fraction(1, 2), Fraction(2, 3), Fraction(3, 4))
#: Onset of each of the 24 ticks of a measure, in beats (float64 [24]).
TICK_POSITIONS = np.array([b + float(o) for b in range(BEATS_PER_MEASURE) for o in TICK_OFFSETS])
#: Tick onsets of one measure plus the bar line that ends it (float64 [25]).
_TICK_EDGES = np.append(TICK_POSITIONS, float(BEATS_PER_MEASURE))

REST, HOLD, START, END = "rest", "hold", "start", "end"
SPECIAL_TOKENS = (REST, HOLD, START, END)
Item = Union[int, str]

#: Default tolerance, in beats, for a time to count as on the grid.
GRID_TOLERANCE = 1e-3

#: The pitch range of the default vocabulary (MIDI pitches, inclusive): every run, dataset and
#: serving client uses it unless told otherwise.
DEFAULT_MIN_PITCH, DEFAULT_MAX_PITCH = 55, 84

#: A bar that fits a vocabulary's pitch range under no transposition (datasets, uploads).
OUT_OF_PITCH_RANGE = "out_of_pitch_range"
#: Why a bar is not a usable measure, with the words of error messages: the ``skipped`` keys of
#: ``sequence_to_measures``, then ``OUT_OF_PITCH_RANGE``.
BAR_SKIP_TEXT = {
    "not_4_4": "not in 4/4",
    "incomplete_bar": "cut short by a time-signature change",
    "polyphonic": "with overlapping notes",
    "off_grid": "with notes off the 24-tick grid",
    "empty": "with no note onset",
    OUT_OF_PITCH_RANGE: "outside the model's pitch range",
}


class Vocabulary:
    """Deterministic token vocabulary: MIDI pitches ``min_pitch..max_pitch`` then rest, hold, start, end.

    Ids ``0 .. P-1`` are the pitches in ascending order (``P = max_pitch - min_pitch + 1``), then
    ``rest = P``, ``hold = P + 1``, ``start = P + 2``, ``end = P + 3``. ``size = P + 4``.
    """

    def __init__(self, min_pitch: int = DEFAULT_MIN_PITCH, max_pitch: int = DEFAULT_MAX_PITCH):
        min_pitch, max_pitch = int(min_pitch), int(max_pitch)
        if not 0 <= min_pitch <= max_pitch <= 127:
            raise ValueError(f"need 0 <= min_pitch <= max_pitch <= 127, got {min_pitch}..{max_pitch}")
        self.min_pitch = min_pitch
        self.max_pitch = max_pitch
        self.num_pitches = max_pitch - min_pitch + 1
        self.rest_id = self.num_pitches
        self.hold_id = self.num_pitches + 1
        self.start_id = self.num_pitches + 2
        self.end_id = self.num_pitches + 3
        self.size = self.num_pitches + 4
        self._special = {REST: self.rest_id, HOLD: self.hold_id, START: self.start_id, END: self.end_id}

    def __repr__(self) -> str:
        return f"Vocabulary(min_pitch={self.min_pitch}, max_pitch={self.max_pitch})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and (self.min_pitch, self.max_pitch) == (
            other.min_pitch, other.max_pitch)

    def __hash__(self) -> int:
        return hash((self.min_pitch, self.max_pitch))

    def to_dict(self) -> dict:
        return {"min_pitch": self.min_pitch, "max_pitch": self.max_pitch}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocabulary":
        return cls(int(d["min_pitch"]), int(d["max_pitch"]))

    def tokens(self) -> list:
        """Every item in id order: pitches (int) then the four special strings."""
        return list(range(self.min_pitch, self.max_pitch + 1)) + list(SPECIAL_TOKENS)

    def encode_item(self, item: Item) -> int:
        if isinstance(item, str):
            if item not in self._special:
                raise ValueError(f"unknown token {item!r}; expected a MIDI pitch or one of {SPECIAL_TOKENS}")
            return self._special[item]
        pitch = int(item)
        if not self.min_pitch <= pitch <= self.max_pitch:
            raise ValueError(f"pitch {pitch} outside vocabulary range {self.min_pitch}..{self.max_pitch}")
        return pitch - self.min_pitch

    def decode_id(self, token_id: int) -> Item:
        token_id = int(token_id)
        if not 0 <= token_id < self.size:
            raise ValueError(f"token id {token_id} outside vocabulary of size {self.size}")
        if token_id < self.num_pitches:
            return self.min_pitch + token_id
        return SPECIAL_TOKENS[token_id - self.num_pitches]

    def encode(self, items: Iterable[Item]) -> np.ndarray:
        """Items (int MIDI pitch or 'rest'/'hold'/'start'/'end') -> int32 ids, same shape as a list."""
        return np.array([self.encode_item(i) for i in items], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list:
        """int ids [N] -> items (int pitch or special string)."""
        return [self.decode_id(i) for i in np.asarray(ids).reshape(-1)]

    def is_pitch(self, ids: np.ndarray) -> np.ndarray:
        """bool mask of the ids that are pitches, same shape as ``ids``."""
        return np.asarray(ids) < self.num_pitches

    def pitches(self, ids: np.ndarray) -> np.ndarray:
        """MIDI pitch of each id (int32, same shape); -1 where the id is not a pitch."""
        ids = np.asarray(ids)
        return np.where(ids < self.num_pitches, ids + self.min_pitch, -1).astype(np.int32)

    def translate(self, ids: np.ndarray, source: "Vocabulary", shift: int = 0) -> np.ndarray:
        """Re-express ids of ``source`` in this vocabulary, transposing pitches by ``shift`` semitones.

        Raises ValueError if a shifted pitch falls outside this vocabulary.
        """
        ids = np.asarray(ids, dtype=np.int32)
        is_pitch = ids < source.num_pitches
        pitch = ids + source.min_pitch + shift
        if np.any(is_pitch & ((pitch < self.min_pitch) | (pitch > self.max_pitch))):
            raise ValueError("pitch outside vocabulary range after transposition")
        special = ids - source.num_pitches + self.num_pitches
        return np.where(is_pitch, pitch - self.min_pitch, special).astype(np.int32)


#: A vocabulary over every MIDI pitch, used for measures before they are fitted into a model's range.
FULL_RANGE = Vocabulary(0, 127)


def fit_transposition(measures: np.ndarray, vocab: Vocabulary, transpose: Union[int, str] = "auto") -> int:
    """Semitones that move the pitches of ``measures`` (int ids in ``FULL_RANGE``, any shape) into
    ``vocab``'s range: ``transpose`` itself when it is an int (checked), else 0 if they already fit,
    else the smallest octave shift, else the smallest semitone shift. Measures without pitches: 0.

    Raises ValueError (one line, without a path: callers add theirs) when nothing fits.
    """
    measures = np.asarray(measures)
    pitches = measures[FULL_RANGE.is_pitch(measures)]
    if transpose != "auto" and (isinstance(transpose, bool) or not isinstance(transpose, (int, np.integer))):
        raise ValueError(f"transpose must be an int or 'auto', got {transpose!r}")
    if not len(pitches):
        return 0 if transpose == "auto" else int(transpose)
    lo, hi = int(pitches.min()), int(pitches.max())

    def fits(shift: int) -> bool:
        return vocab.min_pitch <= lo + shift and hi + shift <= vocab.max_pitch

    if transpose != "auto":
        if not fits(int(transpose)):
            raise ValueError(f"pitches {lo}..{hi} shifted by {int(transpose)} leave the model's range "
                             f"{vocab.min_pitch}..{vocab.max_pitch}")
        return int(transpose)
    for candidates in ([0], sorted(range(-120, 121, 12), key=abs), sorted(range(-127, 128), key=abs)):
        for shift in candidates:
            if fits(shift):
                return shift
    raise ValueError(f"the measures span pitches {lo}..{hi} ({hi - lo} semitones), wider than the model's "
                     f"range {vocab.min_pitch}..{vocab.max_pitch}; choose fewer bars")


def tick_index(position: float, tolerance: float = GRID_TOLERANCE) -> int | None:
    """Index 0..24 of the grid point at ``position`` beats from the bar line (24 = the next bar line).

    Returns None when ``position`` is not within ``tolerance`` beats of a grid point.
    """
    i = int(np.argmin(np.abs(_TICK_EDGES - position)))
    return i if abs(_TICK_EDGES[i] - position) <= tolerance else None


@dataclasses.dataclass
class MeasureExtraction:
    """Result of cutting a melody into measures.

    measures: int32 [M, 24] token ids in ``FULL_RANGE``; bar_index: int32 [M] index of each kept bar
    in the piece; skipped: reason -> number of bars dropped for it.
    """

    measures: np.ndarray
    bar_index: np.ndarray
    skipped: collections.Counter


def _bars(sequence: music_pb2.NoteSequence, allow_cut_time: bool, end_time: float):
    """Yields (bar_start, bar_length_beats, is_four_four) for every bar of a tempo-normalised melody."""
    sigs = sorted(sequence.time_signatures, key=lambda t: t.time)
    if not sigs:
        sigs = [music_pb2.NoteSequence.TimeSignature(time=0.0, numerator=4, denominator=4)]
    for k, sig in enumerate(sigs):
        section_end = sigs[k + 1].time if k + 1 < len(sigs) else end_time
        length = sig.numerator * 4.0 / sig.denominator
        four = (sig.numerator, sig.denominator) == (4, 4) or (
            allow_cut_time and (sig.numerator, sig.denominator) == (2, 2))
        t = sig.time
        while t < section_end - 1e-6:
            yield t, length, four
            t += length


def sequence_to_measures(sequence: music_pb2.NoteSequence, *, allow_cut_time: bool = False,
                         tolerance: float = GRID_TOLERANCE) -> MeasureExtraction:
    """Cuts a tempo-normalised monophonic melody into 24-token measures (ids in ``FULL_RANGE``).

    Every bar is kept or counted under one skip reason: ``not_4_4``, ``incomplete_bar`` (a bar cut
    short by the next time signature), ``polyphonic`` (two notes sound at once), ``off_grid`` (an
    onset or offset off the tick grid), ``empty`` (no note starts in it). Ticks before the first note
    of the piece are ``start``, after the last note ``end``; a note crossing a bar line continues as
    ``hold`` at the start of the next measure.
    """
    notes = sorted((n for n in sequence.notes if not n.is_drum and n.end_time > n.start_time),
                   key=lambda n: (n.start_time, -n.pitch))
    skipped: collections.Counter = collections.Counter()
    measures, bar_index = [], []
    if not notes:
        return MeasureExtraction(np.zeros((0, MEASURE_TICKS), np.int32), np.zeros((0,), np.int32), skipped)
    first_on = notes[0].start_time
    last_off = max(n.end_time for n in notes)
    end_time = max(sequence.total_time, last_off)
    starts = np.array([n.start_time for n in notes])
    ends = np.array([n.end_time for n in notes])
    for b, (bar_start, length, four) in enumerate(_bars(sequence, allow_cut_time, end_time)):
        bar_end = bar_start + length
        if bar_end <= first_on + 1e-6 or bar_start >= last_off - 1e-6:
            continue  # padding-only bars before the first or after the last note
        if not four:
            skipped["not_4_4"] += 1
            continue
        next_sig = [t.time for t in sequence.time_signatures if bar_start + 1e-6 < t.time < bar_end - 1e-6]
        if next_sig:
            skipped["incomplete_bar"] += 1
            continue
        inside = np.nonzero((starts < bar_end - 1e-6) & (ends > bar_start + 1e-6))[0]
        tokens = _bar_tokens(notes, inside, bar_start, first_on, last_off, tolerance)
        if isinstance(tokens, str):
            skipped[tokens] += 1
            continue
        measures.append(tokens)
        bar_index.append(b)
    arr = np.array(measures, dtype=np.int32).reshape(-1, MEASURE_TICKS)
    return MeasureExtraction(arr, np.array(bar_index, dtype=np.int32), skipped)


def _bar_tokens(notes, inside, bar_start, first_on, last_off, tolerance):
    """Token ids [24] of one bar, or the skip reason as a string."""
    vocab = FULL_RANGE
    tokens = np.full(MEASURE_TICKS, vocab.rest_id, np.int32)
    covered = np.zeros(MEASURE_TICKS, bool)  # ticks that belong to a note
    onset = np.zeros(MEASURE_TICKS, bool)
    has_onset = False
    for i in inside:
        n = notes[i]
        on = n.start_time - bar_start
        off = n.end_time - bar_start
        t_on = 0 if on <= 0 else tick_index(on, tolerance)
        t_off = MEASURE_TICKS if off >= BEATS_PER_MEASURE else tick_index(off, tolerance)
        if t_on is None or t_off is None:
            return "off_grid"
        if t_off <= t_on:
            return "off_grid"  # a note shorter than one tick
        if covered[t_on:t_off].any():
            return "polyphonic"
        covered[t_on:t_off] = True
        if on >= -tolerance:
            tokens[t_on] = n.pitch
            onset[t_on] = True
            has_onset = True
        else:
            tokens[t_on] = vocab.hold_id
        tokens[t_on + 1:t_off] = vocab.hold_id
    if not has_onset:
        return "empty"
    # Silence: rest at its first tick, hold after; start/end padding outside the piece.
    prev_silent = False
    for t in range(MEASURE_TICKS):
        if covered[t]:
            prev_silent = False
            continue
        pos = bar_start + TICK_POSITIONS[t]
        if pos < first_on - tolerance:
            tokens[t] = vocab.start_id
        elif pos >= last_off - tolerance:
            tokens[t] = vocab.end_id
        else:
            tokens[t] = vocab.hold_id if prev_silent else vocab.rest_id
        prev_silent = True
    return tokens


def measures_to_sequence(measures: Union[np.ndarray, Sequence[Sequence[int]]], vocab: Vocabulary,
                         qpm: float = 120.0, velocity: int = 90) -> music_pb2.NoteSequence:
    """Token ids [M, 24] (or [24]) -> a 4/4 NoteSequence at ``qpm``, measures back to back.

    A pitch token starts a note; ``hold`` extends whatever sounds; any other token ends it. A
    ``hold`` with nothing sounding is silence.
    """
    ids = np.asarray(measures, dtype=np.int64).reshape(-1, MEASURE_TICKS)
    spb = 60.0 / qpm
    seq = music_pb2.NoteSequence()
    seq.ticks_per_quarter = 220
    seq.tempos.add(time=0.0, qpm=qpm)
    seq.time_signatures.add(time=0.0, numerator=4, denominator=4)
    current = None  # (pitch, start_beat)
    flat = ids.reshape(-1)
    for k, tok in enumerate(flat):
        beat = (k // MEASURE_TICKS) * BEATS_PER_MEASURE + TICK_POSITIONS[k % MEASURE_TICKS]
        if tok == vocab.hold_id:
            continue
        if current is not None:
            seq.notes.add(pitch=current[0], velocity=velocity, start_time=current[1] * spb, end_time=beat * spb)
            current = None
        if tok < vocab.num_pitches:
            current = (int(tok) + vocab.min_pitch, beat)
        elif tok >= vocab.size or tok < 0:
            raise ValueError(f"token id {int(tok)} outside vocabulary of size {vocab.size}")
    total = len(ids) * BEATS_PER_MEASURE
    if current is not None:
        seq.notes.add(pitch=current[0], velocity=velocity, start_time=current[1] * spb, end_time=total * spb)
    seq.total_time = total * spb
    return seq


def tempo_normalised(sequence: music_pb2.NoteSequence) -> bool:
    """True when ``sequence`` follows the readers' convention (one tempo of 60 qpm, or none)."""
    return all(abs(t.qpm - 60.0) < 1e-6 for t in sequence.tempos)
