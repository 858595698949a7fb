"""The analysis figures of docs/METHOD.md section 7, drawn with matplotlib (Agg) from plain numpy arrays.

Each ``*_figure`` function takes what it draws (no model, no files besides the PNG it writes) and
saves one PNG. Axis labels name the control and the attribute with its unit (``attributes.LABELS``).
"""

from __future__ import annotations

import io
import math
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors, patches, transforms  # noqa: E402

from musicvae_xai import attributes as attrs  # noqa: E402
from musicvae_xai.attributes import attribute_label  # noqa: E402,F401 (a name of this module)
from musicvae_xai.controls import Control  # noqa: E402
from musicvae_xai.representation import BEATS_PER_MEASURE, Vocabulary, measures_to_sequence  # noqa: E402

DPI = 100
NOTE_COLOR = "#1f5fa8"
INPUT_COLOR = "#555555"
_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def save(fig, path: str) -> str:
    """Writes ``fig`` as a 256-colour palette PNG (a third of the size of matplotlib's RGBA PNG for these
    flat-coloured plots) and closes it."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                      dither=Image.Dither.NONE).save(path, format="PNG", optimize=True)
    return path


def attribute_label_lines(name: str) -> str:
    """The attribute's name over its unit in brackets, for y axes and colour bars."""
    label, unit = attrs.label_and_unit(name)
    return f"{label}\n({unit})" if unit else label


def pitch_name(pitch: int) -> str:
    return f"{_NAMES[pitch % 12]}{pitch // 12 - 1}"


def _notes(tokens: np.ndarray, vocab: Vocabulary):
    """[(pitch, start_beat, end_beat)] of one measure's token ids [24]."""
    seq = measures_to_sequence(tokens[None], vocab, qpm=60.0)  # 1 s = 1 beat
    return [(n.pitch, n.start_time, n.end_time) for n in seq.notes]


def draw_piano_roll(ax, measures: np.ndarray, vocab: Vocabulary, color: str = NOTE_COLOR) -> list:
    """Draws measures [M, 24] side by side (measure m spans beats 4m..4m+4), each decoded on its own.

    Returns the MIDI pitches drawn.
    """
    pitches = []
    for m, tokens in enumerate(np.asarray(measures).reshape(-1, 24)):
        x0 = m * BEATS_PER_MEASURE
        for beat in range(1, BEATS_PER_MEASURE):
            ax.axvline(x0 + beat, color="#dddddd", lw=0.6, zorder=0)
        if m:
            ax.axvline(x0, color="#888888", lw=1.0, zorder=1)
        notes = _notes(tokens, vocab)
        if not notes:
            ax.text(x0 + BEATS_PER_MEASURE / 2, 0.5, "no notes", transform=transforms.blended_transform_factory(
                ax.transData, ax.transAxes), ha="center", va="center", fontsize=7, color="#888888")
        for pitch, start, end in notes:
            ax.add_patch(patches.Rectangle((x0 + start + 0.02, pitch - 0.4), end - start - 0.04, 0.8,
                                           facecolor=color, edgecolor="black", lw=0.4, zorder=2))
            pitches.append(pitch)
    ax.set_xlim(0, BEATS_PER_MEASURE * max(1, len(measures)))
    return pitches


def _pitch_axis(axes: Sequence, pitches: Sequence[int]) -> None:
    if pitches:
        lo, hi = min(pitches), max(pitches)
    else:
        lo, hi = 60, 72
    mid = (lo + hi) / 2
    half = max((hi - lo) / 2 + 2, 6)
    classes = (0, 4, 7) if half <= 12 else (0, 7)     # C, E, G; C and G on a wide roll
    ticks = [p for p in range(int(np.ceil(mid - half)), int(mid + half) + 1) if p % 12 in classes]
    for ax in axes:
        ax.set_ylim(mid - half, mid + half)
        ax.set_yticks(ticks)
        ax.set_yticklabels([pitch_name(p) for p in ticks], fontsize=8)
        ax.grid(axis="y", color="#eeeeee", lw=0.6, zorder=0)
        ax.set_axisbelow(True)


