// The musical attributes of a 24-token measure, as musicvae_xai.attributes computes them (float32):
// onsets are the ticks whose token is a pitch, p_1..p_n the onset pitches in order.

const BEAT_WEIGHTS = [0.20, 0.67, 0.25, 0.67];
const WEIGHTS = Float32Array.from(BEAT_WEIGHTS.flatMap((b) => [b, 1.0, 2.0, 0.5, 2.0, 1.0]));
const WEIGHT_SUM = Math.fround(WEIGHTS.reduce((a, b) => Math.fround(a + b), 0));
const RANGE_NORM = 26.0;
const f = Math.fround;

function onsetPitches(row, vocab) {
  const out = [];
  const weights = [];
  row.forEach((id, t) => {
    if (id < vocab.max_pitch - vocab.min_pitch + 1) {
      out.push(id + vocab.min_pitch);
      weights.push(WEIGHTS[t]);
    }
  });
  return [out, weights];
}

const FUNCTIONS = {
  rhythmic_complexity: (p, w) => f(f(w.reduce((a, b) => f(a + b), 0)) / WEIGHT_SUM),
  note_range: (p) => (p.length >= 2 ? f((Math.max(...p) - Math.min(...p)) / RANGE_NORM) : 0),
  note_density: (p) => f(p.length / 24),
  average_interval_jump: (p) => {
    if (p.length < 2) return 0;
    let total = 0;
    for (let i = 1; i < p.length; i++) total += Math.abs(p[i] - p[i - 1]);
    return f(total / (p.length - 1));
  },
  contour: (p) => (p.length >= 2 ? f((p[p.length - 1] - p[0]) / RANGE_NORM) : 0),
};

// row: 24 token ids; vocab: {min_pitch, max_pitch}; names: attribute names -> [K] numbers.
export function compute(row, vocab, names) {
  const [pitches, weights] = onsetPitches(row, vocab);
  return names.map((name) => {
    const fn = FUNCTIONS[name];
    if (!fn) throw new Error(`unknown attribute ${name}`);
    return fn(pitches, weights);
  });
}
