"""The model registry: every model the library can train, by the name ``--model`` takes.

Each model is one ``ModelSpec``: its name, the class (as ``"module:Class"``, imported only when a model
is built, so that the configuration, the study report and anything else that only needs the names and
labels never imports TensorFlow), its label in tables and figures, its place in them (``order``) and
what the rest of the library must know about it without building it:

* ``controls``: what a person can turn -- ``"latent_dim"`` (regularised latent dims, MeasureVAE),
  ``"attribute_input"`` (decoder attribute inputs, AdversarialVAE) or ``None`` (no controls: the plain
  VAE; evaluation then reports attribute independence as not applicable);
* ``data_statistics``: whether the class is built with the training data's statistics
  (``cls(config, data_statistics=...)``; the adversarial model's attribute bins and ranges).

A new model is its own module (a ``models.base.MusicVAE`` subclass) plus one ``register`` line at the
end of this file; ``models.base.build_model``, ``config.RunConfig.validate``, evaluation and the study
report read this table (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Optional

CONTROL_KINDS = ("latent_dim", "attribute_input")


class UnknownModelError(ValueError):
    """A model name that is not registered; the message is one line listing the registered ones."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model (see the module docstring)."""

    name: str
    target: str                      # "package.module:ClassName"
    label: str                       # e.g. "MeasureVAE"
    order: int                       # position in tables and figures (lower first)
    controls: Optional[str]          # a CONTROL_KINDS entry, or None for a model without controls
    data_statistics: bool = False    # the class takes data_statistics=... when built
    description: str = ""

    @property
    def has_controls(self) -> bool:
        return self.controls is not None

    def load(self) -> type:
        """The model class (imports its module, and so TensorFlow)."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


_MODELS: dict = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Adds ``spec``; a second model of the same name is refused (ValueError)."""
    if spec.name in _MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    if spec.controls is not None and spec.controls not in CONTROL_KINDS:
        raise ValueError(f"model {spec.name!r}: controls must be one of {CONTROL_KINDS} or None")
    if ":" not in spec.target:
        raise ValueError(f"model {spec.name!r}: target must be 'module:Class', got {spec.target!r}")
    _MODELS[spec.name] = spec
    return spec


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


# -- the models of this library (a new model: one line here, its class in its own module) --------
register(ModelSpec("measure_vae", "musicvae_xai.models.measure_vae:MeasureVAE", "MeasureVAE", 0, "latent_dim",
                   description="attribute-regularised latent dims (Pati et al.)"))
register(ModelSpec("adversarial_vae", "musicvae_xai.models.adversarial_vae:AdversarialVAE", "AdversarialVAE", 1,
                   "attribute_input", data_statistics=True,
                   description="attributes as decoder inputs, adversarially removed from z (Kawai et al.)"))
register(ModelSpec("plain_vae", "musicvae_xai.models.plain_vae:PlainVAE", "PlainVAE", 2, None,
                   description="MeasureVAE's encoder and decoder without attribute regularisation (gamma = 0)"))
