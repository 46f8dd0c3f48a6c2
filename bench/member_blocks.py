"""How many members a CPU should step at a time: the seed-004 digits search's training programs
(PopulationSearchCV, 64 candidates x 3 folds, 2 epochs so the plan is one padded 128-wide group),
captured at their first call and timed for five epochs at several member blocks (0: all at once).
The automatic block (program.member_block) comes from a member's buffer bytes.

    VMAPTUNE_COMPILE_CACHE=0 python bench/member_blocks.py 2 4 8 16 32 0
"""

from __future__ import annotations

import dataclasses
import sys
import time

import jax
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import vmaptune as vt
from vmaptune import engine


class Captured(Exception):
    pass


def captured_programs(groups: int = 4) -> list[tuple]:
    """(program, state, hp, controls, data, order_key) of the search's first training calls."""
    calls, original = [], engine.train_chunk

    def capture(program, *args, **kwargs):
        calls.append((program, *[jax.tree.map(lambda x: x.copy(), a) for a in args[:5]]))
        if len(calls) >= groups:
            raise Captured
        return original(program, *args, **kwargs)

    engine.train_chunk = capture
    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=100, batch_size=64, optimizer="adam"),
                                   {"n_hidden": [1, 2], "n_units": [16, 32, 64, 128],
                                    "weight_decay": loguniform(1e-6, 1e-2), "learning_rate": loguniform(1e-4, 1e-2)},
                                   n_iter=64, cv=3, random_state=0, epochs=2)
    try:
        search.fit(X_train, y_train)
    except Captured:
        pass
    finally:
        engine.train_chunk = original
    return calls


def main():
    blocks = [int(b) for b in sys.argv[1:]] or [2, 4, 8, 16, 32, 0]
    seen = set()
    for program, state, hp, controls, data, order_key in captured_programs():
        shape = (program.model.net.max_width, state.size)
        if shape in seen:
            continue
        seen.add(shape)
        print(f"group {shape[0]} units wide, {shape[1]} rows, automatic block {program.member_block}", flush=True)
        for block in blocks:
            compiled = engine.train_chunk.lower(dataclasses.replace(program, member_block=block), state, hp,
                                                controls, data, order_key, 5).compile()
            seconds = []
            for _ in range(3):
                fresh = jax.tree.map(lambda x: x.copy(), state)  # the call donates its state
                jax.block_until_ready(fresh)
                started = time.perf_counter()
                jax.block_until_ready(compiled(fresh, hp, controls, data, order_key))
                seconds.append(time.perf_counter() - started)
            print(f"  block {block}: five epochs {min(seconds):.3f} s", flush=True)


if __name__ == "__main__":
    main()
