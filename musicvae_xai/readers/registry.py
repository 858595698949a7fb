"""The reader registry: every source file format, by name, with its file extensions and read functions.

Each format is one ``ReaderFormat``. Its functions are named ``"module:function"`` and imported only
when a file of that format is read, so importing the registry (as the configuration, the explorer's
upload check and ``explain`` do) loads no parser (music21, mido) and no TensorFlow.

* ``read_pieces(path, piece_id, folder, options) -> list of (piece_id, NoteSequence or ReaderError)``:
  a dataset file -> its pieces (``datasets.sources.parse_file``; ``options`` are the ``Source``'s
  keyword options, ``folder`` the source's folder). A ReaderError *raised* is about the whole file, one
  *returned* about that piece only.
* ``read_one(path, track=None, part_name=..., tune=0) -> readers.ReadResult``: one melody of a single
  file given by a person (``music_io.read_file``: the Explainer, the serving client, the explorer's
  uploads); None for a format that is only read as part of a dataset. A tune number past the end raises
  ``LookupError``. ABC and MusicXML are
  parsed in a worker process under a time limit (``readers.isolated``, ``limits.PARSE_SECONDS``).
* ``select_files(relpaths) -> relpaths``: which matched files of a dataset folder are pieces (default:
  all of them).
* ``played_timing``: the format can hold played (off-grid) timing, and its ``read_one`` also takes
  ``legato=True``: read played notes released shortly before the next onset as lasting until it
  (``readers.common.LEGATO_GAP``). Notated formats leave it False and are never passed ``legato``.
* ``upload_safe``: the reader applies the per-file limits (``readers.limits``) before any per-beat
  work, so an untrusted upload may be given to it; the explorer accepts only these formats.

A new format: its reader module plus one ``register`` call at the end of this file
(docs/ARCHITECTURE.md); datasets, ``explain`` and the explorer (its upload check, message and the
page's ``accept`` list) read this table.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pathlib
import zipfile
from typing import Callable, Optional

from musicvae_xai.readers.common import MELODY_PART, ReaderError


class UnknownFormatError(ValueError):
    """A format name that is not registered (one line)."""


@dataclasses.dataclass(frozen=True)
class ReaderFormat:
    """One registered source format (see the module docstring)."""

    name: str                        # e.g. "midi"; datasets.sources.Source.reader names it
    label: str                       # what a person calls it: "MIDI"
    extensions: tuple                # lower-case, with the dot: (".mid", ".midi")
    read_pieces: str                 # "module:function"
    read_one: Optional[str] = None   # "module:function", or None: dataset files only
    upload_safe: bool = False
    select_files: Optional[str] = None  # "module:function" relpaths -> relpaths
    played_timing: bool = False      # read_one takes legato= (MIDI)

    def function(self, which: str) -> Callable:
        """The imported function named by field ``which`` ("read_pieces", "read_one", "select_files")."""
        target = getattr(self, which)
        if not target:
            raise ValueError(f"format {self.name!r} has no {which}")
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


_FORMATS: dict = {}


def register(fmt: ReaderFormat) -> ReaderFormat:
    """Adds ``fmt``; a second format of the same name is refused (ValueError)."""
    if fmt.name in _FORMATS:
        raise ValueError(f"reader format {fmt.name!r} is already registered")
    if any(not e.startswith(".") or e != e.lower() for e in fmt.extensions):
        raise ValueError(f"reader format {fmt.name!r}: extensions must be lower-case and start with '.'")
    if fmt.upload_safe and not fmt.read_one:
        raise ValueError(f"reader format {fmt.name!r}: upload_safe needs read_one")
    _FORMATS[fmt.name] = fmt
    return fmt


def formats() -> tuple:
    """Every registered format, in registration order."""
    return tuple(_FORMATS.values())


def get(name: str) -> ReaderFormat:
    """The format ``name``; UnknownFormatError (one line) if none is registered."""
    if name not in _FORMATS:
        raise UnknownFormatError(f"unknown reader {name!r}; registered: {', '.join(_FORMATS)}")
    return _FORMATS[name]


def find(name: str) -> Optional[ReaderFormat]:
    """The format ``name``, or None."""
    return _FORMATS.get(name)


def single_file_formats(upload_only: bool = False) -> tuple:
    """The formats a single file can be read in (``read_one``); only the upload-safe ones if asked."""
    return tuple(f for f in _FORMATS.values() if f.read_one and (f.upload_safe or not upload_only))


def extension_map(upload_only: bool = False) -> dict:
    """{extension: format name} of the single-file formats (the first format registered for an
    extension wins)."""
    out: dict = {}
    for f in single_file_formats(upload_only):
        for ext in f.extensions:
            out.setdefault(ext, f.name)
    return out


def for_path(path, upload_only: bool = False) -> Optional[ReaderFormat]:
    """The single-file format of ``path`` by its extension (case-insensitive), or None."""
    name = extension_map(upload_only).get(os.path.splitext(os.fspath(path))[1].lower())
    return None if name is None else _FORMATS[name]


def describe(upload_only: bool = False) -> str:
    """'a MIDI (.mid, .midi), MusicXML (.xml, .musicxml, .mxl) or ABC (.abc) file'."""
    parts = [f"{f.label} ({', '.join(f.extensions)})" for f in single_file_formats(upload_only)]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
    return f"a {listed} file"


# -- read functions of the built-in formats (their parsers imported on first use) ---------------------
def _single(sequence, piece_id: str) -> list:
    return [(piece_id, sequence)]


def midi_pieces(path, piece_id: str, folder, options: dict) -> list:
    from musicvae_xai.readers import midi
    return _single(midi.read(path, piece_id=piece_id, **options), piece_id)


def midi_one(path, track=None, part_name: str = MELODY_PART, tune: int = 0, legato: bool = True):
    from musicvae_xai.readers import midi
    return midi.read_result(path, track=track, chords="skyline", legato=legato)


def musicxml_pieces(path, piece_id: str, folder, options: dict) -> list:
    from musicvae_xai.readers import musicxml
    return _single(musicxml.read(path, piece_id=piece_id, **options), piece_id)


def musicxml_one(path, track=None, part_name: str = MELODY_PART, tune: int = 0):
    """A MusicXML file given by a person, parsed in a worker process under the time limit
    (``readers.isolated``)."""
    from musicvae_xai.readers import isolated, limits
    limits.check_bytes(os.path.getsize(path))
    try:
        limits.check_archive(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # a damaged zip: say so without a parser
        raise ReaderError("unparseable", f"{type(e).__name__}: {e}") from None
    return isolated.call(f"{_HERE}:musicxml_one_here", os.fspath(path), part_name=part_name)


def musicxml_one_here(path, part_name: str = MELODY_PART):
    """``musicxml_one`` in this process (what its worker runs)."""
    from musicvae_xai.readers import musicxml
    return musicxml.read_result(path, part_name=part_name)


def abc_pieces(path, piece_id: str, folder, options: dict) -> list:
    """Every tune of an ABC tunebook; a tune that cannot be read is that piece's ReaderError."""
    from musicvae_xai.readers import abc
    out = []
    for tune in abc.read_tunebook(path, id_prefix=piece_id):
        pid = f"{piece_id}#{tune.tune.index}:X{tune.tune.number}"  # as abc.read_tunebook names it
        out.append((pid, tune.error if tune.error is not None else tune.sequence))
    return out


