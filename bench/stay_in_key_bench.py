"""What "stay in key" costs and gives on the pretrained model: accuracy, notes out of key, control.

    python bench/stay_in_key_bench.py [--data=test] [--data_root=../shared/datasets] [--sweep_measures=64]

Runs the shipped ``measure_vae_irish`` export (``Explainer.pretrained()``) on the irish test split
(``--data=test``: every test measure, the key of each estimated from its whole tune, as the Explainer
does for the measures of one file) or on the 512-measure test fixture (``--data=fixture``: no tune
ids, so the key of each measure alone). Prints, decoding without and with ``stay_in_key`` (masked at
every tick, as the Explainer decodes), and masked on the probabilities the ``decode`` signature
returns (``keys.keep_in_key``, as the explorer does over any serving client):

* token and note accuracy of the reconstruction from the posterior mean;
* the share of decoded notes (pitch onsets) outside the input's key, in the reconstructions and in
  the control sweeps;
* controllability and leakage (``metrics.attribute_independence``, the pretrained figures' settings:
  ``--sweep_measures`` measures drawn with seed 1, 9 steps over each control's range), the sweeps
  decoded in each seed measure's key.

Pass: no decoded note out of key with ``stay_in_key``; token accuracy and controllability each at
most 0.01 and 0.1 below decoding without it (a seven-note scale leaves the pitch controls fewer
notes to move to, so they lose some of their hold: the figures say how much).
"""

from __future__ import annotations

import os
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", module="pydub")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "tests", "fixtures", "pretrained_irish_test.npz")

flags.DEFINE_enum("data", "test", ["test", "fixture"], "The irish test split (needs --data_root) or the fixture.")
flags.DEFINE_string("data_root", os.path.join(REPO, "..", "shared", "datasets"), "Raw datasets folder.")
flags.DEFINE_integer("sweep_measures", 64, "Seed measures of the control sweeps.")
flags.DEFINE_integer("steps", 9, "Values per control sweep.")
FLAGS = flags.FLAGS

MAX_ACCURACY_DROP, MAX_CONTROL_DROP = 0.01, 0.1
COLUMNS = ("without", "with", "served")


def test_measures(explainer) -> tuple:
    """(tokens int32 [N, 24], keys [N]: the key of each measure's tune, or of the measure alone, a
    description)."""
    from musicvae_xai import datasets, keys
    from musicvae_xai.datasets.config import DEFAULT_CACHE_DIR, dataset_config

    vocab = explainer.vocabulary
    if FLAGS.data == "fixture":
        tokens = np.load(FIXTURE)["tokens"].astype(np.int32)
        keyed = [keys.estimate_key(row, vocab) for row in tokens]
        return tokens, keyed, "the 512-measure test fixture, key per measure"
    import dataclasses

    cfg = dataclasses.replace(dataset_config(explainer.config), data_root=FLAGS.data_root)
    built = datasets.build(cfg, DEFAULT_CACHE_DIR, progress=False)
    tokens = np.asarray(built.tokens("test"), np.int32)
    piece = np.asarray(built.piece_index("test"))
    by_piece = {p: keys.estimate_key(tokens[piece == p], vocab) for p in np.unique(piece)}
    return tokens, [by_piece[p] for p in piece], f"the irish test split ({len(by_piece)} tunes), key per tune"


def sweeps(explainer, z, allowed, names) -> tuple:
    """(float32 [C, N, S, K]: the attributes ``names`` of the outputs of sweeping each control from z,
    their tokens int32 [C, N, S, 24])."""
    from musicvae_xai import inference

    runner = explainer.runner
    out = np.zeros((len(runner.controls), len(z), FLAGS.steps, len(names)), np.float32)
    decoded = []
    for i, c in enumerate(runner.controls):
        tokens = runner.sweep(z, None, i, inference.control_values(c, FLAGS.steps), allowed)
        out[i] = runner.attributes(tokens, names)
        decoded.append(tokens)
    return out, np.stack(decoded)


def served_decode(explainer, z, allowed) -> np.ndarray:
    """int32 [N, 24]: the export's ``decode`` signature on z [N, Z], then the most probable allowed
    token at each tick (``keys.keep_in_key``, allowed bool [N, V])."""
    from musicvae_xai import keys

    out = [np.zeros((0, 24), np.int32)]
    for start in range(0, len(z), 256):
        probs = explainer.model.decode(z[start:start + 256])["probabilities"].numpy()
        out.append(keys.keep_in_key(probs, allowed[start:start + 256]))
    return np.concatenate(out)


