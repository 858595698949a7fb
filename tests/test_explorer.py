"""The explorer's server: model metadata, seeds, the JSON API, uploads, MIDI, and a model server that
fails (Flask test client on the tiny exports of both models; TF-Serving through the REST double)."""

import io
import json

import numpy as np
import pytest

pytest.importorskip("flask")

from musicvae_xai import attributes as attrs  # noqa: E402
from musicvae_xai.explorer import model_info as mi  # noqa: E402
from musicvae_xai.explorer.app import create_app  # noqa: E402
from musicvae_xai.controls import ATTRIBUTE_INPUT, LATENT_DIM, Control  # noqa: E402
from musicvae_xai.datasets.sources import GENRES, genre  # noqa: E402
from musicvae_xai.explorer.data import load_music_data, piece_title, read_upload  # noqa: E402
from musicvae_xai.explorer.engine import Explorer  # noqa: E402
from musicvae_xai.representation import Vocabulary, measures_to_sequence  # noqa: E402

MODELS = ("measure_vae", "adversarial_vae")


def _measure(vocab: Vocabulary, pitches=(60, 62, 64, 65, 67, 69, 71, 72)) -> list:
    """Eight eighth notes (ids of ``vocab``)."""
    items = []
    for p in pitches:
        items += [p, "hold", "hold"]
    return vocab.encode(items).tolist()


@pytest.fixture(scope="module")
def explorers(tiny_export):
    """model -> (Explorer with its data loaded, Flask test client, LocalModel)."""
    from musicvae_xai.serving.local import LocalModel

    out = {}

    def get(model: str):
        if model not in out:
            client = LocalModel(str(tiny_export(model)))
            info = mi.model_info(client)
            ex = Explorer(client, info, lambda: load_music_data(info.config, info.vocabulary, train_limit=300))
            ex.start_loading(background=False)
            assert ex.status()["state"] == "ready", ex.status()
            out[model] = (ex, create_app(ex, "test backend").test_client(), client)
        return out[model]

    return get


# ---------------------------------------------------------------------------------------------------
# Model metadata


@pytest.mark.parametrize("model", MODELS)
def test_model_info_from_assets(explorers, model):
    ex, web, _ = explorers(model)
    info = web.get("/api/model").get_json()
    assert info["model"] == model and info["source"] == "assets"
    assert [a["name"] for a in info["attributes"]] == list(attrs.DEFAULT_FOUR)
    assert len(info["controls"]) == 4 and info["pairs"] == [[0, 1], [2, 3]]
    if model == "measure_vae":
        assert not info["needs_controls"] and info["initial_controls"] is None
        assert [c["name"] for c in info["controls"]] == ["z[0]", "z[1]", "z[2]", "z[3]"]
        assert info["controls"][2]["label"] == "note density (z[2])"  # the attribute first
    else:
        assert info["needs_controls"] and len(info["initial_controls"]) == 4
        assert all(c["kind"] == "attribute_input" and c["low"] < c["high"] for c in info["controls"])
    assert info["vocabulary"]["size"] == ex.vocab.size
    # the page names the model by its training music (a dataset the registry does not know: no words)
    assert info["dataset"] in GENRES and info["genre"] == GENRES[info["dataset"]]
    assert genre("irish") == "Irish dance tunes" and genre("my_own_tunes") == genre(None) == ""


@pytest.mark.parametrize("model", MODELS)
def test_model_info_inferred_from_signatures(explorers, model):
    _, _, client = explorers(model)
    info = mi.from_signatures(client.metadata())
    assert info.source == "signatures" and info.attribute_names == attrs.DEFAULT_FOUR
    assert info.needs_controls == (model == "adversarial_vae")
    assert info.latent_dim == client.assets["export"]["latent_dim"]
    wrong = json.loads(json.dumps(client.metadata()))
    wrong["signatures"]["decode"]["outputs"]["probabilities"]["shape"] = [-1, 24, 50]
    with pytest.raises(mi.ModelInfoError, match="--assets"):
        mi.from_signatures(wrong)
    with pytest.raises(mi.ModelInfoError, match="do not match"):
        mi.from_assets(client.assets, wrong)


