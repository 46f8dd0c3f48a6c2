"""Seed 004's workflow on digits, timed against scikit-learn doing the same job: a randomized
search with 3-fold cross-validation over MLPs, refit of the best, test accuracy.

scikit-learn: RandomizedSearchCV(MLPClassifier(max_iter=100, batch_size=64), 32 candidates over
hidden_layer_sizes (1-2 layers of 16-128 units), alpha and learning_rate_init, cv=3, n_jobs=-1).
vmaptune: PopulationSearchCV(vt.MLPClassifier(epochs=100, batch_size=64), twice the candidates
over the same kinds of hyperparameters (n_hidden 1-2, n_units in {16, 32, 64, 128}, weight_decay,
learning_rate; adam), cv=3: every candidate x fold trains at once; the same with early stopping
(patience 10); the same with scikit-learn's own convergence test (tol 1e-4, 10 epochs); vt.tune
doing the same search (cv=3, early stopping, refit=1); and PopulationSearchCV with successive
halving over the candidates x folds, beside scikit-learn's own HalvingRandomSearchCV on the same
budgets (`--only halving`). `--only tol` runs scikit-learn and
the rows whose names contain "tol" (`--only "=vmaptune PopulationSearchCV"`: that row alone). Same rows, one
run, wall-clock including compilation and the refit, each row in a fresh Python process (as a
user's first search). Run it with the persistent compile cache off
for a first search's figures (every compile paid):

    VMAPTUNE_COMPILE_CACHE=0 python bench/vs_sklearn.py --json bench/out/vs_sklearn.json

The regression variant (`--task regression`): the same rows on diabetes (442 rows, 10 features,
standardised on the training rows for both sides), scored by R^2: scikit-learn's MLPRegressor
inside a TransformedTargetRegressor (targets standardised, as vt.MLPRegressor does inside)
against vt.MLPRegressor, PopulationSearchCV and vt.tune. The halving and tol rows are
classification-only.

    VMAPTUNE_COMPILE_CACHE=0 python bench/vs_sklearn.py --task regression --json bench/out/vs_sklearn_diabetes.json
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
from scipy.stats import loguniform
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import RandomizedSearchCV, train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

import vmaptune as vt
from common import machine, write_json


def sklearn_search(X, y, candidates, epochs, seed):
    sizes = [(u,) for u in (16, 32, 64, 128)] + [(u, u) for u in (16, 32, 64, 128)]
    grid = {"hidden_layer_sizes": sizes, "alpha": loguniform(1e-6, 1e-2), "learning_rate_init": loguniform(1e-4, 1e-2)}
    if TASK == "regression":  # targets standardised around the network, as vt.MLPRegressor does inside
        estimator = TransformedTargetRegressor(MLPRegressor(max_iter=epochs, batch_size=64, random_state=seed),
                                               transformer=StandardScaler())
        grid = {f"regressor__{k}": v for k, v in grid.items()}
    else:
        estimator = MLPClassifier(max_iter=epochs, batch_size=64, random_state=seed)
    search = RandomizedSearchCV(estimator, grid, n_iter=candidates, cv=3, n_jobs=-1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    return search


def sklearn_halving_search(X, y, candidates, epochs, seed):
    """scikit-learn's own successive halving (HalvingRandomSearchCV, epochs as the resource): the
    vmaptune halving row's candidates and budgets, 11, 33 and 99 epochs, factor 3. Each
    iteration fits its candidates from scratch (no warm start), as scikit-learn does."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingRandomSearchCV

    sizes = [(u,) for u in (16, 32, 64, 128)] + [(u, u) for u in (16, 32, 64, 128)]
    search = HalvingRandomSearchCV(MLPClassifier(batch_size=64, random_state=seed),
                                   {"hidden_layer_sizes": sizes, "alpha": loguniform(1e-6, 1e-2),
                                    "learning_rate_init": loguniform(1e-4, 1e-2)},
                                   n_candidates=candidates, resource="max_iter", min_resources=max(epochs // 10, 1) + 1,
                                   max_resources=epochs, factor=3, cv=3, n_jobs=-1, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    return search


def vmaptune_search(X, y, candidates, epochs, seed):
    search = vt.PopulationSearchCV(network()(epochs=epochs, batch_size=64, optimizer="adam"),
                                   {"n_hidden": [1, 2], "n_units": [16, 32, 64, 128],
                                    "weight_decay": loguniform(1e-6, 1e-2), "learning_rate": loguniform(1e-4, 1e-2)},
                                   n_iter=candidates, cv=3, random_state=seed)
    return search.fit(X, y)


class TuneSearch:
    """vt.tune's side of the same workflow, with sklearn's result attributes for the table."""

    def __init__(self, result, X_test, y_test):
        self.best_score_, self.best_params_ = result.best_score, result.best_params
        self._test = float(result.members["test_score"].max())
        self.search_results_ = result

    def score(self, X, y):
        return self._test


def tune_search(X, y, candidates, epochs, seed, X_test=None, y_test=None):
    """vt.tune: cv=3, early stopping (patience 10), refit of the best on all training rows, tested once."""
    data = vt.Dataset.from_arrays(X, y, TASK, validation=(X[:1], y[:1]), test=(X_test, y_test), name=DATASET[TASK])
    space = vt.Space(n_hidden=vt.IntUniform(1, 2), n_units=vt.Choice([16, 32, 64, 128]),
                     weight_decay=vt.LogUniform(1e-6, 1e-2), learning_rate=vt.LogUniform(1e-4, 1e-2),
                     optimizer=vt.Fixed("adam"))
    result = vt.tune(vt.MLP(), space, data, vt.RandomSearch(population=candidates), epochs=epochs, batch_size=64,
                     cv=3, refit=1, early_stopping=vt.EarlyStopping(patience=10), seed=seed, progress=False,
                     metric="accuracy" if TASK == "classification" else "r2")
    return TuneSearch(result, X_test, y_test)


def vmaptune_search_stopping(X, y, candidates, epochs, seed):
    search = vt.PopulationSearchCV(network()(epochs=epochs, batch_size=64, optimizer="adam"),
                                   {"n_hidden": [1, 2], "n_units": [16, 32, 64, 128],
                                    "weight_decay": loguniform(1e-6, 1e-2), "learning_rate": loguniform(1e-4, 1e-2)},
                                   n_iter=candidates, cv=3, early_stopping=10, random_state=seed)
    return search.fit(X, y)


def vmaptune_search_halving(X, y, candidates, epochs, seed):
    """Successive halving over the candidates x folds (scikit-learn's HalvingRandomSearchCV's
    idea, in one population): all train 11 epochs, the best third by the folds' mean goes on to
    33, the best third of those to all 100; each scored after its last epoch."""
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=epochs, batch_size=64, optimizer="adam"),
                                   {"n_hidden": [1, 2], "n_units": [16, 32, 64, 128],
                                    "weight_decay": loguniform(1e-6, 1e-2), "learning_rate": loguniform(1e-4, 1e-2)},
                                   cv=3, random_state=seed,
                                   strategy=vt.SuccessiveHalving(population=candidates, eta=3,
                                                                 min_epochs=max(epochs // 10, 1)))
    return search.fit(X, y)


def vmaptune_search_converged(X, y, candidates, epochs, seed):
    """scikit-learn's own stopping rule: its MLPClassifier stops once the training loss has not
    improved by tol=1e-4 (its default) for n_iter_no_change=10 epochs; here the same test, per
    candidate-fold, inside the population (EarlyStopping(monitor="train_loss"))."""
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=epochs, batch_size=64, optimizer="adam", tol=1e-4,
                                                    patience=10),
                                   {"n_hidden": [1, 2], "n_units": [16, 32, 64, 128],
                                    "weight_decay": loguniform(1e-6, 1e-2), "learning_rate": loguniform(1e-4, 1e-2)},
                                   n_iter=candidates, cv=3, random_state=seed)
    return search.fit(X, y)


#: "classification" (digits, accuracy) or "regression" (diabetes, R^2): main() sets it from --task.
TASK = "classification"
DATASET = {"classification": "digits", "regression": "diabetes"}
METRIC = {"classification": "accuracy", "regression": "r2"}


def network():
    """vmaptune's estimator for the task."""
    return vt.MLPClassifier if TASK == "classification" else vt.MLPRegressor


def split(task: str, seed: int):
    """(X_train, X_test, y_train, y_test): a quarter held out for the test; diabetes's features
    standardised on the training rows (both sides get the same arrays)."""
    if task == "classification":
        X, y = load_digits(return_X_y=True)
        return train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def run_row(name: str, run, n: int, args, splits) -> dict:
    """One row, timed: candidates, seconds, best CV and test score (accuracy or R^2), best params
    (and where vmaptune's time went)."""
    X_train, X_test, y_train, y_test = splits
    t = time.perf_counter()
    search = run(X_train, y_train, n, args.epochs, args.seed)
    seconds = time.perf_counter() - t
    metric = METRIC[TASK]
    row = {"candidates": n, "seconds": round(seconds, 1), f"best_cv_{metric}": round(float(search.best_score_), 4),
           f"test_{metric}": round(float(search.score(X_test, y_test)), 4),
           "best_params": {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                           for k, v in search.best_params_.items()}}
    if hasattr(search, "search_results_"):  # where vmaptune's time went, and the programs it chose
        settings = search.search_results_.settings
        row["time"] = settings["time"]
        row["programs"] = settings["programs"]
        row["useful_compute_fraction"] = settings["useful_compute_fraction"]
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=32, help="scikit-learn's; vmaptune gets twice as many")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only the rows whose names contain one of these, or equal one given as =NAME "
                             "(scikit-learn's RandomizedSearchCV, the baseline, always runs)")
    parser.add_argument("--task", choices=("classification", "regression"), default="classification",
                        help="digits (accuracy) or diabetes (R^2)")
    parser.add_argument("--row", type=int, default=None, help=argparse.SUPPRESS)  # the child process's one row
    args = parser.parse_args()
    global TASK
    TASK = args.task
    splits = split(args.task, args.seed)
    X_test, y_test = splits[1], splits[3]
    runs = (("scikit-learn RandomizedSearchCV", sklearn_search, args.candidates),
            ("vmaptune PopulationSearchCV", vmaptune_search, 2 * args.candidates),
            ("vmaptune PopulationSearchCV, early stopping (patience 10)", vmaptune_search_stopping,
             2 * args.candidates),
            ("vmaptune PopulationSearchCV, tol 1e-4 (scikit-learn's convergence test)", vmaptune_search_converged,
             2 * args.candidates),
            ("vmaptune vt.tune, cv=3, early stopping (patience 10), refit=1",
             lambda *a: tune_search(*a, X_test=X_test, y_test=y_test), 2 * args.candidates),
            ("vmaptune PopulationSearchCV, successive halving (eta 3, from 10 epochs)", vmaptune_search_halving,
             2 * args.candidates),
            ("scikit-learn HalvingRandomSearchCV (factor 3, from 11 epochs)", sklearn_halving_search,
             2 * args.candidates))
    if TASK == "regression":  # halving and scikit-learn's tol rule: classification only
        runs = tuple(r for r in runs if "halving" not in r[0].lower() and "tol" not in r[0])
    if args.row is not None:
        name, run, n = runs[args.row]
        print(json.dumps({name: run_row(name, run, n, args, splits)}))
        return
    # Each row in a fresh Python process: a row run after another in the same process finds JAX's
    # and flax's tracing caches (and some programs, the refit's) warm, and looked faster than a
    # user's first search (4-5 s on this machine).
    rows = {}
    for index, (name, _, _) in enumerate(runs):
        wanted = args.only is None or any(name == o[1:] if o.startswith("=") else o in name for o in args.only)
        if not wanted and name != "scikit-learn RandomizedSearchCV":  # (the baseline always runs)
            continue
        child = [sys.executable, os.path.abspath(__file__), "--row", str(index), "--seed", str(args.seed),
                 "--epochs", str(args.epochs), "--candidates", str(args.candidates), "--task", args.task]
        done = subprocess.run(child, stdout=subprocess.PIPE, text=True, check=True)  # its stderr (logs) shows
        rows.update(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps({name: rows[name]}), flush=True)
    sk = rows["scikit-learn RandomizedSearchCV"]
    test = f"test_{METRIC[TASK]}"
    for row in rows.values():
        row["speedup_over_sklearn"] = round(sk["seconds"] / row["seconds"], 2)
        row[f"{test}_over_sklearn"] = round(row[test] - sk[test], 4)
    out = {"task": TASK, "dataset": DATASET[TASK], "seed": args.seed, "epochs": args.epochs, "rows": rows,
           "fresh_process_per_row": True,
           "compile_cache": os.environ.get("VMAPTUNE_COMPILE_CACHE", "default"), "machine": machine()}
    print(json.dumps(out, indent=2))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
