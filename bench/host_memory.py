"""Host memory over many rounds: peak resident memory of a fresh process that runs R rounds of a
small search with a run directory (results and checkpoints after every round), for growing R.
Flat means the records and checkpoints of past rounds do not pile up.

    python bench/host_memory.py --json bench/out/host_memory.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import machine, write_json

SEARCH = """
import json, resource, sys, tempfile
import vmaptune as vt
rounds = int(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    vt.tune(vt.MLP(hidden=1, units=16), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
            vt.RandomSearch(population=16, rounds=rounds), epochs=2, progress=False, run_dir=tmp + "/run")
print(json.dumps({"rounds": rounds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", default="5,20,80")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for rounds in [int(r) for r in args.rounds.split(",")]:
        done = subprocess.run([sys.executable, "-c", SEARCH, str(rounds)], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    write_json(args.json, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
