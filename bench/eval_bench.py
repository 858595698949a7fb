"""Inference and evaluation speed: encoding and greedy decoding throughput, and a full evaluation.

    python bench/eval_bench.py [--model=measure_vae] [--hidden_size=512] [--data_root=../shared/datasets]

Prints, for an (untrained: speed does not depend on the weights) model of the given size:
measures/s for encoding and for greedy decoding at batch 1 and at batch 256 (test-split measures);
then the wall time of a full ``musicvae_xai.evaluation.evaluate_run`` on the irish test split
(default options: every test measure, 64 sweep measures x 9 steps per control), with the time of
each part measured separately. Needs ../shared/datasets and builds (or reuses) the irish cache.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", module="pydub")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("model", "measure_vae", "Model to measure: measure_vae or adversarial_vae.")
flags.DEFINE_integer("hidden_size", 512, "GRU hidden size.")
flags.DEFINE_integer("latent_dim", 32, "Latent size.")
flags.DEFINE_string("data_root", os.path.join(REPO, "..", "shared", "datasets"), "Raw datasets folder.")
flags.DEFINE_string("cache_dir", None, "Dataset cache (default ~/.cache/musicvae_xai).")
flags.DEFINE_bool("allow_cut_time", True, "As configs/measure_vae_irish.flags (O'Neill's reels are in 2/2).")
flags.DEFINE_integer("single_calls", 64, "Timed batch-1 calls.")
flags.DEFINE_integer("batches", 8, "Timed batch-256 calls.")
flags.DEFINE_bool("full_evaluation", True, "Also time a full evaluation of the test split.")
FLAGS = flags.FLAGS


def timed(fn, *args, repeats: int = 1) -> float:
    """Seconds per call of fn(*args), best of ``repeats`` (one untimed warm-up call first)."""
    fn(*args)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def make_run(run_dir: str, config, train_tokens: np.ndarray) -> None:
    """A run directory with an untrained model's checkpoint, as evaluation loads it."""
    from musicvae_xai.models.base import build_model
    from musicvae_xai.training import checkpoints
    from musicvae_xai.training.loop import data_statistics, statistics_bins

    stats = data_statistics(train_tokens, config.vocabulary, config.attributes, statistics_bins(config))
    model = build_model(config, data_statistics=stats)
    config.save(run_dir)
    checkpoints.save_json(os.path.join(run_dir, checkpoints.DATA_STATISTICS_FILENAME), stats)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), run_dir, 1).save(checkpoint_number=0)
    open(os.path.join(run_dir, checkpoints.FINISHED_FILENAME), "w").close()


def main(argv) -> None:
    del argv
    data_root = os.path.abspath(FLAGS.data_root)
    if not os.path.isdir(data_root):
        sys.exit(f"error: data root {data_root} does not exist")
    run_dir = tempfile.mkdtemp(prefix="eval_bench_")
    try:
        bench(run_dir, data_root)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def bench(run_dir: str, data_root: str) -> None:
    from musicvae_xai import evaluation, inference, metrics
    from musicvae_xai.config import RunConfig

    config = RunConfig(model=FLAGS.model, dataset="irish", data_root=data_root, cache_dir=FLAGS.cache_dir,
                       allow_cut_time=FLAGS.allow_cut_time, hidden_size=FLAGS.hidden_size,
                       latent_dim=FLAGS.latent_dim, run_dir=run_dir, seed=0)
    t = time.perf_counter()
    train = inference.split_tokens(config, "train")
    test = inference.split_tokens(config, "test")
    print(f"irish dataset: {len(train)} training rows, {len(test)} test measures "
          f"(loaded in {time.perf_counter() - t:.1f} s)")
    make_run(run_dir, config, train[::10])

    _, model = inference.load_run(run_dir)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    print(f"{config.model}, hidden {config.hidden_size}, latent {config.latent_dim}; {os.cpu_count()} CPU "
          f"cores, {threads} TF intra-op threads; {tf.config.list_physical_devices('GPU') or 'no GPU'}")
    print(f"{'':<26}{'batch 1':>16}{'batch 256':>16}")
    runner1 = inference.Runner(model, batch_size=1)
    runner = inference.Runner(model, batch_size=256)
    single = test[:FLAGS.single_calls]
    many = np.resize(test, (256 * FLAGS.batches, 24))
    z1, _ = runner1.encode(single)
    zb, _ = runner.encode(many)
    c1 = runner1.default_controls(single)
    cb = runner.default_controls(many)
    rates = {}
    rates["encode"] = (len(single) / timed(runner1.encode, single), len(many) / timed(runner.encode, many))
    rates["greedy decode"] = (len(single) / timed(runner1.decode, z1, c1), len(many) / timed(runner.decode, zb, cb))
    for name, (r1, rb) in rates.items():
        print(f"{name + ' (measures/s)':<26}{r1:>16.1f}{rb:>16.1f}")

    if not FLAGS.full_evaluation:
        return
    options = evaluation.EvaluationOptions(split="test")
    t = time.perf_counter()
    report = evaluation.evaluate_run(run_dir, options)
    total = time.perf_counter() - t
    print(f"\nfull evaluation of the irish test split ({report['num_measures']} measures, "
          f"{options.sweep_measures} sweep measures x {options.sweep_steps} steps x "
          f"{len(report['attribute_independence']['controls'])} controls): {total:.1f} s wall")

    # Where the time goes: the same steps, timed one by one.
    parts = {}
    t = time.perf_counter()
    zm, zs = runner.encode(test)
    parts["encode the split"] = time.perf_counter() - t
    controls = runner.default_controls(test)
    z = inference.sample_latent(zm, zs, 0)
    t = time.perf_counter()
    evaluation.reconstruction(runner, test, z, zm, controls)
    parts["decode it twice (sampled z, mean z)"] = time.perf_counter() - t
    a = runner.attributes(test)
    t = time.perf_counter()
    metrics.disentanglement_report(z, a, random_state=0, attribute_names=list(runner.attribute_names))
    parts["latent metrics (k-NN MI once)"] = time.perf_counter() - t
    t = time.perf_counter()
    evaluation.attribute_independence(runner, test, zm, controls, options)
    parts["control sweeps"] = time.perf_counter() - t
    for name, seconds in parts.items():
        print(f"  {name:<40}{seconds:>8.1f} s")
    print(f"  {'(rest: loading the run and the data)':<40}{total - sum(parts.values()):>8.1f} s")


if __name__ == "__main__":
    app.run(main)
