"""The registry of named datasets and the per-file work of a build: read a file, cut it into measures.

A dataset is one or more *sources*: a folder under the data root, which files in it to take, and
which reader (with which options) turns each into melodies. ``parse_file`` runs in worker
processes, so it takes and returns plain picklable values and never imports TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import fnmatch
import os
import pathlib
import stat
from typing import Optional

import numpy as np

from musicvae_xai import representation
from musicvae_xai.readers import ReaderError
from musicvae_xai.readers.common import MELODY_PART
from musicvae_xai.readers import registry as reader_registry

#: Folder of the embedded public-domain tunes shipped with the package.
EMBEDDED_DIR = pathlib.Path(__file__).resolve().parents[1] / "embedded_data"


@dataclasses.dataclass(frozen=True)
class Source:
    """One folder of a dataset: ``subdir`` under the data root, file ``patterns`` (globs relative to
    it), the ``reader`` (a format of ``readers.registry``) and its keyword ``options``."""

    name: str
    subdir: str
    patterns: tuple
    reader: str
    options: tuple = ()


#: The datasets' MIDI is read with its notes as played (``legato`` False): the models were trained on
#: it so, and the legato fill of a file a person gives (``readers.common.LEGATO_GAP``) would change
#: 2.1% of the piano-midi.de notes (7 of the CRÉ tunes' 213,934), and with them the cached datasets.
DATASETS = {
    "irish": (
        Source("irish_cre", "irish_cre", ("MIDI/*.mid", "MIDI/*.MID"), "midi",
               (("track", "first"), ("chords", "skyline"), ("pickup", True), ("legato", False))),
        Source("irish_oneills1850", "irish_oneills1850", ("*.abc",), "abc"),
    ),
    "turkish": (
        Source("turkish_symbtr", "turkish_symbtr", ("txt/*.txt",), "symbtr"),
    ),
    "classical": (
        Source("classical_bach_chorales", "classical_bach_chorales", ("*.mxl", "*.xml", "*.musicxml"),
               "musicxml", (("part_name", MELODY_PART),)),
        Source("classical_piano_midi", "classical_piano_midi", ("midis/*/*.mid", "midis/*.mid"), "midi",
               (("track", r"re:(?i)\bright\b"), ("chords", "skyline"), ("legato", False))),
    ),
    "pop": (
        Source("pop_pop909", "pop_pop909", ("POP909/*/*.mid",), "pop909"),
    ),
    "embedded": (
        Source("embedded", "", ("*.abc",), "abc"),
    ),
}

#: What each dataset's music is, in a musician's words (the explorer names a model by it).
GENRES = {
    "irish": "Irish dance tunes",
    "turkish": "Turkish makam music",
    "classical": "Bach chorale melodies and classical piano pieces",
    "pop": "Chinese pop songs (POP909)",
    "embedded": "Irish dance tunes (O'Neill's 1850 collection)",
}


def genre(dataset: str) -> str:
    """A dataset's music in a musician's words (``GENRES``), "" for a dataset the registry does not know."""
    return GENRES.get(str(dataset or ""), "")


#: Unit of each skip reason in the build statistics.
SKIP_UNITS = {
    "empty_file": "files",
    "too_long": "files",
    "too_large": "files",
    "unparseable": "files or tunes",
    "no_melody": "pieces",
    "no_notes": "pieces",
    "not_simple_duple": "pieces",
    **dict.fromkeys(representation.BAR_SKIP_TEXT, "bars"),
    "unreadable_folder": "folders",
    "unreadable_file": "files",
    "symlink_loop": "entries",
    "dangling_link": "entries",
    "not_a_file": "entries",
    "parse_timeout": "files",
    "parser_crashed": "files",
}


def names() -> list:
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def sources(name: str) -> tuple:
    """The sources of dataset ``name``; ValueError (one line) if it is not registered."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered: {', '.join(names())}")
    return DATASETS[name]


def source_dir(source: Source, data_root: Optional[str]) -> Optional[pathlib.Path]:
    """The folder of ``source``: ``data_root/subdir``, or ``data_root`` itself when it *is* that
    folder; the package's embedded data when data_root is None. None if it is not there."""
    if data_root is None:
        return EMBEDDED_DIR if EMBEDDED_DIR.is_dir() else None
    root = pathlib.Path(data_root)
    if not source.subdir:
        return root if root.is_dir() else None
    if (root / source.subdir).is_dir():
        return root / source.subdir
    if root.name == source.subdir and root.is_dir():
        return root
    return None


#: Reasons an entry matching a source's patterns is not read (see ``scan_files``).
LISTING_REASONS = ("unreadable_folder", "unreadable_file", "symlink_loop", "dangling_link", "not_a_file")


def _scandir(path: str) -> list:
    """Entries of a folder (a seam for tests that simulate an unreadable folder as root)."""
    with os.scandir(path) as it:
        return list(it)


def _problem(path: str, error: OSError, folder: bool) -> str:
    if error.errno == errno.ELOOP:
        return "symlink_loop"
    if isinstance(error, FileNotFoundError) and os.path.islink(path):
        return "dangling_link"
    return "unreadable_folder" if folder else "unreadable_file"


