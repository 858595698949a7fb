"""The on-disk cache of built datasets: numpy arrays per split plus a JSON manifest.

A build lives in ``cache_dir/<name>-<key>/`` where ``key`` hashes CACHE_VERSION, the dataset
config and a fingerprint of the input files' contents (``builder.fingerprint``), so a changed config
(or changed data) builds anew
and an unchanged one is reused. Builds are written into a temporary folder and renamed into place,
so a crash never leaves a half-written cache that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import time
from typing import Optional

import numpy as np

from musicvae_xai.datasets.config import SPLITS, DatasetConfig
from musicvae_xai.representation import Vocabulary

#: Bump when the cached content changes meaning (readers, filters, layout), to invalidate caches.
#: 3: content-hashed input fingerprint, melody-grouped splits, splits.json, listing skip reasons.
#: 4: MIDI read through mido with quantisation of played timing; per-file length and size limits.
#: 5: melody-skeleton fingerprints join the opening ones in the grouping, so splits change.
CACHE_VERSION = 5
MANIFEST = "manifest.json"
PIECES = "pieces.json"
SPLITS_FILE = "splits.json"
_KINDS = ("tokens", "piece", "shift")


def cache_key(cfg: DatasetConfig, data_fingerprint: str) -> str:
    """16 hex digits identifying (CACHE_VERSION, config, input files)."""
    d = cfg.to_dict()
    d["data_root"] = str(pathlib.Path(cfg.data_root).resolve()) if cfg.data_root else None
    blob = json.dumps({"cache_version": CACHE_VERSION, "config": d, "data": data_fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def check_cache_dir(cache_dir) -> None:
    """Raises NotADirectoryError or PermissionError (one line) when ``cache_dir``, or the nearest
    existing folder above it, is not a writable folder: checked before a build reads anything."""
    path = pathlib.Path(cache_dir).absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"cache_dir {cache_dir} exists and is not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"cache_dir {cache_dir} cannot be created: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"cache_dir {cache_dir}: {existing} is not writable")


def cache_path(cache_dir, cfg: DatasetConfig, key: str) -> pathlib.Path:
    return pathlib.Path(cache_dir) / f"{cfg.name}-{key}"


class BuiltDataset:
    """A built dataset on disk.

    vocabulary: the configured ``Vocabulary``; stats: build statistics (see ``datasets.build``);
    tokens(split): int32 [N, 24] token ids (the training split includes the transpositions);
    piece_index(split): int32 [N] index into ``pieces()`` of each row; shifts(split): int8 [N]
    transposition of each row in semitones.
    """

    def __init__(self, path, reused: bool = False):
        self.path = pathlib.Path(path)
        with open(self.path / MANIFEST, encoding="utf-8") as f:
            self.manifest = json.load(f)
        if self.manifest.get("cache_version") != CACHE_VERSION:
            raise ValueError(f"cache {self.path} has version {self.manifest.get('cache_version')}, "
                             f"expected {CACHE_VERSION}")
        self.config = DatasetConfig.from_dict(self.manifest["config"])
        self.vocabulary = Vocabulary.from_dict(self.manifest["vocabulary"])
        self.stats = self.manifest["stats"]
        self.reused = reused
        self._arrays: dict = {}
        self._pieces = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.stats['measures_augmented'][s]}" for s in SPLITS)
        return f"BuiltDataset({self.config.name!r}, {sizes}, path={str(self.path)!r})"

    def _array(self, kind: str, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        key = f"{kind}_{split}"
        if key not in self._arrays:
            self._arrays[key] = np.load(self.path / f"{key}.npy", allow_pickle=False)
        return self._arrays[key]

    def tokens(self, split: str) -> np.ndarray:
        """int32 [N, 24] token ids of ``split`` in ``self.vocabulary``."""
        return self._array("tokens", split)

    def piece_index(self, split: str) -> np.ndarray:
        """int32 [N]: for each row of ``tokens(split)``, its piece's index in ``pieces()``."""
        return self._array("piece", split)

    def shifts(self, split: str) -> np.ndarray:
        """int8 [N]: for each row of ``tokens(split)``, its transposition in semitones."""
        return self._array("shift", split)

    def pieces(self, split: Optional[str] = None) -> list:
        """Piece records, all of them (list index = ``piece_index`` values) or those of ``split``:
        id (contains the source file's path), source, split, group (smallest piece id of the pieces
        sharing its melody), fingerprinted (False: too short to fingerprint, split by its own id),
        measures (before augmentation), shifts [lo, hi]."""
        if self._pieces is None:
            with open(self.path / PIECES, encoding="utf-8") as f:
                self._pieces = json.load(f)
        if split is None:
            return self._pieces
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return [p for p in self._pieces if p["split"] == split]

    def splits(self) -> dict:
        """{piece id: split} of every kept piece (the cache's ``splits.json``)."""
        with open(self.path / SPLITS_FILE, encoding="utf-8") as f:
            return json.load(f)


def load(path) -> "BuiltDataset | None":
    """The BuiltDataset at ``path``, or None when there is none or it is unreadable/outdated."""
    path = pathlib.Path(path)
    if not (path / MANIFEST).is_file():
        return None
    try:
        built = BuiltDataset(path, reused=True)
        if not (path / SPLITS_FILE).is_file():
            return None
        for split in SPLITS:
            for kind in _KINDS:
                if not (path / f"{kind}_{split}.npy").is_file():
                    return None
        return built
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, OSError):
        return None


def write(path, cfg: DatasetConfig, key: str, fingerprint: str, built: dict) -> BuiltDataset:
    """Writes a build (``build.assemble``'s dict) to ``path`` atomically and returns it loaded."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        for name, array in built["arrays"].items():
            np.save(tmp / f"{name}.npy", array, allow_pickle=False)
        with open(tmp / PIECES, "w", encoding="utf-8") as f:
            json.dump(built["pieces"], f)
        with open(tmp / SPLITS_FILE, "w", encoding="utf-8") as f:
            json.dump(built["splits"], f, indent=0, sort_keys=True, ensure_ascii=False)
        manifest = {
            "cache_version": CACHE_VERSION,
            "key": key,
            "config": cfg.to_dict(),
            "vocabulary": cfg.vocabulary.to_dict(),
            "data_fingerprint": fingerprint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "stats": built["stats"],
            "skipped_files": built["skipped_files"],
        }
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
        if path.exists():  # an outdated or broken build under the same key
            shutil.rmtree(path, ignore_errors=True)
        try:
            os.rename(tmp, path)
        except OSError:  # another process renamed its identical build first: keep that one
            if load(path) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return BuiltDataset(path, reused=False)
