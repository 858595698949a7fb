"""The command lines: one thin module per command in this package, the console scripts and the one
start-up path every command line shares.

Every command is ``musicvae_xai/cli/NAME.py`` (``python -m musicvae_xai.cli.NAME``), with ``main(argv)``
(the absl main) and ``run()`` (resolve configuration names, define any flags defined late, ``app.run``);
the library modules hold no ``main``. The console scripts of ``pyproject.toml`` (``musicvae-train``, ...)
are the ``*_main`` functions here, which import the command's module and call its ``run()``. The older
``python -m`` paths (``musicvae_xai.train``, ``.data``, ``.evaluate``, ``.analysis``, ``.explorer``,
``.study``, ``.serving.client``) are kept as shims that call the same ``run()``; library modules never
import this package. Every form resolves named configurations the same way
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
import sys
from typing import Callable, Sequence

from musicvae_xai.flagfiles import (ConfigNameError, available_configs, configs_dir, expand_flagfile,  # noqa: F401
                                    flagfile_lines, resolve_config)

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


def entry_name(script: str) -> str:
    """The function of this module a console script calls: ``musicvae-study-worker`` -> ``study_worker_main``
    (named ``*_main`` so it does not shadow the command modules of this package)."""
    return script.replace("musicvae-", "").replace("-", "_") + "_main"


def _entry(script: str) -> Callable[[], None]:
    def entry() -> None:
        importlib.import_module(ENTRY_POINTS[script]).run()

    entry.__name__ = entry_name(script)
    entry.__doc__ = f"``{script}``: ``python -m {ENTRY_POINTS[script]}``."
    return entry


# The console scripts (``pyproject.toml`` names ``musicvae_xai.cli:<entry_name(script)>`` for each).
globals().update({entry_name(script): _entry(script) for script in ENTRY_POINTS})
