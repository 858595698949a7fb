// The attribute read-out table and the control sliders (with the training data's histogram under
// each one). Pure DOM/canvas code: the page's state comes in through the `view` argument:
//   view.model       /api/model (attributes carry their unit, scale and description: model_info.py)
//   view.value(pos), view.seedValue(pos)   a control's current and seed coordinate (seed: or null)
//   view.z           the latent code (free dims)
//   view.out         the last decoded measure (its "requested" values), or null
//   view.histograms  per-control training-data counts, or null
// Values are shown in the attribute's musical unit (raw value * scale); elements of class
// "research" (raw values, latent coordinates, fit R²) are shown only with "researcher details" on
// (wording.js).

import { fitCanvas } from "./pianoroll.js";
import { controlSuffix, researcher, span } from "./wording.js";

const raw = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(Math.abs(v) >= 10 ? 1 : 3));

// An attribute's raw value in its musical unit: "6.0" (number only) or "6.0 notes per bar" (withUnit).
export function shown(attr, v, withUnit = false) {
  if (v === null || v === undefined) return "—";
  const text = (Number(v) * attr.scale).toFixed(attr.decimals);
  return withUnit && attr.unit ? `${text} ${attr.unit}` : text;
}

// The unit line under an attribute's name: its unit, or "0..1 scale" (explained by the row's tooltip).
export function unitText(attr) {
  return attr.unit || `${attr.display_range[0]}..${attr.display_range[1]} scale`;
}

export function attributeOf(model, name) {
  return model.attributes.find((a) => a.name === name) || null;
}

function cell(className, text) {
  const td = document.createElement("td");
  td.className = className;
  td.textContent = text;
  return td;
}

// A value cell: the musical value, and the raw one under researcher details.
function valueCell(className, attr, v) {
  const td = cell(`num ${className}`, shown(attr, v));
  if (v !== null && v !== undefined) td.append(span("research rawnote", `raw ${raw(v)}`));
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
    const name = cell("attr-name", "");
    name.append(span("attr-label", a.label), span(a.unit ? "unit" : "unit scale", unitText(a)));
    if (a.hint) name.append(span("hint", a.hint));
    name.append(span("research rawnote", `raw: ${a.raw_unit}`));
    name.title = a.description;
    const tdReq = valueCell("requested", a, req ? req.value : null);
    if (req) {
      if (researcher()) {
        tdReq.title = req.r2 !== undefined
          ? `estimated from the control (${req.source}, R² = ${req.r2}: how closely this dim follows the attribute in the training data)`
          : `the value fed to the decoder (${req.source})`;
      } else {
        tdReq.title = req.r2 !== undefined
          ? "what the slider asks for: an estimate from how the model followed it on its training music"
          : "what the slider asks the model for";
      }
      tdReq.append(span("research fitnote", req.r2 !== undefined ? `fit R² ${req.r2.toFixed(2)}` : req.source));
    }
    const tdBar = cell("bar", "");
    const meter = document.createElement("div");
    meter.className = "meter";
    const [lo, hi] = a.display_range;
    const frac = (v) => `${Math.max(0, Math.min(1, (v * a.scale - lo) / (hi - lo))) * 100}%`;
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
    meter.title = `${a.label}: measured ${shown(a, measured, true)} (bar), requested ${req ? shown(a, req.value, true) : "—"} (orange mark); scale ${lo}..${hi}${a.unit ? ` ${a.unit}` : ""}`;
    tdBar.append(meter);
    tr.append(name, tdReq, valueCell("measured", a, measured), valueCell("seed", a, seed ? seed.attributes[k] : null), tdBar);
    tbody.append(tr);
  });
}

