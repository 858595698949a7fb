"""musicvae_xai.serving.rest against a loopback REST double of TF-Serving backed by the exports.

The first tests pin the double's wire format to TF-Serving's documented REST API (row and columnar
requests and answers, ``{"error": ...}``, metadata and status endpoints), the rest check RestClient
against LocalModel.
"""

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from musicvae_xai.serving import RestClient, ServingError, ServingUnavailableError
from serving_doubles import Faults, RestDouble
from serving_helpers import assert_same_arrays, call_every_verb, free_port

MODELS = ("measure_vae", "adversarial_vae")


@pytest.fixture(scope="module")
def server(serving_backend):
    with RestDouble(serving_backend, max_lifetime=900) as double:
        yield double


def _http(url, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_double_speaks_the_documented_formats(server):
    base = f"{server.url}/v1/models/measure_vae"
    tokens = [[0] * 24, [1] * 24]
    # Row format, several outputs: one object per instance.
    status, body = _http(f"{base}:predict", {"signature_name": "encode", "instances": [{"tokens": t} for t in tokens]})
    assert status == 200 and len(body["predictions"]) == 2 and set(body["predictions"][0]) == {
        "z_mean", "z_scale", "attributes"}
    # Row format, one output: bare values; unnamed instances are allowed for a single input.
    status, body = _http(f"{base}:predict", {"signature_name": "reconstruct", "instances": tokens})
    assert status == 200 and np.asarray(body["predictions"]).shape == (2, 24)
    # Columnar format, scalar input: {"outputs": {...}}; the default signature when none is named.
    status, body = _http(f"{base}/versions/1:predict", {"signature_name": "traverse", "inputs": {
        "tokens": tokens, "control": 0, "values": [0.0, 1.0, 2.0]}})
    assert status == 200 and np.asarray(body["outputs"]["tokens"]).shape == (2, 3, 24)
    status, body = _http(f"{base}:predict", {"inputs": {"tokens": tokens}})
    assert status == 200 and np.asarray(body["outputs"]).shape == (2, 24)
    # Errors.
    status, body = _http(f"{base}:predict", {"signature_name": "encode", "instances": [{"tokens": [0.5] * 24}]})
    assert status == 400 and "is not of expected type: int32" in body["error"]
    status, body = _http(f"{base}:predict", {"signature_name": "nope", "inputs": {"tokens": tokens}})
    assert status == 400 and body["error"] == 'Serving signature name: "nope" not found in signature def'
    status, body = _http(f"{base}:predict", {"signature_name": "encode"})
    assert status == 400 and "Missing 'inputs' or 'instances' key" in body["error"]
    status, body = _http(f"{server.url}/v1/models/nomodel:predict", {"inputs": {"tokens": tokens}})
    assert status == 404 and "Servable not found" in body["error"]
    # Status and metadata.
    status, body = _http(base)
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = _http(f"{base}/metadata")
    assert body["model_spec"] == {"name": "measure_vae", "signature_name": "", "version": "1"}
    sig = body["metadata"]["signature_def"]["signature_def"]["traverse"]
    assert sig["inputs"]["control"]["dtype"] == "DT_INT32" and sig["method_name"] == "tensorflow/serving/predict"


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("request_format", ["row", "columnar"])
def test_same_arrays_and_metadata_as_local_model(model_name, request_format, server, local_model, reference):
    local = local_model(model_name)
    with RestClient(server.url, model_name, request_format=request_format) as client:
        assert_same_arrays(call_every_verb(client, seed=0), reference(model_name))
        assert client.metadata() == local.metadata()
        assert client.status()["model_version_status"][0]["version"] == "1"


def test_bad_requests_name_server_model_signature_and_input(server):
    where = f"REST server {server.url}, model 'measure_vae'"
    client = RestClient(server.url, "measure_vae")
    with pytest.raises(ServingError, match=rf"{where}, signature 'sample', input 'z': expected float32 \[B, 6\]"):
        client.sample(np.zeros((1, 3)))
    with pytest.raises(ServingError, match=r"input 'control': expected int32 scalar, got dtype float64"):
        client.traverse(np.zeros((1, 24), int), 1.5, [0.0])
    raw = RestClient(server.url, "measure_vae", validate=False)
    with pytest.raises(ServingError, match=rf"{where}, signature 'reconstruct': HTTP 400: assertion failed: \[input "
                                           r"tokens: token ids must be in \[0, 34\)") as info:
        raw.reconstruct(np.full((1, 24), 40, np.int32))
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ServingError, match=r"HTTP 400: assertion failed: \[input tokens: expected int32 \[B, 24\], "
                                           r"got shape\] \[1 23\]"):
        raw.encode(np.zeros((1, 23), np.int32))
    with pytest.raises(ServingError, match=r"HTTP 400: 'instances' input tokens: JSON Value: 0.5 Type: float is not "
                                           r"of expected type: int32"):
        raw.encode(np.full((1, 24), 0.5))
    with pytest.raises(ServingError, match=r"signature 'nope': HTTP 400: Serving signature name: \"nope\" not found"):
        raw.predict("nope", {"tokens": np.zeros((1, 24), np.int32)})
    with pytest.raises(ServingError, match=r"model 'nomodel'.*HTTP 404: Servable not found") as info:
        RestClient(server.url, "nomodel").metadata()
    assert info.value.code == "NOT_FOUND"


def test_unreachable_server_fails_after_bounded_retries():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServingUnavailableError, match=rf"REST server {url}, model 'm': cannot reach the server "
                                                      r"after 3 attempts"):
        RestClient(url, "m", retries=2, timeout=2.0).metadata()


def test_retries_on_503_then_succeeds_and_gives_up_when_bounded(serving_backend):
    with RestDouble(serving_backend, max_lifetime=120, faults=Faults(fail_first=2)) as flaky:
        assert RestClient(flaky.url, "measure_vae", retries=2).metadata()["version"] == 1
        assert flaky.faults.requests == 3
    with RestDouble(serving_backend, max_lifetime=120, faults=Faults(fail_first=5)) as down:
        with pytest.raises(ServingUnavailableError, match=r"unavailable \(HTTP 503\) after 2 attempts"):
            RestClient(down.url, "measure_vae", retries=1).metadata()
        assert down.faults.requests == 2


def test_timeout(serving_backend):
    with RestDouble(serving_backend, max_lifetime=120, faults=Faults(delay=1.0)) as slow:
        with pytest.raises(ServingUnavailableError, match=r"no answer within 0.2 s"):
            RestClient(slow.url, "measure_vae", timeout=0.2, retries=0).metadata()


def test_bad_arguments():
    with pytest.raises(ValueError, match="request_format"):
        RestClient("http://127.0.0.1:1", "m", request_format="xml")
    with pytest.raises(ValueError, match="not an http"):
        RestClient("ftp://host:1", "m")


def test_stopped_server_is_unreachable_even_on_a_kept_alive_connection(serving_backend):
    with RestDouble(serving_backend, max_lifetime=120) as server:
        client = RestClient(server.url, "measure_vae", retries=0, timeout=5.0)
        assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"
    with pytest.raises(ServingUnavailableError, match="cannot reach the server"):
        client.status()
