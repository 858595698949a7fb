"""Evaluation of a trained run on a held-out split (docs/METHOD.md section 6): the report and its printed table.

    report = evaluate_run("runs/quickstart", EvaluationOptions(split="test", seed=0))
    print(format_report(report))

What is measured, on the measures of the split (all of them, or ``max_measures`` drawn with ``seed``):

* reconstruction: greedy decoding without teacher forcing, from the sampled code z (docs/METHOD.md section 6) and from
  the posterior mean; ``token_accuracy`` over all 24 ticks and ``note_accuracy`` over the ticks whose
  target is a pitch or ``rest`` (not ``hold``, which is the majority and easy, nor the ``start``/``end``
  padding around a piece);
* ``baselines``: ``token_accuracy.majority_baselines`` fitted on the training split and scored on the same
  measures as the model's accuracies (the most frequent training token everywhere, and per tick);
* ``kl_per_measure``: KL(q(z|x) || N(0, I)) summed over latent dims, mean over measures (nats), and
  ``kl_per_dim``, its mean per dim (a dim near 0 is unused);
* latent-space metrics of ``musicvae_xai.metrics`` on the sampled z against the input measures'
  attributes (the run's attributes): interpretability per attribute with the intended dim of each
  (the latent dim a control regularises for it; null where no control is a latent dim), MIG
  (unclipped), SAP, SCC, modularity (the plain mean over dims, as ar-vae), ``modularity_mi_weighted``
  (our MI-weighted variant) and the mutual-information matrix (estimated once);
* ``attribute_independence``: (not applicable to a model without controls: empty, null scores and
  ``applicable`` false) every control swept over its range (``sweep_steps`` values) from the
  posterior mean of ``sweep_measures`` measures with everything else fixed; the matrix of mean |Spearman
  rho| between control value and each measured attribute of the decoded output (controllability on
  the diagonal, leakage off it).

The report is plain JSON types and holds no timings, so the same run, options and seed give the same
report.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import tensorflow as tf

from musicvae_xai import attributes as attrs
from musicvae_xai import inference, metric_registry, metrics, token_accuracy
from musicvae_xai.config import EvaluationOptions, RunConfig
from musicvae_xai.controls import LATENT_DIM
from musicvae_xai.models.losses import kl_per_example
from musicvae_xai.training import determinism
from musicvae_xai.training.checkpoints import latest_checkpoint

NO_LATENT_CONTROL_NOTE = (
    "No control of this model is a latent dim (its controls are decoder inputs), so no latent dim is "
    "meant to carry an attribute: intended_dim is null, and interpretability, MIG, SAP, SCC and "
    "modularity measure how much attribute information is left in z, which this model's training "
    "tries to remove (lower means z is freer of the controlled attributes). Controllability and "
    "leakage of the control inputs are in attribute_independence.")
NO_CONTROLS_NOTE = (
    "This model has no controls (nothing to turn: no regularised latent dim, no attribute input), so "
    "attribute independence is not applicable: its matrix is empty and controllability and leakage are "
    "null. Interpretability, MIG, SAP, SCC and modularity still measure how much attribute information "
    "z carries without being trained to.")
NO_BASELINE_NOTE = ("No training split was given, so the majority-token baselines are not reported "
                    "(baselines is null).")


def evaluate_run(run_dir: str, options: Optional[EvaluationOptions] = None) -> dict:
    """Loads the run in ``run_dir`` from its saved configuration and evaluates it on ``options.split``.

    Raises ConfigError / ValueError / FileNotFoundError with one line for a run without a (finished)
    checkpoint, a split without enough measures, or missing data.
    """
    options = (options or EvaluationOptions()).validate()
    config, model = inference.load_run(run_dir, expect_finished=options.expect_finished)
    determinism.apply(config.deterministic)  # a run trained with --deterministic is evaluated so too
    tokens = inference.split_tokens(config, options.split, options.cache_dir, options.data_root)
    train = tokens if options.split == "train" else inference.split_tokens(
        config, "train", options.cache_dir, options.data_root)
    report = evaluate_model(config, model, tokens, options, train_tokens=train)
    report["run_dir"] = os.fspath(run_dir)
    report["checkpoint"] = os.path.basename(latest_checkpoint(run_dir) or "")
    return report


def evaluate_model(config: RunConfig, model, tokens: np.ndarray, options: Optional[EvaluationOptions] = None,
                   runner: Optional[inference.Runner] = None, train_tokens: Optional[np.ndarray] = None) -> dict:
    """The evaluation report of ``model`` on the measures ``tokens`` int32 [N, 24] (see module doc).

    ``train_tokens`` int32 [M, 24], the training split, fits the majority-token baselines (scored on the
    evaluated measures); without it ``baselines`` is null and the report's notes say so.
    """
    options = (options or EvaluationOptions()).validate()
    runner = runner or inference.Runner(model, options.batch_size)
    tokens = runner.check_tokens(tokens)
    tokens = tokens[inference.subsample(len(tokens), options.max_measures, options.seed)]
    if len(tokens) < metrics.MIN_SAMPLES:
        raise ValueError(f"the {options.split} split has {len(tokens)} measures; the metrics need at least "
                         f"{metrics.MIN_SAMPLES}")
    names = list(runner.attribute_names)
    a = runner.attributes(tokens)

    z_mean, z_scale = runner.encode(tokens)
    z = inference.sample_latent(z_mean, z_scale, options.seed)
    controls = runner.default_controls(tokens)
    recon = reconstruction(runner, tokens, z, z_mean, controls)
    recon.update(side_information(runner, tokens, z, controls))
    kl = kl_per_example(tf.constant(z_mean), tf.constant(z_scale)).numpy()
    kl_dims = 0.5 * (z_mean.astype(np.float64) ** 2 + z_scale.astype(np.float64) ** 2 - 1.0
                     - 2.0 * np.log(z_scale.astype(np.float64)))

    latent_dims = {c.attribute: c.index for c in runner.controls if c.in_latent}
    intended = [latent_dims.get(n) for n in names]
    latent = metrics.disentanglement_report(z, a, random_state=options.seed, attribute_names=names,
                                            intended_dims=intended)
    notes = []
    if not latent_dims and runner.controls:
        notes.append(NO_LATENT_CONTROL_NOTE)
    baselines = None
    if train_tokens is None:
        notes.append(NO_BASELINE_NOTE)
    else:
        baselines = token_accuracy.majority_baselines(runner.check_tokens(train_tokens), tokens, runner.vocabulary)

    independence = attribute_independence(runner, tokens, z_mean, controls, options)
    if not runner.controls:
        notes.append(NO_CONTROLS_NOTE)
    return {
        "model": config.model,
        "dataset": config.dataset,
        "split": options.split,
        "seed": options.seed,
        "num_measures": int(len(tokens)),
        "latent_dim": int(config.latent_dim),
        "attributes": names,
        **recon,
        "baselines": baselines,
        "kl_per_measure": float(np.mean(kl)),
        "kl_per_dim": kl_dims.mean(axis=0).tolist(),
        **latent,  # interpretability, the metric_registry's latent metrics, mutual_information
        "attribute_independence": independence,
        "notes": notes,
    }


def reconstruction(runner: inference.Runner, tokens: np.ndarray, z: np.ndarray, z_mean: np.ndarray,
                   controls: Optional[np.ndarray]) -> dict:
    """Token and note accuracy of greedy decoding from the sampled z [N, Z] and from the mean.

    Returns {"token_accuracy", "note_accuracy", "token_accuracy_mean_z", "note_accuracy_mean_z"};
    note accuracy counts only the ticks whose target is a pitch or ``rest``
    (``token_accuracy.reconstruction_accuracy``).
    """
    out = {}
    for suffix, code in (("", z), ("_mean_z", z_mean)):
        acc = token_accuracy.reconstruction_accuracy(runner.decode(code, controls), tokens, runner.vocabulary)
        out[f"token_accuracy{suffix}"] = acc["token_accuracy"]
        out[f"note_accuracy{suffix}"] = acc["note_accuracy"]
    return out


def side_information(runner: inference.Runner, tokens: np.ndarray, z: np.ndarray,
                     controls: Optional[np.ndarray]) -> dict:
    """How much of the reconstruction a decoder-input model owes to its exact attribute values.

    For a model whose controls are decoder inputs and that can say where its ordinal bins lie
    (``bin_centre_controls``, ``mean_controls``: AdversarialVAE), the token accuracy of greedy decoding
    from the sampled z [N, Z] with each attribute replaced by the centre of its bin
    (``token_accuracy_bin_centres``) and by the training split's mean (``token_accuracy_train_mean``);
    the true attributes give ``token_accuracy`` itself. Empty for other models.
    """
    model = runner.model
    if controls is None or not hasattr(model, "bin_centre_controls"):
        return {}
    out = {}
    for key, values in (("token_accuracy_bin_centres", model.bin_centre_controls(controls)),
                        ("token_accuracy_train_mean", model.mean_controls(len(controls)))):
        decoded = runner.decode(z, np.asarray(values, np.float32))
        out[key] = token_accuracy.reconstruction_accuracy(decoded, tokens, runner.vocabulary)["token_accuracy"]
    return out


def attribute_independence(runner: inference.Runner, tokens: np.ndarray, z_mean: np.ndarray,
                           controls: Optional[np.ndarray], options: EvaluationOptions) -> dict:
    """Sweeps every control from ``sweep_measures`` measures and scores the attributes of the outputs.

    Rows and columns of the matrix are in control order: row c is control c, column k the attribute
    control k is meant to move; any attribute of the run that no control targets is appended as an
    extra column (leakage only).
    """
    ctrl = runner.controls
    order = [c.attribute for c in ctrl]
    order += [n for n in runner.attribute_names if n not in order]
    if not ctrl:  # nothing to sweep: not applicable, the same keys with empty / null values
        return {"controls": [], "attributes": order, "values": [], "num_measures": 0, "matrix": [],
                "signed_matrix": [], "controllability": None, "leakage": None, "applicable": False}
    idx = inference.subsample(len(tokens), options.sweep_measures, options.seed + 1)
    seeds_z = z_mean[idx]
    seeds_c = None if controls is None else controls[idx]
    steps = options.sweep_steps
    out = np.zeros((len(ctrl), len(idx), steps, len(order)), np.float32)
    values = []
    for i, c in enumerate(ctrl):
        v = inference.control_values(c, steps)
        values.append(v.tolist())
        decoded = runner.sweep(seeds_z, seeds_c, i, v)  # [N, S, 24]
        out[i] = runner.attributes(decoded, order)
    result = metrics.attribute_independence(np.arange(steps, dtype=np.float64), out)
    return {
        "controls": [c.to_dict() for c in ctrl],
        "attributes": order,
        "values": values,
        "num_measures": int(len(idx)),
        **result,
    }


# ----------------------------------------------------------------------------------------------------
# The printed table


def _label(name: str) -> str:
    return attrs.attribute_label(name, units=False)


def _short(name: str) -> str:
    return "".join(w[0] for w in _label(name).split()).upper()


def _fmt(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def format_report(report: dict) -> str:
    """A readable multi-line table of an ``evaluate_model`` / ``evaluate_run`` report."""
    lines = []
    where = report.get("run_dir", "model")
    lines.append(f"Evaluation of {where} ({report['model']}, latent {report['latent_dim']}, dataset "
                 f"{report['dataset']}, split {report['split']}: {report['num_measures']} measures, "
                 f"seed {report['seed']})")
    lines.append("")
    base = report.get("baselines") or {}
    lines.append(f"{'Reconstruction (greedy, no teacher forcing)':<56}{'sampled z':>10}{'mean z':>10}"
                 f"{'majority':>10}{'per-tick':>10}")
    for label, key in (("token accuracy (all 24 ticks)", "token"),
                       ("note accuracy (ticks whose target is a pitch or rest)", "note")):
        lines.append(f"{'  ' + label:<56}{_fmt(report[f'{key}_accuracy']):>10}"
                     f"{_fmt(report[f'{key}_accuracy_mean_z']):>10}{_fmt(base.get(f'majority_{key}_accuracy')):>10}"
                     f"{_fmt(base.get(f'per_tick_majority_{key}_accuracy')):>10}")
    if base:
        lines.append(f"  baselines: majority = the most frequent training token ({base['majority_token']}) at every "
                     f"tick; per-tick = the most")
        lines.append(f"  frequent training token of each tick position; both scored on these {base['measures']} "
                     f"{report['split']} measures")
    active = metric_registry.active_dims(report)
    lines.append(f"{'KL per measure (nats)':<56}{_fmt(report['kl_per_measure'], 4):>10}   "
                 f"({active} of {report['latent_dim']} dims above {metric_registry.ACTIVE_DIM_NATS:g})")
    lines.append("")
    interp = report["interpretability"]
    lines.append("Interpretability (dim with the highest mutual information; R^2 of a linear fit on it)")
    lines.append(f"  {'attribute':<24}{'dim':>6}{'intended':>13}{'R^2':>8}{'MI':>8}")
    for row in interp["per_attribute"]:
        dim = "-" if row["dim"] is None else f"z[{row['dim']}]"
        if row["is_intended"] is None:
            intended = "n/a"
        else:
            intended = ("yes" if row["is_intended"] else f"no (z[{row['intended_dim']}])")
        lines.append(f"  {_label(row['attribute']):<24}{dim:>6}{intended:>13}{_fmt(row['r2']):>8}"
                     f"{_fmt(row['mi']):>8}")
    frac = interp["intended_fraction"]
    lines.append(f"  {'mean':<24}{'':>6}{'' if frac is None else f'{frac:.0%}':>13}{_fmt(interp['mean']):>8}")
    lines.append("")
    lines.append(_metric_line(report, "disentanglement", "Disentanglement  "))
    lines.append("")
    ind = report["attribute_independence"]
    if ind.get("applicable") is False:
        lines.append("Attribute independence: not applicable (this model has no controls to sweep)")
        return "\n".join(lines + _note_lines(report))
    lines.append(f"Attribute independence: mean |Spearman rho| between each control and the measured "
                 f"attributes of {ind['num_measures']} decoded sweeps "
                 f"({len(ind['values'][0]) if ind['values'] else 0} steps)")
    cols = ind["attributes"]
    lines.append(f"  {'control (range swept)':<30}" + "".join(f"{_short(n):>7}" for n in cols))
    for c, row in zip(ind["controls"], ind["matrix"], strict=False):
        if c["kind"] == LATENT_DIM:
            head = f"{c['name']} for {_short(c['attribute'])} ({c['low']:.3g}..{c['high']:.3g})"
        else:
            head = f"{_short(c['attribute'])} input ({c['low']:.3g}..{c['high']:.3g})"
        lines.append(f"  {head:<30}" + "".join(f"{x:>7.3f}" for x in row))
    lines.append("  " + ", ".join(f"{m.table_label} {m.format(m.value(report))} ({m.table_note}, {m.direction} is "
                                  "better)" for m in metric_registry.metrics(table="independence")))
    lines.append("  " + ", ".join(f"{_short(n)} = {_label(n)}" for n in cols))
    return "\n".join(lines + _note_lines(report))


def _metric_line(report: dict, table: str, head: str) -> str:
    """The metrics of ``metric_registry`` on line ``table`` of the printed table: "LABEL value" each,
    three spaces apart; a metric that ``qualifies`` another follows it in parentheses."""
    parts: list = []
    for m in metric_registry.metrics(table=table):
        text = f"{m.table_label} {m.format(m.value(report))}"
        if m.qualifies and parts:
            parts[-1] += f" ({text})"
        else:
            parts.append(text)
    return head + "   ".join(parts)


def _note_lines(report: dict) -> list:
    lines = []
    for note in report.get("notes", []):
        lines.append("")
        lines.append(f"Note: {note}")
    return lines
