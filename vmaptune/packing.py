"""Where a population's rows go once some members leave for good (stopped early, pruned by a
strategy): the cheapest layout for the members still training.

The compiled program skips a block of members in which nobody trains (engine._in_blocks), so
what a chunk costs is the number of busy blocks, not the number of rows. Three layouts are open:

- stay: nothing moves (free, but stopped members scattered over the blocks keep them busy);
- regroup: the same rows, members still training moved into the fewest blocks, spread evenly
  over the devices (a gather of the state, no new program);
- pack: a smaller population, the next power of two that holds them (a new program to compile).

`choose_layout` prices each as the wall-clock of the epochs left (devices run side by side, so
the busiest device counts) plus the move and the compile, and takes the cheapest. A run prices
them at the platform's default rates (PopulationRun._costs), never at measured seconds: a packed
population is another program, whose numbers may differ from the unpacked one's in their last
bits, so the choice must not depend on how busy the machine was or what the process compiled
before. On a CPU, with member blocks, regrouping wins almost always; on an accelerator (one
block per device) a smaller population pays only when enough epochs are left to earn its
compile back. None of the layouts changes what any member computes beyond float rounding.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vmaptune.costs import IDLE_SHARE
from vmaptune.distributed import largest_divisor, mesh_size, whole_rows

#: A move (a gather of every state row) costs about this share of an epoch of the rows moved.
MOVE_EPOCHS = 0.1


@dataclasses.dataclass(frozen=True)
class Shape:
    """How `rows` rows split: `devices` shards of equal size, each stepped `block` rows at a time."""

    rows: int
    devices: int
    block: int

    @classmethod
    def of(cls, rows: int, devices: int, member_block: int) -> "Shape":
        """The split the engine uses for `rows` rows on up to `devices` devices (population_mesh's
        rule) with `member_block` members per block (0: the whole shard at once)."""
        n = mesh_size(rows, devices)
        shard = rows // n if rows else 0
        block = largest_divisor(shard, member_block) if member_block and shard else max(shard, 1)
        return cls(rows=int(rows), devices=int(n), block=int(block))

    @property
    def shard(self) -> int:
        return self.rows // self.devices

    def busy_rows(self, training: np.ndarray) -> int:
        """Row-equivalents of wall-clock for one epoch: the busiest device's busy blocks x block,
        times the devices (they run side by side). training: (rows,) bool."""
        if not self.rows:
            return 0
        blocks = np.asarray(training, bool).reshape(self.devices, self.shard // self.block, self.block).any(axis=2)
        return int(blocks.sum(axis=1).max()) * self.block * self.devices

    def busy_rows_arranged(self, n_training: int) -> int:
        """busy_rows once `arrangement` has put n_training members first on each device."""
        per_device = -(-int(n_training) // self.devices)
        return -(-per_device // self.block) * self.block * self.devices


def arrangement(first: np.ndarray, then: np.ndarray, rest: np.ndarray, shape: Shape) -> np.ndarray:
    """Row order (shape.rows,) for a new layout: the rows `first` (members still training) dealt
    round-robin over the devices so each device starts with its share, then `then` (kept members
    that do not train), then filler rows from `rest`, in the order given."""
    queues: list[list[int]] = [[int(r) for r in first[d::shape.devices]] for d in range(shape.devices)]
    pool = iter([int(r) for r in then] + [int(r) for r in rest])
    for queue in queues:
        queue.extend(next(pool) for _ in range(shape.shard - len(queue)))
    return np.concatenate([np.asarray(q, np.int64) for q in queues])


@dataclasses.dataclass(frozen=True)
class Costs:
    """What a layout choice knows: seconds per busy row-epoch (None: unknown), epochs left, and
    seconds to compile the program at each smaller size (0 where it is compiled)."""

    seconds_per_row_epoch: float | None
    epochs_left: int
    compile_seconds: dict[int, float]  # rows -> seconds (a size absent is never chosen)


def choose_layout(training: np.ndarray, kept: int, devices: int, member_block: int, costs: Costs,
                  policy: str = "auto") -> int | None:
    """The rows of the cheapest layout, or None to leave the rows where they are.

    training: (rows,) bool, the rows whose member still trains (now, in the current order).
    kept: members that stay (training or not): a packed population must hold them.
    devices, member_block: the devices available to the program and its block size (Shape.of).
    policy: "auto" (cheapest), "always" (the smallest power of two that holds them, the older
    rule), "never" (regroup at most; the population keeps its size)."""
    rows = len(training)
    shape = Shape.of(rows, devices, member_block)
    if kept == 0:
        return 0  # nobody left: no rows, nothing to run
    # a packed population holds no more rows on a device than now: fewer rows may split over fewer
    # devices (8 over 2, where 9 took 3), past what max_memory lets a device hold
    sizes = [size for size in _power_sizes(kept, rows) if Shape.of(size, devices, member_block).shard <= shape.shard]
    if policy == "always":
        return sizes[0]
    n_training = int(np.sum(training))
    stay = shape.busy_rows(training)
    if costs.seconds_per_row_epoch is None or costs.epochs_left <= 0:
        # no rate known: regroup when it frees blocks (no compile, a cheap gather)
        return rows if shape.busy_rows_arranged(n_training) < stay else None
    per_row = costs.seconds_per_row_epoch

    def epochs_cost(busy: int, size: int) -> float:
        return (busy + IDLE_SHARE * (size - busy)) * costs.epochs_left * per_row

    best, best_cost = None, epochs_cost(stay, rows)
    options = [rows] + ([] if policy == "never" else [s for s in sizes if s < rows])
    for size in options:
        if size != rows and size not in costs.compile_seconds:
            continue
        busy = Shape.of(size, devices, member_block).busy_rows_arranged(n_training)
        cost = (epochs_cost(busy, size) + MOVE_EPOCHS * rows * per_row
                + (costs.compile_seconds.get(size, 0.0) if size != rows else 0.0))
        if cost < best_cost:
            best, best_cost = size, cost
    return best


def packed_size(n: int, rows: int) -> int:
    """Rows for n members after packing: the next power of two (a multiple of the process count),
    at most the rows used now."""
    return 0 if n == 0 else min(rows, whole_rows(1 << (n - 1).bit_length()))


def _power_sizes(n: int, rows: int) -> list[int]:
    """Powers of two from packed_size(n) up to, not past, rows; rows last (n >= 1)."""
    sizes, size = [], packed_size(n, rows)
    while size < rows:
        sizes.append(size)
        size *= 2
    return sizes + [rows]
