"""A GRU recurrence over a known input sequence with a hand-written, time-batched gradient.

``gru_sequence`` runs one GRU layer (reset-after, gates ordered [update, reset, candidate] along the
3H axis, as ``layers.FusedGRUCell``) over T static steps whose projected inputs are all known before the
recurrence starts (an encoder's embedded sequence, a lower layer's outputs). Its values are exactly
those of stepping ``FusedGRUCell.step`` T times; only the gradient is computed differently.

Autodiff of the unrolled loop forms the recurrent kernel's gradient one step at a time: T products
``[H, B] x [B, 3H]`` and T accumulations. Here the forward loop keeps what the backward needs (the
previous state, the gates, the recurrent candidate half), the backward loop computes each step's gate
gradients (the ``dh_t -> dh_{t-1}`` product ``[B, 3H] x [3H, H]`` per step is inherent to the
recurrence) and the kernel's gradient is formed by one product ``[H, C*B] x [C*B, 3H]`` per ``CHUNK`` = C
steps (C = 6: 4 products for the 24 ticks; large enough to run at GEMM speed, and each chunk's gate
gradients are freed as soon as its product is done). The gradient with respect to the projected inputs
is returned as one [B, T, 3H] tensor, so the input kernel's gradient (autodiff of the single
input-projection matmul) is one ``[I, B*T] x [B*T, 3H]`` product.

Maths (per step, x the projected input, h the previous state, U, b the recurrent kernel and bias):
    a = h U + b;  [z, r] = sigmoid(x[:2H] + a[:2H]);  hh = a[2H:];  n = tanh(x[2H:] + r * hh)
    h' = n + z * (h - n)
"""

from __future__ import annotations

import tensorflow as tf


def _step(x_zr: tf.Tensor, x_n: tf.Tensor, h: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, units: int):
    """One step. x_zr [B, 2H], x_n [B, H], h [B, H] -> (h' [B, H], zr [B, 2H], n [B, H], hh [B, H])."""
    a_zr, hh = tf.split(tf.matmul(h, kernel) + bias, [2 * units, units], axis=-1)
    zr = tf.sigmoid(x_zr + a_zr)
    z, r = tf.split(zr, 2, axis=-1)
    n = tf.tanh(x_n + r * hh)
    return n + z * (h - n), zr, n, hh


def _step_backward(dh: tf.Tensor, saved: tuple, kernel_t: tf.Tensor, units: int) -> tuple:
    """Gradients of one step from dh [B, H] (the new state's) and ``saved`` = (h, zr, n, hh).

    Returns (d_x [B, 3H] of the projected input, d_a [B, 3H] of a = h U + b, d_h [B, H] of the
    previous state, through both the gates and the recurrent product with kernel_t = U^T [3H, H]).
    """
    h_prev, zr, n, hh = saved
    z, r = tf.split(zr, 2, axis=-1)
    dn_pre = dh * (1.0 - z) * (1.0 - n * n)
    dzr_pre = tf.concat([dh * (h_prev - n), dn_pre * hh], axis=-1) * zr * (1.0 - zr)
    d_a = tf.concat([dzr_pre, dn_pre * r], axis=-1)
    return tf.concat([dzr_pre, dn_pre], axis=-1), d_a, dh * z + tf.matmul(d_a, kernel_t)


def _weight_grads(inputs: list, d_outputs: list) -> tuple:
    """One product over the given steps: (sum_t inputs_t^T d_outputs_t [I, O], sum_t,b d_outputs_t [O])."""
    d_all = tf.concat(d_outputs, axis=0)
    return tf.matmul(tf.concat(inputs, axis=0), d_all, transpose_a=True), tf.reduce_sum(d_all, axis=0)


#: Steps per weight-gradient product. One product over all T steps would keep every step's gate
#: gradients alive until the end of the backward loop; a product per CHUNK steps ([I, CHUNK*B] x
#: [CHUNK*B, O], still large enough to run at GEMM speed) lets them go as the loop moves on.
CHUNK = 6


class _WeightGrad:
    """Accumulates (sum_t inputs_t^T d_outputs_t, sum_t,b d_outputs_t) of one weight over the steps of a
    backward loop, one ``_weight_grads`` product per ``CHUNK`` steps added."""

    def __init__(self):
        self.kernel = self.bias = None
        self.inputs, self.d_outputs = [], []

    def add(self, inputs: tf.Tensor, d_outputs: tf.Tensor) -> None:
        self.inputs.append(inputs)
        self.d_outputs.append(d_outputs)
        if len(self.inputs) == CHUNK:
            self._flush()

    def _flush(self) -> None:
        if not self.inputs:
            return
        kernel, bias = _weight_grads(self.inputs, self.d_outputs)
        self.kernel = kernel if self.kernel is None else self.kernel + kernel
        self.bias = bias if self.bias is None else self.bias + bias
        self.inputs, self.d_outputs = [], []

    def result(self) -> tuple:
        """(kernel gradient [I, O], bias gradient [O])."""
        self._flush()
        return self.kernel, self.bias


