"""The weights of an export, by name, for a forward pass written elsewhere (the static site's TensorFlow.js).

A SavedModel keeps its variables as a flat list whose names do not say which layer they belong to
(the encoder's GRU cells are all ``encoder/input_kernel:0``). The names are recovered from the
traced functions instead: the export's ``_encoder_core`` and ``_decoder_core`` (``serving.graph``)
capture their variables in the order the model's ``encode`` / ``decode`` first read them, so the same
model rebuilt from the export's ``config.json`` and traced the same way captures its Keras variables,
whose paths are names (``encoder/bigru/fwd_0/input_kernel``), in the same order. Shapes are checked
pairwise, and the static site's parity test checks the values end to end.

``export_weights(export_dir)`` -> (``{name: float32 array}``, the export's assets); names drop the
model's own prefix (``measure_vae/``). ``restore_model(export_dir)``: that model holding the values.
"""

from __future__ import annotations

import json
import os

import numpy as np

from musicvae_xai.export import ASSETS_EXTRA


class WeightsError(ValueError):
    """An export whose weights cannot be named (one line naming the path)."""


def read_assets(export_dir: str) -> dict:
    """{name: parsed JSON} of every ``assets.extra/*.json`` of an export version folder."""
    folder = os.path.join(export_dir, ASSETS_EXTRA)
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                out[name[:-5]] = json.load(f)
    return out


def _fresh_functions(model) -> dict:
    """The model's encode and decode traced as ``serving.graph.ServingModule`` traces them:
    part -> concrete function."""
    import tensorflow as tf

    from musicvae_xai.representation import MEASURE_TICKS

    z_spec = tf.TensorSpec([None, model.config.latent_dim], tf.float32)
    tokens_spec = tf.TensorSpec([None, MEASURE_TICKS], tf.int32)

    def encoder(tokens):
        enc = model.encode(tokens)
        return enc["z_mean"], enc["z_scale"]

    if model.needs_controls:
        c_spec = tf.TensorSpec([None, len(model.attribute_names)], tf.float32)
        decoder = tf.function(lambda z, c: model.decode(z, c)["tokens"], input_signature=[z_spec, c_spec],
                              autograph=False)
    else:
        decoder = tf.function(lambda z: model.decode(z)["tokens"], input_signature=[z_spec], autograph=False)
    return {"_encoder_core": tf.function(encoder, input_signature=[tokens_spec], autograph=False)
            .get_concrete_function(), "_decoder_core": decoder.get_concrete_function()}


def _name(model, variable) -> str:
    """'encoder/bigru/fwd_0/input_kernel': a variable's Keras path without the model's name, always
    under its part's name (``encoder/``, ``decoder/``; Keras leaves it out of weights a part creates in
    an explicit build), or the model's own weights (``attribute_mean``) as they are."""
    path = variable.path
    path = path[len(model.name) + 1:] if path.startswith(model.name + "/") else path
    for part in ("encoder", "decoder"):
        owned = {id(v) for v in getattr(model, part).variables}
        if id(variable) in owned and not path.startswith(part + "/"):
            return f"{part}/{path}"
    return path


def _matched(export_dir: str, loaded=None) -> tuple:
    """(model: this package's model rebuilt from the export's config.json, [(its variable, the export's
    value float32)] for every variable the export's traced functions read, assets). ``loaded``: the
    export already loaded by ``tf.saved_model.load`` (loaded here when None)."""
    import tensorflow as tf

    from musicvae_xai.config import RunConfig
    from musicvae_xai.models.base import build_model

    assets = read_assets(export_dir)
    config = RunConfig.from_dict(assets["config"])
    model = build_model(config, data_statistics=assets.get("data_statistics"))
    by_handle = {id(v.value.handle): v for v in model.variables}
    loaded = tf.saved_model.load(export_dir) if loaded is None else loaded
    values = {id(v.handle): v for v in loaded.captured_variables}
    pairs = []
    for part, fresh in _fresh_functions(model).items():
        saved = getattr(loaded, part).concrete_functions[0]
        ours = [h for h in fresh.captured_inputs if h.dtype == tf.resource]
        theirs = [h for h in saved.captured_inputs if h.dtype == tf.resource]
        if len(ours) != len(theirs):
            raise WeightsError(f"{export_dir}: {part} reads {len(theirs)} variables, this package's "
                               f"{config.model} reads {len(ours)} (exported by another version?)")
        for mine, other in zip(ours, theirs, strict=True):
            variable = by_handle[id(mine)]
            value = values[id(other)].numpy().astype(np.float32)
            if value.shape != tuple(variable.shape):
                raise WeightsError(f"{export_dir}: variable {_name(model, variable)} has shape {list(value.shape)}, "
                                   f"this package's {config.model} expects {list(variable.shape)}")
            pairs.append((variable, value))
    return model, pairs, assets


def export_weights(export_dir: str) -> tuple:
    """({name: float32 ndarray}, assets) of an export version folder (see the module docstring).

    Raises WeightsError when the export was traced from other model code than this package's (the
    captured variables differ in number or shape)."""
    model, pairs, assets = _matched(export_dir)
    return {_name(model, variable): value for variable, value in pairs}, assets


def restore_model(export_dir: str, loaded=None):
    """This package's model (a ``MusicVAE``) holding an export's weights: the export's graph run as
    Python model code, for what its signatures do not offer (decoding with ``allowed`` tokens at every
    tick). ``loaded``: the export already loaded by ``tf.saved_model.load``. Raises WeightsError as
    ``export_weights`` does."""
    model, pairs, _ = _matched(export_dir, loaded)
    for variable, value in pairs:
        variable.assign(value)
    return model
