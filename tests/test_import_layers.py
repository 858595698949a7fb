"""Layers and conventions: what imports TensorFlow, settings declared once, one place per command line."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest
from absl import flags

from musicvae_xai import cli, settings
from musicvae_xai.config import HELP, AnalysisError, AnalysisOptions, ConfigError, EvaluationOptions, RunConfig

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Modules that must import without TensorFlow (nor Keras): the settings, the numpy attributes, the
#: readers, the dataset build and the command-line plumbing.
TF_FREE = ("musicvae_xai.config", "musicvae_xai.settings", "musicvae_xai.attributes", "musicvae_xai.representation",
           "musicvae_xai.readers", "musicvae_xai.readers.midi", "musicvae_xai.readers.abc",
           "musicvae_xai.readers.musicxml", "musicvae_xai.readers.pop909", "musicvae_xai.readers.symbtr",
           "musicvae_xai.datasets", "musicvae_xai.datasets.builder", "musicvae_xai.cli",
           "musicvae_xai.cli.train", "musicvae_xai.cli.evaluate", "musicvae_xai.cli.study", "musicvae_xai.study.worker",
           "musicvae_xai.study.runner", "musicvae_xai.music_io", "musicvae_xai.explorer.data",
           "musicvae_xai.serving.commands")


def _run_python(code: str) -> list:
    """The stdout lines of ``python -c code`` in a fresh interpreter on this checkout (it must succeed)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()


def test_config_readers_and_dataset_build_import_without_tensorflow():
    code = ("import importlib, json, sys\n"
            f"for m in {list(TF_FREE)!r}:\n"
            "    importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'tensorflow_probability')"
            " if m in sys.modules)))\n")
    assert json.loads(_run_python(code)[-1]) == []


def test_a_file_goes_to_measures_and_back_and_an_upload_is_read_without_tensorflow(tmp_path):
    code = ("import sys\n"
            "import numpy as np\n"
            "from musicvae_xai import music_io\n"
            "from musicvae_xai.explorer.data import read_upload\n"
            "from musicvae_xai.representation import Vocabulary\n"
            "vocab = Vocabulary()\n"
            "tokens = np.array([[vocab.encode_item(60 + k)] + [vocab.hold_id] * 23 for k in range(3)], np.int32)\n"
            f"path = music_io.write_measures(tokens, vocab, {str(tmp_path / 'a.mid')!r})\n"
            "assert (music_io.read_file(path, vocab).tokens == tokens).all()\n"
            "upload = read_upload('a.mid', open(path, 'rb').read(), vocab)\n"
            "assert (upload['tokens'] == tokens).all() and upload['bar_numbers'] == [1, 2, 3]\n"
            "print('tensorflow' in sys.modules)\n")
    assert _run_python(code)[-1] == "False"


def test_the_tensorflow_twins_live_apart():
    import musicvae_xai.attributes as attrs
    assert not any(name.startswith("tf_") for name in vars(attrs)), "numpy attributes module holds TF code"
    spec = importlib.util.find_spec("musicvae_xai.tf_attributes")
    assert spec is not None


def test_every_run_setting_is_declared_once_with_help():
    for field in RunConfig.declared_fields():
        assert field.metadata.get("help"), field.name
    assert HELP == {f.name: f.metadata["help"] for f in RunConfig.declared_fields()}
    assert {"beta", "lambda_d", "hidden_size"} <= set(HELP) and "model_settings" not in HELP
    assert "enable_op_determinism" in HELP["deterministic"]


