"""Benchmark: serving latency and throughput through LocalModel, the REST double and the gRPC double.

    python bench/serving_bench.py [--export_dir=exports/measure_vae] [--hidden_size=512 --latent_dim=32]
                                  [--latency_calls=200] [--throughput_calls=10]

Without --export_dir, an untrained model of the given size (weights do not change the cost) is
exported to a temporary folder first. Prints, per path:

* latency p50/p99 (ms) of one-measure ``reconstruct`` calls, one after the other;
* throughput (measures/s) of batch-256 ``decode`` calls (REST in both request formats).

The doubles (tests/serving_doubles.py) run the SavedModel through a TF v1 session in this process,
over loopback; their figures show client, serialisation and transport overhead on top of the model,
not TensorFlow Serving's own performance.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))  # the serving doubles

FLAGS = flags.FLAGS
flags.DEFINE_string("export_dir", None, "Export base or version folder to serve; default: export an "
                    "untrained model of --model/--hidden_size/--latent_dim to a temporary folder.")
flags.DEFINE_enum("model", "measure_vae", ["measure_vae", "adversarial_vae"], "Model for the temporary export.")
flags.DEFINE_integer("hidden_size", 512, "Hidden size of the temporary export (the paper's default).")
flags.DEFINE_integer("latent_dim", 32, "Latent size of the temporary export.")
flags.DEFINE_integer("batch", 256, "Batch size of the throughput test.")
flags.DEFINE_integer("latency_calls", 200, "Timed one-measure reconstruct calls per path.")
flags.DEFINE_integer("throughput_calls", 10, "Timed batch decode calls per path.")
flags.DEFINE_integer("seed", 0, "Seed of the inputs.")


def cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def temporary_export(root: str) -> str:
    """Exports an untrained model (run dir with config, statistics and one checkpoint) under ``root``."""
    import tensorflow as tf

    from musicvae_xai.config import RunConfig
    from musicvae_xai.export import export_run
    from musicvae_xai.models.base import build_model
    from musicvae_xai.training import checkpoints as ckpts
    from musicvae_xai.training.loop import data_statistics, statistics_bins

    config = RunConfig(model=FLAGS.model, hidden_size=FLAGS.hidden_size, latent_dim=FLAGS.latent_dim,
                       run_dir=os.path.join(root, "run"))
    rng = np.random.default_rng(FLAGS.seed)
    stats = data_statistics(rng.integers(0, config.vocabulary.size, size=(512, 24)), config.vocabulary,
                            config.attributes, statistics_bins(config))
    model = build_model(config, data_statistics=stats)
    config.save(config.run_dir)
    ckpts.save_json(os.path.join(config.run_dir, ckpts.DATA_STATISTICS_FILENAME), stats)
    tf.train.Checkpoint(model=model).save(os.path.join(config.run_dir, "ckpt"))
    return export_run(config.run_dir, os.path.join(root, "exports", FLAGS.model), verify=False)


def inputs(client, batch: int, rng, sample_controls) -> tuple:
    spec = client.metadata()["signatures"]
    vocab = spec["decode"]["outputs"]["probabilities"]["shape"][-1]
    latent = spec["decode"]["inputs"]["z"]["shape"][-1]
    tokens = rng.integers(0, vocab, size=(1, 24)).astype(np.int32)
    z = rng.standard_normal((batch, latent)).astype(np.float32)
    controls = None
    if "controls" in spec["decode"]["inputs"]:
        controls = np.tile(np.asarray(sample_controls, np.float32), (batch, 1))
    return tokens, z, controls


def measure(client, rng, sample_controls=None) -> dict:
    tokens, z, controls = inputs(client, FLAGS.batch, rng, sample_controls)
    for _ in range(5):
        client.reconstruct(tokens)
    times = []
    for _ in range(FLAGS.latency_calls):
        t = time.perf_counter()
        client.reconstruct(tokens)
        times.append(time.perf_counter() - t)
    client.decode(z, controls)
    t = time.perf_counter()
    for _ in range(FLAGS.throughput_calls):
        client.decode(z, controls)
    elapsed = time.perf_counter() - t
    ms = np.asarray(times) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)),
            "throughput": FLAGS.batch * FLAGS.throughput_calls / elapsed}


def main(argv) -> None:
    del argv
    from serving_doubles import GrpcDouble, RestDouble, SavedModelBackend

    from musicvae_xai.serving import GrpcClient, LocalModel, RestClient
    from musicvae_xai.serving.local import resolve_export_dir

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        export_dir = resolve_export_dir(FLAGS.export_dir) if FLAGS.export_dir else temporary_export(tmp)
        local = LocalModel(export_dir)
        name = local.model_name
        print(f"export {export_dir} (model {name!r}); prepared in {time.time() - t0:.1f} s")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
        backend = SavedModelBackend({name: os.path.dirname(export_dir)}) if os.path.basename(
            export_dir).isdigit() else SavedModelBackend({name: export_dir})
        results = {}
        controls = local.assets["controls"].get("sample_controls")

        def run(client):
            return measure(client, np.random.default_rng(FLAGS.seed), controls)

        cpu0, wall0 = cpu_seconds(), time.time()
        results["LocalModel"] = run(local)
        with RestDouble(backend, max_lifetime=3600) as rest, GrpcDouble(backend, max_lifetime=3600) as grpc_server:
            results["REST double (row)"] = run(RestClient(rest.url, name))
            results["REST double (columnar)"] = run(RestClient(rest.url, name, request_format="columnar"))
            results["gRPC double"] = run(GrpcClient(grpc_server.target, name))
        backend.close()
        cpu, wall = cpu_seconds() - cpu0, time.time() - wall0
    print(f"\none-measure reconstruct latency ({FLAGS.latency_calls} calls) and batch-{FLAGS.batch} decode "
          f"throughput ({FLAGS.throughput_calls} calls):")
    print(f"{'path':<24} {'p50 ms':>9} {'p99 ms':>9} {'measures/s':>12}")
    for path, r in results.items():
        print(f"{path:<24} {r['p50']:9.2f} {r['p99']:9.2f} {r['throughput']:12.0f}")
    print(f"\nmeasured in {wall:.1f} s wall, {cpu:.1f} s CPU (load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    app.run(main)
