"""The command-line reference: the flags each console script accepts, read from the absl flags its
command module defines (most of them generated from settings declarations, ``musicvae_xai.settings``),
and the reference page of each command, so the documentation cannot drift from the flags.

    flags = command_flags("musicvae-train")   # {"latent_dim": Flag(...), ..., "helpfull": Flag(...)}
    accepts("musicvae-train", "noxla")        # True: the negation of a boolean flag
    page = markdown_page("musicvae-train")    # the command's reference page (markdown)

A command's flags are read in a fresh interpreter: its module is imported and its ``run()`` called with
``absl.app.run`` replaced by a no-op, so flags defined late (inside ``run()``) are there too and nothing
runs. That takes 1-2 s per command (the commands import TensorFlow only once their flags are parsed);
``all_command_flags`` reads every command, one interpreter per core.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import subprocess
import sys
from typing import Optional

from musicvae_xai.cli import ENTRY_POINTS

#: Accepted by every command besides its flags: ``resolve_argv`` turns ``--config=NAME`` into
#: ``--flagfile=PATH`` before absl parses the command line.
CONFIG_FLAG = "config"

# Runs in the fresh interpreter: argv[1] is the command's module; prints one JSON object.
_PROBE = r"""
import importlib, json, sys
from absl import app, flags
from musicvae_xai import settings
app.run = lambda main, *args, **kwargs: None
module = sys.argv[1]
sys.argv = [module]
command = importlib.import_module(module)
command.run()
app.define_help_flags()
owners = {flag.name: owner for owner, flag_list in flags.FLAGS.flags_by_module_dict().items() for flag in flag_list}
out = {"doc": command.__doc__ or "", "flags": {}}
for name, flag in flags.FLAGS._flags().items():
    if name != flag.name:  # a short name
        continue
    declared = settings.DECLARATIONS.get(name)
    entry = {"type": flag.flag_type(), "boolean": bool(flag.boolean), "help": flag.help or "",
             "default": flag.default if isinstance(flag.default, (str, int, float, bool, list, type(None)))
             else str(flag.default),
             "choices": list(getattr(flag.parser, "enum_values", None) or []) or None,
             "owner": owners.get(name, ""), "setting": None, "constraints": {}}
    if declared is not None:
        cls, field = declared
        entry["setting"] = f"{cls.__module__}.{cls.__qualname__}.{field.name}"
        entry["constraints"] = {k: list(v) if isinstance(v, tuple) else v
                                for k, v in settings.constraints(field).items()}
        if entry["constraints"].get("choices"):
            entry["choices"] = entry["constraints"].pop("choices")
    out["flags"][name] = entry
print(json.dumps(out))
"""


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag a command accepts.

    ``owner`` is the module that defined it (``absl.*`` for absl's own flags, e.g. ``--flagfile``,
    ``--helpfull``); ``setting`` is ``module.Class.field`` when the flag was generated from a settings
    declaration, with that field's declared ``constraints`` (``minimum``, ``maximum``, ``above``,
    ``below``).
    """

    name: str
    type: str
    boolean: bool
    help: str
    default: object
    choices: Optional[tuple]
    owner: str
    setting: Optional[str]
    constraints: dict

    @property
    def common(self) -> bool:
        """True for absl's own flags (logging, help, ``--flagfile``), which every command accepts."""
        return self.owner.startswith("absl")


@dataclasses.dataclass(frozen=True)
class Command:
    """A console script: its name, module, module docstring and flags (``{name: Flag}``)."""

    script: str
    module: str
    doc: str
    flags: dict

    def own_flags(self) -> list:
        """The command's own flags (not absl's), in name order."""
        return sorted((f for f in self.flags.values() if not f.common), key=lambda f: f.name)


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _probe(module: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join([_package_root()] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                             if p])
    done = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"reading the flags of {module} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _command(script: str, probed: dict) -> Command:
    flags = {}
    for name, entry in probed["flags"].items():
        choices = tuple(entry["choices"]) if entry["choices"] else None
        flags[name] = Flag(name=name, type=entry["type"], boolean=entry["boolean"], help=entry["help"],
                           default=entry["default"], choices=choices, owner=entry["owner"],
                           setting=entry["setting"], constraints=entry["constraints"])
    return Command(script=script, module=ENTRY_POINTS[script], doc=probed["doc"], flags=flags)


#: ``{script: Command}`` read so far in this process.
_CACHE: dict = {}


def command(script: str) -> Command:
    """The console script ``script`` (``musicvae-train``, ...) with its flags; KeyError for an unknown one."""
    if script not in ENTRY_POINTS:
        raise KeyError(f"no console script {script!r}; known: {', '.join(ENTRY_POINTS)}")
    if script not in _CACHE:
        _CACHE[script] = _command(script, _probe(ENTRY_POINTS[script]))
    return _CACHE[script]


def all_commands() -> dict:
    """``{script: Command}`` for every console script, read in parallel (one interpreter per core)."""
    missing = [s for s in ENTRY_POINTS if s not in _CACHE]
    if missing:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            for script, probed in zip(missing, pool.map(lambda s: _probe(ENTRY_POINTS[s]), missing), strict=True):
                _CACHE[script] = _command(script, probed)
    return {script: _CACHE[script] for script in ENTRY_POINTS}


def command_flags(script: str) -> dict:
    """``{flag name: Flag}`` that ``script`` accepts (its own and absl's)."""
    return command(script).flags


