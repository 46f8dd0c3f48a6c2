"""BOHB when part of the space diverges: how many of the model's members diverge, against the
random members of the same brackets.

Digits, a 1-hidden-layer MLP (32 units) trained with momentum SGD over learning rates 1e-3 to 30
(the upper decades diverge), vt.BOHB(max_epochs=9, eta=3, iterations=2), `--seeds` seeds. Per seed:
the model's members that diverged / the model's members, the same for the random members of the
brackets after the first (the model proposes only from the second bracket on), and the best
validation accuracy.

    python bench/bohb_failures.py                 # this checkout
    PYTHONPATH=/path/to/old/checkout python bench/bohb_failures.py   # another one, for comparison
"""

from __future__ import annotations

import argparse
import warnings

import vmaptune as vt

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 30.0), momentum=vt.Fixed(0.9), n_units=vt.Fixed(32),
                 n_hidden=vt.Fixed(1), optimizer=vt.Fixed("momentum"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    from common import machine

    print(f"vmaptune {vt.__file__}; {machine()}")
    print("seed | model members diverged | random members diverged (brackets 2+) | best accuracy")
    totals = [0, 0, 0, 0]
    for seed in range(args.seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = vt.tune(vt.MLP(), SPACE, data, vt.BOHB(max_epochs=9, eta=3, iterations=2), epochs=9,
                             batch_size=64, seed=seed, progress=False)
        table = result.members
        later = table["round"] > 0
        diverged = table["status"] == "diverged"
        model, rand = later & (table["proposed_by"] == "model"), later & (table["proposed_by"] == "random")
        row = [int((model & diverged).sum()), int(model.sum()), int((rand & diverged).sum()), int(rand.sum())]
        totals = [t + r for t, r in zip(totals, row)]
        print(f"{seed} | {row[0]} / {row[1]} | {row[2]} / {row[3]} | {result.best_score:.4f}")
    print(f"all | {totals[0]} / {totals[1]} | {totals[2]} / {totals[3]} |")


if __name__ == "__main__":
    main()
