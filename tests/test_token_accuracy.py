"""Tests of musicvae_xai.token_accuracy: token and note accuracy, majority-token baselines."""

import subprocess
import sys

import numpy as np
import pytest

from musicvae_xai import token_accuracy
from musicvae_xai.representation import Vocabulary



def test_note_accuracy_counts_pitch_and_rest_targets_only():
    v = Vocabulary()
    # 24 ticks: 4 start padding, pitch, 5 hold, rest, 5 hold, pitch, 3 hold, 4 end padding
    target = v.encode(["start"] * 4 + [60] + ["hold"] * 5 + ["rest"] + ["hold"] * 5 + [62] + ["hold"] * 3
                      + ["end"] * 4)[None]
    assert token_accuracy.note_tick_mask(target, v).sum() == 3
    # Right on every padding and hold tick, wrong on 2 of the 3 note ticks (pitch 60 and the rest).
    predicted = target.copy()
    predicted[0, 4] = v.encode([61])[0]
    predicted[0, 10] = v.hold_id
    out = token_accuracy.reconstruction_accuracy(predicted, target, v)
    assert out == {"token_accuracy": pytest.approx(22 / 24), "note_accuracy": pytest.approx(1 / 3)}
    # Padding and holds wrong, every note tick right: note accuracy 1.
    predicted = np.full_like(target, v.rest_id)
    predicted[0, [4, 16]] = target[0, [4, 16]]
    out = token_accuracy.reconstruction_accuracy(predicted, target, v)
    assert out["note_accuracy"] == 1.0 and out["token_accuracy"] == pytest.approx(3 / 24)
    only_padding = np.full((1, 24), v.start_id)
    assert token_accuracy.reconstruction_accuracy(only_padding, only_padding, v)["note_accuracy"] == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        token_accuracy.reconstruction_accuracy(predicted[:, :12], target, v)


def test_majority_baselines_fit_on_train_and_score_the_given_measures():
    v = Vocabulary()
    p60, p62 = v.encode([60, 62])
    # Training: 3 measures. hold is the most frequent token; tick 0 is mostly 60, tick 1 always rest.
    train = np.full((3, 24), v.hold_id, np.int32)
    train[:, 0] = [p60, p60, p62]
    train[:, 1] = v.rest_id
    # Scored measures: tick 0 is 60 in one of two, tick 1 rest in both; 12 end ticks in the second.
    scored = np.full((2, 24), v.hold_id, np.int32)
    scored[:, 0] = [p60, p62]
    scored[:, 1] = v.rest_id
    scored[1, 12:] = v.end_id
    out = token_accuracy.majority_baselines(train, scored, v)
    assert out["majority_token"] == "hold" and out["measures"] == 2 and out["train_measures"] == 3
    # hold everywhere: right on 22 + 10 of 48 ticks; note ticks (pitch or rest): 4, none right
    assert out["majority_token_accuracy"] == pytest.approx(32 / 48)
    assert out["majority_note_accuracy"] == 0.0
    # per tick: 60, rest, then hold: right on 1 + 2 + 22 + 10 ticks; note ticks right: 1 + 2 of 4
    assert out["per_tick_majority_token_accuracy"] == pytest.approx(35 / 48)
    assert out["per_tick_majority_note_accuracy"] == pytest.approx(3 / 4)
    # The same predictors scored on the training measures give other numbers: the split matters.
    on_train = token_accuracy.majority_baselines(train, train, v)
    assert on_train["per_tick_majority_note_accuracy"] == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="ticks per measure"):
        token_accuracy.majority_baselines(train[:, :12], scored, v)
    with pytest.raises(ValueError, match="at least one"):
        token_accuracy.majority_baselines(train[:0], scored, v)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        token_accuracy.majority_baselines(train, scored + v.size, v)


def test_token_accuracy_loads_neither_scipy_nor_scikit_learn():
    # The study runner computes baselines for every dataset before any worker starts; it must not pay
    # for scipy and scikit-learn (seconds) to count tokens.
    code = ("import sys, musicvae_xai.token_accuracy; "
            "print(sorted(m for m in ('scipy', 'sklearn', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
