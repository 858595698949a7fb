"""Loopback test doubles of TensorFlow Serving (tests and bench only; not a product).

``SavedModelBackend`` runs exports the way the model server does: each version is loaded with TF's
C++ SavedModel loader into a ``tf.compat.v1`` session, and a request is run through the SignatureDef's
tensor names only (``Session`` callables: no Python-side shape checks, as in the server). It checks
what the server checks before running (known model/version/signature, input names, dtypes) with the
server's status codes, and reports graph errors as ``INVALID_ARGUMENT``.

``GrpcDouble`` serves ``tensorflow.serving.PredictionService`` (``Predict``, ``GetModelMetadata``) and
``RestDouble`` the REST API (``:predict`` in row and columnar formats, ``/metadata``, model status,
``{"error": ...}`` answers), both bound to 127.0.0.1 on a free port. ``DripServer`` is a hostile HTTP
server that answers one byte per second. Each stops when its ``with`` block ends, and in any case
after ``max_lifetime`` seconds.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
from concurrent import futures
from typing import Mapping, Optional

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

LOOPBACK = "127.0.0.1"
_HTTP_STATUS = {"OK": 200, "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "NOT_FOUND": 404,
                "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503}


class ServingStatusError(Exception):
    """A request the server refuses: ``code`` is a gRPC status code name."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class _Version:
    def __init__(self, path: str):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], path)
        self.signatures = {k: v for k, v in self.meta_graph.signature_def.items() if not k.startswith("__")}
        self._callables = {}
        self._lock = threading.Lock()

    def run(self, signature: str, inputs: Mapping[str, np.ndarray], output_filter=()) -> dict:
        sig = self.signatures[signature]
        outputs = sorted(output_filter or sig.outputs)
        feeds = sorted(inputs)
        key = (signature, tuple(feeds), tuple(outputs))
        with self._lock:
            fn = self._callables.get(key)
            if fn is None:
                options = config_pb2.CallableOptions(feed=[sig.inputs[k].name for k in feeds],
                                                     fetch=[sig.outputs[k].name for k in outputs])
                fn = self.session._make_callable_from_options(options)  # the C++ Session::Run path
                self._callables[key] = fn
        try:
            values = fn(*[inputs[k] for k in feeds])
        except tf.errors.OpError as e:
            raise ServingStatusError("INVALID_ARGUMENT", e.message) from None
        return dict(zip(outputs, values, strict=False))

    def close(self):
        self.session.close()


class SavedModelBackend:
    """models: {model name: export base (numeric version folders inside)}; every version is loaded."""

    def __init__(self, models: Mapping[str, str]):
        self.versions = {}
        for name, base in models.items():
            found = sorted(int(d) for d in os.listdir(base) if re.match(r"^\d+$", d))
            if not found:
                raise FileNotFoundError(f"{base}: no version folders")
            self.versions[name] = {v: _Version(os.path.join(base, str(v))) for v in found}

    def find(self, name: str, version: Optional[int]) -> tuple:
        if name not in self.versions:
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise ServingStatusError("NOT_FOUND", f"Servable not found for request: {request}")
        versions = self.versions[name]
        if version is None:
            version = max(versions)
        if version not in versions:
            raise ServingStatusError("NOT_FOUND", f"Servable not found for request: Specific({name}, {version})")
        return version, versions[version]

    def signature_def(self, name: str, version: Optional[int], signature: str):
        _, loaded = self.find(name, version)
        signature = signature or "serving_default"
        if signature not in loaded.signatures:
            raise ServingStatusError("FAILED_PRECONDITION",
                                     f'Serving signature name: "{signature}" not found in signature def')
        return loaded.signatures[signature]

    def predict(self, name: str, version: Optional[int], signature: str, inputs: Mapping[str, np.ndarray],
                output_filter=()) -> tuple:
        """Returns (version, {output: np.ndarray}); raises ServingStatusError like the server."""
        version, loaded = self.find(name, version)
        signature = signature or "serving_default"
        sig = self.signature_def(name, version, signature)
        want, have = set(sig.inputs), set(inputs)
        if want != have:
            raise ServingStatusError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(have)}!={len(want)} len({{{','.join(sorted(have))}}}) "
                f"!= len({{{','.join(sorted(want))}}}). Sent extra: {{{','.join(sorted(have - want))}}}. "
                f"Missing but required: {{{','.join(sorted(want - have))}}}.")
        for i, key in enumerate(sorted(want)):
            expected = tf.dtypes.as_dtype(sig.inputs[key].dtype)
            got = tf.dtypes.as_dtype(inputs[key].dtype)
            if expected != got:
                raise ServingStatusError("INVALID_ARGUMENT",
                                         f"Expects arg[{i}] to be {expected.name} but {got.name} is provided")
        for key in output_filter:
            if key not in sig.outputs:
                raise ServingStatusError("INVALID_ARGUMENT", f"output tensor alias not found in signature: {key} "
                                         f"Outputs expected to be in the set {{{','.join(sorted(sig.outputs))}}}.")
        return version, loaded.run(signature, inputs, output_filter)

    def metadata_json(self, name: str, version: Optional[int]) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2
        version, loaded = self.find(name, version)
        defs = get_model_metadata_pb2.SignatureDefMap()
        for k, v in loaded.meta_graph.signature_def.items():
            defs.signature_def[k].CopyFrom(v)
        return {"model_spec": {"name": name, "signature_name": "", "version": str(version)},
                "metadata": {"signature_def": json_format.MessageToDict(
                    defs, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)}}

    def signature_def_map(self, name: str, version: Optional[int]):
        from tensorflow_serving.apis import get_model_metadata_pb2
        version, loaded = self.find(name, version)
        defs = get_model_metadata_pb2.SignatureDefMap()
        for k, v in loaded.meta_graph.signature_def.items():
            defs.signature_def[k].CopyFrom(v)
        return version, defs

    def close(self):
        for versions in self.versions.values():
            for loaded in versions.values():
                loaded.close()


