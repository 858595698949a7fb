"""TensorBoard summaries that show the music: piano rolls, traversals, audio, optimiser step sizes.

Everything is drawn with numpy (no matplotlib in the training loop) and written with ``tf.summary``:

* ``piano_roll``: token ids [M, 24] -> uint8 RGB [H, W, 3], measures side by side; a row per MIDI
  pitch of the vocabulary (highest on top, C rows tinted), ``PX_PER_BEAT`` pixels per beat (the six
  tick positions of a beat fall on whole pixels), a note a filled bar from onset to release with a
  darker onset column, so repeated notes stay apart.
* ``reconstruction_image``: inputs (blue) above their greedy reconstructions (orange), one column per
  measure.
* ``traversal_image``: the source measure (blue), then the decoded sweep of one control (orange), with a
  gauge beneath each measure marking the control's value in its range.
* ``synthesize``: a measure as audio, one sine (with its octave and a short fade) per note.

``MusicSummaries`` writes them at each evaluation (``reconstructions``, ``traversal/<attribute>``,
``audio/reconstructions``); ``optimizer_scalars`` gives each optimiser's learning rate and Adam step
size.
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

from musicvae_xai._quiet import filtered_stderr
from musicvae_xai.representation import (BEATS_PER_MEASURE, MEASURE_TICKS, TICK_POSITIONS, Vocabulary,
                                         measures_to_sequence)

PX_PER_BEAT = 24          # tick positions 0, 1/4, 1/3, 1/2, 2/3, 3/4 of a beat -> 0, 6, 8, 12, 16, 18 px
PX_PER_PITCH = 4
GUTTER = 8
GAUGE = 6
INPUT_COLOR = (46, 96, 178)
OUTPUT_COLOR = (226, 120, 36)
BACKGROUND = (255, 255, 255)
C_ROW = (236, 240, 246)
BEAT_LINE = (221, 221, 221)
BAR_LINE = (136, 136, 136)
SAMPLE_RATE = 16000
AUDIO_QPM = 120.0

assert all(float(p * PX_PER_BEAT).is_integer() for p in TICK_POSITIONS)


def _notes(tokens: np.ndarray, vocab: Vocabulary) -> list:
    """(pitch, start beat, end beat) of one measure's token ids [24] (``measures_to_sequence`` rules)."""
    seq = measures_to_sequence(np.asarray(tokens).reshape(1, MEASURE_TICKS), vocab, qpm=60.0)  # 1 s = 1 beat
    return [(n.pitch, n.start_time, n.end_time) for n in seq.notes]


def piano_roll(measures: np.ndarray, vocab: Vocabulary, color: Sequence[int] = OUTPUT_COLOR,
               separator: int = 0) -> np.ndarray:
    """Token ids int [M, 24] -> uint8 [P * PX_PER_PITCH, M * 96 + (M - 1) * separator, 3], P the
    vocabulary's pitches; ``separator`` pixels of bar-line colour between measures."""
    measures = np.asarray(measures).reshape(-1, MEASURE_TICKS)
    width = BEATS_PER_MEASURE * PX_PER_BEAT
    height = vocab.num_pitches * PX_PER_PITCH
    total = len(measures) * width + max(len(measures) - 1, 0) * separator
    img = np.empty((height, total, 3), np.uint8)
    img[:] = BACKGROUND
    for p in range(vocab.min_pitch, vocab.max_pitch + 1):
        if p % 12 == 0:
            row = (vocab.max_pitch - p) * PX_PER_PITCH
            img[row:row + PX_PER_PITCH] = C_ROW
    color = np.asarray(color, np.uint8)
    onset = (color * 0.6).astype(np.uint8)
    for m, tokens in enumerate(measures):
        x0 = m * (width + separator)
        for beat in range(1, BEATS_PER_MEASURE):
            img[:, x0 + beat * PX_PER_BEAT] = BEAT_LINE
        if m and separator:
            img[:, x0 - separator:x0] = BAR_LINE
        for pitch, start, end in _notes(tokens, vocab):
            top = (vocab.max_pitch - pitch) * PX_PER_PITCH
            a, b = x0 + int(round(start * PX_PER_BEAT)), x0 + int(round(end * PX_PER_BEAT))
            img[top:top + PX_PER_PITCH - 1, a:max(b - 1, a + 1)] = color
            img[top:top + PX_PER_PITCH - 1, a] = onset
    return img


