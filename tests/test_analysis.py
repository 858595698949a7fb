"""Analysis (musicvae_xai.analysis: figures, report, command line) on tiny trained runs."""

import html
import html.parser
import json
import os
import pathlib
import subprocess
import sys

import matplotlib.image
import mido
import numpy as np
import pytest

from musicvae_xai.analysis import figures
from musicvae_xai.analysis.report import (AnalysisError, AnalysisOptions, _Analysis, pick_measure,
                                          prepare_output_dir, run_analysis)
from musicvae_xai.controls import ATTRIBUTE_INPUT, LATENT_DIM, Control
from musicvae_xai.explain import Encoding, Explainer
from musicvae_xai.representation import Vocabulary

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
MODELS = ["measure_vae", "adversarial_vae"]
SMALL = AnalysisOptions(steps=3, grid=3, surface_measures=2, curve_measures=2, max_measures=200, seed=1)


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])


@pytest.fixture(scope="module", params=MODELS)
def analysed(request, tiny_trained_run, tmp_path_factory):
    run_dir = tiny_trained_run(request.param)
    out = tmp_path_factory.mktemp(f"analysis_{request.param}")
    return run_dir, out, run_analysis(str(run_dir), str(out), SMALL)


def test_every_figure_and_midi_file_is_written(analysed):
    run_dir, out, manifest = analysed
    controls = manifest["controls"]
    c = len(controls)
    kinds = [f["kind"] for f in manifest["figures"]]
    assert kinds.count("traversal") == c
    assert kinds.count("surface") == c * (c - 1) // 2
    assert kinds.count("distribution") == 1
    latent = [ctrl for ctrl in controls if ctrl["kind"] == "latent_dim"]
    assert kinds.count("scatter") == (1 if latent else 0)
    for f in manifest["figures"]:
        image = matplotlib.image.imread(out / f["file"])
        assert image.shape[0] > 200 and image.shape[1] > 300, f["file"]
        assert f["caption"] and f["title"]
    for ctrl in controls:
        assert (out / f"traversal_{ctrl['attribute']}.png").exists()
    assert len(manifest["midi"]) == c * (SMALL.steps + 1)
    whole = mido.MidiFile(out / "midi" / f"traversal_{controls[0]['attribute']}.mid")
    assert 0 < whole.length <= (SMALL.steps + 1) * 2.0 + 0.01       # 4 beats at 120 qpm each
    assert all((out / m).exists() for m in manifest["midi"])
    assert json.loads((out / "figures.json").read_text()) == json.loads(json.dumps(manifest))
    assert manifest["run_dir"] == str(run_dir)


def test_index_shows_every_figure_with_its_caption(analysed):
    _, out, manifest = analysed
    page = (out / "index.html").read_text()
    text = html.unescape(page)
    parser = _Images()
    parser.feed(page)
    assert parser.images == [f["file"] for f in manifest["figures"]]
    for f in manifest["figures"]:
        assert f["caption"] in text
    for s in manifest["skipped"]:
        assert s["reason"] in text
    assert all((out / link).exists() for link in parser.links)


def test_adversarial_run_says_why_a_figure_is_missing(analysed):
    _, _, manifest = analysed
    if all(c["kind"] == "latent_dim" for c in manifest["controls"]):
        assert manifest["skipped"] == []
    else:
        assert [s["title"] for s in manifest["skipped"]] == ["Regularised against free latent dims"]
        assert "decoder inputs" in manifest["skipped"][0]["reason"]


def test_traversal_from_a_midi_file(tiny_trained_run, tmp_path):
    run_dir = tiny_trained_run("measure_vae")
    ex = Explainer.from_run_dir(run_dir)
    v = ex.vocabulary
    tokens = np.full((2, 24), v.hold_id, np.int32)
    tokens[:, ::3] = v.encode([60, 62, 64, 65, 67, 65, 64, 62])
    midi = ex.write_midi(tokens, tmp_path / "tune.mid")
    options = AnalysisOptions(**{**SMALL.__dict__, "input_file": str(midi), "input_bar_number": 2})
    manifest = run_analysis(str(run_dir), str(tmp_path / "out"), options)
    assert manifest["traversal_input"] == "bar 2 of tune.mid"
    first = mido.MidiFile(tmp_path / "out" / "midi" / f"traversal_{manifest['controls'][0]['attribute']}.mid")
    onsets = [m.note for m in first if m.type == "note_on" and m.velocity > 0]
    assert onsets[:8] == [60, 62, 64, 65, 67, 65, 64, 62]     # the input measure comes first