class Faults:
    """Injected trouble: the first ``fail_first`` requests answer UNAVAILABLE (HTTP 503) after waiting
    ``fail_delay`` seconds, and every other request waits ``delay`` seconds first. ``requests`` counts
    what arrived."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0, fail_delay: float = 0.0):
        self.fail_first, self.delay, self.fail_delay, self.requests = fail_first, delay, fail_delay, 0
        self._lock = threading.Lock()

    def arrive(self) -> None:
        """Raises ServingStatusError('UNAVAILABLE') while failing; sleeps ``delay`` otherwise."""
        import time
        with self._lock:
            self.requests += 1
            failing = self.requests <= self.fail_first
        if failing:
            if self.fail_delay:
                time.sleep(self.fail_delay)
            raise ServingStatusError("UNAVAILABLE", "the model server is starting")
        if self.delay:
            time.sleep(self.delay)


class _Lifetime:
    """Stops a server after ``max_lifetime`` seconds even if nobody stops it."""

    def __init__(self, stop, max_lifetime: float):
        self._stop = stop
        self._timer = threading.Timer(max_lifetime, stop)
        self._timer.daemon = True
        self._timer.start()

    def cancel(self):
        self._timer.cancel()


# ----------------------------------------------------------------------------------------------
# gRPC


class GrpcDouble:
    """``with GrpcDouble(backend) as server: GrpcClient(server.target, ...)``."""

    def __init__(self, backend: SavedModelBackend, max_lifetime: float = 600.0, workers: int = 4,
                 faults: Optional[Faults] = None):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.backend = backend
        self.faults = faults or Faults()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=[
            ("grpc.max_send_message_length", 256 * 1024 * 1024),
            ("grpc.max_receive_message_length", 256 * 1024 * 1024)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(backend, self.faults), self.server)
        self.port = self.server.add_insecure_port(f"{LOOPBACK}:0")
        self.target = f"{LOOPBACK}:{self.port}"
        self.server.start()
        self._lifetime = _Lifetime(lambda: self.server.stop(0), max_lifetime)

    def stop(self):
        self._lifetime.cancel()
        self.server.stop(0).wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def _grpc_servicer_base():
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    return prediction_service_pb2_grpc.PredictionServiceServicer


class _PredictionService(_grpc_servicer_base()):
    def __init__(self, backend: SavedModelBackend, faults: Faults):
        self.backend, self.faults = backend, faults

    @staticmethod
    def _abort(context, e: ServingStatusError):
        import grpc
        context.abort(getattr(grpc.StatusCode, e.code), e.message)

    def Predict(self, request, context):
        from tensorflow_serving.apis import predict_pb2
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        try:
            self.faults.arrive()
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            used, outputs = self.backend.predict(spec.name, version, spec.signature_name, inputs,
                                                 list(request.output_filter))
        except ServingStatusError as e:
            self._abort(context, e)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = used
        response.model_spec.signature_name = spec.signature_name or "serving_default"
        for k, v in outputs.items():
            response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return response

    def GetModelMetadata(self, request, context):
        from tensorflow_serving.apis import get_model_metadata_pb2
        spec = request.model_spec
        version = spec.version.value if spec.HasField("version") else None
        try:
            self.faults.arrive()
            if not request.metadata_field:
                raise ServingStatusError("INVALID_ARGUMENT",
                                         "GetModelMetadataRequest must specify at least one metadata_field")
            for field in request.metadata_field:
                if field != "signature_def":
                    raise ServingStatusError("INVALID_ARGUMENT", f"Metadata field {field} is not supported")
            used, defs = self.backend.signature_def_map(spec.name, version)
        except ServingStatusError as e:
            self._abort(context, e)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = used
        response.metadata["signature_def"].Pack(defs)
        return response


# ----------------------------------------------------------------------------------------------
# REST

_MODEL_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                         r"(?P<rest>/metadata|:predict)?$")


def _json_tensor(value, dtype: tf.DType, where: str) -> np.ndarray:
    """A JSON value -> ndarray of ``dtype``, with the server's complaints about types and ragged lists."""
    def shape_of(v):
        if isinstance(v, list):
            if not v:
                return (0,)
            inner = [shape_of(x) for x in v]
            if any(s != inner[0] for s in inner):
                raise ServingStatusError("INVALID_ARGUMENT", f"{where}: Expecting all elements of a list to "
                                         "have the same shape (ragged list)")
            return (len(v),) + inner[0]
        return ()

    def leaves(v):
        if isinstance(v, list):
            for x in v:
                yield from leaves(x)
        else:
            yield v

    shape = shape_of(value)
    for leaf in leaves(value):
        ok = (isinstance(leaf, int) and not isinstance(leaf, bool)) if dtype.is_integer else (
            isinstance(leaf, (int, float)) and not isinstance(leaf, bool))
        if not ok:
            raise ServingStatusError("INVALID_ARGUMENT", f"{where}: JSON Value: {json.dumps(leaf)} Type: "
                                     f"{type(leaf).__name__} is not of expected type: {dtype.name}")
    return np.array(value, dtype=dtype.as_numpy_dtype).reshape(shape)


