"""float32 vs bfloat16 matmuls (float32 master weights): speed and what the population learns.

The same P members (digits, MLP 64-128-128-10, batch 64, SGD with momentum, dropout, weight decay)
trained with `vt.MLP(matmul_dtype=...)` "float32" and "bfloat16"; the two alternate for `--rounds`
rounds and each keeps its fastest time. Reports seconds, the speedup, and how far bf16 moves each
member's final validation accuracy and loss from its float32 twin.

    python bench/precision.py --population 256 --epochs 10 --json bench/out/precision_256.json
"""

from __future__ import annotations

import json

import numpy as np

from common import alternating_parser, fastest_alternating, final_validation, machine, training_seconds, write_json
from population_vs_sequential import bench_members, bench_program

DTYPES = ("float32", "bfloat16")


def main():
    args = alternating_parser(__doc__).parse_args()
    p, epochs = args.population, args.epochs
    data, hp, arrays = bench_members(p)
    programs = {dtype: bench_program(data, p, epochs, matmul_dtype=dtype) for dtype in DTYPES}
    best = fastest_alternating({dtype: lambda program=program: training_seconds(program, hp, arrays, p, epochs, repeats=1)
                                for dtype, program in programs.items()}, args.rounds)
    final = {dtype: final_validation(program, hp, arrays, p, epochs) for dtype, program in programs.items()}
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
