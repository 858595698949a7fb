"""Study workers die with their runner, however the runner ends (even by SIGKILL).

The runner starts each worker in its own process group (``start_new_session``, so it can stop the
worker and anything the worker started with one ``killpg``) and passes its own pid in
``MUSICVAE_XAI_PARENT_PID``. The worker calls ``die_with_parent()`` first thing, which

* on Linux asks the kernel to send it SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``
  through ``ctypes``): immediate, and works even while the worker is inside a long TensorFlow op;
* checks ``os.getppid()`` against the runner's pid once, for a runner that died before the ``prctl``;
* and starts a daemon thread that polls ``os.getppid()`` every ``poll_seconds`` (the only mechanism
  where ``prctl`` does not exist, e.g. macOS): when the parent has changed (the worker was re-parented
  to init or a subreaper) it SIGKILLs the worker's process group.

A killed worker writes nothing, exactly like an interrupted one: the run_dir lock is released by the
kernel and the next run resumes from the last checkpoint.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PARENT_ENV = "MUSICVAE_XAI_PARENT_PID"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die() -> None:
    """SIGKILLs this process and, when it leads its process group, everything in the group."""
    try:
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


def _set_pdeathsig(sig: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, sig)``; False where it is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(sig), ctypes.c_ulong(0), ctypes.c_ulong(0),
                          ctypes.c_ulong(0)) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(poll_seconds: float = 1.0) -> list:
    """Arranges for this process to be killed when the process named by ``MUSICVAE_XAI_PARENT_PID``
    (its parent, the study runner) dies; does nothing when the variable is unset (a worker started by
    hand or by Slurm). Returns the mechanisms in place: ["prctl", "poll"], ["poll"] or []."""
    value = os.environ.get(PARENT_ENV, "")
    if not value.isdigit():
        return []
    parent = int(value)
    mechanisms = ["prctl"] if _set_pdeathsig(signal.SIGKILL) else []
    if os.getppid() != parent:  # the runner is already gone (or this is not its child)
        _die()

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                _die()
            threading.Event().wait(poll_seconds)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
    return mechanisms + ["poll"]
