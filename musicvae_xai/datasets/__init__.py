"""Named datasets: registry, filters, splits, augmentation, cache and the tf.data pipeline.

    cfg = DatasetConfig(name="embedded")                  # or name="irish", data_root="../shared/datasets"
    built = build(cfg, cache_dir="cache")               # builds, or reuses an unchanged cache
    built.tokens("train")                               # int32 [N, 24] ids in built.vocabulary
    ds = make_tf_dataset(built.tokens("train"), built.vocabulary, ("rhythmic_complexity",), 64)

Registered names: ``irish`` (CRÉ MIDI + O'Neill's 1850 ABC), ``turkish`` (SymbTr txt), ``classical``
(Bach chorale sopranos + piano-midi.de right-hand skyline), ``pop`` (POP909 melodies) and
``embedded`` (public-domain O'Neill tunes shipped in ``musicvae_xai/embedded_data``).

``build(...).stats`` keys: files_total, files_parsed, pieces_total (pieces read), pieces (pieces
with at least one kept measure), pieces_per_split, duplicate_groups (groups of two or more pieces
sharing a melody, each kept in one split), duplicate_pieces (pieces in such groups),
cross_source_groups, unfingerprinted_pieces (too short to fingerprint: split by their own id),
measures {train, validation, test} before
augmentation, measures_augmented {...} (rows of ``tokens(split)``), skipped {reason: count},
skipped_units {reason: files | pieces | bars ...}, sources {source: {...}}, build_seconds.
"""

from __future__ import annotations

from typing import Optional

from absl import logging

from musicvae_xai.datasets import builder as _build
from musicvae_xai.datasets import cache as _cache
from musicvae_xai.datasets.cache import CACHE_VERSION, BuiltDataset
from musicvae_xai.datasets.config import DEFAULT_CACHE_DIR, SPLITS, DatasetConfig, dataset_config  # noqa: F401
from musicvae_xai.datasets.pipeline import make_tf_dataset, measure_attributes
from musicvae_xai.datasets.builder import FILE_TIMEOUT, split_of  # noqa: F401
from musicvae_xai.datasets.sources import SKIP_UNITS, names

__all__ = ["CACHE_VERSION", "FILE_TIMEOUT", "SPLITS", "SKIP_UNITS", "BuiltDataset", "DatasetConfig", "build", "names",
           "make_tf_dataset", "measure_attributes"]


#: Cache paths whose reuse this process has logged.
_REUSE_REPORTED: set = set()


def build(cfg: DatasetConfig, cache_dir, progress: bool = True, workers: Optional[int] = None,
          file_timeout: Optional[float] = FILE_TIMEOUT) -> BuiltDataset:
    """Builds dataset ``cfg`` into ``cache_dir`` (or reuses the cache of an identical config and
    input files of identical contents) and returns it.

    Raises ValueError (unknown name, bad config, no data_root for a dataset that needs one),
    NotADirectoryError/PermissionError (``cache_dir`` is a file or cannot be written; checked before
    reading anything) or FileNotFoundError (data root missing, without the dataset's folders, or
    without a single readable input file), one line each. Bad input files never raise: they are
    counted in ``stats['skipped']`` and logged with their path. workers: parser processes (None =
    every core); file_timeout: seconds one file may take before it is skipped as ``parse_timeout``
    (None: no limit).
    """
    _cache.check_cache_dir(cache_dir)
    found = _build.resolve_sources(cfg)
    tasks, problems = _build.scan(cfg, found)
    fingerprint = _build.fingerprint(tasks, problems)
    key = _cache.cache_key(cfg, fingerprint)
    path = _cache.cache_path(cache_dir, cfg, key)
    cached = _cache.load(path)
    if cached is not None:
        if path not in _REUSE_REPORTED:  # a command may load several splits: said once per process
            _REUSE_REPORTED.add(path)
            logging.info("dataset %s: reusing cache %s", cfg.name, path)
        return cached
    logging.info("dataset %s: building %d files into %s", cfg.name, len(tasks), path)
    built = _build.run(cfg, tasks, workers, progress, problems, file_timeout)
    return _cache.write(path, cfg, key, fingerprint, built)
