"""Building a dataset: list files, parse them in parallel, filter measures, split by piece, augment.

The measures of every piece come from ``sources.parse_file`` (in FULL_RANGE ids). Here they are
checked against the pitch range, assigned to a split by a hash of the piece id (stable across runs,
machines and file order), transposed into the range (training split only) and re-expressed in the
configured vocabulary.
"""

from __future__ import annotations

import collections
import concurrent.futures
import hashlib
import multiprocessing
import os
import pathlib
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Optional

import numpy as np
from absl import logging
from tqdm import tqdm

from musicvae_xai import representation
from musicvae_xai.datasets import sources as sources_lib
from musicvae_xai.datasets.config import SPLITS, DatasetConfig

FULL = representation.FULL_RANGE


def resolve_sources(cfg: DatasetConfig) -> list:
    """[(Source, folder Path or None)] of the dataset, after checking the name and the data root.

    Raises ValueError for an unknown name or a missing data_root, FileNotFoundError for a data root
    that does not exist or holds none of the dataset's folders; all with a one-line message.
    """
    cfg.validate()
    srcs = sources_lib.sources(cfg.name)
    if cfg.data_root is None and cfg.name != "embedded":
        raise ValueError(f"dataset {cfg.name!r} needs a data_root (the folder holding "
                         f"{', '.join(s.subdir + '/' for s in srcs)})")
    if cfg.data_root is not None and not pathlib.Path(cfg.data_root).is_dir():
        raise FileNotFoundError(f"data root {cfg.data_root} does not exist or is not a folder")
    found = [(s, sources_lib.source_dir(s, cfg.data_root)) for s in srcs]
    if all(folder is None for _, folder in found):
        wanted = ", ".join(s.subdir + "/" for s in srcs) or "ABC files"
        raise FileNotFoundError(f"data root {cfg.data_root or sources_lib.EMBEDDED_DIR} holds none of the "
                                f"folders of dataset {cfg.name!r} ({wanted})")
    for s, folder in found:
        if folder is None:
            logging.warning("dataset %s: folder %s/ not found under %s; building without it",
                            cfg.name, s.subdir, cfg.data_root)
    return found


def list_tasks(cfg: DatasetConfig, found: list) -> list:
    """Parse tasks (see ``sources.parse_file``) for every file of every found source, in order."""
    tasks = []
    for source, folder in found:
        if folder is None:
            continue
        for rel in sources_lib.list_files(source, folder, cfg.max_files):
            tasks.append((source, str(folder), rel, cfg.allow_cut_time))
    return tasks


def fingerprint(tasks: list) -> str:
    """Hash of (source, relative path, size) of every input file: changes when the data do."""
    h = hashlib.sha256()
    for source, folder, rel, _ in tasks:
        try:
            size = os.path.getsize(os.path.join(folder, rel))
        except OSError:
            size = -1
        h.update(f"{source.name}\0{rel}\0{size}\n".encode())
    return h.hexdigest()


