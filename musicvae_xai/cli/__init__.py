"""The command lines: one thin module per command in this package, the console scripts and the one
start-up path every command line shares.

Every command is ``musicvae_xai/cli/NAME.py`` (``python -m musicvae_xai.cli.NAME``), with ``main(argv)``
(the absl main) and ``run()`` (resolve configuration names, define any flags defined late, ``app.run``);
the library modules hold no ``main``. The console scripts of ``pyproject.toml`` (``musicvae-train``, ...)
are the ``*_main`` functions here, which import the command's module and call its ``run()``. The older
``python -m`` paths (``musicvae_xai.train``, ``.data``, ``.evaluate``, ``.export``, ``.analysis``,
``.explorer``, ``.study``, ``.study.worker``, ``.serving.client``, ``.serving.models_config``) are kept
as shims that call the same ``run()``. Every form resolves named configurations the same way
(``resolve_sys_argv``):

- ``--flagfile=NAME`` / ``--config=NAME`` (and ``--flagfile NAME``): when NAME is not an existing
  file (a folder named ``quickstart`` does not count), the flagfile shipped in the package,
  ``musicvae_xai/configs/NAME.flags`` (a ``.flags`` suffix and ``study/`` sub-folder are allowed:
  ``--config=study/cpu_small``). A path still works.
- ``--study=NAME`` (the study runner): ``musicvae_xai/configs/study/NAME.flags`` likewise.

A flagfile must be a regular UTF-8 text file of at most ``MAX_FLAGFILE_BYTES`` whose lines are all
flags (``--name=value``), blank or comments (``#``, ``//``): ``--config=/etc/passwd``, a folder, a
FIFO (never opened), a binary file are refused with one line naming the file (absl would train the
defaults without a word, hang, or print a traceback). A ``--flagfile=NAME`` line inside a flagfile is
resolved the same way; a flagfile holding one is given to absl as its flags, expanded in place.

An unknown name stops with one line listing the names that exist.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Callable, Sequence

#: console-script name -> the command's module (what ``python -m`` takes).
ENTRY_POINTS = {
    "musicvae-train": "musicvae_xai.cli.train",
    "musicvae-data": "musicvae_xai.cli.data",
    "musicvae-evaluate": "musicvae_xai.cli.evaluate",
    "musicvae-export": "musicvae_xai.cli.export",
    "musicvae-analysis": "musicvae_xai.cli.analysis",
    "musicvae-explorer": "musicvae_xai.cli.explorer",
    "musicvae-study": "musicvae_xai.cli.study",
    "musicvae-study-worker": "musicvae_xai.cli.study_worker",
    "musicvae-serve-client": "musicvae_xai.cli.serve_client",
    "musicvae-serving-config": "musicvae_xai.cli.serving_config",
    "musicvae-pretrained": "musicvae_xai.cli.pretrained",
}


class ConfigNameError(ValueError):
    """A ``--flagfile``/``--config``/``--study`` name that is neither a file nor a shipped config."""


def configs_dir() -> str:
    """The folder of the flagfiles shipped in the package (``musicvae_xai/configs``)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def available_configs(sub: str = "") -> list:
    """Names of the shipped flagfiles (without ``.flags``), e.g. ``["quickstart", ...]``."""
    folder = os.path.join(configs_dir(), sub)
    if not os.path.isdir(folder):
        return []
    return sorted(f[:-len(".flags")] for f in os.listdir(folder) if f.endswith(".flags"))


def resolve_config(value: str, sub: str = "") -> str:
    """An existing file, or any other path-like value, is returned as it is; a name (``quickstart``,
    ``quickstart.flags``, ``configs/quickstart.flags``, ``study/cpu_v2``) is the shipped
    ``configs/[sub/]NAME.flags``."""
    if os.path.isfile(value):
        return value
    name = value[:-len(".flags")] if value.endswith(".flags") else value
    for prefix in ("configs/", "musicvae_xai/configs/"):  # paths of a checkout, from elsewhere
        if name.startswith(prefix):
            name = name[len(prefix):]
    if os.path.isabs(value) or "/" in name.replace("study/", "", 1):
        return value  # a path that does not exist: the command itself says so
    if sub and name.startswith(sub + "/"):
        name = name[len(sub) + 1:]
    path = os.path.join(configs_dir(), sub, name + ".flags")
    if os.path.isfile(path):
        return path
    names = ", ".join(available_configs(sub)) or "none"
    raise ConfigNameError(f"{value!r} is neither a file nor a shipped configuration "
                          f"(shipped{' ' + sub if sub else ''}: {names})")


#: Most bytes of a flagfile (the shipped ones hold under 4 KB).
MAX_FLAGFILE_BYTES = 1 << 20
_MAX_NESTING = 8


