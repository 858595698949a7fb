"""musicvae_xai.export: the SavedModel contract, its assets, warmup records and versioned publishing.

The SavedModel is executed the way TF-Serving runs it: TF's C++ loader into a ``tf.compat.v1``
session, fed and fetched only through the SignatureDef tensor names, and compared with the in-memory
Keras model restored from the same run.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai import export
from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.representation import MEASURE_TICKS
from musicvae_xai.serving import signatures as sigs
from musicvae_xai.training import checkpoints as ckpts

MODELS = ("measure_vae", "adversarial_vae")


@pytest.fixture(scope="module")
def restored():
    """(config, in-memory model, data statistics) per run dir, restored once."""
    cache = {}

    def get(run_dir):
        if run_dir not in cache:
            config, model = ckpts.restore_model(str(run_dir))
            cache[run_dir] = (config, model, ckpts.load_data_statistics(str(run_dir)))
        return cache[run_dir]

    return get


@pytest.fixture(scope="module")
def v1_session(tiny_export):
    """``get(model) -> V1Session`` of that model's tiny export, loaded once per module."""
    sessions = {}

    def get(model_name):
        if model_name not in sessions:
            sessions[model_name] = V1Session(_version_dir(tiny_export(model_name)))
        return sessions[model_name]

    yield get
    for session in sessions.values():
        session.close()


def _version_dir(base) -> str:
    return os.path.join(str(base), "1")


def _contract(model) -> dict:
    cfg = model.config
    return sigs.expected_signatures(cfg.latent_dim, len(model.attribute_names), model.vocabulary.size,
                                    model.needs_controls)


def _inputs(model, stats, rng, batch=3, steps=4) -> dict:
    """One valid request per signature, {signature: {input: ndarray}}."""
    v = model.vocabulary
    tokens = rng.integers(0, v.size, size=(batch, MEASURE_TICKS)).astype(np.int32)
    z = rng.normal(size=(batch, model.config.latent_dim)).astype(np.float32)
    control = model.controls[1]
    values = np.linspace(control.low, control.high, steps).astype(np.float32)
    out = {sigs.ENCODE: {"tokens": tokens}, sigs.DECODE: {"z": z}, sigs.RECONSTRUCT: {"tokens": tokens},
           sigs.TRAVERSE: {"tokens": tokens, "control": np.array(control.index, np.int32), "values": values},
           sigs.SAMPLE: {"z": z}, sigs.SERVING_DEFAULT: {"tokens": tokens}}
    if model.needs_controls:
        out[sigs.DECODE]["controls"] = model.measure_attributes(tokens).numpy()
    return out


def _expected(model, stats, signature, inputs) -> dict:
    """What the in-memory Keras model gives for one signature's request."""
    if signature == sigs.ENCODE:
        enc = model.encode(inputs["tokens"])
        return {"z_mean": enc["z_mean"], "z_scale": enc["z_scale"],
                "attributes": model.measure_attributes(inputs["tokens"])}
    if signature == sigs.DECODE:
        return model.decode(inputs["z"], inputs.get("controls"))
    if signature in (sigs.RECONSTRUCT, sigs.SERVING_DEFAULT):
        tokens = inputs["tokens"]
        return {"tokens": model.decode(model.encode(tokens)["z_mean"], model.default_controls(tokens))["tokens"]}
    if signature == sigs.TRAVERSE:
        tokens, values = inputs["tokens"], inputs["values"]
        z = model.encode(tokens)["z_mean"]
        zs, cs = model.apply_controls(z, model.default_controls(tokens), int(inputs["control"]), values)
        decoded = model.decode(zs, cs)["tokens"].numpy()
        b, s = len(tokens), len(values)
        return {"tokens": decoded.reshape(b, s, MEASURE_TICKS),
                "attributes": model.measure_attributes(decoded).numpy().reshape(b, s, -1)}
    controls = None
    if model.needs_controls:
        controls = np.tile(np.asarray(stats["mean"], np.float32), (len(inputs["z"]), 1))
    return {"tokens": model.decode(inputs["z"], controls)["tokens"]}


