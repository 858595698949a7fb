"""Cost of ``--deterministic``: training-step time with and without TF op determinism, in one process.

    python tools/determinism_cost.py [--config=quickstart] [--rounds=2] [--steps=10] [--noxla] [any training flag]

Builds the configuration's model (any training flag applies, e.g. --noxla) and its first training
batch of the embedded dataset (fixed), and alternates
rounds without and with ``enable_op_determinism``; each round traces a fresh ``tf.function`` (new
kernels), runs 2 warm-up steps and times ``--steps`` steps. Alternating in one process keeps the
comparison fair on a loaded machine. Prints the median step time of each mode and their ratio
(deterministic / default). A benchmark: it prints figures and asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

flags.DEFINE_integer("rounds", 2, "Rounds; each times both modes once.")
flags.DEFINE_integer("steps", 10, "Timed steps per mode and round (after 2 warm-up steps).")
FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # disable_op_determinism is not public

    from musicvae_xai import datasets
    from musicvae_xai.models.base import build_model
    from musicvae_xai.cli.train import config_from_flags
    from musicvae_xai.training.loop import DEFAULT_CACHE_DIR, data_statistics, dataset_config, statistics_bins

    cfg = config_from_flags().validate()
    built = datasets.build(dataset_config(cfg), cfg.cache_dir or DEFAULT_CACHE_DIR)
    train = built.tokens("train")
    model = build_model(cfg, data_statistics(train, built.vocabulary, cfg.attributes, statistics_bins(cfg)))
    optimizers = model.make_optimizers()
    tokens, attributes = next(iter(datasets.make_tf_dataset(train, built.vocabulary, cfg.attributes,
                                                            cfg.batch_size, shuffle=False)))

    def replica_step(t, a, step):
        return model.train_step_replica(optimizers, t, a, step, cfg.batch_size, 0)

    times = {False: [], True: []}
    for r in range(FLAGS.rounds):
        for deterministic in (False, True):
            if deterministic:
                tf.config.experimental.enable_op_determinism()
            else:
                tf_config.disable_op_determinism()
            step_fn = tf.function(replica_step, jit_compile=cfg.xla)  # a fresh trace: new kernels
            for s in range(2):
                float(step_fn(tokens, attributes, tf.constant(s, tf.int64))["loss"])
            t0 = time.perf_counter()
            for s in range(FLAGS.steps):
                float(step_fn(tokens, attributes, tf.constant(s + 2, tf.int64))["loss"])
            per_step = (time.perf_counter() - t0) / FLAGS.steps
            times[deterministic].append(per_step)
            print(f"round {r + 1} deterministic={deterministic}: {per_step * 1000:.1f} ms/step "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    default, det = statistics.median(times[False]), statistics.median(times[True])
    print(f"{cfg.model} hidden {cfg.hidden_size} batch {cfg.batch_size} xla {cfg.xla}: default {default * 1000:.1f} "
          f"ms/step, deterministic {det * 1000:.1f} ms/step, ratio {det / default:.2f}")


if __name__ == "__main__":
    from musicvae_xai.cli import resolve_sys_argv
    from musicvae_xai.cli.train import define_config_flags

    define_config_flags()
    if not any(a.startswith(("--config", "--flagfile")) for a in sys.argv[1:]):
        sys.argv.insert(1, "--config=quickstart")
    resolve_sys_argv()
    app.run(main)
