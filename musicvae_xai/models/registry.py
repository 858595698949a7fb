"""The model registry: every model the library can train, by the name ``--model`` takes.

Each model is one ``ModelSpec``: its name, the class (as ``"module:Class"``, imported only when a model
is built, so that the configuration, the study report and anything else that only needs the names and
labels never imports TensorFlow), its label in tables and figures, its place in them (``order``) and
what the rest of the library must know about it without building it:

* ``controls``: the kind of what a person can turn (``controls.KINDS``) -- ``LATENT_DIM`` (regularised
  latent dims, MeasureVAE), ``ATTRIBUTE_INPUT`` (decoder attribute inputs, AdversarialVAE) or ``None``
  (no controls: the plain VAE; evaluation then reports attribute independence as not applicable);
* ``data_statistics``: whether the class is built with the training data's statistics
  (``cls(config, data_statistics=...)``; the adversarial model's attribute bins and ranges);
* ``settings``: the model's own settings, a dataclass whose fields are declared with
  ``settings.setting`` (default, help, checks). ``config.RunConfig`` holds the settings every model
  shares and an instance of its model's class (``RunConfig.model_settings``; ``config.beta`` reads it);
  the ``musicvae-train`` flags, the checks and ``config.json`` cover the fields of every registered
  settings class. Models may share a class (the plain VAE takes MeasureVAE's); two classes may declare
  the same name only with the same default and help.

A new model is its own module (a ``models.base.MusicVAE`` subclass) plus, in this file, its settings
class (if it has settings of its own) and one ``register`` line; ``models.base.build_model``,
``config.RunConfig``, evaluation and the study report read this table (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Optional

from musicvae_xai.controls import ATTRIBUTE_INPUT, KINDS, LATENT_DIM
from musicvae_xai.settings import MAX_LAYERS, MAX_WIDTH, setting

#: ``AdversarialVAESettings.sampling_coin``: one scheduled-sampling coin per tick, or per example and tick.
SAMPLING_COINS = ("step", "token")
#: ``--attribute_input``: what AdversarialVAE's decoder receives for each attribute.
ATTRIBUTE_INPUTS = ("continuous", "classes")
#: ``--discriminator_z``: whether AdversarialVAE's VAE step samples z again after the discriminator step.
DISCRIMINATOR_Z = ("fresh", "shared")



class UnknownModelError(ValueError):
    """A model name that is not registered; the message is one line listing the registered ones."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model (see the module docstring)."""

    name: str
    target: str                      # "package.module:ClassName"
    label: str                       # e.g. "MeasureVAE"
    order: int                       # position in tables and figures (lower first)
    controls: Optional[str]          # a controls.KINDS entry, or None for a model without controls
    data_statistics: bool = False    # the class takes data_statistics=... when built
    description: str = ""
    settings: Optional[type] = None  # a dataclass of ``settings.setting`` fields, or None: no own settings

    @property
    def has_controls(self) -> bool:
        return self.controls is not None

    def load(self) -> type:
        """The model class (imports its module, and so TensorFlow)."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


_MODELS: dict = {}
_SETTING_FIELDS: dict = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Adds ``spec``; a second model of the same name is refused (ValueError)."""
    if spec.name in _MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    if spec.controls is not None and spec.controls not in KINDS:
        raise ValueError(f"model {spec.name!r}: controls must be one of {KINDS} or None")
    if ":" not in spec.target:
        raise ValueError(f"model {spec.name!r}: target must be 'module:Class', got {spec.target!r}")
    if spec.settings is not None:
        for field in dataclasses.fields(spec.settings):
            other = _SETTING_FIELDS.get(field.name)
            if other is not None and (other.default, other.metadata.get("help")) != (
                    field.default, field.metadata.get("help")):
                raise ValueError(f"model {spec.name!r}: setting {field.name!r} is declared otherwise by another model")
    _MODELS[spec.name] = spec
    if spec.settings is not None:
        for field in dataclasses.fields(spec.settings):
            _SETTING_FIELDS.setdefault(field.name, field)
    return spec


def setting_names() -> tuple:
    """Names of every registered model's settings."""
    return tuple(_SETTING_FIELDS)


def setting_fields() -> tuple:
    """The ``dataclasses.Field`` of every registered model's settings, each name once, in registration order."""
    return tuple(_SETTING_FIELDS.values())


def settings_class(name: str) -> Optional[type]:
    """The settings class of model ``name`` (None: no settings of its own, or not registered)."""
    spec = _MODELS.get(name)
    return None if spec is None else spec.settings


def names() -> tuple:
    """Registered model names, in ``order``."""
    return tuple(s.name for s in specs())


def specs() -> tuple:
    """Every ModelSpec, in ``order``."""
    return tuple(sorted(_MODELS.values(), key=lambda s: (s.order, s.name)))


def spec(name: str) -> ModelSpec:
    """The ModelSpec of ``name``; UnknownModelError (one line) if none is registered."""
    if name not in _MODELS:
        raise UnknownModelError(f"unknown model {name!r}; choose one of {', '.join(names())}")
    return _MODELS[name]


def labels() -> dict:
    """{name: label} of every registered model."""
    return {s.name: s.label for s in specs()}


def label(name: str) -> str:
    """The label of a model; an unregistered name (e.g. in an old result file) is its own label."""
    return _MODELS[name].label if name in _MODELS else name


