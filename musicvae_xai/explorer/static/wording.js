// Musician and researcher wording, shared by the server's page and the static site.
// A musician sees attribute names, musical units and plain words; the "researcher details" toggle
// (body.researcher) adds the model's internals: latent coordinates (z[i]), raw values, fit R², the
// model's architecture and where it runs. Elements of class "research" / "research-inline" are shown
// only with it on, those of class "musician-only" only with it off.

const KEY = "musicvae-explorer-researcher";

export const researcher = () => document.body.classList.contains("researcher");

// Binds the toggle (a checkbox), restoring its last state in this browser; onChange(on) runs after
// each change (and once at the start) so that text drawn by scripts (canvases, options) follows it.
export function bindResearcherToggle(checkbox, onChange = () => {}) {
  const set = (on) => {
    document.body.classList.toggle("researcher", on);
    checkbox.checked = on;
    try { localStorage.setItem(KEY, on ? "1" : "0"); } catch (_) { /* private mode */ }
    onChange(on);
  };
  let remembered = false;
  try { remembered = localStorage.getItem(KEY) === "1"; } catch (_) { /* private mode */ }
  set(remembered);
  checkbox.addEventListener("change", () => set(checkbox.checked));
}

// A control's name: its attribute ("note density"), with its latent coordinate ("note density (z[2])")
// in the researcher view. control: a Control's page_dict (label, attribute_label).
export function controlName(control, research = researcher()) {
  return research ? control.label : control.attribute_label || control.label;
}

// The rest of a control's researcher label after its attribute name: " (z[2])", or "".
export function controlSuffix(control) {
  const name = control.attribute_label || control.label;
  return control.label.startsWith(name) ? control.label.slice(name.length) : "";
}

// <span class=className>text</span>
export function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

// Fills a <dl> with what each attribute means: [{label, description}].
export function renderGlossary(dl, attributes) {
  dl.textContent = "";
  for (const a of attributes) {
    const dt = document.createElement("dt");
    dt.textContent = a.label;
    const dd = document.createElement("dd");
    dd.textContent = a.description;
    dl.append(dt, dd);
  }
}

// The model in a musician's words: "measure_vae_irish, trained on Irish dance tunes".
export function modelWords(name, genre) {
  return `${name || "a model"}${genre ? `, trained on ${genre}` : ""}`;
}
