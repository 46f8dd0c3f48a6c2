"""The one training program: a population of members trained by `jit(vmap(...))` over `lax.scan`.

Shapes are static (a `Program` describes them and is the jit cache key); hyperparameters, seeds,
member ids and data are traced arguments, so a new round with new values reuses the compiled
program. Per step, every member takes its own optimizer step on a shared minibatch (members share
the minibatch order by default: a fair comparison, and XLA turns the first layer of all members
into one wide matmul). A member whose loss or parameters turn non-finite is frozen and marked
diverged; frozen members (padding, diverged, stopped) are exact no-ops: `where(active, new, old)`
over params and the whole optimizer state, step counts included.

Randomness: member i's key is fold_in(root, member_id[i]), so a member trains identically whatever
population it is in; the shared minibatch order comes from fold_in(order_key, epoch).

Layout (vmaptune/distributed.py): the population is split over `program.devices` devices with
shard_map, and on a CPU each device steps `program.member_block` members at a time (lax.map over
blocks, vmap inside) so their buffers stay in cache. Neither changes what a member computes.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from vmaptune.distributed import (AXIS, largest_divisor, place_population, place_replicated, population_mesh,
                                  population_specs, shard_population_map)
from vmaptune.metrics import get_metric, training_loss
from vmaptune.optim import make_optimizer, resolve_hyperparameters

#: How many times each program body was traced (a trace = a compile); tests read it.
TRACE_COUNTS: collections.Counter = collections.Counter()


@dataclasses.dataclass(frozen=True)
class Program:
    """Static description of one compiled population program (hashable: the jit cache key)."""

    model: Any  # a PopulationModel (e.g. models.BuiltMLP)
    optimizers: tuple[str, ...]  # optimizer kinds the population may use ("optimizer" indexes this)
    task: str
    metric: str
    batch_size: int  # rows per step; with variable_batch the largest member batch (the padded shape)
    steps_per_epoch: int  # with variable_batch: the steps of the smallest member batch
    shared_order: bool = True
    schedules: tuple[str, ...] = ("constant",)  # learning-rate schedules ("schedule" indexes this)
    variable_batch: bool = False  # hp["batch_size"] sets each member's batch
    patience: int = 0  # early stopping: freeze a member after this many epochs without improvement (0 = off)
    min_delta: float = 0.0  # smallest change of the monitored value that counts as an improvement
    monitor: str = "score"  # "score" (validation metric, higher is better) or "loss" (validation loss)
    restore_best: bool = False  # keep each member's best weights (state.best_params)
    folds: int = 0  # cross-validation folds (0 = none): hp["fold"] gives each member's fold
    evaluate: bool = True  # score on validation data every epoch (off for refits: test is read once, after)
    devices: int = 1  # split the population over up to this many devices (vmaptune.distributed)
    member_block: int = 0  # step this many members at a time (CPU cache blocking); 0 = all at once


@struct.dataclass
class PopulationState:
    """Everything that changes during training. Leading axis P on every member field."""

    params: Any
    opt_state: Any
    member_keys: jax.Array  # (P,) typed PRNG keys
    active: jax.Array  # (P,) bool: trains this step; False = frozen (padding, diverged, stopped)
    diverged: jax.Array  # (P,) bool
    best_score: jax.Array  # (P,) float32, -inf until the first finite validation score
    best_epoch: jax.Array  # (P,) int32, 1-based epoch of best_score, 0 if none
    epoch: jax.Array  # () int32: epochs trained so far
    stopped: jax.Array  # (P,) bool: frozen by early stopping
    since_best: jax.Array  # (P,) int32: epochs since the monitored value last improved by min_delta
    monitor_best: jax.Array  # (P,) float32: best monitored value (higher is better)
    best_params: Any = None  # params at the best monitored epoch, when program.restore_best


@struct.dataclass
class DataArrays:
    """Data on the device. For cross-validation X_train / X_val hold the whole pool and
    train_rows (K, n_train) / val_rows (K, n_val) list each fold's rows; hp["fold"] picks a
    member's fold."""

    X_train: jax.Array
    y_train: jax.Array
    X_val: jax.Array
    y_val: jax.Array
    train_rows: jax.Array | None = None
    val_rows: jax.Array | None = None

    @property
    def n_train(self) -> int:
        """Training rows one member sees per epoch."""
        return int(self.train_rows.shape[1] if self.train_rows is not None else self.X_train.shape[0])


