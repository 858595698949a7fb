"""The explorer as a static site: the model runs in the browser (TensorFlow.js), nothing runs on a server.

``build_site(out_dir, export_dir)`` writes a self-contained folder that any static file host serves
(``python -m http.server``, a documentation site, GitHub Pages), with no network access at run time:

* ``index.html``, ``site.css`` and the page's ES modules (``web/``: ``app.js`` the page,
  ``musicvae.js`` the forward pass, ``attributes.js``, ``keys.js`` (stay in key), ``grid.js`` and
  ``midifile.js`` / ``musicxml.js`` / ``mxl.js`` the readers and writer), plus ``audio.js``,
  ``pianoroll.js`` and ``wording.js`` shared with the server's page;
* ``vendor/``: the pinned TensorFlow.js (core + CPU backend) and ``@tonejs/midi`` builds, with their
  licences (``vendor/LICENSES.md``); ``web/package.json`` and ``package-lock.json`` pin them;
* ``model.json`` (configuration, vocabulary, attributes with their units, controls, training
  statistics, example measures, the table of weights, and what key estimation scores:
  ``keys.estimation_table``) and ``weights.bin`` (float32, little-endian).

Builds from any export of this package; the weights are named by ``explorer.weights``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from typing import Iterator, Optional

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
WEB_DIR = os.path.join(_HERE, "web")
SERVER_STATIC_DIR = os.path.join(_HERE, "static")
#: The page's own files (from ``web/``) and those shared with the server's page (from ``static/``).
WEB_FILES = ("index.html", "site.css", "app.js", "musicvae.js", "attributes.js", "keys.js", "grid.js",
             "midifile.js", "musicxml.js", "mxl.js")
SHARED_FILES = ("audio.js", "pianoroll.js", "wording.js", "favicon.svg")
#: The vendored npm builds: site file -> path inside node_modules (``web/package-lock.json`` pins them).
VENDOR_FILES = {
    "tf-core.min.js": "@tensorflow/tfjs-core/dist/tf-core.min.js",
    "tf-backend-cpu.min.js": "@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js",
    "tf-backend-wasm.min.js": "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "tfjs-backend-wasm-simd.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "Midi.js": "@tonejs/midi/build/Midi.js",
}
VENDOR_DIR = os.path.join(WEB_DIR, "vendor")
#: Example measures shipped with the site: bars of the embedded dataset's tunes.
EXAMPLE_TUNES, EXAMPLE_BARS = 4, 8


class SiteError(ValueError):
    """A site that cannot be built (one line naming the path)."""


def _examples(vocab) -> list:
    """[{"title", "bar_numbers", "tokens" [M][24]}]: the first bars of the embedded tunes, in ``vocab``
    (titled by their ``T:`` field, else their file name; bars numbered as a score numbers them)."""
    from musicvae_xai.explain import read_source
    from musicvae_xai.representation import FULL_RANGE, fit_transposition, sequence_to_measures

    folder = os.path.join(os.path.dirname(_HERE), "embedded_data")
    out = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".abc") or len(out) >= EXAMPLE_TUNES:
            continue
        result = read_source(os.path.join(folder, name))
        cut = sequence_to_measures(result.sequence)
        measures = cut.measures[:EXAMPLE_BARS]
        try:
            tokens = vocab.translate(measures, FULL_RANGE, fit_transposition(measures, vocab))
        except ValueError:
            continue
        out.append({"title": result.title or os.path.splitext(name)[0].replace("_", " "),
                    "bar_numbers": [int(b) + result.first_bar for b in cut.bar_index[:EXAMPLE_BARS]],
                    "tokens": tokens.tolist()})
    return out


def model_files(export_dir: str) -> tuple:
    """(model.json payload, weights.bin bytes) of an export version folder."""
    from musicvae_xai import attributes as attrs
    from musicvae_xai.datasets.sources import genre
    from musicvae_xai import keys
    from musicvae_xai.explorer.weights import export_weights
    from musicvae_xai.representation import Vocabulary

    weights, assets = export_weights(export_dir)
    table, chunks, offset = [], [], 0
    for name, value in weights.items():
        data = np.ascontiguousarray(value, dtype="<f4").tobytes()
        table.append({"name": name, "shape": list(value.shape), "offset": offset})
        chunks.append(data)
        offset += len(data)
    config, manifest = assets["config"], assets["export"]
    names = list(assets["attributes"]["names"])
    attributes = dict(assets["attributes"], presentation={n: attrs.PRESENTATION[n].to_dict() for n in names})
    stats = assets.get("data_statistics") or {}
    meta = {
        "format_version": 1, "model": config["model"], "model_name": manifest.get("model_name"),
        "version": manifest.get("version"), "step": manifest.get("step"), "genre": genre(config.get("dataset")),
        "needs_controls": bool(manifest.get("needs_controls")),
        "config": {k: config[k] for k in ("latent_dim", "hidden_size", "logits_relu", "beat_conditioning",
                                          "clip_log_scale", "adversarial_state_per_layer", "allow_cut_time",
                                          "dataset") if k in config},
        "vocabulary": assets["vocabulary"], "attributes": attributes, "controls": assets["controls"],
        "statistics": {k: stats[k] for k in ("min", "max", "mean", "std") if k in stats},
        "examples": _examples(Vocabulary.from_dict(assets["vocabulary"])), "weights": table,
        "keys": keys.estimation_table(),
    }
    return meta, b"".join(chunks)


def _check_out_dir(out_dir: str) -> None:
    """Refuses a file, or a folder that holds other things than a site this module built."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise SiteError(f"{out_dir}: exists and is not a folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, "model.json")):
        raise SiteError(f"{out_dir}: the folder is not empty (and holds no earlier static site); choose another")