def traversal_figure(path: str, vocab: Vocabulary, control: Control, values: np.ndarray, tokens: np.ndarray,
                     input_tokens: np.ndarray, attribute: str, curve: np.ndarray, input_value: float,
                     start: float, mean_curve: Optional[np.ndarray] = None, std_curve: Optional[np.ndarray] = None,
                     mean_count: int = 0, title: str = "") -> str:
    """A latent traversal: decoded measures as piano rolls along the control, the attribute beneath.

    values float [S] (evenly spaced); tokens int [S, 24] decoded at each value; input_tokens int [24]
    the measure the sweep starts from; curve float [S] the attribute measured on ``tokens``;
    input_value its value on the input measure; start: the input's own position on the control;
    mean_curve, std_curve float [S]: the attribute along the same sweep averaged over ``mean_count``
    other measures.
    """
    values = np.asarray(values, np.float64)
    s = len(values)
    width = max(9.0, 2.2 + 1.05 * s)
    fig = plt.figure(figsize=(width, 6.0), dpi=DPI)
    grid = fig.add_gridspec(2, 2, width_ratios=[1.15, s], height_ratios=[1.3, 1], hspace=0.42, wspace=0.06,
                            left=0.9 / width, right=0.98, top=0.89, bottom=0.155)
    ax_in = fig.add_subplot(grid[0, 0])
    ax_roll = fig.add_subplot(grid[0, 1], sharey=ax_in)
    ax_curve = fig.add_subplot(grid[1, 1])

    pitches = draw_piano_roll(ax_in, input_tokens[None], vocab, color=INPUT_COLOR)
    pitches += draw_piano_roll(ax_roll, tokens, vocab)
    _pitch_axis([ax_in], pitches)
    plt.setp(ax_roll.get_yticklabels(), visible=False)
    ax_in.set_ylabel("pitch")
    ax_in.set_xticks([2])
    ax_in.set_xticklabels([f"{control.short}\n= {start:.3g}"], fontsize=8)
    ax_in.set_title("input", fontsize=9)
    ax_roll.set_xticks(np.arange(s) * BEATS_PER_MEASURE + BEATS_PER_MEASURE / 2)
    ax_roll.set_xticklabels([f"{v:.3g}" for v in values], fontsize=8)
    ax_roll.set_xlabel(f"{control.short} value (one decoded 4-beat measure per value)", fontsize=9)
    ax_roll.set_title("decoded along the control, everything else fixed", fontsize=9)

    step = (values[-1] - values[0]) / max(s - 1, 1) if s > 1 else 1.0
    handles = []
    if mean_curve is not None and mean_count:
        m = np.asarray(mean_curve)
        sd = np.asarray(std_curve) if std_curve is not None else np.zeros_like(m)
        ax_curve.fill_between(values, m - sd, m + sd, color="#f0a050", alpha=0.25, lw=0)
        handles += ax_curve.plot(values, m, "--", color="#d07010", lw=1.4,
                                 label=f"mean ± sd over {mean_count} test measures")
    handles += ax_curve.plot(values, curve, "o-", color=NOTE_COLOR, lw=1.8, ms=5, label="decoded above")
    handles.append(ax_curve.axhline(input_value, color=INPUT_COLOR, ls=":", lw=1.2, label="input measure"))
    if values[0] - step / 2 <= start <= values[-1] + step / 2:
        handles.append(ax_curve.axvline(start, color=INPUT_COLOR, ls="-.", lw=1.0,
                                        label=f"input's {control.short}"))
    ax_curve.set_xlim(values[0] - step / 2, values[-1] + step / 2)
    ax_curve.set_xticks(values)
    ax_curve.set_xticklabels([f"{v:.3g}" for v in values], fontsize=8)
    ax_curve.set_xlabel(control.label, fontsize=9)
    ax_curve.set_ylabel(attribute_label_lines(attribute), fontsize=9)
    ax_curve.grid(color="#eeeeee", lw=0.6)
    ax_curve.set_title(f"measured {attribute_label(attribute, units=False)} of the decoded measures", fontsize=9)
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0), handlelength=2.2)
    fig.suptitle(title or f"Traversal of {control.short}", fontsize=11)
    return save(fig, path)


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


