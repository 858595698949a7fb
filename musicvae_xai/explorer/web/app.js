// The static explorer page: load the model (model.json + weights.bin) into TensorFlow.js, pick bars of
// an example tune or of a dropped MIDI/MusicXML file, move attribute sliders (each move decodes the bar
// again, in this page), play the phrase (Web Audio) and download it as MIDI.
// window.staticExplorer exposes the model and the slider-to-decoded-bar latencies for tests and the bench.

import { Player } from "./audio.js";
import { compute as measureAttributes } from "./attributes.js";
import { ReadError, tokensToNotes } from "./grid.js";
import { allowedTokens, estimateKey } from "./keys.js";
import { MAX_UPLOAD_BYTES, readMidi, writeMidi } from "./midifile.js";
import { readMusicXml } from "./musicxml.js";
import { MAX_XML_BYTES, mxlDocument } from "./mxl.js";
import { loadModel } from "./musicvae.js";
import { drawRoll } from "./pianoroll.js";
import { bindResearcherToggle, modelWords, renderGlossary, span } from "./wording.js";

const $ = (id) => document.getElementById(id);
const player = new Player();
const view = {model: null, sources: [], source: 0, bar: 0, states: [], outputs: [], style: null, key: null};
const api = {model: null, latencies: [], ready: false, view};
window.staticExplorer = api;

