// The explorer page: seed -> latent state -> controls (sliders, XY pads) -> decoded measure,
// heard through Web Audio, measured, downloaded as MIDI, chained into a phrase.
//
// State: S.z (latent code) and S.controls (decoder attribute inputs, or null). A control is one
// coordinate of that state: z[index] ("latent_dim") or controls[index] ("attribute_input").

import { clearError, download, getJSON, postJSON, request, showError } from "./api.js";
import { Player } from "./audio.js";
import { drawRoll } from "./pianoroll.js";
import { Pad } from "./pads.js";
import { buildSliders, renderAttributes, syncSliders } from "./panels.js";
import { bindResearcherToggle, modelWords, renderGlossary } from "./wording.js";

const $ = (id) => document.getElementById(id);
const MAX_PHRASE = 32;
const MAX_MARKER = 200;  // characters of a MIDI marker the server accepts
const SURFACE_GRID = 15;
const DENSITY_BINS = 24;

const S = {
  model: null,
  z: [],
  controls: null,
  seed: null,       // {tokens, notes, attributes, z, controls, label, key}
  out: null,        // last decoded measure
  phrase: [],
  pieces: [],
  upload: null,
  histograms: null,
  pads: [],
  inflight: false,
  dirty: false,
  decodes: 0,
  interacted: false,
  playWhenSettled: false,
  surfaceTimer: null,
};
const player = new Player();

// Outstanding requests, published as body[data-busy] (tests and screenshots wait for "0").
let pending = 0;
async function busy(promise) {
  pending += 1;
  document.body.dataset.busy = "1";
  try {
    return await promise;
  } finally {
    pending -= 1;
    if (!pending) document.body.dataset.busy = "0";
  }
}

// -- state <-> controls -----------------------------------------------------------------------
const control = (pos) => S.model.controls[pos];
function value(pos) {
  const c = control(pos);
  return c.kind === "latent_dim" ? S.z[c.index] : S.controls[c.index];
}
function setValue(pos, v) {
  const c = control(pos);
  if (c.kind === "latent_dim") S.z[c.index] = v; else S.controls[c.index] = v;
}
function seedValue(pos) {
  if (!S.seed) return null;
  const c = control(pos);
  return c.kind === "latent_dim" ? S.seed.z[c.index] : S.seed.controls[c.index];
}
const qpm = () => Number($("qpm").value);
const sliderRoots = () => ({ sliders: $("sliders"), free: $("free-sliders"), freeBox: $("free-dims"), kind: $("controls-kind") });
const view = () => ({ model: S.model, value, seedValue, z: S.z, out: S.out, histograms: S.histograms });
const showAttributes = () => renderAttributes($("attr-table").querySelector("tbody"), S.model, S.out, S.seed);
const showSliders = () => syncSliders(sliderRoots(), view());
function makeSliders() {
  buildSliders(S.model, sliderRoots(),
    (pos, v, final) => { setValue(pos, v); moved(final); },
    (dim, v, final) => { S.z[dim] = v; moved(final); });
}

// -- decoding -----------------------------------------------------------------------------------
// At most one decode in flight; moves made meanwhile are folded into one follow-up request.
function decode() {
  if (S.inflight) { S.dirty = true; return Promise.resolve(); }
  return busy(decodeLoop());
}

async function decodeLoop() {
  S.inflight = true;
  do {
    S.dirty = false;
    try {
      S.out = await postJSON("/api/decode", { z: S.z, controls: S.controls, key: keptKey() });
      S.decodes += 1;
      document.body.dataset.decodes = String(S.decodes);
      clearError("decode");
      $("output-card").classList.remove("stale");
      renderOutput();
    } catch (e) {
      $("output-card").classList.add("stale");  // what is shown no longer matches the controls
      showError("decode", `Decoding failed: ${e.message}`);
    }
  } while (S.dirty);
  S.inflight = false;
  if (S.playWhenSettled && $("autoplay").checked) playOutput();
  S.playWhenSettled = false;
  scheduleBackgrounds();
}

// "Stay in key": the seed's key (of its piece), sent with every decode while the box is ticked.
function keptKey() {
  return $("stay-in-key").checked && S.seed ? S.seed.key : null;
}

function showKey() {
  const key = S.seed ? S.seed.key : null;
  $("key-name").textContent = key ? `(${key})` : S.seed ? "(no notes)" : "(no seed yet)";
  $("stay-in-key").disabled = !key;
}

function moved(final) {
  S.interacted = true;
  showSliders();
  S.pads.forEach((p) => p.draw());
  if (final) S.playWhenSettled = true;
  decode();
}