def scan_files(source: Source, folder: pathlib.Path, max_files: Optional[int] = None) -> tuple:
    """The source's files under ``folder`` and the entries that cannot be read.

    Returns (files, problems): files are sorted relative POSIX paths of readable regular files
    matching the source's patterns (glob syntax, one folder level per ``/``, hidden names only when
    the pattern asks); problems are sorted (relative path, reason, message) with reason one of
    LISTING_REASONS: a folder on the way that cannot be listed, a matching file without read
    permission, a symlink loop, a dangling symlink, or a matching entry that is not a regular file
    (a folder named ``x.mid``, a FIFO, a device).
    """
    root = str(folder)
    found: set = set()
    problems: dict = {}

    def note(rel: str, reason: str, message: str) -> None:
        problems.setdefault(rel or ".", (rel or ".", reason, message))

    def walk(rel: str, parts: list) -> None:
        path = os.path.join(root, rel) if rel else root
        try:
            entries = _scandir(path)
        except OSError as e:
            note(rel, _problem(path, e, folder=True), f"cannot list folder: {e.strerror or e}")
            return
        pattern, rest = parts[0], parts[1:]
        for entry in entries:
            name = entry.name
            if name.startswith(".") and not pattern.startswith("."):
                continue
            if not fnmatch.fnmatchcase(name, pattern):
                continue
            child = f"{rel}/{name}" if rel else name
            try:
                st = os.stat(entry.path)
            except OSError as e:
                note(child, _problem(entry.path, e, folder=bool(rest)), str(e.strerror or e))
                continue
            if rest:
                if stat.S_ISDIR(st.st_mode):
                    walk(child, rest)
                continue
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                note(child, "not_a_file", f"matches {source.patterns} but is {kind}")
            elif not os.access(entry.path, os.R_OK):
                note(child, "unreadable_file", "no read permission")
            else:
                found.add(child)

    for pattern in source.patterns:
        walk("", pattern.split("/"))
    files = sorted(found)
    fmt = reader_registry.find(source.reader)
    if fmt is not None and fmt.select_files:  # e.g. POP909: the main arrangement NNN/NNN.mid only
        files = fmt.function("select_files")(files)
    return (files[:max_files] if max_files else files), sorted(problems.values())


@dataclasses.dataclass
class PieceResult:
    """One piece read from a file: FULL_RANGE measures int32 [M, 24] and bar-level skip counts, or
    the piece-level skip ``reason``/``message``; its title from the file's metadata ('' if none)."""

    piece_id: str
    measures: np.ndarray
    skipped: dict
    reason: Optional[str] = None
    message: str = ""
    title: str = ""


@dataclasses.dataclass
class FileResult:
    """What came of one file: its pieces, or the file-level skip ``reason``/``message``."""

    source: str
    relpath: str
    pieces: list
    reason: Optional[str] = None
    message: str = ""


def _measures(piece_id: str, sequence, allow_cut_time: bool) -> PieceResult:
    ext = representation.sequence_to_measures(sequence, allow_cut_time=allow_cut_time)
    return PieceResult(piece_id, ext.measures, dict(ext.skipped), title=sequence.sequence_metadata.title)


def parse_file(task: tuple) -> FileResult:
    """Reads one file of a source and cuts every piece in it into measures.

    task = (source: Source, folder: str, relpath: str, allow_cut_time: bool). Never raises for bad
    input: reader errors come back as skip reasons; any other exception while reading is counted as
    ``unparseable`` with its message.
    """
    source, folder, relpath, allow_cut_time = task
    folder = pathlib.Path(folder)
    path = folder / relpath
    options = dict(source.options)
    piece_id = f"{source.name}/{relpath}"
    try:
        pieces = []
        for pid, item in reader_registry.get(source.reader).function("read_pieces")(path, piece_id, folder, options):
            if isinstance(item, ReaderError):  # this piece only (e.g. one tune of a tunebook)
                pieces.append(PieceResult(pid, _no_measures(), {}, item.reason, item.message))
            else:
                pieces.append(_measures(pid, item, allow_cut_time))
        return FileResult(source.name, relpath, pieces)
    except ReaderError as e:
        if e.reason in ("empty_file", "unparseable", "too_long", "too_large"):
            return FileResult(source.name, relpath, [], e.reason, e.message)
        # the file was read, but its one piece has no usable melody
        return FileResult(source.name, relpath, [PieceResult(piece_id, _no_measures(), {}, e.reason, e.message)])
    except Exception as e:  # a reader bug or an input no reader anticipated: count it, go on
        return FileResult(source.name, relpath, [], "unparseable", f"{type(e).__name__}: {e}")


def _no_measures() -> np.ndarray:
    return np.zeros((0, representation.MEASURE_TICKS), np.int32)


def count_skips(results: list) -> collections.Counter:
    """Skip reason -> count over file results (file-, piece- and bar-level reasons together)."""
    total: collections.Counter = collections.Counter()
    for r in results:
        if r.reason:
            total[r.reason] += 1
        for p in r.pieces:
            if p.reason:
                total[p.reason] += 1
            total.update(p.skipped)
    return total
