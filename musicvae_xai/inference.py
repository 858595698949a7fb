"""Running a trained model over many measures: loading a run, batched encoding and decoding, sweeps.

Evaluation, analysis and the library API (``musicvae_xai.explain``) all reach a trained run through
here, and only through the ``MusicVAE`` interface (``models/base.py``): nothing here asks which model
it holds. Arrays in and out are numpy:

* tokens int32 [N, 24] (ids of the run's vocabulary),
* latent codes float32 [N, Z], controls float32 [N, K] (None for a model whose ``needs_controls`` is
  False), attributes float32 [N, K].

A run is loaded from its directory alone (``config.json``, ``data_statistics.json`` and the latest
checkpoint), and its data from the dataset its configuration names.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from musicvae_xai import attributes as attrs
from musicvae_xai import datasets
from musicvae_xai.datasets.config import DEFAULT_CACHE_DIR, dataset_config
from musicvae_xai.config import DEFAULT_BATCH_SIZE, ConfigError, RunConfig
from musicvae_xai.controls import Control
from musicvae_xai.models.base import MusicVAE
from musicvae_xai.representation import MEASURE_TICKS
from musicvae_xai.training.checkpoints import restore_model



def load_run(run_dir: str, expect_finished: bool = True) -> tuple[RunConfig, MusicVAE]:
    """(config, model) of a trained run, restored from its latest checkpoint.

    Raises ConfigError with one line naming ``run_dir`` and the reason when it is not a folder, has no
    readable ``config.json``, no checkpoint, or (with ``expect_finished``) no ``FINISHED`` marker.
    """
    run_dir = os.fspath(run_dir)
    if not os.path.exists(run_dir):
        raise ConfigError(f"run_dir {run_dir} does not exist")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"run_dir {run_dir} is not a folder")
    try:
        return restore_model(run_dir, expect_finished=expect_finished)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{run_dir}: config.json or data_statistics.json is not valid JSON ({e})") from None
    except TypeError as e:
        raise ConfigError(f"{run_dir}: config.json does not describe a run ({e})") from None
    except ConfigError:
        raise
    except ValueError as e:  # e.g. a variable's shape differs from the configuration's
        raise ConfigError(f"{run_dir}: the checkpoint does not match config.json ({str(e).splitlines()[0]})") from None
    except (tf.errors.OpError, AssertionError) as e:
        first = str(getattr(e, "message", e)).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{run_dir}: cannot restore the checkpoint ({first})") from None


def split_tokens(config: RunConfig, split: str, cache_dir: Optional[str] = None,
                 data_root: Optional[str] = None) -> np.ndarray:
    """int32 [N, 24]: the measures of ``split`` of the dataset the run was trained on.

    The dataset is rebuilt (or its cache reused) from the run's configuration; ``cache_dir`` and
    ``data_root`` override the saved ones (for a run moved to another machine). Raises ValueError or
    FileNotFoundError with one line for an unknown split or missing data.
    """
    if split not in datasets.SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(datasets.SPLITS)}")
    ds_config = dataset_config(config)
    if data_root is not None:
        ds_config = dataclasses.replace(ds_config, data_root=data_root)
    built = datasets.build(ds_config, cache_dir or config.cache_dir or DEFAULT_CACHE_DIR, progress=False)
    if built.vocabulary != config.vocabulary:
        raise ValueError(f"dataset vocabulary {built.vocabulary} differs from the run's {config.vocabulary}")
    return np.asarray(built.tokens(split), dtype=np.int32)


def subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted int64 indices of ``min(n, limit)`` rows out of n, drawn without replacement from ``seed``
    (all rows, in order, when ``limit`` <= 0 or >= n)."""
    if limit <= 0 or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def sample_latent(z_mean: np.ndarray, z_scale: np.ndarray, seed: int) -> np.ndarray:
    """float32 [N, Z]: z_mean + z_scale * eps with eps ~ N(0, I) drawn from numpy ``seed``.

    Drawn here for all N rows at once, so the sample does not depend on the batch size.
    """
    eps = np.random.default_rng(seed).standard_normal(z_mean.shape)
    return (z_mean + z_scale * eps).astype(np.float32)


