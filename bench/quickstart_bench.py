"""Wall time of the README's main job: train, evaluate, export and analysis of the quickstart model.

    python bench/quickstart_bench.py [--workdir=DIR] [--keep] [--target_s=180]

Runs the four commands of the README's first code block (``musicvae-train --config=quickstart``,
``musicvae-evaluate``, ``musicvae-export``, ``musicvae-analysis``) one after the other, each in its own
process as a user would, with their run, export and analysis folders under a temporary directory (or
``--workdir``), and prints each stage's wall time, the total against its target (the main job in
<= 3 minutes on a quiet 2-core machine) with PASS/FAIL, and the load averages at start and end. The
commands are read from the README, so the bench measures what the README tells a user to run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

flags.DEFINE_string("workdir", None, "Folder for the run, export and analysis (default: a temporary one).")
flags.DEFINE_bool("keep", False, "Keep the temporary folder.")
flags.DEFINE_float("target_s", 180.0, "Target for the whole job, seconds.")
FLAGS = flags.FLAGS

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
STAGES = ("musicvae-train", "musicvae-evaluate", "musicvae-export", "musicvae-analysis")


def readme_commands(path: str = README) -> list:
    """The main job's commands (argv lists) from the README's first ``bash`` block, install step dropped."""
    text = open(path, encoding="utf-8").read()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    line = next(ln for ln in block.splitlines() if "musicvae-train" in ln)
    commands = [shlex.split(part) for part in line.split("&&")]
    commands = [c for c in commands if c and c[0] in STAGES]
    if [c[0] for c in commands] != list(STAGES):
        raise ValueError(f"README's main job is not the four expected commands: {line}")
    return commands


def relocate(argv: list, workdir: str) -> list:
    """argv with every relative ``runs/...`` and ``exports/...`` path moved under ``workdir``."""
    out = []
    for arg in argv:
        if "=" in arg:
            flag, value = arg.split("=", 1)
            if value.startswith(("runs/", "exports/")):
                arg = f"{flag}={os.path.join(workdir, value)}"
        out.append(arg)
    if argv[0] == "musicvae-train" and not any(a.startswith("--run_dir=") for a in argv):
        out.append(f"--run_dir={os.path.join(workdir, 'runs/quickstart')}")
    return out


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv):
    del argv
    workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="quickstart_bench_")
    commands = [relocate(c, workdir) for c in readme_commands()]
    print(f"load average (1/5/15 min) at start: {load()}; {os.cpu_count()} CPUs; folder {workdir}", flush=True)
    times, total = [], 0.0
    for argv in commands:
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            sys.exit(f"error: {' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        times.append((argv[0], seconds))
        total += seconds
        print(f"  {argv[0]:18s} {seconds:6.1f} s   [load {load()}]", flush=True)
    ok = total <= FLAGS.target_s
    stages = ", ".join(f"{name.split('-')[1]} {seconds:.0f} s" for name, seconds in times)
    print(f"{'PASS' if ok else 'FAIL'}  the README's main job <= {FLAGS.target_s:.0f} s: {total:.0f} s "
          f"({stages}); load average at end {load()}")
    if not FLAGS.workdir and not FLAGS.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
