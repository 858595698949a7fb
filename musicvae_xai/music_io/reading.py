"""A music file -> the measures of its melody, in a model's vocabulary (no model needed, no TensorFlow).

The one path every file given by a person takes (``Explainer.read_measures``, the explorer's uploads,
the serving client's ``--midi`` input, the analysis's ``--input_file``):

    any registered single-file format (``readers.registry``)  -> melody NoteSequence  (``read_source``)
    -> measures int [M, 24] in ``FULL_RANGE`` ids, skipped bars counted   (``sequence_to_measures``)
    -> the bar numbers asked for, at most ``max_measures``                 (``choose_bars``)
    -> a transposition into the model's pitch range                       (``fit_shift``)
    -> ``FileMeasures``: tokens int32 [M, 24] in the model's ids          (``read_file``)

Every failure is a ``MusicFileError`` whose message is one line naming the path and the reason.

Bars are numbered as a score prints them: the first complete bar is bar 1, a pickup (anacrusis)
before it is bar 0 (``readers.common.first_bar_number``). The API takes and gives these numbers
(``bar_numbers``); 0-based positions (``MeasureExtraction.bar_index``) stay inside.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence, Union

import numpy as np

from musicvae_xai.readers import registry as reader_registry
from musicvae_xai.readers.common import Quantisation, ReaderError, ReadResult, SourceStyle
from musicvae_xai.readers.registry import MELODY_PART
from musicvae_xai.representation import (BAR_SKIP_TEXT, FULL_RANGE, OUT_OF_PITCH_RANGE, Vocabulary,
                                          fit_transposition, sequence_to_measures)

#: ``FileMeasures.shift`` when the measures did not fit the pitch range together and each was
#: transposed on its own (``read_file(..., per_measure=True)``).
PER_MEASURE = "per measure"
#: Why a bar is not usable, for error messages (``representation.BAR_SKIP_TEXT``).
SKIP_TEXT = BAR_SKIP_TEXT


class MusicFileError(ValueError):
    """A music file that cannot be turned into measures; one line naming the path and the reason."""


#: What a caller of the former 0-based ``bars=`` argument is told.
BARS_RENAMED = ("bars= (0-based positions) is now bar_numbers=, the numbers a score prints (the first "
                "complete bar is 1, a pickup 0): bars=[4] of a piece without a pickup is bar_numbers=[5]")


def check_read_options(extra: dict) -> None:
    """Raises TypeError for keyword arguments ``read_file`` does not take, ``BARS_RENAMED`` for ``bars``."""
    if "bars" in extra:
        raise TypeError(BARS_RENAMED)
    if extra:
        raise TypeError(f"unexpected keyword argument {sorted(extra)[0]!r}")


@dataclasses.dataclass
class FileMeasures:
    """The usable 4/4 measures of an input file: tokens int32 [M, 24] (model ids, transposed by
    ``shift`` semitones, or ``PER_MEASURE``), bar_numbers int32 [M] (each measure's bar number as a
    score prints it: the first complete bar is 1, a pickup 0), skipped {reason: bars}, the input's
    ``SourceStyle``, its ``Quantisation`` (None for notated input) and its title from the file's
    own metadata ('' when it has none)."""

    path: str
    tokens: np.ndarray
    bar_numbers: np.ndarray
    shift: Union[int, str]
    skipped: dict
    style: SourceStyle = dataclasses.field(default_factory=SourceStyle)
    quantisation: Optional[Quantisation] = None
    title: str = ""

    @property
    def name(self) -> str:
        """What to call the piece: its title, else its file name."""
        return self.title or os.path.basename(self.path)


def read_source(path: Union[str, os.PathLike], track: Union[str, int, None] = None,
                part_name: str = MELODY_PART, tune: int = 0, legato: bool = True) -> ReadResult:
    """The melody of a single file in any registered format (chosen by its extension), with what the
    reader measured: a ``readers.ReadResult`` (tempo-normalised sequence, quantisation error of played
    MIDI, the source's style).

    track (MIDI): the melody track (None = all tracks, highest note wins); part_name (MusicXML): the
    melody part (else the first part); tune (ABC): index of the tune in the file; legato (played
    MIDI): read a note released shortly before the next onset as lasting until it
    (``readers.common.LEGATO_GAP``; False: as played). Raises
    MusicFileError for a missing, unsupported or unreadable file; files over the per-file limits
    (``readers.limits``) name the limit.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MusicFileError(f"{path}: no such file")
    if os.path.isdir(path):
        raise MusicFileError(f"{path}: is a folder, not a music file")
    fmt = reader_registry.for_path(path)
    if fmt is None:
        ext = os.path.splitext(path)[1].lower()
        raise MusicFileError(f"{path}: unsupported file type {ext or '(none)'!r}; expected one of "
                             f"{', '.join(sorted(reader_registry.extension_map()))}")
    try:
        played = {"legato": legato} if fmt.played_timing else {}  # notated formats have no played timing
        return fmt.function("read_one")(path, track=track, part_name=part_name, tune=tune, **played)
    except LookupError as e:  # a tune number past the end of a tunebook
        raise MusicFileError(f"{path}: {e.args[0] if e.args else e}") from None
    except ReaderError as e:
        raise MusicFileError(f"{path}: cannot read a melody ({e.reason.replace('_', ' ')}: {e.message})") from None
    except OSError as e:
        raise MusicFileError(f"{path}: cannot read ({e.strerror or e})") from None


def no_measure_message(skipped: dict, quantisation: Optional[Quantisation]) -> str:
    """Why a file gave no usable 4/4 measure, for ``<path>: no usable 4/4 measure (...)``. When every
    bar with notes was off the grid and the notes were quantised, it names the largest error."""
    why = ", ".join(f"{v} bar{'s' * (v != 1)} {SKIP_TEXT.get(k, k.replace('_', ' '))}"
                    for k, v in sorted(skipped.items())) or "no bars with notes"
    if quantisation is not None and skipped and set(skipped) <= {"off_grid"} and quantisation.off_grid_onsets:
        why = (f"every bar has onsets further than {quantisation.tolerance:g} beat from the 24-tick grid; "
               f"largest quantisation error {quantisation.max_error:.3f} beat")
    return f"no usable 4/4 measure ({why})"


def ranges(values) -> str:
    """'0-3, 5, 7-9' for ints (sorted first)."""
    values = sorted(int(v) for v in values)
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)


