"""``RestClient``: TensorFlow Serving's REST API (standard library only, no TensorFlow import).

Endpoints used (``MODEL_PATH`` = ``/v1/models/NAME`` or ``/v1/models/NAME/versions/N``):

* ``POST MODEL_PATH:predict`` with ``{"signature_name": s, "instances": [{input: value}, ...]}``
  (row format; answered with ``{"predictions": [...]}``) or ``{"signature_name": s, "inputs":
  {input: value}}`` (columnar format; answered with ``{"outputs": ...}``). A single-output signature
  answers with bare values instead of ``{name: value}`` objects. Row format needs every input to
  have the same first dimension, so ``traverse`` (scalar ``control``, ``values`` [S]) always goes
  columnar.
* ``GET MODEL_PATH/metadata``: the SignatureDefMap as JSON.
* ``GET MODEL_PATH``: version status.

Errors come back as ``{"error": message}`` with an HTTP status; they are raised as ``ServingError``.
Connection failures and HTTP 503 are retried a bounded number of times.

``timeout`` is a deadline for the whole call, not a per-read socket timeout: connecting, sending, every
retry and backoff and reading the answer all share it, and a watchdog shuts the socket down when it
passes, so a server that drips its answer one byte at a time cannot hold a call past it. An answer is
read up to ``max_response_bytes`` (``MAX_RESPONSE_BYTES``, 64 MiB) and refused past it, so a server
that streams gigabytes cannot fill the client's memory. An answer that is not what TF-Serving sends
(``{"predictions": 5}``, ragged lists, strings) is one ``ServingError`` naming the server and
signature; what the outputs hold is checked by ``ModelClient`` (``signatures.check_outputs``).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from typing import Optional

import numpy as np

from musicvae_xai.serving import signatures as sigs
from musicvae_xai.serving.base import (Deadline, DeadlineExceeded, ModelClient, ServingUnavailableError,
                                       clean_message, with_retries)

FORMATS = ("row", "columnar")
#: Largest answer body read, in bytes (``RestClient(max_response_bytes=...)``).
MAX_RESPONSE_BYTES = 64 * 2 ** 20
_UNAVAILABLE = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError,
                http.client.RemoteDisconnected, socket.gaierror)
_STATUS_CODES = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED",
                 500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


class _Unavailable(Exception):
    """HTTP 503: retried like a refused connection."""

    def __init__(self, message: str):
        super().__init__(message)


class _TooLarge(Exception):
    """An answer over ``max_response_bytes``."""


class _Watchdog:
    """Shuts ``conn``'s socket down after ``seconds`` (unless cancelled first), which ends a blocked
    connect, send or read at once; ``fired`` tells whether it did."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: Optional[float]):
        self._conn, self._lock, self._done, self.fired = conn, threading.Lock(), False, False
        self._timer = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            sock = self._conn.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cancel(self) -> None:
        with self._lock:
            self._done = True
        if self._timer is not None:
            self._timer.cancel()


