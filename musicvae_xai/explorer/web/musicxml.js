// Uncompressed MusicXML (.xml, .musicxml; score-partwise) in the browser, read with the browser's own
// DOMParser as the package's reader reads it through music21 (readers.musicxml, readers.music21_part):
// the part named "Soprano", else the first part; its measures are the bars (a short first measure is a
// pickup); grace notes are left out, tied notes joined, the highest note of a chord kept; style from the
// first metronome mark (quarter notes per minute), time signature, MIDI program and part name. No npm library reads MusicXML in
// the browser without a bundler (music21j and OpenSheetMusicDisplay are renderers of several MB), and
// this subset of the format is what a melody needs. A compressed .mxl is unpacked by mxl.js first.

import { buildMelody, firstBarNumber, ReadError } from "./grid.js";
import { fromMelody, MAX_UPLOAD_BYTES } from "./midifile.js";

const STEPS = {C: 0, D: 2, E: 4, F: 5, G: 7, A: 9, B: 11};
const BEAT_UNITS = {whole: 4, half: 2, quarter: 1, eighth: 0.5, "16th": 0.25};
const MELODY_PART = "soprano";

const text = (el, tag) => { const c = el.getElementsByTagName(tag)[0]; return c ? c.textContent.trim() : null; };
const direct = (el, tag) => Array.from(el.children).filter((c) => c.tagName === tag);

function melodyPart(doc) {
  const root = doc.documentElement;
  if (root.tagName !== "score-partwise") throw new ReadError("not a score-partwise MusicXML document");
  const parts = direct(root, "part");
  if (!parts.length) throw new ReadError("no parts in the score");
  const names = {};
  for (const sp of doc.getElementsByTagName("score-part")) names[sp.getAttribute("id")] = (text(sp, "part-name") || "").trim();
  const part = parts.find((p) => (names[p.getAttribute("id")] || "").toLowerCase() === MELODY_PART) || parts[0];
  return [part, names[part.getAttribute("id")] || ""];
}

// One part -> notes [{pitch, start, end}] (beats), bars [{start, length, num, den}] and the first tempo.
function readPart(part) {
  const notes = [], bars = [];
  let divisions = 1, num = 4, den = 4, start = 0, qpm = null;
  for (const measure of direct(part, "measure")) {
    let pos = 0, longest = 0, lastOnset = 0;
    for (const el of measure.children) {
      if (el.tagName === "attributes") {
        divisions = Number(text(el, "divisions")) || divisions;
        const time = el.getElementsByTagName("time")[0];
        if (time) { num = Number(text(time, "beats")) || num; den = Number(text(time, "beat-type")) || den; }
      } else if (el.tagName === "direction") {  // a metronome mark, in quarter notes per minute
        const mark = el.getElementsByTagName("metronome")[0];
        const unit = mark && BEAT_UNITS[text(mark, "beat-unit")], perMinute = mark && Number(text(mark, "per-minute"));
        if (qpm === null && unit && perMinute > 0) qpm = perMinute * unit * (mark.getElementsByTagName("beat-unit-dot").length ? 1.5 : 1);
      } else if (el.tagName === "backup" || el.tagName === "forward") {
        const d = Number(text(el, "duration")) / divisions;
        pos += el.tagName === "backup" ? -d : d;
      } else if (el.tagName === "note") {
        if (el.getElementsByTagName("grace").length) continue;
        const chord = el.getElementsByTagName("chord").length > 0;
        const length = Number(text(el, "duration") || 0) / divisions;
        const onset = chord ? lastOnset : pos;
        const pitch = el.getElementsByTagName("pitch")[0];
        if (pitch && length > 0) {
          const midi = 12 * (Number(text(pitch, "octave")) + 1) + STEPS[text(pitch, "step")] + Number(text(pitch, "alter") || 0);
          const ties = Array.from(el.getElementsByTagName("tie")).map((t) => t.getAttribute("type"));
          const at = start + onset, prev = notes[notes.length - 1];
          if (ties.includes("stop") && prev && prev.pitch === midi && Math.abs(prev.end - at) < 1e-6) prev.end = at + length;
          else notes.push({pitch: midi, start: at, end: at + length});
        }
        if (!chord) { lastOnset = pos; pos += length; }
      }
      longest = Math.max(longest, pos);
    }
    bars.push({start, length: longest, num, den});
    start += longest;
  }
  if (!notes.some((n) => Number.isFinite(n.pitch))) throw new ReadError("the melody has no notes");
  return {notes: notes.filter((n) => Number.isFinite(n.pitch)), bars, qpm};
}

// A MusicXML document (bytes, at most `limit` of them) -> the upload's measures (as midifile.readMidi);
// throws ReadError.
export function readMusicXml(name, bytes, vocab, allowCutTime, limit = MAX_UPLOAD_BYTES) {
  if (!bytes.byteLength) throw new ReadError(`${name}: the file is empty`);
  if (bytes.byteLength > limit) throw new ReadError(`${name}: the file is too large (limit ${limit / 1024} KiB)`);
  const doc = new DOMParser().parseFromString(new TextDecoder().decode(bytes), "application/xml");
  if (doc.getElementsByTagName("parsererror").length) throw new ReadError(`${name}: not a readable MusicXML file (XML syntax error)`);
  try {
    const [part, partName] = melodyPart(doc);
    const {notes, bars, qpm} = readPart(part);
    const program = Number(text(doc.documentElement, "midi-program"));
    const style = {qpm: qpm || 120, numerator: bars[0].num, denominator: bars[0].den,
      program: Number.isFinite(program) && program > 0 ? program - 1 : 0, track_name: partName};
    const title = (text(doc.documentElement, "work-title") || text(doc.documentElement, "movement-title") || "").trim();
    return fromMelody(name, buildMelody(notes, bars, false), vocab, allowCutTime, style, firstBarNumber(bars), title);
  } catch (e) {
    if (e instanceof ReadError && !e.message.startsWith(name)) throw new ReadError(`${name}: ${e.message}`);
    throw e;
  }
}
