"""``musicvae-explorer --export=DIR`` (in-process) or ``--serving_url=http://HOST:8501 --model=NAME
[--assets=DIR]`` (TF-Serving REST): serves the explorer page on http://127.0.0.1:PORT/. With neither, it
opens the pretrained model shipped in the package (``musicvae_xai/pretrained``). ``--static=DIR`` serves
nothing: it writes the explorer as a static site into DIR, the model running in the browser
(``explorer.static_site``; the shipped model, or ``--export=PATH``).

``python -m musicvae_xai.cli.explorer``, or the older ``python -m musicvae_xai.explorer``, alike."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402

from musicvae_xai.cli import run_command  # noqa: E402
from musicvae_xai.datasets.config import CACHE_DEFAULT_TEXT  # noqa: E402

flags.DEFINE_string("export", None, "Export folder (a version folder, or an export base whose newest "
                    "version is used), run in-process. Default (no --serving_url either): the pretrained "
                    "model shipped in the package.")
flags.DEFINE_string("serving_url", None, "TF-Serving REST address, e.g. http://localhost:8501.")
flags.DEFINE_string("model", None, "TF-Serving model name (with --serving_url).")
flags.DEFINE_integer("version", None, "TF-Serving model version (default: the server's newest).")
flags.DEFINE_string("assets", None, "With --serving_url: the export folder TF-Serving serves, to read its "
                    "assets.extra (vocabulary, attribute names, control ranges). Without it they are "
                    "inferred from the signatures and the library's defaults.")
flags.DEFINE_string("host", "127.0.0.1", "Address to listen on (127.0.0.1: this machine only).")
flags.DEFINE_integer("port", 8765, "Port to listen on (0: any free port).")
flags.DEFINE_float("timeout", 5.0, "Seconds to wait for TF-Serving before the page shows an error.")
flags.DEFINE_integer("retries", 1, "Retries of a request TF-Serving did not take (unavailable).")
flags.DEFINE_string("cache_dir", None, "Datasets cache (default: the model's training cache if it exists, "
                    f"else {CACHE_DEFAULT_TEXT}).")
flags.DEFINE_string("data_root", None, "Override the model's data_root for seed measures and backgrounds.")
flags.DEFINE_enum("seed_data", "model", ["model", "embedded"], "Seed measures and pad backgrounds from the "
                  "model's own dataset (the embedded one when it is not available here), or the embedded dataset.")
flags.DEFINE_integer("train_limit", 2000, "Training measures encoded for the data backgrounds and the "
                     "attribute fits (0: none).")
flags.DEFINE_integer("max_upload_kb", 2048, "Largest upload accepted, KiB.")
flags.DEFINE_string("static", None, "Write the explorer as a static site into this folder (the model runs in the "
                    "browser with TensorFlow.js; open it from any static file host) instead of serving it: "
                    "the shipped pretrained model, or --export.")
FLAGS = flags.FLAGS


def main(argv) -> None:
    del argv
    from musicvae_xai.explorer.app import create_app
    from musicvae_xai.explorer.model_info import ModelInfoError
    from musicvae_xai.explorer.server import make_explorer, serve
    from musicvae_xai.pretrained import explorer_export
    from musicvae_xai.serving.base import ServingError

    if FLAGS.static:
        write_static_site(FLAGS.static, FLAGS.export, FLAGS.serving_url)
        return
    try:
        export = explorer_export(FLAGS.export, FLAGS.serving_url)  # no model flags: the shipped model
        explorer, backend = make_explorer(
            export=export, serving_url=FLAGS.serving_url, model=FLAGS.model, version=FLAGS.version,
            assets=FLAGS.assets, timeout=FLAGS.timeout, retries=FLAGS.retries, cache_dir=FLAGS.cache_dir,
            data_root=FLAGS.data_root, train_limit=FLAGS.train_limit, seed_data=FLAGS.seed_data)
    except (ValueError, FileNotFoundError, ModelInfoError, ServingError) as e:
        sys.exit(f"error: {e}")
    logging.info("explorer: %s", backend)
    explorer.start_loading()
    serve(create_app(explorer, backend, max_upload_bytes=FLAGS.max_upload_kb * 1024), FLAGS.host, FLAGS.port)


def write_static_site(out_dir: str, export, serving_url) -> None:
    """``--static=DIR``: builds the static site and prints where it is and how to open it."""
    from musicvae_xai.explorer.static_site import SiteError, build_site
    from musicvae_xai.explorer.weights import WeightsError

    if serving_url:
        sys.exit("error: --static builds from an export folder (--export=PATH, or none for the shipped model), "
                 "not from --serving_url")
    try:
        site = build_site(out_dir, export)
    except (SiteError, WeightsError, ValueError, OSError) as e:  # a ConfigError is a ValueError
        sys.exit(f"error: {e}")
    print(f"static explorer written to {site['path']} ({site['files']} files, {site['bytes'] / 2**20:.1f} MiB); "
          f"open it with: python -m http.server --directory {site['path']}", flush=True)


def run() -> None:
    run_command(main)


if __name__ == "__main__":
    run()
