"""Study files and grid expansion: a study flagfile -> validated per-configuration entries.

A study file is a flagfile (one ``--key=value`` per line, ``#`` comments, like absl's) with two kinds
of keys:

* grid and study keys (``STUDY_KEYS``)::

      --base_flagfile=study/paper                       # optional: a study file or training flagfile
                                                        # (a path, or a shipped configuration's name)
                                                        # whose settings this file extends
      --models=measure_vae,adversarial_vae
      --latent_sizes=4,8,16,32,64,128,256
      --datasets=irish,turkish,classical,pop
      --attribute_set=two                               # repeatable: two, four, or a comma list
      --attribute_set=four
      --seeds=0
      --override=dataset=irish:allow_cut_time=true      # repeatable: SELECTOR[,SELECTOR]:FIELD=VALUE
      --eval_split=test                                 # evaluation (musicvae_xai.evaluation options)
      --eval_max_measures=0                             # 0 = every measure of the split
      --eval_sweep_measures=64
      --eval_sweep_steps=9
      --eval_seed=0
      --export=true                                     # export each run to STUDY_DIR/exports/NAME/1
      --verify_export=true
      --threads_per_config=0                            # 0 = available CPUs // --parallel

* any field of ``musicvae_xai.config.RunConfig`` (``--hidden_size=128``): a training setting shared by
  every configuration, applied after those of ``--base_flagfile``.

Relative paths (``--base_flagfile`` when it is not a shipped name, ``--data_root``) are relative to the
working directory, like
absl's. A later line wins over an earlier one and over the base; ``--attribute_set`` lines of a file replace
the base's sets, ``--override`` lines add to the base's.

Every configuration of the grid (models x latent sizes x datasets x attribute sets x seeds) gets the
shared settings, then its grid values, then the overrides whose selectors match it (a selector is
``AXIS=VALUE`` with AXIS one of model, dataset, latent_dim, attributes (two, four or a count), seed).
Its ``run_dir`` is ``STUDY_DIR/NAME`` with NAME = ``MODEL-zLLL-DATASET-ATTRS-sSEED``, e.g.
``measure_vae-z032-irish-a4-s0`` (``a4``/``a2`` are the paper's four and two attributes).

``expand`` validates every entry before anything runs and raises ``StudyError`` naming each bad one.
It also refuses, before anything is written: a grid of more than ``MAX_CONFIGURATIONS`` configurations
(the count in the message: a grid of 10^6 would write a 140 MB command file and a Slurm array of a
million), and an ``--override`` line of the study file whose selectors match no configuration of the
grid (a misspelt ``dataset=embeded`` would otherwise be ignored). A study file (and each base) may
hold at most ``MAX_STUDY_FILE_BYTES``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import math
import os
from typing import Optional, Sequence

from musicvae_xai import attributes as attrs
from musicvae_xai.config import ConfigError, EvaluationOptions, RunConfig
from musicvae_xai.flagfiles import ConfigNameError, flagfile_lines, resolve_config

#: ``EvaluationOptions`` fields a study file does not set: each run's data folders are its own, and a
#: study evaluates finished runs only.
_PER_RUN_EVALUATION = ("cache_dir", "data_root", "expect_finished")
_EVALUATION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(EvaluationOptions)
                        if f.name not in _PER_RUN_EVALUATION}
#: The evaluation options of a study file: ``--eval_<field>`` for each other ``EvaluationOptions`` field,
#: with its default (``StudySpec`` has an ``eval_<field>`` for each).
EVALUATION_FIELDS = tuple(_EVALUATION_DEFAULTS)
#: Study-level keys of a study file (everything else must be a RunConfig field).
STUDY_KEYS = (("base_flagfile", "models", "latent_sizes", "datasets", "attribute_set", "seeds", "override")
              + tuple(f"eval_{name}" for name in EVALUATION_FIELDS) + ("export", "verify_export", "threads_per_config"))
#: Grid axes: set by the grid, never by the shared settings or an override.
GRID_FIELDS = ("model", "latent_dim", "dataset", "attributes", "seed")
_SELECTOR_AXES = ("model", "dataset", "latent_dim", "attributes", "seed")
NAMED_ATTRIBUTE_SETS = {"two": attrs.DEFAULT_TWO, "four": attrs.DEFAULT_FOUR}
_SHORT = {attrs.RHYTHMIC_COMPLEXITY: "rc", attrs.NOTE_RANGE: "nr", attrs.NOTE_DENSITY: "nd",
          attrs.AVERAGE_INTERVAL_JUMP: "aij", attrs.CONTOUR: "ct"}
_FIELD_TYPES = {f.name: type(f.default) for f in RunConfig.declared_fields()}
#: Most configurations a grid may expand to (the paper's grid has 112 per seed).
MAX_CONFIGURATIONS = 10_000
_OPTIONAL_STR = ("data_root", "cache_dir")


class StudyError(ValueError):
    """A study file or grid that cannot run; the message is meant for the user."""


@dataclasses.dataclass
class StudySpec:
    """A parsed study file. ``shared``: RunConfig values shared by every configuration (from the base
    flagfile, then the study file); ``overrides``: (selectors {axis: value str}, field, value)."""

    path: str
    models: tuple = ("measure_vae", "adversarial_vae")
    latent_sizes: tuple = (4, 8, 16, 32, 64, 128, 256)
    datasets: tuple = ("irish", "turkish", "classical", "pop")
    attribute_sets: tuple = (attrs.DEFAULT_TWO, attrs.DEFAULT_FOUR)
    seeds: tuple = (0,)
    shared: dict = dataclasses.field(default_factory=dict)
    overrides: list = dataclasses.field(default_factory=list)
    #: {index in ``overrides``: (file:line, the line's value)} of this file's own --override lines
    #: (not the base's), each of which must match a configuration.
    own_overrides: dict = dataclasses.field(default_factory=dict)
    base_flagfile: Optional[str] = None
    eval_split: str = _EVALUATION_DEFAULTS["split"]
    eval_max_measures: int = _EVALUATION_DEFAULTS["max_measures"]
    eval_seed: int = _EVALUATION_DEFAULTS["seed"]
    eval_sweep_measures: int = _EVALUATION_DEFAULTS["sweep_measures"]
    eval_sweep_steps: int = _EVALUATION_DEFAULTS["sweep_steps"]
    eval_batch_size: int = _EVALUATION_DEFAULTS["batch_size"]
    export: bool = True
    verify_export: bool = True
    threads_per_config: int = 0

    def evaluation_options(self) -> dict:
        """Keyword arguments of ``config.EvaluationOptions`` (``EVALUATION_FIELDS``)."""
        return {name: getattr(self, f"eval_{name}") for name in EVALUATION_FIELDS}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["attribute_sets"] = [list(s) for s in self.attribute_sets]
        d["overrides"] = [{"when": sel, "field": f, "value": v} for sel, f, v in self.overrides]
        d.pop("own_overrides")
        d["shared"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.shared.items()}
        return d


@dataclasses.dataclass
class Entry:
    """One configuration of the grid: its name, grid coordinates and complete RunConfig."""

    name: str
    config: RunConfig

    @property
    def grid(self) -> dict:
        c = self.config
        return {"model": c.model, "latent_dim": c.latent_dim, "dataset": c.dataset,
                "attributes": list(c.attributes), "attribute_count": len(c.attributes), "seed": c.seed}


# ------------------------------------------------------------------------------------------------
# Parsing


def read_flag_lines(path: str) -> list:
    """(key, value-or-None, line number) of every ``--key[=value]`` line of a flagfile.

    Blank lines and ``#`` comments are skipped; ``--nokey`` is (key, "false"). Raises StudyError for a
    missing, binary or oversized file (``musicvae_xai.flagfiles.flagfile_lines``) or a line that is not a flag.
    """
    try:
        lines = flagfile_lines(path)
    except ConfigNameError as e:
        raise StudyError(str(e)) from None
    out = []
    for number, line in lines:
        if not line.startswith("--"):
            raise StudyError(f"{path}:{number}: expected --key=value, got {line[:80]!r}")
        key, sep, value = line[2:].partition("=")
        out.append((key.strip(), value.strip() if sep else None, number))
    return out


def _parse_bool(value: Optional[str], where: str) -> bool:
    if value is None:
        return True
    low = value.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise StudyError(f"{where}: expected true or false, got {value!r}")


def parse_field(field: str, value: Optional[str], where: str):
    """The RunConfig value of ``--field=value`` (StudyError for an unknown field or bad value)."""
    if field not in _FIELD_TYPES:
        raise StudyError(f"{where}: unknown flag --{field} (not a study key nor a training setting)")
    kind = _FIELD_TYPES[field]
    try:
        if kind is bool:
            return _parse_bool(value, where)
        if value is None:
            raise StudyError(f"{where}: --{field} needs a value")
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if kind is tuple:
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if field in _OPTIONAL_STR and value.lower() in ("", "none"):
            return None
        return value
    except ValueError:
        raise StudyError(f"{where}: --{field}={value} is not a valid {kind.__name__}") from None


def _bool_flag(key: str, value: Optional[str]) -> tuple:
    """``--nofoo`` -> (foo, 'false') for boolean study keys and RunConfig fields."""
    if value is None and key.startswith("no") and (key[2:] in ("export", "verify_export")
                                                    or _FIELD_TYPES.get(key[2:]) is bool):
        return key[2:], "false"
    return key, value


def parse_attribute_set(value: str, where: str) -> tuple:
    if value in NAMED_ATTRIBUTE_SETS:
        return NAMED_ATTRIBUTE_SETS[value]
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    if not names:
        raise StudyError(f"{where}: empty --attribute_set")
    return names


def _parse_override(value: str, where: str) -> tuple:
    selectors, sep, assignment = value.partition(":")
    field, eq, raw = assignment.partition("=")
    if not sep or not field:
        raise StudyError(f"{where}: --override wants AXIS=VALUE[,AXIS=VALUE]:FIELD=VALUE, got {value!r}")
    field = field.strip()
    if field in GRID_FIELDS or field == "run_dir":
        raise StudyError(f"{where}: --override cannot set {field} (the grid sets it)")
    parsed = parse_field(field, raw.strip() if eq else None, where)
    when = {}
    for sel in selectors.split(","):
        axis, eq2, v = sel.partition("=")
        axis = axis.strip()
        if not eq2 or axis not in _SELECTOR_AXES:
            raise StudyError(f"{where}: override selector {sel!r} must be AXIS=VALUE with AXIS one of "
                             f"{', '.join(_SELECTOR_AXES)}")
        when[axis] = v.strip()
    return when, field, parsed


def _int_list(value: Optional[str], where: str) -> tuple:
    try:
        return tuple(int(v) for v in (value or "").split(",") if v.strip())
    except ValueError:
        raise StudyError(f"{where}: expected a comma-separated list of integers, got {value!r}") from None


def _str_list(value: Optional[str]) -> tuple:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _resolve_base(base: str, where: str) -> str:
    """A ``--base_flagfile`` value as a path: an existing path, else a shipped configuration name
    (``study/paper``, ``configs/study/paper.flags``; see ``musicvae_xai.flagfiles.resolve_config``)."""

    try:
        return resolve_config(base)
    except ConfigNameError as e:
        raise StudyError(f"{where}: --base_flagfile {e}") from None


def load_study(path: str, _depth: int = 0) -> StudySpec:
    """Parses a study file (see module doc). Raises StudyError (one line, with file:line) on bad input.

    ``--base_flagfile`` may name a training flagfile (its grid fields and run_dir are ignored) or
    another study file, whose grid and settings this file then extends and overrides.
    """
    if _depth > 8:
        raise StudyError(f"{path}: --base_flagfile chain is too deep (a cycle?)")
    lines = read_flag_lines(path)
    bases = [(value, number) for key, value, number in lines if key == "base_flagfile"]
    if len(bases) > 1:
        raise StudyError(f"{path}:{bases[1][1]}: --base_flagfile given twice")
    if bases:
        base, number = bases[0]
        if not base:
            raise StudyError(f"{path}:{number}: --base_flagfile needs a path")
        spec = load_study(_resolve_base(base, where=f"{path}:{number}"), _depth + 1)
        spec.path, spec.base_flagfile, spec.own_overrides = path, base, {}
        attribute_sets, overrides = None, list(spec.overrides)
    else:
        spec = StudySpec(path=path)
        attribute_sets, overrides = None, []
    shared = dict(spec.shared)
    for key, value, number in lines:
        where = f"{path}:{number}"
        key, value = _bool_flag(key, value)
        if key == "base_flagfile":
            continue
        if key == "flagfile":
            raise StudyError(f"{where}: use --base_flagfile (one per file) instead of --flagfile")
        if key in GRID_FIELDS or key == "run_dir":
            if _depth > 0:
                continue  # a training flagfile used as base: the grid decides these
            raise StudyError(f"{where}: --{key} is set by the grid (use --models, --latent_sizes, --datasets, "
                             "--attribute_set, --seeds); run directories live under --study_dir")
        if key == "models":
            spec.models = _str_list(value)
        elif key == "datasets":
            spec.datasets = _str_list(value)
        elif key == "latent_sizes":
            spec.latent_sizes = _int_list(value, where)
        elif key == "seeds":
            spec.seeds = _int_list(value, where)
        elif key == "attribute_set":
            attribute_sets = (attribute_sets or []) + [parse_attribute_set(value or "", where)]
        elif key == "override":
            spec.own_overrides[len(overrides)] = (where, value or "")
            overrides.append(_parse_override(value or "", where))
        elif key in ("export", "verify_export"):
            setattr(spec, key, _parse_bool(value, where))
        elif key.startswith("eval_") and isinstance(_EVALUATION_DEFAULTS.get(key[5:]), str):
            setattr(spec, key, value or "")
        elif key in STUDY_KEYS:  # the integer study keys
            try:
                setattr(spec, key, int(value or ""))
            except ValueError:
                raise StudyError(f"{where}: --{key} needs an integer, got {value!r}") from None
        else:
            shared[key] = parse_field(key, value, where)
    spec.shared = shared
    if attribute_sets:  # this file's sets replace the base's
        spec.attribute_sets = tuple(attribute_sets)
    spec.overrides = overrides
    for axis in ("models", "latent_sizes", "datasets", "attribute_sets", "seeds"):
        if not getattr(spec, axis):
            raise StudyError(f"{path}: the grid axis {axis} is empty")
    return spec


# ------------------------------------------------------------------------------------------------
# Expansion


def attribute_set_label(names: Sequence[str]) -> str:
    """``a4`` / ``a2`` for the paper's sets, else ``a-`` + short codes (``a-rc-nd``)."""
    names = tuple(names)
    for short, named in (("a4", attrs.DEFAULT_FOUR), ("a2", attrs.DEFAULT_TWO)):
        if names == named:
            return short
    return "a-" + "-".join(_SHORT.get(n, n) for n in names)


