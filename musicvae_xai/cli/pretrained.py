"""``musicvae-pretrained VERB`` (or ``python -m musicvae_xai.pretrained VERB``): build, measure and
illustrate the shipped pretrained model.

  build --run_dir=runs/pretrained_irish [--fixture=tests/fixtures/pretrained_irish_test.npz] [--reuse_export]
      exports the finished run into the package (``musicvae_xai/pretrained/measure_vae_irish/1``; an
      existing export is refused unless ``--reuse_export`` measures it again as it is), evaluates the
      export (through its serving signatures) on the whole test split of its dataset, prints the
      evaluation table, writes ``figures.json`` beside the export and the test fixture: a fixed subset
      of the test split (``FIXTURE_MEASURES`` measures drawn with ``FIXTURE_SEED``) as token ids, with
      the figures of that subset in ``figures.json``. Exits 1 (after writing) when a figure misses
      ``TARGETS``. Needs the training data (``--data_root``, ``--cache_dir`` as for ``musicvae-evaluate``).
  analysis --output_dir=DIR
      ``musicvae-analysis`` of the shipped model (figures, MIDI, index.html); needs its dataset too.
  info
      prints where the export is and its figures.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import flags  # noqa: E402

from musicvae_xai import pretrained  # noqa: E402
from musicvae_xai.cli import run_command  # noqa: E402
from musicvae_xai.datasets.config import CACHE_DEFAULT_TEXT  # noqa: E402

flags.DEFINE_string("run_dir", None, "build: the finished training run to export into the package.")
flags.DEFINE_string("fixture", "tests/fixtures/pretrained_irish_test.npz", "build: where to write the test fixture.")
flags.DEFINE_bool("reuse_export", False, "build: measure the export already in the package instead of exporting.")
flags.DEFINE_string("output_dir", None, "analysis: folder for the figures, MIDI files and index.html.")
flags.DEFINE_string("cache_dir", None, f"Dataset cache folder (default: the model's, else {CACHE_DEFAULT_TEXT}).")
flags.DEFINE_string("data_root", None, "Raw dataset folder (default: the model's, ../shared/datasets).")
FLAGS = flags.FLAGS

VERBS = ("build", "analysis", "info")


def build() -> int:
    # TensorFlow modules, imported once the flags are parsed (as every command's main does).
    from musicvae_xai import inference
    from musicvae_xai.evaluation import EvaluationOptions, evaluate_model, format_report
    from musicvae_xai.pretrained.savedmodel import load_export

    if not FLAGS.reuse_export:
        if not FLAGS.run_dir:
            raise ValueError("build needs --run_dir (the finished training run), or --reuse_export")
        from musicvae_xai.export import export_run  # TensorFlow, as above

        path = export_run(FLAGS.run_dir, pretrained.export_base(), version=pretrained.VERSION, verify=True)
        print(f"exported {FLAGS.run_dir} to {path}")
    config, model = load_export(pretrained.export_dir())
    test = inference.split_tokens(config, "test", FLAGS.cache_dir, FLAGS.data_root)
    train = inference.split_tokens(config, "train", FLAGS.cache_dir, FLAGS.data_root)
    report = evaluate_model(config, model, test, EvaluationOptions(split="test"), train_tokens=train)
    report["run_dir"] = f"{pretrained.NAME}/{pretrained.VERSION} (the export)"
    print(format_report(report))

    rows = inference.subsample(len(test), pretrained.FIXTURE_MEASURES, pretrained.FIXTURE_SEED)
    fixture_report = evaluate_model(config, model, test[rows], pretrained.fixture_options(), train_tokens=train)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.fixture)), exist_ok=True)
    np.savez_compressed(FLAGS.fixture, tokens=test[rows].astype(np.int8), rows=rows.astype(np.int32))
    manifest = model.manifest
    figures = {
        "model": pretrained.NAME, "version": pretrained.VERSION, "checkpoint": manifest.get("checkpoint"),
        "step": manifest.get("step"), "dataset": config.dataset,
        "training_command": f"musicvae-train --config={pretrained.CONFIG}",
        "build_command": "musicvae-pretrained build --run_dir=" + (FLAGS.run_dir or "RUN_DIR"),
        "targets": pretrained.TARGETS,
        "test": pretrained.summarise(report),
        "fixture": {"file": os.path.basename(FLAGS.fixture), "seed": pretrained.FIXTURE_SEED,
                    "rows_of_test_split": len(test), **pretrained.summarise(fixture_report)},
        "evaluation": report,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(pretrained.__file__)), pretrained.FIGURES_FILENAME)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=2)
        f.write("\n")
    print(f"wrote {path} and {FLAGS.fixture} ({len(rows)} of {len(test)} test measures)")
    missed = [f"test split: {m}" for m in pretrained.shortfalls(figures["test"])]
    missed += [f"fixture: {m}" for m in pretrained.shortfalls(figures["fixture"])]
    for line in missed:
        print(f"below target: {line}")
    return 1 if missed else 0


def analysis() -> int:
    # TensorFlow modules, imported once the flags are parsed (as every command's main does).
    from musicvae_xai.analysis.report import AnalysisOptions, run_analysis
    from musicvae_xai.explain import Explainer

    if not FLAGS.output_dir:
        raise ValueError("analysis needs --output_dir")
    options = AnalysisOptions(cache_dir=FLAGS.cache_dir, data_root=FLAGS.data_root)
    manifest = run_analysis(f"{pretrained.NAME}/{pretrained.VERSION} (the shipped model)", FLAGS.output_dir,
                            options, explainer=Explainer.pretrained())
    for fig in manifest["figures"]:
        print(f"wrote {os.path.join(FLAGS.output_dir, fig['file'])}")
    return 0


def info() -> int:
    print(pretrained.export_dir())
    print(json.dumps({k: v for k, v in pretrained.figures().items() if k != "evaluation"}, indent=2))
    return 0


def main(argv) -> None:
    if len(argv) != 2 or argv[1] not in VERBS:
        sys.exit(f"usage: musicvae-pretrained {{{'|'.join(VERBS)}}} [flags]; "
                 f"got {' '.join(argv[1:]) or 'no verb'}")
    try:
        code = {"build": build, "analysis": analysis, "info": info}[argv[1]]()
    except (ValueError, FileNotFoundError) as e:  # ConfigError, ExportError, AnalysisError are ValueErrors
        sys.exit(f"error: {e}")
    sys.exit(code)


def run() -> None:
    run_command(main)


if __name__ == "__main__":
    run()