def _jsonable(arr: np.ndarray):
    return arr.item() if arr.ndim == 0 else arr.tolist()


class _RestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls
    backend: SavedModelBackend = None
    faults: Faults = None

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self):
        with self.server.lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def _fail(self, e: ServingStatusError) -> None:
        self._send(_HTTP_STATUS.get(e.code, 500), {"error": e.message})

    def _route(self):
        m = _MODEL_PATH.match(self.path)
        if not m:
            raise ServingStatusError("NOT_FOUND", f"Malformed request: {self.command} {self.path}")
        return m.group("name"), (int(m.group("version")) if m.group("version") else None), m.group("rest")

    def do_GET(self):
        try:
            self.faults.arrive()
            name, version, rest = self._route()
            if rest == ":predict":
                raise ServingStatusError("NOT_FOUND", f"Malformed request: GET {self.path}")
            if rest == "/metadata":
                self._send(200, self.backend.metadata_json(name, version))
                return
            if version is None:
                self.backend.find(name, None)
                versions = sorted(self.backend.versions[name], reverse=True)
            else:
                versions = [self.backend.find(name, version)[0]]
            self._send(200, {"model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                for v in versions]})
        except ServingStatusError as e:
            self._fail(e)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)  # read the body even when refusing, to keep the connection usable
            self.faults.arrive()
            name, version, rest = self._route()
            if rest != ":predict":
                raise ServingStatusError("NOT_FOUND", f"Malformed request: POST {self.path}")
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError as e:
                raise ServingStatusError("INVALID_ARGUMENT", f"JSON Parse error: {e}") from None
            if not isinstance(body, dict):
                raise ServingStatusError("INVALID_ARGUMENT", "JSON Value is not an object")
            signature = body.get("signature_name", "") or "serving_default"
            sig = self.backend.signature_def(name, version, signature)
            if ("instances" in body) == ("inputs" in body):
                raise ServingStatusError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key" if
                                         "instances" not in body else
                                         "Only one of 'inputs' or 'instances' key should be specified")
            row = "instances" in body
            inputs = self._row_inputs(body["instances"], sig) if row else self._columnar_inputs(body["inputs"], sig)
            _, outputs = self.backend.predict(name, version, signature, inputs)
            self._send(200, self._answer(outputs, row))
        except ServingStatusError as e:
            self._fail(e)

    @staticmethod
    def _dtype(sig, key) -> tf.DType:
        return tf.dtypes.as_dtype(sig.inputs[key].dtype)

    def _row_inputs(self, instances, sig) -> dict:
        if not isinstance(instances, list) or not instances:
            raise ServingStatusError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
        names = sorted(sig.inputs)
        named = isinstance(instances[0], dict)
        if not named and len(names) != 1:
            raise ServingStatusError("INVALID_ARGUMENT", "instances must be objects naming the inputs "
                                     f"({', '.join(names)}) when a signature has several inputs")
        columns = {k: [] for k in names}
        for i, inst in enumerate(instances):
            if named != isinstance(inst, dict):
                raise ServingStatusError("INVALID_ARGUMENT", "instances mix named and unnamed inputs")
            for k in names:
                if named and k not in inst:
                    raise ServingStatusError("INVALID_ARGUMENT", f"Failed to process element: {i} key: {k} of "
                                             f"'instances' list. Error: JSON object: does not have named input: {k}")
                columns[k].append(inst[k] if named else inst)
            if named:
                extra = sorted(set(inst) - set(names))
                if extra:
                    raise ServingStatusError("INVALID_ARGUMENT", f"Failed to process element: {i} of 'instances' "
                                             f"list. JSON object has unknown input(s): {', '.join(extra)}")
        return {k: _json_tensor(v, self._dtype(sig, k), f"'instances' input {k}") for k, v in columns.items()}

    def _columnar_inputs(self, inputs, sig) -> dict:
        names = sorted(sig.inputs)
        if not isinstance(inputs, dict):
            if len(names) != 1:
                raise ServingStatusError("INVALID_ARGUMENT", "'inputs' must be an object naming the inputs "
                                         f"({', '.join(names)})")
            inputs = {names[0]: inputs}
        out = {}
        for k, v in inputs.items():
            if k not in sig.inputs:
                # Let the backend report the mismatch with the server's wording.
                out[k] = np.asarray(v)
                continue
            out[k] = _json_tensor(v, self._dtype(sig, k), f"'inputs' input {k}")
        return out

    @staticmethod
    def _answer(outputs: dict, row: bool) -> dict:
        if not row:
            if len(outputs) == 1:
                return {"outputs": _jsonable(next(iter(outputs.values())))}
            return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}
        sizes = {k: (v.shape[0] if v.ndim else None) for k, v in outputs.items()}
        first = next(iter(sizes.values()))
        for k, size in sizes.items():
            if size is None or size != first:
                raise ServingStatusError("INVALID_ARGUMENT", f"Tensor name: {k} has inconsistent batch size: "
                                         f"{size} expecting: {first}")
        if len(outputs) == 1:
            return {"predictions": _jsonable(next(iter(outputs.values())))}
        return {"predictions": [{k: _jsonable(v[i]) for k, v in outputs.items()} for i in range(first)]}


