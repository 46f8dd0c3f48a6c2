"""What a mixed-optimizer population costs: under vmap every optimizer kind in the space computes
its update for every member, and each member keeps its own. Same population, same members' other
settings; only the set of kinds in the space changes. Timed after a warm-up, in one run.

    python bench/optimizer_branches.py --population 256 --epochs 3 --json bench/out/optimizer_branches.json
"""

from __future__ import annotations

import argparse
import json

import jax

import vmaptune as vt
from common import machine, training_seconds, write_json
from vmaptune import engine

KIND_SETS = {
    "sgd only": ["sgd"],
    "adam only": ["adam"],
    "sgd + adam": ["sgd", "adam"],
    "all seven": list(vt.OPTIMIZERS),
}


def seconds_per_epoch(data, kinds, population, epochs):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-2), optimizer=vt.Choice(kinds))
    program = vt.build_program(vt.MLP(hidden=2, units=128), space, data, batch_size=64)
    hp = space.numeric(space.sample(jax.random.key(0), population))
    return training_seconds(program, hp, engine.data_arrays(data), population, epochs) / epochs


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    rows = {name: round(seconds_per_epoch(data, kinds, args.population, args.epochs), 4) for name, kinds in KIND_SETS.items()}
    base = rows["sgd only"]
    out = {"population": args.population, "seconds_per_epoch": rows,
           "relative_to_sgd_only": {k: round(v / base, 2) for k, v in rows.items()},
           "machine": machine()}
    print(json.dumps(out, indent=2))
    write_json(args.json, out)
