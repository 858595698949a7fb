"""What a loaded model prints: the one-line ``__repr__`` of ``Explainer``, ``ExportedVAE`` and the
serving clients (``LocalModel``, ``RestClient``, ``GrpcClient``), built the same way everywhere.

    Explainer(model='measure_vae', latent_dim=16, controls=['z[0] rhythmic_complexity', ...],
              source='export .../measure_vae_irish/1')

Fields that are not known (None) are left out, so a remote client shows its latent size and controls
only once its metadata has been fetched; a ``__repr__`` never does I/O. No TensorFlow here.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Union


def control_label(control: Union[Any, Mapping]) -> str:
    """'z[0] rhythmic_complexity' (a latent dim and the attribute it is meant to move), or the
    attribute's name alone for a decoder input named after it; ``control`` is a ``models.base.Control``
    or its dict (``controls.json``)."""
    get = control.get if isinstance(control, Mapping) else (lambda key: getattr(control, key, None))
    name, attribute = str(get("name")), get("attribute")
    return name if not attribute or attribute == name else f"{name} {attribute}"


def control_labels(controls: Optional[Iterable]) -> Optional[list]:
    """``control_label`` of each control; None when ``controls`` is None."""
    return None if controls is None else [control_label(c) for c in controls]


def model_repr(kind: str, **fields) -> str:
    """``kind(name=value, ...)`` with the values' reprs, in the order given, without the None ones."""
    return f"{kind}({', '.join(f'{k}={v!r}' for k, v in fields.items() if v is not None)})"


def latent_dim_of(summary: Optional[Mapping]) -> Optional[int]:
    """Z of a ``signatures.summarize_signature_defs`` summary (the ``decode`` input ``z`` [B, Z]), or None."""
    try:
        shape = summary["decode"]["inputs"]["z"]["shape"]
        return int(shape[-1]) if shape[-1] != -1 else None
    except (KeyError, TypeError, IndexError):
        return None


def controls_of(summary: Optional[Mapping]) -> Optional[str]:
    """What ``traverse``'s ``control`` indexes, from a summary: ``'K decoder inputs'`` when ``decode``
    takes ``controls`` [B, K], ``'latent dims'`` otherwise; None when unknown."""
    try:
        decode = summary["decode"]["inputs"]
    except (KeyError, TypeError):
        return None
    if "controls" not in decode:
        return "latent dims"
    shape = decode["controls"].get("shape") or ()
    return f"{shape[-1]} decoder inputs" if shape and shape[-1] != -1 else "decoder inputs"
