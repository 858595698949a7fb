"""Settings declared once: a dataclass field carries its default, help text and per-value checks, and
the command-line flags, their help and the checks are all generated from it.

    @dataclasses.dataclass
    class Options:
        steps: int = setting(9, "Values per sweep.", minimum=2)
        mode: str = setting("fast", "How to run.", choices=("fast", "exact"))

    define_flags(Options)                   # --steps, --mode (absl), with these defaults and help
    options = from_flags(Options)           # Options(steps=FLAGS.steps, mode=FLAGS.mode)
    check_fields(options, ValueError)       # "steps must be at least 2, got 1"

A field's flag type follows its default: bool -> DEFINE_bool, int -> DEFINE_integer, float ->
DEFINE_float, tuple -> DEFINE_list (comma-separated), str -> DEFINE_string; a field whose default is None
takes the type its annotation names (``Optional[int]`` -> DEFINE_integer, ``Optional[str]`` -> DEFINE_string).
Checks that involve two fields stay in the class's own ``validate``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

from absl import flags

#: Flag name -> (settings class, field) for every flag ``define_flags`` made in this process; read by the
#: command-line reference (``musicvae_xai.cli.reference``), so each flag is documented from its declaration.
DECLARATIONS: dict = {}

#: ``setting(..., resumable=OUTPUT)``: the field says where or how often a run writes, not what it
#: trains; it may change when a run resumes, and a finished stage of a study stays valid.
OUTPUT = "output"
#: ``setting(..., resumable=SCHEDULE)``: the field says how long a run trains or how a step is
#: computed; it may change when a run resumes.
SCHEDULE = "schedule"


#: Upper bounds of the layer sizes (hidden_size, embedding_dim, discriminator_hidden) and layer counts:
#: far above anything trained here (hidden 512, 2 layers) and far below what would not fit in memory
#: (hidden_size 10**6 asked TensorFlow for 10.9 TiB before failing 28 s later).
MAX_WIDTH = 8192
MAX_LAYERS = 16


def setting(default: Any, help: str, *, choices: Optional[Sequence] = None, minimum: Optional[float] = None,
            maximum: Optional[float] = None, above: Optional[float] = None, below: Optional[float] = None,
            check: Optional[Callable[[Any], Optional[str]]] = None, flag: Optional[str] = "",
            negate: bool = False, resumable: Optional[str] = None) -> Any:
    """A dataclass field with its default and everything else a setting needs (``dataclasses.field``
    metadata):

    help: the flag's help text. choices: the allowed values. minimum/maximum: inclusive bounds;
    above/below: exclusive bounds. check: a callable returning an error message (one line) or None.
    flag: the flag's name ("" = the field's name, None = no flag). negate: the flag is the negation of
    the field (``--allow_unfinished`` for ``expect_finished``). resumable: ``OUTPUT`` or ``SCHEDULE`` for a
    field that may change when a run resumes (``resumable_fields``).
    """
    if resumable not in (None, OUTPUT, SCHEDULE):
        raise ValueError(f"resumable must be None, {OUTPUT!r} or {SCHEDULE!r}, got {resumable!r}")
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "minimum": minimum,
            "maximum": maximum, "above": above, "below": below, "check": check, "flag": flag, "negate": negate,
            "resumable": resumable}
    return dataclasses.field(default=default, metadata=meta)


def _meta(field: dataclasses.Field, key: str) -> Any:
    return field.metadata.get(key)


def constraints(field: dataclasses.Field) -> dict:
    """The declared checks of a settings field that are data (``choices``, ``minimum``, ``maximum``,
    ``above``, ``below``), without the unset ones; a ``check`` callable is described by its message only
    when it fails, so it is not listed."""
    return {key: field.metadata[key] for key in ("choices", "minimum", "maximum", "above", "below")
            if field.metadata.get(key) is not None}

def declared_fields(cls: type) -> tuple:
    """The settings of a settings dataclass: its fields declared with ``setting``, or what its
    ``declared_fields()`` class method gives (a class that gathers settings declared elsewhere,
    ``config.RunConfig``)."""
    found = cls.declared_fields() if hasattr(cls, "declared_fields") else dataclasses.fields(cls)
    return tuple(f for f in found if "help" in f.metadata)


def resumable_fields(cls: type, *kinds: str) -> frozenset:
    """Names of the settings of ``cls`` declared ``resumable`` as one of ``kinds`` (default: either)."""
    kinds = kinds or (OUTPUT, SCHEDULE)
    return frozenset(f.name for f in declared_fields(cls) if f.metadata.get("resumable") in kinds)


def help_texts(cls: type) -> dict:
    """{setting name: help text} of a settings dataclass."""
    return {f.name: f.metadata.get("help", "") for f in declared_fields(cls)}


def _bounds_message(name: str, value: Any, field: dataclasses.Field) -> Optional[str]:
    lo, hi = _meta(field, "minimum"), _meta(field, "maximum")
    above, below = _meta(field, "above"), _meta(field, "below")
    low_ok = (lo is None or value >= lo) and (above is None or value > above)
    high_ok = (hi is None or value <= hi) and (below is None or value < below)
    if low_ok and high_ok:
        return None
    if lo is not None and (hi is not None or below is not None):
        return f"{name} must be in [{lo:g}, {hi if hi is not None else below:g}{']' if hi is not None else ')'}, " \
               f"got {value}"
    if lo is not None:
        return f"{name} must be at least {lo:g}, got {value}"
    if above == 0 and hi is None and below is None:
        return f"{name} must be positive, got {value}"
    if above is not None:
        return f"{name} must be more than {above:g}, got {value}"
    return f"{name} must be at most {hi if hi is not None else below:g}, got {value}"


def check_fields(obj: Any, error: type = ValueError) -> None:
    """Raises ``error`` (one line) for the first field of ``obj`` outside its declared choices or bounds,
    or whose ``check`` returns a message; fields in declaration order."""
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        choices = _meta(field, "choices")
        if choices is not None and value not in choices:
            raise error(f"unknown {field.name} {value!r}; choose one of {', '.join(map(str, choices))}")
        if value is not None and not isinstance(value, (str, tuple, list, bool)):
            message = _bounds_message(field.name, value, field)
            if message:
                raise error(message)
        check = _meta(field, "check")
        message = check(value) if check is not None else None
        if message:
            raise error(message)


def _flag_name(field: dataclasses.Field) -> Optional[str]:
    name = field.metadata.get("flag", "")
    return field.name if name == "" else name


def _kind(field: dataclasses.Field, default: Any) -> type:
    """The Python type a field's flag parses to: its default's, or for a None default its annotation's."""
    if default is not None:
        return tuple if isinstance(default, tuple) else type(default)
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if f"[{name}]" in annotation or annotation == name:
            return kind
    return str


