"""A GRU recurrence over a known input sequence with a hand-written, time-batched gradient.

``gru_sequence`` runs one GRU layer (reset-after, gates ordered [update, reset, candidate] along the
3H axis, as ``layers.FusedGRUCell``) over T static steps whose projected inputs are all known before the
recurrence starts (an encoder's embedded sequence, a lower layer's outputs). Its values are exactly
those of stepping ``FusedGRUCell.step`` T times; only the gradient is computed differently.

Autodiff of the unrolled loop forms the recurrent kernel's gradient one step at a time: T products
``[H, B] x [B, 3H]`` and T accumulations. Here the forward loop keeps what the backward needs (the
previous state, the gates, the recurrent candidate half), the backward loop computes each step's gate
gradients (the ``dh_t -> dh_{t-1}`` product ``[B, 3H] x [3H, H]`` per step is inherent to the
recurrence) and the kernel's gradient is then ONE product ``[H, T*B] x [T*B, 3H]``. The gradient with
respect to the projected inputs is returned as one [B, T, 3H] tensor, so the input kernel's gradient
(autodiff of the single input-projection matmul) is one ``[I, B*T] x [B*T, 3H]`` product as well.

Maths (per step, x the projected input, h the previous state, U, b the recurrent kernel and bias):
    a = h U + b;  [z, r] = sigmoid(x[:2H] + a[:2H]);  hh = a[2H:];  n = tanh(x[2H:] + r * hh)
    h' = n + z * (h - n)
"""

from __future__ import annotations

import tensorflow as tf


def _step(x_zr: tf.Tensor, x_n: tf.Tensor, h: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor, units: int):
    """One step. x_zr [B, 2H], x_n [B, H], h [B, H] -> (h' [B, H], zr [B, 2H], n [B, H], hh [B, H])."""
    a = tf.matmul(h, kernel) + bias
    zr = tf.sigmoid(x_zr + a[:, :2 * units])
    hh = a[:, 2 * units:]
    n = tf.tanh(x_n + zr[:, units:] * hh)
    return n + zr[:, :units] * (h - n), zr, n, hh


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
            d_a = [None] * steps  # step -> [B, 3H], gradient of a = h U + b
            for t in reversed(order):
                h_prev, zr, n, hh = saved[t]
                if d_out[t] is not None:
                    dh = dh + d_out[t]
                z, r = zr[:, :units], zr[:, units:]
                dn_pre = dh * (1.0 - z) * (1.0 - n * n)
                dzr_pre = tf.concat([dh * (h_prev - n), dn_pre * hh], axis=-1) * zr * (1.0 - zr)
                d_x[t] = tf.concat([dzr_pre, dn_pre], axis=-1)
                d_a[t] = tf.concat([dzr_pre, dn_pre * r], axis=-1)
                dh = dh * z + tf.matmul(d_a[t], kernel_t)
            h_prev_all = tf.concat([saved[t][0] for t in range(steps)], axis=0)  # [T*B, H]
            d_a_all = tf.concat(d_a, axis=0)  # [T*B, 3H], same step order
            d_kernel = tf.matmul(h_prev_all, d_a_all, transpose_a=True)  # [H, 3H]: one product
            d_bias = tf.reduce_sum(d_a_all, axis=0)
            return tf.stack(d_x, axis=1), dh, d_kernel, d_bias

        return (tf.stack(outputs, axis=1), h), grad

    return run(x_proj, h0, kernel, bias)
