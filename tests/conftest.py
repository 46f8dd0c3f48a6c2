import os
import signal
import warnings

# Four CPU devices on any machine, so populations are split over several devices in every test
# (vmaptune would otherwise show one device per core). Must precede the first jax import.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
# The tests' programs are small and compiled once or twice each: LLVM's optimisation passes cost
# more than they save (the suite runs about a fifth faster without them). Results stay within the
# tests' float tolerances; the benchmarks (bench/) keep XLA's default level. A model whose gradient
# compares a value with its recomputed copy (max pooling) can break at level 0: its tests compile
# with options of their own (test_an_attention_model_with_max_pooling_trains_the_same_in_the_quick_program).
if "xla_backend_optimization_level" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=0"
# XLA:CPU's loop emitters instead of its newer fusion emitters: a compile takes about half the
# time (the suite ran 260 s instead of 379 s on 2 cores), the programs run slower, the results
# are the same up to float rounding.
if "xla_cpu_use_fusion_emitters" not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " --xla_cpu_use_fusion_emitters=false"

# One persistent compilation cache for this run, shared by the xdist workers (they inherit the
# variable from the process that starts them): a program one worker compiled loads in the other
# (vmaptune/compile_cache.py). Fresh for every run and removed after it: never the user's cache,
# and a run's timing does not depend on the runs before it.
if "VMAPTUNE_COMPILE_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["VMAPTUNE_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="vmaptune-test-cache-")
    atexit.register(shutil.rmtree, os.environ["VMAPTUNE_COMPILE_CACHE"], ignore_errors=True)

import pytest  # noqa: E402

import vmaptune as vt  # noqa: E402


@pytest.fixture(autouse=True)
def _no_compiling_ahead(monkeypatch):
    """Every test starts with compiling ahead off (vmaptune/ahead.py), whatever the shell exported;
    the tests of it turn it on themselves."""
    from vmaptune import ahead

    monkeypatch.delenv(ahead.ENV, raising=False)
    monkeypatch.setattr(ahead, "_turned_off", False)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drops JAX's in-memory compiled programs after each test file (later files load theirs from
    the persistent cache). Every XLA:CPU executable holds memory mappings of its own; one process
    running the whole suite reached Linux's limit of 65530 per process (vm.max_map_count) at about
    80 % and XLA then crashed inside a compile (a segfault, not an error)."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


@pytest.fixture(scope="session")
def digits():
    return vt.load_dataset("digits")


@pytest.fixture(scope="session")
def diabetes():
    return vt.load_dataset("diabetes")


@pytest.fixture(scope="session")
def images():
    """digits as (n, 8, 8, 1) images."""
    from user_models import digit_images

    return digit_images()


@pytest.fixture
def sigint_as_a_user_has_it():
    """A Ctrl-C reaches the process as it reaches a user's: SIGINT unblocked, Python's handler.
    A suite started as a background job of a non-interactive shell (`pytest ... &` in a script)
    inherits SIGINT ignored (POSIX), and so do its workers and their children: both Ctrl-C tests
    then saw no signal. The state found is reported, then reset for the test (a child process
    inherits the reset state: the mask, and SIG_DFL in place of Python's handler)."""
    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    handler = signal.getsignal(signal.SIGINT)
    if blocked or handler is not signal.default_int_handler:
        warnings.warn(f"SIGINT was {'blocked' if blocked else 'not blocked'}, handler {handler!r}, before this "
                      f"test; reset to Python's default for it")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
