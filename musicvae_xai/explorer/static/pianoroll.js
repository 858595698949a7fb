// Piano-roll drawing on a <canvas>: measures of notes {pitch, start, end} (beats from the measure's
// start), one row per pitch of the model's range, beats and the 24-tick grid behind them.

export const TICKS_IN_BEAT = [0, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4];
const NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
const BLACK = new Set([1, 3, 6, 8, 10]);

export const pitchName = (p) => `${NAMES[p % 12]}${Math.floor(p / 12) - 1}`;

// Index 0..23 of the tick nearest to a position in beats inside a measure.
export function tickOf(beat) {
  let best = 0;
  let err = Infinity;
  for (let b = 0; b < 4; b++) {
    TICKS_IN_BEAT.forEach((o, i) => {
      const e = Math.abs(b + o - beat);
      if (e < err) { err = e; best = b * 6 + i; }
    });
  }
  return best;
}

// Matches the canvas' pixel size to its CSS size (sharp on high-DPI screens); returns [w, h] in CSS px.
export function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(10, Math.round(canvas.clientWidth || canvas.width));
  const h = Math.max(10, Math.round(canvas.clientHeight || canvas.height));
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [w, h, ctx];
}

// measures: [{notes, confidence?}], ghost: notes drawn faintly under the first measure (the seed);
// range: [minPitch, maxPitch]; cursor: position in beats (or null); color: note colour.
export function drawRoll(canvas, { measures, ghost = null, range, cursor = null, color = "#2458d6", compact = false, empty = "" }) {
  const [w, h, ctx] = fitCanvas(canvas);
  const [lo, hi] = range;
  const rows = hi - lo + 1;
  const left = compact ? 26 : 34;
  const bottom = compact ? 4 : 16;
  const top = 4;
  const plotW = w - left - 6;
  const plotH = h - top - bottom;
  const rowH = plotH / rows;
  const count = Math.max(1, measures.length);
  const beatW = plotW / (4 * count);
  const y = (p) => top + (hi - p) * rowH;
  const x = (beat) => left + beat * beatW;

  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fbfcfe";
  ctx.fillRect(0, 0, w, h);
  for (let p = lo; p <= hi; p++) {  // key rows
    if (BLACK.has(p % 12)) {
      ctx.fillStyle = "#f0f2f7";
      ctx.fillRect(left, y(p), plotW, rowH);
    }
    if (p % 12 === 0) {
      ctx.fillStyle = "#dde2ec";
      ctx.fillRect(left, y(p) + rowH - 0.5, plotW, 1);
      if (rowH * 12 >= 40) {
        ctx.fillStyle = "#7b8496";
        ctx.font = `${compact ? 9 : 10}px system-ui, sans-serif`;
        ctx.textBaseline = "middle";
        ctx.textAlign = "right";
        ctx.fillText(pitchName(p), left - 4, y(p) + rowH / 2);
      }
    }
  }
  for (let m = 0; m < count; m++) {  // tick grid, beats, bar lines
    for (let b = 0; b < 4; b++) {
      if (!compact) {
        ctx.fillStyle = "#eef0f5";
        for (const o of TICKS_IN_BEAT.slice(1)) ctx.fillRect(x(m * 4 + b + o), top, 1, plotH);
      }
      ctx.fillStyle = b === 0 ? "#aab2c2" : "#d3d8e2";
      ctx.fillRect(x(m * 4 + b), top, b === 0 ? 1.5 : 1, plotH);
      if (!compact && count === 1) {
        ctx.fillStyle = "#8a93a5";
        ctx.font = "10px system-ui, sans-serif";
        ctx.textAlign = "left";
        ctx.textBaseline = "top";
        ctx.fillText(`beat ${b + 1}`, x(b) + 3, top + plotH + 3);
      }
    }
  }
  ctx.fillStyle = "#aab2c2";
  ctx.fillRect(x(4 * count) - 1, top, 1.5, plotH);

  const noteRect = (n, offset) => [x(offset + n.start) + 1, y(Math.min(hi, Math.max(lo, n.pitch))) + 1,
    Math.max(2, (n.end - n.start) * beatW - 2), Math.max(2, rowH - 2)];
  if (ghost) {
    ctx.fillStyle = "rgba(150, 158, 175, 0.45)";
    for (const n of ghost) {
      const [rx, ry, rw, rh] = noteRect(n, 0);
      roundRect(ctx, rx, ry, rw, rh, 2);
      ctx.fill();
    }
  }
  measures.forEach((m, i) => {
    for (const n of m.notes) {
      const conf = m.confidence ? m.confidence[tickOf(n.start)] : 1;
      ctx.globalAlpha = 0.45 + 0.55 * Math.max(0, Math.min(1, conf));
      ctx.fillStyle = color;
      const [rx, ry, rw, rh] = noteRect(n, 4 * i);
      roundRect(ctx, rx, ry, rw, rh, 2.5);
      ctx.fill();
      ctx.globalAlpha = 1;
      if (!compact && rh >= 8 && rw >= 26) {
        ctx.fillStyle = "#fff";
        ctx.font = "9px system-ui, sans-serif";
        ctx.textAlign = "left";
        ctx.textBaseline = "middle";
        ctx.fillText(pitchName(n.pitch), rx + 3, ry + rh / 2);
      }
    }
  });
  if (!measures.length && empty) {
    ctx.fillStyle = "#9aa3b5";
    ctx.font = "12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(empty, left + plotW / 2, top + plotH / 2);
  }
  if (cursor !== null && cursor >= 0) {
    ctx.fillStyle = "#e8590c";
    ctx.fillRect(x(cursor), top, 2, plotH);
  }
}

function roundRect(ctx, x, y, w, h, r) {
  r = Math.min(r, w / 2, h / 2);
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}