def _assert_outputs_equal(got: dict, want: dict, where: str):
    assert sorted(got) == sorted(want), where
    for key in want:
        w = np.asarray(want[key])
        g = np.asarray(got[key])
        assert g.dtype == w.dtype and g.shape == w.shape, (where, key, g.dtype, w.dtype, g.shape, w.shape)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"{where}/{key}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"{where}/{key}")


class V1Session:
    """An export loaded into a v1 session as TF-Serving does (``export.load_in_session``); runs by
    SignatureDef tensor names."""

    def __init__(self, export_dir):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        self.meta = export.load_in_session(self.session, export_dir)

    def run(self, signature: str, inputs: dict) -> dict:
        sig = self.meta.signature_def[signature]
        fetches = {k: v.name for k, v in sig.outputs.items()}
        feeds = {sig.inputs[k].name: v for k, v in inputs.items()}
        return self.session.run(fetches, feed_dict=feeds)

    def close(self):
        self.session.close()


# ----------------------------------------------------------------------------------------------
# The contract


@pytest.mark.parametrize("model_name", MODELS)
def test_signatures_named_typed_and_batched_as_the_contract(model_name, tiny_export, tiny_trained_run, restored,
                                                            local_model):
    _, model, _ = restored(tiny_trained_run(model_name))
    export_dir = _version_dir(tiny_export(model_name))
    want = _contract(model)
    loaded = local_model(model_name).loaded  # tf.saved_model.load of the export
    assert sorted(loaded.signatures) == sorted(sigs.SIGNATURES + (sigs.SERVING_DEFAULT,))
    for name, spec in want.items():
        fn = loaded.signatures[name]
        inputs = fn.structured_input_signature[1]
        assert {k: (v.dtype.name, tuple(-1 if d is None else d for d in v.shape)) for k, v in inputs.items()} \
            == spec["inputs"], name
        outputs = fn.structured_outputs
        assert {k: (v.dtype.name, tuple(-1 if d is None else d for d in v.shape)) for k, v in outputs.items()} \
            == spec["outputs"], name
    # The SignatureDefs themselves (what TF-Serving reads): same contract, predict method.
    from musicvae_xai.serving.local import read_signature_defs
    summary = sigs.summarize_signature_defs(read_signature_defs(export_dir))
    for name, spec in want.items():
        assert summary[name]["method_name"] == sigs.PREDICT_METHOD
        for part in ("inputs", "outputs"):
            assert {k: (v["dtype"], v["shape"]) for k, v in summary[name][part].items()} == spec[part]


