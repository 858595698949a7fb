"""The serving contract: signature names, their named inputs and outputs, and input checks.

Every export (``musicvae_xai.export``) offers these SignatureDefs, all with batch dimension ``-1``
(Z = latent size, K = number of attributes/controls, V = vocabulary size, S = sweep length):

* ``encode``: tokens int32 [B, 24] -> z_mean, z_scale float32 [B, Z], attributes float32 [B, K]
* ``decode``: z float32 [B, Z] (+ controls float32 [B, K] when the model needs controls) ->
  tokens int32 [B, 24], probabilities float32 [B, 24, V]
* ``reconstruct``: tokens int32 [B, 24] -> tokens int32 [B, 24]
* ``traverse``: tokens int32 [B, 24], control int32 scalar, values float32 [S] ->
  tokens int32 [B, S, 24], attributes float32 [B, S, K]
* ``sample``: z float32 [B, Z] (drawn by the caller) -> tokens int32 [B, 24]
* ``serving_default``: the same as ``reconstruct``

Float inputs (``z``, ``controls``, ``values``) must be finite with ``|value| <= MAX_ABS_INPUT``
(1e3): a latent code or control is O(1) (z ~ N(0, I); the attributes lie in small ranges), so a value
1000 times the prior's scale is a mistake, not a request, and NaN or inf would decode to all token id
0 with NaN probabilities. The exported graph refuses them with ``INVALID_ARGUMENT`` naming the input
(so TF-Serving does too), and ``check_inputs`` refuses them before a client sends anything.

What a server answers is checked too (``check_outputs``): every output the signature declares, of its
dtype kind and rank, with the batch size asked for, token ids whole numbers in ``[0, V)``; a server
that answers otherwise is named in one line instead of writing wrong music.

This module has no TensorFlow dependency: the REST client uses it as is. Signature metadata from
any source (a SavedModel's ``saved_model.pb``, gRPC ``GetModelMetadata``, the REST metadata
endpoint) is first turned into the JSON form of a ``SignatureDefMap`` (protobuf's ``MessageToDict``
with proto field names) and then summarised by ``summarize_signature_defs``, so every client sees
identical metadata.
"""

from __future__ import annotations

import os
import re
from typing import Mapping, Optional

import numpy as np

from musicvae_xai.representation import MEASURE_TICKS

#: A version folder of an export base (TF-Serving's layout: ``<base>/<version>/saved_model.pb``).
VERSION_FOLDER = re.compile(r"^[0-9]+$")
SAVED_MODEL_FILENAME = "saved_model.pb"
ENCODE, DECODE, RECONSTRUCT, TRAVERSE, SAMPLE = "encode", "decode", "reconstruct", "traverse", "sample"
#: The signatures every export offers, besides ``serving_default``.
SIGNATURES = (ENCODE, DECODE, RECONSTRUCT, TRAVERSE, SAMPLE)
SERVING_DEFAULT = "serving_default"
#: ``serving_default`` is an alias of this signature.
DEFAULT_ALIAS = RECONSTRUCT
PREDICT_METHOD = "tensorflow/serving/predict"
#: Largest magnitude accepted in a float input (z, controls, traverse values); NaN/inf are refused too.
MAX_ABS_INPUT = 1e3

_DT_NAMES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_INT32": "int32", "DT_INT64": "int64",
             "DT_BOOL": "bool", "DT_STRING": "string", "DT_HALF": "float16", "DT_INT8": "int8",
             "DT_UINT8": "uint8", "DT_INT16": "int16"}


def expected_signatures(latent_dim: int, num_attributes: int, vocab_size: int, needs_controls: bool) -> dict:
    """The contract as data: name -> {"inputs": {name: (dtype, shape)}, "outputs": {...}}.

    Shapes are tuples with -1 for a dimension of any size.
    """
    tokens = ("int32", (-1, MEASURE_TICKS))
    z = ("float32", (-1, latent_dim))
    decode_inputs = {"z": z}
    if needs_controls:
        decode_inputs["controls"] = ("float32", (-1, num_attributes))
    recon = {"inputs": {"tokens": tokens}, "outputs": {"tokens": tokens}}
    return {
        ENCODE: {"inputs": {"tokens": tokens},
                 "outputs": {"z_mean": z, "z_scale": z, "attributes": ("float32", (-1, num_attributes))}},
        DECODE: {"inputs": decode_inputs,
                 "outputs": {"tokens": tokens, "probabilities": ("float32", (-1, MEASURE_TICKS, vocab_size))}},
        RECONSTRUCT: recon,
        TRAVERSE: {"inputs": {"tokens": tokens, "control": ("int32", ()), "values": ("float32", (-1,))},
                   "outputs": {"tokens": ("int32", (-1, -1, MEASURE_TICKS)),
                               "attributes": ("float32", (-1, -1, num_attributes))}},
        SAMPLE: {"inputs": {"z": z}, "outputs": {"tokens": tokens}},
        SERVING_DEFAULT: recon,
    }


