"""Export a trained run for TF-Serving: ``musicvae-export --run_dir=DIR --export_base=DIR/NAME [--version=N]
[--noverify]`` (``python -m musicvae_xai.cli.export``). What is written and how it is published:
``musicvae_xai.export``. Prints the version folder written; a run that cannot be exported ends with one ``error:`` line.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from musicvae_xai.cli import run_command  # noqa: E402
from musicvae_xai.config import ConfigError  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("run_dir", None, "Run directory of a trained model (config.json + checkpoints).")
    flags.DEFINE_string("export_base", None, "Export folder DIR/NAME; NAME is the TF-Serving model name. "
                        "Versions are written as NAME/<N>/.")
    flags.DEFINE_integer("version", None, "Version number to write; default: one more than the newest.")
    flags.DEFINE_bool("verify", True, "Load the export as TF-Serving does and replay its warmup requests "
                      "before publishing.")
    flags.mark_flags_as_required(["run_dir", "export_base"])


def main(argv) -> None:
    del argv
    # TensorFlow is imported here, after the flags are parsed, so --help and flag errors are instant.
    from musicvae_xai.export import ExportError, export_run

    try:
        path = export_run(FLAGS.run_dir, FLAGS.export_base, FLAGS.version, verify=FLAGS.verify)
    except (ExportError, ConfigError) as e:
        sys.exit(f"error: {e}")
    print(path)


def run() -> None:
    run_command(main, define_flags)


if __name__ == "__main__":
    run()
