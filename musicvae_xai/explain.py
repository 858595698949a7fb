"""The library API for explaining a trained run, from a notebook or a script.

    from musicvae_xai.explain import Explainer
    ex = Explainer.from_run_dir("runs/quickstart")
    enc = ex.encode_file("tune.mid", bars=[4])           # one 4/4 bar of a MIDI/MusicXML/ABC file
    enc.z                                                # float32 [1, Z]
    tr = ex.traverse(enc, "note_density", steps=9)       # sweep the control meant for note density
    tr.attributes[0, :, tr.attribute_index("note_density")]   # measured along the sweep
    ex.write_midi(tr.tokens[0], "density_sweep.mid")     # the 9 decoded measures back to back
    seq = ex.to_sequence(ex.decode(enc.z, enc.controls)) # a note-seq NoteSequence

Works with either model through the ``MusicVAE`` interface: a control is a regularised latent dim or
an attribute input of the decoder, and the ``controls`` a decoder may need travel with each
``Encoding``. Bad input (a missing file, a file with no usable 4/4 measure, a bar that is not
usable, pitches that do not fit the model's range) raises ``ExplainError``: one line naming the path
and the reason.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence, Union

import numpy as np
from note_seq.protobuf import music_pb2

from musicvae_xai import inference, representation
from musicvae_xai.models.base import Control
from musicvae_xai.representation import FULL_RANGE, MEASURE_TICKS

#: File types read by ``read_measures``: extension -> reader.
READERS = {".mid": "midi", ".midi": "midi", ".xml": "musicxml", ".mxl": "musicxml", ".musicxml": "musicxml",
           ".abc": "abc"}


#: Why a bar is not usable, for error messages (keys of ``sequence_to_measures``'s ``skipped``).
SKIP_TEXT = {
    "not_4_4": "not in 4/4",
    "incomplete_bar": "cut short by a time-signature change",
    "polyphonic": "with overlapping notes",
    "off_grid": "with notes off the 24-tick grid",
    "empty": "with no note onset",
}


class ExplainError(ValueError):
    """Bad input to the explanation API; the message is one line naming the path and the reason."""


@dataclasses.dataclass
class FileMeasures:
    """The usable 4/4 measures of a file.

    tokens: int32 [M, 24] ids in the model's vocabulary (transposed by ``shift`` semitones to fit it);
    bars: int32 [M] 0-based index of each measure's bar in the piece (a pickup is bar 0);
    skipped: reason -> number of bars that could not be used (see ``sequence_to_measures``).
    """

    path: str
    tokens: np.ndarray
    bars: np.ndarray
    shift: int
    skipped: dict


@dataclasses.dataclass
class Encoding:
    """Measures and their codes: tokens int32 [B, 24]; z (sampled, or the mean), z_mean, z_scale float32
    [B, Z]; controls float32 [B, K] the decoder needs (None for a model that needs none); source: the
    file the measures came from, if any."""

    tokens: np.ndarray
    z: np.ndarray
    z_mean: np.ndarray
    z_scale: np.ndarray
    controls: Optional[np.ndarray]
    source: Optional[FileMeasures] = None

    def __len__(self) -> int:
        return len(self.tokens)


@dataclasses.dataclass
class Traversal:
    """A control swept from B codes: values float32 [S]; tokens int32 [B, S, 24] decoded at each value;
    attributes float32 [B, S, K] measured on them, in ``attribute_names`` order; start: float32 [B],
    where each code sat on the control before the sweep."""

    control: Control
    values: np.ndarray
    tokens: np.ndarray
    attributes: np.ndarray
    attribute_names: tuple
    start: np.ndarray

    def attribute_index(self, name: str) -> int:
        if name not in self.attribute_names:
            raise ValueError(f"attribute {name!r} was not measured; measured: {', '.join(self.attribute_names)}")
        return self.attribute_names.index(name)


class Explainer:
    """A trained model plus what is needed to feed it files and turn its output into music."""

    def __init__(self, config, model, batch_size: int = inference.DEFAULT_BATCH_SIZE):
        self.config = config
        self.model = model
        self.runner = inference.Runner(model, batch_size)
        self.vocabulary = self.runner.vocabulary

    @classmethod
    def from_run_dir(cls, run_dir: str, expect_finished: bool = True,
                     batch_size: int = inference.DEFAULT_BATCH_SIZE) -> "Explainer":
        """Loads a run from its directory (ConfigError, one line, when it has no finished checkpoint)."""
        config, model = inference.load_run(run_dir, expect_finished=expect_finished)
        return cls(config, model, batch_size)

    @property
    def controls(self) -> list:
        return self.runner.controls

    @property
    def attribute_names(self) -> tuple:
        return self.runner.attribute_names

    # -- files -> measures ---------------------------------------------------------------------
    def read_measures(self, path: Union[str, os.PathLike], bars: Optional[Sequence[int]] = None,
                      transpose: Union[int, str] = "auto", track: Union[str, int, None] = None,
                      part_name: str = "Soprano", tune: int = 0) -> FileMeasures:
        """The usable 4/4 measures of a MIDI (.mid/.midi), MusicXML (.xml/.mxl/.musicxml) or ABC file.

        bars: 0-based bar indices to keep (default: every usable bar), in the order given.
        transpose: semitones to shift by, or ``"auto"``: no shift when the measures fit the model's
        pitch range, else the smallest whole-octave shift that fits, else the smallest semitone shift.
        track (MIDI): the melody track (None = all tracks, highest note wins); part_name (MusicXML):
        the melody part (else the first part); tune (ABC): index of the tune in the file.
        """
        path = os.fspath(path)
        sequence = read_melody(path, track=track, part_name=part_name, tune=tune)
        extraction = representation.sequence_to_measures(sequence)
        skipped = dict(sorted(extraction.skipped.items()))
        if not len(extraction.measures):
            why = ", ".join(f"{v} bar{'s' * (v != 1)} {SKIP_TEXT.get(k, k.replace('_', ' '))}"
                            for k, v in skipped.items())
            raise ExplainError(f"{path}: no usable 4/4 measure ({why or 'no bars with notes'})")
        measures, bar_index = extraction.measures, extraction.bar_index
        if bars is not None:
            where = {int(b): i for i, b in enumerate(bar_index)}
            missing = [int(b) for b in bars if int(b) not in where]
            if missing:
                raise ExplainError(f"{path}: bar {missing[0]} is not a usable 4/4 measure; usable bars: "
                                   f"{_ranges(bar_index)}")
            keep = [where[int(b)] for b in bars]
            measures, bar_index = measures[keep], bar_index[keep]
        shift = self._fit_shift(path, measures, transpose)
        tokens = self.vocabulary.translate(measures, FULL_RANGE, shift)
        return FileMeasures(path, tokens.astype(np.int32), bar_index.astype(np.int32), shift, skipped)

    def _fit_shift(self, path: str, measures: np.ndarray, transpose: Union[int, str]) -> int:
        try:
            return representation.fit_transposition(measures, self.vocabulary, transpose)
        except ValueError as e:
            raise ExplainError(f"{path}: {e}") from None

    # -- encoding and decoding -----------------------------------------------------------------
    def encode(self, tokens, sample_seed: Optional[int] = None, source: Optional[FileMeasures] = None) -> Encoding:
        """Encodes token ids [B, 24] (or [24]); z is the posterior mean, or a sample when ``sample_seed``
        is given."""
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        tokens = self.runner.check_tokens(tokens)
        z_mean, z_scale = self.runner.encode(tokens)
        z = z_mean if sample_seed is None else inference.sample_latent(z_mean, z_scale, sample_seed)
        return Encoding(tokens, z, z_mean, z_scale, self.runner.default_controls(tokens), source)

    def encode_file(self, path: Union[str, os.PathLike], bars: Optional[Sequence[int]] = None,
                    sample_seed: Optional[int] = None, **read_options) -> Encoding:
        """``read_measures`` then ``encode``; the Encoding's ``source`` says which bars and shift."""
        measures = self.read_measures(path, bars=bars, **read_options)
        return self.encode(measures.tokens, sample_seed=sample_seed, source=measures)

    def decode(self, z, controls=None) -> np.ndarray:
        """Greedy decoding of z float [B, Z] (or [Z]) -> token ids int32 [B, 24]. A model whose decoder
        takes controls needs them ([B, K], e.g. ``Encoding.controls``)."""
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        if controls is not None:
            controls = np.asarray(controls, np.float32).reshape(len(z), -1)
        return self.runner.decode(z, controls)

    def reconstruct(self, encoding: Encoding) -> np.ndarray:
        """Token ids int32 [B, 24] decoded from an Encoding (its z and controls)."""
        return self.decode(encoding.z, encoding.controls)

    def attributes(self, tokens, names: Optional[Sequence[str]] = None) -> np.ndarray:
        """float32 [..., K]: the named attributes (default: the model's) of token ids [..., 24]."""
        return self.runner.attributes(tokens, names)

    # -- controls ------------------------------------------------------------------------------
    def control(self, key) -> Control:
        """A control by index, name (``z[0]``) or the attribute it is meant to move."""
        return self.runner.find_control(key)[1]

    def traverse(self, start: Union[Encoding, np.ndarray], control, values=None, steps: int = 9,
                 controls=None, attribute_names: Optional[Sequence[str]] = None) -> Traversal:
        """Sweeps ``control`` from each code of ``start`` with everything else fixed, decodes and measures.

        start: an Encoding, or z float [B, Z] (then pass the decoder's ``controls`` [B, K] if it needs
        them); values: the control values [S] (default ``steps`` values evenly over its range);
        attribute_names: what to measure (default: the model's attributes).
        """
        index, ctrl = self.runner.find_control(control)
        if isinstance(start, Encoding):
            z, controls = start.z, start.controls
        else:
            z = np.asarray(start, np.float32)
            z = z[None] if z.ndim == 1 else z
            if controls is not None:
                controls = np.asarray(controls, np.float32).reshape(len(z), -1)
        values = inference.control_values(ctrl, steps) if values is None else np.asarray(values, np.float32)
        if values.ndim != 1 or len(values) < 1:
            raise ValueError(f"values must be a non-empty 1-D array, got shape {list(values.shape)}")
        tokens = self.runner.sweep(z, controls, index, values)
        names = self.attribute_names if attribute_names is None else tuple(attribute_names)
        start_at = self.runner.control_coordinates(z, controls)[:, index]
        return Traversal(ctrl, values, tokens, self.runner.attributes(tokens, names), tuple(names), start_at)

    # -- music out -----------------------------------------------------------------------------
    def to_sequence(self, tokens, qpm: float = 120.0) -> music_pb2.NoteSequence:
        """Token ids [M, 24] (or [24], or [B, S, 24] flattened in order) -> one 4/4 NoteSequence."""
        tokens = np.asarray(tokens).reshape(-1, MEASURE_TICKS)
        return representation.measures_to_sequence(tokens, self.vocabulary, qpm=qpm)

    def write_midi(self, music, path: Union[str, os.PathLike], qpm: float = 120.0) -> str:
        """Writes token ids [..., 24] (measures back to back) or a NoteSequence as a MIDI file."""
        from note_seq import midi_io

        seq = music if isinstance(music, music_pb2.NoteSequence) else self.to_sequence(music, qpm=qpm)
        path = os.fspath(path)
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.exists(parent) and not os.path.isdir(parent):
            raise ExplainError(f"{path}: cannot write MIDI, {parent} is a file")
        os.makedirs(parent, exist_ok=True)
        midi_io.sequence_proto_to_midi_file(seq, path)
        return path