def entry_name(model: str, latent_dim: int, dataset: str, attributes: Sequence[str], seed: int) -> str:
    return f"{model}-z{latent_dim:03d}-{dataset}-{attribute_set_label(attributes)}-s{seed}"


def _matches(when: dict, grid: dict) -> bool:
    for axis, value in when.items():
        have = grid[axis]
        if axis == "attributes":
            if value in NAMED_ATTRIBUTE_SETS:
                ok = tuple(have) == NAMED_ATTRIBUTE_SETS[value]
            elif value.isdigit():
                ok = len(have) == int(value)
            else:
                ok = attribute_set_label(have) == value
        else:
            ok = str(have) == value
        if not ok:
            return False
    return True


def expand(spec: StudySpec, study_dir: str, known_datasets: Optional[Sequence[str]] = None) -> list:
    """Every Entry of the grid, in order seeds x models x datasets x attribute sets x latent sizes (the
    whole grid of the first seed runs before any second seed, so a study stopped part-way covers every
    configuration it can with one seed before adding seeds), each validated. Raises StudyError naming
    every bad entry (unknown model, dataset or attribute, impossible setting) before anything runs."""
    axes = (spec.seeds, spec.models, spec.datasets, spec.attribute_sets, spec.latent_sizes)
    count = math.prod(len(axis) for axis in axes)
    if count > MAX_CONFIGURATIONS:
        raise StudyError(f"{spec.path}: the grid has {count:,} configurations ({' x '.join(str(len(a)) for a in axes)} "
                         f"seeds x models x datasets x attribute sets x latent sizes), over the limit of "
                         f"{MAX_CONFIGURATIONS:,}; split the study; nothing was written")
    if known_datasets is None:
        from musicvae_xai import datasets
        known_datasets = datasets.names()
    entries, problems, seen, matched = [], [], set(), set()
    for seed, model, dataset, attr_set, latent in itertools.product(
            spec.seeds, spec.models, spec.datasets, spec.attribute_sets, spec.latent_sizes):
        name = entry_name(model, latent, dataset, attr_set, seed)
        if name in seen:
            problems.append(f"{name}: listed twice in the grid")
            continue
        seen.add(name)
        grid = {"model": model, "latent_dim": latent, "dataset": dataset, "attributes": attr_set, "seed": seed}
        values = dict(spec.shared)
        values.update(grid)
        for i, (when, field, value) in enumerate(spec.overrides):
            if _matches(when, grid):
                values[field] = value
                matched.add(i)
        values["run_dir"] = os.path.join(study_dir, name)
        try:
            config = RunConfig(**values)
            if dataset not in known_datasets:
                raise ConfigError(f"unknown dataset {dataset!r}; registered: {', '.join(known_datasets)}")
            config.validate()
        except (ConfigError, TypeError, ValueError) as e:
            problems.append(f"{name}: {e}")
            continue
        entries.append(Entry(name, config))
    for i, (where, text) in sorted(spec.own_overrides.items()):
        if i not in matched:
            grid_values = {"model": spec.models, "dataset": spec.datasets, "latent_dim": spec.latent_sizes,
                           "seed": spec.seeds, "attributes": [attribute_set_label(a) for a in spec.attribute_sets]}
            axes_text = "; ".join(f"{axis} is one of {', '.join(map(str, grid_values[axis]))}"
                                  for axis in spec.overrides[i][0])
            raise StudyError(f"{where}: --override={text} matches no configuration of the grid ({axes_text}); "
                             "nothing was run")
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:4])}{' ...' if len(problems) > 4 else ''})" \
            if len(problems) > 1 else ""
        raise StudyError(f"{spec.path}: bad grid entry {problems[0]}{more}; nothing was run")
    return entries


def select(entries: Sequence[Entry], only: Optional[str]) -> list:
    """Entries whose name matches one of the comma-separated shell patterns of ``only`` (all if None).
    Raises StudyError when a pattern matches nothing."""
    if not only:
        return list(entries)
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    chosen = [e for e in entries if any(fnmatch.fnmatchcase(e.name, p) for p in patterns)]
    for p in patterns:
        if not any(fnmatch.fnmatchcase(e.name, p) for e in entries):
            raise StudyError(f"--only pattern {p!r} matches no configuration of the grid "
                             f"(names look like {entries[0].name})" if entries else "the grid is empty")
    return chosen
