"""What every bench script shares: the machine's description and writing the JSON figures."""

from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Callable

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

    import numpy as np

    from vmaptune.population import PopulationRun

    def once():
        run = PopulationRun(program, hp, arrays, member_ids=np.arange(population), seed=0, epochs=epochs)
        jax.block_until_ready(run.state)
        t = time.perf_counter()
        run.train(epochs, chunk_epochs=chunk_epochs or epochs)
        jax.block_until_ready(run.state.members.params)
        return time.perf_counter() - t

    once()
    return min(once() for _ in range(repeats))


def alternating_parser(doc: str, population: int = 256, epochs: int = 10, rounds: int = 3) -> argparse.ArgumentParser:
    """The arguments every A/B bench takes: --population, --epochs, --rounds, --json."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=population)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--rounds", type=int, default=rounds, help="alternations; each variant keeps its fastest")
    parser.add_argument("--json", default=None)
    return parser


def fastest_alternating(timers: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Runs each variant's timer in turn for `rounds` rounds and keeps each one's fastest seconds, so
    a slow spell of a shared machine does not land on one variant only."""
    best = {name: float("inf") for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer())
    return best


def final_validation(program, hp, arrays, population: int, epochs: int) -> dict:
    """Each member's validation loss and score after `epochs` (one chunk, seed 0): {name: (P,)}."""
    import numpy as np

    from vmaptune.population import PopulationRun

    run = PopulationRun(program, hp, arrays, member_ids=np.arange(population), seed=0, epochs=epochs)
    run.train(epochs, chunk_epochs=epochs)
    return {k: run.curves[k][:, -1] for k in ("val_loss", "val_score")}
