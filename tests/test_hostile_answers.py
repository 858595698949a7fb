"""A hostile or broken model server: answers of any size, malformed metadata or predictions, token ids
out of range or not whole numbers, wrong shapes. The REST client reads a bounded answer, and every
answer that does not fit the signature is one ServingError naming the server and signature (the
command line: one ``error:`` line and a nonzero exit), never a traceback or a wrong MIDI file.

The server here is a small ``http.server`` that answers what each test tells it to."""

import http.server
import json
import os
import subprocess
import sys
import threading
import tracemalloc

import pytest

from musicvae_xai.serving.base import ServingError
from musicvae_xai.serving.rest import RestClient

LATENT, VOCAB = 4, 34


def _tensor(dtype: str, dims) -> dict:
    return {"dtype": dtype, "tensor_shape": {"dim": [{"size": str(d)} for d in dims]}, "name": "x"}


def metadata() -> dict:
    tokens = _tensor("DT_INT32", (-1, 24))
    z = _tensor("DT_FLOAT", (-1, LATENT))
    probabilities = _tensor("DT_FLOAT", (-1, 24, VOCAB))
    defs = {"sample": {"inputs": {"z": z}, "outputs": {"tokens": tokens}, "method_name": "tensorflow/serving/predict"},
            "decode": {"inputs": {"z": z}, "outputs": {"tokens": tokens, "probabilities": probabilities},
                       "method_name": "tensorflow/serving/predict"}}
    return {"model_spec": {"name": "m", "version": "1"}, "metadata": {"signature_def": {"signature_def": defs}}}


class Server:
    """Answers GET .../metadata with ``self.metadata`` and POST ...:predict with ``self.predict`` (bytes,
    or a callable writing to the handler)."""

    def __init__(self):
        self.metadata = json.dumps(metadata()).encode()
        self.predict = b"{}"
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._send(owner.metadata)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if callable(owner.predict):
                    owner.predict(self)
                else:
                    self._send(owner.predict)

            def _send(self, body: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def predictions(rows) -> bytes:
    return json.dumps({"predictions": rows}).encode()


def sample(server, **kwargs):
    client = RestClient(server.url, "m", timeout=20, retries=0, **kwargs)
    return client.sample([[0.0] * LATENT, [0.5] * LATENT])


GOOD = [[1] * 24, [2] * 24]


def test_a_good_answer_passes(server):
    server.predict = predictions(GOOD)
    assert sample(server)["tokens"].tolist() == GOOD


@pytest.mark.parametrize("answer, expected", [
    (predictions(5), "malformed answer"),
    (b'"just a string"', "malformed answer"),
    (predictions([[1] * 24, [2] * 23]), "malformed answer"),                        # ragged
    (predictions([["a"] * 24] * 2), "malformed answer"),
    (predictions([[-1] * 24, [2] * 24]), "token ids must be in [0, 34), got -1..2"),
    (predictions([[1] * 24, [34] * 24]), "token ids must be in [0, 34), got 1..34"),
    (predictions([[1.5] * 24, [2] * 24]), "expected whole-number int32 [B, 24], got float values"),
    (predictions([[1] * 12, [2] * 12]), "expected int32 [B, 24], got shape [2, 12]"),
    (predictions([[1] * 24]), "expected 2 rows (the batch sent), got 1"),
    (json.dumps({"predictions": [{"other": [1] * 24}, {"other": [1] * 24}]}).encode(), "'tokens': missing"),
])
def test_an_answer_that_does_not_fit_is_one_line_naming_server_and_signature(server, answer, expected):
    server.predict = answer
    with pytest.raises(ServingError) as e:
        sample(server)
    message = str(e.value)
    assert message.startswith(f"REST server {server.url}, model 'm', signature 'sample': ")
    assert expected in message and "\n" not in message


@pytest.mark.parametrize("meta", [
    {"metadata": {"signature_def": {"signature_def": {"sample": 5}}}},
    {"metadata": {"signature_def": {"signature_def": {
        "sample": {"inputs": {"z": {"tensor_shape": {"dim": [{"size": "x"}]}}}}}}}},
    {"metadata": {"signature_def": ["a", "list"]}},
    {"metadata": 7},
])
def test_malformed_metadata_is_one_line(server, meta):
    server.metadata = json.dumps(meta).encode()
    with pytest.raises(ServingError, match=r"^REST server .*: (malformed metadata answer|metadata answer has no)"):
        sample(server)


def test_the_answer_s_size_is_bounded(server):
    limit = 2 ** 20

    def stream(handler):  # no Content-Length: 64 MiB streamed until the client hangs up
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        try:
            handler.wfile.write(b'{"predictions": [')
            for _ in range(64):
                handler.wfile.write(b"1, " * (2 ** 20 // 3))
        except OSError:
            pass

    server.predict = stream
    tracemalloc.start()
    try:
        with pytest.raises(ServingError, match=f"too large \\(more than {limit} bytes sent; the limit is {limit}"):
            sample(server, max_response_bytes=limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * limit
    server.predict = b'{"predictions": [' + b"1, " * limit + b"1]}"  # declared: refused before reading
    with pytest.raises(ServingError, match="too large .* bytes declared"):
        sample(server, max_response_bytes=limit)


@pytest.mark.timeout(120)
def test_the_command_line_exits_with_one_line(server, tmp_path):
    server.predict = predictions([[-3] * 24])
    out = tmp_path / "x.mid"
    r = subprocess.run([sys.executable, "-m", "musicvae_xai.cli.serve_client", f"--target={server.url}", "--model=m",
                        "--min_pitch=55", "--max_pitch=84", "sample", "--num=1", f"--out={out}"],
                       capture_output=True, text=True, timeout=100, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr[-2000:]
    assert "signature 'sample'" in lines[0] and "token ids must be in [0, 34)" in lines[0] and not out.exists()