#: Inputs whose first dimension is not the batch (``traverse``'s sweep values [S]).
_FIRST_DIM_NAMES = {"values": "S"}


def describe(dtype: str, shape: Optional[tuple], name: str = "") -> str:
    """'int32 [B, 24]': a tensor spec for error messages (-1 first reads B, or S for ``values``)."""
    if shape is None:
        return f"{dtype} of any shape"
    if len(shape) == 0:
        return f"{dtype} scalar"
    first = _FIRST_DIM_NAMES.get(name, "B")
    dims = [first if (i == 0 and d == -1) else ("N" if d == -1 else str(d)) for i, d in enumerate(shape)]
    return f"{dtype} [{', '.join(dims)}]"


def _tensor_info(info: Mapping) -> dict:
    dtype = _DT_NAMES.get(info.get("dtype", ""), str(info.get("dtype", "")).lower())
    shape_json = info.get("tensor_shape", info.get("tensorShape", {})) or {}
    if shape_json.get("unknown_rank", shape_json.get("unknownRank", False)):
        shape = None
    else:
        shape = tuple(int(d.get("size", 0)) for d in shape_json.get("dim", []))
    return {"dtype": dtype, "shape": shape}


def summarize_signature_defs(signature_def_map: Mapping) -> dict:
    """JSON form of a SignatureDefMap (or of its ``signature_def`` field) -> normalised summary.

    Returns {signature: {"inputs": {name: {"dtype": "int32", "shape": (-1, 24)}}, "outputs": {...},
    "method_name": str}}, sorted by name, without TensorFlow's internal ``__saved_model_init_op``.
    """
    defs = signature_def_map.get("signature_def", signature_def_map)
    out = {}
    for name in sorted(defs):
        if name.startswith("__") or name == "@type":
            continue
        sig = defs[name]
        out[name] = {
            "inputs": {k: _tensor_info(v) for k, v in sorted(sig.get("inputs", {}).items())},
            "outputs": {k: _tensor_info(v) for k, v in sorted(sig.get("outputs", {}).items())},
            "method_name": sig.get("method_name", sig.get("methodName", "")),
        }
    return out


class InputError(ValueError):
    """A request input that does not fit the signature; ``input_name`` names it (or is None)."""

    def __init__(self, message: str, input_name: Optional[str] = None):
        super().__init__(message)
        self.input_name = input_name


def check_inputs(signature: str, spec: Mapping, inputs: Mapping) -> dict:
    """Checks ``inputs`` against one signature of a ``summarize_signature_defs`` summary.

    Integer inputs need integer (not bool or float) arrays; float inputs take floats or integers.
    Returns {name: np.ndarray} cast to the signature's dtypes; raises InputError (``input_name`` = the
    input at fault) saying what was expected.
    """
    expected = spec["inputs"]
    missing = sorted(set(expected) - set(inputs))
    extra = sorted(set(inputs) - set(expected))
    wanted = ", ".join(f"{k} ({describe(v['dtype'], v['shape'], k)})" for k, v in expected.items())
    if missing:
        raise InputError(f"missing input(s) {', '.join(missing)}; signature {signature!r} takes {wanted}",
                         missing[0])
    if extra:
        raise InputError(f"unexpected input(s) {', '.join(extra)}; signature {signature!r} takes {wanted}",
                         extra[0])
    out = {}
    for name, want in expected.items():
        value = inputs[name]
        arr = np.asarray(value)
        dtype, shape = want["dtype"], want["shape"]
        text = describe(dtype, shape, name)
        kind = arr.dtype.kind
        if dtype.startswith("int"):
            if kind not in "iu":
                raise InputError(f"expected {text}, got dtype {arr.dtype}", name)
        elif dtype.startswith("float"):
            if kind not in "fiu":
                raise InputError(f"expected {text}, got dtype {arr.dtype}", name)
        if shape is not None:
            if arr.ndim != len(shape):
                raise InputError(f"expected {text}, got shape {list(arr.shape)} (rank {arr.ndim})", name)
            for have, need in zip(arr.shape, shape, strict=False):
                if need != -1 and have != need:
                    raise InputError(f"expected {text}, got shape {list(arr.shape)}", name)
        if kind in "iu" and dtype in ("int32", "float32"):
            info = np.iinfo(np.int32)
            if arr.size and (arr.min() < info.min or arr.max() > info.max):
                raise InputError(f"values do not fit in {dtype}", name)
        if dtype.startswith("float"):
            bad = describe_bad_values(arr)
            if bad:
                raise InputError(bad, name)
        out[name] = arr.astype(np.dtype(dtype)) if dtype in _NUMPY_DTYPES else arr
    return out


