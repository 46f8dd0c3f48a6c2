"""Where a first search's compile time goes: the seed-004 digits search's training program
(PopulationSearchCV, 64 candidates x 3 folds), captured at its first call and compiled again here:
lowering and XLA compile seconds, HLO size, fusions by the JAX operation they came from, and the
seconds of 5 epochs once compiled; the initialisation program compiled with XLA's default
optimisation and at level 0 (vmaptune's); the cost of random numbers in a program: one vmapped
threefry (fold_in + bits) against several.

    VMAPTUNE_COMPILE_CACHE=0 python bench/compile_time.py --json bench/out/compile_time.json
    XLA_FLAGS=--xla_backend_optimization_level=1 VMAPTUNE_COMPILE_CACHE=0 python bench/compile_time.py

Run it with XLA_FLAGS set to price a flag; alternate runs to see past this machine's noise.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import time

import jax
import jax.numpy as jnp
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import vmaptune as vt
from common import machine, write_json
from vmaptune import engine


class Captured(Exception):
    pass


def capture_training_programs(calls: int = 1, epochs: int = 100) -> list[tuple]:
    """(program, state, hp, controls, data, order_key) of the search's first `calls` training calls
    (its groups' first chunks; the search trains `epochs` epochs, which also sets its plan)."""
    captured, original = [], engine.train_chunk

    def capture(program, *args, **kwargs):
        captured.append((program, *[jax.tree.map(lambda x: x.copy(), a) for a in args[:5]]))  # calls donate state
        if len(captured) >= calls:
            raise Captured
        return original(program, *args, **kwargs)

    engine.train_chunk = capture
    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=100, batch_size=64, optimizer="adam"),
                                   {"n_hidden": [1, 2], "n_units": [16, 32, 64, 128],
                                    "weight_decay": loguniform(1e-6, 1e-2), "learning_rate": loguniform(1e-4, 1e-2)},
                                   n_iter=64, cv=3, random_state=0, epochs=epochs)
    try:
        search.fit(X_train, y_train)
    except Captured:
        pass
    finally:
        engine.train_chunk = original
    return captured


def fastest_call(compiled, state, *args, repeats: int = 3) -> float:
    """Seconds of the fastest of `repeats` calls of a compiled training chunk, each on a fresh
    copy of `state` (a call donates its state)."""
    seconds = []
    for _ in range(repeats):
        fresh = jax.tree.map(lambda x: x.copy(), state)
        jax.block_until_ready(fresh)
        started = time.perf_counter()
        jax.block_until_ready(compiled(fresh, *args))
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def fusion_sources(hlo: str, top: int = 8) -> list[tuple[str, int]]:
    """The JAX operations the compiled program's fusions came from (last 3 name-stack parts)."""
    counts = collections.Counter()
    for line in hlo.splitlines():
        if " fusion(" in line:
            found = re.search(r'op_name="([^"]*)"', line)
            name = re.sub(r"\[.*?\]", "", found.group(1)) if found else "?"
            counts["/".join(name.split("/")[-3:])] += 1
    return counts.most_common(top)


def training_program() -> dict:
    program, state, hp, controls, data, order_key = capture_training_programs()[0]
    started = time.perf_counter()
    lowered = engine.train_chunk.lower(program, state, hp, controls, data, order_key, 5)
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    compiled_at = time.perf_counter()
    five_epochs = fastest_call(compiled, state, hp, controls, data, order_key)
    hlo = compiled.as_text()
    return {"rows": state.size, "max_width": getattr(program.model, "net", None) and program.model.net.max_width,
            "member_block": program.member_block, "lower_seconds": round(lowered_at - started, 3),
            "compile_seconds": round(compiled_at - lowered_at, 3), "hlo_lines": hlo.count("\n"),
            "fusions": hlo.count("fusion("), "fusion_sources": fusion_sources(hlo),
            "five_epochs_seconds": round(five_epochs, 3)}


def initialisation_program() -> dict:
    """Compile seconds of the 256-member initialisation program of the search's space (the widest
    MLP), XLA's default optimisation against vmaptune's level 0 (engine.INIT_COMPILER_OPTIONS),
    in that order (the first compile of a process also pays a fixed cost)."""
    data = vt.load_dataset("digits")
    space = vt.Space(n_hidden=vt.IntUniform(1, 2), n_units=vt.Choice([16, 32, 64, 128]),
                     learning_rate=vt.LogUniform(1e-4, 1e-2), weight_decay=vt.LogUniform(1e-6, 1e-2),
                     optimizer=vt.Fixed("adam"))
    program = vt.build_program(vt.MLP(), space, data, batch_size=64)
    hp = space.numeric(space.sample(jax.random.key(0), 256))
    args = (program, hp, program.controls(hp, data.n_train, 100), jnp.arange(256), jax.random.key(0),
            jnp.ones(256, bool))
    out = {}
    for name, init in (("default", jax.jit(engine._init, static_argnames="program")),
                       ("level 0", engine.init_population)):
        t = time.perf_counter()
        init.lower(*args).compile()
        out[name] = round(time.perf_counter() - t, 3)
    return out


def random_numbers() -> dict:
    """Compile seconds of a program drawing n vmapped threefry streams (and one unvmapped)."""
    jax.jit(lambda x: x * 2 + 1).lower(jnp.ones(3)).compile()  # the first compile's fixed cost, out of the way
    keys = jax.random.split(jax.random.key(0), 256)
    out = {}
    for n in (1, 4, 10, 20):
        draw = jax.jit(jax.vmap(lambda k, n=n: jnp.stack([jax.random.bits(jax.random.fold_in(k, i), (4,))
                                                          for i in range(n)])))
        t = time.perf_counter()
        draw.lower(keys).compile()
        out[f"vmapped x{n}"] = round(time.perf_counter() - t, 3)
    one = jax.jit(lambda k: jax.random.bits(jax.random.fold_in(k, 3), (4,)))
    t = time.perf_counter()
    one.lower(jax.random.key(1)).compile()
    out["unvmapped x1"] = round(time.perf_counter() - t, 3)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    out = {"machine": machine(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
           "training_program": training_program(), "initialisation_program": initialisation_program(),
           "random_number_compiles": random_numbers()}
    for key, value in out.items():
        print(f"{key}: {value}")
    write_json(args.json, out)


if __name__ == "__main__":
    main()
