"""Why a reader cannot give a melody: ``ReaderError`` and its reasons (``REASONS``), shared by the
readers, their per-file limits (``readers.limits``) and the dataset build's skip counts.
"""

from __future__ import annotations

#: Skip reasons a reader may raise, with what they mean.
REASONS = {
    "unparseable": "the file (or one tune of a tunebook) could not be parsed",
    "empty_file": "the file has no bytes",
    "no_melody": "the melody part/track the dataset needs is not in the file",
    "no_notes": "the melody has no notes",
    "not_simple_duple": "the song's metre is triple or compound (POP909 index)",
    "too_long": "the piece reaches past the per-file limit in beats (readers.limits.MAX_BEATS)",
    "too_large": "the file, or what a .mxl would decompress to, is over the per-file byte limit "
                 "(readers.limits.MAX_BYTES), or its text or notes over the limits of its format",
    "parse_timeout": "reading the file took longer than the time limit (readers.limits.PARSE_SECONDS)",
    "parser_crashed": "the process reading the file died",
    "busy": "every parser process is busy with other files (readers.limits.MAX_PARSES); try again",
}


class ReaderError(Exception):
    """A file (or tune) that cannot give a melody. ``reason`` is a key of ``REASONS``."""

    def __init__(self, reason: str, message: str = ""):
        if reason not in REASONS:
            raise ValueError(f"unknown reader skip reason {reason!r}")
        self.reason = reason
        self.message = message or REASONS[reason]
        super().__init__(f"{reason}: {self.message}")