def test_attributes_are_served_with_musical_units(explorers):
    """Units and descriptions come from attributes.PRESENTATION; shown value = raw value * scale."""
    _, web, _ = explorers("measure_vae")
    shown = {a["name"]: a for a in web.get("/api/model").get_json()["attributes"]}
    assert shown["note_density"]["unit"] == "notes per bar" and shown["note_density"]["scale"] == 24
    assert shown["note_range"]["unit"] == "semitones" and shown["note_range"]["scale"] == 26
    assert shown["average_interval_jump"]["unit"] == "semitones" and shown["average_interval_jump"]["scale"] == 1
    assert shown["rhythmic_complexity"]["unit"] == "" and shown["rhythmic_complexity"]["display_range"] == [0, 1]
    assert "0..1" in shown["rhythmic_complexity"]["description"]
    for a in shown.values():
        assert a["description"] and a["raw_unit"] == attrs.LABELS[a["name"]][1]
    # the scales turn raw values into the units they name: a bar of 8 eighth notes over an octave
    vocab = Vocabulary()
    tokens = np.array([_measure(vocab)])
    raw = dict(zip(attrs.DEFAULT_FOUR, attrs.compute(tokens, vocab)[0], strict=False))
    assert raw["note_density"] * shown["note_density"]["scale"] == pytest.approx(8)
    assert raw["note_range"] * shown["note_range"]["scale"] == pytest.approx(12)
    assert raw["average_interval_jump"] * shown["average_interval_jump"]["scale"] == pytest.approx(12 / 7)
    assert set(attrs.PRESENTATION) == set(attrs.ATTRIBUTE_NAMES)
    assert mi.attribute_info("contour")["display_range"] == [-26.0, 26.0]


def test_controls_are_named_by_their_attribute_first():
    latent = Control("z[0]", attrs.RHYTHMIC_COMPLEXITY, LATENT_DIM, 0, -4.0, 4.0).page_dict()
    assert latent["label"] == "rhythmic complexity (z[0])" and latent["attribute_label"] == "rhythmic complexity"
    decoder_input = Control(attrs.NOTE_RANGE, attrs.NOTE_RANGE, ATTRIBUTE_INPUT, 1, 0.0, 1.0).page_dict()
    assert decoder_input["label"] == "note range" and decoder_input["index"] == 1
    assert Control.from_dict({**decoder_input, "unknown": 1}) == Control(attrs.NOTE_RANGE, attrs.NOTE_RANGE,
                                                                          ATTRIBUTE_INPUT, 1, 0.0, 1.0)


def test_read_assets_refuses_a_folder_without_export(tmp_path):
    with pytest.raises(mi.ModelInfoError, match="no SavedModel"):
        mi.read_assets(str(tmp_path))


def test_default_pairs():
    assert mi.default_pairs(1) == [] and mi.default_pairs(2) == [[0, 1]]
    assert mi.default_pairs(5) == [[0, 1], [2, 3], [4, 0]]


def test_piece_title():
    assert piece_title("embedded/oneills1850_common_time_1.abc#0:X3") == "oneills1850_common_time_1 #0 X3"


# ---------------------------------------------------------------------------------------------------
# Page and API


def test_page_and_static_files(explorers):
    _, web, _ = explorers("measure_vae")
    page = web.get("/")
    assert page.status_code == 200 and b'src="/static/main.js"' in page.data
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name in ("main.js", "api.js", "audio.js", "pads.js", "panels.js", "pianoroll.js", "explorer.css",
                 "favicon.svg"):
        assert web.get(f"/static/{name}").status_code == 200, name
    assert web.get("/static/../app.py").status_code == 404
    assert web.get("/static/%2e%2e/app.py").status_code == 404
    missing = web.get("/api/nothing")
    assert missing.status_code == 404 and "error" in missing.get_json()


