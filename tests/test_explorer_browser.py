"""The explorer in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright): start
``python -m musicvae_xai.explorer`` on a tiny export, load the page, move a slider and a pad, check
that the decoded piano roll and the attribute read-out change, download MIDI, upload a file; and, as a
musician would, read the units and attribute-first names, upload a humanised MIDI file, move a slider and
read the downloaded file's tempo, track name and marker back with mido.

On the pretrained model, the musician's view (the default) shows no latent coordinates, model internals
or "Random z", the researcher toggle shows them, and no control is cut off at 1280 and 1920 px wide.

Set MUSICVAE_EXPLORER_SCREENSHOT=docs/explorer.png to also save the final page there (and the pretrained
model's page at each width beside it: docs/explorer_1280.png, docs/explorer_1920.png).
"""

import io
import json
import os
import time
from contextlib import contextmanager

import numpy as np
import pytest
from page_layout import Z_INDEX, clipped_controls, visible_text

from musicvae_xai.explorer.server import running_explorer

CHROMIUM = "/usr/bin/chromium"
MODELS = ("measure_vae", "adversarial_vae")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (CI installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright  # with Chromium present, a missing driver is an error

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@contextmanager
def explorer_server(export_dir: str, timeout: float = 240.0):
    """Runs the explorer CLI on a free port; yields its URL; stops it afterwards."""
    with running_explorer([f"--export={export_dir}", "--train_limit=300"], timeout) as url:
        yield url


def _wait(page, expression: str, timeout: float = 120.0) -> None:
    """Polls a JavaScript expression until it is true (page.wait_for_function would need the
    'unsafe-eval' that the page's Content-Security-Policy forbids)."""
    deadline = time.time() + timeout
    while not page.evaluate(expression):
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.1)


def _settle(page, timeout: float = 120.0) -> None:
    """Waits until the page has no request outstanding."""
    _wait(page, "document.body.dataset.busy === '0'", timeout)


def _snapshot(page) -> dict:
    return {"roll": page.locator("#output-roll").evaluate("c => c.toDataURL()"),
            "tokens": page.locator("#output-roll").get_attribute("data-tokens"),
            "readout": page.locator("#attr-table tbody").inner_text()}


def _vocabulary(export_dir):
    from musicvae_xai.representation import Vocabulary

    with open(os.path.join(export_dir, "1", "assets.extra", "vocabulary.json"), encoding="utf-8") as f:
        return Vocabulary.from_dict(json.load(f))


def _check_midi(data: bytes, tokens, vocab, qpm: float) -> None:
    """A parseable standard MIDI file with exactly the notes of ``tokens`` [M][24] at ``qpm``."""
    import mido
    from note_seq import midi_io

    from musicvae_xai.representation import measures_to_sequence

    assert data[:4] == b"MThd"
    assert mido.MidiFile(file=io.BytesIO(data)).tracks
    seq = midi_io.midi_to_note_sequence(data)
    want = measures_to_sequence(np.array(tokens), vocab, qpm=qpm)
    assert [n.pitch for n in seq.notes] == [n.pitch for n in want.notes]
    np.testing.assert_allclose([n.start_time for n in seq.notes], [n.start_time for n in want.notes], atol=0.01)
    assert seq.total_time <= len(tokens) * 4 * 60.0 / qpm + 1e-3


