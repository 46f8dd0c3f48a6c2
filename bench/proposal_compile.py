"""BayesOpt's proposal program compiled with XLA's defaults (acquisition.propose_batch) against
compiled quick (acquisition.propose_batch_quick, compile_cache.QUICK_COMPILER_OPTIONS): seconds to
compile each and seconds per proposal, for EI and Thompson, populations of 8 and 64, and histories
of several sizes. The numbers behind acquisition.PROPOSAL_QUICK_SAVES / PROPOSAL_QUICK_SLOWDOWN
and `proposal_seconds`.

Each case runs in a fresh process with the persistent compile cache off, so every compile is a
cold one. The space is bench/vs_optuna.py's (two integers, a choice of three, two log-uniforms).

    python bench/proposal_compile.py --json bench/out/proposal_compile.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import machine, write_json

CASE = """
import json, sys, time
import jax, numpy as np
import vmaptune as vt
from vmaptune import acquisition

acq, population, sizes = sys.argv[1], int(sys.argv[2]), [int(n) for n in sys.argv[3].split(",")]
STATIC = ("settings", "encoding")
measured = {}


def timing(name, program):
    def call(*args, **kwargs):  # lower once, compile (timed), then time three proposals
        started = time.perf_counter()
        lowered = program.lower(*args, **kwargs)
        lowered_at = time.perf_counter()
        compiled = lowered.compile()
        compile_seconds = time.perf_counter() - lowered_at
        dynamic = {k: v for k, v in kwargs.items() if k not in STATIC}
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            out = jax.block_until_ready(compiled(*args, **dynamic))
            runs.append(time.perf_counter() - t)
        measured[name] = {"lower_seconds": round(lowered_at - started, 3), "compile_seconds": round(compile_seconds, 3),
                          "propose_seconds": round(min(runs), 4)}
        return out
    return call


space = vt.Space(n_hidden=vt.IntUniform(1, 2), n_units=vt.Choice([32, 64, 128]),
                 learning_rate=vt.LogUniform(1e-4, 1e-2), weight_decay=vt.LogUniform(1e-6, 1e-2))
strategy = vt.BayesOpt(population=population, rounds=1000, acquisition=acq)
state = strategy.init(space, jax.random.key(0))
rng = np.random.default_rng(0)
programs = {"usual": acquisition.propose_batch, "quick": acquisition.propose_batch_quick}
rows = {}
for n in sizes:
    state = state.replace(X=rng.uniform(size=(n, state.encoding.width)), y=rng.normal(size=n),
                          design_next=len(state.design))
    for name, program in programs.items():  # whichever the strategy would pick, it calls this one
        acquisition.propose_batch = acquisition.propose_batch_quick = timing(name, program)
        strategy.ask(state, jax.random.key(1))
        jax.clear_caches()  # the next size and program compile from scratch
    rows[n] = dict(measured)
print(json.dumps(rows))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,512,1536", help="observations in the history")
    parser.add_argument("--populations", default="8,64")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    env = {**os.environ, "VMAPTUNE_COMPILE_CACHE": "0"}
    results = []
    print("| acquisition | population | observations | compile usual | compile quick | propose usual | "
          "propose quick | slowdown |")
    print("|---|---|---|---|---|---|---|---|")
    for acq in ("ei", "thompson"):
        for population in args.populations.split(","):
            done = subprocess.run([sys.executable, "-c", CASE, acq, population, args.sizes], env=env,
                                  capture_output=True, text=True, check=True, cwd="/")
            for n, row in json.loads(done.stdout.strip().splitlines()[-1]).items():
                usual, quick = row["usual"], row["quick"]
                slowdown = quick["propose_seconds"] / usual["propose_seconds"]
                results.append({"acquisition": acq, "population": int(population), "observations": int(n),
                                "usual": usual, "quick": quick, "slowdown": round(slowdown, 2)})
                print(f"| {acq} | {population} | {n} | {usual['compile_seconds']} | {quick['compile_seconds']} | "
                      f"{usual['propose_seconds']} | {quick['propose_seconds']} | {slowdown:.2f} |", flush=True)
    write_json(args.json, {"rows": results, "machine": machine()})


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