def describe_bad_values(arr: np.ndarray, bound: float = MAX_ABS_INPUT) -> str:
    """'' when every value of ``arr`` is finite with ``|value| <= bound``, else what is wrong and where
    (the first offending index), e.g. 'values must be finite with |value| <= 1000, got nan at [0, 2]'."""
    if arr.size == 0:
        return ""
    values = arr.astype(np.float64, copy=False)
    finite = np.isfinite(values)
    bad = ~finite | (np.abs(np.where(finite, values, 0.0)) > bound)
    if not bad.any():
        return ""
    where = np.unravel_index(int(np.argmax(bad)), arr.shape)
    count = int(bad.sum())
    at = f" at {list(map(int, where))}" if arr.ndim else ""
    return (f"values must be finite with |value| <= {bound:g}, got {float(values[where])!r}{at}"
            + (f" ({count} such values)" if count > 1 else ""))


_NUMPY_DTYPES = {"float32", "float64", "int32", "int64", "bool", "float16", "int8", "uint8", "int16"}


def saved_versions(base: str) -> list:
    """The versions (sorted ints) of the version folders of ``base`` that hold a SavedModel."""
    return sorted(int(d) for d in os.listdir(base)
                  if VERSION_FOLDER.match(d) and os.path.exists(os.path.join(base, d, SAVED_MODEL_FILENAME)))


class OutputError(ValueError):
    """A server's answer that does not fit the signature; ``output_name`` names the output (or None)."""

    def __init__(self, message: str, output_name: Optional[str] = None):
        super().__init__(f"output {output_name!r}: {message}" if output_name else message)
        self.output_name = output_name


def check_outputs(signature: str, spec: Mapping, outputs, batch: Optional[int] = None,
                  vocab_size: Optional[int] = None) -> dict:
    """Checks a server's answer {name: array} against one signature of a ``summarize_signature_defs``
    summary: every declared output present, integer outputs integral (``tokens`` always), the declared
    rank and fixed dimensions, first dimension ``batch`` (when given), token ids in ``[0, vocab_size)``
    (``vocab_size`` when known). Returns {name: np.ndarray}; raises OutputError (one line)."""
    if not isinstance(outputs, Mapping):
        raise OutputError(f"the answer is a {type(outputs).__name__}, not named outputs")
    out = {}
    for name, want in spec.get("outputs", {}).items():
        if name not in outputs:
            raise OutputError("missing from the answer", name)
        arr = np.asarray(outputs[name])
        dtype, shape = want["dtype"], want["shape"]
        integral = dtype.startswith(("int", "uint")) or name == "tokens"
        if arr.dtype.kind not in "biuf":
            raise OutputError(f"expected {describe(dtype, shape, name)}, got {arr.dtype} values", name)
        if integral and arr.dtype.kind == "f":
            raise OutputError(f"expected whole-number {describe(dtype, shape, name)}, got float values", name)
        if shape is not None:
            if arr.ndim != len(shape) or any(d not in (-1, n) for d, n in zip(shape, arr.shape, strict=True)):
                raise OutputError(f"expected {describe(dtype, shape, name)}, got shape {list(arr.shape)}", name)
            if batch is not None and len(shape) and shape[0] == -1 and arr.shape[0] != batch:
                raise OutputError(f"expected {batch} rows (the batch sent), got {arr.shape[0]}", name)
        if name == "tokens" and arr.size:
            low, high = int(arr.min()), int(arr.max())
            if low < 0 or (vocab_size and high >= vocab_size):
                raise OutputError(f"token ids must be in [0, {vocab_size or 'V'}), got {low}..{high}", name)
        out[name] = arr
    for name, value in outputs.items():
        out.setdefault(name, np.asarray(value))
    return out
