"""Wiring: a serving client + its ModelInfo + the data loader -> an ``Explorer`` and its web app,
served by Werkzeug's threaded WSGI server (local use; bind to 127.0.0.1 unless told otherwise)."""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import re
import subprocess
import sys
import threading
import time
from typing import Iterator, Optional, Sequence

from absl import logging

from musicvae_xai.explorer.data import load_music_data
from musicvae_xai.explorer.engine import Explorer
from musicvae_xai.explorer.model_info import model_info

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def make_explorer(export: Optional[str] = None, serving_url: Optional[str] = None, model: Optional[str] = None,
                  version: Optional[int] = None, assets: Optional[str] = None, timeout: float = 5.0,
                  retries: int = 1, cache_dir: Optional[str] = None, data_root: Optional[str] = None,
                  train_limit: int = 2000, load_data: bool = True, seed_data: str = "model") -> tuple:
    """(Explorer, backend description). Exactly one of ``export`` (an export version folder or base,
    run in-process) or ``serving_url`` (TF-Serving REST, with ``model``) must be given; ``assets``: an
    export folder whose ``assets.extra`` describes the served model; seed_data: "model" (the model's
    own dataset, or the embedded one when that is not available here) or "embedded". Raises
    ValueError, ModelInfoError or ServingError (one line) when the model cannot be used."""
    if seed_data not in ("model", "embedded"):
        raise ValueError(f"--seed_data must be 'model' or 'embedded', got {seed_data!r}")
    if bool(export) == bool(serving_url):
        raise ValueError("give exactly one of --export=DIR or --serving_url=http://HOST:8501 (with --model)")
    if export:
        from musicvae_xai.serving.local import LocalModel
        client = LocalModel(export)
        backend = f"in-process SavedModel {client.model_name!r} v{client.version}"
    else:
        from musicvae_xai.serving.rest import RestClient
        if not model:
            raise ValueError("--model (the TF-Serving model name) is required with --serving_url")
        client = RestClient(serving_url, model, version, timeout=timeout, retries=retries)
        backend = f"TF-Serving REST {client.url} model {model!r}" + (f" v{version}" if version else "")
    info = model_info(client, assets)
    from musicvae_xai.readers import isolated
    isolated.warm()  # uploads are parsed in a worker process (readers.isolated): start it now
    loader = None
    if load_data:
        loader = functools.partial(load_music_data, info.config, info.vocabulary, cache_dir=cache_dir,
                                   data_root=data_root, train_limit=train_limit,
                                   model_dataset=seed_data == "model")
    return Explorer(client, info, loader), backend


def serve(app, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serves ``app`` until interrupted (threaded, so a slow model call does not block the page)."""
    from werkzeug.serving import make_server

    if host not in LOOPBACK:
        logging.warning("explorer: listening on %s, reachable from other machines; it has no authentication", host)
    server = make_server(host, port, app, threaded=True)
    logging.info("explorer: http://%s:%d/", host if ":" not in host else f"[{host}]", server.port)
    print(f"explorer running on http://{host}:{server.port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@contextlib.contextmanager
def running_explorer(args: Sequence[str] = (), timeout: float = 240.0) -> Iterator[str]:
    """Runs ``python -m musicvae_xai.explorer --port=0 ARGS`` in a child process; yields its URL once it
    serves, and stops it afterwards. Raises RuntimeError with the end of its output if it exits or has not
    started within ``timeout`` seconds (scripts and tests that drive the page in a browser)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "musicvae_xai.explorer", "--port=0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    log: list = []
    try:
        deadline, url = time.time() + timeout, None
        while url is None:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("the explorer did not start:\n" + "".join(log[-30:]))
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            log.append(line)
            found = re.search(r"explorer running on (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