def test_saved_model_cli_shows_every_signature(tiny_export):
    export_dir = _version_dir(tiny_export("measure_vae"))
    # TensorFlow's own tool, from the environment this Python runs in (also when it is not activated).
    beside = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    tool = beside if os.path.exists(beside) else "saved_model_cli"
    out = subprocess.run([tool, "show", "--dir", export_dir, "--all"], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    for name in sigs.SIGNATURES + (sigs.SERVING_DEFAULT,):
        assert f"signature_def['{name}']" in text
    traverse = text[text.index("signature_def['traverse']"):]
    traverse = traverse[:traverse.index("Method name is")]
    assert "inputs['control'] tensor_info:\n        dtype: DT_INT32\n        shape: ()" in traverse
    assert "inputs['values'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1)" in traverse
    assert "inputs['tokens'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1, 24)" in traverse
    assert "outputs['tokens'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1, -1, 24)" in traverse


@pytest.mark.parametrize("model_name", MODELS)
def test_v1_session_by_signature_names_matches_keras_model(model_name, tiny_trained_run, restored, v1_session):
    _, model, stats = restored(tiny_trained_run(model_name))
    session = v1_session(model_name)
    rng = np.random.default_rng(7)
    for signature, inputs in _inputs(model, stats, rng).items():
        got = session.run(signature, inputs)
        want = {k: np.asarray(v) for k, v in _expected(model, stats, signature, inputs).items()}
        _assert_outputs_equal(got, want, f"{model_name}:{signature}")


@pytest.mark.parametrize("model_name", MODELS)
def test_traverse_control_indexes_latent_dims_or_controls(model_name, tiny_trained_run, restored, v1_session):
    """MeasureVAE: ``control`` is any latent dim of z (0..Z-1); adversarial: an index into the K controls."""
    _, model, stats = restored(tiny_trained_run(model_name))
    session = v1_session(model_name)
    tokens = _inputs(model, stats, np.random.default_rng(3), batch=2)[sigs.ENCODE]["tokens"]
    values = np.array([-1.5, 0.25, 2.0], np.float32)
    limit = model.config.latent_dim if not model.needs_controls else len(model.attribute_names)
    for control in (0, limit - 1):
        got = session.run(sigs.TRAVERSE, {"tokens": tokens, "control": np.int32(control), "values": values})
        want = _expected(model, stats, sigs.TRAVERSE, {"tokens": tokens, "control": control, "values": values})
        _assert_outputs_equal(got, want, f"control {control}")
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"control: expected .* in \[0, {limit}\)"):
        session.run(sigs.TRAVERSE, {"tokens": tokens, "control": np.int32(limit), "values": values})


# ----------------------------------------------------------------------------------------------
# Bad input, through the C++ session path (no Python-side shape checks, as in TF-Serving)


def test_bad_inputs_fail_in_the_graph_naming_what_was_expected(serving_backend, tiny_export):
    from serving_doubles import ServingStatusError

    good = np.zeros((2, MEASURE_TICKS), np.int32)
    cases = [
        ("decode", {"z": np.zeros((2, 5), np.float32)}, r"input z: expected float32 \[B, 6\], got shape\] \[2 5\]"),
        ("decode", {"z": np.zeros((6,), np.float32)}, r"input z: expected float32 \[B, 6\], got shape\] \[6\]"),
        ("encode", {"tokens": np.zeros((2, 23), np.int32)}, r"input tokens: expected int32 \[B, 24\]"),
        ("encode", {"tokens": np.zeros((1, 2, 24), np.int32)}, r"input tokens: expected int32 \[B, 24\]"),
        ("reconstruct", {"tokens": np.full((1, 24), 34, np.int32)},
         r"token ids must be in \[0, 34\) \(vocabulary of 34 tokens\), got ids from\] \[34\]"),
        ("encode", {"tokens": np.full((1, 24), -1, np.int32)}, r"token ids must be in \[0, 34\)"),
        ("traverse", {"tokens": good, "control": np.array([1], np.int32), "values": np.zeros(2, np.float32)},
         r"input control: expected int32 scalar, got shape\] \[1\]"),
        ("traverse", {"tokens": good, "control": np.int32(-1), "values": np.zeros(2, np.float32)},
         r"expected a latent dim of z in \[0, 6\), got\] \[-1\]"),
        ("traverse", {"tokens": good, "control": np.int32(0), "values": np.zeros((2, 1), np.float32)},
         r"input values: expected float32 \[S\], got shape\] \[2 1\]"),
    ]
    for signature, inputs, pattern in cases:
        with pytest.raises(ServingStatusError, match=pattern) as info:
            serving_backend.predict("measure_vae", None, signature, inputs)
        assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ServingStatusError, match="Expects arg.* to be int32 but float32 is provided"):
        serving_backend.predict("measure_vae", None, "encode", {"tokens": good.astype(np.float32)})
    with pytest.raises(ServingStatusError, match=r"inputs z and controls must have the same batch size"):
        serving_backend.predict("adversarial_vae", None, "decode",
                                {"z": np.zeros((2, 6), np.float32), "controls": np.zeros((3, 4), np.float32)})


