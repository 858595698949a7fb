"""Export a trained run as a versioned, TF-Serving-ready SavedModel, published atomically.

``musicvae-export --run_dir=DIR --export_base=DIR/NAME [--version=N]`` (the command line is
``musicvae_xai.cli.export``) writes
``NAME/<N>/`` (N = one more than the highest existing version when omitted; ``NAME`` is the model name
TF-Serving serves it under):

* ``saved_model.pb`` + ``variables/``: the signatures of ``musicvae_xai.serving.signatures``
  (``encode``, ``decode``, ``reconstruct``, ``traverse``, ``sample``, ``serving_default`` =
  ``reconstruct``), named inputs, dict outputs, batch dimension ``None``. Encoding is deterministic
  (``z_mean``; no sampling); ``sample`` decodes a z drawn by the caller. Every signature checks its
  inputs in the graph (shape, token ids inside the vocabulary, control index in range) and fails
  with an ``InvalidArgument`` naming the input and what was expected, as TF-Serving reports it.
* ``assets.extra/``: ``config.json`` (the resolved run configuration), ``vocabulary.json``,
  ``attributes.json``, ``controls.json`` (what ``traverse``'s ``control`` indexes, ranges, bin edges
  for the adversarial model), ``data_statistics.json``, ``export.json`` (a manifest) and
  ``tf_serving_warmup_requests`` (a TFRecord of ``PredictionLog``, one request per signature).

Publishing: everything is written to a hidden temporary directory beside the versions (TF-Serving
only looks at numeric directory names), optionally verified by loading it as TF-Serving does and
replaying the warmup requests, then renamed into place. An existing version is never overwritten, and a run without a
checkpoint or an existing target version is refused before anything is written.

Faults: an export folder that cannot be written (read-only, no permission) or a disk that fills up
while writing fails with one ``ExportError`` naming the path (the CLI prints one ``error:`` line), and
the temporary folder is removed. A temporary folder holds an ``.export-owner`` file locked (``flock``)
by the exporting process while it writes; a killed export leaves its folder behind, and the next
export into the same base removes the ones that are stale (``.tmp-N-*`` folders whose owner lock is
free, or, without an owner file, untouched for ``STALE_TMP_SECONDS``), logging each.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
import time
from typing import Optional

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from musicvae_xai import __version__
from musicvae_xai import attributes as attrs
from musicvae_xai.config import RunConfig
from musicvae_xai.controls import ATTRIBUTE_INPUT, LATENT_DIM
from musicvae_xai.representation import HOLD, Vocabulary
from musicvae_xai.serving import signatures as sigs
from musicvae_xai.serving.base import clean_message
from musicvae_xai.serving.graph import ServingModule, sample_controls
from musicvae_xai.training import checkpoints as ckpts

ASSETS_EXTRA = "assets.extra"
WARMUP_FILENAME = "tf_serving_warmup_requests"
MANIFEST_FILENAME = "export.json"
FORMAT_VERSION = 1
#: The temporary folders ``publish`` makes (``tempfile.mkdtemp(prefix=".tmp-<version>-")``).
_TMP_DIR = re.compile(r"^\.tmp-[0-9]+-[A-Za-z0-9_]+$")
OWNER_FILENAME = ".export-owner"
#: A temporary folder without an owner file (an older exporter's) counts as stale after this long.
STALE_TMP_SECONDS = 3600.0
#: Errors of writing files: OSError and what TensorFlow's file system raises for ENOSPC and EACCES.
_WRITE_ERRORS = (OSError, tf.errors.ResourceExhaustedError, tf.errors.PermissionDeniedError)


class ExportError(ValueError):
    """An export that cannot be made; the message is one line meant for the user."""


# ----------------------------------------------------------------------------------------------
# Assets and warmup


def example_measure(vocab: Vocabulary) -> np.ndarray:
    """int32 [24]: four quarter notes (C E G C, moved into the vocabulary's range), for warmup."""
    base = min(max(60, vocab.min_pitch), max(vocab.max_pitch - 12, vocab.min_pitch))
    items = []
    for step in (0, 4, 7, 12):
        items += [min(base + step, vocab.max_pitch)] + [HOLD] * 5
    return vocab.encode(items)


def warmup_inputs(module: ServingModule) -> dict:
    """signature -> {input: np.ndarray}: one small, valid request per signature of ``module.spec``,
    each input filled by its name (so a new signature whose inputs have known names needs nothing here)."""
    vocab = module.model.vocabulary
    controls = module.model.controls
    first = controls[0] if controls else None
    low, high = (first.low, first.high) if first else (-1.0, 1.0)
    by_name = {"tokens": example_measure(vocab)[None, :], "z": np.zeros([1, module.latent_dim], np.float32),
               "control": np.array(first.index if first else 0, np.int32),
               "values": np.linspace(low, high, 3).astype(np.float32)}
    if module.needs_controls:
        by_name["controls"] = module._sample_controls.numpy()[None, :]
    return {name: {key: by_name[key] for key in signature["inputs"]} for name, signature in module.spec.items()}


def write_warmup(path: str, model_name: str, requests: dict) -> int:
    """Writes TF-Serving warmup records (TFRecord of PredictionLog) to ``path``; returns their count."""
    count = 0
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests.items():
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for key, value in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
            count += 1
    return count


def read_warmup(path: str) -> list:
    """[(signature, {input: np.ndarray})] of a warmup file, in order."""
    out = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        out.append((request.model_spec.signature_name,
                    {k: tf.make_ndarray(v) for k, v in request.inputs.items()}))
    return out


def _write_json(path: str, payload) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.write("\n")


def write_assets(directory: str, module: ServingModule, config: RunConfig, stats: Optional[dict],
                 model_name: str, version: int, checkpoint: str) -> None:
    """Writes everything under ``assets.extra/`` (see the module docstring)."""
    model = module.model
    os.makedirs(directory, exist_ok=True)
    config.save(directory)
    vocab = model.vocabulary
    _write_json(os.path.join(directory, "vocabulary.json"), {
        **vocab.to_dict(), "size": vocab.size, "tokens": vocab.tokens(), "rest_id": vocab.rest_id,
        "hold_id": vocab.hold_id, "start_id": vocab.start_id, "end_id": vocab.end_id})
    names = list(model.attribute_names)
    _write_json(os.path.join(directory, "attributes.json"), {
        "names": names, "labels": {n: attrs.label_and_unit(n)[0] for n in names},
        "units": {n: attrs.label_and_unit(n)[1] for n in names}})
    controls = {
        "kind": ATTRIBUTE_INPUT if module.needs_controls else LATENT_DIM,
        "num_controls": module.num_controls,
        "controls": [c.to_dict() for c in model.controls],
    }
    if module.needs_controls:
        controls["sample_controls"] = module._sample_controls.numpy().tolist()
        edges = (stats or {}).get("bin_edges")
        if edges is None:
            raise ExportError("the adversarial model's export needs the run's data_statistics.json (bin edges)")
        controls["bin_edges"] = dict(zip(stats["attributes"], edges, strict=False))
    _write_json(os.path.join(directory, "controls.json"), controls)
    if stats is not None:
        _write_json(os.path.join(directory, ckpts.DATA_STATISTICS_FILENAME), stats)
    step = re.search(r"-(\d+)$", checkpoint)
    _write_json(os.path.join(directory, MANIFEST_FILENAME), {
        "format_version": FORMAT_VERSION, "package_version": __version__, "model_name": model_name,
        "version": version, "model": config.model, "checkpoint": os.path.basename(checkpoint),
        "step": int(step.group(1)) if step else None, "latent_dim": module.latent_dim,
        "num_attributes": module.num_attributes, "vocab_size": module.vocab_size,
        "needs_controls": module.needs_controls, "num_controls": module.num_controls,
        "signatures": {name: {part: {k: {"dtype": d, "shape": list(s)} for k, (d, s) in spec[part].items()}
                              for part in ("inputs", "outputs")} for name, spec in module.spec.items()},
    })
    write_warmup(os.path.join(directory, WARMUP_FILENAME), model_name, warmup_inputs(module))


# ----------------------------------------------------------------------------------------------
# Versions and publishing


def existing_versions(export_base: str) -> list:
    """Sorted integer versions (numeric subdirectories) under ``export_base``; [] if it is absent."""
    if not os.path.isdir(export_base):
        return []
    try:
        names = os.listdir(export_base)
    except OSError as e:
        raise ExportError(f"cannot read the export folder {export_base}: {e.strerror or e}") from None
    return sorted(int(d) for d in names if sigs.VERSION_FOLDER.match(d))


def resolve_version(export_base: str, version: Optional[int] = None) -> int:
    """The version to write: ``version`` if free, else one more than the highest existing one.

    Raises ExportError for a non-positive version or one that already exists.
    """
    if os.path.exists(export_base) and not os.path.isdir(export_base):
        raise ExportError(f"export_base {export_base} exists and is not a directory")
    have = existing_versions(export_base)
    if version is None:
        return (have[-1] + 1) if have else 1
    if int(version) < 1:
        raise ExportError(f"--version must be a positive integer, got {version}")
    if int(version) in have or os.path.exists(os.path.join(export_base, str(int(version)))):
        raise ExportError(f"{os.path.join(export_base, str(int(version)))} already exists; versions are "
                          "never overwritten (omit --version to write the next one)")
    return int(version)


def load_in_session(session, export_dir: str, tags: tuple = ("serve",)):
    """Loads the ``tags`` MetaGraph of a SavedModel into ``session`` (a ``tf.compat.v1.Session``) as
    TF-Serving's loader does: the graph imported, the variables restored from ``variables/`` through the
    MetaGraph's saver, the init op run. Returns the ``MetaGraphDef`` (its ``signature_def`` names the
    tensors to feed and fetch).

    This is the ``SavedModelLoader`` that the deprecated ``tf.compat.v1.saved_model.loader.load``
    wraps, called directly so that no deprecation warning is printed."""
    from tensorflow.python.saved_model.loader_impl import SavedModelLoader

    with session.graph.as_default():
        return SavedModelLoader(export_dir).load(session, list(tags))


def verify_export(export_dir: str) -> None:
    """Loads an export the way TF-Serving does (TF's C++ SavedModel loader, a v1 session fed and
    fetched by SignatureDef tensor names only) and replays its warmup requests; raises ExportError if
    a signature is missing, fails, or answers with other dtypes or shapes than declared."""
    with open(os.path.join(export_dir, ASSETS_EXTRA, MANIFEST_FILENAME), encoding="utf-8") as f:
        manifest = json.load(f)
    requests = read_warmup(os.path.join(export_dir, ASSETS_EXTRA, WARMUP_FILENAME))  # eagerly, before the graph
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta = load_in_session(session, export_dir)
        for signature, inputs in requests:
            if signature not in meta.signature_def:
                raise ExportError(f"{export_dir}: signature {signature!r} is missing")
            sig = meta.signature_def[signature]
            try:
                outputs = session.run({k: v.name for k, v in sig.outputs.items()},
                                      {sig.inputs[k].name: v for k, v in inputs.items()})
            except tf.errors.OpError as e:
                raise ExportError(f"{export_dir}: signature {signature!r} fails: {clean_message(e.message)}") from None
            for key, want in manifest["signatures"][signature]["outputs"].items():
                got = np.asarray(outputs[key])
                ok_shape = got.ndim == len(want["shape"]) and all(
                    w == -1 or g == w for g, w in zip(got.shape, want["shape"], strict=False))
                if got.dtype.name != want["dtype"] or not ok_shape:
                    raise ExportError(f"{export_dir}: {signature}/{key} is {got.dtype.name} {list(got.shape)}, "
                                      f"declared {want['dtype']} {want['shape']}")


def export_run(run_dir: str, export_base: str, version: Optional[int] = None, verify: bool = True) -> str:
    """Exports the newest checkpoint of ``run_dir`` as ``export_base/<version>``; returns that path.

    Refuses (ExportError/ConfigError, nothing written) a run without configuration or checkpoint and
    an existing version. The model name in the warmup requests is ``basename(export_base)``.
    """
    RunConfig.load(run_dir)  # ConfigError naming the path when this is not a run
    checkpoint = ckpts.latest_checkpoint(run_dir)
    if checkpoint is None:
        raise ExportError(f"{run_dir}: no checkpoint found (has training run?); nothing exported")
    version = resolve_version(export_base, version)
    config, model = ckpts.restore_model(run_dir)
    stats = ckpts.load_data_statistics(run_dir)
    module = ServingModule(model, sample_controls(model, stats))
    model_name = os.path.basename(os.path.normpath(export_base))

    def write(tmp: str) -> None:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        write_assets(os.path.join(tmp, ASSETS_EXTRA), module, config, stats, model_name, version, checkpoint)
        if verify:
            verify_export(tmp)

    return publish(export_base, version, write)


def publish(export_base: str, version: int, write) -> str:
    """Runs ``write(tmp)`` on a fresh hidden folder inside ``export_base``, then renames it to
    ``export_base/<version>``; returns that path. Stale temporary folders of killed exports are removed
    first (``clean_stale_tmp``). On any failure the temporary folder, and the folders created for
    ``export_base``, are removed; an existing version is never replaced. A folder that cannot be
    written and a full disk raise ExportError naming the path."""
    final = os.path.join(export_base, str(version))
    created = []
    parent = os.path.abspath(export_base)
    while not os.path.exists(parent):
        created.append(parent)
        parent = os.path.dirname(parent)
    tmp = None
    owner = None
    try:
        try:
            os.makedirs(export_base, exist_ok=True)
            clean_stale_tmp(export_base)
            tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_base)
            owner = _claim(tmp)
        except OSError as e:
            raise ExportError(f"cannot write to the export folder {export_base}: {_reason(e)}") from None
        try:
            write(tmp)
        except _WRITE_ERRORS as e:
            raise ExportError(f"writing the export to {tmp} failed: {_reason(e)}; nothing published") from None
        _release(tmp, owner)
        owner = None
        _make_readable(tmp)
        if os.path.exists(final):
            raise ExportError(f"{final} appeared while exporting; not overwritten")
        os.rename(tmp, final)
    except BaseException:
        if owner is not None:
            owner.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # innermost first
            try:
                os.rmdir(folder)
            except OSError:
                break
        raise
    return final


