"""The one interface every model offers to the rest of the library.

Evaluation, analysis, export and the explorer hold a ``MusicVAE`` and never ask which one it is:

* ``encode(tokens)``: int32 [B, 24] -> dict ``z_mean``, ``z_scale`` float32 [B, Z] and ``z`` [B, Z]
  (a sample when a seed is given, else the mean).
* ``decode(z, controls=None)``: z float32 [B, Z] (+ controls float32 [B, K] for a model whose
  ``needs_controls`` is True) -> dict ``tokens`` int32 [B, 24], ``probabilities`` float32 [B, 24, V],
  greedy decoding, no teacher forcing.
* ``controls``: a list of ``controls.Control``: what a person can turn (a regularised latent dim for MeasureVAE,
  an attribute input for AdversarialVAE), with the attribute it is meant to move and its range.
* ``apply_controls(z, controls, index, values)``: set control ``index`` to ``values``; used by
  traversals so they need not know where a control lives.

Nothing returned is a ``tfd.Distribution``: distributions stay inside the models.
Training is model-specific: ``train_step_replica`` runs one step on one replica's share of the batch
and applies the model's own optimiser(s), created by ``make_optimizers``.
"""

from __future__ import annotations

import abc
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from musicvae_xai.config import RunConfig
from musicvae_xai.models import registry
from musicvae_xai.models.layers import RNG_ALG
from musicvae_xai.representation import MEASURE_TICKS
from musicvae_xai.tf_attributes import tf_compute


def step_seed(base_seed: int, step, salt: int) -> tf.Tensor:
    """int32 [2] stateless seed for one random draw of one training step."""
    return tf.stack([tf.constant(base_seed, tf.int32) * 1000003 + salt, tf.cast(step, tf.int32)])


