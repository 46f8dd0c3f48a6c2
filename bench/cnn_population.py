"""A user's CNN as a population: the vmapped population against the same members trained one by one
with the same compiled per-member program, and the member-block layouts on this machine.

Digits as 8x8x1 images; the CNN of scripts/cnn_digits.py (conv 3x3 with `features` channels,
BatchNorm, vt.nn.Dropout, dense head); SGD; batch 64. Every variant trains the same P members;
seconds exclude compilation; variants alternate for `--rounds` rounds, each keeping its fastest.

    python bench/cnn_population.py --population 32 --epochs 5 --json bench/out/cnn_32.json
"""

from __future__ import annotations

import json
import sys
import time

import jax
import numpy as np
import sklearn.datasets

import vmaptune as vt
from common import alternating_parser, fastest_alternating, machine, training_seconds, write_json
from vmaptune import engine
from vmaptune.population import PopulationRun

sys.path.insert(0, "scripts")
from cnn_digits import CNN  # noqa: E402

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), dropout=vt.Uniform(0.0, 0.3), features=vt.Fixed(8))
BATCH = 64


def images():
    X, y = sklearn.datasets.load_digits(return_X_y=True)
    return vt.Dataset.from_arrays(X.reshape(-1, 8, 8, 1), y, task="classification")


def one_by_one(program, hp, arrays, population, epochs):
    """The P = 1 program run for each member in turn (compiled once, before timing)."""
    def member(i):
        run = PopulationRun(program, {k: v[i:i + 1] for k, v in hp.items()}, arrays, member_ids=[i], seed=0,
                            epochs=epochs)
        run.train(epochs, chunk_epochs=epochs)
        jax.block_until_ready(run.state.members.params)
        return run.curves["val_score"][0, -1]

    member(0)
    t = time.perf_counter()
    scores = [member(i) for i in range(population)]
    return time.perf_counter() - t, np.asarray(scores)


def main():
    parser = alternating_parser(__doc__, population=32, epochs=5, rounds=2)
    args = parser.parse_args()
    p, epochs = args.population, args.epochs
    data = images()
    arrays = engine.data_arrays(data)
    hp = SPACE.numeric(SPACE.sample(jax.random.key(0), p))
    model = vt.Linen(CNN)
    layouts = {"default": None, "member_block=1": 1, "member_block=4": 4, "member_block=0 (all at once)": 0}
    programs = {name: vt.build_program(model, SPACE, data, batch_size=BATCH, member_block=block)
                for name, block in layouts.items()}
    t = time.perf_counter()
    training_seconds(programs["default"], hp, arrays, p, epochs, repeats=1)
    compile_and_one = time.perf_counter() - t
    best = fastest_alternating({name: lambda program=program: training_seconds(program, hp, arrays, p, epochs,
                                                                               repeats=1)
                                for name, program in programs.items()}, args.rounds)
    single = vt.build_program(model, SPACE, data, batch_size=BATCH, devices=1)
    sequential, scores_alone = one_by_one(single, hp, arrays, p, epochs)
    together = PopulationRun(programs["default"], hp, arrays, member_ids=np.arange(p), seed=0, epochs=epochs)
    together.train(epochs, chunk_epochs=epochs)
    scores = together.curves["val_score"][:, -1]
    out = {
        "population": p, "epochs": epochs, "batch_size": BATCH, "rounds": args.rounds,
        "default_member_block": programs["default"].member_block, "devices": programs["default"].devices,
        "population_seconds": {k: round(v, 3) for k, v in best.items()},
        "one_by_one_seconds": round(sequential, 3),
        "speedup_vs_one_by_one": round(sequential / best["default"], 2),
        "member_epochs_per_second": round(p * epochs / best["default"], 1),
        "first_call_seconds_with_compile": round(compile_and_one, 2),
        "same_final_score_share": float(np.mean(np.abs(scores - scores_alone) <= 0.01)),
        "best_final_accuracy": float(np.nanmax(scores)),
        "machine": machine(),
    }
    print(json.dumps(out, indent=2))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
