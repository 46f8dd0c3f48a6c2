"""What a member block in which nobody trains costs, against a busy one (costs.IDLE_SHARE, which
prices filler rows in bucketing="auto"'s plans and packing.py's layouts).

The digits MLP (64-128-128-10, adam, batches of 64), one chunk per epoch as vt.tune trains:
seconds per epoch of (a) `rows` rows all training, (b) the same rows with only `busy` members
still in the population (the others packed out: regrouped into the fewest blocks, no new
program), (c) `busy` rows alone. An idle row costs (b - c) / (rows - busy), a busy one a / rows;
their ratio is the idle share. Each figure is the median of `repeats` timings of `epochs`
epochs, compiles excluded.

    python bench/idle_blocks.py --json bench/out/idle_blocks.json
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

import vmaptune as vt
from common import machine, write_json
from vmaptune import engine
from vmaptune.decisions import Decision
from vmaptune.population import PopulationRun

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-4, 1e-3), optimizer=vt.Fixed("adam"))


def seconds_per_epoch(program, arrays, rows: int, busy: int, epochs: int, repeats: int) -> float:
    hp = SPACE.numeric(SPACE.sample(jax.random.key(0), rows))
    run = PopulationRun(program, hp, arrays, member_ids=np.arange(rows), epochs=(repeats + 1) * epochs + 1, rows=rows,
                        packing="never")
    if busy < rows:
        run.apply(Decision(keep=np.arange(busy)))
    run.train(1)  # compiles
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run.train(epochs)
        times.append(time.perf_counter() - started)
    return float(np.median(times)) / epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--busy", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    program = vt.build_program(vt.MLP(hidden=2, units=128), SPACE, data, batch_size=64)
    arrays = engine.data_arrays(data)
    full = seconds_per_epoch(program, arrays, args.rows, args.rows, args.epochs, args.repeats)
    few = seconds_per_epoch(program, arrays, args.rows, args.busy, args.epochs, args.repeats)
    alone = seconds_per_epoch(program, arrays, args.busy, args.busy, args.epochs, args.repeats)
    idle_row = (few - alone) / (args.rows - args.busy)
    out = {"rows": args.rows, "busy": args.busy, "member_block": program.member_block,
           "seconds_per_epoch": {"all_busy": round(full, 4), "few_busy": round(few, 4), "few_alone": round(alone, 4)},
           "idle_share": round(idle_row / (full / args.rows), 4), "machine": machine()}
    print(json.dumps(out, indent=2))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
