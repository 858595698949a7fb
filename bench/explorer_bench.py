"""Explorer latency: from a slider request to its response, server side, for a hidden-512 model run
in-process (``LocalModel``). Target: p99 under 100 ms on the project's 2-core CPU machine.

    python bench/explorer_bench.py [--models=measure_vae,adversarial_vae] [--requests=300]

For each model an *untrained* hidden-512 run (latent 32, the paper's four attributes; timing does not
depend on the weights) is checkpointed and exported with ``musicvae_xai.export`` into a temporary
folder, then served by the explorer's Flask app. Prints p50/p90/p99/mean in ms of:

* ``decode (model only)``: ``LocalModel.decode`` of one latent state, no web;
* ``slider -> response (WSGI)``: ``POST /api/decode`` through the whole Flask app (JSON parsing,
  checks, the model, attribute measurement, note list, JSON answer), in-process;
* ``slider -> response (HTTP)``: the same over a loopback socket to the threaded Werkzeug server that
  ``python -m musicvae_xai.explorer`` runs, one new connection per request;
* ``surface 15x15``: ``POST /api/surface`` (225 decodes, on release of a control), as a reference.

Each slider request moves control 0 to a new value, like dragging a slider.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_list("models", ["measure_vae", "adversarial_vae"], "Models to measure.")
flags.DEFINE_integer("hidden_size", 512, "Hidden size of the benchmarked model.")
flags.DEFINE_integer("latent_dim", 32, "Latent size of the benchmarked model.")
flags.DEFINE_integer("requests", 300, "Timed slider requests per measurement (after 20 warm-up requests).")
flags.DEFINE_integer("surface_requests", 10, "Timed surface-map requests.")
flags.DEFINE_string("work_dir", None, "Where to write the runs and exports (default: a temporary folder, "
                    "deleted afterwards).")
FLAGS = flags.FLAGS


def untrained_export(model: str, work_dir: str) -> str:
    """Checkpoints an untrained model of the benchmark's size and exports it; returns the export base."""
    import tensorflow as tf

    from musicvae_xai.config import RunConfig
    from musicvae_xai.export import export_run
    from musicvae_xai.models.base import build_model
    from musicvae_xai.representation import Vocabulary
    from musicvae_xai.training.checkpoints import DATA_STATISTICS_FILENAME, save_json
    from musicvae_xai.training.loop import data_statistics, statistics_bins

    run_dir = os.path.join(work_dir, f"run_{model}")
    config = RunConfig(model=model, hidden_size=FLAGS.hidden_size, latent_dim=FLAGS.latent_dim, run_dir=run_dir,
                       xla=False).validate()
    os.makedirs(run_dir, exist_ok=True)
    config.save(run_dir)
    tokens = synthetic_measures(Vocabulary(config.min_pitch, config.max_pitch), 2048, seed=0)
    stats = data_statistics(tokens, config.vocabulary, config.attributes, statistics_bins(config))
    save_json(os.path.join(run_dir, DATA_STATISTICS_FILENAME), stats)
    built = build_model(config, data_statistics=stats)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=built), run_dir, max_to_keep=1).save(checkpoint_number=0)
    return os.path.dirname(export_run(run_dir, os.path.join(work_dir, "exports", model), verify=False))


def synthetic_measures(vocab, n: int, seed: int) -> np.ndarray:
    """int32 [n, 24]: random monophonic measures (a pitch or a hold at each tick; first tick a pitch)."""
    rng = np.random.default_rng(seed)
    pitches = rng.integers(0, vocab.num_pitches, size=(n, 24))
    hold = rng.random((n, 24)) < 0.6
    hold[:, 0] = False
    return np.where(hold, vocab.hold_id, pitches).astype(np.int32)


