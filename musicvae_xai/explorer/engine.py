"""The explorer's logic, without the web: encode a seed, decode a latent state, measure it, draw pad
backgrounds, write MIDI. Everything goes through one serving client (``LocalModel``, ``RestClient``
or ``GrpcClient``), so the same page works in-process and against TensorFlow Serving.

The state the page holds is (z float32 [Z], controls float32 [K] or None): z is the latent code;
controls are the decoder's attribute inputs of a model that has them. A control is a coordinate of
that state: a regularised latent dim (``z[index]``) or an attribute input (``controls[index]``).
The server keeps no per-user state; every request carries the state it needs.

"Requested" attribute values: for an attribute input the value asked for is the input itself; for a
regularised latent dim it is the value a linear fit of the attribute on that dim predicts, fitted on
encoded training measures (the interpretability fit of docs/METHOD.md section 6), with its R^2 so the page can say how
much to trust it.

"Stay in key": ``encode`` names the key of the seed (of the piece it comes from when the page sends
the piece's measures as ``context``; ``keys.estimate_key``), and ``decode`` and ``surface`` given a
key keep every decoded pitch in its scale (``keys.keep_in_key`` on the probabilities the serving
client's ``decode`` returns), so it works over TF-Serving too.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Callable, Optional

import numpy as np
from absl import logging

from musicvae_xai import attributes as attrs
from musicvae_xai import keys
from musicvae_xai.controls import ATTRIBUTE_INPUT
from musicvae_xai.explorer.data import MAX_UPLOAD_MEASURES, MusicData
from musicvae_xai.explorer.model_info import ModelInfo
from musicvae_xai.representation import MEASURE_TICKS, measures_to_sequence
from musicvae_xai.music_io import write_midi

#: Rows per encode request while calibrating.
ENCODE_BATCH = 256
#: Limits on what a request may ask for.
MAX_GRID, MAX_BINS, MAX_MEASURES = 41, 64, 64
#: Most measures of the piece a seed's key is estimated from (the most the page holds of a piece: an upload's).
MAX_CONTEXT_MEASURES = MAX_UPLOAD_MEASURES
QPM_RANGE = (20.0, 300.0)


class ExplorerError(ValueError):
    """A bad request from the page (HTTP 400); one line saying what was expected."""


class Explorer:
    """client: a serving client; info: its ``ModelInfo``; data_loader: () -> ``MusicData`` (seeds and
    a training sample), run once in the background by ``start_loading`` (None: no seeds, no data
    backgrounds, no calibration)."""

    def __init__(self, client, info: ModelInfo, data_loader: Optional[Callable[[], MusicData]] = None,
                 surface_cache: int = 32):
        self.client, self.info = client, info
        self.vocab = info.vocabulary
        self._loader = data_loader
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._state = "loading" if data_loader else "none"
        self._error = ""
        self._data: Optional[MusicData] = None
        self._coords: Optional[np.ndarray] = None  # float32 [N, C] control coordinates of the sample
        self._data_attrs: Optional[np.ndarray] = None  # float32 [N, K]
        self._fits: dict = {}  # control position -> (slope, intercept, r2, lowest, highest attribute)
        self._surfaces: collections.OrderedDict = collections.OrderedDict()
        self._surface_cache = surface_cache

    # -- background data -------------------------------------------------------------------------
    def start_loading(self, background: bool = True) -> None:
        """Loads the seeds and calibrates on the training sample (in a daemon thread by default)."""
        if self._loader is None or self._thread is not None:
            return
        if background:
            self._thread = threading.Thread(target=self._load, name="explorer-data", daemon=True)
            self._thread.start()
        else:
            self._thread = threading.current_thread()
            self._load()

    def _load(self) -> None:
        try:
            data = self._loader()
            with self._lock:
                self._data = data
            self.calibrate(data.train)
            with self._lock:
                self._state = "ready"
        except Exception as e:  # noqa: BLE001 - reported on the page; the explorer keeps working
            logging.exception("explorer: loading data failed")
            with self._lock:
                self._state, self._error = "error", f"{type(e).__name__}: {e}".splitlines()[0]

    def calibrate(self, tokens: np.ndarray) -> None:
        """Encodes training measures int32 [N, 24]: their control coordinates feed the data backgrounds,
        their attributes the latent-dim fits; controls inferred without assets get data ranges."""
        tokens = np.asarray(tokens, np.int32).reshape(-1, MEASURE_TICKS)
        if not len(tokens):
            return
        z, controls = [], []
        for i in range(0, len(tokens), ENCODE_BATCH):
            out = self.client.encode(tokens[i:i + ENCODE_BATCH])
            z.append(out["z_mean"])
            controls.append(out["attributes"])
        z, measured = np.concatenate(z), np.concatenate(controls)
        coords = self.coordinates(z, measured)
        fits = {}
        for pos, c in enumerate(self.info.controls):
            if self.info.source == "signatures" and c.kind == ATTRIBUTE_INPUT:
                lo, hi = float(measured[:, c.index].min()), float(measured[:, c.index].max())
                c = dataclasses.replace(c, low=lo, high=hi if hi > lo else lo + 1.0)
                self.info.controls[pos] = c
            if c.in_latent and c.attribute in self.info.attribute_names:
                x, y = coords[:, pos].astype(np.float64), measured[:, self.info.attribute_names.index(c.attribute)]
                if np.ptp(x) > 0 and len(x) > 2:
                    slope, intercept = np.polyfit(x, y, 1)
                    residual = y - (slope * x + intercept)
                    r2 = 1.0 - residual.var() / y.var() if y.var() > 0 else 0.0
                    fits[pos] = (float(slope), float(intercept), float(r2), float(y.min()), float(y.max()))
        with self._lock:
            self._coords, self._data_attrs, self._fits = coords, measured, fits

    def status(self) -> dict:
        with self._lock:
            return {"state": self._state, "error": self._error,
                    "seeds": self._data.name if self._data else None,
                    "train_measures": 0 if self._coords is None else int(len(self._coords))}

    def seeds(self) -> dict:
        with self._lock:
            data = self._data
        out = {"status": self.status()}
        out.update(data.seed_json() if data else {"name": None, "pieces": []})
        return out

    # -- checks ----------------------------------------------------------------------------------
    def check_tokens(self, value, max_measures: int = MAX_MEASURES, what: str = "tokens") -> np.ndarray:
        """int32 [M, 24] from a list of 24 ids or a list of such lists; ExplorerError (naming ``what``)
        otherwise."""
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):
            raise ExplorerError(f"{what} must be a list of 24 token ids (or a list of such lists)") from None
        if arr.ndim == 1:
            arr = arr[None]
        if arr.ndim != 2 or arr.shape[1] != MEASURE_TICKS or not 1 <= len(arr) <= max_measures:
            raise ExplorerError(f"{what} must be 1..{max_measures} measures of {MEASURE_TICKS} token ids, "
                                f"got shape {list(arr.shape)}")
        if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
            raise ExplorerError(f"{what}: token ids must be integers")
        if arr.min() < 0 or arr.max() >= self.vocab.size:
            raise ExplorerError(f"{what}: token ids must be in [0, {self.vocab.size}) (the model's vocabulary)")
        return arr.astype(np.int32)

    def _floats(self, value, size: int, what: str) -> np.ndarray:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ExplorerError(f"{what} must be a list of {size} numbers") from None
        if arr.shape != (size,) or not np.all(np.isfinite(arr)):
            raise ExplorerError(f"{what} must be a list of {size} finite numbers, got shape {list(arr.shape)}")
        return arr.astype(np.float32)

    def check_state(self, z, controls) -> tuple:
        """(z float32 [Z], controls float32 [K] or None) from the page's JSON."""
        z = self._floats(z, self.info.latent_dim, "z")
        if not self.info.needs_controls:
            return z, None
        if controls is None:
            raise ExplorerError(f"this model decodes with controls: send {self.info.num_attributes} values")
        return z, self._floats(controls, self.info.num_attributes, "controls")

    def check_key(self, value) -> Optional[keys.Key]:
        """The key a request asks decoding to stay in (``"D major"``), or None (absent, null or "")."""
        if value is None or value == "":
            return None
        try:
            return keys.parse_key(value)
        except ValueError as e:
            raise ExplorerError(str(e)) from None

    def key_name(self, tokens: np.ndarray) -> Optional[str]:
        """The name of the key of measures int32 [M, 24] (``keys.estimate_key``), None with no note."""
        try:
            return keys.estimate_key(tokens, self.vocab).name
        except ValueError:
            return None

    def _decode_tokens(self, out: dict, key: Optional[keys.Key]) -> np.ndarray:
        """int32 [B, 24]: a client ``decode`` answer's tokens, or with ``key`` the most probable
        in-key token at each tick."""
        if key is None:
            return np.asarray(out["tokens"], np.int32)
        return keys.keep_in_key(out["probabilities"], keys.allowed_tokens(key, self.vocab))

    def check_control(self, value, what: str) -> int:
        count = len(self.info.controls)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < count:
            raise ExplorerError(f"{what} must be a control index in [0, {len(self.info.controls)})")
        return int(value)

    # -- state <-> controls ----------------------------------------------------------------------
    def coordinates(self, z: np.ndarray, controls: Optional[np.ndarray]) -> np.ndarray:
        """float32 [N, C]: where each state (z [N, Z], controls [N, K]) sits on every control."""
        z = np.asarray(z, np.float32).reshape(-1, self.info.latent_dim)
        inputs = None if controls is None else np.asarray(controls, np.float32).reshape(len(z), -1)
        cols = [z[:, c.index] if c.in_latent else inputs[:, c.index] for c in self.info.controls]
        return np.stack(cols, axis=1) if cols else np.zeros((len(z), 0), np.float32)

    def _set(self, z: np.ndarray, controls: Optional[np.ndarray], pos: int, values: np.ndarray) -> None:
        """Writes ``values`` [N] into control ``pos`` of the states z [N, Z] / controls [N, K] in place."""
        c = self.info.controls[pos]
        (z if c.in_latent else controls)[:, c.index] = values

    # -- verbs -----------------------------------------------------------------------------------
    def measure(self, tokens: np.ndarray) -> dict:
        """{"tokens" [M][24], "notes" [M][{pitch, start, end} in beats], "attributes" [M][K]} of
        token ids int32 [M, 24]."""
        tokens = np.asarray(tokens, np.int32).reshape(-1, MEASURE_TICKS)
        names = self.info.attribute_names
        values = attrs.compute(tokens, self.vocab, names) if names else np.zeros((len(tokens), 0), np.float32)
        notes = []
        for row in tokens:
            seq = measures_to_sequence(row, self.vocab, qpm=60.0)
            notes.append([{"pitch": int(n.pitch), "start": round(n.start_time, 4), "end": round(n.end_time, 4)}
                          for n in seq.notes])
        return {"tokens": tokens.tolist(), "notes": notes, "attributes": _round(values)}

    def requested(self, z: np.ndarray, controls: Optional[np.ndarray]) -> list:
        """[K] per attribute: {"value", "source"} asked for by the state, or None where no control
        targets that attribute (or no fit is available yet)."""
        coords = self.coordinates(z[None], None if controls is None else controls[None])[0]
        with self._lock:
            fits = dict(self._fits)
        out = []
        for name in self.info.attribute_names:
            pos = next((i for i, c in enumerate(self.info.controls) if c.attribute == name), None)
            if pos is None:
                out.append(None)
            elif self.info.controls[pos].kind == ATTRIBUTE_INPUT:
                out.append({"value": round(float(coords[pos]), 4), "source": "decoder input"})
            elif pos in fits:
                slope, intercept, r2, lowest, highest = fits[pos]  # clipped to the data's range
                value = min(max(slope * float(coords[pos]) + intercept, lowest), highest)
                out.append({"value": round(value, 4),
                            "source": f"linear fit on {self.info.controls[pos].name}", "r2": round(r2, 3)})
            else:
                out.append(None)
        return out

    def decode(self, z: np.ndarray, controls: Optional[np.ndarray], key: Optional[keys.Key] = None) -> dict:
        """Decodes one state: measure() of the output plus "requested", "confidence" [24] (the
        model's probability of each chosen token) and "key" (the key its pitches were kept to, or None)."""
        out = self.client.decode(z[None], None if controls is None else controls[None])
        tokens = self._decode_tokens(out, key)
        result = self.measure(tokens)
        result = {k: v[0] for k, v in result.items()}
        probs = np.asarray(out["probabilities"])[0]
        result["confidence"] = _round(np.take_along_axis(probs, tokens[0][:, None], axis=1)[:, 0], 3)
        result["requested"] = self.requested(z, controls)
        result["key"] = None if key is None else key.name
        return result

    def encode(self, tokens: np.ndarray, context: Optional[np.ndarray] = None, stay_in_key: bool = False) -> dict:
        """A seed measure int32 [1, 24] -> its state ("z", "controls", "values" per control), the
        input measured, "key": the name of the key of ``context`` (the measures int32 [M, 24] of the
        piece the seed comes from; default the seed alone; None when they hold no note), and its
        decoding (its pitches kept in that key with ``stay_in_key``)."""
        out = self.client.encode(tokens)
        z = np.asarray(out["z_mean"], np.float32)[0]
        controls = np.asarray(out["attributes"], np.float32)[0] if self.info.needs_controls else None
        name = self.key_name(tokens if context is None else context)
        key = keys.parse_key(name) if stay_in_key and name else None
        return {"z": _round(z, 5), "controls": None if controls is None else _round(controls, 5),
                "values": _round(self.coordinates(z[None], None if controls is None else controls[None])[0], 5),
                "input": {k: v[0] for k, v in self.measure(tokens).items()}, "key": name,
                "output": self.decode(z, controls, key)}

    def surface(self, z: np.ndarray, controls: Optional[np.ndarray], x: int, y: int, grid: int,
                music_key: Optional[keys.Key] = None) -> dict:
        """Attribute surface map: decodes a grid x grid sweep of controls x and y around the state
        (pitches kept in ``music_key`` when given) and measures every attribute:
        {"x_values" [G], "y_values" [G], "attributes" [G(y)][G(x)][K]}."""
        if not 2 <= grid <= MAX_GRID:
            raise ExplorerError(f"grid must be in [2, {MAX_GRID}]")
        key = (z.tobytes(), None if controls is None else controls.tobytes(), x, y, grid, music_key)
        with self._lock:
            if key in self._surfaces:
                self._surfaces.move_to_end(key)
                return self._surfaces[key]
        cx, cy = self.info.controls[x], self.info.controls[y]
        xs = np.linspace(cx.low, cx.high, grid, dtype=np.float32)
        ys = np.linspace(cy.low, cy.high, grid, dtype=np.float32)
        gx, gy = np.meshgrid(xs, ys)  # [G(y), G(x)]
        zs = np.repeat(z[None], grid * grid, axis=0)
        cs = None if controls is None else np.repeat(controls[None], grid * grid, axis=0)
        self._set(zs, cs, x, gx.reshape(-1))
        self._set(zs, cs, y, gy.reshape(-1))
        tokens = self._decode_tokens(self.client.decode(zs, cs), music_key)
        values = attrs.compute(tokens, self.vocab, self.info.attribute_names)
        result = {"x_values": _round(xs, 6), "y_values": _round(ys, 6),
                  "attributes": _round(values.reshape(grid, grid, -1))}
        with self._lock:
            self._surfaces[key] = result
            while len(self._surfaces) > self._surface_cache:
                self._surfaces.popitem(last=False)
        return result

    def distribution(self, x: int, y: int, bins: int) -> dict:
        """Training-data distribution in the plane of controls x and y: {"counts" [B(y)][B(x)],
        "mean_attributes" [B(y)][B(x)][K] (None in empty bins), "total", "outside"}."""
        if not 2 <= bins <= MAX_BINS:
            raise ExplorerError(f"bins must be in [2, {MAX_BINS}]")
        with self._lock:
            coords, measured = self._coords, self._data_attrs
        if coords is None or not len(coords):
            raise ExplorerError("no training data is loaded (yet); see the data status")
        cx, cy = self.info.controls[x], self.info.controls[y]
        ix = np.floor((coords[:, x] - cx.low) / (cx.high - cx.low) * bins).astype(int)
        iy = np.floor((coords[:, y] - cy.low) / (cy.high - cy.low) * bins).astype(int)
        inside = (ix >= 0) & (ix < bins) & (iy >= 0) & (iy < bins)
        flat = iy[inside] * bins + ix[inside]
        counts = np.bincount(flat, minlength=bins * bins)
        k = measured.shape[1]
        sums = np.stack([np.bincount(flat, weights=measured[inside, j], minlength=bins * bins) for j in range(k)], -1) \
            if k else np.zeros((bins * bins, 0))
        means = _round(sums / np.maximum(counts, 1)[:, None])
        cells = [means[i] if counts[i] else None for i in range(bins * bins)]
        return {"counts": counts.reshape(bins, bins).tolist(), "total": int(len(coords)),
                "outside": int((~inside).sum()),
                "mean_attributes": [cells[r * bins:(r + 1) * bins] for r in range(bins)]}

    def histograms(self, bins: int = 40) -> dict:
        """Per control, counts [bins] of the training sample over the control's range (slider tracks)."""
        with self._lock:
            coords = self._coords
        if coords is None or not len(coords):
            return {"histograms": None}
        out = []
        for pos, c in enumerate(self.info.controls):
            counts, _ = np.histogram(coords[:, pos], bins=bins, range=(c.low, c.high))
            out.append(counts.tolist())
        return {"histograms": out, "controls": [c.page_dict() for c in self.info.controls]}

    def midi(self, tokens: np.ndarray, qpm: Optional[float] = 120.0, style=None, markers=None) -> bytes:
        """Standard MIDI file bytes of measures int32 [M, 24] back to back (``music_io.write_midi``):
        at ``qpm`` (None: the style's tempo), in ``style`` (an uploaded file's ``SourceStyle``), with
        one marker text per measure."""
        if qpm is not None and not QPM_RANGE[0] <= qpm <= QPM_RANGE[1]:
            raise ExplorerError(f"qpm must be in [{QPM_RANGE[0]:g}, {QPM_RANGE[1]:g}]")
        if markers is None:
            markers = [f"measure {i + 1}" for i in range(len(np.asarray(tokens).reshape(-1, MEASURE_TICKS)))]
        return write_midi(tokens, None, self.vocab, style=style, markers=markers, qpm=qpm)


def _round(values, digits: int = 4):
    """Nested lists of rounded floats (NaN -> None) for JSON."""
    arr = np.round(np.asarray(values, np.float64), digits)
    if np.isnan(arr).any():
        obj = arr.astype(object)
        obj[np.isnan(arr)] = None
        return obj.tolist()
    return arr.tolist()
