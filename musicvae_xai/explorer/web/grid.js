// Notes -> 24-token measures in the browser, by the rules of the package's readers
// (musicvae_xai.readers.common and musicvae_xai.representation): bars from the time signatures, a
// DAW-style pickup bar, played notes snapped to the 24-tick grid (onsets within 1/16 beat, offsets always,
// slight legato overlaps cut, notes released shortly before the next onset held to it), chords reduced to their top line (skyline), then every 4/4 bar kept or
// counted under one skip reason, and the measures moved into the model's pitch range.
// Times are quarter-note beats. Token ids before the move are of the full MIDI range (0..127, then
// rest 128, hold 129, start 130, end 131).

export const MEASURE_TICKS = 24;
export const ONSET_TOLERANCE = 1 / 16;
export const LEGATO_GAP = 0.5;  // readers.common.LEGATO_GAP
const GRID_EXACT = 1 / 192;  // readers.common.GRID_EXACT
export const MAX_BEATS = 32768;
const EPS = 1e-6;
const GRID_TOLERANCE = 1e-3;
const BEAT_GRID = [0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1];
export const TICK_POSITIONS = [];
for (let b = 0; b < 4; b++) for (const o of BEAT_GRID.slice(0, 6)) TICK_POSITIONS.push(b + o);
const TICK_EDGES = TICK_POSITIONS.concat([4]);
export const FULL = {min_pitch: 0, max_pitch: 127, rest_id: 128, hold_id: 129, start_id: 130, end_id: 131};
const SKIP_TEXT = {not_4_4: "not in 4/4", incomplete_bar: "cut short by a time-signature change",
  polyphonic: "with overlapping notes", off_grid: "with notes off the 24-tick grid", empty: "with no note onset"};

export class ReadError extends Error {}

function nearestGridPoint(t) {  // ties go to the later point
  const beat = Math.floor(t), frac = t - beat;
  let best = 1, err = Infinity;
  for (let i = BEAT_GRID.length - 1; i >= 0; i--) {
    const e = Math.abs(frac - BEAT_GRID[i]);
    if (e < err) { err = e; best = BEAT_GRID[i]; }
  }
  return beat + best;
}

function nextGridPoint(t) {
  const beat = Math.floor(t), frac = t - beat;
  return beat + BEAT_GRID.find((g) => g > frac + 1e-9);
}

// readers.common.quantise: notes [{pitch, start, end}] -> snapped copies and {maxError, offGrid, lengthened}.
export function quantise(notes, tolerance = ONSET_TOLERANCE, legato = true) {
  const onsets = [...new Set(notes.map((n) => n.start))].sort((a, b) => a - b);
  let maxError = 0, offGrid = 0;
  const snapped = [];
  const out = notes.map((n) => {
    const onGrid = nearestGridPoint(n.start);
    const onErr = Math.abs(onGrid - n.start);
    maxError = Math.max(maxError, onErr);
    const snap = onErr <= tolerance;
    snapped.push(snap);
    if (!snap) offGrid += 1;
    const following = onsets.find((o) => o >= n.start + EPS) ?? Infinity;
    const overlap = n.end > following && n.end - following <= tolerance;
    const offGridPoint = nearestGridPoint(overlap ? following : n.end);
    const start = snap ? onGrid : n.start;
    let end = offGridPoint > start + EPS ? offGridPoint : nextGridPoint(start);
    if (overlap) {
      const cutAt = nearestGridPoint(following);
      if (cutAt > start + EPS) end = Math.min(end, cutAt);
    }
    return {pitch: n.pitch, start, end};
  });
  const lengthened = legato && maxError > GRID_EXACT ? legatoFill(out, snapped) : 0;
  return [out, {notes: notes.length, maxError, offGrid, tolerance, lengthened}];
}

