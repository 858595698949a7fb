"""Training and inference speed and memory of both models, against this machine's GEMM ceiling.

    python bench/train_bench.py [--models=measure_vae,adversarial_vae] [--hidden_sizes=512,128]
        [--modes=default|graph|xla|graph,xla] [--seconds=12] [--baseline_tree=/path/to/other/checkout]

Each (model, hidden size, compile mode) is measured in a fresh child process (latent 32, batch 256,
synthetic tokens: throughput does not depend on the data), which prints:
  - the numpy float32 GEMM ceiling (2048 x 2048, best of 10), measured before and after, in that process;
  - the time to the first finished training step (model build + trace + compile + one step);
  - training measures/s (and per CPU-second, steadier on a loaded machine) over at least ``--min_steps``
    steps and ``--seconds`` seconds after one warm-up step, the analytic training FLOPs per measure (3x
    the forward pass's matmul FLOPs, ``forward_macs``) and the fraction of the GEMM ceiling (mean of
    before and after) this achieves;
  - the peak resident memory of the process after training (before inference);
  - encode + greedy-decode inference measures/s and its fraction of the ceiling (forward FLOPs);
  - the training step's own matmuls (read from its traced graph) replayed alone: how close the step
    could come to the ceiling if everything between the matmuls cost nothing, and what share of the
    step's time is spent outside them.
Each child applies ``RunConfig.cpu_threading`` (``--cpu_threading`` to choose) as ``musicvae-train`` does.
Then every speed and memory target is printed beside its figure with PASS/FAIL, with the load averages
(1, 5, 15 min) at start and end: on a shared machine absolute figures mean little, fractions of the
ceiling measured in the same process are what counts.

``--baseline_tree``: also measure each configuration with the ``musicvae_xai`` package of another
checkout (e.g. the main branch before a change), interleaved with this one, and print the ratios. At the
study's settings, against the commit that trained the cpu_v2 grid (target: 2x)::

    git worktree add ../cpu_v2-tree 7da5dbb
    python bench/train_bench.py --hidden_sizes=64 --batch_size=64 --threads=1 --baseline_tree=../cpu_v2-tree
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

_START = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_list("models", ["measure_vae", "adversarial_vae"], "Models to measure.")
flags.DEFINE_list("hidden_sizes", ["512", "128"], "Hidden sizes to measure.")
flags.DEFINE_list("modes", ["default"], "Compile modes: default (RunConfig's xla default), graph, xla.")
flags.DEFINE_integer("latent_dim", 32, "Latent size.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_integer("min_steps", 3, "Timed training steps at least (after one warm-up step).")
flags.DEFINE_float("seconds", 12.0, "Timed training lasts at least this long.")
flags.DEFINE_string("cpu_threading", None, "RunConfig.cpu_threading for every child (default: RunConfig's).")
flags.DEFINE_integer("threads", 0, "Threads per child (TF_NUM_*_THREADS, with --cpu_threading=tensorflow), as "
                     "a study worker gets them; 0: --cpu_threading decides.")
flags.DEFINE_string("baseline_tree", None, "Another checkout whose package is measured interleaved.")
flags.DEFINE_string("child", None, "Internal: model:hidden:mode measured in this process.")
FLAGS = flags.FLAGS

#: The speed and memory targets: (key, comparison, threshold, description).
TRAIN_FRACTION = {512: 0.90, 128: 0.60}
INFER_FRACTION = {512: 0.5}
#: At the study's settings (hidden 64, batch 64, one thread per worker), training against --baseline_tree.
STUDY_SPEEDUP = 2.0
FIRST_STEP_S = 30.0  # hidden 512, default mode
PEAK_RSS_MB = 1800.0  # hidden 512 training process
TICKS = 24


def gemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best-of float32 numpy matmul throughput, GFLOP/s."""
    import numpy as np

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
    """Multiply-accumulates of a GRU layer's input and recurrent projections over ``steps``."""
    return steps * (in_dim + hidden) * 3 * hidden


