"""Noise a user cannot act on, filtered once when the package is imported.

Four sources print on every command, none of which a user can act on:

- TensorFlow's C++ INFO lines after its logger starts (e.g. the CPU-feature notice): hidden by
  ``TF_CPP_MIN_LOG_LEVEL=1`` (a value the user set wins); WARNING and ERROR lines still print.
- Lines TensorFlow's native libraries write to stderr *before* that logger starts, which no
  setting reaches (TF 2.19+): the oneDNN notice and "Could not find cuda drivers" (each twice,
  behind "All log messages before absl::InitializeLog() ..."), and the ERROR "failed call to cuInit"
  of the CUDA probe on a machine without a GPU driver. ``import tensorflow`` and the first device
  query (made right after it) run with stderr captured at the file-descriptor level; the known lines
  in ``KNOWN_NOISE`` are dropped and
  every other line is written back, so a real warning or error still shows.
- TensorFlow's Python INFO lines on saving and loading (logged by its modules through absl's logger
  or ``tf.get_logger()``): "Sharding callback duration: N microseconds" at every checkpoint,
  "Function `_encode` contains input name(s) ... with unsupported characters which will be renamed"
  (the placeholders of the model variables a traced signature captures, which TensorFlow names by a
  running number; the signature inputs themselves are named), "Assets written to", "Writing
  fingerprint to", "Restoring parameters from". A filter on both loggers drops the records below
  WARNING that come from TensorFlow's own files, as ``TF_CPP_MIN_LOG_LEVEL=1`` does for its C++ side;
  its warnings and errors, and the package's own INFO lines, still show.
- pydub (imported by note-seq) warns that ffmpeg is missing; nothing here decodes audio through
  pydub, so that one warning is ignored. Every other Python warning still shows.

Set ``MUSICVAE_XAI_VERBOSE_STARTUP=1`` (before the package is imported) to see everything.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import tempfile
import warnings

#: Substrings of the native start-up lines that are dropped (all INFO-level, pre-logger).
KNOWN_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "cpu_feature_guard.cc",
    "To enable the following instructions:",
    "failed call to cuInit",  # the CUDA probe on a machine without a GPU driver
    "oneDNN supports DT_STRING only on platforms with AVX-512",  # the first image/audio summary encode
)


def _is_noise(line: str) -> bool:
    return any(k in line for k in KNOWN_NOISE)


class _FilteredStderr:
    """Context manager: fd 2 goes to a temporary file; on exit the lines not in KNOWN_NOISE go back.

    Also used around the training summaries' first PNG/WAV encodes (``filtered_stderr``), where oneDNN
    prints a DT_STRING notice once per process."""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile(mode="w+b")
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        try:
            sys.stderr.flush()
        finally:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        self._file.seek(0)
        kept = [ln for ln in self._file.read().decode("utf-8", "replace").splitlines(keepends=True)
                if not _is_noise(ln)]
        self._file.close()
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _FilteredStderr():
            self._loader.exec_module(module)
            # The CUDA probe runs once, at the first device query; run it here, inside the filter.
            module.config.list_physical_devices("GPU")


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the top-level ``tensorflow`` package (once) in ``_FilteredStderr``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _TensorFlowInfo(logging.Filter):
    """Drops the INFO and DEBUG records that TensorFlow's own modules log (the record's file lies in
    the ``tensorflow`` package); warnings, errors and every other module's records pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        package = getattr(sys.modules.get("tensorflow"), "__file__", None)
        return not (package and record.pathname.startswith(os.path.dirname(package) + os.sep))


def _filter_tensorflow_info() -> None:
    """Puts ``_TensorFlowInfo`` (once) on the two loggers TensorFlow's Python side logs through:
    ``tensorflow`` (``tf.get_logger()``) and absl's (``from absl import logging`` in its modules)."""
    from absl import logging as absl_logging  # creates absl's logger class before it is looked up

    for logger in (logging.getLogger("tensorflow"), absl_logging.get_absl_logger()):
        if not any(isinstance(f, _TensorFlowInfo) for f in logger.filters):
            logger.addFilter(_TensorFlowInfo())


def filtered_stderr() -> _FilteredStderr:
    """A context manager that drops the known lines (``KNOWN_NOISE``) written to stderr inside it."""
    return _FilteredStderr()


def quiet_startup() -> None:
    """Sets the filters above (idempotent); has effect only before TensorFlow is imported."""
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning)
    if os.environ.get("MUSICVAE_XAI_VERBOSE_STARTUP"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    _filter_tensorflow_info()
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
