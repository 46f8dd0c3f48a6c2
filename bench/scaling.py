"""How population training scales with P: throughput, compile time, memory, and utilisation.

For each population size P: member-epochs per second, compile seconds, memory per member (from
XLA's memory analysis of the compiled program), and achieved training FLOP/s (forward + backward
matmul FLOPs) next to the machine's own dense-matmul peak, measured in the same run with a large
jitted matmul. Task: digits, MLP 64-128-128-10, batch 64, SGD with momentum and dropout.

    python bench/scaling.py --populations 1,4,16,64,256,1024 --epochs 3 --json bench/out/scaling.json \\
        --plot bench/out/scaling.png
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import vmaptune as vt
from common import machine, training_seconds, write_json
from vmaptune import engine
from vmaptune.population import PopulationRun

SPACE = vt.Space(
    learning_rate=vt.LogUniform(1e-3, 1e-1),
    momentum=vt.OneMinusLogUniform(0.5, 0.99),
    dropout=vt.Uniform(0.0, 0.3),
    weight_decay=vt.LogUniform(1e-6, 1e-3),
)
HIDDEN, BATCH = (128, 128), 64


def matmul_peak(n: int, repeats: int = 10) -> float:
    """FLOP/s of a large jitted float32 matmul: this machine's dense-matmul ceiling."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / float(np.median(times))


def training_flops(data, steps_per_epoch: int, population: int, epochs: int) -> float:
    widths = [data.n_features, *HIDDEN, data.n_outputs]
    per_row = sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))
    train = 3 * per_row * BATCH * steps_per_epoch  # backward = 2 x forward
    evaluate = per_row * data.X_val.shape[0]
    return (train + evaluate) * epochs * population


def measure(data, population: int, epochs: int, devices=None, member_block=None) -> dict:
    program = vt.build_program(vt.MLP(hidden=2, units=128), SPACE, data, batch_size=BATCH, devices=devices,
                               member_block=member_block)
    hp = SPACE.numeric(SPACE.sample(jax.random.key(population), population))
    arrays = engine.data_arrays(data)
    run = PopulationRun(program, hp, arrays, member_ids=np.arange(population), seed=0, epochs=epochs)
    run.train(0)  # places state, settings and data as training will
    t0 = time.perf_counter()
    compiled = engine.train_chunk.lower(program, run.state, run.hp, run.controls, run.data, run.order_key,
                                        epochs).compile()
    compile_s = time.perf_counter() - t0
    memory = compiled.memory_analysis()  # of one device's share when the population is split
    shards = len(run.state.status.active.sharding.device_set)
    mem_bytes = None
    if memory is not None:
        mem_bytes = shards * (memory.argument_size_in_bytes + memory.output_size_in_bytes
                              + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
    seconds = training_seconds(program, hp, arrays, population, epochs)
    flops = training_flops(data, program.steps_per_epoch(data.n_train), population, epochs)
    return {
        "population": population, "seconds": round(seconds, 4), "compile_seconds": round(compile_s, 3),
        "member_epochs_per_second": round(population * epochs / seconds, 1),
        "gflops_per_second": round(flops / seconds / 1e9, 2),
        "bytes_per_member": None if mem_bytes is None else int(mem_bytes / population),
        "devices": program.devices, "member_block": program.member_block,
    }


def plot(rows, peak, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = [r["population"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.plot(p, [r["member_epochs_per_second"] for r in rows], "o-")
    a.set(xscale="log", yscale="log", xlabel="population P", ylabel="member-epochs / s", title="throughput")
    b.plot(p, [100 * r["gflops_per_second"] * 1e9 / peak for r in rows], "o-")
    b.set(xscale="log", xlabel="population P", ylabel="% of measured matmul peak", title="utilisation")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--populations", default="1,4,16,64,256,1024")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--peak-size", type=int, default=None, help="matmul size for the peak (default 2048 CPU, 8192 GPU)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    data = vt.load_dataset("digits")
    device = jax.devices()[0]
    peak = matmul_peak(args.peak_size or (8192 if device.platform == "gpu" else 2048))
    rows = []
    for p in (int(x) for x in args.populations.split(",")):
        row = measure(data, p, args.epochs)
        row["utilisation"] = round(row["gflops_per_second"] * 1e9 / peak, 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    base = rows[0]["compile_seconds"]
    out = {"machine": machine(),
           "matmul_peak_gflops_per_second": round(peak / 1e9, 1), "epochs": args.epochs, "rows": rows,
           "compile_ratio_largest_vs_smallest": round(rows[-1]["compile_seconds"] / base, 2)}
    print(f"\nmatmul peak {peak / 1e9:.1f} GFLOP/s on {out['machine']}")
    print(f"{'P':>6} {'s':>8} {'compile s':>9} {'member-ep/s':>11} {'GFLOP/s':>8} {'util':>6} {'bytes/member':>12}")
    for r in rows:
        print(f"{r['population']:>6} {r['seconds']:>8.3f} {r['compile_seconds']:>9.2f} {r['member_epochs_per_second']:>11.1f} "
              f"{r['gflops_per_second']:>8.1f} {100 * r['utilisation']:>5.1f}% {r['bytes_per_member'] or 0:>12}")
    write_json(args.json, out)
    if args.plot:
        plot(rows, peak, args.plot)


if __name__ == "__main__":
    main()