def split_of(piece_id: str, fractions: tuple, seed: int = 0) -> str:
    """Split of a piece from a SHA-256 hash of its id: the same on every run and machine."""
    digest = hashlib.sha256(f"{seed}:{piece_id}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions):
        edge += fraction
        if u < edge:
            return name
    return SPLITS[-1]


def parse_all(tasks: list, workers: Optional[int], progress: bool, desc: str) -> list:
    """Runs ``sources.parse_file`` on every task, in worker processes when there are enough files.

    Returns the FileResults in task order. ``workers=None`` uses every CPU core. If the worker
    processes fail (e.g. they cannot import an interactive ``__main__``), the remaining files are
    parsed in this process.
    """
    if not tasks:
        return []
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    workers = min(workers, len(tasks))
    bar = tqdm(total=len(tasks), desc=desc, unit="file", disable=not progress, file=sys.stderr)
    results: dict = {}
    try:
        if workers > 1 and len(tasks) >= 4:
            try:
                _parse_in_pool(tasks, workers, results, bar)
            except (BrokenProcessPool, OSError) as e:
                logging.warning("parser processes failed (%s); parsing the remaining files here", e)
        for i, task in enumerate(tasks):
            if i not in results:
                results[i] = sources_lib.parse_file(task)
                bar.update(1)
    finally:
        bar.close()
    return [results[i] for i in range(len(tasks))]


def _start_method() -> str:
    """fork is cheapest, but not once TensorFlow's threads run in this process: then forkserver,
    unless the main module is not a file that the new workers could import (stdin, notebooks)."""
    if "tensorflow" not in sys.modules:
        return "fork"
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return "forkserver" if main_file is None or os.path.isfile(main_file) else "fork"


def _parse_in_pool(tasks: list, workers: int, results: dict, bar) -> None:
    # Largest files first, in small groups, so the last groups are quick; results keep task order.
    order = sorted(range(len(tasks)), key=lambda i: -_size(tasks[i]))
    size = max(1, min(8, len(tasks) // (workers * 8)))
    groups = [order[k:k + size] for k in range(0, len(order), size)]
    ctx = multiprocessing.get_context(_start_method())
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = {pool.submit(_parse_group, [tasks[i] for i in g]): g for g in groups}
        for future in concurrent.futures.as_completed(futures):
            for i, result in zip(futures[future], future.result()):
                results[i] = result
            bar.update(len(futures[future]))


def _parse_group(group: list) -> list:
    return [sources_lib.parse_file(task) for task in group]


def _size(task) -> int:
    try:
        return os.path.getsize(os.path.join(task[1], task[2]))
    except OSError:
        return 0


def in_range_mask(measures: np.ndarray, min_pitch: int, max_pitch: int) -> np.ndarray:
    """bool [M]: measures (FULL_RANGE ids [M, 24]) whose onset pitches all lie in the range."""
    is_pitch = measures < FULL.num_pitches
    bad = is_pitch & ((measures < min_pitch) | (measures > max_pitch))
    return ~bad.any(axis=1)


def transpositions(measures: np.ndarray, cfg: DatasetConfig) -> list:
    """Semitone shifts (ascending, 0 included) that keep every onset of the piece in range."""
    if not cfg.transpose:
        return [0]
    pitches = measures[measures < FULL.num_pitches]
    if not len(pitches):
        return [0]
    lo, hi = cfg.min_pitch - int(pitches.min()), cfg.max_pitch - int(pitches.max())
    if cfg.max_transpose is not None:
        lo, hi = max(lo, -cfg.max_transpose), min(hi, cfg.max_transpose)
    return list(range(lo, hi + 1))


def assemble(cfg: DatasetConfig, tasks: list, results: list) -> dict:
    """Filters, splits and augments parsed files.

    Returns {"arrays": {f"{kind}_{split}": array}, "pieces": [piece records], "stats": dict,
    "skipped_files": [records]}; kinds: tokens int32 [N, 24] (ids of ``cfg.vocabulary``), piece
    int32 [N] (index into pieces), shift int8 [N] (semitones of transposition).
    """
    vocab = cfg.vocabulary
    skipped = sources_lib.count_skips(results)
    per_split = {s: {"tokens": [], "piece": [], "shift": []} for s in SPLITS}
    pieces, skipped_files = [], []
    per_source = collections.OrderedDict()
    files_parsed = pieces_total = 0
    for (source, folder, rel, _), r in zip(tasks, results):
        src = per_source.setdefault(source.name, {"files_total": 0, "files_parsed": 0, "pieces": 0, "measures": 0})
        src["files_total"] += 1
        path = os.path.join(folder, rel)
        if r.reason:
            logging.warning("skipped file %s: %s (%s)", path, r.reason, r.message)
            skipped_files.append({"path": path, "reason": r.reason, "message": r.message})
            continue
        if any(p.reason != "unparseable" for p in r.pieces):
            files_parsed += 1
            src["files_parsed"] += 1
        for p in r.pieces:
            if p.reason == "unparseable":  # one bad tune of a tunebook
                logging.warning("skipped %s in file %s: %s (%s)", p.piece_id, path, p.reason, p.message)
                skipped_files.append({"path": path, "piece": p.piece_id, "reason": p.reason, "message": p.message})
                continue
            if p.reason:
                logging.info("skipped piece %s: %s (%s)", p.piece_id, p.reason, p.message)
                continue
            pieces_total += 1
            measures = np.asarray(p.measures, np.int32).reshape(-1, representation.MEASURE_TICKS)
            ok = in_range_mask(measures, cfg.min_pitch, cfg.max_pitch)
            if (~ok).sum():
                skipped["out_of_pitch_range"] += int((~ok).sum())
            measures = measures[ok]
            if not len(measures):
                continue
            split = split_of(p.piece_id, cfg.split, cfg.split_seed)
            shifts = transpositions(measures, cfg) if split == "train" else [0]
            index = len(pieces)
            pieces.append({"id": p.piece_id, "source": source.name, "split": split,
                           "measures": int(len(measures)), "shifts": [int(shifts[0]), int(shifts[-1])]})
            src["pieces"] += 1
            src["measures"] += int(len(measures))
            for shift in shifts:
                per_split[split]["tokens"].append(vocab.translate(measures, FULL, shift))
                per_split[split]["piece"].append(np.full(len(measures), index, np.int32))
                per_split[split]["shift"].append(np.full(len(measures), shift, np.int8))
    arrays = {}
    for split, parts in per_split.items():
        arrays[f"tokens_{split}"] = (np.concatenate(parts["tokens"]) if parts["tokens"]
                                     else np.zeros((0, representation.MEASURE_TICKS), np.int32)).astype(np.int32)
        arrays[f"piece_{split}"] = (np.concatenate(parts["piece"]) if parts["piece"] else np.zeros(0, np.int32))
        arrays[f"shift_{split}"] = (np.concatenate(parts["shift"]) if parts["shift"] else np.zeros(0, np.int8))
    before = {s: sum(pc["measures"] for pc in pieces if pc["split"] == s) for s in SPLITS}
    stats = {
        "dataset": cfg.name,
        "files_total": len(tasks),
        "files_parsed": files_parsed,
        "pieces_total": pieces_total,
        "pieces": len(pieces),
        "pieces_per_split": {s: sum(1 for pc in pieces if pc["split"] == s) for s in SPLITS},
        "measures": before,
        "measures_augmented": {s: int(len(arrays[f"tokens_{s}"])) for s in SPLITS},
        "skipped": dict(sorted(skipped.items())),
        "skipped_units": {k: sources_lib.SKIP_UNITS.get(k, "bars") for k in sorted(skipped)},
        "sources": dict(per_source),
    }
    return {"arrays": arrays, "pieces": pieces, "stats": stats, "skipped_files": skipped_files}


def run(cfg: DatasetConfig, tasks: list, workers: Optional[int], progress: bool) -> dict:
    """Parses and assembles; adds the build time to the stats."""
    t0 = time.time()
    results = parse_all(tasks, workers, progress, desc=f"reading {cfg.name}")
    built = assemble(cfg, tasks, results)
    built["stats"]["build_seconds"] = round(time.time() - t0, 3)
    return built
