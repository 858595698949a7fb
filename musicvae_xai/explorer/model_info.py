"""What the explorer needs to know about a served model: vocabulary, attributes, controls.

Read from the export's ``assets.extra/`` (``LocalModel.assets``, or the JSON files of an export
folder given with ``--assets`` when the model runs in TF-Serving). Without assets (TF-Serving only
shows signatures) it is inferred from the signature metadata: latent size Z and attribute count K
from ``encode``'s outputs, "decoder takes controls" from ``decode``'s inputs, and the library's
defaults for the rest (vocabulary 55..84, the paper's attribute order, latent range -4..4); the
attribute-input ranges are then taken from encoded data (see ``Explorer.calibrate``). The explorer
never asks which model it is: everything follows from the controls.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from musicvae_xai import attributes as attrs
from musicvae_xai.controls import ATTRIBUTE_INPUT, KINDS, LATENT_DIM, Control, latent_controls
from musicvae_xai.representation import Vocabulary



def attribute_info(name: str) -> dict:
    """What the page shows of an attribute: {"name", "label", "unit" (musician unit, "" for a 0..1
    score), "scale" (shown value = raw value * scale), "decimals", "display_range" [lo, hi] (in the
    shown unit), "description" (plain language, for a tooltip), "raw_unit" (the raw value's
    definition, for researcher details)}. From ``attributes.LABELS`` and ``attributes.PRESENTATION``;
    an attribute the library does not know is shown raw on a 0..1 meter."""
    label, raw_unit = attrs.label_and_unit(name)
    shown = attrs.PRESENTATION.get(name) or attrs.Presentation("", 1.0, 3, (0.0, 1.0), "")
    return {"name": name, "label": label, **shown.to_dict(),
            "display_range": list(shown.display_range), "raw_unit": raw_unit}


class ModelInfoError(ValueError):
    """The model's metadata cannot be used (one line naming what is wrong)."""


@dataclasses.dataclass
class ModelInfo:
    """model_name/version: as served; latent_dim Z; vocabulary; attribute_names (K, the order of the
    ``encode``/``traverse`` attributes and of the decoder's controls); controls: the knobs;
    needs_controls: ``decode`` takes controls float32 [B, K]; model: the trained model's name when
    the export says it (display only); source: "assets" or "signatures" (inferred)."""

    model_name: str
    version: Optional[int]
    latent_dim: int
    vocabulary: Vocabulary
    attribute_names: tuple
    controls: list
    needs_controls: bool
    model: str = ""
    source: str = "assets"
    config: Optional[dict] = None
    sample_controls: Optional[list] = None

    def initial_controls(self) -> Optional[list]:
        """float [K]: the controls a fresh page decodes with (the export's ``sample_controls``, the
        training means, else the middle of each control's range); None without controls."""
        if not self.needs_controls:
            return None
        if self.sample_controls and len(self.sample_controls) == self.num_attributes:
            return [float(v) for v in self.sample_controls]
        values = [0.0] * self.num_attributes
        for c in self.controls:
            if c.kind == ATTRIBUTE_INPUT:
                values[c.index] = (c.low + c.high) / 2.0
        return values

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_names)

    def to_dict(self) -> dict:
        """JSON for the page ("dataset": the training data's name, "genre": its music in a musician's
        words, both "" when the export does not say)."""
        from musicvae_xai.datasets.sources import genre

        v = self.vocabulary
        dataset = str((self.config or {}).get("dataset") or "")
        return {
            "model_name": self.model_name, "version": self.version, "model": self.model,
            "dataset": dataset, "genre": genre(dataset),
            "latent_dim": self.latent_dim, "needs_controls": self.needs_controls, "source": self.source,
            "vocabulary": {"min_pitch": v.min_pitch, "max_pitch": v.max_pitch, "size": v.size,
                           "rest_id": v.rest_id, "hold_id": v.hold_id, "start_id": v.start_id,
                           "end_id": v.end_id},
            "attributes": [attribute_info(n) for n in self.attribute_names],
            "controls": [c.page_dict() for c in self.controls],
            "pairs": default_pairs(len(self.controls)),
            "initial_controls": self.initial_controls(),
        }


def default_pairs(count: int) -> list:
    """[[x, y], ...]: controls paired for XY pads (0-1, 2-3, ...; an odd last one pairs with 0)."""
    if count < 2:
        return []
    pairs = [[i, i + 1] for i in range(0, count - 1, 2)]
    if count % 2:
        pairs.append([count - 1, 0])
    return pairs