// readers.common.legato_fill: a snapped note whose silence before the next snapped onset is shorter than
// LEGATO_GAP and than the note lasts until that onset (in place); returns how many were lengthened.
function legatoFill(notes, snapped) {
  const onGrid = new Map();  // onset -> whether the first note starting there was snapped
  notes.forEach((n, i) => { if (!onGrid.has(n.start)) onGrid.set(n.start, snapped[i]); });
  const onsets = [...onGrid.keys()].sort((a, b) => a - b);
  const ends = notes.map((n) => n.end);
  let count = 0;
  notes.forEach((n, i) => {
    const next = onsets.find((o) => o >= n.start + EPS);
    if (next === undefined || !snapped[i] || !onGrid.get(next)) return;
    const silence = next - ends[i];
    if (silence > EPS && silence < LEGATO_GAP - EPS && silence < ends[i] - n.start - EPS) { n.end = next; count += 1; }
  });
  return count;
}

// readers.common.first_bar_number: the number a score gives the first bar (0 for a pickup, else 1).
export function firstBarNumber(bars) {
  return bars.length && bars[0].length < bars[0].num * 4 / bars[0].den - EPS ? 0 : 1;
}

// readers.common.regular_bars: time signatures [[beat, num, den]] -> bars {start, length, num, den}.
export function regularBars(signatures, end) {
  if (!(end <= MAX_BEATS)) throw new ReadError(`the piece reaches beat ${end}, over the limit of ${MAX_BEATS} beats`);
  const byTime = new Map();
  signatures.filter((s) => s[0] < end).sort((a, b) => a[0] - b[0])
    .forEach(([t, num, den]) => byTime.set(Math.round(t * 1e6) / 1e6, [num, den]));
  let sigs = [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([t, [num, den]]) => [t, num, den])
    .filter((s) => s[1] > 0 && s[2] > 0);
  if (!sigs.length) sigs = [[0, 4, 4]];
  if (sigs[0][0] > EPS) sigs.unshift([0, 4, 4]);
  let count = 0;
  sigs.forEach(([t, num, den], k) => { count += ((k + 1 < sigs.length ? sigs[k + 1][0] : end) - t) / (num * 4 / den); });
  if (count > MAX_BEATS) throw new ReadError(`the time signatures make ${count.toPrecision(3)} bars, over the limit of ${MAX_BEATS}`);
  const bars = [];
  sigs.forEach(([t0, num, den], k) => {
    const last = k + 1 >= sigs.length;
    const stop = last ? Math.max(end, t0 + EPS) : sigs[k + 1][0];
    const nominal = num * 4 / den;
    for (let t = t0; t < stop - EPS; t += nominal) bars.push({start: t, length: last ? nominal : Math.min(nominal, stop - t), num, den});
  });
  return bars;
}

// readers.midi._pickup_signature: one bar of a shorter metre right before another metre is a pickup.
export function pickupBars(bars) {
  if (bars.length < 2) return bars;
  const [first, second] = bars;
  const nominal = second.num * 4 / second.den;
  if (first.length < nominal - EPS && Math.abs(second.start - first.start - first.length) < EPS
      && (first.num !== second.num || first.den !== second.den)) {
    return [{...first, num: second.num, den: second.den}].concat(bars.slice(1));
  }
  return bars;
}

// readers.common.layout_bars: [shift, time-signature events [[time, num, den]]].
function layoutBars(bars) {
  if (!bars.length) return [0, [[0, 4, 4]]];
  const first = bars[0], nominal = (b) => b.num * 4 / b.den;
  const shift = -first.start + Math.max(0, nominal(first) - first.length);
  const events = [[0, first.num, first.den]];
  let current = [first.num, first.den], expected = nominal(first);
  for (const bar of bars.slice(1)) {
    const start = bar.start + shift;
    if (Math.abs(start - expected) > 1e-4 || bar.num !== current[0] || bar.den !== current[1]) {
      events.push([start, bar.num, bar.den]);
      current = [bar.num, bar.den];
    }
    expected = start + nominal(bar);
  }
  return [shift, events];
}

// readers.common.skyline: at each onset the highest note ('highest'), cut at the next onset ('skyline').
function skyline(notes, legato) {
  const sorted = notes.slice().sort((a, b) => a.start - b.start || b.pitch - a.pitch);
  const top = sorted.filter((n, i) => i === 0 || n.start - sorted[i - 1].start > EPS);
  if (!legato) return top;
  return top.map((n, i) => ({...n, end: i + 1 < top.length ? Math.min(n.end, top[i + 1].start) : n.end}));
}

