"""musicvae_xai.serving.models_config and the deployment files in serving/ (parsed with the serving protos)."""

import pathlib

import pytest
from google.protobuf import text_format

from musicvae_xai.serving import models_config as mc

SERVING = pathlib.Path(__file__).resolve().parents[1] / "serving"


def _fake_exports(root: pathlib.Path, layout: dict) -> pathlib.Path:
    for name, versions in layout.items():
        for v in versions:
            (root / name / str(v)).mkdir(parents=True)
            (root / name / str(v) / "saved_model.pb").write_bytes(b"")
    return root


def _parse(text: str):
    from tensorflow_serving.config import model_server_config_pb2
    return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())


def test_generated_config_parses_and_lists_every_exported_model(tmp_path):
    root = _fake_exports(tmp_path / "exports", {"measure_vae": [1, 2], "adversarial_vae": [3]})
    (root / "measure_vae" / ".tmp-3-abc").mkdir()    # an export in progress is not a version
    (root / "empty").mkdir()                          # no versions: not a model
    (root / "notes.txt").write_text("")
    out = tmp_path / "cfg" / "models.config"
    text = mc.write_models_config(str(root), str(out), policy="latest:2")
    assert out.read_text() == text
    config = _parse(text)
    models = {m.name: m for m in config.model_config_list.config}
    assert sorted(models) == ["adversarial_vae", "measure_vae"]
    assert models["measure_vae"].base_path == "/models/measure_vae"
    assert models["measure_vae"].model_platform == "tensorflow"
    assert models["measure_vae"].model_version_policy.latest.num_versions == 2
    assert mc.find_models(str(root)) == {"adversarial_vae": [3], "measure_vae": [1, 2]}


def test_version_policies_and_errors(tmp_path):
    root = _fake_exports(tmp_path, {"m": [1, 2]})
    cfg = _parse(mc.render(mc.build_config(mc.find_models(str(root)), "/srv", "specific:1,2")))
    m = cfg.model_config_list.config[0]
    assert list(m.model_version_policy.specific.versions) == [1, 2] and m.base_path == "/srv/m"
    cfg = _parse(mc.render(mc.build_config({"m": [1]}, policy="all")))
    assert cfg.model_config_list.config[0].model_version_policy.HasField("all")
    with pytest.raises(ValueError, match="has no version"):
        mc.build_config({"m": [1]}, policy="specific:4")
    for bad in ("latest:0", "newest", "specific:", "all:3"):
        with pytest.raises(ValueError, match="unknown version policy"):
            mc.parse_policy(bad)
    with pytest.raises(ValueError, match="no exported models"):
        mc.write_models_config(str(tmp_path / "m" / "1"), str(tmp_path / "x.config"))
    with pytest.raises(ValueError, match="no exported versions of other"):
        mc.write_models_config(str(root), str(tmp_path / "x.config"), models=["other"])
    with pytest.raises(FileNotFoundError):
        mc.find_models(str(tmp_path / "absent"))


def test_checked_in_models_config_parses_and_serves_both_models():
    config = _parse((SERVING / "models.config").read_text())
    models = {m.name: m for m in config.model_config_list.config}
    assert sorted(models) == ["adversarial_vae", "measure_vae"]
    for name, m in models.items():
        assert m.base_path == f"/models/{name}" and m.model_platform == "tensorflow"
        assert m.model_version_policy.WhichOneof("policy_choice") is not None


def _message_class(name: str, fields: list):
    """A proto3 message class built at run time: [(field, number, type, label, type_name)]."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FileDescriptorProto(name=f"{name}.proto", package="tensorflow.serving", syntax="proto3",
                                           dependency=["google/protobuf/wrappers.proto"])
    for message_name, message_fields in fields:
        msg = f.message_type.add(name=message_name)
        for field_name, number, ftype, label, type_name in message_fields:
            field = msg.field.add(name=field_name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{fields[-1][0]}"))


def test_batching_and_monitoring_files_parse_with_the_serving_schemas():
    """The messages of tensorflow_serving's session_bundle_config.proto (BatchingParameters) and
    monitoring_config.proto (MonitoringConfig), which the pip package does not ship, transcribed."""
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto as F

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    int64 = (F.TYPE_MESSAGE, opt, ".google.protobuf.Int64Value")
    batching_cls = _message_class("batching", [("BatchingParameters", [
        ("max_batch_size", 1, *int64), ("batch_timeout_micros", 2, *int64), ("max_enqueued_batches", 3, *int64),
        ("num_batch_threads", 4, *int64),
        ("thread_pool_name", 5, F.TYPE_MESSAGE, opt, ".google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, F.TYPE_INT64, rep, ""),
        ("pad_variable_length_inputs", 7, F.TYPE_BOOL, opt, "")])])
    batching = text_format.Parse((SERVING / "batching_parameters.txt").read_text(), batching_cls())
    sizes = list(batching.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[-1] == batching.max_batch_size.value  # TF-Serving's own rule
    assert batching.num_batch_threads.value >= 1
    monitoring_cls = _message_class("monitoring", [
        ("PrometheusConfig", [("enable", 1, F.TYPE_BOOL, opt, ""), ("path", 2, F.TYPE_STRING, opt, "")]),
        ("MonitoringConfig", [("prometheus_config", 1, F.TYPE_MESSAGE, opt, ".tensorflow.serving.PrometheusConfig")])])
    monitoring = text_format.Parse((SERVING / "monitoring.config").read_text(), monitoring_cls())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path.startswith("/monitoring/")


def test_compose_and_kubernetes_files_wire_ports_mounts_and_configs():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((SERVING / "docker-compose.yml").read_text())
    main = compose["services"]["tfserving"]
    assert main["image"].startswith("tensorflow/serving")
    assert {"8500:8500", "8501:8501"} <= set(main["ports"])
    assert "../exports:/models:ro" in main["volumes"] and "./:/config:ro" in main["volumes"]
    for service in compose["services"].values():
        for arg in service["command"]:
            if arg.startswith(("--model_config_file=", "--monitoring_config_file=", "--batching_parameters_file=")):
                assert (SERVING / arg.split("=", 1)[1].replace("/config/", "")).is_file(), arg
    batched = compose["services"]["tfserving-batched"]
    assert "--enable_batching=true" in batched["command"] and batched["profiles"] == ["batching"]
    # A batching server rejects traverse's scalar input, and the exports' warmup has a traverse request:
    # warmup must be off there, or every model load would fail.
    assert "--enable_model_warmup=false" in batched["command"]
    assert "--enable_model_warmup=true" in main["command"]
    deployment, service = list(yaml.safe_load_all((SERVING / "kubernetes.yaml").read_text()))
    assert deployment["kind"] == "Deployment" and deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    assert any(a.startswith("--model_config_file=/config/") for a in container["args"])
    assert service["kind"] == "Service" and {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