def abc_one(path, track=None, part_name: str = MELODY_PART, tune: int = 0):
    """An ABC file given by a person: the shape of its text checked here (``limits.check_abc``, no
    parser runs), then parsed in a worker process under the time limit (``readers.isolated``)."""
    from musicvae_xai.readers import isolated, limits
    data = limits.read_file(path)
    if b"\x00" in data:
        raise ReaderError("unparseable", "binary data, not ABC text")
    limits.check_abc(data)
    return isolated.call(f"{_HERE}:abc_one_here", os.fspath(path), tune=tune)


def abc_one_here(path, tune: int = 0):
    """``abc_one`` in this process (what its worker runs)."""
    from musicvae_xai.readers import abc, limits
    tunes = abc.split_tunebook(abc.decode(limits.read_file(path)))
    if not tunes:
        raise ReaderError("unparseable", "no X: line, not an ABC tune")
    if not 0 <= tune < len(tunes):
        raise LookupError(f"no tune {tune}; the file holds {len(tunes)}")
    return abc.read_tune_result(tunes[tune], piece_id=os.fspath(path))


def symbtr_pieces(path, piece_id: str, folder, options: dict) -> list:
    from musicvae_xai.readers import symbtr
    return _single(symbtr.read(path, piece_id=piece_id, **options), piece_id)


_POP_INDEX: dict = {}


def _pop_index(folder: pathlib.Path):
    """index.xlsx of a POP909 folder, read once per process (None if absent or unreadable)."""
    from musicvae_xai.readers import pop909
    key = str(folder)
    if key not in _POP_INDEX:
        path = pathlib.Path(folder) / "POP909" / "index.xlsx"
        try:
            _POP_INDEX[key] = pop909.read_index(path) if path.is_file() else None
        except ReaderError:
            _POP_INDEX[key] = None
    return _POP_INDEX[key]


def pop909_pieces(path, piece_id: str, folder, options: dict) -> list:
    from musicvae_xai.readers import pop909
    return _single(pop909.read(path, index=_pop_index(folder), piece_id=piece_id, **options), piece_id)


def pop909_select(relpaths: list) -> list:
    """The main arrangement ``NNN/NNN.mid`` of each song only, not ``versions/``."""
    return [f for f in relpaths if pathlib.PurePosixPath(f).stem == pathlib.PurePosixPath(f).parent.name]


_HERE = __name__
register(ReaderFormat("midi", "MIDI", (".mid", ".midi"), f"{_HERE}:midi_pieces", f"{_HERE}:midi_one",
                      upload_safe=True, played_timing=True))
register(ReaderFormat("musicxml", "MusicXML", (".xml", ".musicxml", ".mxl"), f"{_HERE}:musicxml_pieces",
                      f"{_HERE}:musicxml_one", upload_safe=True))
register(ReaderFormat("abc", "ABC", (".abc",), f"{_HERE}:abc_pieces", f"{_HERE}:abc_one", upload_safe=True))
register(ReaderFormat("symbtr", "SymbTr", (".txt",), f"{_HERE}:symbtr_pieces"))
register(ReaderFormat("pop909", "POP909", (".mid",), f"{_HERE}:pop909_pieces",
                      select_files=f"{_HERE}:pop909_select"))
