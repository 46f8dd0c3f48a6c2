"""bucketing="auto" against both plans forced: one padded program, or one program per group (width
groups, batch-size classes).

Each case runs in a fresh process with the persistent compile cache off (a user's first search,
every compile paid), twice in that process: the first call compiles, the second finds its programs
compiled (a user's next search in the same session). Seconds per call, and the programs each
round trained in (1 = padded). The goal (issue 18): auto is never more than 10 % slower than the
better forced plan. "auto" runs after the forced plans, on a machine that remembers their compile
times (vmaptune/costs.py); "auto, new machine" remembers nothing.

    python bench/plans.py --json bench/out/plans.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import machine, write_json

CASES = {
    # bench/waste.py's population: widths 8-512 over 1-3 layers, a short run and a longer one
    "waste, 64 members, 2 epochs": dict(case="waste", epochs=2),
    "waste, 64 members, 20 epochs": dict(case="waste", epochs=20),
    # seed 004's search on digits (bench/vs_sklearn.py): 64 candidates x 3 folds, early stopping, refit
    "seed-004 digits, 64 x cv=3, 100 epochs, early stopping": dict(case="workflow", epochs=100),
    # the same workflow on diabetes (bench/vs_sklearn.py --task regression): 3 steps an epoch
    "seed-004 diabetes, 64 x cv=3, 100 epochs, early stopping": dict(case="workflow_diabetes", epochs=100),
    # batch sizes 16-256 in one space: groups are batch-size classes (one program per size)
    "batch sizes 16-256, 64 members, 10 epochs": dict(case="batches", epochs=10),
}


def one(case: str, epochs: int, bucketing) -> dict:
    import vmaptune as vt

    if case == "waste":
        data = vt.load_dataset("digits")
        space = vt.Space(learning_rate=vt.LogUniform(1e-2, 2e-1), momentum=vt.OneMinusLogUniform(0.5, 0.95),
                         n_hidden=vt.IntUniform(1, 3), n_units=vt.IntLogUniform(8, 512))
        kwargs = dict(epochs=epochs)
        population = 64
    elif case == "batches":
        data = vt.load_dataset("digits")
        space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), momentum=vt.OneMinusLogUniform(0.5, 0.95),
                         batch_size=vt.Choice([16, 32, 64, 128, 256]))
        kwargs = dict(epochs=epochs)
        population = 64
    else:
        from sklearn.datasets import load_diabetes, load_digits
        from sklearn.model_selection import train_test_split

        if case == "workflow_diabetes":
            X, y = load_diabetes(return_X_y=True)
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
            data = vt.Dataset.from_arrays(X_train, y_train, "regression", validation=(X_test[:1], y_test[:1]),
                                          test=(X_test, y_test), name="diabetes")
        else:
            X, y = load_digits(return_X_y=True)
            X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
            data = vt.Dataset.from_arrays(X_train, y_train, "classification", validation=(X_test[:1], y_test[:1]),
                                          test=(X_test, y_test), name="digits")
        space = vt.Space(n_hidden=vt.IntUniform(1, 2), n_units=vt.Choice([16, 32, 64, 128]),
                         weight_decay=vt.LogUniform(1e-6, 1e-2), learning_rate=vt.LogUniform(1e-4, 1e-2),
                         optimizer=vt.Fixed("adam"))
        kwargs = dict(epochs=epochs, cv=3, refit=1, early_stopping=vt.EarlyStopping(patience=10))
        population = 64
    out = {}
    for call in ("first", "second"):
        start = time.perf_counter()
        result = vt.tune(vt.MLP(), space, data, vt.RandomSearch(population=population), seed=0, progress=False,
                         bucketing=bucketing, **kwargs)
        out[call] = {"seconds": round(time.perf_counter() - start, 2), "programs": result.settings["programs"],
                     "best_score": round(float(result.best_score), 4)}
    return out


def fresh_process(case: str, epochs: int, bucketing, home: str) -> dict:
    """One case in a new process; `home` holds what vmaptune remembers about this machine (its
    compile times, vmaptune/costs.py), XDG_CACHE_HOME for the process."""
    env = {**os.environ, "VMAPTUNE_COMPILE_CACHE": "0", "XDG_CACHE_HOME": home}
    done = subprocess.run([sys.executable, __file__, "--one", case, str(epochs), json.dumps(bucketing)], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs=3, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--only", default=None, help="run the cases whose name contains this text")
    args = parser.parse_args()
    if args.one:
        case, epochs, bucketing = args.one
        print(json.dumps(one(case, int(epochs), json.loads(bucketing))))
        return
    out = {"machine": machine(), "cases": {}}
    for name, case in CASES.items():
        if args.only and args.only not in name:
            continue
        rows = {}
        # "auto" follows the forced plans on a machine that remembers their compile times; "auto,
        # new machine" has no memory (the platform's default compile time stands in)
        remembered = tempfile.mkdtemp(prefix="vmaptune-bench-home-")
        for label, bucketing, home in (("padded", False, remembered), ("groups", True, remembered),
                                       ("auto", "auto", remembered),
                                       ("auto, new machine", "auto", tempfile.mkdtemp(prefix="vmaptune-bench-home-"))):
            rows[label] = fresh_process(case["case"], case["epochs"], bucketing, home)
            print(name, label, rows[label], flush=True)
        for auto in ("auto", "auto, new machine"):
            verdict = {}
            for call in ("first", "second"):
                best = min(rows["padded"][call]["seconds"], rows["groups"][call]["seconds"])
                verdict[call] = round(rows[auto][call]["seconds"] / best, 2)
            rows[f"{auto} over best"] = verdict
        out["cases"][name] = rows
    print(json.dumps(out, indent=2))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
