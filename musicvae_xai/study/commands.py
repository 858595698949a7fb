"""Per-configuration commands of a study, for users who spread the grid over a cluster.

``emit_commands(entries, path, ...)`` writes

* ``path``: one shell command per line, line i running configuration i
  (``python -m musicvae_xai.study --study=... --study_dir=... --only=NAME --parallel=1``); each line is
  resumable and writes ``STUDY_DIR/NAME/result.json`` like the local runner;
* ``<path stem>.slurm.sh``: a Slurm array script, task i running line i + 1 of ``path``, with a
  ``prepare`` command to run once beforehand (it builds the dataset caches, so array tasks do not
  all build them at the same time).

Relative paths in the study (data root, base flagfile, study dir) are relative to the folder the
commands are emitted from, so both files ``cd`` there first.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import Sequence

from musicvae_xai.study.grid import Entry


def slurm_path(path: str) -> str:
    return os.path.splitext(path)[0] + ".slurm.sh"


def config_command(study: str, study_dir: str, name: str, python: str = "python") -> str:
    """The command that runs (or resumes) configuration ``name`` alone."""
    return " ".join([python, "-m", "musicvae_xai.study", f"--study={shlex.quote(study)}",
                     f"--study_dir={shlex.quote(study_dir)}", f"--only={shlex.quote(name)}", "--parallel=1"])


def prepare_command(study: str, study_dir: str, python: str = "python") -> str:
    return " ".join([python, "-m", "musicvae_xai.study", "prepare", f"--study={shlex.quote(study)}",
                     f"--study_dir={shlex.quote(study_dir)}"])


def emit_commands(entries: Sequence[Entry], path: str, study: str, study_dir: str, cpus_per_task: int = 2,
                  hours: int = 24, workdir: str = "") -> tuple:
    """Writes the command list and the Slurm array script; returns (commands path, slurm path)."""
    if not entries:
        raise ValueError("no configuration to emit (check --only)")
    workdir = workdir or os.getcwd()
    python = os.path.basename(sys.executable) if sys.executable else "python"
    python = "python" if python.startswith("python") else python
    lines = [config_command(study, study_dir, e.name, python) for e in entries]
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    script = f"""#!/bin/bash
# Slurm array for study {study}: {len(entries)} configuration(s), one per array task.
# Run once before submitting (builds every dataset cache and the baselines):
#   cd {shlex.quote(workdir)} && {prepare_command(study, study_dir, python)}
# then:
#   sbatch {shlex.quote(slurm_path(path))}
# Resubmitting is safe: finished configurations are skipped, interrupted ones resume from their
# checkpoints. Each writes {study_dir}/NAME/result.json; then make the report with
#   {python} -m musicvae_xai.study report --study_dir={shlex.quote(study_dir)} --output=docs/RESULTS.md
#SBATCH --job-name=musicvae-study
#SBATCH --array=1-{len(entries)}
#SBATCH --cpus-per-task={cpus_per_task}
#SBATCH --time={hours}:00:00
#SBATCH --output={study_dir}/slurm-%A_%a.log
set -euo pipefail
cd {shlex.quote(workdir)}
line=$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {shlex.quote(os.path.abspath(path))})
echo "task ${{SLURM_ARRAY_TASK_ID}}: $line"
eval "$line"
"""
    with open(slurm_path(path), "w", encoding="utf-8") as f:
        f.write(script)
    os.chmod(slurm_path(path), 0o755)
    return path, slurm_path(path)
