"""Musical attributes of a 24-token measure (docs/METHOD.md section 3), in numpy.

Onsets are the ticks whose token is a pitch; p_1..p_n are the onset pitches in order.

Every function takes int token ids [N, 24] and a ``Vocabulary`` and returns float32 [N]. This module
imports no TensorFlow (the configuration, readers and dataset build use it); the TensorFlow twins,
which a model computes inside its graph, are in ``musicvae_xai.tf_attributes``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from musicvae_xai.representation import MEASURE_TICKS, Vocabulary

RHYTHMIC_COMPLEXITY = "rhythmic_complexity"
NOTE_RANGE = "note_range"
NOTE_DENSITY = "note_density"
AVERAGE_INTERVAL_JUMP = "average_interval_jump"
CONTOUR = "contour"

#: Every attribute the library knows, in canonical order.
ATTRIBUTE_NAMES = (RHYTHMIC_COMPLEXITY, NOTE_RANGE, NOTE_DENSITY, AVERAGE_INTERVAL_JUMP, CONTOUR)
#: The paper's four-attribute setting, on latent dims 0..3.
DEFAULT_FOUR = (RHYTHMIC_COMPLEXITY, NOTE_RANGE, NOTE_DENSITY, AVERAGE_INTERVAL_JUMP)
#: The paper's two-attribute setting, on latent dims 0..1.
DEFAULT_TWO = (RHYTHMIC_COMPLEXITY, NOTE_RANGE)
#: Short labels and units for plots and tables.
LABELS = {
    RHYTHMIC_COMPLEXITY: ("rhythmic complexity", "weighted onset fraction, 0..1"),
    NOTE_RANGE: ("note range", "(max - min pitch) / 26"),
    NOTE_DENSITY: ("note density", "onsets / 24 ticks"),
    AVERAGE_INTERVAL_JUMP: ("average interval jump", "semitones"),
    CONTOUR: ("contour", "(last - first pitch) / 26"),
}



def label_and_unit(name: str) -> tuple:
    """(label, unit) of an attribute for plots, tables and pages: ``LABELS``'s, or for a name the
    library does not know its words and no unit."""
    return LABELS.get(name, (name.replace("_", " "), ""))


def attribute_label(name: str, units: bool = True) -> str:
    """'note density (onsets / 24 ticks)' (``units=False``: 'note density') for an attribute name."""
    label, unit = label_and_unit(name)
    return f"{label} ({unit})" if units and unit else label


_BEAT_WEIGHTS = {0: 0.20, 1: 0.67, 2: 0.25, 3: 0.67}
#: Metrical weight of each of the 24 ticks (float32 [24]).
METRICAL_WEIGHTS = np.array(
    [w for b in range(4) for w in (_BEAT_WEIGHTS[b], 1.0, 2.0, 0.5, 2.0, 1.0)], dtype=np.float32)
#: Normaliser of note range and contour: two octaves and a whole tone, in semitones.
RANGE_NORM = np.float32(26.0)
_CHUNK = 32768


@dataclasses.dataclass(frozen=True)
class Presentation:
    """How an attribute is shown to a musician: ``value * scale`` in ``unit`` (e.g. note density
    0.25 -> 6 notes per bar), with ``decimals`` digits, on a meter over ``display_range`` (in that
    unit), and a plain-language ``description`` for a tooltip. ``unit`` is empty for a 0..1 score: the
    description then says what its ends and some familiar rhythms measure, and ``hint`` says in a few
    words what its ends sound like (shown under its name)."""

    unit: str
    scale: float
    decimals: int
    display_range: tuple
    description: str
    hint: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Musician-facing units and descriptions (the explorer's read-outs). The raw values (``LABELS``'
#: units) stay the ones the models are trained and evaluated on.
PRESENTATION = {
    RHYTHMIC_COMPLEXITY: Presentation(
        "", 1.0, 2, (0.0, 1.0),
        "How busy the rhythm is and how far its notes fall between the beats, on a 0..1 scale. Each note "
        "counts by where it starts: least on beats 1 and 3, more on beats 2 and 4 and on the off-beat "
        "eighths, more again on sixteenths, most on triplets. 0 = no note; four quarter notes \u2248 0.06; "
        "eight eighth notes \u2248 0.14; sixteen sixteenths \u2248 0.42; twelve eighth-note triplets "
        "\u2248 0.64; 1 = a note on every one of the bar's 24 sixteenth and triplet positions.",
        "0 = few notes, on the beat; 1 = busy, between the beats"),
    NOTE_RANGE: Presentation(
        "semitones", float(RANGE_NORM), 1, (0.0, 26.0),
        "The distance from the lowest to the highest note of the bar, in semitones (12 = an octave); 0 for "
        "a bar with fewer than two notes."),
    NOTE_DENSITY: Presentation(
        "notes per bar", float(MEASURE_TICKS), 1, (0.0, float(MEASURE_TICKS)),
        "How many notes start in the bar (a bar of eighth notes has 8, of eighth-note triplets 12; at most "
        "24, one on every sixteenth and triplet position)."),
    AVERAGE_INTERVAL_JUMP: Presentation(
        "semitones", 1.0, 1, (0.0, 12.0),
        "The average leap from one note to the next, in semitones (1 = chromatic steps, 2 = whole steps, "
        "12 = octave leaps); 0 for a bar with fewer than two notes."),
    CONTOUR: Presentation(
        "semitones", float(RANGE_NORM), 1, (-26.0, 26.0),
        "Where the melody ends relative to where it starts, in semitones: positive = rising, negative = "
        "falling."),
}


def validate_names(names: Sequence[str]) -> tuple:
    """Returns ``names`` as a tuple, raising ValueError naming any unknown or repeated attribute."""
    names = tuple(names)
    unknown = [n for n in names if n not in ATTRIBUTE_NAMES]
    if unknown:
        raise ValueError(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(ATTRIBUTE_NAMES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"attribute listed twice in {', '.join(names)}")
    return names


def _prepare(ids, vocab: Vocabulary):
    ids = np.asarray(ids)
    if ids.shape[-1] != MEASURE_TICKS:
        raise ValueError(f"expected token ids of shape [N, {MEASURE_TICKS}], got {ids.shape}")
    onset = ids < vocab.num_pitches
    pitch = (ids + vocab.min_pitch).astype(np.float32)
    return onset, pitch


#: bool [24, 24]: tick s is before tick t (strict upper triangle).
S_BEFORE_T = np.triu(np.ones((MEASURE_TICKS, MEASURE_TICKS), bool), k=1)


def _consecutive(onset: np.ndarray) -> np.ndarray:
    """bool [..., 24, 24]: (s, t) are consecutive onsets, s before t."""
    cum = np.cumsum(onset, axis=-1)
    return (onset[..., :, None] & onset[..., None, :] & S_BEFORE_T
            & ((cum[..., None, :] - cum[..., :, None]) == 1))


def rhythmic_complexity(ids, vocab: Vocabulary) -> np.ndarray:
    onset, _ = _prepare(ids, vocab)
    return (onset.astype(np.float32) @ METRICAL_WEIGHTS / METRICAL_WEIGHTS.sum()).astype(np.float32)


def note_range(ids, vocab: Vocabulary) -> np.ndarray:
    onset, pitch = _prepare(ids, vocab)
    hi = np.where(onset, pitch, -np.inf).max(axis=-1)
    lo = np.where(onset, pitch, np.inf).min(axis=-1)
    n = onset.sum(axis=-1)
    return np.where(n >= 2, (hi - lo) / RANGE_NORM, 0.0).astype(np.float32)


def note_density(ids, vocab: Vocabulary) -> np.ndarray:
    onset, _ = _prepare(ids, vocab)
    return (onset.sum(axis=-1).astype(np.float32) / np.float32(MEASURE_TICKS)).astype(np.float32)


def average_interval_jump(ids, vocab: Vocabulary) -> np.ndarray:
    onset, pitch = _prepare(ids, vocab)
    pairs = _consecutive(onset)
    jumps = np.abs(pitch[..., None, :] - pitch[..., :, None])
    total = np.where(pairs, jumps, np.float32(0)).sum(axis=(-2, -1), dtype=np.float32)
    count = pairs.sum(axis=(-2, -1)).astype(np.float32)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)


def contour(ids, vocab: Vocabulary) -> np.ndarray:
    onset, pitch = _prepare(ids, vocab)
    pairs = _consecutive(onset)
    steps = pitch[..., None, :] - pitch[..., :, None]
    return (np.where(pairs, steps, np.float32(0)).sum(axis=(-2, -1), dtype=np.float32)
            / RANGE_NORM).astype(np.float32)


NUMPY_FUNCTIONS: dict[str, Callable] = {
    RHYTHMIC_COMPLEXITY: rhythmic_complexity,
    NOTE_RANGE: note_range,
    NOTE_DENSITY: note_density,
    AVERAGE_INTERVAL_JUMP: average_interval_jump,
    CONTOUR: contour,
}


def compute(ids, vocab: Vocabulary, names: Sequence[str] = DEFAULT_FOUR) -> np.ndarray:
    """float32 [N, K]: the named attributes of token ids [N, 24], in the order given."""
    names = validate_names(names)
    ids = np.asarray(ids).reshape(-1, MEASURE_TICKS)
    out = np.zeros((len(ids), len(names)), np.float32)
    # In chunks: the interval attributes build [chunk, 24, 24] pair tensors.
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for k, name in enumerate(names):
            out[start:start + len(chunk), k] = NUMPY_FUNCTIONS[name](chunk, vocab)
    return out
