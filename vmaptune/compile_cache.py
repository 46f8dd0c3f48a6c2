"""JAX's persistent compilation cache, on by default: a new process reuses what earlier ones compiled.

A search compiles its programs before the first step (seconds, even for small populations); with
the cache, the same programs in a later process (the same model, space shapes, data shapes and
layout) load in milliseconds. vmaptune turns it on when it is imported, unless the user chose:

  VMAPTUNE_COMPILE_CACHE=/some/dir   use that directory
  VMAPTUNE_COMPILE_CACHE=0           leave the cache off
  JAX_COMPILATION_CACHE_DIR / jax_compilation_cache_dir set by you: yours wins

A directory that cannot be made turns the cache off, and one that cannot be written (a read-only
home, a cache another user filled) is only read, each with one warning at import.

The default directory is $XDG_CACHE_HOME/vmaptune/jax (~/.cache/vmaptune/jax), kept under 2 GiB:
when vmaptune is imported, the oldest entries go until the rest fit. Hyperparameter values are
never part of a program, so they never miss the cache.

Why not JAX's own size cap (`jax_compilation_cache_max_size`): with a cap, every write lists and
stats the whole directory under a file lock, and every read writes an access-time file. With every
compile cached (some thousands of small entries after a while) that made each compile O(entries):
a test suite that compiles a few thousand programs ran over twice as long. One pass at import
does the same job once per process.

Compiled programs also live in the process (JAX's in-memory caches), and on a CPU each holds
memory maps of its own machine code (about 170 for a small MLP's training program,
bench/memory_maps.py). Linux stops a process at vm.max_map_count maps
(65530 by default) and XLA then crashes inside its next compile, taking the process with it. A
long process that searches some 190 different models (a loop over architectures, an sklearn
search over a vt estimator's layer sizes) gets there; `release_if_near_map_limit`, called before a
search or a fit builds its programs, drops them first (they come back from the persistent cache).
"""

from __future__ import annotations

import functools
import gc
import math
import os
import tempfile

import jax

from vmaptune.warn import warn

ENV = "VMAPTUNE_COMPILE_CACHE"
MAX_BYTES = 2 * 1024**3
#: Compiles at least this long are cached. JAX's default is 1 s; every compile is cached here: besides
#: its training programs a search compiles some 60 small ones (about 50 ms each, 4 s in all), and a
#: new process loads them from the cache in a sixth of that (bench/startup.py).
MIN_COMPILE_SECONDS = 0.0

#: XLA without LLVM's optimisations, and on a CPU with XLA's loop emitters instead of its newer
#: fusion emitters: a training program compiles in 0.37 s instead of 1.22 s, runs 6-7x slower
#: (bench/compile_time.py, 2-core CPU). For programs that run once or for a moment
#: (initialisation, host-side bookkeeping, a tiny first search). The second option is a field of
#: XLA's shared DebugOptions, which GPU and TPU compilers accept and ignore; an XLA without the
#: field would refuse every compile that names it, so it is named only from the JAX release it
#: was measured with on (jax 0.10).
QUICK_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
if tuple(getattr(jax, "__version_info__", (0, 0, 0)))[:2] >= (0, 10):
    QUICK_COMPILER_OPTIONS["xla_cpu_use_fusion_emitters"] = False

#: A quick compile for programs that take gradients of a user's model (engine.train_chunk_quick):
#: LLVM's level 1, not 0. At level 0 one value can come out of two fusions with different rounding,
#: and gradients that compare a value with its recomputed copy break: a max-pooling's VJP
#: (eq(operand, max) / count) found no match, divided 0 by 0 and every member of an attention
#: model "diverged" in its first epoch (tests/test_user_models.py). Level 1 keeps most of the saving:
#: the digits training program compiles in 0.92 s instead of 1.51 s and trains 1.2x slower, where
#: level 0 compiled in 0.44 s and trained 6.9x slower (bench/compile_time.py, 2-core CPU).
QUICK_TRAINING_COMPILER_OPTIONS = {**QUICK_COMPILER_OPTIONS, "xla_backend_optimization_level": 1}


def quick_program(fun=None, **jit_arguments):
    """jax.jit(fun, **jit_arguments), compiled with QUICK_COMPILER_OPTIONS when called from the
    host: for a strategy's bookkeeping, run once a round. Called while another program is traced
    (a user's jitted strategy, vmap, grad), it is jitted plainly: XLA takes compiler options only
    for the outermost program. Usable as a decorator, with or without arguments."""
    if fun is None:
        return functools.partial(quick_program, **jit_arguments)
    quick = jax.jit(fun, compiler_options=QUICK_COMPILER_OPTIONS, **jit_arguments)
    plain = jax.jit(fun, **jit_arguments)

    @functools.wraps(fun)
    def call(*args, **kwargs):
        return (quick if _outside_any_trace() else plain)(*args, **kwargs)

    call.quick, call.plain = quick, plain
    return call


