"""One music21 part -> a tempo-normalised melody NoteSequence (shared by the MusicXML and ABC readers).

music21 offsets are already in quarter-note beats. Bars come from the part's measures: a first
measure shorter than its time signature is a pickup (shifted to end on the first bar line), later
incomplete measures are marked so they are skipped. Grace notes are dropped, chords keep their
highest note, tied notes of the same pitch are merged.
"""

from __future__ import annotations

import contextlib
import io

from music21 import meter, stream, tempo
from note_seq.protobuf import music_pb2

from musicvae_xai.readers.common import (Bar, NoteEvent, ReaderError, ReadResult, SourceStyle, first_bar_number,
                                         make_sequence, regular_bars)


@contextlib.contextmanager
def quiet_music21(skip_beaming: bool = False):
    """music21 prints its parser warnings straight to stderr; keep them out of build logs.

    skip_beaming: music21's ABC import ends with ``makeBeams``, pure notation that takes about two
    thirds of the parse time and changes no note; while this context is open it is a no-op.
    """
    saved = stream.Stream.makeBeams
    if skip_beaming:
        stream.Stream.makeBeams = _no_beams
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        stream.Stream.makeBeams = saved


def _no_beams(self, *args, **kwargs):
    return None if kwargs.get("inPlace") else self


def _pitch(element) -> int:
    if element.isChord:
        return max(p.midi for p in element.pitches)
    return int(element.pitch.midi)


def _time_signature(measure, current):
    ts = measure.timeSignature
    if ts is None and current is None:
        ts = measure.getContextByClass(meter.TimeSignature)
    return ts if ts is not None else current


def part_style(part: stream.Stream, title: str = "") -> SourceStyle:
    """Tempo (first metronome mark, else 120), first time signature, MIDI program of the part's
    instrument (else 0) and its name (else ``title``) for a writer."""
    marks = list(part.recurse().getElementsByClass(tempo.MetronomeMark))
    qpm = next((float(m.getQuarterBPM()) for m in marks if m.number is not None and m.getQuarterBPM()), 120.0)
    sigs = list(part.recurse().getElementsByClass(meter.TimeSignature))
    num, den = (int(sigs[0].numerator), int(sigs[0].denominator)) if sigs else (4, 4)
    instrument = part.getInstrument(returnDefault=False) if hasattr(part, "getInstrument") else None
    program = getattr(instrument, "midiProgram", None)
    name = str(getattr(part, "partName", "") or "").strip() or title
    return SourceStyle(qpm=qpm, numerator=num, denominator=den, program=int(program) if program is not None else 0,
                       track_name=name)


def part_to_result(part: stream.Stream, *, piece_id: str = "", title: str = "") -> ReadResult:
    """``part_to_sequence`` with the part's ``SourceStyle`` (no quantisation: notation is on the grid)
    and the number of its first bar (0 for a pickup)."""
    notes, bars = part_notes(part)
    sequence = make_sequence(notes, bars, piece_id=piece_id, chords="highest", title=title)
    try:
        style = part_style(part, title)
    except Exception:  # noqa: BLE001 - a style is a nicety; never lose a melody over it
        style = SourceStyle(track_name=title)
    return ReadResult(sequence, None, style, first_bar_number(bars))


def part_to_sequence(part: stream.Stream, *, piece_id: str = "", title: str = "") -> music_pb2.NoteSequence:
    """Melody NoteSequence of one monophonic music21 part (Part or Score with measures).

    Raises ReaderError('no_notes') if the part has no pitched note.
    """
    notes, bars = part_notes(part)
    return make_sequence(notes, bars, piece_id=piece_id, chords="highest", title=title)


def part_notes(part: stream.Stream) -> tuple:
    """(notes [NoteEvent] in beats, written bars [Bar]) of one music21 part; raises
    ReaderError('no_notes') if it has no pitched note."""
    measures = list(part.getElementsByClass(stream.Measure))
    notes: list[NoteEvent] = []
    bars: list[Bar] = []
    current = None
    if not measures:  # unbarred part: one section in its first time signature
        measures = [part]
    for m in measures:
        current = _time_signature(m, current) if isinstance(m, stream.Measure) else (
            m.getTimeSignatures()[0] if m.getTimeSignatures() else None)
        num, den = (current.numerator, current.denominator) if current is not None else (4, 4)
        m_off = float(m.offset) if isinstance(m, stream.Measure) else 0.0
        length = float(m.duration.quarterLength)
        if isinstance(m, stream.Measure):
            bars.append(Bar(m_off, length, int(num), int(den)))
        for el in m.flatten().notes:
            if el.duration.isGrace or el.quarterLength <= 0 or not (el.isChord or hasattr(el, "pitch")):
                continue  # grace notes, zero-length and unpitched notes
            start = m_off + float(el.offset)
            end = start + float(el.quarterLength)
            pitch = _pitch(el)
            tie = el.tie.type if el.tie is not None else None
            if tie in ("stop", "continue") and notes and notes[-1].pitch == pitch and abs(notes[-1].end - start) < 1e-6:
                notes[-1] = NoteEvent(pitch, notes[-1].start, end)
            else:
                notes.append(NoteEvent(pitch, start, end))
    if not notes:
        raise ReaderError("no_notes")
    if not bars:
        bars = regular_bars([(0.0, num, den)], max(n.end for n in notes))
    return notes, bars
