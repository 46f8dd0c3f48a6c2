"""What checkpoints cost: the demo search (digits, P = 256 MLPs, the demo's space) with and
without a run directory, and the time spent saving checkpoints as a share of the training time.

Two schedules: RandomSearch (a checkpoint after every round; mid-round ones at most once a minute)
and PBT (a checkpoint after every chunk: the whole population's parameters and optimizer state).

    python bench/resume_overhead.py --json bench/out/resume_overhead.json
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time

import vmaptune as vt
from common import machine, write_json
from vmaptune import checkpoint
from vmaptune.cli import DEMO_SPACE


def timed_saves():
    """Wraps Checkpoints.save to add up its seconds; returns the running total (a dict)."""
    total = {"seconds": 0.0, "saves": 0}
    save = checkpoint.Checkpoints.save

    def timed(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return save(self, *args, **kwargs)
        finally:
            total["seconds"] += time.perf_counter() - start
            total["saves"] += 1
    checkpoint.Checkpoints.save = timed
    return total


def run(strategy, epochs: int, run_dir: str | None):
    space = vt.Space.from_config(DEMO_SPACE)
    start = time.perf_counter()
    result = vt.tune(vt.MLP(), space, vt.load_dataset("digits"), strategy, epochs=epochs, progress=False,
                     run_dir=run_dir)
    return time.perf_counter() - start, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    total = timed_saves()
    out = {"machine": machine(), "population": args.population, "epochs": args.epochs, "schedules": {}}
    schedules = {"RandomSearch": lambda: vt.RandomSearch(population=args.population, rounds=args.rounds),
                 "PBT": lambda: vt.PBT(population=args.population, interval=min(2, max(args.epochs - 1, 1)))}
    for name, make in schedules.items():
        run(make(), args.epochs, None)  # compiles (both timed runs below reuse the programs)
        plain, _ = run(make(), args.epochs, None)
        total.update(seconds=0.0, saves=0)
        with tempfile.TemporaryDirectory() as tmp:
            saved, result = run(make(), args.epochs, tmp + "/run")
        row = {"seconds_without_run_dir": round(plain, 3), "seconds_with_run_dir": round(saved, 3),
               "checkpoint_seconds": round(total["seconds"], 3), "checkpoints": total["saves"],
               "checkpoint_share_of_run": round(total["seconds"] / saved, 4),
               "wall_overhead": round(saved / plain - 1, 4),
               "mid_round_seconds": importlib.import_module("vmaptune.tune").MID_ROUND_SECONDS}
        out["schedules"][name] = row
        print(name, row)
    write_json(args.json, out)


if __name__ == "__main__":
    main()
