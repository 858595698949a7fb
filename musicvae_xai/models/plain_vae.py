"""The plain VAE: MeasureVAE's encoder and decoder without attribute regularisation (``--model=plain_vae``).

The natural baseline of the attribute-regularised models (Pati & Lerch's ablation): the same token
encoder (bidirectional GRU -> diagonal Gaussian posterior over z float32 [B, Z]) and the same
hierarchical beat/tick decoder (z -> logits float32 [B, 24, V]) as ``measure_vae.MeasureVAE``, trained
with reconstruction + ``beta`` x KL only, that is MeasureVAE at gamma = 0: no latent dim is tied to an
attribute, so ``--gamma`` and ``--delta`` are not used and the training metrics have no ``ar_*`` terms.
Teacher forcing, dropout, initialisation and every architecture flag act as for MeasureVAE.

It has no controls (``controls`` is empty): evaluation reports attribute independence as not
applicable and still measures interpretability, MIG, SAP, SCC and modularity of z against the run's
``--attributes`` -- what the regularisation of MeasureVAE adds is the difference. The export's
``traverse`` signature sweeps any latent dim (``control`` = a dim of z, as for MeasureVAE), and the
explorer shows the model without control sliders or pads.

Registered in ``models.registry``; nothing else in the library names this class.
"""

from __future__ import annotations

from musicvae_xai.config import RunConfig
from musicvae_xai.models.measure_vae import MeasureVAE


class PlainVAE(MeasureVAE):
    """MeasureVAE with no regularised attribute: loss = reconstruction + beta * KL."""

    def __init__(self, config: RunConfig, **kwargs):
        super().__init__(config, name="plain_vae", **kwargs)

    @property
    def regularised_attributes(self) -> tuple:
        """None: no latent dim is regularised, so there are no controls and no ``ar_*`` loss terms."""
        return ()
