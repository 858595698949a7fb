"""Training and inference throughput of both models against this machine's matmul throughput.

    python bench/train_bench.py [--models=measure_vae,adversarial_vae] [--steps=20] [--xla=true]

Prints: numpy float32 matmul GFLOP/s; for each model and size (hidden 512 and 128, latent 32,
batch 256) the training throughput in measures/s, the analytic training FLOPs per measure, the
achieved GFLOP/s and its fraction of the matmul throughput; encode+decode inference measures/s; the
peak resident memory of the process. Synthetic token batches (throughput does not depend on data).
"""

from __future__ import annotations

import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from absl import app, flags

from musicvae_xai import attributes
from musicvae_xai.config import RunConfig
from musicvae_xai.models.base import build_model
from musicvae_xai.training.loop import data_statistics

flags.DEFINE_list("models", ["measure_vae", "adversarial_vae"], "Models to measure.")
flags.DEFINE_list("hidden_sizes", ["512", "128"], "Hidden sizes to measure.")
flags.DEFINE_integer("latent_dim", 32, "Latent size.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_integer("steps", 20, "Timed training steps (after warm-up).")
flags.DEFINE_bool("xla", True, "Compile the step with XLA.")
FLAGS = flags.FLAGS


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of float32 numpy matmul throughput, GFLOP/s."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def gru_macs(steps: int, in_dim: int, hidden: int) -> int:
    return steps * (in_dim + hidden) * 3 * hidden


def forward_macs(cfg: RunConfig, vocab_size: int) -> int:
    """Multiply-accumulates of one forward pass for one measure (matmuls only)."""
    h, e, z, v, t = cfg.hidden_size, cfg.embedding_dim, cfg.latent_dim, vocab_size, 24
    k = len(cfg.attributes)
    enc = 2 * (gru_macs(t, e, h) + gru_macs(t, 2 * h, h))  # two layers, two directions
    enc += 2 * (4 * h * 2 * h + 2 * h * z)  # posterior heads
    if cfg.model == "measure_vae":
        dec = z * 2 * h + 4 * (h * 3 * h + gru_macs(1, h, h))  # z->state, beat GRU (layer 1 recurrent only)
        dec += 4 * (h * 2 * h + h * 3 * h)  # beat->tick state, beat conditioning projection
        dec += t * (h * 3 * h + gru_macs(1, h, h) + h * v)  # tick GRU (layer-1 recurrent, layer 2) + logits
    else:
        dec = z * 2 * h + (z + k) * 3 * h  # initial state, constant input projection
        dec += t * (h * 3 * h + gru_macs(1, h, h) + h * v)
        dec += z * cfg.discriminator_hidden + cfg.discriminator_hidden ** 2 + cfg.discriminator_hidden * k * (
            cfg.num_bins - 1)
    return enc + dec


def synthetic_batch(cfg: RunConfig, vocab, n: int):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, vocab.size, size=(n, 24)).astype(np.int32)
    return tokens, attributes.compute(tokens, vocab, cfg.attributes)


def bench_model(name: str, hidden: int, peak: float) -> None:
    cfg = RunConfig(model=name, hidden_size=hidden, latent_dim=FLAGS.latent_dim, batch_size=FLAGS.batch_size)
    tokens, attrs = synthetic_batch(cfg, cfg.vocabulary, cfg.batch_size)
    model = build_model(cfg, data_statistics=data_statistics(tokens, cfg.vocabulary, cfg.attributes, cfg.num_bins))
    opts = model.make_optimizers()
    step_fn = tf.function(lambda t, a, s: model.train_step_replica(opts, t, a, s, cfg.batch_size, 0),
                          jit_compile=FLAGS.xla)
    t0 = time.perf_counter()
    step_fn(tokens, attrs, tf.constant(0, tf.int64))["loss"].numpy()
    compile_s = time.perf_counter() - t0
    for i in range(1, 3):
        step_fn(tokens, attrs, tf.constant(i, tf.int64))["loss"].numpy()
    t0 = time.perf_counter()
    for i in range(FLAGS.steps):
        out = step_fn(tokens, attrs, tf.constant(i + 3, tf.int64))
    out["loss"].numpy()
    dt = time.perf_counter() - t0
    mps = FLAGS.steps * cfg.batch_size / dt
    flops = 3 * 2 * forward_macs(cfg, model.vocabulary.size)
    achieved = mps * flops / 1e9

    # Inference in graph mode without XLA: the adversarial decode validates its controls with
    # host-side warnings, which XLA cannot compile.
    infer = tf.function(lambda t: model.decode(model.encode(t)["z"], model.default_controls(t))["tokens"])
    infer(tokens).numpy()
    t0 = time.perf_counter()
    for _ in range(5):
        res = infer(tokens)
    res.numpy()
    infer_mps = 5 * cfg.batch_size / (time.perf_counter() - t0)
    print(f"{name:16s} hidden={hidden:4d} latent={cfg.latent_dim} batch={cfg.batch_size} xla={FLAGS.xla}: "
          f"train {mps:7.1f} measures/s, {flops / 1e9:.3f} GFLOP/measure, {achieved:6.1f} GFLOP/s = "
          f"{100 * achieved / peak:5.1f}% of matmul; inference (encode+decode) {infer_mps:7.1f} measures/s; "
          f"first step (trace+compile) {compile_s:.1f} s", flush=True)


def main(argv):
    del argv
    peak = matmul_gflops()
    print(f"numpy float32 matmul (2048x2048): {peak:.1f} GFLOP/s; TF intra-op threads "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}", flush=True)
    for name in FLAGS.models:
        for hidden in FLAGS.hidden_sizes:
            bench_model(name, int(hidden), peak)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    app.run(main)
