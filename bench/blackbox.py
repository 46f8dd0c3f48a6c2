"""Strategies on the COCO / BBOB black-box suite at equal evaluations: log10 simple regret and wins.

Every strategy is driven exactly as `vt.tune` drives it: `state = strategy.init(space, key)`, then
`hp, state = strategy.ask(state, key)`, `f = problem(hp)`, `state = strategy.tell(state, hp, -f)`
(vmaptune maximises scores, BBOB minimises) until `strategy.done(state)`. The space is
`x0 .. x{d-1} ~ Uniform(-5, 5)`, BBOB's box. The functions come from the `ioh` package
(`pip install vmaptune[bench]`): BBOB problem `fid`, instance `iid` (a shifted, rotated,
rescaled copy), dimension d. Simple regret = best value found - the instance's optimum, floored at
1e-8 before the log.

Per problem (function x dimension x batch size) the figure is the mean log10 regret over instances
and seeds; a method "wins" a problem against another when that figure is lower. The summary per
(dimension, batch) gives the mean and the median of the per-problem figures over the functions.

    python bench/blackbox.py           # 24 functions x 3 instances, 5-D and 20-D, batch 8: hours on 2 cores
    python bench/blackbox.py --quick   # 8 functions, 5-D, instance 1: ~20 min on a loaded 2-core machine
    python bench/blackbox.py --methods bo bo-none --problems 1 2 15 --dims 5
    python bench/blackbox.py --merge a.json b.json --json all.json   # shards run side by side

Methods: bo (vt.BayesOpt, EI, library defaults: output_warping "power" since it beat "none" here), bo-global (trust_region=False), bo-<warp> (BayesOpt with output_warping=<warp>:
bo-none, bo-copula, bo-power), bo-thompson, bo-tr (BayesOpt with trust_region=True), bo-hedge
(trust_region=0.5: half of each batch in the region, half global), evolution,
coarse_to_fine, random, tpe and cmaes (Optuna's samplers through vt.OptunaSampler). A BayesOpt
run of 10 asks costs a few seconds on a 2-core CPU; the others about a second. Also times one BayesOpt ask at --timing-observations
observations in 5-D after the first compile (median of --timing-repeats asks).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time
import warnings

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import vmaptune as vt  # noqa: E402
from common import machine, write_json  # noqa: E402

METHODS = ("bo", "bo-global", "bo-thompson", "bo-tr", "bo-hedge", "evolution", "coarse_to_fine", "random", "tpe", "cmaes")
DEFAULT_METHODS = ("bo", "evolution", "coarse_to_fine", "random", "tpe", "cmaes")
BBOB_NAMES = {
    1: "sphere", 2: "ellipsoid", 3: "rastrigin", 4: "bueche_rastrigin", 5: "linear_slope",
    6: "attractive_sector", 7: "step_ellipsoid", 8: "rosenbrock", 9: "rosenbrock_rotated",
    10: "ellipsoid_rotated", 11: "discus", 12: "bent_cigar", 13: "sharp_ridge", 14: "different_powers",
    15: "rastrigin_rotated", 16: "weierstrass", 17: "schaffers10", 18: "schaffers1000",
    19: "griewank_rosenbrock", 20: "schwefel", 21: "gallagher101", 22: "gallagher21", 23: "katsuura",
    24: "lunacek_bi_rastrigin",
}
QUICK_PROBLEMS = (1, 2, 6, 8, 10, 15, 17, 21)
REGRET_FLOOR = 1e-8


# -- problems --------------------------------------------------------------------------------------
def space(dim: int) -> vt.Space:
    return vt.Space({f"x{i}": vt.Uniform(-5.0, 5.0) for i in range(dim)})


class Problem:
    """One BBOB instance as a minimisation objective of a population dict."""

    def __init__(self, fid: int, instance: int, dim: int):
        import ioh

        self.fid, self.instance, self.dim = fid, instance, dim
        self._f = ioh.get_problem(fid, instance=instance, dimension=dim, problem_class=ioh.ProblemClass.BBOB)
        self.optimum = float(self._f.optimum.y)
        self.names = [f"x{i}" for i in range(dim)]

    def __call__(self, hp) -> np.ndarray:
        X = np.stack([np.asarray(hp[n], np.float64) for n in self.names], axis=1)
        return np.asarray(self._f([row for row in X]), np.float64)


# -- strategies ------------------------------------------------------------------------------------
def make_strategy(method: str, batch: int, rounds: int):
    if method == "bo":
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei")
    if method == "bo-global":  # the whole space only, no trust region
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei", trust_region=False)
    if method == "bo-thompson":
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="thompson")
    if method == "bo-tr":
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei", trust_region=True)
    if method == "bo-hedge":  # half of each batch in the trust region, half over the whole space
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei", trust_region=0.5)
    if method.startswith("bo-prior"):  # a log-normal prior on the lengthscales: bo-prior=MEDIAN,SIGMA
        median, sigma = (0.5, 0.7) if method == "bo-prior" else map(float, method.split("=")[1].split(","))
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei", lengthscale_prior=(median, sigma))
    if method.startswith("bo-restarts="):  # the fit's number of starts (the previous fit one of them)
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei", restarts=int(method.split("=")[1]))
    if method == "bo-noprior":  # the maximum-likelihood fit (the default before the prior)
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei", lengthscale_prior=None)
    if method.startswith("bo-"):  # an output warping, where this version of BayesOpt has them
        fields = {f.name for f in dataclasses.fields(vt.BayesOpt)}
        if "output_warping" not in fields:
            raise SystemExit(f"{method}: this vt.BayesOpt has no output_warping option")
        return vt.BayesOpt(population=batch, rounds=rounds, acquisition="ei", output_warping=method[3:])
    if method == "evolution":
        return vt.Evolution(population=batch, generations=rounds)
    if method == "coarse_to_fine":
        return vt.CoarseToFine(population=batch, rounds=rounds)
    if method == "random":
        return vt.RandomSearch(population=batch, rounds=rounds)
    if method in ("tpe", "cmaes"):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        if method == "tpe":
            factory = lambda seed: optuna.samplers.TPESampler(seed=seed)  # noqa: E731
        else:
            factory = lambda seed: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)  # noqa: E731
        return vt.OptunaSampler(factory, population=batch, rounds=rounds)
    raise SystemExit(f"unknown method {method!r}; choose from {METHODS} or bo-<warping>")


def run_once(strategy, problem: Problem, seed: int) -> tuple[list[float], float]:
    """Best-so-far regret after each round, and the wall-clock seconds of the run."""
    key = jax.random.key(seed)
    state = strategy.init(space(problem.dim), jax.random.fold_in(key, 0))
    best, curve = np.inf, []
    start = time.perf_counter()
    while not strategy.done(state):
        hp, state = strategy.ask(state, jax.random.fold_in(key, len(curve) + 1))
        f = problem(hp)
        best = min(best, float(np.nanmin(f)) if np.any(np.isfinite(f)) else np.inf)
        state = strategy.tell(state, hp, -f)
        curve.append(best - problem.optimum)
    return curve, time.perf_counter() - start


def log_regret(r: float) -> float:
    return float(np.log10(max(r, REGRET_FLOOR)))


# -- timing ----------------------------------------------------------------------------------------
def time_ask(observations: int, dim: int, batch: int, repeats: int) -> dict:
    """Seconds of one BayesOpt (EI) ask with `observations` told points in `dim`-D (BBOB sphere),
    after a first ask that compiles."""
    problem = Problem(1, 1, dim)
    strategy = vt.BayesOpt(population=batch, rounds=1000, acquisition="ei")
    sp = space(dim)
    state = strategy.init(sp, jax.random.key(0))
    hp = sp.sample(jax.random.key(1), observations)
    state = strategy.tell(state, hp, -problem(hp))
    state = state.replace(design_next=len(state.design))  # past the initial design: every ask fits
    t = time.perf_counter()
    jax.block_until_ready(strategy.ask(state, jax.random.key(2))[0])
    first = time.perf_counter() - t
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(strategy.ask(state, jax.random.key(3 + i))[0])
        times.append(time.perf_counter() - t)
    return {"observations": observations, "dim": dim, "batch": batch, "first_s": first,
            "median_s": float(np.median(times)), "min_s": float(np.min(times)), "repeats": repeats}


# -- summary ---------------------------------------------------------------------------------------
def summarise(runs: list[dict], methods: list[str], pairs: list[tuple[str, str]]) -> list[dict]:
    """Per (dim, batch): mean / median over functions of each method's mean log10 regret, and wins."""
    out = []
    for dim, batch in sorted({(r["dim"], r["batch"]) for r in runs}):
        mine = [r for r in runs if r["dim"] == dim and r["batch"] == batch]
        fids = sorted({r["fid"] for r in mine})
        per = {m: {} for m in methods}  # method -> fid -> mean log10 regret
        for m in methods:
            for fid in fids:
                v = [r["log10_regret"] for r in mine if r["method"] == m and r["fid"] == fid]
                if v:
                    per[m][fid] = float(np.mean(v))
        row = {"dim": dim, "batch": batch, "functions": len(fids), "per_function": per, "methods": {}, "wins": {}}
        for m in methods:
            vals = list(per[m].values())
            secs = [r["seconds"] for r in mine if r["method"] == m]
            if vals:
                row["methods"][m] = {"mean_log10_regret": float(np.mean(vals)),
                                     "median_log10_regret": float(np.median(vals)),
                                     "median_seconds_per_run": float(np.median(secs))}
        for a, b in pairs:
            common = [f for f in fids if f in per[a] and f in per[b]]
            if common:
                row["wins"][f"{a} vs {b}"] = {
                    "wins": sum(per[a][f] < per[b][f] for f in common),
                    "ties": sum(per[a][f] == per[b][f] for f in common),
                    "of": len(common),
                }
        out.append(row)
    return out