def served_sweeps(explainer, z, allowed, names) -> tuple:
    """``sweeps`` decoded by ``served_decode``."""
    from musicvae_xai import inference

    runner = explainer.runner
    out = np.zeros((len(runner.controls), len(z), FLAGS.steps, len(names)), np.float32)
    decoded = []
    for i, c in enumerate(runner.controls):
        z_rep, _ = explainer.model.apply_controls(z, None, i, inference.control_values(c, FLAGS.steps))
        tokens = served_decode(explainer, np.asarray(z_rep), np.repeat(allowed, FLAGS.steps, axis=0))
        tokens = tokens.reshape(len(z), FLAGS.steps, 24)
        out[i] = runner.attributes(tokens, names)
        decoded.append(tokens)
    return out, np.stack(decoded)


def main(argv):
    del argv
    from musicvae_xai import inference, keys, metrics, token_accuracy
    from musicvae_xai.explain import Explainer

    t0 = time.perf_counter()
    ex = Explainer.pretrained()
    vocab = ex.vocabulary
    tokens, key_list, what = test_measures(ex)
    enc = ex.encode(tokens)
    own_out, own_notes = keys.out_of_key(tokens, key_list, vocab)
    print(f"stay in key on {ex.config.model} (pretrained), {what}: {len(tokens)} measures; "
          f"input notes out of their key {own_out / own_notes:.4f} ({own_out} of {own_notes})")
    idx = inference.subsample(len(tokens), FLAGS.sweep_measures, 1)
    names = [c.attribute for c in ex.controls]
    names += [n for n in ex.attribute_names if n not in names]
    figures = {}
    for label in COLUMNS:
        stay = label != "without"
        allowed = keys.allowed_rows([key_list[i] for i in idx], len(idx), vocab) if stay else None
        if label == "served":
            recon = served_decode(ex, enc.z_mean, keys.allowed_rows(key_list, len(tokens), vocab))
            attrs, swept = served_sweeps(ex, enc.z_mean[idx], allowed, names)
        else:
            recon = ex.reconstruct(enc, stay_in_key=stay, key=key_list if stay else None)
            attrs, swept = sweeps(ex, enc.z_mean[idx], allowed, names)
        acc = token_accuracy.reconstruction_accuracy(recon, tokens, vocab)
        out, notes = keys.out_of_key(recon, key_list, vocab)
        sweep_out, sweep_notes = keys.out_of_key(np.swapaxes(swept, 0, 1), [key_list[i] for i in idx], vocab)
        ind = metrics.attribute_independence(np.arange(FLAGS.steps, dtype=np.float64), attrs)
        figures[label] = dict(token=acc["token_accuracy"], note=acc["note_accuracy"], out=out / max(notes, 1),
                              sweep_out=sweep_out / max(sweep_notes, 1), control=ind["controllability"],
                              leakage=ind["leakage"], diag=np.diag(np.asarray(ind["matrix"])[:, :len(names)]))
    print(f"{'':34s}{'without':>10s}{'with':>10s}{'served':>10s}   (stay_in_key; masked on served probabilities)")
    rows = [("token accuracy", "token"), ("note accuracy", "note"),
            ("notes out of key, reconstruction", "out"), ("notes out of key, sweeps", "sweep_out"),
            (f"controllability ({len(idx)} x {FLAGS.steps})", "control"), ("leakage", "leakage")]
    for text, k in rows:
        print(f"{text:34s}" + "".join(f"{figures[c][k]:10.4f}" for c in COLUMNS))
    for j, name in enumerate(names[:len(ex.controls)]):
        print(f"  |rho| of {name:24s}" + "".join(f"{figures[c]['diag'][j]:10.4f}" for c in COLUMNS))
    ok = all(figures[c]["out"] == 0 and figures[c]["sweep_out"] == 0
             and figures[c]["token"] >= figures["without"]["token"] - MAX_ACCURACY_DROP
             and figures[c]["control"] >= figures["without"]["control"] - MAX_CONTROL_DROP for c in ("with", "served"))
    print(f"{'PASS' if ok else 'FAIL'}: no note out of key with stay_in_key; token accuracy within "
          f"{MAX_ACCURACY_DROP}, controllability within {MAX_CONTROL_DROP} ({time.perf_counter() - t0:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    app.run(main)
