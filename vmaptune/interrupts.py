"""Ctrl-C and SIGTERM during a search: nothing already computed is lost.

Ctrl-C (SIGINT) raises KeyboardInterrupt where Python is; vt.tune saves the finished rounds and
the round in progress to run_dir and returns them.

SIGTERM is how a cluster scheduler preempts a job (Slurm, Kubernetes, `docker stop`, `kill PID`):
by default it ends a process at once, losing what trained since the last checkpoint. Inside
vt.tune it is held until the chunk in progress ends; there the run is checkpointed and stops
(Terminated, a KeyboardInterrupt: Ctrl-C's saving path), and once it is saved the signal is sent
again under the handler found before (by default the process ends, status 143 = 128 + 15). A job
script sees the exit it expects, and a requeued job resumes with resume=True exactly where it
stopped. A second SIGTERM stops at once, as Ctrl-C does.

With several processes (jax.distributed) Ctrl-C is held the same way: a process that stopped alone
would leave the others waiting in a collective it never joins, so at each chunk's start they ask
each other (`distributed.raise_if_interrupted`) and stop together.

A file being written is never cut in half: both signals wait until it is whole (`deferred`).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

HELD = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM came during vt.tune: the run is saved, then the process ends as SIGTERM ends it."""


_STATE = {"pending": 0, "sigterm": False}  # the signal held for the next chunk's start; SIGTERM came


def pending() -> int:
    """The signal held for the next chunk's start (0: none)."""
    return _STATE["pending"]


def take_pending() -> int:
    """The signal held (0: none), no longer held."""
    signum, _STATE["pending"] = _STATE["pending"], 0
    return signum


def raise_for(signum: int):
    """Raises what a held signal becomes: Terminated for SIGTERM, else KeyboardInterrupt."""
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _flushed() -> None:
    sys.stdout.flush()  # (a signal's default action ends the process without Python's exit)
    sys.stderr.flush()


@contextlib.contextmanager
def held_until_chunk_end(process: int = 0, processes: int = 1):
    """vt.tune's signals. SIGTERM (and, with several processes, Ctrl-C) only sets `pending`; the
    run checkpoints and stops at the next chunk's start. In one process a second SIGTERM stops at
    once. On leaving, a SIGTERM that came is sent again under the handler found on entry. A no-op
    outside the main thread (Python runs handlers there only); a signal ignored (SIG_IGN) stays
    ignored."""
    if not _in_main_thread():
        yield
        return
    caught = [signum for signum in (HELD if processes > 1 else (signal.SIGTERM,))
              if signal.getsignal(signum) not in (signal.SIG_IGN, None)]

    def hold(signum, frame):
        again = _STATE["pending"] == signum
        if again and processes == 1:
            raise_for(take_pending())
        _STATE["sigterm"] |= signum == signal.SIGTERM
        if not _STATE["pending"]:
            name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
            whole = "every process stops" if processes > 1 else "the run is saved and stops"
            sys.stderr.write(f"\nvmaptune: {name}" + (f" in process {process}" if processes > 1 else "") +
                             f": {whole} after the chunk in progress" +
                             ("" if processes > 1 else " (SIGTERM again: at once)") + ".\n")
        _STATE["pending"] = signal.SIGTERM if signal.SIGTERM in (signum, _STATE["pending"]) else signum

    outer = dict(_STATE)  # (a tune inside a tune's callback)
    _STATE.update(pending=0, sigterm=False)
    previous = {signum: signal.signal(signum, hold) for signum in caught}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        came = _STATE["sigterm"]
        _STATE.update(outer)
        if came:
            _flushed()
            signal.raise_signal(signal.SIGTERM)


@contextlib.contextmanager
def deferred():
    """Ctrl-C and SIGTERM inside are held until the block ends, then let through in the order they
    came (to the handlers found on entry): a save is never cut in half."""
    if not _in_main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum)) for signum in HELD}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                _flushed()
                signal.raise_signal(signum)  # (SIGTERM's default: the process ends, the file written whole)
