"""Serving client CLI: ``musicvae-serve-client --target=T --model=NAME VERB [flags]`` (``python -m
musicvae_xai.cli.serve_client``, or the older ``python -m musicvae_xai.serving.client``, alike).

T is ``host:port`` (gRPC, e.g. ``localhost:8500``), ``http://host:port`` (REST, e.g.
``http://localhost:8501``) or an export folder (run in-process). Verbs:

  reconstruct --midi=in.mid --out=out.mid [--bar_numbers=1,2]
  encode      --midi=in.mid [--out=z.json]
  decode      --z=z.json --out=out.mid [--controls=c.json]   (controls: adversarial model)
  traverse    --midi=in.mid --bar_numbers=1 --control=2 --values=-2,0,2 --out=sweep.mid
  sample      --num=4 --seed=0 --out=samples.mid
  metadata    [--out=meta.json]

Prints a JSON summary. Exits with one line on a bad request or an unreachable server.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags

from musicvae_xai import settings
from musicvae_xai.cli import run_command
from musicvae_xai.music_io import MusicFileError
from musicvae_xai.serving import commands
from musicvae_xai.serving.base import ServingError
from musicvae_xai.serving.targets import connect

FLAGS = flags.FLAGS
flags.DEFINE_string("target", None, "host:port (gRPC), http://host:port (REST) or an export folder.")
flags.DEFINE_string("model", None, "Model name on the server (the export base's folder name).")
flags.DEFINE_integer("version", None, "Model version (default: the server's newest).")
flags.DEFINE_float("timeout", 30.0, "Deadline of the whole call in seconds (metadata fetch and retries included).")
flags.DEFINE_integer("retries", 3, "Retries while the server is unavailable.")
flags.DEFINE_enum("format", "row", ["row", "columnar"], "REST request format.")
settings.define_flags(commands.Options)  # --midi, --out, --bar_numbers, --values, ... (declared in commands.Options)


def main(argv) -> None:
    if len(argv) != 2 or argv[1] not in commands.VERBS:
        sys.exit(f"usage: python -m musicvae_xai.serving.client --target=T --model=NAME "
                 f"{{{'|'.join(commands.VERBS)}}} [flags]; got {' '.join(argv[1:]) or 'no verb'}")
    try:
        options = settings.from_flags(commands.Options)
        client = connect(FLAGS.target, FLAGS.model, FLAGS.version, timeout=FLAGS.timeout, retries=FLAGS.retries,
                         request_format=FLAGS.format)
        with client:
            summary = commands.run(client, argv[1], options)
    except (ServingError, MusicFileError, commands.CommandError, ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(json.dumps(summary, indent=1))


def run() -> None:
    run_command(main, lambda: flags.mark_flag_as_required("target"))


if __name__ == "__main__":
    run()
