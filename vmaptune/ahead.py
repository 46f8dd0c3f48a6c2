"""Compiling a round's other programs in the background while its first one trains.

A round split into program groups (width or depth groups, batch-size classes) trains them one
after another, and each group's first chunk compiles its program just before it trains: the
round pays every compile in series. XLA compiles outside Python's lock, so the later groups'
programs can be traced, lowered and compiled in threads while the first group trains; each group
then finds its program compiled (jit's own cache: the same lowering, no second compile) and waits
only for what is left of its compile.

That pays where the host has cores to spare while training runs: on an accelerator, whose host
sits idle while the device trains. On a CPU it buys nothing (bench/compile_ahead.py: one XLA
compile already keeps about 1.7 of the 2 cores of bench/RESULTS.md's machine busy, training both),
and on a GPU it is not measured yet (bench/gpu.sh has the row; XLA's autotuning also runs kernels
on the device while it compiles), so it is off unless asked for:

    VMAPTUNE_COMPILE_AHEAD=N    up to N programs compiling at once in the background (0: off, the default)

JAX settings made with a context manager in the calling thread (`jax.default_matmul_precision`,
`jax.enable_x64` as a context) do not reach the background threads: a call that finds its program
compiled under other settings compiles it again itself, and compiling ahead turns itself off for
the rest of the process with a warning (`wasted`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Hashable

import jax

from vmaptune import startup
from vmaptune.warn import warn

ENV = "VMAPTUNE_COMPILE_AHEAD"


_turned_off = False  # set by `wasted`: a call had to compile again what was compiled ahead


def workers() -> int:
    """How many programs may compile in the background at once: VMAPTUNE_COMPILE_AHEAD (default 0,
    off). Never with several processes (jax.distributed), nor once `wasted` turned it off."""
    if jax.process_count() > 1 or _turned_off:
        return 0
    choice = os.environ.get(ENV, "").strip() or "0"
    try:
        return max(int(choice), 0)
    except ValueError:
        raise ValueError(f"{ENV}={choice!r}: use a whole number of programs compiling at once "
                         f"(0 turns compiling ahead off).") from None


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()
#: chunk key -> future of its program's background compile, until the call that needs it waits
_pending: dict[Hashable, Future] = {}


def _executor(size: int) -> ThreadPoolExecutor:
    """One pool per process, re-made when the wanted size changes (called under _lock)."""
    global _pool, _pool_size
    if _pool is None or _pool_size != size:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool, _pool_size = ThreadPoolExecutor(size, thread_name_prefix="vmaptune-compile"), size
    return _pool


def start(key: Hashable, lower: Callable[[], "jax.stages.Lowered"]) -> bool:
    """Traces, lowers and compiles `lower()`'s program in a background thread, unless compiling
    ahead is off or `key` is compiling already (two runs of one program). -> whether it is
    compiling now."""
    size = workers()
    if size == 0:
        return False
    with _lock:
        if key not in _pending:
            _pending[key] = _executor(size).submit(_compile, lower)
    return True


def wait(key: Hashable) -> float | None:
    """Waits for `key`'s background compile -> its seconds (tracing, lowering and compiling, slowed
    by whatever ran beside it); None when none was started (or
    another run waited for it first), or it failed: a program that fails to compile there is
    compiled again, and its error raised, by the call that needs it."""
    with _lock:
        future = _pending.pop(key, None)
    return None if future is None else future.result()


def cancel(keys) -> None:
    """Forgets the compiles of `keys` no call will wait for (a round stopped by an error or Ctrl-C),
    and drops those not started yet, so the process does not wait for them at exit."""
    with _lock:
        for key in keys:
            future = _pending.pop(key, None)
            if future is not None:
                future.cancel()


def wasted() -> None:
    """A call compiled its program again although it was compiled ahead (settings of the calling
    thread the background lowering did not see): off for the rest of the process, with a warning."""
    global _turned_off
    if not _turned_off:
        _turned_off = True
        warn(f"vmaptune compiled a program ahead under other JAX settings than the call that needed it "
             f"(a setting made with a context manager, such as jax.default_matmul_precision, applies to "
             f"its own thread only); compiling ahead is off for the rest of this process. Set {ENV}=0 "
             f"to skip it from the start.", RuntimeWarning)


def _compile(lower: Callable[[], "jax.stages.Lowered"]) -> float | None:
    profile = startup.TimeProfile()
    try:
        with profile.measure(this_thread=True):
            lower().compile()
    except Exception:  # noqa: BLE001 - the call that needs the program raises it
        return None
    return profile.compile_seconds + profile.trace_seconds + profile.lower_seconds
