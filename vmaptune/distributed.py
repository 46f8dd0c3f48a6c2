"""Where a population trains: split over devices (of one process or of many), and stepped in
cache-sized blocks on a CPU.

Members never exchange anything during training, so two layouts are free to choose and only
change speed (bench/RESULTS.md has the measurements that set the defaults):

- Devices. The population axis is split over a 1-D mesh with `jax.shard_map`: each device trains
  P / n members of the same program and nothing crosses between devices. On a CPU this is what
  puts every core to work: XLA runs one batched matmul on one core, so a CPU shown to JAX as one
  device leaves the others idle. `configure_cpu_devices` (run when vmaptune is imported, while JAX
  has not started its backends) shows each core as a device.
- Member blocks. A step over all P members streams every weight, gradient and optimizer buffer
  through memory several times; on a CPU, stepping `block` members at a time (a loop over
  blocks, `vmap` inside) keeps a block's buffers in cache. An accelerator wants the whole
  population in each op, so blocks are a CPU default only.
- Processes. `initialize` starts JAX's distributed runtime; from then on `jax.devices()` lists
  every process's devices and a population's mesh spans all processes (the same number of devices
  from each). Every process runs the same program on the same inputs, so the host side (the
  strategy, packing, early-stopping bookkeeping) computes the same thing everywhere; what the
  host reads from the devices is gathered (`to_host`), what it decides from its own clock is
  agreed (`agree`: process 0's value), and only process 0 writes (`is_primary`).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import itertools
import math
import numbers
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

from vmaptune import interrupts
from vmaptune.state import AXIS
#: Environment variable: how many CPU devices vmaptune asks JAX for (default: the usable cores).
CPU_DEVICES_ENV = "VMAPTUNE_CPU_DEVICES"
#: Bytes of one buffer (params, gradients or a moment) for a block of members: about an L2 cache.
BLOCK_BYTES = 512 * 1024


def configure_cpu_devices(count: int | None = None) -> int:
    """Shows the CPU to JAX as `count` devices (default: $VMAPTUNE_CPU_DEVICES, else the cores this
    process may use), so a population can be split over the cores. Returns the count set, or 0
    when it leaves JAX alone: the user already chose (XLA_FLAGS' host device count, or
    jax_num_cpu_devices / JAX_NUM_CPU_DEVICES), or JAX has already started (then it is too late)."""
    if count is None:
        env = os.environ.get(CPU_DEVICES_ENV)
        if env is not None:
            try:
                count = int(env)
            except ValueError:
                raise ValueError(f"{CPU_DEVICES_ENV}={env!r} must be an integer >= 1 (1 = one CPU device).") from None
            if count < 1:
                raise ValueError(f"{CPU_DEVICES_ENV}={env!r} must be an integer >= 1 (1 = one CPU device).")
        else:
            count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    global _CHOSEN
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return 0
    current = getattr(jax.config, "jax_num_cpu_devices", -1)
    if current not in (-1, _CHOSEN):  # set by the user (config or JAX_NUM_CPU_DEVICES), not by vmaptune
        return 0
    if count == 1 and current == -1:  # (JAX's own default is one CPU device)
        return 0
    try:
        jax.config.update("jax_num_cpu_devices", int(count))
    except (RuntimeError, AttributeError):  # backends already running (or an old JAX): keep what JAX has
        return 0
    _CHOSEN = int(count)
    return int(count)


_CHOSEN = None  # the CPU device count configure_cpu_devices set (a later call may change its own choice)
_GIVEN: dict = {"num_processes": None}  # what initialize was told

#: How initialize's errors name its arguments: in Python, and on the command line (cli.py's flags).
PYTHON_WORDS = {"coordinator": "coordinator_address={!r}", "num_processes": "num_processes={}",
                "process_id": "process_id={}", "all": "coordinator_address='host:port' (process 0's host and a free "
                "port), num_processes, and this process's process_id (0 to num_processes - 1)",
                "detect": "vt.distributed.initialize(coordinator_address={!r}, num_processes={!r}, process_id={!r})",
                "alone": "A search on this machine alone needs no initialize: leave the call out"}
CLI_WORDS = {"coordinator": "--coordinator {}", "num_processes": "--num-processes {}", "process_id": "--process-id {}",
             "all": "--coordinator HOST:PORT (process 0's host and a free port), --num-processes N, and this "
             "process's --process-id I (0 to N - 1)", "detect": "--distributed",
             "alone": "A search on this machine alone needs none of these flags: leave --distributed out"}


# -- many processes ---------------------------------------------------------------------------------------
def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, local_device_ids=None, cpu_devices: int | None = None,
               initialization_timeout: int = 300, heartbeat_timeout_seconds: int = 100,
               shutdown_timeout_seconds: int = 300, _words: dict = PYTHON_WORDS) -> None:
    """Joins this process to a multi-process run (`jax.distributed.initialize`); call it first,
    before anything else uses JAX, with the same arguments in every process.

    With no arguments JAX detects the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU pods);
    otherwise give coordinator_address ('host:port' of process 0), num_processes and this
    process's process_id. On CPUs, processes exchange through gloo collectives and each shows
    `cpu_devices` devices (default: as vmaptune's import chose, one per core). A process that
    fails ends the others: JAX's distributed service stops them once the failed one missed its
    heartbeats or the shutdown barrier (`heartbeat_timeout_seconds`, `shutdown_timeout_seconds`)."""
    for name, value in (("num_processes", num_processes), ("process_id", process_id)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
            raise ValueError(f"{name}={value!r} must be an integer >= 0 (or None: detected from the cluster).")
    num_processes, process_id = (None if v is None else int(v) for v in (num_processes, process_id))
    if num_processes is not None and process_id is not None and process_id >= num_processes:
        raise ValueError(f"{_words['process_id'].format(process_id)} must be below "
                         f"{_words['num_processes'].format(num_processes)} (ids run from 0).")
    if coordinator_address is not None and (not isinstance(coordinator_address, str)
                                            or not coordinator_address.rpartition(":")[2].isdigit()):
        raise ValueError(f"{_words['coordinator'].format(coordinator_address)} must be 'host:port' (process 0's "
                         "address and a free port, e.g. 'node001:8476').")
    if cpu_devices is not None and configure_cpu_devices(cpu_devices) != cpu_devices and cpu_devices != 1:
        why = ("XLA_FLAGS sets --xla_force_host_platform_device_count" if "xla_force_host_platform_device_count"
               in os.environ.get("XLA_FLAGS", "") else "JAX's device count was set elsewhere (jax_num_cpu_devices "
               "or JAX_NUM_CPU_DEVICES), or JAX has started already")
        raise ValueError(f"cpu_devices={cpu_devices} cannot be applied: {why}. Call vt.distributed.initialize "
                         f"first, before anything uses JAX, or set {CPU_DEVICES_ENV}={cpu_devices} before starting.")
    if process_id == 0 and coordinator_address is not None:
        _check_port_free(coordinator_address, _words)
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (RuntimeError, AttributeError):  # an old JAX: its default CPU collectives
        pass
    who = "" if process_id is None else f" {process_id} of {num_processes}"
    if coordinator_address is None:  # (JAX finds the cluster, or says at once that there is none)
        sys.stderr.write(f"vmaptune: process{who} looking for its cluster (SLURM, Open MPI, Kubernetes, a Cloud TPU "
                         f"pod); once found, it waits up to {initialization_timeout} s for every process to join.\n")
    else:
        sys.stderr.write(f"vmaptune: process{who} joining {coordinator_address}; it waits up to "
                         f"{initialization_timeout} s for every process to join.\n")
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id, local_device_ids=local_device_ids,
                                   initialization_timeout=initialization_timeout,
                                   heartbeat_timeout_seconds=heartbeat_timeout_seconds,
                                   shutdown_timeout_seconds=shutdown_timeout_seconds)
    except ValueError as err:
        if "defined" not in str(err):  # JAX's "coordinator_address should be defined." and the like
            raise
        raise ValueError(
            f"{_words['detect'].format(coordinator_address, num_processes, process_id)} found no cluster to tell this process's place in a multi-process run (JAX: {err}): "
            f"this process runs under none of SLURM, Open MPI, Kubernetes or a Cloud TPU pod. Pass all three, the "
            f"same address and count in every process: {_words['all']}. {_words['alone']}.") from None
    _GIVEN["num_processes"] = num_processes
    _GIVEN["initialization_timeout"] = int(initialization_timeout)
    # (at its exit, this process tells the others: one waiting for it at a line-up stops at once;
    # registered after JAX's own exit handler, so it runs before that leaves the service)
    atexit.register(lambda: _say_stopped(_GIVEN.get("why_stopped", "ended")))
    sys.stderr.write(f"vmaptune: joined as process {jax.process_index()} of {jax.process_count()}.\n")
    _say_which_process_failed(heartbeat_timeout_seconds, shutdown_timeout_seconds)
    interrupts.leave_the_cluster_on_sigterm()


def _check_port_free(coordinator_address: str, words: dict) -> None:
    """Process 0 serves the coordinator on the address's port, on every interface of its host. A
    port already taken (another run, or one still ending) crashed JAX's server with a segmentation
    fault and no word of why: said here, before joining. (SO_REUSEADDR as gRPC's own server sets
    it, so a closed run's lingering connections do not count.)"""
    port = int(coordinator_address.rpartition(":")[2])
    for family, host in ((socket.AF_INET6, "::"), (socket.AF_INET, "")):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # (no IPv6 on this host)
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    return  # (not ours to judge: JAX says what it finds)
                raise ValueError(f"{words['coordinator'].format(coordinator_address)}: port {port} is already in use "
                                 f"on this host (another run, or a program listening there), and process 0 serves "
                                 f"the coordinator on it. Give every process another free port (e.g. "
                                 f"{coordinator_address.rpartition(':')[0]}:{_a_free_port()}).") from None
        return


def _a_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def given_num_processes() -> int | None:
    """The num_processes this process was started with (None: detected, or one process), which
    every process must share (vt.tune compares it with the others' before anything compiles: a
    process told another count can join a smaller cluster and run on silently)."""
    return _GIVEN["num_processes"]


def _say_which_process_failed(heartbeat_timeout: int, shutdown_timeout: int) -> None:
    """An uncaught error in one process says, before its traceback, that the others will stop."""
    previous = sys.excepthook
    _GIVEN["timeouts"] = (heartbeat_timeout, shutdown_timeout)

    def hook(kind, value, traceback):
        sys.stderr.write(stopped_on_error(kind.__name__) + "\n")
        previous(kind, value, traceback)

    sys.excepthook = hook


def stopped_on_error(why: str = "an error") -> str:
    """What a process of a multi-process run says when an error stops it ('' in one process): the
    uncaught-error hook says it, and so does the command line, which catches its errors. The other
    processes are told why at this process's exit (a search's line-up waits for none that stopped)."""
    if "timeouts" not in _GIVEN or jax.process_count() == 1:
        return ""
    _GIVEN["why_stopped"] = why  # (told the others at this process's exit: a caller of cli.main may go on)
    heartbeat_timeout, shutdown_timeout = _GIVEN["timeouts"]
    return (f"vmaptune: process {jax.process_index()} of {jax.process_count()} stopped on the error below (an "
            f"error in a collective, or a connection reset, means another process stopped first); the others stop "
            f"once JAX's distributed service notices: when this process is gone, within the heartbeat timeout "
            f"({heartbeat_timeout} s), at most the shutdown timeout ({shutdown_timeout} s).")


def process_count() -> int:
    """The processes a population splits over: JAX's process count (1 within `this_process_alone`)."""
    return 1 if _alone() else jax.process_count()


def usable_devices() -> list:
    """The devices a population may split over: every process's (this process's own within
    `this_process_alone`; the same list in one process)."""
    return jax.local_devices() if _alone() else jax.devices()


_ALONE = threading.local()  # .depth: this_process_alone's nesting in this thread


def _alone() -> bool:
    return getattr(_ALONE, "depth", 0) > 0


@contextlib.contextmanager
def this_process_alone():
    """Within it, what vmaptune trains runs as in a run of one process, on this process's own
    devices, even in a multi-process run: populations span no other process, and nothing is
    exchanged with the others (no collective for another process to pair with, so it may be called
    in one process only). What writes files stays process 0's (is_primary). For one network that
    every process trains alike (an estimator's fit: same data and seed, so the same weights in
    every process), where a population over every process would need every process in each step
    and leave each one's weights on devices another process cannot read. Per thread: a search in
    another thread still spans every process (vmaptune starts no thread of its own that would
    need it: compiling ahead is off in a multi-process run)."""
    _ALONE.depth = getattr(_ALONE, "depth", 0) + 1
    try:
        yield
    finally:
        _ALONE.depth -= 1


def is_primary() -> bool:
    """Whether this process writes files and shows progress (process 0; always true in one process)."""
    return jax.process_index() == 0


def whole_rows(rows: int) -> int:
    """`rows` rounded up to a multiple of the process count: a population gives every process
    the same number of rows (fillers pad the rest)."""
    n = process_count()
    return -(-int(rows) // n) * n


class ProcessLost(RuntimeError):
    """Another process of a multi-process run stopped answering in an exchange (it ended: Ctrl-C, an
    error or a kill, before it got there), or never reached a line-up in time."""


def _exchange(fn):
    """fn, a host-side exchange between processes, with JAX's error for a process that never came
    (gloo's DEADLINE_EXCEEDED after 30 s, the coordinator UNAVAILABLE) or went away during it
    (gloo's "Connection reset by peer", raised as a ValueError) said as ProcessLost: which process
    waited, in what, and where to look."""
    @functools.wraps(fn)
    def exchange(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (jax.errors.JaxRuntimeError, ValueError) as err:
            if jax.process_count() == 1 or (not isinstance(err, jax.errors.JaxRuntimeError) and
                                            "Gloo" not in str(err)):
                raise
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            left = "went away during it" if "Connection reset" in first else "never came"
            raise ProcessLost(f"process {jax.process_index()} of {jax.process_count()} waited for the others in an "
                              f"exchange ({fn.__name__}) and one of them {left} (JAX: {first}). It ended or was "
                              f"stopped (Ctrl-C, an error, a kill) before getting there: its own output says why. "
                              f"Start every process again (with --resume / resume=True where a run directory "
                              f"holds checkpoints).") from err
    return exchange


_LINE_UPS = itertools.count()  # (every process counts its line-ups alike: the n-th of each meet)
STOPPED = "vmaptune/stopped/"  # (the coordination service's key-value store: process -> why it stopped)


def _coordination():
    """JAX's distributed state: .client (the coordination service's; None in one process, or a
    runtime without one) and .process_id."""
    from jax._src import distributed as jax_distributed  # (JAX's own multi-process tests wait through it)

    return jax_distributed.global_state


def line_up(where: str) -> None:
    """Waits until every process got to `where`, up to the join's initialization_timeout (300 s by
    default), through JAX's coordination service; a process that stopped on an error (it says so
    there) ends the wait at once. A collective is no place to wait: gloo gives up on a process after
    30 s, so one that reached a search later (slower to load its data, colder compiles) was taken
    for one that had ended. No-op in one process."""
    client = _coordination().client if jax.process_count() > 1 else None
    if client is None:
        return
    me, count, timeout = jax.process_index(), jax.process_count(), _GIVEN.get("initialization_timeout", 300)
    here = f"vmaptune/line-up/{next(_LINE_UPS)}/"
    started, pause = time.monotonic(), 0.005
    try:
        client.key_value_set(f"{here}{me}", where)
        while True:  # (arrivals first: a process that arrived and then stopped still arrived)
            arrived = client.key_value_dir_get(here)
            if len(arrived) >= count:
                elsewhere = sorted((int(key.rsplit("/", 1)[-1]), at) for key, at in arrived if at != where)
                if elsewhere:  # (a barrier one process skipped pairs with another's next line-up)
                    raise ValueError(f"process {me} of {count} is at {where}, and process {elsewhere[0][0]} at "
                                     f"{elsewhere[0][1]}: every process must reach each vt.tune and each "
                                     f"vt.distributed.barrier(...) in the same order (a barrier under `if "
                                     f"vt.distributed.is_primary():` pairs with another process's next one).")
                return
            stopped = client.key_value_dir_get(STOPPED)
            if stopped:
                who = ", ".join(f"process {key.rsplit('/', 1)[-1]} ({why})" for key, why in sorted(stopped)[:3])
                raise ProcessLost(f"process {me} of {count} waited at {where} for the others, and {who} stopped "
                                  f"before getting there: its own output says why. Start every process again (with "
                                  f"--resume / resume=True where a run directory holds checkpoints).")
            if time.monotonic() - started > timeout:
                raise ProcessLost(f"process {me} of {count} waited {timeout} s at {where} and not every process "
                                  f"came. One is later than that (loading its data, compiling: "
                                  f"vt.distributed.initialize(initialization_timeout=...) waits longer) or ended "
                                  f"without a word (killed): its own output says which. Start every process again "
                                  f"(with --resume / resume=True where a run directory holds checkpoints).")
            time.sleep(pause)
            pause = min(2 * pause, 0.2)
    except jax.errors.JaxRuntimeError as err:  # (the service itself gone: process 0 ended)
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise ProcessLost(f"process {me} of {count} waited at {where} for the others and lost JAX's coordination "
                          f"service (JAX: {first}): process 0 ended or was stopped; its own output says why.") from err


def _say_stopped(why: str) -> None:
    """Tells the other processes, through the coordination service, that this one stops (at its
    exit, or SIGTERM's; `why`: the error that stopped it, else 'ended'): one waiting in line_up
    stops at once instead of at its timeout."""
    state = _coordination()  # (not jax.process_index(): at an exit before anything used JAX, it would start
    if state.client is None:  # the backend, which waits for the other processes)
        return
    try:
        state.client.key_value_set(f"{STOPPED}{state.process_id}", why, allow_overwrite=True)
    except Exception:  # noqa: BLE001 (the service gone too: the others learn it from JAX)
        pass


@_exchange
def to_host(tree):
    """A device pytree as numpy, gathered from every process when its arrays span several (every
    process gets the whole arrays). PRNG keys come back as their raw uint32 data."""
    def raw(leaf):
        if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(leaf)
        return leaf
    tree = jax.tree.map(raw, tree)
    if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in jax.tree.leaves(tree)):
        from jax.experimental import multihost_utils

        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
    return jax.tree.map(np.asarray, jax.device_get(tree))


@_exchange
def agree(value):
    """Process 0's `value` (a number or array) in every process: for choices a process makes from
    its own clock (the cost model's timings), which must not differ between processes."""
    if process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    out = multihost_utils.broadcast_one_to_all(np.asarray(value))
    return out.item() if np.ndim(out) == 0 and not isinstance(value, np.ndarray) else np.asarray(out)


def agreed_time() -> float:
    """Process 0's time.time() (to the millisecond) in every process: when a run started, which
    names its default Optuna study, must not differ with the hosts' clocks (or a second's tick
    between processes). Sent as int32s (a float32 would round it): milliseconds in three 16-bit parts."""
    now = round(time.time(), 3)
    if process_count() == 1:
        return now
    millis = round(now * 1000)
    parts = agree(np.asarray([(millis >> shift) & 0xFFFF for shift in (32, 16, 0)], np.int32))
    return ((int(parts[0]) << 32) + (int(parts[1]) << 16) + int(parts[2])) / 1000


@_exchange
def smallest(value: float) -> float:
    """The smallest of every process's `value` (itself in one process)."""
    if process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return type(value)(np.min(multihost_utils.process_allgather(np.asarray(value))))


@_exchange
def check_same_everywhere(facts: dict[str, str], fix: str, hints: dict[str, str] | None = None) -> None:
    """Raises, in every process, when the processes' `facts` (name -> text) differ; the error
    names each fact that differs from process 0's and both values, then `fix`, and hints[name]
    for each named fact that differs. Every process must run the same search: one that differs
    would fail later inside a collective with an error about sizes."""
    if jax.process_count() == 1:
        return
    line_up("the start of a search (vt.tune)")  # (its first exchange: a late process is waited for, not lost)
    devices = np.bincount([d.process_index for d in jax.devices()], minlength=jax.process_count())
    if len(set(devices.tolist())) > 1:  # (known to every process, and collectives would fail on it)
        raise ValueError(f"every process must show the same number of devices; they show {devices.tolist()} "
                         f"(process 0 first). Set the same XLA_FLAGS / {CPU_DEVICES_ENV} (or cpu_devices=) in "
                         f"every process.")
    import hashlib
    import json

    from jax.experimental import multihost_utils

    blob = json.dumps(facts, sort_keys=True).encode()
    digests = multihost_utils.process_allgather(np.frombuffer(hashlib.sha256(blob).digest(), np.uint8))
    differ = [i for i in range(len(digests)) if not np.array_equal(digests[i], digests[0])]
    if not differ:
        return
    # every process's facts to every process, so each error (process 0's too) names the differences
    size = int(np.max(multihost_utils.process_allgather(np.asarray(len(blob), np.int64))))
    mine = np.zeros(size, np.uint8)
    mine[:len(blob)] = np.frombuffer(blob, np.uint8)
    everyone = [json.loads(bytes(row).rstrip(b"\0")) for row in np.asarray(multihost_utils.process_allgather(mine))]
    zero, shown = everyone[0], differ[:3]
    lines = "".join(f"\n  {k}: process 0 has {zero.get(k)!r}, process {i} has {everyone[i].get(k)!r}"
                    for i in shown for k in sorted(set(zero) | set(everyone[i])) if zero.get(k) != everyone[i].get(k))
    more = f"\n  (and {len(differ) - len(shown)} more processes)" if len(differ) > len(shown) else ""
    told = "".join(f" {hint}" for name, hint in (hints or {}).items()
                   if any(zero.get(name) != everyone[i].get(name) for i in differ))
    raise ValueError(f"the processes of this run differ: process(es) {differ} from process 0{lines}{more}\n{fix}{told}")


def in_process_0(fn, said_elsewhere: str, error: type[Exception] = RuntimeError):
    """fn() in process 0 alone (in the one process of one) -> its value there, None in the others.
    Its error stops every process together: process 0 raises it, the others error(said_elsewhere),
    instead of going on to wait for process 0 in their next exchange. Called in every process."""
    value, failed = None, None
    if is_primary():
        try:
            value = fn()
        except Exception as err:  # noqa: BLE001 (raised below, once every process knows)
            failed = err
    if any_process(failed is not None):
        if failed is not None:
            raise failed
        raise error(said_elsewhere)
    return value


def any_process(flag: bool) -> bool:
    """True in every process when `flag` is true in any (the flag itself in one process)."""
    return bool(flag) if process_count() == 1 else smallest(0.0 if flag else 1.0) == 0.0


def raise_if_interrupted() -> None:
    """At a chunk's start: a signal held for it (interrupts.held_until_chunk_end) or a time budget
    spent stops the run here, in every process together when there are several (Terminated where
    SIGTERM came, KeyboardInterrupt for Ctrl-C, else TimeBudgetSpent: a signal in any process
    decides for all), so they save the run the same way and end."""
    processes = process_count()
    if processes == 1:
        if interrupts.pending():
            interrupts.raise_for(interrupts.take_pending())
        if interrupts.budget_spent():
            raise interrupts.TimeBudgetSpent()
        interrupts.chunk_started()
        return
    # one number per process, the smallest deciding: a signal as signal * processes + the process
    # that got it (so the others can say which), below a spent budget, below nothing
    budget, nothing = 65 * processes, 65 * processes + 1  # (signal numbers are below 65)
    signum = interrupts.pending()
    why = int(smallest(float(signum * processes + jax.process_index() if signum else
                             budget if interrupts.budget_spent() else nothing)))
    if why < budget:
        if not signum:  # (the process that got it said so; this one's log would show no cause)
            name = "SIGTERM" if why // processes == signal.SIGTERM else "Ctrl-C"
            sys.stderr.write(f"\nvmaptune: {name} in process {why % processes}: every process stops after the "
                             f"chunk in progress, this one ({jax.process_index()}) too.\n")
        interrupts.raise_for(interrupts.take_pending())
    if why == budget:
        raise interrupts.TimeBudgetSpent()
    interrupts.chunk_started()


def barrier(name: str) -> None:
    """Waits until every process got here (no-op in one process), as long as line_up waits."""
    line_up(f"vt.distributed.barrier({name!r})")


# -- devices -----------------------------------------------------------------------------------------------
def _cpu_count_setting() -> str:
    """The setting that decides the CPU device count here: a count JAX is given itself
    (XLA_FLAGS, JAX_NUM_CPU_DEVICES) wins over VMAPTUNE_CPU_DEVICES, so that one is named."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return "XLA_FLAGS' --xla_force_host_platform_device_count (it decides the count here)"
    if os.environ.get("JAX_NUM_CPU_DEVICES"):
        return "JAX_NUM_CPU_DEVICES (it decides the count here)"
    return CPU_DEVICES_ENV


def check_devices(devices: Any) -> int:
    """The `devices` argument of vt.tune -> how many devices a program may split its population
    over (None: every device of JAX's default backend, every process's)."""
    available, processes = len(usable_devices()), process_count()
    if devices is None:
        return available
    if isinstance(devices, bool) or not isinstance(devices, numbers.Integral) or devices < 1:
        raise ValueError(f"devices must be None (all {available}) or an integer >= 1, got {devices!r}.")
    devices = int(devices)
    if devices > available:
        raise ValueError(f"devices={devices}, but JAX sees {available} device(s): {usable_devices()}. Use "
                         f"devices <= {available}; on a CPU, set {_cpu_count_setting()} before importing vmaptune.")
    if devices % processes:
        raise ValueError(f"devices={devices} must be a multiple of the {processes} processes (each process trains "
                         f"its share of the population on its own devices); use devices={devices // processes * processes or processes} or None.")
    return devices


def check_member_block(block: Any) -> int | None:
    """The `member_block` argument of vt.tune: None (automatic), 0 (whole population per step) or
    an integer >= 1."""
    if block is None:
        return None
    if isinstance(block, bool) or not isinstance(block, numbers.Integral) or block < 0:
        raise ValueError(f"member_block must be None (automatic), 0 (no blocks) or an integer >= 1, got {block!r}.")
    return int(block)


def default_member_block(bytes_per_member: int, platform: str | None = None) -> int:
    """Members per block: on a CPU, as many as fit one buffer in BLOCK_BYTES (a power of two, at
    least 2); 0 (no blocks) on accelerators."""
    platform = jax.default_backend() if platform is None else platform
    if platform != "cpu":
        return 0
    fit = max(BLOCK_BYTES // max(int(bytes_per_member), 1), 2)
    return 1 << int(math.floor(math.log2(fit)))


def largest_divisor(n: int, at_most: int) -> int:
    """The largest divisor of n that is <= at_most (>= 1)."""
    for d in range(min(n, max(at_most, 1)), 0, -1):
        if n % d == 0:
            return d
    return 1


def mesh_devices(population: int, devices: int) -> list:
    """The devices a population of `population` rows splits over: the most (<= `devices`) that
    divide it evenly; with several processes, the same number from each process (rows are a
    multiple of the process count, `whole_rows`)."""
    processes, every = process_count(), usable_devices()
    if processes == 1:
        return every[:largest_divisor(population, min(devices, len(every)))]
    if population % processes:
        raise ValueError(f"a population of {population} rows cannot split over {processes} processes "
                         "(use whole_rows).")
    local = len(jax.local_devices())
    per_process = largest_divisor(population // processes, max(min(devices // processes, local), 1))
    by_process: dict[int, list] = {}
    for device in jax.devices():
        by_process.setdefault(device.process_index, []).append(device)
    return [d for p in sorted(by_process) for d in by_process[p][:per_process]]


def mesh_size(population: int, devices: int) -> int:
    """How many devices a population of `population` rows splits over, given `devices` (1 for no
    rows; in one process the devices are not capped by those JAX has, for layout planning)."""
    if not population:
        return 1
    if process_count() == 1:
        return largest_divisor(population, devices)
    return len(mesh_devices(population, devices))


def population_mesh(devices: int, population: int) -> Mesh | None:
    """A 1-D mesh over `mesh_devices`, or None for one device."""
    chosen = mesh_devices(population, devices)
    if len(chosen) == 1:
        return None
    return Mesh(np.asarray(chosen), (AXIS,))


def shard_population_map(fn, mesh: Mesh, in_specs, out_specs):
    """shard_map without replication checks (each device runs `fn` on its own members; the few
    outputs declared whole, like the epoch counter, are equal on every device by construction)."""
    if hasattr(jax, "shard_map"):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map  # jax < 0.7

    return shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def place(tree, mesh: Mesh | None, specs):
    """Puts a pytree where a program over `mesh` reads it, leaf by leaf as `specs` (a pytree of
    PartitionSpec like it, or one spec for every leaf) says; on one device without a mesh."""
    try:
        return _per_leaf(lambda x, spec: _put(x, _sharding(mesh, spec)), tree, specs)
    except AssertionError as err:  # (JAX compares a host value every process gives, and says only its type)
        if "is not the same on each process" not in str(err):
            raise
        raise ValueError("the processes of this run computed different values for the population (JAX found a "
                         "value placed on every process's devices not the same on each): a strategy, Decision or "
                         "callback of yours must draw only from the key it is given (jax.random, or numpy seeded "
                         "from it), never from numpy's or Python's own random state or the clock, so every process "
                         "computes the same.") from None


def placed_shapes(tree, mesh: Mesh | None, specs):
    """What `place(tree, mesh, specs)` gives, as shapes, dtypes and shardings only
    (jax.ShapeDtypeStruct): enough to lower a program for arrays not placed yet, or not made yet
    (a `jax.eval_shape` of them)."""
    return _per_leaf(lambda x, spec: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=_sharding(mesh, spec),
                                                          weak_type=getattr(x, "weak_type", False)), tree, specs)


def _per_leaf(fn, tree, specs):
    if isinstance(specs, PartitionSpec):
        return jax.tree.map(lambda x: fn(x, specs), tree)
    return jax.tree.map(fn, tree, specs)


def _sharding(mesh: Mesh | None, spec: PartitionSpec):
    # (this process's first device: a mesh-less population is one process's, and jax.devices()[0]
    # is process 0's device in every process)
    return SingleDeviceSharding(jax.local_devices()[0]) if mesh is None else NamedSharding(mesh, spec)


def _put(x, sharding):
    if sharding.is_fully_addressable or not isinstance(x, jax.Array):
        return jax.device_put(x, sharding)
    key = jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
    if not x.is_fully_addressable and x.sharding.device_set == sharding.device_set:  # over every process's devices
        # (JAX's device_put reshards a key array only within one process: a program does it here)
        return jax.jit(_same, out_shardings=sharding)(x) if key else jax.device_put(x, sharding)
    # An array on this process's devices, or over another set of every process's devices (the
    # smaller mesh of members left once others stopped), cannot go to the target's devices directly
    # (JAX reshards between processes only within one set of devices, and takes host values the
    # same in every process): its host copy can (gathered from every process where it spans them);
    # a key array's raw data, wrapped again there.
    host = to_host(x)
    if key:
        return jax.random.wrap_key_data(jax.device_put(host, sharding), impl=jax.random.key_impl(x))
    return jax.device_put(host, sharding)


def _same(x):
    return x