def accepts(script: str, name: str) -> bool:
    """Whether ``--name`` is a flag ``script`` accepts: one of its flags, ``--noX`` for a boolean flag X,
    or ``--config`` (a shipped flagfile's name)."""
    flags = command_flags(script)
    if name in flags or name == CONFIG_FLAG:
        return True
    return name.startswith("no") and name[2:] in flags and flags[name[2:]].boolean


def script_of_module(module: str) -> Optional[str]:
    """The console script that ``python -m module`` runs (a command module, or one of the older paths,
    which re-export one), or None when ``module`` is none of them. Reads the module's source; imports
    nothing."""
    for script, target in ENTRY_POINTS.items():
        if module == target:
            return script
    parts = module.split(".")
    if parts[0] != "musicvae_xai":
        return None
    base = os.path.join(_package_root(), *parts)
    for path in (base + ".py", os.path.join(base, "__main__.py")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                source = f.read()
            runnable = path.endswith("__main__.py") or 'if __name__ == "__main__"' in source
            found = re.search(r"from (musicvae_xai\.cli\.\w+) import[^\n]*\brun\b", source)
            if runnable and found:
                return script_of_module(found.group(1))
    return None


# ----------------------------------------------------------------------------------------------
# Markdown pages


def _docstring_markdown(doc: str) -> str:
    """A command module's docstring as markdown: indented blocks become code blocks."""
    lines, out, block = doc.strip("\n").splitlines(), [], []

    def flush() -> None:
        if block:
            while block and not block[-1].strip():
                block.pop()
            indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            out.extend(["", "```text", *[b[indent:] for b in block], "```", ""])
            block.clear()

    for line in lines:
        if line.startswith("  ") and (block or not out or not out[-1].strip() or out[-1].rstrip().endswith(":")):
            block.append(line)
        elif block and not line.strip():
            block.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out).strip() + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(flag: Flag) -> str:
    if flag.default is None or flag.default == "":
        return "–"
    if isinstance(flag.default, list):
        return f"`{','.join(map(str, flag.default))}`" if flag.default else "–"
    if isinstance(flag.default, bool):
        return f"`{str(flag.default).lower()}`"
    return f"`{flag.default}`"


def _allowed(flag: Flag) -> str:
    parts = []
    if flag.choices:
        parts.append(", ".join(f"`{c}`" for c in flag.choices))
    c = flag.constraints
    if "minimum" in c:
        parts.append(f">= {c['minimum']:g}")
    if "above" in c:
        parts.append(f"> {c['above']:g}")
    if "maximum" in c:
        parts.append(f"<= {c['maximum']:g}")
    if "below" in c:
        parts.append(f"< {c['below']:g}")
    return "; ".join(parts)


def markdown_page(script: str) -> str:
    """The reference page of ``script``: what it does (its module's docstring), how to run it, and a table
    of its flags (name, type, default, allowed values, help, where it is declared)."""
    cmd = command(script)
    lines = ["---", "hide: [toc]", "---", "", f"# `{script}`", "",
             f"Also `python -m {cmd.module}`. Generated from the flag definitions of `{cmd.module}`; flags on "
             "the command line override a `--config`/`--flagfile`.", "",
             _docstring_markdown(cmd.doc), "## Flags", "",
             "A boolean flag `--X` is turned off with `--noX` (or `--X=false`).", "",
             "| flag | type | default | allowed | help |", "|---|---|---|---|---|"]
    for flag in cmd.own_flags():
        name = f"`--{flag.name}`"
        helptext = _cell(flag.help)
        if flag.setting:
            helptext += f" *(declared in `{flag.setting}`)*"
        lines.append(f"| {name} | {flag.type} | {_cell(_default(flag))} | {_cell(_allowed(flag))} | {helptext} |")
    common = sorted(f.name for f in cmd.flags.values() if f.common)
    lines += ["", f"Also accepted: `--{CONFIG_FLAG}=NAME` (a shipped flagfile) and absl's own flags "
              f"([common flags](index.md#common-flags)): {', '.join(f'`--{n}`' for n in common)}.", ""]
    return "\n".join(lines)


def markdown_index() -> str:
    """The command-line reference's index page: every console script with the first line of its doc."""
    commands = all_commands()
    lines = ["# Command-line reference", "",
             "One page per console script, generated from the flags each command defines (most of them from "
             "the settings declarations in `musicvae_xai/config.py` and `musicvae_xai/settings.py`) when this "
             "site is built, so a page cannot drift from its command. `SCRIPT --helpfull` prints the same.", "",
             "| command | what |", "|---|---|"]
    for script, cmd in commands.items():
        first = " ".join(cmd.doc.strip().split("\n\n")[0].split())
        lines.append(f"| [`{script}`]({script}.md) | {_cell(first)} |")
    some = next(iter(commands.values()))
    lines += ["", "## Common flags", "",
              f"Every command also accepts `--{CONFIG_FLAG}=NAME` (or `--flagfile=NAME`): a flagfile shipped in "
              "the package (`musicvae_xai/configs/NAME.flags`, e.g. `quickstart`) or a path; an unknown name "
              "stops with one line listing the shipped ones. And absl's own flags:", "",
              "| flag | help |", "|---|---|"]
    for flag in sorted((f for f in some.flags.values() if f.common), key=lambda f: f.name):
        lines.append(f"| `--{flag.name}` | {_cell(flag.help)} |")
    return "\n".join(lines) + "\n"
