"""A MeasureVAE that regularises only the first ``--regularised_count`` of its attributes
(``--model=partial_vae``).

The ablation between the plain VAE (none regularised) and MeasureVAE (all): the same token encoder and
hierarchical decoder (z float32 [B, Z] -> logits float32 [B, 24, V]) as ``measure_vae.MeasureVAE``, the
first N attributes of ``--attributes`` regularised on latent dims 0..N-1 (each a control, with its
``ar_*`` loss term), the others only measured, so the evaluation shows what regularising them adds.

Registered in ``models.registry`` with its own setting, ``regularised_count``.
"""

from __future__ import annotations

from musicvae_xai.config import RunConfig
from musicvae_xai.models.measure_vae import MeasureVAE


class PartialVAE(MeasureVAE):
    """MeasureVAE with attributes 0..regularised_count-1 regularised, the rest only measured."""

    def __init__(self, config: RunConfig, **kwargs):
        super().__init__(config, name="partial_vae", **kwargs)

    @property
    def regularised_attributes(self) -> tuple:
        """The first ``regularised_count`` of the run's attributes, in order on latent dims 0..N-1."""
        return self.attribute_names[:self.config.regularised_count]