# ----------------------------------------------------------------------------------------------
# Assets and warmup


@pytest.mark.parametrize("model_name", MODELS)
def test_assets_extra_carry_config_vocabulary_attributes_controls(model_name, tiny_export, tiny_trained_run,
                                                                   restored):
    config, model, stats = restored(tiny_trained_run(model_name))
    extra = os.path.join(_version_dir(tiny_export(model_name)), export.ASSETS_EXTRA)
    assert RunConfig.load(extra) == config
    vocab = json.load(open(os.path.join(extra, "vocabulary.json")))
    assert vocab["size"] == model.vocabulary.size and vocab["tokens"] == model.vocabulary.tokens()
    assert json.load(open(os.path.join(extra, "attributes.json")))["names"] == list(model.attribute_names)
    controls = json.load(open(os.path.join(extra, "controls.json")))
    assert controls["controls"] == [c.to_dict() for c in model.controls]
    manifest = json.load(open(os.path.join(extra, export.MANIFEST_FILENAME)))
    assert manifest["model_name"] == model_name and manifest["version"] == 1 and manifest["step"] == 4
    if model.needs_controls:
        assert controls["kind"] == "attribute_input" and controls["num_controls"] == len(model.attribute_names)
        assert controls["bin_edges"] == dict(zip(stats["attributes"], stats["bin_edges"], strict=False))
        assert controls["sample_controls"] == pytest.approx(stats["mean"])
    else:
        assert controls["kind"] == "latent_dim" and controls["num_controls"] == config.latent_dim
        assert "bin_edges" not in controls


@pytest.mark.parametrize("model_name", MODELS)
def test_warmup_records_parse_and_run(model_name, tiny_export, v1_session):
    from tensorflow_serving.apis import prediction_log_pb2

    export_dir = _version_dir(tiny_export(model_name))
    path = os.path.join(export_dir, export.ASSETS_EXTRA, export.WARMUP_FILENAME)
    records = list(tf.data.TFRecordDataset(path))
    assert 1 <= len(records) <= 1000  # TF-Serving reads at most 1000 warmup records
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == set(
        sigs.SIGNATURES + (sigs.SERVING_DEFAULT,))
    assert {log.predict_log.request.model_spec.name for log in logs} == {model_name}
    session = v1_session(model_name)
    for signature, inputs in export.read_warmup(path):
        outputs = session.run(signature, inputs)
        assert set(outputs) == set(session.meta.signature_def[signature].outputs)


# ----------------------------------------------------------------------------------------------
# Versions and publishing


def _listing(root) -> list:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs + [""])


@pytest.mark.slow
def test_next_version_is_published_atomically_and_verified(tiny_trained_run, tmp_path):
    base = tmp_path / "exports" / "measure_vae"
    (base / "3").mkdir(parents=True)
    (base / "3" / "saved_model.pb").write_bytes(b"")
    (base / "notes").mkdir()
    path = export.export_run(str(tiny_trained_run("measure_vae")), str(base))  # verify=True: reload + warmup
    assert path == str(base / "4")
    assert sorted(os.listdir(base)) == ["3", "4", "notes"]  # no temporary folder left behind
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700: other users can read it
    assert export.existing_versions(str(base)) == [3, 4]


@pytest.mark.slow
def test_verification_catches_what_only_tf_serving_would_see(tiny_trained_run, tmp_path, monkeypatch):
    """Tracking the Keras model instead of the variables the traced functions capture gives a SavedModel
    that tf.saved_model.load runs but TF-Serving's loader leaves uninitialised: publishing must refuse it."""
    from musicvae_xai.serving import graph

    original = graph.ServingModule.__init__

    def naive(self, model, sample_controls=None):
        original(self, model, sample_controls)
        del self.captured_variables
        self.keras_model = model

    monkeypatch.setattr(graph.ServingModule, "__init__", naive)
    base = tmp_path / "m"
    with pytest.raises(export.ExportError, match="signature '.*' fails: .*(uninitialized|not exist|Could not find)"):
        export.export_run(str(tiny_trained_run("measure_vae")), str(base))
    assert not base.exists()


