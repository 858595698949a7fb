"""The time-batched GRU gradients (``models.gru``): the encoder recurrence gives the values of stepping
``FusedGRUCell`` and gradients equal to autodiff of the unrolled loop (every weight, the inputs and the
initial state), both directions, eager and inside tf.function with and without XLA; whole training steps
of both models (batched encoder and decoder gradients) equal autodiff of the step-by-step loops."""

import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai.models import gru
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


def test_the_kernel_gradient_is_one_matmul_per_chunk_of_steps():
    """The backward graph holds T per-step state products plus ONE kernel-gradient product per
    ``gru.CHUNK`` steps, not 2T."""
    steps = gru.CHUNK + 1
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
    # forward: one per step; backward: one per step (dh -> dh_prev) + one per chunk for the kernel.
    assert len(matmuls) == 2 * steps + 2


def _unrolled_run_gru(cell, x, h0, reverse=False):
    return _unrolled(cell, x, h0, reverse)


@pytest.mark.parametrize("name,overrides,step", [
    ("measure_vae", {"teacher_forcing": 1.0}, 5),
    ("measure_vae", {"teacher_forcing": 0.0}, 6),
    ("measure_vae", {"teacher_forcing": 0.0, "dropout": 0.0, "logits_relu": False}, 7),
    ("adversarial_vae", {"sampling_coin": "token", "sampling_k": 10.0}, 23),  # p(forced) = 0.5
    ("adversarial_vae", {"sampling_coin": "token", "sampling_k": 10.0, "adversarial_state_per_layer": True,
                         "adversarial_encoder_layers": 2}, 23),
])
def test_a_training_step_equals_autodiff_of_the_step_by_step_model(name, overrides, step, monkeypatch):
    """Losses and every weight's gradient of the training path (time-batched encoder and decoder
    gradients) equal autodiff of the step-by-step loops, dropout and teacher forcing included."""
    from musicvae_xai.config import RunConfig
    from musicvae_xai.models import layers
    from musicvae_xai.models.base import build_model
    from musicvae_xai.training.loop import data_statistics, statistics_bins

    cfg = RunConfig(model=name, hidden_size=8, latent_dim=4, embedding_dim=4, num_bins=3, batch_size=6,
                    discriminator_hidden=8, seed=5, **overrides)
    tokens = np.random.default_rng(1).integers(0, cfg.vocabulary.size, (6, 24)).astype(np.int32)
    stats = data_statistics(tokens, cfg.vocabulary, cfg.attributes, statistics_bins(cfg))
    from musicvae_xai import attributes

    attrs = attributes.compute(tokens, cfg.vocabulary, cfg.attributes).astype(np.float32)

    def losses_and_grads(model):
        variables = model.trainable_variables
        with tf.GradientTape() as tape:
            if name == "measure_vae":
                out = model.compute_losses(tokens, attrs, step, 6, training=True)
                loss = out["loss"]
            else:
                forced = model.teacher_force_mask(step, 6, 6)
                enc, out, _ = model._forward(tokens, attrs, tf.constant([1, 2]), forced, 6, 0, True)
                loss = out["reconstruction_loss"] + out["kl"] + tf.reduce_sum(model.discriminator(enc["z"]))
        return [loss], tape.gradient(loss, variables), [v.path for v in variables]

    from musicvae_xai.models import adversarial_vae, gru, measure_vae

    calls = []
    for module in (measure_vae, adversarial_vae, layers):  # spies: the batched paths must be the ones run
        attr = "gru_sequence" if module is layers else "feedback_ticks"
        real = getattr(gru, attr)
        monkeypatch.setattr(module, attr, lambda *a, _real=real, _attr=attr, **k: calls.append(_attr) or _real(*a, **k))
    new = build_model(cfg, data_statistics=stats)
    calls.clear()
    got_loss, got_grads, paths = losses_and_grads(new)
    assert "feedback_ticks" in calls and "gru_sequence" in calls
    ref = build_model(cfg, data_statistics=stats)
    ref.decoder.time_batched_gradient = False
    monkeypatch.setattr(layers, "run_gru", _unrolled_run_gru)
    want_loss, want_grads, _ = losses_and_grads(ref)
    np.testing.assert_allclose(got_loss[0].numpy(), want_loss[0].numpy(), rtol=1e-6)
    checked = 0
    for path, g, w in zip(paths, got_grads, want_grads, strict=True):
        if w is None:
            assert g is None, path
            continue
        g, w = tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(w).numpy()
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-6, err_msg=path)
        checked += int(np.any(w != 0))
    assert checked >= 10  # the GRU kernels, embeddings and output layers all receive gradients
