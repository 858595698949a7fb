"""The flagfiles shipped in the package (``musicvae_xai/configs/NAME.flags``, studies under
``configs/study/``), found by name: every command line's ``--flagfile=NAME`` / ``--config=NAME`` /
``--study=NAME`` (``cli.resolve_argv``) and the study grid's ``base`` configuration read them here.
"""

from __future__ import annotations

import os


class ConfigNameError(ValueError):
    """A ``--flagfile``/``--config``/``--study`` name that is neither a file nor a shipped config."""


def configs_dir() -> str:
    """The folder of the flagfiles shipped in the package (``musicvae_xai/configs``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


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