def forward_macs(cfg, vocab_size: int) -> int:
    """Multiply-accumulates of one forward pass for one measure (matmuls only; table lookups free)."""
    h, z, v, t = cfg.hidden_size, cfg.latent_dim, vocab_size, TICKS
    k = len(cfg.attributes)
    adversarial = cfg.model == "adversarial_vae"
    layers = cfg.adversarial_encoder_layers if adversarial else cfg.num_layers
    in_dim = v if adversarial and cfg.one_hot_inputs else cfg.embedding_dim
    enc = sum(2 * gru_macs(t, in_dim if i == 0 else 2 * h, h) for i in range(layers))  # two directions
    summary = 2 * layers * h
    post = (2 * h if cfg.adversarial_posterior_hidden else 0) if adversarial else 2 * h
    enc += 2 * (summary * post + post * z) if post else 2 * summary * z  # mean and scale heads
    upper = (cfg.num_layers - 1) * gru_macs(1, h, h)  # stacked layers above the first, per step
    if not adversarial:
        dec = z * cfg.num_layers * h + 4 * (h * 3 * h + upper)  # z -> beat states, beat GRU (constant input)
        dec += 4 * (h * cfg.num_layers * h + h * h + h * 3 * h)  # beat -> tick states, conditioning, projection
        dec += t * (h * 3 * h + upper + h * v)  # tick GRU (token half of layer 1 is a lookup) + logits
    else:
        dec = z * h + (z + k) * 3 * h  # initial state, the constant part of the input projection
        dec += t * (h * 3 * h + upper + h * v)
        width, prev = z, z
        for _ in range(cfg.discriminator_layers - 1):
            width = cfg.discriminator_hidden or max(width // 2, 1)
            dec += prev * width
            prev = width
        dec += prev * k * (cfg.num_bins - 1)
    return enc + dec


def step_matmuls(graph) -> list:
    """(a shape, b shape, transpose a, transpose b) of every MatMul / BatchMatMulV2 in a traced step."""
    out = []
    for op in graph.get_operations():
        if op.type == "MatMul":
            ta, tb = op.get_attr("transpose_a"), op.get_attr("transpose_b")
        elif op.type in ("BatchMatMulV2", "BatchMatMulV3"):
            ta, tb = op.get_attr("adj_x"), op.get_attr("adj_y")
        else:
            continue
        a, b = op.inputs[0].shape, op.inputs[1].shape
        if a.is_fully_defined() and b.is_fully_defined():
            out.append((tuple(a), tuple(b), bool(ta), bool(tb)))
    return out


def matmul_replay(specs: list, repeats: int = 3) -> tuple:
    """(seconds, GFLOP) of the given matmuls alone, replayed in one tf.function in groups of 16
    independent products (as free to run in parallel as the step's own), best of ``repeats``.

    The step's matmuls without anything between them: an upper bound on what the step could reach
    if every elementwise op, copy and gradient bookkeeping between them cost nothing."""
    import numpy as np
    import tensorflow as tf

    # Grappler would merge the repeated products whatever their operands: off for the rest of this process.
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    # Operands are eager tensors, captured as inputs (constants inside the function would be folded),
    # and every product reads its left operand at its own row offset of a taller buffer (a dim-0 slice:
    # no copy), so that TensorFlow's common-subexpression elimination cannot merge repeated products.
    uses = {}
    for a, _, _, _ in specs:
        uses[a] = uses.get(a, 0) + 1
    rng = np.random.default_rng(0)
    tall = {shape: tf.constant(rng.random((shape[0] + n,) + shape[1:], np.float32)) for shape, n in uses.items()}
    right = {b: tf.constant(rng.random(b, np.float32)) for _, b, _, _ in specs}
    offsets = {}

    def left(shape):
        offsets[shape] = offsets.get(shape, -1) + 1
        return tall[shape][offsets[shape]:offsets[shape] + shape[0]]

    flop = 0
    for a, b, ta, tb in specs:
        m, k = (a[-1], a[-2]) if ta else (a[-2], a[-1])
        n = b[-2] if tb else b[-1]
        flop += 2 * m * k * n * int(np.prod(a[:-2]) if len(a) > 2 else 1)

    @tf.function
    def replay():
        total = tf.zeros([])
        for i in range(0, len(specs), 16):
            outs = [tf.matmul(left(a), right[b], transpose_a=ta, transpose_b=tb)
                    for a, b, ta, tb in specs[i:i + 16]]
            with tf.control_dependencies([total]):
                total = tf.add_n([tf.reshape(o, [-1])[0] for o in outs])
        return total

    replay().numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        replay().numpy()
        best = min(best, time.perf_counter() - t)
    return best, flop / 1e9


def measure(name: str, hidden: int, mode: str) -> dict:
    """One configuration, in this (fresh) process: the figures ``main`` prints, as a dict."""
    import numpy as np
    import tensorflow as tf

    from musicvae_xai import attributes
    from musicvae_xai.config import RunConfig
    from musicvae_xai.models.base import build_model
    from musicvae_xai.training.loop import data_statistics

    try:
        from musicvae_xai.training import cpu_threads
    except ImportError:  # a baseline tree from before --cpu_threading: the environment's thread settings
        cpu_threads = None

    threading = {"cpu_threading": FLAGS.cpu_threading or RunConfig.cpu_threading} if cpu_threads else {}
    cfg = RunConfig(model=name, hidden_size=hidden, latent_dim=FLAGS.latent_dim, batch_size=FLAGS.batch_size,
                    **threading)
    xla = cfg.xla if mode == "default" else mode == "xla"
    threads = (cpu_threads.apply(cfg.cpu_threading, xla=xla) if cpu_threads  # as musicvae-train does
               else f"TensorFlow's default pools, TF_NUM_INTRAOP_THREADS={os.environ.get('TF_NUM_INTRAOP_THREADS')}")
    gemm_before = gemm_gflops()
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, cfg.vocabulary.size, size=(cfg.batch_size, TICKS)).astype(np.int32)
    attrs = attributes.compute(tokens, cfg.vocabulary, cfg.attributes)
    t0 = time.perf_counter()
    import_s = t0 - _START
    bins = getattr(cfg, "num_bins", 8)  # a setting of AdversarialVAE only (of every model in older trees)
    model = build_model(cfg, data_statistics=data_statistics(tokens, cfg.vocabulary, cfg.attributes, bins))
    opts = model.make_optimizers()
    step_fn = tf.function(lambda t, a, s: model.train_step_replica(opts, t, a, s, cfg.batch_size, 0),
                          jit_compile=xla)
    step_fn(tokens, attrs, tf.constant(0, tf.int64))["loss"].numpy()
    first_step_s = time.perf_counter() - t0
    step_fn(tokens, attrs, tf.constant(1, tf.int64))["loss"].numpy()
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while steps < FLAGS.min_steps or time.perf_counter() - t0 < FLAGS.seconds:
        step_fn(tokens, attrs, tf.constant(steps + 2, tf.int64))["loss"].numpy()
        steps += 1
    train_mps = steps * cfg.batch_size / (time.perf_counter() - t0)
    train_cpu_mps = steps * cfg.batch_size / (time.process_time() - c0)  # per CPU-second: steadier under load
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Inference in graph mode without XLA: the adversarial decode validates its controls with
    # host-side warnings, which XLA cannot compile.
    infer = tf.function(lambda t: model.decode(model.encode(t)["z"], model.default_controls(t))["tokens"])
    infer(tokens).numpy()
    batches, t0 = 0, time.perf_counter()
    while batches < 3 or time.perf_counter() - t0 < FLAGS.seconds / 4:
        infer(tokens).numpy()
        batches += 1
    infer_mps = batches * cfg.batch_size / (time.perf_counter() - t0)
    macs = forward_macs(cfg, model.vocabulary.size)
    specs = step_matmuls(step_fn.get_concrete_function(tokens, attrs, tf.constant(0, tf.int64)).graph)
    replay_s, replay_gflop = matmul_replay(specs)
    return {"model": name, "hidden": hidden, "batch_size": cfg.batch_size, "xla": xla, "default_xla": cfg.xla,
            "steps": steps, "train_mps": train_mps, "train_cpu_mps": train_cpu_mps,
            "train_gflop": 3 * 2 * macs / 1e9, "infer_mps": infer_mps, "infer_gflop": 2 * macs / 1e9,
            "first_step_s": first_step_s, "import_s": import_s, "rss_mb": rss_mb,
            "replay_s": replay_s, "replay_gflop": replay_gflop, "replay_matmuls": len(specs),
            "gemm_before": gemm_before, "gemm_after": gemm_gflops(), "threads": threads}


