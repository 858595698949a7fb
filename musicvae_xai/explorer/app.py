"""The explorer's web app (Flask): the static page plus a small JSON API over an ``Explorer``.

API (JSON in and out unless said; errors are ``{"error": message}`` with an HTTP status: 400 bad
request, 413 upload too large, 502 the model server refused, 503 the model server is unreachable or
too slow):

* ``GET  /api/model``          model name, vocabulary, attributes, controls, default pad pairs
* ``GET  /api/status``         background data loading: state (loading|ready|error|none), error
* ``GET  /api/seeds``          seed measures grouped by piece
* ``GET  /api/histograms``     per-control histograms of the encoded training sample
* ``POST /api/encode``         {tokens [24], context [M][24] (optional: the seed's piece), stay_in_key
  (optional bool)} -> state {z, controls, values}, input and output measured, the key of the piece
  (or of the seed) that the output was kept to with ``stay_in_key``
* ``POST /api/decode``         {z [Z], controls [K] | null, key ("D major" | null)} -> output tokens,
  notes, attributes, requested attributes, token confidence, the key kept to; with a key, every
  decoded pitch is in its scale ("stay in key")
* ``POST /api/surface``        {z, controls, x, y, grid, key} -> attribute surface over controls x, y
* ``GET  /api/distribution``   ?x=&y=&bins= -> training-data histogram over controls x, y
* ``POST /api/upload``         multipart ``file`` (MIDI/MusicXML/ABC, size-limited), optional field
  ``legato`` (1 default, 0: played MIDI read as played) -> its title, bar numbers, measures, style and
  quantisation (``explorer.data.read_upload``)
* ``POST /api/midi``           {tokens [M][24], qpm} -> ``audio/midi`` attachment

No request names a server-side path: seeds are indexed, files arrive as bytes.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from flask import Flask, Response, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from musicvae_xai.explorer.data import UPLOAD_TYPES, UploadError, read_upload
from musicvae_xai.explorer.engine import MAX_CONTEXT_MEASURES, Explorer, ExplorerError
from musicvae_xai.readers.common import SourceStyle
from musicvae_xai.serving.base import ServingError, ServingUnavailableError

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024 * 1024
_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


#: Most digits of an integer in a request body (a latent value or a tempo needs a handful).
MAX_INT_DIGITS = 30


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ExplorerError(f"the request body holds an integer of {len(text.lstrip('-'))} digits; numbers "
                            f"may have at most {MAX_INT_DIGITS}")
    return int(text)


def parse_json(data: bytes):
    """The JSON value of a request body, or None when it is not JSON. Raises ExplorerError (one line)
    for a body nested too deeply (Python's parser recurses) or an integer of more than
    ``MAX_INT_DIGITS`` digits (it would not fit a float). Floats beyond the float range (``1e999``)
    become inf, which every check refuses as not finite."""
    try:
        return json.loads(data, parse_int=_bounded_int)
    except RecursionError:
        raise ExplorerError("the request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        if isinstance(e, ExplorerError):
            raise
        return None


def create_app(explorer: Explorer, backend: str = "", max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               allow_cut_time: Optional[bool] = None) -> Flask:
    """The Flask app serving ``explorer``. backend: how the page names where the model runs
    (e.g. "in-process SavedModel", "TF-Serving REST http://host:8501"); max_upload_bytes: the largest
    request body accepted (uploads included)."""
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_bytes)
    app.json.sort_keys = False
    if allow_cut_time is None:
        allow_cut_time = bool((explorer.info.config or {}).get("allow_cut_time", False))

    def body() -> dict:
        payload = parse_json(request.get_data(cache=True)) if request.is_json else None
        if not isinstance(payload, dict):
            raise ExplorerError("the request body must be a JSON object")
        return payload

    def state(payload: dict) -> tuple:
        return explorer.check_state(payload.get("z"), payload.get("controls"))

    @app.errorhandler(ExplorerError)
    @app.errorhandler(UploadError)
    def bad_request(e):
        return jsonify(error=str(e)), 400

    @app.errorhandler(ServingUnavailableError)
    def unavailable(e):
        return jsonify(error=f"the model server is unreachable or too slow: {e}", kind="unavailable"), 503

    @app.errorhandler(ServingError)
    def refused(e):
        return jsonify(error=f"the model server refused the request: {e}", kind="serving"), 502

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(e):
        return jsonify(error=f"the upload is too large (limit {max_upload_bytes // 1024} KiB)"), 413

    @app.errorhandler(HTTPException)
    def http_error(e):
        if request.path.startswith("/api/"):
            return jsonify(error=f"{e.code} {e.name}"), e.code
        return e

    @app.errorhandler(Exception)
    def internal(e):
        app.logger.exception("explorer: unexpected error")
        return jsonify(error=f"internal error ({type(e).__name__})"), 500

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/")
    def index():
        return send_from_directory(STATIC_DIR, "index.html")

    @app.get("/static/<path:name>")
    def static_file(name: str):
        return send_from_directory(STATIC_DIR, name)  # safe_join: never leaves STATIC_DIR

    @app.get("/api/model")
    def model():
        out = explorer.info.to_dict()
        out["backend"] = backend
        out["upload_types"] = sorted(UPLOAD_TYPES)
        out["max_upload_bytes"] = int(max_upload_bytes)
        return jsonify(out)

    @app.get("/api/status")
    def status():
        return jsonify(explorer.status())

    @app.get("/api/seeds")
    def seeds():
        return jsonify(explorer.seeds())

    @app.get("/api/histograms")
    def histograms():
        return jsonify(explorer.histograms())

    @app.post("/api/encode")
    def encode():
        payload = body()
        tokens = explorer.check_tokens(payload.get("tokens"), max_measures=1)
        context = payload.get("context")
        if context is not None:
            context = explorer.check_tokens(context, max_measures=MAX_CONTEXT_MEASURES, what="context")
        stay = payload.get("stay_in_key", False)
        if not isinstance(stay, bool):
            raise ExplorerError("stay_in_key must be true or false")
        return jsonify(explorer.encode(tokens, context, stay))

    @app.post("/api/decode")
    def decode():
        payload = body()
        z, controls = state(payload)
        return jsonify(explorer.decode(z, controls, explorer.check_key(payload.get("key"))))

    @app.post("/api/surface")
    def surface():
        payload = body()
        z, controls = state(payload)
        x = explorer.check_control(payload.get("x"), "x")
        y = explorer.check_control(payload.get("y"), "y")
        grid = payload.get("grid", 15)
        if isinstance(grid, bool) or not isinstance(grid, int):
            raise ExplorerError("grid must be an integer")
        return jsonify(explorer.surface(z, controls, x, y, grid, explorer.check_key(payload.get("key"))))

    @app.get("/api/distribution")
    def distribution():
        try:
            x, y = int(request.args.get("x", "")), int(request.args.get("y", ""))
            bins = int(request.args.get("bins", "24"))
        except ValueError:
            raise ExplorerError("x, y and bins must be integers") from None
        x, y = explorer.check_control(x, "x"), explorer.check_control(y, "y")
        return jsonify(explorer.distribution(x, y, bins))

    @app.post("/api/upload")
    def upload():
        file = request.files.get("file")
        if file is None:
            raise UploadError("send the file as multipart form field 'file'")
        legato = request.form.get("legato", "1").strip().lower()
        if legato not in ("0", "1", "false", "true"):
            raise UploadError(f"legato must be 1 or 0 (true or false), got {legato[:20]!r}")
        result = read_upload(file.filename or "", file.read(), explorer.vocab, allow_cut_time=allow_cut_time,
                             legato=legato in ("1", "true"))
        result["measures"] = explorer.measure(result.pop("tokens"))
        return jsonify(result)

    @app.post("/api/midi")
    def midi():
        payload = body()
        tokens = explorer.check_tokens(payload.get("tokens"))
        style = payload.get("style")
        qpm = payload.get("qpm", None if style else 120)
        if qpm is not None and (isinstance(qpm, bool) or not isinstance(qpm, (int, float))):
            raise ExplorerError("qpm must be a number")
        if style is not None:  # an upload's "style", sent back to keep its tempo, instrument and name
            try:
                style = SourceStyle.from_dict(style if isinstance(style, dict) else {"qpm": "bad"})
            except (TypeError, ValueError, OverflowError):
                raise ExplorerError("style must be an upload's style object (qpm, numerator, denominator, "
                                    "program, track_name)") from None
        markers = payload.get("markers")
        if markers is not None and (not isinstance(markers, list) or len(markers) > len(tokens)
                                    or not all(isinstance(m, str) and len(m) <= 200 for m in markers)):
            raise ExplorerError("markers must be a list of at most one string (<= 200 characters) per measure")
        data = explorer.midi(tokens, None if qpm is None else float(qpm), style, markers)
        name = "musicvae_measure.mid" if len(tokens) == 1 else f"musicvae_phrase_{len(tokens)}_measures.mid"
        return Response(data, mimetype="audio/midi",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return app