def _all_finite(tree) -> jax.Array:
    """True when no leaf holds inf or NaN. max(|x|) is inf or NaN exactly then (XLA's max
    propagates NaN), and a float max reduces faster on a CPU than all(isfinite(x))."""
    leaves = [leaf for leaf in jax.tree.leaves(tree) if leaf.size]
    return jnp.isfinite(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in leaves]).max()) if leaves else jnp.bool_(True)


def _select(take: jax.Array, new, old):
    """Per-member no-op guard: new where take, else old, bit for bit, on every leaf."""
    return jax.tree.map(lambda n, o: jnp.where(take, n, o), new, old)


def _optimizer(program: Program, hp: Mapping[str, jax.Array]) -> optax.GradientTransformation:
    return make_optimizer(program.optimizers, resolve_hyperparameters(program.optimizers, hp), program.schedules)


def member_steps_per_epoch(program: Program, n_train: int, hp: Mapping[str, jax.Array]) -> jax.Array:
    """(P,) optimizer steps per epoch of each member: n_train // its batch size."""
    if program.variable_batch:
        return n_train // jnp.asarray(hp["batch_size"], jnp.int32)
    p = jax.tree.leaves(hp)[0].shape[0]
    return jnp.full(p, program.steps_per_epoch, jnp.int32)


def _init(program: Program, hp, member_ids, root_key, active) -> PopulationState:
    TRACE_COUNTS["init"] += 1
    member_keys = jax.vmap(lambda i: jax.random.fold_in(root_key, i))(member_ids)

    def init_member(key, hp_m):
        params = program.model.init(jax.random.fold_in(key, 0), hp_m)
        return params, _optimizer(program, hp_m).init(params)

    params, opt_state = jax.vmap(init_member)(member_keys, hp)
    p = member_ids.shape[0]
    return PopulationState(
        params=params, opt_state=opt_state, member_keys=member_keys,
        active=jnp.asarray(active, bool), diverged=jnp.zeros(p, bool),
        best_score=jnp.full(p, -jnp.inf, jnp.float32), best_epoch=jnp.zeros(p, jnp.int32),
        epoch=jnp.zeros((), jnp.int32), stopped=jnp.zeros(p, bool), since_best=jnp.zeros(p, jnp.int32),
        monitor_best=jnp.full(p, -jnp.inf, jnp.float32), best_params=params if program.restore_best else None,
    )


init_population = jax.jit(_init, static_argnames="program")
init_population.__doc__ = """(program, hp, member_ids (P,), root_key, active (P,)) -> PopulationState."""


def _batch_indices(program: Program, n_train: int, order_key, member_keys, epoch) -> jax.Array:
    """-> (steps, batch) shared row indices, or (steps, P, batch) when each member has its own order."""
    steps, batch = program.steps_per_epoch, program.batch_size
    if program.shared_order:
        perm = jax.random.permutation(jax.random.fold_in(order_key, epoch), n_train)
        return perm[: steps * batch].reshape(steps, batch)
    perms = jax.vmap(lambda k: jax.random.permutation(jax.random.fold_in(jax.random.fold_in(k, 2), epoch),
                                                      n_train))(member_keys)
    return perms[:, : steps * batch].reshape(-1, steps, batch).transpose(1, 0, 2)