class RestClient(ModelClient):
    """Client of ``url`` (e.g. ``http://localhost:8501``) for ``model_name`` (``version`` None = the
    server's choice, normally the newest). ``request_format`` is ``row`` or ``columnar``."""

    def __init__(self, url: str, model_name: str, version: Optional[int] = None, timeout: float = 30.0,
                 retries: int = 3, request_format: str = "row", validate: bool = True,
                 max_response_bytes: int = MAX_RESPONSE_BYTES):
        super().__init__(validate)
        self.max_response_bytes = int(max_response_bytes)
        if request_format not in FORMATS:
            raise ValueError(f"request_format must be one of {', '.join(FORMATS)}, got {request_format!r}")
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self._scheme, self._host, self._port = parsed.scheme, parsed.hostname, parsed.port
        self._prefix = parsed.path.rstrip("/")
        self.model_name, self.version = model_name, version
        self.timeout, self.retries, self.request_format = float(timeout), int(retries), request_format
        self.server = f"REST server {self.url}"
        self._local = threading.local()

    # -- HTTP ------------------------------------------------------------------------------------
    def model_path(self) -> str:
        path = f"{self._prefix}/v1/models/{urllib.parse.quote(self.model_name, safe='')}"
        return path if self.version is None else f"{path}/versions/{int(self.version)}"

    def _connection(self, seconds: Optional[float]) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=seconds)
            self._local.conn = conn
        conn.timeout = seconds  # connect and each read; the watchdog bounds their sum
        if conn.sock is not None:
            conn.sock.settimeout(seconds)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _once(self, method: str, path: str, body: Optional[bytes], deadline: Deadline):
        remaining = deadline.remaining()
        if remaining is not None:
            remaining = max(remaining, 1e-3)  # a socket timeout of 0 would mean non-blocking
        conn = self._connection(remaining)
        watchdog = _Watchdog(conn, remaining)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
            response = conn.getresponse()
            status, data = response.status, self._read_bounded(response)
        except BaseException:
            self._drop_connection()
            raise
        finally:
            watchdog.cancel()
        if watchdog.fired:  # the answer completed as the deadline passed: the socket is shut, drop it
            self._drop_connection()
        if status == 503:
            raise _Unavailable(_error_text(data) or "HTTP 503")
        return status, data

    def _read_bounded(self, response: http.client.HTTPResponse) -> bytes:
        """The body of ``response``, refused (``_TooLarge``) past ``max_response_bytes``: by its declared
        length before reading, else as soon as the bytes read pass the limit."""
        limit = self.max_response_bytes
        declared = response.getheader("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise _TooLarge(f"{int(declared)} bytes declared")
        data = response.read(limit + 1)
        if len(data) > limit:
            raise _TooLarge(f"more than {limit} bytes sent")
        if response.length:  # the connection ended (or was shut at the deadline) before the declared length
            raise http.client.IncompleteRead(data, response.length)
        return data

    def _request(self, method: str, path: str, payload=None, signature: Optional[str] = None) -> dict:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        attempts = [0]

        def once():
            attempts[0] += 1
            return self._once(method, path, body, deadline)

        with self.call_deadline() as deadline:
            try:
                status, data = with_retries(once, lambda e: isinstance(e, _UNAVAILABLE + (_Unavailable,)),
                                            self.retries, deadline=deadline)
            except _TooLarge as e:
                raise self.error(f"the answer is too large ({e}; the limit is {self.max_response_bytes} bytes, "
                                 "max_response_bytes)", signature, code="RESOURCE_EXHAUSTED") from None
            except (DeadlineExceeded, OSError, http.client.HTTPException, _Unavailable) as e:
                tries = f"{attempts[0]} attempt{'s' if attempts[0] != 1 else ''}"
                if isinstance(e, (DeadlineExceeded, socket.timeout, TimeoutError)) or deadline.expired():
                    raise self.error(f"no answer within {self.timeout:g} s (the timeout bounds the whole call, "
                                     f"retries included; {tries})", signature, code="DEADLINE_EXCEEDED",
                                     unavailable=True) from None
                if isinstance(e, _Unavailable):
                    raise self.error(f"server unavailable (HTTP 503) after {tries}: {e}", signature,
                                     code="UNAVAILABLE", unavailable=True) from None
                raise self.error(f"cannot reach the server after {tries}: {e}", signature,
                                 code="UNAVAILABLE", unavailable=True) from None
        try:
            decoded = json.loads(data.decode("utf-8")) if data else {}
        except ValueError:
            decoded = {"error": data[:200].decode("utf-8", "replace")}
        if status != 200 or (isinstance(decoded, dict) and "error" in decoded):
            message = clean_message(decoded.get("error", "") if isinstance(decoded, dict) else str(decoded))
            raise self.error(f"HTTP {status}: {message}", signature, code=_STATUS_CODES.get(status, str(status)))
        return decoded

    # -- the transport of ModelClient ------------------------------------------------------------
    def status(self) -> dict:
        """The model's version status (``GET MODEL_PATH``), as the server returns it."""
        return self._request("GET", self.model_path())

    def _fetch_metadata(self) -> dict:
        answer = self._request("GET", f"{self.model_path()}/metadata")
        try:
            defs = answer["metadata"]["signature_def"]
        except (KeyError, TypeError):
            raise self.error("metadata answer has no metadata.signature_def") from None
        try:
            version = answer.get("model_spec", {}).get("version")
            return {"model": self.model_name, "version": int(version) if version not in (None, "") else None,
                    "signatures": sigs.summarize_signature_defs(defs)}
        except (AttributeError, TypeError, ValueError, KeyError) as e:
            raise self.error(f"malformed metadata answer ({type(e).__name__}: {e})") from None

    def _predict(self, signature: str, inputs: dict) -> dict:
        spec = self.metadata()["signatures"].get(signature)
        columnar = self.request_format == "columnar" or not _row_compatible(inputs)
        if columnar:
            payload = {"signature_name": signature, "inputs": {k: _jsonable(v) for k, v in inputs.items()}}
        else:
            batch = next(iter(inputs.values())).shape[0]
            payload = {"signature_name": signature,
                       "instances": [{k: _jsonable(v[i]) for k, v in inputs.items()} for i in range(batch)]}
        answer = self._request("POST", f"{self.model_path()}:predict", payload, signature)
        try:
            return self._outputs(answer, spec, columnar, signature)
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as e:
            raise self.error(f"malformed answer ({type(e).__name__}: {clean_message(str(e))[:200]})",
                             signature) from None

    def _outputs(self, answer, spec: Optional[dict], columnar: bool, signature: str) -> dict:
        if not isinstance(answer, dict):
            raise TypeError("the answer is not a JSON object")
        outputs = spec["outputs"] if spec else None
        if columnar:
            if "outputs" not in answer:
                raise self.error("answer has no 'outputs'", signature)
            raw = answer["outputs"]
            if not isinstance(raw, dict):
                raw = {_single_output(outputs, self, signature): raw}
        else:
            if "predictions" not in answer:
                raise self.error("answer has no 'predictions'", signature)
            rows = answer["predictions"]
            if rows and isinstance(rows[0], dict):
                raw = {k: [r[k] for r in rows] for k in rows[0]}
            else:
                raw = {_single_output(outputs, self, signature): rows}
        return {k: _to_array(v, (outputs or {}).get(k)) for k, v in raw.items()}

    def close(self) -> None:
        self._drop_connection()


def _row_compatible(inputs: dict) -> bool:
    """Row format needs every input to have a first dimension, the same for all, of at least 1."""
    sizes = {v.shape[0] if v.ndim else None for v in inputs.values()}
    return len(sizes) == 1 and None not in sizes and 0 not in sizes


def _jsonable(value):
    arr = np.asarray(value)
    return arr.item() if arr.ndim == 0 else arr.tolist()


def _single_output(outputs: Optional[dict], client: RestClient, signature: str) -> str:
    if not outputs or len(outputs) != 1:
        raise client.error("the answer has one unnamed output but the signature metadata does not say "
                           "which", signature)
    return next(iter(outputs))


def _to_array(value, spec: Optional[dict]) -> np.ndarray:
    """An output's JSON value as an array of its declared dtype; float values where integers are declared
    stay floats when any is not a whole number (``signatures.check_outputs`` refuses them: casting
    would truncate them silently)."""
    if spec and spec["dtype"] in ("int32", "int64", "float32", "float64", "bool"):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"output values must be numbers, got {arr.dtype}")
        if np.dtype(spec["dtype"]).kind in "iu" and arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            return arr
        arr = arr.astype(np.dtype(spec["dtype"]))
        if arr.size == 0 and spec["shape"] and arr.ndim != len(spec["shape"]):
            arr = arr.reshape([0 if d == -1 else d for d in spec["shape"]])
        return arr
    return np.asarray(value)


def _error_text(data: bytes) -> str:
    try:
        return str(json.loads(data.decode("utf-8")).get("error", ""))
    except (ValueError, AttributeError):
        return data[:200].decode("utf-8", "replace")


__all__ = ["RestClient", "ServingUnavailableError", "FORMATS"]