def gru_sequence(x_proj: tf.Tensor, h0: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor,
                 reverse: bool = False) -> tuple:
    """Runs a GRU over a projected input sequence, with a time-batched custom gradient.

    x_proj float32 [B, T, 3H] (T static): the input half of the gates for every step, input bias
    included (``FusedGRUCell.project_inputs``); h0 float32 [B, H]; kernel float32 [H, 3H] and bias
    float32 [3H]: the recurrent kernel and bias (tensors, not variables: read them before the call);
    ``reverse``: run from the last step to the first (outputs stay in input order).
    Returns (outputs float32 [B, T, H], final state float32 [B, H]).
    """
    units = int(kernel.shape[0])
    steps = int(x_proj.shape[1])
    order = list(range(steps - 1, -1, -1)) if reverse else list(range(steps))

    @tf.custom_gradient
    def run(x_proj, h0, kernel, bias):
        x_zr, x_n = tf.split(x_proj, [2 * units, units], axis=-1)
        x_zr, x_n = tf.unstack(x_zr, axis=1), tf.unstack(x_n, axis=1)
        outputs = [None] * steps
        saved = {}  # step -> (h_prev, zr, n, hh)
        h = h0
        for t in order:
            h_new, zr, n, hh = _step(x_zr[t], x_n[t], h, kernel, bias, units)
            saved[t] = (h, zr, n, hh)
            outputs[t] = h = h_new

        def grad(d_outputs, d_final):
            kernel_t = tf.transpose(kernel)
            d_out = [None] * steps if d_outputs is None else tf.unstack(d_outputs, axis=1)
            dh = tf.zeros_like(h0) if d_final is None else d_final
            d_x = [None] * steps  # step -> [B, 3H]
            recurrent = _WeightGrad()  # of a = h U + b: a product per CHUNK steps
            for t in reversed(order):
                if d_out[t] is not None:
                    dh = dh + d_out[t]
                d_x[t], d_a, dh = _step_backward(dh, saved[t], kernel_t, units)
                recurrent.add(saved[t][0], d_a)
            d_kernel, d_bias = recurrent.result()
            return tf.stack(d_x, axis=1), dh, d_kernel, d_bias

        return (tf.stack(outputs, axis=1), h), grad

    return run(x_proj, h0, kernel, bias)


