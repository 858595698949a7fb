"""Evaluate a trained run: ``python -m musicvae_xai.evaluate --run_dir=DIR [--split=test] [--output=PATH.json]``.

Loads the run from its saved configuration alone, evaluates it on the split (see
``musicvae_xai.evaluation``), prints a table and writes the report as JSON (default
``RUN_DIR/evaluation_SPLIT.json``). Same run, flags and seed: same report.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import app, flags, logging

flags.DEFINE_string("run_dir", None, "Run directory (config.json + checkpoints) to evaluate.")
flags.DEFINE_string("split", "test", "Dataset split: train, validation or test.")
flags.DEFINE_string("output", None, "JSON report path (default RUN_DIR/evaluation_SPLIT.json).")
flags.DEFINE_integer("max_measures", 0, "Evaluate at most this many measures of the split, drawn with "
                     "--seed (0 = all).")
flags.DEFINE_integer("seed", 0, "Seed of the sampled codes, the measure subsets and the MI estimator.")
flags.DEFINE_integer("sweep_measures", 64, "Measures each control is swept from (attribute independence).")
flags.DEFINE_integer("sweep_steps", 9, "Values of each control sweep, evenly spaced over its range.")
flags.DEFINE_integer("batch_size", 256, "Measures per model call.")
flags.DEFINE_string("cache_dir", None, "Dataset cache folder (default: the run's).")
flags.DEFINE_string("data_root", None, "Raw dataset folder (default: the run's).")
flags.DEFINE_bool("allow_unfinished", False, "Evaluate the latest checkpoint of a run that has not finished.")
flags.mark_flag_as_required("run_dir")
FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    from musicvae_xai.evaluation import EvaluationOptions, evaluate_run, format_report

    output = FLAGS.output or os.path.join(FLAGS.run_dir, f"evaluation_{FLAGS.split}.json")
    if os.path.isdir(output):
        sys.exit(f"error: --output {output} is a folder; give a file path")
    options = EvaluationOptions(split=FLAGS.split, max_measures=FLAGS.max_measures, seed=FLAGS.seed,
                                sweep_measures=FLAGS.sweep_measures, sweep_steps=FLAGS.sweep_steps,
                                batch_size=FLAGS.batch_size, cache_dir=FLAGS.cache_dir,
                                data_root=FLAGS.data_root, expect_finished=not FLAGS.allow_unfinished)
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
    logging.info("wrote %s", output)
    print(f"\nwrote {output}")


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    from musicvae_xai.cli import resolve_sys_argv

    resolve_sys_argv()  # --config=NAME, --flagfile=NAME, --study=NAME: the shipped configurations
    run()
