"""The time-batched GRU recurrence: same values as stepping ``FusedGRUCell`` and gradients equal to
autodiff of the unrolled loop (every weight, the inputs and the initial state), both directions,
inside tf.function with and without XLA."""

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai.models.gru import gru_sequence
from musicvae_xai.models.layers import FusedGRUCell, run_gru


def _cell(in_dim, units, seed):
    cell = FusedGRUCell(units)
    cell.build((None, in_dim))
    rng = np.random.default_rng(seed)
    for w in cell.weights:  # non-zero biases, so a mixed-up gate cannot pass
        w.assign(rng.normal(size=w.shape).astype(np.float32) * 0.5)
    return cell


def _unrolled(cell, x, h0, reverse):
    """Autodiff reference: ``cell.step`` T times."""
    proj = tf.unstack(cell.project_inputs(x), axis=1)
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    outputs, h = [None] * x.shape[1], h0
    for t in steps:
        h = outputs[t] = cell.step(proj[t], h)
    return tf.stack(outputs, axis=1), h


def _loss_and_grads(fn, cell, x, h0, reverse, w_out, w_final):
    with tf.GradientTape() as tape:
        tape.watch([x, h0])
        out, final = fn(cell, x, h0, reverse)
        # Both outputs feed the loss, through non-uniform weights (a wrong step order cannot pass).
        loss = tf.reduce_sum(tf.tanh(out) * w_out) + tf.reduce_sum(final * w_final)
    return [out, final] + tape.gradient(loss, [x, h0] + cell.trainable_variables)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("reverse", [False, True])
def test_values_and_gradients_equal_autodiff_of_the_unrolled_loop(mode, reverse):
    batch, steps, in_dim, units = 3, 5, 4, 6
    cell = _cell(in_dim, units, seed=1)
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(batch, steps, in_dim)), tf.float32)
    h0 = tf.constant(rng.normal(size=(batch, units)) * 0.3, tf.float32)
    w_out = tf.constant(rng.normal(size=(batch, steps, units)), tf.float32)
    w_final = tf.constant(rng.normal(size=(batch, units)), tf.float32)

    def wrap(fn):
        run = lambda: _loss_and_grads(fn, cell, x, h0, reverse, w_out, w_final)  # noqa: E731
        return run() if mode == "eager" else tf.function(run, jit_compile=mode == "xla")()

    got, want = wrap(run_gru), wrap(_unrolled)
    names = ["outputs", "final", "d_x", "d_h0"] + [v.name for v in cell.trainable_variables]
    assert len(got) == len(want) == 8
    for name, g, w in zip(names, got, want, strict=True):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_an_unused_output_sequence_gets_zero_upstream_gradient():
    """The encoder's top layer only uses its final state: its output sequence has no gradient."""
    cell = _cell(4, 6, seed=3)
    x = tf.constant(np.random.default_rng(4).normal(size=(2, 3, 4)), tf.float32)
    h0 = tf.zeros([2, 6])
    grads = []
    for fn in (run_gru, _unrolled):
        with tf.GradientTape() as tape:
            _, final = fn(cell, x, h0, False)
            loss = tf.reduce_sum(final ** 2)
        grads.append(tape.gradient(loss, cell.trainable_variables))
    for g, w in zip(*grads, strict=True):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-6)


def test_the_kernel_gradient_is_one_matmul_over_all_steps():
    """The backward graph holds T per-step state products plus ONE kernel-gradient product, not 2T."""
    steps = 7
    x_proj = tf.TensorSpec([2, steps, 9], tf.float32)

    @tf.function
    def grads(x_proj):
        kernel, bias, h0 = tf.ones([3, 9]) * 0.1, tf.zeros([9]), tf.zeros([2, 3])
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            _, final = gru_sequence(x_proj, h0, kernel, bias)
            loss = tf.reduce_sum(final)
        return tape.gradient(loss, kernel)

    graph = grads.get_concrete_function(x_proj).graph
    matmuls = [op for op in graph.get_operations() if op.type in ("MatMul", "BatchMatMulV2")]
    # forward: one per step; backward: one per step (dh -> dh_prev) + one for the kernel.
    assert len(matmuls) == 2 * steps + 1
