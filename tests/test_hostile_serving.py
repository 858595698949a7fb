"""Hostile requests and faults against the serving clients and the export: one deadline per call, non-finite
and absurd inputs, export faults.

* a whole-call deadline: servers that drip their answer one byte a second, stay unavailable slowly,
  or answer slowly to each of the requests a call needs, cannot hold a REST or gRPC call past its
  ``timeout`` (plus a little slack);
* NaN, inf and absurdly large float inputs are refused with INVALID_ARGUMENT naming the input, by the
  clients before sending and by the exported graph itself (what TF-Serving runs);
* an export folder that cannot be written or a disk that fills up gives one ``error:`` line naming
  the path, and the temporary folders of killed exports are removed by the next export.

Every test is bounded in time (pytest-timeout, counting the test body, not the shared fixtures that
train and export the tiny models; and each server stops by itself).
"""

import errno
import fcntl
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from musicvae_xai.serving import GrpcClient, RestClient, ServingError, ServingUnavailableError
from serving_doubles import DripServer, Faults, GrpcDouble, RestDouble

#: What a call may overrun its timeout by (thread start-up, a busy shared CPU).
SLACK = 1.5
NAN, INF = float("nan"), float("inf")


def _timed(fn):
    start = time.monotonic()
    try:
        fn()
    except BaseException as e:  # noqa: BLE001 - returned for the test to check
        return time.monotonic() - start, e
    return time.monotonic() - start, None


# ----------------------------------------------------------------------------------------------
# One deadline per call


@pytest.mark.timeout(30, func_only=True)
def test_rest_timeout_bounds_a_dripping_answer():
    """The attack of the issue: one byte a second from the status line on; was blocked past 70 s."""
    with DripServer(interval=1.0, max_lifetime=20) as drip:
        took, error = _timed(lambda: RestClient(drip.url, "m", timeout=3, retries=0).metadata())
        assert isinstance(error, ServingUnavailableError), error
        assert error.code == "DEADLINE_EXCEEDED"
        assert (f"REST server {drip.url}, model 'm': no answer within 3 s (the timeout bounds the whole call"
                in str(error))
        assert 3.0 - 0.1 <= took <= 3.0 + SLACK, took
        assert drip.requests == 1


@pytest.mark.timeout(30, func_only=True)
def test_rest_timeout_bounds_a_dripping_body_with_retries_allowed():
    with DripServer(interval=0.5, fast_headers=True, max_lifetime=20) as drip:
        took, error = _timed(lambda: RestClient(drip.url, "m", timeout=2, retries=3).status())
        assert isinstance(error, ServingUnavailableError) and error.code == "DEADLINE_EXCEEDED", error
        assert took <= 2.0 + SLACK, took


@pytest.mark.timeout(60, func_only=True)
def test_rest_retries_share_the_deadline(serving_backend):
    # Each attempt waits 0.6 s for its 503: per-attempt timeouts would take 10 x 0.6 s plus backoff.
    with RestDouble(serving_backend, max_lifetime=60, faults=Faults(fail_first=100, fail_delay=0.6)) as slow:
        took, error = _timed(lambda: RestClient(slow.url, "measure_vae", timeout=2, retries=9).metadata())
        assert isinstance(error, ServingUnavailableError) and error.code == "DEADLINE_EXCEEDED", error
        assert "no answer within 2 s (the timeout bounds the whole call, retries included" in str(error)
        assert took <= 2.0 + SLACK, took
        assert 2 <= slow.faults.requests <= 4


@pytest.mark.timeout(60, func_only=True)
def test_rest_metadata_fetch_and_predict_share_one_deadline(serving_backend):
    # A fresh client's decode needs metadata, then the prediction: 0.8 s each, 1.2 s for the call.
    with RestDouble(serving_backend, max_lifetime=60, faults=Faults(delay=0.8)) as slow:
        client = RestClient(slow.url, "measure_vae", timeout=1.2, retries=0)
        took, error = _timed(lambda: client.decode(np.zeros((1, 6), np.float32)))
        assert isinstance(error, ServingUnavailableError) and error.code == "DEADLINE_EXCEEDED", error
        assert took <= 1.2 + SLACK, took
        assert client.metadata()["model"] == "measure_vae"  # the next call has its own deadline