// -- rendering ----------------------------------------------------------------------------------
const range = () => [S.model.vocabulary.min_pitch, S.model.vocabulary.max_pitch];

function renderSeed() {
  drawRoll($("seed-roll"), { measures: S.seed ? [{ notes: S.seed.notes }] : [], range: range(), color: "#4b5563",
    cursor: S.playingWhat === "seed" ? player.position() : null, empty: "no seed yet" });
}

function renderOutput() {
  const out = S.out;
  const canvas = $("output-roll");
  drawRoll(canvas, { measures: out ? [{ notes: out.notes, confidence: out.confidence }] : [],
    ghost: S.seed ? S.seed.notes : null, range: range(),
    cursor: S.playingWhat === "output" ? player.position() : null, empty: "decoding…" });
  if (out) canvas.dataset.tokens = out.tokens.join(",");
  showAttributes();
  if (out) showSliders();  // a latent dim's slider shows what it asks for, from the decode
}

function renderPhrase() {
  drawRoll($("phrase-roll"), { measures: S.phrase.map((m) => ({ notes: m.notes })), range: range(), compact: true,
    cursor: S.playingWhat === "phrase" ? player.position() : null, empty: "add decoded measures to build a phrase" });
  const n = S.phrase.length;
  $("phrase-count").textContent = n ? `(${n} measure${n > 1 ? "s" : ""})` : "(empty)";
  for (const id of ["play-phrase", "download-phrase", "undo-phrase", "clear-phrase"]) $(id).disabled = !n;
  $("add-phrase").disabled = !S.out || n >= MAX_PHRASE;
}

// -- pads and their backgrounds -------------------------------------------------------------------
function buildPads() {
  const root = $("pads");
  root.textContent = "";
  S.pads = S.model.pairs.map((pair, i) => new Pad(root, S.model, i, pair, i === 0 ? "surface" : "density", {
    value, seedValue,
    move: (x, y, xv, yv, final) => { setValue(x, xv); setValue(y, yv); moved(final); },
    changed: () => scheduleBackgrounds(0),
  }));
  if (!S.pads.length) root.textContent = "A pad needs two controls; this model has fewer.";
}

function scheduleBackgrounds(delay = 250) {
  clearTimeout(S.surfaceTimer);
  if (!S.surfacePending) {  // counted as busy from now until the newest scheduled update is drawn
    S.surfacePending = true;
    pending += 1;
    document.body.dataset.busy = "1";
  }
  const generation = (S.surfaceGeneration = (S.surfaceGeneration || 0) + 1);
  S.surfaceTimer = setTimeout(async () => {
    try {
      await updateBackgrounds();
    } finally {
      if (generation === S.surfaceGeneration && S.surfacePending) {
        S.surfacePending = false;
        pending -= 1;
        if (!pending) document.body.dataset.busy = "0";
      }
    }
  }, delay);
}

async function updateBackgrounds() {
  for (const pad of S.pads) {
    const kind = pad.background;
    try {
      if (kind === "surface") {
        // The pad's own two coordinates are swept, so they do not enter the key.
        const z = S.z.slice();
        const controls = S.controls ? S.controls.slice() : null;
        for (const pos of [pad.x, pad.y]) {
          const c = control(pos);
          if (c.kind === "latent_dim") z[c.index] = 0; else controls[c.index] = 0;
        }
        const kept = keptKey();
        const key = JSON.stringify([z, controls, pad.x, pad.y, kept]);
        if (pad.bg && pad.bg.kind === "surface" && pad.bg.key === key) continue;
        pad.loading = true;
        pad.draw();
        const result = await postJSON("/api/surface", { z, controls, x: pad.x, y: pad.y, grid: SURFACE_GRID, key: kept });
        pad.loading = false;
        pad.setBackground("surface", { ...result, key });
      } else if (kind === "density" || kind === "datamean") {
        const key = `${pad.x},${pad.y}`;
        if (pad.bg && pad.bg.kind === kind && pad.bg.key === key) continue;
        if (!S.histograms) { pad.draw(); continue; }  // training data not loaded yet
        const result = await getJSON(`/api/distribution?x=${pad.x}&y=${pad.y}&bins=${DENSITY_BINS}`);
        pad.setBackground(kind, { ...result, key });
      } else {
        pad.draw();
      }
      clearError(`pad${pad.index}`);
    } catch (e) {
      pad.loading = false;
      pad.draw();
      showError(`pad${pad.index}`, `Pad ${pad.index + 1} background: ${e.message}`);
    }
  }
}

