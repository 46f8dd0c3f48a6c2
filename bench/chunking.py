"""What a host round trip between chunks costs: the same training in chunks of 1, 2, 5 or 10 epochs.

`vt.tune(chunk_epochs=...)` sets how many epochs one compiled call trains; between calls the host
reads the curves (progress bar, strategies, early-stopping compaction). The engine dispatches chunk
k + 1 before it reads chunk k, so the device should not wait for the host. Chunk sizes alternate
for `--rounds` rounds and each keeps its fastest time.

    python bench/chunking.py --population 256 --epochs 10 --json bench/out/chunking_256.json
"""

from __future__ import annotations

import json


from common import alternating_parser, fastest_alternating, machine, training_seconds, write_json
from population_vs_sequential import bench_members, bench_program


def main():
    parser = alternating_parser(__doc__)
    parser.add_argument("--chunks", default="1,2,5,10", help="chunk sizes in epochs, comma-separated")
    args = parser.parse_args()
    p, epochs = args.population, args.epochs
    data, hp, arrays = bench_members(p)
    program = bench_program(data, p, epochs)  # the chunk size is the call's, not the program's
    chunks = [int(c) for c in args.chunks.split(",")]
    best = fastest_alternating({c: lambda c=c: training_seconds(program, hp, arrays, p, epochs, repeats=1, chunk_epochs=c)
                                for c in chunks}, args.rounds)
    rows = [{"chunk_epochs": c, "host_round_trips": -(-epochs // c), "seconds": round(best[c], 3),
             "vs_one_chunk": round(best[max(chunks)] / best[c], 3)} for c in chunks]
    for row in rows:
        print(json.dumps(row))
    write_json(args.json, {"population": p, "epochs": epochs, "rounds": args.rounds, "machine": machine(),
                           "rows": rows})


if __name__ == "__main__":
    main()