def print_markdown(summary: list[dict], methods: list[str], timing: dict | None) -> None:
    for row in summary:
        print(f"\n**BBOB, {row['dim']}-D, batches of {row['batch']}, {row['functions']} functions** "
              "(log10 simple regret: per function the mean over instances and seeds; lower is better)\n")
        print("| method | mean log10 regret | median log10 regret | median s / run |")
        print("|---|---|---|---|")
        for m in methods:
            if m in row["methods"]:
                s = row["methods"][m]
                print(f"| {m} | {s['mean_log10_regret']:.2f} | {s['median_log10_regret']:.2f} | "
                      f"{s['median_seconds_per_run']:.2f} |")
        if row["wins"]:
            print("\n| pair | wins | ties | of |")
            print("|---|---|---|---|")
            for pair, w in row["wins"].items():
                print(f"| {pair} | {w['wins']} | {w['ties']} | {w['of']} |")
        per = row["per_function"]
        print("\nper function (mean log10 regret):\n")
        print("| function | " + " | ".join(m for m in methods if per[m]) + " |")
        print("|---|" + "---|" * sum(1 for m in methods if per[m]))
        for fid in sorted({f for m in methods for f in per[m]}):
            cells = [f"{per[m][fid]:.2f}" if fid in per[m] else "" for m in methods if per[m]]
            print(f"| f{fid} {BBOB_NAMES.get(fid, '')} | " + " | ".join(cells) + " |")
    if timing:
        print(f"\nBayesOpt (EI) ask, {timing['dim']}-D, {timing['observations']} observations, batch "
              f"{timing['batch']}: first (compiles) {timing['first_s']:.2f} s, then median "
              f"{timing['median_s']:.3f} s (min {timing['min_s']:.3f} s) over {timing['repeats']} asks")


