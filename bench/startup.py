"""A new process's first search: where its time goes, with a cold, a warm and no persistent
compile cache (every compile cached, vmaptune's default, or only those of 0.2 s or more), and
with no cache and every training program compiled with LLVM's optimisations (the search trains
for a moment, so it normally takes engine.train_chunk_quick). Each run is a fresh Python process
running the same small search (iris, P = 8, 2 epochs), so import, tracing and compile costs are
what a user meets at every start.

    python bench/startup.py --json bench/out/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from common import machine, write_json

SEARCH = """
import json, sys, time
started = time.perf_counter()
import jax
import vmaptune as vt
jax.config.update("jax_persistent_cache_min_compile_time_secs", float(sys.argv[1]))
if sys.argv[2] == "usual":  # every training program compiled with LLVM's optimisations
    import vmaptune.costs
    vmaptune.costs.QUICK_COMPILE_SAVES = 0.0
data = vt.load_dataset("iris")
data_seconds = time.perf_counter() - started - vt.startup.IMPORT_SECONDS
result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), data,
                 vt.RandomSearch(population=8), epochs=2, progress=False)
print(json.dumps({**result.settings["time"], "data_seconds": round(data_seconds, 3)}))
"""


def fresh_process(cache: str, min_seconds: float = 0.0, compile: str = "auto") -> dict:
    env = {**os.environ, "VMAPTUNE_COMPILE_CACHE": cache}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", SEARCH, str(min_seconds), compile], env=env, capture_output=True,
                          text=True, check=True)
    return {"process_seconds": round(time.perf_counter() - start, 3), **json.loads(done.stdout.strip().splitlines()[-1])}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    out = {"machine": machine(), "runs": {}}
    out["runs"]["no cache"] = fresh_process("0")
    out["runs"]["no cache, quick compile off"] = fresh_process("0", compile="usual")
    with tempfile.TemporaryDirectory() as cache:  # vmaptune's setting: every compile cached
        out["runs"]["cold cache"] = fresh_process(cache)
        out["runs"]["warm cache"] = fresh_process(cache)
    with tempfile.TemporaryDirectory() as cache:  # only compiles of 0.2 s or more cached
        out["runs"]["warm cache, compiles >= 0.2 s only"] = (fresh_process(cache, 0.2), fresh_process(cache, 0.2))[1]
    for name, row in out["runs"].items():
        print(f"{name}: {row}")
    write_json(args.json, out)


if __name__ == "__main__":
    main()
