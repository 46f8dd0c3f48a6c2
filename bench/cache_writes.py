"""What a compile costs as the persistent compilation cache fills: JAX's own size cap
(`jax_compilation_cache_max_size`, which lists and stats the whole directory under a file lock at
every write) against vmaptune's way (no cap; the directory pruned once, at import).

Each setting runs in a fresh process with a fresh cache directory and compiles N small distinct
programs (each one a cache miss and a write, like the ~60 small programs of every search plus its
training programs); the seconds of each block of compiles show whether a compile's cost grows with
the entries already there.

    python bench/cache_writes.py --programs 2000 --json bench/out/cache_writes.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
import jax, jax.numpy as jnp
cap = int(sys.argv[1]); n = int(sys.argv[2]); block = int(sys.argv[3])
jax.config.update("jax_compilation_cache_dir", sys.argv[4])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
if cap:
    jax.config.update("jax_compilation_cache_max_size", 2 * 1024**3)
x = jnp.ones(8)
seconds, start = [], time.perf_counter()
for i in range(n):
    jax.jit(lambda v, i=i: jnp.sin(v) * i + i)(x).block_until_ready()  # a new program each time
    if (i + 1) % block == 0:
        now = time.perf_counter()
        seconds.append(now - start)
        start = now
print(json.dumps(seconds))
"""


def run(cap: bool, programs: int, block: int) -> list[float]:
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "VMAPTUNE_COMPILE_CACHE"}
        done = subprocess.run([sys.executable, "-c", CHILD, str(int(cap)), str(programs), str(block), cache],
                              capture_output=True, text=True, env=env, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.dirname(__file__))
    from common import machine, write_json

    figures = {"machine": machine(), "programs": args.programs, "block": args.block}
    for name, cap in (("jax_size_cap", True), ("no_cap_pruned_at_import", False)):
        seconds = run(cap, args.programs, args.block)
        figures[name] = {"block_seconds": seconds, "ms_per_compile_first_block": 1000 * seconds[0] / args.block,
                         "ms_per_compile_last_block": 1000 * seconds[-1] / args.block, "total_seconds": sum(seconds)}
        print(f"{name:>24}: total {sum(seconds):6.1f} s; ms per compile, block by block: "
              + " ".join(f"{1000 * s / args.block:.1f}" for s in seconds))
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
