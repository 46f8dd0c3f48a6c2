"""bench/vs_sklearn.py over many train / test splits: test accuracy per split, its mean and
standard error, and each vmaptune row paired with scikit-learn on the same split.

One split's test set is 450 rows: one row is 0.0022 of accuracy, and the refit network's own
initialisation moves its test accuracy by a few rows. A comparison of means needs several
splits. Run the bench once per seed (the seed sets the split and every search's seed), then
summarise the JSON files:

    for s in 0 1 2 3 4 5 6 7 8 9; do
      VMAPTUNE_COMPILE_CACHE=0 python bench/vs_sklearn.py --seed $s --json bench/out/vs_sklearn_seed$s.json
    done
    python bench/vs_sklearn_splits.py bench/out/vs_sklearn_seed*.json --json bench/out/vs_sklearn_splits.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from common import write_json

SKLEARN = "scikit-learn RandomizedSearchCV"


def summarise(runs: list[dict]) -> dict:
    """runs: vs_sklearn.py outputs, one per split -> per row: accuracies, mean, standard error,
    paired difference with scikit-learn (mean, standard error, splits won / tied / lost), seconds."""
    names = [name for name in runs[0]["rows"] if all(name in r["rows"] for r in runs)]  # rows every split ran
    sk = np.array([r["rows"][SKLEARN]["test_accuracy"] for r in runs])
    out = {}
    for name in names:
        acc = np.array([r["rows"][name]["test_accuracy"] for r in runs])
        seconds = np.array([r["rows"][name]["seconds"] for r in runs])
        diff = acc - sk
        n = len(acc)
        row = {"test_accuracy": acc.tolist(), "mean": round(float(acc.mean()), 4),
               "standard_error": round(float(acc.std(ddof=1) / np.sqrt(n)), 4) if n > 1 else None,
               "median_seconds": round(float(np.median(seconds)), 1),
               "best_cv_accuracy_mean": round(float(np.mean([r["rows"][name]["best_cv_accuracy"] for r in runs])), 4)}
        if name != SKLEARN:
            row["minus_sklearn"] = {
                "mean": round(float(diff.mean()), 4),
                "standard_error": round(float(diff.std(ddof=1) / np.sqrt(n)), 4) if n > 1 else None,
                "won_tied_lost": [int(np.sum(diff > 1e-9)), int(np.sum(np.abs(diff) <= 1e-9)), int(np.sum(diff < -1e-9))],
                "speedup_median": round(float(np.median([r["rows"][SKLEARN]["seconds"] / r["rows"][name]["seconds"]
                                                         for r in runs])), 2)}
        out[name] = row
    return {"splits": [r.get("seed") for r in runs], "rows": out}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="vs_sklearn.py --json outputs, one per split")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    runs = []
    for path in args.files:
        with open(path) as f:
            runs.append(json.load(f))
    out = summarise(runs)
    for name, row in out["rows"].items():
        print(f"{name}: mean {row['mean']} (se {row['standard_error']}), median {row['median_seconds']} s", end="")
        if "minus_sklearn" in row:
            d = row["minus_sklearn"]
            print(f", minus sklearn {d['mean']:+.4f} (se {d['standard_error']}), won/tied/lost {d['won_tied_lost']}, "
                  f"median speed-up {d['speedup_median']}x", end="")
        print()
    write_json(args.json, out)


if __name__ == "__main__":
    main()