def read_assets(path: str) -> dict:
    """{name: parsed JSON} of ``assets.extra/*.json`` of an export (a version folder, an export base
    whose newest version is taken, or the ``assets.extra`` folder itself)."""
    from musicvae_xai.serving.local import resolve_export_dir

    if os.path.basename(os.path.normpath(path)) == "assets.extra":
        folder = path
    else:
        try:
            folder = os.path.join(resolve_export_dir(path), "assets.extra")
        except FileNotFoundError as e:
            raise ModelInfoError(str(e)) from None
    if not os.path.isdir(folder):
        raise ModelInfoError(f"{path}: no assets.extra folder (not an export of musicvae_xai.export?)")
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    out[name[:-5]] = json.load(f)
            except (OSError, ValueError) as e:
                raise ModelInfoError(f"{os.path.join(folder, name)}: unreadable ({e})") from None
    return out


def _signature_sizes(metadata: dict) -> tuple:
    """(Z, K, V, needs_controls) from a client's signature metadata."""
    sigs = metadata.get("signatures", {})
    try:
        enc, dec = sigs["encode"], sigs["decode"]
        z = int(enc["outputs"]["z_mean"]["shape"][1])
        k = int(enc["outputs"]["attributes"]["shape"][1])
        v = int(dec["outputs"]["probabilities"]["shape"][2])
    except (KeyError, TypeError, IndexError) as e:
        raise ModelInfoError(f"the model's signatures are not those of a musicvae_xai export (missing {e})") from None
    return z, k, v, "controls" in dec["inputs"]


def from_assets(assets: dict, metadata: dict) -> ModelInfo:
    """ModelInfo from parsed ``assets.extra`` JSON, checked against the served signatures."""
    z, k, v, needs = _signature_sizes(metadata)
    try:
        vocab = Vocabulary.from_dict(assets["vocabulary"])
        names = tuple(assets["attributes"]["names"])
        controls = [Control.from_dict(c) for c in assets["controls"]["controls"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ModelInfoError(f"the export's assets.extra is incomplete ({type(e).__name__}: {e})") from None
    if vocab.size != v or len(names) != k:
        raise ModelInfoError(f"the assets (vocabulary of {vocab.size}, {len(names)} attributes) do not match the "
                             f"served model (vocabulary of {v}, {k} attributes): wrong --assets folder?")
    for c in controls:
        limit = z if c.kind == LATENT_DIM else k
        if c.kind not in KINDS or not 0 <= c.index < limit or not c.low < c.high:
            raise ModelInfoError(f"control {c.name}: unusable ({c.kind}, index {c.index}, range {c.low}..{c.high})")
    if any(c.kind == ATTRIBUTE_INPUT for c in controls) != needs:
        raise ModelInfoError("the assets' controls and the served decode signature disagree about decoder "
                             "inputs: wrong --assets folder?")
    export = assets.get("export", {})
    return ModelInfo(model_name=str(metadata.get("model") or export.get("model_name", "")),
                     version=metadata.get("version", export.get("version")), latent_dim=z, vocabulary=vocab,
                     attribute_names=names, controls=controls, needs_controls=needs,
                     model=str(export.get("model", (assets.get("config") or {}).get("model", ""))),
                     source="assets", config=assets.get("config"),
                     sample_controls=assets["controls"].get("sample_controls"))


def from_signatures(metadata: dict) -> ModelInfo:
    """ModelInfo inferred from signatures alone (see the module docstring). Attribute-input ranges are
    placeholders [0, 1] until ``Explorer.calibrate`` sets them from encoded data."""
    z, k, v, needs = _signature_sizes(metadata)
    vocab = Vocabulary()
    if vocab.size != v:
        raise ModelInfoError(f"the served model has a vocabulary of {v} tokens, not the default {vocab.size}: "
                             "pass --assets=EXPORT_DIR (the export folder TF-Serving serves) so the explorer "
                             "knows its pitch range")
    if k == len(attrs.DEFAULT_FOUR):
        names = attrs.DEFAULT_FOUR
    elif k == len(attrs.DEFAULT_TWO):
        names = attrs.DEFAULT_TWO
    else:
        raise ModelInfoError(f"the served model has {k} attributes, not a default setting: pass "
                             "--assets=EXPORT_DIR so the explorer knows their names")
    if needs:
        controls = [Control(n, n, ATTRIBUTE_INPUT, i, 0.0, 1.0) for i, n in enumerate(names)]
    else:
        controls = latent_controls(names)
    return ModelInfo(model_name=str(metadata.get("model", "")), version=metadata.get("version"), latent_dim=z,
                     vocabulary=vocab, attribute_names=tuple(names), controls=controls, needs_controls=needs,
                     source="signatures")


def model_info(client, assets_dir: Optional[str] = None) -> ModelInfo:
    """ModelInfo of a serving client: its own assets (``LocalModel``), else those of ``assets_dir``,
    else inferred from its signatures. Raises ModelInfoError, or the client's ServingError."""
    metadata = client.metadata()
    assets = read_assets(assets_dir) if assets_dir else getattr(client, "assets", None)
    if assets:
        return from_assets(assets, metadata)
    return from_signatures(metadata)
