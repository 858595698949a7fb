"""The analysis of a trained run: every figure of docs/METHOD.md section 7, the traversals as MIDI, an index page.

    manifest = run_analysis("runs/quickstart", "analysis_out", AnalysisOptions(seed=0))

writes into the output folder

* ``traversal_<attribute>.png`` per control: the measures decoded along the control from one input
  measure, as piano rolls, with the measured attribute beneath (and its mean over other measures);
* ``midi/traversal_<attribute>.mid`` (input measure, then every step, back to back) and
  ``midi/<attribute>/step_NN_<value>.mid`` (one file per step);
* ``surface_<a>__<b>.png`` per pair of controls: attributes of the measures decoded on a grid;
* ``data_distribution.png``: encoded training measures in the plane of each pair of controls;
* ``regularised_vs_free.png``: each regularised latent dim against a free dim, coloured by attribute
  (only where controls are latent dims and a free dim exists; the index says why otherwise);
* ``index.html`` showing every figure with its caption, and ``figures.json`` listing them.
"""

from __future__ import annotations

import html
import itertools
import json
import os
from typing import Optional

import numpy as np

from musicvae_xai import inference
from musicvae_xai.analysis import figures
from musicvae_xai.attributes import attribute_label, label_and_unit
from musicvae_xai.config import AnalysisError, AnalysisOptions
from musicvae_xai.explain import Encoding, Explainer, traversal_markers


def prepare_output_dir(output_dir: str) -> str:
    """Creates ``output_dir`` (and ``midi/`` in it); AnalysisError, one line, if it cannot be."""
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise AnalysisError(f"output_dir {output_dir} exists and is a file, not a folder")
    try:
        os.makedirs(os.path.join(output_dir, "midi"), exist_ok=True)
    except OSError as e:
        raise AnalysisError(f"output_dir {output_dir}: cannot create it ({e.strerror or e})") from None
    return output_dir


