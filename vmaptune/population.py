"""A population being trained: its device state, and full-size host records of its members.

`PopulationRun` is the one place that changes a population between chunks. Strategies never
touch it: they return a `Decision` (vmaptune/decisions.py) and `apply` carries it out: packing
rows, copying members, writing hyperparameters into the optimizer state, freezing, budgets.

Members are indexed 0..n-1 in the order given. They occupy device rows; `slots[row]` is the
member a row holds, or -1 for a filler: a frozen copy that only pads the population to its size
(the strategy's full population when a round is short, or a power of two after packing, so few
shapes compile). Records always cover all n members: a member packed out keeps its last status,
its validation curves carry their last value on and its training loss is NaN.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

import collections
import contextlib
import functools
import time

from vmaptune import ahead, costs, engine, interrupts, startup, streams
from vmaptune.checkpoint import arrays_to_tree, leaves_to_arrays
from vmaptune.decisions import Decision, Snapshot
from vmaptune.distributed import (agree, place, placed_shapes, population_mesh, raise_if_interrupted, to_host,
                                  usable_devices, whole_rows)
from vmaptune.engine import CURVES, DataArrays
from vmaptune.packing import Costs, Shape, arrangement, choose_layout
from vmaptune.program import Program
from vmaptune.state import MEMBER_SPEC, PopulationState, member_specs, take_rows
from vmaptune.warn import warn

#: Per-member status that records report (full size, members packed out included).
STATUS_FIELDS = ("active", "diverged", "stopped", "best_score", "best_epoch")


class InitArgs(NamedTuple):
    """What a run's initial state is made from (engine.init_population's arguments after program)."""

    hp: dict
    controls: Any
    member_ids: jax.Array
    members_key: jax.Array
    active: jax.Array


# One program per packing or copy: run eagerly, every leaf's gather compiled its own. A copy
# brings the parent's settings, batch size and schedule; its fold and budget stay the row's own.
_copy_rows = jax.jit(lambda state, hp, controls, parents: (
    state.copy_from(parents), take_rows(hp, parents),
    controls.replace(batch_size=controls.batch_size[parents], total_steps=controls.total_steps[parents])))
_take_rows = jax.jit(lambda state, hp, controls, rows: (state.take(rows), take_rows(hp, rows),
                                                        take_rows(controls, rows)))
_deactivated = jax.jit(lambda active, rows: active & ~rows)

PACKING = ("auto", "always", "never")


def _initial_slots(n: int, rows: int, shape: Shape) -> np.ndarray:
    """Member of each row at the start (-1: a filler): members in order, each device's shard
    holding an even share of them and its fillers last, so no device trains more than its share
    (a filler's block is skipped). Without fillers, row i holds member i."""
    if rows == n or shape.devices == 1:
        return np.where(np.arange(rows) < n, np.arange(rows), -1)
    slots, start = [], 0
    for d in range(shape.devices):
        share = n // shape.devices + (d < n % shape.devices)
        slots += list(range(start, start + share)) + [-1] * (shape.shard - share)
        start += share
    return np.asarray(slots)


class PopulationRun:
    """n members of one program, trained together for up to `epochs` epochs.

    hp: dict name -> (n,) numeric hyperparameters (`space.numeric`). member_ids: (n,) ids that
    set each member's randomness. rows: device rows (>= n; the rest are frozen fillers).
    fold: (n,) cross-validation fold of each member (with folded data). budget: (n,) epochs each
    member trains at most (default: epochs). order: the random stream of the shared minibatch
    order ("order" for searches, "refit" for refits). packing: how rows are laid out when members
    leave (packing.choose_layout): "auto" (the cheapest), "always" (a smaller population at once),
    "never" (the same rows, regrouped). quick: compile quick (engine.train_chunk_quick)
    (costs.quick_compile; None: decide from this run's member-epochs).
    """

    def __init__(self, program: Program, hp: Mapping[str, jax.Array], data: DataArrays, *, member_ids, seed: int = 0,
                 epochs: int, rows: int | None = None, fold=None, budget=None, order: str = "order",
                 packing: str = "auto", quick: bool | None = None):
        if packing not in PACKING:
            raise ValueError(f"packing={packing!r}: use one of {PACKING}.")
        member_ids = np.asarray(member_ids, np.int32)
        n = len(member_ids)
        rows = whole_rows(n if rows is None else int(rows))  # every process holds the same number
        if rows < n:
            raise ValueError(f"rows={rows} cannot hold the {n} members.")
        self.program, self.data, self.total_epochs, self.members = program, data, int(epochs), n
        trains = self.total_epochs if budget is None else int(np.max(budget))  # (a refit's budgets: fewer epochs)
        self.quick = costs.quick_compile(program, data.n_train, n * trains) if quick is None else bool(quick)
        self.slots = _initial_slots(n, rows, self._shape(rows))
        take = np.maximum(self.slots, 0)  # fillers copy member 0
        self.member_hp = {k: np.asarray(v) for k, v in hp.items()}  # host copy, per member
        hp = {k: v[take] for k, v in self.member_hp.items()}
        pad = (lambda a: None if a is None else np.asarray(a)[take])
        controls = program.controls(hp, data.member_rows(pad(fold)), self.total_epochs, fold=pad(fold),
                                    budget=pad(budget))
        self.member_rows = data.member_rows(fold)  # training rows per epoch: (n,) each member's fold's, or one number
        # host arrays go straight to where the program reads them, so the state is born there
        mesh = population_mesh(program.devices, rows)
        self.hp, self.controls = place(hp, mesh, member_specs(hp)), place(controls, mesh, member_specs(controls))
        ids, active = place((member_ids[take], self.slots >= 0), mesh, MEMBER_SPEC)
        # initialised when first needed, from these (a decision may change self.hp before), unless
        # initialise.initialise_together (one program for several runs) sets it first
        self.init_args = InitArgs(dict(self.hp), self.controls, ids, streams.stream(seed, "members"), active)
        self._state = None
        self.order_key = streams.stream(seed, order)
        self.curves = {k: np.full((n, self.total_epochs), np.nan, np.float32) for k in CURVES}
        self._parked_status: dict[str, np.ndarray] = {}
        self.parked = np.zeros(n, bool)  # members packed out of the state
        self.inherited = np.zeros(n, np.int64)  # epochs in a member's curves that a copy brought, not its row
        self.epochs_done = self.row_epochs = self.member_epochs = 0
        self.packing = packing
        self._placed = False  # state, settings and data are where the program reads them
        self.busy_row_epochs = 0  # rows of busy blocks x epochs: what the program computed (_computed_rows)

    @property
    def rows(self) -> int:
        return len(self.slots)

    @property
    def state(self) -> PopulationState:
        """The members' training state on the device (initialised at first use)."""
        if self._state is None:
            # waited for, so that its run does not count as the first chunk's training time
            self._state = jax.block_until_ready(engine.init_population(self.program, *self.init_args))
        return self._state

    @state.setter
    def state(self, value: PopulationState) -> None:
        self._state = value

    @property
    def initialised(self) -> bool:
        return self._state is not None

    # -- training -------------------------------------------------------------------------------
    def train(self, epochs: int, chunk_epochs: int = 1, on_chunk: Callable | None = None,
              interruptible: bool = True) -> None:
        """Trains `epochs` more epochs in chunks of `chunk_epochs` (one compiled call each). The host
        reads chunk k's metrics while the device runs chunk k + 1. `on_chunk(epochs_done, curves)`
        runs after each chunk is recorded. interruptible=False: a signal held or a time budget spent
        does not stop it at a chunk's start (the caller looked, for every run of a population)."""
        if self.epochs_done + epochs > self.total_epochs:
            raise ValueError(f"this run was set up for {self.total_epochs} epochs; "
                             f"{self.epochs_done} are done, {epochs} more asked.")
        self._place()
        unrecorded: collections.deque = collections.deque()  # chunks dispatched, curves not yet read
        started, compiling, busy_before = time.perf_counter(), 0.0, self.busy_row_epochs
        try:
            for start in range(0, epochs, chunk_epochs):
                if interruptible:
                    raise_if_interrupted()  # (several processes: Ctrl-C in any stops every one here, together)
                n = min(chunk_epochs, epochs - start)
                if not self.rows:  # a population everyone was packed out of has nothing left to compute
                    self._dispatched(n, None, unrecorded)
                else:
                    key = self._chunk_key(n)
                    first = key not in costs.COMPILE_SECONDS
                    dispatched = time.perf_counter()
                    ahead_seconds = ahead.wait(key) if first else None  # its compile ahead, if one was started
                    if first:  # (this thread's wait is compile time, not training)
                        startup.waited_for_compile(time.perf_counter() - dispatched)
                    profile = startup.TimeProfile()
                    function = self._chunk_function()
                    args = (self.program, self.state, self.hp, self.controls, self.data, self.order_key, n)
                    with profile.measure(this_thread=True) if first else contextlib.nullcontext():
                        if first and hasattr(function, "lower"):  # compiled before the call, which then finds
                            function.lower(*args).compile()  # it compiled: Ctrl-C may cut this
                        # the call donates the state's buffers: Ctrl-C waits until the new state and its
                        # epochs are kept, or a partial result would read buffers already given away
                        with interrupts.deferred():
                            self.state, chunk = function(*args)
                            self._dispatched(n, chunk, unrecorded)
                    del args
                    if first:  # a first call returns once it has compiled (or found its program compiled)
                        waited = time.perf_counter() - dispatched
                        compiling += waited
                        self._first_call_done(key, waited, profile, ahead_seconds)
                self._read(unrecorded, keep=1, on_chunk=on_chunk)  # chunk k is read while chunk k + 1 runs
            self._read(unrecorded, keep=0, on_chunk=on_chunk)
        except KeyboardInterrupt:  # what the device trained keeps its curves (a partial result reads them)
            self._read(unrecorded, keep=0, on_chunk=None)
            raise
        seconds = time.perf_counter() - started - compiling
        costs.record_training(self.program, self.data.n_train, self.busy_row_epochs - busy_before, seconds,
                              self.data.fold_rows)

    def _dispatched(self, n: int, chunk, unrecorded: collections.deque) -> None:
        """Counts a chunk of n epochs sent to the device (its curves `chunk`, read later)."""
        unrecorded.append((self.epochs_done, n, chunk))
        interrupts.chunk_trained()  # (a time budget stops a run only once something trained)
        self.epochs_done += n
        self.row_epochs += self.rows * n
        self.member_epochs += int((self.slots >= 0).sum()) * n

    def _read(self, unrecorded: collections.deque, keep: int, on_chunk: Callable | None) -> None:
        """Records the oldest dispatched chunks until `keep` are left (a chunk leaves the queue once
        recorded: one cut short by Ctrl-C is recorded again, which writes the same values, and its
        busy rows are counted once, as it leaves)."""
        while len(unrecorded) > keep:
            first_epoch, n, chunk = unrecorded[0]
            chunk = None if chunk is None else to_host(chunk)  # (once: _record's to_host then moves nothing)
            computed = 0 if chunk is None else self._computed_rows(first_epoch, chunk)
            self._record(first_epoch, n, chunk, on_chunk)
            with interrupts.deferred():
                unrecorded.popleft()
                self.busy_row_epochs += computed

    def _first_call_done(self, key: tuple, waited: float, profile: startup.TimeProfile,
                         ahead_seconds: float | None) -> None:
        """Records what a program's first call cost (costs.py): `waited` seconds in this thread
        (`profile`: its events), or `ahead_seconds` where its compile ran in the background."""
        compiled_here = (profile.trace_seconds + profile.lower_seconds + profile.compile_seconds > 0
                         or profile.cache_hits + profile.cache_misses > 0)
        if ahead_seconds is not None and compiled_here:
            ahead.wasted()  # compiled again here: the background's lowering did not match
            ahead_seconds = None
        costs.COMPILE_SECONDS[key] = waited if ahead_seconds is None else ahead_seconds
        # once per rows; a quick compile's time would underprice the usual one; with compiling
        # ahead on, every compile may be slowed by others beside it and would overprice the
        # program for good (the fastest measurement is kept)
        if (not self.quick and ahead.workers() == 0
                and not any(k[:2] == key[:2] for k in costs.COMPILE_SECONDS if k != key)):
            costs.remember(self.program, self.rows, waited,
                           from_cache=profile.cache_hits > 0 and profile.cache_misses == 0)

    def _chunk_key(self, n_epochs: int) -> tuple:
        """(program, rows, chunk epochs, quick): what a training call compiles for."""
        return (self.program, self.rows, int(n_epochs), self.quick)

    def _chunk_function(self):
        return engine.train_chunk_quick if self.quick else engine.train_chunk

    def compile_ahead(self, n_epochs: int) -> object | None:
        """Starts compiling the program of a first chunk of `n_epochs` epochs in the background
        (ahead.py), unless this process has it already or compiling ahead is off -> its key (for
        ahead.cancel), or None. `train` waits for it. The program is lowered for where `_place`
        will put the arrays, from their shapes alone: nothing is placed, nor initialised, here
        (a state not made yet is `jax.eval_shape` of its initialisation, in the thread)."""
        key = self._chunk_key(n_epochs)
        if not self.rows or key in costs.COMPILE_SECONDS or ahead.workers() == 0:
            return None
        mesh = population_mesh(self.program.devices, self.rows)
        function, program, init_args = self._chunk_function(), self.program, self.init_args
        state = None if self._state is None else placed_shapes(self._state, mesh, self._state.specs())
        inputs = (placed_shapes(self.hp, mesh, MEMBER_SPEC), placed_shapes(self.controls, mesh, MEMBER_SPEC),
                  placed_shapes(self.data, mesh, PartitionSpec()), placed_shapes(self.order_key, mesh, PartitionSpec()))

        def lower():
            shapes = state
            if shapes is None:
                made = jax.eval_shape(functools.partial(engine.init_population, program), *init_args)
                shapes = placed_shapes(made, mesh, made.specs())
            return function.lower(program, shapes, *inputs, int(n_epochs))

        return key if ahead.start(key, lower) else None

    def _place(self) -> None:
        """Moves state, settings and data where the program reads them. Skipped when nothing was
        changed on the host since the last time (each device_put costs, even as a no-op)."""
        if self._placed:
            return
        self._placed = True
        mesh = population_mesh(self.program.devices, self.rows)
        self.state = place(self.state, mesh, self.state.specs())
        self.hp = place(self.hp, mesh, member_specs(self.hp))
        self.controls = place(self.controls, mesh, member_specs(self.controls))
        self.data = place(self.data, mesh, PartitionSpec())
        self.order_key = place(self.order_key, mesh, PartitionSpec())

    def _record(self, first_epoch: int, n: int, chunk, on_chunk) -> None:
        window = slice(first_epoch, first_epoch + n)
        if chunk is not None:
            chunk = to_host(chunk)
            held = self.slots >= 0
            for key in CURVES:
                self.curves[key][self.slots[held], window] = np.asarray(chunk[key]).T[held]
            skipped = ~np.asarray(chunk["evaluated"]).T[held]  # (members held, n): block skipped, nothing changed
            for j, epoch in enumerate(range(first_epoch, first_epoch + n)):
                members = self.slots[held][skipped[:, j]]
                for key in ("val_loss", "val_score"):
                    self.curves[key][members, epoch] = self.curves[key][members, epoch - 1] if epoch else np.nan
        if self.parked.any():
            for key in ("val_loss", "val_score"):  # carry the last value on; NaN if parked before training
                last = self.curves[key][self.parked, first_epoch - 1:first_epoch] if first_epoch > 0 else np.nan
                self.curves[key][self.parked, window] = last
            self.curves["train_loss"][self.parked, window] = np.nan
        if on_chunk is not None:
            on_chunk(first_epoch + n, {k: v[:, :first_epoch + n] for k, v in self.curves.items()})

    def _computed_rows(self, first_epoch: int, chunk) -> int:
        """Busy rows (Shape.busy_rows) summed over a chunk's epochs: each epoch the program ran the
        blocks where a member trained and skipped the others (engine._in_blocks; the status it reads
        is the device's, so a member stopped in one chunk costs nothing in the next, sent before the
        host read the stop). A row trained where its training loss is finite, or where it diverged
        that epoch (NaN, validated) after an epoch it trained (its first: any). chunk: on the host;
        the curves before it recorded."""
        finite = np.isfinite(np.asarray(chunk["train_loss"]))  # (epochs, rows)
        before = np.ones(self.rows, bool)
        if first_epoch:
            held = self.slots >= 0
            before = np.zeros(self.rows, bool)
            before[held] = np.isfinite(self.curves["train_loss"][self.slots[held], first_epoch - 1])
        diverged = np.asarray(chunk["evaluated"]) & np.isnan(np.asarray(chunk["val_loss"]))
        trained = finite | (diverged & np.vstack([before[None], finite[:-1]]))
        shape = self._shape(self.rows)
        return sum(shape.busy_rows(rows) for rows in trained)

    # -- what deciders see --------------------------------------------------------------------------
    def status(self) -> dict[str, np.ndarray]:
        """Full-size (n,) arrays: active, diverged, stopped, best_score, best_epoch."""
        live = to_host({key: getattr(self.state.status, key) for key in STATUS_FIELDS})
        held = self.slots >= 0
        out = {}
        for key in STATUS_FIELDS:
            dtype = np.asarray(live[key]).dtype
            full = self._parked_status[key].copy() if key in self._parked_status else np.zeros(self.members, dtype)
            full[self.slots[held]] = np.asarray(live[key])[held]
            out[key] = full
        return out

    def snapshot(self) -> Snapshot:
        """The population now, read-only (see decisions.Snapshot)."""
        status = self.status()
        return Snapshot.make(
            epochs_done=self.epochs_done, epochs=self.total_epochs,
            curves={k: v[:, :self.epochs_done] for k, v in self.curves.items()},
            in_population=~self.parked, hp=self.member_hp, rows=self.rows, row_epochs=self.row_epochs,
            member_epochs=self.member_epochs, **status)

    def useful_compute_fraction(self) -> float:
        """Share of the matmul work this run computed (busy blocks' rows x epochs) that members'
        own networks and rows needed (the epochs each trained)."""
        trained = np.isfinite(self.curves["train_loss"]).sum(axis=1) - self.inherited  # (copies' epochs: not its own)
        controls = self.program.controls(self.member_hp, self.member_rows, 1)
        return engine.useful_compute_fraction(self.program, self.member_hp, controls, self.data.n_train,
                                              active=trained, computed_rows=self.busy_row_epochs,
                                              member_rows=self.member_rows, fold_rows=self.data.fold_rows)

    # -- checkpoints ------------------------------------------------------------------------------------
    HOST_FIELDS = ("member_hp", "slots", "curves", "_parked_status", "parked", "epochs_done", "row_epochs",
                   "member_epochs", "busy_row_epochs", "inherited")

    def checkpoint(self) -> tuple[dict, dict[str, list[np.ndarray]]]:
        """(host bookkeeping, device arrays as numpy) of the run now: all `restore` needs."""
        host = {name: getattr(self, name) for name in self.HOST_FIELDS}
        arrays = {"state": leaves_to_arrays(self.state), "hp": leaves_to_arrays(self.hp),
                  "controls": leaves_to_arrays(self.controls)}
        return host, arrays

    def restore(self, host: dict, arrays: Mapping[str, list[np.ndarray]]) -> None:
        """Puts this run (built with the same program, members and settings) where `checkpoint`
        found it: bit for bit, the row count included (packing may have shrunk it), but for filler
        rows added where the rows do not split over this run's processes (a checkpoint of 8 rows
        resumed on 3 processes: 9)."""
        self._placed = False
        for name in self.HOST_FIELDS:
            if name in host:  # (checkpoints before the busy-block fields lack them)
                setattr(self, name, host[name])
        self.state = arrays_to_tree(self.state, arrays["state"])
        self.hp = arrays_to_tree(self.hp, arrays["hp"])
        self.controls = arrays_to_tree(self.controls, arrays["controls"])
        rows = len(self.slots)
        if whole_rows(rows) != rows:  # resumed on another number of processes: pad each one's share
            extra = whole_rows(rows) - rows
            take = jnp.asarray(np.r_[np.arange(rows), np.zeros(extra, int)], jnp.int32)  # fillers copy row 0
            self.state, self.hp, self.controls = _take_rows(self.state, self.hp, self.controls, take)
            self.slots = np.r_[self.slots, np.full(extra, -1, self.slots.dtype)]
            self._deactivate(self.slots < 0)

    # -- applying a decision ---------------------------------------------------------------------------
    def apply(self, decision: Decision | None) -> None:
        """Carries out a decision (see decisions.Decision for the fields and their order)."""
        if decision is None or decision.empty:
            return
        self._placed = False
        if decision.keep is not None:
            self._keep(self._indices("keep", decision.keep))
        if decision.copy_from is not None:
            self._copy_from(self._per_member("copy_from", decision.copy_from, np.int64))
        if decision.hp is not None:
            update = np.ones(self.members, bool) if decision.update is None else \
                self._per_member("update", decision.update, bool)
            self._set_hp(decision.hp, update)
        if decision.freeze is not None:
            self._freeze(self._per_member("freeze", decision.freeze, bool))
        if decision.budget is not None:
            self._set_budget(self._per_member("budget", decision.budget, np.int32))

    def _indices(self, name: str, values) -> np.ndarray:
        given = np.asarray(values).reshape(-1)
        if len(given) and (given.dtype == bool or not np.issubdtype(given.dtype, np.number)
                           or (given != np.round(given)).any()):  # ([0.9, 2.9] kept members 0 and 2)
            hint = " For a mask use np.flatnonzero(mask)." if given.dtype == bool else ""
            raise ValueError(f"Decision.{name} lists member indices (whole numbers), got {given.tolist()[:6]}.{hint}")
        values = given.astype(np.int64)
        if len(values) and (values.min() < 0 or values.max() >= self.members or len(set(values)) != len(values)):
            raise ValueError(f"Decision.{name} must list distinct member indices in 0..{self.members - 1}, "
                             f"got {values.tolist()}.")
        return values

    def _per_member(self, name: str, values, dtype) -> np.ndarray:
        values = np.asarray(values)
        if values.shape != (self.members,):
            raise ValueError(f"Decision.{name} must have one entry per member, shape ({self.members},); "
                             f"got shape {values.shape}.")
        if dtype is bool and values.dtype != bool and not np.isin(values, (0, 1)).all():
            raise ValueError(f"Decision.{name} is a mask, one True / False per member; got {values.tolist()[:6]}. "
                             f"For member indices i use mask = np.isin(np.arange({self.members}), i).")
        if name in ("copy_from", "budget") and (
                not np.issubdtype(values.dtype, np.number) or (values != np.round(values)).any() or (values < 0).any()):
            raise ValueError(f"Decision.{name} must hold whole numbers >= 0 (member indices, or epochs), one per "
                             f"member; got {values.tolist()[:6]}.")
        return values.astype(dtype)

    def _rows_of(self, members: np.ndarray) -> np.ndarray:
        """Row of each member (-1 when packed out)."""
        row = np.full(self.members, -1)
        held = self.slots >= 0
        row[self.slots[held]] = np.flatnonzero(held)
        return row[members]

    def _keep(self, keep: np.ndarray) -> None:
        held = self.slots >= 0
        kept = np.isin(self.slots, keep) & held
        dropped = held & ~kept
        if dropped.any():  # their records stay as they are now
            status = self.status()
            for key in STATUS_FIELDS:
                self._parked_status.setdefault(key, np.zeros(self.members, status[key].dtype))
                self._parked_status[key][self.slots[dropped]] = status[key][self.slots[dropped]]
            self._parked_status["active"][self.slots[dropped]] = False
            self.parked[self.slots[dropped]] = True
        training = kept & self._training_rows()
        size = choose_layout(training, int(kept.sum()), self._devices, self.program.member_block, self._costs(),
                             self.packing)
        size = agree(-1 if size is None else size)  # the same in every process; agree() makes sure
        size = None if size < 0 else size
        slots = np.where(kept, self.slots, -1)
        if size is not None:
            rows = arrangement(np.flatnonzero(training), np.flatnonzero(kept & ~training), np.flatnonzero(~kept),
                               self._shape(size))
            if len(rows) != self.rows or (rows != np.arange(self.rows)).any():
                take = jnp.asarray(rows, jnp.int32)
                self.state, self.hp, self.controls = _take_rows(self.state, self.hp, self.controls, take)
            slots = slots[rows]
        self.slots = slots
        self._deactivate(self.slots < 0)

    def _training_members(self, diverged: np.ndarray | None = None) -> np.ndarray:
        """(members,) bool: members that train on (held, active, budget left, not diverged;
        diverged: status()["diverged"] where the caller has read it)."""
        held = self.slots >= 0
        training = np.zeros(self.members, bool)
        training[self.slots[held]] = self._training_rows()[held]
        return training & ~(self.status()["diverged"] if diverged is None else diverged)

    def _training_rows(self) -> np.ndarray:
        """(rows,) bool: rows whose member trains on (active, budget left)."""
        active, budget = to_host((self.state.status.active, self.controls.budget))
        return np.asarray(active, bool) & (np.asarray(budget) > self.epochs_done)

    @property
    def _devices(self) -> int:
        """Devices the program may split over (population_mesh caps them the same way)."""
        return min(self.program.devices, len(usable_devices()))

    def _shape(self, rows: int) -> Shape:
        return Shape.of(rows, self._devices, self.program.member_block)

    def _costs(self) -> Costs:
        """The layout's cost model inputs, at the platform's default rates and compile time, never
        this process's measurements or what it compiled before: a smaller population is another
        program, whose results may differ in their last bits, so the same search must make the
        same choice in every process (same seed, same result; a resumed run as an uninterrupted
        one, whose process had measured other seconds: tests/test_resume.py saw one value differ
        by 6e-8 when it did)."""
        sizes = [1 << k for k in range(max(self.rows - 1, 0).bit_length()) if 1 << k < self.rows]
        return Costs(seconds_per_row_epoch=costs.row_epoch_seconds(self.program, self.data.n_train, measured=False,
                                                                   fold_rows=self.data.fold_rows),
                     epochs_left=self.total_epochs - self.epochs_done,
                     compile_seconds=dict.fromkeys(sizes, costs.default_compile_seconds()))

    def _copy_from(self, copy_from: np.ndarray) -> None:
        if copy_from.min() < 0 or copy_from.max() >= self.members:
            raise ValueError(f"Decision.copy_from must hold member indices in 0..{self.members - 1}.")
        moved = np.flatnonzero(copy_from != np.arange(self.members))
        gone = moved[self.parked[moved]]
        if len(gone):
            raise ValueError(f"Decision.copy_from copies into members {gone.tolist()}, which were packed out of the "
                             f"population: nothing of theirs trains any more. Copy into members still in it.")
        held = self.slots >= 0
        sources = copy_from[self.slots[held]]
        source_rows = self._rows_of(sources)
        if (source_rows < 0).any():
            lost = sorted(set(sources[source_rows < 0].tolist()))
            raise ValueError(f"Decision.copy_from names members {lost}, which were packed out of the population: "
                             f"their training state is gone. Copy from members still in it.")
        diverged = self.status()["diverged"]
        training = self._training_members(diverged)
        # (a diverged member replaced is PBT's way: only a target that stopped loses a trial)
        idle = sorted(set(copy_from[moved][~training[copy_from[moved]]].tolist()))
        ended = moved[~training[moved] & ~diverged[moved]]
        if idle or len(ended):  # (allowed, but PBT does neither: said, as a rule built on best_so_far does both)
            said = [f"from members {idle[:5]}, which no longer train: each copy stops with them"] if idle else []
            said += [f"into members {ended[:5].tolist()}, which had stopped: their own trial (row, curves, score) is "
                     f"replaced by the copy's"] if len(ended) else []
            warn(f"Decision.copy_from copies {'; and '.join(said)}. Copy between members that still train "
                 f"(snapshot.active & ~snapshot.stopped) to keep every trial whole.")
        parents = np.arange(self.rows)
        parents[held] = source_rows
        self.state, self.hp, self.controls = _copy_rows(self.state, self.hp, self.controls,
                                                        jnp.asarray(parents, jnp.int32))
        for name, value in self.member_hp.items():
            self.member_hp[name] = value[copy_from]
        # a member's curves so far become its source's: the record of the network it now carries, so
        # its score, best epoch and epochs trained describe that network (what a refit replays); the
        # epochs its own row computed stay counted apart (useful_compute_fraction)
        trained = np.isfinite(self.curves["train_loss"][:, :self.epochs_done]).sum(axis=1)
        computed = trained - self.inherited
        self.inherited = trained[copy_from] - computed
        for curve in self.curves.values():
            curve[:, :self.epochs_done] = curve[copy_from, :self.epochs_done]

    def _set_hp(self, hp: Mapping[str, np.ndarray], update: np.ndarray) -> None:
        unknown = sorted(set(hp) - set(self.hp))
        if unknown:
            raise ValueError(f"Decision.hp names {unknown}, which this population does not have; "
                             f"it has {sorted(self.hp)}.")
        held = self.slots >= 0
        # a member that no longer trains (stopped, frozen, packed out, diverged, its budget spent) keeps the
        # values it trained with: its row, its refit and the strategy's tell read them (update=None is every
        # member that trains on)
        update = update & self._training_members()
        where = np.zeros(self.rows, bool)
        where[held] = update[self.slots[held]]
        where_dev = jnp.asarray(where)
        slots = jnp.asarray(np.where(held, self.slots, 0))
        for name, values in hp.items():
            values = self._per_member(f"hp[{name!r}]", values, np.asarray(self.member_hp[name]).dtype)
            self.member_hp[name] = np.where(update, values, self.member_hp[name])
            self.hp[name] = jnp.where(where_dev, jnp.asarray(values)[slots].astype(self.hp[name].dtype), self.hp[name])
        if self.program.variable_batch:
            rows = self.data.member_rows(self.controls.fold)
            batch = jnp.asarray(self.program.rows_per_step(np.asarray(self.hp["batch_size"]), rows), jnp.int32)
            self.controls = self.controls.replace(batch_size=batch, total_steps=self.total_epochs * (rows // batch))
        self.state = engine.write_hyperparameters(self.program, self.state, self.hp, self.controls, where_dev)

    def _freeze(self, freeze: np.ndarray) -> None:
        held = self.slots >= 0
        frozen = np.zeros(self.rows, bool)
        frozen[held] = freeze[self.slots[held]]
        self._deactivate(frozen)  # (members packed out are frozen already)

    def _deactivate(self, rows: np.ndarray) -> None:
        if rows.any():
            status = self.state.status
            active = _deactivated(status.active, rows)
            self.state = self.state.replace(members=self.state.members.replace(status=status.replace(active=active)))

    def _set_budget(self, budget: np.ndarray) -> None:
        held = self.slots >= 0
        slots = jnp.asarray(np.where(held, self.slots, 0))
        self.controls = self.controls.replace(
            budget=jnp.where(jnp.asarray(held), jnp.asarray(budget)[slots], self.controls.budget))
