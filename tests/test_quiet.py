"""The main job prints only lines a user can act on, each once: TensorFlow's Python INFO lines
(checkpoint sharding, signature input renaming, SavedModel assets and fingerprints, variable restoring)
are filtered where they are logged, export verification loads without a deprecation warning, and no
command says the same thing twice."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

#: absl's prefix of a logged line: ``I1206 07:20:18.079794 140322044439424 loop.py:74] ``.
ABSL_PREFIX = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.-]+:\d+\] ")

#: Every line the main job may print (after absl's prefix), per command: what a user reads or acts on.
ALLOWED = {
    "train": [
        r"threads: \d+ inter-op thread\(s\) x \d+ intra-op threads? \(--cpu_threading=\w+\)",
        r"dataset \w+: building \d+ files into \S+",
        r"dataset \w+: reusing cache \S+",
        r"training \w+ on \w+: \d+ training measures, \d+ steps/epoch, \d+ steps, \d+ replica\(s\)",
        r"step \d+/\d+ \(epoch \d+\) train: .+ \| validation: .+",
        r"done: (\w+=[-+0-9.eE]+|\w+=nan)( \w+=[-+0-9.naeE]+)*",
    ],
    "evaluate": [
        r"dataset \w+: reusing cache \S+",
        r"wrote \S+/evaluation_test\.json",
        # and the report's own table, compared line by line with the report written (see below)
    ],
    "export": [
        r"\S+/exports/quickstart/\d+|exports/quickstart/\d+",
    ],
    "analysis": [
        r"dataset \w+: reusing cache \S+",
        r"wrote \S+\.(png|html|json)",
        r"skipped [^:]+: .+",
        r"wrote \d+ MIDI files under \S+",
        r"open \S+index\.html",
    ],
}

#: The README's main job, with a tiny model trained for a few steps on top of ``--config=quickstart``.
TINY = ["--train_steps=20", "--hidden_size=16", "--latent_dim=6", "--eval_every=10",
        "--checkpoint_every=10", "--batch_size=16"]


def _command(script: str, module: str) -> list:
    """The console script beside this interpreter (as the README runs it), else ``python -m``."""
    found = shutil.which(script, path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", module]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "MUSICVAE_XAI_VERBOSE_STARTUP")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _messages(output: str) -> list:
    """The non-blank lines of ``output`` without absl's prefix."""
    return [ABSL_PREFIX.sub("", line).rstrip() for line in output.splitlines() if line.strip()]


def unexpected_lines(messages: list, patterns: list) -> list:
    """The messages no pattern matches in full."""
    return [m for m in messages if not any(re.fullmatch(p, m) for p in patterns)]


def repeated_lines(messages: list) -> list:
    """The messages printed more than once."""
    seen, twice = set(), []
    for m in messages:
        if m in seen and m not in twice:
            twice.append(m)
        seen.add(m)
    return twice


def test_line_checks_catch_noise_and_repeats():
    noise = ["I1206 07:26:04.450798 140331645459328 functional_saver.py:440] Sharding callback duration: "
             "181 microseconds", "step 10/20 (epoch 1) train: loss=1 | validation: loss=2"]
    messages = _messages("\n".join(noise))
    assert unexpected_lines(messages, ALLOWED["train"]) == ["Sharding callback duration: 181 microseconds"]
    assert repeated_lines(_messages("wrote a.json\n\nwrote a.json\n")) == ["wrote a.json"]
    assert repeated_lines(_messages("wrote a.json\nwrote b.json\n")) == []


def test_tensorflow_info_lines_are_dropped_and_other_lines_kept(tmp_path):
    """A checkpoint write logs "Sharding callback duration" from TensorFlow's own module (through absl's
    logger): dropped; a warning and the INFO lines of any other code still show."""
    code = ("import os\n"
            "import musicvae_xai\n"
            "import tensorflow as tf\n"
            "from absl import logging\n"
            "logging.use_absl_handler()\n"
            "logging.set_verbosity(logging.INFO)\n"
            "tf.train.Checkpoint(v=tf.Variable(1.0)).write(os.path.join(os.getcwd(), 'ckpt'))\n"
            "tf.get_logger().info('an info line of the user')\n"
            "tf.get_logger().warning('a tensorflow warning')\n"
            "logging.info('an info line of the package')\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Sharding callback" not in res.stderr
    for kept in ("an info line of the user", "a tensorflow warning", "an info line of the package"):
        assert kept in res.stderr, res.stderr
    env = dict(_env(), MUSICVAE_XAI_VERBOSE_STARTUP="1")  # everything, when asked for
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert "Sharding callback duration" in res.stderr, res.stderr


@pytest.mark.slow
def test_main_job_prints_only_lines_a_user_can_act_on(tmp_path):
    """The README's first command (train, evaluate, export, analysis on runs/quickstart) in a fresh
    folder with a fresh dataset cache; every line of each command's output must be in ``ALLOWED`` (or be
    the evaluation's table) and no line may be printed twice by one command."""
    cache = str(tmp_path / "cache")
    commands = {
        "train": _command("musicvae-train", "musicvae_xai.cli.train")
        + ["--config=quickstart", f"--cache_dir={cache}", *TINY],
        "evaluate": _command("musicvae-evaluate", "musicvae_xai.cli.evaluate") + ["--run_dir=runs/quickstart"],
        "export": _command("musicvae-export", "musicvae_xai.cli.export")
        + ["--run_dir=runs/quickstart", "--export_base=exports/quickstart"],
        "analysis": _command("musicvae-analysis", "musicvae_xai.cli.analysis")
        + ["--run_dir=runs/quickstart", "--output_dir=runs/quickstart/analysis"],
    }
    problems = []
    for name, args in commands.items():
        res = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=1800)
        assert res.returncode == 0, f"{name} failed:\n{res.stdout}\n{res.stderr}"
        messages = _messages(res.stdout + "\n" + res.stderr)
        if name == "evaluate":  # the report's table is what the command is for
            from musicvae_xai.evaluation import format_report

            with open(tmp_path / "runs" / "quickstart" / "evaluation_test.json", encoding="utf-8") as f:
                table = set(_messages(format_report(json.load(f))))
            assert table and table <= set(messages), "the evaluation table is not printed in full"
            messages = [m for m in messages if m not in table]
        problems += [f"{name}: not a line a user can act on: {m}" for m in unexpected_lines(messages, ALLOWED[name])]
        problems += [f"{name}: printed twice: {m}" for m in repeated_lines(messages)]
    assert not problems, "\n".join(problems)
