"""The library API for explaining a trained run, from a notebook or a script.

    from musicvae_xai.explain import Explainer
    ex = Explainer.from_run_dir("runs/quickstart")
    enc = ex.encode_file("tune.mid", bar_numbers=[5])    # bar 5 of the score (MIDI/MusicXML/ABC)
    enc.z                                                # float32 [1, Z]
    tr = ex.traverse(enc, "note_density", steps=9)       # sweep the control meant for note density
    tr.attributes[0, :, tr.attribute_index("note_density")]   # measured along the sweep
    ex.write_traversal(tr, "density_sweep.mid")          # the 9 decoded measures, one marker each
    ex.write_reconstruction(enc, "bar5.mid")             # keeps the input's tempo, instrument, name
    seq = ex.to_sequence(ex.decode(enc.z, enc.controls)) # a note-seq NoteSequence
    ex.reconstruct(enc, stay_in_key=True)                # decoded pitches kept to the input's key
    ex.traverse(enc, "note_range", stay_in_key=True, key="D major")   # or to a key given by name

Works with either model through the ``MusicVAE`` interface: a control is a regularised latent dim or
an attribute input of the decoder, and the ``controls`` a decoder may need travel with each
``Encoding``. Bad input (a missing file, a file with no usable 4/4 measure, a bar that is not
usable, pitches that do not fit the model's range) raises ``ExplainError``: one line naming the path
and the reason. Bars are numbered as a score prints them (the first complete bar is 1, a pickup 0),
in ``bar_numbers=``, in ``Encoding.source.bar_numbers`` and in the markers written. Played MIDI is
quantised to the grid (``readers.common.quantise``), a note released shortly before the next onset
read as lasting until it (``legato=False``: as played); the Encoding's ``source`` reports the
quantisation error and the notes lengthened (``source.quantisation``) and the file's ``title``.
Every MIDI file goes through ``music_io.write_midi`` (track name, text markers, and the input file's
tempo, time signature, program and track name).
*Staying in key*: ``decode``, ``reconstruct``, ``traverse`` and ``write_reconstruction`` take
``stay_in_key=True`` (default False) to keep every decoded pitch in the scale of a key (``musicvae_xai.keys``:
out-of-scale pitch tokens are masked out at each tick): the key of the Encoding's measures, estimated
from all of them together (``key_of``), or ``key=`` given by name (``"D major"``, ``"E dorian"``) or
one per measure.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence, Union

import numpy as np
from note_seq.protobuf import music_pb2

from musicvae_xai import inference, keys, music_io, pretrained, representation
from musicvae_xai.controls import Control
from musicvae_xai.music_io import SKIP_TEXT, FileMeasures  # noqa: F401 (public names of this module)
from musicvae_xai.pretrained.savedmodel import load_export
from musicvae_xai.readers import registry as reader_registry
from musicvae_xai.readers.registry import MELODY_PART
from musicvae_xai.representation import MEASURE_TICKS

#: File types read by ``read_measures``: extension -> reader format (``readers.registry``).
READERS = reader_registry.extension_map()


class ExplainError(music_io.MusicFileError):
    """Bad input to the explanation API; the message is one line naming the path and the reason."""


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
    where each code sat on the control before the sweep; key: the key (or one per code) the decoded
    pitches were kept to, None when they were not."""

    control: Control
    values: np.ndarray
    tokens: np.ndarray
    attributes: np.ndarray
    attribute_names: tuple
    start: np.ndarray
    key: Union["keys.Key", list, None] = None

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

    @classmethod
    def from_export(cls, export_dir: str, batch_size: int = inference.DEFAULT_BATCH_SIZE) -> "Explainer":
        """Loads an export of ``musicvae-export`` (a version folder, or a base whose newest version is
        taken) and runs it through its serving signatures (``pretrained.savedmodel.ExportedVAE``)."""
        return cls(*load_export(export_dir), batch_size)

    @classmethod
    def pretrained(cls, batch_size: int = inference.DEFAULT_BATCH_SIZE) -> "Explainer":
        """The MeasureVAE shipped in the package, trained on Irish dance tunes (O'Neill's, public domain;
        CRÉ, CC BY 4.0): see ``musicvae_xai/pretrained/README.md`` for its figures and attribution."""
        return cls.from_export(pretrained.export_dir(), batch_size)

    def __repr__(self) -> str:
        """``Explainer(model='measure_vae', latent_dim=16, controls=['z[0] rhythmic_complexity', ...],
        source='export PATH')`` (``source='run_dir PATH'`` for a run loaded from its directory)."""
        from musicvae_xai import reprs

        export_dir = getattr(self.model, "export_dir", None)
        source = f"export {export_dir}" if export_dir else f"run_dir {self.config.run_dir}"
        return reprs.model_repr("Explainer", model=self.config.model, latent_dim=self.config.latent_dim,
                                controls=reprs.control_labels(self.controls), source=source)

    @property
    def controls(self) -> list:
        return self.runner.controls

    @property
    def attribute_names(self) -> tuple:
        return self.runner.attribute_names

    # -- files -> measures ---------------------------------------------------------------------
    def read_measures(self, path: Union[str, os.PathLike], *, bar_numbers: Optional[Sequence[int]] = None,
                      transpose: Union[int, str] = "auto", track: Union[str, int, None] = None,
                      part_name: str = MELODY_PART, tune: int = 0, legato: bool = True,
                      **removed) -> FileMeasures:
        """The usable 4/4 measures of a file in any registered format (MIDI, MusicXML, ABC), in the
        model's ids: ``music_io.read_file`` (bar_numbers: bars as a score numbers them, the first
        complete bar 1; transpose, track, part_name, tune and legato are its options), raising
        ExplainError."""
        music_io.check_read_options(removed)
        try:
            return music_io.read_file(path, self.vocabulary, bar_numbers=bar_numbers, transpose=transpose,
                                      track=track, part_name=part_name, tune=tune, legato=legato)
        except music_io.MusicFileError as e:
            raise ExplainError(str(e)) from None

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

    def encode_file(self, path: Union[str, os.PathLike], *, bar_numbers: Optional[Sequence[int]] = None,
                    sample_seed: Optional[int] = None, **read_options) -> Encoding:
        """``read_measures`` then ``encode``: ``bar_numbers`` as a score prints them (``[5]``: bar 5;
        default every usable bar); the Encoding's ``source`` says which bars (``bar_numbers``), shift,
        title and quantisation."""
        measures = self.read_measures(path, bar_numbers=bar_numbers, **read_options)
        return self.encode(measures.tokens, sample_seed=sample_seed, source=measures)

    def decode(self, z, controls=None, stay_in_key: bool = False, key=None) -> np.ndarray:
        """Greedy decoding of z float [B, Z] (or [Z]) -> token ids int32 [B, 24]. A model whose decoder
        takes controls needs them ([B, K], e.g. ``Encoding.controls``).

        stay_in_key: keep every decoded pitch in the scale of ``key`` (a name such as ``"D major"``, a
        ``keys.Key``, or a sequence of B of them, one per code); z alone says no key, so ``key`` is
        needed (``reconstruct`` and ``traverse`` estimate it from an Encoding)."""
        z, controls = self._code(z, controls)
        return self.runner.decode(z, controls, self._allowed(stay_in_key, key, None, len(z))[0])

    def reconstruct(self, encoding: Encoding, stay_in_key: bool = False, key=None) -> np.ndarray:
        """Token ids int32 [B, 24] decoded from an Encoding (its z and controls). stay_in_key: keep the
        decoded pitches in the scale of ``key`` (default: ``key_of(encoding)``, the key of its measures)."""
        allowed, _ = self._allowed(stay_in_key, key, encoding.tokens, len(encoding))
        return self.runner.decode(*self._code(encoding.z, encoding.controls), allowed)

    def key_of(self, music) -> "keys.Key":
        """The key of an Encoding's measures or of token ids int [..., 24], all together
        (``keys.estimate_key``: a seven-note scale holding most of their notes, its tonic by the
        Krumhansl-Kessler profiles). Raises ValueError when they hold no note."""
        tokens = music.tokens if isinstance(music, Encoding) else music
        return keys.estimate_key(tokens, self.vocabulary)

    def _code(self, z, controls) -> tuple:
        """(z float32 [B, Z], controls float32 [B, K] or None) from a code [Z] or [B, Z]."""
        z = np.asarray(z, np.float32)
        z = z[None] if z.ndim == 1 else z
        if controls is not None:
            controls = np.asarray(controls, np.float32).reshape(len(z), -1)
        return z, controls

    def _allowed(self, stay_in_key: bool, key, tokens, rows: int) -> tuple:
        """(allowed bool [rows, V] or None, the key(s) kept to or None) for the stay-in-key arguments."""
        if not stay_in_key:
            if key is not None:
                raise ValueError("key= is used only with stay_in_key=True")
            return None, None
        chosen = keys.resolve(key, tokens, self.vocabulary)
        return keys.allowed_rows(chosen, rows, self.vocabulary), chosen

    def attributes(self, tokens, names: Optional[Sequence[str]] = None) -> np.ndarray:
        """float32 [..., K]: the named attributes (default: the model's) of token ids [..., 24]."""
        return self.runner.attributes(tokens, names)

    # -- controls ------------------------------------------------------------------------------
    def control(self, key) -> Control:
        """A control by index, name (``z[0]``) or the attribute it is meant to move."""
        return self.runner.find_control(key)[1]

    def traverse(self, start: Union[Encoding, np.ndarray], control, values=None, steps: int = 9,
                 controls=None, attribute_names: Optional[Sequence[str]] = None, stay_in_key: bool = False,
                 key=None) -> Traversal:
        """Sweeps ``control`` from each code of ``start`` with everything else fixed, decodes and measures.

        start: an Encoding, or z float [B, Z] (then pass the decoder's ``controls`` [B, K] if it needs
        them); values: the control values [S] (default ``steps`` values evenly over its range);
        attribute_names: what to measure (default: the model's attributes); stay_in_key: keep every
        decoded pitch in the scale of ``key`` (a name, a ``keys.Key`` or one per code; default for an
        Encoding: ``key_of(start)``; a z alone needs ``key``).
        """
        index, ctrl = self.runner.find_control(control)
        if isinstance(start, Encoding):
            z, controls, tokens_in = start.z, start.controls, start.tokens
        else:
            (z, controls), tokens_in = self._code(start, controls), None
        values = inference.control_values(ctrl, steps) if values is None else np.asarray(values, np.float32)
        if values.ndim != 1 or len(values) < 1:
            raise ValueError(f"values must be a non-empty 1-D array, got shape {list(values.shape)}")
        allowed, chosen = self._allowed(stay_in_key, key, tokens_in, len(z))
        tokens = self.runner.sweep(z, controls, index, values, allowed)
        names = self.attribute_names if attribute_names is None else tuple(attribute_names)
        start_at = self.runner.control_coordinates(z, controls)[:, index]
        return Traversal(ctrl, values, tokens, self.runner.attributes(tokens, names), tuple(names), start_at,
                         chosen)

    # -- music out -----------------------------------------------------------------------------
    def to_sequence(self, tokens, qpm: float = 120.0) -> music_pb2.NoteSequence:
        """Token ids [M, 24] (or [24], or [B, S, 24] flattened in order) -> one 4/4 NoteSequence."""
        tokens = np.asarray(tokens).reshape(-1, MEASURE_TICKS)
        return representation.measures_to_sequence(tokens, self.vocabulary, qpm=qpm)

    def write_midi(self, music, path: Union[str, os.PathLike], qpm: Optional[float] = None,
                   style=None, markers: Optional[Sequence[Optional[str]]] = None) -> str:
        """Writes token ids [..., 24] (measures back to back) or a NoteSequence as a MIDI file through
        ``music_io.write_midi``: style (a ``readers.SourceStyle``, e.g. ``FileMeasures.style``)
        keeps an input's tempo, time signature, program and track name; qpm overrides the tempo
        (default: the style's, else 120); markers: one text per measure."""
        try:
            return music_io.write_midi(music, path, self.vocabulary, style=style, markers=markers, qpm=qpm)
        except ValueError as e:
            raise ExplainError(str(e) if os.fspath(path) in str(e) else f"{os.fspath(path)}: {e}") from None

    def write_reconstruction(self, encoding: Encoding, path: Union[str, os.PathLike],
                             tokens=None, qpm: Optional[float] = None, stay_in_key: bool = False,
                             key=None) -> str:
        """Writes the reconstruction (``tokens`` int [B, 24], default ``reconstruct(encoding,
        stay_in_key, key)``) of an Encoding, one measure per code, in the style of its source file, with a
        marker ``bar N reconstructed`` (N as a score numbers the bar; ``measure N reconstructed``, from 1,
        without a source) at each measure."""
        if tokens is not None and (stay_in_key or key is not None):
            raise ValueError("stay_in_key and key apply to the reconstruction made here, not to tokens given")
        if tokens is None:
            tokens = self.reconstruct(encoding, stay_in_key, key)
        tokens = np.asarray(tokens).reshape(-1, MEASURE_TICKS)
        source = encoding.source
        markers = ([f"bar {int(b)} reconstructed" for b in source.bar_numbers] if source is not None
                   else [f"measure {i + 1} reconstructed" for i in range(len(tokens))])
        return self.write_midi(tokens, path, qpm=qpm, style=source.style if source is not None else None,
                               markers=markers)

    def write_traversal(self, traversal: Traversal, path: Union[str, os.PathLike], index: int = 0,
                        start: Optional[Encoding] = None, qpm: Optional[float] = None, style=None) -> str:
        """Writes the sweep of code ``index`` (its S decoded measures back to back), a marker at each
        giving the control and its value (``z[2] note density = +1.5``). With ``start`` (the
        Encoding swept from), its measure ``index`` comes first, marked as the input, and the file
        keeps the style of its source file (``style`` overrides)."""
        markers = traversal_markers(traversal)
        tokens = np.asarray(traversal.tokens[index]).reshape(-1, MEASURE_TICKS)
        if start is not None:
            src = start.source
            label = f"bar {int(src.bar_numbers[index])} input" if src is not None else "input"
            tokens = np.concatenate([np.asarray(start.tokens[index]).reshape(1, MEASURE_TICKS), tokens])
            markers = [label] + markers
            if style is None and src is not None:
                style = src.style
        return self.write_midi(tokens, path, qpm=qpm, style=style, markers=markers)