def _epoch_permutations(program: Program, n_train: int, order_key, member_keys, epoch) -> jax.Array:
    """(P, n_train) row order of the epoch for each member (all equal with shared order)."""
    if program.shared_order:
        perm = jax.random.permutation(jax.random.fold_in(order_key, epoch), n_train)
        return jnp.broadcast_to(perm, (member_keys.shape[0], n_train))
    return jax.vmap(lambda k: jax.random.permutation(jax.random.fold_in(jax.random.fold_in(k, 2), epoch),
                                                     n_train))(member_keys)


def _member_step(program: Program, params, opt_state, key, hp_m, mask_m, active_m, xb, yb, step,
                 weights=None, live=True):
    """One optimizer step of one member -> (params, opt_state, loss, newly_diverged).

    weights: (batch,) row weights (1 for the member's own rows, 0 for padding) or None.
    live: False when the member has spent its steps for this epoch (a no-op step)."""
    dropout_key = jax.random.fold_in(jax.random.fold_in(key, 1), step)

    def loss_fn(p):
        out = program.model.apply(p, xb, hp_m, train=True, key=dropout_key)
        return training_loss(program.task, out, yb, weights)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, new_opt = _optimizer(program, hp_m).update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    if mask_m is not None:  # structure masks: padded units and skipped layers never change
        new_params = jax.tree.map(jnp.where, mask_m, new_params, params)
    ok = jnp.isfinite(loss) & _all_finite(new_params)
    take = active_m & live & ok
    return _select(take, new_params, params), _select(take, new_opt, opt_state), loss, active_m & live & ~ok


def _evaluate(program: Program, params, hp, data: DataArrays):
    """Validation loss and metric of every member: (P,), (P,). With folds, each member is scored
    on its own fold's held-out rows."""
    metric = get_metric(program.metric, program.task)

    def member(p, hp_m, X, y):
        out = program.model.apply(p, X, hp_m, train=False, key=None)
        return training_loss(program.task, out, y), metric.score(out, y)

    if program.folds:
        rows = data.val_rows[jnp.asarray(hp["fold"], jnp.int32)]  # (P, n_val)
        return jax.vmap(member)(params, hp, data.X_val[rows], data.y_val[rows])
    return jax.vmap(member, in_axes=(0, 0, None, None))(params, hp, data.X_val, data.y_val)


def params_count(state: PopulationState) -> int:
    return state.active.shape[0]


evaluate_population = jax.jit(_evaluate, static_argnames="program")
evaluate_population.__doc__ = """(program, params, hp, data) -> (loss (P,), score (P,)) on data.X_val / y_val."""


def _update_masks(model, hp):
    """(P, ...) bool masks of weights that may change, or None when the model masks nothing."""
    if not hasattr(model, "update_mask") or model.update_mask(jax.tree.map(lambda v: v[0], hp)) is None:
        return None
    return jax.vmap(model.update_mask)(hp)


