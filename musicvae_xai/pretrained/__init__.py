"""The pretrained MeasureVAE shipped in the package (see README.md in this folder for licence and attribution).

A TF-Serving SavedModel export (``musicvae-export``'s format) of a MeasureVAE trained on Irish dance
tunes only (O'Neill's *Music of Ireland*, public domain; the CRÉ corpus, CC BY 4.0), in
``measure_vae_irish/1/``, with its measured figures in ``figures.json``:

    from musicvae_xai import Explainer
    ex = Explainer.pretrained()                     # = Explainer(*musicvae_xai.pretrained.load())
    python -m musicvae_xai.explorer                 # no model flags: opens this model

``load()`` runs it through its serving signatures (``savedmodel.ExportedVAE``), so what is explained
and evaluated is the exported artefact itself. ``summarise(report)`` reduces an evaluation report to the
figures the package promises and ``shortfalls`` lists the ones below ``TARGETS``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # importing them loads TensorFlow; this module stays light for the explorer's start-up
    from musicvae_xai.config import RunConfig
    from musicvae_xai.evaluation import EvaluationOptions
    from musicvae_xai.pretrained.savedmodel import ExportedVAE

#: The export base folder's name (the model name TF-Serving would serve it under) and its version.
NAME = "measure_vae_irish"
VERSION = 1
FIGURES_FILENAME = "figures.json"
#: The configuration that trains it: ``musicvae-train --config=pretrained_irish``.
CONFIG = "pretrained_irish"
#: What the shipped model must reach on its test split (the figures the package promises): R^2 of each
#: attribute on its own latent dim (the dim with the highest mutual information must be that dim) and
#: controllability.
TARGETS = {"r2_own_dim": 0.8, "controllability": 0.85}
#: The test fixture (tests/fixtures/pretrained_irish_test.npz): this many test-split measures, drawn
#: with ``inference.subsample(len(test), FIXTURE_MEASURES, FIXTURE_SEED)``.
FIXTURE_MEASURES = 512
FIXTURE_SEED = 17

_HERE = os.path.dirname(os.path.abspath(__file__))


def export_base() -> str:
    """The folder holding the shipped export's version folders (``.../pretrained/measure_vae_irish``)."""
    return os.path.join(_HERE, NAME)


def export_dir() -> str:
    """The shipped export's version folder; FileNotFoundError (one line) when it is not installed."""
    path = os.path.join(export_base(), str(VERSION))
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"{path}: the pretrained model is not installed with this package "
                                "(a source checkout without it? see musicvae_xai/pretrained/README.md)")
    return path


def load() -> "tuple[RunConfig, ExportedVAE]":
    """(config, model) of the shipped export: a ``RunConfig`` and a ``savedmodel.ExportedVAE``."""
    from musicvae_xai.pretrained.savedmodel import load_export

    return load_export(export_dir())


def figures() -> dict:
    """The measured figures shipped beside the export (``figures.json``): {"test": summary of the whole
    test split, "fixture": summary of the test fixture subset, "training_command", ...}."""
    with open(os.path.join(_HERE, FIGURES_FILENAME), encoding="utf-8") as f:
        return json.load(f)


def fixture_options() -> "EvaluationOptions":
    """The ``evaluation.EvaluationOptions`` the fixture's figures are measured with (build and test)."""
    from musicvae_xai.evaluation import EvaluationOptions

    return EvaluationOptions(split="test", seed=0, sweep_measures=64)


def explorer_export(export: Optional[str], serving_url: Optional[str]) -> Optional[str]:
    """The export the explorer opens: ``export`` when given; the shipped model when neither an export
    nor a TF-Serving address is given; None (TF-Serving) otherwise."""
    if export or serving_url:
        return export
    return export_dir()


def summarise(report: dict) -> dict:
    """The promised figures of an ``evaluation.evaluate_model`` report (plain JSON types).

    Returns {"num_measures", "r2_own_dim": {attribute: R^2 on its own dim, or None when the dim with
    the highest MI is another one}, "controllability", "leakage", "token_accuracy", "note_accuracy"
    (sampled z), "token_accuracy_mean_z", "note_accuracy_mean_z", "majority_token_accuracy",
    "majority_note_accuracy", "per_tick_token_accuracy", "per_tick_note_accuracy" (null without
    baselines), "kl_per_measure"}.
    """
    r2 = {row["attribute"]: (row["r2"] if row["is_intended"] else None)
          for row in report["interpretability"]["per_attribute"]}
    base = report.get("baselines") or {}
    independence = report["attribute_independence"]
    return {
        "num_measures": report["num_measures"],
        "r2_own_dim": r2,
        "controllability": independence["controllability"],
        "leakage": independence["leakage"],
        "token_accuracy": report["token_accuracy"],
        "note_accuracy": report["note_accuracy"],
        "token_accuracy_mean_z": report["token_accuracy_mean_z"],
        "note_accuracy_mean_z": report["note_accuracy_mean_z"],
        "majority_token_accuracy": base.get("majority_token_accuracy"),
        "majority_note_accuracy": base.get("majority_note_accuracy"),
        "per_tick_token_accuracy": base.get("per_tick_majority_token_accuracy"),
        "per_tick_note_accuracy": base.get("per_tick_majority_note_accuracy"),
        "kl_per_measure": report["kl_per_measure"],
    }


def shortfalls(summary: dict) -> list:
    """One line per promised figure that ``summary`` (from ``summarise``) misses; empty when all are met."""
    out = []
    for name, r2 in summary["r2_own_dim"].items():
        if r2 is None:
            out.append(f"{name}: the dim with the highest mutual information is not its own")
        elif r2 < TARGETS["r2_own_dim"]:
            out.append(f"{name}: R^2 {r2:.3f} on its own dim < {TARGETS['r2_own_dim']}")
    if summary["controllability"] < TARGETS["controllability"]:
        out.append(f"controllability {summary['controllability']:.3f} < {TARGETS['controllability']}")
    return out
