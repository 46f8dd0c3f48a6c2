"""Early stopping with and without taking stopped members out of the population.

A population where most members stall early (tiny learning rates, which early stopping freezes)
and a quarter keep learning. Taken out (the default, compact_below=1), the survivors are
regrouped into the fewest member blocks or packed into a smaller population where that pays
(vmaptune/packing.py); left in (compact_below=0), stopped members stay where they are and only
blocks that happen to be all stopped are skipped. Same members, same results
(tests/test_packing.py); the first call (compiles included) and a second one, in one run.

    python bench/compaction.py --population 256 --epochs 12 --json bench/out/compaction.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import vmaptune as vt
from common import machine, write_json

SPACE = vt.Space(learning_rate=vt.Choice([1e-6, 2e-6, 3e-6, 0.05]), momentum=vt.Fixed(0.9))  # 3 in 4 stall


def timed(data, population, epochs, compact_below):
    stopping = vt.EarlyStopping(patience=2, monitor="loss", min_delta=1e-2, compact_below=compact_below)

    def call():
        t = time.perf_counter()
        r = vt.tune(vt.MLP(), SPACE, data, vt.RandomSearch(population=population), epochs=epochs, seed=0,
                    progress=False, early_stopping=stopping)
        return time.perf_counter() - t, r

    first, _ = call()  # compiles every population size this run visits
    seconds, result = call()
    return first, seconds, result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    packed_first, packed_s, packed = timed(data, args.population, args.epochs, 1.0)
    plain_first, plain_s, plain = timed(data, args.population, args.epochs, 0.0)
    stopped = float((plain.members["status"] == "stopped").mean())
    out = {"population": args.population, "epochs": args.epochs, "stopped_share": round(stopped, 3),
           "taken_out_seconds": round(packed_s, 3), "left_in_seconds": round(plain_s, 3),
           "taken_out_first_call_seconds": round(packed_first, 3), "left_in_first_call_seconds": round(plain_first, 3),
           "speedup": round(plain_s / packed_s, 2),
           "same_scores": bool(np.allclose(packed.members["score"], plain.members["score"], atol=1e-5)),
           "machine": machine()}
    print(json.dumps(out, indent=2))
    write_json(args.json, out)