def _train_steps(program: Program, data: DataArrays, members: dict, shared_rows, epoch):
    """One epoch of optimizer steps for a block of members (or the whole population).

    members: dict of per-member arrays (leading axis = the block's members): params, opt_state,
      active, diverged, keys, hp, masks (or None), steps (steps each member takes this epoch) and,
      when members do not share rows, order: (members, steps, batch) rows, or with per-member batch
      sizes (members, n_train) the epoch's permutation.
    shared_rows: (steps, batch) row indices every member reads, or None.
    -> params, opt_state, active, diverged, loss_sum (members,)."""
    hp, masks, n_train = members["hp"], members["masks"], data.n_train
    shared = shared_rows is not None and not program.folds  # one gather serves every member
    vstep = jax.vmap(
        lambda p, o, k, h, m, a, xb, yb, s, w, live: _member_step(program, p, o, k, h, m, a, xb, yb, s, w, live),
        in_axes=(0, 0, 0, 0, 0 if masks is not None else None, 0, None if shared else 0,
                 None if shared else 0, None, None if shared else 0, 0),
    )

    def step_body(carry, s):
        params, opt_state, active, diverged, loss_sum = carry
        live = s < members["steps"]
        weights = None
        if program.variable_batch:
            # member with batch b takes rows s*b .. s*b+b-1 of the epoch's order; padded rows weigh 0
            b = jnp.asarray(hp["batch_size"], jnp.int32)
            offsets = jnp.arange(program.batch_size)
            rows = jnp.clip(s * b[:, None] + offsets[None, :], 0, n_train - 1)
            idx = jnp.take_along_axis(members["order"], rows, axis=1)
            weights = (offsets[None, :] < b[:, None]).astype(jnp.float32)
        elif shared_rows is not None:
            idx = shared_rows[s]
        else:
            idx = members["order"][:, s]
        if program.folds:  # fold-local positions -> rows of the pool, per member
            fold = jnp.asarray(hp["fold"], jnp.int32)
            local = jnp.broadcast_to(idx, (fold.shape[0],) + idx.shape[-1:]) if idx.ndim == 1 else idx
            idx = data.train_rows[fold[:, None], local]
        xb, yb = data.X_train[idx], data.y_train[idx]
        step = epoch * program.steps_per_epoch + s
        params, opt_state, loss, newly = vstep(params, opt_state, members["keys"], hp, masks,
                                               active, xb, yb, step, weights, live)
        loss_sum = loss_sum + jnp.where(active & live & ~newly, loss, 0.0)
        return (params, opt_state, active & ~newly, diverged | newly, loss_sum), None

    active = members["active"]
    carry = (members["params"], members["opt_state"], active, members["diverged"],
             jnp.zeros(active.shape[0], jnp.float32))
    out, _ = jax.lax.scan(step_body, carry, jnp.arange(program.steps_per_epoch))
    return out


