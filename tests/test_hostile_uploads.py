"""Hostile uploads and requests against the explorer and the Explainer: ABC and MusicXML parsed under
a time limit in a worker process (``readers.isolated``), their shape checked before any parser runs,
titles and markers beyond Latin-1 written back to MIDI, and request bodies that used to end in HTTP
500. Each is answered with one line naming the input. Every hostile file is generated here."""

import io
import json
import threading
import time
import urllib.request

import mido
import pytest

pytest.importorskip("flask")

from musicvae_xai.readers import ReaderError, abc, isolated, limits, registry  # noqa: E402

#: Seconds a refusal may take (they take milliseconds once the modules are imported).
SECONDS = 1.0
TUNE_HEAD = "X:1\nT:{title}\nM:4/4\nL:1/8\nK:C\n"


def slow_tune(units: int = 1400) -> bytes:
    """An ABC tune inside the size limits that music21 takes about a second or more to parse."""
    body = "".join("cdef gabc' " for _ in range(units))
    lines = "\n".join(body[i:i + 80] for i in range(0, len(body), 80))
    return (TUNE_HEAD.format(title="slow") + lines + "\n").encode()


def small_tune(title: str = "small") -> bytes:
    return (TUNE_HEAD.format(title=title) + "cdef gabc|cdef gabc|cdef gabc|cdef gabc|\n").encode()