def percentiles(ms: list) -> str:
    a = np.asarray(ms)
    return (f"p50 {np.percentile(a, 50):7.1f}  p90 {np.percentile(a, 90):7.1f}  p99 {np.percentile(a, 99):7.1f}  "
            f"mean {a.mean():7.1f} ms  (n={len(a)})")


def bodies(state: dict, low: float, high: float, pos_index: int, kind: str, n: int) -> list:
    """n slider requests moving control ``pos_index`` back and forth over [low, high]."""
    out = []
    for i in range(n):
        z = list(state["z"])
        controls = None if state["controls"] is None else list(state["controls"])
        v = low + (high - low) * (0.5 + 0.5 * np.sin(i * 0.37))
        if kind == "latent_dim":
            z[pos_index] = v
        else:
            controls[pos_index] = v
        out.append({"z": z, "controls": controls})
    return out


def bench_model(model: str, work_dir: str) -> None:
    from werkzeug.serving import make_server

    from musicvae_xai.explorer.app import create_app
    from musicvae_xai.explorer.engine import Explorer
    from musicvae_xai.explorer.model_info import model_info
    from musicvae_xai.serving.local import LocalModel

    t = time.perf_counter()
    base = untrained_export(model, work_dir)
    made = time.perf_counter() - t
    client = LocalModel(base)
    info = model_info(client)
    explorer = Explorer(client, info)
    explorer.calibrate(synthetic_measures(info.vocabulary, 512, seed=1))  # fits for the "requested" column
    web = create_app(explorer, "bench").test_client()
    seed = synthetic_measures(info.vocabulary, 1, seed=2)[0].tolist()
    state = web.post("/api/encode", json={"tokens": seed}).get_json()
    c = info.controls[0]
    requests = bodies(state, c.low, c.high, c.index, c.kind, FLAGS.requests + 20)
    print(f"\n{model}: hidden {FLAGS.hidden_size}, latent {FLAGS.latent_dim}, {len(info.controls)} controls "
          f"(untrained export made in {made:.0f} s)")

    z = np.asarray([r["z"] for r in requests], np.float32)
    controls = None if requests[0]["controls"] is None else np.asarray([r["controls"] for r in requests], np.float32)
    times = []
    for i in range(len(requests)):
        t = time.perf_counter()
        client.decode(z[i:i + 1], None if controls is None else controls[i:i + 1])
        times.append((time.perf_counter() - t) * 1000)
    print(f"  decode (model only)           {percentiles(times[20:])}")

    times = []
    for body in requests:
        t = time.perf_counter()
        r = web.post("/api/decode", json=body)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.get_json()
    print(f"  slider -> response (WSGI)     {percentiles(times[20:])}")

    server = make_server("127.0.0.1", 0, create_app(explorer, "bench"), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    times = []
    try:
        for body in requests:
            payload = json.dumps(body)
            t = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("POST", "/api/decode", payload, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            conn.close()
            times.append((time.perf_counter() - t) * 1000)
            assert response.status == 200
    finally:
        server.shutdown()
    print(f"  slider -> response (HTTP)     {percentiles(times[20:])}")

    times = []
    for i in range(FLAGS.surface_requests + 1):
        body = dict(requests[i], x=0, y=1, grid=15)
        body["z"] = [v + 1e-3 * i for v in body["z"]]  # a new state each time (no cache hits)
        t = time.perf_counter()
        assert web.post("/api/surface", json=body).status_code == 200
        times.append((time.perf_counter() - t) * 1000)
    print(f"  surface 15x15 (225 decodes)   {percentiles(times[1:])}")


def main(argv) -> None:
    del argv
    import tensorflow as tf

    print(f"explorer latency, {os.cpu_count()} CPU core(s), TensorFlow {tf.__version__}, "
          f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")
    work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="explorer_bench_")
    try:
        for model in FLAGS.models:
            bench_model(model, work_dir)
    finally:
        if FLAGS.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    print("\ntarget: slider -> response p99 < 100 ms")


if __name__ == "__main__":
    app.run(main)
