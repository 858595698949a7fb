"""MeasureVAE (Pati, Lerch, Hadjeres 2019) with an attribute-regularised latent space (docs/METHOD.md section 4).

The reference is ar-vae's ``MeasureVAE`` (``measurevae/measure_vae.py``, ``encoder.py``, ``decoder.py``);
docs/FIDELITY.md lists every component and each flag that departs from it.

Encoder: token embedding (E=10) -> 2-layer bidirectional GRU (H, dropout between layers) -> final states
of every layer and direction [B, 4H] -> diagonal Gaussian posterior over z [B, Z] (Linear+SELU 2H ->
Linear per head). Prior N(0, I).

Hierarchical decoder: z -> (Dense+SELU) initial states of a 2-layer beat GRU that runs 4 steps on a
learned scalar input b_0; for each beat output o_i, (Dense+SELU) gives the initial states of a 2-layer
tick GRU and c_i = SELU(Dense(H->H))(o_i) its conditioning (``beat_conditioning``; else o_i itself);
the tick GRU emits the 6 ticks of that beat, each step's input being [decoder embedding of the previous
token, c_i]; output Dense -> ReLU (``logits_relu``, as ar-vae) -> logits over the vocabulary [B, 24, V]. The
previous-token chain runs across beats; the first tick's input is a learned vector x_0 (E, init 0).
Dropout (``config.dropout``) between the stacked layers of both decoder GRUs during training.

Cost-saving details that leave the maths unchanged: the token half of the tick GRU's input projection
is a [V+1, 3H] table ([decoder embedding; x_0] x kernel) looked up per step instead of a matmul; the
beat half is one matmul for all 4 beats; the encoder's input projections cover all 24 steps in one matmul;
in training, the GRUs' gradients are formed with one matmul per weight over all steps (``models.gru``).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from musicvae_xai.config import RunConfig
from musicvae_xai.controls import latent_controls
from musicvae_xai.models import losses, optim
from musicvae_xai.models.base import MusicVAE, controls_sweep, step_seed
from musicvae_xai.models.gru import feedback_ticks
from musicvae_xai.models.layers import (RNG_ALG, FusedGRUCell, TokenEncoder, autoregressive_tick,
                                        dropout_keep_mask, feedback_layers, reference_initialise,
                                        step_stacked_cells, track_for_checkpoints)
from musicvae_xai.representation import BEATS_PER_MEASURE, MEASURE_TICKS, TICKS_PER_BEAT

_BEAT_INPUT_DIM = 1  # ar-vae: a learned scalar b_0 repeated over the 4 beats


#: The encoder is shared with the adversarial model (see ``layers.TokenEncoder``).
MeasureEncoder = TokenEncoder


class HierarchicalDecoder(keras.layers.Layer):
    """z float32 [B, Z] -> logits float32 [B, 24, V]; feeds back its own argmax unless teacher-forced."""

    #: Training runs the ticks through ``gru.feedback_ticks`` (same values, time-batched gradient); False:
    #: through the step-by-step loop inference uses (tests compare the two).
    time_batched_gradient = True

    def __init__(self, vocab_size, embedding_dim, hidden, num_layers, start_id, dropout=0.0,
                 beat_conditioning=True, logits_relu=True, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.embedding_dim, self.hidden = vocab_size, embedding_dim, hidden
        self.num_layers, self.start_id, self.dropout = num_layers, start_id, dropout
        self.beat_conditioning, self.logits_relu = beat_conditioning, logits_relu
        self.z_to_beat_state = keras.layers.Dense(num_layers * hidden, activation="selu", name="z_to_beat")
        self.beat_cells = [FusedGRUCell(hidden, name=f"beat_{i}") for i in range(num_layers)]
        self.beat_to_tick_state = keras.layers.Dense(num_layers * hidden, activation="selu",
                                                     name="beat_to_tick")
        if beat_conditioning:
            self.beat_condition = keras.layers.Dense(hidden, activation="selu", name="beat_condition")
        self.tick_cells = [FusedGRUCell(hidden, name=f"tick_{i}") for i in range(num_layers)]
        track_for_checkpoints(self, "beat_cell", self.beat_cells)
        track_for_checkpoints(self, "tick_cell", self.tick_cells)
        self.token_embedding = keras.layers.Embedding(vocab_size, embedding_dim, name="token_embedding")
        self.output_layer = keras.layers.Dense(vocab_size, name="logits")

    def build(self, input_shape):
        h = self.hidden
        self.beat_input = self.add_weight(name="beat_input", shape=(_BEAT_INPUT_DIM,), initializer="zeros")
        self.first_input = self.add_weight(name="first_input", shape=(self.embedding_dim,), initializer="zeros")
        self.z_to_beat_state.build(input_shape)
        self.beat_cells[0].build((None, _BEAT_INPUT_DIM))
        for cell in self.beat_cells[1:] + self.tick_cells[1:]:
            cell.build((None, h))
        self.beat_to_tick_state.build((None, h))
        if self.beat_conditioning:
            self.beat_condition.build((None, h))
        self.tick_cells[0].build((None, self.embedding_dim + h))
        self.token_embedding.build((None,))
        self.output_layer.build((None, h))

    def _beats(self, z, seed=None, row_offset=0, global_rows=None):
        """z [B, Z] -> beat outputs [B, 4, H]."""
        states = tf.split(self.z_to_beat_state(z), self.num_layers, axis=-1)
        constant = tf.broadcast_to(self.beat_cells[0].project_inputs(self.beat_input[None, :]),
                                   [tf.shape(z)[0], 3 * self.hidden])
        outputs = []
        for b in range(BEATS_PER_MEASURE):
            beat_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, 1000 + b)
            outputs.append(step_stacked_cells(self.beat_cells, constant, states, self.dropout, beat_seed,
                                              row_offset, global_rows))
        return tf.stack(outputs, axis=1)

    def call(self, z, targets=None, teacher_force=None, seed=None, row_offset=0, global_rows=None, allowed=None):
        """targets int32 [B, 24] and teacher_force bool scalar: feed the true previous token when True.

        seed int32 [2] (training only): dropout between the stacked GRU layers; ``row_offset`` /
        ``global_rows`` place these rows in the global batch. allowed bool [B, V] (inference): the
        tokens each tick may choose, so the fed-back token is always an allowed one.
        """
        batch = tf.shape(z)[0]
        beats = self._beats(z, seed, row_offset, global_rows)  # [B, 4, H]
        # Per-beat tensors are unstacked once: slicing [:, b] inside the loop makes costly gradients.
        tick_init = [tf.unstack(s, axis=1) for s in
                     tf.split(self.beat_to_tick_state(beats), self.num_layers, axis=-1)]  # [layer][beat] [B, H]
        condition = self.beat_condition(beats) if self.beat_conditioning else beats  # c_i [B, 4, H]
        first = self.tick_cells[0]
        e = self.embedding_dim
        # Token half of the first tick layer's input projection, as a [V + 1, 3H] lookup table whose
        # last row is the learned first input x_0.
        inputs = tf.concat([self.token_embedding.embeddings, self.first_input[None, :]], axis=0)
        token_table = tf.matmul(inputs, first.input_kernel[:e])
        beat_proj = tf.einsum("bkh,hg->bkg", condition, first.input_kernel[e:]) + first.input_bias
        prev = tf.fill([batch], tf.constant(self.vocab_size, tf.int32))  # row of x_0
        use_targets = targets is not None and teacher_force is not None
        if seed is not None and use_targets and self.time_batched_gradient:  # training
            return self._train_ticks(token_table, beat_proj, beats, prev, targets, teacher_force, seed,
                                     row_offset, global_rows)
        beat_proj = tf.unstack(beat_proj, axis=1)  # 4 x [B, 3H]
        logits_all = []
        for b in range(BEATS_PER_MEASURE):
            states = [s[b] for s in tick_init]
            for k in range(TICKS_PER_BEAT):
                t = b * TICKS_PER_BEAT + k
                tick_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, t)
                logits, greedy = autoregressive_tick(self.tick_cells, self.output_layer, token_table, prev,
                                                     beat_proj[b], states, self.logits_relu, self.dropout,
                                                     tick_seed, row_offset, global_rows, allowed)
                logits_all.append(logits)
                prev = tf.where(teacher_force, targets[:, t], greedy) if use_targets else greedy
        return tf.stack(logits_all, axis=1)

    def _train_ticks(self, token_table, beat_proj, beats, prev, targets, teacher_force, seed, row_offset,
                     global_rows):
        """``call``'s tick loop through ``gru.feedback_ticks``: beat_proj float32 [B, 4, 3H], beats [B, 4, H]."""
        batch, layers = tf.shape(beats)[0], self.num_layers
        initial = tf.reshape(self.beat_to_tick_state(beats), [batch, BEATS_PER_MEASURE, layers, self.hidden])
        keep = None
        if self.dropout > 0.0:  # the masks step_stacked_cells draws, per tick and layer above the first
            fold = tf.random.experimental.stateless_fold_in
            shape = tf.stack([batch, self.hidden])
            keep = [[dropout_keep_mask(shape, self.dropout, fold(fold(seed, t), i), row_offset, global_rows)
                     for i in range(1, layers)] for t in range(MEASURE_TICKS)]
        return feedback_ticks(token_table, beat_proj, tf.transpose(initial, [1, 2, 0, 3]),
                              feedback_layers(self.tick_cells), tf.convert_to_tensor(self.output_layer.kernel),
                              tf.convert_to_tensor(self.output_layer.bias), prev, TICKS_PER_BEAT,
                              targets=tf.cast(targets, tf.int32),
                              forced=tf.broadcast_to(teacher_force, [batch, MEASURE_TICKS]), keep=keep,
                              rate=self.dropout, logits_relu=self.logits_relu)


