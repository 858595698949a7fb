"""Checkpoints of a run: what is saved, resuming, and refusing a run_dir of another configuration.

A run directory holds ``config.json`` (the resolved configuration), ``data_statistics.json``
(attribute statistics of the training split), ``ckpt-N.*`` checkpoints (model, every optimiser, the
global step) and TensorBoard summaries under ``train/`` and ``validation/``. Every random draw of a
step is derived from (seed, step) and the data order from (seed, epoch), so the step counter is the
whole RNG and data-position state: a resumed run continues exactly where the checkpoint left it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import gc
import json
import os
import re
import shutil
from typing import Optional

import tensorflow as tf
from absl import logging

from musicvae_xai.config import CONFIG_FILENAME, ConfigError, RunConfig
from musicvae_xai.models.base import build_model

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
        """Restores the newest checkpoint of the run that restores (always read from the chief's
        directory); returns its path, or None when the run has no checkpoint.

        A checkpoint that fails to restore (a truncated or corrupted file: ``IndexError``, TensorFlow's
        ``DataLossError``, ...) is skipped with a warning naming it and why, and the previous one is
        tried. Raises CheckpointRestoreError when checkpoints exist but none restores (rather than
        silently starting again from step 0).
        """
        run_dir = self.directory if self.chief else os.path.dirname(os.path.dirname(self.directory))
        candidates = checkpoint_candidates(run_dir)
        skipped = []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, IndexError, ValueError, AssertionError, OSError) as e:
                quiet_failed_restores()
                reason = _one_line(e)
                logging.warning("skipping checkpoint %s: it does not restore (%s)", path, reason)
                skipped.append(f"{os.path.basename(path)}: {reason}")
                continue
            if skipped:
                logging.warning("resuming from %s, the newest checkpoint that restores (skipped %d newer: %s)",
                                path, len(skipped), "; ".join(skipped))
            return path
        if candidates:
            raise CheckpointRestoreError(f"{run_dir}: none of its {len(candidates)} checkpoint(s) restores "
                                         f"({'; '.join(skipped)}); move them away to start again")
        return None

    def remove_temporary(self) -> list:
        """Deletes the temporary folders (``ckpt-N_temp*``) an interrupted save left in this manager's
        directory, logging each; returns their paths. Call only while holding the run_dir lock."""
        removed = []
        for path in sorted(glob.glob(os.path.join(glob.escape(self.directory), "ckpt-*_temp*"))):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
            logging.info("removed %s, left by an interrupted checkpoint save", path)
            removed.append(path)
        return removed

    def save(self, step: int) -> Optional[str]:
        """Writes checkpoint ``step``. Raises CheckpointWriteError naming the path when it cannot be
        written (disk full, permissions); its temporary folder is removed and the previous checkpoints
        are kept."""
        try:
            path = self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:
            target = os.path.join(self.directory, f"ckpt-{step}")
            with contextlib.suppress(OSError):
                self.remove_temporary()
            latest = self.manager.latest_checkpoint if self.chief else None
            raise CheckpointWriteError(f"cannot write checkpoint {target}: {_one_line(e)}"
                                       + (f"; {latest} is kept" if latest else "")) from None
        if not self.chief:
            shutil.rmtree(self.directory, ignore_errors=True)
            return None
        return path


class CheckpointRestoreError(ConfigError):
    """A run directory holds checkpoints but none of them restores."""


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the message names its path and the reason in one line."""


def _one_line(error: BaseException) -> str:
    """``Type: first line`` of an exception, without TensorFlow's ``{{function_node ...}}`` prefix."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"no space left on device ({type(error).__name__})"
    text = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    line = text[0] if text else ""
    line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line)
    line = re.sub(r"\s*\[Op:\w+\]$", "", line)
    return f"{type(error).__name__}: {line[:300]}" if line else type(error).__name__


def checkpoint_candidates(run_dir: str) -> list:
    """Paths (prefixes) of the checkpoints of ``run_dir``, newest step first: those the ``checkpoint``
    state file lists plus any ``ckpt-N.index`` on disk (so a damaged state file loses nothing)."""
    if not os.path.isdir(run_dir):
        return []
    found = set()
    try:
        state = tf.train.get_checkpoint_state(run_dir)
    except (tf.errors.OpError, ValueError, OSError) as e:  # a damaged text proto
        logging.warning("ignoring the checkpoint state file of %s: %s", run_dir, _one_line(e))
        state = None
    if state is not None:  # TensorFlow has joined relative paths to run_dir already (joining again
        for p in state.all_model_checkpoint_paths:  # doubled a relative run_dir: runs/q/runs/q/ckpt-N)
            found.add(os.path.normpath(p))
    for index in glob.glob(os.path.join(glob.escape(run_dir), "ckpt-*.index")):
        found.add(os.path.normpath(index[:-len(".index")]))

    def step(path: str) -> int:
        try:
            return int(path.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            return -1
    return sorted(found, key=lambda p: (step(p), p), reverse=True)


def quiet_failed_restores() -> None:
    """After a restore that failed: marks TensorFlow's pending restore coordinators as expecting a
    partial restore. Otherwise each prints one warning per value it did not restore when it is
    collected (77 lines at exit for a MeasureVAE whose config.json says latent_dim 8 and whose
    checkpoint holds 4), after the one line that says what is wrong."""
    for obj in gc.get_objects():
        if type(obj).__name__ == "_CheckpointRestoreCoordinatorDeleter" and hasattr(obj, "set_expect_partial"):
            obj.set_expect_partial(True)


def latest_checkpoint(run_dir: str) -> Optional[str]:
    return tf.train.latest_checkpoint(run_dir) if os.path.isdir(run_dir) else None


def restore_model(run_dir: str, expect_finished: bool = False):
    """Loads (config, model) from a run directory using only what the run saved.

    Raises ConfigError naming the path when there is no configuration or no checkpoint (or, with
    ``expect_finished``, when training did not finish).
    """
    config = RunConfig.load(run_dir)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise ConfigError(f"{run_dir}: no checkpoint found (has training run?)")
    if expect_finished and not os.path.exists(os.path.join(run_dir, FINISHED_FILENAME)):
        raise ConfigError(f"{run_dir}: training has not finished (no {FINISHED_FILENAME} marker)")
    model = build_model(config, data_statistics=load_data_statistics(run_dir))
    try:
        status = tf.train.Checkpoint(model=model).restore(ckpt)
    except (ValueError, tf.errors.OpError):  # e.g. latent_dim 8 in config.json, 4 in the checkpoint
        quiet_failed_restores()
        raise
    try:
        status.assert_existing_objects_matched()  # every model weight came from the checkpoint
    except AssertionError as e:  # "Found N Python objects that were not bound to checkpointed values..."
        status.expect_partial()
        count = str(e).split(" Python objects", 1)[0].rsplit(" ", 1)[-1]
        raise ConfigError(f"{ckpt}: the checkpoint does not match the model ({count} of its objects have no "
                          "saved value); was it written by another version of the code?") from None
    status.expect_partial()  # the optimisers' slots are not needed here
    return config, model
