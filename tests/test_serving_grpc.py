"""musicvae_xai.serving.grpc_client against a loopback gRPC PredictionService double backed by the exports."""

import numpy as np
import pytest

from musicvae_xai.serving import GrpcClient, ServingError, ServingUnavailableError
from serving_doubles import Faults, GrpcDouble
from serving_helpers import assert_same_arrays, call_every_verb, free_port

MODELS = ("measure_vae", "adversarial_vae")


@pytest.fixture(scope="module")
def server(serving_backend):
    with GrpcDouble(serving_backend, max_lifetime=900) as double:
        yield double


@pytest.mark.parametrize("model_name", MODELS)
def test_same_arrays_and_metadata_as_local_model(model_name, server, local_model, reference):
    local = local_model(model_name)
    with GrpcClient(server.target, model_name) as client:
        assert_same_arrays(call_every_verb(client, seed=0), reference(model_name))
        assert client.metadata() == local.metadata()
    with GrpcClient(server.target, model_name, version=1) as pinned:
        assert pinned.metadata()["version"] == 1
        np.testing.assert_array_equal(pinned.reconstruct(np.zeros((2, 24), int))["tokens"],
                                      local.reconstruct(np.zeros((2, 24), int))["tokens"])


def test_bad_requests_name_server_model_signature_and_input(server):
    where = f"gRPC server {server.target}, model 'measure_vae'"
    client = GrpcClient(server.target, "measure_vae")
    with pytest.raises(ServingError, match=rf"{where}, signature 'decode', input 'z': expected float32 \[B, 6\]"):
        client.decode(np.zeros((1, 7)))
    with pytest.raises(ServingError, match=r"input 'tokens': expected int32 \[B, 24\], got dtype float64"):
        client.encode(np.zeros((1, 24)))
    with pytest.raises(ServingError, match=r"input 'tokens': expected int32 \[B, 24\], got shape \[24\] \(rank 1\)"):
        client.reconstruct(np.zeros(24, int))
    with pytest.raises(ServingError, match=r"signature 'nope': unknown signature; this model offers"):
        client.predict("nope", {"tokens": np.zeros((1, 24), int)})
    # Without the client-side check, the server's own answers (what TF-Serving says) come through.
    raw = GrpcClient(server.target, "measure_vae", validate=False)
    with pytest.raises(ServingError, match=r"signature 'encode': INVALID_ARGUMENT: assertion failed: \[input tokens: "
                                           r"token ids must be in \[0, 34\)") as info:
        raw.encode(np.full((1, 24), 34, np.int32))
    assert info.value.code == "INVALID_ARGUMENT" and info.value.signature == "encode"
    with pytest.raises(ServingError, match=r"INVALID_ARGUMENT: assertion failed: \[input z: expected float32 \[B, 6\], "
                                           r"got shape\] \[1 7\]"):
        raw.sample(np.zeros((1, 7), np.float32))
    with pytest.raises(ServingError, match=r"INVALID_ARGUMENT: Expects arg\[0\] to be int32 but int64 is provided"):
        raw.encode(np.zeros((1, 24), np.int64))
    with pytest.raises(ServingError, match=r"FAILED_PRECONDITION: Serving signature name: \"nope\" not found"):
        raw.predict("nope", {"tokens": np.zeros((1, 24), np.int32)})
    with pytest.raises(ServingError, match=r"model 'nomodel'.*NOT_FOUND: Servable not found for request: "
                                           r"Latest\(nomodel\)"):
        GrpcClient(server.target, "nomodel").metadata()
    with pytest.raises(ServingError, match=r"NOT_FOUND: .*Specific\(measure_vae, 9\)"):
        GrpcClient(server.target, "measure_vae", version=9).metadata()


def test_unreachable_server_fails_after_bounded_retries():
    target = f"127.0.0.1:{free_port()}"
    client = GrpcClient(target, "measure_vae", timeout=2.0, retries=1)
    with pytest.raises(ServingUnavailableError, match=rf"gRPC server {target}, model 'measure_vae': cannot reach the "
                                                      r"server after 2 attempts"):
        client.metadata()


def test_retries_while_unavailable_then_succeeds_and_gives_up_when_bounded(serving_backend):
    with GrpcDouble(serving_backend, max_lifetime=120, faults=Faults(fail_first=2)) as flaky:
        client = GrpcClient(flaky.target, "measure_vae", retries=2)
        assert client.metadata()["model"] == "measure_vae"
        assert flaky.faults.requests == 3
    with GrpcDouble(serving_backend, max_lifetime=120, faults=Faults(fail_first=5)) as down:
        with pytest.raises(ServingUnavailableError, match="after 3 attempts: the model server is starting"):
            GrpcClient(down.target, "measure_vae", retries=2).metadata()
        assert down.faults.requests == 3


def test_timeout(serving_backend):
    with GrpcDouble(serving_backend, max_lifetime=120, faults=Faults(delay=1.0)) as slow:
        with pytest.raises(ServingUnavailableError, match=r"no answer within 0.2 s"):
            GrpcClient(slow.target, "measure_vae", timeout=0.2, retries=0).metadata()
