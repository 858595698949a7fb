"""TensorBoard summaries of a training run, read back with TensorBoard's own reader (EventAccumulator):
piano-roll images of reconstructions and traversals, audio, learning rates and Adam step sizes, and the
HParams session with the run's configuration and final validation metrics. Also the numpy renderers.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from musicvae_xai.config import RunConfig
from musicvae_xai.representation import Vocabulary
from musicvae_xai.training import summaries
from musicvae_xai.training.hparams import HPARAMS_DIRNAME, config_values

from tensorboard_events import hparams_session

MODELS = ["measure_vae", "adversarial_vae"]
VOCAB = Vocabulary(55, 84)  # the default (and the fixtures') vocabulary: 30 pitches
ROLL_H = VOCAB.num_pitches * summaries.PX_PER_PITCH
MEASURE_W = 4 * summaries.PX_PER_BEAT


def accumulator(path: str) -> EventAccumulator:
    ea = EventAccumulator(path, size_guidance={"tensors": 0, "images": 0, "audio": 0, "scalars": 0})
    ea.Reload()
    return ea


def scalars(ea: EventAccumulator, tag: str) -> list:
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in ea.Tensors(tag)]


def images(ea: EventAccumulator, tag: str) -> list:
    """[(step, uint8 [H, W, C])] of an image summary (TF2 stores [width, height, png...] strings)."""
    out = []
    for e in ea.Tensors(tag):
        w, h, *pngs = tf.make_ndarray(e.tensor_proto)
        assert len(pngs) == 1
        img = tf.io.decode_png(pngs[0]).numpy()
        assert img.shape[:2] == (int(h), int(w))
        out.append((e.step, img))
    return out


# -- the numpy renderers -------------------------------------------------------------------------------

def test_piano_roll_draws_each_note_where_it_sounds():
    # C4 (60) from beat 0 held to beat 2, rest, then G4 (67) on the last triplet of beat 3 to the bar end.
    items = [60] + ["hold"] * 11 + ["rest"] * 10 + [67, "hold"]
    roll = summaries.piano_roll(VOCAB.encode(items)[None], VOCAB, color=(200, 0, 0))
    assert roll.shape == (ROLL_H, MEASURE_W, 3) and roll.dtype == np.uint8
    red = (roll[..., 0] > 100) & (roll[..., 1] < 50)
    dark = (roll[..., 0] == 120) & (roll[..., 1] == 0)  # the onset column (0.6 x colour)
    note = red | dark
    rows = sorted({int(r) // summaries.PX_PER_PITCH for r in np.nonzero(note)[0]})
    assert rows == [84 - 67, 84 - 60]  # highest pitch on top
    c4 = note[(84 - 60) * summaries.PX_PER_PITCH]
    assert c4[0] and c4[2 * summaries.PX_PER_BEAT - 2] and not c4[2 * summaries.PX_PER_BEAT + 1:].any()
    g4 = note[(84 - 67) * summaries.PX_PER_PITCH]
    start = int((3 + 2 / 3) * summaries.PX_PER_BEAT)  # tick 22 at 3 2/3 beats
    assert not g4[:start].any() and g4[start] and g4[MEASURE_W - 2]
    assert dark[(84 - 60) * summaries.PX_PER_PITCH, 0] and dark[(84 - 67) * summaries.PX_PER_PITCH, start]
    empty = summaries.piano_roll(VOCAB.encode(["rest"] * 24)[None], VOCAB, color=(200, 0, 0))
    assert not ((empty[..., 0] > 100) & (empty[..., 1] < 50)).any()


def test_reconstruction_and_traversal_layouts():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, VOCAB.size - 2, size=(5, 24))
    img = summaries.reconstruction_image(tokens[:3], tokens[2:], VOCAB)
    assert img.shape == (2 * ROLL_H + summaries.GUTTER // 2, 3 * MEASURE_W + 2 * summaries.GUTTER, 3)
    trav = summaries.traversal_image(tokens[0], tokens, np.linspace(-4, 4, 5), -4.0, 4.0, VOCAB)
    assert trav.shape == (ROLL_H + summaries.GAUGE, MEASURE_W + 2 * summaries.GUTTER + 5 * MEASURE_W + 4 * 2, 3)


def test_synthesized_measure_sounds_its_pitch():
    audio = summaries.synthesize(VOCAB.encode([69] + ["hold"] * 23)[None], VOCAB, sample_rate=16000, qpm=120.0)
    assert audio.shape == (32000,) and audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(len(audio), 1 / 16000)[spectrum.argmax()] == pytest.approx(440.0, abs=1.0)
    silent = summaries.synthesize(VOCAB.encode(["rest"] * 24)[None], VOCAB)
    assert not silent.any()


def test_optimizer_scalars_are_adams_bias_corrected_step_size():
    import keras

    opt = keras.optimizers.Adam(1e-3)
    v = tf.Variable([1.0, 2.0])
    assert summaries.optimizer_scalars({"vae": opt}) == {"learning_rate/vae": pytest.approx(1e-3),
                                                         "step_size/vae": pytest.approx(1e-3)}
    for _ in range(3):
        opt.apply_gradients([(tf.constant([0.1, -0.1]), v)])
    out = summaries.optimizer_scalars({"vae": opt})
    assert out["step_size/vae"] == pytest.approx(1e-3 * np.sqrt(1 - 0.999 ** 3) / (1 - 0.9 ** 3), rel=1e-5)
    sgd = keras.optimizers.SGD(0.5)
    assert summaries.optimizer_scalars({"d": sgd})["step_size/d"] == pytest.approx(0.5)


def test_a_failing_picture_is_a_warning_not_a_failed_run(tmp_path, caplog):
    class Broken:
        controls = []

        def encode(self, tokens):
            raise ValueError("decoder exploded")

    music = summaries.MusicSummaries(Broken(), VOCAB.encode([60] * 24)[None], VOCAB)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default(), caplog.at_level("WARNING"):
        assert music.write(1) >= 0.0 and music.failed
        assert music.write(2) == 0.0  # off for the rest of the run
    assert "music summaries failed at step 1" in caplog.text and "decoder exploded" in caplog.text


# -- a training run's event files -----------------------------------------------------------------------

@pytest.mark.parametrize("model", MODELS)
def test_training_run_shows_the_music_lr_and_hparams(model, tiny_trained_run):
    run_dir = tiny_trained_run(model)  # 4 steps, one evaluation at step 4
    config = RunConfig.load(str(run_dir))
    val = accumulator(os.path.join(run_dir, "validation"))
    tags = val.Tags()["tensors"]
    (step, recon), = images(val, "reconstructions")
    assert step == 4
    assert recon.shape == (2 * ROLL_H + summaries.GUTTER // 2, 6 * MEASURE_W + 5 * summaries.GUTTER, 3)
    top, bottom = recon[:ROLL_H], recon[-ROLL_H:]
    assert (top == summaries.INPUT_COLOR).all(-1).any()  # the inputs have notes
    assert not (top == summaries.OUTPUT_COLOR).all(-1).any() and not (bottom == summaries.INPUT_COLOR).all(-1).any()
    for attribute in config.attributes:
        (step, trav), = images(val, f"traversal/{attribute}")
        assert step == 4 and trav.shape == (ROLL_H + summaries.GAUGE,
                                            MEASURE_W + 2 * summaries.GUTTER + 9 * MEASURE_W + 8 * 2, 3)
    assert {t for t in tags if t.startswith("traversal/")} == {f"traversal/{a}" for a in config.attributes}
    audio, = val.Tensors("audio/reconstructions")
    clips = tf.make_ndarray(audio.tensor_proto)  # [k, 2]: encoded WAV, label
    assert clips.shape == (2, 2) and all(c[0][:4] == b"RIFF" for c in clips)
    assert scalars(val, "summary_seconds")[0][1] > 0

    train = accumulator(os.path.join(run_dir, "train"))
    names = ["vae", "discriminator"] if model == "adversarial_vae" else ["vae"]
    assert {t for t in train.Tags()["tensors"] if t.startswith(("learning_rate/", "step_size/"))} == \
        {f"{k}/{n}" for k in ("learning_rate", "step_size") for n in names}
    for name in names:
        (step, lr), = scalars(train, f"learning_rate/{name}")
        assert step == 4 and lr == pytest.approx(config.learning_rate)
        (_, size), = scalars(train, f"step_size/{name}")
        assert size == pytest.approx(config.learning_rate * np.sqrt(1 - 0.999 ** 4) / (1 - 0.9 ** 4), rel=1e-4)

    session, experiment, finals = hparams_session(run_dir)
    assert session.group_name == os.path.basename(str(run_dir))
    hp = session.hparams
    assert hp["model"].string_value == model and hp["latent_dim"].number_value == 6
    assert hp["hidden_size"].number_value == 16 and hp["learning_rate"].number_value == pytest.approx(1e-4)
    assert hp["transpose"].bool_value is False and hp["attributes"].string_value == ",".join(config.attributes)
    assert set(hp) == set(config_values(config)) and "cache_dir" in hp  # every plain field that is set
    val_scalars = {t: scalars(val, t) for t in tags if not t.startswith(("traversal/", "reconstructions", "audio"))}
    assert finals["final/val_token_accuracy"] == (pytest.approx(val_scalars["token_accuracy"][-1][1]), 4)
    assert finals["final/val_loss"][0] == pytest.approx(val_scalars["loss"][-1][1])
    assert {m.name.tag for m in experiment.metric_infos} == set(finals)


@pytest.mark.slow
def test_images_at_each_evaluation_and_the_flag_turns_them_off(tmp_path, embedded_cache_dir):
    from musicvae_xai.training.loop import Trainer

    base = dict(dataset="embedded", cache_dir=str(embedded_cache_dir), run_dir=str(tmp_path / "run"),
                hidden_size=16, latent_dim=6, embedding_dim=4, num_layers=1, batch_size=32, train_steps=4,
                checkpoint_every=2, eval_every=2, log_every=2, transpose=False, xla=False, seed=3)
    Trainer(RunConfig(**base), progress=False).run()
    first, _, finals = hparams_session(tmp_path / "run")
    assert finals["final/val_loss"][1] == 4
    # Resumed for two more steps with images off: accepted (a bookkeeping flag), no images at step 6.
    Trainer(RunConfig(**{**base, "train_steps": 6, "eval_summaries": False}), progress=False).run()
    val = accumulator(str(tmp_path / "run" / "validation"))
    assert [s for s, _ in images(val, "reconstructions")] == [2, 4]
    assert [s for s, _ in images(val, "traversal/note_density")] == [2, 4]
    assert [s for s, _ in scalars(val, "token_accuracy")] == [2, 4, 6]
    session, _, finals = hparams_session(tmp_path / "run")  # the session was replaced, not added to
    assert finals["final/val_token_accuracy"] == (pytest.approx(scalars(val, "token_accuracy")[-1][1]), 6)
    assert session.hparams["eval_summaries"].bool_value is False and first.hparams["eval_summaries"].bool_value


def test_study_rewrite_replaces_the_trainers_session(tiny_trained_run, tmp_path):
    import shutil

    from musicvae_xai.study.hparams import write_hparams

    run_dir = tmp_path / "measure_vae-z006-embedded-a4-s1"
    shutil.copytree(tiny_trained_run("measure_vae"), run_dir)
    result = {"status": "ok", "name": run_dir.name, "metrics": {"token_accuracy": 0.5},
              "grid": {"model": "measure_vae", "dataset": "embedded", "latent_dim": 6, "seed": 1,
                       "attributes": ["rhythmic_complexity", "note_range"]},
              "flags": {"hidden_size": 16}, "training": {"steps": 4}}
    write_hparams(str(run_dir / HPARAMS_DIRNAME), result)
    session, experiment, finals = hparams_session(run_dir)
    assert session.group_name == run_dir.name and session.hparams["attributes"].string_value == "a2"
    assert finals == {"final/token_accuracy": (pytest.approx(0.5), 4)}


def test_the_images_flag_is_bookkeeping_for_resume_and_the_study():
    from musicvae_xai.config import RESUMABLE_FIELDS
    from musicvae_xai.study.worker import same_settings

    on, off = RunConfig().to_dict(), RunConfig(eval_summaries=False).to_dict()
    before = {k: v for k, v in on.items() if k != "eval_summaries"}  # a run from before the flag existed
    assert "eval_summaries" in RESUMABLE_FIELDS
    assert same_settings(on, off) and same_settings(before, on)  # a finished study configuration is not retrained
    older = {k: v for k, v in on.items() if k != "deterministic"}  # any field added later with its default
    assert same_settings(older, on) and not same_settings(older, dict(on, deterministic=True))
