"""Folds of unequal sizes (LeaveOneGroupOut over groups of 10, 280 and 279 rows): each fold's score
in the search against scikit-learn's cross_val_score on the same folds, and what scoring every
held-out row costs in a first search's seconds as the number of distinct fold sizes grows.

Part 1 (scores): breast_cancer, one candidate (learning rate 1e-2, 10 epochs), 5 seeds of the
estimator; vmaptune's PopulationSearchCV split scores against cross_val_score of the same estimator
(scikit-learn fits each fold on its own). A fold's score is a function of the rows it is given:
scored on fewer of its rows, it reads differently.

Part 2 (cost): a search over K folds of K distinct held-out sizes (a list of (train, validation)
pairs over breast_cancer's rows), 2 candidates, 3 epochs, no persistent compile cache: seconds of
the whole PopulationSearchCV fit, in a fresh process per row.

    python bench/cv_unequal_folds.py --json bench/out/cv_unequal_folds.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

COST_CHILD = """
import sys, time, warnings
import numpy as np
import vmaptune as vt
from sklearn.datasets import load_breast_cancer
warnings.simplefilter("ignore")
X, y = load_breast_cancer(return_X_y=True)
k = int(sys.argv[1])
rows = np.random.default_rng(0).permutation(len(y))
sizes = 8 + np.arange(k)  # k distinct held-out counts (folds may share held-out rows: a list of yours may)
folds, start = [], 0
for size in sizes:
    held = rows[(start + np.arange(size)) % len(rows)]
    folds.append((np.setdiff1d(rows, held), held))
    start += size
started = time.perf_counter()
vt.PopulationSearchCV(vt.MLPClassifier(epochs=3, n_units=16), {"learning_rate": [1e-2, 1e-1]}, n_iter=2,
                      cv=folds, refit=False, random_state=0).fit(X, y)
print(time.perf_counter() - started)
"""


def scores(seeds: int) -> dict:
    import vmaptune as vt
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score

    X, y = load_breast_cancer(return_X_y=True)
    groups = np.r_[np.zeros(10), np.ones(280), 2 * np.ones(279)]
    ours, theirs = [], []
    for seed in range(seeds):
        est = vt.MLPClassifier(epochs=10, learning_rate=1e-2, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search = vt.PopulationSearchCV(est, {"learning_rate": [1e-2]}, n_iter=1, cv=LeaveOneGroupOut(),
                                           refit=False, random_state=seed).fit(X, y, groups=groups)
            ours.append([float(search.cv_results_[f"split{i}_test_score"][0]) for i in range(3)])
            theirs.append(cross_val_score(est, X, y, cv=LeaveOneGroupOut(), groups=groups).tolist())
    return {"vmaptune_split_scores": ours, "cross_val_score": theirs,
            "vmaptune_mean": np.mean(ours, axis=0).round(4).tolist(),
            "cross_val_score_mean": np.mean(theirs, axis=0).round(4).tolist()}


def cost(ks: list[int]) -> dict:
    env = {**os.environ, "VMAPTUNE_COMPILE_CACHE": "0"}
    out = {}
    for k in ks:
        done = subprocess.run([sys.executable, "-c", COST_CHILD, str(k)], capture_output=True, text=True, env=env,
                              timeout=900)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        out[k] = round(float(done.stdout.strip().splitlines()[-1]), 2)
        print(f"{k} distinct fold sizes: {out[k]} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--folds", default="3,10,40")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    result = {"scores": scores(args.seeds)}
    print(json.dumps(result["scores"], indent=1), flush=True)
    result["seconds_by_distinct_fold_sizes"] = cost([int(k) for k in args.folds.split(",")])
    result["bench_seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
