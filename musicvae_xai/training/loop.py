"""The training loop: data -> model -> distributed steps -> checkpoints, summaries, validation.

A custom loop (not ``keras.Model.fit``) so that one code path serves the default, mirrored and
multi-worker strategies (Keras 3 ``fit`` does not run under MultiWorkerMirroredStrategy) and both
models, whose steps differ (the adversarial model alternates two optimisers).
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Optional

import numpy as np
import tensorflow as tf
from absl import logging

from musicvae_xai import datasets
from musicvae_xai.config import EvaluationOptions, RunConfig
from musicvae_xai.datasets.config import DEFAULT_CACHE_DIR, dataset_config
from musicvae_xai.models.base import build_model
from musicvae_xai.training import checkpoints as ckpts
from musicvae_xai.training import cpu_threads
from musicvae_xai.training import curve
from musicvae_xai.training import determinism
from musicvae_xai.training import summaries
from musicvae_xai.training.hparams import write_run_hparams
from musicvae_xai.training import runlock
from musicvae_xai.training.strategy import distribute_batches, is_chief, make_strategy, task_info


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the step."""


#: Bins of the data statistics of a model without a ``num_bins`` setting (octiles; its bin edges describe
#: the data, no model reads them).
DEFAULT_STATISTICS_BINS = 8


def statistics_bins(config) -> int:
    """Bins of a run's data statistics: its model's ``num_bins`` setting, else ``DEFAULT_STATISTICS_BINS``."""
    return getattr(config, "num_bins", DEFAULT_STATISTICS_BINS)


def data_statistics(tokens: np.ndarray, vocab, names, num_bins: int,
                    attribute_values: Optional[np.ndarray] = None) -> dict:
    """Attribute statistics of the training split (token ids [N, 24]; ``attribute_values`` float [N, K]
    when already computed): min, max, mean, std and the ``num_bins``-quantile bin edges
    (num_bins - 1 inner edges per attribute) used by the adversarial model."""
    if attribute_values is None:
        attribute_values = datasets.measure_attributes(tokens, vocab, names)
    a = np.asarray(attribute_values, np.float64)
    qs = np.linspace(0, 1, num_bins + 1)[1:-1]
    return {"attributes": list(names), "min": a.min(0).tolist(), "max": a.max(0).tolist(),
            "mean": a.mean(0).tolist(), "std": a.std(0).tolist(),
            "bin_edges": np.quantile(a, qs, axis=0).T.tolist(), "num_examples": int(len(a))}


def _format(metrics: dict) -> str:
    keys = ["loss", "reconstruction_loss", "kl", "token_accuracy"]
    return " ".join(f"{k}={metrics[k]:.4f}" for k in keys if k in metrics)


