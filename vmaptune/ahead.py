"""Compiling a round's other programs in the background while its first one trains.

A round split into program groups (width or depth groups, batch-size classes) trains them one
after another, and each group's first chunk used to compile its program just before it trained:
the round paid every compile in series. XLA compiles outside Python's lock, so the later groups'
programs can compile in threads while the first group trains; each group then finds its program
compiled (jit's own cache: the same lowering, so no second compile), waiting only for what is
left of its compile.

Where that pays depends on where training runs. On an accelerator the host's cores sit idle
while the device trains, so the compiles come almost for free. On a CPU there is nothing to
gain: one XLA compile already keeps about 1.7 of the 2 cores of bench/RESULTS.md's machine busy
and training keeps both busy, so a compile in a thread only takes cores from the training
beside it. Hence the default: off on a CPU, on elsewhere.

    VMAPTUNE_COMPILE_AHEAD=0    never compile ahead
    VMAPTUNE_COMPILE_AHEAD=N    up to N programs compiling at once, on any platform
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Hashable, NamedTuple

import jax

from vmaptune import startup

ENV = "VMAPTUNE_COMPILE_AHEAD"
#: Programs compiling at once by default off a CPU: an XLA compile uses a few host cores itself.
MOST_AT_ONCE = 4


class Compiled(NamedTuple):
    """What a background compile measured: its seconds, and whether it came from the persistent cache."""

    seconds: float
    from_cache: bool


def workers() -> int:
    """How many programs may compile in the background at once (0: none), from VMAPTUNE_COMPILE_AHEAD
    or the platform: 0 on a CPU, else up to MOST_AT_ONCE, a quarter of the host's cores. Several
    processes (jax.distributed) never compile ahead."""
    if jax.process_count() > 1:
        return 0
    choice = os.environ.get(ENV, "").strip()
    if choice:
        try:
            return max(int(choice), 0)
        except ValueError:
            raise ValueError(f"{ENV}={choice!r}: use a whole number of programs compiling at once "
                             f"(0 turns compiling ahead off).") from None
    if jax.default_backend() == "cpu":
        return 0
    return max(1, min(MOST_AT_ONCE, (os.cpu_count() or 4) // 4))


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def _executor(size: int) -> ThreadPoolExecutor:
    """One pool per process (re-made when the wanted size changes; called under _lock): its threads
    are reused by every round."""
    global _pool, _pool_size
    if _pool is None or _pool_size != size:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool, _pool_size = ThreadPoolExecutor(size, thread_name_prefix="vmaptune-compile"), size
    return _pool


#: chunk key -> future of its program's background compile, until the call that needs it waits
_pending: dict[Hashable, Future] = {}


def start(key: Hashable, lower: Callable[[], "jax.stages.Lowered"]) -> bool:
    """Lowers and compiles `lower()`'s program in a background thread, unless compiling ahead is
    off or `key` is compiling already (two runs of one program). -> whether it is compiling now."""
    size = workers()
    if size == 0:
        return False
    with _lock:
        if key not in _pending:
            _pending[key] = _executor(size).submit(_compile, lower)
    return True


def wait(key: Hashable) -> Compiled | None:
    """Waits for `key`'s background compile -> what it measured; None when none was started (or
    another run waited for it first), or it failed: a program that fails to compile there is
    compiled again, and its error raised, by the call that needs it."""
    with _lock:
        future = _pending.pop(key, None)
    return None if future is None else future.result()


def _compile(lower: Callable[[], "jax.stages.Lowered"]) -> Compiled | None:
    profile = startup.TimeProfile()
    try:
        with profile.measure(this_thread=True):
            lower().compile()
    except Exception:  # noqa: BLE001 - the call that needs the program raises it
        return None
    return Compiled(profile.compile_seconds + profile.trace_seconds + profile.lower_seconds,
                    from_cache=profile.cache_hits > 0 and profile.cache_misses == 0)


def shapes(tree):
    """The tree's arrays as shapes, dtypes and shardings: all lowering reads of them (the buffers
    themselves may be donated by a call in the main thread meanwhile)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None),
                                                       weak_type=getattr(x, "weak_type", False)), tree)