def merge(args) -> None:
    """Re-summarise the runs of several output files (shards of one configuration)."""
    files = [json.loads(pathlib.Path(f).read_text()) for f in args.merge]
    runs = [r for f in files for r in f["runs"]]
    methods = list(dict.fromkeys(m for f in files for m in f["config"]["methods"]))
    summary = summarise(runs, methods, pairs_for(methods))
    timing = next((f["ask_timing"] for f in files if f.get("ask_timing")), None)
    print_markdown(summary, methods, timing)
    print(f"\n{files[0]['machine']}; shards: " + "; ".join(f"`{f['command']}`" for f in files))
    write_json(args.json, {"machine": files[0]["machine"], "commands": [f["command"] for f in files],
                           "bench_seconds": sum(f["bench_seconds"] for f in files), "regret_floor": REGRET_FLOOR,
                           "summary": summary, "ask_timing": timing, "runs": runs})
    if args.json:
        print(f"wrote {args.json}")


def pairs_for(methods: list[str]) -> list[tuple[str, str]]:
    """Each BayesOpt variant against TPE, CMA-ES and random search, and against the first variant."""
    bos = [m for m in methods if m.startswith("bo")]
    pairs = [(b, o) for b in bos for o in ("tpe", "cmaes", "random") if o in methods]
    return pairs + [(b, bos[0]) for b in bos[1:]]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"functions {list(QUICK_PROBLEMS)}, 5-D only, instance 1 (unless given)")
    p.add_argument("--dims", type=int, nargs="+", default=None, help="default 5 20 (quick: 5)")
    p.add_argument("--batch", type=int, nargs="+", default=[8], help="batch sizes (population per ask)")
    p.add_argument("--budget", type=int, default=80, help="evaluations per run (rounds = budget // batch)")
    p.add_argument("--instances", type=int, nargs="+", default=None, help="BBOB instance ids, default 1 2 3")
    p.add_argument("--problems", type=int, nargs="+", default=None, help="BBOB function ids, default 1..24")
    p.add_argument("--seeds", type=int, default=1, help="seeds per instance")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                   help=f"from {METHODS}, or bo-<warping>")
    p.add_argument("--timing-observations", type=int, default=80, help="0 to skip the ask timing")
    p.add_argument("--timing-repeats", type=int, default=5)
    p.add_argument("--json", default="bench/out/blackbox.json")
    p.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                   help="summarise the runs of these output files together (no new runs)")
    args = p.parse_args(argv)
    if args.merge:
        return merge(args)
    dims = args.dims or ([5] if args.quick else [5, 20])
    instances = args.instances or ([1] if args.quick else [1, 2, 3])
    problems = args.problems or (list(QUICK_PROBLEMS) if args.quick else list(range(1, 25)))

    runs = []
    t_start = time.perf_counter()
    for dim in dims:
        for batch in args.batch:
            rounds = max(1, args.budget // batch)
            strategies = {m: make_strategy(m, batch, rounds) for m in args.methods}
            for fid in problems:
                for iid in instances:
                    problem = Problem(fid, iid, dim)
                    for seed in range(args.seeds):
                        line = []
                        for m, strategy in strategies.items():
                            curve, seconds = run_once(strategy, problem, seed=1000 * iid + seed)
                            runs.append({"method": m, "fid": fid, "instance": iid, "seed": seed, "dim": dim,
                                         "batch": batch, "evaluations": batch * rounds, "regret": curve[-1],
                                         "log10_regret": log_regret(curve[-1]), "seconds": seconds,
                                         "curve": curve})
                            line.append(f"{m} {log_regret(curve[-1]):+.2f}")
                        print(f"d={dim} b={batch} f{fid} i{iid} s{seed}: " + ", ".join(line), flush=True)
    bench_seconds = time.perf_counter() - t_start

    methods = list(args.methods)
    summary = summarise(runs, methods, pairs_for(methods))
    timing = None
    if args.timing_observations:
        timing = time_ask(args.timing_observations, 5, args.batch[0], args.timing_repeats)
    print_markdown(summary, methods, timing)
    command = "python bench/blackbox.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"\n{machine()}; {bench_seconds / 60:.1f} min; `{command.strip()}`")
    write_json(args.json, {
        "machine": machine(), "command": command.strip(), "config": vars(args) | {
            "dims": dims, "instances": instances, "problems": problems},
        "regret_floor": REGRET_FLOOR, "bench_seconds": bench_seconds,
        "summary": summary, "ask_timing": timing, "runs": runs,
    })
    if args.json:
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
