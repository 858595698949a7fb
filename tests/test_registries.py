"""The registries: models, reader formats and metrics are declared once and every reader of
them follows; a new entry needs no change elsewhere. Fast: no training."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import pytest
from absl import flags

from musicvae_xai import metric_registry, settings
from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.models import registry as model_registry
from musicvae_xai.readers import registry as reader_registry
from musicvae_xai.settings import setting

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
#: The keys of a result.json's "metrics" before the registry (a running study writes these).
RESULT_METRIC_KEYS = {"num_measures", "token_accuracy", "note_accuracy", "token_accuracy_mean_z",
                      "note_accuracy_mean_z", "token_accuracy_bin_centres", "token_accuracy_train_mean", "baselines",
                      "kl_per_measure", "active_dims", "interpretability_mean",
                      "interpretability_intended_fraction", "interpretability", "mig", "sap", "scc", "modularity",
                      "modularity_mi_weighted", "controllability", "leakage", "independence_attributes",
                      "independence_matrix"}


@pytest.fixture
def scratch_entry():
    """Registers test entries and removes them afterwards (the registries are module-level tables)."""
    added = []

    def add(table: dict, key: str, value):
        table[key] = value
        added.append((table, key))
        return value

    yield add
    for table, key in added:
        table.pop(key, None)


def test_registries_import_without_tensorflow():
    code = ("import sys; import musicvae_xai.models.registry, musicvae_xai.readers.registry, "
            "musicvae_xai.metric_registry; bad = [m for m in ('tensorflow', 'music21') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV, timeout=120)


# ---------------------------------------------------------------------------------------------------
# Models


def test_model_registry_names_labels_and_controls():
    assert model_registry.names() == ("measure_vae", "adversarial_vae", "plain_vae")
    assert model_registry.labels() == {"measure_vae": "MeasureVAE", "adversarial_vae": "AdversarialVAE",
                                       "plain_vae": "PlainVAE"}
    assert [s.controls for s in model_registry.specs()] == ["latent_dim", "attribute_input", None]
    assert not model_registry.spec("plain_vae").has_controls and model_registry.spec("measure_vae").has_controls
    assert model_registry.label("some_old_model") == "some_old_model"
    with pytest.raises(model_registry.UnknownModelError, match="choose one of measure_vae, adversarial_vae, plain_vae"):
        model_registry.spec("vqvae")
    with pytest.raises(ValueError, match="already registered"):
        model_registry.register(model_registry.spec("plain_vae"))


def test_config_validation_and_study_read_the_model_registry(scratch_entry):
    with pytest.raises(ConfigError, match="unknown model 'vqvae'; choose one of"):
        RunConfig(model="vqvae").validate()
    RunConfig(model="plain_vae").validate()
    scratch_entry(model_registry._MODELS, "toy_vae",
                  model_registry.ModelSpec("toy_vae", "tests_toy:Toy", "ToyVAE", 9, None))
    RunConfig(model="toy_vae").validate()  # registered: valid, no other file changed
    from musicvae_xai.study import figures, report
    assert report.model_label("plain_vae") == "PlainVAE" and report.model_label("toy_vae") == "ToyVAE"
    assert figures.MODEL_ORDER[:3] == ("measure_vae", "adversarial_vae", "plain_vae")


def test_a_model_with_its_own_settings_gets_flags_checks_and_config_json(scratch_entry, tmp_path):
    beta = {f.name: f for f in dataclasses.fields(model_registry.MeasureVAESettings)}["beta"]
    toy = dataclasses.make_dataclass("ToySettings", [  # its own setting, and one it shares with MeasureVAE
        ("jitter", float, setting(0.25, "ToyVAE: a setting no other model has.", minimum=0.0, maximum=1.0)),
        ("beta", float, setting(beta.default, beta.metadata["help"]))])
    model_registry.register(model_registry.ModelSpec("toy_vae", "tests_toy:Toy", "ToyVAE", 9, None, settings=toy))
    for table, key in ((model_registry._SETTING_FIELDS, "jitter"), (model_registry._MODELS, "toy_vae")):
        scratch_entry(table, key, table[key])  # removed afterwards
    fv = flags.FlagValues()
    settings.define_flags(RunConfig, flag_values=fv)  # --jitter joins every other model's flags
    fv(["prog", "--model=toy_vae", "--jitter=0.5", "--lambda_d=0.3"])
    config = settings.from_flags(RunConfig, flag_values=fv).validate()
    assert config.jitter == 0.5 and config.beta == beta.default
    assert config.to_dict()["jitter"] == 0.5 and "lambda_d" not in config.to_dict()  # another model's: dropped
    assert RunConfig.load(config.save(str(tmp_path))) == config
    with pytest.raises(ConfigError, match=r"jitter must be in \[0, 1\], got 2"):
        RunConfig(model="toy_vae", jitter=2.0).validate()
    with pytest.raises(AttributeError, match="model 'measure_vae' has no setting 'jitter'"):
        RunConfig().jitter  # noqa: B018
    clash = dataclasses.make_dataclass("Clash", [("jitter", float, setting(0.9, "Other: another jitter."))])
    with pytest.raises(ValueError, match="setting 'jitter' is declared otherwise by another model"):
        model_registry.register(model_registry.ModelSpec("clash_vae", "tests_toy:Toy", "Clash", 10, None,
                                                         settings=clash))


def test_saved_configurations_of_every_model_still_load():
    """config.json of runs saved when every model's settings were one flat RunConfig (all keys, whatever
    the model) and the shipped pretrained model's load; the other models' keys are dropped."""
    saved = json.loads((REPO / "musicvae_xai" / "pretrained" / "measure_vae_irish" / "1" / "assets.extra"
                        / "config.json").read_text())
    assert {"lambda_d", "num_bins", "beta", "gamma"} <= set(saved)
    config = RunConfig.from_dict(saved).validate()
    assert config.model == "measure_vae" and config.beta == saved["beta"] and config.gamma == saved["gamma"]
    adversarial = {f.name for f in dataclasses.fields(model_registry.AdversarialVAESettings)}
    assert set(saved) - adversarial <= set(config.to_dict()) and not adversarial & set(config.to_dict())
    for model in model_registry.names():
        old = {**saved, "model": model, "lambda_d": 0.7, "beta": 0.3}
        loaded = RunConfig.from_dict(old).validate()
        now = loaded.to_dict()
        assert all(now[k] == (list(v) if isinstance(v, tuple) else v) for k, v in old.items() if k in now)
        own = model_registry.settings_class(model)
        assert type(loaded.model_settings) is own
    with pytest.raises(ConfigError, match="unknown configuration keys: bogus"):
        RunConfig.from_dict({**saved, "bogus": 1})


class _ToyModel:
    """Stands in for a MusicVAE subclass in a module the library has never heard of."""

    def __init__(self, config, data_statistics=None):
        self.config, self.data_statistics, self.built = config, data_statistics, False

    def build_all(self):
        self.built = True


def test_build_model_builds_any_registered_class(scratch_entry):
    from musicvae_xai.models.base import build_model

    scratch_entry(model_registry._MODELS, "toy_vae", model_registry.ModelSpec(
        "toy_vae", f"{__name__}:_ToyModel", "ToyVAE", 9, None, data_statistics=True))
    model = build_model(RunConfig(model="toy_vae"), data_statistics={"mean": [0.0]})
    assert isinstance(model, _ToyModel) and model.built and model.data_statistics == {"mean": [0.0]}
    base = (REPO / "musicvae_xai" / "models" / "base.py").read_text()
    assert "models.measure_vae" not in base and "models.adversarial_vae" not in base  # imports no model


# ---------------------------------------------------------------------------------------------------
# Reader formats


def test_reader_registry_gives_the_tables_it_replaced():
    from musicvae_xai import explain
    from musicvae_xai.explorer import data

    assert explain.READERS == {".mid": "midi", ".midi": "midi", ".xml": "musicxml", ".mxl": "musicxml",
                               ".musicxml": "musicxml", ".abc": "abc"}
    assert data.UPLOAD_TYPES == {".mid": "MIDI", ".midi": "MIDI", ".xml": "MusicXML", ".musicxml": "MusicXML",
                                 ".mxl": "MusicXML", ".abc": "ABC"}
    assert reader_registry.describe(upload_only=True) == \
        "a MIDI (.mid, .midi), MusicXML (.xml, .musicxml, .mxl) or ABC (.abc) file"
    assert [f.name for f in reader_registry.formats()] == ["midi", "musicxml", "abc", "symbtr", "pop909"]
    assert not reader_registry.get("pop909").upload_safe and reader_registry.for_path("x.MID").name == "midi"
    assert reader_registry.for_path("song.txt") is None  # SymbTr is read in datasets only
    with pytest.raises(reader_registry.UnknownFormatError, match="unknown reader 'wav'"):
        reader_registry.get("wav")


def test_explorer_page_takes_its_accept_list_from_the_registry():
    static = REPO / "musicvae_xai" / "explorer" / "static"
    html = (static / "index.html").read_text()
    assert 'id="upload-input" type="file" accept=""' in html  # nothing hard-coded
    assert '$("upload-input").accept = (m.upload_types || []).join(",")' in (static / "main.js").read_text()


def _toy_pieces(path, piece_id, folder, options):
    """A toy format: one line of MIDI pitches, each a quarter note, in 4/4."""
    from musicvae_xai.readers import ReaderError
    from musicvae_xai.readers.common import Bar, NoteEvent, make_sequence

    pitches = [int(p) for p in pathlib.Path(path).read_text().split()]
    if not pitches:
        raise ReaderError("empty_file")
    notes = [NoteEvent(p, float(i), float(i + 1)) for i, p in enumerate(pitches)]
    bars = [Bar(4.0 * b, 4.0, 4, 4) for b in range(-(-len(pitches) // 4))]
    return [(piece_id, make_sequence(notes, bars, piece_id=piece_id))]


def _toy_one(path, track=None, part_name="Soprano", tune=0):
    from musicvae_xai.readers.common import ReadResult

    (piece_id, sequence), = _toy_pieces(path, str(path), None, {})
    return ReadResult(sequence)


def test_a_new_reader_format_is_read_by_datasets_explain_and_uploads(tmp_path, scratch_entry):
    """Registering a format is all it takes: dataset sources, ``explain.read_source`` and the explorer's
    upload check (with its message) follow."""
    from musicvae_xai.datasets import sources
    from musicvae_xai.explain import read_source
    from musicvae_xai.explorer import data

    scratch_entry(reader_registry._FORMATS, "toy", reader_registry.ReaderFormat(
        "toy", "Toy", (".toy",), f"{__name__}:_toy_pieces", f"{__name__}:_toy_one", upload_safe=True))
    (tmp_path / "a.toy").write_text("60 62 64 65 67 69 71 72")
    (tmp_path / "empty.toy").write_text("")
    src = sources.Source("toys", "", ("*.toy",), "toy")
    ok = sources.parse_file((src, str(tmp_path), "a.toy", False))
    assert ok.reason is None and [p.measures.shape for p in ok.pieces] == [(2, 24)]
    empty = sources.parse_file((src, str(tmp_path), "empty.toy", False))
    assert empty.reason == "empty_file" and empty.pieces == []
    assert len(read_source(str(tmp_path / "a.toy")).sequence.notes) == 8
    assert reader_registry.describe(upload_only=True).endswith("ABC (.abc) or Toy (.toy) file")
    with pytest.raises(data.UploadError, match=r"upload a MIDI .* or Toy \(\.toy\) file"):
        data.read_upload("x.wav", b"RIFF", vocab=RunConfig().vocabulary)


# ---------------------------------------------------------------------------------------------------
# Metrics


def test_metric_registry_covers_the_result_json_keys():
    report = _report()
    from musicvae_xai.study.worker import summarize_evaluation

    summary = summarize_evaluation(report)
    assert set(summary) == RESULT_METRIC_KEYS
    assert summary["active_dims"] == 2 and summary["interpretability_mean"] == 0.5
    assert summary["controllability"] == 0.7 and summary["leakage"] == 0.1
    from musicvae_xai.study.results import METRIC_KEYS
    assert METRIC_KEYS == ("token_accuracy", "note_accuracy", "kl_per_measure", "interpretability_mean", "mig",
                           "sap", "scc", "modularity", "controllability", "leakage")
    assert [m.direction for m in metric_registry.metrics(table="independence")] == ["higher", "lower"]
    assert metric_registry.get("mig").format(None) == "-"
    assert metric_registry.get("kl_per_measure").format(1.0, "–", 4) == "1.0000"


def test_evaluation_table_lines_from_the_registry_are_unchanged(scratch_entry):
    from musicvae_xai.evaluation import format_report

    text = format_report(_report())
    assert "Disentanglement  MIG 0.100   SAP 0.200   SCC 0.300   modularity 0.400 (MI-weighted 0.450)" in text
    assert ("  controllability 0.700 (diagonal mean, higher is better), leakage 0.100 (off-diagonal mean, lower "
            "is better)") in text
    # a new metric on the disentanglement line: registered once, printed, summarised
    scratch_entry_metric = metric_registry.Metric("dci", "DCI", True, "a test metric", table="disentanglement",
                                                  table_label="DCI")
    metric_registry._METRICS.append(scratch_entry_metric)
    try:
        report = {**_report(), "dci": 0.25}
        assert "(MI-weighted 0.450)   DCI 0.250" in format_report(report)
        from musicvae_xai.study.worker import summarize_evaluation
        assert summarize_evaluation(report)["dci"] == 0.25
    finally:
        metric_registry._METRICS.remove(scratch_entry_metric)


def test_evaluation_table_of_a_model_without_controls():
    from musicvae_xai.evaluation import format_report

    report = _report()
    report["attribute_independence"] = {"controls": [], "attributes": ["note_range"], "values": [], "num_measures": 0,
                                        "matrix": [], "signed_matrix": [], "controllability": None, "leakage": None,
                                        "applicable": False}
    text = format_report(report)
    assert "Attribute independence: not applicable (this model has no controls to sweep)" in text
    assert "controllability" not in text.split("Attribute independence")[1]


def test_study_report_with_a_model_without_controls(tmp_path):
    """Result records of a plain VAE (controllability and leakage null) next to the old format's."""
    from musicvae_xai.study.report import build_markdown
    from musicvae_xai.study.worker import summarize_evaluation

    records = []
    for model, seed in (("measure_vae", 0), ("plain_vae", 0), ("plain_vae", 1)):
        report = _report()
        if model == "plain_vae":
            report["attribute_independence"].update(controllability=None, leakage=None, matrix=[], applicable=False)
        records.append({"status": "ok", "name": f"{model}-s{seed}", "metrics": summarize_evaluation(report),
                        "grid": {"model": model, "latent_dim": 8, "dataset": "irish", "attributes": ["note_range"],
                                 "seed": seed}, "flags": {}})
    text = build_markdown(records, [], {}, "figs", str(tmp_path))
    assert "### PlainVAE · irish · 1 attributes" in text and "### MeasureVAE · irish · 1 attributes" in text
    plain = text.split("### PlainVAE")[1].split("\n")
    row = next(line for line in plain if line.startswith("| 8 |"))
    assert row.endswith("| – | – |")  # controllability and leakage: not applicable


