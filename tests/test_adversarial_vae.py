"""AdversarialVAE: shapes, controls, bad input, update isolation, the adversary, control, resume.

Distributed training, multi-worker agreement and resume after SIGKILL run in tests/test_training.py
(its MODELS list includes "adversarial_vae").
"""

import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats as scipy_stats

from musicvae_xai import attributes
from musicvae_xai.config import ConfigError, RunConfig
from musicvae_xai.models import adversarial_vae, losses
from musicvae_xai.models.base import build_model
from musicvae_xai.training import checkpoints
from musicvae_xai.training.loop import data_statistics

FOUR = attributes.DEFAULT_FOUR
DENSITY = ("note_density",)
#: Onset ticks in the order a toy measure with n onsets fills them.
ORDER = np.array([0, 12, 6, 18, 3, 9, 15, 21, 1, 13, 7, 19, 4, 10, 16, 22])


def small_config(**overrides) -> RunConfig:
    base = dict(model="adversarial_vae", hidden_size=16, latent_dim=6, embedding_dim=4, num_bins=4,
                discriminator_hidden=16, seed=3)
    base.update(overrides)
    return RunConfig(**base)


def random_tokens(vocab, n, seed=0):
    return np.random.default_rng(seed).integers(0, vocab.size, size=(n, 24)).astype(np.int32)


def make_model(config, tokens):
    stats = data_statistics(tokens, config.vocabulary, config.attributes, config.num_bins)
    return build_model(config, data_statistics=stats), stats


@pytest.fixture(scope="module")
def trained_inputs():
    config = small_config()
    return config, random_tokens(config.vocabulary, 64)


@pytest.fixture(scope="module")
def model(trained_inputs):
    config, tokens = trained_inputs
    return make_model(config, tokens)[0]