function say(text, isError = false) {
  const el = $("message");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function presentation(name) {
  return view.model.meta.attributes.presentation[name] || {unit: "", scale: 1, decimals: 3};
}

function shown(name, value) {
  const p = presentation(name);
  return value === null || value === undefined ? "–" : (value * p.scale).toFixed(p.decimals);
}

function label(name) { return view.model.meta.attributes.labels[name] || name; }

function option(select, value, text) {
  const o = document.createElement("option");
  o.value = String(value);
  o.textContent = text;
  select.appendChild(o);
}

// -- sources and bars ------------------------------------------------------------------------------
function fillSources() {
  const select = $("source-select");
  select.replaceChildren();
  view.sources.forEach((s, i) => option(select, i, s.title));
  select.value = String(view.source);
}

function openSource(index) {
  const model = view.model;
  view.source = index;
  const source = view.sources[index];
  const enc = model.encode(source.tokens);
  view.states = source.tokens.map((_, i) => {
    const z = enc.zMean[i], controls = model.needsControls ? enc.attributes[i] : null;
    return {z: z.slice(), controls: controls && controls.slice(), base: {z, controls}, input: enc.attributes[i]};
  });
  view.outputs = new Array(source.tokens.length).fill(null);
  view.key = estimateKey(source.tokens, model.vocabulary, model.meta.keys);  // "stay in key" keeps to it
  $("key-name").textContent = view.key ? `(${view.key.name})` : "(no notes)";
  $("stay-in-key").disabled = !view.key;
  for (const id of ["bar-select", "phrase-from", "phrase-to"]) {
    const select = $(id);
    select.replaceChildren();
    source.bar_numbers.forEach((b, i) => option(select, i, `bar ${b}`));
  }
  $("phrase-to").value = String(Math.min(source.tokens.length, 4) - 1);
  if (source.style) $("qpm").value = String(Math.round(source.style.qpm));
  fillSources();
  const startId = model.vocabulary.start_id;  // open on the first full bar, past a pickup
  selectBar(Math.max(0, source.tokens.findIndex((row) => row[0] !== startId)));
}

function selectBar(i) {
  view.bar = i;
  $("bar-select").value = String(i);
  const source = view.sources[view.source];
  drawRoll($("input-roll"), {measures: [{notes: tokensToNotes([source.tokens[i]], view.model.vocabulary)}], range: pitchRange()});
  syncSliders();
  decodeBar();
}

function pitchRange() { return [view.model.vocabulary.min_pitch, view.model.vocabulary.max_pitch]; }

// -- sliders ---------------------------------------------------------------------------------------
function controlValue(state, c) { return c.kind === "latent_dim" ? state.z[c.index] : state.controls[c.index]; }

function buildSliders() {
  const root = $("sliders");
  root.replaceChildren();
  view.model.controls.forEach((c, pos) => {
    const p = presentation(c.attribute);
    const wrap = document.createElement("div");
    wrap.className = "slider";
    const id = `control-${pos}`;
    const text = document.createElement("label");
    text.htmlFor = id;
    text.textContent = label(c.attribute);  // the latent coordinate behind it in the researcher view
    if (c.kind === "latent_dim") text.append(span("research-inline", ` (latent ${c.name})`));
    else if (p.unit) text.append(` (${p.unit})`);
    text.title = p.description || "";
    const value = document.createElement("span");
    value.className = "value";
    value.id = `${id}-value`;
    text.appendChild(value);
    const input = document.createElement("input");
    Object.assign(input, {type: "range", id, min: String(c.low), max: String(c.high), step: String((c.high - c.low) / 200)});
    input.dataset.control = String(pos);
    input.setAttribute("aria-describedby", `${id}-value`);
    input.addEventListener("input", () => {
      const t0 = performance.now();
      const state = view.states[view.bar];
      (c.kind === "latent_dim" ? state.z : state.controls)[c.index] = Number(input.value);
      decodeBar();
      api.latencies.push(performance.now() - t0);
    });
    wrap.append(text, input);
    root.appendChild(wrap);
  });
}

function syncSliders() {
  const state = view.states[view.bar];
  view.model.controls.forEach((c, pos) => { $(`control-${pos}`).value = String(controlValue(state, c)); });
}

// -- decoding and read-outs ------------------------------------------------------------------------
// The tokens decoding may choose: those of the source's key while "stay in key" is ticked, else null (any).
function allowed() {
  return $("stay-in-key").checked && view.key ? allowedTokens(view.key, view.model.vocabulary) : null;
}

function decodeBar() {
  const model = view.model, state = view.states[view.bar];
  const tokens = model.decode([state.z], state.controls ? [state.controls] : null, false, allowed()).tokens[0];
  view.outputs[view.bar] = tokens;
  const attrs = measureAttributes(tokens, model.vocabulary, model.attributeNames);
  const canvas = $("output-roll");
  canvas.dataset.tokens = tokens.join(",");
  drawRoll(canvas, {measures: [{notes: tokensToNotes([tokens], model.vocabulary)}], range: pitchRange()});
  const body = $("attr-table").querySelector("tbody");
  body.replaceChildren();
  model.attributeNames.forEach((name, k) => {
    const row = document.createElement("tr");
    const p = presentation(name);
    for (const text of [label(name), shown(name, state.input[k]), shown(name, attrs[k]), p.unit || "0..1 scale"]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.appendChild(td);
    }
    row.dataset.attribute = name;
    row.firstChild.title = p.description || "";
    if (!p.unit && p.hint) row.lastChild.append(span("hint", p.hint));
    body.appendChild(row);
  });
  model.controls.forEach((c, pos) => {
    const k = model.attributeNames.indexOf(c.attribute);
    const out = $(`control-${pos}-value`);
    const decoded = `decoded ${shown(c.attribute, attrs[k])} ${presentation(c.attribute).unit}`.trimEnd();
    if (c.kind === "latent_dim") {
      out.replaceChildren(" ", span("research-inline", `z = ${state.z[c.index].toFixed(2)}, `), decoded);
    } else {
      out.textContent = ` asked ${shown(c.attribute, state.controls[c.index])}, ${decoded}`;
    }
  });
}

// The decoded phrase: token rows of the chosen bars (bars never decoded are decoded now, in one batch).
function phrase() {
  const from = Number($("phrase-from").value), to = Number($("phrase-to").value);
  const [lo, hi] = from <= to ? [from, to] : [to, from];
  const missing = [];
  for (let i = lo; i <= hi; i++) if (!view.outputs[i]) missing.push(i);
  if (missing.length) {
    const st = missing.map((i) => view.states[i]);
    const out = view.model.decode(st.map((s) => s.z), view.model.needsControls ? st.map((s) => s.controls) : null, false,
                                  allowed()).tokens;
    missing.forEach((i, j) => { view.outputs[i] = out[j]; });
  }
  return view.outputs.slice(lo, hi + 1);
}

function qpm() {
  const v = Number($("qpm").value);
  return Number.isFinite(v) ? Math.min(300, Math.max(20, v)) : 110;
}

function play() {
  const rows = phrase();
  player.play(() => ({notes: tokensToNotes(rows, view.model.vocabulary), beats: 4 * rows.length}), qpm());
  say(`playing ${rows.length} bar${rows.length === 1 ? "" : "s"}`);
}

function download() {
  const rows = phrase();
  const source = view.sources[view.source];
  const style = {...(source.style || {program: 0, track_name: ""}), qpm: qpm()};
  const bytes = writeMidi(rows, view.model.vocabulary, style);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], {type: "audio/midi"}));
  link.download = rows.length === 1 ? "musicvae_measure.mid" : `musicvae_phrase_${rows.length}_measures.mid`;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// -- uploads ---------------------------------------------------------------------------------------
