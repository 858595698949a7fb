"""Train a model: ``musicvae-train --config=NAME [--flag=value ...]`` (``python -m musicvae_xai.cli.train``,
or the older ``python -m musicvae_xai.train``, alike).

Every field of ``musicvae_xai.config.RunConfig`` is a flag of the same name, generated from the field's
declaration (default, help); flags given on the command line override the flagfile. Re-running the same
command on an existing ``--run_dir`` resumes from its newest checkpoint that restores. A second trainer on
a run_dir in use, a checkpoint that cannot be written or a run_dir that cannot be created end with one
``error:`` line (exit status 1).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags

from musicvae_xai.cli import resolve_sys_argv
from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.settings import define_flags, from_flags

FLAGS = flags.FLAGS


def define_config_flags() -> None:
    """One absl flag per RunConfig field, with its default and help text."""
    define_flags(RunConfig)


def config_from_flags() -> RunConfig:
    """The RunConfig of the parsed flags (not yet validated)."""
    return from_flags(RunConfig)


def main(argv) -> None:
    del argv
    # TensorFlow is imported here, after the flags are parsed, so --help and flag errors are instant.
    from musicvae_xai.training.checkpoints import CheckpointWriteError
    from musicvae_xai.training.loop import NonFiniteLossError, Trainer
    try:
        config = config_from_flags().validate()
        result = Trainer(config).run()
    except (ConfigError, ValueError, FileNotFoundError, NonFiniteLossError, CheckpointWriteError) as e:
        sys.exit(f"error: {e}")
    except OSError as e:  # permissions, disk full, ... outside the run directory: name the path
        where = f"{e.filename}: " if e.filename else ""
        sys.exit(f"error: {where}{e.strerror or e}")
    print("done: " + " ".join(f"{k}={v:.4f}" for k, v in sorted(result.items())))


def run() -> None:
    resolve_sys_argv()  # --config=NAME, --flagfile=NAME, --study=NAME: the shipped configurations
    define_config_flags()  # a missing, binary or non-flag --flagfile has stopped with one line already
    app.run(main)


if __name__ == "__main__":
    run()