def choose_bars(measures: np.ndarray, numbers: np.ndarray, bar_numbers: Optional[Sequence[int]]) -> tuple:
    """(measures [K, 24], numbers [K]) of the bars numbered ``bar_numbers`` (as a score prints them),
    in the order given (None: all); ``numbers`` int [M] are the bar numbers of ``measures``.

    Raises ValueError (one line, without a path) naming the first bar that is not usable."""
    if bar_numbers is None:
        return measures, numbers
    where = {int(b): i for i, b in enumerate(numbers)}
    missing = [int(b) for b in bar_numbers if int(b) not in where]
    if missing:
        raise ValueError(f"bar {missing[0]} is not a usable 4/4 measure; usable bars: {ranges(numbers)}")
    keep = [where[int(b)] for b in bar_numbers]
    return measures[keep], numbers[keep]


def fit_shift(measures: np.ndarray, vocab: Vocabulary, transpose: Union[int, str] = "auto") -> int:
    """``representation.fit_transposition``, raising MusicFileError when nothing fits."""
    try:
        return fit_transposition(measures, vocab, transpose)
    except ValueError as e:
        raise MusicFileError(str(e)) from None


def _fit_each(measures: np.ndarray, bar_index: np.ndarray, vocab: Vocabulary, skipped: dict) -> tuple:
    """(tokens [K, 24], bar_index [K]) of the measures that fit ``vocab`` each with its own shift; the
    others are counted in ``skipped`` under ``OUT_OF_PITCH_RANGE``."""
    rows, keep = [], []
    for i, m in enumerate(measures):
        try:
            rows.append(vocab.translate(m[None], FULL_RANGE, fit_transposition(m[None], vocab))[0])
            keep.append(i)
        except ValueError:
            skipped[OUT_OF_PITCH_RANGE] = skipped.get(OUT_OF_PITCH_RANGE, 0) + 1
    if not rows:
        raise ValueError(f"no measure fits the model's pitch range {vocab.min_pitch}..{vocab.max_pitch}")
    return np.stack(rows), bar_index[keep]