def test_resumable_settings_are_read_from_their_declarations():
    from musicvae_xai import config
    from musicvae_xai.study import worker

    names = {f.name for f in RunConfig.declared_fields()}
    assert config.LOCATION_FIELDS < config.RESUMABLE_FIELDS < names
    assert worker.LOCATION_FIELDS is config.LOCATION_FIELDS  # one set, not a copy kept in step
    assert {"run_dir", "cache_dir", "checkpoint_every", "eval_summaries"} <= config.LOCATION_FIELDS
    assert {"epochs", "train_steps", "xla", "cpu_threading", "deterministic"} <= (
        config.RESUMABLE_FIELDS - config.LOCATION_FIELDS)
    marked = {f.name for f in RunConfig.declared_fields() if f.metadata.get("resumable")}
    assert marked == config.RESUMABLE_FIELDS
    with pytest.raises(ValueError, match="resumable must be"):
        settings.setting(1, "x", resumable="sometimes")


def test_serve_client_flags_are_the_options_fields():
    code = ("import dataclasses\n"
            "from absl import flags\n"
            "from musicvae_xai.cli import serve_client\n"
            "from musicvae_xai.serving.commands import Options\n"
            "print(sorted(f.name for f in dataclasses.fields(Options) if f.name not in flags.FLAGS))\n"
            "print(sorted(f.name for f in flags.FLAGS.get_key_flags_for_module(serve_client)))\n")
    missing, own = _run_python(code)[-2:]
    assert missing == "[]"  # every option is a flag
    assert own == "['format', 'model', 'retries', 'target', 'timeout', 'version']"  # the connection flags only


def test_flags_are_generated_from_the_fields():
    fv = flags.FlagValues()
    settings.define_flags(RunConfig, flag_values=fv)
    for field in RunConfig.declared_fields():
        flag = fv[field.name]
        want = list(field.default) if isinstance(field.default, tuple) else field.default
        assert flag.default == want and flag.help == field.metadata["help"], field.name
    fv(["prog", "--latent_dim=7", "--attributes=note_range,contour", "--noxla", "--learning_rate=0.5"])
    config = settings.from_flags(RunConfig, flag_values=fv)
    assert config.latent_dim == 7 and config.attributes == ("note_range", "contour") and config.xla is False
    assert config.learning_rate == 0.5 and config.hidden_size == RunConfig().hidden_size

    ev = flags.FlagValues()
    settings.define_flags(EvaluationOptions, flag_values=ev)
    assert "expect_finished" not in ev and ev["allow_unfinished"].default is False
    ev(["prog", "--allow_unfinished", "--sweep_steps=3"])
    options = settings.from_flags(EvaluationOptions, flag_values=ev)
    assert options.expect_finished is False and options.sweep_steps == 3
    assert settings.from_flags(EvaluationOptions, flag_values=ev, split="validation").split == "validation"

    an = flags.FlagValues()
    settings.define_flags(AnalysisOptions, flag_values=an)
    assert an["input_bar_number"].flag_type() == "int" and an["input_file"].flag_type() == "string"
    an(["prog", "--input_bar_number=3", "--qpm=90"])
    assert settings.from_flags(AnalysisOptions, flag_values=an).input_bar_number == 3
    with pytest.raises(AnalysisError, match="qpm must be positive, got 0"):
        AnalysisOptions(qpm=0).validate()


