"""Evaluate a trained run: ``musicvae-evaluate --run_dir=DIR [--split=test] [--output=PATH.json]``
(``python -m musicvae_xai.cli.evaluate``, or the older ``python -m musicvae_xai.evaluate``, alike).

Loads the run from its saved configuration alone, evaluates it on the split (see
``musicvae_xai.evaluation``), prints a table and writes the report as JSON (default
``RUN_DIR/evaluation_SPLIT.json``). Same run, flags and seed: same report. The options' flags are
generated from ``musicvae_xai.config.EvaluationOptions`` (``--allow_unfinished`` is its
``expect_finished`` negated).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import flags

from musicvae_xai.cli import run_command
from musicvae_xai.config import EvaluationOptions
from musicvae_xai.settings import define_flags, from_flags

flags.DEFINE_string("run_dir", None, "Run directory (config.json + checkpoints) to evaluate.")
flags.DEFINE_string("output", None, "JSON report path (default RUN_DIR/evaluation_SPLIT.json).")
define_flags(EvaluationOptions)
flags.mark_flag_as_required("run_dir")
FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    # TensorFlow is imported here, after the flags are parsed, so --help and flag errors are instant.
    from musicvae_xai.evaluation import evaluate_run, format_report

    output = FLAGS.output or os.path.join(FLAGS.run_dir, f"evaluation_{FLAGS.split}.json")
    if os.path.isdir(output):
        sys.exit(f"error: --output {output} is a folder; give a file path")
    options = from_flags(EvaluationOptions)
    try:
        report = evaluate_run(FLAGS.run_dir, options)
    except (ValueError, FileNotFoundError) as e:  # ConfigError is a ValueError
        sys.exit(f"error: {e}")
    print(format_report(report))
    try:
        parent = os.path.dirname(os.path.abspath(output))
        os.makedirs(parent, exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, sort_keys=True)
            f.write("\n")
    except OSError as e:
        sys.exit(f"error: cannot write {output}: {e.strerror or e}")
    print(f"\nwrote {output}")


def run() -> None:
    run_command(main)


if __name__ == "__main__":
    run()