@pytest.mark.parametrize("model", MODELS)
def test_explorer_in_a_real_browser(browser, tiny_export, tmp_path, model):
    export_dir = str(tiny_export(model))
    vocab = _vocabulary(export_dir)
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    with explorer_server(export_dir) as url:
        page.goto(url)
        page.wait_for_selector("body[data-seed]", timeout=240_000)  # seeds loaded, the first one encoded
        _settle(page)
        assert page.locator("#sliders input[data-control]").count() == 4
        assert page.locator(".pad-canvas").count() == 2
        assert "ready" in page.locator("#data-status").get_attribute("class")
        before = _snapshot(page)
        assert before["tokens"] and len(before["tokens"].split(",")) == 24

        # a slider, to the far end of its range
        slider = page.locator('#sliders input[data-control="0"]')
        low, high = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
        now = float(slider.input_value())
        target = high if now < (low + high) / 2 else low
        slider.fill(str(target))
        _settle(page)
        assert float(slider.input_value()) == pytest.approx(target, abs=(high - low) / 100)
        after_slider = _snapshot(page)
        assert after_slider["readout"] != before["readout"]
        assert after_slider["roll"] != before["roll"]

        # the first pad: drag to the opposite corner of where the state sits
        pad = page.locator(".pad-canvas").first
        box = pad.bounding_box()
        y_slider = page.locator('#sliders input[data-control="1"]')
        y_before = float(y_slider.input_value())
        fx = 0.08 if target == high else 0.92
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * 0.06, steps=8)
        page.mouse.up()
        _settle(page)
        after_pad = _snapshot(page)
        assert float(y_slider.input_value()) != pytest.approx(y_before, abs=1e-6)
        assert float(slider.input_value()) != pytest.approx(target, abs=1e-6)
        assert after_pad["readout"] != after_slider["readout"]
        assert after_pad["roll"] != after_slider["roll"]
        assert "surface" in page.locator(".pad-background").first.input_value()

        # MIDI of the current measure
        with page.expect_download() as download:
            page.click("#download-measure")
        assert download.value.suggested_filename == "musicvae_measure.mid"
        tokens = [int(t) for t in after_pad["tokens"].split(",")]
        qpm = float(page.locator("#qpm").input_value())
        _check_midi(open(download.value.path(), "rb").read(), [tokens], vocab, qpm)

        # a phrase of two measures
        page.click("#add-phrase")
        slider.fill(str(low if target == high else high))
        _settle(page)
        second = [int(t) for t in _snapshot(page)["tokens"].split(",")]
        page.click("#add-phrase")
        assert "2 measures" in page.locator("#phrase-count").inner_text()
        with page.expect_download() as download:
            page.click("#download-phrase")
        _check_midi(open(download.value.path(), "rb").read(), [tokens, second], vocab, qpm)

        # sound: plays without errors
        page.click("#play-output")
        page.wait_for_timeout(300)

        # an uploaded MIDI file becomes the seed; a broken one gives a message on the page
        from note_seq import midi_io

        from musicvae_xai.representation import measures_to_sequence
        upload = tmp_path / "upload.mid"
        items = [67, "hold", "hold", 71, "hold", "hold"] * 4
        midi_io.sequence_proto_to_midi_file(measures_to_sequence(vocab.encode(items), vocab), str(upload))
        page.click("#tab-upload")
        page.set_input_files("#upload-input", str(upload))
        _wait(page, "(document.body.dataset.seed || '').startsWith('upload.mid')", 60)
        _settle(page)
        assert "1 usable 4/4 measure" in page.locator("#upload-info").inner_text()
        broken = tmp_path / "broken.mid"
        broken.write_bytes(b"MThd, but not really")
        page.set_input_files("#upload-input", str(broken))
        page.wait_for_selector(".error[data-key='upload']", timeout=60_000)
        assert "broken.mid" in page.locator(".error[data-key='upload']").inner_text()
        page.click(".error[data-key='upload'] button")
        page.click("#tab-data")
        _settle(page)

        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        target_png = os.environ.get("MUSICVAE_EXPLORER_SCREENSHOT")
        if target_png and model == "measure_vae":
            page.screenshot(path=target_png, full_page=True)
    assert not [e for e in errors if "upload" not in e and "400" not in e], errors
    page.close()


def _humanised_midi(path, qpm: float = 120.0, bars: int = 4, seed: int = 0) -> None:
    """A played-sounding melody written with mido: eighth and quarter notes whose onsets are jittered
    by up to +-20 ms and whose lengths are 60-98% of their slot, at ``qpm``, named and voiced as a flute."""
    import mido

    rng = np.random.default_rng(seed)
    tpq = 480
    seconds_to_ticks = tpq * qpm / 60.0
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="flute melody", time=0),
                            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(qpm), time=0),
                            mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0),
                            mido.Message("program_change", program=73, time=0)])
    events = []
    scale = [62, 64, 66, 67, 69, 71, 73, 74]
    for bar in range(bars):
        slots = [0.5] * 4 + [1.0] + [0.5] * 2 if bar % 2 else [0.5] * 8  # in beats, 4 per bar
        beat = 4.0 * bar
        for slot in slots:
            jitter = rng.uniform(-0.020, 0.020) * seconds_to_ticks
            start = max(0, int(round(beat * tpq + jitter)))
            end = int(round(beat * tpq + slot * tpq * rng.uniform(0.60, 0.98)))
            pitch = int(rng.choice(scale))
            events += [(start, 1, mido.Message("note_on", note=pitch, velocity=int(rng.integers(60, 100)))),
                       (end, 0, mido.Message("note_off", note=pitch, velocity=0))]
            beat += slot
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    song = mido.MidiFile(type=0, ticks_per_beat=tpq)
    song.tracks.append(track)
    song.save(str(path))


