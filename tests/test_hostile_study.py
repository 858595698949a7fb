"""Hostile study files and flagfiles: grids too large to write, overrides that match nothing, two runners
on one study folder, and flagfiles that are not lists of flags (``/etc/passwd``, binary, a FIFO,
nested). Each is refused with one line naming the input, before anything is written."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from musicvae_xai import cli
from musicvae_xai.study import grid
from musicvae_xai.study.runner import RUNNER_LOCK_FILENAME, StudyRunner


def run_cli(module: str, *args, timeout: float = 120):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]


def study_file(tmp_path, body: str, name: str = "study.flags") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


# ---------------------------------------------------------------------------------------------------
# Study files


@pytest.mark.parametrize("sizes, count", [((10, 10, 10, 10, 100), "1,000,000"),
                                          ((100, 100, 100, 100, 100), "10,000,000,000")])
def test_a_huge_grid_is_refused_with_its_count_before_anything_is_written(tmp_path, sizes, count):
    seeds, models, datasets, sets, latents = sizes
    path = study_file(tmp_path, f"""\
        --seeds={','.join(map(str, range(seeds)))}
        --models={','.join(f'm{i}' for i in range(models))}
        --datasets={','.join(f'd{i}' for i in range(datasets))}
        --latent_sizes={','.join(map(str, range(1, latents + 1)))}
        """ + "".join(f"--attribute_set=note_density,a{i}\n" for i in range(sets)))
    t0 = time.perf_counter()
    with pytest.raises(grid.StudyError) as e:
        grid.expand(grid.load_study(path), str(tmp_path / "out"))
    assert time.perf_counter() - t0 < 5.0
    assert f"the grid has {count} configurations" in str(e.value) and "over the limit of 10,000" in str(e.value)
    r = run_cli("musicvae_xai.cli.study", f"--study={path}", f"--study_dir={tmp_path / 'out'}",
                f"--emit_commands={tmp_path / 'cmds.txt'}")
    assert r.returncode != 0 and count in one_line(r.stderr)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cmds.txt").exists()


def test_an_override_that_matches_no_configuration_is_an_error(tmp_path):
    path = study_file(tmp_path, """\
        --models=measure_vae
        --datasets=embedded
        --latent_sizes=4
        --attribute_set=two
        --override=dataset=embeded:train_steps=99999
        """)
    with pytest.raises(grid.StudyError, match=r"study\.flags:5: --override=dataset=embeded:train_steps=99999 "
                                              r"matches no configuration of the grid \(dataset is one of embedded\)"):
        grid.expand(grid.load_study(path), str(tmp_path / "out"))


def test_a_base_study_s_override_outside_this_grid_is_fine(tmp_path):
    path = study_file(tmp_path, """\
        --base_flagfile=study/paper
        --datasets=embedded
        --models=measure_vae
        --latent_sizes=4
        --override=model=measure_vae:train_steps=3
        """)
    spec = grid.load_study(path)  # paper's own override (dataset=irish) matches nothing here
    entries = grid.expand(spec, str(tmp_path / "out"))
    assert {e.config.train_steps for e in entries} == {3}


def test_a_binary_study_file_is_one_line(tmp_path):
    path = tmp_path / "study.flags"
    path.write_bytes(b"--models=measure_vae\n\x00\x01\x02")
    with pytest.raises(grid.StudyError, match="is binary"):
        grid.load_study(str(path))


@pytest.mark.timeout(120)
def test_a_second_runner_on_a_study_folder_is_refused_naming_the_first(tmp_path):
    study_dir = tmp_path / "study"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from musicvae_xai.training import runlock; "
         f"runlock.acquire({str(study_dir)!r}, {RUNNER_LOCK_FILENAME!r}, 'study runner'); "
         "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        path = study_file(tmp_path, "--models=measure_vae\n--datasets=embedded\n--latent_sizes=4\n"
                                    "--attribute_set=two\n")
        spec = grid.load_study(path)
        runner = StudyRunner(spec, grid.expand(spec, str(study_dir)), str(study_dir), log=lambda line: None)
        with pytest.raises(grid.StudyError, match=f"in use by another study runner \\(pid {holder.pid}\\)"):
            runner.run()
        assert sorted(os.listdir(study_dir)) == [RUNNER_LOCK_FILENAME]  # nothing else written
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------------------------------------------
# Flagfiles


def test_a_file_that_is_not_a_list_of_flags_is_refused(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(cli.ConfigNameError, match=r"passwd:1: a flagfile must contain flags"):
        cli.resolve_argv(["prog", f"--config={passwd}"])
    r = run_cli("musicvae_xai.cli.train", "--config=/etc/passwd", timeout=60)
    assert r.returncode != 0 and "/etc/passwd:1: a flagfile must contain flags" in one_line(r.stderr)


def test_binary_and_nested_binary_flagfiles_are_one_line(tmp_path):
    binary = tmp_path / "binary.flags"
    binary.write_bytes(b"--train_steps=3\n\x00\xff\xfe")
    with pytest.raises(cli.ConfigNameError, match=r"binary\.flags is binary"):
        cli.resolve_argv(["prog", f"--flagfile={binary}"])
    outer = tmp_path / "outer.flags"
    outer.write_text(f"--seed=1\n--flagfile={binary}\n")
    with pytest.raises(cli.ConfigNameError, match=r"outer\.flags:2: flagfile .*binary\.flags is binary"):
        cli.resolve_argv(["prog", f"--flagfile={outer}"])
    r = run_cli("musicvae_xai.cli.train", f"--flagfile={outer}", timeout=60)
    assert r.returncode != 0 and "is binary" in one_line(r.stderr)


def test_a_fifo_or_a_folder_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "config.flags"
    os.mkfifo(fifo)
    with pytest.raises(cli.ConfigNameError, match="is not a regular file"):
        cli.resolve_argv(["prog", f"--flagfile={fifo}"])
    with pytest.raises(cli.ConfigNameError, match="is not a regular file"):
        cli.resolve_argv(["prog", f"--flagfile={tmp_path}"])


def test_a_nested_flagfile_is_resolved_by_name(tmp_path):
    mine = tmp_path / "mine.flags"
    mine.write_text("# my run\n--flagfile=quickstart\n--train_steps=3\n")
    argv = cli.resolve_argv(["prog", f"--flagfile={mine}", "--seed=2"])
    assert argv == ["prog", f"--flagfile={cli.resolve_config('quickstart')}", "--train_steps=3", "--seed=2"]
    loop = tmp_path / "loop.flags"
    loop.write_text(f"--flagfile={loop}\n")
    with pytest.raises(cli.ConfigNameError, match="includes itself"):
        cli.resolve_argv(["prog", f"--flagfile={loop}"])
