"""Per-file limits every reader enforces, so work and memory per file are bounded by the limits and
not by what a (possibly hostile) file claims.

``MAX_BEATS``: the latest time, in quarter-note beats from the start of the piece, that a note (or
a bar line the reader would have to lay out) may reach. It is checked on the raw event times,
before any per-bar or per-beat structure is built, so a 53-byte MIDI file with two notes 2**27
beats apart is rejected in milliseconds. 32768 beats are 8192 bars of 4/4, over four hours at
120 bpm; the longest piece of the four genres is far below it. Over the limit: ``too_long``.

``MAX_BYTES``: the most bytes a reader reads from one file, or decompresses from one ``.mxl`` (zip)
file. For a zip, the sizes its directory declares are summed and checked before anything is
decompressed, and the reading itself is guarded chunk by chunk (a directory may lie). Over the
limit: ``too_large``.

``MAX_LINE_BYTES`` and ``MAX_TUNE_BYTES``: the longest line, and the largest tune (from one ``X:``
line to the next), of an ABC file. music21's ABC parser takes time and memory that grow faster than
the text (a 64 KB tune took 99 s, a 1 MB one-line tune did not finish in 17 minutes), so the shape of
the text is checked on its bytes before any parser runs (``check_abc``): a 1 MB one-line tune is
refused in milliseconds. The longest line of the ABC datasets is 391 bytes, their largest tune 2.4 KB.
Over the limit: ``too_large``.

``MAX_NOTES``: the most notes (``<note>`` elements) of one part of a MusicXML score, counted on its
bytes before anything parses the XML (a 69 KB ``.mxl`` of 128k sixteenths took music21 74 s). The
largest Bach chorale holds 5220 notes in all its four parts. Over the limit: ``too_large``.

``PARSE_SECONDS`` and ``MAX_PARSES``: a single file given by a person (an explorer upload,
``explain``'s ``read_source``) in ABC or MusicXML is parsed in a worker process
(``readers.isolated``) that is stopped after ``PARSE_SECONDS`` (``parse_timeout``), with at most
``MAX_PARSES`` such parses at once per process (a further one waits up to ``PARSE_SECONDS`` for a
free worker, then is refused as ``busy``). ``PARSE_MEMORY_BYTES`` bounds the memory a worker may add
while parsing (over it: ``too_large``).

All can be set for a whole process (and its worker processes) with the environment variables
``MUSICVAE_XAI_MAX_BEATS``, ``MUSICVAE_XAI_MAX_BYTES``, ``MUSICVAE_XAI_MAX_LINE_BYTES``,
``MUSICVAE_XAI_MAX_TUNE_BYTES``, ``MUSICVAE_XAI_MAX_NOTES``, ``MUSICVAE_XAI_PARSE_SECONDS``,
``MUSICVAE_XAI_MAX_PARSES`` and ``MUSICVAE_XAI_PARSE_MEMORY_BYTES``, or by assigning the module
attributes (readers look them up at call time, and each isolated parse takes this process's values).
"""

from __future__ import annotations

import os
import re
import zipfile

from musicvae_xai.readers.errors import ReaderError


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        parsed = int(float(value))
    except ValueError:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if parsed <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return parsed


#: Latest note/bar time a piece may reach, in quarter-note beats (see the module docstring).
MAX_BEATS = _env_int("MUSICVAE_XAI_MAX_BEATS", 32768)
#: Most bytes read from one file or decompressed from one .mxl (see the module docstring).
MAX_BYTES = _env_int("MUSICVAE_XAI_MAX_BYTES", 32 * 2 ** 20)


