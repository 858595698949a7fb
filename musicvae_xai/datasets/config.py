"""The dataset configuration: which named dataset, where its files are, and how to cut it."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Optional

from musicvae_xai.representation import DEFAULT_MAX_PITCH, DEFAULT_MIN_PITCH, Vocabulary

SPLITS = ("train", "validation", "test")
#: The environment variable naming the datasets cache folder.
CACHE_ENV = "MUSICVAE_XAI_CACHE"
#: Where the datasets cache is when no ``--cache_dir`` flag (nor the run's configuration) names one, as
#: the commands' help texts say it.
CACHE_DEFAULT_TEXT = f"${CACHE_ENV} if set, else ~/.cache/musicvae_xai"
#: The datasets cache when neither a flag nor the run's configuration names one: ``$MUSICVAE_XAI_CACHE``
#: (read at import) if set, else ``~/.cache/musicvae_xai``. Every command that builds or reads a dataset
#: (``musicvae-train``, ``-data``, ``-evaluate``, ``-explorer``, ``-study``, ``-pretrained``) takes
#: ``--cache_dir`` over it.
DEFAULT_CACHE_DIR = os.path.expanduser(os.environ.get(CACHE_ENV, "").strip()
                                       or os.path.join("~", ".cache", "musicvae_xai"))


@dataclasses.dataclass
class DatasetConfig:
    """Everything that decides the content of a built dataset (and so its cache key).

    name: a registered dataset (``datasets.names()``); data_root: the folder holding the dataset's
    source folders (e.g. ``../shared/datasets`` with ``irish_cre/`` inside), or one source folder
    itself; may be None only for ``embedded`` (package data). min_pitch/max_pitch: the vocabulary's
    pitch range; measures with an onset outside it (at the original pitch) are dropped.
    allow_cut_time: admit 2/2 bars as four quarter beats. transpose: add every semitone shift that
    keeps the whole piece in range to the training split; max_transpose: if set, only shifts of at
    most this many semitones. split: train/validation/test fractions of pieces; split_seed: salt of
    the piece-id hash that assigns splits. max_files: if set, only the first N files (sorted) of
    each source, for quick runs.
    """

    name: str = "embedded"
    data_root: Optional[str] = None
    min_pitch: int = DEFAULT_MIN_PITCH
    max_pitch: int = DEFAULT_MAX_PITCH
    allow_cut_time: bool = False
    transpose: bool = True
    max_transpose: Optional[int] = None
    split: tuple = (0.8, 0.1, 0.1)
    split_seed: int = 0
    max_files: Optional[int] = None

    def __post_init__(self):
        self.split = tuple(float(x) for x in self.split)
        if self.data_root is not None:
            self.data_root = os.fspath(self.data_root)

    def validate(self) -> None:
        """Raises ValueError (one line) on inconsistent values; does not look at the file system."""
        Vocabulary(self.min_pitch, self.max_pitch)  # raises ValueError on a bad range
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split must be three non-negative fractions summing to 1, got {self.split}")
        if self.max_transpose is not None and self.max_transpose < 0:
            raise ValueError(f"max_transpose must be >= 0, got {self.max_transpose}")
        if self.max_files is not None and self.max_files < 1:
            raise ValueError(f"max_files must be >= 1, got {self.max_files}")

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.min_pitch, self.max_pitch)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown dataset config key(s): {', '.join(unknown)}")
        return cls(**d)


def dataset_config(run: Any, data_root: Optional[str] = None) -> DatasetConfig:
    """The DatasetConfig a run was trained on: ``run`` is its ``RunConfig`` or the saved ``config.json``
    as a dict (a key it lacks takes ``DatasetConfig``'s default); ``data_root``, when given, overrides
    the saved one (a run moved to another machine)."""
    get = run.get if isinstance(run, Mapping) else (lambda key, default: getattr(run, key, default))
    base = DatasetConfig()
    return DatasetConfig(name=get("dataset", base.name),
                         data_root=data_root if data_root is not None else get("data_root", None),
                         min_pitch=int(get("min_pitch", base.min_pitch)),
                         max_pitch=int(get("max_pitch", base.max_pitch)),
                         allow_cut_time=bool(get("allow_cut_time", base.allow_cut_time)),
                         transpose=bool(get("transpose", base.transpose)))