def run_child(spec: str, tree: str | None) -> dict:
    """Measures ``spec`` (model:hidden:mode) in a fresh process, with ``tree``'s package when given."""
    env = dict(os.environ)
    if FLAGS.threads:  # one study worker's thread budget (study.runner sets the same variables)
        env.update({k: str(FLAGS.threads) for k in
                    ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")})
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([tree, env.get("PYTHONPATH", "")])
    argv = [sys.executable, os.path.abspath(__file__), f"--child={spec}", f"--seconds={FLAGS.seconds}",
            f"--min_steps={FLAGS.min_steps}", f"--latent_dim={FLAGS.latent_dim}",
            f"--batch_size={FLAGS.batch_size}"]
    threading = "tensorflow" if FLAGS.threads else FLAGS.cpu_threading
    if threading:
        argv.append(f"--cpu_threading={threading}")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {spec} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def fractions(r: dict) -> tuple:
    """(GEMM ceiling, training fraction, inference fraction) of one result."""
    ceiling = (r["gemm_before"] + r["gemm_after"]) / 2
    return ceiling, r["train_mps"] * r["train_gflop"] / ceiling, r["infer_mps"] * r["infer_gflop"] / ceiling


def describe(r: dict, label: str = "") -> str:
    ceiling, train_f, infer_f = fractions(r)
    return (f"{label}{r['model']:15s} hidden={r['hidden']:3d} xla={str(r['xla']):5s}: "
            f"GEMM {r['gemm_before']:.0f}/{r['gemm_after']:.0f} GFLOP/s (before/after); "
            f"train {r['train_mps']:6.1f} measures/s x {r['train_gflop']:.3f} GFLOP = {train_f:.2f} of GEMM "
            f"({r['steps']} steps); inference {r['infer_mps']:7.1f} measures/s = {infer_f:.2f} of GEMM; "
            f"first step {r['first_step_s']:.1f} s (+{r['import_s']:.1f} s imports); peak RSS {r['rss_mb']:.0f} MB; "
            f"threads: {r.get('threads', '?')}" + replay_text(r))


def replay_text(r: dict) -> str:
    """The matmul-replay figures of one result, or nothing for results without them."""
    if "replay_s" not in r:
        return ""
    ceiling = (r["gemm_before"] + r["gemm_after"]) / 2
    step_s = r["batch_size"] / r["train_mps"]
    return (f"\n    the step's {r['replay_matmuls']} matmuls ({r['replay_gflop']:.0f} GFLOP) replayed alone: "
            f"{r['replay_s']:.3f} s = {r['replay_gflop'] / r['replay_s'] / ceiling:.2f} of GEMM; the step takes "
            f"{step_s:.3f} s, so {1 - r['replay_s'] / step_s:.0%} of it is outside the matmuls, and the step "
            f"would reach {r['train_mps'] * r['train_gflop'] / ceiling * step_s / r['replay_s']:.2f} of GEMM "
            f"(analytic FLOPs) if all of that cost nothing")


def targets(results: list) -> list:
    """(description, figure, passed) for every target the results cover."""
    out = []
    for r in results:
        _, train_f, infer_f = fractions(r)
        where = f"{r['model']} hidden {r['hidden']} (xla={r['xla']})"
        if r["hidden"] in TRAIN_FRACTION:
            goal = TRAIN_FRACTION[r["hidden"]]
            out.append((f"training >= {goal:.2f} of GEMM, {where}", f"{train_f:.2f}", train_f >= goal))
        if r["hidden"] in INFER_FRACTION:
            goal = INFER_FRACTION[r["hidden"]]
            out.append((f"inference >= {goal:.2f} of GEMM, {where}", f"{infer_f:.2f}", infer_f >= goal))
        if r["hidden"] == 512 and r["xla"] == r["default_xla"]:  # the default compile mode
            out.append((f"first training step <= {FIRST_STEP_S:.0f} s, {where}", f"{r['first_step_s']:.1f} s",
                        r["first_step_s"] <= FIRST_STEP_S))
        if "baseline_cpu_ratio" in r and r["hidden"] == 64 and r["batch_size"] == 64:
            out.append((f"training >= {STUDY_SPEEDUP:.1f}x the baseline tree in measures per CPU-second at the "
                        f"study's settings (batch 64), {where}", f"{r['baseline_cpu_ratio']:.2f}x",
                        r["baseline_cpu_ratio"] >= STUDY_SPEEDUP))
        if r["hidden"] == 512:
            out.append((f"peak RSS <= {PEAK_RSS_MB:.0f} MB, {where}", f"{r['rss_mb']:.0f} MB",
                        r["rss_mb"] <= PEAK_RSS_MB))
    return out


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv):
    del argv
    if FLAGS.child:
        name, hidden, mode = FLAGS.child.split(":")
        print(json.dumps(measure(name, int(hidden), mode)), flush=True)
        return
    t_start = time.perf_counter()
    print(f"load average (1/5/15 min) at start: {load()}; {os.cpu_count()} CPUs", flush=True)
    results = []
    for name in FLAGS.models:
        for hidden in FLAGS.hidden_sizes:
            for mode in FLAGS.modes:
                spec = f"{name}:{hidden}:{mode}"
                r = run_child(spec, None)
                r["mode"] = mode
                results.append(r)
                print(describe(r), f"[load {load()}]", flush=True)
                if FLAGS.baseline_tree:
                    b = run_child(spec, FLAGS.baseline_tree)
                    print(describe(b, "  baseline "), f"[load {load()}]", flush=True)
                    r["baseline_ratio"] = fractions(r)[1] / fractions(b)[1]
                    if "train_cpu_mps" in b:
                        r["baseline_cpu_ratio"] = r["train_cpu_mps"] / b["train_cpu_mps"]
                        print(f"  ratio this/baseline: training {r['baseline_cpu_ratio']:.2f}x in measures per "
                              f"CPU-second ({r['train_cpu_mps']:.0f} vs {b['train_cpu_mps']:.0f})", flush=True)
                    print(f"  ratio this/baseline: training {r['baseline_ratio']:.2f}x, "
                          f"inference {fractions(r)[2] / fractions(b)[2]:.2f}x (fractions of each one's GEMM), "
                          f"first step {r['first_step_s'] / b['first_step_s']:.2f}x, "
                          f"peak RSS {r['rss_mb'] / b['rss_mb']:.2f}x", flush=True)
    print(f"\nTargets, load average at end {load()}, bench wall time "
          f"{time.perf_counter() - t_start:.0f} s:")
    rows = targets(results)
    for desc, figure, ok in rows:
        print(f"  {'PASS' if ok else 'FAIL'}  {desc}: {figure}")
    print(f"{sum(ok for *_, ok in rows)} of {len(rows)} targets pass")


if __name__ == "__main__":
    app.run(main)