@pytest.mark.timeout(60, func_only=True)
def test_grpc_retries_share_the_deadline(serving_backend):
    with GrpcDouble(serving_backend, max_lifetime=60, faults=Faults(fail_first=100, fail_delay=0.6)) as slow:
        client = GrpcClient(slow.target, "measure_vae", timeout=2, retries=9)
        took, error = _timed(client.metadata)
        assert isinstance(error, ServingUnavailableError), error
        assert error.code == "DEADLINE_EXCEEDED", error
        assert "no answer within 2 s (the timeout bounds the whole call, retries included" in str(error)
        assert took <= 2.0 + SLACK, took
        assert 2 <= slow.faults.requests <= 5
        client.close()


@pytest.mark.timeout(60, func_only=True)
def test_grpc_metadata_fetch_and_predict_share_one_deadline(serving_backend):
    with GrpcDouble(serving_backend, max_lifetime=60, faults=Faults(delay=0.8)) as slow:
        client = GrpcClient(slow.target, "measure_vae", timeout=1.2, retries=3)
        took, error = _timed(lambda: client.sample(np.zeros((1, 6), np.float32)))
        assert isinstance(error, ServingUnavailableError) and error.code == "DEADLINE_EXCEEDED", error
        assert took <= 1.2 + SLACK, took
        client.close()


# ----------------------------------------------------------------------------------------------
# Non-finite and absurd float inputs

BAD_Z = [(NAN, "nan"), (INF, "inf"), (-INF, "-inf"), (1e308, "1e+308"), (1001.0, "1001.0")]


def _z(value, batch=2, latent=6):
    z = np.zeros((batch, latent), np.float64)
    z[1, 3] = value
    return z


@pytest.mark.timeout(300, func_only=True)
@pytest.mark.parametrize("value,shown", BAD_Z)
def test_local_model_refuses_bad_z_before_running(local_model, value, shown):
    local = local_model("measure_vae")
    for verb in ("decode", "sample"):
        with pytest.raises(ServingError, match=rf"signature '{verb}', input 'z': values must be finite with "
                                               rf"\|value\| <= 1000, got {re.escape(shown)} at \[1, 3\]") as info:
            getattr(local, verb)(_z(value))
        assert info.value.input == "z"
    local.decode(_z(1000.0))  # the bound itself is allowed


@pytest.mark.timeout(300, func_only=True)
@pytest.mark.parametrize("value", [NAN, INF, 1e308, -5e3])
def test_exported_graph_refuses_bad_z_itself(local_model, value):
    """validate=False: the request reaches the SavedModel, whose own check answers INVALID_ARGUMENT."""
    from musicvae_xai.serving.local import LocalModel

    raw = LocalModel(local_model("measure_vae").export_dir, validate=False)
    for verb in ("decode", "sample"):
        with pytest.raises(ServingError, match=r"assertion failed: \[input z: values must be finite with "
                                               r"\|value\| <= 1000, got\] \[1\] \[bad values") as info:
            getattr(raw, verb)(_z(value).astype(np.float32))
        assert info.value.code == "INVALID_ARGUMENT"


@pytest.mark.timeout(300, func_only=True)
def test_traverse_values_and_controls_are_checked(local_model):
    from musicvae_xai.serving.local import LocalModel

    local = local_model("measure_vae")
    tokens = np.zeros((1, 24), np.int32)
    with pytest.raises(ServingError, match=r"signature 'traverse', input 'values': values must be finite .* "
                                           r"got nan at \[1\]"):
        local.traverse(tokens, 0, [0.0, NAN])
    raw = LocalModel(local.export_dir, validate=False)
    with pytest.raises(ServingError, match=r"assertion failed: \[input values: values must be finite"):
        raw.traverse(tokens, np.int32(0), np.array([0.0, NAN], np.float32))
    adversarial = local_model("adversarial_vae")
    controls = np.full((2, 4), 0.5)
    controls[0, 2] = INF
    with pytest.raises(ServingError, match=r"input 'controls': values must be finite .* got inf at \[0, 2\]"):
        adversarial.decode(np.zeros((2, 6)), controls)
    raw_adv = LocalModel(adversarial.export_dir, validate=False)
    with pytest.raises(ServingError, match=r"assertion failed: \[input controls: values must be finite"):
        raw_adv.decode(np.zeros((2, 6), np.float32), controls.astype(np.float32))


