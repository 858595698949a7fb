// The model in the browser: the forward pass of an export (MeasureVAE or AdversarialVAE) written with
// TensorFlow.js ops over the weights the site builder wrote (model.json + weights.bin), doing what the
// SavedModel's signatures do:
//   encode(tokens [B][24])            -> {zMean [B][Z], zScale [B][Z], attributes [B][K]}
//   decode(z [B][Z], controls [B][K], withProbabilities, allowed) -> {tokens [B][24], probabilities
//                                        [B][24][V]}  (greedy; controls only for a model that needs
//                                        them, raw attribute values; allowed: bool [V] or [B][V], the
//                                        tokens every tick may choose, as MusicVAE.decode's allowed)
//   traverse(tokens [B][24], control, values [S]) -> {tokens [B][S][24], attributes [B][S][K]}
//   reconstruct(tokens [B][24])       -> tokens [B][24]
// Tensors inside are float32 except token ids (int32). The maths is the package's (musicvae_xai.models):
// reset-after GRUs with gates ordered [update, reset, candidate], SELU dense layers, ReLU on the
// MeasureVAE's logits, FaderVAE's first decoder step for the adversarial model.
import { compute as measureAttributes } from "./attributes.js";

const tf = window.tf;
export const TICKS = 24;
const BEATS = 4, TICKS_PER_BEAT = 6;

function dense(x, w, prefix, activation) {
  const y = tf.fused.matMul({a: x, b: w[prefix + "/kernel"], bias: w[prefix + "/bias"],
                             activation: activation === "relu" ? "relu" : "linear"});
  if (activation === "selu") return tf.selu(y);
  if (activation === "tanh") return tf.tanh(y);
  return y;
}

// A GRU layer's weights: input kernel [I, 3H], input bias [3H], recurrent kernel [H, 3H], recurrent bias [3H].
function cell(w, prefix) {
  const c = {ik: w[prefix + "/input_kernel"], ib: w[prefix + "/input_bias"],
             rk: w[prefix + "/recurrent_kernel"], rb: w[prefix + "/recurrent_bias"]};
  if (!c.ik) throw new Error("the weights have no GRU layer " + prefix);
  c.units = c.rk.shape[0];
  return c;
}

function project(c, x) { return tf.fused.matMul({a: x, b: c.ik, bias: c.ib}); }

// One step from the projected input xp [B, 3H] and state h [B, H]. sequenceForm: the encoder's
// recurrence (models.gru: n + z * (h - n)); otherwise FusedGRUCell.step (z * h + (1 - z) * n).
function step(c, xp, h, sequenceForm) {
  const u = c.units;
  const a = tf.fused.matMul({a: h, b: c.rk, bias: c.rb});
  const [xzr, xn] = tf.split(xp, [2 * u, u], 1);
  const [azr, an] = tf.split(a, [2 * u, u], 1);
  const [z, r] = tf.split(tf.sigmoid(tf.add(xzr, azr)), 2, 1);
  const n = tf.tanh(tf.add(xn, tf.mul(r, an)));
  if (sequenceForm) return tf.add(n, tf.mul(z, tf.sub(h, n)));
  return tf.add(tf.mul(z, h), tf.mul(tf.sub(1, z), n));
}

// Stacked cells, one time step: states (one [B, H] per cell) updated in place; returns the top state.
function stackedStep(cells, firstProj, states) {
  let inp = firstProj;
  cells.forEach((c, i) => {
    if (i > 0) inp = project(c, states[i - 1]);
    states[i] = step(c, inp, states[i], false);
  });
  return states[states.length - 1];
}

// logits [B, V] with the tokens keep (float32 [B or 1, V], 1 = allowed) leaves out set to -1e9
// (models.layers.mask_logits); unchanged when keep is null.
function maskLogits(logits, keep) {
  if (!keep) return logits;
  return tf.add(tf.mul(logits, keep), tf.mul(tf.sub(1, keep), -1e9));
}

function countCells(w, prefix) {
  let n = 0;
  while (w[prefix + n + "/recurrent_kernel"]) n += 1;
  return n;
}