class MusicVAE(keras.Model, metaclass=abc.ABCMeta):
    """Base class: shared plumbing for every model. Subclasses implement the abstract methods (a class
    that misses one cannot be built: TypeError naming it)."""

    needs_controls = False

    def __init__(self, config: RunConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.vocabulary = config.vocabulary
        self.attribute_names = tuple(config.attributes)

    # -- the shared interface ------------------------------------------------------------------
    def encode(self, tokens, seed: Optional[tf.Tensor] = None, training: bool = False, row_offset=0,
               global_batch_size=None) -> dict:
        """tokens int32 [B, 24] -> {"z_mean", "z_scale", "z"}: float32 [B, Z] each.

        ``self.encoder`` maps tokens to the posterior's mean and scale; ``z`` is a sample (the mean when
        ``seed`` is None). With ``seed`` and ``training``, dropout is on; ``row_offset`` and
        ``global_batch_size`` place these rows in the global batch (see ``sample_latent``).
        """
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        dropout_seed = None if (seed is None or not training) else tf.random.experimental.stateless_fold_in(seed, 1)
        mean, scale = self.encoder(tokens, seed=dropout_seed, row_offset=row_offset,
                                   global_rows=global_batch_size)
        z_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, 2)
        z = self.sample_latent(mean, scale, z_seed, row_offset, global_batch_size)
        return {"z_mean": mean, "z_scale": scale, "z": z}

    @abc.abstractmethod
    def decode(self, z, controls=None, allowed=None) -> dict:
        """Greedy decoding: z float32 [B, Z] (+ controls float32 [B, K] when ``needs_controls``) ->
        {"tokens" int32 [B, 24], "probabilities" float32 [B, 24, V]}. allowed bool [B, V]: the tokens
        decoding may choose at every tick (the token fed back is then always allowed; the others get
        probability 0); None: any."""

    @property
    @abc.abstractmethod
    def controls(self) -> list:
        """The ``controls.Control`` a person can turn (empty for a model without controls)."""

    @abc.abstractmethod
    def apply_controls(self, z, controls, index: int, values):
        """Broadcast a sweep: z [B, Z], controls [B, K] or None, values [S] ->
        (z [B*S, Z], controls [B*S, K] or None) with control ``index`` set to each value."""

    @abc.abstractmethod
    def build_all(self) -> None:
        """Creates every weight (and initialises them as ``config.init`` says)."""

    def default_controls(self, tokens) -> Optional[tf.Tensor]:
        """The controls that reproduce ``tokens`` ([B, K] attribute values), or None if not used."""
        return None

    # -- training ------------------------------------------------------------------------------
    @abc.abstractmethod
    def make_optimizers(self) -> dict:
        """{name: keras optimiser} that ``train_step_replica`` applies."""

    @abc.abstractmethod
    def train_step_replica(self, optimizers, tokens, attributes, step, global_batch_size, row_offset) -> dict:
        """One step on this replica's rows; applies ``optimizers`` (from ``make_optimizers``)."""

    @abc.abstractmethod
    def eval_metrics(self, tokens, attributes) -> dict:
        """Scalar metrics of one batch without teacher forcing (no parameter updates)."""

    # -- helpers shared by both models ---------------------------------------------------------
    def measure_attributes(self, tokens) -> tf.Tensor:
        """float32 [..., K]: the model's attributes of int token ids [..., 24]."""
        return tf_compute(tokens, self.vocabulary, self.attribute_names)

    def check_tokens(self, tokens) -> np.ndarray:
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != MEASURE_TICKS:
            raise ValueError(f"tokens must have shape [B, {MEASURE_TICKS}], got {list(tokens.shape)}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.vocabulary.size):
            raise ValueError(f"token ids must be in [0, {self.vocabulary.size}), got "
                             f"{int(tokens.min())}..{int(tokens.max())}")
        return tokens.astype(np.int32)

    def check_latent(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(f"z must have shape [B, {self.config.latent_dim}], got {list(z.shape)}")
        return z

    def sample_latent(self, mean, scale, seed, row_offset=0, global_batch_size=None):
        """mean + scale * eps, with eps drawn for the whole global batch and sliced to these rows,
        so that the draw does not depend on how the batch is split over replicas."""
        if seed is None:
            return mean
        rows = tf.shape(mean)[0] if global_batch_size is None else global_batch_size
        eps = tf.random.stateless_normal([rows, tf.shape(mean)[1]], seed=seed, alg=RNG_ALG)
        eps = eps[row_offset:row_offset + tf.shape(mean)[0]]
        return mean + scale * eps


def controls_sweep(z, controls, index: int, values, control_in_latent: bool):
    """Shared sweep helper: repeats z/controls S times and writes ``values`` into the control slot."""
    z = tf.convert_to_tensor(z, tf.float32)
    values = tf.convert_to_tensor(values, tf.float32)
    b, s = tf.shape(z)[0], tf.shape(values)[0]
    z_rep = tf.repeat(z, s, axis=0)
    vals = tf.tile(values, [b])
    if control_in_latent:
        onehot = tf.one_hot(index, tf.shape(z)[1], dtype=tf.float32)
        return z_rep * (1.0 - onehot) + vals[:, None] * onehot, None
    c = tf.convert_to_tensor(controls, tf.float32)
    c_rep = tf.repeat(c, s, axis=0)
    onehot = tf.one_hot(index, tf.shape(c)[1], dtype=tf.float32)
    return z_rep, c_rep * (1.0 - onehot) + vals[:, None] * onehot


def build_model(config: RunConfig, data_statistics: Optional[dict] = None) -> MusicVAE:
    """The model named by ``config.model``, built (weights created) and ready to train or restore.

    Seeds Python, numpy and TensorFlow with ``config.seed`` first, so the initial weights depend on
    the seed alone. The class comes from ``models.registry`` (this module does not know the models).
    """
    config.validate()
    spec = registry.spec(config.model)
    cls = spec.load()
    keras.utils.set_random_seed(config.seed)
    model = cls(config, data_statistics=data_statistics) if spec.data_statistics else cls(config)
    model.build_all()
    return model