@pytest.mark.timeout(300, func_only=True)
def test_rest_refuses_bad_inputs_in_the_client_and_on_the_server(serving_backend):
    with RestDouble(serving_backend, max_lifetime=240) as server:
        client = RestClient(server.url, "measure_vae", timeout=60)
        with pytest.raises(ServingError, match=rf"REST server {server.url}, model 'measure_vae', signature "
                                               r"'sample', input 'z': values must be finite .* got nan"):
            client.sample(_z(NAN))
        tokens = np.zeros((1, 24), np.int32)
        with pytest.raises(ServingError, match=r"input 'values': values must be finite"):
            client.traverse(tokens, 0, [NAN])
        # Without the client's check the server (the exported graph) refuses, as TF-Serving would.
        raw = RestClient(server.url, "measure_vae", timeout=60, validate=False, request_format="columnar")
        for verb, value in (("decode", NAN), ("sample", INF), ("decode", 1e308)):
            with pytest.raises(ServingError, match=r"HTTP 400: assertion failed: \[input z: values must be "
                                                   r"finite with \|value\| <= 1000") as info:
                with np.errstate(over="ignore"):
                    getattr(raw, verb)(_z(value))
            assert info.value.code == "INVALID_ARGUMENT"
        with pytest.raises(ServingError, match=r"HTTP 400: assertion failed: \[input values: values must be finite"):
            raw.traverse(tokens, np.int32(0), np.array([NAN]))
        assert client.sample(_z(0.5))["tokens"].shape == (2, 24)  # good requests still answer


@pytest.mark.timeout(300, func_only=True)
def test_grpc_refuses_bad_inputs_in_the_client_and_on_the_server(serving_backend):
    with GrpcDouble(serving_backend, max_lifetime=240) as server:
        with GrpcClient(server.target, "measure_vae", timeout=60) as client:
            with pytest.raises(ServingError, match=rf"gRPC server {server.target}, model 'measure_vae', signature "
                                                   r"'decode', input 'z': values must be finite .* got inf"):
                client.decode(_z(INF))
        with GrpcClient(server.target, "measure_vae", timeout=60, validate=False) as raw:
            with pytest.raises(ServingError, match=r"INVALID_ARGUMENT: assertion failed: \[input z: values must be "
                                                   r"finite with \|value\| <= 1000") as info:
                raw.sample(_z(NAN).astype(np.float32))
            assert info.value.code == "INVALID_ARGUMENT"


# ----------------------------------------------------------------------------------------------
# Export faults


def _ok(tmp):
    with open(os.path.join(tmp, "saved_model.pb"), "wb") as f:
        f.write(b"x")


@pytest.mark.timeout(60, func_only=True)
def test_unwritable_export_folder_is_one_error_naming_the_path(tmp_path, monkeypatch):
    from musicvae_xai import export

    base = tmp_path / "m"
    base.mkdir()

    def refuse(prefix="", dir=None):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix + "x"))

    monkeypatch.setattr(export.tempfile, "mkdtemp", refuse)
    with pytest.raises(export.ExportError, match=rf"^cannot write to the export folder {base}: Permission denied "
                                                 r"\(EACCES\)$"):
        export.publish(str(base), 1, _ok)
    assert os.listdir(base) == []
    if os.geteuid() != 0:  # a real read-only folder (root writes anyway)
        monkeypatch.undo()
        base.chmod(0o555)
        try:
            with pytest.raises(export.ExportError, match=rf"cannot write to the export folder {base}"):
                export.publish(str(base), 1, _ok)
        finally:
            base.chmod(0o755)