def read_melody(path: str, track: Union[str, int, None] = None, part_name: str = "Soprano",
                tune: int = 0) -> music_pb2.NoteSequence:
    """The melody of a MIDI, MusicXML or ABC file as a tempo-normalised NoteSequence (see readers).

    Raises ExplainError (one line naming the path) for a missing, unsupported or unreadable file.
    """
    from musicvae_xai.readers import ReaderError

    if not os.path.exists(path):
        raise ExplainError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ExplainError(f"{path}: is a folder, not a music file")
    ext = os.path.splitext(path)[1].lower()
    kind = READERS.get(ext)
    if kind is None:
        raise ExplainError(f"{path}: unsupported file type {ext or '(none)'!r}; expected one of "
                           f"{', '.join(sorted(READERS))}")
    try:
        if kind == "midi":
            from musicvae_xai.readers import midi
            return midi.read(path, track=track, chords="skyline")
        if kind == "musicxml":
            from musicvae_xai.readers import musicxml
            return musicxml.read(path, part_name=part_name)
        from musicvae_xai.readers import abc
        with open(path, "rb") as f:
            tunes = abc.split_tunebook(abc.decode(f.read()))
        if not tunes:
            raise ReaderError("unparseable", "no X: line, not an ABC tune")
        if not 0 <= tune < len(tunes):
            raise ExplainError(f"{path}: no tune {tune}; the file holds {len(tunes)}")
        return abc.read_tune(tunes[tune], piece_id=path)
    except ReaderError as e:
        raise ExplainError(f"{path}: cannot read a melody ({e.reason.replace('_', ' ')}: {e.message})") from None
    except OSError as e:
        raise ExplainError(f"{path}: cannot read ({e.strerror or e})") from None


def _ranges(values: np.ndarray) -> str:
    """'0-3, 5, 7-9' for sorted ints."""
    values = sorted(int(v) for v in values)
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)
