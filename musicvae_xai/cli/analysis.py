"""Analyse a trained run: ``musicvae-analysis --run_dir=DIR --output_dir=DIR`` (``python -m
musicvae_xai.cli.analysis``, or the older ``python -m musicvae_xai.analysis``, alike).

Writes the figures of docs/METHOD.md (section 7), the traversals as MIDI and ``index.html`` into --output_dir
(see ``musicvae_xai.analysis.report``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import app, flags, logging

from musicvae_xai.cli import resolve_sys_argv

flags.DEFINE_string("run_dir", None, "Run directory (config.json + checkpoints) to analyse.")
flags.DEFINE_string("output_dir", None, "Folder for the figures, MIDI files and index.html.")
flags.DEFINE_string("split", "test", "Split the traversed measures come from.")
flags.DEFINE_string("data_split", "train", "Split of the encoded-data figures.")
flags.DEFINE_integer("seed", 0, "Seed of every measure choice.")
flags.DEFINE_integer("steps", 9, "Values per traversal, evenly spaced over the control's range.")
flags.DEFINE_integer("curve_measures", 32, "Measures the mean traversal curve averages over (0 = none).")
flags.DEFINE_integer("grid", 11, "Grid size of the attribute surface maps.")
flags.DEFINE_integer("surface_measures", 8, "Measures each surface map averages over.")
flags.DEFINE_integer("max_measures", 5000, "Encoded measures in the data-distribution figures.")
flags.DEFINE_string("input_file", None, "Traverse a bar of this MIDI/MusicXML/ABC file instead of a split measure.")
flags.DEFINE_integer("input_bar", None, "0-based bar of --input_file (default: its first usable 4/4 bar).")
flags.DEFINE_float("qpm", 120.0, "Tempo of the MIDI files written.")
flags.DEFINE_integer("batch_size", 256, "Measures per model call.")
flags.DEFINE_string("cache_dir", None, "Dataset cache folder (default: the run's).")
flags.DEFINE_string("data_root", None, "Raw dataset folder (default: the run's).")
flags.DEFINE_bool("allow_unfinished", False, "Analyse the latest checkpoint of a run that has not finished.")
flags.mark_flags_as_required(["run_dir", "output_dir"])
FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    from musicvae_xai.analysis.report import AnalysisOptions, prepare_output_dir, run_analysis

    options = AnalysisOptions(split=FLAGS.split, data_split=FLAGS.data_split, seed=FLAGS.seed, steps=FLAGS.steps,
                              curve_measures=FLAGS.curve_measures, grid=FLAGS.grid,
                              surface_measures=FLAGS.surface_measures, max_measures=FLAGS.max_measures,
                              input_file=FLAGS.input_file, input_bar=FLAGS.input_bar, qpm=FLAGS.qpm,
                              batch_size=FLAGS.batch_size, cache_dir=FLAGS.cache_dir, data_root=FLAGS.data_root,
                              expect_finished=not FLAGS.allow_unfinished)
    try:
        options.validate()
        prepare_output_dir(FLAGS.output_dir)  # fail on a bad output_dir before loading anything
        manifest = run_analysis(FLAGS.run_dir, FLAGS.output_dir, options)
    except (ValueError, FileNotFoundError) as e:  # ConfigError, AnalysisError, ExplainError are ValueErrors
        sys.exit(f"error: {e}")
    for fig in manifest["figures"]:
        print(f"wrote {os.path.join(FLAGS.output_dir, fig['file'])}")
    for s in manifest["skipped"]:
        print(f"skipped {s['title']}: {s['reason']}")
    print(f"wrote {len(manifest['midi'])} MIDI files under {os.path.join(FLAGS.output_dir, 'midi')}")
    print(f"open {os.path.join(FLAGS.output_dir, 'index.html')}")
    logging.info("analysis done")


def run() -> None:
    resolve_sys_argv()  # --config=NAME, --flagfile=NAME, --study=NAME: the shipped configurations
    app.run(main)


if __name__ == "__main__":
    run()
