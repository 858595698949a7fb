// XY pads: two controls at once, over a background that explains the plane: the attribute surface
// (what the decoder makes at each point, the rest of the state fixed) or where the training data lie.

import { fitCanvas } from "./pianoroll.js";
import { controlName } from "./wording.js";

const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
  [31, 158, 137], [53, 183, 121], [110, 206, 88], [181, 222, 43], [253, 231, 37]];
const BLUES = [[247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
  [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107]];

export const BACKGROUNDS = [
  ["none", "None"],
  ["surface", "Attribute surface (decoded)"],
  ["density", "Training data density"],
  ["datamean", "Training data, mean attribute"],
];

export function colormap(t, stops = VIRIDIS) {
  t = Math.max(0, Math.min(1, Number.isFinite(t) ? t : 0)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(t));
  const f = t - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

// " (semitones)", or " (0..1 scale)" for a score (attributes' units come from /api/model).
const unitOf = (attr) => ` (${attr.unit || `${attr.display_range[0]}..${attr.display_range[1]} scale`})`;
const fmt = (v) => (Math.abs(v) >= 10 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(2));

function select(labelText, options, value) {
  const label = document.createElement("label");
  const text = document.createElement("span");
  text.textContent = labelText;
  label.append(text);
  const el = document.createElement("select");
  for (const [v, text] of options) {
    const o = document.createElement("option");
    o.value = String(v);
    o.textContent = text;
    el.append(o);
  }
  el.value = String(value);
  label.append(el);
  return [label, el];
}

export class Pad {
  // model: /api/model; pair: [x, y] control positions; background: initial background kind;
  // handlers: value(pos), seedValue(pos) (or null), move(x, y, xValue, yValue, final), changed(pad).
  constructor(container, model, index, pair, background, handlers) {
    this.model = model;
    this.index = index;
    this.handlers = handlers;
    this.x = pair[0];
    this.y = pair[1];
    this.bg = null;
    this.loading = false;
    const controlOptions = model.controls.map((c, i) => [i, controlName(c)]);
    const attrOptions = model.attributes.map((a, i) => [i, a.label]);

    this.el = document.createElement("div");
    this.el.className = "pad";
    this.el.dataset.pad = String(index);
    const head = document.createElement("div");
    head.className = "pad-head";
    const [lx, sx] = select("x", controlOptions, this.x);
    const [ly, sy] = select("y", controlOptions, this.y);
    const [lb, sb] = select("background", BACKGROUNDS, background);
    const [lc, sc] = select("colour by", attrOptions, this.defaultAttribute());
    Object.assign(this, { selX: sx, selY: sy, selBg: sb, selAttr: sc });
    sb.classList.add("pad-background");
    head.append(lx, ly, lb, lc);
    this.canvas = document.createElement("canvas");
    this.canvas.className = "pad-canvas";
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("aria-label", "XY pad: drag, or use the arrow keys");
    const scale = document.createElement("div");
    scale.className = "scale";
    this.scaleText = document.createElement("span");
    this.scaleText.className = "scale-text";
    this.scaleBar = document.createElement("canvas");
    this.scaleMin = document.createElement("span");
    this.scaleMax = document.createElement("span");
    scale.append(this.scaleText, this.scaleMin, this.scaleBar, this.scaleMax);
    this.el.append(head, this.canvas, scale);
    container.append(this.el);

    const changed = () => {
      this.x = Number(sx.value);
      this.y = Number(sy.value);
      this.bg = null;
      this.handlers.changed(this);
      this.draw();
    };
    sx.addEventListener("change", () => { sc.value = String(this.defaultAttribute()); changed(); });
    sy.addEventListener("change", changed);
    sb.addEventListener("change", changed);
    sc.addEventListener("change", () => { this.draw(); });
    this.bindPointer();
  }

  // Names the controls anew (in the options and on the axes) after the researcher toggle changed.
  relabel() {
    for (const sel of [this.selX, this.selY]) {
      [...sel.options].forEach((o, i) => { o.textContent = controlName(this.model.controls[i]); });
    }
    this.draw();
  }

  get background() { return this.selBg.value; }
  get attribute() { return Number(this.selAttr.value); }

  defaultAttribute() {
    const name = this.model.controls[this.x].attribute;
    return Math.max(0, this.model.attributes.findIndex((a) => a.name === name));
  }

  setBackground(kind, payload) {
    this.bg = { kind, ...payload };
    this.draw();
  }

  geometry() {
    const [w, h, ctx] = fitCanvas(this.canvas);
    const box = { left: 38, top: 8, right: w - 8, bottom: h - 30 };
    box.w = box.right - box.left;
    box.h = box.bottom - box.top;
    return { w, h, ctx, box };
  }

  toPixel(box, xv, yv) {
    const cx = this.model.controls[this.x];
    const cy = this.model.controls[this.y];
    return [box.left + (xv - cx.low) / (cx.high - cx.low) * box.w,
      box.bottom - (yv - cy.low) / (cy.high - cy.low) * box.h];
  }

  bindPointer() {
    let down = false;
    const at = (e, final) => {
      const rect = this.canvas.getBoundingClientRect();
      const { box } = this.geometry();
      const fx = Math.max(0, Math.min(1, (e.clientX - rect.left - box.left) / box.w));
      const fy = Math.max(0, Math.min(1, (box.bottom - (e.clientY - rect.top)) / box.h));
      const cx = this.model.controls[this.x];
      const cy = this.model.controls[this.y];
      this.handlers.move(this.x, this.y, cx.low + fx * (cx.high - cx.low), cy.low + fy * (cy.high - cy.low), final);
    };
    this.canvas.addEventListener("pointerdown", (e) => {
      down = true;
      this.canvas.setPointerCapture(e.pointerId);
      at(e, false);
    });
    this.canvas.addEventListener("pointermove", (e) => { if (down) at(e, false); });
    const up = (e) => { if (down) { down = false; at(e, true); } };
    this.canvas.addEventListener("pointerup", up);
    this.canvas.addEventListener("pointercancel", up);
    this.canvas.addEventListener("keydown", (e) => {
      const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[e.key];
      if (!step) return;
      e.preventDefault();
      const cx = this.model.controls[this.x];
      const cy = this.model.controls[this.y];
      const clamp = (v, c) => Math.max(c.low, Math.min(c.high, v));
      this.handlers.move(this.x, this.y, clamp(this.handlers.value(this.x) + step[0] * (cx.high - cx.low) / 40, cx),
        clamp(this.handlers.value(this.y) + step[1] * (cy.high - cy.low) / 40, cy), true);
    });
  }

  // The grid to paint: {values [rows][cols] (row 0 = lowest y), vmin, vmax, stops, smooth, text}.
  layer() {
    const bg = this.bg;
    if (!bg || bg.kind !== this.background) return null;
    const k = this.attribute;
    const attr = this.model.attributes[k];
    if (bg.kind === "surface") {
      const values = bg.attributes.map((row) => row.map((cell) => cell[k] * attr.scale));
      const [vmin, vmax] = attr.display_range;
      return { values, vmin, vmax, stops: VIRIDIS, smooth: false, text: `${attr.label}${unitOf(attr)} of the decoded measure` };
    }
    if (bg.kind === "density") {
      const values = bg.counts.map((row) => row.map((c) => Math.log1p(c)));
      const vmax = Math.max(1e-9, ...values.flat());
      return { values, vmin: 0, vmax, stops: BLUES, smooth: false, text: `training measures (${bg.total}, log scale)`,
        labels: ["0", String(Math.max(...bg.counts.flat()))] };
    }
    if (bg.kind === "datamean") {
      const values = bg.mean_attributes.map((row) => row.map((cell) => (cell ? cell[k] * attr.scale : null)));
      const [vmin, vmax] = attr.display_range;
      return { values, vmin, vmax, stops: VIRIDIS, smooth: false, text: `mean ${attr.label}${unitOf(attr)} of training measures` };
    }
    return null;
  }

  draw() {
    const { w, h, ctx, box } = this.geometry();
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    const layer = this.layer();
    if (layer) {
      const rows = layer.values.length;
      const cols = layer.values[0].length;
      const img = document.createElement("canvas");
      img.width = cols;
      img.height = rows;
      const ictx = img.getContext("2d");
      const data = ictx.createImageData(cols, rows);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const v = layer.values[r][c];
          const o = ((rows - 1 - r) * cols + c) * 4;  // row 0 is the lowest y: draw it at the bottom
          if (v === null || v === undefined) { data.data[o + 3] = 0; continue; }
          const [R, G, B] = colormap((v - layer.vmin) / (layer.vmax - layer.vmin || 1), layer.stops);
          data.data.set([R, G, B, 235], o);
        }
      }
      ictx.putImageData(data, 0, 0);
      ctx.imageSmoothingEnabled = layer.smooth;
      ctx.drawImage(img, box.left, box.top, box.w, box.h);
      ctx.imageSmoothingEnabled = true;
    } else {
      ctx.fillStyle = "#f6f8fb";
      ctx.fillRect(box.left, box.top, box.w, box.h);
    }
    this.drawScale(layer);
    // grid and axes
    ctx.strokeStyle = layer ? "rgba(255,255,255,0.35)" : "#e3e7ef";
    ctx.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      ctx.beginPath();
      ctx.moveTo(box.left + box.w * i / 4, box.top);
      ctx.lineTo(box.left + box.w * i / 4, box.bottom);
      ctx.moveTo(box.left, box.top + box.h * i / 4);
      ctx.lineTo(box.right, box.top + box.h * i / 4);
      ctx.stroke();
    }
    ctx.strokeStyle = "#9aa3b5";
    ctx.strokeRect(box.left + 0.5, box.top + 0.5, box.w - 1, box.h - 1);
    const cx = this.model.controls[this.x];
    const cy = this.model.controls[this.y];
    ctx.fillStyle = "#5d6679";
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText(fmt(cx.low), box.left, box.bottom + 3);
    ctx.textAlign = "right";
    ctx.fillText(fmt(cx.high), box.right, box.bottom + 3);
    ctx.textAlign = "center";
    ctx.fillStyle = "#2b3345";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText(`x: ${controlName(cx)}`, box.left + box.w / 2, box.bottom + 15);
    this.canvas.setAttribute("aria-label", `XY pad, x: ${controlName(cx)}, y: ${controlName(cy)}; drag, or use the arrow keys`);
    ctx.save();
    ctx.translate(12, box.top + box.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(`y: ${controlName(cy)}`, 0, -6);
    ctx.restore();
    ctx.fillStyle = "#5d6679";
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "bottom";
    ctx.fillText(fmt(cy.high), box.left - 3, box.top + 10);
    ctx.textBaseline = "bottom";
    ctx.fillText(fmt(cy.low), box.left - 3, box.bottom);
    if (this.loading) {
      ctx.fillStyle = "rgba(255,255,255,0.75)";
      ctx.fillRect(box.left + 6, box.top + 6, 72, 18);
      ctx.fillStyle = "#2b3345";
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      ctx.fillText("computing…", box.left + 11, box.top + 15);
    }
    // the seed's own point, then the current one
    const seedX = this.handlers.seedValue(this.x);
    const seedY = this.handlers.seedValue(this.y);
    if (seedX !== null && seedY !== null) {
      const [px, py] = this.toPixel(box, seedX, seedY);
      ctx.strokeStyle = "rgba(255,255,255,0.95)";
      ctx.lineWidth = 3;
      ctx.strokeRect(px - 4.5, py - 4.5, 9, 9);
      ctx.strokeStyle = "#3b4457";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(px - 4.5, py - 4.5, 9, 9);
    }
    const [px, py] = this.toPixel(box, this.handlers.value(this.x), this.handlers.value(this.y));
    const clampX = Math.max(box.left, Math.min(box.right, px));
    const clampY = Math.max(box.top, Math.min(box.bottom, py));
    ctx.beginPath();
    ctx.arc(clampX, clampY, 7.5, 0, 2 * Math.PI);
    ctx.fillStyle = "#ffffff";
    ctx.fill();
    ctx.lineWidth = 2.5;
    ctx.strokeStyle = "#e8590c";
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(clampX, clampY, 2.5, 0, 2 * Math.PI);
    ctx.fillStyle = "#e8590c";
    ctx.fill();
  }

  drawScale(layer) {
    const bar = this.scaleBar;
    bar.parentElement.classList.toggle("hidden", !layer);
    if (!layer) return;
    const [w, h, ctx] = fitCanvas(bar);
    for (let i = 0; i < w; i++) {
      const [R, G, B] = colormap(i / (w - 1), layer.stops);
      ctx.fillStyle = `rgb(${R},${G},${B})`;
      ctx.fillRect(i, 0, 1, h);
    }
    this.scaleText.textContent = layer.text;
    const labels = layer.labels || [fmt(layer.vmin), fmt(layer.vmax)];
    this.scaleMin.textContent = labels[0];
    this.scaleMax.textContent = labels[1];
  }
}