class MeasureVAE(MusicVAE):
    """The attribute-regularised MeasureVAE; attribute k is regularised on latent dim k."""

    def __init__(self, config: RunConfig, name: str = "measure_vae", **kwargs):
        super().__init__(config, name=name, **kwargs)
        v = self.vocabulary
        self.encoder = MeasureEncoder(v.size, config.embedding_dim, config.hidden_size, config.latent_dim,
                                      config.num_layers, config.dropout, posterior_hidden=2 * config.hidden_size,
                                      clip_log_scale=config.clip_log_scale, name="encoder")
        self.decoder = HierarchicalDecoder(v.size, config.embedding_dim, config.hidden_size,
                                           config.num_layers, v.start_id, dropout=config.dropout,
                                           beat_conditioning=config.beat_conditioning,
                                           logits_relu=config.logits_relu, name="decoder")

    def build_all(self):
        tokens = tf.zeros([1, MEASURE_TICKS], tf.int32)
        mean, _ = self.encoder(tokens)
        self.decoder(mean)
        self.built = True
        if self.config.init == "reference":
            reference_initialise(self, xavier=True, seed=self.config.seed)

    def call(self, tokens, training=False):
        enc = self.encode(tokens)
        return self.decoder(enc["z_mean"])

    # -- interface -----------------------------------------------------------------------------
    def decode(self, z, controls=None, allowed=None):
        logits = self.decoder(tf.convert_to_tensor(z, tf.float32), allowed=allowed)
        return {"tokens": tf.argmax(logits, axis=-1, output_type=tf.int32),
                "probabilities": tf.nn.softmax(logits, axis=-1)}

    @property
    def regularised_attributes(self) -> tuple:
        """The attributes regularised on latent dims 0..K-1, in order: all of the run's (a subclass may
        regularise none, ``models.plain_vae``). Each is a control."""
        return self.attribute_names

    @property
    def controls(self) -> list:
        return latent_controls(self.regularised_attributes)

    def apply_controls(self, z, controls, index, values):
        return controls_sweep(z, None, index, values, control_in_latent=True)

    # -- training ------------------------------------------------------------------------------
    def make_optimizers(self) -> dict:
        return {"vae": keras.optimizers.Adam(self.config.learning_rate)}

    def compute_losses(self, tokens, attributes, step, global_batch_size, row_offset=0, training=True):
        """One forward pass and every loss term (each a per-replica share of the global mean)."""
        cfg = self.config
        seed = step_seed(cfg.seed, step, salt=11)
        enc = self.encode(tokens, seed=seed, training=training, row_offset=row_offset,
                          global_batch_size=global_batch_size)
        if training:
            coin = tf.random.stateless_uniform([], seed=step_seed(cfg.seed, step, salt=13),
                                             alg=RNG_ALG) < cfg.teacher_forcing
        else:
            coin = tf.constant(False)
        decoder_seed = step_seed(cfg.seed, step, salt=17) if training else None
        logits = self.decoder(enc["z"], targets=tokens, teacher_force=coin, seed=decoder_seed,
                              row_offset=row_offset, global_rows=global_batch_size)
        recon = losses.reconstruction_loss(logits, tokens, global_batch_size)
        kl = losses.kl_loss(enc["z_mean"], enc["z_scale"], global_batch_size)  # ar-vae: sum over dims, batch mean
        names = self.regularised_attributes
        k = len(names)
        total = recon + cfg.beta * kl
        if k:
            ctx = tf.distribute.get_replica_context()
            ar = losses.attribute_regularization_loss(enc["z"][:, :k], attributes[:, :k], cfg.delta,
                                                      replica_context=ctx, row_offset=row_offset,
                                                      global_batch_size=global_batch_size)
            total = total + cfg.gamma * tf.reduce_sum(ar)
        n_local = tf.cast(tf.shape(tokens)[0], tf.float32)
        share = n_local / tf.cast(global_batch_size, tf.float32)
        acc = losses.token_accuracy(logits, tokens) * share
        out = {"loss": total, "reconstruction_loss": recon, "kl": kl, "token_accuracy": acc,
               "teacher_forced": tf.cast(coin, tf.float32) * share}
        for name, value in zip(names, tf.unstack(ar) if k else [], strict=True):
            out[f"ar_{name}"] = value
        return out

    def train_step_replica(self, optimizers, tokens, attributes, step, global_batch_size, row_offset=0) -> dict:
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            out = self.compute_losses(tokens, attributes, step, global_batch_size, row_offset, training=True)
        grads = tape.gradient(out["loss"], variables)
        optim.apply_gradients(optimizers["vae"], grads, variables, self.config.clip_norm)
        return out

    def eval_metrics(self, tokens, attributes) -> dict:
        tokens = tf.convert_to_tensor(tokens, tf.int32)
        n = tf.shape(tokens)[0]
        out = self.compute_losses(tokens, attributes, 0, n, training=False)
        return {k: v for k, v in out.items() if k != "teacher_forced"}
