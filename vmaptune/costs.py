"""What training costs on this machine, as this process has measured it: seconds to compile a
program, and how fast a program's rows train. The layout rule (packing.py) and the choice between
a padded program and the model's groups (`plan_seconds`, used by `bucketing="auto"`) read them.

Before anything is measured, a platform's default stands in (a first search cannot measure
before it chooses); after each training call the measurements replace them, so later rounds and
later searches in the process choose from this machine's own numbers.
"""

from __future__ import annotations

import jax

#: Seconds to compile one training program (tracing, lowering, XLA), before one was measured.
DEFAULT_COMPILE_SECONDS = {"cpu": 3.0, "gpu": 4.0, "tpu": 6.0}
#: Training FLOPs per second per device (matmul FLOPs of forward and backward), before measured.
DEFAULT_FLOP_RATE = {"cpu": 3.5e10, "gpu": 1e13, "tpu": 2e13}

#: (program, rows, chunk epochs) -> seconds its first call took (it compiled then).
COMPILE_SECONDS: dict[tuple, float] = {}
#: program -> (training FLOPs per row-epoch, seconds per busy row-epoch), the latest measured.
ROW_SECONDS: dict = {}
#: A new program brings its initialisation program and some tracing with it: its first use costs
#: about this many times its training program's compile (measured: 5.4 s per extra width group on
#: the 2-core machine of bench/RESULTS.md, whose training programs compiled in 3.4 s).
NEW_PROGRAM_FACTOR = 1.6
#: With early stopping, the share of its epochs a population is expected to train (stopped
#: members cost nothing; seed 004's digits search trained 0.6 of the padded work).
EARLY_STOPPING_SHARE = 0.6


def compiled(program, rows: int) -> bool:
    """True when this process has compiled `program` for `rows` rows (any chunk length)."""
    return any(key[:2] == (program, rows) for key in COMPILE_SECONDS)


def compile_estimate(program=None) -> float:
    """Seconds a new compile of `program` (or any program) is expected to take: the most this
    process measured for it, else the mean over programs measured, else the platform's default."""
    mine = [s for key, s in COMPILE_SECONDS.items() if key[0] == program]
    if mine:
        return max(mine)
    if COMPILE_SECONDS:
        return sum(COMPILE_SECONDS.values()) / len(COMPILE_SECONDS)
    return DEFAULT_COMPILE_SECONDS.get(jax.default_backend(), 4.0)


def row_epoch_flops(program, n_train: int) -> float:
    """Training matmul FLOPs of one padded row (member) for one epoch: forward and backward."""
    return 3.0 * program.steps_per_epoch(n_train) * program.batch_size * program.model.padded_row_flops()


def record_training(program, n_train: int, seconds_per_row_epoch: float) -> None:
    ROW_SECONDS[program] = (row_epoch_flops(program, n_train), float(seconds_per_row_epoch))


def flop_rate(devices: int) -> float:
    """Training FLOPs per second the population runs at on `devices` devices: measured (the
    latest run's), else the platform's default per device x devices."""
    if ROW_SECONDS:
        flops, seconds = list(ROW_SECONDS.values())[-1]
        if seconds > 0:
            return flops / seconds
    return DEFAULT_FLOP_RATE.get(jax.default_backend(), 1e11) * max(int(devices), 1)


def plan_seconds(parts, n_train: int, epochs: int) -> float:
    """Expected seconds for a round trained as `parts` [(program, rows)]: each program's compile
    (unless this process has compiled it for those rows) plus rows x epochs of its training."""
    total = 0.0
    for program, rows in parts:
        if not compiled(program, rows):
            total += NEW_PROGRAM_FACTOR * compile_estimate(program)
        share = EARLY_STOPPING_SHARE if program.early_stopping is not None else 1.0
        total += share * rows * epochs * row_epoch_flops(program, n_train) / flop_rate(program.devices)
    return total
