"""The exported graph: a trained ``MusicVAE`` behind the serving signatures (``serving.signatures``).

``ServingModule`` is the ``tf.Module`` that ``musicvae_xai.export`` saves. Its signatures are traced
once per model part (encoder, decoder, attribute functions shared by every signature) and check their
inputs at run time, in the graph, because TensorFlow Serving feeds tensors without checking them
against the declared shapes: a wrong shape, a token id outside the vocabulary or a control out of
range fails with ``InvalidArgument`` naming the input and what was expected. Float inputs (``z``,
``controls``, ``values``) must also be finite with ``|value| <= signatures.MAX_ABS_INPUT``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from musicvae_xai.representation import MEASURE_TICKS
from musicvae_xai.serving import signatures as sigs


def _check_shape(x: tf.Tensor, name: str, dtype: str, shape: tuple) -> tf.Tensor:
    """Runtime shape check of a signature input (shape: -1 = any); returns x behind the assertion.

    Built from raw Shape/Size ops of the fed tensor so that neither Python nor Grappler folds it
    away on the strength of the declared placeholder shape (TF-Serving feeds without checking).
    """
    actual = tf.raw_ops.Shape(input=x, out_type=tf.int32)
    rank = tf.raw_ops.Size(input=actual, out_type=tf.int32)
    padded = tf.concat([actual, tf.fill([max(len(shape), 1)], -1)], axis=0)
    ok = tf.equal(rank, len(shape))
    for i, dim in enumerate(shape):
        if dim != -1:
            ok = tf.logical_and(ok, tf.equal(padded[i], dim))
    check = tf.debugging.Assert(ok, [f"input {name}: expected {sigs.describe(dtype, shape, name)}, got shape",
                                     actual], summarize=8)
    with tf.control_dependencies([check]):
        return tf.identity(x)


def _check_values(x: tf.Tensor, name: str) -> tf.Tensor:
    """Runtime check that every value of float input ``x`` is finite with ``|x| <= MAX_ABS_INPUT``
    (NaN or inf would decode to token id 0 with NaN probabilities); returns x behind the assertion."""
    bound = float(sigs.MAX_ABS_INPUT)
    finite = tf.math.is_finite(x)
    ok = tf.reduce_all(tf.logical_and(finite, tf.abs(x) <= bound))
    worst = tf.reduce_max(tf.abs(x))  # nan/inf when that is the problem
    n_bad = tf.reduce_sum(tf.cast(tf.logical_not(tf.logical_and(finite, tf.abs(x) <= bound)), tf.int32))
    check = tf.debugging.Assert(ok, [f"input {name}: values must be finite with |value| <= {bound:g}, got",
                                     n_bad, "bad values, largest |value|", worst])
    with tf.control_dependencies([check]):
        return tf.identity(x)


def _check_tokens(tokens: tf.Tensor, vocab_size: int) -> tf.Tensor:
    tokens = _check_shape(tokens, "tokens", "int32", (-1, MEASURE_TICKS))
    empty = tf.equal(tf.size(tokens), 0)
    lo, hi = tf.reduce_min(tokens), tf.reduce_max(tokens)
    ok = tf.logical_or(empty, tf.logical_and(lo >= 0, hi < vocab_size))
    check = tf.debugging.Assert(ok, [f"input tokens: token ids must be in [0, {vocab_size}) "
                                     f"(vocabulary of {vocab_size} tokens), got ids from", lo, "to", hi])
    with tf.control_dependencies([check]):
        return tf.identity(tokens)


class _Untracked:
    """Holds an object without making it a dependency of a ``tf.Module``."""

    def __init__(self, value):
        self.value = value


class ServingModule(tf.Module):
    """The exported object: a trained ``MusicVAE`` behind the serving signatures.

    Written against the ``MusicVAE`` interface only (``needs_controls`` decides whether ``decode``
    takes controls and what ``traverse``'s ``control`` indexes: a latent dim of z in [0, Z) for a
    model without controls, an entry of the controls vector in [0, K) otherwise).
    ``sample_controls`` float32 [K]: the controls ``sample`` decodes with when the model needs them.
    """

    def __init__(self, model, sample_controls: Optional[np.ndarray] = None):
        super().__init__(name="musicvae_serving")
        self._model_holder = _Untracked(model)
        cfg = model.config
        self.latent_dim = int(cfg.latent_dim)
        self.num_attributes = len(model.attribute_names)
        self.vocab_size = int(model.vocabulary.size)
        self.needs_controls = bool(model.needs_controls)
        self.num_controls = len(model.controls) if self.needs_controls else self.latent_dim
        self._sample_controls = None
        if self.needs_controls:
            values = np.asarray(sample_controls, np.float32).reshape(-1)
            if values.shape != (self.num_attributes,):
                raise ValueError(f"sample controls must have {self.num_attributes} values, got {values.shape}")
            self._sample_controls = tf.constant(values)
        spec = sigs.expected_signatures(self.latent_dim, self.num_attributes, self.vocab_size, self.needs_controls)
        self.spec = spec

        def specs(name):
            return [tf.TensorSpec([None if d == -1 else d for d in shape], tf.as_dtype(dtype), name=key)
                    for key, (dtype, shape) in spec[name]["inputs"].items()]

        # The model's graph is traced once per part (encoder, decoder, attributes) and shared by every
        # signature, which keeps saved_model.pb small and loading fast.
        tokens_spec = tf.TensorSpec([None, MEASURE_TICKS], tf.int32)
        z_spec = tf.TensorSpec([None, self.latent_dim], tf.float32)
        self._encoder_core = tf.function(self._encoder_body, input_signature=[tokens_spec], autograph=False)
        self._attributes_core = tf.function(model.measure_attributes, input_signature=[tokens_spec],
                                            autograph=False)
        if self.needs_controls:
            c_spec = tf.TensorSpec([None, self.num_attributes], tf.float32)
            self._decoder_core = tf.function(self._decoder_body, input_signature=[z_spec, c_spec], autograph=False)
        else:
            self._decoder_core = tf.function(self._decoder_body, input_signature=[z_spec], autograph=False)
        self.encode = tf.function(self._encode, input_signature=specs(sigs.ENCODE), autograph=False)
        decode_fn = self._decode_with_controls if self.needs_controls else self._decode
        self.decode = tf.function(decode_fn, input_signature=specs(sigs.DECODE), autograph=False)
        self.reconstruct = tf.function(self._reconstruct, input_signature=specs(sigs.RECONSTRUCT), autograph=False)
        self.traverse = tf.function(self._traverse, input_signature=specs(sigs.TRAVERSE), autograph=False)
        self.sample = tf.function(self._sample, input_signature=specs(sigs.SAMPLE), autograph=False)
        # The SavedModel must own the tf.Variables the traced functions capture (the values behind
        # the Keras variables): TF-Serving's loader restores only variables of the object graph,
        # so tracking the Keras model instead would leave the captured ones uninitialised there.
        captured = {}
        for fn in self.signatures().values():
            for v in fn.variables:
                captured.setdefault(id(v), v)
        self.captured_variables = list(captured.values())

    @property
    def model(self):
        """The wrapped ``MusicVAE`` (deliberately not a SavedModel dependency)."""
        return self._model_holder.value

    def signatures(self) -> dict:
        """name -> concrete function, for ``tf.saved_model.save``; includes ``serving_default``."""
        out = {name: getattr(self, name).get_concrete_function() for name in sigs.SIGNATURES}
        out[sigs.SERVING_DEFAULT] = getattr(self, sigs.DEFAULT_ALIAS).get_concrete_function()
        return out

    # -- shared parts ----------------------------------------------------------------------------
    def _encoder_body(self, tokens):
        enc = self.model.encode(tokens)
        return enc["z_mean"], enc["z_scale"]

    def _decoder_body(self, z, controls=None):
        out = self.model.decode(z, controls)
        return out["tokens"], out["probabilities"]

    def _default_controls(self, tokens):
        return self.model.default_controls(tokens) if self.needs_controls else None

    def _run_decoder(self, z, controls):
        return self._decoder_core(z, controls) if self.needs_controls else self._decoder_core(z)

    # -- the signature bodies --------------------------------------------------------------------
    def _latent(self, z):
        return _check_values(_check_shape(z, "z", "float32", (-1, self.latent_dim)), "z")

    def _encode(self, tokens):
        tokens = _check_tokens(tokens, self.vocab_size)
        mean, scale = self._encoder_core(tokens)
        return {"z_mean": mean, "z_scale": scale, "attributes": self._attributes_core(tokens)}

    def _decode(self, z):
        tokens, probabilities = self._decoder_core(self._latent(z))
        return {"tokens": tokens, "probabilities": probabilities}

    def _decode_with_controls(self, z, controls):
        z = self._latent(z)
        controls = _check_values(_check_shape(controls, "controls", "float32", (-1, self.num_attributes)),
                                 "controls")
        same = tf.debugging.Assert(tf.equal(tf.shape(z)[0], tf.shape(controls)[0]),
                                   ["inputs z and controls must have the same batch size B, got",
                                    tf.shape(z)[0], "and", tf.shape(controls)[0]])
        with tf.control_dependencies([same]):
            tokens, probabilities = self._decoder_core(z, tf.identity(controls))
        return {"tokens": tokens, "probabilities": probabilities}

    def _reconstruct(self, tokens):
        tokens = _check_tokens(tokens, self.vocab_size)
        z, _ = self._encoder_core(tokens)
        return {"tokens": self._run_decoder(z, self._default_controls(tokens))[0]}

    def _traverse(self, tokens, control, values):
        tokens = _check_tokens(tokens, self.vocab_size)
        control = _check_shape(control, "control", "int32", ())
        values = _check_values(_check_shape(values, "values", "float32", (-1,)), "values")
        what = "a control index" if self.needs_controls else "a latent dim of z"
        in_range = tf.debugging.Assert(
            tf.logical_and(control >= 0, control < self.num_controls),
            [f"input control: expected {what} in [0, {self.num_controls}), got", control])
        with tf.control_dependencies([in_range]):
            control = tf.identity(control)
        z, _ = self._encoder_core(tokens)
        z_sweep, c_sweep = self.model.apply_controls(z, self._default_controls(tokens), control, values)
        decoded = self._run_decoder(z_sweep, c_sweep)[0]
        b, s = tf.shape(tokens)[0], tf.shape(values)[0]
        return {"tokens": tf.reshape(decoded, [b, s, MEASURE_TICKS]),
                "attributes": tf.reshape(self._attributes_core(decoded), [b, s, self.num_attributes])}

    def _sample(self, z):
        z = self._latent(z)
        controls = None
        if self.needs_controls:
            controls = tf.tile(self._sample_controls[None, :], [tf.shape(z)[0], 1])
        return {"tokens": self._run_decoder(z, controls)[0]}


def sample_controls(model, stats: Optional[dict]) -> Optional[np.ndarray]:
    """float32 [K]: the training-set mean of each attribute (the middle of each control's range
    when the run has no data statistics); None for a model without controls."""
    if not model.needs_controls:
        return None
    names = list(model.attribute_names)
    if stats and list(stats.get("attributes", [])) == names and "mean" in stats:
        return np.asarray(stats["mean"], np.float32)
    return np.array([(c.low + c.high) / 2.0 for c in model.controls], np.float32)
