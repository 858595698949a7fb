"""The verbs of the serving client CLI (``python -m musicvae_xai.serving.client``), on any client.

Each verb takes a ``ModelClient`` and ``Options`` and returns a JSON-able summary; music goes in as a
file of any registered reader format and out as MIDI (``music_io``), latents as JSON files
(``{"z_mean": [[...]], ...}``, what ``encode`` writes).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

import numpy as np

from musicvae_xai import music_io
from musicvae_xai.readers import registry as reader_registry
from musicvae_xai.representation import DEFAULT_MAX_PITCH, DEFAULT_MIN_PITCH, Vocabulary
from musicvae_xai.serving import signatures as sigs
from musicvae_xai.serving.base import ModelClient
from musicvae_xai.settings import setting

VERBS = ("encode", "decode", "reconstruct", "traverse", "sample", "metadata")
#: Flags each verb cannot do without.
REQUIRED = {"encode": ("midi",), "decode": ("z", "out"), "reconstruct": ("midi", "out"),
            "traverse": ("midi", "out"), "sample": ("out",), "metadata": ()}


class CommandError(ValueError):
    """Bad command-line input; one line."""


@dataclasses.dataclass
class Options:
    """What a verb works on, each option declared once (``musicvae_xai.settings``): the serve client's
    flags are generated from these fields. Lists given as strings (flags) are parsed here."""

    midi: Optional[str] = setting(None, f"Input music file: {reader_registry.describe()}.")
    out: Optional[str] = setting(None, "Output file (MIDI for music, JSON for encode/metadata).")
    z: Optional[str] = setting(None, "decode: JSON file with z_mean (or z) [B, Z], e.g. written by encode.")
    controls: Optional[str] = setting(None, "decode (a model whose decoder takes controls): JSON with controls or "
                                            "attributes [B, K]; default: the attributes in the --z file.")
    bar_numbers: tuple = setting((), "Bars of the input file to use, numbered as a score prints them (the first "
                                     "complete bar is 1, a pickup 0; default: every usable bar).")
    control: int = setting(0, "traverse: control index (a latent dim, or a decoder input).")
    values: tuple = setting((-2.0, -1.0, 0.0, 1.0, 2.0), "traverse: values to set the control to.")
    num: int = setting(1, "sample: number of measures.")
    seed: int = setting(0, "sample: seed of the latent codes drawn here.")
    min_pitch: int = setting(DEFAULT_MIN_PITCH, "Vocabulary of a server's model: lowest MIDI pitch.")
    max_pitch: int = setting(DEFAULT_MAX_PITCH, "Vocabulary of a server's model: highest MIDI pitch.")
    transpose: str = setting("auto", "Semitones to shift the input by, or auto (fit the model's range).")
    qpm: Optional[float] = setting(None, "Tempo of the MIDI written (default: the input file's tempo, else 120).")

    def __post_init__(self):
        try:
            self.bar_numbers = tuple(int(b) for b in self.bar_numbers)
            self.values = tuple(float(v) for v in self.values)
            if self.transpose != "auto":
                self.transpose = int(self.transpose)
        except ValueError as e:
            raise CommandError(f"bad option: {e}") from None


def vocabulary_for(client: ModelClient, options: Options) -> Vocabulary:
    """The export's own vocabulary for a local export, else the one of --min_pitch/--max_pitch, checked
    against the vocabulary size the server's decode signature declares."""
    assets = getattr(client, "assets", {})
    vocab = Vocabulary.from_dict(assets["vocabulary"]) if "vocabulary" in assets else Vocabulary(
        options.min_pitch, options.max_pitch)
    shape = client.signature_spec(sigs.DECODE)["outputs"]["probabilities"]["shape"]
    if shape and shape[-1] != -1 and shape[-1] != vocab.size:
        raise CommandError(f"the model's vocabulary has {shape[-1]} tokens, --min_pitch={vocab.min_pitch} "
                           f"--max_pitch={vocab.max_pitch} give {vocab.size}")
    return vocab


def latent_size(client: ModelClient) -> int:
    return int(client.signature_spec(sigs.SAMPLE)["inputs"]["z"]["shape"][-1])


