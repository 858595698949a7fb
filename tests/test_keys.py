"""Staying in key: key estimation on real tunes, the masks, decoding with allowed tokens (the models,
the Runner, the Explainer on the pretrained export) and the explorer's API fields."""

import os

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai import keys, music_io, pretrained
from musicvae_xai.models.layers import MASKED_LOGIT, mask_logits
from musicvae_xai.representation import HOLD, REST, Vocabulary

VOCAB = Vocabulary()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUNES = os.path.join(ROOT, "musicvae_xai", "embedded_data", "oneills1850_common_time_1.abc")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "pretrained_irish_test.npz")
D_MAJOR = {2, 4, 6, 7, 9, 11, 1}


def _tune(index: int) -> np.ndarray:
    return music_io.read_file(TUNES, VOCAB, tune=index).tokens


@pytest.mark.parametrize("index, name", [
    (1, "D major"),        # "The Little Girl of my Heart", K:D
    (2, "G major"),        # K:G
    (5, "A mixolydian"),   # K:Amix: its G natural stays in the scale
    (14, "D minor"),       # K:Dm
])
def test_key_of_real_tunes(index, name):
    assert keys.estimate_key(_tune(index), VOCAB).name == name


def test_a_bar_keeps_its_own_notes_and_a_silent_bar_has_no_key():
    bar = VOCAB.encode([62, HOLD, 66, HOLD, 69, HOLD, 72, HOLD] + [HOLD] * 16)  # D F# A C: D mixolydian notes
    key = keys.estimate_key(bar, VOCAB)
    assert {2, 6, 9, 0} <= key.pitch_classes
    assert keys.out_of_key(bar[None], key, VOCAB) == (0, 4)
    with pytest.raises(ValueError, match="no note"):
        keys.estimate_key(VOCAB.encode([REST] + [HOLD] * 23), VOCAB)


def test_durations_weigh_the_histogram():
    bar = VOCAB.encode([62] + [HOLD] * 17 + [64] + [HOLD] * 5)  # D for 3 beats, E for one
    weights = keys.pitch_class_weights(bar, VOCAB)
    assert weights[2] == pytest.approx(3.0) and weights[4] == pytest.approx(1.0) and weights.sum() == pytest.approx(4.0)


@pytest.mark.parametrize("text, tonic, mode, name", [
    ("D major", 2, "major", "D major"), ("b minor", 11, "minor", "B minor"), ("Em", 4, "minor", "E minor"),
    ("F# mixolydian", 6, "mixolydian", "F# mixolydian"), ("Bb", 10, "major", "Bb major"),
    (" e  dorian ", 4, "dorian", "E dorian"), ("C#m", 1, "minor", "C# minor"),
])
def test_parse_key(text, tonic, mode, name):
    key = keys.parse_key(text)
    assert (key.tonic, key.mode, key.name, str(key)) == (tonic, mode, name, name)
    assert keys.parse_key(key) is key


@pytest.mark.parametrize("text", ["H major", "D majr", "", "D major minor", "x" * 500, 7])
def test_bad_key_names_are_one_line_errors(text):
    with pytest.raises(ValueError, match="key") as info:
        keys.parse_key(text)
    assert "\n" not in str(info.value) and len(str(info.value)) < 200


def test_mask_allows_exactly_the_scale_and_the_non_pitch_tokens():
    allowed = keys.allowed_tokens("D major", VOCAB)
    assert allowed.shape == (VOCAB.size,) and allowed.dtype == bool
    want = [p % 12 in D_MAJOR for p in range(VOCAB.min_pitch, VOCAB.max_pitch + 1)] + [True] * 4
    assert allowed.tolist() == want
    assert allowed[VOCAB.num_pitches:].all() and allowed[:VOCAB.num_pitches].sum() == 17  # of G3..C6
    rows = keys.allowed_rows(["D major", "Eb major"], 2, VOCAB)
    assert rows.shape == (2, VOCAB.size) and (rows[0] != rows[1]).any()
    with pytest.raises(ValueError, match="2 keys for 3 measures"):
        keys.allowed_rows(["D major", "G major"], 3, VOCAB)


