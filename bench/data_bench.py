"""Benchmark: build the four genre datasets from ../shared/datasets into an empty cache.

    python bench/data_bench.py [--data_root=../shared/datasets] [--workers=N] [--datasets=irish,turkish,classical,pop]

Prints files/s and measures/s per dataset, the total wall time, and the time to reload every
cache (targets: all four under 5 minutes on a 2-core machine, reload under 5 s).
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)

from absl import app, flags, logging  # noqa: E402

from musicvae_xai import datasets  # noqa: E402
from musicvae_xai.datasets.summary import summary_table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
flags.DEFINE_string("data_root", os.path.join(REPO, "..", "shared", "datasets"), "Folder of the raw datasets.")
flags.DEFINE_list("datasets", ["irish", "turkish", "classical", "pop"], "Datasets to build.")
flags.DEFINE_integer("workers", None, "Parser processes (default: every core).")
flags.DEFINE_bool("allow_cut_time", False, "Admit 2/2 bars.")
flags.DEFINE_bool("summaries", True, "Print each dataset's summary table.")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the parser workers), user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    if not os.path.isdir(FLAGS.data_root):
        sys.stderr.write(f"error: data root {FLAGS.data_root} does not exist\n")
        return 2
    cache_dir = tempfile.mkdtemp(prefix="data_bench_")
    rows, configs = [], []
    try:
        t_all = time.time()
        for name in FLAGS.datasets:
            cfg = datasets.DatasetConfig(name=name, data_root=FLAGS.data_root, allow_cut_time=FLAGS.allow_cut_time)
            t0, c0 = time.time(), cpu_seconds()
            built = datasets.build(cfg, cache_dir, progress=False, workers=FLAGS.workers)
            dt, cpu = time.time() - t0, cpu_seconds() - c0
            s = built.stats
            measures = sum(s["measures"].values())
            rows.append((name, s["files_total"], dt, cpu, s["files_total"] / dt, measures, measures / dt,
                         sum(s["measures_augmented"].values())))
            configs.append(cfg)
            if FLAGS.summaries:
                print(summary_table(s), flush=True)
                print(flush=True)
        total = time.time() - t_all
        t0 = time.time()
        for cfg in configs:
            again = datasets.build(cfg, cache_dir, progress=False, workers=FLAGS.workers)
            assert again.reused, f"{cfg.name} was rebuilt instead of reused"
            for split in datasets.SPLITS:
                again.tokens(split)
        reload_s = time.time() - t0
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    print(f"{'dataset':<12}{'files':>8}{'wall s':>9}{'cpu s':>8}{'files/s':>10}{'measures':>10}"
          f"{'measures/s':>12}{'augmented':>11}")
    for name, files, dt, cpu, fps, m, mps, aug in rows:
        print(f"{name:<12}{files:>8}{dt:>9.1f}{cpu:>8.1f}{fps:>10.1f}{m:>10}{mps:>12.0f}{aug:>11}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"total build wall time: {total:.1f} s (target < 300 s) on {os.cpu_count()} cores, "
          f"load average {load:.1f} at the end")
    print(f"cache reload (all datasets, every split loaded): {reload_s:.2f} s (target < 5 s)")
    return 0


if __name__ == "__main__":
    app.run(main)
