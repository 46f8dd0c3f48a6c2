"""What a run directory costs a small, long search whose strategy acts during training: vt.tune
with and without run_dir for PBT(interval=50), SuccessiveHalving and (for reference) RandomSearch,
8-9 MLPs on digits for 200 one-epoch chunks. Checkpoints after every chunk (before) made the run
directory cost 2-3x; now they come after each decision and at most once a minute. A first run
of each compiles, untimed.

    python bench/checkpoint_pace.py --json bench/out/checkpoint_pace.json
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import vmaptune as vt
from common import machine, write_json
from vmaptune import checkpoint


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    saves = {"n": 0}
    save = checkpoint.Checkpoints.save

    def counted(self, *a, **k):
        saves["n"] += 1
        return save(self, *a, **k)
    checkpoint.Checkpoints.save = counted
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0), momentum=vt.OneMinusLogUniform(0.5, 0.99),
                     optimizer=vt.Fixed("momentum"))
    data = vt.load_dataset("digits")
    interval = min(50, max(args.epochs - 1, 1))  # (PBT refuses an interval that never exploits: a short --epochs)
    strategies = {f"PBT(population=8, interval={interval})": lambda: vt.PBT(population=8, interval=interval),
                  "SuccessiveHalving(population=9, eta=3)": lambda: vt.SuccessiveHalving(population=9, eta=3),
                  "RandomSearch(population=8)": lambda: vt.RandomSearch(population=8)}
    out = {"machine": machine(), "epochs": args.epochs, "strategies": {}}
    for name, make in strategies.items():
        row = {}
        vt.tune(vt.MLP(), space, data, make(), epochs=args.epochs, seed=0, progress=False, bucketing=False)  # compiles
        for with_dir in (False, True):
            tmp = tempfile.mkdtemp() if with_dir else None
            saves["n"] = 0
            start = time.perf_counter()
            vt.tune(vt.MLP(), space, data, make(), epochs=args.epochs, seed=0, progress=False, bucketing=False,
                    run_dir=None if tmp is None else tmp + "/run")
            row["with_run_dir" if with_dir else "without"] = round(time.perf_counter() - start, 2)
            if with_dir:
                row["checkpoints"] = saves["n"]
                shutil.rmtree(tmp)
        row["ratio"] = round(row["with_run_dir"] / row["without"], 2)
        out["strategies"][name] = row
        print(name, row, flush=True)
    write_json(args.json, out)


if __name__ == "__main__":
    main()
