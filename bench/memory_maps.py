"""A long process that searches many different models: memory maps held after each search, per
compiled program, and what compile_cache.release_if_near_map_limit gives back (README, "Hundreds
of models in one process"). Linux stops a process at vm.max_map_count maps and XLA then crashes
inside a compile, so the figure that matters is maps per compiled program.

    python bench/memory_maps.py --searches 12 --share 0.06 --json bench/out/memory_maps.json

--share lowers compile_cache.MAP_LIMIT_SHARE so that the release happens within a short loop
(0.06 of 65530 is about 3900 maps); each search is iris, RandomSearch(8), 2 epochs, an MLP of its
own depth and width (new programs every time), persistent cache off.
"""

from __future__ import annotations

import argparse
import os
import warnings

os.environ.setdefault("VMAPTUNE_COMPILE_CACHE", "0")  # every program compiled in this process

import jax  # noqa: E402

import vmaptune as vt  # noqa: E402
from vmaptune import compile_cache  # noqa: E402

from common import machine, write_json  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=12)
    parser.add_argument("--share", type=float, default=compile_cache.MAP_LIMIT_SHARE)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if compile_cache.memory_maps() is None:
        raise SystemExit("this system reports no memory maps (/proc/self/maps): Linux only")
    compile_cache.MAP_LIMIT_SHARE = args.share
    compiles = [0]
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **_: compiles.__setitem__(0, compiles[0] + 1)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))
    rows, start = [], compile_cache.memory_maps()[0]
    print(f"maps at start {start} of {compile_cache.memory_maps()[1]}")
    for i in range(args.searches):
        before, compiled = compile_cache.memory_maps()[0], compiles[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vt.tune(vt.MLP(hidden=1 + i % 3, units=8 * (1 + i)), space, data, vt.RandomSearch(population=8),
                    epochs=2, seed=i, progress=False)
        after = compile_cache.memory_maps()[0]
        released = any("max_map_count" in str(w.message) for w in caught)
        row = {"search": i, "maps": after, "added": after - before, "programs": compiles[0] - compiled,
               "released_first": released}
        row["maps_per_program"] = None if released or not row["programs"] else round(row["added"] / row["programs"], 1)
        rows.append(row)
        print(row, flush=True)
    per_program = [r["maps_per_program"] for r in rows if r["maps_per_program"] is not None]
    summary = {"machine": machine(), "share": args.share, "maps_at_start": start, "rows": rows,
               "median_maps_per_program": sorted(per_program)[len(per_program) // 2] if per_program else None}
    print("median maps per compiled program:", summary["median_maps_per_program"])
    write_json(args.json, summary)


if __name__ == "__main__":
    main()
