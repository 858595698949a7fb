"""Music for the explorer: seed measures from a dataset's test split, a training-data sample for the
pad backgrounds, and uploaded MIDI/MusicXML/ABC files cut into measures.

Token arrays are int32 [N, 24] ids of the model's vocabulary. The page never names a server-side
path: seeds are addressed by index, uploads arrive as bytes and are parsed in a private temporary
folder that is deleted straight away.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Optional

import numpy as np
from absl import logging

from musicvae_xai import datasets, music_io
from musicvae_xai.datasets.config import DEFAULT_CACHE_DIR, DatasetConfig, dataset_config
from musicvae_xai.readers import registry as reader_registry
from musicvae_xai.representation import Vocabulary

#: Upload file types: extension -> what the page calls them (the upload-safe formats of
#: ``readers.registry``; the page's file chooser gets them from ``/api/model``).
UPLOAD_TYPES = {ext: reader_registry.get(name).label
                for ext, name in reader_registry.extension_map(upload_only=True).items()}
#: At most this many measures of an uploaded file are offered.
MAX_UPLOAD_MEASURES = 512


class UploadError(ValueError):
    """An uploaded file that cannot be used; the message is one line for the page."""


@dataclasses.dataclass
class MusicData:
    """name: where the seeds come from (e.g. "embedded, test split"); pieces: [{"id", "title" (from the
    file's metadata, '' if none), "tokens" int32 [M, 24]}] seed measures grouped by piece; train: int32
    [N, 24] a sample of the training split (pad backgrounds and the attribute calibration)."""

    name: str
    pieces: list
    train: np.ndarray

    def seed_json(self) -> dict:
        return {"name": self.name,
                "pieces": [{"id": p["id"], "title": p.get("title") or piece_title(p["id"]),
                            "tokens": p["tokens"].tolist()}
                           for p in self.pieces]}


def piece_title(piece_id: str) -> str:
    """What to call a piece without a title of its own: its file name,
    'oneills1850_common_time_1 #0 X3' for 'embedded/oneills1850_common_time_1.abc#0:X3'."""
    base = piece_id.rsplit("/", 1)[-1]
    name, _, rest = base.partition("#")
    name = os.path.splitext(name)[0]
    return f"{name} #{rest.replace(':', ' ')}" if rest else name


def _wanted_dataset(config: Optional[dict], vocab: Vocabulary, data_root: Optional[str] = None) -> DatasetConfig:
    """The DatasetConfig the model was trained on (from its saved configuration), or the embedded
    dataset in the model's pitch range when the configuration is unknown."""
    if not config:
        return DatasetConfig(name="embedded", min_pitch=vocab.min_pitch, max_pitch=vocab.max_pitch,
                             transpose=False)
    return dataset_config({"min_pitch": vocab.min_pitch, "max_pitch": vocab.max_pitch, **config}, data_root)


def load_music_data(config: Optional[dict], vocab: Vocabulary, cache_dir: Optional[str] = None,
                    data_root: Optional[str] = None, train_limit: int = 2000, max_pieces: int = 60,
                    max_measures_per_piece: int = 64, seed: int = 0, model_dataset: bool = True) -> MusicData:
    """Builds (or reuses the cache of) the model's dataset, falling back to the embedded dataset when
    that one cannot be built here (no data_root on this machine), and returns its seeds and sample.
    model_dataset=False: the embedded dataset (in the model's pitch range) straight away."""
    if cache_dir is None:
        saved = (config or {}).get("cache_dir")
        cache_dir = saved if saved and os.path.isdir(saved) else DEFAULT_CACHE_DIR
    wanted = _wanted_dataset(config if model_dataset else None, vocab, data_root)
    try:
        built = datasets.build(wanted, cache_dir, progress=False)
    except (FileNotFoundError, ValueError, OSError) as e:
        if wanted.name == "embedded":
            raise
        logging.warning("explorer: dataset %s is not available here (%s); seeds come from the embedded dataset",
                        wanted.name, e)
        wanted = _wanted_dataset(None, vocab)
        built = datasets.build(wanted, cache_dir, progress=False)
    if built.vocabulary != vocab:
        raise ValueError(f"dataset vocabulary {built.vocabulary} differs from the model's {vocab}")
    split = next((s for s in ("test", "validation", "train") if len(built.tokens(s))), None)
    if split is None:
        raise ValueError(f"dataset {wanted.name} has no measures")
    tokens, piece_of, shifts = built.tokens(split), built.piece_index(split), built.shifts(split)
    records = built.pieces()
    pieces = []
    for p in dict.fromkeys(piece_of.tolist()):  # first-seen order
        rows = tokens[(piece_of == p) & (shifts == 0)][:max_measures_per_piece]  # as written
        if not len(rows):
            continue
        pieces.append({"id": str(records[p]["id"]), "title": str(records[p].get("title") or ""),
                       "tokens": np.asarray(rows, np.int32)})
        if len(pieces) >= max_pieces:
            break
    train = np.asarray(built.tokens("train"), np.int32)
    if train_limit > 0 and len(train) > train_limit:
        train = train[np.sort(np.random.default_rng(seed).choice(len(train), train_limit, replace=False))]
    elif train_limit <= 0:
        train = train[:0]
    return MusicData(name=f"{wanted.name}, {split} split", pieces=pieces, train=train)


def read_upload(filename: str, data: bytes, vocab: Vocabulary, allow_cut_time: bool = False,
                legato: bool = True) -> dict:
    """An uploaded MIDI/MusicXML/ABC file -> {"name" (file name), "title" (from the file's metadata,
    else its name), "bar_numbers" [M] (as a score numbers the bars: the first complete bar is 1, a
    pickup 0), "tokens" int32 [M, 24] (model ids), "shift" semitones (or "per measure"), "skipped"
    {reason: bars}, "style" (tempo, time signature, program, track name: send it back to
    ``/api/midi`` to keep them), "quantisation" (mean/max onset error in beats of played MIDI and the
    notes the legato fill lengthened, ``readers.common.Quantisation.to_dict``; None for notation)},
    through ``music_io.read_file`` with ``legato`` (at most
    ``MAX_UPLOAD_MEASURES``, each measure transposed on its own when they do not fit together).
    Raises UploadError.

    The readers' per-file limits (``readers.limits``: beats, decompressed bytes) apply, so a hostile
    file (notes 2**27 beats apart, a zip bomb) is refused in milliseconds, before any per-beat work.
    """
    name = os.path.basename(str(filename or "").replace("\\", "/"))[:120] or "upload"
    ext = os.path.splitext(name)[1].lower()
    if ext not in UPLOAD_TYPES:
        raise UploadError(f"{name}: unsupported file type {ext or '(none)'}; upload "
                          f"{reader_registry.describe(upload_only=True)}")
    if not data:
        raise UploadError(f"{name}: the file is empty")
    with tempfile.TemporaryDirectory(prefix="explorer-upload-") as tmp:
        path = os.path.join(tmp, f"upload{ext}")
        with open(path, "wb") as f:
            f.write(data)
        try:
            measures = music_io.read_file(path, vocab, allow_cut_time=allow_cut_time, legato=legato,
                                          max_measures=MAX_UPLOAD_MEASURES, per_measure=True)
        except music_io.MusicFileError as e:
            raise UploadError(str(e).replace(path, name)) from None
        except Exception as e:  # noqa: BLE001 - a parser's unexpected failure on a bad file
            raise UploadError(f"{name}: not a readable {UPLOAD_TYPES[ext]} file ({type(e).__name__})") from None
    return {"name": name, "title": measures.title or name,
            "bar_numbers": [int(b) for b in measures.bar_numbers], "tokens": measures.tokens,
            "shift": measures.shift, "skipped": measures.skipped, "style": measures.style.to_dict(),
            "quantisation": measures.quantisation.to_dict() if measures.quantisation is not None else None}
