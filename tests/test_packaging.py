"""Packaging: named configurations, console scripts, quiet start-up, and the wheel in a fresh venv."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

from musicvae_xai import cli

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_named_configurations_resolve_to_shipped_flagfiles(tmp_path, monkeypatch):
    shipped = pathlib.Path(cli.configs_dir())
    assert (REPO_ROOT / "configs").resolve() == shipped.resolve()  # the checkout's top-level configs/: one copy
    monkeypatch.chdir(tmp_path)  # a checkout path, from elsewhere
    assert (shipped / "quickstart.flags").is_file()
    assert "quickstart" in cli.available_configs() and "cpu_small" in cli.available_configs("study")
    assert cli.resolve_config("quickstart") == str(shipped / "quickstart.flags")
    assert cli.resolve_config("quickstart.flags") == str(shipped / "quickstart.flags")
    assert cli.resolve_config("configs/quickstart.flags") == str(shipped / "quickstart.flags")
    assert cli.resolve_config("study/cpu_small") == str(shipped / "study" / "cpu_small.flags")
    assert cli.resolve_config("cpu_small", "study") == str(shipped / "study" / "cpu_small.flags")
    own = tmp_path / "quickstart"  # an existing path wins over a shipped name
    own.write_text("--train_steps=1\n")
    assert cli.resolve_config(str(own)) == str(own)
    with pytest.raises(cli.ConfigNameError, match="quickstrat.*shipped: .*quickstart"):
        cli.resolve_config("quickstrat")
    assert cli.resolve_config("/nonexistent/x.flags") == "/nonexistent/x.flags"  # the command says it's missing
    assert cli.resolve_config("some/dir/x.flags") == "some/dir/x.flags"


def test_resolve_argv_rewrites_only_configuration_flags():
    shipped = pathlib.Path(cli.configs_dir())
    argv = ["prog", "--config=quickstart", "--flagfile", "quickstart_adversarial", "--study=cpu_small",
            "--run_dir=configs", "quickstart"]
    assert cli.resolve_argv(argv) == [
        "prog", f"--flagfile={shipped / 'quickstart.flags'}", f"--flagfile={shipped / 'quickstart_adversarial.flags'}",
        f"--study={shipped / 'study' / 'cpu_small.flags'}", "--run_dir=configs", "quickstart"]
    with pytest.raises(cli.ConfigNameError, match="needs a value"):
        cli.resolve_argv(["prog", "--flagfile"])


def test_console_scripts_match_entry_points():
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(cli.ENTRY_POINTS)
    for script, target in scripts.items():
        module, func = target.split(":")
        assert module == "musicvae_xai.cli" and func == cli.entry_name(script) and callable(getattr(cli, func)), script


def _run(args, cwd, env=None, timeout=300):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_start_up_is_quiet_but_keeps_real_warnings(tmp_path):
    code = ("import sys, os\n"
            "import musicvae_xai.train\n"
            "import tensorflow as tf, note_seq\n"
            "os.write(2, b'a real problem\\n')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MUSICVAE_XAI_VERBOSE_STARTUP")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    res = _run([sys.executable, "-c", code], tmp_path, env)
    assert res.returncode == 0, res.stderr
    for noise in ("absl::InitializeLog", "oneDNN custom operations", "Could not find cuda drivers", "ffmpeg"):
        assert noise not in res.stderr, res.stderr
    assert "a real problem" in res.stderr
    env["MUSICVAE_XAI_VERBOSE_STARTUP"] = "1"  # everything, when asked for
    res = _run([sys.executable, "-c", code], tmp_path, env)
    assert "oneDNN custom operations" in res.stderr or "cuda" in res.stderr.lower(), res.stderr


def test_unknown_configuration_name_is_one_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    res = _run([sys.executable, "-m", "musicvae_xai.train", "--config=nonesuch"], tmp_path, env)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1].startswith("error: 'nonesuch' is neither a file nor a shipped")


@pytest.mark.slow
def test_wheel_installs_and_runs_the_quickstart_outside_the_checkout(tmp_path):
    """Builds the wheel, installs it (without dependencies: they come from this environment's
    site-packages, as a user's would from the registry) into a fresh venv, and runs the quickstart for
    a few steps through the console scripts from a folder outside the checkout."""
    dist = tmp_path / "dist"
    res = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist),
                str(REPO_ROOT)], tmp_path, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    wheel = next(dist.glob("musicvae_xai-*.whl"))
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("musicvae_xai/py.typed", "musicvae_xai/configs/quickstart.flags",
                   "musicvae_xai/configs/study/cpu_small.flags", "musicvae_xai/explorer/static/index.html",
                   "musicvae_xai/pretrained/README.md", "musicvae_xai/pretrained/figures.json",
                   *(f"musicvae_xai/pretrained/measure_vae_irish/1/{f}" for f in (
                       "saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001",
                       "assets.extra/config.json", "assets.extra/controls.json", "assets.extra/export.json"))):
        assert needed in names, needed
    assert any(n.startswith("musicvae_xai/embedded_data/") and n.endswith(".abc") for n in names)
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    py, bin_dir = venv / "bin" / "python", venv / "bin"
    # The dependencies come from this environment's site-packages, named in a plain path line of a .pth
    # file (so the venv's own site-packages stays first and this environment's .pth files, among them
    # the editable install of the checkout, are not run).
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).stdout.strip()
    deps = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)
            and not p.startswith(str(venv))]  # any environment: a virtualenv's (.venv, venv) or the system's
    pathlib.Path(site, "zz_dependencies.pth").write_text("\n".join(deps) + "\n")
    res = _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", str(wheel)], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    # The editable install of the checkout must not be what runs: the venv's own copy is first.
    res = _run([str(py), "-c", "import musicvae_xai, sys; print(musicvae_xai.__file__)"], work, env)
    assert str(venv) in res.stdout, res.stdout + res.stderr
    res = _run([str(bin_dir / "musicvae-train"), "--config=quickstart", "--train_steps=3", "--eval_every=3",
                "--checkpoint_every=3", "--hidden_size=16", "--latent_dim=8", "--num_layers=1", "--cache_dir=cache"],
               work, env, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert (work / "runs" / "quickstart").is_dir()
    res = _run([str(bin_dir / "musicvae-evaluate"), "--run_dir=runs/quickstart", "--max_measures=64"], work, env,
               timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "token accuracy" in res.stdout


def test_every_skip_is_named_with_its_reason(tmp_path):
    """The README's test command prints each skipped test and why (``-rs`` in pytest.ini's addopts)."""
    (tmp_path / "test_skips.py").write_text("import pytest\n\n\ndef test_skipped():\n"
                                            "    pytest.skip('no widget on this machine')\n")
    res = _run([sys.executable, "-m", "pytest", "-c", str(REPO_ROOT / "pytest.ini"), "--rootdir", str(tmp_path),
                "-n", "0", "-p", "no:cacheprovider", str(tmp_path / "test_skips.py")], tmp_path)
    assert "SKIPPED [1] test_skips.py:5: no widget on this machine" in res.stdout, res.stdout[-2000:]
