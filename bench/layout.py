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

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

import vmaptune as vt
from common import machine, training_seconds, write_json
from population_vs_sequential import BATCH, SPACE
from vmaptune import engine
from vmaptune.tune import _prepare


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    p, epochs = args.population, args.epochs
    hp = SPACE.numeric(SPACE.sample(jax.random.key(0), p))
    arrays = engine.data_arrays(data)
    everything = len(jax.devices())
    layouts = {"1 device, all members per step": (1, 0), "1 device, member blocks": (1, None),
               f"{everything} devices, all members per step": (everything, 0),
               f"{everything} devices, member blocks (default)": (everything, None)}
    programs = {}
    for name, (devices, block) in layouts.items():
        programs[name], _ = _prepare(vt.MLP(hidden=2, units=128), SPACE, data, vt.RandomSearch(p), epochs=epochs,
                                     seed=0, metric=None, batch_size=BATCH, chunk_epochs=epochs, shared_order=True,
                                     devices=devices, member_block=block)
    best = {name: float("inf") for name in layouts}
    for _ in range(args.rounds):
        for name, program in programs.items():
            best[name] = min(best[name], training_seconds(program, hp, arrays, p, epochs, repeats=1))
    losses = {}
    for name, program in programs.items():
        _, curves = engine.run_population(program, hp, arrays, member_ids=jnp.arange(p), seed=0, epochs=epochs,
                                          chunk_epochs=epochs)
        losses[name] = curves["val_loss"][:, -1]
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
