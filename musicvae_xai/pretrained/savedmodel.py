"""An export of ``musicvae_xai.export`` (a TF-Serving SavedModel) behind the ``MusicVAE`` interface.

``inference.Runner``, ``evaluation.evaluate_model``, the analysis and ``explain.Explainer`` reach a model
only through the part of the ``MusicVAE`` interface that ``ExportedVAE`` implements here (``encode``,
``decode``, ``controls``, ``apply_controls``, ``default_controls``, ``check_tokens``, ``check_latent``,
``config``, ``vocabulary``, ``attribute_names``, ``needs_controls``). So a shipped export is explained
and evaluated exactly as served: through its ``encode`` and ``decode`` signatures, without the Keras
model code that trained it (decoding with ``allowed`` tokens excepted, which no signature offers: that
runs this package's model code holding the export's weights). Everything else comes from the export's
``assets.extra/`` (the resolved ``config.json``, ``controls.json``).

Arrays: tokens int32 [B, 24]; z, z_mean, z_scale float32 [B, Z]; controls float32 [B, K].
"""

from __future__ import annotations

import os
from typing import Optional

import tensorflow as tf

from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.controls import Control
from musicvae_xai.models.base import MusicVAE, controls_sweep
from musicvae_xai.serving import signatures as sigs



class ExportedVAE:
    """A loaded export (a version folder, or an export base whose newest version is taken).

    Raises ConfigError (one line naming the path) when the folder is not an export of this package
    (no ``assets.extra/config.json`` or ``controls.json``, or made with other model definitions) and
    FileNotFoundError when it holds no SavedModel.
    """

    def __init__(self, export_dir: str):
        from musicvae_xai.serving.local import LocalModel

        self.client = LocalModel(os.fspath(export_dir))  # checks the saved model_version
        self.export_dir = self.client.export_dir
        assets = self.client.assets
        for name in ("config", "controls", "export"):
            if name not in assets:
                raise ConfigError(f"{self.export_dir}: assets.extra/{name}.json is missing "
                                  "(not an export of musicvae_xai.export?)")
        self.config = RunConfig.from_dict(assets["config"])
        self.vocabulary = self.config.vocabulary
        self.attribute_names = tuple(self.config.attributes)
        self.needs_controls = bool(assets["export"].get("needs_controls", False))
        self.controls = [Control.from_dict(c) for c in assets["controls"]["controls"]]
        self.manifest = assets["export"]
        functions = self.client.loaded.signatures
        self._encode = functions[sigs.ENCODE]
        self._decode = functions[sigs.DECODE]
        self._model_code: Optional[MusicVAE] = None

    # -- the MusicVAE interface ------------------------------------------------------------------
    def encode(self, tokens) -> dict:
        """tokens int32 [B, 24] -> {"z_mean", "z_scale", "z" (= z_mean), "attributes" [B, K]}."""
        out = self._encode(tokens=tf.convert_to_tensor(tokens, tf.int32))
        return {"z_mean": out["z_mean"], "z_scale": out["z_scale"], "z": out["z_mean"],
                "attributes": out["attributes"]}

    def decode(self, z, controls=None, allowed=None) -> dict:
        """Greedy decoding: z float32 [B, Z] (+ controls [B, K]) -> {"tokens" int32 [B, 24],
        "probabilities" float32 [B, 24, V]}. allowed bool [B, V]: the tokens every tick may choose
        (``MusicVAE.decode``); the signatures take no such input, so this decodes with the model
        code of this package holding the export's weights (``explorer.weights.restore_model``)."""
        z = tf.convert_to_tensor(z, tf.float32)
        if self.needs_controls and controls is None:
            raise ValueError("this model's decoder needs controls [B, K] (see default_controls)")
        if allowed is not None:
            return self.model_code().decode(z, controls, allowed=allowed)
        if self.needs_controls:
            return self._decode(z=z, controls=tf.convert_to_tensor(controls, tf.float32))
        return self._decode(z=z)

    @tf.autograph.experimental.do_not_convert
    def model_code(self) -> MusicVAE:
        """This package's model holding the export's weights, built on first use."""
        if self._model_code is None:
            from musicvae_xai.explorer.weights import restore_model

            with tf.init_scope():  # eagerly, also when first called while a tf.function is traced
                self._model_code = restore_model(self.export_dir, self.client.loaded)
        return self._model_code

    def default_controls(self, tokens) -> Optional[tf.Tensor]:
        """The measured attributes float32 [B, K] of tokens (a decoder input's own values), or None."""
        if not self.needs_controls:
            return None
        return self.encode(tokens)["attributes"]

    def apply_controls(self, z, controls, index: int, values):
        """z [B, Z], controls [B, K] or None, values [S] -> (z [B*S, Z], controls [B*S, K] or None)
        with control number ``index`` (a position in ``controls``) set to each value."""
        control = self.controls[int(index)]
        in_latent = control.in_latent
        if not in_latent and controls is None:
            raise ValueError(f"control {control.name} is a decoder input: the controls [B, K] to sweep from are needed")
        return controls_sweep(z, None if in_latent else controls, control.index, values, control_in_latent=in_latent)

    # The same input checks as the Keras models' (one-line ValueError).
    check_tokens = MusicVAE.check_tokens
    check_latent = MusicVAE.check_latent

    def __repr__(self) -> str:
        from musicvae_xai import reprs

        return reprs.model_repr("ExportedVAE", model=self.config.model, latent_dim=self.config.latent_dim,
                                controls=reprs.control_labels(self.controls), source=f"export {self.export_dir}")


def load_export(export_dir: str) -> tuple[RunConfig, ExportedVAE]:
    """(config, model) of an export, as ``inference.load_run`` gives them for a run directory."""
    model = ExportedVAE(export_dir)
    return model.config, model