try:  # JAX has no public test for this; without the private one, every call is jitted plainly
    from jax._src.core import trace_state_clean as _outside_any_trace
except ImportError:
    def _outside_any_trace() -> bool:
        return False


def default_directory() -> str:
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(home, "vmaptune", "jax")


#: The directory vmaptune configured for the cache in this process (None: off, or the user's own).
DIRECTORY: str | None = None


def is_on() -> bool:
    """True when JAX's persistent cache is on in this process (vmaptune's or the user's)."""
    return bool(jax.config.jax_compilation_cache_dir)


def machine_directory() -> str:
    """Where vmaptune keeps what it learns about this machine (`costs.MACHINE_FILE`): the cache
    directory it configured, else the default one (also with the cache off)."""
    return DIRECTORY or default_directory()


def configure_compile_cache() -> str | None:
    """Turns on the persistent compilation cache (see the module docstring); returns its directory,
    or None when it is left to the user (off, or a directory they set)."""
    choice = os.environ.get(ENV)
    if choice is not None and choice.strip().lower() in ("0", "off", "false", "no", ""):
        return None
    if jax.config.jax_compilation_cache_dir:  # set by the user (config or JAX_COMPILATION_CACHE_DIR)
        return None
    path = choice or default_directory()
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:  # a file in the way, an unwritable home: run without the cache rather than fail
        warn(f"vmaptune: the compile cache directory {path} cannot be made ({error.strerror or error}), so "
             f"the persistent compile cache is off: this process compiles every program afresh and saves "
             f"none. Set {ENV} to a directory you can write, or {ENV}=0 to turn the cache off.", RuntimeWarning)
        return None
    unwritable = write_error(path)
    global DIRECTORY
    DIRECTORY = path
    jax.config.update("jax_compilation_cache_dir", path)
    if unwritable is None:
        prune(path, MAX_BYTES)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    else:  # (a read-only home, a cache another user filled) what is there still loads, and nothing is
        # written: JAX writes only compiles that took at least this long, and would warn at each
        # failed write (a text of its own each time, so Python shows every one)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", math.inf)
        warn(f"vmaptune: the compile cache directory {path} cannot be written "
             f"({unwritable.strerror or unwritable}): programs cached there still load, but this process's "
             f"compiles are not saved for later ones. Set {ENV} to a directory you can write, or {ENV}=0 "
             f"to turn the cache off.", RuntimeWarning)
    return path


def write_error(path: str) -> OSError | None:
    """None when a file can be made in the directory `path`, else the error making one gives (made
    and removed: permissions alone miss a read-only file system, ACLs and a root-squashed share)."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".vmaptune-write-check-", dir=path)
    except OSError as error:
        return error
    os.close(handle)
    try:
        os.remove(probe)
    except OSError:
        pass
    return None


def prune(path: str, max_bytes: int) -> int:
    """Removes the least recently written entries of the cache directory `path` until the rest
    take at most `max_bytes`; returns how many it removed. Entries another process removes at the
    same time are skipped (a missing entry is only a cache miss)."""
    entries = []
    try:
        with os.scandir(path) as listing:
            for entry in listing:
                try:
                    if entry.is_file():
                        stat = entry.stat()
                        entries.append((stat.st_mtime, stat.st_size, entry.path))
                except OSError:
                    continue
    except OSError:
        return 0
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, file in sorted(entries):
        if total <= max_bytes:
            break
        try:
            os.remove(file)
        except OSError:
            continue
        total -= size
        removed += 1
    return removed


#: Share of the process's memory-map limit (vm.max_map_count) above which a new search first drops
#: JAX's compiled programs: a search's own programs take a few thousand maps at most.
MAP_LIMIT_SHARE = 0.8


def memory_maps() -> tuple[int, int] | None:
    """(memory maps this process holds, the most Linux lets it hold), or None where the system
    does not say (not Linux)."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            used = maps.read().count(b"\n")
        with open("/proc/sys/vm/max_map_count") as limit:
            return used, int(limit.read())
    except (OSError, ValueError):
        return None


def release_if_near_map_limit() -> bool:
    """Drops JAX's in-memory compiled programs (`jax.clear_caches`, yours too: each is traced
    again at its next call and loaded from the persistent cache) when this process holds more
    than MAP_LIMIT_SHARE of the memory maps it may, before XLA would crash on reaching the limit.
    Returns True when it did, with a warning that says why."""
    maps = memory_maps()
    if maps is None or maps[0] <= MAP_LIMIT_SHARE * maps[1]:
        return False
    warn(f"vmaptune: this process holds {maps[0]} memory maps of the {maps[1]} Linux allows "
         f"(vm.max_map_count), most of them compiled programs; XLA crashes at the limit, so JAX's "
         f"in-memory compiled programs are dropped now (jax.clear_caches()): later calls trace them "
         f"again and load them from the persistent compile cache. Raising the limit (sysctl "
         f"vm.max_map_count) keeps them.", RuntimeWarning)
    jax.clear_caches()
    gc.collect()  # the executables go when their last reference does
    return True