@pytest.mark.timeout(120, func_only=True)
@pytest.mark.parametrize("fault", ["tf", "os"])
def test_disk_full_while_exporting_is_one_error_and_no_trace(tiny_trained_run, tmp_path, monkeypatch, fault):
    import tensorflow as tf

    from musicvae_xai import export

    def full(module, path, signatures=None):
        with open(os.path.join(path, "saved_model.pb"), "wb") as f:
            f.write(b"partial")
        if fault == "tf":
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{path}/variables/variables.data-00000-of-00001.tempstate; No space left on device")
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(export.tf.saved_model, "save", full)
    base = tmp_path / "exports" / "m"
    reason = (r"ResourceExhaustedError: .*No space left on device" if fault == "tf"
              else r"No space left on device \(ENOSPC\)")
    with pytest.raises(export.ExportError, match=rf"^writing the export to {base}/\.tmp-1-\w+ failed: {reason}; "
                                                 "nothing published$"):
        export.export_run(str(tiny_trained_run("measure_vae")), str(base), verify=False)
    assert not (tmp_path / "exports").exists()


@pytest.mark.timeout(120, func_only=True)
def test_cli_unwritable_export_folder_prints_one_line(tiny_trained_run, tmp_path):
    base = tmp_path / "m"
    base.mkdir()
    script = textwrap.dedent(f"""
        import errno, os, tempfile
        from absl import app
        from musicvae_xai.cli import export
        def refuse(prefix="", dir=None):
            raise PermissionError(errno.EACCES, "Permission denied", dir)
        tempfile.mkdtemp = refuse  # a read-only folder, even for root
        export.define_flags()
        app.run(export.main, ["export", "--run_dir={tiny_trained_run('measure_vae')}", "--export_base={base}"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=110,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 1
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: cannot write to the export folder {base}: Permission denied (EACCES)"], out.stderr
    assert "Traceback" not in out.stderr and "PermissionError" not in out.stderr


@pytest.mark.timeout(120, func_only=True)
def test_leftovers_of_killed_exports_are_cleaned_by_the_next_one(tmp_path, caplog):
    from musicvae_xai import export

    base = tmp_path / "m"
    # A real interrupted export: SIGKILL in the middle of writing.
    killer = textwrap.dedent(f"""
        import os, signal
        from musicvae_xai import export
        def die(tmp):
            open(os.path.join(tmp, "saved_model.pb"), "wb").close()
            os.kill(os.getpid(), signal.SIGKILL)
        export.publish({str(base)!r}, 1, die)
    """)
    out = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, timeout=110)
    assert out.returncode == -signal.SIGKILL, out.stderr
    (killed,) = [n for n in os.listdir(base) if n.startswith(".tmp-1-")]
    # An export in progress (its owner lock held), an old leftover without owner file, a fresh one
    # without, and things that only look alike.
    live = base / ".tmp-2-live"
    live.mkdir()
    holder = open(live / export.OWNER_FILENAME, "w")
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    old, fresh = base / ".tmp-3-old", base / ".tmp-4-fresh"
    old.mkdir()
    fresh.mkdir()
    long_ago = time.time() - export.STALE_TMP_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    (base / ".tmp-x-notours").mkdir()
    (base / ".tmp-5-file").write_text("")
    os.symlink(tmp_path, base / ".tmp-6-link")
    (base / "notes").mkdir()
    try:
        with caplog.at_level("WARNING"):
            path = export.publish(str(base), 7, _ok)
    finally:
        holder.close()
    assert path == str(base / "7")
    assert sorted(os.listdir(base)) == sorted([".tmp-2-live", ".tmp-4-fresh", ".tmp-x-notours", ".tmp-5-file",
                                               ".tmp-6-link", "notes", "7"])
    assert os.listdir(base / "7") == ["saved_model.pb"]  # the owner file is not published
    logged = caplog.text
    for gone in (killed, ".tmp-3-old"):
        assert f"removed {base / gone}, the temporary folder of an interrupted export" in logged
    assert ".tmp-2-live" not in logged and ".tmp-4-fresh" not in logged
    assert os.path.isdir(tmp_path)  # the link's target is untouched
