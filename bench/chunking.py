"""What a host round trip between chunks costs: the same training in chunks of 1, 2, 5 or 10 epochs.

`vt.tune(chunk_epochs=...)` sets how many epochs one compiled call trains; between calls the host
reads the curves (progress bar, strategies, early-stopping compaction). The engine dispatches chunk
k + 1 before it reads chunk k, so the device should not wait for the host. Chunk sizes alternate
for `--rounds` rounds and each keeps its fastest time.

    python bench/chunking.py --population 256 --epochs 10 --json bench/out/chunking_256.json
"""

from __future__ import annotations

import argparse
import json

import jax

import vmaptune as vt
from common import machine, training_seconds, write_json
from population_vs_sequential import BATCH, SPACE
from vmaptune import engine
from vmaptune.tune import _prepare


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--chunks", default="1,2,5,10", help="chunk sizes in epochs, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    p, epochs = args.population, args.epochs
    hp = SPACE.numeric(SPACE.sample(jax.random.key(0), p))
    arrays = engine.data_arrays(data)
    program, _ = _prepare(vt.MLP(hidden=2, units=128), SPACE, data, vt.RandomSearch(p), epochs=epochs, seed=0,
                          metric=None, batch_size=BATCH, chunk_epochs=1, shared_order=True)
    chunks = [int(c) for c in args.chunks.split(",")]
    best = {c: float("inf") for c in chunks}
    for _ in range(args.rounds):
        for c in chunks:
            best[c] = min(best[c], training_seconds(program, hp, arrays, p, epochs, repeats=1, chunk_epochs=c))
    rows = [{"chunk_epochs": c, "host_round_trips": -(-epochs // c), "seconds": round(best[c], 3),
             "vs_one_chunk": round(best[max(chunks)] / best[c], 3)} for c in chunks]
    for row in rows:
        print(json.dumps(row))
    write_json(args.json, {"population": p, "epochs": epochs, "rounds": args.rounds, "machine": machine(),
                           "rows": rows})


if __name__ == "__main__":
    main()
