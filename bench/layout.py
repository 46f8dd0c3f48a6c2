"""What each part of the population layout buys: devices and member blocks, one at a time.

The same P members (digits, MLP 64-128-128-10, batch 64, SGD with momentum, dropout, weight
decay) trained with four layouts of one program: one device stepping all P members at once (the
engine before issue 7's layout work), one device in member blocks, the population split over all
devices, and both (the default). Layouts alternate for `--rounds` rounds and each keeps its fastest
time, so a slow spell of a shared machine does not land on one layout only. Final validation
losses are compared with the first layout's (they differ only by float rounding).

    python bench/layout.py --population 256 --epochs 10 --json bench/out/layout_256.json
"""

from __future__ import annotations

import json

import jax
import numpy as np

from common import alternating_parser, fastest_alternating, final_validation, machine, training_seconds, write_json
from population_vs_sequential import bench_members, bench_program


def main():
    args = alternating_parser(__doc__).parse_args()
    p, epochs = args.population, args.epochs
    data, hp, arrays = bench_members(p)
    everything = len(jax.devices())
    layouts = {"1 device, all members per step": (1, 0), "1 device, member blocks": (1, None),
               f"{everything} devices, all members per step": (everything, 0),
               f"{everything} devices, member blocks (default)": (everything, None)}
    programs = {name: bench_program(data, p, epochs, devices=devices, member_block=block)
                for name, (devices, block) in layouts.items()}
    best = fastest_alternating({name: lambda program=program: training_seconds(program, hp, arrays, p, epochs, repeats=1)
                                for name, program in programs.items()}, args.rounds)
    losses = {name: final_validation(program, hp, arrays, p, epochs)["val_loss"] for name, program in programs.items()}
    first = next(iter(layouts))
    base = best[first]
    rows = []
    for name, program in programs.items():
        stable = np.isfinite(losses[first]) & np.isfinite(losses[name])
        rows.append({"layout": name, "devices": program.devices, "member_block": program.member_block,
                     "seconds": round(best[name], 3), "speedup": round(base / best[name], 2),
                     "median_val_loss_difference": float(np.median(np.abs(losses[name] - losses[first])[stable]))})
        print(json.dumps(rows[-1]))
    write_json(args.json, {"population": p, "epochs": epochs, "rounds": args.rounds, "machine": machine(),
                           "rows": rows})


if __name__ == "__main__":
    main()
