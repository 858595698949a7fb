"""musicvae_xai: explainable measure-level music VAEs (MeasureVAE and an adversarial Fader-style VAE).

Data flows one way: readers -> representation -> datasets -> models -> training -> export ->
serving clients -> evaluation, analysis, explorer, study.

The public API is importable from here, lazily (``import musicvae_xai`` does not load TensorFlow;
the first use of a name imports its module):

    from musicvae_xai import Explainer
    ex = Explainer.pretrained()          # or Explainer.from_run_dir("runs/quickstart")
    from musicvae_xai import LocalModel  # also RestClient, GrpcClient, connect
"""

import importlib

from musicvae_xai._quiet import quiet_startup

quiet_startup()

#: The release; pyproject.toml reads it from here (single source), CHANGELOG.md lists what each brought.
__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first use).
_EXPORTS = {
    "Explainer": "musicvae_xai.explain",
    "Encoding": "musicvae_xai.explain",
    "Traversal": "musicvae_xai.explain",
    "ExplainError": "musicvae_xai.explain",
    "ConfigError": "musicvae_xai.config",
    "RunConfig": "musicvae_xai.config",
    "LocalModel": "musicvae_xai.serving.local",
    "RestClient": "musicvae_xai.serving.rest",
    "GrpcClient": "musicvae_xai.serving.grpc_client",
    "ServingError": "musicvae_xai.serving.base",
    "ServingUnavailableError": "musicvae_xai.serving.base",
    "connect": "musicvae_xai.serving.targets",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'musicvae_xai' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_EXPORTS))
