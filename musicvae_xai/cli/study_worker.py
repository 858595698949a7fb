"""One configuration of a study: ``musicvae-study-worker --run_dir=STUDY_DIR/NAME`` (``python -m
musicvae_xai.cli.study_worker``, the form the study runner runs). Trains, evaluates and exports the
configuration ``entry.json`` describes and writes ``result.json`` (``musicvae_xai.study.worker``); a
failed stage ends with one ``error:`` line.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from musicvae_xai.cli import resolve_sys_argv
from musicvae_xai.config import ConfigError
from musicvae_xai.study.lifeline import die_with_parent
from musicvae_xai.study.worker import run_entry

FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    try:
        result = run_entry(FLAGS.run_dir)
    except (ConfigError, FileNotFoundError) as e:  # run_dir in use or unwritable, no entry.json
        sys.exit(f"error: {e}")
    if result["status"] != "ok":
        sys.exit(f"error: {result['name']} failed in {result['stage']}: {result['error']}")
    m = result["metrics"]
    print(f"{result['name']}: token_accuracy={m['token_accuracy']:.4f} note_accuracy={m['note_accuracy']:.4f} "
          f"interpretability={m['interpretability_mean']:.4f} in {result['wall_seconds']['total']:.0f}s")


def run() -> None:
    die_with_parent()  # first: a runner killed from here on takes this worker with it
    resolve_sys_argv()  # --config=NAME, --flagfile=NAME, --study=NAME: the shipped configurations
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    flags.DEFINE_string("run_dir", None, "Run directory of one study configuration (holds entry.json).")
    flags.mark_flag_as_required("run_dir")
    app.run(main)


if __name__ == "__main__":
    run()