@pytest.mark.parametrize("model", MODELS)
def test_seeds_encode_decode_roundtrip(explorers, model):
    ex, web, client = explorers(model)
    seeds = web.get("/api/seeds").get_json()
    assert seeds["status"]["state"] == "ready" and seeds["name"].startswith("embedded")
    tokens = seeds["pieces"][0]["tokens"][0]
    assert len(tokens) == 24 and max(tokens) < ex.vocab.size
    enc = web.post("/api/encode", json={"tokens": tokens}).get_json()
    assert len(enc["z"]) == ex.info.latent_dim and len(enc["values"]) == 4
    np.testing.assert_allclose(enc["input"]["attributes"], attrs.compute(np.array([tokens]), ex.vocab)[0], atol=1e-4)
    dec = web.post("/api/decode", json={"z": enc["z"], "controls": enc["controls"]}).get_json()
    assert dec["tokens"] == enc["output"]["tokens"]  # deterministic
    want = client.decode(np.array([enc["z"]], np.float32),
                         None if enc["controls"] is None else np.array([enc["controls"]], np.float32))["tokens"][0]
    assert dec["tokens"] == want.tolist()
    np.testing.assert_allclose(dec["attributes"], attrs.compute(want[None], ex.vocab)[0], atol=1e-4)
    assert len(dec["confidence"]) == 24 and all(0 <= c <= 1 for c in dec["confidence"])
    notes = measures_to_sequence(want, ex.vocab, qpm=60).notes
    assert [n["pitch"] for n in dec["notes"]] == [n.pitch for n in notes]
    if model == "adversarial_vae":
        assert enc["values"] == pytest.approx(enc["controls"], abs=1e-4)
        assert [r["value"] for r in dec["requested"]] == pytest.approx(enc["controls"], abs=1e-3)
        assert web.post("/api/decode", json={"z": enc["z"]}).status_code == 400
    else:
        assert enc["controls"] is None and enc["values"] == pytest.approx(enc["z"][:4], abs=1e-4)
        for r, c in zip(dec["requested"], ex.info.controls, strict=False):
            assert r["source"] == f"linear fit on {c.name}" and -1.0 <= r["r2"] <= 1.0


def test_requested_follows_the_control_within_the_data_range(explorers):
    ex, web, _ = explorers("measure_vae")
    z = [0.0] * ex.info.latent_dim
    seen = []
    for v in (-4.0, 4.0):
        z[2] = v
        seen.append(web.post("/api/decode", json={"z": z}).get_json()["requested"][2]["value"])
    slope = ex._fits[2][0]
    assert (seen[1] - seen[0]) * slope >= 0
    measured = ex._data_attrs[:, 2]
    assert all(measured.min() - 1e-4 <= s <= measured.max() + 1e-4 for s in seen)


@pytest.mark.parametrize("body, message", [
    ({"z": [0.0, 1.0]}, "z must be a list of"),
    ({"z": "abc"}, "z must be a list of"),
    ([1, 2], "JSON object"),
])
def test_decode_rejects_bad_requests(explorers, body, message):
    _, web, _ = explorers("measure_vae")
    r = web.post("/api/decode", json=body)
    assert r.status_code == 400 and message in r.get_json()["error"]


def test_bad_tokens_and_non_finite_latents(explorers):
    ex, web, _ = explorers("measure_vae")
    r = web.post("/api/encode", json={"tokens": [ex.vocab.size] * 24})
    assert r.status_code == 400 and "vocabulary" in r.get_json()["error"]
    assert web.post("/api/encode", json={"tokens": [0] * 23}).status_code == 400
    assert web.post("/api/encode", json={"tokens": [0.5] * 24}).status_code == 400
    body = '{"z": [NaN, 0, 0, 0, 0, 0]}'
    r = web.post("/api/decode", data=body, content_type="application/json")
    assert r.status_code == 400 and "finite" in r.get_json()["error"]
    assert web.post("/api/decode", data="not json", content_type="application/json").status_code == 400


