"""``LocalModel``: an exported SavedModel run in-process, behind the shared client interface."""

from __future__ import annotations

import json
import re
import os
from typing import Optional

import numpy as np

from musicvae_xai.config import ConfigError, check_saved_version
from musicvae_xai.serving import signatures as sigs
from musicvae_xai.serving.base import ModelClient, clean_message


def resolve_export_dir(path: str) -> str:
    """``path`` itself when it holds a SavedModel, else its highest numeric version subdirectory."""
    if os.path.exists(os.path.join(path, sigs.SAVED_MODEL_FILENAME)):
        return path
    if os.path.isdir(path):
        versions = sigs.saved_versions(path)
        if versions:
            return os.path.join(path, str(versions[-1]))
    raise FileNotFoundError(f"{path}: no SavedModel (saved_model.pb) there or in a numeric version folder")


def read_signature_defs(export_dir: str) -> dict:
    """The ``serve`` MetaGraph's SignatureDefMap of an export, in ``MessageToDict`` JSON form."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    for meta in proto.meta_graphs:
        if "serve" in meta.meta_info_def.tags:
            m = get_model_metadata_pb2.SignatureDefMap()
            for k, v in meta.signature_def.items():
                m.signature_def[k].CopyFrom(v)
            return json_format.MessageToDict(m, preserving_proto_field_name=True)
    raise FileNotFoundError(f"{export_dir}: the SavedModel has no 'serve' MetaGraph")


#: Largest ``assets.extra/*.json`` file read, in bytes (the shipped ones hold a few KB).
MAX_ASSET_BYTES = 16 * 2 ** 20


def read_asset(path: str):
    """The JSON value of an ``assets.extra`` file. Raises ConfigError (one line naming the file) for
    one that is not a regular file (a folder; a FIFO is never opened, so nothing hangs), over
    ``MAX_ASSET_BYTES``, or not JSON."""
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: not a regular file (the export is damaged)")
    if os.path.getsize(path) > MAX_ASSET_BYTES:
        raise ConfigError(f"{path}: over {MAX_ASSET_BYTES} bytes (the export is damaged)")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigError(f"{path}: not valid JSON ({str(e).splitlines()[0] if str(e) else type(e).__name__}; "
                          "the export is damaged)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None


def _load_saved_model(tf, export_dir: str):
    """``tf.saved_model.load``, with a damaged export (a garbage ``saved_model.pb``, truncated or
    bit-flipped variables) as one ConfigError naming the file instead of a long TensorFlow traceback."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    graph = os.path.join(export_dir, "saved_model.pb")
    try:
        with open(graph, "rb") as f:
            saved_model_pb2.SavedModel().ParseFromString(f.read())
    except (DecodeError, RuntimeWarning, ValueError) as e:
        raise ConfigError(f"{graph}: not a SavedModel ({_first_line(e)}; the export is damaged)") from None
    try:
        return tf.saved_model.load(export_dir)
    except Exception as e:  # noqa: BLE001 - TensorFlow raises many types for a damaged export
        raise ConfigError(f"{os.path.join(export_dir, 'variables')}: cannot be restored ({type(e).__name__}: "
                          f"{_first_line(e)}; the export is damaged)") from None


def _first_line(e: BaseException) -> str:
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", clean_message(str(e))) or type(e).__name__
    return text[:200]


class LocalModel(ModelClient):
    """Runs an export (``export_dir``, or an export base whose newest version is taken) with
    ``tf.saved_model.load`` (the result is ``loaded``). ``assets`` holds the parsed
    ``assets.extra/*.json`` files."""

    def __init__(self, export_dir: str, validate: bool = True):
        super().__init__(validate)
        import tensorflow as tf

        self._tf = tf
        self.export_dir = resolve_export_dir(export_dir)
        self.server = f"local export {self.export_dir}"
        base = os.path.basename(os.path.normpath(self.export_dir))
        self.version: Optional[int] = int(base) if sigs.VERSION_FOLDER.match(base) else None
        self.assets = {}
        extra = os.path.join(self.export_dir, "assets.extra")
        if os.path.isdir(extra):
            for name in sorted(os.listdir(extra)):
                if name.endswith(".json"):
                    self.assets[name[:-5]] = read_asset(os.path.join(extra, name))
        if "config" in self.assets:  # an export made with older model definitions: one-line ConfigError
            check_saved_version(self.assets["config"], os.path.join(extra, "config.json"))
        export = self.assets.get("export", {})
        self.model_name = (export.get("model_name") if isinstance(export, dict) else None) or os.path.basename(
            os.path.dirname(os.path.normpath(self.export_dir)))
        self.loaded = _load_saved_model(tf, self.export_dir)
        self._functions = dict(self.loaded.signatures)

    def _fetch_metadata(self) -> dict:
        return {"model": self.model_name, "version": self.version,
                "signatures": sigs.summarize_signature_defs(read_signature_defs(self.export_dir))}

    def _predict(self, signature: str, inputs: dict) -> dict:
        tf = self._tf
        fn = self._functions.get(signature)
        if fn is None:
            raise self.error(f"unknown signature; this model offers {', '.join(sorted(self._functions))}",
                             signature)
        try:
            out = fn(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as e:
            raise self.error(clean_message(e.message), signature, code="INVALID_ARGUMENT") from None
        except (TypeError, ValueError) as e:
            raise self.error(clean_message(str(e)), signature, code="INVALID_ARGUMENT") from None
        return {k: np.asarray(v.numpy()) for k, v in out.items()}

    def __repr__(self) -> str:
        """``LocalModel(model='measure_vae_irish', version=1, architecture='measure_vae', latent_dim=16,
        controls=['z[0] rhythmic_complexity', ...], source='local export PATH')``, from the export's
        ``assets.extra``."""
        from musicvae_xai import reprs

        manifest = self.assets.get("export", {})
        return reprs.model_repr(type(self).__name__, model=self.model_name or None, version=self.version,
                                architecture=manifest.get("model"), latent_dim=manifest.get("latent_dim"),
                                controls=reprs.control_labels(self.assets.get("controls", {}).get("controls")),
                                source=self.server)
