"""The study runner and its report: ``musicvae-study`` (``python -m musicvae_xai.cli.study``, or the
older ``python -m musicvae_xai.study``, alike).

    python -m musicvae_xai.study --study=NAME --study_dir=DIR [--parallel=N]
        [--only=PATTERN] [--threads_per_config=T] [--emit_commands=PATH]
    python -m musicvae_xai.study prepare --study=NAME --study_dir=DIR
    python -m musicvae_xai.study report --study_dir=DIR --output=docs/RESULTS.md

The first form expands the study's grid, validates every configuration (a bad model, dataset or
attribute stops it before anything runs), builds the dataset caches, then trains, evaluates and
exports every configuration not finished yet, ``--parallel`` at a time, each into ``DIR/NAME``; rerun
it to resume. With ``--emit_commands`` it only writes the per-configuration commands and a Slurm
array script. ``prepare`` only builds the caches and baselines. ``report`` turns every
``result.json`` under DIR into a markdown report with figures. See ``musicvae_xai.study``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags

from musicvae_xai.cli import run_command
from musicvae_xai.study import grid
from musicvae_xai.study.commands import emit_commands
from musicvae_xai.study.runner import StudyRunner

FLAGS = flags.FLAGS


def _define(define, name: str, default, helptext: str) -> None:
    """Defines a flag unless a module imported into the same process (a test run) already has."""
    if name not in FLAGS:
        define(name, default, helptext)


_define(flags.DEFINE_string, "study", None, "Study file: a shipped name (cpu_v2, cpu_small, paper) or a path: "
        "grid and shared settings.")
_define(flags.DEFINE_string, "study_dir", None, "Folder of the study: one run directory per configuration.")
_define(flags.DEFINE_integer, "parallel", 1, "Configurations trained at the same time.")
_define(flags.DEFINE_string, "only", None, "Only configurations whose name matches one of these comma-separated "
        "shell patterns, e.g. 'measure_vae-*-pop-*'.")
_define(flags.DEFINE_integer, "threads_per_config", 0, "Compute threads per configuration (0: the study file's "
        "value, else available CPUs // --parallel).")
_define(flags.DEFINE_bool, "retry_failed", True, "Rerun configurations whose result.json records a failure.")
_define(flags.DEFINE_string, "emit_commands", None, "Write the per-configuration commands here (and a Slurm "
        "array script beside it) instead of running.")
_define(flags.DEFINE_integer, "status_every", 60, "Seconds between progress lines while configurations run.")
_define(flags.DEFINE_string, "output", "docs/RESULTS.md", "report, curves: markdown file to write (figures go "
        "beside it).")
_define(flags.DEFINE_string, "classes_dir", None, "curves: study folder of AdversarialVAE runs given their "
        "attributes as bin indices (configs/study/curves_classes.flags), reported beside --study_dir's.")

_define(flags.DEFINE_string, "curves_dir", None, "report: a curve study folder (configs/study/curves.flags); "
        "how far each verdict holds with training is written under the findings.")
COMMANDS = ("run", "prepare", "report", "curves")


def _log(line: str) -> None:
    print(line, flush=True)


def _load(require_study: bool = True):
    if not FLAGS.study or not FLAGS.study_dir:
        raise grid.StudyError("--study and --study_dir are required")
    spec = grid.load_study(FLAGS.study)
    entries = grid.expand(spec, FLAGS.study_dir)
    return spec, entries, grid.select(entries, FLAGS.only)


def main(argv) -> None:
    command = argv[1] if len(argv) > 1 else "run"
    if command not in COMMANDS or len(argv) > 2:
        sys.exit(f"error: unknown command {' '.join(argv[1:])!r}; expected one of {', '.join(COMMANDS)}")
    try:
        if command == "report":
            from musicvae_xai.study.report import write_report  # here: matplotlib, scipy (seconds)
            if not FLAGS.study_dir:
                raise grid.StudyError("--study_dir is required")
            path, figures = write_report(FLAGS.study_dir, FLAGS.output or "docs/RESULTS.md", FLAGS.curves_dir)
            print(f"wrote {path} and {len(figures)} figure(s)")
            return
        if command == "curves":
            from musicvae_xai.study import curves  # here: matplotlib, scipy (seconds)
            if not FLAGS.study_dir:
                raise grid.StudyError("--study_dir is required")
            path, figures = curves.write_report(FLAGS.study_dir, FLAGS.output or "docs/CURVES.md", FLAGS.classes_dir)
            print(f"wrote {path} and {len(figures)} figure(s)")
            return
        spec, entries, chosen = _load()
        if FLAGS.emit_commands:
            cpus = FLAGS.threads_per_config or spec.threads_per_config or 2
            commands, slurm = emit_commands(chosen, FLAGS.emit_commands, FLAGS.study, FLAGS.study_dir,
                                            cpus_per_task=cpus)
            print(f"wrote {len(chosen)} command(s) to {commands} and the Slurm array script {slurm}")
            return
        runner = StudyRunner(spec, chosen, FLAGS.study_dir, parallel=FLAGS.parallel,
                             threads_per_config=FLAGS.threads_per_config, retry_failed=FLAGS.retry_failed,
                             log=_log, status_every=FLAGS.status_every, grid_entries=entries)
        if command == "prepare":
            runner.write_study_file()
            runner.prepare()
            if runner.data_errors:
                sys.exit(f"error: {len(runner.data_errors)} configuration(s) lack data: "
                         f"{next(iter(runner.data_errors.values()))}")
            print(f"prepared the data of {len(chosen)} configuration(s)")
            return
        try:
            summary = runner.run()
        except KeyboardInterrupt:
            sys.exit("interrupted; rerun the same command to resume")
    except (grid.StudyError, ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"{len(summary['ok'])} configuration(s) finished, {len(summary['failed'])} failed, "
          f"{len(summary['skipped'])} skipped (done before)")
    if summary["failed"]:
        sys.exit(1)


def run() -> None:
    run_command(main)


if __name__ == "__main__":
    run()
