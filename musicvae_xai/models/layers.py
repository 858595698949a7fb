"""Building blocks shared by both models: a fused GRU cell, a bidirectional GRU encoder, posterior heads,
and the token encoder (embedding -> bidirectional GRU -> Gaussian posterior) both models use.

The GRU is written out (reset-after variant, as cuDNN and Keras use) so that the input projection of a
whole sequence is one matmul ``[B*T, I] x [I, 3H]`` and only the recurrent matmul ``[B, H] x [H, 3H]``
runs inside the (statically unrolled) time loop. Sequence lengths here are tiny and static (24 ticks,
4 beats, 6 ticks per beat), so unrolling in Python gives XLA and Grappler a loop-free graph. Recurrences
over a known input sequence (``run_gru``) and the decoders' training ticks use ``models.gru``, whose
hand-written gradients form each weight's gradient with one matmul per 6 time steps.

Randomness (dropout) is stateless and comes from an explicit ``seed`` tensor (int32 [2]) so that a
training step is a pure function of (weights, batch, step): reproducible, resumable, and identical
under data-parallel strategies (see ``musicvae_xai.training``).
"""

from __future__ import annotations

from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from musicvae_xai.models.gru import gru_sequence

#: Stateless RNG algorithm for every random draw. Philox is fast with and without XLA and gives the
#: same numbers in both; "auto_select" becomes a very slow generator under XLA on CPU (~300x).
RNG_ALG = "philox"


def dropout_keep_mask(shape, rate: float, seed: tf.Tensor, row_offset=0, global_rows=None) -> tf.Tensor:
    """bool ``shape``: the keep mask of a stateless inverted dropout of a tensor of that shape.

    The mask is drawn for ``global_rows`` rows (the global batch) and rows ``row_offset ..`` are
    used, so a replica holding part of the batch drops exactly what one device would.
    """
    rows = shape[0] if global_rows is None else global_rows
    mask_shape = tf.concat([[rows], shape[1:]], axis=0)
    noise = tf.random.stateless_uniform(mask_shape, seed=seed, dtype=tf.float32, alg=RNG_ALG)
    return noise[row_offset:row_offset + shape[0]] >= rate


def stateless_dropout(x: tf.Tensor, rate: float, seed: Optional[tf.Tensor], row_offset=0,
                      global_rows=None) -> tf.Tensor:
    """Inverted dropout with a stateless mask (``dropout_keep_mask``); identity when ``seed`` is None or
    ``rate`` is 0."""
    if seed is None or rate <= 0.0:
        return x
    keep = dropout_keep_mask(tf.shape(x), rate, seed, row_offset, global_rows)
    return tf.where(keep, x / (1.0 - rate), tf.zeros_like(x))


def track_for_checkpoints(owner, prefix: str, layers) -> None:
    """Makes layers held in a list visible to ``tf.train.Checkpoint`` as ``{prefix}_{i}``.

    Keras 3 keeps a list attribute in its own ``TrackedList``, which TensorFlow's checkpoint graph does
    not follow: a ``tf.train.Checkpoint(model=...)`` would save and restore nothing inside such a list
    (a full training checkpoint still finds them through the optimisers). This adds a TensorFlow
    dependency per layer only; Keras' own tracking (weights, their order) is unchanged.
    """
    for i, layer in enumerate(layers):
        owner._track_trackable(layer, name=f"{prefix}_{i}", overwrite=True)  # noqa: SLF001