// -- seeds ----------------------------------------------------------------------------------------
// style: an uploaded file's tempo, time signature, instrument and track name (null for data seeds);
// context: the measures of the seed's piece (its key is the one "stay in key" keeps to).
function useSeed(tokens, label, style = null, context = null) {
  return busy(encodeSeed(tokens, label, style, context));
}

async function encodeSeed(tokens, label, style, context) {
  try {
    const r = await postJSON("/api/encode", { tokens, context, stay_in_key: $("stay-in-key").checked });
    S.seed = { tokens, notes: r.input.notes, attributes: r.input.attributes, z: r.z, controls: r.controls, label, style,
               key: r.key };
    showKey();
    S.z = r.z.slice();
    S.controls = r.controls ? r.controls.slice() : null;
    S.out = r.output;
    S.decodes += 1;
    document.body.dataset.decodes = String(S.decodes);
    document.body.dataset.seed = label;
    clearError("seed");
    renderSeed();
    renderOutput();
    showSliders();
    S.pads.forEach((p) => p.draw());
    renderPhrase();
    scheduleBackgrounds();
  } catch (e) {
    showError("seed", `Encoding the seed failed: ${e.message}`);
  }
}

function fillMeasures(select, list) {
  select.textContent = "";
  list.forEach(([v, text]) => {
    const o = document.createElement("option");
    o.value = String(v);
    o.textContent = text;
    select.append(o);
  });
  select.disabled = !list.length;
}

function pieceChanged(measure = 0) {
  const piece = S.pieces[Number($("piece-select").value)];
  if (!piece) return;
  fillMeasures($("measure-select"), piece.tokens.map((_, i) => [i, `measure ${i + 1}`]));
  $("measure-select").value = String(measure);
  measureChanged();
}

function measureChanged() {
  const p = Number($("piece-select").value);
  const m = Number($("measure-select").value);
  useSeed(S.pieces[p].tokens[m], `${S.pieces[p].title}, measure ${m + 1}`, null, S.pieces[p].tokens);
}

async function loadSeeds() {
  const seeds = await getJSON("/api/seeds");
  S.pieces = seeds.pieces;
  const sel = $("piece-select");
  fillMeasures(sel, S.pieces.map((p, i) => [i, `${p.title} (${p.tokens.length})`]));
  $("random-seed").disabled = !S.pieces.length;
  $("seed-source").textContent = seeds.name ? `Seeds: ${seeds.name}.` : "";
  if (S.pieces.length && !S.interacted && !S.seed) {
    // a first seed with some motion in it
    let best = [0, 0];
    outer: for (let p = 0; p < S.pieces.length; p++) {
      for (let m = 0; m < S.pieces[p].tokens.length; m++) {
        const onsets = S.pieces[p].tokens[m].filter((t) => t < S.model.vocabulary.rest_id).length;
        if (onsets >= 5) { best = [p, m]; break outer; }
      }
    }
    sel.value = String(best[0]);
    pieceChanged(best[1]);
  } else if (S.pieces.length) {
    fillMeasures($("measure-select"), S.pieces[0].tokens.map((_, i) => [i, `measure ${i + 1}`]));
  }
}

function upload(file) {
  return busy(uploadFile(file));
}

async function uploadFile(file) {
  const info = $("upload-info");
  if (file.size > S.model.max_upload_bytes) {
    showError("upload", `${file.name} is too large (limit ${Math.round(S.model.max_upload_bytes / 1024)} KiB)`);
    return;
  }
  info.textContent = `reading ${file.name}…`;
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const r = await (await request("/api/upload", { method: "POST", form, timeoutMs: 60000 })).json();
    S.upload = r;
    const skipped = Object.entries(r.skipped).map(([k, v]) => `${v} ${k.replace(/_/g, " ")}`).join(", ");
    const shift = typeof r.shift === "number" ? (r.shift ? `, transposed ${r.shift > 0 ? "+" : ""}${r.shift} semitones` : "") : ", each measure transposed to fit";
    const style = r.style ? ` at ${Math.round(r.style.qpm)} bpm${r.style.track_name ? ` ("${r.style.track_name}")` : ""}` : "";
    const held = r.quantisation && r.quantisation.lengthened_notes ? `, ${r.quantisation.lengthened_notes} notes held to the next note` : "";
    const q = r.quantisation && r.quantisation.notes
      ? `; played timing snapped to the grid (largest shift ${r.quantisation.max_error.toFixed(3)} beat${held})` : "";
    const named = r.title && r.title !== r.name ? `${r.title} (${r.name})` : r.name;
    info.textContent = `${named}: ${r.bar_numbers.length} usable 4/4 measure${r.bar_numbers.length > 1 ? "s" : ""}${style}${shift}${q}${skipped ? `; skipped: ${skipped}` : ""}.`;
    fillMeasures($("upload-measure"), r.bar_numbers.map((b, i) => [i, `bar ${b}`]));
    adoptTempo(r.style ? r.style.qpm : null);
    clearError("upload");
    uploadMeasureChanged();
  } catch (e) {
    info.textContent = "";
    showError("upload", `Upload: ${e.message}`);
  }
}

