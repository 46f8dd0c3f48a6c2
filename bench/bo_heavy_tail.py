"""BayesOpt when diverging members score huge but finite losses (a log-loss of 1e5, an MSE of 1e16).

Digits, a 1-hidden-layer MLP trained 5 epochs with momentum SGD over learning rates up to 3 (many
members diverge without turning NaN), metric neg_log_loss, 8 members x 6 rounds, `--seeds` seeds.
Per strategy: the mean best validation log-loss, and over rounds 1-5 (the model's proposals) the
median member's log-loss and how many of the 40 members scored below 0.2.

    python bench/bo_heavy_tail.py                     # default BayesOpt, "copula", "none", TPE, random
    python bench/bo_heavy_tail.py --methods default --seeds 10
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import vmaptune as vt  # noqa: E402

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-4, 3.0), momentum=vt.OneMinusLogUniform(0.5, 0.999),
                 init_scale=vt.LogUniform(0.1, 10.0), dropout=vt.Uniform(0, 0.5), n_units=vt.Fixed(32),
                 n_hidden=vt.Fixed(1), optimizer=vt.Fixed("momentum"))


def methods():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return {
        "default": lambda: vt.BayesOpt(population=8, rounds=6),
        "copula": lambda: vt.BayesOpt(population=8, rounds=6, output_warping="copula"),
        "none": lambda: vt.BayesOpt(population=8, rounds=6, output_warping="none"),
        "tpe": lambda: vt.OptunaSampler(lambda s: optuna.samplers.TPESampler(seed=s), population=8, rounds=6),
        "random": lambda: vt.RandomSearch(population=8, rounds=6),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=list(methods()))
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    data = vt.load_dataset("digits")
    started = time.perf_counter()
    print("| method | best log-loss (mean) | rounds 1-5: median member log-loss | members < 0.2 of 40 |")
    print("|---|---|---|---|")
    for name in args.methods:
        rows = []
        for seed in range(args.seeds):
            result = vt.tune(vt.MLP(), SPACE, data, strategy=methods()[name](), epochs=5, seed=seed, progress=False,
                             metric="neg_log_loss", bucketing=False)
            table = result.to_dataframe()
            later = table[table["round"] >= 1]
            rows.append((-result.best_score, -np.nanmedian(later["score"]), (later["score"] > -0.2).sum()))
        a = np.asarray(rows, float)
        print(f"| {name} | {a[:, 0].mean():.4f} | {np.median(a[:, 1]):.3f} | {a[:, 2].mean():.1f} |", flush=True)
    print(f"\n{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores; "
          f"{(time.perf_counter() - started) / 60:.1f} min; `python bench/bo_heavy_tail.py {' '.join(sys.argv[1:])}`")


if __name__ == "__main__":
    main()