// A slider named labelText (researchText, e.g. " (z[2])", added in the researcher view).
function slider(labelText, researchText, min, max, step, dataset, onMove, help = "") {
  const wrap = document.createElement("div");
  wrap.className = "slider";
  const top = document.createElement("div");
  top.className = "top";
  const label = document.createElement("b");
  label.textContent = labelText;
  if (researchText) label.append(span("research-inline", researchText));
  if (help) wrap.title = help;
  const input = document.createElement("input");
  Object.assign(input, { type: "range", min, max, step });
  Object.assign(input.dataset, dataset);
  input.setAttribute("aria-label", labelText);
  input.addEventListener("input", () => onMove(Number(input.value), false));
  input.addEventListener("change", () => onMove(Number(input.value), true));
  const readout = document.createElement("span");
  readout.className = "readout";
  readout.append(document.createElement("output"), span("research coord", ""));
  top.append(label, readout);
  wrap.append(top, input);
  return wrap;
}

// Sliders for the controls and, in a <details>, for the latent dims no control covers.
// onControl(pos, value, final), onDim(dim, value, final): final = the pointer was released.
export function buildSliders(model, roots, onControl, onDim) {
  roots.sliders.textContent = "";
  model.controls.forEach((c, pos) => {
    const attr = attributeOf(model, c.attribute);
    const wrap = slider(c.attribute_label || c.label, controlSuffix(c), c.low, c.high, (c.high - c.low) / 400,
      { control: String(pos) }, (v, final) => onControl(pos, v, final), attr ? attr.description : "");
    const hist = document.createElement("canvas");
    hist.className = "hist";
    wrap.append(hist);
    roots.sliders.append(wrap);
  });
  roots.free.textContent = "";
  const used = new Set(model.controls.filter((c) => c.kind === "latent_dim").map((c) => c.index));
  const others = [...Array(model.latent_dim).keys()].filter((i) => !used.has(i));
  roots.freeBox.classList.toggle("hidden", !others.length);
  others.forEach((i, n) => {
    roots.free.append(slider(`free slider ${n + 1}`, ` (z[${i}])`, -4, 4, 0.02, { dim: String(i) },
      (v, final) => onDim(i, v, final), "Not tied to any attribute: it changes the melody in ways the model learnt on its own."));
  });
  const inputs = model.controls.some((c) => c.kind === "attribute_input");
  roots.kind.textContent = "";
  roots.kind.append(inputs
    ? "Each slider sets an attribute the model is asked to give the measure (the rest of the melody stays as it is)."
    : span("musician-only", "Each slider moves the measure towards more or less of the named attribute; beside it, " +
      "the value it asks for."));
  if (!inputs) {
    roots.kind.append(span("research-inline", "Each slider moves one dimension of the model's latent code that was " +
      "trained to follow the named attribute; beside it, the value it asks for (the fit's estimate)."));
  }
}

// What a control asks for, in the attribute's unit: its value for a decoder input, the fitted
// estimate (from the last decode) for a latent dim; "" when not known yet.
function asks(view, pos, v) {
  const c = view.model.controls[pos];
  const attr = attributeOf(view.model, c.attribute);
  if (!attr) return "";
  if (c.kind === "attribute_input") return shown(attr, v, true);
  const k = view.model.attributes.indexOf(attr);
  const req = view.out && view.out.requested ? view.out.requested[k] : null;
  return req ? `\u2248 ${shown(attr, req.value, true)}` : "";
}

// Moves the sliders to the state (except the one being dragged) and redraws their histograms.
export function syncSliders(roots, view) {
  roots.sliders.querySelectorAll(".slider").forEach((wrap, pos) => {
    const input = wrap.querySelector("input");
    const v = view.value(pos);
    const c = view.model.controls[pos];
    if (document.activeElement !== input) input.value = String(v);
    const musical = asks(view, pos, v);
    wrap.querySelector("output").textContent = musical || v.toFixed(2);
    wrap.querySelector(".coord").textContent = musical ? `${c.name} = ${v.toFixed(2)}` : "";
    drawHistogram(wrap.querySelector("canvas"), c, view.histograms && view.histograms[pos], v, view.seedValue(pos));
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
