"""Write TF-Serving's ``models.config`` for an export folder: ``musicvae-serving-config --export_root=exports
--out=serving/models.config [--policy=latest:2] [--container_root=/models] [--models=a,b]``
(``python -m musicvae_xai.cli.serving_config``). What is written: ``musicvae_xai.serving.models_config``.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from musicvae_xai.cli import run_command  # noqa: E402
from musicvae_xai.serving.models_config import DEFAULT_CONTAINER_ROOT, write_models_config  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("export_root", "exports", "Folder holding one export base per model (NAME/<version>/).")
    flags.DEFINE_string("out", "serving/models.config", "Where to write the config.")
    flags.DEFINE_string("container_root", DEFAULT_CONTAINER_ROOT, "Where the server sees export_root.")
    flags.DEFINE_string("policy", "latest:1", "Version policy: latest:N, all or specific:V1,V2.")
    flags.DEFINE_list("models", [], "Only these models (default: every model found).")


def main(argv) -> None:
    del argv
    try:
        text = write_models_config(FLAGS.export_root, FLAGS.out, FLAGS.container_root, FLAGS.policy, FLAGS.models)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(text, end="")


def run() -> None:
    run_command(main, define_flags)


if __name__ == "__main__":
    run()