class FusedGRUCell(keras.layers.Layer):
    """One GRU layer (reset-after). Gates are ordered [update, reset, candidate] along the 3H axis."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        in_dim = int(input_shape[-1])
        h3 = 3 * self.units
        self.input_kernel = self.add_weight(name="input_kernel", shape=(in_dim, h3),
                                            initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(self.units, h3),
                                                initializer="orthogonal")
        self.input_bias = self.add_weight(name="input_bias", shape=(h3,), initializer="zeros")
        self.recurrent_bias = self.add_weight(name="recurrent_bias", shape=(h3,), initializer="zeros")

    def project_inputs(self, x: tf.Tensor) -> tf.Tensor:
        """float32 [..., I] -> [..., 3H]: the input half of the gates, for any number of steps at once."""
        shape = tf.shape(x)
        flat = tf.reshape(x, [-1, x.shape[-1]])
        out = tf.matmul(flat, self.input_kernel) + self.input_bias
        return tf.reshape(out, tf.concat([shape[:-1], [3 * self.units]], axis=0))

    def step(self, x_proj: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
        """x_proj float32 [B, 3H] (from ``project_inputs``), h [B, H] -> new h [B, H]."""
        h_proj = tf.matmul(h, self.recurrent_kernel) + self.recurrent_bias
        xz, xr, xh = tf.split(x_proj, 3, axis=-1)
        hz, hr, hh = tf.split(h_proj, 3, axis=-1)
        z = tf.sigmoid(xz + hz)
        r = tf.sigmoid(xr + hr)
        candidate = tf.tanh(xh + r * hh)
        return z * h + (1.0 - z) * candidate

    def call(self, x_proj, h):
        return self.step(x_proj, h)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def run_gru(cell: FusedGRUCell, x: tf.Tensor, h0: tf.Tensor, reverse: bool = False) -> tuple:
    """Runs ``cell`` over x float32 [B, T, I] (T static). Returns (outputs [B, T, H], final h [B, H]).

    The input projection of all T steps is one matmul; the recurrence is ``gru.gru_sequence``, whose
    gradient forms each weight's gradient with one matmul per 6 steps (same values as stepping
    ``cell.step``).
    """
    return gru_sequence(cell.project_inputs(x), h0, tf.convert_to_tensor(cell.recurrent_kernel),
                        tf.convert_to_tensor(cell.recurrent_bias), reverse=reverse)


def step_stacked_cells(cells, first_input_proj: tf.Tensor, states: list, dropout: float = 0.0,
                       seed: Optional[tf.Tensor] = None, row_offset=0, global_rows=None) -> tf.Tensor:
    """One time step through stacked ``cells``; ``states`` (one [B, H] per cell) is updated in place.

    first_input_proj float32 [B, 3H] is the first cell's projected input (``project_inputs``); each higher
    cell is fed the new state of the one below, through dropout (``dropout``, when ``seed`` int32 [2] is
    given: PyTorch's GRU ``dropout`` semantics, between layers, never on the top output). Returns the top
    cell's new state float32 [B, H].
    """
    inp = first_input_proj
    for i, cell in enumerate(cells):
        if i > 0:
            below = states[i - 1]
            if seed is not None and dropout > 0.0:
                below = stateless_dropout(below, dropout, tf.random.experimental.stateless_fold_in(seed, i),
                                          row_offset, global_rows)
            inp = cell.project_inputs(below)
        states[i] = cell.step(inp, states[i])
    return states[-1]


#: The logit a token that decoding may not choose gets (``mask_logits``).
MASKED_LOGIT = -1e9


def mask_logits(logits: tf.Tensor, allowed: Optional[tf.Tensor]) -> tf.Tensor:
    """logits float32 [B, V] with the tokens ``allowed`` (bool [B, V]) leaves False set to
    ``MASKED_LOGIT`` (probability 0 after softmax, never the argmax); unchanged when allowed is None."""
    if allowed is None:
        return logits
    return tf.where(tf.convert_to_tensor(allowed, tf.bool), logits, tf.constant(MASKED_LOGIT, logits.dtype))


def autoregressive_tick(cells, output_layer, token_table: tf.Tensor, prev: tf.Tensor,
                        condition_proj: tf.Tensor, states: list, logits_relu: bool = False,
                        dropout: float = 0.0, seed: Optional[tf.Tensor] = None, row_offset=0,
                        global_rows=None, allowed: Optional[tf.Tensor] = None) -> tuple:
    """One decoder tick fed back its previous token.

    token_table float32 [V, 3H]: the token half of the first cell's input projection; prev int32 [B]: the
    previous token; condition_proj float32 [B, 3H]: the rest of the first cell's projected input (bias
    included). ``states`` is updated in place. ``logits_relu``: ReLU on the logits (ar-vae's decoder).
    Dropout between the cells as in ``step_stacked_cells``. allowed bool [B, V]: the tokens this tick
    may choose (``mask_logits``; None: any). Returns (logits float32 [B, V], greedy token int32 [B]).
    """
    top = step_stacked_cells(cells, tf.gather(token_table, prev) + condition_proj, states, dropout, seed,
                             row_offset, global_rows)
    logits = output_layer(top)
    if logits_relu:
        logits = tf.nn.relu(logits)
    logits = mask_logits(logits, allowed)
    return logits, tf.argmax(logits, axis=-1, output_type=tf.int32)


def feedback_layers(cells) -> list:
    """Weights of stacked ``cells`` as ``gru.feedback_ticks`` takes them: per cell (input kernel, input
    bias, recurrent kernel, recurrent bias) tensors, the first cell's input pair None (its input
    projection is the caller's token table and condition)."""
    read = tf.convert_to_tensor
    return [(None if i == 0 else read(c.input_kernel), None if i == 0 else read(c.input_bias),
             read(c.recurrent_kernel), read(c.recurrent_bias)) for i, c in enumerate(cells)]


class BidirectionalGRUEncoder(keras.layers.Layer):
    """Stack of bidirectional GRU layers over an embedded sequence.

    Input float32 [B, T, E]; output: the final states of every layer and direction concatenated,
    float32 [B, 2 * num_layers * H], in the order (layer 1 fwd, layer 1 bwd, layer 2 fwd, ...).
    Dropout (``rate``) is applied between layers when a seed is given.
    """

    def __init__(self, units: int, num_layers: int = 2, dropout: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.units, self.num_layers, self.dropout = units, num_layers, dropout
        self.forward_cells = [FusedGRUCell(units, name=f"fwd_{i}") for i in range(num_layers)]
        self.backward_cells = [FusedGRUCell(units, name=f"bwd_{i}") for i in range(num_layers)]
        track_for_checkpoints(self, "forward_cell", self.forward_cells)
        track_for_checkpoints(self, "backward_cell", self.backward_cells)

    def build(self, input_shape):
        in_dim = int(input_shape[-1])
        for i in range(self.num_layers):
            dim = in_dim if i == 0 else 2 * self.units
            self.forward_cells[i].build((None, dim))
            self.backward_cells[i].build((None, dim))

    def call(self, x, seed=None, row_offset=0, global_rows=None):
        """``row_offset``/``global_rows``: where these rows sit in the global batch (for dropout)."""
        batch = tf.shape(x)[0]
        h0 = tf.zeros([batch, self.units], x.dtype)
        finals = []
        for i in range(self.num_layers):
            if i > 0:
                layer_seed = None if seed is None else seed + tf.constant([0, 7919 * i], seed.dtype)
                x = stateless_dropout(x, self.dropout, layer_seed, row_offset, global_rows)
            out_f, h_f = run_gru(self.forward_cells[i], x, h0)
            out_b, h_b = run_gru(self.backward_cells[i], x, h0, reverse=True)
            finals += [h_f, h_b]
            x = tf.concat([out_f, out_b], axis=-1)
        return tf.concat(finals, axis=-1)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers,
                "dropout": self.dropout}


class GaussianPosteriorHead(keras.layers.Layer):
    """Encoder summary float32 [B, S] -> (mean [B, Z], scale [B, Z]) of a diagonal Gaussian.

    ``hidden`` > 0 (ar-vae's MeasureVAE): two heads, each Dense(hidden, SELU) -> Dense(Z); ``hidden`` = 0
    (Kawai's FaderVAE): one Dense(Z) each. The second head gives log sigma; ``clip_log_scale`` clips it
    to [-10, 5] before exponentiation (not in either reference).
    """

    def __init__(self, latent_dim: int, hidden: int, clip_log_scale: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.hidden, self.clip_log_scale = latent_dim, hidden, clip_log_scale
        if hidden > 0:
            self.mean_hidden = keras.layers.Dense(hidden, activation="selu", name="mean_hidden")
            self.scale_hidden = keras.layers.Dense(hidden, activation="selu", name="scale_hidden")
        self.mean_out = keras.layers.Dense(latent_dim, name="mean_out")
        self.scale_out = keras.layers.Dense(latent_dim, name="log_scale_out")

    def call(self, summary):
        if self.hidden > 0:
            mean = self.mean_out(self.mean_hidden(summary))
            log_scale = self.scale_out(self.scale_hidden(summary))
        else:
            mean, log_scale = self.mean_out(summary), self.scale_out(summary)
        if self.clip_log_scale:
            log_scale = tf.clip_by_value(log_scale, -10.0, 5.0)
        return mean, tf.exp(log_scale)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "hidden": self.hidden,
                "clip_log_scale": self.clip_log_scale}


def token_embedding(vocab_size: int, embedding_dim: int, one_hot: bool, name: str) -> keras.layers.Embedding:
    """A learned Embedding(V, E), or with ``one_hot`` a fixed identity table [V, V]: one-hot inputs as in
    Kawai's FaderVAE (a GRU's input projection of a one-hot token is a row lookup of its kernel)."""
    if one_hot:
        return keras.layers.Embedding(vocab_size, vocab_size, embeddings_initializer="identity",
                                      trainable=False, name=name)
    return keras.layers.Embedding(vocab_size, embedding_dim, name=name)


class TokenEncoder(keras.layers.Layer):
    """int32 tokens [B, T] -> (mean [B, Z], scale [B, Z]) of a diagonal Gaussian posterior.

    Token embedding (E, or one-hot V) -> ``num_layers`` bidirectional GRU layers (H, dropout between
    layers) -> final states of every layer and direction [B, 2 * num_layers * H] ->
    ``GaussianPosteriorHead`` with hidden width ``posterior_hidden`` (MeasureVAE: 2H; FaderVAE: 0).
    """

    def __init__(self, vocab_size, embedding_dim, hidden, latent_dim, num_layers, dropout,
                 posterior_hidden=None, one_hot=False, clip_log_scale=False, **kwargs):
        super().__init__(**kwargs)
        posterior_hidden = 2 * hidden if posterior_hidden is None else posterior_hidden
        self.embedding = token_embedding(vocab_size, embedding_dim, one_hot, "embedding")
        self.rnn = BidirectionalGRUEncoder(hidden, num_layers, dropout, name="bigru")
        self.posterior = GaussianPosteriorHead(latent_dim, posterior_hidden, clip_log_scale, name="posterior")

    def call(self, tokens, seed=None, row_offset=0, global_rows=None):
        return self.posterior(self.rnn(self.embedding(tokens), seed=seed, row_offset=row_offset,
                                       global_rows=global_rows))


def reference_initialise(model: keras.layers.Layer, xavier: bool, seed: int) -> None:
    """Re-initialises every trainable weight of ``model`` (built) as the PyTorch references do.

    ``xavier`` (ar-vae's MeasureVAE, ``init_params``): weights (embeddings, GRU and Dense kernels) ~
    Xavier/Glorot normal N(0, 2 / (fan_in + fan_out)), untruncated. Otherwise (Kawai's FaderVAE, PyTorch
    defaults): Dense kernels ~ U(+-1/sqrt(fan_in)), GRU kernels ~ U(+-1/sqrt(H)), embeddings ~ N(0, 1).
    Biases always keep PyTorch's defaults: Dense U(+-1/sqrt(fan_in)), GRU U(+-1/sqrt(H)). Fixed
    (non-trainable) tables and other weights (learned start inputs: zeros as in ar-vae) are left alone.
    PyTorch stores a GRU's weight as [3H, I] and ours as [I, 3H]; Xavier's fans are the same.
    """
    rng = np.random.default_rng(seed)

    def assign(var, limit_or_std, normal):
        shape = tuple(var.shape)
        value = rng.normal(0.0, limit_or_std, shape) if normal else rng.uniform(-limit_or_std, limit_or_std, shape)
        var.assign(value.astype(np.float32))

    def xavier_std(var):
        fan_in, fan_out = int(var.shape[0]), int(var.shape[1])
        return float(np.sqrt(2.0 / (fan_in + fan_out)))

    for layer in model._flatten_layers(include_self=True):  # noqa: SLF001
        if isinstance(layer, FusedGRUCell):
            bound = 1.0 / np.sqrt(layer.units)
            for var in (layer.input_kernel, layer.recurrent_kernel):
                assign(var, xavier_std(var), True) if xavier else assign(var, bound, False)
            assign(layer.input_bias, bound, False)
            assign(layer.recurrent_bias, bound, False)
        elif isinstance(layer, keras.layers.Dense):
            fan_in = int(layer.kernel.shape[0])
            k = layer.kernel
            assign(k, xavier_std(k), True) if xavier else assign(k, 1.0 / np.sqrt(fan_in), False)
            if layer.use_bias:
                assign(layer.bias, 1.0 / np.sqrt(fan_in), False)
        elif isinstance(layer, keras.layers.Embedding) and layer.trainable:
            e = layer.embeddings
            assign(e, xavier_std(e), True) if xavier else assign(e, 1.0, True)