// An uploaded file's tempo (when the server reports one) becomes the page's: playback and MIDI
// downloads keep it.
function adoptTempo(value) {
  const input = $("qpm");
  if (typeof value !== "number" || !Number.isFinite(value)) return;
  input.value = String(Math.round(Math.max(Number(input.min), Math.min(Number(input.max), value))));
  document.body.dataset.uploadQpm = String(value);
  $("qpm-value").textContent = input.value;
}

function uploadMeasureChanged() {
  const i = Number($("upload-measure").value);
  useSeed(S.upload.measures.tokens[i], `${S.upload.title || S.upload.name}, bar ${S.upload.bar_numbers[i]}`,
          S.upload.style || null, S.upload.measures.tokens);
}

// -- sound and MIDI -------------------------------------------------------------------------------
function animate() {
  if (!player.playing) { S.playingWhat = null; renderSeed(); renderOutput(); renderPhrase(); return; }
  ({ seed: renderSeed, output: renderOutput, phrase: renderPhrase })[S.playingWhat]();
  requestAnimationFrame(animate);
}

function play(what, getNotes) {
  player.unlock();
  S.playingWhat = what;
  player.play(getNotes, qpm(), { loop: $("loop").checked && what !== "seed" });
  requestAnimationFrame(animate);
}
const playOutput = () => S.out && play("output", () => ({ notes: S.out.notes, beats: 4 }));

// The controls that made the current measure, for its MIDI marker: "z[2] note density = +1.5, ...".
function markerText() {
  const signed = (v) => { const t = (v >= 0 ? "+" : "") + v.toFixed(2); return t.endsWith("0") ? t.slice(0, -1) : t; };
  return S.model.controls.map((c, pos) => {
    const label = c.attribute_label || c.attribute;
    return `${c.name === c.attribute ? "" : `${c.name} `}${label} = ${signed(value(pos))}`;
  }).join(", ").slice(0, MAX_MARKER);
}

function saveMidi(measures, markers, fallback) {
  return busy(saveMidiFile(measures, markers, fallback));
}

async function saveMidiFile(measures, markers, fallback) {
  try {
    // music made from an uploaded file keeps its instrument and track name (its tempo: the tempo slider)
    const json = { tokens: measures, qpm: qpm(), markers };
    if (S.seed && S.seed.style) json.style = S.seed.style;
    await download(await request("/api/midi", { method: "POST", json }), fallback);
    clearError("midi");
  } catch (e) {
    showError("midi", `MIDI download failed: ${e.message}`);
  }
}

// -- data status ----------------------------------------------------------------------------------
async function pollStatus() {
  let status;
  try {
    status = await getJSON("/api/status");
  } catch (e) {
    showError("status", `Status: ${e.message}`);
    setTimeout(pollStatus, 3000);
    return;
  }
  clearError("status");
  const pill = $("data-status");
  pill.className = `pill ${status.state}`;
  if (status.state === "loading") {
    pill.textContent = "data: loading…";
    setTimeout(pollStatus, 1000);
    return;
  }
  if (status.state === "error") {
    pill.textContent = "data: unavailable";
    showError("data", `Seed and training data could not be loaded: ${status.error}`);
    return;
  }
  if (status.state === "none") { pill.textContent = "data: off"; return; }
  pill.textContent = `data: ${status.seeds} · ${status.train_measures} training measures`;
  try {
    if (S.model.source === "signatures") {  // control ranges were calibrated on the data
      S.model = await getJSON("/api/model");
      makeSliders();
      buildPads();
    }
    S.histograms = (await getJSON("/api/histograms")).histograms;
    showSliders();
    scheduleBackgrounds(0);
    await loadSeeds();
  } catch (e) {
    showError("data", `Loading seeds: ${e.message}`);
  }
}

// -- start ----------------------------------------------------------------------------------------
// What the researcher toggle changes beyond CSS: tooltips, the pads' options and axis names.
function researcherChanged(on) {
  $("random-z").title = on ? "Draw z from the prior N(0, I)" : "Let the model make up a new measure at random";
  if (!S.model) return;
  showAttributes();
  S.pads.forEach((p) => p.relabel());
}