def test_encode_decode_shapes_and_dtypes(model):
    v = model.vocabulary
    tokens = random_tokens(v, 5, seed=1)
    enc = model.encode(tokens)
    assert enc["z_mean"].shape == (5, 6) and enc["z_scale"].shape == (5, 6)
    np.testing.assert_array_equal(enc["z"].numpy(), enc["z_mean"].numpy())
    controls = model.default_controls(tokens)
    assert controls.shape == (5, 4) and controls.dtype == tf.float32
    dec = model.decode(enc["z"], controls)
    assert dec["tokens"].dtype == tf.int32 and dec["tokens"].shape == (5, 24)
    assert dec["probabilities"].shape == (5, 24, v.size)
    np.testing.assert_allclose(dec["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(dec["tokens"].numpy(), np.argmax(dec["probabilities"].numpy(), -1))
    assert model.discriminator(enc["z"]).shape == (5, 4, 3)  # K attributes x (num_bins - 1) outputs
    assert model(tokens).shape == (5, 24, v.size)
    assert model.needs_controls


def test_controls_are_attribute_inputs_with_training_ranges(model, trained_inputs):
    config, tokens = trained_inputs
    measured = attributes.compute(tokens, config.vocabulary, FOUR)
    controls = model.controls
    assert [c.attribute for c in controls] == list(FOUR)
    assert {c.kind for c in controls} == {"attribute_input"} and [c.index for c in controls] == [0, 1, 2, 3]
    np.testing.assert_allclose([c.low for c in controls], measured.min(0), rtol=1e-6)
    np.testing.assert_allclose([c.high for c in controls], measured.max(0), rtol=1e-6)
    np.testing.assert_allclose(model.default_controls(tokens).numpy(), measured, rtol=1e-5, atol=1e-6)
    z = np.zeros((2, 6), np.float32)
    z_rep, c_rep = model.apply_controls(z, measured[:2], 2, [0.1, 0.2, 0.3])
    assert z_rep.shape == (6, 6) and c_rep.shape == (6, 4)
    np.testing.assert_allclose(c_rep.numpy()[:, 2], [0.1, 0.2, 0.3] * 2)
    np.testing.assert_allclose(c_rep.numpy()[:3, 0], measured[0, 0])


def test_statistics_are_weights_and_come_from_the_training_split(model, trained_inputs, tmp_path):
    config, tokens = trained_inputs
    stats = data_statistics(tokens, config.vocabulary, FOUR, 4)
    np.testing.assert_allclose(model.bin_edges.numpy(), stats["bin_edges"], rtol=1e-6)
    np.testing.assert_allclose(model.attribute_mean.numpy(), stats["mean"], rtol=1e-6)
    assert not any(v.trainable for v in (model.bin_edges, model.attribute_std, model.attribute_min))
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    blank = build_model(config, data_statistics=None)  # placeholders until restored
    assert not np.allclose(blank.bin_edges.numpy(), stats["bin_edges"])
    tf.train.Checkpoint(model=blank).restore(path).expect_partial()
    for name in ("bin_edges", "attribute_mean", "attribute_std", "attribute_min", "attribute_max"):
        np.testing.assert_array_equal(getattr(blank, name).numpy(), getattr(model, name).numpy())


def test_out_of_range_controls_are_clipped_with_a_warning_never_nan(model):
    z = np.random.default_rng(4).normal(size=(3, 6)).astype(np.float32)
    lo = np.array([c.low for c in model.controls], np.float32)
    hi = np.array([c.high for c in model.controls], np.float32)
    wild = np.stack([lo - 5.0, hi + 100.0, np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)])
    with mock.patch.object(adversarial_vae.logging, "warning") as warning:
        dec = model.decode(z, wild)
    assert warning.call_count == 1 and "clipped" in warning.call_args[0][0]
    assert np.all(np.isfinite(dec["probabilities"].numpy()))
    mean = model.attribute_mean.numpy()
    expected = np.clip(np.where(np.isnan(wild), mean, wild), lo, hi)
    clipped = model.decode(z, expected)
    np.testing.assert_allclose(dec["probabilities"].numpy(), clipped["probabilities"].numpy(), atol=1e-6)
    in_graph = tf.function(model.decode)(tf.constant(z), tf.constant(wild))  # clipped inside a graph too
    np.testing.assert_allclose(in_graph["probabilities"].numpy(), clipped["probabilities"].numpy(), atol=1e-6)
    with mock.patch.object(adversarial_vae.logging, "warning") as warning:
        model.decode(z, expected)
    warning.assert_not_called()


@pytest.mark.parametrize("z_shape, c_shape, message", [
    ((2, 6), (2, 3), r"controls must have shape \[B, 4\]"),
    ((2, 6), (4,), r"controls must have shape \[B, 4\]"),
    ((2, 6), (3, 4), r"controls must have shape \[2, 4\] to match z"),
    ((2, 5), (2, 4), r"z must have shape \[B, 6\]"),
    ((2, 6), None, r"needs controls of shape \[B, 4\]"),
])
def test_wrong_shapes_name_the_expected_shape(model, z_shape, c_shape, message):
    controls = None if c_shape is None else np.zeros(c_shape, np.float32)
    with pytest.raises(ValueError, match=message):
        model.decode(np.zeros(z_shape, np.float32), controls)


def test_bad_statistics_and_settings_are_refused(trained_inputs):
    config, tokens = trained_inputs
    stats = data_statistics(tokens, config.vocabulary, FOUR, 4)
    with pytest.raises(ConfigError, match="describe attributes"):
        build_model(config, data_statistics={**stats, "attributes": list(attributes.DEFAULT_TWO)})
    with pytest.raises(ConfigError, match=r"bin_edges.*\[4, 3\]"):
        build_model(small_config(num_bins=8), data_statistics=stats)
    with pytest.raises(ConfigError, match="num_bins must be at least 2"):
        build_model(small_config(num_bins=1), data_statistics=data_statistics(tokens, config.vocabulary, FOUR, 1))
    with pytest.raises(ConfigError, match="data statistics"):
        build_model(config, data_statistics=None).make_optimizers()


def test_teacher_forcing_probability_schedule():
    p = lambda s, k=1000.0: float(adversarial_vae.teacher_forcing_probability(s, k))  # noqa: E731
    assert p(0) == pytest.approx(1000 / 1001)
    assert p(1000 * np.log(1000)) == pytest.approx(0.5, abs=1e-4)
    assert p(20000) < 1e-5 and 0.0 <= p(10**9) < 1e-20  # no overflow to NaN, however long the run
    assert p(0, 10.0) > p(10, 10.0) > p(30, 10.0) > p(100, 10.0)


def test_scheduled_sampling_forces_each_token_on_its_own(model):
    v = model.vocabulary
    rng = np.random.default_rng(5)
    z = tf.constant(rng.normal(size=(2, 6)).astype(np.float32))
    c = model.normalise_controls(model.default_controls(random_tokens(v, 2, seed=6)))
    greedy = model.decoder(z, c).numpy()
    targets = (np.argmax(greedy, -1) + 1) % v.size  # never the greedy choice
    none = np.zeros((2, 24), bool)
    np.testing.assert_allclose(model.decoder(z, c, targets=targets, teacher_force=none).numpy(), greedy, atol=1e-6)
    one = none.copy()
    one[0, 9] = True  # example 0 is fed the target after tick 9; example 1 is untouched
    out = model.decoder(z, c, targets=targets, teacher_force=one).numpy()
    np.testing.assert_allclose(out[0, :10], greedy[0, :10], atol=1e-6)
    assert not np.allclose(out[0, 10], greedy[0, 10])
    np.testing.assert_allclose(out[1], greedy[1], atol=1e-6)


def test_discriminator_and_vae_updates_touch_only_their_own_variables(trained_inputs):
    _, tokens = trained_inputs
    config = small_config(num_layers=1)
    m, _ = make_model(config, tokens)
    opts = m.make_optimizers()
    d_ids = {id(v) for v in m.discriminator.trainable_variables}
    vae_ids = {id(v) for v in m.vae_variables}
    assert d_ids and vae_ids and not d_ids & vae_ids
    assert d_ids | vae_ids == {id(v) for v in m.trainable_variables}
    # Each optimiser holds state for its own variables only.
    assert {id(v) for v in opts["discriminator"]._trainable_variables} == d_ids
    assert {id(v) for v in opts["vae"]._trainable_variables} == vae_ids
    attrs = attributes.compute(tokens, config.vocabulary, FOUR)

    def changed_after_step(frozen: str, step: int) -> set:
        opts[frozen].learning_rate = 0.0  # Adam with lr 0 leaves its variables exactly as they were
        other = "vae" if frozen == "discriminator" else "discriminator"
        opts[other].learning_rate = 1e-2
        before = {id(v): v.numpy().copy() for v in m.weights}
        m.train_step_replica(opts, tokens[:16], attrs[:16], step, 16, 0)
        return {id(v) for v in m.weights if not np.array_equal(v.numpy(), before[id(v)])}

    assert changed_after_step("vae", 0) == d_ids  # the discriminator update: discriminator only
    assert changed_after_step("discriminator", 1) == vae_ids  # the VAE update: encoder + decoder only


def density_measures(vocab, counts, pitches=None):
    """Toy measures: n onsets on the first n ticks of ORDER, every onset the same pitch id."""
    tokens = np.full((len(counts), 24), vocab.hold_id, np.int32)
    pitches = np.full(len(counts), 5) if pitches is None else pitches
    for i, (n, p) in enumerate(zip(counts, pitches, strict=True)):
        tokens[i, ORDER[:n]] = p
    return tokens


def train_toy(config, tokens, steps):
    """Trains a fresh model on ``tokens`` for ``steps`` seeded steps (one compiled step function)."""
    model, _ = make_model(config, tokens)
    opts = model.make_optimizers()
    attrs = attributes.compute(tokens, config.vocabulary, config.attributes)
    bs = config.batch_size
    step_fn = tf.function(lambda t, a, s: model.train_step_replica(opts, t, a, s, bs, 0))
    rng = np.random.default_rng(config.seed)
    for step in range(steps):
        rows = rng.choice(len(tokens), bs, replace=False)
        step_fn(tokens[rows], attrs[rows], tf.constant(step, tf.int64))
    return model


TOY = dict(hidden_size=32, latent_dim=4, embedding_dim=8, num_layers=1, learning_rate=3e-3,
           discriminator_hidden=32, batch_size=64, attributes=DENSITY, seed=1)


@pytest.mark.slow
def test_adversarial_term_drives_discriminator_accuracy_towards_chance():
    """Pitch = density + small noise: without the adversary z encodes the pitch and with it the density
    class; with it the encoder hides the density class from the discriminator."""
    vocab = RunConfig().vocabulary

    def toy(seed, rows):
        rng = np.random.default_rng(seed)
        counts = rng.integers(1, 17, rows)
        return density_measures(vocab, counts, counts + rng.integers(0, 4, rows))

    train, test = toy(0, 2048), toy(9, 512)
    accuracy = {}
    for lambda_d in (0.0, 1.0):
        t0 = time.time()
        model = train_toy(RunConfig(model="adversarial_vae", num_bins=4, lambda_d=lambda_d, lambda_kl=0.01,
                                    **TOY), train, 300)
        z = model.encode(test, seed=tf.constant([3, 4]))["z"]
        targets = losses.ordinal_targets(attributes.compute(test, vocab, DENSITY), model.bin_edges)
        accuracy[lambda_d] = float(losses.ordinal_accuracy(model.discriminator(z), targets))
        print(f"lambda_d={lambda_d}: discriminator accuracy {accuracy[lambda_d]:.3f} ({time.time() - t0:.0f} s)")
    chance = 1.0 / 4
    assert accuracy[0.0] > chance + 0.25  # the premise: z encodes the attribute without the adversary
    assert abs(accuracy[1.0] - chance) < 0.1
    assert accuracy[1.0] < accuracy[0.0] - 0.25


@pytest.mark.slow
def test_decoded_density_rises_with_the_density_control():
    vocab = RunConfig().vocabulary
    t0 = time.time()
    model = train_toy(RunConfig(model="adversarial_vae", lambda_d=0.1, **TOY),
                      density_measures(vocab, np.repeat(np.arange(1, 17), 16)), 250)
    print(f"trained in {time.time() - t0:.0f} s")
    sources = density_measures(vocab, [2, 8, 14])
    values = np.arange(1, 17) / 24.0  # the control range of the training data
    z, controls = model.apply_controls(model.encode(sources)["z_mean"], model.default_controls(sources), 0, values)
    decoded = model.decode(z, controls)["tokens"].numpy()
    density = attributes.compute(decoded, vocab, DENSITY)[:, 0]
    rho = scipy_stats.spearmanr(controls.numpy()[:, 0], density)[0]
    print("decoded onsets per control value:", (density.reshape(3, -1) * 24).round().astype(int).tolist())
    assert rho > 0.8
    for row in density.reshape(3, -1):  # from every encoded measure, not just on average
        assert scipy_stats.spearmanr(values, row)[0] > 0.8


def test_checkpoint_holds_both_optimisers_and_resume_is_exact(trained_inputs, tmp_path):
    _, tokens = trained_inputs
    config = small_config(num_layers=1)
    attrs = attributes.compute(tokens, config.vocabulary, FOUR)
    batches = [(tokens[i * 16:(i + 1) * 16], attrs[i * 16:(i + 1) * 16]) for i in range(4)]

    def fresh():
        m, _ = make_model(config, tokens)
        opts = m.make_optimizers()
        return m, opts, tf.Variable(0, dtype=tf.int64)

    def train(m, opts, steps):
        for step in steps:
            m.train_step_replica(opts, *batches[step], step, 16, 0)

    straight, straight_opts, _ = fresh()
    train(straight, straight_opts, range(4))

    first, first_opts, step_var = fresh()
    train(first, first_opts, range(2))
    step_var.assign(2)
    checkpoints.RunCheckpoints(str(tmp_path), first, first_opts, step_var, chief=True).save(2)
    names = [n for n, _ in tf.train.list_variables(str(tmp_path / "ckpt-2"))]
    for opt in ("optimizer_discriminator", "optimizer_vae"):
        assert any(n.startswith(opt + "/") for n in names), opt

    resumed, resumed_opts, resumed_step = fresh()
    checkpoints.RunCheckpoints(str(tmp_path), resumed, resumed_opts, resumed_step, chief=True).restore_latest()
    assert int(resumed_step.numpy()) == 2
    assert [int(o.iterations.numpy()) for o in resumed_opts.values()] == [2, 2]
    train(resumed, resumed_opts, range(2, 4))
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    for name in ("discriminator", "vae"):
        for a, b in zip(straight_opts[name].variables, resumed_opts[name].variables, strict=True):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


# -- the reference architecture (Kawai et al.'s FaderVAE and Classifier) and its deviation flags --------

TWO = ("rhythmic_complexity", "note_range")
TINY_STATS = {"attributes": list(TWO), "min": [0, 0], "max": [1, 10], "mean": [.5, 5], "std": [.2, 2],
              "bin_edges": [[.2, .5, .8], [2, 5, 8]]}


def tiny(**overrides) -> RunConfig:
    base = dict(model="adversarial_vae", hidden_size=8, latent_dim=4, embedding_dim=4, num_bins=4,
                attributes=TWO, seed=1)
    base.update(overrides)
    return RunConfig(**base)


def trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_reference_parameter_count():
    model = build_model(tiny(), data_statistics=TINY_STATS)
    assert model.config.vocabulary.size == 34
    # V=34 (one-hot, fixed identity tables), H=8, Z=4, K=2 attributes, C=4 bins; a GRU layer has
    # input I*3H + recurrent H*3H + biases 2*3H.
    encoder = 2 * (34 * 24 + 8 * 24 + 48) + 2 * (16 * 4 + 4)      # 1-layer bi-GRU on one-hot + Linear mu, log s
    decoder = ((4 * 8 + 8)                                       # h1 = tanh(Linear(z -> H))
               + ((34 + 4 + 2) * 24 + 8 * 24 + 48)               # GRUCell 1: [token, z, a] -> H
               + (8 * 24 + 8 * 24 + 48)                          # GRUCell 2
               + (8 * 34 + 34))                                  # output Linear H -> V
    discriminator = (4 * 2 + 2) + (2 * 6 + 6)                    # z -> z/2 (LeakyReLU) -> K*(C-1)
    assert (encoder, decoder, discriminator) == (2248, 1978, 28)
    assert trainable_count(model) == encoder + decoder + discriminator
    assert trainable_count(model.discriminator) == discriminator
    assert [layer.units for layer in model.discriminator.hidden_layers] == [2]


def test_kl_term_is_the_mean_over_dims():
    cfg = tiny(lambda_kl=0.3, lambda_d=0.2)
    model = build_model(cfg, data_statistics=TINY_STATS)
    x = random_tokens(cfg.vocabulary, 8)
    a = np.random.default_rng(1).uniform(0, 1, (8, 2)).astype(np.float32)
    out = model.eval_metrics(x, a)
    enc = model.encode(tf.constant(x), seed=adversarial_vae.step_seed(cfg.seed, 0, salt=21))
    m, s = enc["z_mean"].numpy().astype(np.float64), enc["z_scale"].numpy().astype(np.float64)
    per_dim = 0.5 * (m ** 2 + s ** 2 - 1.0) - np.log(s)
    assert float(out["kl"]) == pytest.approx(per_dim.sum(1).mean(), rel=1e-4)  # metric: nats per measure
    rest = float(out["reconstruction_loss"]) + 0.2 * float(out["adversarial_loss"])
    assert float(out["loss"]) == pytest.approx(rest + 0.3 * per_dim.mean(), rel=1e-4)  # loss: mean over dims


def test_sampling_coin_flag():
    step_model = build_model(tiny(sampling_k=5.0), data_statistics=TINY_STATS)
    mask = step_model.teacher_force_mask(tf.constant(8), 6, 6).numpy()
    assert mask.shape == (24,) and 0 < mask.sum() < 24   # one coin per tick, shared by the batch
    token_model = build_model(tiny(sampling_k=5.0, sampling_coin="token"), data_statistics=TINY_STATS)
    mask = token_model.teacher_force_mask(tf.constant(8), 6, 6).numpy()
    assert mask.shape == (6, 24) and not np.all(mask == mask[:1])


def test_architecture_flags_change_what_they_claim():
    base = trainable_count(build_model(tiny(), data_statistics=TINY_STATS))
    count = lambda **kw: trainable_count(build_model(tiny(**kw), data_statistics=TINY_STATS))  # noqa: E731
    # Our former discriminator: two hidden layers of 16 instead of one of z/2.
    assert count(discriminator_hidden=16, discriminator_layers=3) - base == (
        (4 * 16 + 16) + (16 * 16 + 16) + (16 * 6 + 6)) - 28
    # Every decoder layer its own initial state from [z, a]: Linear(6 -> 2H) instead of Linear(4 -> H).
    assert count(adversarial_state_per_layer=True) - base == (6 * 16 + 16) - (4 * 8 + 8)
    # A second bidirectional encoder layer (input 2H) and the wider final state (4H) into the heads.
    assert count(adversarial_encoder_layers=2) - base == 2 * (16 * 24 + 8 * 24 + 48) + 2 * (16 * 4)
    # MeasureVAE's SELU hidden layer of 2H = 16 in each posterior head.
    assert count(adversarial_posterior_hidden=True) - base == 2 * (16 * 16 + 16 + 16 * 4 + 4) - 2 * (16 * 4 + 4)
    # Learned embeddings (E = 4) instead of one-hot: two [V, E] tables, narrower GRU inputs.
    assert count(one_hot_inputs=False) - base == 2 * 34 * 4 - 2 * (34 - 4) * 24 - (34 - 4) * 24


def test_decoder_initial_state_is_shared_at_t0():
    """Reference: the second GRU layer starts from the first layer's state after step 0."""
    model = build_model(tiny(), data_statistics=TINY_STATS)
    dec = model.decoder
    z = tf.random.normal([3, 4], seed=2)
    c = tf.zeros([3, 2])
    logits = dec(z, c).numpy()
    e = dec.embedding_dim
    token_table = tf.matmul(dec.token_embedding.embeddings, dec.cells[0].input_kernel[:e])
    first_proj = tf.gather(token_table, tf.fill([3], dec.start_id)) + tf.matmul(
        tf.concat([z, c], -1), dec.cells[0].input_kernel[e:]) + dec.cells[0].input_bias
    h1 = dec.cells[0].step(first_proj, dec.initial_state(z))  # h1 = tanh(Linear(z)), then GRUCell 1
    h2 = dec.cells[1].step(dec.cells[1].project_inputs(h1), h1)
    assert np.allclose(logits[:, 0], dec.output_layer(h2).numpy(), atol=1e-5)