export class Model {
  // meta: model.json (config, vocabulary, attributes, controls, weight table); buffer: weights.bin.
  constructor(meta, buffer) {
    this.meta = meta;
    this.config = meta.config;
    this.vocabulary = meta.vocabulary;
    this.attributeNames = meta.attributes.names;
    this.needsControls = !!meta.needs_controls;
    this.controls = meta.controls.controls;
    this.latentDim = this.config.latent_dim;
    const w = {};
    for (const e of meta.weights) {
      const size = e.shape.reduce((a, b) => a * b, 1);
      w[e.name] = tf.tensor(new Float32Array(buffer, e.offset, size), e.shape, "float32");
    }
    this.w = w;
    const encLayers = countCells(w, "encoder/bigru/fwd_");
    this.encoderCells = [];
    for (let i = 0; i < encLayers; i++) {
      this.encoderCells.push([cell(w, "encoder/bigru/fwd_" + i), cell(w, "encoder/bigru/bwd_" + i)]);
    }
    if (meta.model === "adversarial_vae") {
      this.kind = "adversarial";
      this.cells = [];
      for (let i = 0; i < countCells(w, "decoder/gru_"); i++) this.cells.push(cell(w, "decoder/gru_" + i));
      // the training-split statistics the model holds (std already floored, as the model uses it)
      this.stats = {min: w.attribute_min, max: w.attribute_max, mean: w.attribute_mean, std: w.attribute_std};
    } else {
      this.kind = "measure";
      this.beatCells = [];
      this.tickCells = [];
      for (let i = 0; i < countCells(w, "decoder/beat_"); i++) this.beatCells.push(cell(w, "decoder/beat_" + i));
      for (let i = 0; i < countCells(w, "decoder/tick_"); i++) this.tickCells.push(cell(w, "decoder/tick_" + i));
    }
  }

  // tokens int32 [B, 24] -> [mean, scale] float32 [B, Z] (tensors; call inside tf.tidy).
  encodeTensors(tokens) {
    const w = this.w, b = tokens.shape[0];
    let x = tf.gather(w["encoder/embedding/embeddings"], tokens);  // [B, 24, E]
    const finals = [];
    for (const pair of this.encoderCells) {
      const outs = [];
      pair.forEach((c, d) => {
        const units = c.units, width = x.shape[2];
        const xp = tf.unstack(tf.reshape(project(c, tf.reshape(x, [b * TICKS, width])), [b, TICKS, 3 * units]), 1);
        let h = tf.zeros([b, units]);
        const out = new Array(TICKS);
        for (let k = 0; k < TICKS; k++) {
          const t = d === 0 ? k : TICKS - 1 - k;
          h = step(c, xp[t], h, true);
          out[t] = h;
        }
        finals.push(h);
        outs.push(tf.stack(out, 1));
      });
      x = tf.concat(outs, 2);
    }
    const summary = tf.concat(finals, 1);
    const hidden = !!w["encoder/posterior/mean_hidden/kernel"];
    const mean = hidden ? dense(dense(summary, w, "encoder/posterior/mean_hidden", "selu"), w, "encoder/posterior/mean_out")
      : dense(summary, w, "encoder/posterior/mean_out");
    let logScale = hidden
      ? dense(dense(summary, w, "encoder/posterior/scale_hidden", "selu"), w, "encoder/posterior/log_scale_out")
      : dense(summary, w, "encoder/posterior/log_scale_out");
    if (this.config.clip_log_scale) logScale = tf.clipByValue(logScale, -10, 5);
    return [mean, tf.exp(logScale)];
  }

  // z float32 [B, Z] (+ raw controls [B, K]; keep float32 [B or 1, V] or null: the allowed tokens)
  // -> logits float32 [B, 24, V] and greedy tokens int32 [B, 24].
  decodeTensors(z, controls, keep = null) {
    return this.kind === "measure" ? this.decodeMeasure(z, keep) : this.decodeAdversarial(z, controls, keep);
  }

