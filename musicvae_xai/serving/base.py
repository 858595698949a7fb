"""The one interface of every serving client, and its errors.

A ``ModelClient`` offers the export's signatures as methods returning dicts of numpy arrays:

* ``encode(tokens)``: int [B, 24] -> z_mean, z_scale float32 [B, Z], attributes float32 [B, K]
* ``decode(z, controls=None)``: float [B, Z] (+ float [B, K] for a model with controls) ->
  tokens int32 [B, 24], probabilities float32 [B, 24, V]
* ``reconstruct(tokens)`` -> tokens int32 [B, 24]
* ``traverse(tokens, control, values)``: control int (a latent dim, or a control index), values
  float [S] -> tokens int32 [B, S, 24], attributes float32 [B, S, K]
* ``sample(z)``: float [B, Z] drawn by the caller -> tokens int32 [B, 24]
* ``metadata()`` -> {"model", "version", "signatures": summary (see ``signatures``)}
* ``predict(signature, inputs)``: any signature by name.

Subclasses implement the transport (``_predict``, ``_fetch_metadata``). Inputs are checked against
the server's own signature metadata before they are sent (``validate=True``), so a bad request fails
with a message naming the server, model, signature, input and what was expected; float inputs must
also be finite with ``|value| <= signatures.MAX_ABS_INPUT`` (the exported graph checks the same).

Timeouts (remote clients): ``timeout`` bounds the whole of one call (one verb, ``metadata()`` or
``predict``): the metadata fetch it may need first, every retry and its backoff, connecting, sending
and reading however slowly the answer arrives. A call past its deadline fails with
``ServingUnavailableError`` (``code="DEADLINE_EXCEEDED"``).
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
from typing import Callable, Mapping, Optional

import numpy as np

from musicvae_xai.serving import signatures as sigs


class ServingError(RuntimeError):
    """A failed request. ``server``, ``model``, ``signature``, ``input`` say what was at fault."""

    def __init__(self, message: str, *, server: str = "", model: str = "", signature: Optional[str] = None,
                 input_name: Optional[str] = None, code: Optional[str] = None):
        where = [server] if server else []
        if model:
            where.append(f"model {model!r}")
        if signature:
            where.append(f"signature {signature!r}")
        if input_name:
            where.append(f"input {input_name!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.server, self.model, self.signature, self.input = server, model, signature, input_name
        self.code = code


class ServingUnavailableError(ServingError):
    """The server could not be reached (after the bounded retries) or did not answer in time."""


def clean_message(message: str) -> str:
    """The informative line of a TensorFlow/TF-Serving error: the assertion or first real line, without
    the graph-node trailer (``[[{{function_node ...}}]]``) and Python-side preambles."""
    lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
    for ln in lines:
        if "assertion failed:" in ln:
            return ln[ln.index("assertion failed:"):]
    skip = ("Graph execution error", "Detected at node", "[[{{", "Traceback", "File ")
    for ln in lines:
        if not ln.startswith(skip):
            return ln
    return lines[0] if lines else ""


class Deadline:
    """The end of one call: ``seconds`` from now (None = no deadline)."""

    def __init__(self, seconds: Optional[float]):
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + float(seconds)

    def remaining(self) -> Optional[float]:
        """Seconds left (never negative); None without a deadline."""
        return None if self.end is None else max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


class DeadlineExceeded(Exception):
    """Raised by ``with_retries`` when the deadline leaves no time for the next attempt."""


def with_retries(call: Callable, is_unavailable: Callable[[BaseException], bool], retries: int,
                 backoff: float = 0.05, deadline: Optional[Deadline] = None):
    """Runs ``call()``, retrying up to ``retries`` more times while it fails with an "unavailable"
    error (exponential backoff from ``backoff`` seconds, capped at 2 s). Re-raises the last error.

    With a ``deadline``, every attempt and every backoff sleep lies inside it: once it has passed, or
    when the backoff before the next retry would end past it, ``DeadlineExceeded`` is raised (from
    the last error, if any).
    """
    attempt = 0
    while True:
        if deadline is not None and deadline.expired():
            raise DeadlineExceeded(f"deadline of {deadline.seconds:g} s passed before attempt {attempt + 1}")
        try:
            return call()
        except BaseException as e:  # noqa: BLE001 - filtered by is_unavailable
            if attempt >= retries or not is_unavailable(e):
                raise
            pause = min(backoff * (2 ** attempt), 2.0)
            if deadline is not None and deadline.remaining() <= pause:
                raise DeadlineExceeded(f"no time left for retry {attempt + 1} within the deadline of "
                                       f"{deadline.seconds:g} s") from e
            time.sleep(pause)
            attempt += 1


class ModelClient(abc.ABC):
    """Shared verbs over a transport. ``server`` names where requests go (used in every error)."""

    server: str = ""
    model_name: str = ""
    #: Seconds one call may take in all (None: unbounded, as for ``LocalModel``).
    timeout: Optional[float] = None

    def __init__(self, validate: bool = True):
        self.validate = validate
        self._metadata: Optional[dict] = None
        self._calls = threading.local()

    @contextlib.contextmanager
    def call_deadline(self):
        """The ``Deadline`` of the call in progress on this thread: a new one of ``timeout`` seconds
        for the outermost call, the same one for everything nested in it (metadata fetch, retries)."""
        current = getattr(self._calls, "deadline", None)
        if current is not None:
            yield current
            return
        self._calls.deadline = Deadline(self.timeout)
        try:
            yield self._calls.deadline
        finally:
            self._calls.deadline = None

    # -- transport (subclasses) ------------------------------------------------------------------
    @abc.abstractmethod
    def _predict(self, signature: str, inputs: dict) -> dict:
        """Sends checked inputs {name: np.ndarray}; returns {output: np.ndarray}."""

    @abc.abstractmethod
    def _fetch_metadata(self) -> dict:
        """{"model": str, "version": int or None, "signatures": summary}."""

    # -- shared ----------------------------------------------------------------------------------
    def error(self, message: str, signature: Optional[str] = None, input_name: Optional[str] = None,
              code: Optional[str] = None, unavailable: bool = False) -> ServingError:
        cls = ServingUnavailableError if unavailable else ServingError
        return cls(message, server=self.server, model=self.model_name, signature=signature,
                   input_name=input_name, code=code)

    def metadata(self) -> dict:
        """{"model": name, "version": int or None, "signatures": {name: {"inputs", "outputs",
        "method_name"}}}; fetched once, then cached."""
        if self._metadata is None:
            with self.call_deadline():
                self._metadata = self._fetch_metadata()
        return self._metadata

    def signature_spec(self, signature: str) -> dict:
        found = self.metadata()["signatures"]
        if signature not in found:
            raise self.error(f"unknown signature; this model offers {', '.join(sorted(found))}", signature)
        return found[signature]

    def predict(self, signature: str, inputs: Mapping) -> dict:
        """Runs ``signature`` on ``inputs`` {name: array-like}; returns {output: np.ndarray}."""
        with self.call_deadline():
            return self._checked_predict(signature, inputs)

    def _checked_predict(self, signature: str, inputs: Mapping) -> dict:
        if self.validate:
            try:
                checked = sigs.check_inputs(signature, self.signature_spec(signature), inputs)
            except sigs.InputError as e:
                raise self.error(str(e), signature, e.input_name) from None
        else:
            checked = {k: np.asarray(v) for k, v in inputs.items()}
        outputs = self._predict(signature, checked)
        if not self.validate:
            return outputs
        first = checked.get("tokens", checked.get("z"))
        try:
            return sigs.check_outputs(signature, self.signature_spec(signature), outputs,
                                      batch=first.shape[0] if first is not None and first.ndim else None,
                                      vocab_size=self.vocab_size())
        except sigs.OutputError as e:
            raise self.error(f"the answer does not fit the signature: {e}", signature) from None

    def vocab_size(self) -> Optional[int]:
        """V of the model: the last dimension of ``decode``'s ``probabilities`` (None when unknown)."""
        try:
            size = int(self.metadata()["signatures"][sigs.DECODE]["outputs"]["probabilities"]["shape"][-1])
        except (KeyError, TypeError, IndexError, ValueError):
            return None
        return size if size > 0 else None

    def encode(self, tokens) -> dict:
        return self.predict(sigs.ENCODE, {"tokens": tokens})

    def decode(self, z, controls=None) -> dict:
        inputs = {"z": z}
        with self.call_deadline():
            if controls is not None:
                inputs["controls"] = controls
            elif self.validate and "controls" in self.signature_spec(sigs.DECODE)["inputs"]:
                want = self.signature_spec(sigs.DECODE)["inputs"]["controls"]
                raise self.error(f"this model decodes with controls: pass controls "
                                 f"{sigs.describe(want['dtype'], want['shape'])}", sigs.DECODE, "controls")
            return self.predict(sigs.DECODE, inputs)

    def reconstruct(self, tokens) -> dict:
        return self.predict(sigs.RECONSTRUCT, {"tokens": tokens})

    def traverse(self, tokens, control: int, values) -> dict:
        return self.predict(sigs.TRAVERSE, {"tokens": tokens, "control": np.asarray(control),
                                            "values": values})

    def sample(self, z) -> dict:
        return self.predict(sigs.SAMPLE, {"z": z})

    def close(self) -> None:  # noqa: B027 (a hook: subclasses with connections override it)
        """Releases connections (no-op where there are none)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self) -> str:
        """``RestClient(model='m', version=1, latent_dim=16, controls='latent dims', source='REST server
        http://...')``: the latent size and controls once ``metadata()`` has been fetched (no I/O here)."""
        from musicvae_xai import reprs

        fetched = self._metadata or {}
        summary = fetched.get("signatures")
        version = getattr(self, "version", None)
        return reprs.model_repr(type(self).__name__, model=self.model_name or None,
                                version=fetched.get("version") if version is None else version,
                                latent_dim=reprs.latent_dim_of(summary), controls=reprs.controls_of(summary),
                                source=self.server)
