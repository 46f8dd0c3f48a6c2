"""Benchmark: Bayesian optimisation against random search and Optuna's TPE.

1. Simple regret against the number of evaluations on Branin (2-D) and Hartmann-6 (6-D), batches
   of `--population` for `--rounds` rounds, over `--seeds` seeds: BayesOpt with each acquisition,
   random search, and TPE through the Optuna bridge.
2. Fit-and-propose time of one BayesOpt ask against the number of observations (`--sizes`).

    python bench/bayesopt.py --json bench/out/bayesopt.json

Writes everything to the JSON file and prints two tables. Times are wall-clock seconds on this
machine; "first" includes compiling for a new padded size, "warm" is the same ask again.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import vmaptune.strategies.bayesopt as bayesopt_module  # noqa: E402
from vmaptune.strategies.bayesopt import BayesOpt  # noqa: E402
from vmaptune.strategies.random_search import RandomSearch  # noqa: E402
from vmaptune.testing_functions import BRANIN, HARTMANN6  # noqa: E402

PROBLEMS = {"branin": BRANIN, "hartmann6": HARTMANN6}
METHODS = ("bo-ei", "bo-pi", "bo-ucb", "bo-thompson", "random", "tpe")


def make_strategy(method: str, population: int, rounds: int):
    if method.startswith("bo-"):
        return BayesOpt(population=population, rounds=rounds, acquisition=method[3:])
    if method == "random":
        return RandomSearch(population=population, rounds=rounds)
    if method == "tpe":
        import optuna

        from vmaptune.strategies.optuna_sampler import OptunaSampler

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return OptunaSampler(lambda seed: optuna.samplers.TPESampler(seed=seed), population=population, rounds=rounds)
    raise ValueError(f"unknown method {method!r}; choose from {METHODS}")


def run_once(strategy, problem, seed: int) -> tuple[list[float], float]:
    """Regret after each round, and the wall time of the whole run (asks + tells, not compile-free)."""
    key = jax.random.key(seed)
    state = strategy.init(problem.space, jax.random.fold_in(key, 0))
    values, regrets = [], []
    start = time.perf_counter()
    while not strategy.done(state):
        hp, state = strategy.ask(state, jax.random.fold_in(key, len(regrets) + 1))
        f = problem(hp)
        values.extend(f)
        state = strategy.tell(state, hp, -f)
        regrets.append(problem.regret(values))
    return regrets, time.perf_counter() - start


def regret_benchmark(args) -> list[dict]:
    results = []
    for pname in args.problems:
        problem = PROBLEMS[pname]
        for method in args.methods:
            strategy = make_strategy(method, args.population, args.rounds)
            curves, times = [], []
            for seed in range(args.seeds):
                regrets, seconds = run_once(strategy, problem, seed)
                curves.append(regrets)
                times.append(seconds)
                print(f"  {pname:10s} {method:12s} seed {seed}: regret {regrets[-1]:.3g} ({seconds:.1f}s)", flush=True)
            curves = np.asarray(curves)
            results.append(
                {
                    "problem": pname,
                    "method": method,
                    "evaluations": [args.population * (i + 1) for i in range(args.rounds)],
                    "regret_per_seed": curves.tolist(),
                    "median_regret": np.median(curves, axis=0).tolist(),
                    "seconds_per_run": times,
                }
            )
    return results


def timing_benchmark(args) -> list[dict]:
    """One ask on Hartmann-6 with n random observations already told."""
    fit_seconds = []
    real_fit = bayesopt_module.gp.fit

    def timed_fit(*a, **kw):
        t = time.perf_counter()
        out = real_fit(*a, **kw)
        fit_seconds.append(time.perf_counter() - t)
        return out

    bayesopt_module.gp.fit = timed_fit
    rows = []
    try:
        for acq in args.timing_acquisitions:
            strategy = BayesOpt(population=args.population, rounds=1000, acquisition=acq)
            for n in args.sizes:
                state = strategy.init(HARTMANN6.space, jax.random.key(0))
                hp = HARTMANN6.space.sample(jax.random.key(n), n)
                state = strategy.tell(state, hp, -HARTMANN6(hp))
                state = state.replace(design_next=len(state.design))  # skip the initial design
                times = {}
                for label in ("first", "warm"):
                    fit_seconds.clear()
                    t = time.perf_counter()
                    proposal, _ = strategy.ask(state, jax.random.key(1))
                    jax.block_until_ready(proposal)
                    total = time.perf_counter() - t
                    times[label] = {"total": total, "fit": fit_seconds[0], "propose": total - fit_seconds[0]}
                row = {
                    "acquisition": acq,
                    "observations": n,
                    "padded_to": bayesopt_module.bucket(n),
                    "fit_points": min(n, strategy.max_fit_points),
                    **times,
                }
                rows.append(row)
                print(
                    f"  {acq:9s} n={n:5d}: first {times['first']['total']:.2f}s, warm {times['warm']['total']:.2f}s "
                    f"(fit {times['warm']['fit']:.2f}s + propose {times['warm']['propose']:.2f}s)",
                    flush=True,
                )
    finally:
        bayesopt_module.gp.fit = real_fit
    return rows


def print_tables(regret: list[dict], timing: list[dict], args) -> None:
    mid = args.rounds // 2 - 1
    print(f"\nSimple regret (median over {args.seeds} seeds), batches of {args.population}")
    print(f"| problem | method | after {args.population * (mid + 1)} evals | after {args.population * args.rounds} evals | s / run |")
    print("|---|---|---|---|---|")
    for r in regret:
        m = r["median_regret"]
        print(f"| {r['problem']} | {r['method']} | {m[mid]:.3g} | {m[-1]:.3g} | {np.median(r['seconds_per_run']):.1f} |")
    if timing:
        print(f"\nFit-and-propose time of one ask (Hartmann-6, population {args.population}), seconds")
        print("| acquisition | observations | padded | fit points | first (incl. compile) | warm | warm fit | warm propose |")
        print("|---|---|---|---|---|---|---|---|")
        for t in timing:
            print(
                f"| {t['acquisition']} | {t['observations']} | {t['padded_to']} | {t['fit_points']} | "
                f"{t['first']['total']:.2f} | {t['warm']['total']:.2f} | {t['warm']['fit']:.2f} | {t['warm']['propose']:.2f} |"
            )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=pathlib.Path, default=pathlib.Path("bench/out/bayesopt.json"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    p.add_argument("--sizes", type=int, nargs="*", default=[100, 500, 1000, 2000])
    p.add_argument("--timing-acquisitions", nargs="+", default=["ei", "thompson"], choices=["ei", "pi", "ucb", "thompson"])
    args = p.parse_args(argv)

    print("Regret benchmark", flush=True)
    regret = regret_benchmark(args) if args.seeds else []  # --seeds 0: the timing table only
    print("Timing benchmark", flush=True)
    timing = timing_benchmark(args) if args.sizes else []
    print_tables(regret, timing, args)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "config": {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in vars(args).items()},
        "environment": {
            "jax": jax.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "load_average": os.getloadavg(),
        },
        "regret": regret,
        "timing": timing,
    }
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