def feedback_ticks(token_table: tf.Tensor, condition: tf.Tensor, initial: tf.Tensor, layers: list,
                   output_kernel: tf.Tensor, output_bias: tf.Tensor, prev0: tf.Tensor, segment_length: int,
                   targets: tf.Tensor | None = None, forced: tf.Tensor | None = None, keep: list | None = None,
                   rate: float = 0.0, logits_relu: bool = False) -> tf.Tensor:
    """An autoregressive stacked-GRU decoder that feeds back its own argmax, with a time-batched gradient.

    The same computation as stepping ``layers.autoregressive_tick`` (teacher forcing and dropout between
    layers included); the fed-back tokens are argmaxes or targets, constants for the gradient, so the
    backward loop only carries the states back and every weight's gradient is one product per ``CHUNK`` steps.

    token_table float32 [V', 3H]: the token half of the first layer's input projection; condition
    float32 [B, S, 3H]: the rest of it (bias included), constant within each of S segments of
    ``segment_length`` ticks (T = S * segment_length); initial float32 [S, L, B, H]: the states of the L
    layers at the start of each segment. ``layers``: per layer a tuple (input kernel [H, 3H] or None for
    the first, input bias [3H] or None, recurrent kernel [H, 3H], recurrent bias [3H]) of tensors.
    output_kernel [H, V], output_bias [V]: the logits layer (``logits_relu``: ReLU after it, the argmax
    taken after the ReLU). prev0 int32 [B]: the row of token_table fed at the first tick. targets int32
    [B, T] and forced bool [B, T]: where forced, tick t+1 is fed targets[:, t] instead of the argmax.
    keep: per tick, per layer above the first, a bool [B, H] dropout keep mask of the state fed up
    (inverted dropout with ``rate``), or None. Returns logits float32 [B, T, V].
    """
    num_layers = len(layers)
    segments = int(condition.shape[1])
    steps = segments * segment_length
    units = int(layers[0][2].shape[0])
    flat = [w for layer in layers for w in layer if w is not None]

    def drop(x, mask, scale):
        return tf.where(mask, x / scale, tf.zeros_like(x))

    @tf.custom_gradient
    def run(token_table, condition, initial, output_kernel, output_bias, *flat):
        it = iter(flat)
        weights = [tuple(None if (i == 0 and j < 2) else next(it) for j in range(4)) for i in range(num_layers)]
        cond = tf.unstack(condition, axis=1)
        init = [tf.unstack(s, axis=0) for s in tf.unstack(initial, axis=0)]
        saved = [[None] * num_layers for _ in range(steps)]  # (h_prev, zr, n, hh) per tick and layer
        fed, tops, logits_all, prevs = [[None] * num_layers for _ in range(steps)], [], [], []
        prev = prev0
        for t in range(steps):
            s = t // segment_length
            if t % segment_length == 0:
                states = list(init[s])
            prevs.append(prev)
            for i, (w_in, b_in, w_rec, b_rec) in enumerate(weights):
                if i == 0:
                    x = tf.gather(token_table, prev) + cond[s]
                else:
                    below = states[i - 1] if keep is None else drop(states[i - 1], keep[t][i - 1], 1.0 - rate)
                    fed[t][i] = below
                    x = tf.matmul(below, w_in) + b_in
                x_zr, x_n = tf.split(x, [2 * units, units], axis=-1)
                h_new, zr, n, hh = _step(x_zr, x_n, states[i], w_rec, b_rec, units)
                saved[t][i] = (states[i], zr, n, hh)
                states[i] = h_new
            tops.append(states[-1])
            logits = tf.matmul(states[-1], output_kernel) + output_bias
            if logits_relu:
                logits = tf.nn.relu(logits)
            logits_all.append(logits)
            greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
            prev = greedy if forced is None else tf.where(forced[:, t], targets[:, t], greedy)

        def grad(d_logits):
            d_logits = tf.unstack(d_logits, axis=1)
            kernels_t = [tf.transpose(w[2]) for w in weights]
            inputs_t = [None if w[0] is None else tf.transpose(w[0]) for w in weights]
            output_t = tf.transpose(output_kernel)
            dh = [tf.zeros_like(init[0][0]) for _ in range(num_layers)]
            d_x0 = [None] * steps  # the first layer's input gradients, for the token table
            recurrent = [_WeightGrad() for _ in range(num_layers)]
            inputs = [_WeightGrad() for _ in range(num_layers)]  # layers above the first
            output = _WeightGrad()
            d_cond, d_init = [None] * segments, [None] * segments
            for t in reversed(range(steps)):
                dl = d_logits[t]
                if logits_relu:
                    dl = tf.where(logits_all[t] > 0.0, dl, tf.zeros_like(dl))
                output.add(tops[t], dl)
                dh[-1] = dh[-1] + tf.matmul(dl, output_t)
                for i in reversed(range(num_layers)):
                    d_x, d_a, dh[i] = _step_backward(dh[i], saved[t][i], kernels_t[i], units)
                    recurrent[i].add(saved[t][i][0], d_a)
                    if i > 0:
                        inputs[i].add(fed[t][i], d_x)
                        d_below = tf.matmul(d_x, inputs_t[i])
                        if keep is not None:
                            d_below = drop(d_below, keep[t][i - 1], 1.0 - rate)
                        dh[i - 1] = dh[i - 1] + d_below
                d_x0[t] = d_x
                s = t // segment_length
                d_cond[s] = d_x if d_cond[s] is None else d_cond[s] + d_x
                if t % segment_length == 0:
                    d_init[s] = tf.stack(dh, axis=0)
                    dh = [tf.zeros_like(x) for x in dh]
            d_flat = []
            for i in range(num_layers):
                if i > 0:
                    d_flat += list(inputs[i].result())
                d_flat += list(recurrent[i].result())
            d_out_kernel, d_out_bias = output.result()
            d_table = tf.math.unsorted_segment_sum(tf.concat(d_x0, axis=0), tf.concat(prevs, axis=0),
                                                   tf.shape(token_table)[0])
            return [d_table, tf.stack(d_cond, axis=1), tf.stack(d_init, axis=0), d_out_kernel, d_out_bias] + d_flat

        return tf.stack(logits_all, axis=1), grad

    return run(token_table, condition, initial, output_kernel, output_bias, *flat)
