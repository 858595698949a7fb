"""Tests for the data CLI (python -m musicvae_xai.data), run as a subprocess."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "musicvae_xai.data", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def smf(notes, ticks=480, numerator=4):
    """Bytes of a one-track MIDI file: a 4/4 (or numerator/4) time signature and (pitch, start, end) beats."""
    def varlen(v):
        out = [v & 0x7F]
        while v > 0x7F:
            v >>= 7
            out.append(0x80 | (v & 0x7F))
        return bytes(reversed(out))

    events = [(0, b"\xff\x58\x04" + bytes([numerator, 2, 24, 8]))]
    for pitch, start, end in notes:
        events.append((int(start * ticks), bytes([0x90, pitch, 90])))
        events.append((int(end * ticks), bytes([0x80, pitch, 0])))
    body, now = b"", 0
    for tick, data in sorted(events, key=lambda e: (e[0], e[1][0] == 0x90)):
        body += varlen(tick - now) + data
        now = tick
    body += b"\x00\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + bytes([0, 0, 0, 1, ticks >> 8, ticks & 0xFF])
            + b"MTrk" + len(body).to_bytes(4, "big") + body)


@pytest.mark.slow
def test_embedded_build_summary_and_stats_json(tmp_path):
    stats_path = tmp_path / "out" / "stats.json"
    r = run_cli("--dataset=embedded", f"--cache_dir={tmp_path / 'cache'}", f"--stats_json={stats_path}")
    assert r.returncode == 0, r.stderr[-2000:]
    for label in ("files seen", "files parsed", "pieces kept", "duplicate groups", "unfingerprinted",
                  "before augmentation", "after augmentation", "not_4_4"):
        assert label in r.stdout
    stats = json.loads(stats_path.read_text())
    for key in ("files_total", "files_parsed", "pieces", "measures", "skipped", "measures_augmented",
                "duplicate_groups", "duplicate_pieces", "unfingerprinted_pieces"):
        assert key in stats
    assert stats["duplicate_groups"] >= 1 and stats["duplicate_pieces"] >= 2 * stats["duplicate_groups"]
    assert set(stats["measures"]) == {"train", "validation", "test"}
    assert stats["files_total"] == 4 and stats["measures"]["train"] > 1000
    assert all(isinstance(v, int) for v in stats["skipped"].values())
    again = run_cli("--dataset=embedded", f"--cache_dir={tmp_path / 'cache'}")  # reuses the cache
    assert again.returncode == 0 and "reused cache" in again.stdout


@pytest.mark.parametrize("args, words", [
    (["--dataset=irish", "--data_root=/no/such/folder"], "/no/such/folder"),
    (["--dataset=klezmer", "--data_root=."], "klezmer"),
    (["--dataset=pop"], "data_root"),
])
def test_bad_root_or_name_is_one_line_error(tmp_path, args, words):
    r = run_cli(*args, f"--cache_dir={tmp_path}")
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_bad_input_files_are_counted_and_the_build_goes_on(tmp_path):
    root = tmp_path / "data"
    midi_dir = root / "irish_cre" / "MIDI"
    abc_dir = root / "irish_oneills1850"
    midi_dir.mkdir(parents=True)
    abc_dir.mkdir(parents=True)
    tune = [(60 + (k * 5) % 12, k * 0.5, k * 0.5 + 0.5) for k in range(32)]  # 4 bars of eighths
    good = smf(tune)
    (midi_dir / "good1.mid").write_bytes(good)
    (midi_dir / "good2.mid").write_bytes(smf([(p + 2, s, e) for p, s, e in tune]))
    (midi_dir / "waltz.mid").write_bytes(smf(tune, numerator=3))
    (midi_dir / "empty.mid").write_bytes(b"")
    (midi_dir / "truncated.mid").write_bytes(good[: len(good) // 2])
    (midi_dir / "garbage.mid").write_bytes(os.urandom(3000))
    (midi_dir / "corrupt.mid").write_bytes(good[:22] + b"\x00\x90\xff\xff" + good[26:])
    (midi_dir / "wrong_format.mid").write_text("X:1\nT:an ABC tune in a .mid file\nK:C\ncdef|\n")
    (abc_dir / "book.abc").write_text("X:1\nT:a\nM:4/4\nL:1/4\nK:C\ncdef|gfed|c4|]\n\n"
                                      "X:2\nT:b\nM:4/4\nL:0/0\nK:C\ncdef|\n")
    (abc_dir / "binary.abc").write_bytes(b"\x00\xff" * 100)
    stats_path = tmp_path / "stats.json"
    r = run_cli("--dataset=irish", f"--data_root={root}", f"--cache_dir={tmp_path / 'cache'}",
                f"--stats_json={stats_path}", "--workers=1")
    assert r.returncode == 0, r.stderr[-2000:]
    stats = json.loads(stats_path.read_text())
    assert stats["files_total"] == 10
    assert stats["files_parsed"] == 4  # good1, good2, waltz, book.abc
    assert stats["skipped"]["empty_file"] == 1
    # truncated, garbage, corrupt, wrong_format, binary.abc, and tune X:2 of book.abc
    assert stats["skipped"]["unparseable"] == 6
    assert stats["skipped"]["not_4_4"] >= 4
    assert sum(stats["measures"].values()) == 4 + 4 + 3
    assert stats["duplicate_groups"] == 1 and stats["duplicate_pieces"] == 2  # good2 is good1 up a tone
    for name in ("empty.mid", "truncated.mid", "garbage.mid", "corrupt.mid", "wrong_format.mid", "binary.abc"):
        assert name in r.stderr  # each skipped file is logged with its path