def test_output_dir_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(AnalysisError, match=f"output_dir {target} exists and is a file"):
        prepare_output_dir(str(target))
    with pytest.raises(AnalysisError, match="cannot create"):
        prepare_output_dir(str(target / "below"))
    assert prepare_output_dir(str(tmp_path / "new")) == str(tmp_path / "new")
    assert (tmp_path / "new" / "midi").is_dir()


def test_bad_options_are_refused():
    with pytest.raises(AnalysisError, match="steps must be at least 2"):
        AnalysisOptions(steps=1).validate()
    with pytest.raises(AnalysisError, match="qpm must be positive"):
        AnalysisOptions(qpm=0).validate()


def test_pick_measure_prefers_measures_with_notes():
    v = Vocabulary()
    tokens = np.full((6, 24), v.hold_id, np.int32)
    tokens[:, 0] = v.rest_id
    tokens[4, ::4] = v.encode([60, 62, 64, 65, 67, 69])
    tokens[5, ::4] = v.encode([60, 62, 64, 65, 67, 69])
    tokens[5, -1] = v.end_id                               # padded: not picked
    assert {pick_measure(tokens, v, seed) for seed in range(10)} == {4}
    assert pick_measure(tokens[:4], v, 0) in range(4)      # none qualifies: any


def test_regularised_vs_free_is_skipped_with_a_reason(tiny_trained_run, tmp_path):
    ex = Explainer.from_run_dir(tiny_trained_run("measure_vae"))
    analysis = _Analysis(ex, str(tmp_path), SMALL)
    n, k = 10, len(ex.attribute_names)
    tokens = np.full((n, 24), ex.vocabulary.hold_id, np.int32)
    only_regularised = Encoding(tokens, np.zeros((n, k)), np.zeros((n, k)), np.ones((n, k)), None)
    analysis.regularised_vs_free(only_regularised)
    assert "there is no free dim" in analysis.skipped[-1]["reason"]
    analysis.controls = [Control("note_density", "note_density", ATTRIBUTE_INPUT, 0, 0.0, 1.0)]
    analysis.regularised_vs_free(only_regularised)
    assert "no control of this model is a latent dim" in analysis.skipped[-1]["reason"]
    assert analysis.figures == []


def test_traversal_figure_from_plain_arrays(tmp_path):
    v = Vocabulary()
    tokens = np.full((5, 24), v.hold_id, np.int32)
    for s in range(5):
        tokens[s, :: 6 - s] = v.encode([60 + s])[0]
    axis = Control("z[2]", "note_density", LATENT_DIM, 2, -4.0, 4.0)
    path = figures.traversal_figure(str(tmp_path / "t.png"), v, axis, np.linspace(-4, 4, 5), tokens, tokens[0],
                                    "note_density", np.linspace(0.1, 0.5, 5), 0.2, 0.3,
                                    np.linspace(0.1, 0.5, 5), np.full(5, 0.05), 7)
    assert matplotlib.image.imread(path).shape[2] in (3, 4)
    assert figures.attribute_label("note_density") == "note density (onsets / 24 ticks)"
    assert figures.pitch_name(60) == "C4" and figures.pitch_name(61) == "C#4"
    assert "latent dim for note density" in axis.label


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "musicvae_xai.analysis", *args], capture_output=True, text=True,
                          env=ENV, cwd=REPO, timeout=600)


def test_cli_refuses_an_output_dir_that_is_a_file(tmp_path):
    target = tmp_path / "file.png"
    target.write_text("x")
    proc = run_cli(f"--run_dir={tmp_path}", f"--output_dir={target}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: output_dir {target} exists and is a file, not a folder"]


@pytest.mark.slow
def test_cli_writes_the_index(tiny_trained_run, tmp_path):
    out = tmp_path / "analysis"
    proc = run_cli(f"--run_dir={tiny_trained_run('measure_vae')}", f"--output_dir={out}", "--steps=3", "--grid=3",
                   "--surface_measures=2", "--curve_measures=2", "--max_measures=100")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"open {out / 'index.html'}" in proc.stdout
    manifest = json.loads((out / "figures.json").read_text())
    assert all((out / f["file"]).exists() for f in manifest["figures"])
