"""Serving: the contract of an export and the clients that use it.

* ``signatures``: signature names, inputs and outputs (the contract), metadata summaries, input checks;
* ``graph``: ``ServingModule``, the model behind those signatures, as ``musicvae_xai.export`` saves it;
* clients with one interface (``encode``, ``decode``, ``reconstruct``, ``traverse``, ``sample``,
  ``metadata`` and the generic ``predict``, all returning numpy arrays): ``LocalModel`` (the
  SavedModel in-process), ``RestClient`` and ``GrpcClient`` (TensorFlow Serving), ``connect`` to pick
  one from a target string;
* ``models_config``: TF-Serving's ``models.config`` from an export folder; ``client``: the CLI.

Names are imported lazily, so ``from musicvae_xai.serving import RestClient`` does not load
TensorFlow.
"""

import importlib

_EXPORTS = {
    "ModelClient": "musicvae_xai.serving.base",
    "ServingError": "musicvae_xai.serving.base",
    "ServingUnavailableError": "musicvae_xai.serving.base",
    "LocalModel": "musicvae_xai.serving.local",
    "RestClient": "musicvae_xai.serving.rest",
    "GrpcClient": "musicvae_xai.serving.grpc_client",
    "connect": "musicvae_xai.serving.targets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'musicvae_xai.serving' has no attribute {name!r}")
