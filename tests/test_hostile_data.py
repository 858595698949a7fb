"""Hostile input against the data build: stale caches, slow files, odd folder entries, a
build of nothing and a cache_dir that is a file. Every hostile file is generated here, in tmp_path,
and every test is bounded in time."""

import functools
import json
import operator
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from musicvae_xai import datasets
from musicvae_xai.datasets import DatasetConfig, builder, pool, sources
from test_data_cli import smf

REPO = pathlib.Path(__file__).resolve().parents[1]
TUNE = [(60 + (k * 5) % 12, k * 0.5, k * 0.5 + 0.5) for k in range(32)]  # 4 bars of eighths


def run_cli(*args, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "musicvae_xai.data", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_error_line(r) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    return lines[0]


def irish_root(root: pathlib.Path, n_good: int = 2) -> pathlib.Path:
    """data root with irish_cre/MIDI/good{i}.mid (distinct tunes) and an O'Neill's folder."""
    midi = root / "irish_cre" / "MIDI"
    midi.mkdir(parents=True)
    (root / "irish_oneills1850").mkdir()
    for i in range(n_good):
        (midi / f"good{i}.mid").write_bytes(smf([(60 + (k * (5 + i)) % 12, s, e) for k, (_, s, e) in enumerate(TUNE)]))
    return root


# ---------------------------------------------------------------- stale caches


@pytest.mark.timeout(180)
def test_an_edit_that_keeps_size_and_mtime_rebuilds(tmp_path):
    root = irish_root(tmp_path / "data")
    abc = root / "irish_oneills1850" / "book.abc"
    abc.write_text("X:1\nT:a\nM:4/4\nL:1/4\nK:C\ncdef|gfed|cdef|g4|]\n")
    cfg = DatasetConfig(name="irish", data_root=str(root), transpose=False)
    first = datasets.build(cfg, tmp_path / "cache", progress=False, workers=1)
    assert datasets.build(cfg, tmp_path / "cache", progress=False, workers=1).reused

    def edit(path: pathlib.Path, change):
        st = path.stat()
        data = path.read_bytes()
        new = change(data)
        assert len(new) == len(data) and new != data
        path.write_bytes(new)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same time stamp

    edit(abc, lambda b: b.replace(b"gfed", b"gfeB"))
    abc_edit = datasets.build(cfg, tmp_path / "cache", progress=False, workers=1)
    assert not abc_edit.reused and abc_edit.path != first.path

    mid = root / "irish_cre" / "MIDI" / "good0.mid"
    edit(mid, lambda b: b.replace(bytes([0x90, 60, 90]), bytes([0x90, 62, 90]), 1))  # one pitch up a tone
    mid_edit = datasets.build(cfg, tmp_path / "cache", progress=False, workers=1)
    assert not mid_edit.reused and mid_edit.path not in (first.path, abc_edit.path)
    changed = [not np.array_equal(mid_edit.tokens(s), abc_edit.tokens(s)) for s in datasets.SPLITS]
    assert any(changed)


def test_content_hash_is_of_the_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x" * 5000)
    b.write_bytes(b"x" * 4999 + b"y")
    assert builder.content_hash(str(a)) != builder.content_hash(str(b))
    assert builder.content_hash(str(tmp_path / "missing")) == "unreadable"


# ---------------------------------------------------------------- per-file time limit


@pytest.mark.timeout(60)
def test_pool_kills_an_item_past_the_time_limit_and_goes_on():
    t0 = time.monotonic()
    done = pool.run(time.sleep, [0.0, 120.0, 0.0, 0.0, 0.0], workers=2, time_limit=1.5)
    assert time.monotonic() - t0 < 30
    assert done[1][0] == pool.TIMEOUT and done[1][1] >= 1.5
    assert all(done[i] == (pool.OK, None) for i in (0, 2, 3, 4))


@pytest.mark.timeout(60)
def test_pool_reports_a_worker_that_dies():
    items = [functools.partial(time.sleep, 0)] * 2 + [functools.partial(os._exit, 7)] + [
        functools.partial(time.sleep, 0)] * 3
    done = pool.run(operator.call, items, workers=2, time_limit=30)
    assert done[2] == (pool.CRASHED, 7)
    assert all(done[i] == (pool.OK, None) for i in (0, 1, 3, 4, 5))


@pytest.mark.timeout(60)
def test_pool_unavailable_when_workers_always_die():
    with pytest.raises(pool.PoolUnavailable, match="keep dying"):
        pool.run(os._exit, [3] * 8, workers=2, time_limit=10)
    with pytest.raises(pool.PoolUnavailable, match="none finished"):  # e.g. workers cannot import __main__
        pool.run(os._exit, [3] * 2, workers=2, time_limit=10)


@pytest.mark.timeout(60)
def test_pool_without_a_time_limit_returns_every_result():
    assert pool.run(abs, [-1, -2, 3, -4, 5], workers=2, time_limit=None) == {
        0: (pool.OK, 1), 1: (pool.OK, 2), 2: (pool.OK, 3), 3: (pool.OK, 4), 4: (pool.OK, 5)}


@pytest.mark.timeout(60)
def test_in_process_parse_is_interrupted_too(monkeypatch):
    monkeypatch.setattr(sources, "parse_file", lambda task: time.sleep(60))
    source = sources.DATASETS["irish"][0]
    t0 = time.monotonic()
    r = builder._parse_here((source, "/nowhere", "slow.mid", False), 1.0)
    assert time.monotonic() - t0 < 10
    assert r.reason == "parse_timeout" and "1 s" in r.message


@pytest.mark.timeout(120)
def test_a_file_spanning_millions_of_beats_does_not_hang_the_build(tmp_path):
    """The issue's 53-byte MIDI file: two notes millions of beats apart. Whatever the readers make of
    it (a reader cap or the builder's time limit), the build finishes and keeps the other files."""
    root = irish_root(tmp_path / "data", n_good=4)
    hostile = smf([(60, 0, 1), (62, 1 << 22, (1 << 22) + 1)], ticks=24)
    assert len(hostile) < 64
    (root / "irish_cre" / "MIDI" / "hostile.mid").write_bytes(hostile)
    t0 = time.monotonic()
    built = datasets.build(DatasetConfig(name="irish", data_root=str(root), transpose=False),
                           tmp_path / "cache", progress=False, workers=2, file_timeout=3.0)
    assert time.monotonic() - t0 < 90
    s = built.stats
    assert s["files_total"] == 5 and s["sources"]["irish_cre"]["pieces"] == 4
    manifest = json.loads((built.path / "manifest.json").read_text())
    reasons = {rec["reason"] for rec in manifest["skipped_files"] if rec["path"].endswith("hostile.mid")}
    assert reasons, "the hostile file must be skipped and recorded"
    assert sum(s["skipped"][r] for r in reasons) >= 1


# ---------------------------------------------------------------- odd folder entries


@pytest.mark.timeout(180)
def test_loops_dangling_links_folders_and_unreadable_entries_are_counted(tmp_path, monkeypatch):
    root = irish_root(tmp_path / "data", n_good=1)
    midi = root / "irish_cre" / "MIDI"
    (midi / "x.mid").mkdir()                                    # a folder named like a MIDI file
    os.symlink("nowhere.mid", midi / "dangling.mid")           # a dangling link
    os.symlink("loop_b.mid", midi / "loop_a.mid")              # a symlink loop
    os.symlink("loop_a.mid", midi / "loop_b.mid")
    os.mkfifo(midi / "pipe.mid")                               # not a regular file (reading would block)
    locked = root / "irish_oneills1850"
    (locked / "book.abc").write_text("X:1\nT:a\nM:4/4\nL:1/4\nK:C\ncdef|gfed|c4|]\n")
    locked.chmod(0)                                            # a folder without read permission
    try:
        if os.geteuid() == 0:  # root reads anything: make the folder behave as it does for a user
            real = sources._scandir

            def scandir(path):
                if pathlib.Path(path) == locked:
                    raise PermissionError(13, "Permission denied", str(path))
                return real(path)
            monkeypatch.setattr(sources, "_scandir", scandir)
        built = datasets.build(DatasetConfig(name="irish", data_root=str(root), transpose=False),
                               tmp_path / "cache", progress=False, workers=1, file_timeout=30)
    finally:
        locked.chmod(0o755)
    s = built.stats
    assert s["files_total"] == 1 and s["pieces"] == 1
    assert s["skipped"]["not_a_file"] == 2       # x.mid and pipe.mid
    assert s["skipped"]["dangling_link"] == 1
    assert s["skipped"]["symlink_loop"] == 2     # both ends of the loop
    assert s["skipped"]["unreadable_folder"] == 1
    assert s["skipped_units"]["unreadable_folder"] == "folders"
    manifest = json.loads((built.path / "manifest.json").read_text())
    paths = {pathlib.Path(r["path"]).name: r["reason"] for r in manifest["skipped_files"]}
    assert paths["x.mid"] == "not_a_file" and paths["dangling.mid"] == "dangling_link"
    assert paths["irish_oneills1850"] == "unreadable_folder"


@pytest.mark.timeout(120)
def test_a_build_without_one_readable_file_is_an_error(tmp_path):
    root = tmp_path / "data"
    (root / "irish_cre" / "MIDI").mkdir(parents=True)
    (root / "irish_oneills1850").mkdir()
    os.symlink("gone.abc", root / "irish_oneills1850" / "tunes.abc")
    with pytest.raises(FileNotFoundError, match="no readable input file.*dangling_link 1"):
        datasets.build(DatasetConfig(name="irish", data_root=str(root)), tmp_path / "cache", progress=False)
    line = one_error_line(run_cli("--dataset=irish", f"--data_root={root}", f"--cache_dir={tmp_path / 'c'}",
                                  timeout=120))
    assert "no readable input file" in line
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


# ---------------------------------------------------------------- cache_dir is a file


@pytest.mark.timeout(120)
def test_cache_dir_that_is_a_file_is_one_line_before_parsing(tmp_path):
    blocker = tmp_path / "cache_file"
    blocker.write_text("not a folder")
    for cache_dir in (blocker, blocker / "below"):
        with pytest.raises(NotADirectoryError, match="not a folder"):
            datasets.build(DatasetConfig(name="embedded"), cache_dir, progress=False)
        t0 = time.monotonic()
        line = one_error_line(run_cli("--dataset=embedded", f"--cache_dir={cache_dir}", timeout=120))
        assert "cache_dir" in line and str(blocker) in line
        assert time.monotonic() - t0 < 60  # the embedded build (tens of seconds here) never started