def measures_of(result: ReadResult, path: str, vocab: Vocabulary, *, bar_numbers: Optional[Sequence[int]] = None,
                transpose: Union[int, str] = "auto", allow_cut_time: bool = False,
                max_measures: Optional[int] = None, per_measure: bool = False) -> FileMeasures:
    """The measures of what a reader made of ``path`` (see ``read_file`` for the options)."""
    extraction = sequence_to_measures(result.sequence, allow_cut_time=allow_cut_time)
    skipped = {k: int(v) for k, v in sorted(extraction.skipped.items())}
    if not len(extraction.measures):
        raise MusicFileError(f"{path}: {no_measure_message(skipped, result.quantisation)}")
    try:
        numbers = extraction.bar_index + int(result.first_bar)  # position in the sequence -> score number
        measures, bar_index = choose_bars(extraction.measures, numbers, bar_numbers)
        if max_measures is not None:
            measures, bar_index = measures[:max_measures], bar_index[:max_measures]
        try:
            shift = fit_transposition(measures, vocab, transpose)
            tokens = vocab.translate(measures, FULL_RANGE, shift)
        except ValueError:
            if not per_measure or transpose != "auto":
                raise
            (tokens, bar_index), shift = _fit_each(measures, bar_index, vocab, skipped), PER_MEASURE
    except ValueError as e:
        raise MusicFileError(f"{path}: {e}") from None
    return FileMeasures(path, np.asarray(tokens, np.int32).reshape(len(bar_index), -1),
                        np.asarray(bar_index, np.int32), shift, skipped, result.style, result.quantisation,
                        result.title)


def read_file(path: Union[str, os.PathLike], vocab: Vocabulary, *, bar_numbers: Optional[Sequence[int]] = None,
              transpose: Union[int, str] = "auto", track: Union[str, int, None] = None,
              part_name: str = MELODY_PART, tune: int = 0, allow_cut_time: bool = False,
              max_measures: Optional[int] = None, per_measure: bool = False, legato: bool = True,
              **removed) -> FileMeasures:
    """The usable 4/4 measures of a file's melody in ``vocab``'s ids, with the file's style, title
    and quantisation error.

    bar_numbers: the bars to keep, numbered as a score prints them (the first complete bar is 1, a
    pickup before it 0; default: every usable bar), in the order given; max_measures:
    keep at most this many (the first); transpose: semitones to shift by, or ``"auto"``: no shift when
    the measures fit the pitch range, else the smallest whole-octave shift that fits, else the
    smallest semitone shift; per_measure (with "auto"): when they do not fit together, transpose each
    measure on its own and count those that fit under no shift as skipped ``out_of_pitch_range``.
    track, part_name, tune: which melody of the file (``read_source``); legato: the legato fill of
    played MIDI (``read_source``); allow_cut_time: admit 2/2 bars. Raises MusicFileError (one line
    naming the path); TypeError for the former ``bars=`` (``BARS_RENAMED``).
    """
    check_read_options(removed)
    path = os.fspath(path)
    return measures_of(read_source(path, track=track, part_name=part_name, tune=tune, legato=legato), path, vocab,
                       bar_numbers=bar_numbers, transpose=transpose, allow_cut_time=allow_cut_time,
                       max_measures=max_measures, per_measure=per_measure)