def flagfile_lines(path: str) -> list:
    """(line number, text) of every line of a flagfile that is neither blank nor a comment (``#``,
    ``//``), stripped. Raises ConfigNameError (one line naming the file) for a path that does not
    exist or is not a regular file (a folder, a FIFO: never opened), a file over
    ``MAX_FLAGFILE_BYTES``, binary (a NUL byte) or not UTF-8."""
    if not os.path.exists(path):
        raise ConfigNameError(f"flagfile {path} does not exist")
    if not os.path.isfile(path):
        raise ConfigNameError(f"flagfile {path} is not a regular file")
    size = os.path.getsize(path)
    if size > MAX_FLAGFILE_BYTES:
        raise ConfigNameError(f"flagfile {path} holds {size} bytes, over the limit of {MAX_FLAGFILE_BYTES} "
                              "for a list of flags")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FLAGFILE_BYTES + 1)
    except OSError as e:
        raise ConfigNameError(f"flagfile {path} cannot be read ({e.strerror or e})") from None
    if b"\x00" in data:
        raise ConfigNameError(f"flagfile {path} is binary (it holds a NUL byte at byte {data.index(0)}), "
                              "not a list of --name=value lines")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigNameError(f"flagfile {path} is not UTF-8 text (byte {e.start})") from None
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith(("#", "//"))]


def expand_flagfile(path: str, _seen: tuple = ()) -> list:
    """The arguments that stand for ``--flagfile=PATH``: ``["--flagfile=PATH"]`` after checking every
    line is a flag, or, when the file holds ``--flagfile=NAME`` lines, its flags with those expanded in
    place (absl would read NAME as a path relative to the working directory). Raises ConfigNameError
    (one line naming the file and line)."""
    real = os.path.realpath(path)
    if real in _seen or len(_seen) >= _MAX_NESTING:
        raise ConfigNameError(f"flagfile {path} includes itself (--flagfile lines nested {len(_seen)} deep)")
    args, nested = [], False
    for number, line in flagfile_lines(path):
        if not line.startswith("-"):
            raise ConfigNameError(f"{path}:{number}: a flagfile must contain flags (--name=value), not {line[:60]!r}")
        key, _, value = line.partition("=")
        if key.lstrip("-") != "flagfile":
            args.append(line)
            continue
        nested = True
        try:
            args.extend(expand_flagfile(resolve_config(value.strip()), _seen + (real,)))
        except ConfigNameError as e:
            raise ConfigNameError(f"{path}:{number}: {e}") from None
    return args if nested else [f"--flagfile={path}"]


_RESOLVED = {"--flagfile": ("--flagfile", ""), "--config": ("--flagfile", ""), "--study": ("--study", "study")}


def resolve_argv(argv: Sequence[str]) -> list:
    """argv with ``--flagfile``/``--config``/``--study`` names turned into paths (see the module doc)."""
    out, i, argv = [], 0, list(argv)
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key in _RESOLVED and i > 0:
            flag, sub = _RESOLVED[key]
            if not eq:
                if i + 1 >= len(argv):
                    raise ConfigNameError(f"{key} needs a value")
                value, i = argv[i + 1], i + 1
            path = resolve_config(value, sub)
            if flag == "--flagfile":
                out.extend(expand_flagfile(path))
            else:
                out.append(f"{flag}={path}")
        else:
            out.append(arg)
        i += 1
    return out


def resolve_sys_argv() -> None:
    """Resolves configuration names in ``sys.argv`` in place; an unknown name exits with one line."""
    try:
        sys.argv[:] = resolve_argv(sys.argv)
    except ConfigNameError as e:
        sys.exit(f"error: {e}")


def run_command(main: Callable[[list], None], *before: Callable[[], None]) -> None:
    """What every command's ``run()`` does: resolve configuration names in ``sys.argv``, call ``before``
    (flags defined late, required flags), then ``absl.app.run(main)``."""
    from absl import app

    resolve_sys_argv()  # --config=NAME, --flagfile=NAME, --study=NAME: the shipped configurations
    for step in before:
        step()
    app.run(main)


def _entry(script: str) -> Callable[[], None]:
    def entry() -> None:
        importlib.import_module(ENTRY_POINTS[script]).run()

    entry.__name__ = script.replace("musicvae-", "").replace("-", "_") + "_main"
    entry.__doc__ = f"``{script}``: ``python -m {ENTRY_POINTS[script]}``."
    return entry


# Console scripts. Named ``*_main`` so they do not shadow the command modules of this package.
train_main = _entry("musicvae-train")
data_main = _entry("musicvae-data")
evaluate_main = _entry("musicvae-evaluate")
export_main = _entry("musicvae-export")
analysis_main = _entry("musicvae-analysis")
explorer_main = _entry("musicvae-explorer")
study_main = _entry("musicvae-study")
study_worker_main = _entry("musicvae-study-worker")
serve_client_main = _entry("musicvae-serve-client")
serving_config_main = _entry("musicvae-serving-config")
pretrained_main = _entry("musicvae-pretrained")
