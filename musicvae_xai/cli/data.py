"""Build (or reuse) a dataset cache and print its summary.

    musicvae-data --dataset=irish --data_root=../shared/datasets [--cache_dir=DIR] \
        [--stats_json=stats.json] [--allow_cut_time] [--min_pitch=55] [--max_pitch=84]

(``python -m musicvae_xai.cli.data``, or the older ``python -m musicvae_xai.data``, alike.)

A bad data root, an unknown dataset name, a data root without one readable input file or a
``--cache_dir`` that is a file (checked before reading anything) stops with one ``error:`` line and
exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

# pydub (pulled in by note-seq) warns at import time when ffmpeg is missing; we never use audio.
warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)

from absl import flags, logging  # noqa: E402

from musicvae_xai import datasets  # noqa: E402
from musicvae_xai.cli import run_command  # noqa: E402
from musicvae_xai.datasets.config import CACHE_DEFAULT_TEXT, DEFAULT_CACHE_DIR  # noqa: E402
from musicvae_xai.datasets.summary import summary_table  # noqa: E402
from musicvae_xai.representation import DEFAULT_MAX_PITCH, DEFAULT_MIN_PITCH  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "embedded", f"Dataset name: one of {', '.join(datasets.names())}.")
flags.DEFINE_string("data_root", None, "Folder holding the dataset's source folders (e.g. ../shared/datasets); "
                    "not needed for 'embedded'.")
flags.DEFINE_string("cache_dir", DEFAULT_CACHE_DIR, f"Folder of dataset caches (default {CACHE_DEFAULT_TEXT}, "
                    "where training looks for them).")
flags.DEFINE_string("stats_json", None, "If set, write the build statistics here as JSON.")
flags.DEFINE_bool("allow_cut_time", False, "Admit 2/2 bars as four quarter beats.")
flags.DEFINE_integer("min_pitch", DEFAULT_MIN_PITCH, "Lowest MIDI pitch of the vocabulary.")
flags.DEFINE_integer("max_pitch", DEFAULT_MAX_PITCH, "Highest MIDI pitch of the vocabulary.")
flags.DEFINE_bool("transpose", True, "Augment the training split with every in-range transposition.")
flags.DEFINE_integer("max_files", None, "Only the first N files of each source (quick runs).")
flags.DEFINE_integer("workers", None, "Parser processes (default: every CPU core).")
flags.DEFINE_float("file_timeout", datasets.FILE_TIMEOUT, "Seconds one input file may take to read; a file "
                   "that takes longer is skipped and counted as parse_timeout (0: no limit).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")


def main(argv):
    if len(argv) > 1:
        sys.stderr.write(f"error: unexpected arguments: {' '.join(argv[1:])}\n")
        return 2
    cfg = datasets.DatasetConfig(
        name=FLAGS.dataset, data_root=FLAGS.data_root, min_pitch=FLAGS.min_pitch, max_pitch=FLAGS.max_pitch,
        allow_cut_time=FLAGS.allow_cut_time, transpose=FLAGS.transpose, max_files=FLAGS.max_files)
    timeout = FLAGS.file_timeout if FLAGS.file_timeout and FLAGS.file_timeout > 0 else None
    try:
        built = datasets.build(cfg, FLAGS.cache_dir, progress=FLAGS.progress, workers=FLAGS.workers,
                               file_timeout=timeout)
    except (ValueError, OSError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    print(summary_table(built.stats, cache_path=str(built.path), reused=built.reused))
    if FLAGS.stats_json:
        folder = os.path.dirname(os.path.abspath(FLAGS.stats_json))
        os.makedirs(folder, exist_ok=True)
        with open(FLAGS.stats_json, "w", encoding="utf-8") as f:
            json.dump(built.stats, f, indent=2, ensure_ascii=False)
        logging.info("wrote %s", FLAGS.stats_json)
    return 0


def run() -> None:
    run_command(main)


if __name__ == "__main__":
    run()