def surface_figure(path: str, x: Control, y: Control, x_values: np.ndarray, y_values: np.ndarray,
                   maps: Sequence[np.ndarray], map_attributes: Sequence[str], count: int, title: str = "") -> str:
    """Attribute surface maps: each map float [Gx, Gy] is an attribute of the measure decoded at
    (x_values[i], y_values[j]), averaged over ``count`` starting measures; one panel per map."""
    x_values, y_values = np.asarray(x_values, np.float64), np.asarray(y_values, np.float64)
    n = len(maps)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n + 0.4, 4.4), dpi=DPI, squeeze=False)
    dx = (x_values[-1] - x_values[0]) / max(len(x_values) - 1, 1)
    dy = (y_values[-1] - y_values[0]) / max(len(y_values) - 1, 1)
    extent = [x_values[0] - dx / 2, x_values[-1] + dx / 2, y_values[0] - dy / 2, y_values[-1] + dy / 2]
    for ax, grid, name in zip(axes[0], maps, map_attributes, strict=False):
        im = ax.imshow(np.asarray(grid).T, origin="lower", extent=extent, aspect="auto", cmap="viridis",
                       interpolation="nearest")
        cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03)
        cb.set_label(attribute_label_lines(name), fontsize=8)
        cb.ax.tick_params(labelsize=7)
        ax.set_xlabel(_wrap(x.label, 46), fontsize=8.5)
        ax.set_ylabel(_wrap(y.label, 40), fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.set_title(f"measured {attribute_label(name, units=False)}", fontsize=9.5)
    suffix = f" (mean over {count} test measures)" if count > 1 else ""
    fig.suptitle(title or f"Attribute surface over {x.short} and {y.short}{suffix}", fontsize=10.5)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return save(fig, path)


def _limits(values: np.ndarray, low: float, high: float, with_range: bool) -> tuple:
    lo, hi = np.percentile(values, [0.5, 99.5]) if len(values) else (low, high)
    if with_range:
        lo, hi = min(lo, low), max(hi, high)
    pad = 0.04 * (hi - lo if hi > lo else 1.0)
    return lo - pad, hi + pad


def _range_visible(values: np.ndarray, low: float, high: float) -> bool:
    """Whether the data span enough of [low, high] for both to be shown on one axis."""
    if not len(values):
        return True
    lo, hi = np.percentile(values, [0.5, 99.5])
    return (hi - lo) >= 0.2 * (high - low)


def _save_panels(fig, axes, used: int, path: str, title: str) -> str:
    """Hides the panels of the grid ``axes`` [rows][cols] past the first ``used``, titles the figure and
    saves it."""
    rows, cols = len(axes), len(axes[0])
    for k in range(used, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title, fontsize=10.5)
    fig.tight_layout(rect=(0, 0, 1, 0.96 if rows > 1 else 0.93))
    return save(fig, path)


def histogram_figure(path: str, pairs: Sequence[tuple], coords: np.ndarray, axes_info: Sequence[Control],
                     show_range: Sequence[bool], count: int, split: str, title: str = "") -> str:
    """2-D histograms of encoded data in the plane of each pair (i, j) of controls.

    coords float [N, C]: where each of N measures sits on each control; show_range[c]: draw the
    control's sweep range as a dashed box (for latent dims, to compare with the data). When the data
    cover less than a fifth of the range the view stays on the data and a note gives the range.
    """
    n = len(pairs)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols + 0.3, 3.9 * rows + 0.5), dpi=DPI, squeeze=False)
    for k, (i, j) in enumerate(pairs):
        ax = axes[k // cols][k % cols]
        xi, yj = coords[:, i], coords[:, j]
        box = show_range[i] and show_range[j]
        fit = box and _range_visible(xi, axes_info[i].low, axes_info[i].high) and _range_visible(
            yj, axes_info[j].low, axes_info[j].high)
        xr = _limits(xi, axes_info[i].low, axes_info[i].high, fit)
        yr = _limits(yj, axes_info[j].low, axes_info[j].high, fit)
        h = ax.hist2d(xi, yj, bins=48, range=[xr, yr], cmap="magma_r", norm=colors.LogNorm(), cmin=1)
        cb = fig.colorbar(h[3], ax=ax, fraction=0.05, pad=0.03)
        cb.set_label("measures per bin", fontsize=8)
        cb.ax.tick_params(labelsize=7)
        if fit:
            ax.add_patch(patches.Rectangle((axes_info[i].low, axes_info[j].low),
                                           axes_info[i].high - axes_info[i].low,
                                           axes_info[j].high - axes_info[j].low,
                                           fill=False, ls="--", lw=1.0, color="#1f5fa8",
                                           label="traversal range"))
            ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
        elif box:
            ax.text(0.98, 0.98, f"traversal range {axes_info[i].low:g}..{axes_info[i].high:g}\n"
                                f"is far wider than the data", transform=ax.transAxes, ha="right", va="top",
                    fontsize=7, color="#1f5fa8", bbox=dict(facecolor="white", alpha=0.8, lw=0))
        ax.set_xlabel(_wrap(axes_info[i].label, 44), fontsize=8.5)
        ax.set_ylabel(_wrap(axes_info[j].label, 40), fontsize=8.5)
        ax.tick_params(labelsize=8)
    return _save_panels(fig, axes, n, path, title or f"Encoded {split} measures in the plane of two controls "
                                                     f"({count} measures)")


def scatter_figure(path: str, panels: Sequence[tuple], count: int, split: str, title: str = "") -> str:
    """A regularised dim against a free dim, points coloured by an attribute; one panel per
    (x Control, x values [N], free dim name, y values [N], attribute name, attribute values [N])."""
    n = len(panels)
    cols = min(2, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows + 0.4), dpi=DPI, squeeze=False)
    for k, (x, xs, free_name, ys, name, a) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        sc = ax.scatter(xs, ys, c=a, s=4, cmap="viridis", alpha=0.7, linewidths=0, rasterized=True)
        cb = fig.colorbar(sc, ax=ax, fraction=0.05, pad=0.03)
        cb.set_label(attribute_label_lines(name), fontsize=8)
        cb.ax.tick_params(labelsize=7)
        ax.set_xlim(*_limits(xs, x.low, x.high, False))
        ax.set_ylim(*_limits(ys, 0, 0, False))
        ax.set_xlabel(_wrap(f"{x.name}  (regularised for {attribute_label(x.attribute, units=False)})", 44),
                      fontsize=8.5)
        ax.set_ylabel(f"{free_name}  (free dim)", fontsize=8.5)
        ax.tick_params(labelsize=8)
        ax.set_title(f"coloured by {attribute_label(name, units=False)}", fontsize=9.5)
    return _save_panels(fig, axes, n, path, title or f"Regularised against free latent dims ({count} encoded "
                                                     f"{split} measures)")
