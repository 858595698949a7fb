"""MusicXML reader (.xml, .mxl, .musicxml) through music21: the melody part as a NoteSequence.

Used for the Bach chorales: the melody is the part named ``Soprano`` (the first part when no part
has that name, e.g. bwv113.8 which has no part names).
"""

from __future__ import annotations

import os
import re
import zipfile
from typing import Union
from xml.etree import ElementTree

from music21 import converter
from note_seq.protobuf import music_pb2

from musicvae_xai.readers import limits
from musicvae_xai.readers.common import MELODY_PART, ReaderError, ReadResult
from musicvae_xai.readers.music21_part import part_to_result, quiet_music21

_NOTE = re.compile(rb"<note[\s>/]")
_PART = re.compile(rb"<part[\s>]")


def check_part_notes(xml: bytes) -> None:
    """ReaderError('too_large') when a ``<part>`` of the document holds over ``limits.MAX_NOTES`` notes,
    counted on the bytes (a regular expression, no XML parse), so a score of 128k notes is refused in
    milliseconds."""
    starts = [m.start() for m in _PART.finditer(xml)] or [0]
    for start, end in zip(starts, starts[1:] + [len(xml)], strict=True):
        limits.check_notes(len(_NOTE.findall(xml, start, end)), "a part of the score")


def _read_member(z: zipfile.ZipFile, name: str, budget: int) -> bytes:
    """One zip member, decompressed in chunks and stopped as soon as it passes ``budget`` bytes (the
    directory's sizes were checked already, but a crafted directory may understate them)."""
    chunks, total = [], 0
    with z.open(name) as member:
        while True:
            chunk = member.read(1 << 20)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > budget:
                raise ReaderError("too_large", f"{name} decompresses to more than the {limits.MAX_BYTES}-byte "
                                               "limit (MUSICVAE_XAI_MAX_BYTES)")
            chunks.append(chunk)


def _xml_bytes(path: str) -> bytes:
    """The MusicXML document of a .xml/.musicxml file or a compressed .mxl (zip) file.

    Raises ReaderError('too_large') for a file over ``limits.MAX_BYTES``, or a zip whose members
    would decompress to more: the sizes its directory declares are summed before anything is
    decompressed, and the reading itself stops at the limit.
    """
    limits.check_bytes(os.path.getsize(path))
    limits.check_archive(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            budget = limits.MAX_BYTES
            root_file = None
            if "META-INF/container.xml" in names:
                container_xml = _read_member(z, "META-INF/container.xml", budget)
                budget -= len(container_xml)
                container = ElementTree.fromstring(container_xml)
                found = container.find(".//{*}rootfile")
                root_file = found.get("full-path") if found is not None else None
            if root_file is None:
                root_file = next(n for n in names if n.endswith((".xml", ".musicxml")) and not n.startswith("META-INF"))
            return _read_member(z, root_file, budget)
    return limits.read_file(path)


def melody_only(xml: bytes, part_name: str) -> tuple:
    """(MusicXML bytes with only the melody part, its name): the part named ``part_name``
    (case-insensitive), else the first. Parsing one part instead of four or more makes music21
    several times faster. Documents that are not ``score-partwise`` come back unchanged."""
    root = ElementTree.fromstring(xml)
    if root.tag != "score-partwise":
        return xml, ""
    part_list = root.find("part-list")
    if part_list is None:
        raise ReaderError("no_melody", "no part-list in the score")
    score_parts = part_list.findall("score-part")
    if not score_parts:
        raise ReaderError("no_melody", "no parts in the score")
    wanted = part_name.strip().lower()
    names = [(sp.findtext("part-name") or "").strip() for sp in score_parts]
    k = next((i for i, n in enumerate(names) if n.lower() == wanted), 0)
    keep = score_parts[k].get("id")
    for element in list(part_list):
        if (element.tag == "score-part" and element.get("id") != keep) or element.tag == "part-group":
            part_list.remove(element)
    for part in root.findall("part"):
        if part.get("id") != keep:
            root.remove(part)
    return ElementTree.tostring(root), names[k]


def read(path: Union[str, os.PathLike], *, part_name: str = MELODY_PART,
         piece_id: str = "") -> music_pb2.NoteSequence:
    """Melody of a MusicXML file: the part named ``part_name`` (case-insensitive), else the first part.

    Raises ReaderError for empty, corrupt or non-MusicXML files, scores without notes, and files
    over the per-file limits (``readers.limits``).
    """
    return read_result(path, part_name=part_name, piece_id=piece_id).sequence


def score_title(score) -> str:
    """The score's work title, else its movement title (MusicXML ``work-title``, ``movement-title``),
    else ''."""
    meta = score.metadata
    if meta is None:
        return ""
    return str(meta.title or meta.movementName or "").strip()


def read_result(path: Union[str, os.PathLike], *, part_name: str = MELODY_PART, piece_id: str = "") -> ReadResult:
    """``read`` with the melody part's ``SourceStyle`` (name, tempo mark, instrument) and the score's
    title (``score_title``) as the sequence's title."""
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise ReaderError("empty_file")
    try:
        raw = _xml_bytes(path)
        check_part_notes(raw)  # before any XML or music21 parse (see readers.limits)
        xml, _ = melody_only(raw, part_name)
        with quiet_music21():
            score = converter.parseData(xml, format="musicxml")
    except ReaderError:
        raise
    except Exception as e:  # zip, XML and music21 errors on bad input
        raise ReaderError("unparseable", f"{type(e).__name__}: {e}") from None
    parts = list(getattr(score, "parts", []))
    if not parts:
        raise ReaderError("no_melody", "no parts in the score")
    wanted = part_name.strip().lower()
    melody = next((p for p in parts if (p.partName or "").strip().lower() == wanted), parts[0])
    try:
        return part_to_result(melody, piece_id=piece_id or path, title=score_title(score))
    except ReaderError:
        raise
    except Exception as e:
        raise ReaderError("unparseable", f"{type(e).__name__}: {e}") from None
