"""Readers: source files (MIDI, MusicXML, ABC, SymbTr txt, POP909) -> melody NoteSequences.

Every reader returns *tempo-normalised* monophonic (or nearly so) melodies, following the time
convention of ``musicvae_xai.representation``: one tempo of 60 qpm (1 second = 1 quarter-note beat),
bar lines given by the ``time_signatures`` (each time-signature event starts a bar), and a piece with
a pickup shifted so its first full bar starts on a bar line.

A file that cannot be read raises ``ReaderError`` whose ``reason`` is one of ``REASONS``; dataset
builders count it under that reason and go on with the next file.

Modules (one per source format): ``midi``, ``musicxml``, ``abc``, ``symbtr``, ``pop909``. Shared
melody-building helpers live in ``common``; the per-file limits
(``too_long``, ``too_large``) in ``limits``; ``isolated`` parses one file given by a person in a worker
process under a time and memory limit (``parse_timeout``, ``parser_crashed``, ``busy``).
"""

from musicvae_xai.readers.common import (  # noqa: F401
    ONSET_TOLERANCE,
    REASONS,
    Bar,
    NoteEvent,
    Quantisation,
    ReaderError,
    ReadResult,
    SourceStyle,
    build_sequence,
    layout_bars,
    make_sequence,
    quantise,
    skyline,
    snap_to_grid,
)