  decodeMeasure(z, keep) {
    const w = this.w, b = z.shape[0], L = this.beatCells.length;
    const hiddenUnits = this.beatCells[0].units;
    let states = tf.split(dense(z, w, "decoder/z_to_beat", "selu"), L, 1);
    const constant = tf.tile(project(this.beatCells[0], tf.reshape(w["decoder/beat_input"], [1, -1])), [b, 1]);
    const beats = [];
    for (let k = 0; k < BEATS; k++) beats.push(stackedStep(this.beatCells, constant, states));
    const flat = tf.reshape(tf.stack(beats, 1), [b * BEATS, hiddenUnits]);  // [B*4, H]
    const tickInit = tf.split(tf.reshape(dense(flat, w, "decoder/beat_to_tick", "selu"), [b, BEATS, -1]), L, 2)
      .map((s) => tf.unstack(s, 1));  // [layer][beat] [B, H]
    const condition = this.config.beat_conditioning ? dense(flat, w, "decoder/beat_condition", "selu") : flat;
    const first = this.tickCells[0], e = w["decoder/token_embedding/embeddings"].shape[1];
    const [kToken, kBeat] = tf.split(first.ik, [e, first.ik.shape[0] - e], 0);
    const inputs = tf.concat([w["decoder/token_embedding/embeddings"], tf.reshape(w["decoder/first_input"], [1, -1])], 0);
    const table = tf.matMul(inputs, kToken);  // [V + 1, 3H]
    const beatProj = tf.unstack(tf.reshape(tf.add(tf.matMul(condition, kBeat), first.ib), [b, BEATS, -1]), 1);
    let prev = tf.fill([b], this.vocabulary.size, "int32");
    const logitsAll = [], tokensAll = [];
    for (let k = 0; k < BEATS; k++) {
      states = tickInit.map((layer) => layer[k]);
      for (let j = 0; j < TICKS_PER_BEAT; j++) {
        const top = stackedStep(this.tickCells, tf.add(tf.gather(table, prev), beatProj[k]), states);
        const logits = maskLogits(dense(top, w, "decoder/logits", this.config.logits_relu ? "relu" : null), keep);
        prev = tf.argMax(logits, 1);
        logitsAll.push(logits);
        tokensAll.push(prev);
      }
    }
    return [tf.stack(logitsAll, 1), tf.stack(tokensAll, 1)];
  }

  // Raw attribute values [B, K] -> clipped to the training range and standardised (NaN -> the mean).
  normaliseControls(c) {
    const s = this.stats;
    const filled = tf.where(tf.isNaN(c), tf.broadcastTo(s.mean, c.shape), c);
    return tf.div(tf.sub(tf.minimum(tf.maximum(filled, s.min), s.max), s.mean), s.std);
  }

  decodeAdversarial(z, controls, keep) {
    const w = this.w, b = z.shape[0], cells = this.cells;
    const condition = tf.concat([z, this.normaliseControls(controls)], 1);
    const first = cells[0], e = w["decoder/token_embedding/embeddings"].shape[1];
    const [kToken, kCond] = tf.split(first.ik, [e, first.ik.shape[0] - e], 0);
    const table = tf.matMul(w["decoder/token_embedding/embeddings"], kToken);  // [V, 3H]
    const constant = tf.add(tf.matMul(condition, kCond), first.ib);
    let prev = tf.fill([b], this.vocabulary.start_id, "int32");
    const perLayer = this.config.adversarial_state_per_layer;
    let states = perLayer ? tf.split(dense(condition, w, "decoder/initial_state", "tanh"), cells.length, 1) : null;
    const logitsAll = [], tokensAll = [];
    for (let t = 0; t < TICKS; t++) {
      const inp = tf.add(tf.gather(table, prev), constant);
      let top;
      if (t === 0 && !perLayer) {  // FaderVAE: layer 1 from tanh(Linear(z)), each higher one from the new state below
        states = [step(first, inp, dense(z, w, "decoder/initial_state", "tanh"), false)];
        for (const c of cells.slice(1)) states.push(step(c, project(c, states[states.length - 1]), states[states.length - 1], false));
        top = states[states.length - 1];
      } else {
        top = stackedStep(cells, inp, states);
      }
      const logits = maskLogits(dense(top, w, "decoder/logits"), keep);
      prev = tf.argMax(logits, 1);
      logitsAll.push(logits);
      tokensAll.push(prev);
    }
    return [tf.stack(logitsAll, 1), tf.stack(tokensAll, 1)];
  }

