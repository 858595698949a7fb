"""Reading one untrusted file in a worker process, under a time and a memory limit.

    result = isolated.call("musicvae_xai.readers.registry:abc_one_here", path, tune=0)

music21's parsers can take minutes and gigabytes on a small hostile file, and a running Python call
cannot be stopped from another thread. So a single file given by a person (an explorer upload,
``explain``'s ``read_source``) in ABC or MusicXML is parsed by ``call`` in a worker process
(``python -m musicvae_xai.readers.isolated``, which imports the readers once and then serves one
request after another over its stdin/stdout pipes):

* a parse that runs past ``limits.PARSE_SECONDS`` is stopped by killing its worker: ReaderError
  ``parse_timeout`` (a fresh worker takes the next file);
* a worker may add at most ``limits.PARSE_MEMORY_BYTES`` to its address space (``RLIMIT_AS``); a
  parse over it is ``too_large``, a worker that dies is ``parser_crashed``;
* at most ``limits.MAX_PARSES`` parses run at once per process; a further one waits up to
  ``limits.PARSE_SECONDS`` for a free worker, then is refused as ``busy``. The caller's thread only
  waits on a pipe meanwhile, so a threaded server (the explorer) keeps answering other requests.

The limits of this process (``limits.current()``) go with every request, so a worker reads with the
same limits as its caller. Idle workers are kept for the next file and end with this process (their
stdin closes; a busy one notices within a second that its parent has gone). ``warm()`` starts one in
the background, so the first upload does not wait for music21 to import.
"""

from __future__ import annotations

import atexit
import importlib
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Optional

from musicvae_xai.readers import limits
from musicvae_xai.readers.common import ReaderError

#: Seconds a new worker may take to start (import music21) before its first file.
STARTUP_SECONDS = 120.0
#: Modules a worker imports before it says it is ready.
PRELOAD = ("musicvae_xai.readers.registry", "musicvae_xai.readers.abc", "musicvae_xai.readers.musicxml")

_HEADER = struct.Struct(">Q")
_READY = "ready"
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Stopped(Exception):
    """The worker did not answer in time (``timed_out``) or died."""

    def __init__(self, timed_out: bool):
        super().__init__("timed out" if timed_out else "died")
        self.timed_out = timed_out


