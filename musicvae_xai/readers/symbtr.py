"""SymbTr txt reader (Turkish makam scores): exact rational durations, bars from ``Offset``, metre
from the usul declaration.

Format: tab-separated UTF-8 with the header ``Sira Kod Nota53 NotaAE Koma53 KomaAE Pay Payda Ms LNS
Bas Soz1 Offset``. ``Kod`` 51 declares the usul (its ``Pay/Payda`` is the metre); every other row
with ``Payda > 0`` is a note (or a rest, ``NotaAE = Es``) lasting ``Pay/Payda`` of a whole note;
rows without duration (grace notes ``Kod`` 8, section marks) are dropped. Pitch is ``Koma53`` in
Holdrian commas (53 per octave, 318 = C5 = MIDI 72), rounded to the nearest 12-TET semitone.
``Offset`` counts bars after each row: a whole number marks a bar line.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from typing import Union

from note_seq.protobuf import music_pb2

from musicvae_xai.readers import limits
from musicvae_xai.readers.common import Bar, NoteEvent, ReaderError, make_sequence

USUL_CODE = 51
COMMAS_PER_OCTAVE = 53


def koma53_to_midi(koma: int) -> int:
    """MIDI pitch of a 53-TET pitch in Holdrian commas, rounded to the nearest semitone."""
    return int(math.floor(koma * 12.0 / COMMAS_PER_OCTAVE + 0.5))


def _columns(header: list) -> dict:
    names = [h.strip() for h in header]
    missing = [h for h in ("Kod", "NotaAE", "Koma53", "Pay", "Payda", "Offset") if h not in names]
    if missing:
        raise ReaderError("unparseable", f"not a SymbTr txt file (no column {', '.join(missing)})")
    return {h: names.index(h) for h in names}


def read(path: Union[str, os.PathLike], *, piece_id: str = "") -> music_pb2.NoteSequence:
    """Melody NoteSequence of a SymbTr txt score. Raises ReaderError on malformed files."""
    data = limits.read_file(path)
    if not data:
        raise ReaderError("empty_file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ReaderError("unparseable", "not UTF-8 text") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ReaderError("empty_file", "no rows")
    col = _columns(lines[0].split("\t"))
    notes, bar_lines = [], [Fraction(0)]
    usuls = []  # (position, numerator, denominator)
    pos = Fraction(0)
    prev_offset = 0.0
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        try:
            kod = int(cells[col["Kod"]])
            pay, payda = int(cells[col["Pay"]] or 0), int(cells[col["Payda"]] or 0)
            offset = float(cells[col["Offset"]])
        except (ValueError, IndexError):
            raise ReaderError("unparseable", f"malformed row {n}") from None
        if not 0.0 <= offset < math.inf:
            raise ReaderError("unparseable", f"row {n}: negative or non-finite Offset {offset}")
        limits.check_beats(offset, f"row {n}'s Offset (in bars)")  # bounds the bar-line loop below
        if kod == USUL_CODE:
            if pay > 0 and payda > 0:
                usuls.append((pos, pay, payda))
            continue
        if payda <= 0 or pay <= 0:
            continue  # grace notes and marks have no duration
        dur = Fraction(4 * pay, payda)  # in quarter-note beats
        limits.check_beats(float(pos + dur), f"row {n}")
        name = cells[col["NotaAE"]].strip()
        try:
            koma = int(cells[col["Koma53"]])
        except ValueError:
            koma = -1
        if name != "Es" and koma >= 0:
            notes.append(NoteEvent(koma53_to_midi(koma), float(pos), float(pos + dur)))
        # bar lines crossed or reached by this row
        k = math.floor(prev_offset + 1e-6) + 1
        while k <= offset + 1e-6 and offset > prev_offset:
            frac = (k - prev_offset) / (offset - prev_offset)
            bar_lines.append(pos + Fraction(frac).limit_denominator(960) * dur)
            k += 1
        prev_offset = max(prev_offset, offset)
        pos += dur
    if not notes:
        raise ReaderError("no_notes")
    if bar_lines[-1] < pos:
        bar_lines.append(pos)
    if not usuls:
        usuls = [(Fraction(0), 4, 4)]
    bars = []
    for a, b in zip(bar_lines[:-1], bar_lines[1:], strict=False):
        if b <= a:
            continue
        num, den = next(((u[1], u[2]) for u in reversed(usuls) if u[0] <= a), (usuls[0][1], usuls[0][2]))
        bars.append(Bar(float(a), float(b - a), num, den))
    title = os.path.basename(os.fspath(path))
    return make_sequence(notes, bars, piece_id=piece_id or os.fspath(path), title=title)
