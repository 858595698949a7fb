// Staying in key in the browser: musicvae_xai.keys's estimate_key and allowed_tokens over the table
// the site builder wrote (model.json "keys": keys.estimation_table(): the Krumhansl-Kessler profiles
// and, in the order Python tries them, every key it chooses among with its scale's pitch classes).
//   estimateKey(rows [M][24], vocabulary, table) -> {name, tonic, pitch_classes} or null (no note)
//   allowedTokens(key, vocabulary) -> bool[V]: the scale's pitch tokens and every non-pitch token
const TICK_POSITIONS = [0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75];
const TICKS = 24;
const tickAt = (t) => Math.floor(t / 6) + TICK_POSITIONS[t % 6];

// float [12]: the length in beats of the notes of each pitch class (a note lasts until the next
// token that is not hold, or the bar line).
export function pitchClassWeights(rows, vocabulary) {
  const w = new Array(12).fill(0);
  for (const row of rows) {
    let current = -1, start = 0;
    for (let t = 0; t <= TICKS; t++) {
      if (t < TICKS && row[t] === vocabulary.hold_id) continue;
      const at = t < TICKS ? tickAt(t) : 4;
      if (current >= 0) w[(current + vocabulary.min_pitch) % 12] += at - start;
      current = t < TICKS && row[t] < vocabulary.rest_id ? row[t] : -1;
      start = at;
    }
  }
  return w;
}

function correlation(a, b) {
  const n = a.length, ma = a.reduce((s, x) => s + x, 0) / n, mb = b.reduce((s, x) => s + x, 0) / n;
  let num = 0, da = 0, db = 0;
  for (let i = 0; i < n; i++) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) ** 2;
    db += (b[i] - mb) ** 2;
  }
  return da > 0 && db > 0 ? num / Math.sqrt(da * db) : 0;
}

export function estimateKey(rows, vocabulary, table) {
  const w = pitchClassWeights(rows, vocabulary);
  const total = w.reduce((s, x) => s + x, 0);
  if (total <= 0) return null;
  let best = null, bestHeld = -1, bestCorr = -Infinity;
  for (const key of table.keys) {
    const held = Math.round(key.pitch_classes.reduce((s, pc) => s + w[pc], 0) / total * 1e9) / 1e9;
    const rotated = w.map((_, i) => w[(i + key.tonic) % 12]);
    const corr = correlation(rotated, table.profiles[key.profile]);
    if (held > bestHeld || (held === bestHeld && corr > bestCorr)) [best, bestHeld, bestCorr] = [key, held, corr];
  }
  return best;
}

export function allowedTokens(key, vocabulary) {
  const scale = new Set(key.pitch_classes);
  const allowed = new Array(vocabulary.size).fill(true);
  for (let id = 0; id < vocabulary.rest_id; id++) allowed[id] = scale.has((id + vocabulary.min_pitch) % 12);
  return allowed;
}
