"""Analyse a trained run: ``musicvae-analysis --run_dir=DIR --output_dir=DIR`` (``python -m
musicvae_xai.cli.analysis``, or the older ``python -m musicvae_xai.analysis``, alike).

Writes the figures of docs/METHOD.md (section 7), the traversals as MIDI and ``index.html`` into --output_dir
(see ``musicvae_xai.analysis.report``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from absl import flags

from musicvae_xai.cli import run_command
from musicvae_xai.config import AnalysisOptions
from musicvae_xai.settings import define_flags, from_flags

flags.DEFINE_string("run_dir", None, "Run directory (config.json + checkpoints) to analyse.")
flags.DEFINE_string("output_dir", None, "Folder for the figures, MIDI files and index.html.")
define_flags(AnalysisOptions)
flags.mark_flags_as_required(["run_dir", "output_dir"])
FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    # TensorFlow is imported here, after the flags are parsed, so --help and flag errors are instant.
    from musicvae_xai.analysis.report import prepare_output_dir, run_analysis

    options = from_flags(AnalysisOptions)
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


def run() -> None:
    run_command(main)


if __name__ == "__main__":
    run()
