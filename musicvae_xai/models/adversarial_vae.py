"""AdversarialVAE: a Fader-style VAE whose decoder takes the attributes as explicit controls (docs/METHOD.md section 5).

The reference is Kawai et al.'s ``FaderVAE`` and ``Classifier`` (lisakawai/music_transformation_ismir,
``model.py``, ``train.py``); docs/FIDELITY.md lists every component and each flag that departs from it.

Encoder: one-hot tokens (``one_hot_inputs``; else a learned embedding) -> ``adversarial_encoder_layers``
(reference 1) bidirectional GRU layers -> final states [B, 2H] -> Linear to the mean and to log sigma of
a diagonal Gaussian posterior over z [B, Z] (``layers.TokenEncoder``). Prior N(0, I).

Decoder: a stack of GRU cells that runs the 24 ticks; the input of its first layer at every step is
[previous token (one-hot), z, normalised attribute values]. Initial state (reference): h1 = tanh(Linear(z
-> H)); at t = 0 each higher layer starts from the new state of the layer below
(``adversarial_state_per_layer`` gives every layer its own tanh(Linear([z, a])) instead). Output Dense ->
logits over the vocabulary [B, 24, V]. The z-and-attributes part of the input projection is constant
over the sequence, so it is one matmul per sequence, and the token part is a [V, 3H] lookup table.

Discriminator: an MLP on z (reference: ``discriminator_layers - 1`` hidden Linear + LeakyReLU layers,
each halving the width, z -> z/2 -> ...; ``discriminator_hidden`` > 0 fixes the width) predicting, per
attribute, its ordinal class among C bins (edges = the C-quantiles of the training split) through C-1
cumulative sigmoid outputs, trained with binary cross-entropy (``losses.ordinal_*``).

Each training step (1) updates the discriminator on the sampled z with the encoder's gradients
stopped, then (2) updates encoder and decoder with reconstruction + lambda_d * BCE(D(z), flipped
targets) + lambda_kl * KL, the KL term a mean over latent dims and batch as in FaderVAE
(``losses.kl_loss_mean_over_dims``; the reported ``kl`` metric stays nats per measure, summed over dims).
Two Adam optimisers, each clipping the global gradient norm (1.0 unless ``clip_norm`` says otherwise).
Scheduled sampling: at step s the target token is fed back with probability k / (k + exp(s / k)), one
coin per tick for the whole batch as in FaderVAE (``sampling_coin='token'``: one per example and tick).

The training-split statistics (attribute mean/std for normalisation, min/max = the control range,
bin edges) are non-trainable weights, so checkpoints and exports carry them.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.controls import ATTRIBUTE_INPUT, Control
from musicvae_xai.models import losses, optim
from musicvae_xai.models.base import MusicVAE, controls_sweep, step_seed
from musicvae_xai.models.gru import feedback_ticks
from musicvae_xai.models.layers import (RNG_ALG, FusedGRUCell, TokenEncoder, autoregressive_tick,
                                        feedback_layers, mask_logits, reference_initialise, token_embedding,
                                        track_for_checkpoints)
from musicvae_xai.representation import MEASURE_TICKS

#: Gradient-norm clipping of both optimisers when ``clip_norm`` is 0 (docs/METHOD.md section 5).
DEFAULT_CLIP_NORM = 1.0
#: Smallest standard deviation used to normalise an attribute (a constant attribute maps to 0).
MIN_STD = 1e-6
_STAT_KEYS = ("min", "max", "mean", "std")


def teacher_forcing_probability(step, k: float) -> tf.Tensor:
    """float32 scalar k / (k + exp(step / k)): the scheduled-sampling teacher-forcing probability."""
    s = tf.cast(step, tf.float32)
    k = tf.constant(float(k), tf.float32)
    return k / (k + tf.exp(tf.minimum(s / k, 80.0)))  # exp(80) is finite in float32


def check_statistics(stats: dict, attribute_names, num_bins: int) -> dict:
    """Validates training-split statistics (see ``training.loop.data_statistics``); returns float arrays.

    Raises ConfigError (one line) when they describe other attributes or another number of bins.
    """
    k = len(attribute_names)
    names = tuple(stats.get("attributes", ()))
    if names != tuple(attribute_names):
        raise ConfigError(f"data statistics describe attributes {list(names)}, the model uses "
                          f"{list(attribute_names)}")
    out = {}
    for key in _STAT_KEYS:
        arr = np.asarray(stats.get(key, ()), np.float32)
        if arr.shape != (k,) or not np.all(np.isfinite(arr)):
            raise ConfigError(f"data statistics {key!r} must be {k} finite numbers, got {stats.get(key)!r}")
        out[key] = arr
    edges = np.asarray(stats.get("bin_edges", ()), np.float32)
    if edges.shape != (k, num_bins - 1) or not np.all(np.isfinite(edges)):
        raise ConfigError(f"data statistics 'bin_edges' must have shape [{k}, {num_bins - 1}] "
                          f"(num_bins={num_bins}), got shape {list(edges.shape)}")
    out["bin_edges"] = np.sort(edges, axis=1)
    out["std"] = np.maximum(out["std"], MIN_STD)
    return out


def _placeholder_statistics(k: int, num_bins: int) -> dict:
    """Values a model built without statistics holds until a checkpoint restores the real ones."""
    edges = np.tile(np.linspace(0.0, 1.0, num_bins + 1)[1:-1], (k, 1))
    return {"min": np.zeros(k), "max": np.ones(k), "mean": np.zeros(k), "std": np.ones(k), "bin_edges": edges}


class ConditionedDecoder(keras.layers.Layer):
    """(z [B, Z], normalised controls [B, K]) -> logits float32 [B, 24, V].

    Feeds back its own argmax, or the target token where ``teacher_force`` is True.
    """

    #: Training runs the ticks through ``gru.feedback_ticks`` (same values, time-batched gradient); False:
    #: through the step-by-step loop inference uses (tests compare the two).
    time_batched_gradient = True

    def __init__(self, vocab_size, embedding_dim, hidden, num_layers, start_id, one_hot=True,
                 state_per_layer=False, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.hidden = vocab_size, hidden
        self.embedding_dim = vocab_size if one_hot else embedding_dim
        self.num_layers, self.start_id, self.state_per_layer = num_layers, start_id, state_per_layer
        self.token_embedding = token_embedding(vocab_size, embedding_dim, one_hot, "token_embedding")
        units = num_layers * hidden if state_per_layer else hidden
        self.initial_state = keras.layers.Dense(units, activation="tanh", name="initial_state")
        self.cells = [FusedGRUCell(hidden, name=f"gru_{i}") for i in range(num_layers)]
        track_for_checkpoints(self, "cell", self.cells)
        self.output_layer = keras.layers.Dense(vocab_size, name="logits")

    def build_for(self, latent_dim: int, num_controls: int):
        """Creates the weights for z [B, latent_dim] and controls [B, num_controls]."""
        condition_dim = latent_dim + num_controls
        self.token_embedding.build((None,))
        self.initial_state.build((None, condition_dim if self.state_per_layer else latent_dim))
        self.cells[0].build((None, self.embedding_dim + condition_dim))
        for cell in self.cells[1:]:
            cell.build((None, self.hidden))
        self.output_layer.build((None, self.hidden))
        self.built = True

    def _first_step(self, first_proj: tf.Tensor, h1: tf.Tensor) -> list:
        """FaderVAE's t = 0: layer 1 steps from h1; each higher layer starts from the new state below."""
        states = [self.cells[0].step(first_proj, h1)]
        for cell in self.cells[1:]:
            states.append(cell.step(cell.project_inputs(states[-1]), states[-1]))
        return states

    def call(self, z, controls, targets=None, teacher_force=None, allowed=None):
        """z float32 [B, Z]; controls float32 [B, K] (normalised); targets int32 [B, 24];
        teacher_force bool, a scalar, [24] (one coin per tick) or [B, 24]: where True, the next step is
        fed targets[:, t]; allowed bool [B, V] (inference): the tokens each tick may choose."""
        condition = tf.concat([z, controls], axis=-1)
        batch = tf.shape(z)[0]
        first, e = self.cells[0], self.embedding_dim
        token_table = tf.matmul(self.token_embedding.embeddings, first.input_kernel[:e])  # [V, 3H]
        constant = tf.matmul(condition, first.input_kernel[e:]) + first.input_bias  # [B, 3H], once
        use_targets = targets is not None and teacher_force is not None
        if use_targets:
            targets = tf.cast(targets, tf.int32)
            forced = tf.broadcast_to(tf.convert_to_tensor(teacher_force, tf.bool), [batch, MEASURE_TICKS])
        prev = tf.fill([batch], tf.constant(self.start_id, tf.int32))
        if self.state_per_layer:
            states = tf.split(self.initial_state(condition), self.num_layers, axis=-1)
        if use_targets and self.time_batched_gradient:  # training: the same ticks, with a time-batched gradient
            return self._train_ticks(token_table, constant, z, condition, prev, targets, forced)
        logits_all = []
        for t in range(MEASURE_TICKS):
            if t == 0 and not self.state_per_layer:
                states = self._first_step(tf.gather(token_table, prev) + constant, self.initial_state(z))
                logits = mask_logits(self.output_layer(states[-1]), allowed)
                greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
            else:
                logits, greedy = autoregressive_tick(self.cells, self.output_layer, token_table, prev, constant,
                                                     states, allowed=allowed)
            logits_all.append(logits)
            prev = tf.where(forced[:, t], targets[:, t], greedy) if use_targets else greedy
        return tf.stack(logits_all, axis=1)

    def _train_ticks(self, token_table, constant, z, condition, prev, targets, forced):
        """``call``'s tick loop through ``gru.feedback_ticks`` (FaderVAE's t = 0 stays outside it)."""
        first = []
        if self.state_per_layer:
            states = tf.split(self.initial_state(condition), self.num_layers, axis=-1)
        else:
            states = self._first_step(tf.gather(token_table, prev) + constant, self.initial_state(z))
            first = [self.output_layer(states[-1])]
            greedy = tf.argmax(first[0], axis=-1, output_type=tf.int32)
            prev = tf.where(forced[:, 0], targets[:, 0], greedy)
            targets, forced = targets[:, 1:], forced[:, 1:]
        rest = feedback_ticks(token_table, constant[:, None], tf.stack(states, axis=0)[None],
                              feedback_layers(self.cells), tf.convert_to_tensor(self.output_layer.kernel),
                              tf.convert_to_tensor(self.output_layer.bias), prev, MEASURE_TICKS - len(first),
                              targets=targets, forced=forced)
        return tf.concat([f[:, None] for f in first] + [rest], axis=1)


