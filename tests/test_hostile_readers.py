"""Hostile files against every reader and the explorer's upload path: each is refused under a named
reason (``too_long``, ``too_large``) quickly and without per-beat or decompressed-size memory.

Every hostile file is generated here; every test is bounded in time (``bounded``)."""

import time
import tracemalloc
import zipfile

import mido
import numpy as np
import pytest

from musicvae_xai.readers import ReaderError, abc, limits, midi, musicxml, symbtr
from musicvae_xai.representation import Vocabulary

#: Seconds a hostile file may take to be refused (they take milliseconds).
SECONDS = 3.0
#: Bytes of Python memory a refusal may allocate at its peak.
PEAK_BYTES = 64 * 2 ** 20


def bounded(fn, *args, **kwargs):
    """Runs ``fn``, asserting it took under ``SECONDS`` and allocated under ``PEAK_BYTES`` at its peak."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        return fn(*args, **kwargs)
    finally:
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < SECONDS, f"{fn.__name__} took {elapsed:.2f} s"
        assert peak < PEAK_BYTES, f"{fn.__name__} allocated {peak / 2 ** 20:.1f} MiB"


def far_apart_midi(path, beats: int = 2 ** 27):
    """A 53-byte hostile MIDI file: two notes ``beats`` beats apart (1 tick per beat)."""
    mf = mido.MidiFile(ticks_per_beat=1)
    track = mido.MidiTrack()
    mf.tracks.append(track)
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=1))
    track.append(mido.Message("note_on", note=62, velocity=80, time=beats))
    track.append(mido.Message("note_off", note=62, velocity=0, time=1))
    mf.save(str(path))
    return path


def zip_bomb_mxl(path, zeros: int = 64 * 2 ** 20):
    """A .mxl whose score decompresses to ``zeros`` zero bytes (64 MiB in about 64 KB)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="score.xml"/>'
                                             "</rootfiles></container>")
        with z.open("score.xml", "w", force_zip64=True) as member:
            block = bytes(2 ** 20)
            for _ in range(zeros // len(block)):
                member.write(block)
    return path


def test_53_byte_midi_is_refused_in_milliseconds(tmp_path):
    path = far_apart_midi(tmp_path / "far.mid")
    assert path.stat().st_size == 53
    with pytest.raises(ReaderError) as e:
        bounded(midi.read, path)
    assert e.value.reason == "too_long" and "32768 beats" in str(e.value)


def test_a_time_signature_far_after_the_last_note_is_ignored(tmp_path):
    mf = mido.MidiFile(ticks_per_beat=1)
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=80, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=4),
                            mido.MetaMessage("time_signature", numerator=3, denominator=4, time=2 ** 27)])
    mf.tracks.append(track)
    mf.save(str(tmp_path / "late_sig.mid"))
    seq = bounded(midi.read, tmp_path / "late_sig.mid")
    assert len(seq.notes) == 1


def test_the_beat_limit_is_a_named_setting(tmp_path, monkeypatch):
    path = far_apart_midi(tmp_path / "short.mid", beats=100)
    assert len(midi.read(path).notes) == 2
    monkeypatch.setattr(limits, "MAX_BEATS", 64)
    with pytest.raises(ReaderError, match="over the limit of 64 beats") as e:
        midi.read(path)
    assert e.value.reason == "too_long"


def test_zip_bomb_mxl_is_refused_from_its_directory(tmp_path):
    path = zip_bomb_mxl(tmp_path / "bomb.mxl")
    assert path.stat().st_size < 2 ** 20
    with pytest.raises(ReaderError) as e:
        bounded(musicxml.read, path)
    assert e.value.reason == "too_large" and "decompressed" in str(e.value)


def test_decompression_is_guarded_while_reading(tmp_path):
    path = zip_bomb_mxl(tmp_path / "bomb.mxl", zeros=8 * 2 ** 20)
    with zipfile.ZipFile(path) as z, pytest.raises(ReaderError) as e:
        bounded(musicxml._read_member, z, "score.xml", 2 ** 20)   # as if the directory had lied
    assert e.value.reason == "too_large"


