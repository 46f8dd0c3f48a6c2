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

vt.tune(time_budget=...) is a Ctrl-C planned ahead: once the budget is spent, the run stops at the
next chunk's start the same way (TimeBudgetSpent), checkpointed where it has a run_dir (whose
resume refits); without one (nothing to resume) the refit runs then, the budget off.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import re
import signal
import sys
import threading
import time
from typing import Any

import jax

from vmaptune.warn import warn

HELD = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM came during vt.tune: the run is saved, then the process ends as SIGTERM ends it."""


class TimeBudgetSpent(KeyboardInterrupt):
    """vt.tune(time_budget=...) ran out: the run stops at a chunk's start as Ctrl-C stops it."""


# the signal held for the next chunk's start; SIGTERM came; vt.tune's time budget: its deadline
# (time.monotonic()), whether a chunk has trained since it started (the first always trains, so a
# budget spent compiling still returns results), and whether it is spent (once spent, it stays so until budget_off)
_STATE = {"pending": 0, "sigterm": False, "deadline": None, "trained": False, "spent": False, "started": False,
          "finishing": False, "stopping": False}


def pending() -> int:
    """The signal held for the next chunk's start (0: none)."""
    return _STATE["pending"]


def take_pending() -> int:
    """The signal held (0: none), no longer held."""
    signum, _STATE["pending"] = _STATE["pending"], 0
    return signum


def parse_seconds(name: str, value: Any) -> float | None:
    """A duration given as seconds (a number) or text with a unit ('90s', '30min', '2h', '1d') ->
    seconds; None stays None."""
    if value is None:
        return None
    number = value
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|sec|min|m|h|d)?\s*", value.lower())
        if match is None:
            raise ValueError(f"{name}={value!r}: give seconds (3600) or a duration such as '90s', '30min', '2h'.")
        number = float(match.group(1)) * {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600,
                                          "d": 86400}[match.group(2)]
    if isinstance(number, bool) or not isinstance(number, numbers.Real) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name}={value!r}: give a positive number of seconds (3600) or a duration such as "
                         f"'30min', '2h'; leave it out (None) for no limit.")
    return float(number)


@contextlib.contextmanager
def time_budget(seconds: float | None):
    """vt.tune's time budget: from here, `budget_spent()` turns true `seconds` later, once a chunk
    has trained. None: no budget."""
    outer = {k: _STATE[k] for k in ("deadline", "trained", "spent", "started")}  # (a tune inside a tune's callback)
    _STATE.update(deadline=None if seconds is None else time.monotonic() + seconds, trained=False, spent=False,
                  started=False)
    try:
        yield
    finally:
        _STATE.update(outer)


def budget_off() -> None:
    """The search has ended (or its budget stopped it where no run_dir can resume it): the time
    budget stops searches, not the refit after one (a refit cut is not checkpointed, so a resume
    under the same budget would cut it again, and never end it). Ctrl-C and SIGTERM still stop it."""
    _STATE.update(deadline=None, spent=False)


def chunk_started() -> None:
    """A chunk's start found no signal held: that chunk trains (compiling first, on its first call),
    so a signal from now on is heeded at the next chunk's start."""
    _STATE["started"] = True


def finishing() -> None:
    """The run has trained all it will (its rounds and refit) and is being saved: a signal from now
    on stops nothing, and is said so."""
    _STATE["finishing"] = True


def chunk_trained() -> None:
    """A chunk was sent to train (the first of a budgeted run always is)."""
    _STATE["trained"] = True


def budget_spent() -> bool:
    """The time budget ran out (and a chunk has trained since it started); it stays spent (until
    budget_off)."""
    if not _STATE["spent"] and _STATE["deadline"] is not None and _STATE["trained"]:
        _STATE["spent"] = time.monotonic() >= _STATE["deadline"]
    return _STATE["spent"]