class LatentDiscriminator(keras.layers.Layer):
    """z float32 [B, Z] -> cumulative logits float32 [B, K, C-1].

    ``num_layers - 1`` hidden Dense(leaky ReLU) layers, then the output Dense. ``hidden`` = 0: Kawai's
    ``Classifier``, each hidden layer half as wide as its input (integer division, at least 1); > 0: every
    hidden layer ``hidden`` wide.
    """

    def __init__(self, num_attributes, num_bins, hidden, latent_dim, num_layers=2, **kwargs):
        super().__init__(**kwargs)
        self.num_attributes, self.num_bins = num_attributes, num_bins
        widths, width = [], latent_dim
        for _ in range(num_layers - 1):
            width = hidden if hidden > 0 else max(width // 2, 1)
            widths.append(width)
        # keras' leaky_relu slope is 0.2; PyTorch's nn.LeakyReLU default (the reference) is 0.01.
        self.hidden_layers = [keras.layers.Dense(w, activation=lambda x: tf.nn.leaky_relu(x, 0.01), name=f"hidden_{i}")
                              for i, w in enumerate(widths)]
        track_for_checkpoints(self, "hidden", self.hidden_layers)
        self.output_layer = keras.layers.Dense(num_attributes * (num_bins - 1), name="cumulative_logits")

    def build(self, input_shape):
        shape = (None, int(input_shape[-1]))
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = (None, layer.units)
        self.output_layer.build(shape)

    def call(self, z):
        h = z
        for layer in self.hidden_layers:
            h = layer(h)
        return tf.reshape(self.output_layer(h), [-1, self.num_attributes, self.num_bins - 1])


class AdversarialVAE(MusicVAE):
    """Attribute-conditioned VAE with a latent discriminator; attribute k is control k."""

    needs_controls = True

    def __init__(self, config: RunConfig, data_statistics: dict | None = None, **kwargs):
        super().__init__(config, name="adversarial_vae", **kwargs)
        if config.num_bins < 2:
            raise ConfigError(f"num_bins must be at least 2 for the adversarial model, got {config.num_bins}")
        v, k = self.vocabulary, len(self.attribute_names)
        self.encoder = TokenEncoder(v.size, config.embedding_dim, config.hidden_size, config.latent_dim,
                                    config.adversarial_encoder_layers, config.dropout,
                                    posterior_hidden=(2 * config.hidden_size
                                                      if config.adversarial_posterior_hidden else 0),
                                    one_hot=config.one_hot_inputs, clip_log_scale=config.clip_log_scale,
                                    name="encoder")
        self.decoder = ConditionedDecoder(v.size, config.embedding_dim, config.hidden_size, config.num_layers,
                                          v.start_id, one_hot=config.one_hot_inputs,
                                          state_per_layer=config.adversarial_state_per_layer, name="decoder")
        self.discriminator = LatentDiscriminator(k, config.num_bins, config.discriminator_hidden, config.latent_dim,
                                                 config.discriminator_layers, name="discriminator")
        self.has_statistics = data_statistics is not None
        stats = (check_statistics(data_statistics, self.attribute_names, config.num_bins)
                 if self.has_statistics else _placeholder_statistics(k, config.num_bins))
        weight = lambda name, value: self.add_weight(  # noqa: E731
            name=name, shape=np.shape(value), trainable=False,
            initializer=keras.initializers.Constant(np.asarray(value, np.float32)))
        self.attribute_min = weight("attribute_min", stats["min"])
        self.attribute_max = weight("attribute_max", stats["max"])
        self.attribute_mean = weight("attribute_mean", stats["mean"])
        self.attribute_std = weight("attribute_std", stats["std"])
        self.bin_edges = weight("bin_edges", stats["bin_edges"])  # [K, C-1]
        self.clip_norm = config.clip_norm if config.clip_norm > 0 else DEFAULT_CLIP_NORM

    def build_all(self):
        tokens = tf.zeros([1, MEASURE_TICKS], tf.int32)
        mean, _ = self.encoder(tokens)
        self.decoder.build_for(self.config.latent_dim, len(self.attribute_names))
        self.discriminator(mean)
        self.built = True
        if self.config.init == "reference":
            reference_initialise(self, xavier=False, seed=self.config.seed)

    def call(self, tokens, training=False):
        """Reconstruction logits [B, 24, V] of tokens int32 [B, 24] from z_mean and their own attributes."""
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        z = self.encode(tokens)["z_mean"]
        return self.decoder(z, self.decoder_controls(self.measure_attributes(tokens)))

    @property
    def vae_variables(self) -> list:
        """Trainable variables of encoder and decoder (the VAE optimiser's); not the discriminator's."""
        return self.encoder.trainable_variables + self.decoder.trainable_variables

    # -- controls ------------------------------------------------------------------------------
    def normalise_controls(self, controls) -> tf.Tensor:
        """Raw attribute values float32 [B, K] -> clipped to the training range, standardised."""
        c = tf.convert_to_tensor(controls, tf.float32)
        c = tf.where(tf.math.is_nan(c), self.attribute_mean[None, :], c)
        c = tf.clip_by_value(c, self.attribute_min, self.attribute_max)
        return (c - self.attribute_mean) / self.attribute_std

    def decoder_controls(self, controls) -> tf.Tensor:
        """Raw attribute values float32 [B, K] -> what the decoder receives (``attribute_input``): the
        standardised values ('continuous') or the index of each value's ordinal bin, 0..C-1, as float32
        ('classes', the discriminator's bins: ``losses.ordinal_targets`` summed)."""
        if self.config.attribute_input == "classes":
            c = tf.convert_to_tensor(controls, tf.float32)
            c = tf.where(tf.math.is_nan(c), self.attribute_mean[None, :], c)
            return tf.reduce_sum(losses.ordinal_targets(c, self.bin_edges), axis=-1)
        return self.normalise_controls(controls)

    def bin_centre_controls(self, controls) -> tf.Tensor:
        """float32 [B, K]: each raw attribute value replaced by the centre of its ordinal bin (in attribute
        units; the outer bins end at the training split's min and max)."""
        c = tf.convert_to_tensor(controls, tf.float32)
        c = tf.where(tf.math.is_nan(c), self.attribute_mean[None, :], c)
        index = tf.cast(tf.reduce_sum(losses.ordinal_targets(c, self.bin_edges), axis=-1), tf.int32)  # [B, K]
        bounds = tf.concat([self.attribute_min[:, None], self.bin_edges, self.attribute_max[:, None]], axis=1)
        centres = 0.5 * (bounds[:, :-1] + bounds[:, 1:])  # [K, C]
        return tf.transpose(tf.gather(centres, tf.transpose(index), axis=1, batch_dims=1))  # [K, B] -> [B, K]

    def mean_controls(self, n) -> tf.Tensor:
        """float32 [n, K]: the training split's mean of every attribute."""
        return tf.tile(tf.convert_to_tensor(self.attribute_mean)[None, :], [n, 1])

    def _check_controls(self, z: tf.Tensor, controls) -> tf.Tensor:
        """Shape checks (ValueError naming the expected shape) and a logged warning for values that
        will be clipped: absl in eager mode, TensorFlow's log (tf.print) inside a graph."""
        k, names = len(self.attribute_names), ", ".join(self.attribute_names)
        if controls is None:
            raise ValueError(f"AdversarialVAE.decode needs controls of shape [B, {k}] ({names})")
        c = tf.convert_to_tensor(controls, tf.float32)
        if c.shape.rank != 2 or (c.shape[1] is not None and c.shape[1] != k):
            raise ValueError(f"controls must have shape [B, {k}] ({names}), got {c.shape.as_list()}")
        if c.shape[0] is not None and z.shape[0] is not None and c.shape[0] != z.shape[0]:
            raise ValueError(f"controls must have shape [{z.shape[0]}, {k}] to match z, got {c.shape.as_list()}")
        lo, hi = self.attribute_min, self.attribute_max
        outside = (c < lo) | (c > hi) | tf.math.is_nan(c)
        if tf.executing_eagerly():
            bad = np.any(outside.numpy(), axis=0)
            if bad.any():
                detail = ", ".join(f"{n} to [{a:.4g}, {b:.4g}]" for n, a, b, o in
                                   zip(self.attribute_names, lo.numpy(), hi.numpy(), bad, strict=True) if o)
                logging.warning("AdversarialVAE: %d control value(s) outside the training range clipped: %s",
                                int(outside.numpy().sum()), detail)
        else:
            def warn():
                tf.print("AdversarialVAE: control values outside the training range were clipped",
                         output_stream=tf.compat.v1.logging.warning)
                return tf.constant(True)
            tf.cond(tf.reduce_any(outside), warn, lambda: tf.constant(False))
        return c

    @property
    def controls(self) -> list:
        lo, hi = self.attribute_min.numpy(), self.attribute_max.numpy()
        return [Control(name=a, attribute=a, kind=ATTRIBUTE_INPUT, index=k, low=float(lo[k]), high=float(hi[k]))
                for k, a in enumerate(self.attribute_names)]

    def apply_controls(self, z, controls, index, values):
        if controls is None:
            raise ValueError("AdversarialVAE.apply_controls needs the controls [B, K] to sweep from")
        return controls_sweep(z, controls, index, values, control_in_latent=False)

    def default_controls(self, tokens) -> tf.Tensor:
        """float32 [B, K]: the measured attributes of tokens int32 [B, 24] (their own controls)."""
        return self.measure_attributes(tf.convert_to_tensor(tokens, tf.int32))

    # -- interface -----------------------------------------------------------------------------
    def decode(self, z, controls=None, allowed=None):
        """z float32 [B, Z], controls float32 [B, K] (raw attribute values; clipped to the training
        range with a logged warning), allowed bool [B, V] or None -> tokens int32 [B, 24],
        probabilities float32 [B, 24, V]."""
        z = tf.convert_to_tensor(z, tf.float32)
        if z.shape.rank != 2 or (z.shape[1] is not None and z.shape[1] != self.config.latent_dim):
            raise ValueError(f"z must have shape [B, {self.config.latent_dim}], got {z.shape.as_list()}")
        c = self._check_controls(z, controls)
        logits = self.decoder(z, self.decoder_controls(c), allowed=allowed)
        return {"tokens": tf.argmax(logits, axis=-1, output_type=tf.int32),
                "probabilities": tf.nn.softmax(logits, axis=-1)}

    # -- training ------------------------------------------------------------------------------
    def make_optimizers(self) -> dict:
        """Two Adam optimisers, each built on its own variables only."""
        if not self.has_statistics:
            raise ConfigError("AdversarialVAE needs the training split's data statistics to train")
        lr = self.config.learning_rate
        opts = {"discriminator": keras.optimizers.Adam(lr), "vae": keras.optimizers.Adam(lr)}
        opts["discriminator"].build(self.discriminator.trainable_variables)
        opts["vae"].build(self.vae_variables)
        return opts

    def _forward(self, tokens, attributes, seed, teacher_force, global_batch_size, row_offset, training):
        """Encoder, decoder and loss terms except the discriminator's own (each a per-replica share)."""
        enc = self.encode(tokens, seed=seed, training=training, row_offset=row_offset,
                          global_batch_size=global_batch_size)
        logits = self.decoder(enc["z"], self.decoder_controls(attributes), targets=tokens,
                              teacher_force=teacher_force)
        share = tf.cast(tf.shape(tokens)[0], tf.float32) / tf.cast(global_batch_size, tf.float32)
        return enc, {"reconstruction_loss": losses.reconstruction_loss(logits, tokens, global_batch_size),
                     # Metric: nats per measure summed over dims; the loss term is a mean over dims (vae_loss).
                     "kl": losses.kl_loss(enc["z_mean"], enc["z_scale"], global_batch_size),
                     "token_accuracy": losses.token_accuracy(logits, tokens) * share}, share

    def vae_loss(self, out: dict, enc: dict, adversarial: tf.Tensor, global_batch_size) -> tf.Tensor:
        """The encoder's and decoder's loss, as trained and as reported: reconstruction + lambda_d x the
        adversarial (flipped-target) term + lambda_kl x KL, the KL term FaderVAE's mean over latent dims
        and batch (``losses.kl_loss_mean_over_dims``); a per-replica share of the global mean."""
        cfg = self.config
        kl = losses.kl_loss_mean_over_dims(enc["z_mean"], enc["z_scale"], global_batch_size)
        return out["reconstruction_loss"] + cfg.lambda_d * adversarial + cfg.lambda_kl * kl

    def _adversarial_terms(self, z, targets, global_batch_size, share) -> dict:
        """Discriminator loss/accuracy on z and the encoder's flipped-target loss (with gradients to z)."""
        logits = self.discriminator(z)
        return {"discriminator_loss": losses.ordinal_bce(tf.stop_gradient(logits), targets, global_batch_size),
                "discriminator_accuracy": losses.ordinal_accuracy(logits, targets) * share,
                "adversarial_loss": losses.ordinal_bce(logits, 1.0 - targets, global_batch_size)}

    def teacher_force_mask(self, step, n, global_batch_size, row_offset=0) -> tf.Tensor:
        """Scheduled-sampling draw of one step: bool [24] (``sampling_coin='step'``, FaderVAE's one
        ``torch.rand(1)`` per tick for the whole batch) or [n, 24] (``'token'``: per example and tick,
        rows ``row_offset ..`` of the global batch). True = feed the target token."""
        cfg = self.config
        p_forced = teacher_forcing_probability(step, cfg.sampling_k)
        seed = step_seed(cfg.seed, step, salt=23)
        if cfg.sampling_coin == "step":
            return tf.random.stateless_uniform([MEASURE_TICKS], seed=seed, alg=RNG_ALG) < p_forced
        coins = tf.random.stateless_uniform([global_batch_size, MEASURE_TICKS], seed=seed, alg=RNG_ALG)
        return coins[row_offset:row_offset + n] < p_forced

    def train_step_replica(self, optimizers, tokens, attributes, step, global_batch_size, row_offset=0) -> dict:
        cfg = self.config
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        attributes = tf.convert_to_tensor(attributes, tf.float32)
        n = tf.shape(tokens)[0]
        p_forced = teacher_forcing_probability(step, cfg.sampling_k)
        forced = self.teacher_force_mask(step, n, global_batch_size, row_offset)
        targets = losses.ordinal_targets(attributes, self.bin_edges)
        d_vars, vae_vars = self.discriminator.trainable_variables, self.vae_variables
        with tf.GradientTape() as tape:
            enc, out, share = self._forward(tokens, attributes, step_seed(cfg.seed, step, salt=21),
                                            forced, global_batch_size, row_offset, True)
            with tape.stop_recording():  # (1) discriminator update on z, encoder gradients stopped
                z_d = enc["z"]
                if cfg.discriminator_z == "fresh":  # the references encode again for each update
                    z_d = self.encode(tokens, seed=step_seed(cfg.seed, step, salt=25), training=True,
                                      row_offset=row_offset, global_batch_size=global_batch_size)["z"]
                with tf.GradientTape() as d_tape:
                    d_logits = self.discriminator(tf.stop_gradient(z_d))
                    d_loss = losses.ordinal_bce(d_logits, targets, global_batch_size)
                d_grads = d_tape.gradient(d_loss, d_vars)
                d_norm = optim.apply_gradients(optimizers["discriminator"], d_grads, d_vars, self.clip_norm)
            # (2) VAE update against the updated discriminator, with flipped ordinal targets.
            adversarial = losses.ordinal_bce(self.discriminator(enc["z"]), 1.0 - targets, global_batch_size)
            total = self.vae_loss(out, enc, adversarial, global_batch_size)
        grads = tape.gradient(total, vae_vars)
        vae_norm = optim.apply_gradients(optimizers["vae"], grads, vae_vars, self.clip_norm)
        out.update(loss=total, adversarial_loss=adversarial, discriminator_loss=d_loss,
                   discriminator_accuracy=losses.ordinal_accuracy(d_logits, targets) * share,
                   teacher_forcing_probability=p_forced * share,
                   discriminator_grad_norm=d_norm * share, vae_grad_norm=vae_norm * share)
        return out

    def eval_metrics(self, tokens, attributes) -> dict:
        """Losses and accuracies of one batch: sampled z (fixed seed), greedy decoding, no updates."""
        cfg = self.config
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        attributes = tf.convert_to_tensor(attributes, tf.float32)
        n = tf.shape(tokens)[0]
        enc, out, share = self._forward(tokens, attributes, step_seed(cfg.seed, 0, salt=21), None, n, 0, False)
        out.update(self._adversarial_terms(enc["z"], losses.ordinal_targets(attributes, self.bin_edges), n, share))
        out["loss"] = self.vae_loss(out, enc, out["adversarial_loss"], n)
        return out
