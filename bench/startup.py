"""A new process's first search: where its time goes, with a cold, a warm and no persistent
compile cache (every compile cached, vmaptune's default, or only those of 0.2 s or more), and
with no cache and every training program compiled with LLVM's optimisations (the search trains
for a moment, so it normally takes engine.train_chunk_quick). Each run is a fresh Python process
running the same small search (iris, P = 8, 2 epochs), so import, tracing and compile costs are
what a user meets at every start.

    python bench/startup.py --json bench/out/startup.json
    python bench/startup.py --against /tmp/old --repeat 4   # A/B: this tree against a checkout, cache off

--against alternates fresh no-cache processes importing this tree's vmaptune and the one at the
given checkout (e.g. `git worktree add /tmp/old HEAD~1`), and prints each side's tune and compile
seconds.
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


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh_process(cache: str, min_seconds: float = 0.0, compile: str = "auto", tree: str = ROOT,
                  home: str | None = None) -> dict:
    """One fresh Python process running SEARCH with vmaptune imported from `tree` (a checkout);
    home: its XDG_CACHE_HOME (where vmaptune remembers this machine's compile times)."""
    path = os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "VMAPTUNE_COMPILE_CACHE": cache, "PYTHONPATH": path}
    if home is not None:
        env["XDG_CACHE_HOME"] = home
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:  # not the repository: `python -c` puts the cwd first on sys.path
        done = subprocess.run([sys.executable, "-c", SEARCH, str(min_seconds), compile], env=env, cwd=cwd,
                              capture_output=True, text=True, check=True)
    return {"process_seconds": round(time.perf_counter() - start, 3), **json.loads(done.stdout.strip().splitlines()[-1])}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", default=None)
    parser.add_argument("--against", default=None, help="another checkout: A/B with the cache off")
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    out = {"machine": machine(), "runs": {}}
    if args.against:
        sides = {"this tree": ROOT, args.against: os.path.abspath(args.against)}
        homes = {name: tempfile.mkdtemp(prefix="vmaptune-startup-home-") for name in sides}  # no shared memory
        out["ab"] = {name: [] for name in sides}
        for repeat in range(args.repeat):  # alternating which side goes first
            for name in (list(sides) if repeat % 2 == 0 else list(sides)[::-1]):
                out["ab"][name].append(fresh_process("0", tree=sides[name], home=homes[name]))
        for name, rows in out["ab"].items():
            print(f"{name}: tune s {[r['total_seconds'] for r in rows]}, compile s {[r['compile_seconds'] for r in rows]}")
        write_json(args.json, out)
        return
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