def test_keep_in_key_takes_the_most_probable_allowed_token():
    probs = np.full((1, 24, VOCAB.size), 0.001, np.float32)
    probs[0, 1:, VOCAB.hold_id] = 0.5
    g_sharp, g, a = VOCAB.encode_item(68), VOCAB.encode_item(67), VOCAB.encode_item(69)
    probs[0, 0, [g_sharp, a, g]] = [0.9, 0.06, 0.04]
    plain = probs.argmax(-1)
    assert plain[0, 0] == g_sharp
    kept = keys.keep_in_key(probs, keys.allowed_tokens("D major", VOCAB))
    assert kept[0, 0] == a and (kept[0, 1:] == VOCAB.hold_id).all()
    assert keys.out_of_key(plain, "D major", VOCAB) == (1, 1) and keys.out_of_key(kept, "D major", VOCAB) == (0, 1)


def test_mask_logits_in_the_graph():
    logits = tf.constant([[3.0, 1.0, 2.0]])
    masked = mask_logits(logits, tf.constant([[False, True, True]]))
    assert masked.numpy().tolist() == [[MASKED_LOGIT, 1.0, 2.0]]
    assert mask_logits(logits, None) is logits


# ---------------------------------------------------------------------------------------------------
# The pretrained export


@pytest.fixture(scope="module")
def explainer():
    from musicvae_xai.explain import Explainer

    return Explainer.pretrained()


@pytest.fixture(scope="module")
def fixture_tokens():
    return np.load(FIXTURE)["tokens"][:64].astype(np.int32)


def test_every_token_allowed_decodes_as_the_signature(explainer, fixture_tokens):
    """The package's model code holding the export's weights decodes as the export's own signature."""
    enc = explainer.encode(fixture_tokens)
    everything = np.ones((len(enc), explainer.vocabulary.size), bool)
    np.testing.assert_array_equal(explainer.runner.decode(enc.z, None, everything), explainer.reconstruct(enc))


def test_reconstruction_in_key_has_no_note_out_of_key(explainer, fixture_tokens):
    enc = explainer.encode(fixture_tokens)
    key_list = [keys.estimate_key(row, explainer.vocabulary) for row in fixture_tokens]
    plain = explainer.reconstruct(enc)
    kept = explainer.reconstruct(enc, stay_in_key=True, key=key_list)
    assert keys.out_of_key(plain, key_list, explainer.vocabulary)[0] > 0
    out, notes = keys.out_of_key(kept, key_list, explainer.vocabulary)
    assert out == 0 and notes > 0.8 * keys.out_of_key(plain, key_list, explainer.vocabulary)[1]
    in_c = explainer.decode(enc.z, stay_in_key=True, key="C major")
    assert keys.out_of_key(in_c, "C major", explainer.vocabulary)[0] == 0


def test_stay_in_key_of_a_file_and_its_traversal(explainer, tmp_path):
    enc = explainer.encode_file(TUNES, tune=1)
    assert explainer.key_of(enc).name == "D major"
    tr = explainer.traverse(enc, "note_range", steps=5, stay_in_key=True)
    assert tr.key.name == "D major" and keys.out_of_key(tr.tokens, tr.key, explainer.vocabulary)[0] == 0
    plain = explainer.traverse(enc, "note_range", steps=5)
    assert plain.key is None and keys.out_of_key(plain.tokens, "D major", explainer.vocabulary)[0] > 0
    path = explainer.write_reconstruction(enc, tmp_path / "in_key.mid", stay_in_key=True)
    read = explainer.read_measures(path)
    assert keys.out_of_key(read.tokens, "D major", explainer.vocabulary)[0] == 0


def test_stay_in_key_argument_errors(explainer):
    z = np.zeros((1, explainer.config.latent_dim), np.float32)
    with pytest.raises(ValueError, match="needs key="):
        explainer.decode(z, stay_in_key=True)
    with pytest.raises(ValueError, match="only with stay_in_key=True"):
        explainer.decode(z, key="D major")
    with pytest.raises(ValueError, match="key 'Q major'"):
        explainer.decode(z, stay_in_key=True, key="Q major")
    with pytest.raises(ValueError, match="2 keys for 1 measures"):
        explainer.decode(z, stay_in_key=True, key=["D major", "G major"])


# ---------------------------------------------------------------------------------------------------
# The explorer's API


