"""Measures -> a Standard MIDI File: the project's one MIDI writer (no model needed, no TensorFlow).

The serving client, ``Explainer`` (and the analysis report through it) and the explorer's download
all write MIDI through ``write_midi``. Every file it writes is a type-0 Standard MIDI File at 480
ticks per quarter whose track carries a track name, the tempo, a time signature, a program change
and one text marker per measure that has one (e.g. ``bar 4 reconstructed``, ``z[2] note density =
+1.5``). Music made from an input file keeps that file's tempo, time signature (when it spans the 4
beats of a measure), instrument and track name: pass the reader's ``SourceStyle``
(``FileMeasures.style``).
"""

from __future__ import annotations

import io
import os
from typing import Optional, Sequence, Union

import mido
import numpy as np
from note_seq.protobuf import music_pb2

from musicvae_xai.music_io.reading import MusicFileError
from musicvae_xai.readers.common import SourceStyle
from musicvae_xai.representation import BEATS_PER_MEASURE, MEASURE_TICKS, Vocabulary, measures_to_sequence

#: Ticks per quarter note of the files written (a multiple of 12, so every grid tick is exact).
TICKS_PER_QUARTER = 480
#: Track name of music that does not come from a named input track.
DEFAULT_TRACK_NAME = "musicvae_xai"


def format_value(value: float) -> str:
    """'+1.5', '-0.25', '+0.0': a control value for a marker."""
    text = f"{float(value):+.2f}"
    return text[:-1] if text.endswith("0") else text


def _note_rows(music, vocab: Optional[Vocabulary]) -> tuple:
    """(rows [(pitch, start_beat, end_beat, velocity)], measures M) of token ids [..., 24] or a
    NoteSequence (seconds read at its first tempo)."""
    if isinstance(music, music_pb2.NoteSequence):
        qpm = music.tempos[0].qpm if music.tempos else 120.0
        beats = qpm / 60.0
        rows = [(n.pitch, n.start_time * beats, n.end_time * beats, n.velocity) for n in music.notes]
        total = max([music.total_time * beats] + [r[2] for r in rows])
        return rows, int(np.ceil(total / BEATS_PER_MEASURE - 1e-9))
    if vocab is None:
        raise ValueError("writing token ids needs their vocabulary")
    ids = np.asarray(music).reshape(-1, MEASURE_TICKS)
    seq = measures_to_sequence(ids, vocab, qpm=60.0)  # 1 s = 1 beat
    return [(n.pitch, n.start_time, n.end_time, n.velocity) for n in seq.notes], len(ids)


def write_midi(music, target: Union[str, os.PathLike, None] = None, vocab: Optional[Vocabulary] = None, *,
               style: Optional[SourceStyle] = None, markers: Optional[Sequence[Optional[str]]] = None,
               qpm: Optional[float] = None) -> Union[str, bytes]:
    """Writes measures as a Standard MIDI File; returns the path, or the file's bytes when ``target``
    is None.

    music: token ids [..., 24] (measures back to back; needs ``vocab``) or a NoteSequence;
    style: tempo, time signature, program and track name to keep (default: 120 qpm, 4/4, piano,
    ``DEFAULT_TRACK_NAME``); a time signature that does not span the 4 beats of a measure is
    written as 4/4; qpm: overrides the style's tempo; markers: one text per measure (None or '' for
    none), written as marker meta events at the measure's start. Texts are written in Latin-1 (the
    MIDI default), or in UTF-8 when one of them has a character Latin-1 lacks (a Cyrillic title).
    """
    style = style or SourceStyle()
    tempo_qpm = float(qpm) if qpm is not None else float(style.qpm)
    if not 1.0 <= tempo_qpm <= 1000.0:
        raise ValueError(f"tempo must be in [1, 1000] qpm, got {tempo_qpm:g}")
    num, den = style.numerator, style.denominator
    if num * 4 != BEATS_PER_MEASURE * den:
        num, den = 4, 4
    rows, n_measures = _note_rows(music, vocab)
    tpq = TICKS_PER_QUARTER
    events = [(0, 0, mido.MetaMessage("track_name", name=style.track_name or DEFAULT_TRACK_NAME)),
              (0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_qpm))),
              (0, 0, mido.MetaMessage("time_signature", numerator=num, denominator=den)),
              (0, 0, mido.Message("program_change", channel=0, program=int(style.program)))]
    for m, text in enumerate(markers or []):
        if text:
            events.append((m * BEATS_PER_MEASURE * tpq, 1, mido.MetaMessage("marker", text=str(text))))
    for pitch, start, end, velocity in rows:
        events.append((int(round(start * tpq)), 3, mido.Message("note_on", channel=0, note=int(pitch),
                                                                  velocity=int(velocity) or 90)))
        events.append((int(round(end * tpq)), 2, mido.Message("note_off", channel=0, note=int(pitch), velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))  # at one tick: meta, markers, note-offs, then note-ons
    track = mido.MidiTrack()
    now = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - now))
        now = tick
    end = max(now, n_measures * BEATS_PER_MEASURE * tpq)
    track.append(mido.MetaMessage("end_of_track", time=end - now))
    texts = [msg.name if msg.type == "track_name" else msg.text for _, _, msg in events if msg.is_meta
             and msg.type in ("track_name", "marker")]
    # Latin-1 (the MIDI default, read by every tool) unless a title or marker needs more: then UTF-8.
    charset = "latin1" if all(_fits_latin1(t) for t in texts) else "utf-8"
    midi_file = mido.MidiFile(type=0, ticks_per_beat=tpq, charset=charset)
    midi_file.tracks.append(track)
    if target is None:
        buffer = io.BytesIO()
        midi_file.save(file=buffer)
        return buffer.getvalue()
    path = os.fspath(target)
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise MusicFileError(f"{path}: cannot write MIDI, {parent} is a file")
    os.makedirs(parent, exist_ok=True)
    midi_file.save(path)
    return path


def write_measures(tokens, vocab: Vocabulary, path: str, qpm: Optional[float] = None,
                   style: Optional[SourceStyle] = None, markers: Optional[Sequence[Optional[str]]] = None) -> str:
    """Writes token ids [..., 24] as measures back to back to a MIDI file (``write_midi``); returns the path."""
    return write_midi(tokens, path, vocab, style=style, markers=markers, qpm=qpm)


def _fits_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False
