"""Humanised MIDI files written with mido, for the reader, explain, serving and explorer tests.

``humanised_midi`` plays a fixed melody the way a person (or a DAW's humanise function) would:
note lengths at 60-98% of their written slot, onsets up to +-20 ms early or late, a tempo change in
the middle and an optional one-beat pickup written as a 1/4 bar before the 4/4 bars.
"""

import mido
import numpy as np

#: One 4/4 bar of the written melody: (onset, slot length) in beats; eighths, quarters, sixteenths.
BAR = [(0.0, 1.0), (1.0, 0.5), (1.5, 0.5), (2.0, 0.5), (2.5, 0.25), (2.75, 0.25), (3.0, 1.0)]
SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def written_notes(bars: int, pickup: bool, seed: int = 0) -> list:
    """[(pitch, onset beat, slot beats)] of the written melody (beats from the file's start)."""
    rng = np.random.default_rng(seed)
    notes = [(SCALE[4], 0.0, 1.0)] if pickup else []
    first = 1.0 if pickup else 0.0
    for b in range(bars):
        for onset, slot in BAR:
            notes.append((int(rng.choice(SCALE)), first + 4.0 * b + onset, slot))
    return notes


def humanised_midi(path, *, bars: int = 8, pickup: bool = True, bpm: float = 120.0, bpm_after: float = 90.0,
                   change_bar: int = 4, lengths=(0.60, 0.98), jitter_ms: float = 20.0, seed: int = 0,
                   program: int = 73, track_name: str = "Flute", ticks_per_beat: int = 480, drums: bool = False):
    """Writes the humanised melody and returns the written notes [(pitch, onset, slot)] (beats).

    The tempo is ``bpm`` until bar ``change_bar`` of the 4/4 bars, then ``bpm_after``; the jitter is
    drawn in milliseconds and converted to ticks at the local tempo (+-20 ms = +-0.04 beat at 120 bpm).
    """
    rng = np.random.default_rng(seed + 1)
    notes = written_notes(bars, pickup, seed)
    first = 1.0 if pickup else 0.0
    change_beat = first + 4.0 * change_bar

    def tick(beat):
        return int(round(beat * ticks_per_beat))

    events = [(0, 0, mido.MetaMessage("track_name", name=track_name)),
              (0, 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))),
              (0, 0, mido.Message("program_change", channel=0, program=program))]
    if pickup:
        events.append((0, 0, mido.MetaMessage("time_signature", numerator=1, denominator=4)))
    events.append((tick(first), 0, mido.MetaMessage("time_signature", numerator=4, denominator=4)))
    events.append((tick(change_beat), 0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm_after))))
    for pitch, onset, slot in notes:
        local_bpm = bpm if onset < change_beat else bpm_after
        jitter = rng.uniform(-jitter_ms, jitter_ms) / 1000.0 * local_bpm / 60.0  # beats
        start = max(0.0, onset + jitter)
        end = start + slot * rng.uniform(*lengths)
        channel = 9 if drums else 0
        events.append((tick(start), 2, mido.Message("note_on", channel=channel, note=pitch, velocity=80)))
        events.append((tick(end), 1, mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    mf = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    mf.tracks.append(track)
    now = 0
    for t, _, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    mf.save(str(path))
    return notes


def read_back(path) -> dict:
    """What a MIDI file says about itself, read with mido: track names, tempos (qpm), time
    signatures, programs, markers [(beat, text)] and notes [(pitch, start beat, end beat)]."""
    mf = mido.MidiFile(str(path))
    out = {"track_names": [], "qpm": [], "time_signatures": [], "programs": [], "markers": [], "notes": []}
    for track in mf.tracks:
        now, sounding = 0, {}
        for msg in track:
            now += msg.time
            beat = now / mf.ticks_per_beat
            if msg.type == "track_name":
                out["track_names"].append(msg.name)
            elif msg.type == "set_tempo":
                out["qpm"].append(round(mido.tempo2bpm(msg.tempo), 3))
            elif msg.type == "time_signature":
                out["time_signatures"].append((msg.numerator, msg.denominator))
            elif msg.type == "program_change":
                out["programs"].append(msg.program)
            elif msg.type == "marker":
                out["markers"].append((beat, msg.text))
            elif msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.note] = beat
            elif msg.type in ("note_on", "note_off") and msg.note in sounding:
                out["notes"].append((msg.note, sounding.pop(msg.note), beat))
    return out