@pytest.mark.parametrize("changes, message", [
    ({"strategy": "mesh"}, "unknown strategy 'mesh'; choose one of default, mirrored, multi_worker"),
    ({"init": "zeros"}, "unknown init 'zeros'"),
    ({"hidden_size": 0}, r"hidden_size must be in \[1, 8192\], got 0"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ({"latent_dim": 5000}, r"latent_dim must be in \[1, 4096\], got 5000"),
    ({"learning_rate": 0.0}, "learning_rate must be positive, got 0.0"),
    ({"attributes": ("tempo",)}, "unknown attribute"),
    ({"attributes": ()}, "must name at least one attribute"),
    ({"model_version": 1}, "model_version 1 is not this code's"),
    ({"latent_dim": 2}, "smaller than the 4 regularised attributes"),
])
def test_declared_checks_raise_one_line(changes, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**changes).validate()


def test_evaluation_options_declared_checks():
    with pytest.raises(ValueError, match="sweep_steps must be at least 2, got 1"):
        EvaluationOptions(sweep_steps=1).validate()
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        EvaluationOptions(batch_size=0).validate()
    assert EvaluationOptions().validate().batch_size == 256


def test_every_command_is_a_thin_module_in_cli_and_old_paths_still_run_it():
    cli_dir = REPO_ROOT / "musicvae_xai" / "cli"
    for script, module in cli.ENTRY_POINTS.items():
        assert module.startswith("musicvae_xai.cli."), script
        assert (cli_dir / (module.rsplit(".", 1)[1] + ".py")).is_file(), module
        entry = getattr(cli, script.replace("musicvae-", "").replace("-", "_") + "_main")
        assert callable(entry) and module in entry.__doc__
    old = {"musicvae_xai.train": "train", "musicvae_xai.data": "data", "musicvae_xai.evaluate": "evaluate",
           "musicvae_xai.analysis.__main__": "analysis", "musicvae_xai.explorer.__main__": "explorer",
           "musicvae_xai.study.__main__": "study", "musicvae_xai.serving.client": "serve_client"}
    for path, name in old.items():
        text = pathlib.Path(importlib.util.find_spec(path).origin).read_text()
        assert f"from musicvae_xai.cli.{name} import" in text and "run()" in text, path
    for path in ("musicvae_xai.export", "musicvae_xai.serving.models_config", "musicvae_xai.study.worker"):
        text = pathlib.Path(importlib.util.find_spec(path).origin).read_text()  # library modules: no main
        assert "\ndef main(" not in text and "__main__" not in text, path


@pytest.mark.parametrize("module", ["musicvae_xai.cli.train", "musicvae_xai.cli.study_worker"])
def test_cli_modules_run_as_python_m(module, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-m", module, "--config=nonesuch"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1].startswith("error: 'nonesuch' is neither a file nor a shipped")


#: Modules kept only so that older ``python -m`` paths run a command: the one place outside ``cli/``
#: that imports it.
CLI_SHIMS = ("musicvae_xai.train", "musicvae_xai.data", "musicvae_xai.evaluate", "musicvae_xai.analysis.__main__",
             "musicvae_xai.explorer.__main__", "musicvae_xai.study.__main__", "musicvae_xai.pretrained.__main__",
             "musicvae_xai.serving.client")


def _package_modules() -> dict:
    """{dotted module name: path} of every module of the package."""
    out = {}
    for path in (REPO_ROOT / "musicvae_xai").rglob("*.py"):
        parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: pathlib.Path, name: str, modules: dict, top_level: bool) -> set:
    """The package modules ``path`` imports (``top_level``: only those imported when it is imported, not
    inside functions), with the packages above each (their ``__init__`` runs first)."""
    import ast

    is_package = path.name == "__init__.py"
    found = set()

    def visit(nodes):
        for node in nodes:
            if top_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".")[:None if is_package else -1]
                    package = package[:len(package) - node.level + 1]
                    base = ".".join(package + ([base] if base else []))
                found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
            visit(list(ast.iter_child_nodes(node)))

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    deps = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        while target and target != name and not name.startswith(target + "."):
            deps.add(target)
            target = target.rpartition(".")[0]
    return deps


def _cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return found


def test_the_package_has_no_import_cycle():
    modules = _package_modules()
    graph = {name: _imports(path, name, modules, top_level=True) for name, path in modules.items()}
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check finds one


def test_no_library_module_imports_the_command_lines():
    modules = _package_modules()

    def in_cli(name: str) -> bool:
        return name == "musicvae_xai.cli" or name.startswith("musicvae_xai.cli.")

    upward = sorted(name for name, path in modules.items() if not in_cli(name) and name not in CLI_SHIMS
                    and any(in_cli(d) for d in _imports(path, name, modules, top_level=False)))
    assert upward == []