def _signed(v: float) -> str:
    """'+1.5', '-0.25': a control value as the page writes it into a MIDI marker."""
    text = f"{v:+.2f}"
    return text[:-1] if text.endswith("0") else text


def test_a_musician_reads_the_page_and_gets_played_midi_back(browser, tiny_export, tmp_path):
    """Units and attribute-first names on the page, researcher details on a toggle; a humanised MIDI
    file uploaded, a slider moved, the download read back with mido (tempo, track name, markers)."""
    import mido

    export_dir = str(tiny_export("measure_vae"))
    vocab = _vocabulary(export_dir)
    page = browser.new_page(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with explorer_server(export_dir) as url:
        page.goto(url)
        page.wait_for_selector("body[data-seed]", timeout=240_000)
        _settle(page)

        # what a musician sees: attribute-first control names, units, what requested/measured means
        labels = page.locator("#sliders .slider .top b").all_inner_texts()
        assert labels == ["rhythmic complexity", "note range", "note density", "average interval jump"]
        rows = {a: page.locator(f'#attr-table tr[data-attribute="{a}"]') for a in
                ("rhythmic_complexity", "note_range", "note_density", "average_interval_jump")}
        assert "notes per bar" in rows["note_density"].inner_text()
        assert "semitones" in rows["note_range"].inner_text()
        assert "semitones" in rows["average_interval_jump"].inner_text()
        assert "0..1 scale" in rows["rhythmic_complexity"].inner_text()
        assert "0..1" in rows["rhythmic_complexity"].locator("td").first.get_attribute("title")
        assert "Requested is what the controls ask for" in page.locator("#requested-help").inner_text()
        # values in units: the measured note density is the number of notes in the decoded bar
        tokens = [int(t) for t in page.locator("#output-roll").get_attribute("data-tokens").split(",")]
        onsets = sum(t < vocab.num_pitches for t in tokens)
        assert float(rows["note_density"].locator("td.measured").inner_text().split()[0]) == pytest.approx(onsets)
        # researcher details: hidden until asked for
        assert not page.locator("#attr-table .fitnote").first.is_visible()
        assert "z[2] =" not in page.locator("#sliders").inner_text()
        page.check("#researcher")
        assert page.locator("#attr-table .fitnote").first.is_visible()
        assert "fit R²" in page.locator("#attr-table").inner_text()
        assert "raw" in rows["note_density"].inner_text() and "z[2] =" in page.locator("#sliders").inner_text()
        assert page.locator("#sliders .slider .top b").all_inner_texts() == [
            "rhythmic complexity (z[0])", "note range (z[1])", "note density (z[2])", "average interval jump (z[3])"]
        page.screenshot(path=str(tmp_path / "researcher.png"), full_page=True)
        page.uncheck("#researcher")

        # a humanised MIDI file (played timing) becomes the seed
        humanised = tmp_path / "humanised.mid"
        _humanised_midi(humanised)
        page.click("#tab-upload")
        page.set_input_files("#upload-input", str(humanised))
        _wait(page, "(document.body.dataset.seed || '').startsWith('flute melody, bar 1') || "  # title, bar 1
                    "!!document.querySelector(\".error[data-key='upload']\")", 60)
        _settle(page)
        rejected = page.locator(".error[data-key='upload']")
        assert rejected.count() == 0, rejected.inner_text()  # played timing is quantised to the grid
        assert "usable 4/4 measure" in page.locator("#upload-info").inner_text()
        assert page.locator("#upload-info").inner_text().startswith("flute melody (humanised.mid): ")

        # move the note-density slider to the far end of its range
        slider = page.locator('#sliders input[data-control="2"]')
        low, high = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
        target = high if float(slider.input_value()) < (low + high) / 2 else low
        slider.fill(str(target))
        _settle(page)
        readout = page.locator("#sliders .slider").nth(2).locator("output").inner_text()
        assert readout.startswith("\u2248") and readout.endswith("notes per bar"), readout
        tokens = [int(t) for t in page.locator("#output-roll").get_attribute("data-tokens").split(",")]
        qpm = float(page.locator("#qpm").input_value())
        with page.expect_download() as download:
            page.click("#download-measure")
        data = open(download.value.path(), "rb").read()
        _check_midi(data, [tokens], vocab, qpm)
        song = mido.MidiFile(file=io.BytesIO(data))
        messages = [m for track in song.tracks for m in track]
        tempos = [mido.tempo2bpm(m.tempo) for m in messages if m.type == "set_tempo"]
        assert tempos and tempos[0] == pytest.approx(qpm, abs=0.01)  # the page's tempo
        # The upload's tempo became the page's; the download keeps the input's track name and carries
        # the page's marker for its one measure.
        assert qpm == pytest.approx(120.0, abs=0.5)
        assert "120 bpm" in page.locator("#upload-info").inner_text()
        names = [m.name for m in messages if m.type == "track_name" and m.name]
        assert names == ["flute melody"], names
        markers = [m for m in messages if m.type == "marker"]
        assert len(markers) == 1 and markers[0].time == 0, markers
        assert f"z[2] note density = {_signed(target)}" in markers[0].text, markers[0].text
        page.screenshot(path=str(tmp_path / "musician.png"), full_page=True)
    assert not errors, errors
    page.close()


WIDTHS = ((1280, 800), (1920, 1080))


@pytest.fixture(scope="module")
def pretrained_explorer():
    """The explorer on the pretrained model shipped in the package (seeds: the embedded tunes); its URL."""
    with running_explorer(["--seed_data=embedded", "--train_limit=300"]) as url:
        yield url


def _open(browser, url, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("body[data-seed]", timeout=240_000)
    _settle(page)
    return page, errors


def test_the_musician_view_shows_no_latent_coordinates_until_the_researcher_toggle(browser, pretrained_explorer):
    page, errors = _open(browser, pretrained_explorer, 1440, 1000)
    assert not page.locator("#researcher").is_checked()  # the default view: a musician's
    text = visible_text(page)
    assert not Z_INDEX.findall(text), Z_INDEX.findall(text)
    assert "Random z" not in text and "Surprise me" in text
    model_line = page.locator("#model-line").inner_text()
    assert model_line == "measure_vae_irish, trained on Irish dance tunes", model_line
    labels = page.locator("#sliders .slider .top b").all_inner_texts()
    assert labels == ["rhythmic complexity", "note range", "note density", "average interval jump"]
    assert page.locator(".pad-canvas").first.get_attribute("aria-label").startswith(
        "XY pad, x: rhythmic complexity, y: note range")
    # rhythmic complexity in musical words, visible and as the tooltip
    row = page.locator('#attr-table tr[data-attribute="rhythmic_complexity"]')
    assert "few notes, on the beat" in row.inner_text()
    assert "eight eighth notes" in row.locator("td").first.get_attribute("title")
    page.locator("#attr-help summary").click()
    assert "twelve eighth-note triplets" in page.locator("#attr-glossary").inner_text()

    page.check("#researcher")
    text = visible_text(page)
    assert {"z[0]", "z[1]", "z[2]", "z[3]"} <= set(Z_INDEX.findall(text))
    assert "Random z" in text and "Surprise me" not in text
    assert page.locator("#random-z").get_attribute("title") == "Draw z from the prior N(0, I)"
    internals = "v1 · measure_vae · latent 16 · 4 controls · in-process SavedModel"
    assert internals in page.locator("#model-line").inner_text()
    assert page.locator("#sliders .slider .top b").all_inner_texts()[2] == "note density (z[2])"
    assert "(z[0])" in page.locator(".pad-canvas").first.get_attribute("aria-label")
    assert "note density (z[2])" in page.locator(".pad select").first.inner_text()
    page.reload()  # the choice is remembered in this browser
    page.wait_for_selector("body[data-seed]", timeout=240_000)
    assert page.locator("#researcher").is_checked() and "Random z" in visible_text(page)
    page.uncheck("#researcher")
    assert not Z_INDEX.findall(visible_text(page))
    assert not errors, errors
    page.close()


@pytest.mark.parametrize("size", WIDTHS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_control_is_cut_off_at_the_usual_widths(browser, pretrained_explorer, tmp_path, size):
    """Every visible menu, button, input and label fits its box and the viewport, in both views; the page
    is saved as a screenshot (into docs/ too with MUSICVAE_EXPLORER_SCREENSHOT)."""
    width, height = size
    page, errors = _open(browser, pretrained_explorer, width, height)
    page.locator("#free-dims summary").click()  # the free sliders too
    page.locator("#attr-help summary").click()
    for researcher in (False, True):
        page.set_checked("#researcher", researcher)
        _settle(page)
        assert clipped_controls(page) == [], f"researcher view {researcher} at {width} px"
    page.uncheck("#researcher")
    page.locator("#free-dims summary").click()
    page.screenshot(path=str(tmp_path / f"explorer_{width}.png"), full_page=True)
    target_png = os.environ.get("MUSICVAE_EXPLORER_SCREENSHOT")
    if target_png:
        root, ext = os.path.splitext(target_png)
        page.screenshot(path=f"{root}_{width}{ext}", full_page=True)
    assert not errors, errors
    page.close()