function bind() {
  bindResearcherToggle($("researcher"), researcherChanged);
  $("qpm").addEventListener("input", () => { $("qpm-value").textContent = $("qpm").value; });
  $("tab-data").addEventListener("click", () => switchTab("data"));
  $("tab-upload").addEventListener("click", () => switchTab("upload"));
  $("piece-select").addEventListener("change", () => { S.interacted = true; pieceChanged(0); });
  $("measure-select").addEventListener("change", () => { S.interacted = true; measureChanged(); });
  $("random-seed").addEventListener("click", () => {
    S.interacted = true;
    const p = Math.floor(Math.random() * S.pieces.length);
    $("piece-select").value = String(p);
    pieceChanged(Math.floor(Math.random() * S.pieces[p].tokens.length));
  });
  $("upload-input").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
  $("upload-measure").addEventListener("change", uploadMeasureChanged);
  $("reset-seed").addEventListener("click", () => {
    if (!S.seed) return;
    S.z = S.seed.z.slice();
    S.controls = S.seed.controls ? S.seed.controls.slice() : null;
    moved(true);
  });
  $("random-z").addEventListener("click", () => {
    const randn = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
    S.z = S.z.map(randn);
    moved(true);
  });
  $("play-seed").addEventListener("click", () => S.seed && play("seed", () => ({ notes: S.seed.notes, beats: 4 })));
  $("play-output").addEventListener("click", playOutput);
  $("autoplay").addEventListener("change", () => player.unlock());
  $("stay-in-key").addEventListener("change", () => { S.playWhenSettled = true; decode(); });
  $("download-measure").addEventListener("click", () => S.out && saveMidi([S.out.tokens], [markerText()], "musicvae_measure.mid"));
  $("add-phrase").addEventListener("click", () => {
    if (!S.out || S.phrase.length >= MAX_PHRASE) return;
    S.phrase.push({ tokens: S.out.tokens.slice(), notes: S.out.notes, marker: markerText() });
    renderPhrase();
  });
  $("play-phrase").addEventListener("click", () => play("phrase", () => ({
    notes: S.phrase.flatMap((m, i) => m.notes.map((n) => ({ ...n, start: n.start + 4 * i, end: n.end + 4 * i }))),
    beats: 4 * S.phrase.length,
  })));
  $("download-phrase").addEventListener("click", () => saveMidi(S.phrase.map((m) => m.tokens), S.phrase.map((m) => m.marker), "musicvae_phrase.mid"));
  $("undo-phrase").addEventListener("click", () => { S.phrase.pop(); renderPhrase(); });
  $("clear-phrase").addEventListener("click", () => { S.phrase = []; renderPhrase(); });
  document.addEventListener("pointerdown", () => player.unlock(), { once: true });
  window.addEventListener("resize", () => { renderSeed(); renderOutput(); renderPhrase(); showSliders(); S.pads.forEach((p) => p.draw()); });
}

function switchTab(which) {
  for (const t of ["data", "upload"]) {
    $(`tab-${t}`).classList.toggle("active", t === which);
    $(`tab-${t}`).setAttribute("aria-selected", String(t === which));
    $(`panel-${t}`).classList.toggle("hidden", t !== which);
  }
}

async function start() {
  bind();
  try {
    S.model = await getJSON("/api/model");
  } catch (e) {
    showError("model", `The explorer server did not describe the model: ${e.message}`);
    return;
  }
  const m = S.model;
  $("upload-input").accept = (m.upload_types || []).join(",");  // the reader registry's upload-safe formats
  const internals = document.createElement("span");
  internals.className = "research-inline";
  internals.textContent = ["", m.version !== null && m.version !== undefined ? `v${m.version}` : "", m.model,
    `latent ${m.latent_dim}`, `${m.controls.length} controls`, m.backend,
    m.source === "signatures" ? "metadata inferred from signatures" : ""].filter((t, i) => !i || t).join(" · ");
  $("model-line").textContent = modelWords(m.model_name, m.genre);
  $("model-line").append(internals);
  renderGlossary($("attr-glossary"), m.attributes);
  S.z = new Array(m.latent_dim).fill(0);
  S.controls = m.needs_controls ? m.initial_controls.slice() : null;
  makeSliders();
  buildPads();
  showSliders();
  renderSeed();
  renderPhrase();
  showAttributes();
  showKey();
  await decode();  // the prior's mean, until a seed arrives
  document.body.dataset.ready = "1";
  pollStatus();
}

start();