// readers.common.build_sequence: -> {notes, signatures, total, quantisation}. played: snap the notes
// to the grid and reduce chords with 'skyline' (MIDI); otherwise keep the times and take the highest
// note of a chord (notation).
export function buildMelody(notes, bars, played = true) {
  notes = notes.filter((n) => n.end > n.start);
  if (!notes.length) throw new ReadError("the melody has no notes");
  const [shift, events] = layoutBars(bars);
  const shifted = notes.map((n) => ({pitch: n.pitch, start: n.start + shift, end: n.end + shift}));
  const [snapped, quantisation] = played ? quantise(shifted) : [shifted, null];
  const kept = skyline(snapped.filter((n) => n.end > n.start + EPS && n.start >= -1e-4)
    .map((n) => ({...n, start: Math.max(0, n.start)})), played);
  if (!kept.length) throw new ReadError("the melody has no notes");
  return {notes: kept, signatures: events, total: Math.max(...kept.map((n) => n.end)), quantisation};
}

function tickIndex(position) {
  let best = 0;
  TICK_EDGES.forEach((e, i) => { if (Math.abs(e - position) < Math.abs(TICK_EDGES[best] - position)) best = i; });
  return Math.abs(TICK_EDGES[best] - position) <= GRID_TOLERANCE ? best : null;
}

function barTokens(notes, barStart, firstOn, lastOff) {
  const tokens = new Array(MEASURE_TICKS).fill(FULL.rest_id);
  const covered = new Array(MEASURE_TICKS).fill(false);
  let hasOnset = false;
  for (const n of notes) {
    const on = n.start - barStart, off = n.end - barStart;
    const tOn = on <= 0 ? 0 : tickIndex(on);
    const tOff = off >= 4 ? MEASURE_TICKS : tickIndex(off);
    if (tOn === null || tOff === null || tOff <= tOn) return "off_grid";
    for (let t = tOn; t < tOff; t++) if (covered[t]) return "polyphonic";
    for (let t = tOn; t < tOff; t++) { covered[t] = true; tokens[t] = FULL.hold_id; }
    if (on >= -GRID_TOLERANCE) { tokens[tOn] = n.pitch; hasOnset = true; }
  }
  if (!hasOnset) return "empty";
  let prevSilent = false;
  for (let t = 0; t < MEASURE_TICKS; t++) {
    if (covered[t]) { prevSilent = false; continue; }
    const pos = barStart + TICK_POSITIONS[t];
    if (pos < firstOn - GRID_TOLERANCE) tokens[t] = FULL.start_id;
    else if (pos >= lastOff - GRID_TOLERANCE) tokens[t] = FULL.end_id;
    else tokens[t] = prevSilent ? FULL.hold_id : FULL.rest_id;
    prevSilent = true;
  }
  return tokens;
}

// representation.sequence_to_measures: melody -> {measures [M][24] (full-range ids), bars [M], skipped}.
export function toMeasures(melody, allowCutTime = false) {
  const notes = melody.notes.slice().sort((a, b) => a.start - b.start || b.pitch - a.pitch);
  const skipped = {}, measures = [], barIndex = [];
  const count = (reason) => { skipped[reason] = (skipped[reason] || 0) + 1; };
  const firstOn = notes[0].start, lastOff = Math.max(...notes.map((n) => n.end));
  const endTime = Math.max(melody.total, lastOff);
  const sigs = melody.signatures.slice().sort((a, b) => a[0] - b[0]);
  let b = 0;
  sigs.forEach(([time, num, den], k) => {
    const sectionEnd = k + 1 < sigs.length ? sigs[k + 1][0] : endTime;
    const length = num * 4 / den;
    const four = (num === 4 && den === 4) || (allowCutTime && num === 2 && den === 2);
    for (let t = time; t < sectionEnd - EPS; t += length, b++) {
      const barEnd = t + length;
      if (barEnd <= firstOn + EPS || t >= lastOff - EPS) continue;
      if (!four) { count("not_4_4"); continue; }
      if (sigs.some((s) => t + EPS < s[0] && s[0] < barEnd - EPS)) { count("incomplete_bar"); continue; }
      const inside = notes.filter((n) => n.start < barEnd - EPS && n.end > t + EPS);
      const tokens = barTokens(inside, t, firstOn, lastOff);
      if (typeof tokens === "string") { count(tokens); continue; }
      measures.push(tokens);
      barIndex.push(b);
    }
  });
  return {measures, bars: barIndex, skipped};
}