def test_existing_version_is_refused_and_nothing_changes(tiny_export, tiny_trained_run):
    base = str(tiny_export("measure_vae"))
    before = _listing(base)
    with pytest.raises(export.ExportError, match=r"1 already exists; versions are never overwritten"):
        export.export_run(str(tiny_trained_run("measure_vae")), base, version=1)
    assert _listing(base) == before


def test_resolve_version_rules(tmp_path):
    assert export.resolve_version(str(tmp_path / "absent")) == 1
    (tmp_path / "m" / "2").mkdir(parents=True)
    (tmp_path / "m" / "10").mkdir()
    (tmp_path / "m" / "x").mkdir()
    assert export.resolve_version(str(tmp_path / "m")) == 11
    assert export.resolve_version(str(tmp_path / "m"), 3) == 3
    with pytest.raises(export.ExportError, match="positive"):
        export.resolve_version(str(tmp_path / "m"), 0)
    (tmp_path / "f").write_text("")
    with pytest.raises(export.ExportError, match="not a directory"):
        export.resolve_version(str(tmp_path / "f"))


def test_run_without_checkpoint_is_refused_and_nothing_written(tmp_path):
    run_dir = tmp_path / "run"
    RunConfig(hidden_size=16, latent_dim=4).save(str(run_dir))
    base = tmp_path / "exports" / "m"
    with pytest.raises(export.ExportError, match=f"{run_dir}: no checkpoint found"):
        export.export_run(str(run_dir), str(base))
    assert not (tmp_path / "exports").exists()
    with pytest.raises(ConfigError, match="no saved configuration"):
        export.export_run(str(tmp_path / "nothing"), str(base))
    assert not (tmp_path / "exports").exists()


def test_failed_publish_leaves_no_trace(tmp_path):
    def broken(tmp):
        open(os.path.join(tmp, "saved_model.pb"), "wb").close()
        raise OSError("disk full")

    base = tmp_path / "exports" / "nested" / "m"
    with pytest.raises(export.ExportError, match=rf"^writing the export to {base}/\.tmp-1-\w+ failed: disk full; "
                                                 "nothing published$"):
        export.publish(str(base), 1, broken)
    assert os.listdir(tmp_path) == []  # the folders made for the export base are gone too
    (tmp_path / "keep").mkdir()
    with pytest.raises(export.ExportError, match="disk full; nothing published"):
        export.publish(str(tmp_path / "keep"), 1, broken)
    assert os.listdir(tmp_path / "keep") == []  # an existing base stays, empty


def test_publish_never_replaces_a_version_that_appears_meanwhile(tmp_path):
    base = tmp_path / "m"

    def racing(tmp):
        os.makedirs(base / "1")
        (base / "1" / "saved_model.pb").write_bytes(b"other")

    with pytest.raises(export.ExportError, match="appeared while exporting; not overwritten"):
        export.publish(str(base), 1, racing)
    assert (base / "1" / "saved_model.pb").read_bytes() == b"other"
    assert sorted(os.listdir(base)) == ["1"]


def test_cli_refuses_with_one_line(tmp_path):
    run_dir = tmp_path / "run"
    RunConfig(hidden_size=16, latent_dim=4).save(str(run_dir))
    out = subprocess.run([sys.executable, "-m", "musicvae_xai.cli.export", f"--run_dir={run_dir}",
                          f"--export_base={tmp_path / 'e' / 'm'}"], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode != 0
    assert f"error: {run_dir}: no checkpoint found" in out.stderr
    assert not (tmp_path / "e").exists()