def define_flags(cls: type, flag_values: flags.FlagValues = flags.FLAGS, skip: Sequence[str] = ()) -> None:
    """One absl flag per field of the settings dataclass ``cls`` (but ``skip`` and fields declared with
    ``flag=None``), with the field's default and help text."""
    for field in declared_fields(cls):
        name = _flag_name(field)
        if name is None or field.name in skip:
            continue
        default, helptext = field.default, field.metadata.get("help", "")
        DECLARATIONS[name] = (cls, field)
        if field.metadata.get("negate"):
            default = not default
        kind = _kind(field, default)
        if kind is bool:
            flags.DEFINE_bool(name, default, helptext, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(name, default, helptext, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(name, default, helptext, flag_values=flag_values)
        elif kind is tuple:
            flags.DEFINE_list(name, list(default), helptext, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, default, helptext, flag_values=flag_values)


def from_flags(cls: type, flag_values: flags.FlagValues = flags.FLAGS, skip: Sequence[str] = (), **given: Any):
    """An instance of ``cls`` from the parsed flags ``define_flags`` made (``given`` and the defaults of
    ``skip`` and flag-less fields otherwise)."""
    values = dict(given)
    for field in declared_fields(cls):
        name = _flag_name(field)
        if name is None or field.name in skip or field.name in values:
            continue
        value = flag_values[name].value
        values[field.name] = (not value) if field.metadata.get("negate") else value
    return cls(**values)