def _read_json_array(path: str, keys: Sequence[str], what: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:
        raise CommandError(f"{path}: not JSON ({e})") from None
    if isinstance(data, dict):
        for k in keys:
            if k in data:
                return np.asarray(data[k], np.float32)
        raise CommandError(f"{path}: no {' or '.join(keys)} in it ({what})")
    return np.asarray(data, np.float32)


def _need(value, flag: str, verb: str):
    if value in (None, ""):
        raise CommandError(f"{verb} needs --{flag}")
    return value


def _write_json(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")


def source_summary(source: music_io.FileMeasures) -> dict:
    """What the summary of a verb says about its input file: its title (else the file name), the bar
    numbers used (as a score prints them) and, for played MIDI, the quantisation (onset errors in
    beats, notes the legato fill lengthened)."""
    out = {"input": source.name, "bar_numbers": [int(b) for b in source.bar_numbers]}
    if source.quantisation is not None:
        out["quantisation"] = source.quantisation.to_dict()
    return out


def run(client: ModelClient, verb: str, options: Options) -> dict:
    """Runs ``verb``; returns a summary (also written to ``--out`` for encode/metadata as JSON)."""
    if verb not in VERBS:
        raise CommandError(f"unknown verb {verb!r}; choose one of {', '.join(VERBS)}")
    for flag in REQUIRED[verb]:
        _need(getattr(options, flag), flag, verb)
    if verb == "metadata":
        meta = client.metadata()
        summary = {"model": meta["model"], "version": meta["version"], "signatures": {
            name: {part: {k: sigs.describe(v["dtype"], v["shape"], k) for k, v in spec[part].items()}
                   for part in ("inputs", "outputs")} for name, spec in meta["signatures"].items()}}
        if options.out:
            _write_json(options.out, summary)
        return summary
    vocab = vocabulary_for(client, options)
    if verb in ("encode", "reconstruct", "traverse"):
        source = music_io.read_file(_need(options.midi, "midi", verb), vocab,
                                    bar_numbers=options.bar_numbers or None, transpose=options.transpose)
        tokens, style = source.tokens, source.style
    if verb == "encode":
        out = client.encode(tokens)
        payload = {k: v.tolist() for k, v in out.items()}
        if options.out:
            _write_json(options.out, payload)
        return {"measures": len(tokens), **source_summary(source),
                **({"out": options.out} if options.out else payload)}
    if verb == "reconstruct":
        recon = client.reconstruct(tokens)["tokens"]
        path = music_io.write_measures(recon, vocab, _need(options.out, "out", verb), options.qpm, style,
                                      [f"bar {int(b)} reconstructed" for b in source.bar_numbers])
        return {"measures": len(tokens), **source_summary(source), "token_accuracy": float(np.mean(recon == tokens)),
                "out": path}
    if verb == "traverse":
        values = np.asarray(options.values, np.float32)
        out = client.traverse(tokens, int(options.control), values)
        markers = [f"bar {int(b)}: control {int(options.control)} = {music_io.format_value(v)}"
                   for b in source.bar_numbers for v in values]
        path = music_io.write_measures(out["tokens"], vocab, _need(options.out, "out", verb), options.qpm, style,
                                      markers)
        return {"measures": len(tokens), **source_summary(source), "control": int(options.control),
                "values": values.tolist(),
                "attributes": out["attributes"].tolist(), "out": path}
    if verb == "decode":
        z = _read_json_array(_need(options.z, "z", verb), ("z_mean", "z"), "the latent codes [B, Z]")
        z = z[None] if z.ndim == 1 else z
        controls = None
        if "controls" in client.signature_spec(sigs.DECODE)["inputs"]:
            source = options.controls or options.z
            controls = _read_json_array(source, ("controls", "attributes"), "the controls [B, K]")
            controls = controls[None] if controls.ndim == 1 else controls
        out = client.decode(z, controls)
        path = music_io.write_measures(out["tokens"], vocab, _need(options.out, "out", verb), options.qpm,
                                      markers=[f"code {i} decoded" for i in range(1, len(z) + 1)])
        return {"measures": int(len(z)), "out": path}
    # sample
    if options.num < 1:
        raise CommandError(f"--num must be at least 1, got {options.num}")
    z = np.random.default_rng(options.seed).standard_normal((options.num, latent_size(client))).astype(np.float32)
    out = client.sample(z)
    path = music_io.write_measures(out["tokens"], vocab, _need(options.out, "out", verb), options.qpm,
                                  markers=[f"sample {i} (seed {options.seed})" for i in range(1, options.num + 1)])
    return {"measures": options.num, "seed": options.seed, "out": path}
