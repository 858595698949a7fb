"""A process pool with a per-item time limit: a worker that runs past it is killed and replaced.

``concurrent.futures`` cannot stop one running call, so a single file that makes a reader loop (or
allocate) without end would hang a whole build. Here every worker owns a pipe and takes one item at
a time, so the parent knows which item each worker holds and since when; past ``time_limit`` the
worker is killed, the item is reported as ``"timeout"`` and a fresh worker takes the next item.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import time
from typing import Callable, Optional, Sequence

OK, TIMEOUT, CRASHED = "ok", "timeout", "crashed"
STARTED = "started"
#: Seconds a new worker may take to start (import modules) and take its first item.
STARTUP_LIMIT = 600.0


class PoolUnavailable(RuntimeError):
    """Worker processes cannot run here (they die before finishing any item)."""


def _worker(fn: Callable, conn) -> None:
    try:
        while True:
            item = conn.recv()
            if item is None:
                return
            index, arg = item
            conn.send((STARTED, index, None))  # the clock starts now, not while this process boots
            conn.send((OK, index, fn(arg)))
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        return


def run(fn: Callable, items: Sequence, workers: int, time_limit: Optional[float], order: Sequence[int] = None,
        on_done: Callable = None, context=None) -> dict:
    """Runs ``fn(items[i])`` in ``workers`` processes; returns {i: (status, value)}.

    status is OK (value = fn's result), TIMEOUT (the call ran past ``time_limit`` seconds; value =
    seconds it ran) or CRASHED (the worker died, e.g. killed for memory; value = its exit code).
    ``fn`` and the items must be picklable (fn by reference). order: the order to hand items out
    (default 0..n-1). on_done(i) is called as each item finishes. Raises PoolUnavailable when more
    than ``2 * workers`` workers die before any item succeeds, when workers died and no item
    succeeded at all, or when a worker cannot be started (workers cannot run here: the caller should
    do the work itself).
    """
    ctx = context or multiprocessing.get_context()
    pending = collections.deque(range(len(items)) if order is None else order)
    results: dict = {}
    busy: dict = {}  # conn -> [process, index, start time or None, time handed out]
    deaths = successes = 0

    def spawn():
        try:
            parent_conn, child_conn = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(fn, child_conn), daemon=True)
            proc.start()
        except (OSError, AssertionError, ValueError) as e:  # e.g. no processes left, or inside a daemon
            raise PoolUnavailable(f"cannot start a worker process: {e}") from e
        child_conn.close()
        return parent_conn, proc

    def feed(conn, proc) -> None:
        if not pending:
            _stop(conn, proc)
            return
        i = pending.popleft()
        try:
            conn.send((i, items[i]))
        except (BrokenPipeError, OSError):
            pending.appendleft(i)
            _kill(conn, proc)
            feed(*spawn())
            return
        busy[conn] = [proc, i, None, time.monotonic()]  # start: set when the worker says it has begun

    def finish(i, status, value) -> None:
        results[i] = (status, value)
        if on_done is not None:
            on_done(i)

    try:
        for _ in range(max(1, min(workers, len(pending)))):
            feed(*spawn())
        while busy:
            now = time.monotonic()
            wait_s = min(_deadline(entry, time_limit) for entry in busy.values()) - now
            timeout = None if wait_s == float("inf") else max(0.0, wait_s)
            for conn in multiprocessing.connection.wait(list(busy), timeout=timeout):
                proc, i = busy[conn][:2]
                try:
                    tag, index, value = conn.recv()
                except (EOFError, OSError):
                    busy.pop(conn)
                    proc.join(1.0)
                    _kill(conn, proc)
                    deaths += 1
                    if deaths > 2 * max(1, workers) and not successes:
                        raise PoolUnavailable(f"worker processes keep dying (exit code {proc.exitcode})") from None
                    finish(i, CRASHED, proc.exitcode)
                    feed(*spawn())
                    continue
                if tag == STARTED:
                    busy[conn][2] = time.monotonic()
                    continue
                busy.pop(conn)
                successes += 1
                finish(index, OK, value)
                feed(conn, proc)
            now = time.monotonic()
            for conn in [c for c, entry in busy.items() if now >= _deadline(entry, time_limit)]:
                proc, i, start, handed = busy.pop(conn)
                _kill(conn, proc)
                if start is None:  # the worker never began: it cannot start here
                    raise PoolUnavailable(f"a worker process did not start within {STARTUP_LIMIT:g} s")
                finish(i, TIMEOUT, round(now - start, 3))
                feed(*spawn())
    finally:
        for conn, entry in list(busy.items()):
            _kill(conn, entry[0])
    if deaths and not successes:
        raise PoolUnavailable(f"every worker process died ({deaths}) and none finished an item")
    return results


def _deadline(entry: list, time_limit: Optional[float]) -> float:
    """When a busy worker must be stopped: time_limit after it began its item, or STARTUP_LIMIT
    after the item was handed to it while it has not begun (it is still starting)."""
    _, _, start, handed = entry
    if start is None:
        return handed + STARTUP_LIMIT
    return start + time_limit if time_limit is not None else float("inf")


def _stop(conn, proc) -> None:
    try:
        conn.send(None)
    except (BrokenPipeError, OSError):
        pass
    conn.close()
    proc.join(5.0)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _kill(conn, proc) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join()
    conn.close()