@pytest.fixture(scope="module")
def web():
    from musicvae_xai.explorer import create_app
    from musicvae_xai.explorer.engine import Explorer
    from musicvae_xai.explorer.model_info import model_info
    from musicvae_xai.serving.local import LocalModel

    client = LocalModel(pretrained.export_dir())
    return create_app(Explorer(client, model_info(client)), "test backend").test_client()


def test_explorer_names_the_key_and_decodes_in_it(web):
    tune = _tune(1)
    enc = web.post("/api/encode", json={"tokens": tune[3].tolist(), "context": tune.tolist()}).get_json()
    assert enc["key"] == "D major" and enc["output"]["key"] is None
    kept = web.post("/api/encode", json={"tokens": tune[3].tolist(), "context": tune.tolist(),
                                         "stay_in_key": True}).get_json()
    assert kept["output"]["key"] == "D major" and kept["z"] == enc["z"]
    outside = 0
    for value in (-3.0, -1.5, 1.5, 3.0):  # move note range and interval jump until a note leaves the key
        z = list(enc["z"])
        z[1], z[3] = value, -value
        plain = web.post("/api/decode", json={"z": z}).get_json()
        in_key = web.post("/api/decode", json={"z": z, "key": "D major"}).get_json()
        assert in_key["key"] == "D major" and plain["key"] is None
        assert all(n["pitch"] % 12 in D_MAJOR for n in in_key["notes"])
        assert len(in_key["confidence"]) == 24
        outside += sum(n["pitch"] % 12 not in D_MAJOR for n in plain["notes"])
    assert outside > 0
    surface = web.post("/api/surface", json={"z": enc["z"], "x": 0, "y": 1, "grid": 3, "key": "D major"})
    assert surface.status_code == 200 and len(surface.get_json()["attributes"]) == 3


@pytest.mark.parametrize("path, body, message", [
    ("/api/decode", {"key": "H major"}, "key 'H major'"),
    ("/api/decode", {"key": 5}, "a key must be a name"),
    ("/api/encode", {"stay_in_key": "yes"}, "stay_in_key must be true or false"),
    ("/api/encode", {"context": [[0] * 23]}, "context must be"),
])
def test_explorer_refuses_bad_key_fields(web, path, body, message):
    payload = {"z": [0.0] * 16, "tokens": _tune(1)[0].tolist(), **body}
    r = web.post(path, json=payload)
    assert r.status_code == 400 and message in r.get_json()["error"]


# ---------------------------------------------------------------------------------------------------
# The static site: the same keys and the same decoding in key in the browser


@pytest.mark.slow
def test_the_browser_estimates_the_same_keys_and_decodes_in_key_alike(explainer, fixture_tokens, tmp_path):
    from static_browser import chromium, open_site, wait_for

    from musicvae_xai.explorer.static_site import build_site

    site = str(tmp_path / "site")
    build_site(site)
    vocab = explainer.vocabulary
    rows = fixture_tokens.tolist()
    enc = explainer.encode(fixture_tokens)
    want_keys = [keys.estimate_key(row, vocab).name for row in fixture_tokens]
    want = explainer.decode(enc.z, stay_in_key=True, key="D major")
    with chromium() as browser, open_site(browser, site) as (page, errors):
        got = page.evaluate(
            """async ([rows, z]) => {
                 const keys = await import("./keys.js");
                 const m = window.staticExplorer.model;
                 const names = rows.map((r) => keys.estimateKey([r], m.vocabulary, m.meta.keys).name);
                 const dMajor = m.meta.keys.keys.find((k) => k.name === "D major");
                 const tokens = m.decode(z, null, false, keys.allowedTokens(dMajor, m.vocabulary)).tokens;
                 return {names, tokens};
               }""", [rows, enc.z.tolist()])
        page.check("#stay-in-key")
        wait_for(page, "document.querySelector('#output-roll').dataset.tokens !== undefined")
        shown = page.locator("#key-name").inner_text()
        decoded = [int(t) for t in page.locator("#output-roll").get_attribute("data-tokens").split(",")]
        assert not errors, errors
    assert got["names"] == want_keys
    assert (np.asarray(got["tokens"]) == want).all(axis=1).mean() >= 0.99
    assert keys.out_of_key(np.asarray(got["tokens"]), "D major", vocab)[0] == 0
    assert shown.startswith("(") and keys.out_of_key(np.asarray([decoded]), shown.strip("()"), vocab)[0] == 0
