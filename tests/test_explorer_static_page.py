"""The static explorer as a musician uses it: ``musicvae-explorer --static=DIR`` on the shipped pretrained
model, the folder served by ``python -m http.server`` and opened in headless Chromium with every request
to another host refused; a humanised MIDI file dropped in (read into the same measures as the package's
Python reader), a slider moved with the mouse and with the keyboard, the phrase played (Web Audio
oscillators started) and downloaded (tempo, program and track name of the upload kept, the decoded
notes in it), a MusicXML file, plain and compressed, read as the Python reader reads it, and
unreadable files refused with one line each. The musician's view (the default) names no latent
coordinate and no model internals until the researcher toggle, and no control is cut off at 1280 and
1920 px wide (screenshots into docs/ with MUSICVAE_EXPLORER_SCREENSHOT, as explorer_static_WIDTH.png)."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from midi_fixtures import humanised_midi, read_back
from page_layout import Z_INDEX, clipped_controls, visible_text
from static_browser import chromium, http_server, open_site, wait_for

from musicvae_xai.representation import Vocabulary, measures_to_sequence

pytestmark = pytest.mark.slow
MAX_SITE_BYTES = 10 * 2 ** 20

#: Counts the oscillators the page starts (its Web Audio synthesiser), before any page script runs.
AUDIO_SPY = """
window.__oscillators = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) { window.__oscillators += 1; return start.apply(this, args); };
"""

MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <part-list>
    <score-part id="P1"><part-name>Alto</part-name></score-part>
    <score-part id="P2"><part-name>Soprano</part-name>
      <score-instrument id="P2-I1"><instrument-name>Oboe</instrument-name></score-instrument>
      <midi-instrument id="P2-I1"><midi-program>69</midi-program></midi-instrument></score-part>
  </part-list>
  <part id="P1"><measure number="1"><attributes><divisions>2</divisions><time><beats>4</beats>
    <beat-type>4</beat-type></time></attributes><note><pitch><step>C</step><octave>4</octave></pitch>
    <duration>8</duration></note></measure></part>
  <part id="P2">
    <measure number="0" implicit="yes"><attributes><divisions>6</divisions><time><beats>4</beats>
      <beat-type>4</beat-type></time></attributes>
      <direction><direction-type><metronome><beat-unit>half</beat-unit><per-minute>42</per-minute>
        </metronome></direction-type><sound tempo="84"/></direction>
      <note><pitch><step>D</step><octave>5</octave></pitch><duration>6</duration></note></measure>
    <measure number="1">
      <note><pitch><step>G</step><octave>4</octave></pitch><duration>3</duration></note>
      <note><pitch><step>A</step><octave>4</octave></pitch><duration>3</duration></note>
      <note><pitch><step>B</step><octave>4</octave></pitch><duration>2</duration></note>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration></note>
      <note><pitch><step>D</step><octave>5</octave></pitch><duration>2</duration></note>
      <note><rest/><duration>6</duration></note>
      <note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><duration>6</duration>
        <tie type="start"/></note></measure>
    <measure number="2">
      <note><pitch><step>F</step><alter>1</alter><octave>4</octave></pitch><duration>6</duration>
        <tie type="stop"/></note>
      <note><pitch><step>E</step><octave>4</octave></pitch><duration>12</duration></note>
      <note><chord/><pitch><step>G</step><octave>4</octave></pitch><duration>12</duration></note>
      <note><grace/><pitch><step>A</step><octave>4</octave></pitch></note>
      <note><pitch><step>B</step><octave>4</octave></pitch><duration>6</duration></note></measure>
  </part>
</score-partwise>
"""


CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container><rootfiles><rootfile full-path="score/chorale.xml"/></rootfiles></container>
"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    """The static site of the shipped model, written by the command line."""
    folder = str(tmp_path_factory.mktemp("static") / "site")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-m", "musicvae_xai.cli.explorer", f"--static={folder}"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "static explorer written to" in done.stdout
    return folder


def _python_upload(name: str, data: bytes, vocab: Vocabulary) -> dict:
    from musicvae_xai.explorer.data import read_upload

    return read_upload(name, data, vocab)


def _page_source(page) -> dict:
    return page.evaluate("""() => { const v = window.staticExplorer.view; const s = v.sources[v.source];
                                    return {tokens: s.tokens, bar_numbers: s.bar_numbers, style: s.style,
                                            title: s.title,
                                            lengthened: s.quantisation && s.quantisation.lengthened}; }""")


def _upload(page, path) -> str:
    page.set_input_files("#file", str(path))
    wait_for(page, f"document.getElementById('message').textContent.startsWith({os.path.basename(path)!r})")
    return page.locator("#message").inner_text()


def test_the_static_site_of_the_pretrained_model_in_a_browser(browser, site, tmp_path):
    files = [os.path.join(r, n) for r, _, names in os.walk(site) for n in names]
    size = sum(os.path.getsize(f) for f in files)
    assert size <= MAX_SITE_BYTES, size
    assert os.path.exists(os.path.join(site, "vendor", "LICENSES.md"))
    import json

    with open(os.path.join(site, "model.json"), encoding="utf-8") as f:
        vocab = Vocabulary.from_dict(json.load(f)["vocabulary"])
    outside: list = []
    with http_server(site) as url:
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1000})
        context.add_init_script(AUDIO_SPY)
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
                      else (outside.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        wait_for(page, "document.body.dataset.ready === '1'")
        assert page.locator("#model-line").inner_text() == "measure_vae_irish, trained on Irish dance tunes"
        assert page.locator("#sliders input[data-control]").count() == 4
        labels = [" ".join(t.split()) for t in page.locator("#sliders label").all_inner_texts()]
        assert labels[0].startswith("rhythmic complexity decoded 0.") and "z" not in labels[0], labels
        page.check("#researcher")
        assert "wasm backend" in page.locator("#model-line").inner_text()
        first = " ".join(page.locator("#sliders label").first.inner_text().split())
        assert first.startswith("rhythmic complexity (latent z[0]) z = "), first
        page.uncheck("#researcher")
        table = page.locator("#attr-table").inner_text()
        assert "notes per bar" in table and "semitones" in table

        # a humanised MIDI file: the same measures as the package's own reader makes of it
        midi = tmp_path / "humanised.mid"
        humanised_midi(midi, bars=6, bpm=120.0, bpm_after=90.0, program=73, track_name="Flute")
        message = _upload(page, midi)
        want = _python_upload("humanised.mid", midi.read_bytes(), vocab)
        got = _page_source(page)
        assert f"{len(want['bar_numbers'])} bars read" in message, message
        assert got["tokens"] == want["tokens"].tolist()
        assert got["bar_numbers"] == want["bar_numbers"] and got["bar_numbers"][:2] == [0, 1]   # a pickup, bar 1
        assert got["lengthened"] == want["quantisation"]["lengthened_notes"] > 0       # the same legato fill
        assert got["title"] == f"{want['title']} (uploaded)" == "Flute (uploaded)"     # the file's track name
        assert got["style"]["qpm"] == pytest.approx(want["style"]["qpm"])
        assert (got["style"]["program"], got["style"]["track_name"]) == (73, "Flute")

        # choose bar 2, move a slider with the mouse, then with the keyboard: each decodes the bar again
        page.select_option("#bar-select", "1")
        before = page.locator("#output-roll").get_attribute("data-tokens")
        slider = page.locator('#sliders input[data-control="2"]')
        low, high = float(slider.get_attribute("min")), float(slider.get_attribute("max"))
        target = high if float(slider.input_value()) < (low + high) / 2 else low
        slider.fill(str(target))
        moved = page.locator("#output-roll").get_attribute("data-tokens")
        assert moved != before
        slider.focus()
        for _ in range(60):
            page.keyboard.press("ArrowLeft" if target == high else "ArrowRight")
        assert float(slider.input_value()) != pytest.approx(target)
        assert page.evaluate("window.staticExplorer.latencies.length") >= 61
        decoded = [int(t) for t in page.locator("#output-roll").get_attribute("data-tokens").split(",")]

        # the phrase: bars 1..3, played and downloaded
        page.select_option("#phrase-from", "0")
        page.select_option("#phrase-to", "2")
        page.click("#play")
        wait_for(page, "window.__oscillators > 0", 10)
        page.click("#stop")
        with page.expect_download() as download:
            page.click("#download")
        assert download.value.suggested_filename == "musicvae_phrase_3_measures.mid"
        back = read_back(download.value.path())
        phrase = page.evaluate("window.staticExplorer.view.outputs.slice(0, 3)")
        assert phrase[1] == decoded
        assert back["qpm"] == [120.0] and back["programs"] == [73] and "Flute" in back["track_names"]
        assert back["time_signatures"] == [(4, 4)]
        want_notes = measures_to_sequence(np.array(phrase), vocab, qpm=60.0).notes
        assert [(p, round(s, 3), round(e, 3)) for p, s, e in back["notes"]] == [
            (n.pitch, round(n.start_time, 3), round(n.end_time, 3)) for n in want_notes]

        # MusicXML: the Soprano part, as the Python reader reads it (pickup, tie, chord, grace note)
        xml = tmp_path / "chorale.musicxml"
        xml.write_text(MUSICXML, encoding="utf-8")
        _upload(page, xml)
        want = _python_upload("chorale.musicxml", xml.read_bytes(), vocab)
        got = _page_source(page)
        assert got["tokens"] == want["tokens"].tolist() and got["bar_numbers"] == want["bar_numbers"]
        assert (got["style"]["qpm"], got["style"]["program"], got["style"]["track_name"]) == (
            want["style"]["qpm"], want["style"]["program"], want["style"]["track_name"])

        # the same score compressed (.mxl): unpacked in the page, read alike
        mxl = tmp_path / "chorale.mxl"
        with zipfile.ZipFile(mxl, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("META-INF/container.xml", CONTAINER)
            z.writestr("score/chorale.xml", MUSICXML)
        _upload(page, mxl)
        want = _python_upload("chorale.mxl", mxl.read_bytes(), vocab)
        assert _page_source(page)["tokens"] == want["tokens"].tolist()

        # files it cannot read: one line each, naming the file; the page keeps working
        bomb = tmp_path / "bomb.mxl"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("score.xml", b"<" * (40 * 2 ** 20))
        assert "bomb.mxl: " in _upload(page, bomb) and "bytes" in page.locator("#message").inner_text()
        bad = tmp_path / "broken.mid"
        bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
        assert _upload(page, bad).startswith("broken.mid: ")
        assert page.locator("#message").get_attribute("class") == "error"
        assert "\n" not in page.locator("#message").inner_text()
        text = tmp_path / "notes.txt"
        text.write_text("not music")
        assert "unsupported file type" in _upload(page, text)
        drums = tmp_path / "drums.mid"
        humanised_midi(drums, bars=2, drums=True)
        assert "drum" in _upload(page, drums)

        # keyboard: the drop zone opens the file chooser with Enter
        with page.expect_file_chooser():
            page.focus("#drop")
            page.keyboard.press("Enter")
        assert not errors, errors
        assert not outside, outside
        context.close()


@pytest.mark.parametrize("size", ((1280, 800), (1920, 1080)), ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_static_page_speaks_to_musicians_and_cuts_off_no_control(browser, site, tmp_path, size):
    width, height = size
    with open_site(browser, site, viewport={"width": width, "height": height}) as (page, errors):
        assert not page.locator("#researcher").is_checked()
        text = visible_text(page)
        assert not Z_INDEX.findall(text), Z_INDEX.findall(text)
        assert page.locator("#model-line").inner_text() == "measure_vae_irish, trained on Irish dance tunes"
        row = page.locator('#attr-table tr[data-attribute="rhythmic_complexity"]')
        assert "few notes, on the beat" in row.inner_text()
        assert "eight eighth notes" in row.locator("td").first.get_attribute("title")
        page.locator("#attr-help summary").click()
        assert "twelve eighth-note triplets" in page.locator("#attr-glossary").inner_text()
        for researcher in (False, True):
            page.set_checked("#researcher", researcher)
            assert clipped_controls(page) == [], f"researcher view {researcher} at {width} px"
        assert {"z[0]", "z[3]"} <= set(Z_INDEX.findall(visible_text(page)))
        page.uncheck("#researcher")
        page.screenshot(path=str(tmp_path / f"explorer_static_{width}.png"), full_page=True)
        target_png = os.environ.get("MUSICVAE_EXPLORER_SCREENSHOT")
        if target_png:
            page.screenshot(path=os.path.join(os.path.dirname(target_png) or ".", f"explorer_static_{width}.png"),
                            full_page=True)
        assert not errors, errors