def traversal_markers(traversal: Traversal) -> list:
    """One marker text per swept value: ``'z[2] note density = +1.5'`` (the control's name, the
    attribute it is meant to move, the value)."""
    ctrl = traversal.control
    attribute = ctrl.attribute.replace("_", " ")
    label = attribute if ctrl.name == ctrl.attribute else f"{ctrl.name} {attribute}"
    return [f"{label} = {music_io.format_value(v)}" for v in np.asarray(traversal.values).reshape(-1)]


def read_melody(path: str, track: Union[str, int, None] = None, part_name: str = MELODY_PART,
                tune: int = 0, legato: bool = True) -> music_pb2.NoteSequence:
    """The melody of a MIDI, MusicXML or ABC file as a tempo-normalised NoteSequence (see readers).

    Raises ExplainError (one line naming the path) for a missing, unsupported or unreadable file.
    """
    return read_source(path, track=track, part_name=part_name, tune=tune, legato=legato).sequence


def read_source(path: str, track: Union[str, int, None] = None, part_name: str = MELODY_PART, tune: int = 0,
                legato: bool = True):
    """``music_io.read_source`` (a ``readers.ReadResult``: sequence, quantisation error of played MIDI,
    the source's style and title), raising ExplainError."""
    try:
        return music_io.read_source(path, track=track, part_name=part_name, tune=tune, legato=legato)
    except music_io.MusicFileError as e:
        raise ExplainError(str(e)) from None