def stopping() -> None:
    """The run is stopping (a signal or its time budget): a signal from now on is said so, and stops
    nothing more."""
    _STATE["stopping"] = True


def raise_for(signum: int):
    """Raises what a held signal becomes: Terminated for SIGTERM, else KeyboardInterrupt (the run
    is stopping from then on)."""
    stopping()
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
        if _STATE["stopping"]:  # (held by the stop's own save and let through after it: nothing left to stop)
            then = "the process ends" if _STATE["sigterm"] else "the run returns"
            sys.stderr.write(f"\nvmaptune: {'SIGTERM' if signum == signal.SIGTERM else 'Ctrl-C'}: already stopping; "
                             f"what trained is kept, then {then}.\n")
            return
        first = _STATE["pending"]
        _STATE["pending"] = signal.SIGTERM if signal.SIGTERM in (signum, first) else signum
        if first and not several:  # the second: at once (several processes must stop together)
            raise_for(take_pending())
        if first and several:  # (said, so a second Ctrl-C that cannot stop at once is not met by silence)
            sys.stderr.write(f"\nvmaptune: already stopping: every process stops together, after the chunk in "
                             f"progress (kill -9 {os.getpid()} ends process {process} now; the others then stop "
                             f"within JAX's heartbeat timeout).\n")
        if not first:
            name = "SIGTERM" if signum == signal.SIGTERM else "Ctrl-C"
            if _STATE["finishing"]:
                said = (": the run has finished; it is being saved whole, then "
                        + ("the process ends" if signum == signal.SIGTERM else "returned"))
            elif several:
                said = f" in process {process}: every process stops after the chunk in progress"
            elif not _STATE["started"]:  # (still preparing: no chunk's start passed, none in progress to wait for)
                said = f": nothing has trained yet in this call; the run stops before its first chunk ({name} again: at once)"
            elif hold_ctrl_c:  # (a run_dir: checkpointed there)
                said = (f": the run stops after the chunk in progress, checkpointed (a refit in progress is trained "
                        f"again on resume; {name} again: at once)")
            else:
                said = f": the run stops after the chunk in progress (no run_dir: nothing is saved; {name} again: at once)"
            sys.stderr.write(f"\nvmaptune: {name}{said}.\n")

    outer = dict(_STATE)  # (a tune inside a tune's callback)
    _STATE.update(pending=0, sigterm=False, finishing=False, stopping=False)
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


def leave_the_cluster_on_sigterm() -> None:
    """After jax.distributed.initialize: SIGTERM outside vt.tune (loading data, between searches)
    leaves JAX's distributed runtime and ends this process, as SIGTERM's default would end it.
    JAX's preemption notifier takes SIGTERM at initialize and only records it (for
    multihost_utils.reached_preemption_sync_point, which vmaptune does not use): a scheduler's stop
    went unheeded and the process ran on. Inside vt.tune its own handler holds SIGTERM to the next
    chunk's start, then sends it on to this one. Only where SIGTERM had Python's default."""
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return

    def leave(signum, frame):
        if leaving:  # (a second SIGTERM while leaving: the first ends the process)
            return
        leaving.append(signum)
        sys.stderr.write(f"\nvmaptune: SIGTERM: process {jax.process_index()} leaves the run and ends.\n")
        _flushed()
        _leave_the_cluster()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)

    leaving: list[int] = []
    signal.signal(signal.SIGTERM, leave)


def _leave_the_cluster() -> None:
    """Before SIGTERM ends this process of a multi-process run: leave JAX's distributed runtime as
    its exit would (its shutdown barrier waits for the other processes to end too). Killed without
    it, the others would wait at their own exit for this process until the heartbeat timeout
    (about 100 s), then abort (status 134), though their results were saved and returned."""
    try:
        from vmaptune.distributed import _say_stopped  # (distributed imports this module)

        _say_stopped("SIGTERM")  # (one waiting for this process at a line-up stops at once)
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
