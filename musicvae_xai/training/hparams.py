"""TensorBoard HParams, shared by a training run and a study: one folder, one session, final metrics.

    write_hparams_dir(logdir, values, trial_id, hparams, metrics, final, step)

replaces every event file in ``logdir`` with one holding the HParams plugin's experiment definition
(``hp.hparams_config``: the hyper-parameters, with Discrete domains where given, and the metrics), the
session (``hp.hparams(values, trial_id=...)``) and the final metrics as scalars ``final/<key>`` at
``step``. ``tensorboard --logdir DIR`` then shows every session under DIR in the HParams dashboard.

A training run writes ``RUN_DIR/hparams`` (``config_values``: the RunConfig, ``final/val_<key>``: the
last validation metrics); a study (``musicvae_xai.study.hparams``) rewrites the same folder of each
configuration after evaluation with its grid axes and evaluation metrics, so a study's dashboard holds
one session per configuration.
"""

from __future__ import annotations

import glob
import os
from typing import Mapping, Optional, Sequence

HPARAMS_DIRNAME = "hparams"
METRIC_PREFIX = "final/"
#: One hyper-parameter of the experiment: (name, Discrete domain values or None for "inferred").
HParamSpec = tuple
#: One metric of the experiment: (tag, display name).
MetricSpec = tuple


def scalar_values(values: Mapping) -> dict:
    """{name: bool | int | float | str}: the entries of ``values`` HParams can hold (others dropped)."""
    return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}


def config_values(config) -> dict:
    """{setting: bool | int | float | str} of a RunConfig (``to_dict``: the shared settings and the
    model's own): every setting of those types (``attributes`` as its comma-joined names); settings that
    are None (e.g. an unset ``cache_dir``) are left out."""
    values = {}
    for name, v in config.to_dict().items():
        if isinstance(v, (tuple, list)) and all(isinstance(x, str) for x in v):
            v = ",".join(v)
        values[name] = v
    return scalar_values(values)


def remove_event_files(logdir: str) -> None:
    """Deletes the event files in ``logdir`` (an earlier session of the same run)."""
    for old in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        os.remove(old)


def write_hparams_dir(logdir: str, values: Mapping, trial_id: str, hparams: Optional[Sequence[HParamSpec]] = None,
                      metrics: Sequence[MetricSpec] = (), final: Optional[Mapping] = None, step: int = 0) -> str:
    """Writes one trial (one run's HParams record) into ``logdir``, replacing its earlier event files;
    returns ``logdir``.

    ``values``: {name: bool | int | float | str} of this trial (other types are dropped);
    ``hparams``: the experiment's hyper-parameters as (name, domain values or None), by default every
    name of ``values`` without a domain; ``metrics``: (tag, display name) of the experiment's metrics;
    ``final``: {tag: float} scalars written at ``step`` (tags as given, e.g. ``final/val_loss``).
    """
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    values = scalar_values(values)
    if hparams is None:
        hparams = [(name, None) for name in values]
    os.makedirs(logdir, exist_ok=True)
    remove_event_files(logdir)
    writer = tf.summary.create_file_writer(logdir)
    try:
        with writer.as_default():
            hp.hparams_config(hparams=[hp.HParam(name, hp.Discrete(list(domain)) if domain else None)
                                       for name, domain in hparams],
                              metrics=[hp.Metric(tag, display_name=label) for tag, label in metrics])
            hp.hparams(values, trial_id=trial_id)
            for tag, value in (final or {}).items():
                tf.summary.scalar(tag, float(value), step=int(step))
        writer.flush()
    finally:
        writer.close()
    return logdir


def write_run_hparams(run_dir: str, config, final_validation: Optional[Mapping] = None, step: int = 0) -> str:
    """The training run's HParams in ``run_dir/hparams``: its configuration (``config_values``) as the
    session, trial id the run directory's name, and, when given, the final validation metrics
    {key: float} as ``final/val_<key>`` (metrics of the experiment too). Returns the folder."""
    final = {f"{METRIC_PREFIX}val_{k}": float(v) for k, v in (final_validation or {}).items()}
    metrics = [(tag, tag[len(METRIC_PREFIX):].replace("_", " ")) for tag in final]
    trial_id = os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
    return write_hparams_dir(os.path.join(run_dir, HPARAMS_DIRNAME), config_values(config), trial_id,
                             metrics=metrics, final=final, step=step)
