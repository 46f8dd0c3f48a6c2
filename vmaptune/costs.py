"""What training costs on this machine, as this process has measured it: seconds to compile a
program, and how fast a program's rows train. The layout rule (packing.py) and the choice between
a padded program and the model's groups (`plan_seconds`, used by `bucketing="auto"`) read them.

Compile times are also remembered across processes, in a small JSON file next to the persistent
compilation cache (`MACHINE_FILE`): a new process prices a program this machine compiled before at
what loading it from the cache cost (or, until that was measured, CACHED_SHARE of its compile), and
a program it never compiled at this machine's mean compile time. Only before anything was measured
at all does a platform's default stand in; after each training call this process's own
measurements take over, so later rounds and searches choose from this machine's numbers.
Choices that must come out the same in every process (a quick compile, a packed population's
size, a refit's plan: each changes results in their last bits) are priced at the platform's
defaults instead (`measured=False`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import jax
import numpy as np

#: Seconds to compile one training program (tracing, lowering, XLA), before one was measured.
DEFAULT_COMPILE_SECONDS = {"cpu": 3.0, "gpu": 4.0, "tpu": 6.0}
#: Training FLOPs per second per device (matmul FLOPs of forward and backward), before measured.
DEFAULT_FLOP_RATE = {"cpu": 3.5e10, "gpu": 1e13, "tpu": 2e13}
#: Seconds per member per step that do not scale with the network's FLOPs (optimizer arithmetic,
#: activations, loss, gathers): a narrow member costs more than its FLOPs say. On the 2-core CPU
#: of bench/RESULTS.md, digits MLPs of 16 to 128 units took 0.25 ms + FLOPs / 63 GFLOP/s per
#: member-epoch of 14 steps.
STEP_OVERHEAD = {"cpu": 3.6e-5, "gpu": 2e-7, "tpu": 2e-7}  # seconds per member-step on one device

#: (program, rows, chunk epochs, quick) -> seconds its first call took (it compiled then).
COMPILE_SECONDS: dict[tuple, float] = {}


def _usual_compiles() -> dict[tuple, float]:
    """COMPILE_SECONDS without the quick compiles (engine.train_chunk_quick): they would underprice
    the usual ones."""
    return {key: s for key, s in COMPILE_SECONDS.items() if not key[3:4] or not key[3]}
#: program -> (training FLOPs, member-steps, seconds) of its runs' busy rows, summed over this process.
ROW_SECONDS: dict = {}
#: A new program brings its initialisation program and some tracing with it: its first use costs
#: about this many times its training program's compile (measured: 5.4 s per extra width group on
#: the 2-core machine of bench/RESULTS.md, whose training programs compiled in 3.4 s).
NEW_PROGRAM_FACTOR = 1.6
#: A skipped member block is almost free (the epoch's loop neither computes nor copies it:
#: engine._in_blocks): about this share of a busy row (`python bench/idle_blocks.py`: 0.015 and
#: 0.025, 256 rows of which 16 train against 16 rows, the 64-128-128-10 MLP on digits, 2-core
#: CPU; the same bench read 0.156 when lax.map stacked every block's outputs, and an earlier
#: one-off measurement of that code 0.069).
IDLE_SHARE = 0.02
#: With early stopping, the share of its epochs a population is expected to train (stopped
#: members cost nothing; seed 004's digits search trained 0.6 of the padded work).
EARLY_STOPPING_SHARE = 0.6


#: A program compiled on this machine before loads from the persistent cache at about this share
#: of its compile: tracing and lowering are paid again (bench/startup.py: 1.4 s warm, 3.7 s cold).
CACHED_SHARE = 0.4
#: File of remembered compile times, in `compile_cache.machine_directory()`.
MACHINE_FILE = "vmaptune_compile_seconds.json"
_machine: dict | None = None  # MACHINE_FILE's entries for this jax / backend / XLA flags, read once


def _machine_path() -> str:
    from vmaptune import compile_cache

    return os.path.join(compile_cache.machine_directory(), MACHINE_FILE)


def _machine_section() -> str:
    """Entries are only comparable under the same jax, backend, device count and XLA flags."""
    return f"jax {jax.__version__} {jax.default_backend()} x{jax.device_count()} {os.environ.get('XLA_FLAGS', '')}"


def program_key(program, rows: int) -> str:
    """A key for (program, rows) that a later process computes the same way. Function addresses
    are left out of the program's repr (two different lambdas may then share a key: the estimate is
    off for them, nothing else)."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", repr(program)) + f" rows={int(rows)}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def machine_entries() -> dict:
    """{program_key: {"compile": s, "load": s}} remembered on this machine (read once per process)."""
    global _machine
    if _machine is None:
        try:
            with open(_machine_path()) as f:
                _machine = json.load(f).get(_machine_section(), {})
        except (OSError, ValueError, AttributeError):  # none yet, or unreadable: start afresh
            _machine = {}
    return _machine


