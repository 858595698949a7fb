"""One trainer per run directory: an exclusive ``fcntl.flock`` on ``RUN_DIR/.trainer.lock``.

    with hold_run_dir(run_dir):      # raises RunDirLockedError at once when another process holds it
        ...train, evaluate, export...

The lock belongs to an open file, so the kernel releases it when the holder exits or crashes (even by
SIGKILL): a stale lock file on disk never blocks anyone. The holder writes its pid (and host) into the
file so that a refused trainer can name it. Re-entrant within one process (the study worker holds the
lock for the whole configuration and the trainer it calls takes it again). POSIX only; where ``fcntl``
does not exist (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from typing import Iterator, Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

from musicvae_xai.config import ConfigError

LOCK_FILENAME = ".trainer.lock"

#: realpath of a lock file -> [file descriptor, depth] for the locks this process holds.
_HELD: dict = {}


class RunDirLockedError(ConfigError):
    """Another process holds the run directory; the message names its pid."""


class RunDirUnwritableError(ConfigError):
    """The run directory cannot be created or written (permissions, read-only file system, disk full)."""


def unwritable(path: str, error: OSError, doing: str) -> RunDirUnwritableError:
    """A one-line error for an OSError raised while ``doing`` something to ``path``."""
    reason = error.strerror or str(error)
    return RunDirUnwritableError(f"cannot {doing} {path}: {reason}")


def _read_holder(path: str) -> str:
    """The holder's description from the lock file ("pid 123 on host"), waiting briefly for a holder
    that has just taken the lock and not written it yet."""
    for _ in range(20):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read().strip()
        except OSError:
            text = ""
        if text:
            fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
            if "pid" in fields:
                host = fields.get("host")
                return f"pid {fields['pid']}" + (f" on {host}" if host and host != socket.gethostname() else "")
        time.sleep(0.05)
    return "pid unknown"


def holder(run_dir: str) -> Optional[str]:
    """Who holds ``run_dir`` ("pid N"), or None when nobody else does (also when this process holds it,
    when the run_dir or its lock file does not exist, or on a system without ``fcntl``). Takes and
    releases the lock to find out, writes nothing."""
    path = os.path.join(run_dir, LOCK_FILENAME)
    if fcntl is None or os.path.realpath(path) in _HELD or not os.path.exists(path):
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return _read_holder(path)
        return None
    finally:
        os.close(fd)  # closing releases a lock taken here
    return None


def acquire(run_dir: str, filename: str = LOCK_FILENAME, role: str = "trainer") -> None:
    """Creates ``run_dir`` if needed and locks it for this process (re-entrant; see ``release``).

    Raises RunDirLockedError naming the holder's pid when another process holds it, and
    RunDirUnwritableError naming the path when the folder or its lock file cannot be created.
    filename, role: another lock on the same folder (the study runner's ``.runner.lock`` on its study
    folder), and what its holder is called in the message.
    """
    key = os.path.realpath(os.path.join(run_dir, filename))
    if key in _HELD:
        _HELD[key][1] += 1
        return
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise unwritable(run_dir, e, "create the run directory") from None
    path = os.path.join(run_dir, filename)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise unwritable(path, e, "create the lock file") from None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                what = "run_dir" if role == "trainer" else "folder"
                raise RunDirLockedError(f"{what} {run_dir} is in use by another {role} ({_read_holder(path)}); "
                                        "wait for it to finish or stop it") from None
            raise unwritable(path, e, "lock") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid={os.getpid()} host={socket.gethostname()} since={int(time.time())}\n".encode())
    except OSError as e:
        os.close(fd)
        raise unwritable(path, e, "write the lock file") from None
    _HELD[key] = [fd, 1]


def release(run_dir: str, filename: str = LOCK_FILENAME) -> None:
    """Undoes one ``acquire``; the last one unlocks (the lock file stays, empty, and is harmless)."""
    key = os.path.realpath(os.path.join(run_dir, filename))
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] > 0:
        return
    del _HELD[key]
    try:
        os.ftruncate(held[0], 0)
    except OSError:
        pass
    os.close(held[0])  # releases the flock


@contextlib.contextmanager
def hold_run_dir(run_dir: str) -> Iterator[None]:
    """``acquire`` for the duration of a ``with`` block."""
    acquire(run_dir)
    try:
        yield
    finally:
        release(run_dir)
