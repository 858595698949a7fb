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

Both can be set for a whole process (and its worker processes) with the environment variables
``MUSICVAE_XAI_MAX_BEATS`` and ``MUSICVAE_XAI_MAX_BYTES``, or by assigning the module attributes
(readers look them up at call time).
"""

from __future__ import annotations

import os

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


def check_beats(end_beats: float, what: str = "the piece") -> None:
    """Raises ReaderError('too_long') when ``end_beats`` (quarter-note beats) is over ``MAX_BEATS``."""
    if not end_beats <= MAX_BEATS:  # also catches NaN
        raise ReaderError("too_long", f"{what} reaches beat {end_beats:.6g}, over the limit of {MAX_BEATS} beats "
                                      "(MUSICVAE_XAI_MAX_BEATS)")


def check_bytes(size: int, what: str = "the file") -> None:
    """Raises ReaderError('too_large') when ``size`` bytes are over ``MAX_BYTES``."""
    if size > MAX_BYTES:
        raise ReaderError("too_large", f"{what} holds {size} bytes, over the limit of {MAX_BYTES} bytes "
                                       "(MUSICVAE_XAI_MAX_BYTES)")


def read_file(path) -> bytes:
    """The bytes of ``path``, after checking its size against ``MAX_BYTES`` (ReaderError 'too_large')."""
    check_bytes(os.path.getsize(path))
    with open(path, "rb") as f:
        data = f.read(MAX_BYTES + 1)
    check_bytes(len(data))
    return data
