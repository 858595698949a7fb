"""Keys of measures, and keeping decoded pitches in a key ("stay in key").

A ``Key`` is a tonic pitch class and a mode (``"D major"``, ``"E dorian"``); its *scale* is the set of
the seven pitch classes of that mode on that tonic, as music21's ``key.Key`` spells them (minor is the
natural minor). Decoding with a key keeps only the pitch tokens whose pitch class is in the scale; the
non-pitch tokens (``rest``, ``hold``, ``start``, ``end``) are always allowed.

Estimating the key of measures (``estimate_key``): the pitch-class histogram of their notes, each
weighted by its length in beats, scored against every tonic in four modes (major, minor, dorian,
mixolydian: the modes of most dance tunes). The key whose scale holds the largest share of the
weighted notes wins; among keys whose scales hold the same share (all seven-note keys with the same
notes, or every key holding a bar of three notes), the one whose Krumhansl-Kessler profile (music21's
``KrumhanslSchmuckler`` weights: the major profile for major and mixolydian, the minor one for minor
and dorian) correlates best with the histogram. So an input's own notes stay allowed wherever a
seven-note scale holds them all, and a D-mixolydian tune keeps its C natural.

Masking: decoding in-process (``explain.Explainer``, ``inference.Runner``) passes the allowed tokens
(``allowed_rows``) to the model's ``decode``, which masks each tick's logits before the argmax, so the
token the decoder feeds back is always allowed (an export is decoded so by this package's model code
holding its weights, as its signatures take no mask). Over a serving client (the explorer, TensorFlow
Serving) ``keep_in_key`` masks the probabilities the ``decode`` signature returns instead: at each
tick the most probable allowed token, while the decoder's feedback stays its own unmasked choice.
``bench/stay_in_key_bench.py`` measures both. Arrays: token ids int32 [B, 24]; probabilities
float32 [B, 24, V]; allowed masks bool [V] (one key) or [B, V] (one key per row).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Optional, Sequence, Union

import numpy as np

from musicvae_xai.representation import MEASURE_TICKS, TICK_POSITIONS, Vocabulary

#: The modes a key may name (music21's ``key.Key`` modes).
MODES = ("major", "minor", "dorian", "phrygian", "lydian", "mixolydian", "locrian")
#: The modes ``estimate_key`` chooses among, each with the Krumhansl-Kessler profile it is scored on.
ESTIMATED_MODES = {"major": "major", "minor": "minor", "dorian": "minor", "mixolydian": "major"}
_KEY_TEXT = re.compile(r"^\s*([A-Ga-g])([#b\-]?)\s*(m|[A-Za-z]+)?\s*$")
#: A tick's length in beats (float64 [24]): the gap to the next tick or the bar line.
_TICK_LENGTHS = np.diff(np.append(TICK_POSITIONS, 4.0))

KeyLike = Union[str, "Key"]


@dataclasses.dataclass(frozen=True)
class Key:
    """A key: tonic pitch class (0 = C .. 11 = B) and mode (one of ``MODES``)."""

    tonic: int
    mode: str

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if not 0 <= int(self.tonic) < 12:
            raise ValueError(f"tonic pitch class must be in 0..11, got {self.tonic}")

    @property
    def pitch_classes(self) -> frozenset:
        """The scale: the seven pitch classes (ints 0..11) of the mode on the tonic."""
        return _scale(int(self.tonic), self.mode)

    @property
    def name(self) -> str:
        """'D major', 'B minor', 'F# mixolydian', 'Bb major': the tonic spelled as in the key
        signature with the fewest accidentals."""
        return f"{_tonic_name(int(self.tonic), self.mode)} {self.mode}"

    def __str__(self) -> str:
        return self.name


@functools.lru_cache(maxsize=None)
def _m21_key(tonic: int, mode: str):
    """The music21 ``key.Key`` of a tonic pitch class and mode, spelled with the fewest accidentals."""
    from music21 import key, pitch

    p = pitch.Pitch(tonic)
    names = {p.name}
    if p.accidental is not None:
        names.add(p.getEnharmonic().name)
    return min((key.Key(n, mode) for n in sorted(names)), key=lambda k: (abs(k.sharps), k.sharps < 0))


@functools.lru_cache(maxsize=None)
def _scale(tonic: int, mode: str) -> frozenset:
    return frozenset(p.pitchClass for p in _m21_key(tonic, mode).pitches)


def _tonic_name(tonic: int, mode: str) -> str:
    return _m21_key(tonic, mode).tonic.name.replace("-", "b")


def parse_key(text: KeyLike) -> Key:
    """A Key from a name: a tonic A-G with an optional ``#`` or ``b``, then a mode (default major;
    ``m`` = minor): ``"D major"``, ``"b minor"``, ``"Em"``, ``"F# mixolydian"``, ``"Bb"``. A ``Key``
    is returned as it is. Raises ValueError (one line naming the text) otherwise."""
    if isinstance(text, Key):
        return text
    if not isinstance(text, str):
        raise ValueError(f"a key must be a name such as 'D major', got {type(text).__name__}")
    match = _KEY_TEXT.match(text) if len(text) <= 40 else None
    mode = (match.group(3) or "major").lower() if match else ""
    mode = "minor" if mode == "m" else mode
    if not match or mode not in MODES:
        raise ValueError(f"key {text[:40]!r}: expected a tonic A-G with an optional # or b, then a mode "
                         f"({', '.join(MODES)}), e.g. 'D major'")
    from music21 import pitch

    accidental = {"#": "#", "b": "-", "-": "-", "": ""}[match.group(2)]
    return Key(pitch.Pitch(match.group(1).upper() + accidental).pitchClass, mode)


def pitch_class_weights(tokens, vocab: Vocabulary) -> np.ndarray:
    """float64 [12]: for token ids int [..., 24] (measures), the total length in beats of the notes of
    each pitch class (C = 0). A note lasts until the next token that is not ``hold`` or the bar line
    (notes tied over a bar line count once per bar)."""
    ids = np.asarray(tokens, np.int64).reshape(-1, MEASURE_TICKS)
    weights = np.zeros(12)
    for row in ids:
        starts = np.flatnonzero(row != vocab.hold_id)
        ends = np.append(starts[1:], MEASURE_TICKS)
        for s, e in zip(starts, ends, strict=True):
            if row[s] < vocab.num_pitches:
                weights[(row[s] + vocab.min_pitch) % 12] += _TICK_LENGTHS[s:e].sum()
    return weights


@functools.lru_cache(maxsize=None)
def _profiles() -> dict:
    """{"major"|"minor": float64 [12]} Krumhansl-Kessler profiles (music21's weights, tonic first)."""
    from music21.analysis import discrete

    ks = discrete.KrumhanslSchmuckler()
    return {m: np.asarray(ks.getWeights(m), np.float64) for m in ("major", "minor")}


def estimate_key(tokens, vocab: Vocabulary) -> Key:
    """The key of measures (token ids int [..., 24], all together): see the module docstring.

    Raises ValueError when the measures hold no note."""
    weights = pitch_class_weights(tokens, vocab)
    total = weights.sum()
    if total <= 0:
        raise ValueError("the measures hold no note to estimate a key from")
    best, best_score = None, None
    for tonic in range(12):
        rotated = np.roll(weights, -tonic)  # tonic first, as the profiles
        for mode, profile in ESTIMATED_MODES.items():
            held = weights[sorted(_scale(tonic, mode))].sum() / total
            corr = float(np.corrcoef(rotated, _profiles()[profile])[0, 1]) if np.ptp(rotated) > 0 else 0.0
            score = (round(held, 9), corr)
            if best_score is None or score > best_score:
                best, best_score = Key(tonic, mode), score
    return best


def estimation_table() -> dict:
    """What ``estimate_key`` scores, as JSON for a port of it (the static site's ``keys.js``):
    {"profiles": {"major"|"minor": [12 floats]}, "keys": [{"name", "tonic", "profile",
    "pitch_classes" [7 ints]}] in the order ``estimate_key`` tries them (the first best wins)}."""
    return {"profiles": {m: p.tolist() for m, p in _profiles().items()},
            "keys": [{"name": Key(t, m).name, "tonic": t, "profile": profile,
                      "pitch_classes": sorted(_scale(t, m))}
                     for t in range(12) for m, profile in ESTIMATED_MODES.items()]}


def allowed_tokens(key: KeyLike, vocab: Vocabulary) -> np.ndarray:
    """bool [V]: True for the pitch tokens whose pitch class is in the key's scale and for every
    non-pitch token."""
    scale = parse_key(key).pitch_classes
    allowed = np.ones(vocab.size, bool)
    pitches = np.arange(vocab.num_pitches) + vocab.min_pitch
    allowed[:vocab.num_pitches] = np.isin(pitches % 12, sorted(scale))
    return allowed


def allowed_rows(keys: Union[KeyLike, Sequence[KeyLike]], rows: int, vocab: Vocabulary) -> np.ndarray:
    """bool [rows, V]: ``allowed_tokens`` of one key for every row, or of one key per row (a sequence
    of ``rows`` keys). Raises ValueError for a sequence of another length."""
    if isinstance(keys, (str, Key)):
        return np.broadcast_to(allowed_tokens(keys, vocab), (rows, vocab.size)).copy()
    keys = list(keys)
    if len(keys) != rows:
        raise ValueError(f"got {len(keys)} keys for {rows} measures; give one key, or one per measure")
    return np.stack([allowed_tokens(k, vocab) for k in keys]) if rows else np.zeros((0, vocab.size), bool)


def keep_in_key(probabilities, allowed) -> np.ndarray:
    """int32 [B, 24]: at each tick the most probable allowed token. probabilities float [B, 24, V];
    allowed bool [V] or [B, V] (at least one token allowed per row)."""
    probs = np.asarray(probabilities, np.float64)
    mask = np.asarray(allowed, bool)
    mask = mask[None, None, :] if mask.ndim == 1 else mask[:, None, :]
    if mask.shape[-1] != probs.shape[-1]:
        raise ValueError(f"the mask has {mask.shape[-1]} tokens, the probabilities {probs.shape[-1]}")
    return np.argmax(np.where(mask, probs, -1.0), axis=-1).astype(np.int32)


def out_of_key(tokens, keys: Union[KeyLike, Sequence[KeyLike]], vocab: Vocabulary) -> tuple:
    """(notes out of key, notes) of token ids int [B, ..., 24]: note onsets (pitch tokens) whose pitch
    class is outside the scale of the key (one key, or one per row of the first axis)."""
    ids = np.asarray(tokens, np.int64)
    flat = ids.reshape(ids.shape[0], -1) if ids.ndim > 1 else ids[None]
    allowed = allowed_rows(keys, len(flat), vocab)
    is_pitch = flat < vocab.num_pitches
    inside = np.take_along_axis(allowed, np.where(is_pitch, flat, vocab.rest_id), axis=1)
    return int((is_pitch & ~inside).sum()), int(is_pitch.sum())


def resolve(key: Optional[KeyLike | Sequence[KeyLike]], tokens, vocab: Vocabulary):
    """The key(s) to keep to: ``key`` parsed (one, or one per row), else ``estimate_key(tokens)``."""
    if key is None:
        if tokens is None:
            raise ValueError("staying in key needs key= (e.g. 'D major'): there is no input to estimate it from")
        return estimate_key(tokens, vocab)
    if isinstance(key, (str, Key)):
        return parse_key(key)
    return [parse_key(k) for k in key]
