// The attribute read-out table and the control sliders (with the training data's histogram under
// each one). Pure DOM/canvas code: the page's state comes in through the `view` argument:
//   view.model       /api/model
//   view.value(pos), view.seedValue(pos)   a control's current and seed coordinate (seed: or null)
//   view.z           the latent code (free dims)
//   view.histograms  per-control training-data counts, or null

import { fitCanvas } from "./pianoroll.js";

const num = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(Math.abs(v) >= 10 ? 1 : 3));

function cell(className, text) {
  const td = document.createElement("td");
  td.className = className;
  td.textContent = text;
  return td;
}

// One row per attribute: requested by the controls, measured on the output, measured on the seed.
export function renderAttributes(tbody, model, out, seed) {
  tbody.textContent = "";
  model.attributes.forEach((a, k) => {
    const tr = document.createElement("tr");
    tr.dataset.attribute = a.name;
    const req = out && out.requested ? out.requested[k] : null;
    const measured = out ? out.attributes[k] : null;
    const name = cell("", a.label);
    name.title = a.unit;
    const tdReq = cell("num requested", req ? num(req.value) : "—");
    if (req) tdReq.title = req.r2 !== undefined ? `${req.source} (R² = ${req.r2})` : req.source;
    if (req && req.r2 !== undefined) {
      const note = document.createElement("div");
      note.className = "fitnote";
      note.textContent = `fit R² ${req.r2.toFixed(2)}`;
      tdReq.append(note);
    }
    const tdBar = cell("bar", "");
    const meter = document.createElement("div");
    meter.className = "meter";
    const [lo, hi] = a.display_range;
    const frac = (v) => `${Math.max(0, Math.min(1, (v - lo) / (hi - lo))) * 100}%`;
    if (measured !== null) {
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = frac(measured);
      meter.append(fill);
    }
    if (req) {
      const target = document.createElement("div");
      target.className = "target";
      target.style.left = `calc(${frac(req.value)} - 1px)`;
      meter.append(target);
    }
    meter.title = `${a.label}: measured ${num(measured)}, requested ${req ? num(req.value) : "—"} (scale ${lo}..${hi})`;
    tdBar.append(meter);
    tr.append(name, tdReq, cell("num measured", num(measured)), cell("num seed", num(seed ? seed.attributes[k] : null)), tdBar);
    tbody.append(tr);
  });
}

function slider(labelText, min, max, step, dataset, onMove) {
  const wrap = document.createElement("div");
  wrap.className = "slider";
  const top = document.createElement("div");
  top.className = "top";
  const label = document.createElement("b");
  label.textContent = labelText;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min, max, step });
  Object.assign(input.dataset, dataset);
  input.setAttribute("aria-label", labelText);
  input.addEventListener("input", () => onMove(Number(input.value), false));
  input.addEventListener("change", () => onMove(Number(input.value), true));
  top.append(label, document.createElement("output"));
  wrap.append(top, input);
  return wrap;
}

// Sliders for the controls and, in a <details>, for the latent dims no control covers.
// onControl(pos, value, final), onDim(dim, value, final): final = the pointer was released.
export function buildSliders(model, roots, onControl, onDim) {
  roots.sliders.textContent = "";
  model.controls.forEach((c, pos) => {
    const wrap = slider(c.label, c.low, c.high, (c.high - c.low) / 400, { control: String(pos) },
      (v, final) => onControl(pos, v, final));
    const hist = document.createElement("canvas");
    hist.className = "hist";
    wrap.append(hist);
    roots.sliders.append(wrap);
  });
  roots.free.textContent = "";
  const used = new Set(model.controls.filter((c) => c.kind === "latent_dim").map((c) => c.index));
  const others = [...Array(model.latent_dim).keys()].filter((i) => !used.has(i));
  roots.freeBox.classList.toggle("hidden", !others.length);
  for (const i of others) {
    roots.free.append(slider(`z[${i}] (free)`, -4, 4, 0.02, { dim: String(i) }, (v, final) => onDim(i, v, final)));
  }
  const inputs = model.controls.some((c) => c.kind === "attribute_input");
  roots.kind.textContent = inputs
    ? "Each control is an attribute value fed to the decoder (the latent code stays fixed)."
    : "Each control is a regularised latent dimension, labelled with the attribute it was trained to follow.";
}

// Moves the sliders to the state (except the one being dragged) and redraws their histograms.
export function syncSliders(roots, view) {
  roots.sliders.querySelectorAll(".slider").forEach((wrap, pos) => {
    const input = wrap.querySelector("input");
    const v = view.value(pos);
    if (document.activeElement !== input) input.value = String(v);
    wrap.querySelector("output").textContent = v.toFixed(2);
    drawHistogram(wrap.querySelector("canvas"), view.model.controls[pos], view.histograms && view.histograms[pos],
      v, view.seedValue(pos));
  });
  roots.free.querySelectorAll(".slider").forEach((wrap) => {
    const input = wrap.querySelector("input");
    const v = view.z[Number(input.dataset.dim)];
    if (document.activeElement !== input) input.value = String(v);
    wrap.querySelector("output").textContent = v.toFixed(2);
  });
}

// Training-data histogram of a control under its slider, with the seed (grey) and current (orange) marks.
function drawHistogram(canvas, control, counts, current, seed) {
  const [w, h, ctx] = fitCanvas(canvas);
  ctx.clearRect(0, 0, w, h);
  const at = (v) => 8 + (v - control.low) / (control.high - control.low) * (w - 16);
  if (counts) {
    const max = Math.max(1, ...counts);
    const bw = (w - 16) / counts.length;
    ctx.fillStyle = "#c9d5f2";
    counts.forEach((n, i) => {
      const bh = Math.sqrt(n / max) * (h - 3);
      ctx.fillRect(8 + i * bw, h - bh, Math.max(1, bw - 1), bh);
    });
  }
  if (seed !== null) {
    ctx.fillStyle = "#4b5563";
    ctx.fillRect(at(seed) - 1, 0, 2, h);
  }
  ctx.fillStyle = "#e8590c";
  ctx.fillRect(Math.max(7, Math.min(w - 9, at(current) - 1)), 0, 2, h);
}
