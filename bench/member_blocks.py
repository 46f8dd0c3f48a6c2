"""How many members a CPU should step at a time: the seed-004 digits search's training programs
(PopulationSearchCV, 64 candidates x 3 folds, 2 epochs so the plan is one padded 128-wide group),
captured at their first call and timed for five epochs at several member blocks (0: all at once).
The automatic block (program.member_block) comes from a member's buffer bytes.

    VMAPTUNE_COMPILE_CACHE=0 python bench/member_blocks.py 2 4 8 16 32 0
"""

from __future__ import annotations

import dataclasses
import sys

from compile_time import capture_training_programs, fastest_call
from vmaptune import engine


def main():
    blocks = [int(b) for b in sys.argv[1:]] or [2, 4, 8, 16, 32, 0]
    seen = set()
    for program, state, hp, controls, data, order_key in capture_training_programs(calls=4, epochs=2):
        shape = (program.model.net.max_width, state.size)
        if shape in seen:
            continue
        seen.add(shape)
        print(f"group {shape[0]} units wide, {shape[1]} rows, automatic block {program.member_block}", flush=True)
        for block in blocks:
            compiled = engine.train_chunk.lower(dataclasses.replace(program, member_block=block), state, hp,
                                                controls, data, order_key, 5).compile()
            seconds = fastest_call(compiled, state, hp, controls, data, order_key)
            print(f"  block {block}: five epochs {seconds:.3f} s", flush=True)


if __name__ == "__main__":
    main()
