"""Token-level reconstruction accuracies and their majority-token baselines, on token ids int [N, T].

N measures of T ticks (24 for a 4/4 measure) as ids of a ``representation.Vocabulary``. *Token accuracy*
counts every tick; *note accuracy* counts only the ticks whose target is a pitch or ``rest``
(:func:`note_tick_mask`), so that ``hold``, the majority token, and the ``start``/``end`` padding around a
piece do not inflate it (docs/FIDELITY.md, "Note accuracy"). The baselines say what a model must beat:
the most frequent training token everywhere, and per tick position.

Only numpy: the study runner computes baselines without loading scipy or scikit-learn. Every function
returns plain Python values except :func:`note_tick_mask` (a bool array). Arrays of the wrong rank or a
non-integer dtype raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np


def _check_tokens(tokens, name: str) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array [N, ticks], got {tokens.dtype} {tokens.shape}")
    return tokens


def note_tick_mask(tokens, vocabulary) -> np.ndarray:
    """bool, same shape as ``tokens``: True where the token is a pitch or ``rest``.

    These are the ticks note accuracy counts; ``hold`` (a note or rest going on) and the ``start``/``end``
    padding before and after a piece are left out. ``vocabulary`` is a ``representation.Vocabulary``.
    """
    tokens = np.asarray(tokens)
    return vocabulary.is_pitch(tokens) | (tokens == vocabulary.rest_id)


def reconstruction_accuracy(predicted, target, vocabulary) -> dict:
    """Token and note accuracy of predicted token ids against the target ids (both int [N, T]).

    Returns {"token_accuracy": fraction of all N * T ticks right, "note_accuracy": the same over the
    ticks where ``note_tick_mask(target)`` holds (0.0 when there is none)}.
    """
    predicted, target = _check_tokens(predicted, "predicted"), _check_tokens(target, "target")
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {predicted.shape} and target {target.shape} differ in shape")
    hit = predicted == target
    notes = note_tick_mask(target, vocabulary)
    return {"token_accuracy": float(hit.mean()) if hit.size else 0.0,
            "note_accuracy": float(hit[notes].mean()) if notes.any() else 0.0}


def majority_baselines(train_tokens, tokens, vocabulary) -> dict:
    """Majority-token baselines fitted on ``train_tokens`` and scored on ``tokens`` (both int [N, T]).

    The *majority* predictor outputs the most frequent training token at every tick; the *per-tick
    majority* predictor outputs, at tick position t, the most frequent training token at t (the lowest
    id on ties). Both are scored on ``tokens``, the measures whose model accuracies they are compared
    with, by :func:`reconstruction_accuracy` (note accuracy over pitch and rest targets only).

    Returns:
      {"majority_token": str (the token, e.g. "hold"), "majority_token_accuracy": float,
       "majority_note_accuracy": float, "per_tick_majority_token_accuracy": float,
       "per_tick_majority_note_accuracy": float, "measures": int (rows of tokens),
       "train_measures": int}.
    """
    train, tokens = _check_tokens(train_tokens, "train_tokens"), _check_tokens(tokens, "tokens")
    if not len(train) or not len(tokens):
        raise ValueError(f"need at least one training and one scored measure, got {len(train)} and {len(tokens)}")
    if train.shape[1] != tokens.shape[1]:
        raise ValueError(f"train_tokens have {train.shape[1]} ticks per measure but tokens {tokens.shape[1]}")
    if train.min() < 0 or max(train.max(), tokens.max()) >= vocabulary.size or tokens.min() < 0:
        raise ValueError(f"token ids outside the vocabulary [0, {vocabulary.size})")
    majority = int(np.argmax(np.bincount(train.ravel(), minlength=vocabulary.size)))
    per_tick = np.array([np.argmax(np.bincount(col, minlength=vocabulary.size)) for col in train.T])
    glob = reconstruction_accuracy(np.full_like(tokens, majority), tokens, vocabulary)
    tick = reconstruction_accuracy(np.broadcast_to(per_tick, tokens.shape).astype(tokens.dtype), tokens,
                                   vocabulary)
    return {"majority_token": str(vocabulary.decode_id(majority)),
            "majority_token_accuracy": glob["token_accuracy"],
            "majority_note_accuracy": glob["note_accuracy"],
            "per_tick_majority_token_accuracy": tick["token_accuracy"],
            "per_tick_majority_note_accuracy": tick["note_accuracy"],
            "measures": int(len(tokens)), "train_measures": int(len(train))}
