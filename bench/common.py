"""What every bench script shares: the machine's description and writing the JSON figures."""

from __future__ import annotations

import json
import os
import platform

import jax


def machine() -> str:
    """e.g. 'x86_64, 2 cores, 2 x cpu, jax 0.10.2' (JAX's devices: the GPU's name on one)."""
    devices = jax.devices()
    return (f"{platform.machine()}, {os.cpu_count()} cores, {len(devices)} x {devices[0].device_kind}, "
            f"jax {jax.__version__}")


def write_json(path: str | None, figures: dict) -> None:
    """Writes the figures to `path` (folders created), if a path was given."""
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(figures, f, indent=2)


def training_seconds(program, hp, arrays, population: int, epochs: int, repeats: int = 2,
                     chunk_epochs: int | None = None) -> float:
    """Fastest of `repeats` timed trainings of a fresh population for `epochs` in chunks of
    `chunk_epochs` (default: one chunk), after a warm-up (compiles excluded; initialisation outside
    the timing)."""
    import time

    import jax.numpy as jnp

    from vmaptune import engine

    def once():
        run = engine.PopulationRun(program, hp, arrays, member_ids=jnp.arange(population), seed=0, epochs=epochs)
        jax.block_until_ready(run.state)
        t = time.perf_counter()
        run.train(epochs, chunk_epochs=chunk_epochs or epochs)
        jax.block_until_ready(run.state.params)
        return time.perf_counter() - t

    once()
    return min(once() for _ in range(repeats))