# -- the models of this library (a new model: its settings and one register line here, its class in its
# own module) -------------------------------------------------------------------------------------------
@dataclasses.dataclass
class MeasureVAESettings:
    """MeasureVAE's own settings (and the plain VAE's, which does not use gamma and delta)."""

    # Loss weights.
    beta: float = setting(1e-3, "MeasureVAE: weight of the KL term.")
    gamma: float = setting(1.0, "MeasureVAE: weight of the attribute-regularisation loss.")
    delta: float = setting(10.0, "MeasureVAE: tanh sharpness in the attribute-regularisation loss.")
    teacher_forcing: float = setting(0.5, "MeasureVAE: probability that a training batch is teacher-forced.")
    # Architecture switches (reference behaviour by default, see docs/FIDELITY.md).
    beat_conditioning: bool = setting(
        True,
        "MeasureVAE: True (reference) = the tick GRU gets c_i = SELU(Linear(H->H))(beat output i); False = "
        "the raw beat output.")
    logits_relu: bool = setting(
        True,
        "MeasureVAE: True (reference) = ReLU on the decoder logits as ar-vae does; False = plain logits "
        "(ours before v2; no measured difference, docs/FIDELITY.md).")


@dataclasses.dataclass
class AdversarialVAESettings:
    """AdversarialVAE's own settings."""

    lambda_d: float = setting(0.1, "AdversarialVAE: weight of the adversarial (flipped-target) term.")
    lambda_kl: float = setting(
        0.1,
        "AdversarialVAE: weight of the KL term, which is KL(q||p) averaged over latent dims and batch as in "
        "Kawai et al. (FaderVAE), so the paper's 0.1 means the same at every latent size.")
    num_bins: int = setting(
        8,
        "AdversarialVAE: ordinal bins per attribute for the discriminator (octiles = 8).",
        minimum=1, maximum=1024)
    sampling_k: float = setting(
        1000.0,
        "AdversarialVAE: scheduled sampling constant k, teacher forcing p = k / (k + exp(step / k)).")
    discriminator_hidden: int = setting(
        0,
        "AdversarialVAE: 0 = the reference discriminator (Kawai's Classifier: each hidden layer halves the "
        "width, z -> z/2 -> ...); > 0 = every hidden layer this wide (ours before v2).",
        minimum=0, maximum=MAX_WIDTH)
    discriminator_layers: int = setting(
        2,
        "AdversarialVAE: Linear layers of the discriminator, hidden layers + output (reference num_layers = "
        "2: one hidden layer).",
        minimum=1, maximum=MAX_LAYERS)
    adversarial_encoder_layers: int = setting(
        1,
        "AdversarialVAE: bidirectional GRU layers of the encoder (reference 1).",
        minimum=1, maximum=MAX_LAYERS)
    adversarial_posterior_hidden: bool = setting(
        False,
        "AdversarialVAE: False (reference) = Linear from the GRU states to mean and log-scale; True = "
        "MeasureVAE's Linear+SELU hidden layer of 2H before each.")
    adversarial_state_per_layer: bool = setting(
        False,
        "AdversarialVAE: False (reference) = h1 = tanh(Linear(z)), each higher GRU layer starts from the new "
        "state of the layer below at t=0; True = tanh(Linear([z, a])) gives every layer its own initial "
        "state.")
    sampling_coin: str = setting(
        "step",
        "AdversarialVAE scheduled sampling: 'step' (reference) = one coin per tick for the whole batch; "
        "'token' = one coin per (example, tick).",
        choices=SAMPLING_COINS)
    one_hot_inputs: bool = setting(
        True,
        "AdversarialVAE: True (reference) = tokens enter the encoder and decoder GRUs one-hot; False = "
        "through a learned --embedding_dim embedding.")
    attribute_input: str = setting(
        "continuous",
        "AdversarialVAE: what its decoder receives for each attribute: 'continuous' = the value standardised "
        "with the training split's mean and std; 'classes' = the index 0..num_bins-1 of its ordinal bin (the "
        "discriminator's --num_bins quantile bins) as a number, as the authors' training script feeds it. "
        "Controls are given in attribute units either way.",
        choices=ATTRIBUTE_INPUTS)
    discriminator_z: str = setting(
        "fresh",
        "AdversarialVAE: 'fresh' (reference) = the VAE step encodes the batch again and samples a new z after "
        "the discriminator step; 'shared' = both steps use one z sample (cheaper; the cpu_v2 study ran so).",
        choices=DISCRIMINATOR_Z)


register(ModelSpec("measure_vae", "musicvae_xai.models.measure_vae:MeasureVAE", "MeasureVAE", 0, LATENT_DIM,
                   description="attribute-regularised latent dims (Pati et al.)", settings=MeasureVAESettings))
register(ModelSpec("adversarial_vae", "musicvae_xai.models.adversarial_vae:AdversarialVAE", "AdversarialVAE", 1,
                   ATTRIBUTE_INPUT, data_statistics=True,
                   description="attributes as decoder inputs, adversarially removed from z (Kawai et al.)",
                   settings=AdversarialVAESettings))
register(ModelSpec("plain_vae", "musicvae_xai.models.plain_vae:PlainVAE", "PlainVAE", 2, None,
                   description="MeasureVAE's encoder and decoder without attribute regularisation (gamma = 0)",
                   settings=MeasureVAESettings))