def _report() -> dict:
    """A small evaluation report with the keys the table and the summary read."""
    return {
        "run_dir": "runs/x", "model": "measure_vae", "latent_dim": 3, "dataset": "embedded", "split": "test",
        "num_measures": 10, "seed": 0, "attributes": ["note_range"], "baselines": None,
        "token_accuracy": 0.8, "note_accuracy": 0.2, "token_accuracy_mean_z": 0.81, "note_accuracy_mean_z": 0.21,
        "kl_per_measure": 3.0, "kl_per_dim": [1.0, 2.0, 0.0],
        "interpretability": {"per_attribute": [{"attribute": "note_range", "dim": 0, "r2": 0.5, "mi": 0.3,
                                                "intended_dim": 0, "is_intended": True}],
                             "mean": 0.5, "intended_fraction": 1.0},
        "mig": 0.1, "sap": 0.2, "scc": 0.3, "modularity": 0.4, "modularity_mi_weighted": 0.45,
        "mutual_information": [[0.3], [0.0], [0.0]],
        "attribute_independence": {"controls": [{"name": "z[0]", "attribute": "note_range", "kind": "latent_dim",
                                                 "index": 0, "low": -4.0, "high": 4.0}],
                                   "attributes": ["note_range"], "values": [[-4.0, 4.0]], "num_measures": 2,
                                   "matrix": [[0.7]], "signed_matrix": [[0.7]], "controllability": 0.7,
                                   "leakage": 0.1},
        "notes": [],
    }
