"""Search strategies on the digits MLP: best validation accuracy found against wall-clock seconds.

Every strategy gets the same training budget in member-epochs (population x rounds x epochs for
the round-based ones; population x epochs for PBT; Hyperband is sized to spend about as much and
reports what it spent), over several seeds, in one run on one machine. Writes a JSON table and a
plot of best-so-far accuracy against seconds.

    python bench/strategies.py --seeds 3 --json bench/out/strategies.json --plot bench/out/strategies.png
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import vmaptune as vt
from common import machine, write_json

SPACE = vt.Space(
    learning_rate=vt.LogUniform(1e-4, 1.0),
    momentum=vt.OneMinusLogUniform(0.5, 0.999),
    dropout=vt.Uniform(0.0, 0.6),
    init_scale=vt.LogUniform(0.1, 10.0),
    weight_decay=vt.LogUniform(1e-7, 1e-2),
)
MODEL = vt.MLP(hidden=2, units=64)
POPULATION, ROUNDS, EPOCHS = 32, 4, 5  # 640 member-epochs


def strategies():
    """name -> (strategy, epochs per member). Strategies not in this version are skipped."""
    out = {
        "random": (vt.RandomSearch(population=POPULATION, rounds=ROUNDS), EPOCHS),
        "coarse_to_fine": (vt.CoarseToFine(population=POPULATION, rounds=ROUNDS), EPOCHS),
        "evolution": (vt.Evolution(population=POPULATION, generations=ROUNDS), EPOCHS),
    }
    if hasattr(vt, "BayesOpt"):
        out["bayesopt_ei"] = (vt.BayesOpt(population=POPULATION, rounds=ROUNDS, acquisition="ei"), EPOCHS)
        out["bayesopt_thompson"] = (vt.BayesOpt(population=POPULATION, rounds=ROUNDS, acquisition="thompson"), EPOCHS)
    if hasattr(vt, "PBT"):
        out["pbt"] = (vt.PBT(population=POPULATION, interval=EPOCHS), EPOCHS * ROUNDS)
    if hasattr(vt, "Hyperband"):
        out["hyperband"] = (vt.Hyperband(max_epochs=EPOCHS * ROUNDS, eta=3), EPOCHS * ROUNDS)
    if hasattr(vt, "BOHB"):
        out["bohb"] = (vt.BOHB(max_epochs=EPOCHS * ROUNDS, eta=3), EPOCHS * ROUNDS)
        # eta=2: five brackets instead of three, about a third of random search's member-epochs
        out["hyperband_eta2"] = (vt.Hyperband(max_epochs=EPOCHS * ROUNDS, eta=2), EPOCHS * ROUNDS)
        out["bohb_eta2"] = (vt.BOHB(max_epochs=EPOCHS * ROUNDS, eta=2), EPOCHS * ROUNDS)
    return out


def member_epochs(result) -> int:
    """Epochs actually trained: finite training-loss entries of every member."""
    return int(np.isfinite(result.curves["train_loss"]).sum())


def spent_and_best(result) -> list[tuple[int, float]]:
    """After each round: (member-epochs spent so far, best validation accuracy so far)."""
    trained = np.isfinite(result.curves["train_loss"]).sum(axis=1)
    rounds = result.members["round"].to_numpy()
    scores = result.members["score"].fillna(-np.inf).to_numpy()
    return [(int(trained[rounds <= r].sum()), float(scores[rounds <= r].max())) for r in np.unique(rounds)]


def epochs_to_reach(row: dict, target: float) -> int | None:
    """Member-epochs a run had spent when its best first reached `target` (None: never)."""
    return next((spent for spent, best in row["by_round"] if best >= target), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default=None, help="comma-separated strategy names")
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    chosen = strategies()
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only.split(",")}
    rows, traces = [], {}
    for name, (strategy, epochs) in chosen.items():
        # warm-up: compile this strategy's programs once, outside the timings
        vt.tune(MODEL, SPACE, data, strategy, epochs=epochs, seed=999, progress=False)
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            result = vt.tune(MODEL, SPACE, data, strategy, epochs=epochs, seed=seed, progress=False)
            seconds = time.perf_counter() - t0
            by_round = result.members.groupby("round")["score"].max().fillna(-np.inf).cummax().to_numpy()
            rounds = max(len(by_round), 1)
            traces.setdefault(name, []).append([(seconds * (i + 1) / rounds, float(v)) for i, v in enumerate(by_round)])
            rows.append({"strategy": name, "seed": seed, "best_val_accuracy": result.best_score,
                         "seconds": round(seconds, 2), "member_epochs": member_epochs(result),
                         "members": len(result), "by_round": spent_and_best(result)})
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for name in chosen:
        mine = [r for r in rows if r["strategy"] == name]
        summary[name] = {"median_best_val_accuracy": float(np.median([r["best_val_accuracy"] for r in mine])),
                         "median_seconds": float(np.median([r["seconds"] for r in mine])),
                         "median_member_epochs": float(np.median([r["member_epochs"] for r in mine]))}
    if "random" in summary:  # member-epochs each run needed to reach random search's median best
        target = summary["random"]["median_best_val_accuracy"]
        for name in chosen:
            reached = [epochs_to_reach(r, target) for r in rows if r["strategy"] == name]
            summary[name]["member_epochs_to_random_best"] = reached
    print(f"\n{'strategy':<20} {'median best acc':>15} {'median s':>9} {'member-epochs':>13}  to random's best")
    for name, s in summary.items():
        print(f"{name:<20} {s['median_best_val_accuracy']:>15.4f} {s['median_seconds']:>9.1f} "
              f"{s['median_member_epochs']:>13.0f}  {s.get('member_epochs_to_random_best', '')}")
    out = {"machine": machine(),
           "budget_member_epochs": POPULATION * ROUNDS * EPOCHS, "seeds": args.seeds, "rows": rows, "summary": summary}
    write_json(args.json, out)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for i, (name, runs) in enumerate(traces.items()):
            for j, trace in enumerate(runs):
                xs, ys = zip(*trace)
                ax.plot(xs, ys, "o-", color=f"C{i}", alpha=0.7, label=name if j == 0 else None)
        ax.set(xlabel="wall-clock seconds", ylabel="best validation accuracy so far", ylim=(0.8, 1.0),
               title=f"digits MLP, {POPULATION * ROUNDS * EPOCHS} member-epochs per search")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
