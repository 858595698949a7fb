// MIDI files in the browser with @tonejs/midi (vendor/Midi.js, the global `Midi`): an upload read into
// the model's measures as the package's MIDI reader does (every melodic track merged, channel-10 drum
// tracks left out, times in beats from the MIDI ticks, snapped by grid.js), and measures written back
// as a standard MIDI file with the upload's tempo, time signature, program and track name.

import { buildMelody, firstBarNumber, fitMeasures, noMeasureMessage, pickupBars, ReadError, regularBars, toMeasures, tokensToNotes } from "./grid.js";

export const MAX_UPLOAD_BYTES = 2 * 1024 * 1024;
export const MAX_UPLOAD_MEASURES = 512;

// A MIDI text as written (UTF-8 when it decodes as such, else Latin-1, as readers.midi reads it).
function midiText(text) {
  const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  try { return new TextDecoder("utf-8", {fatal: true}).decode(bytes); } catch (e) { return text; }
}

// Notes in beats [{pitch, start, end}], style {qpm, numerator, denominator, program, track_name} and title
// (the sequence name, else the first track name: readers.midi.MidiData.title) of MIDI bytes.
export function parseMidi(bytes) {
  const head = new Uint8Array(bytes.slice(0, 4));
  if (String.fromCharCode(...head) !== "MThd") throw new ReadError("no MThd header: not a standard MIDI file");
  let midi;
  try {
    midi = new window.Midi(bytes);
  } catch (e) {
    throw new ReadError(`corrupt or truncated MIDI data (${e.message || e})`);
  }
  const ppq = midi.header.ppq;
  if (!(ppq > 0) || ppq & 0x8000) throw new ReadError("SMPTE or zero time division is not supported");
  const tracks = midi.tracks.filter((t) => t.notes.length && !t.instrument.percussion);
  if (!tracks.length) throw new ReadError(midi.tracks.some((t) => t.notes.length) ? "only drum notes (channel 10), no melody track" : "no track has notes");
  const rows = [];
  for (const t of tracks) for (const n of t.notes) rows.push({pitch: n.midi, start: n.ticks / ppq, end: (n.ticks + n.durationTicks) / ppq});
  rows.sort((a, b) => a.start - b.start || b.pitch - a.pitch);
  const firstTick = rows[0].start * ppq;
  const at = (list) => list.filter((e) => e.ticks <= firstTick).pop();
  const tempo = at(midi.header.tempos);
  const signature = at(midi.header.timeSignatures);
  const style = {qpm: tempo ? Math.round(tempo.bpm * 1e6) / 1e6 : 120,
    numerator: signature ? signature.timeSignature[0] : 4, denominator: signature ? signature.timeSignature[1] : 4,
    program: tracks[0].instrument.number || 0, track_name: (tracks.find((t) => t.name.trim()) || {name: ""}).name.trim()};
  const signatures = midi.header.timeSignatures.map((s) => [s.ticks / ppq, s.timeSignature[0], s.timeSignature[1]]);
  const title = midiText(((midi.header.name || "").trim() || (midi.tracks.find((t) => t.name.trim()) || {name: ""}).name).trim());
  return {notes: rows, signatures, style, title};
}

// A MIDI upload -> {name, title, bar_numbers [M] (as a score numbers them), tokens [M][24] (model ids), shift,
// skipped, style, quantisation};
// throws ReadError with the one-line reason.
export function readMidi(name, bytes, vocab, allowCutTime) {
  if (!bytes.byteLength) throw new ReadError(`${name}: the file is empty`);
  if (bytes.byteLength > MAX_UPLOAD_BYTES) throw new ReadError(`${name}: the file is too large (limit ${MAX_UPLOAD_BYTES / 1024} KiB)`);
  try {
    const {notes, signatures, style, title} = parseMidi(bytes);
    const lastOff = Math.max(...notes.map((n) => n.end));
    const bars = pickupBars(regularBars(signatures, lastOff));
    const melody = buildMelody(notes, bars);
    if (bars[0].start <= notes[0].start && notes[0].start < bars[0].start + bars[0].length) {
      style.numerator = bars[0].num;
      style.denominator = bars[0].den;
    }
    return fromMelody(name, melody, vocab, allowCutTime, style, firstBarNumber(bars), title);
  } catch (e) {
    if (e instanceof ReadError && !e.message.startsWith(name)) throw new ReadError(`${name}: ${e.message}`);
    throw e;
  }
}

// A melody of grid.buildMelody -> the upload's measures (shared by the MIDI and MusicXML readers); firstBar:
// the score's number of the melody's first bar (grid.firstBarNumber).
export function fromMelody(name, melody, vocab, allowCutTime, style, firstBar = 1, title = "") {
  const cut = toMeasures(melody, allowCutTime);
  if (!cut.measures.length) throw new ReadError(`${name}: ${noMeasureMessage(cut.skipped, melody.quantisation)}`);
  const fitted = fitMeasures(cut.measures.slice(0, MAX_UPLOAD_MEASURES), cut.bars.slice(0, MAX_UPLOAD_MEASURES), vocab, cut.skipped);
  const {bars, ...rest} = fitted;
  return {name, title, ...rest, bar_numbers: bars.map((b) => b + firstBar), skipped: cut.skipped, style, quantisation: melody.quantisation};
}

// Measures [M][24] of a vocabulary -> MIDI bytes (Uint8Array) at style.qpm, in 4/4, with the style's
// program and track name.
export function writeMidi(rows, vocab, style) {
  const midi = new window.Midi();
  const ppq = midi.header.ppq;
  midi.header.setTempo(style.qpm);
  midi.header.timeSignatures.push({ticks: 0, timeSignature: [4, 4], measures: 0});
  midi.header.update();
  const track = midi.addTrack();
  track.name = style.track_name || "musicvae_xai";
  track.channel = 0;
  track.instrument.number = style.program || 0;
  for (const n of tokensToNotes(rows, vocab)) {
    track.addNote({midi: n.pitch, ticks: Math.round(n.start * ppq), durationTicks: Math.round((n.end - n.start) * ppq), velocity: 90 / 127});
  }
  return midi.toArray();
}