def _stack(rows: Sequence[np.ndarray], axis: int, gap: int) -> np.ndarray:
    """Concatenates uint8 images [H, W, 3] along ``axis`` (0: vertically, 1: side by side) with white gaps."""
    parts = []
    for k, r in enumerate(rows):
        if k:
            shape = list(r.shape)
            shape[axis] = gap
            parts.append(np.full(shape, 255, np.uint8))
        parts.append(r)
    return np.concatenate(parts, axis=axis)


def reconstruction_image(inputs: np.ndarray, outputs: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """Inputs int [N, 24] above their reconstructions int [N, 24], one column per measure ->
    uint8 [2 * P * PX_PER_PITCH + GUTTER / 2, N * 96 + (N - 1) * GUTTER, 3]."""
    columns = [_stack([piano_roll(i, vocab, INPUT_COLOR), piano_roll(o, vocab, OUTPUT_COLOR)], 0, GUTTER // 2)
               for i, o in zip(np.asarray(inputs), np.asarray(outputs), strict=True)]
    return _stack(columns, 1, GUTTER)


def traversal_image(source: np.ndarray, sweep: np.ndarray, values: np.ndarray, low: float, high: float,
                    vocab: Vocabulary) -> np.ndarray:
    """The source measure int [24] (blue), then the decoded sweep int [S, 24] (orange) of control values
    float [S] in [low, high], each measure over a gauge marking its value -> uint8 [H, W, 3]."""
    sweep = np.asarray(sweep).reshape(-1, MEASURE_TICKS)
    roll = piano_roll(sweep, vocab, OUTPUT_COLOR, separator=2)
    width = BEATS_PER_MEASURE * PX_PER_BEAT
    gauge = np.full((GAUGE, roll.shape[1], 3), 255, np.uint8)
    span = (high - low) or 1.0
    for s, v in enumerate(np.asarray(values, np.float64)):
        x0 = s * (width + 2)
        gauge[GAUGE // 2, x0:x0 + width] = BEAT_LINE
        x = x0 + int(round(np.clip((v - low) / span, 0.0, 1.0) * (width - 3)))
        gauge[:, x:x + 3] = OUTPUT_COLOR
    right = np.concatenate([roll, gauge], axis=0)
    left = piano_roll(source, vocab, INPUT_COLOR)
    left = np.concatenate([left, np.full((GAUGE, left.shape[1], 3), 255, np.uint8)], axis=0)
    return _stack([left, right], 1, 2 * GUTTER)


def synthesize(measures: np.ndarray, vocab: Vocabulary, sample_rate: int = SAMPLE_RATE,
               qpm: float = AUDIO_QPM) -> np.ndarray:
    """Token ids int [M, 24] -> float32 [M * 4 * 60 / qpm * sample_rate] in [-1, 1]: each note a sine
    plus its octave at a third of the amplitude, with 5 ms fade in and 30 ms fade out."""
    measures = np.asarray(measures).reshape(-1, MEASURE_TICKS)
    spb = 60.0 / qpm
    n = int(round(len(measures) * BEATS_PER_MEASURE * spb * sample_rate))
    out = np.zeros(n, np.float32)
    seq = measures_to_sequence(measures, vocab, qpm=qpm)
    for note in seq.notes:
        a, b = int(note.start_time * sample_rate), min(int(note.end_time * sample_rate), n)
        if b <= a:
            continue
        t = np.arange(b - a) / sample_rate
        f = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
        wave = np.sin(2 * np.pi * f * t) + np.sin(4 * np.pi * f * t) / 3.0
        env = np.minimum(1.0, np.minimum(t / 0.005, (t[-1] - t) / 0.03 + 1e-3))
        out[a:b] += (0.4 * wave * env).astype(np.float32)
    return np.clip(out, -1.0, 1.0)


def optimizer_scalars(optimizers: Mapping) -> dict:
    """{"learning_rate/<name>": float, "step_size/<name>": float} of each Keras optimiser: its current
    learning rate (a schedule evaluated at its own iteration count) and, for Adam-type optimisers
    (``beta_1``, ``beta_2``), the bias-corrected step size lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) of
    Kingma & Ba (2015), t its iterations so far (the learning rate before the first step)."""
    out = {}
    for name, opt in optimizers.items():
        lr = float(np.asarray(opt.learning_rate))
        out[f"learning_rate/{name}"] = lr
        t = int(np.asarray(opt.iterations))
        b1, b2 = getattr(opt, "beta_1", None), getattr(opt, "beta_2", None)
        if b1 is not None and b2 is not None and t > 0:
            out[f"step_size/{name}"] = lr * float(np.sqrt(1.0 - float(b2) ** t) / (1.0 - float(b1) ** t))
        else:
            out[f"step_size/{name}"] = lr
    return out


class MusicSummaries:
    """Images (and audio) of what the model makes, for a few fixed validation measures.

    ``tokens``: int [N, 24] validation measures (the first ``num_examples`` are used; the first is
    the source of every traversal); ``num_values`` control values per traversal, evenly over each
    control's [low, high]. Encoding uses the posterior mean, decoding is greedy; one ``tf.function``
    does all of it, traced at the first call.
    """

    def __init__(self, model, tokens: np.ndarray, vocab: Vocabulary, num_examples: int = 6, num_values: int = 9,
                 audio_examples: int = 2):
        self.model = model
        self.vocab = vocab
        self.tokens = np.asarray(tokens, np.int32)[:num_examples]
        self.controls = list(model.controls)
        self.values = [np.linspace(c.low, c.high, num_values).astype(np.float32) for c in self.controls]
        self.audio_examples = audio_examples
        self.failed = False
        self._make = tf.function(self._decode_all)

    def _decode_all(self, tokens):
        """tokens int32 [N, 24] -> (reconstructions int32 [N, 24], sweeps int32 [C * S, 24])."""
        m = self.model
        z = m.encode(tokens)["z_mean"]
        c = m.default_controls(tokens)
        zs, cs = [z], [c]
        for control, values in zip(self.controls, self.values, strict=True):
            zi, ci = m.apply_controls(z[:1], None if c is None else c[:1], control.index, values)
            zs.append(zi)
            cs.append(ci)
        out = m.decode(tf.concat(zs, 0), None if c is None else tf.concat(cs, 0))["tokens"]
        n = tf.shape(tokens)[0]
        return out[:n], out[n:]

    def write(self, step: int) -> float:
        """Writes the summaries at ``step`` into the default summary writer; returns the seconds taken.

        A failure is logged as a warning and turns the summaries off for the rest of the run: pictures
        must never stop a training run."""
        t0 = time.perf_counter()
        if self.failed or not len(self.tokens):
            return 0.0
        try:
            with filtered_stderr():  # oneDNN's one-off DT_STRING notice at the first PNG/WAV encode
                self._write(step)
        except Exception as e:  # noqa: BLE001 - any failure of a picture is reported, never fatal
            self.failed = True
            logging.warning("music summaries failed at step %d and are off for the rest of this run: %s: %s",
                            step, type(e).__name__, e)
        return time.perf_counter() - t0

    def _write(self, step: int) -> None:
        recon, sweeps = (x.numpy() for x in self._make(tf.constant(self.tokens)))
        tf.summary.image("reconstructions", reconstruction_image(self.tokens, recon, self.vocab)[None], step=step,
                         description="Validation measures (blue, top) and their greedy reconstructions from the "
                                     "posterior mean (orange, below).")
        sweeps = sweeps.reshape(len(self.controls), -1, MEASURE_TICKS) if self.controls else []  # none to sweep
        for control, values, sweep in zip(self.controls, self.values, sweeps, strict=True):
            img = traversal_image(self.tokens[0], sweep, values, control.low, control.high, self.vocab)
            tf.summary.image(f"traversal/{control.attribute}", img[None], step=step,
                             description=f"Control {control.name} ({control.kind}, meant to move "
                                         f"{control.attribute}) swept over {control.low:g}..{control.high:g} "
                                         f"in {len(values)} steps from the blue measure's code; the gauge "
                                         f"beneath each decoded measure marks its value.")
        if self.audio_examples:
            gap = np.zeros(SAMPLE_RATE // 4, np.float32)
            clips = [np.concatenate([synthesize(i, self.vocab), gap, synthesize(o, self.vocab)])
                     for i, o in zip(self.tokens[:self.audio_examples], recon[:self.audio_examples], strict=True)]
            tf.summary.audio("audio/reconstructions", np.stack(clips)[:, :, None], SAMPLE_RATE, step=step,
                             max_outputs=len(clips),
                             description="Each clip: a validation measure, a pause, then its reconstruction "
                                         f"({AUDIO_QPM:g} qpm, sine tones).")