def many_notes_musicxml(notes: int) -> bytes:
    note = ("<note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration>"
            "<type>16th</type></note>")
    head = "<attributes><divisions>4</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"
    measures = "".join(f'<measure number="{m + 1}">' + (head if m == 0 else "") + note * 16 + "</measure>"
                       for m in range(notes // 16))
    return ('<?xml version="1.0"?><score-partwise><part-list><score-part id="P1"><part-name>Flute</part-name>'
            f'</score-part></part-list><part id="P1">{measures}</part></score-partwise>').encode()


@pytest.fixture(scope="module")
def explorer():
    """(Explorer on the shipped model without its data, Flask app)."""
    from musicvae_xai import pretrained
    from musicvae_xai.explorer.app import create_app
    from musicvae_xai.explorer.server import make_explorer

    ex, backend = make_explorer(export=pretrained.export_dir(), load_data=False)
    return ex, create_app(ex, backend)


def upload(app, name: str, data: bytes):
    return app.test_client().post("/api/upload", data={"file": (io.BytesIO(data), name)},
                                  content_type="multipart/form-data")


def one_line_error(response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.data[:300])
    error = response.get_json()["error"]
    assert "\n" not in error and "Traceback" not in error
    return error


# ---------------------------------------------------------------------------------------------------
# The shape of the text, before any parser


def test_a_one_megabyte_one_line_abc_tune_is_refused_at_once(explorer, tmp_path):
    _, app = explorer
    data = TUNE_HEAD.format(title="long").encode() + b"cdef gabc' " * 100_000
    t0 = time.perf_counter()
    error = one_line_error(upload(app, "long.abc", data))
    assert time.perf_counter() - t0 < SECONDS
    assert error.startswith("long.abc: ") and "too large" in error and "MUSICVAE_XAI_MAX_LINE_BYTES" in error


def test_a_tune_over_the_size_limit_is_refused_alone_in_a_tunebook(tmp_path):
    big = b"".join(small_tune().replace(b"X:1", f"X:{i}".encode()) for i in range(2))
    huge = (TUNE_HEAD.format(title="huge") + "cdef gabc|\n" * 2000).encode().replace(b"X:1", b"X:9")
    path = tmp_path / "book.abc"
    path.write_bytes(big + huge)
    results = abc.read_tunebook(path)
    assert [r.error is None for r in results] == [True, True, False]
    assert results[2].error.reason == "too_large" and "MUSICVAE_XAI_MAX_TUNE_BYTES" in str(results[2].error)


def test_a_musicxml_melody_of_too_many_notes_is_refused_before_music21(tmp_path, monkeypatch):
    path = tmp_path / "sixteenths.xml"
    path.write_bytes(many_notes_musicxml(limits.MAX_NOTES + 16))
    with pytest.raises(ReaderError) as e:
        registry.get("musicxml").function("read_one")(path)
    assert e.value.reason == "too_large" and f"{limits.MAX_NOTES + 16} notes" in str(e.value)
    monkeypatch.setattr(limits, "MAX_NOTES", 64)  # the worker reads with this process's limits
    path.write_bytes(many_notes_musicxml(80))
    with pytest.raises(ReaderError, match="80 notes, over the limit of 64"):
        registry.get("musicxml").function("read_one")(path)


# ---------------------------------------------------------------------------------------------------
# The time limit and the number of parses at once


def test_a_parse_past_the_time_limit_is_stopped_and_the_next_file_is_read(explorer, monkeypatch):
    _, app = explorer
    monkeypatch.setattr(limits, "PARSE_SECONDS", 0.3)
    t0 = time.perf_counter()
    error = one_line_error(upload(app, "slow.abc", slow_tune()))
    assert time.perf_counter() - t0 < 5.0
    assert error.startswith("slow.abc: ") and "parse timeout" in error and "0.3 s" in error
    monkeypatch.setattr(limits, "PARSE_SECONDS", 60.0)
    assert upload(app, "small.abc", small_tune()).status_code == 200  # a fresh worker took over


def test_parses_at_once_are_bounded(monkeypatch, tmp_path):
    path = tmp_path / "small.abc"
    path.write_bytes(small_tune())
    monkeypatch.setattr(limits, "MAX_PARSES", 1)
    monkeypatch.setattr(limits, "PARSE_SECONDS", 0.2)
    slots = isolated._slots()
    slots.acquire()  # the one parse allowed is running
    try:
        with pytest.raises(ReaderError) as e:
            registry.get("abc").function("read_one")(path)
    finally:
        slots.release()
    assert e.value.reason == "busy" and "MUSICVAE_XAI_MAX_PARSES" in str(e.value)
    monkeypatch.setattr(limits, "PARSE_SECONDS", 60.0)
    assert len(registry.get("abc").function("read_one")(path).sequence.notes) == 32


def test_the_explorer_answers_while_an_upload_is_parsed(explorer, monkeypatch):
    from werkzeug.serving import make_server

    _, app = explorer
    monkeypatch.setattr(limits, "PARSE_SECONDS", 4.0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        uploads = [threading.Thread(target=lambda: upload(app, "slow.abc", slow_tune(4000))) for _ in range(3)]
        for t in uploads:
            t.start()
        time.sleep(0.5)  # the uploads are being parsed (or wait for a worker)
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/api/model", timeout=10) as r:
            assert r.status == 200
        answered = time.perf_counter() - t0
        for t in uploads:
            t.join(30)
        assert answered < 2.0, f"the page waited {answered:.2f} s"
    finally:
        server.shutdown()


# ---------------------------------------------------------------------------------------------------
# Back to MIDI: titles and markers beyond Latin-1, tempi a file may claim


@pytest.mark.parametrize("title", ["Калинка", "茉莉花"])
def test_a_title_beyond_latin1_comes_back_in_the_midi(explorer, tmp_path, title):
    from musicvae_xai.explain import Explainer

    _, app = explorer
    web = app.test_client()
    answer = upload(app, "tune.abc", small_tune(title)).get_json()
    assert answer["style"]["track_name"] == title
    r = web.post("/api/midi", json={"tokens": answer["measures"]["tokens"][:2], "style": answer["style"],
                                    "markers": [f"{title} 1", "бар 2"]})
    assert r.status_code == 200, r.data[:200]
    back = mido.MidiFile(file=io.BytesIO(r.data), charset="utf-8")
    texts = [m.name if m.type == "track_name" else m.text for m in back.tracks[0] if m.type in ("track_name", "marker")]
    assert texts == [title, f"{title} 1", "бар 2"]

    path = tmp_path / "tune.abc"
    path.write_bytes(small_tune(title))
    ex = Explainer.pretrained()
    written = ex.write_reconstruction(ex.encode_file(path, bar_numbers=[1]), tmp_path / "back.mid")
    assert mido.MidiFile(written, charset="utf-8").tracks[0][0].name == title


def test_an_upload_claiming_one_microsecond_per_beat_is_downloadable(explorer):
    _, app = explorer
    mf = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1)])
    for i in range(16):
        track += [mido.Message("note_on", note=60 + i % 8, velocity=80, time=0),
                  mido.Message("note_off", note=60 + i % 8, velocity=0, time=96)]
    mf.tracks.append(track)
    data = io.BytesIO()
    mf.save(file=data)
    answer = upload(app, "fast.mid", data.getvalue()).get_json()
    assert answer["style"]["qpm"] == 1000.0  # clamped to what a MIDI writer takes
    r = app.test_client().post("/api/midi", json={"tokens": answer["measures"]["tokens"][:1], "style": answer["style"]})
    assert r.status_code == 200 and r.data.startswith(b"MThd")


TOKENS = json.dumps([0] * 24)


@pytest.mark.parametrize("path, body, expected", [
    ("/api/decode", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("/api/decode", '{"z": [' + "9" * 4000 + "]}", "integer of 4000 digits"),
    ("/api/midi", '{"tokens": [%s], "qpm": %s}' % (TOKENS, "9" * 4000), "integer of 4000 digits"),
    ("/api/midi", '{"tokens": [%s], "style": {"program": 1e999}}' % TOKENS, "style must be"),
    ("/api/midi", '{"tokens": [%s], "style": {"qpm": 1e999}}' % TOKENS, "style must be"),
    ("/api/midi", '{"tokens": [%s], "qpm": 0.001}' % TOKENS, "qpm must be in"),
    ("/api/midi", '{"tokens": [%s], "qpm": 1e999}' % TOKENS, "qpm must be in"),
])
def test_hostile_request_bodies_are_refused_with_one_line(explorer, path, body, expected):
    _, app = explorer
    error = one_line_error(app.test_client().post(path, data=body, content_type="application/json"))
    assert expected in error
