"""Memory planning: how many members one program can train at once within a memory budget.

XLA's own memory analysis of the compiled training chunk (arguments, outputs and temporaries,
less the donated buffers it reuses) is read at two population sizes; the difference is one
member's share, the rest is fixed (the data, the shared counters). A population that does not fit
trains as micro-populations of the largest size that does, one after the other: members share
nothing, so the results are those of one population.

The budget is `vt.tune(max_memory=...)`, else on an accelerator 90 % of its free memory; on a CPU
without max_memory nothing is planned (host memory is the operating system's to manage).
"""

from __future__ import annotations

import re
from typing import Mapping

import jax
import jax.numpy as jnp

from vmaptune import engine
from vmaptune.distributed import smallest
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
    if isinstance(value, (int, float)) and value > 0:
        return int(value)
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", value) if isinstance(value, str) else None
    if match and match.group(2).lower() in UNITS and float(match.group(1)) > 0:
        return int(float(match.group(1)) * UNITS[match.group(2).lower()])
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


def training_bytes(program: Program, data: engine.DataArrays, hp_one: Mapping[str, jax.Array], rows: int) -> int:
    """Bytes one device needs to train `rows` members one epoch (XLA's memory analysis of the
    compiled chunk; compiles it, runs nothing)."""
    program = program.replace(devices=1)
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
    fit = (budget - fixed) // per_member
    if fit < 1:
        raise ValueError(f"max_memory={budget} bytes cannot hold one member: training one needs about {one} bytes "
                         f"({fixed} fixed, {per_member} per member); raise max_memory, or shrink the model or "
                         "batch_size.")
    return int(fit) * devices
