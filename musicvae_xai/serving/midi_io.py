"""MIDI files <-> token measures for the serving client (no model needed, only a vocabulary)."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np

from musicvae_xai.representation import FULL_RANGE, MEASURE_TICKS, Vocabulary, fit_transposition


class MidiError(ValueError):
    """A MIDI file that cannot be turned into measures; one line naming the path and the reason."""


def fit_shift(measures: np.ndarray, vocab: Vocabulary, transpose: Union[int, str] = "auto") -> int:
    """``representation.fit_transposition``, raising MidiError when nothing fits."""
    try:
        return fit_transposition(measures, vocab, transpose)
    except ValueError as e:
        raise MidiError(str(e)) from None


def read_measures(path: str, vocab: Vocabulary, bars: Optional[Sequence[int]] = None,
                  transpose: Union[int, str] = "auto", track=None) -> np.ndarray:
    """int32 [M, 24]: the usable 4/4 measures of a MIDI file's melody (highest note of chords), in
    ``vocab``'s ids, optionally only bars ``bars`` (0-based bar indices of the piece)."""
    from musicvae_xai.readers import ReaderError, midi
    from musicvae_xai.representation import sequence_to_measures

    if not os.path.isfile(path):
        raise MidiError(f"{path}: no such file")
    try:
        sequence = midi.read(path, track=track, chords="skyline")
    except ReaderError as e:
        raise MidiError(f"{path}: cannot read a melody ({e})") from None
    extraction = sequence_to_measures(sequence)
    measures, bar_index = extraction.measures, extraction.bar_index
    if not len(measures):
        why = ", ".join(f"{k}: {v}" for k, v in sorted(extraction.skipped.items())) or "no bars with notes"
        raise MidiError(f"{path}: no usable 4/4 measure ({why})")
    if bars:
        where = {int(b): i for i, b in enumerate(bar_index)}
        missing = [int(b) for b in bars if int(b) not in where]
        if missing:
            raise MidiError(f"{path}: bar {missing[0]} is not a usable 4/4 measure; usable bars: "
                            f"{', '.join(str(int(b)) for b in bar_index)}")
        measures = measures[[where[int(b)] for b in bars]]
    try:
        shift = fit_shift(measures, vocab, transpose)
    except MidiError as e:
        raise MidiError(f"{path}: {e}") from None
    return vocab.translate(measures, FULL_RANGE, shift).astype(np.int32)


def write_measures(tokens, vocab: Vocabulary, path: str, qpm: float = 120.0) -> str:
    """Writes token ids [..., 24] as measures back to back to a MIDI file; returns the path."""
    from note_seq import midi_io

    from musicvae_xai.representation import measures_to_sequence

    ids = np.asarray(tokens).reshape(-1, MEASURE_TICKS)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    midi_io.sequence_proto_to_midi_file(measures_to_sequence(ids, vocab, qpm=qpm), path)
    return path