// Why a file gave no measure (serving.midi_io.no_measure_message).
export function noMeasureMessage(skipped, quantisation) {
  const keys = Object.keys(skipped).sort();
  let why = keys.map((k) => `${skipped[k]} bar${skipped[k] !== 1 ? "s" : ""} ${SKIP_TEXT[k] || k}`).join(", ") || "no bars with notes";
  if (quantisation && keys.length && keys.every((k) => k === "off_grid") && quantisation.offGrid) {
    why = `every bar has onsets further than ${quantisation.tolerance} beat from the 24-tick grid; largest quantisation error ${quantisation.maxError.toFixed(3)} beat`;
  }
  return `no usable 4/4 measure (${why})`;
}

// representation.fit_transposition ("auto"): semitones moving the pitches into the vocabulary, or null.
export function fitShift(measures, vocab) {
  const pitches = measures.flat().filter((id) => id <= 127);
  if (!pitches.length) return 0;
  const lo = Math.min(...pitches), hi = Math.max(...pitches);
  const fits = (s) => vocab.min_pitch <= lo + s && hi + s <= vocab.max_pitch;
  const byAbs = (a, b) => Math.abs(a) - Math.abs(b) || a - b;
  const octaves = [], semitones = [];
  for (let s = -120; s <= 120; s += 12) octaves.push(s);
  for (let s = -127; s <= 127; s++) semitones.push(s);
  for (const candidates of [[0], octaves.sort(byAbs), semitones.sort(byAbs)]) {
    for (const s of candidates) if (fits(s)) return s;
  }
  return null;
}

// Full-range ids -> the vocabulary's ids, pitches moved by `shift`.
export function translate(row, vocab, shift) {
  const pitches = vocab.max_pitch - vocab.min_pitch + 1;
  return row.map((id) => (id <= 127 ? id + shift - vocab.min_pitch : id - 128 + pitches));
}

// Measures (full-range ids) -> {tokens [M][24] in vocab ids, bars, shift ("per measure" when each bar
// had to be moved on its own)}, bars that fit nowhere counted in skipped.out_of_pitch_range.
export function fitMeasures(measures, bars, vocab, skipped) {
  const shift = fitShift(measures, vocab);
  if (shift !== null) return {tokens: measures.map((m) => translate(m, vocab, shift)), bars, shift};
  const tokens = [], kept = [];
  measures.forEach((m, i) => {
    const s = fitShift([m], vocab);
    if (s === null) skipped.out_of_pitch_range = (skipped.out_of_pitch_range || 0) + 1;
    else { tokens.push(translate(m, vocab, s)); kept.push(bars[i]); }
  });
  if (!tokens.length) throw new ReadError(`no measure fits the model's pitch range ${vocab.min_pitch}..${vocab.max_pitch}`);
  return {tokens, bars: kept, shift: "per measure"};
}

// Token ids [M][24] of a vocabulary -> notes [{pitch, start, end}] in beats (representation.measures_to_sequence).
export function tokensToNotes(rows, vocab) {
  const pitches = vocab.max_pitch - vocab.min_pitch + 1, hold = pitches + 1;
  const notes = [];
  let current = null;
  rows.flat().forEach((id, k) => {
    const beat = Math.floor(k / MEASURE_TICKS) * 4 + TICK_POSITIONS[k % MEASURE_TICKS];
    if (id === hold) return;
    if (current) { notes.push({...current, end: beat}); current = null; }
    if (id < pitches) current = {pitch: id + vocab.min_pitch, start: beat};
  });
  if (current) notes.push({...current, end: rows.length * 4});
  return notes;
}