class _Worker:
    """One worker process and its pipes."""

    def __init__(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.ready = False

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.write(_HEADER.pack(len(data)) + data)
        self.proc.stdin.flush()

    def _read(self, n: int, deadline: float) -> bytes:
        fd, chunks, left = self.proc.stdout.fileno(), [], n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise _Stopped(timed_out=True)
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise _Stopped(timed_out=False)
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def receive(self, deadline: float) -> Any:
        (size,) = _HEADER.unpack(self._read(_HEADER.size, deadline))
        return pickle.loads(self._read(size, deadline))

    def wait_ready(self) -> None:
        if not self.ready:
            if self.receive(time.monotonic() + STARTUP_SECONDS) != _READY:
                raise _Stopped(timed_out=False)
            self.ready = True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


_LOCK = threading.Lock()
_IDLE: list = []
_SLOTS: list = [None, 0]  # [semaphore, the MAX_PARSES it was made for]


def _slots() -> threading.BoundedSemaphore:
    with _LOCK:
        if _SLOTS[0] is None or _SLOTS[1] != limits.MAX_PARSES:
            _SLOTS[:] = [threading.BoundedSemaphore(max(1, int(limits.MAX_PARSES))), limits.MAX_PARSES]
        return _SLOTS[0]


def _take() -> _Worker:
    with _LOCK:
        while _IDLE:
            worker = _IDLE.pop()
            if worker.proc.poll() is None:
                return worker
            worker.kill()
    return _Worker()


def _give_back(worker: _Worker) -> None:
    with _LOCK:
        _IDLE.append(worker)


@atexit.register
def _stop_all() -> None:
    with _LOCK:
        while _IDLE:
            _IDLE.pop().kill()


def warm() -> None:
    """Starts one idle worker (if none is idle) without waiting for it: the first file then does not
    wait for the worker to import the readers."""
    with _LOCK:
        if not _IDLE:
            _IDLE.append(_Worker())


def call(target: str, *args: Any, **kwargs: Any) -> Any:
    """``module:function`` called with ``args``/``kwargs`` in a worker process, under the limits of the
    module docstring; returns what it returns (picklable).

    Raises what the function raised when it is a ReaderError, LookupError or OSError; ReaderError
    ``parse_timeout``, ``too_large`` (memory), ``parser_crashed`` or ``busy`` as described above; any
    other exception of the function as ReaderError ``unparseable``.
    """
    seconds = float(limits.PARSE_SECONDS)
    slots = _slots()
    if not slots.acquire(timeout=seconds):
        raise ReaderError("busy", f"{limits.MAX_PARSES} file(s) are being read already and none finished within "
                                  f"{seconds:g} s (MUSICVAE_XAI_MAX_PARSES); try again")
    try:
        worker = _take()
        try:
            worker.wait_ready()
            worker.send((target, args, kwargs, limits.current()))
            kind, value, retire = worker.receive(time.monotonic() + seconds)
        except (_Stopped, OSError, EOFError, pickle.UnpicklingError) as e:
            worker.kill()
            warm()  # a replacement starts now, not when the next file arrives
            if isinstance(e, _Stopped) and e.timed_out and worker.ready:
                raise ReaderError("parse_timeout", f"reading took longer than the {seconds:g} s limit "
                                                   "(MUSICVAE_XAI_PARSE_SECONDS)") from None
            code = worker.proc.returncode
            raise ReaderError("parser_crashed", f"the parser process died (exit code {code})" if worker.ready
                              else "the parser process did not start") from None
        if retire:
            worker.kill()
        else:
            _give_back(worker)
    finally:
        slots.release()
    return _result(kind, value)


def _result(kind: str, value: Any) -> Any:
    if kind == "ok":
        return value
    if kind == "reader":
        raise ReaderError(*value)
    if kind == "lookup":
        raise LookupError(value)
    if kind == "os":
        raise OSError(*value)
    raise ReaderError("unparseable", str(value))


# -- the worker ----------------------------------------------------------------------------------
def _limit_memory() -> Optional[int]:
    """Caps this process's address space at its size now plus ``limits.PARSE_MEMORY_BYTES``."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = now + int(limits.PARSE_MEMORY_BYTES)
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        return cap
    except (ImportError, OSError, ValueError):  # not Linux: no cap
        return None


def _run(target: str, args: tuple, kwargs: dict, shared: dict) -> tuple:
    """(kind, value, retire) of one request."""
    for name, value in shared.items():
        setattr(limits, name, value)
    module, _, attr = target.partition(":")
    try:
        return "ok", getattr(importlib.import_module(module), attr)(*args, **kwargs), False
    except ReaderError as e:
        return "reader", (e.reason, e.message), False
    except MemoryError:
        return "reader", ("too_large", f"reading needed more than the {limits.PARSE_MEMORY_BYTES // 2 ** 20} MiB "
                                       "allowed (MUSICVAE_XAI_PARSE_MEMORY_BYTES)"), True
    except LookupError as e:
        return "lookup", str(e.args[0] if e.args else e), False
    except OSError as e:
        return "os", (e.errno, e.strerror or str(e)), False
    except RecursionError:
        return "reader", ("unparseable", "nested too deeply"), True
    except Exception as e:  # noqa: BLE001 - a parser's failure on a bad file, named in one line
        return "reader", ("unparseable", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]), False


def _exit_with_parent(parent: int, poll_seconds: float = 1.0) -> None:
    """Ends this worker when its parent has gone, even in the middle of a parse (a daemon thread;
    music21 is Python, so the thread gets its turn)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _serve() -> None:
    _exit_with_parent(os.getppid())
    reply = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what a parser prints goes nowhere, not into the replies
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the worker
    requests = sys.stdin.buffer

    def send(message: Any) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        reply.write(_HEADER.pack(len(data)) + data)
        reply.flush()

    for module in PRELOAD:
        importlib.import_module(module)
    _limit_memory()
    send(_READY)
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return  # the caller has gone
        target, args, kwargs, shared = pickle.loads(requests.read(_HEADER.unpack(header)[0]))
        try:
            send(_run(target, args, kwargs, shared))
        except (pickle.PicklingError, TypeError, AttributeError) as e:  # a result that cannot travel
            send(("reader", ("unparseable", f"{type(e).__name__}: {e}"[:300]), False))


if __name__ == "__main__":
    _serve()
