"""Cross-validation over a trending time series: vmaptune's per-fold scores against scikit-learn's
on the same folds (TimeSeriesSplit's growing windows), and the search's seconds.

A series with a trend (y = 1000 t + a function of three lagged features + noise) is what a fold
standardised with the whole pool's statistics gets wrong: its network starts at the pool's mean
(the future's, for the early folds), and its early windows trained on the first window's size.
scikit-learn's side fits each fold from scratch: make_pipeline(StandardScaler(), MLPRegressor)
inside a TransformedTargetRegressor (targets standardised on the fold's training rows, as
vt.MLPRegressor does), 32 random draws of the learning rate each scored by cross_val_score; the
vmaptune side is PopulationSearchCV over the same draws, one program for every candidate x fold.

    python bench/cv_time_series.py --json bench/out/cv_time_series.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np


def series(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    X = rng.normal(size=(n, 3))
    y = 1000.0 * t + 3000.0 * np.tanh(X[:, 0]) + 2000.0 * X[:, 1] * X[:, 2] + 500.0 * rng.normal(size=n)
    return X, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.model_selection import TimeSeriesSplit, cross_val_score
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import vmaptune as vt

    X, y = series()
    folds = TimeSeriesSplit(4)
    rates = np.exp(np.random.default_rng(1).uniform(np.log(1e-3), np.log(3e-2), args.candidates))
    est = vt.MLPRegressor(n_units=32, epochs=args.epochs, batch_size=32)
    started = time.perf_counter()
    search = vt.PopulationSearchCV(est, {"learning_rate": list(rates)}, cv=folds, scoring="neg_mean_absolute_error",
                                   n_iter=args.candidates, refit=False).fit(X, y)
    vt_seconds = time.perf_counter() - started
    cv = search.cv_results_
    vt_folds = np.stack([cv[f"split{k}_test_score"] for k in range(4)], axis=1)  # (candidates, folds)
    by_rate = {float(p["learning_rate"]): row for p, row in zip(cv["params"], vt_folds)}
    started = time.perf_counter()
    sk_folds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (MLPRegressor's convergence warnings)
        for rate in rates:
            model = TransformedTargetRegressor(
                make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=rate, batch_size=32,
                                                            max_iter=args.epochs, random_state=0)),
                transformer=StandardScaler())
            sk_folds.append(cross_val_score(model, X, y, cv=folds, scoring="neg_mean_absolute_error", n_jobs=-1))
    sk_seconds = time.perf_counter() - started
    sk_folds = np.array(sk_folds)
    vt_folds = np.array([by_rate[float(r)] for r in rates])
    out = {"candidates": args.candidates, "epochs": args.epochs,
           "vmaptune_fold_mae_median": (-np.median(vt_folds, axis=0)).round(0).tolist(),
           "sklearn_fold_mae_median": (-np.median(sk_folds, axis=0)).round(0).tolist(),
           "vmaptune_best_mean_mae": float(-vt_folds.mean(axis=1).max()),
           "sklearn_best_mean_mae": float(-sk_folds.mean(axis=1).max()),
           "rank_correlation": float(np.corrcoef(np.argsort(np.argsort(vt_folds.mean(1))),
                                                 np.argsort(np.argsort(sk_folds.mean(1))))[0, 1]),
           "vmaptune_seconds": round(vt_seconds, 1), "sklearn_seconds": round(sk_seconds, 1)}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