def control_values(control: Control, steps: int) -> np.ndarray:
    """float32 [steps]: ``steps`` evenly spaced values over the control's range, low to high."""
    if steps < 2:
        raise ValueError(f"a sweep needs at least 2 steps, got {steps}")
    return np.linspace(control.low, control.high, steps).astype(np.float32)


class Runner:
    """Batched, compiled access to one model's ``encode``/``decode``/``apply_controls``.

    Every method takes and returns numpy arrays and splits its input into batches of ``batch_size``
    rows; results do not depend on the input's order or length.
    """

    def __init__(self, model: MusicVAE, batch_size: int = DEFAULT_BATCH_SIZE):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.vocabulary = model.vocabulary
        self.latent_dim = int(model.config.latent_dim)
        self.needs_controls = bool(model.needs_controls)
        self.controls: list = list(model.controls)
        self.attribute_names: tuple = tuple(model.attribute_names)

        tokens_spec = tf.TensorSpec([None, MEASURE_TICKS], tf.int32)
        z_spec = tf.TensorSpec([None, self.latent_dim], tf.float32)

        @tf.function(input_signature=[tokens_spec])
        def encode(tokens):
            out = model.encode(tokens)
            return out["z_mean"], out["z_scale"]

        allowed_spec = tf.TensorSpec([None, self.vocabulary.size], tf.bool)
        if self.needs_controls:
            c_spec = tf.TensorSpec([None, None], tf.float32)

            @tf.function(input_signature=[z_spec, c_spec])
            def decode(z, controls):
                return model.decode(z, controls)["tokens"]

            @tf.function(input_signature=[z_spec, c_spec, allowed_spec])
            def decode_allowed(z, controls, allowed):
                return model.decode(z, controls, allowed=allowed)["tokens"]
        else:
            @tf.function(input_signature=[z_spec])
            def decode(z):
                return model.decode(z)["tokens"]

            @tf.function(input_signature=[z_spec, allowed_spec])
            def decode_allowed(z, allowed):
                return model.decode(z, allowed=allowed)["tokens"]
        self._encode, self._decode, self._decode_allowed = encode, decode, decode_allowed

    def _batches(self, n: int):
        for start in range(0, n, self.batch_size):
            yield slice(start, min(n, start + self.batch_size))

    def check_tokens(self, tokens) -> np.ndarray:
        return self.model.check_tokens(tokens)

    def encode(self, tokens) -> tuple[np.ndarray, np.ndarray]:
        """tokens int [N, 24] -> (z_mean, z_scale), float32 [N, Z] each (the posterior's parameters)."""
        tokens = self.check_tokens(tokens)
        means, scales = [np.zeros((0, self.latent_dim), np.float32)], [np.zeros((0, self.latent_dim), np.float32)]
        for s in self._batches(len(tokens)):
            m, sc = self._encode(tf.constant(tokens[s]))
            means.append(m.numpy())
            scales.append(sc.numpy())
        return np.concatenate(means), np.concatenate(scales)

    def default_controls(self, tokens) -> Optional[np.ndarray]:
        """float32 [N, K]: the controls that describe ``tokens`` (None for a model without controls)."""
        if not self.needs_controls:
            return None
        tokens = self.check_tokens(tokens)
        parts = [np.asarray(self.model.default_controls(tf.constant(tokens[s])), np.float32)
                 for s in self._batches(len(tokens))]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.controls)), np.float32)

    def decode(self, z, controls=None, allowed=None) -> np.ndarray:
        """Greedy decoding: z float [N, Z] (+ controls float [N, K]) -> tokens int32 [N, 24].

        allowed: bool [V] or [N, V], the tokens decoding may choose (e.g. ``keys.allowed_rows``): each
        tick takes the most probable allowed token and feeds it back (``MusicVAE.decode``); None: any."""
        z = self.model.check_latent(z)
        if self.needs_controls:
            if controls is None:
                raise ValueError("this model's decoder needs controls [N, K] (see default_controls)")
            controls = np.asarray(controls, np.float32)
            if controls.ndim != 2 or len(controls) != len(z):
                raise ValueError(f"controls must have shape [{len(z)}, K], got {list(controls.shape)}")
        if allowed is not None:
            allowed = np.broadcast_to(np.asarray(allowed, bool), (len(z), self.vocabulary.size))
        out = [np.zeros((0, MEASURE_TICKS), np.int32)]
        for s in self._batches(len(z)):
            args = (tf.constant(z[s]),) + ((tf.constant(controls[s]),) if self.needs_controls else ())
            if allowed is None:
                out.append(self._decode(*args).numpy())
            else:
                out.append(self._decode_allowed(*args, tf.constant(allowed[s])).numpy())
        return np.concatenate(out).astype(np.int32)

    def sweep(self, z, controls, index: int, values, allowed=None) -> np.ndarray:
        """Decodes every row of z [B, Z] (+ controls [B, K]) with control ``index`` set to each of
        ``values`` [S], everything else fixed -> tokens int32 [B, S, 24]. allowed: bool [V] or [B, V]
        (row b's mask for each of its S outputs), as ``decode`` takes it."""
        z = self.model.check_latent(z)
        values = np.asarray(values, np.float32).reshape(-1)
        if not 0 <= index < len(self.controls):
            raise ValueError(f"control index {index} out of range: the model has {len(self.controls)} controls")
        if self.needs_controls and controls is None:
            raise ValueError("this model's decoder needs controls [B, K] (see default_controls)")
        b, s = len(z), len(values)
        if allowed is not None:
            allowed = np.broadcast_to(np.asarray(allowed, bool), (b, self.vocabulary.size))
        rows = max(1, self.batch_size // max(s, 1))
        out = [np.zeros((0, s, MEASURE_TICKS), np.int32)]
        for start in range(0, b, rows):
            part = slice(start, min(b, start + rows))
            c = None if controls is None else np.asarray(controls, np.float32)[part]
            z_rep, c_rep = self.model.apply_controls(tf.constant(z[part]), c, index, tf.constant(values))
            mask = None if allowed is None else np.repeat(allowed[part], s, axis=0)
            tokens = self.decode(np.asarray(z_rep), None if c_rep is None else np.asarray(c_rep), mask)
            out.append(tokens.reshape(-1, s, MEASURE_TICKS))
        return np.concatenate(out)

    def attributes(self, tokens, names: Optional[Sequence[str]] = None) -> np.ndarray:
        """float32 [..., K]: the named attributes (default: the model's) of token ids [..., 24]."""
        tokens = np.asarray(tokens)
        names = self.attribute_names if names is None else tuple(names)
        flat = attrs.compute(tokens.reshape(-1, MEASURE_TICKS), self.vocabulary, names)
        return flat.reshape(tokens.shape[:-1] + (len(names),))

    def find_control(self, key) -> tuple[int, Control]:
        """(index, Control) for a control given by index, name (e.g. ``z[0]``) or attribute name."""
        if isinstance(key, Control):
            key = key.name
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if not 0 <= key < len(self.controls):
                raise ValueError(f"control index {key} out of range: the model has {len(self.controls)} controls")
            return int(key), self.controls[key]
        for i, c in enumerate(self.controls):
            if key in (c.name, c.attribute):
                return i, c
        known = ", ".join(f"{c.name} ({c.attribute})" for c in self.controls)
        raise ValueError(f"no control {key!r}; the model's controls are {known}")

    def control_coordinates(self, z: np.ndarray, controls: Optional[np.ndarray]) -> np.ndarray:
        """float32 [N, C]: where each row sits on every control (its latent dim, or its control input)."""
        cols = []
        for c in self.controls:
            if c.in_latent:
                cols.append(np.asarray(z)[:, c.index])
            else:
                if controls is None:
                    raise ValueError(f"control {c.name} is a decoder input but no controls were given")
                cols.append(np.asarray(controls)[:, c.index])
        return np.stack(cols, axis=1).astype(np.float32) if cols else np.zeros((len(z), 0), np.float32)