def build_site(out_dir: str, export_dir: Optional[str] = None) -> dict:
    """Writes the static site of an export (a version folder or an export base; default: the shipped
    pretrained model) into ``out_dir``. Returns {"path", "files", "bytes", "weights_bytes"}.

    Raises SiteError (one line) for an unusable ``out_dir`` and FileNotFoundError for a missing export."""
    from musicvae_xai import pretrained
    from musicvae_xai.serving.local import resolve_export_dir

    export_dir = resolve_export_dir(export_dir or pretrained.export_dir())
    _check_out_dir(out_dir)
    meta, weights = model_files(export_dir)
    os.makedirs(os.path.join(out_dir, "vendor"), exist_ok=True)
    for name in WEB_FILES:
        shutil.copyfile(os.path.join(WEB_DIR, name), os.path.join(out_dir, name))
    for name in SHARED_FILES:
        shutil.copyfile(os.path.join(SERVER_STATIC_DIR, name), os.path.join(out_dir, name))
    for name in list(VENDOR_FILES) + ["LICENSES.md"]:
        shutil.copyfile(os.path.join(VENDOR_DIR, name), os.path.join(out_dir, "vendor", name))
    with open(os.path.join(out_dir, "model.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, separators=(",", ":"))
    with open(os.path.join(out_dir, "weights.bin"), "wb") as f:
        f.write(weights)
    files = [os.path.join(root, n) for root, _, names in os.walk(out_dir) for n in names]
    return {"path": out_dir, "files": len(files), "bytes": sum(os.path.getsize(p) for p in files),
            "weights_bytes": len(weights)}


def refresh_vendor(node_modules: str) -> list:
    """Copies the pinned npm builds from ``node_modules`` (after ``npm ci`` in ``web/``) into ``web/vendor/``;
    returns the files copied. Run it after changing ``web/package.json``."""
    copied = []
    for name, source in VENDOR_FILES.items():
        shutil.copyfile(os.path.join(node_modules, source), os.path.join(VENDOR_DIR, name))
        copied.append(name)
    return copied


@contextlib.contextmanager
def serve_folder(folder: str, host: str = "127.0.0.1") -> Iterator[str]:
    """Serves ``folder`` over HTTP on a free port in a background thread, as ``python -m http.server``
    does (tests and the bench open the site from it); yields the URL ("http://127.0.0.1:PORT/")."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # noqa: D102 - no access log on stderr
            pass

    handler = functools.partial(Quiet, directory=folder)
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
