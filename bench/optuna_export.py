"""Seconds a live Optuna export (vt.OptunaExport, `vmaptune run --optuna`) adds to each round of a
long search, by round: an iris random search of 16 members a round for 2 epochs, exported to a
fresh SQLite study after every round. An export that re-read every trial each round grew with the
study (quadratic over the run).

    python bench/optuna_export.py --rounds 80 --json bench/out/optuna_export.json
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import vmaptune as vt
from common import machine, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        export = vt.OptunaExport(f"sqlite:///{os.path.join(folder, 'study.db')}", "bench")
        seconds = []

        def timed(results):
            started = time.perf_counter()
            export(results)
            seconds.append(time.perf_counter() - started)

        started = time.perf_counter()
        vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
                vt.RandomSearch(population=args.population, rounds=args.rounds), epochs=2, progress=False,
                on_round=timed)
        total = time.perf_counter() - started
    marks = sorted({0, 9, len(seconds) // 2 - 1, len(seconds) - 1})
    rows = {f"round {i + 1}": round(seconds[i], 4) for i in marks}
    out = {"machine": machine(), "rounds": args.rounds, "population": args.population,
           "export seconds by round": rows, "export seconds in all": round(sum(seconds), 2),
           "search seconds in all": round(total, 2)}
    print(out)
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    main()
