"""Throughput of one search split over 1, 2 and 4 local processes (JAX's distributed runtime,
CPU devices, gloo collectives) against one process with the same devices in all.

Every row trains the same population (digits MLP, RandomSearch of P members) through `vt.tune`
in each process; the processes share the machine's cores, so the row with more processes shows
what the distributed runtime costs (gathering each chunk's curves, agreeing on layouts), not more
hardware. A warm-up search runs first in every process; the figure is the second search's
wall-clock (compiles done).

    python bench/multiprocess.py --json bench/out/multiprocess.json [--population 256 --epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

WORKER = """
import json, sys, time
import vmaptune as vt
port, count, index, population, epochs, chunk = sys.argv[1:7]
if int(count) > 1:
    vt.distributed.initialize(f"localhost:{port}", int(count), int(index))
data = vt.load_dataset("digits")
space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), momentum=vt.OneMinusLogUniform(0.5, 0.99))
def search(seed):
    started = time.perf_counter()
    result = vt.tune(vt.MLP(), space, data, vt.RandomSearch(population=int(population)), epochs=int(epochs),
                     chunk_epochs=int(chunk), seed=seed, progress=False)
    return time.perf_counter() - started, result
first, _ = search(0)
second, result = search(1)
if vt.distributed.is_primary():
    print(json.dumps({"first_seconds": round(first, 3), "seconds": round(second, 3),
                      "devices": result.settings["devices"], "best": float(result.best_score)}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run(processes: int, devices: int, population: int, epochs: int, chunk: int) -> dict:
    env = {**os.environ, "VMAPTUNE_CPU_DEVICES": str(max(devices // processes, 1)), "VMAPTUNE_COMPILE_CACHE": "0"}
    env.pop("XLA_FLAGS", None)
    port = free_port()
    started = [subprocess.Popen([sys.executable, "-c", WORKER, str(port), str(processes), str(i), str(population),
                                 str(epochs), str(chunk)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for i in range(processes)]
    outputs = [p.communicate(timeout=900) for p in started]
    for p, (_, err) in zip(started, outputs):
        if p.returncode:
            raise RuntimeError(f"a worker failed:\n{err[-3000:]}")
    row = json.loads(outputs[0][0].strip().splitlines()[-1])
    member_epochs = population * epochs
    return {"processes": processes, **row, "member_epochs_per_second": round(member_epochs / row["seconds"], 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--chunk-epochs", type=int, default=1, help="epochs per compiled call (one gather each)")
    parser.add_argument("--devices", type=int, default=os.cpu_count(), help="CPU devices in all, split over processes")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(__file__))
    from common import machine, write_json

    rows = []
    for processes in (1, 2, 4):
        started = time.perf_counter()
        row = run(processes, args.devices, args.population, args.epochs, args.chunk_epochs)
        row["launch_seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(f"{processes} process(es), {row['devices']} devices: second search {row['seconds']:.2f} s "
              f"({row['member_epochs_per_second']} member-epochs/s, {rows[0]['seconds'] / row['seconds']:.2f}x one "
              f"process), first {row['first_seconds']:.2f} s, best {row['best']:.4f}", flush=True)
    write_json(args.json, {"machine": machine(), "population": args.population, "epochs": args.epochs,
                           "chunk_epochs": args.chunk_epochs, "rows": rows})


if __name__ == "__main__":
    main()
