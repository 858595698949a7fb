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
    """An existing path, or any other path-like value, is returned as it is; a name (``quickstart``,
    ``quickstart.flags``, ``configs/quickstart.flags``, ``study/cpu_v2``) is the shipped
    ``configs/[sub/]NAME.flags``."""
    if os.path.exists(value):
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