class Trainer:
    """Owns one run: call ``run()``. Every side effect happens there, after all validation."""

    def __init__(self, config: RunConfig, progress: Optional[bool] = None,
                 evaluation: Optional[EvaluationOptions] = None):
        """``evaluation``: options of the learning-curve evaluations (``training.curve``; the split and
        the number of measures come from the config), e.g. a study's; default: sweeps from 32 measures."""
        self.config = config.validate()
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.evaluation = evaluation

    def run(self) -> dict:
        """Trains (or resumes) the run; returns the last metrics. The chief holds the run_dir's lock
        (``runlock``) throughout, so a second trainer on the same run_dir fails at once naming its pid."""
        cfg = self.config
        saved = ckpts.check_run_dir(cfg)  # refuses a foreign run_dir before anything is written
        threads = cpu_threads.apply(cfg.cpu_threading, xla=cfg.xla)  # before the first op of the process
        logging.info("threads: %s", threads)
        determinism.apply(cfg.deterministic)  # before the first op of the run
        strategy = make_strategy(cfg.strategy)
        self.strategy = strategy
        chief = is_chief(strategy)
        if not chief:  # other workers write only to their scratch folder
            return self._run(saved, strategy, chief)
        with runlock.hold_run_dir(cfg.run_dir):
            return self._run(saved, strategy, chief)

    def _run(self, saved: Optional[RunConfig], strategy: tf.distribute.Strategy, chief: bool) -> dict:
        cfg = self.config
        n_rep = strategy.num_replicas_in_sync
        if cfg.batch_size % n_rep:
            raise ValueError(f"batch_size={cfg.batch_size} is not divisible by the {n_rep} replicas")
        built = datasets.build(dataset_config(cfg), cfg.cache_dir or DEFAULT_CACHE_DIR,
                               progress=self.progress and chief)
        vocab = built.vocabulary
        train_tokens = built.tokens("train")
        val_tokens = built.tokens("validation")
        if len(train_tokens) < cfg.batch_size:
            raise ValueError(f"the training split has {len(train_tokens)} measures, fewer than one batch "
                             f"of {cfg.batch_size}")
        train_attributes = datasets.measure_attributes(train_tokens, vocab, cfg.attributes)
        stats = ckpts.load_data_statistics(cfg.run_dir) if saved else None
        if stats is None:
            stats = data_statistics(train_tokens, vocab, cfg.attributes, statistics_bins(cfg), train_attributes)
        steps_per_epoch = len(train_tokens) // cfg.batch_size
        total_steps = cfg.train_steps if cfg.train_steps > 0 else cfg.epochs * steps_per_epoch

        with strategy.scope():
            model = build_model(cfg, data_statistics=stats)
            self.model = model
            optimizers = model.make_optimizers()
            for opt in optimizers.values():
                opt.build(model.trainable_variables)
            step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        _, task_index = task_info()
        manager = ckpts.RunCheckpoints(cfg.run_dir, model, optimizers, step_var, chief, cfg.max_to_keep,
                                       worker_id=task_index)
        if chief:
            manager.remove_temporary()  # safe: this process holds the run_dir
        restored = manager.restore_latest()
        start = int(step_var.numpy())
        if chief:
            try:
                cfg.save(cfg.run_dir)
                ckpts.save_json(os.path.join(cfg.run_dir, ckpts.DATA_STATISTICS_FILENAME), stats)
            except OSError as e:
                raise runlock.unwritable(cfg.run_dir, e, "write into the run directory") from None
        if restored:
            logging.info("resuming from %s at step %d", restored, start)
        logging.info("training %s on %s: %d training measures, %d steps/epoch, %d steps, %d replica(s)",
                     cfg.model, cfg.dataset, len(train_tokens), steps_per_epoch, total_steps, n_rep)

        global_batch = cfg.batch_size

        def replica_step(tokens, attributes, step):
            ctx = tf.distribute.get_replica_context()
            offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * tf.shape(tokens)[0]
            return model.train_step_replica(optimizers, tokens, attributes, step, global_batch, offset)

        if n_rep == 1:
            train_step = tf.function(replica_step, jit_compile=cfg.xla, reduce_retracing=True)
        else:
            @tf.function
            def train_step(tokens, attributes, step):
                out = strategy.run(replica_step, args=(tokens, attributes, step))
                return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in out.items()}

        eval_step = tf.function(model.eval_metrics, reduce_retracing=True)

        def epoch_batches(epoch: int, skip: int):
            def make():
                ds = datasets.make_tf_dataset(train_tokens, vocab, cfg.attributes, global_batch, shuffle=True,
                                              seed=cfg.seed * 100003 + epoch, drop_remainder=True,
                                              attributes=train_attributes)
                return ds.skip(skip) if skip else ds
            return distribute_batches(strategy, make, global_batch)

        writer = tf.summary.create_file_writer(os.path.join(cfg.run_dir, "train")) if chief else None
        val_writer = tf.summary.create_file_writer(os.path.join(cfg.run_dir, "validation")) if chief else None
        points = curve.curve_points(cfg, steps_per_epoch, total_steps)
        recorder = None
        if chief and points:
            recorder = curve.CurveRecorder(
                cfg, {"validation": val_tokens, "test": built.tokens("test")}, train_tokens, steps_per_epoch,
                self.evaluation, {split: tf.summary.create_file_writer(os.path.join(cfg.run_dir, f"curve_{split}"))
                                  for split in curve.CURVE_SPLITS})
            missed = [p for p in points if p < start and p not in recorder.done()]
            if missed:
                logging.warning("curve points %s lie before the restored step %d and were not evaluated",
                                ", ".join(map(str, missed)), start)
            if start in points and start not in recorder.done():  # interrupted while evaluating it
                recorder.record(model, start)
        points = set(points)
        eval_every = cfg.eval_every or steps_per_epoch
        music = (summaries.MusicSummaries(model, val_tokens, vocab)
                 if chief and cfg.eval_summaries and len(val_tokens) else None)
        final_val = None
        if chief and start < total_steps:
            write_run_hparams(cfg.run_dir, cfg)  # the session now; its final metrics at the end
        bar = None
        if self.progress and chief and start < total_steps:
            from tqdm import tqdm
            bar = tqdm(total=total_steps, initial=start, desc="train", unit="step", dynamic_ncols=True)
        step = start
        last = {}
        t0, measured = time.time(), 0
        while step < total_steps:
            epoch = step // steps_per_epoch
            for tokens, attributes in epoch_batches(epoch, step % steps_per_epoch):
                out = train_step(tokens, attributes, tf.constant(step, tf.int64))
                step += 1
                measured += 1
                step_var.assign(step)
                loss = float(out["loss"])
                if not math.isfinite(loss):
                    raise NonFiniteLossError(
                        f"loss became {loss} at step {step}; stopped, the last good checkpoint "
                        f"({ckpts.latest_checkpoint(cfg.run_dir)}) is kept")
                if step % cfg.log_every == 0 or step == total_steps:
                    last = {k: float(v) for k, v in out.items()}
                    if writer:
                        with writer.as_default(step=step):
                            for k, v in last.items():
                                tf.summary.scalar(k, v)
                            tf.summary.scalar("measures_per_second",
                                              measured * global_batch / max(time.time() - t0, 1e-9))
                            for k, v in summaries.optimizer_scalars(optimizers).items():
                                tf.summary.scalar(k, v)
                if bar:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}")
                if step % cfg.checkpoint_every == 0 or step == total_steps or step in points:
                    manager.save(step)
                if recorder is not None and step in points:  # after its checkpoint: resumable
                    recorder.record(model, step)
                if chief and (step % eval_every == 0 or step == total_steps) and len(val_tokens):
                    val = self._validate(eval_step, val_tokens, vocab)
                    with val_writer.as_default(step=step):
                        for k, v in val.items():
                            tf.summary.scalar(k, v)
                        if music:
                            tf.summary.scalar("summary_seconds", music.write(step))
                    final_val = val
                    last.update({f"val_{k}": v for k, v in val.items()})
                    if not bar:
                        logging.info("step %d/%d (epoch %d) train: %s | validation: %s", step, total_steps,
                                     epoch + 1, _format({k: float(v) for k, v in out.items()}), _format(val))
                if step >= total_steps:
                    break
        if bar:
            bar.close()
        if chief:
            try:
                open(os.path.join(cfg.run_dir, ckpts.FINISHED_FILENAME), "w").close()
            except OSError as e:
                raise runlock.unwritable(os.path.join(cfg.run_dir, ckpts.FINISHED_FILENAME), e, "write") from None
            if writer:
                writer.flush()
                val_writer.flush()
            if final_val is not None:
                write_run_hparams(cfg.run_dir, cfg, final_validation=final_val, step=step)
        elapsed = time.time() - t0
        last["measures_per_second"] = measured * global_batch / elapsed if measured else 0.0
        last["steps"] = step
        return last

    def _validate(self, eval_step, tokens: np.ndarray, vocab, max_batches: int = 20) -> dict:
        ds = datasets.make_tf_dataset(tokens, vocab, self.config.attributes, self.config.batch_size,
                                      shuffle=False, drop_remainder=False).take(max_batches)
        totals, count = {}, 0
        for t, a in ds:
            n = int(t.shape[0])
            for k, v in eval_step(t, a).items():
                totals[k] = totals.get(k, 0.0) + float(v) * n
            count += n
        return {k: v / count for k, v in totals.items()}