class RestDouble:
    """``with RestDouble(backend) as server: RestClient(server.url, ...)``."""

    def __init__(self, backend: SavedModelBackend, max_lifetime: float = 600.0, faults: Optional[Faults] = None):
        self.faults = faults or Faults()
        handler = type("Handler", (_RestHandler,), {"backend": backend, "faults": self.faults})
        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.connections, self.httpd.lock = set(), threading.Lock()  # open keep-alive connections
        self.port = self.httpd.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()
        self._lifetime = _Lifetime(self._shutdown, max_lifetime)

    def _shutdown(self):
        """Stops accepting, then closes the open keep-alive connections, as a stopping server does."""
        import socket
        self.httpd.shutdown()
        self.httpd.server_close()
        with self.httpd.lock:
            open_connections = list(self.httpd.connections)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self._lifetime.cancel()
        if self._thread.is_alive():
            self._shutdown()
            self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False



# ----------------------------------------------------------------------------------------------
# A hostile server


class DripServer:
    """``with DripServer() as drip: RestClient(drip.url, ...)``: an HTTP server on 127.0.0.1 that
    answers every request with a well-formed response sent one byte every ``interval`` seconds (from
    the status line on, or from the body on with ``fast_headers``), announcing a body it never finishes.
    It stops when its ``with`` block ends and in any case after ``max_lifetime`` seconds; ``requests``
    counts the connections that sent a request."""

    def __init__(self, interval: float = 1.0, fast_headers: bool = False, max_lifetime: float = 60.0):
        import socket
        import time

        self.interval, self.fast_headers, self.requests = interval, fast_headers, 0
        self._end = time.monotonic() + max_lifetime
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._threads = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _live(self) -> bool:
        import time
        return not self._stop.is_set() and time.monotonic() < self._end

    def _accept(self) -> None:
        import socket
        while self._live():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            t = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)
        self._sock.close()

    def _drip(self, conn) -> None:
        headers = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
        body = b"{" + b" " * 999999
        try:
            conn.settimeout(1.0)
            seen = b""
            while b"\r\n\r\n" not in seen and len(seen) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                seen += chunk
            self.requests += 1
            if self.fast_headers:
                conn.sendall(headers)
                rest = body
            else:
                rest = headers + body
            for i in range(len(rest)):
                if self._stop.wait(self.interval) or not self._live():
                    return
                conn.sendall(rest[i:i + 1])
        except OSError:  # the client hung up
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._accepting.join(5)
        for t in self._threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