def test_byte_limit_applies_to_plain_files(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_BYTES", 1000)
    (tmp_path / "big.abc").write_text("X:1\nK:C\n" + "cdef|" * 400)
    (tmp_path / "big.xml").write_bytes(b"<score-partwise>" + b" " * 2000 + b"</score-partwise>")
    (tmp_path / "big.mid").write_bytes(b"MThd" + bytes(2000))
    for read, name in ((abc.read_tunebook, "big.abc"), (musicxml.read, "big.xml"), (midi.read, "big.mid")):
        with pytest.raises(ReaderError) as e:
            bounded(read, tmp_path / name)
        assert e.value.reason == "too_large", name


def test_symbtr_offsets_far_in_the_future_are_refused(tmp_path):
    header = "Sira\tKod\tNota53\tNotaAE\tKoma53\tKomaAE\tPay\tPayda\tMs\tLNS\tBas\tSoz1\tOffset"
    rows = ["1\t9\tA4\tA4\t283\t283\t1\t4\t0\t0\t0\t\t0.25", "2\t9\tA4\tA4\t283\t283\t1\t4\t0\t0\t0\t\t1e12"]
    (tmp_path / "far.txt").write_text("\n".join([header] + rows) + "\n")
    with pytest.raises(ReaderError) as e:
        bounded(symbtr.read, tmp_path / "far.txt")
    assert e.value.reason == "too_long"


def test_a_huge_written_duration_is_refused(tmp_path):
    from musicvae_xai.readers.common import Bar, NoteEvent, make_sequence

    with pytest.raises(ReaderError) as e:
        bounded(make_sequence, [NoteEvent(60, 0.0, 2.0 ** 27)], [Bar(0.0, 4.0, 4, 4)])
    assert e.value.reason == "too_long"


@pytest.mark.parametrize("make, name, reason", [
    (far_apart_midi, "far.mid", "too long"),
    (zip_bomb_mxl, "bomb.mxl", "too large"),
])
def test_explorer_upload_refuses_hostile_files_quickly(tmp_path, make, name, reason):
    import musicvae_xai.explain  # noqa: F401 - read_upload imports it (TensorFlow): the refusal is timed, not that
    from musicvae_xai.explorer.data import UploadError, read_upload

    data = make(tmp_path / name).read_bytes()
    t0 = time.perf_counter()
    with pytest.raises(UploadError) as e:
        bounded(read_upload, name, data, Vocabulary())
    assert time.perf_counter() - t0 < SECONDS
    message = str(e.value)
    assert message.startswith(f"{name}: ") and reason in message and "\n" not in message


def test_explain_names_the_limit(tmp_path):
    from musicvae_xai.explain import ExplainError, read_melody

    path = far_apart_midi(tmp_path / "far.mid")
    with pytest.raises(ExplainError, match=r"far\.mid: cannot read a melody \(too long: .*MUSICVAE_XAI_MAX_BEATS"):
        bounded(read_melody, str(path))


def test_environment_variables_set_the_limits(monkeypatch):
    monkeypatch.setenv("MUSICVAE_XAI_MAX_BEATS", "100")
    assert limits._env_int("MUSICVAE_XAI_MAX_BEATS", 5) == 100
    monkeypatch.setenv("MUSICVAE_XAI_MAX_BEATS", "-3")
    with pytest.raises(ValueError, match="MUSICVAE_XAI_MAX_BEATS must be a positive number"):
        limits._env_int("MUSICVAE_XAI_MAX_BEATS", 5)
    assert np.isfinite(limits.MAX_BEATS) and limits.MAX_BYTES > 0


def test_a_time_signature_with_tiny_bars_is_refused(tmp_path):
    body = (b"\x00\xff\x58\x04\x01\x64\x18\x08"                    # 1/2**100: bars of 2**-98 beats
            b"\x00\x90\x3c\x50\x60\x80\x3c\x00\x00\xff\x2f\x00")   # one note of 96 ticks
    data = (b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, 0, 96])
            + b"MTrk" + len(body).to_bytes(4, "big") + body)
    (tmp_path / "tiny_bars.mid").write_bytes(data)
    with pytest.raises(ReaderError) as e:
        bounded(midi.read, tmp_path / "tiny_bars.mid")
    assert e.value.reason == "too_long" and "bars" in str(e.value)
