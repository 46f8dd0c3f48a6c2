"""Where a search's time goes: importing, tracing and lowering programs, XLA compiling them (or
loading them from the persistent cache), and the rest (training and host work).

JAX reports each phase through `jax.monitoring` events; `TimeProfile.measure()` adds up the ones
that happen inside it. `vt.tune` stores its profile in `results.settings["time"]` and the command
line prints it, so a slow start can be told from slow training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time

import jax

#: Seconds `import vmaptune` took (set by vmaptune/__init__.py; jax, flax and optax included).
IMPORT_SECONDS: float | None = None

_DURATIONS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace_seconds",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_seconds",
    "/jax/core/compile/backend_compile_duration": "compile_seconds",
    "/jax/compilation_cache/cache_retrieval_time_sec": "cache_load_seconds",
}
_COUNTS = {"/jax/compilation_cache/cache_hits": "cache_hits", "/jax/compilation_cache/cache_misses": "cache_misses"}
_active: list["TimeProfile"] = []
_listening = False


@dataclasses.dataclass(eq=False)  # one profile is one measurement: `_active.remove` finds it by identity
class TimeProfile:
    """Seconds per phase (and persistent-cache hits / misses) of what ran inside `measure()`."""

    trace_seconds: float = 0.0
    lower_seconds: float = 0.0
    compile_seconds: float = 0.0  # XLA's compiles, and loads from the persistent cache (included)
    cache_load_seconds: float = 0.0  # of which loads from the persistent cache
    cache_hits: int = 0
    cache_misses: int = 0
    total_seconds: float = 0.0
    #: this thread waiting for a compile in another (vmaptune/ahead.py) to finish: compile time it
    #: did not hide, a phase like those above
    compile_wait_seconds: float = 0.0
    #: tracing, lowering and compiling in other threads (vmaptune/ahead.py), beside the rest: not
    #: part of the phases above, which add up to at most the total; summed over the threads, so it
    #: can exceed the total
    background_seconds: float = 0.0

    _started: float | None = dataclasses.field(default=None, repr=False)
    _thread: int | None = dataclasses.field(default=None, repr=False)
    _this_thread_only: bool = dataclasses.field(default=False, repr=False)

    @contextlib.contextmanager
    def measure(self, this_thread: bool = False):
        """Counts what happens inside the block: in this thread, and in the others as
        background_seconds, or with this_thread in this one only (a program's first call while
        other programs compile in the background)."""
        _listen()
        self._thread, self._this_thread_only = threading.get_ident(), this_thread
        _active.append(self)
        self._started = time.perf_counter()
        try:
            yield self
        finally:
            self.total_seconds += time.perf_counter() - self._started
            self._started = None
            _active.remove(self)

    def _add(self, name: str, amount: float) -> None:
        """Adds an event of the calling thread: to the field `name` from the measuring thread; from
        another, its cache hit or miss, and its seconds as background_seconds (a load from the
        cache is inside its compile's seconds already)."""
        if threading.get_ident() == self._thread:
            setattr(self, name, getattr(self, name) + amount)
        elif self._this_thread_only or name == "cache_load_seconds":
            return
        elif name in _COUNTS.values():
            setattr(self, name, getattr(self, name) + amount)
        else:
            self.background_seconds += amount

    @property
    def seconds(self) -> float:
        """Seconds measured so far (the block in progress included)."""
        return self.total_seconds + (time.perf_counter() - self._started if self._started is not None else 0.0)

    @property
    def other_seconds(self) -> float:
        """Training and host work: the total less tracing, lowering, compiling and waiting for
        compiles (nested traces can count twice, so this is a lower bound)."""
        return max(self.seconds - self.trace_seconds - self.lower_seconds - self.compile_seconds
                   - self.compile_wait_seconds, 0.0)

    def as_dict(self) -> dict[str, float | int]:
        out = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()
               if not k.startswith("_")}
        out["total_seconds"] = round(self.seconds, 3)
        out["other_seconds"] = round(self.other_seconds, 3)
        if IMPORT_SECONDS is not None:
            out["import_seconds"] = round(IMPORT_SECONDS, 3)
        return out


def waited_for_compile(seconds: float) -> None:
    """Counts `seconds` the calling thread waited for a compile in another thread (ahead.wait) in
    the profiles measuring this thread."""
    for profile in list(_active):
        if profile._thread == threading.get_ident():
            profile.compile_wait_seconds += seconds


def describe(profile: dict) -> str:
    """One line: 'import 3.1 s, tracing 1.2 s, compiling 4.0 s (2 of 7 programs from the cache), training
    and the rest 8.3 s' from `TimeProfile.as_dict()`."""
    parts = [f"import {profile['import_seconds']:.1f} s"] if "import_seconds" in profile else []
    if "data_seconds" in profile:
        parts.append(f"data {profile['data_seconds']:.1f} s")
    parts.append(f"tracing {profile['trace_seconds'] + profile['lower_seconds']:.1f} s")
    cached = profile["cache_hits"]
    programs = cached + profile["cache_misses"]
    parts.append(f"compiling {profile['compile_seconds']:.1f} s"
                 + (f" ({cached} of {programs} cacheable programs from the compile cache)" if programs else ""))
    if profile.get("compile_wait_seconds"):
        parts.append(f"waiting {profile['compile_wait_seconds']:.1f} s for compiles in the background")
    parts.append(f"training and the rest {profile['other_seconds']:.1f} s")
    if profile.get("background_seconds"):
        parts.append(f"and {profile['background_seconds']:.1f} s compiling in the background beside them")
    return ", ".join(parts)


_listen_lock = threading.Lock()


def _listen() -> None:
    global _listening
    with _listen_lock:  # (profiles start in background threads too: ahead.py)
        if _listening:
            return
        _listening = True

    def on_duration(event: str, seconds: float, **_) -> None:
        name = _DURATIONS.get(event)
        if name is not None:
            for profile in list(_active):
                profile._add(name, seconds)

    def on_event(event: str, **_) -> None:
        name = _COUNTS.get(event)
        if name is not None:
            for profile in list(_active):
                profile._add(name, 1)

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    jax.monitoring.register_event_listener(on_event)