async function upload(file) {
  if (!file) return;
  const name = file.name.replace(/[\\/]/g, "_").slice(0, 120) || "upload";
  const ext = name.toLowerCase().split(".").pop();
  try {
    const bytes = await file.arrayBuffer();
    const cutTime = !!view.model.config.allow_cut_time;
    let read;
    if (ext === "mid" || ext === "midi") read = readMidi(name, bytes, view.model.vocabulary, cutTime);
    else if (ext === "xml" || ext === "musicxml") read = readMusicXml(name, bytes, view.model.vocabulary, cutTime);
    else if (ext === "mxl") {
      if (bytes.byteLength > MAX_UPLOAD_BYTES) throw new ReadError(`the file is too large (limit ${MAX_UPLOAD_BYTES / 1024} KiB)`);
      read = readMusicXml(name, await mxlDocument(bytes), view.model.vocabulary, cutTime, MAX_XML_BYTES);
    } else throw new ReadError(`unsupported file type .${ext}; drop a MIDI (.mid, .midi) or MusicXML (.xml, .musicxml, .mxl) file`);
    view.sources = view.sources.filter((s) => !s.upload);
    view.sources.push({...read, title: `${read.title || name} (uploaded)`, upload: true});
    openSource(view.sources.length - 1);
    const skipped = Object.values(read.skipped).reduce((a, b) => a + b, 0);
    say(`${name}: ${read.tokens.length} bar${read.tokens.length === 1 ? "" : "s"} read` + (skipped ? `, ${skipped} skipped` : "")
      + (read.shift && read.shift !== "per measure" ? `, moved ${read.shift} semitones` : ""));
  } catch (e) {
    const text = e instanceof ReadError ? e.message : `not a readable file (${e.message || e})`;
    say(text.startsWith(`${name}: `) ? text : `${name}: ${text}`, true);
  }
}

function wire() {
  $("source-select").addEventListener("change", (e) => openSource(Number(e.target.value)));
  $("bar-select").addEventListener("change", (e) => selectBar(Number(e.target.value)));
  $("reset").addEventListener("click", () => {
    const s = view.states[view.bar];
    s.z = s.base.z.slice();
    s.controls = s.base.controls && s.base.controls.slice();
    syncSliders();
    decodeBar();
  });
  $("stay-in-key").addEventListener("change", () => {
    view.outputs = view.outputs.map(() => null);  // decoded again, in or out of key
    decodeBar();
  });
  $("play").addEventListener("click", play);
  $("stop").addEventListener("click", () => player.stop());
  $("download").addEventListener("click", download);
  const input = $("file"), drop = $("drop");
  input.addEventListener("change", () => upload(input.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); upload(e.dataTransfer.files[0]); });
}

// TensorFlow.js' WebAssembly backend (vendor/*.wasm, single-threaded: a static host sends no
// cross-origin-isolation headers), else its plain JavaScript CPU backend; ?backend=cpu|wasm forces one.
async function chooseBackend() {
  const tf = window.tf;
  const wanted = new URLSearchParams(window.location.search).get("backend");
  if (wanted !== "cpu") {
    try {
      tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
      tf.wasm.setWasmPaths(new URL("vendor/", window.location.href).href);
      if (await tf.setBackend("wasm")) { await tf.ready(); return "wasm"; }
    } catch (e) {
      if (wanted === "wasm") throw e;
    }
  }
  await tf.setBackend("cpu");
  await tf.ready();
  return "cpu";
}

async function start() {
  bindResearcherToggle($("researcher"));
  try {
    api.backend = await chooseBackend();
    const model = await loadModel("./");
    view.model = api.model = model;
    const m = model.meta;
    $("model-line").replaceChildren(modelWords(m.model_name || m.model, m.genre), span("research-inline",
      ` · ${m.model === "adversarial_vae" ? "adversarial VAE" : "MeasureVAE"}, latent size ${model.latentDim}, `
      + `dataset ${m.config.dataset || "?"}, running in this page with TensorFlow.js (${api.backend} backend)`));
    renderGlossary($("attr-glossary"), model.attributeNames.map((n) => ({label: label(n), description: presentation(n).description || ""})));
    view.sources = m.examples.map((e) => ({...e, title: `example: ${e.title}`, style: null}));
    buildSliders();
    wire();
    if (view.sources.length) openSource(0);
    api.ready = true;
    api.readyAt = performance.now();  // ms since the navigation started
    document.body.dataset.ready = "1";
    say("ready: move a slider, or drop a file of your own");
  } catch (e) {
    say(`the model could not be loaded: ${e.message || e}`, true);
  }
}

start();