def _in_blocks(fn, members: dict, block: int):
    """fn over `members` in consecutive blocks of `block` members (lax.map), results concatenated
    back; the whole population at once when block is 0 or not smaller than it. Every array in
    `members` has the member axis first."""
    p = jax.tree.leaves(members)[0].shape[0]
    block = largest_divisor(p, block) if block else p
    if block >= p:
        return fn(members)
    blocked = jax.tree.map(lambda x: x.reshape((p // block, block) + x.shape[1:]), members)
    out = jax.lax.map(fn, blocked)
    return jax.tree.map(lambda x: x.reshape((p,) + x.shape[2:]), out)


def _train_chunk(program: Program, state: PopulationState, hp, data: DataArrays, order_key, n_epochs: int):
    TRACE_COUNTS["train_chunk"] += 1
    masks = _update_masks(program.model, hp)
    n_train = data.n_train
    member_steps = member_steps_per_epoch(program, n_train, hp)

    def epoch_body(state: PopulationState, _):
        members = {"params": state.params, "opt_state": state.opt_state, "active": state.active,
                   "diverged": state.diverged, "keys": state.member_keys, "hp": hp, "masks": masks,
                   "steps": member_steps}
        shared_rows = None
        if program.variable_batch:
            members["order"] = _epoch_permutations(program, n_train, order_key, state.member_keys, state.epoch)
        elif program.shared_order:
            shared_rows = _batch_indices(program, n_train, order_key, state.member_keys, state.epoch)
        else:  # (steps, P, batch) -> (P, steps, batch): a member axis first, like every member field
            members["order"] = jnp.swapaxes(
                _batch_indices(program, n_train, order_key, state.member_keys, state.epoch), 0, 1)
        params, opt_state, active, diverged, loss_sum = _in_blocks(
            lambda m: _train_steps(program, data, m, shared_rows, state.epoch), members, program.member_block)
        if program.evaluate:  # in member blocks too: the validation forward pass stays in cache
            val_loss, val_score = _in_blocks(lambda m: _evaluate(program, m["params"], m["hp"], data),
                                             {"params": params, "hp": hp}, program.member_block)
        else:
            val_loss = val_score = jnp.zeros(params_count(state), jnp.float32)
        # A finite model can still overflow on validation data: that is divergence too.
        blown = ~(jnp.isfinite(val_loss) & jnp.isfinite(val_score)) & ~diverged & active
        diverged, active = diverged | blown, active & ~blown
        nan = jnp.float32(jnp.nan)
        val_loss = jnp.where(diverged, nan, val_loss)
        val_score = jnp.where(diverged, nan, val_score)
        # NaN for members that did not train this epoch (frozen before it, or diverged)
        train_loss = jnp.where(diverged | ~state.active, nan, loss_sum / member_steps)
        epoch = state.epoch + 1
        improved = state.active & ~diverged & (val_score > state.best_score)  # frozen rows keep their records
        # early stopping, checked every epoch inside the program
        monitored = val_score if program.monitor == "score" else -val_loss
        better = active & (monitored > state.monitor_best + program.min_delta)
        since_best = jnp.where(better, 0, jnp.where(active, state.since_best + 1, state.since_best))
        stop = active & (since_best >= program.patience) if program.patience > 0 else jnp.zeros_like(active)
        best_params = state.best_params
        if program.restore_best:
            best_params = jax.vmap(_select)(better, params, state.best_params)
        new_state = state.replace(
            params=params, opt_state=opt_state, active=active & ~stop, diverged=diverged,
            best_score=jnp.where(improved, val_score, state.best_score),
            best_epoch=jnp.where(improved, epoch, state.best_epoch), epoch=epoch,
            stopped=state.stopped | stop, since_best=since_best,
            monitor_best=jnp.where(better, monitored, state.monitor_best), best_params=best_params,
        )
        return new_state, {"train_loss": train_loss, "val_loss": val_loss, "val_score": val_score}

    return jax.lax.scan(epoch_body, state, None, length=n_epochs)


def _train_chunk_on_devices(program: Program, state: PopulationState, hp, data: DataArrays, order_key,
                           n_epochs: int):
    """_train_chunk with the population split over the program's devices (shard_map: each device
    runs the same chunk on its own members; members share nothing, so nothing is communicated)."""
    mesh = population_mesh(program.devices, state.active.shape[0])
    if mesh is None:
        return _train_chunk(program, state, hp, data, order_key, n_epochs)
    state_specs = population_specs(state)
    curve_spec = jax.sharding.PartitionSpec(None, AXIS)  # curves are (n_epochs, P)
    chunk = shard_population_map(
        functools.partial(_train_chunk, program, n_epochs=n_epochs), mesh,
        in_specs=(state_specs, population_specs(hp), jax.sharding.PartitionSpec(), jax.sharding.PartitionSpec()),
        out_specs=(state_specs, {k: curve_spec for k in ("train_loss", "val_loss", "val_score")}))
    return chunk(state, hp, data, order_key)


# State buffers are donated: the old population is dead once the chunk has run (no copy on GPU).
train_chunk = jax.jit(_train_chunk_on_devices, static_argnames=("program", "n_epochs"), donate_argnames="state")
train_chunk.__doc__ = """(program, state, hp, data, order_key, n_epochs) -> (state, curves)

curves: dict of (n_epochs, P) arrays: train_loss, val_loss, val_score (NaN once diverged)."""


def useful_compute_fraction(program: Program, hp: Mapping[str, jax.Array], n_train: int,
                            active: jax.Array | None = None) -> float:
    """Share of the training matmul FLOPs that members' own networks and rows need, out of what the
    padded program computes (padding members, padded units and layers, padded batch rows and the
    steps a member sits out all count as waste)."""
    model = program.model
    steps = np.asarray(member_steps_per_epoch(program, n_train, hp), float)
    rows = steps * (np.asarray(hp["batch_size"], float) if program.variable_batch else program.batch_size)
    if hasattr(model, "row_flops"):
        useful = np.asarray(jax.vmap(model.row_flops)(hp), float)
        padded = model.padded_row_flops()
    else:
        useful, padded = np.ones_like(rows), 1.0
    live = np.ones_like(rows) if active is None else np.asarray(active, float)
    computed = len(rows) * program.steps_per_epoch * program.batch_size * padded
    return float(np.sum(useful * rows * live) / computed)


def member_bytes(model, hp: Mapping[str, jax.Array]) -> int:
    """Bytes of one member's params (one buffer; gradients and moments are the same size).
    hp: one member's settings (scalars). Traces the model's init without running it."""
    shapes = jax.eval_shape(lambda key: model.init(key, hp), jax.random.key(0))
    return int(sum(np.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(shapes)))


def data_arrays(dataset) -> DataArrays:
    return DataArrays(dataset.X_train, dataset.y_train, dataset.X_val, dataset.y_val)


STATUS_FIELDS = ("active", "diverged", "stopped", "best_score", "best_epoch")


class PopulationRun:
    """A population being trained: the device state and full-size host records.

    The state may shrink between chunks (`compact`, successive halving) or be re-indexed (PBT);
    `slots[i]` is the original member held in state row i. Records (`curves`, `status()`) always
    cover all P original members: a member taken out of the state keeps its last status, its
    validation curves carry their last value forward and its training loss is NaN.
    """

    def __init__(self, program: Program, hp: Mapping[str, jax.Array], data: DataArrays, *, member_ids, seed: int,
                 epochs: int, active=None):
        member_ids = jnp.asarray(member_ids, jnp.int32)
        p = member_ids.shape[0]
        self.program, self.data, self.total_epochs = program, data, int(epochs)
        # schedules are sized by each member's whole training: epochs x its steps per epoch
        self.hp = dict(hp, total_steps=epochs * member_steps_per_epoch(program, data.n_train, hp))
        active = jnp.ones(p, bool) if active is None else jnp.asarray(active, bool)
        root = jax.random.key(seed)
        self.order_key = jax.random.fold_in(root, 1)
        self.state = init_population(program, self.hp, member_ids, jax.random.fold_in(root, 0), active)
        self.slots = np.arange(p)
        self.curves = {k: np.full((p, self.total_epochs), np.nan, np.float32)
                       for k in ("train_loss", "val_loss", "val_score")}
        self._parked: dict[str, np.ndarray] = {}  # status of members taken out of the state
        self._parked_members = np.zeros(p, bool)
        self.epochs_done = 0

    @property
    def population(self) -> int:
        return len(self.curves["val_score"])

    def train(self, epochs: int, chunk_epochs: int = 1, on_chunk: Callable | None = None,
              compact_below: float = 0.0) -> None:
        """Trains `epochs` more epochs in chunks. `on_chunk(epochs_done, curves)` runs between chunks.
        compact_below: when the share of active rows falls to this or under, survivors are packed
        into a smaller state (a power of two) before the next chunk."""
        if self.epochs_done + epochs > self.total_epochs:
            raise ValueError(f"this run was set up for {self.total_epochs} epochs; "
                             f"{self.epochs_done} are done, {epochs} more asked.")
        self._place()
        pending = None
        for start in range(0, epochs, chunk_epochs):
            n = min(chunk_epochs, epochs - start)
            self.state, chunk = train_chunk(self.program, self.state, self.hp, self.data, self.order_key, n)
            if pending is not None:  # the host reads chunk k while the device runs chunk k + 1
                self._record(*pending, on_chunk)
            pending = (self.epochs_done, n, chunk)
            self.epochs_done += n
            if compact_below > 0:
                self._record(*pending, on_chunk)
                pending = None
                self.compact(compact_below)
        if pending is not None:
            self._record(*pending, on_chunk)

    def _place(self) -> None:
        """Moves state, settings and data where the program reads them (a no-op when they are
        there already; needed after the population changed size or was edited by a strategy)."""
        mesh = population_mesh(self.program.devices, len(self.slots))
        self.state = place_population(self.state, mesh)
        self.hp = place_population(self.hp, mesh)
        self.data = place_replicated(self.data, mesh)
        self.order_key = place_replicated(self.order_key, mesh)

    def _record(self, first_epoch: int, n: int, chunk, on_chunk) -> None:
        chunk = jax.device_get(chunk)
        window = slice(first_epoch, first_epoch + n)
        for key, value in chunk.items():
            self.curves[key][self.slots, window] = np.asarray(value).T
        parked = self._parked_members
        if parked.any():
            for key in ("val_loss", "val_score"):  # carry the last value on; NaN if parked before training
                last = self.curves[key][parked, first_epoch - 1:first_epoch] if first_epoch > 0 else np.nan
                self.curves[key][parked, window] = last
            self.curves["train_loss"][parked, window] = np.nan
        if on_chunk is not None:
            on_chunk(first_epoch + n, {k: v[:, :first_epoch + n] for k, v in self.curves.items()})

    def select(self, rows) -> None:
        """Keeps state rows `rows` (indices into the current state, no repeats), in that order."""
        rows = np.asarray(rows)
        dropped = np.setdiff1d(np.arange(len(self.slots)), rows)
        if len(dropped):
            status = self._state_status()
            for key in STATUS_FIELDS:
                self._parked.setdefault(key, np.zeros(self.population, status[key].dtype))
                self._parked[key][self.slots[dropped]] = status[key][dropped]
            self._parked["active"][self.slots[dropped]] = False
            self._parked_members[self.slots[dropped]] = True
        take = jnp.asarray(rows)
        self.state = _take_rows(self.state, take)
        self.hp = {k: v[take] for k, v in self.hp.items()}
        self.slots = self.slots[rows]
        self._place()

    def compact(self, below: float = 0.5) -> bool:
        """Packs the active members into a smaller state when they are `below` of it or fewer."""
        active = np.asarray(self.state.active)
        size = len(active)
        n = int(active.sum())
        new_size = 1 << max(int(np.ceil(np.log2(max(n, 1)))), 0)
        if n > below * size or new_size >= size:
            return False
        inactive = np.flatnonzero(~active)
        rows = np.concatenate([np.flatnonzero(active), inactive[: new_size - n]])  # frozen rows fill up
        self.select(np.sort(rows))
        return True

    def _state_status(self) -> dict[str, np.ndarray]:
        return {key: np.asarray(getattr(self.state, key)) for key in STATUS_FIELDS}

    def status(self) -> dict[str, np.ndarray]:
        """Full-size (P,) arrays: active, diverged, stopped, best_score, best_epoch."""
        live = self._state_status()
        out = {}
        for key in STATUS_FIELDS:
            full = self._parked[key].copy() if key in self._parked else np.zeros(self.population, live[key].dtype)
            full[self.slots] = live[key]
            out[key] = full
        return out


def _take_rows(state: PopulationState, rows: jax.Array) -> PopulationState:
    """The state of members `rows` (every per-member leaf gathered; the epoch counter kept)."""
    epoch = state.epoch
    taken = jax.tree.map(lambda x: x[rows], state.replace(epoch=jnp.zeros(len(rows))))
    return taken.replace(epoch=epoch)


def run_population(
    program: Program,
    hp: Mapping[str, jax.Array],
    data: DataArrays,
    *,
    member_ids: jax.Array,
    seed: int,
    epochs: int,
    chunk_epochs: int = 1,
    active: jax.Array | None = None,
    on_chunk: Callable[[int, dict[str, np.ndarray]], None] | None = None,
) -> tuple[PopulationState, dict[str, np.ndarray]]:
    """Trains a population for `epochs` in chunks; returns the final state and the curves
    (dict of (P, epochs) numpy arrays: train_loss, val_loss, val_score)."""
    run = PopulationRun(program, hp, data, member_ids=member_ids, seed=seed, epochs=epochs, active=active)
    run.train(epochs, chunk_epochs, on_chunk)
    return run.state, run.curves
