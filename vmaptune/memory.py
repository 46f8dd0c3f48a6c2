"""Memory planning: how many members one program can train at once within a memory budget.

XLA's own memory analysis of the compiled training chunk (arguments, outputs and temporaries,
less the donated buffers it reuses) is read at two population sizes; the difference is one
member's share, the rest is fixed (the data, the shared counters). A population that does not fit
trains as micro-populations of the largest size that does, one after the other: members share
nothing, so the results are those of one population. A refit is planned the same way, on its own
rows (train + validation).

The budget is `vt.tune(max_memory=...)`, else on an accelerator 90 % of its free memory; on a CPU
without max_memory nothing is planned (host memory is the operating system's to manage).
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import re
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune import engine
from vmaptune.distributed import mesh_size, process_count, smallest, this_process_alone
from vmaptune.program import Program

UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
         "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
FREE_SHARE = 0.9  # of an accelerator's free memory, the rest left to XLA's own workspace


def parse_bytes(name: str, value) -> int | None:
    """None, an int of bytes, or text like '512MB' / '2 GiB' -> bytes."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name}={value!r}: give bytes as an integer or text such as '512MB' or '2GiB'.")
    if isinstance(value, numbers.Integral) and value >= 1:  # (before float(): 10**400 has none)
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and value >= 1:  # (0.5 bytes would be 0)
        return int(value)
    number = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"  # (2, 2.5, .5, 1e9)
    match = re.fullmatch(rf"\s*({number})\s*([a-zA-Z]*)\s*", value) if isinstance(value, str) else None
    if match and match.group(2).lower() in UNITS:
        size = float(match.group(1)) * UNITS[match.group(2).lower()]  # (inf past float's range, not an error)
        if math.isfinite(size) and size >= 1:
            return int(size)
    raise ValueError(f"{name}={value!r}: give a positive number of bytes, e.g. {name}=2_000_000_000 or "
                     f"{name}='2GB' (units: {', '.join(u for u in UNITS if u)}).")


def device_budget(max_memory: int | None) -> int | None:
    """Bytes one device may use: max_memory, else FREE_SHARE of an accelerator's free memory, else
    None (a CPU: no planning)."""
    if max_memory is not None:
        return max_memory
    device = jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    free = int(FREE_SHARE * (stats["bytes_limit"] - stats.get("bytes_in_use", 0))) if stats and "bytes_limit" in stats \
        else -1
    free = smallest(free)  # (several processes) every process must split its populations the same way
    return None if free < 0 else free


def host_memory() -> int | None:
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def state_bytes(program: Program, hp_one: Mapping[str, jax.Array], rows: int) -> int:
    """Bytes of `rows` members' training state (weights, optimizer and model state, best weights):
    a lower bound on what training them takes (shapes only: traced, nothing compiled or allocated)."""
    hp = {k: jnp.broadcast_to(jnp.asarray(v), (rows,)) for k, v in hp_one.items()}
    controls = program.controls(hp, 1, 1)  # (the schedule's length shapes nothing)
    state = jax.eval_shape(lambda: engine._init(program, hp, controls, jnp.arange(rows), jax.random.key(0),
                                                jnp.ones(rows, bool)))
    return sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(state))


#: Bytes of training state per forward FLOP of a row, well above what any optimizer keeps (a weight
#: is 2 FLOPs; weights, best weights and two moments in float32 are 8 bytes per FLOP).
STATE_BYTES_PER_FLOP = 16
#: Training's peak memory as a multiple of the state (gradients, updates, the old state while the new
#: is written, temporaries): measured 3.5 for an embedding model (9.1 GB resident for 2.6 GB of state).
PEAK_PER_STATE = 3


@functools.lru_cache(maxsize=64)
def _member_state_bytes(program: Program, hp_one: tuple) -> int:
    """One member's state bytes, once per program (a search of the same model traces nothing new)."""
    return state_bytes(program, {k: np.asarray(value, dtype) for k, dtype, value in hp_one}, 1)