@pytest.mark.parametrize("model", MODELS)
def test_surface_matches_direct_decodes(explorers, model):
    ex, web, client = explorers(model)
    z = np.linspace(-0.5, 0.5, ex.info.latent_dim).astype(np.float32)
    controls = None if not ex.info.needs_controls else ex.info.initial_controls()
    r = web.post("/api/surface", json={"z": z.tolist(), "controls": controls, "x": 0, "y": 1, "grid": 5})
    assert r.status_code == 200
    s = r.get_json()
    values = np.array(s["attributes"])
    assert values.shape == (5, 5, 4)
    c0, c1 = ex.info.controls[0], ex.info.controls[1]
    assert s["x_values"][0] == pytest.approx(c0.low, abs=1e-5) and s["y_values"][-1] == pytest.approx(c1.high, abs=1e-5)
    # row j, column i: y = y_values[j], x = x_values[i]
    zz, cc = z.copy()[None], None if controls is None else np.array([controls], np.float32)
    for j, i in ((0, 4), (3, 1)):
        (zz if c0.kind == "latent_dim" else cc)[0, c0.index] = s["x_values"][i]
        (zz if c1.kind == "latent_dim" else cc)[0, c1.index] = s["y_values"][j]
        tokens = client.decode(zz, cc)["tokens"]
        np.testing.assert_allclose(values[j, i], attrs.compute(tokens, ex.vocab)[0], atol=1e-3)
    assert web.post("/api/surface", json={"z": z.tolist(), "controls": controls, "x": 0, "y": 9}).status_code == 400
    assert web.post("/api/surface", json={"z": z.tolist(), "controls": controls, "x": 0, "y": 1,
                                          "grid": 500}).status_code == 400


@pytest.mark.parametrize("model", MODELS)
def test_distribution_and_histograms(explorers, model):
    ex, web, _ = explorers(model)
    d = web.get("/api/distribution?x=0&y=1&bins=8").get_json()
    counts = np.array(d["counts"])
    assert counts.shape == (8, 8) and counts.sum() + d["outside"] == d["total"] == len(ex._coords)
    means = d["mean_attributes"]
    for j in range(8):
        for i in range(8):
            assert (means[j][i] is None) == (counts[j, i] == 0)
    h = web.get("/api/histograms").get_json()["histograms"]
    assert len(h) == 4 and all(len(row) == 40 for row in h)
    assert web.get("/api/distribution?x=0&y=one").status_code == 400


def test_no_data_means_no_seeds_but_decoding_works(explorers):
    ex, _, client = explorers("measure_vae")

    def broken():
        raise FileNotFoundError("no data here")

    other = Explorer(client, ex.info, broken)
    other.start_loading(background=False)
    web = create_app(other).test_client()
    status = web.get("/api/status").get_json()
    assert status["state"] == "error" and "no data here" in status["error"]
    assert web.get("/api/seeds").get_json()["pieces"] == []
    assert web.post("/api/decode", json={"z": [0.0] * ex.info.latent_dim}).status_code == 200
    r = web.get("/api/distribution?x=0&y=1")
    assert r.status_code == 400 and "no training data" in r.get_json()["error"]


# ---------------------------------------------------------------------------------------------------
# MIDI out, files in


def test_midi_download_is_a_valid_midi_file(explorers):
    import mido
    from note_seq import midi_io

    ex, web, _ = explorers("measure_vae")
    one = _measure(ex.vocab)
    r = web.post("/api/midi", json={"tokens": [one], "qpm": 120})
    assert r.status_code == 200 and r.mimetype == "audio/midi"
    assert 'filename="musicvae_measure.mid"' in r.headers["Content-Disposition"]
    assert len(mido.MidiFile(file=io.BytesIO(r.data)).tracks) >= 1
    seq = midi_io.midi_to_note_sequence(r.data)
    assert [n.pitch for n in seq.notes] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert seq.total_time == pytest.approx(2.0)  # one 4/4 measure at 120 bpm
    phrase = web.post("/api/midi", json={"tokens": [one, one, one], "qpm": 60})
    seq = midi_io.midi_to_note_sequence(phrase.data)
    assert len(seq.notes) == 24 and seq.total_time == pytest.approx(12.0)
    assert "phrase_3_measures" in phrase.headers["Content-Disposition"]
    assert web.post("/api/midi", json={"tokens": [one], "qpm": 5000}).status_code == 400
    assert web.post("/api/midi", json={"tokens": [[0] * 24] * 65}).status_code == 400


