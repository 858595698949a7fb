"""ABC reader through music21: a tunebook is split at its ``X:`` lines and each tune parsed alone,
so one bad tune never costs the rest of the book.

Every tune is a single voice, so the whole tune is the melody; grace notes are dropped, written
double stops/chords keep their highest note, the pickup bar is shifted to end on the first bar line.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional, Union

from music21 import converter
from note_seq.protobuf import music_pb2

from musicvae_xai.readers import limits
from musicvae_xai.readers.common import ReaderError
from musicvae_xai.readers.common import ReadResult
from musicvae_xai.readers.music21_part import part_to_result, part_to_sequence, quiet_music21

_X_LINE = re.compile(r"^X:", re.MULTILINE)
_FIELD = re.compile(r"^([A-Za-z]):\s*(.*?)\s*$", re.MULTILINE)


@dataclasses.dataclass
class Tune:
    """One tune of a tunebook: its index in the book, its ``X:`` number, title and ABC text."""

    index: int
    number: str
    title: str
    text: str

    def field(self, letter: str) -> list:
        """Values of every ``letter:`` header/inline field line of the tune, in order."""
        return [v for k, v in _FIELD.findall(self.text) if k == letter]


@dataclasses.dataclass
class TuneResult:
    """What came of one tune: a melody, or the ReaderError that stopped it."""

    tune: Tune
    sequence: Optional[music_pb2.NoteSequence] = None
    error: Optional[ReaderError] = None


def decode(data: bytes) -> str:
    """ABC bytes -> text: UTF-8, else Latin-1 (older tunebooks)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_tunebook(text: str) -> list:
    """Splits ABC text at each line starting ``X:``. The file header before the first tune (if it
    has fields) is put in front of every tune, as ABC says it applies to all of them."""
    starts = [m.start() for m in _X_LINE.finditer(text)]
    if not starts:
        return []
    header = text[:starts[0]]
    header = header if _FIELD.search(header) else ""
    tunes = []
    for i, s in enumerate(starts):
        body = text[s:starts[i + 1] if i + 1 < len(starts) else len(text)]
        first, _, rest = body.partition("\n")
        number = first[2:].strip()
        title = next((v for k, v in _FIELD.findall(body) if k == "T"), "")
        # the X: line must open the tune; file-header fields follow it
        tunes.append(Tune(i, number, title, first + "\n" + header + rest if header else body))
    return tunes


def clean_header(text: str) -> str:
    """Drops the lines of a tune header (before its ``K:`` line) that are neither fields nor
    comments: continuation lines of free-text fields (``N:``, ``H:``), which music21 would read as
    notes before the default note length is known."""
    lines = text.split("\n")
    k = next((i for i, ln in enumerate(lines) if ln.startswith("K:")), None)
    if k is None:
        return text
    head = [ln for ln in lines[:k] if not ln.strip() or ln.startswith("%") or _FIELD.match(ln)]
    return "\n".join(head + lines[k:])


def read_tune(tune: Tune, *, piece_id: str = "") -> music_pb2.NoteSequence:
    """Parses one tune; raises ReaderError if music21 cannot parse it or it has no notes."""
    return _read(tune, piece_id, with_style=False).sequence


def read_tune_result(tune: Tune, *, piece_id: str = "") -> ReadResult:
    """``read_tune`` with the tune's ``SourceStyle`` (title as track name, ``Q:`` tempo)."""
    return _read(tune, piece_id, with_style=True)


def _read(tune: Tune, piece_id: str, with_style: bool) -> ReadResult:
    limits.check_abc(tune.text.encode("utf-8", "replace"), "the tune")  # before music21 (see readers.limits)
    try:
        with quiet_music21(skip_beaming=True):
            parsed = converter.parseData(clean_header(tune.text), format="abc")
    except Exception as e:  # music21's ABC handler raises many types
        raise ReaderError("unparseable", f"{type(e).__name__}: {e}") from None
    if hasattr(parsed, "scores"):  # an Opus: take its first score
        scores = list(parsed.scores)
        if not scores:
            raise ReaderError("unparseable", "no tune in the ABC text")
        parsed = scores[0]
    parts = list(getattr(parsed, "parts", [])) or [parsed]
    try:
        if with_style:
            return part_to_result(parts[0], piece_id=piece_id, title=tune.title)
        return ReadResult(part_to_sequence(parts[0], piece_id=piece_id, title=tune.title))
    except ReaderError:
        raise
    except Exception as e:
        raise ReaderError("unparseable", f"{type(e).__name__}: {e}") from None


def read_tunebook(path: Union[str, os.PathLike], *, id_prefix: str = "") -> list:
    """Every tune of an ABC file as a ``TuneResult`` (in book order).

    Piece ids are ``f"{id_prefix or path}#{index}:X{number}"``. Raises ReaderError for an empty file
    or a file with no ``X:`` line (not ABC).
    """
    data = limits.read_file(path)
    if not data:
        raise ReaderError("empty_file")
    if b"\x00" in data:
        raise ReaderError("unparseable", "binary data, not ABC text")
    tunes = split_tunebook(decode(data))
    if not tunes:
        raise ReaderError("unparseable", "no X: line, not an ABC tunebook")
    prefix = id_prefix or os.fspath(path)
    results = []
    for tune in tunes:
        pid = f"{prefix}#{tune.index}:X{tune.number}"
        try:
            results.append(TuneResult(tune, sequence=read_tune(tune, piece_id=pid)))
        except ReaderError as e:
            results.append(TuneResult(tune, error=e))
    return results
