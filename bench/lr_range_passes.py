"""How a learning-rate range test's suggestion holds up as its steps make more passes over small
data: for each optimizer / batch size and number of steps, vt.lr_range_test's suggestion, then one
member trained 10 epochs at it (validation accuracy). The figures behind lr_finder.MAX_PASSES.

    python bench/lr_range_passes.py --json bench/out/lr_range_passes.json
"""

from __future__ import annotations

import argparse
import warnings

from common import machine, write_json


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 300, 500])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import vmaptune as vt

    warnings.simplefilter("ignore")
    data = vt.load_dataset(args.dataset)
    rows = []
    for optimizer, batch in [("adam", 128), ("sgd", 64), ("adam", 32)]:
        for steps in args.steps:
            test = vt.lr_range_test(vt.MLP(), data, optimizer=optimizer, batch_size=batch, steps=steps)
            s = test.suggestions[0]
            space = vt.Space(learning_rate=vt.Fixed(float(s.suggested)), optimizer=vt.Fixed(optimizer))
            run = vt.tune(vt.MLP(), space, data, vt.RandomSearch(population=1), epochs=args.epochs, batch_size=batch,
                          progress=False)
            row = {"optimizer": optimizer, "batch_size": batch, "steps": steps,
                   "passes": round(steps * batch / data.n_train, 1), "suggested": float(s.suggested),
                   "val_accuracy": round(float(run.best_score), 3), "warned": any("passes" in w for w in s.warnings)}
            rows.append(row)
            print(row, flush=True)
    write_json(args.json, {"dataset": args.dataset, "n_train": data.n_train, "epochs": args.epochs, "rows": rows,
                           "machine": machine()})


if __name__ == "__main__":
    main()
