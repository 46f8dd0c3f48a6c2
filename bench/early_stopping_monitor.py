"""Early stopping on validation accuracy (vmaptune's default monitor) against validation loss
(Keras' default) in seed 004's workflow: the vs_sklearn.py searches with early stopping
(patience 10), on several train / test splits, test accuracy of the refit best setting.

    VMAPTUNE_COMPILE_CACHE=0 python bench/early_stopping_monitor.py --splits 0,1,2 --json bench/out/es_monitor.json
"""

from __future__ import annotations

import argparse
import json
import time

from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import vmaptune as vt
from common import machine, write_json

PARAMS = {"n_hidden": [1, 2], "n_units": [16, 32, 64, 128], "weight_decay": loguniform(1e-6, 1e-2),
          "learning_rate": loguniform(1e-4, 1e-2)}
SPACE = vt.Space(n_hidden=vt.IntUniform(1, 2), n_units=vt.Choice([16, 32, 64, 128]),
                 weight_decay=vt.LogUniform(1e-6, 1e-2), learning_rate=vt.LogUniform(1e-4, 1e-2),
                 optimizer=vt.Fixed("adam"))


def search_cv(X, y, X_test, y_test, stopping, seed):
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=100, batch_size=64, optimizer="adam"), PARAMS, n_iter=64,
                                   cv=3, early_stopping=stopping, random_state=seed).fit(X, y)
    return search.score(X_test, y_test), int(search.best_estimator_.n_iter_)


def tune(X, y, X_test, y_test, stopping, seed):
    data = vt.Dataset.from_arrays(X, y, "classification", validation=(X[:1], y[:1]), test=(X_test, y_test))
    result = vt.tune(vt.MLP(), SPACE, data, vt.RandomSearch(population=64), epochs=100, batch_size=64, cv=3,
                     refit=1, early_stopping=stopping, seed=seed, progress=False)
    best = result.members.iloc[result.best_index]
    return float(best["test_score"]), int(best["best_epoch"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", default="0,1,2")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    rows = []
    for split in [int(s) for s in args.splits.split(",")]:
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=split, stratify=y)
        for name, run in (("PopulationSearchCV", search_cv), ("vt.tune refit=1", tune)):
            for monitor in ("score", "loss"):
                started = time.perf_counter()
                test, epochs = run(X_train, y_train, X_test, y_test, vt.EarlyStopping(patience=10, monitor=monitor),
                                   split)
                row = {"split": split, "search": name, "monitor": monitor, "test_accuracy": round(test, 4),
                       "refit_epochs": epochs, "seconds": round(time.perf_counter() - started, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_json(args.json, {"machine": machine(), "rows": rows})


if __name__ == "__main__":
    main()