def remember(program, rows: int, seconds: float, from_cache: bool) -> None:
    """Records a first call's seconds for the processes that come later: "load" when the program
    came from the persistent cache, else "compile". The fastest measurement is kept: a first call
    made while the machine was busy (another job, a compile in a thread) measures the load, not
    the program, and one such outlier priced every later search's plan wrong (bench/RESULTS.md).
    Best effort: an unwritable file is skipped."""
    from vmaptune import atomic, distributed

    entry = machine_entries().setdefault(program_key(program, rows), {})
    kind = "load" if from_cache else "compile"
    entry[kind] = round(min(float(seconds), entry.get(kind, np.inf)), 3)
    if not distributed.is_primary():
        return
    path = _machine_path()
    try:
        try:
            with open(path) as f:
                everything = json.load(f)
        except (OSError, ValueError):
            everything = {}
        everything = everything if isinstance(everything, dict) else {}
        section = everything.setdefault(_machine_section(), {})
        section.update(machine_entries())
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_text(path, json.dumps(everything))
    except OSError:
        pass


def compiled(program, rows: int) -> bool:
    """True when this process has compiled `program` for `rows` rows (any chunk length)."""
    return any(key[:2] == (program, rows) for key in COMPILE_SECONDS)


def compile_estimate(program=None, rows: int | None = None) -> float:
    """Seconds a first call of `program` (for `rows` rows) is expected to spend compiling: the least
    this process measured for it (any rows or chunk length); else, when this machine compiled it before, what loading it from
    the persistent cache cost (CACHED_SHARE of its compile until measured; its compile with the
    cache off); else the mean this process measured over programs; else the mean of this
    machine's remembered compiles; else the platform's default."""
    from vmaptune import compile_cache

    usual = _usual_compiles()
    mine = [s for key, s in usual.items() if key[0] == program]
    if mine:
        return min(mine)
    known = machine_entries()
    entry = known.get(program_key(program, rows), {}) if program is not None and rows is not None else {}
    if "compile" in entry or "load" in entry:
        if not compile_cache.is_on():
            return entry.get("compile", entry.get("load", 0.0) / CACHED_SHARE)
        return entry.get("load", CACHED_SHARE * entry.get("compile", 0.0))
    if usual:
        return sum(usual.values()) / len(usual)
    remembered = [e["compile"] for e in known.values() if "compile" in e]
    if remembered:
        return sum(remembered) / len(remembered)
    return default_compile_seconds()


def default_compile_seconds() -> float:
    """The platform's default seconds per compile: the same in every process."""
    return DEFAULT_COMPILE_SECONDS.get(jax.default_backend(), 4.0)


def row_epoch_flops(program, n_train: int, fold_rows=None) -> float:
    """Training matmul FLOPs of one padded row (member) for one epoch: forward and backward, over
    the steps the program takes (fold_rows: each fold's training rows, DataArrays.fold_rows: the
    most steps of any fold's)."""
    return 3.0 * program.padded_row_epoch_flops(n_train, fold_rows)


def _overhead() -> float:
    return STEP_OVERHEAD.get(jax.default_backend(), 1e-6)


def record_training(program, n_train: int, row_epochs: float, seconds: float, fold_rows=None) -> None:
    """Adds a training call's busy row-epochs and wall seconds (compiles left out)."""
    flops, steps, spent = ROW_SECONDS.get(program, (0.0, 0.0, 0.0))
    ROW_SECONDS[program] = (flops + row_epochs * row_epoch_flops(program, n_train, fold_rows),
                            steps + row_epochs * program.steps_per_epoch(n_train, fold_rows), spent + float(seconds))


def flop_rate(devices: int) -> float:
    """Training FLOPs per second the population runs at on `devices` devices: measured over
    everything this process trained (work-weighted, so a one-member refit, all overhead, does not
    decide it; the per-step overhead taken out), else the platform's default per device x devices."""
    flops = sum(f for f, _, _ in ROW_SECONDS.values())
    seconds = sum(s - _overhead() * n / max(program.devices, 1) for program, (_, n, s) in ROW_SECONDS.items())
    default = DEFAULT_FLOP_RATE.get(jax.default_backend(), 1e11) * max(int(devices), 1)
    if flops > 0 and seconds > 0:
        return max(flops / seconds, 0.1 * default)
    return default


