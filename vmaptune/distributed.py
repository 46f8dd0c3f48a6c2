"""Where a population trains: split over devices, and stepped in cache-sized blocks on a CPU.

Members never exchange anything during training, so two layouts are free to choose and only
change speed (bench/RESULTS.md has the measurements that set the defaults):

- Devices. The population axis is split over a 1-D mesh with `jax.shard_map`: each device trains
  P / n members of the same program and nothing crosses between devices. On a CPU this is what
  puts every core to work: XLA runs one batched matmul on one core, so a CPU shown to JAX as one
  device leaves the others idle. `configure_cpu_devices` (run when vmaptune is imported, while JAX
  has not started its backends) shows each core as a device.
- Member blocks. A step over all P members streams every weight, gradient and optimizer buffer
  through memory several times; on a CPU, stepping `block` members at a time (`lax.map` over
  blocks, `vmap` inside) keeps a block's buffers in cache. An accelerator wants the whole
  population in each op, so blocks are a CPU default only.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

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
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return 0
    if getattr(jax.config, "jax_num_cpu_devices", -1) != -1:  # set by the user (config or JAX_NUM_CPU_DEVICES)
        return 0
    if count == 1:
        return 0
    try:
        jax.config.update("jax_num_cpu_devices", int(count))
    except (RuntimeError, AttributeError):  # backends already running (or an old JAX): keep what JAX has
        return 0
    return int(count)


def check_devices(devices: Any) -> int:
    """The `devices` argument of vt.tune -> how many devices a program may split its population
    over (None: every device of JAX's default backend)."""
    available = len(jax.devices())
    if devices is None:
        return available
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices must be None (all {available}) or an integer >= 1, got {devices!r}.")
    if devices > available:
        raise ValueError(f"devices={devices}, but JAX sees {available} device(s): {jax.devices()}. Use "
                         f"devices <= {available}; on a CPU, set {CPU_DEVICES_ENV} before importing vmaptune.")
    return devices


def check_member_block(block: Any) -> int | None:
    """The `member_block` argument of vt.tune: None (automatic), 0 (whole population per step) or
    an integer >= 1."""
    if block is None:
        return None
    if isinstance(block, bool) or not isinstance(block, int) or block < 0:
        raise ValueError(f"member_block must be None (automatic), 0 (no blocks) or an integer >= 1, got {block!r}.")
    return block


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


def population_mesh(devices: int, population: int) -> Mesh | None:
    """A 1-D mesh over the largest number of devices (<= `devices`) that divides the population
    evenly, or None for one device."""
    n = largest_divisor(population, min(devices, len(jax.devices())))
    if n == 1:
        return None
    return Mesh(jax.devices()[:n], (AXIS,))


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
    if mesh is None:
        device = jax.devices()[0]
        return jax.tree.map(lambda x: jax.device_put(x, device), tree)
    if isinstance(specs, PartitionSpec):
        return jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, specs)), tree)
    return jax.tree.map(lambda x, s: jax.device_put(x, NamedSharding(mesh, s)), tree, specs)
