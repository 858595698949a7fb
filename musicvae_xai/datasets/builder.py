"""Building a dataset: list files, parse them in parallel, filter measures, split by piece, augment.

The measures of every piece come from ``sources.parse_file`` (in FULL_RANGE ids), run in worker
processes under a per-file time limit (``pool``). Here they are checked against the pitch range,
grouped with the pieces that share their melody (``grouping``), assigned to a split by a hash of the
group's id (stable across runs, machines and file order), transposed into the range (training split
only) and re-expressed in the configured vocabulary.
"""

from __future__ import annotations

import collections
import hashlib
import multiprocessing
import os
import pathlib
import signal
import sys
import threading
import time
from typing import Optional

import numpy as np
from absl import logging
from tqdm import tqdm

from musicvae_xai import representation
from musicvae_xai.datasets import grouping
from musicvae_xai.datasets import pool as pool_lib
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


def scan(cfg: DatasetConfig, found: list) -> tuple:
    """(tasks, problems): parse tasks for every readable file of every found source, in order, and
    a record {path, source, reason, message} for every matching entry that cannot be read (reasons
    in ``sources.LISTING_REASONS``).

    Raises FileNotFoundError (one line) when no source holds a single readable file: a build of
    nothing is an error, not an empty dataset.
    """
    tasks, problems = [], []
    for source, folder in found:
        if folder is None:
            continue
        files, bad = sources_lib.scan_files(source, folder, cfg.max_files)
        tasks += [(source, str(folder), rel, cfg.allow_cut_time) for rel in files]
        for rel, reason, message in bad:
            path = os.path.normpath(os.path.join(str(folder), rel))
            problems.append({"path": path, "source": source.name, "reason": reason, "message": message})
    if not tasks:
        folders = ", ".join(str(folder) for _, folder in found if folder is not None)
        counts = collections.Counter(p["reason"] for p in problems)
        why = "; ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no file matches " + ", ".join(
            "/".join(s.patterns) for s, f in found if f is not None)
        raise FileNotFoundError(f"dataset {cfg.name!r}: no readable input file under {folders} ({why})")
    for p in problems:
        logging.warning("skipped %s: %s (%s)", p["path"], p["reason"], p["message"])
    return tasks, problems


def fingerprint(tasks: list, problems: list = ()) -> str:
    """SHA-256 over (source, relative path, SHA-256 of the file's bytes) of every input file and the
    unreadable entries: any edit of any file changes it, whatever its size or time stamp."""
    h = hashlib.sha256()
    for source, folder, rel, _ in tasks:
        h.update(f"{source.name}\0{rel}\0{content_hash(os.path.join(folder, rel))}\n".encode())
    for p in problems:
        h.update(f"{p['source']}\0{p['path']}\0{p['reason']}\n".encode())
    return h.hexdigest()


def content_hash(path: str) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB blocks); "unreadable" if it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return "unreadable"
    return h.hexdigest()