  checkTokens(tokens) {
    const v = this.vocabulary.size;
    tokens.forEach((row, i) => {
      if (!Array.isArray(row) && !(row instanceof Int32Array) || row.length !== TICKS) throw new Error(`tokens[${i}]: expected ${TICKS} token ids`);
      for (const id of row) if (!Number.isInteger(id) || id < 0 || id >= v) throw new Error(`tokens[${i}]: token ids must be in [0, ${v})`);
    });
  }

  encode(tokens) {
    this.checkTokens(tokens);
    const [mean, scale] = tf.tidy(() => this.encodeTensors(tf.tensor2d(tokens, [tokens.length, TICKS], "int32")));
    const out = {zMean: mean.arraySync(), zScale: scale.arraySync(),
                 attributes: tokens.map((row) => measureAttributes(row, this.vocabulary, this.attributeNames))};
    mean.dispose();
    scale.dispose();
    return out;
  }

  decode(z, controls, withProbabilities = true, allowed = null) {
    if (this.needsControls && !controls) throw new Error("this model decodes with controls [B, K]");
    const [logits, tokens] = tf.tidy(() => {
      const zt = tf.tensor2d(z, [z.length, this.latentDim], "float32");
      const ct = this.needsControls ? tf.tensor2d(controls, [controls.length, this.attributeNames.length], "float32") : null;
      const rows = allowed ? (Array.isArray(allowed[0]) ? allowed : [allowed]) : null;
      const keep = rows ? tf.tensor2d(rows.map((r) => r.map(Number)), [rows.length, this.vocabulary.size], "float32") : null;
      const [lg, tk] = this.decodeTensors(zt, ct, keep);
      return [withProbabilities ? tf.softmax(lg) : tf.zeros([1]), tk];
    });
    const out = {tokens: tokens.arraySync()};
    if (withProbabilities) out.probabilities = logits.arraySync();
    logits.dispose();
    tokens.dispose();
    return out;
  }

  reconstruct(tokens) {
    const enc = this.encode(tokens);
    return this.decode(enc.zMean, this.needsControls ? enc.attributes : null, false).tokens;
  }

  // The states (z [B*S][Z], controls [B*S][K] or null) of sweeping control `index` over `values`
  // from states z [B][Z], controls [B][K] (models.base.controls_sweep: row b*S + s).
  sweep(z, controls, index, values) {
    const c = this.controls[index];
    const inLatent = c.kind === "latent_dim";
    const zs = [], cs = controls ? [] : null;
    z.forEach((row, b) => {
      for (const v of values) {
        const zr = row.slice(), cr = controls ? controls[b].slice() : null;
        if (inLatent) zr[c.index] = v; else cr[c.index] = v;
        zs.push(zr);
        if (cs) cs.push(cr);
      }
    });
    return [zs, cs];
  }

  traverse(tokens, index, values) {
    if (!Number.isInteger(index) || index < 0 || index >= this.controls.length) {
      throw new Error(`control must be in [0, ${this.controls.length})`);
    }
    const enc = this.encode(tokens);
    const [zs, cs] = this.sweep(enc.zMean, this.needsControls ? enc.attributes : null, index, values);
    const decoded = this.decode(zs, cs, false).tokens;
    const s = values.length, out = {tokens: [], attributes: []};
    tokens.forEach((_, b) => {
      const rows = decoded.slice(b * s, (b + 1) * s);
      out.tokens.push(rows);
      out.attributes.push(rows.map((r) => measureAttributes(r, this.vocabulary, this.attributeNames)));
    });
    return out;
  }
}

export async function loadModel(base) {
  const [metaResponse, weightsResponse] = await Promise.all([fetch(base + "model.json"), fetch(base + "weights.bin")]);
  if (!metaResponse.ok || !weightsResponse.ok) throw new Error("cannot load the model files (model.json, weights.bin)");
  const meta = await metaResponse.json();
  return new Model(meta, await weightsResponse.arrayBuffer());
}