def _reason(e: BaseException) -> str:
    """One line for a write error: 'No space left on device (ENOSPC)' style where there is an errno."""
    if isinstance(e, tf.errors.OpError):
        return f"{type(e).__name__}: {clean_message(e.message)}"
    if isinstance(e, OSError) and e.errno in errno.errorcode:
        return f"{e.strerror or os.strerror(e.errno)} ({errno.errorcode[e.errno]})"
    return str(e) or type(e).__name__


def _claim(tmp: str):
    """Creates and locks ``tmp/.export-owner`` (pid inside, for people); the open file holds the lock."""
    path = os.path.join(tmp, OWNER_FILENAME)
    f = open(path, "w", encoding="utf-8")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without locks: no owner file, so only the age rule applies
        f.close()
        os.remove(path)
        return None
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _release(tmp: str, owner) -> None:
    if owner is not None:
        os.remove(os.path.join(tmp, OWNER_FILENAME))
        owner.close()


def _is_stale(path: str, now: float) -> bool:
    """Whether temporary folder ``path`` belongs to no running export: its owner lock is free, or it
    has no owner file and was not modified for ``STALE_TMP_SECONDS``."""
    owner = os.path.join(path, OWNER_FILENAME)
    if not os.path.isfile(owner):
        return now - os.path.getmtime(path) > STALE_TMP_SECONDS
    with open(owner, "a", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # an export is writing it now
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def clean_stale_tmp(export_base: str) -> list:
    """Removes the temporary folders of killed exports inside ``export_base`` (directories named
    ``.tmp-<N>-<suffix>``, not links, that ``_is_stale``); logs and returns the paths removed. Folders
    it cannot judge or remove are left, with a warning."""
    removed = []
    now = time.time()
    for name in sorted(os.listdir(export_base)):
        path = os.path.join(export_base, name)
        if not _TMP_DIR.match(name) or os.path.islink(path) or not os.path.isdir(path):
            continue
        try:
            if not _is_stale(path, now):
                continue
            shutil.rmtree(path)
        except OSError as e:
            logging.warning("left the temporary export folder %s: %s", path, _reason(e))
            continue
        logging.warning("removed %s, the temporary folder of an interrupted export", path)
        removed.append(path)
    return removed


def _make_readable(root: str) -> None:
    """mkdtemp makes a 0700 directory: give the export the usual permissions (umask applies), so a
    server running as another user (Docker, Kubernetes) can read it."""
    mask = os.umask(0)
    os.umask(mask)
    for dirpath, _, files in os.walk(root):
        os.chmod(dirpath, 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o666 & ~mask)
