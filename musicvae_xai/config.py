"""The run configuration: every setting of a training run, its validation, and save/load with a run;
and the options of an evaluation.

A ``RunConfig`` is written as ``config.json`` next to the checkpoints of a run and under
``assets.extra/`` of every export, so any artefact reloads without remembering flags. Each setting is
declared once, as a field with its default, help and checks (``musicvae_xai.settings``); the command
lines generate their flags from the fields. This module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional, Sequence

from musicvae_xai import attributes as attrs
from musicvae_xai.controls import LATENT_DIM
from musicvae_xai.representation import DEFAULT_MAX_PITCH, DEFAULT_MIN_PITCH, Vocabulary
from musicvae_xai.settings import (MAX_LAYERS, MAX_WIDTH, OUTPUT, SCHEDULE, check_fields, help_texts, resumable_fields,
                                   setting)
from musicvae_xai.models import registry as model_registry  # TF-free: names and labels, classes lazily

MODELS = model_registry.names()
STRATEGIES = ("default", "mirrored", "multi_worker")
CONFIG_FILENAME = "config.json"
#: Measures per model call unless told otherwise (evaluation, analysis, ``Explainer``).
DEFAULT_BATCH_SIZE = 256
INITS = ("reference", "keras")
#: ``--cpu_threading`` policies (applied by ``training.cpu_threads``).
CPU_THREADING = ("ops", "tensorflow")
#: Version of the model and loss definitions. 2: reference architectures by default and the
#: AdversarialVAE KL term as a mean over latent dims (docs/FIDELITY.md). Configurations saved before
#: have no ``model_version`` and are refused on load (``check_saved_version``).
MODEL_VERSION = 2



def _check_attributes(names: tuple) -> Optional[str]:
    try:
        attrs.validate_names(names)
    except ValueError as e:
        return str(e)
    return None if names else "--attributes must name at least one attribute"


def _check_points(kind: type, what: str):
    """A check for a list of curve points: each a number of ``kind`` > 0."""
    def check(values: tuple) -> Optional[str]:
        for v in values:
            try:
                number = kind(v)
            except (TypeError, ValueError):
                return f"{what} must be {kind.__name__} numbers, got {v!r}"
            if not number > 0 or number != number or number == float("inf"):
                return f"{what} must be positive and finite, got {v!r}"
        return None
    return check


def _as_numbers(values, kind: type) -> tuple:
    """``values`` (strings from a flag, or numbers) as a tuple of ``kind``; unparsable entries stay as
    they are for ``_check_points`` to report."""
    out = []
    for v in values or ():
        try:
            out.append(kind(float(v)) if kind is int and float(v) == int(float(v)) else kind(v))
        except (TypeError, ValueError, OverflowError):
            out.append(v)
    return tuple(out)


def _check_model_version(version: int) -> Optional[str]:
    return None if version == MODEL_VERSION else f"model_version {version} is not this code's {MODEL_VERSION}"




class ConfigError(ValueError):
    """A configuration that cannot be trained; the message is one line meant for the user."""


@dataclasses.dataclass(init=False)
class RunConfig:
    """Every setting of a training run, each declared once: its default, type, help text (the
    ``musicvae-train`` flag of the same name is generated from it, ``musicvae_xai.settings``) and
    single-value checks; ``validate`` adds the checks that involve several fields.

    The fields here are those every model shares; a model's own settings (``beta``, ``lambda_d``, ...)
    are declared by its settings class (``models.registry``) and held in ``model_settings``. The
    configuration reads and writes flat: ``RunConfig(model="adversarial_vae", lambda_d=0.5)``,
    ``config.lambda_d``, the flags and ``config.json`` name the settings of any registered model (those of
    another model than ``model`` are accepted and dropped, so the ``config.json`` of older runs, which
    held every model's settings, still loads).
    """

    # What is trained.
    model: str = setting("measure_vae", f"Model: {', '.join(MODELS)} (models/registry.py).")
    latent_dim: int = setting(32, "Size of the latent code z (4..256 in the study).", minimum=1, maximum=4096)
    hidden_size: int = setting(512, "GRU hidden size H of encoder and decoder.", minimum=1, maximum=MAX_WIDTH)
    embedding_dim: int = setting(10, "Token embedding size.", minimum=1, maximum=MAX_WIDTH)
    num_layers: int = setting(2, "GRU layers in encoder and decoder stacks.", minimum=1, maximum=MAX_LAYERS)
    dropout: float = setting(
        0.5,
        "Dropout between stacked GRU layers: MeasureVAE's encoder and decoder (beat and tick GRUs, as "
        "PyTorch's GRU dropout in ar-vae), the adversarial model's encoder when --adversarial_encoder_layers "
        "> 1.",
        minimum=0.0, below=1.0)
    attributes: tuple = setting(
        attrs.DEFAULT_FOUR,
        "Regularised (MeasureVAE) or controlled (AdversarialVAE) attributes, in order on dims 0..K-1: "
        "rhythmic_complexity, note_range, note_density, average_interval_jump, contour. The paper uses 2 or "
        "4, any 1 to 5 are accepted.",
        check=_check_attributes)
    # Both models.
    clip_log_scale: bool = setting(
        False,
        "Both models: clip log sigma of the posterior to [-10, 5] (not in the references; off by default).")
    init: str = setting(
        "reference",
        "Weight initialisation: 'reference' = ar-vae's Xavier-normal weights (MeasureVAE) or PyTorch's "
        "defaults (AdversarialVAE), biases PyTorch's default U(+-1/sqrt(fan_in)); 'keras' = Glorot-uniform, "
        "orthogonal recurrent kernels, zero biases (ours before v2).",
        choices=INITS)
    model_version: int = setting(
        MODEL_VERSION,
        "Version of the model and loss definitions (2: reference architectures, AdversarialVAE KL mean over "
        "dims). Saved configurations without it were made before and are refused.",
        check=_check_model_version)
    # Data.
    dataset: str = setting("embedded", "Registered dataset: embedded, irish, turkish, classical, pop.")
    data_root: Optional[str] = setting(
        None,
        "Folder holding the raw datasets (e.g. ../shared/datasets); not needed for embedded.", resumable=OUTPUT)
    cache_dir: Optional[str] = setting(
        None, "Folder for the dataset cache (default $MUSICVAE_XAI_CACHE if set, else ~/.cache/musicvae_xai: "
              "datasets.config.DEFAULT_CACHE_DIR).", resumable=OUTPUT)
    min_pitch: int = setting(DEFAULT_MIN_PITCH, "Lowest MIDI pitch in the vocabulary.")
    max_pitch: int = setting(DEFAULT_MAX_PITCH, "Highest MIDI pitch in the vocabulary.")
    allow_cut_time: bool = setting(False, "Admit 2/2 bars as four quarter beats.")
    transpose: bool = setting(True, "Transposition augmentation of the training split.")
    # Optimisation.
    batch_size: int = setting(256, "Global batch size (split over replicas).", minimum=1, maximum=2 ** 20)
    learning_rate: float = setting(1e-4, "Adam learning rate.", above=0.0)
    clip_norm: float = setting(
        0.0,
        "Global gradient-norm clipping (0 = off; the adversarial model always clips at 1.0).")
    epochs: int = setting(30, "Training epochs (ignored when --train_steps > 0).", resumable=SCHEDULE)
    train_steps: int = setting(0, "Total training steps; overrides --epochs when > 0.", resumable=SCHEDULE)
    seed: int = setting(0, "Random seed: weights, data order, sampling, dropout.")
    # Bookkeeping.
    run_dir: str = setting(
        "runs/default",
        "Folder for checkpoints, config.json and TensorBoard summaries; re-running resumes.", resumable=OUTPUT)
    strategy: str = setting(
        "default",
        "tf.distribute strategy: default, mirrored or multi_worker (reads TF_CONFIG).",
        choices=STRATEGIES, resumable=OUTPUT)
    checkpoint_every: int = setting(
        500,
        "Save a checkpoint every N steps (a crash loses at most N steps).",
        minimum=1, resumable=OUTPUT)
    eval_every: int = setting(0, "Validate every N steps (0 = once per epoch).", resumable=OUTPUT)
    eval_summaries: bool = setting(
        True,
        "At each validation, write piano-roll images and audio of reconstructions and traversals.", resumable=OUTPUT)
    log_every: int = setting(50, "Write training summaries every N steps.", resumable=OUTPUT)
    max_to_keep: int = setting(3, "Checkpoints kept.", resumable=OUTPUT)
    xla: bool = setting(False, "Compile the training step with XLA (single-device runs). Off by default: measured "
                        "on the 2-core CPU (bench/train_bench.py), XLA trains no faster at hidden 512, 1.17x "
                        "faster at 128, but its first step takes twice as long and it needs 0.85 GB more memory.",
                        resumable=SCHEDULE)
    cpu_threading: str = setting(
        "ops",
        "How a training step uses the cores of a machine without GPUs: 'ops' runs independent ops in parallel, "
        "one core each (inter-op threads = usable cores, intra-op threads = 1; measured 1.2-1.4x faster at "
        "hidden 128 and 1.05x at 512, bench/train_bench.py); 'tensorflow' keeps TensorFlow's defaults. "
        "TF_NUM_INTEROP_THREADS / TF_NUM_INTRAOP_THREADS in the environment, a GPU, or --xla take precedence.",
        choices=CPU_THREADING, resumable=SCHEDULE)
    curve_epochs: tuple = setting(
        (),
        "Evaluate the run during training at these epochs (fractions allowed, e.g. 0.15,0.6,6): every metric "
        "of a study's result.json, on fixed validation and test measures, appended with its step and epoch "
        "to curve.json in the run folder and shown in TensorBoard (curve_validation, curve_test).",
        check=_check_points(float, "curve_epochs"), resumable=OUTPUT)
    curve_steps: tuple = setting(
        (),
        "Evaluate the run during training at these steps (as --curve_epochs; both lists may be given).",
        check=_check_points(int, "curve_steps"), resumable=OUTPUT)
    curve_measures: int = setting(
        1000,
        "Measures of each split evaluated at a curve point, drawn once with seed 0 (0 = the whole split).",
        minimum=0, resumable=OUTPUT)
    deterministic: bool = setting(
        False,
        "TF op determinism (tf.config.experimental.enable_op_determinism) in training and in the evaluation "
        "of this run: same seed and flags give bit-identical weights whatever the thread counts on one "
        "machine; not across CPU types (README, Reproducibility).", resumable=SCHEDULE)

    model_settings: Optional[Any] = dataclasses.field(default=None, metadata={"flag": None})

    def __init__(self, **values: Any):
        given = values.pop("model_settings", None)
        for field in _shared_fields():
            object.__setattr__(self, field.name, values.pop(field.name, field.default))
        unknown = sorted(set(values) - set(model_registry.setting_names()))
        if unknown:
            raise TypeError(f"RunConfig got an unexpected keyword argument {unknown[0]!r}")
        kind = model_registry.settings_class(self.model)
        if given is not None and not isinstance(given, dict):
            given = dataclasses.asdict(given)
        own = {} if kind is None else {f.name for f in dataclasses.fields(kind)}
        picked = {k: v for k, v in {**(given or {}), **values}.items() if k in own}
        object.__setattr__(self, "model_settings", None if kind is None else kind(**picked))
        object.__setattr__(self, "attributes", tuple(self.attributes))
        object.__setattr__(self, "curve_epochs", _as_numbers(self.curve_epochs, float))
        object.__setattr__(self, "curve_steps", _as_numbers(self.curve_steps, int))

    @classmethod
    def declared_fields(cls) -> tuple:
        """The ``dataclasses.Field`` of every setting a configuration may name: the shared ones, then every
        registered model's (``models.registry.setting_fields``). The flags, ``HELP`` and the study
        files follow it."""
        return _shared_fields() + model_registry.setting_fields()

    def _own_settings(self) -> tuple:
        return () if self.model_settings is None else tuple(f.name for f in dataclasses.fields(self.model_settings))

    def __getattr__(self, name: str) -> Any:
        """A setting of the model's own (``config.beta``); only called when ``name`` is not a shared field."""
        if name.startswith("__") or name == "model_settings":
            raise AttributeError(name)
        if name in self._own_settings():
            return getattr(self.model_settings, name)
        raise AttributeError(f"model {self.__dict__.get('model')!r} has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._own_settings():
            setattr(self.model_settings, name, value)
        else:
            object.__setattr__(self, name, value)

    def validate(self) -> "RunConfig":
        """Raises ConfigError (one line) for any setting that cannot work; returns self."""
        try:
            spec = model_registry.spec(self.model)
        except model_registry.UnknownModelError as e:
            raise ConfigError(str(e)) from None
        check_fields(self, ConfigError)  # each field's declared choices, bounds and checks
        if self.model_settings is not None:
            check_fields(self.model_settings, ConfigError)
        if spec.controls == LATENT_DIM and self.latent_dim < len(self.attributes):
            raise ConfigError(
                f"latent_dim={self.latent_dim} is smaller than the {len(self.attributes)} regularised "
                f"attributes ({', '.join(self.attributes)}): each needs its own latent dim")
        if self.train_steps <= 0 and self.epochs <= 0:
            raise ConfigError("set --epochs or --train_steps to a positive number")
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise ConfigError(f"need 0 <= min_pitch <= max_pitch <= 127, got {self.min_pitch}..{self.max_pitch}")
        return self

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The shared settings and the model's own, flat (``config.json``)."""
        d = {f.name: getattr(self, f.name) for f in _shared_fields()}
        d["attributes"] = list(self.attributes)
        d["curve_epochs"] = list(self.curve_epochs)
        d["curve_steps"] = list(self.curve_steps)
        if self.model_settings is not None:
            d.update(dataclasses.asdict(self.model_settings))
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """From a flat dict (``to_dict``, a saved ``config.json``); ConfigError for a key no setting has."""
        known = {f.name for f in cls.declared_fields()}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, directory: str) -> str:
        """Writes ``config.json`` into ``directory`` atomically; returns its path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_FILENAME)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json() + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory_or_file: str) -> "RunConfig":
        path = directory_or_file
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_FILENAME)
        if not os.path.exists(path):
            raise ConfigError(f"{path}: no saved configuration (is this a run directory?)")
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        check_saved_version(saved, path)
        return cls.from_dict(saved)

    # -- comparisons -----------------------------------------------------------------------------
    def differences(self, other: "RunConfig", ignore: Optional[Sequence[str]] = None) -> list:
        """Names of the fields that differ, skipping ``ignore`` (default ``RESUMABLE_FIELDS``)."""
        ignore = RESUMABLE_FIELDS if ignore is None else ignore
        a, b = self.to_dict(), other.to_dict()
        return sorted(k for k in a if k not in ignore and a[k] != b[k])

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.min_pitch, self.max_pitch)


def check_saved_version(saved: dict, where: str) -> None:
    """Refuses (one-line ConfigError) a saved configuration made with other model/loss definitions.

    ``saved`` is a parsed ``config.json`` (run directory or export's ``assets.extra``); ``where`` names it.
    """
    version = saved.get("model_version") if isinstance(saved, dict) else None
    if version != MODEL_VERSION:
        found = "has no model_version field" if version is None else f"has model_version {version!r}"
        raise ConfigError(f"{where} {found}: it was made with other model definitions than this code's "
                          f"model_version {MODEL_VERSION} (AdversarialVAE KL now a mean over latent dims, reference "
                          "architectures; see docs/FIDELITY.md); retrain or use the older code")


def _shared_fields() -> tuple:
    """The fields of ``RunConfig`` every model shares (all but ``model_settings``)."""
    return tuple(f for f in dataclasses.fields(RunConfig) if f.name != "model_settings")


#: Help text of every setting a RunConfig may name (the flags' help), read from the declarations.
HELP = help_texts(RunConfig)
#: Fields that may change between a run and its resumption (how long, how, or where it writes; not what
#: is trained), read from the declarations (``resumable=``).
RESUMABLE_FIELDS = resumable_fields(RunConfig)
#: The resumable fields that say where or how often a run writes: a finished stage of a study stays
#: valid when only these change (``study.worker.same_settings``).
LOCATION_FIELDS = resumable_fields(RunConfig, OUTPUT)


@dataclasses.dataclass
class ReadingARun:
    """The options of every command that reads a trained run (evaluation, analysis)."""

    batch_size: int = setting(DEFAULT_BATCH_SIZE, "Measures per model call.", minimum=1)
    cache_dir: Optional[str] = setting(None, "Dataset cache folder (default: the run's).")
    data_root: Optional[str] = setting(None, "Raw dataset folder (default: the run's).")
    expect_finished: bool = setting(True, "Use the latest checkpoint of a run that has not finished.",
                                    flag="allow_unfinished", negate=True)


@dataclasses.dataclass
class EvaluationOptions(ReadingARun):
    """What to evaluate and how (``musicvae_xai.evaluation``; the ``musicvae-evaluate`` flags are
    generated from these fields). ``max_measures`` <= 0 means the whole split."""

    split: str = setting("test", "Dataset split: train, validation or test.")
    max_measures: int = setting(0, "Evaluate at most this many measures of the split, drawn with --seed (0 = all).")
    seed: int = setting(0, "Seed of the sampled codes, the measure subsets and the MI estimator.")
    sweep_measures: int = setting(64, "Measures each control is swept from (attribute independence).", minimum=1)
    sweep_steps: int = setting(9, "Values of each control sweep, evenly spaced over its range.", minimum=2)

    def validate(self) -> "EvaluationOptions":
        """Raises ValueError (one line) for an option out of its range; returns self."""
        check_fields(self, ValueError)
        return self


class AnalysisError(ValueError):
    """Bad analysis input; the message is one line."""


@dataclasses.dataclass
class AnalysisOptions(ReadingARun):
    """What the analysis of a run draws (``musicvae_xai.analysis.report``; the ``musicvae-analysis``
    flags are generated from these fields): split: where the traversed measures come from; data_split:
    the measures of the distribution figures (at most ``max_measures``); steps: values per traversal;
    curve_measures: measures the mean traversal curve averages over; grid, surface_measures: the surface
    maps' grid size and the measures averaged; input_file/input_bar_number: traverse a bar of this
    MIDI/MusicXML/ABC file (numbered as a score prints it) instead of a measure of the split."""

    split: str = setting("test", "Split the traversed measures come from.")
    data_split: str = setting("train", "Split of the encoded-data figures.")
    seed: int = setting(0, "Seed of every measure choice.")
    steps: int = setting(9, "Values per traversal, evenly spaced over the control's range.", minimum=2)
    curve_measures: int = setting(32, "Measures the mean traversal curve averages over (0 = none).", minimum=0)
    grid: int = setting(11, "Grid size of the attribute surface maps.", minimum=2)
    surface_measures: int = setting(8, "Measures each surface map averages over.", minimum=1)
    max_measures: int = setting(5000, "Encoded measures in the data-distribution figures.", minimum=4)
    input_file: Optional[str] = setting(None, "Traverse a bar of this MIDI/MusicXML/ABC file instead of a split "
                                              "measure.")
    input_bar_number: Optional[int] = setting(None, "Bar of --input_file, numbered as a score prints it (the first "
                                                    "complete bar is 1, a pickup 0; default: its first usable "
                                                    "4/4 bar).")
    qpm: float = setting(120.0, "Tempo of the MIDI files written.", above=0.0)

    def validate(self) -> "AnalysisOptions":
        """Raises AnalysisError (one line) for an option out of its range; returns self."""
        check_fields(self, AnalysisError)
        return self