def split_of(piece_id: str, fractions: tuple, seed: int = 0) -> str:
    """Split of a piece from a SHA-256 hash of its id: the same on every run and machine."""
    digest = hashlib.sha256(f"{seed}:{piece_id}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    edge = 0.0
    for name, fraction in zip(SPLITS, fractions, strict=False):
        edge += fraction
        if u < edge:
            return name
    return SPLITS[-1]


#: Default per-file time limit of a build, in seconds (``build(file_timeout=...)``, ``--file_timeout``).
FILE_TIMEOUT = 60.0


def parse_all(tasks: list, workers: Optional[int], progress: bool, desc: str,
              file_timeout: Optional[float] = FILE_TIMEOUT) -> list:
    """Runs ``sources.parse_file`` on every task, in worker processes when there are enough files.

    Returns the FileResults in task order. ``workers=None`` uses every CPU core. A file that takes
    longer than ``file_timeout`` seconds (None: no limit) is skipped as ``parse_timeout``: its
    worker process is killed and replaced; in this process (one worker, or fewer than 4 files) a
    timer signal interrupts it instead. A worker that dies (e.g. killed for memory) skips its file
    as ``parser_crashed``. If worker processes cannot run at all (e.g. they cannot import an
    interactive ``__main__``), the remaining files are parsed in this process.
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
                _parse_in_pool(tasks, workers, results, bar, file_timeout)
            except (pool_lib.PoolUnavailable, OSError) as e:
                logging.warning("parser processes failed (%s); parsing the remaining files here", e)
        for i, task in enumerate(tasks):
            if i not in results:
                results[i] = _parse_here(task, file_timeout)
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


def _parse_in_pool(tasks: list, workers: int, results: dict, bar, file_timeout: Optional[float]) -> None:
    # Largest files first, so the last ones are quick; results keep task order.
    order = sorted(range(len(tasks)), key=lambda i: -_size(tasks[i]))
    ctx = multiprocessing.get_context(_start_method())
    done = pool_lib.run(sources_lib.parse_file, tasks, workers, file_timeout, order=order,
                        on_done=lambda i: bar.update(1), context=ctx)
    for i, (status, value) in done.items():
        results[i] = value if status == pool_lib.OK else _failed(tasks[i], status, value, file_timeout)


def _failed(task, status: str, value, file_timeout: Optional[float]) -> sources_lib.FileResult:
    source, _, rel, _ = task
    if status == pool_lib.TIMEOUT:
        return sources_lib.FileResult(source.name, rel, [], "parse_timeout",
                                      f"reading took longer than the {file_timeout:g} s limit per file")
    return sources_lib.FileResult(source.name, rel, [], "parser_crashed",
                                  f"the parser process died (exit code {value}), e.g. killed for memory")


class _Timeout(BaseException):  # not caught by parse_file's `except Exception`
    pass


def _parse_here(task, file_timeout: Optional[float]) -> sources_lib.FileResult:
    """parse_file in this process, interrupted by SIGALRM after ``file_timeout`` seconds (only on
    the main thread of a POSIX process; elsewhere without a limit)."""
    if (file_timeout is None or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        return sources_lib.parse_file(task)

    def alarm(signum, frame):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, float(file_timeout))
        try:
            return sources_lib.parse_file(task)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Timeout:
        return _failed(task, pool_lib.TIMEOUT, file_timeout, file_timeout)
    finally:
        signal.signal(signal.SIGALRM, previous)


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


def assemble(cfg: DatasetConfig, tasks: list, results: list, problems: list = ()) -> dict:
    """Filters, groups, splits and augments parsed files.

    Pieces sharing a melody (``grouping``) go to the split of their group. Returns {"arrays":
    {f"{kind}_{split}": array}, "pieces": [piece records], "splits": {piece id: split}, "stats":
    dict, "skipped_files": [records]}; a piece record holds its "title" from the file's metadata ('' if
    none); kinds: tokens int32 [N, 24] (ids of ``cfg.vocabulary``),
    piece int32 [N] (index into pieces), shift int8 [N] (semitones of transposition). problems:
    ``scan``'s unreadable entries, counted under their reasons.
    """
    vocab = cfg.vocabulary
    skipped = sources_lib.count_skips(results)
    skipped.update(p["reason"] for p in problems)
    skipped_files = [dict(p) for p in problems]
    per_source = collections.OrderedDict()
    for p in problems:
        per_source.setdefault(p["source"], _source_stats())
    kept = []  # (source name, piece id, in-range measures, fingerprints, title)
    files_parsed = pieces_total = 0
    for (source, folder, rel, _), r in zip(tasks, results, strict=False):
        src = per_source.setdefault(source.name, _source_stats())
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
                skipped[representation.OUT_OF_PITCH_RANGE] += int((~ok).sum())
            if ok.any():
                kept.append((source.name, p.piece_id, measures[ok], grouping.fingerprints(measures), p.title))
    ids = [k[1] for k in kept]
    groups = grouping.group_pieces(ids, [k[3] for k in kept])
    per_split = {s: {"tokens": [], "piece": [], "shift": []} for s in SPLITS}
    pieces, splits = [], {}
    for (source_name, piece_id, measures, keys, title), group in zip(kept, groups, strict=False):
        split = split_of(group, cfg.split, cfg.split_seed)
        shifts = transpositions(measures, cfg) if split == "train" else [0]
        index = len(pieces)
        pieces.append({"id": piece_id, "title": title, "source": source_name, "split": split, "group": group,
                       "fingerprinted": bool(keys), "measures": int(len(measures)),
                       "shifts": [int(shifts[0]), int(shifts[-1])]})
        splits[piece_id] = split
        src = per_source[source_name]
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
        **grouping.duplicate_stats(groups, [k[0] for k in kept], [k[3] for k in kept]),
        "measures": before,
        "measures_augmented": {s: int(len(arrays[f"tokens_{s}"])) for s in SPLITS},
        "skipped": dict(sorted(skipped.items())),
        "skipped_units": {k: sources_lib.SKIP_UNITS.get(k, _unit_of(k, results)) for k in sorted(skipped)},
        "sources": dict(per_source),
    }
    return {"arrays": arrays, "pieces": pieces, "splits": splits, "stats": stats, "skipped_files": skipped_files}


def _unit_of(reason: str, results: list) -> str:
    """Unit of a skip reason not in SKIP_UNITS (e.g. a new reader limit): files or pieces when it
    was given to a whole file or piece, else bars."""
    if any(r.reason == reason for r in results):
        return "files"
    if any(p.reason == reason for r in results for p in r.pieces):
        return "pieces"
    return "bars"


def _source_stats() -> dict:
    return {"files_total": 0, "files_parsed": 0, "pieces": 0, "measures": 0}


def run(cfg: DatasetConfig, tasks: list, workers: Optional[int], progress: bool, problems: list = (),
        file_timeout: Optional[float] = FILE_TIMEOUT) -> dict:
    """Parses and assembles; adds the build time to the stats."""
    t0 = time.time()
    results = parse_all(tasks, workers, progress, desc=f"reading {cfg.name}", file_timeout=file_timeout)
    built = assemble(cfg, tasks, results, problems)
    built["stats"]["build_seconds"] = round(time.time() - t0, 3)
    return built