def row_epoch_seconds(program, n_train: int, measured: bool = True, fold_rows=None) -> float:
    """Expected seconds for one member (row) of `program` to train one epoch: at the rate this
    process measured (flop_rate), or with measured=False at the platform's defaults on one
    device (the same in every process). fold_rows: as row_epoch_flops."""
    steps, flops = program.steps_per_epoch(n_train, fold_rows), row_epoch_flops(program, n_train, fold_rows)
    if not measured:
        return steps * _overhead() + flops / DEFAULT_FLOP_RATE.get(jax.default_backend(), 1e11)
    return steps * _overhead() / max(program.devices, 1) + flops / flop_rate(program.devices)


#: Compiled quick (compile_cache.QUICK_TRAINING_COMPILER_OPTIONS: LLVM's level 1, XLA's loop
#: emitters), the digits training program of bench/compile_time.py compiles in 0.95 s instead of
#: 1.49 s and trains 1.3x slower (2-core CPU, three alternating runs; bench/RESULTS.md): worth it
#: for a search whose training is short.
QUICK_COMPILE_SAVES = 0.5
QUICK_SLOWDOWN = 1.3


def quick_compile(program, n_train: int, member_epochs: float) -> bool:
    """True when a CPU training program whose members train `member_epochs` member-epochs in all
    should compile quick (engine.train_chunk_quick): its training, priced
    at the platform's default rates on one device, would lose less time than the compile saves.
    Default rates, never measured ones: the choice changes numbers in their last bits, so the same
    search must make it the same way in every process (same seed, same result; a resumed run as
    an uninterrupted one)."""
    if jax.default_backend() != "cpu":
        return False
    extra = member_epochs * row_epoch_seconds(program, n_train, measured=False) * (QUICK_SLOWDOWN - 1)
    return extra < QUICK_COMPILE_SAVES


def plan_seconds(parts, n_train: int, epochs: int, rounds: int = 1, compiling_at_once: int | None = None,
                 work_share: float = 1.0, measured: bool = True, fold_rows=None) -> float:
    """Expected seconds for `rounds` rounds trained as `parts` [(program, rows, members)] in that
    order: each program's compile, once (unless this process has compiled it for those rows), plus
    its training in every round: members x epochs, and filler rows at IDLE_SHARE where the program
    skips idle member blocks (a CPU), in full where it does not. Rounds after this one are priced
    as this one (a multi-round search asks populations of the same size; fold_rows: as
    row_epoch_flops, folds of different sizes). Where programs compile
    ahead (vmaptune/ahead.py; `compiling_at_once`, default ahead.workers()), the first round's
    compiles after the first overlap the training before them (`_first_round`). work_share: the
    share of members x epochs the strategy trains (successive halving's pruning), on every part.
    measured=False: at the platform's defaults, every compile priced and none ahead, so the price
    is the same in every process (a refit's plan: see refit.py)."""
    from vmaptune import ahead

    compiles, trains = [], []
    for program, rows, members in parts:
        if not measured:
            compiles.append(NEW_PROGRAM_FACTOR * default_compile_seconds())
        else:
            compiles.append(0.0 if compiled(program, rows) else NEW_PROGRAM_FACTOR * compile_estimate(program, rows))
        share = work_share * (EARLY_STOPPING_SHARE if program.early_stopping is not None else 1.0)
        busy = members + IDLE_SHARE * (rows - members) if program.member_block else rows
        trains.append(share * busy * epochs * row_epoch_seconds(program, n_train, measured=measured, fold_rows=fold_rows))
    at_once = (ahead.workers() if measured else 0) if compiling_at_once is None else compiling_at_once
    return _first_round(compiles, trains, at_once) + (max(int(rounds), 1) - 1) * sum(trains)


def _first_round(compiles: list[float], trains: list[float], at_once: int) -> float:
    """Seconds until the last part has trained once. In series (at_once 0): each part's compile,
    then its training. Compiling ahead: the first part compiles in the calling thread and the
    others from the start in `at_once` background threads (in order, each to the least busy
    thread); a part trains once its program is ready and the part before it has trained."""
    if at_once <= 0 or len(compiles) < 2:
        return sum(compiles) + sum(trains)
    threads = [0.0] * at_once
    ready = [compiles[0]]
    for seconds in compiles[1:]:
        least = threads.index(min(threads))
        threads[least] += seconds
        ready.append(threads[least])
    done = 0.0
    for ready_at, train in zip(ready, trains):
        done = max(done, ready_at) + train
    return done
