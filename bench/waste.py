"""Padding waste from structural hyperparameters, and bucketing by width.

A population whose widths span 8..512 units, padded to the widest member in one program, against
the same members grouped by width (rounded up to a power of two), one program per group. Both are
timed after a warm-up call with the same members (steady state, compiles excluded; the first
call's time is reported too), in one run on one machine.

    python bench/waste.py --population 64 --epochs 2 --json bench/out/waste.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import vmaptune as vt
from common import machine, write_json

SPACE = vt.Space(
    learning_rate=vt.LogUniform(1e-2, 2e-1),
    momentum=vt.OneMinusLogUniform(0.5, 0.95),
    n_hidden=vt.IntUniform(1, 3),
    n_units=vt.IntLogUniform(8, 512),
)


def timed(bucketing, population, epochs):
    def call():
        t0 = time.perf_counter()
        r = vt.tune(vt.MLP(), SPACE, data, vt.RandomSearch(population=population), epochs=epochs, seed=0,
                    progress=False, bucketing=bucketing)
        return time.perf_counter() - t0, r

    first, _ = call()
    seconds, result = call()
    return first, seconds, result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    first_p, padded_s, padded = timed(False, args.population, args.epochs)
    first_b, bucketed_s, bucketed = timed(True, args.population, args.epochs)
    out = {
        "population": args.population, "epochs": args.epochs,
        "padded_seconds": round(padded_s, 3), "bucketed_seconds": round(bucketed_s, 3),
        "padded_first_call_seconds": round(first_p, 3), "bucketed_first_call_seconds": round(first_b, 3),
        "speedup_bucketed": round(padded_s / bucketed_s, 2),
        "useful_fraction_padded": padded.settings["useful_compute_fraction"][0],
        "useful_fraction_bucketed": bucketed.settings["useful_compute_fraction"][0],
        "max_val_loss_difference": float(np.nanmax(np.abs(padded.curves["val_loss"] - bucketed.curves["val_loss"]))),
        "machine": machine(),
    }
    print(json.dumps(out, indent=2))
    write_json(args.json, out)