def _midi_bytes(vocab, measures) -> bytes:
    from note_seq import midi_io

    buffer = io.BytesIO()
    midi_io.note_sequence_to_pretty_midi(measures_to_sequence(np.array(measures), vocab, qpm=100)).write(buffer)
    return buffer.getvalue()


def test_upload_midi_gives_its_measures(explorers):
    ex, web, _ = explorers("measure_vae")
    m1, m2 = _measure(ex.vocab), _measure(ex.vocab, (72, 71, 69, 67, 65, 64, 62, 60))
    data = _midi_bytes(ex.vocab, [m1, m2])
    r = web.post("/api/upload", data={"file": (io.BytesIO(data), "tune.mid")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_json()
    got = r.get_json()
    assert got["name"] == "tune.mid" and got["bar_numbers"] == [1, 2] and got["shift"] == 0
    assert got["measures"]["tokens"] == [m1, m2]
    assert len(got["measures"]["notes"][1]) == 8


def test_upload_transposes_into_the_model_range():
    vocab = Vocabulary(55, 84)
    wide = Vocabulary(0, 127)
    low = wide.encode([40, "hold", "hold", "hold", "hold", "hold", 43] + ["hold"] * 17)
    result = read_upload("low.mid", _midi_bytes(wide, [low]), vocab)
    assert result["shift"] == 24
    assert vocab.decode(result["tokens"][0])[0] == 64


def test_upload_musicxml(explorers, tmp_path):
    import music21

    ex, web, _ = explorers("measure_vae")
    s = music21.stream.Stream([music21.meter.TimeSignature("4/4")])
    for name in ("C5", "D5", "E5", "F5", "G5", "A5", "B5", "C6"):
        s.append(music21.note.Note(name, quarterLength=0.5))
    path = s.write("musicxml", fp=str(tmp_path / "tune.musicxml"))
    data = open(path, "rb").read()
    r = web.post("/api/upload", data={"file": (io.BytesIO(data), "tune.musicxml")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_json()
    notes = r.get_json()["measures"]["notes"][0]
    assert [n["pitch"] for n in notes] == [72, 74, 76, 77, 79, 81, 83, 84]


@pytest.mark.parametrize("name, data, message", [
    ("song.txt", b"hello", "unsupported file type"),
    ("song.mid", b"", "empty"),
    ("song.mid", b"MThd this is not really midi", "song.mid"),
    ("song.musicxml", b"<not-xml", "song.musicxml"),
])
def test_upload_rejects_bad_files(explorers, name, data, message):
    _, web, _ = explorers("measure_vae")
    r = web.post("/api/upload", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    assert r.status_code == 400
    error = r.get_json()["error"]
    assert message in error and "/tmp" not in error and "explorer-upload" not in error


def test_upload_is_size_limited_and_needs_a_file(explorers):
    ex, _, _ = explorers("measure_vae")
    web = create_app(ex, max_upload_bytes=1024).test_client()
    r = web.post("/api/upload", data={"file": (io.BytesIO(b"x" * 5000), "big.mid")}, content_type="multipart/form-data")
    assert r.status_code == 413 and "too large" in r.get_json()["error"]
    r = web.post("/api/upload", data={}, content_type="multipart/form-data")
    assert r.status_code == 400 and "'file'" in r.get_json()["error"]


# ---------------------------------------------------------------------------------------------------
# Against TF-Serving (the REST double), including a slow and an unreachable server


@pytest.fixture(scope="module")
def rest_server(serving_backend):
    from serving_doubles import RestDouble

    with RestDouble(serving_backend) as server:
        yield server


@pytest.mark.parametrize("model", MODELS)
def test_rest_backend_matches_in_process(explorers, rest_server, tiny_export, model):
    from musicvae_xai.explorer.server import make_explorer

    local, local_web, _ = explorers(model)
    remote, backend = make_explorer(serving_url=rest_server.url, model=model, assets=str(tiny_export(model)),
                                    load_data=False)
    assert "TF-Serving REST" in backend and remote.info.controls == local.info.controls
    web = create_app(remote, backend).test_client()
    assert web.get("/api/status").get_json()["state"] == "none"
    z = np.linspace(-1, 1, local.info.latent_dim).tolist()
    body = {"z": z, "controls": local.info.initial_controls()}
    got = web.post("/api/decode", json=body).get_json()
    want = local_web.post("/api/decode", json=body).get_json()
    assert got["tokens"] == want["tokens"] and got["attributes"] == want["attributes"]
    inferred, _ = make_explorer(serving_url=rest_server.url, model=model, load_data=False)
    assert inferred.info.source == "signatures"
    assert [c.attribute for c in inferred.info.controls] == [c.attribute for c in local.info.controls]


def test_inferred_attribute_inputs_get_their_ranges_from_data(rest_server, embedded_cache_dir):
    from musicvae_xai.explorer.server import make_explorer

    ex, _ = make_explorer(serving_url=rest_server.url, model="adversarial_vae", cache_dir=str(embedded_cache_dir),
                          train_limit=200)
    assert ex.info.source == "signatures"
    assert [(c.low, c.high) for c in ex.info.controls] == [(0.0, 1.0)] * 4  # placeholders until calibrated
    ex.start_loading(background=False)
    assert ex.status()["state"] == "ready", ex.status()
    measured = ex._data_attrs
    for c in ex.info.controls:
        assert (c.low, c.high) == pytest.approx((measured[:, c.index].min(), measured[:, c.index].max()))
    page = create_app(ex).test_client().get("/api/model").get_json()
    assert page["controls"][3]["high"] == pytest.approx(float(measured[:, 3].max()), abs=1e-6)


def test_slow_or_unreachable_server_is_reported_and_the_app_keeps_working(explorers, serving_backend, tiny_export):
    import socket

    from musicvae_xai.explorer.server import make_explorer
    from musicvae_xai.serving.base import ServingUnavailableError
    from musicvae_xai.serving.rest import RestClient
    from serving_doubles import RestDouble

    local, _, _ = explorers("measure_vae")
    body = {"z": [0.0] * local.info.latent_dim}
    with RestDouble(serving_backend) as server:
        ex, backend = make_explorer(serving_url=server.url, model="measure_vae", assets=str(tiny_export("measure_vae")),
                                    timeout=30, retries=0, load_data=False)
        web = create_app(ex, backend).test_client()
        assert web.post("/api/decode", json=body).status_code == 200
        server.faults.fail_first = server.faults.requests + 1  # the next request: UNAVAILABLE (HTTP 503)
        r = web.post("/api/decode", json=body)
        assert r.status_code == 503 and "unreachable or too slow" in r.get_json()["error"]
        assert r.get_json()["kind"] == "unavailable"
        assert web.post("/api/decode", json=body).status_code == 200  # back again
    # the server is gone: a clear error, while everything that needs no model still answers
    ex.client.close()  # (the double's shutdown leaves keep-alive connections served; a real server's does not)
    r = web.post("/api/decode", json=body)
    assert r.status_code == 503 and server.url in r.get_json()["error"]
    assert web.get("/api/model").status_code == 200
    assert web.post("/api/midi", json={"tokens": [_measure(ex.vocab)]}).status_code == 200
    with socket.socket() as silent:  # accepts connections, never answers: a server that is too slow
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        slow = Explorer(RestClient(url, "measure_vae", timeout=0.5, retries=0), ex.info)
        r = create_app(slow).test_client().post("/api/decode", json=body)
        assert r.status_code == 503 and "no answer within 0.5 s" in r.get_json()["error"]
    # a server that is not there at start: one clear error
    with pytest.raises(ServingUnavailableError, match="cannot reach"):
        make_explorer(serving_url=url, model="m", timeout=0.5, retries=0, load_data=False)


def test_make_explorer_needs_one_source():
    from musicvae_xai.explorer.server import make_explorer

    with pytest.raises(ValueError, match="exactly one"):
        make_explorer()
    with pytest.raises(ValueError, match="exactly one"):
        make_explorer(export="x", serving_url="http://localhost:1")
    with pytest.raises(ValueError, match="--model"):
        make_explorer(serving_url="http://localhost:1")
    with pytest.raises(ValueError, match="seed_data"):
        make_explorer(export="x", seed_data="somewhere")