#: Longest line of an ABC file, in bytes (see the module docstring).
MAX_LINE_BYTES = _env_int("MUSICVAE_XAI_MAX_LINE_BYTES", 4096)
#: Largest tune of an ABC file (from its X: line to the next), in bytes (see the module docstring).
MAX_TUNE_BYTES = _env_int("MUSICVAE_XAI_MAX_TUNE_BYTES", 16384)
#: Most notes of a MusicXML melody part (see the module docstring).
MAX_NOTES = _env_int("MUSICVAE_XAI_MAX_NOTES", 8192)
#: Seconds an isolated parse of one file may take (see the module docstring).
PARSE_SECONDS = float(_env_int("MUSICVAE_XAI_PARSE_SECONDS", 10))
#: Isolated parses at once per process (see the module docstring).
MAX_PARSES = _env_int("MUSICVAE_XAI_MAX_PARSES", 2)
#: Memory an isolated parse may add to its worker process, in bytes (see the module docstring).
PARSE_MEMORY_BYTES = _env_int("MUSICVAE_XAI_PARSE_MEMORY_BYTES", 2 * 2 ** 30)

#: (name, value) of every limit an isolated parse hands to its worker.
SHARED = ("MAX_BEATS", "MAX_BYTES", "MAX_LINE_BYTES", "MAX_TUNE_BYTES", "MAX_NOTES")

_X_LINE = re.compile(rb"^X:", re.MULTILINE)


def current() -> dict:
    """{name: value} of the limits a worker process must share with this one (``SHARED``)."""
    return {name: globals()[name] for name in SHARED}


def _check(value, name: str, said: str, unit: str, reason: str = "too_large") -> None:
    """Raises ReaderError(``reason``) "``said``, over the limit of N ``unit`` (MUSICVAE_XAI_``name``)"
    when ``value`` is over the limit ``name`` of this module (or NaN)."""
    limit = globals()[name]
    if not value <= limit:
        raise ReaderError(reason, f"{said}, over the limit of {limit} {unit} (MUSICVAE_XAI_{name})")


def check_beats(end_beats: float, what: str = "the piece") -> None:
    """Raises ReaderError('too_long') when ``end_beats`` (quarter-note beats) is over ``MAX_BEATS``."""
    _check(end_beats, "MAX_BEATS", f"{what} reaches beat {end_beats:.6g}", "beats", "too_long")


def check_bytes(size: int, what: str = "the file") -> None:
    """Raises ReaderError('too_large') when ``size`` bytes are over ``MAX_BYTES``."""
    _check(size, "MAX_BYTES", f"{what} holds {size} bytes", "bytes")


def read_file(path) -> bytes:
    """The bytes of ``path``, after checking its size against ``MAX_BYTES`` (ReaderError 'too_large')."""
    check_bytes(os.path.getsize(path))
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    check_bytes(len(data))
    return data


def check_abc(data: bytes, what: str = "the ABC text") -> None:
    """Raises ReaderError('too_large') when a line of ``data`` is over ``MAX_LINE_BYTES`` or a tune
    (X: line to X: line) is over ``MAX_TUNE_BYTES``; linear in the bytes, no parser runs."""
    longest = max((len(line) for line in data.split(b"\n")), default=0)
    _check(longest, "MAX_LINE_BYTES", f"{what} has a line of {longest} bytes", "bytes per line")
    starts = [m.start() for m in _X_LINE.finditer(data)] + [len(data)]
    largest = max((b - a for a, b in zip(starts, starts[1:], strict=False)), default=0)
    _check(largest, "MAX_TUNE_BYTES", f"{what} has a tune of {largest} bytes", "bytes per tune")


def check_notes(count: int, what: str = "the melody part") -> None:
    """Raises ReaderError('too_large') when ``count`` notes are over ``MAX_NOTES``."""
    _check(count, "MAX_NOTES", f"{what} holds {count} notes", "notes")


def check_archive(path) -> None:
    """For a zip file (``.mxl``): ReaderError('too_large') when the sizes its directory declares sum to
    over ``MAX_BYTES`` (nothing is decompressed; the reader still guards the reading itself)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            check_bytes(sum(i.file_size for i in z.infolist()), "the .mxl archive, decompressed,")
