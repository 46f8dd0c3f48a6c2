"""float32 vs bfloat16 matmuls (float32 master weights): speed and what the population learns.

The same P members (digits, MLP 64-128-128-10, batch 64, SGD with momentum, dropout, weight decay)
trained with `vt.MLP(matmul_dtype=...)` "float32" and "bfloat16"; the two alternate for `--rounds`
rounds and each keeps its fastest time. Reports seconds, the speedup, and how far bf16 moves each
member's final validation accuracy and loss from its float32 twin.

    python bench/precision.py --population 256 --epochs 10 --json bench/out/precision_256.json
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

import vmaptune as vt
from common import machine, training_seconds, write_json
from population_vs_sequential import BATCH, SPACE
from vmaptune import engine
from vmaptune.tune import _prepare

DTYPES = ("float32", "bfloat16")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    p, epochs = args.population, args.epochs
    hp = SPACE.numeric(SPACE.sample(jax.random.key(0), p))
    arrays = engine.data_arrays(data)
    programs = {dtype: _prepare(vt.MLP(hidden=2, units=128, matmul_dtype=dtype), SPACE, data, vt.RandomSearch(p),
                                epochs=epochs, seed=0, metric=None, batch_size=BATCH, chunk_epochs=epochs,
                                shared_order=True)[0] for dtype in DTYPES}
    best = {dtype: float("inf") for dtype in DTYPES}
    for _ in range(args.rounds):
        for dtype, program in programs.items():
            best[dtype] = min(best[dtype], training_seconds(program, hp, arrays, p, epochs, repeats=1))
    final = {}
    for dtype, program in programs.items():
        _, curves = engine.run_population(program, hp, arrays, member_ids=jnp.arange(p), seed=0, epochs=epochs,
                                          chunk_epochs=epochs)
        final[dtype] = {k: curves[k][:, -1] for k in ("val_score", "val_loss")}
    f32, bf16 = final["float32"], final["bfloat16"]
    stable = np.isfinite(f32["val_loss"]) & np.isfinite(bf16["val_loss"])
    figures = {
        "population": p, "epochs": epochs, "rounds": args.rounds, "machine": machine(),
        "seconds": {dtype: round(best[dtype], 3) for dtype in DTYPES},
        "bfloat16_speedup": round(best["float32"] / best["bfloat16"], 2),
        "median_accuracy": {dtype: float(np.nanmedian(final[dtype]["val_score"])) for dtype in DTYPES},
        "best_accuracy": {dtype: float(np.nanmax(final[dtype]["val_score"])) for dtype in DTYPES},
        "median_abs_accuracy_difference": float(np.median(np.abs(f32["val_score"] - bf16["val_score"])[stable])),
        "median_relative_val_loss_difference": float(np.median(
            (np.abs(f32["val_loss"] - bf16["val_loss"]) / np.abs(f32["val_loss"]))[stable])),
        "diverged": {dtype: int(np.sum(~np.isfinite(final[dtype]["val_loss"]))) for dtype in DTYPES},
    }
    print(json.dumps(figures, indent=2))
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