def _bytes_text(n: int) -> str:
    """n bytes as max_memory text, rounded down to whole GB, MB or kB (advice never above n)."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n // size}{unit}"
    return str(max(int(n), 1))


def check_host_memory(program: Program, hp_one: Mapping[str, jax.Array], rows: int,
                      max_memory: int | None = None, in_parts: bool = True) -> None:
    """On a CPU without max_memory nothing is planned, but a population whose state alone exceeds
    the machine's memory would be killed, or swap for hours, once it runs (XLA may abort the
    process outright): refused before anything compiles, with its size. With max_memory, `rows` is
    the micro-population it planned, all devices together: max_memory is per device, and a CPU's
    devices (one per core) share one RAM. One member's state comes from a trace of the program's
    initialisation, skipped where the model's FLOPs bound the state far below the machine's memory.
    The advised max_memory is half the RAM over the program's devices; in_parts=False (a strategy
    that copies members between rows, PBT, trains its population as one program): a smaller one.
    Over several processes each host holds its process's share of the rows and devices, and the
    smallest host's memory decides for all (every process refuses, or none: one refusing alone would
    leave the others waiting for it)."""
    if jax.local_devices()[0].platform != "cpu":
        return
    ram, processes = host_memory(), process_count()
    if processes > 1:
        ram = int(smallest(float(-1 if ram is None else ram)))
    if ram is None or ram < 0:
        return
    total, rows = rows, -(-rows // processes)
    flops = program.model.padded_row_flops()  # (1.0 where the model does not know its own)
    if flops > 1.0 and rows * flops * STATE_BYTES_PER_FLOP * PEAK_PER_STATE < ram / 2:
        return
    one = _member_state_bytes(program, tuple((k, np.asarray(v).dtype.str, np.asarray(v).item())
                                             for k, v in sorted(hp_one.items())))
    need = rows * one * PEAK_PER_STATE
    if need <= ram:
        return
    devices = max(program.devices // processes, 1)  # (this process's)
    share = ram // 2 // devices  # (every device of a micro-population may hold max_memory at once)
    shared = f"max_memory is per device; these {devices} CPU devices share this machine's RAM"
    if not in_parts and one * PEAK_PER_STATE * 2 < ram:  # (max_memory would only split what must stay whole)
        fix = (f"lower the population to about {max(int(ram // 2 // (one * PEAK_PER_STATE)), 1) * processes} rows: "
               f"this strategy copies members between rows, so its population trains as one program, never in parts")
    elif one * PEAK_PER_STATE <= share:
        if max_memory is not None:  # (its micro-populations shrink about as it does: to half the RAM)
            share = min(share, max_memory * ram // 2 // need)
        fix = (f"{'lower' if max_memory is not None else 'give'} max_memory (e.g. max_memory='{_bytes_text(share)}'"
               f"{': ' + shared if devices > 1 else ''}) to train it in parts that fit"
               f"{'' if max_memory is not None else ', or lower the population'}")
    elif devices > 1 and one * PEAK_PER_STATE * 2 < ram:  # (a member needs more than a device's share: one device)
        fix = (f"give devices={processes} and max_memory='{_bytes_text(ram // 2)}' to train it in parts that fit on "
               f"one device{' per process' if processes > 1 else ''} ({shared}, and one member needs more than a "
               f"device's share of half of it)")
    else:
        fix = "shrink the model: the largest width or depth in the space sizes every member"
    if max_memory is None:
        what = f"training {total} member{'s' if total != 1 else ''} of this model needs"
    else:
        spread = mesh_size(total, program.devices)  # (its micro-populations: a multiple of the processes)
        what = (f"max_memory={max_memory} bytes per device plans micro-populations of {total} rows over {spread} "
                f"device{'s' if spread != 1 else ''}, which need")
    if processes > 1:  # (what one host holds)
        what += f", for the {rows} rows of each of the {processes} processes,"
    raise ValueError(f"{what} about {need / 1e9:.3g} GB ({PEAK_PER_STATE} times their weights and optimizer state, "
                     f"{one / 1e9:.3g} GB each), more than {'this machine' if processes == 1 else 'the smallest host'}'s "
                     f"{ram / 1e9:.3g} GB of memory: {fix}.")


def training_bytes(program: Program, data: engine.DataArrays, hp_one: Mapping[str, jax.Array], rows: int) -> int:
    """Bytes one device needs to train `rows` members one epoch (XLA's memory analysis of the
    compiled chunk; compiles it, runs nothing). In a multi-process run each process measures on its
    own first device (a one-row program cannot span the processes)."""
    with this_process_alone():
        return _training_bytes(program.replace(devices=1), data, hp_one, rows)


def _training_bytes(program: Program, data: engine.DataArrays, hp_one: Mapping[str, jax.Array], rows: int) -> int:
    hp = {k: jnp.broadcast_to(jnp.asarray(v), (rows,)) for k, v in hp_one.items()}
    controls = program.controls(hp, data.n_train, 1)
    key = jax.random.key(0)
    # the plain function: init_population's compiler options are only allowed on a top-level jit
    state = jax.eval_shape(lambda: engine._init(program, hp, controls, jnp.arange(rows), key, jnp.ones(rows, bool)))
    analysis = engine.train_chunk.lower(program, state, hp, controls, data, key, 1).compile().memory_analysis()
    if analysis is None:  # a backend without the analysis: assume nothing is reused
        return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state)) * 4
    return int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes
               - analysis.alias_size_in_bytes)


def members_that_fit(program: Program, data: engine.DataArrays, hp_one: Mapping[str, jax.Array], budget: int,
                     devices: int = 1) -> int:
    """The most members one program can train within `budget` bytes per device (over `devices`).
    Raises when not even one member fits."""
    one, two = training_bytes(program, data, hp_one, 1), training_bytes(program, data, hp_one, 2)
    per_member = max(two - one, 1)
    fixed = max(one - per_member, 0)
    fit = smallest(float((budget - fixed) // per_member))  # (several processes: all split alike, or all refuse)
    if fit < 1:
        raise ValueError(f"max_memory={budget} bytes cannot hold one member: training one needs about {one} bytes "
                         f"({fixed} fixed, {per_member} per member); raise max_memory, or shrink the model or "
                         "batch_size.")
    return int(fit) * devices


def rows_within(rows: int, fit: int, devices: int) -> int:
    """Rows per micro-population under a memory budget of fit // devices members per device (`fit`
    is a multiple of `devices`). The rows split over the devices that divide them
    (distributed.mesh_size), maybe fewer than `devices`: 8 rows on 3 devices take 2, 4 each, past a
    budget of 3 each. So: the fewest rows from `rows` up to `fit` that split within the budget (8
    members in 9 rows, 3 on each device, one padded), else the most below `rows` that do. Over
    several processes, a multiple of their count (each holds the same share: distributed.whole_rows)."""
    per_device, step = max(fit // devices, 1), process_count()

    def within(size: int) -> bool:
        return size % step == 0 and -(-size // mesh_size(size, devices)) <= per_device

    for size in range(rows, fit + 1):  # (devices * ceil(rows / devices) is one: a few steps at most)
        if within(size):
            return size
    return next(size for size in range(min(rows, fit), 0, -1) if within(size))  # (fit itself is one)