def run_analysis(run_dir: str, output_dir: str, options: Optional[AnalysisOptions] = None,
                 explainer: Optional[Explainer] = None) -> dict:
    """Loads the run and writes every figure, MIDI file and the index into ``output_dir``. With
    ``explainer`` (e.g. ``Explainer.pretrained()``), that model is analysed and ``run_dir`` only names it.

    Returns the manifest also written as ``figures.json``: {"run_dir", "figures": [{"file", "title",
    "caption", "kind"}], "skipped": [{"title", "reason"}], "midi": [paths relative to output_dir]}.
    """
    options = (options or AnalysisOptions()).validate()
    output_dir = prepare_output_dir(output_dir)
    if explainer is None:
        explainer = Explainer.from_run_dir(run_dir, expect_finished=options.expect_finished,
                                           batch_size=options.batch_size)
    analysis = _Analysis(explainer, output_dir, options)
    manifest = analysis.run()
    manifest["run_dir"] = os.fspath(run_dir)
    with open(os.path.join(output_dir, "figures.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    write_index(os.path.join(output_dir, "index.html"), manifest, explainer.config)
    return manifest


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text).strip("_")




def pick_measure(tokens: np.ndarray, vocab, seed: int) -> int:
    """Index of a measure to traverse from: drawn with ``seed`` among those with at least 4 onsets and
    no start/end padding (any measure when none qualifies)."""
    onsets = vocab.is_pitch(tokens).sum(axis=1)
    padded = np.isin(tokens, [vocab.start_id, vocab.end_id]).any(axis=1)
    good = np.flatnonzero((onsets >= 4) & ~padded)
    pool = good if len(good) else np.arange(len(tokens))
    return int(np.random.default_rng(seed).choice(pool))


class _Analysis:
    def __init__(self, explainer: Explainer, output_dir: str, options: AnalysisOptions):
        self.ex = explainer
        self.out = output_dir
        self.opt = options
        self.config = explainer.config
        self.controls = explainer.controls
        self.figures: list = []
        self.skipped: list = []
        self.midi: list = []

    # -- data --------------------------------------------------------------------------------------
    def _split(self, split: str) -> np.ndarray:
        return inference.split_tokens(self.config, split, self.opt.cache_dir, self.opt.data_root)

    def _add(self, file: str, title: str, caption: str, kind: str) -> None:
        self.figures.append({"file": file, "title": title, "caption": caption, "kind": kind})

    def _skip(self, title: str, reason: str) -> None:
        self.skipped.append({"title": title, "reason": reason})

    def run(self) -> dict:
        opt = self.opt
        test = self._split(opt.split)
        if not len(test) and opt.input_file is None:
            raise AnalysisError(f"the {opt.split} split of dataset {self.config.dataset} has no measures")
        if opt.input_file is not None:
            numbers = None if opt.input_bar_number is None else [opt.input_bar_number]
            start = self.ex.encode_file(opt.input_file, bar_numbers=numbers)
            start = Encoding(start.tokens[:1], start.z[:1], start.z_mean[:1], start.z_scale[:1],
                             None if start.controls is None else start.controls[:1], start.source)
            bar = int(start.source.bar_numbers[0])
            origin = f"bar {bar} of {os.path.basename(opt.input_file)}"
        else:
            i = pick_measure(test, self.ex.vocabulary, opt.seed)
            start = self.ex.encode(test[i:i + 1])
            origin = f"{opt.split} measure #{i}"
        others = self.ex.encode(test[inference.subsample(len(test), opt.curve_measures, opt.seed + 2)]) \
            if opt.curve_measures and len(test) else None
        for control in self.controls:
            self.traversal(control, start, origin, others)
        self.surfaces(test)
        data = self._split(opt.data_split)
        data = data[inference.subsample(len(data), opt.max_measures, opt.seed + 3)]
        if len(data) < 4:
            reason = f"the {opt.data_split} split has {len(data)} measures"
            self._skip("Encoded data in the plane of two controls", reason)
            self._skip("Regularised against free dims", reason)
        else:
            enc = self.ex.encode(data)
            self.distribution(enc)
            self.regularised_vs_free(enc)
        return {"figures": self.figures, "skipped": self.skipped, "midi": self.midi,
                "controls": [c.to_dict() for c in self.controls], "traversal_input": origin}

    # -- figures -----------------------------------------------------------------------------------
    def traversal(self, control, start: Encoding, origin: str, others: Optional[Encoding]) -> None:
        opt = self.opt
        tr = self.ex.traverse(start, control, steps=opt.steps)
        k = tr.attribute_index(control.attribute)
        input_value = float(self.ex.attributes(start.tokens[0])[k])
        mean = std = None
        count = 0
        if others is not None and len(others):
            many = self.ex.traverse(others, control, values=tr.values)
            mean, std = many.attributes[:, :, k].mean(0), many.attributes[:, :, k].std(0)
            count = len(others)
        slug = _slug(control.attribute)
        name = f"traversal_{slug}.png"
        label = attribute_label(control.attribute, units=False)
        what = (f"latent dim {control.name} (regularised for {label})" if control.in_latent
                else f"the decoder's {label} input")
        figures.traversal_figure(
            os.path.join(self.out, name), self.ex.vocabulary, control, tr.values, tr.tokens[0],
            start.tokens[0], control.attribute, tr.attributes[0, :, k], input_value, float(tr.start[0]),
            mean, std, count, title=f"Traversal of {what}, from {origin}")
        caption = (f"The input measure ({origin}, grey, left) is encoded; {what} is then set to "
                   f"{len(tr.values)} values from {tr.values[0]:g} to {tr.values[-1]:g} with every other "
                   f"{'latent dim' if control.in_latent else 'input'} kept, and each code is "
                   f"decoded greedily (blue piano rolls, one 4-beat measure per value). Beneath: the "
                   f"{label} measured on each decoded measure ({label_and_unit(control.attribute)[1]})"
                   + (f", and dashed its mean ± standard deviation over the same sweep from {count} other "
                      f"{opt.split} measures" if count else "")
                   + ". A control that works makes the curve rise steadily while the melody stays "
                     "recognisable.")
        self._add(name, f"{'Latent traversal' if control.in_latent else 'Traversal'}: {label}", caption,
                  "traversal")
        folder = os.path.join("midi", slug)
        os.makedirs(os.path.join(self.out, folder), exist_ok=True)
        whole = os.path.join("midi", f"traversal_{slug}.mid")
        self.ex.write_traversal(tr, os.path.join(self.out, whole), start=start, qpm=opt.qpm)
        self.midi.append(whole)
        markers = traversal_markers(tr)
        for s, v in enumerate(tr.values):
            rel = os.path.join(folder, f"step_{s:02d}_{v:+.2f}.mid")
            self.ex.write_midi(tr.tokens[0, s], os.path.join(self.out, rel), qpm=opt.qpm, markers=[markers[s]],
                               style=start.source.style if start.source is not None else None)
            self.midi.append(rel)

    def surfaces(self, test: np.ndarray) -> None:
        opt = self.opt
        title = "Attribute surface maps"
        if len(self.controls) < 2:
            self._skip(title, "the model has a single control; a surface needs two")
            return
        if not len(test):
            self._skip(title, f"the {opt.split} split has no measures")
            return
        idx = inference.subsample(len(test), opt.surface_measures, opt.seed + 4)
        enc = self.ex.encode(test[idx])
        runner = self.ex.runner
        for (i, ci), (j, cj) in itertools.combinations(enumerate(self.controls), 2):
            xv = inference.control_values(ci, opt.grid)
            yv = inference.control_values(cj, opt.grid)
            maps = np.zeros((2, opt.grid, opt.grid), np.float64)
            names = [ci.attribute, cj.attribute]
            for gx, x in enumerate(xv):
                # Set control i to x on every starting code, then sweep control j.
                z, c = self.ex.model.apply_controls(enc.z, enc.controls, i, np.array([x], np.float32))
                z = np.asarray(z)
                c = None if c is None else np.asarray(c)
                tokens = runner.sweep(z, c, j, yv)  # [B, G, 24]
                maps[:, gx, :] = runner.attributes(tokens, names).mean(axis=0).T
            name = f"surface_{_slug(ci.attribute)}__{_slug(cj.attribute)}.png"
            figures.surface_figure(os.path.join(self.out, name), ci, cj, xv, yv, maps, names,
                                   len(idx))
            li, lj = attribute_label(ci.attribute, units=False), attribute_label(cj.attribute, units=False)
            caption = (f"Codes of {len(idx)} {opt.split} measures are decoded on a {opt.grid} x {opt.grid} grid "
                       f"of {ci.short} (x) and {cj.short} (y), every other part of each code kept; "
                       f"each cell "
                       f"shows the attribute of the decoded measures, averaged over the {len(idx)} measures: "
                       f"left {li}, right {lj}. Independent controls give a left panel that changes only "
                       f"from left to right and a right panel that changes only from bottom to top.")
            self._add(name, f"Attribute surface: {ci.short} x {cj.short}", caption, "surface")

    def distribution(self, enc: Encoding) -> None:
        opt = self.opt
        title = "Encoded data in the plane of two controls"
        if len(self.controls) < 2:
            self._skip(title, "the model has a single control; a plane needs two")
            return
        coords = self.ex.runner.control_coordinates(enc.z_mean, enc.controls)
        pairs = list(itertools.combinations(range(len(self.controls)), 2))
        show = [c.in_latent for c in self.controls]
        name = "data_distribution.png"
        figures.histogram_figure(os.path.join(self.out, name), pairs, coords, list(self.controls),
                                 show, len(enc), opt.data_split)
        where = ("its posterior mean on each regularised latent dim"
                 if all(show) else "its value on each control (a latent dim: the posterior mean; a decoder "
                                   "input: the measure's own attribute value)")
        caption = (f"{len(enc)} {opt.data_split} measures are encoded; each panel is a 2-D histogram (log "
                   f"colour scale) of {where}, for one pair of controls."
                   + (" The dashed box is the range the traversals sweep: where it leaves the data, the "
                      "decoder works from codes it never saw in training." if any(show) else ""))
        self._add(name, title, caption, "distribution")

    def regularised_vs_free(self, enc: Encoding) -> None:
        title = "Regularised against free latent dims"
        latent = [c for c in self.controls if c.in_latent]
        if not latent:
            self._skip(title, "no control of this model is a latent dim (its controls are decoder inputs), so "
                              "no latent dim is regularised to plot against a free one")
            return
        used = {c.index for c in latent}
        free = [d for d in range(enc.z_mean.shape[1]) if d not in used]
        if not free:
            self._skip(title, f"every latent dim ({enc.z_mean.shape[1]}) is regularised; there is no free dim")
            return
        f = free[int(np.argmax(enc.z_mean[:, free].var(axis=0)))]
        a = self.ex.attributes(enc.tokens)
        panels = []
        for c in latent:
            k = self.ex.attribute_names.index(c.attribute)
            panels.append((c, enc.z_mean[:, c.index], f"z[{f}]", enc.z_mean[:, f], c.attribute, a[:, k]))
        name = "regularised_vs_free.png"
        figures.scatter_figure(os.path.join(self.out, name), panels, len(enc), self.opt.data_split)
        caption = (f"{len(enc)} {self.opt.data_split} measures encoded (posterior means). Each panel plots a "
                   f"regularised latent dim (x) against z[{f}], the free dim whose values vary most (y), each "
                   f"point coloured by the measure's own attribute for that dim. Regularisation worked when the "
                   f"colour changes from left to right and not from bottom to top.")
        self._add(name, title, caption, "scatter")


# ----------------------------------------------------------------------------------------------------
# The index page


def write_index(path: str, manifest: dict, config) -> str:
    """index.html showing every figure of ``manifest`` with its caption, the skipped ones with why, and
    links to the MIDI files."""
    e = html.escape
    head = (f"{config.model}, latent {config.latent_dim}, hidden {config.hidden_size}, dataset {config.dataset}, "
            f"attributes: {', '.join(attribute_label(a, units=False) for a in config.attributes)}")
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             f"<title>Analysis of {e(manifest.get('run_dir', ''))}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
             "figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}"
             "figcaption{margin-top:.5em;line-height:1.4}.skip{color:#8a4b00}</style></head><body>",
             f"<h1>Analysis of {e(manifest.get('run_dir', ''))}</h1>", f"<p>{e(head)}.</p>",
             f"<p>Traversals start from {e(manifest.get('traversal_input', ''))}.</p>"]
    for fig in manifest["figures"]:
        parts.append(f"<figure><h2>{e(fig['title'])}</h2><img src='{e(fig['file'])}' alt='{e(fig['title'])}'>"
                     f"<figcaption>{e(fig['caption'])}</figcaption></figure>")
    for s in manifest["skipped"]:
        parts.append(f"<h2>{e(s['title'])}</h2><p class='skip'>Not drawn: {e(s['reason'])}.</p>")
    if manifest["midi"]:
        whole = [m for m in manifest["midi"] if os.path.dirname(m) == "midi"]
        parts.append("<h2>MIDI</h2><p>Each traversal as one file (the input measure, then every step), "
                     "and one file per step in <code>midi/&lt;attribute&gt;/</code>:</p><ul>")
        parts += [f"<li><a href='{e(m)}'>{e(m)}</a></li>" for m in whole]
        parts.append("</ul>")
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
    return path
