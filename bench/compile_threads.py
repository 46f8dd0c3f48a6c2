"""Whether a CPU has cores to spare for compiling in the background (vmaptune/ahead.py): the
seed-004 digits search's first training program (bench/compile_time.py captures it), lowered
for 1, 2 and 3 epochs per chunk (three distinct programs), compiled one after another and in
three threads, with the CPU seconds each took; and the CPU seconds per wall second of five
epochs of training once compiled.

    VMAPTUNE_COMPILE_CACHE=0 python bench/compile_threads.py --json bench/out/compile_threads.json
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ThreadPoolExecutor

import jax

from common import machine, write_json
from compile_time import capture_training_programs
from vmaptune import engine


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compile_all(lowered, threads: bool) -> dict:
    jax.clear_caches()
    cpu, wall = cpu_seconds(), time.perf_counter()
    if threads:
        with ThreadPoolExecutor(len(lowered)) as pool:
            list(pool.map(lambda lowering: lowering.compile(), lowered))
    else:
        for lowering in lowered:
            lowering.compile()
    wall = time.perf_counter() - wall
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu_seconds() - cpu, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    program, state, hp, controls, data, key = capture_training_programs(calls=1)[0]
    jax.clear_caches()
    out = {"machine": machine(), "in series": [], "three threads": []}
    for _ in range(args.rounds):  # alternating; each compile_all lowers afresh after clearing the caches
        for label, threads in (("in series", False), ("three threads", True)):
            lowered = [engine.train_chunk.lower(program, state, hp, controls, data, key, n) for n in (1, 2, 3)]
            out[label].append(compile_all(lowered, threads))
            print(label, out[label][-1], flush=True)
    compiled = engine.train_chunk.lower(program, state, hp, controls, data, key, 5).compile()
    fresh = (lambda: jax.tree.map(lambda x: x.copy(), state))
    jax.block_until_ready(compiled(fresh(), hp, controls, data, key))
    copy = fresh()
    cpu, wall = cpu_seconds(), time.perf_counter()
    jax.block_until_ready(compiled(copy, hp, controls, data, key))
    wall = time.perf_counter() - wall
    out["training"] = {"five_epochs_seconds": round(wall, 3), "cores_busy": round((cpu_seconds() - cpu) / wall, 2)}
    print("training", out["training"])
    write_json(args.json, out)


if __name__ == "__main__":
    main()
