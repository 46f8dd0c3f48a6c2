"""Ctrl-C and SIGTERM during a search: nothing already computed is lost.

Ctrl-C (SIGINT) stops vt.tune and returns the finished rounds and the round in progress. With a
run_dir it is held until the chunk in progress ends, like SIGTERM below, so the round is
checkpointed there and a resume goes on from that chunk (a second Ctrl-C stops at once, back to
the last checkpoint); without one it raises KeyboardInterrupt where Python is.

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

import jax

from vmaptune.warn import warn

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
def held_until_chunk_end(process: int = 0, processes: int = 1, hold_ctrl_c: bool = False):
    """vt.tune's signals. SIGTERM, and Ctrl-C too where hold_ctrl_c (a run_dir to checkpoint, or
    several processes), only set `pending`: the run checkpoints and stops at the next chunk's
    start. In one process a second signal stops at once. On leaving, a SIGTERM that came is sent
    again under the handler found on entry. A no-op outside the main thread (Python runs handlers
    there only); a signal ignored (SIG_IGN) stays ignored."""
    if not _in_main_thread():
        yield
        return
    several = processes > 1
    caught = [signum for signum in (HELD if several or hold_ctrl_c else (signal.SIGTERM,))
              if signal.getsignal(signum) not in (signal.SIG_IGN, None)]

    def hold(signum, frame):
        _STATE["sigterm"] |= signum == signal.SIGTERM
        first = _STATE["pending"]
        _STATE["pending"] = signal.SIGTERM if signal.SIGTERM in (signum, first) else signum
        if first and not several:  # the second: at once (several processes must stop together)
            raise_for(take_pending())
        if not first:
            name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
            if several:
                said = f" in process {process}: every process stops after the chunk in progress"
            else:
                said = f": the run is checkpointed and stops after the chunk in progress ({name} again: at once)"
            sys.stderr.write(f"\nvmaptune: {name}{said}.\n")

    outer = dict(_STATE)  # (a tune inside a tune's callback)
    _STATE.update(pending=0, sigterm=False)
    previous = {signum: signal.signal(signum, hold) for signum in caught}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        came, unused = _STATE["sigterm"], _STATE["pending"]
        _STATE.update(outer)
        if came:
            _flushed()
            if several and previous.get(signal.SIGTERM) == signal.SIG_DFL:
                _leave_the_cluster()
            signal.raise_signal(signal.SIGTERM)
        elif unused == signal.SIGINT:  # (it came as the run ended: nothing was left to stop)
            warn("Ctrl-C came as the run was ending: it had nothing left to stop; the whole run is "
                 "returned.")


def _leave_the_cluster() -> None:
    """Before SIGTERM ends this process of a multi-process run: leave JAX's distributed runtime as
    its exit would (its shutdown barrier waits for the other processes to end too). Killed without
    it, the others would wait at their own exit for this process until the heartbeat timeout
    (about 100 s), then abort (status 134), though their results were saved and returned."""
    try:
        jax.distributed.shutdown()
    except Exception as err:  # (the signal ends the process either way)
        sys.stderr.write(f"vmaptune: leaving JAX's distributed runtime failed ({type(err).__name__}: {err}).\n")


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
