"""Checkpoints of a run: what is saved, resuming, and refusing a run_dir of another configuration.

A run directory holds ``config.json`` (the resolved configuration), ``data_statistics.json``
(attribute statistics of the training split), ``ckpt-N.*`` checkpoints (model, every optimiser, the
global step) and TensorBoard summaries under ``train/`` and ``validation/``. Every random draw of a
step is derived from (seed, step) and the data order from (seed, epoch), so the step counter is the
whole RNG and data-position state: a resumed run continues exactly where the checkpoint left it.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

import tensorflow as tf

from musicvae_xai.config import CONFIG_FILENAME, ConfigError, RunConfig

DATA_STATISTICS_FILENAME = "data_statistics.json"
FINISHED_FILENAME = "FINISHED"


def check_run_dir(config: RunConfig) -> Optional[RunConfig]:
    """Refuses (ConfigError) a run_dir that holds a run of another configuration.

    Returns the saved configuration when the run_dir already holds a compatible run, else None.
    Writes nothing.
    """
    run_dir = config.run_dir
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ConfigError(f"run_dir {run_dir} exists and is not a directory")
    saved_path = os.path.join(run_dir, CONFIG_FILENAME)
    has_ckpt = tf.train.latest_checkpoint(run_dir) is not None if os.path.isdir(run_dir) else False
    if not os.path.exists(saved_path):
        if has_ckpt:
            raise ConfigError(f"run_dir {run_dir} holds checkpoints but no {CONFIG_FILENAME}; refusing to reuse it")
        return None
    saved = RunConfig.load(saved_path)
    diff = saved.differences(config)
    if diff:
        details = ", ".join(f"{k}: {getattr(saved, k)!r} there vs {getattr(config, k)!r} now" for k in diff[:4])
        raise ConfigError(f"run_dir {run_dir} holds a run with a different configuration ({details}); "
                          "use another --run_dir")
    return saved


def save_json(path: str, payload: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def load_data_statistics(run_dir: str) -> Optional[dict]:
    path = os.path.join(run_dir, DATA_STATISTICS_FILENAME)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class RunCheckpoints:
    """Saves and restores (model, optimisers, step). Non-chief workers write to a scratch directory
    that is deleted afterwards, since every worker must take part in a multi-worker save."""

    def __init__(self, run_dir: str, model, optimizers: dict, step: tf.Variable, chief: bool,
                 max_to_keep: int = 3, worker_id: int = 0):
        self.checkpoint = tf.train.Checkpoint(model=model, step=step, **{f"optimizer_{k}": v for k, v in
                                                                          optimizers.items()})
        self.chief = chief
        directory = run_dir if chief else os.path.join(run_dir, ".scratch", f"worker_{worker_id}")
        self.directory = directory
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)

    def restore_latest(self) -> Optional[str]:
        """Restores the newest checkpoint of the run (always read from the chief's directory)."""
        path = self.manager.latest_checkpoint
        if not self.chief:
            path = tf.train.latest_checkpoint(os.path.dirname(os.path.dirname(self.directory)))
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step: int) -> Optional[str]:
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
            return None
        return path


def latest_checkpoint(run_dir: str) -> Optional[str]:
    return tf.train.latest_checkpoint(run_dir) if os.path.isdir(run_dir) else None


def restore_model(run_dir: str, expect_finished: bool = False):
    """Loads (config, model) from a run directory using only what the run saved.

    Raises ConfigError naming the path when there is no configuration or no checkpoint (or, with
    ``expect_finished``, when training did not finish).
    """
    from musicvae_xai.models.base import build_model

    config = RunConfig.load(run_dir)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise ConfigError(f"{run_dir}: no checkpoint found (has training run?)")
    if expect_finished and not os.path.exists(os.path.join(run_dir, FINISHED_FILENAME)):
        raise ConfigError(f"{run_dir}: training has not finished (no {FINISHED_FILENAME} marker)")
    model = build_model(config, data_statistics=load_data_statistics(run_dir))
    status = tf.train.Checkpoint(model=model).restore(ckpt)
    try:
        status.assert_existing_objects_matched()  # every model weight came from the checkpoint
    except AssertionError as e:  # "Found N Python objects that were not bound to checkpointed values..."
        count = str(e).split(" Python objects", 1)[0].rsplit(" ", 1)[-1]
        raise ConfigError(f"{ckpt}: the checkpoint does not match the model ({count} of its objects have no "
                          "saved value); was it written by another version of the code?") from None
    status.expect_partial()  # the optimisers' slots are not needed here
    return config, model
