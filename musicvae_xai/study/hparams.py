"""TensorBoard HParams for a study: every configuration logs its hyper-parameters and final metrics.

    write_hparams(os.path.join(run_dir, HPARAMS_DIRNAME), result, study_info)

writes, into ``STUDY_DIR/NAME/hparams/``, one event file with the HParams plugin's experiment
definition (``hp.hparams_config``: the grid axes and training settings as hyper-parameters, with the
study's grid values as discrete domains when ``study_info`` (``study.json``'s "study") is given, and
the report's metrics), the session of this configuration (``hp.hparams`` with ``trial_id`` = NAME)
and its final metrics as scalars ``final/<metric key>`` at the last training step. Then

    tensorboard --logdir STUDY_DIR

shows the whole grid in the HParams dashboard (table, parallel coordinates, scatter plots). Every
run writes the same experiment definition; TensorBoard uses one of them. Rewriting a configuration
(a resumed or retrained run) replaces its earlier HParams event files, including the session the
trainer itself wrote there (``musicvae_xai.training.hparams``, which does the writing for both).
"""

from __future__ import annotations

from typing import Optional

from musicvae_xai import metric_registry
from musicvae_xai.study.grid import attribute_set_label
from musicvae_xai.study.results import METRICS
from musicvae_xai.training.hparams import HPARAMS_DIRNAME, METRIC_PREFIX, write_hparams_dir

__all__ = ["HPARAMS_DIRNAME", "METRIC_PREFIX", "experiment", "hparam_values", "metric_values", "write_hparams"]
#: Grid axes (from the result's ``grid``) then training settings (from its ``flags``), in dashboard order.
GRID_HPARAMS = ("model", "latent_dim", "dataset", "attributes", "attribute_count", "seed")
SETTING_HPARAMS = ("hidden_size", "batch_size", "learning_rate", "train_steps", "epochs", "dropout", "beta",
                   "gamma", "delta", "lambda_d", "lambda_kl", "sampling_k", "teacher_forcing")
#: Final metrics logged per configuration: the report's metrics plus the other registered ones.
EXTRA_METRICS = tuple((m.key, m.label) for m in metric_registry.metrics(in_study=False))


def hparam_values(result: dict) -> dict:
    """{name: bool | int | float | str} of a result: its grid (attributes as the a2/a4 label) and
    settings."""

    g, flags = result["grid"], result.get("flags") or {}
    values = {"model": str(g["model"]), "latent_dim": int(g["latent_dim"]), "dataset": str(g["dataset"]),
              "attributes": attribute_set_label(g["attributes"]), "attribute_count": len(g["attributes"]),
              "seed": int(g.get("seed", 0))}
    for key in SETTING_HPARAMS:
        v = flags.get(key)
        if isinstance(v, (bool, int, float, str)):
            values[key] = v
    return values


def metric_values(result: dict) -> dict:
    """{"final/<key>": float} of the result's metrics that are numbers (and its validation accuracy)."""
    metrics = result.get("metrics") or {}
    out = {}
    for key in [m.key for m in METRICS] + [k for k, _ in EXTRA_METRICS]:
        v = metrics.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[METRIC_PREFIX + key] = float(v)
    val = (result.get("training") or {}).get("val_token_accuracy")
    if isinstance(val, (int, float)):
        out[METRIC_PREFIX + "val_token_accuracy"] = float(val)
    return out


def _domain(name: str, study_info: Optional[dict]) -> Optional[list]:
    """The study's grid values of a grid axis (a Discrete domain), else None."""

    if not study_info:
        return None
    values = {"model": study_info.get("models"), "latent_dim": study_info.get("latent_sizes"),
              "dataset": study_info.get("datasets"), "seed": study_info.get("seeds"),
              "attributes": [attribute_set_label(s) for s in study_info.get("attribute_sets") or []] or None,
              "attribute_count": sorted({len(s) for s in study_info.get("attribute_sets") or []}) or None}.get(name)
    return list(values) if values else None


def experiment(study_info: Optional[dict] = None) -> tuple:
    """(hparams [(name, domain values or None)], metrics [(tag, display name)]) of the study's
    experiment definition."""
    hparams = [(n, _domain(n, study_info)) for n in GRID_HPARAMS + SETTING_HPARAMS]
    metrics = [(METRIC_PREFIX + m.key, m.label) for m in METRICS]
    metrics += [(METRIC_PREFIX + k, label) for k, label in EXTRA_METRICS]
    metrics.append((METRIC_PREFIX + "val_token_accuracy", "Val. acc."))
    return hparams, metrics


def write_hparams(logdir: str, result: dict, study_info: Optional[dict] = None) -> str:
    """Writes the HParams event file of one finished configuration (``result``: a result.json record
    with status ok) into ``logdir``, replacing earlier ones; returns ``logdir``."""
    step = int((result.get("training") or {}).get("steps") or 0)
    hparams, metrics = experiment(study_info)
    return write_hparams_dir(logdir, hparam_values(result), result["name"], hparams=hparams, metrics=metrics,
                             final=metric_values(result), step=step)
