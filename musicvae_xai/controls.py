"""What a person can turn on a model: the ``Control`` type every layer shares (models, inference,
export, explorer, analysis), with no TensorFlow.

A control is one of two kinds: a regularised latent dim (``LATENT_DIM``: ``index`` is a dim of z,
MeasureVAE) or an attribute input of the decoder (``ATTRIBUTE_INPUT``: ``index`` is a place in the
controls vector float32 [B, K] the decoder takes, AdversarialVAE). ``models.registry`` names the kind
each model has; the export writes ``Control.to_dict()`` to ``controls.json`` and the explorer and the
pretrained loader read it back with ``Control.from_dict``.
"""

from __future__ import annotations

import dataclasses

from musicvae_xai.attributes import attribute_label

#: A regularised latent dim: ``index`` is a dim of z.
LATENT_DIM = "latent_dim"
#: An attribute input of the decoder: ``index`` is a place in the controls vector.
ATTRIBUTE_INPUT = "attribute_input"
KINDS = (LATENT_DIM, ATTRIBUTE_INPUT)
#: Range swept for a latent-dim control (traversals, the explorer, exports that do not say).
LATENT_RANGE = (-4.0, 4.0)


@dataclasses.dataclass(frozen=True)
class Control:
    """One thing a person can turn: ``kind`` (``KINDS``), ``index`` (a dim of z, or a place in the
    controls vector), the ``attribute`` it is meant to move and the range ``low``..``high`` it is
    swept over."""

    name: str          # e.g. "z[0]" or "note_density"
    attribute: str
    kind: str
    index: int
    low: float
    high: float

    @property
    def in_latent(self) -> bool:
        """True for a latent dim, False for a decoder input."""
        return self.kind == LATENT_DIM

    @property
    def short(self) -> str:
        """The control's name in text: ``z[2]``, or the attribute's name for a decoder input."""
        return self.name if self.in_latent else attribute_label(self.attribute, units=False)

    @property
    def label(self) -> str:
        """An axis label: ``z[2]  (latent dim for note density)`` or ``note density (unit), decoder input``."""
        if self.in_latent:
            return f"{self.name}  (latent dim for {attribute_label(self.attribute, units=False)})"
        return f"{attribute_label(self.attribute)}, decoder input"

    def to_dict(self) -> dict:
        """The six fields (``controls.json``, evaluation reports)."""
        return dataclasses.asdict(self)

    def page_dict(self) -> dict:
        """``to_dict`` plus what a page shows: "attribute_label" and "label" naming the attribute first
        (``note density (z[2])`` for a latent dim, ``note density`` for a decoder input)."""
        attribute = attribute_label(self.attribute, units=False)
        return {**self.to_dict(), "attribute_label": attribute,
                "label": f"{attribute} ({self.name})" if self.in_latent else attribute}

    @classmethod
    def from_dict(cls, d: dict) -> "Control":
        """From ``to_dict``'s keys (others ignored); KeyError, TypeError or ValueError when one is
        missing or of the wrong type."""
        return cls(str(d["name"]), str(d["attribute"]), str(d["kind"]), int(d["index"]), float(d["low"]),
                   float(d["high"]))


def latent_controls(attributes) -> list:
    """One latent-dim control per attribute, attribute k on dim k, over ``LATENT_RANGE``."""
    lo, hi = LATENT_RANGE
    return [Control(f"z[{k}]", a, LATENT_DIM, k, lo, hi) for k, a in enumerate(attributes)]
