"""The one training program: a population of members trained by `jit(vmap(...))` over `lax.scan`.

Shapes are static (a `Program` describes them and is the jit cache key); hyperparameters,
controls, seeds, member ids and data are traced arguments, so a new round with new values reuses
the compiled program. Per step, every member takes its own optimizer step (`member_update`) on
a minibatch (members share the minibatch order by default: a fair comparison, and XLA turns the
first layer of all members into one wide matmul). A member whose loss, weights or validation
score turn non-finite is frozen and marked diverged; frozen members (fillers, diverged, stopped,
out of budget) are exact no-ops: `where(take, new, old)` over the weights, the whole optimizer
state (step counts included) and the model state.

Randomness (vmaptune/streams.py): each member's key comes from its member id, so a member trains
identically whatever population it is in; the shared minibatch order from the order key and the
epoch.

Layout (vmaptune/distributed.py): the population is split over `program.devices` devices with
shard_map, and on a CPU each device steps `program.member_block` members at a time (a loop over
blocks that updates the state in place, vmap inside) so their buffers stay in cache. Neither changes what a member computes.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import PartitionSpec

from vmaptune import early_stopping, streams
from vmaptune.compile_cache import QUICK_COMPILER_OPTIONS, QUICK_TRAINING_COMPILER_OPTIONS
from vmaptune.distributed import largest_divisor, population_mesh, shard_population_map
from vmaptune.flat import FlatLayout
from vmaptune.optim import PopulationOptimizer
from vmaptune.program import Program, build_program  # noqa: F401  (build_program: engine.build_program)
from vmaptune.state import AXIS, Controls, Members, PopulationState, Status, member_specs

#: How many times each program body was traced (a trace = a compile); tests read it.
TRACE_COUNTS: collections.Counter = collections.Counter()

CURVES = ("train_loss", "val_loss", "val_score")


@struct.dataclass
class FoldScaling:
    """Each cross-validation fold's own standardisation, from its training rows, as a run on them
    alone has it: no statistic of a fold's held-out rows reaches its training (a trend's future,
    under TimeSeriesSplit). x_shift, x_scale (K, ...): a member's inputs are (x - shift) / scale of
    its fold (None for token ids). y_shift, y_scale (K, k): likewise a regression member's targets,
    which its network fits and its loss sees (None for classification); its outputs are mapped
    back (out * scale + shift) for the metric, which scores every fold in the data set's units."""

    x_shift: jax.Array | None = None
    x_scale: jax.Array | None = None
    y_shift: jax.Array | None = None
    y_scale: jax.Array | None = None

    def inputs(self, X: jax.Array, fold: jax.Array) -> jax.Array:
        """X (P, n, ...) rows of each member's fold (P,) -> as its fold scales them."""
        return X if self.x_shift is None else (X - _per_member(self.x_shift, fold)) / _per_member(self.x_scale, fold)

    def targets(self, y: jax.Array, fold: jax.Array) -> jax.Array:
        """y (P, n) or (P, n, k) -> as each member's fold scales them."""
        if self.y_shift is None:
            return y
        shift, scale = (_per_member(a if y.ndim == 3 else a[:, 0], fold) for a in (self.y_shift, self.y_scale))
        return (y - shift) / scale

    def heads(self, fold: jax.Array):
        """(shift, scale), each (P, k): what maps each member's outputs back to the data set's
        units, or None."""
        return None if self.y_shift is None else (self.y_shift[fold], self.y_scale[fold])


def _per_member(a: jax.Array, fold: jax.Array) -> jax.Array:
    """(K, ...) per fold -> (P, 1, ...) per member, to broadcast over its rows."""
    return a[fold].reshape((fold.shape[0], 1) + a.shape[1:])


@struct.dataclass
class DataArrays:
    """Data on the device. For cross-validation X_train / X_val hold the whole pool and
    train_rows (K, n_train) / val_rows (K, n_val) list each fold's rows; controls.fold picks a
    member's fold. fold_rows (K,) ints, static: how many of its train_rows each fold trains on,
    where folds differ (the rest pad to the largest fold's and are never read), or None: all of
    them. stop_rows (K, n_stop): rows of each fold held out of its training for early stopping to
    watch instead of val_rows (EarlyStopping(validation_fraction=...)), or None. scaling: each
    fold's own standardisation (FoldScaling), or None. val_counts (K,) ints, static: how many of
    its val_rows each fold holds out, where folds differ (the rest pad to the largest fold's and
    are never scored), or None: all of them. w_train: row weights of the training loss, indexed as
    X_train's rows (sample_weight), or None: every row weighs the same."""

    X_train: jax.Array
    y_train: jax.Array
    X_val: jax.Array
    y_val: jax.Array
    train_rows: jax.Array | None = None
    val_rows: jax.Array | None = None
    stop_rows: jax.Array | None = None
    fold_rows: tuple[int, ...] | None = struct.field(pytree_node=False, default=None)
    scaling: FoldScaling | None = None
    val_counts: tuple[int, ...] | None = struct.field(pytree_node=False, default=None)
    w_train: jax.Array | None = None

    @property
    def n_train(self) -> int:
        """Training rows a member sees per epoch (the largest fold's where folds differ): the
        program's shape."""
        return int(self.train_rows.shape[1] if self.train_rows is not None else self.X_train.shape[0])

    @property
    def fewest_rows(self) -> int:
        """Training rows of the smallest fold (n_train without folds of different sizes)."""
        return self.n_train if self.fold_rows is None else min(self.fold_rows)

    def member_rows(self, fold=None):
        """Training rows per epoch of each member from its fold (P,): (P,) ints, or the scalar
        n_train where every member trains on as many. On the host (numpy) unless traced."""
        if self.fold_rows is None or fold is None:
            return self.n_train
        if isinstance(fold, jax.core.Tracer):
            return jnp.asarray(self.fold_rows, jnp.int32)[fold]
        return np.asarray(self.fold_rows, np.int32)[np.asarray(fold)]  # (no device program for host bookkeeping)

    @property
    def folded(self) -> bool:
        return self.train_rows is not None


def data_arrays(dataset) -> DataArrays:
    """The training and validation splits of a vt.Dataset."""
    return DataArrays(dataset.X_train, dataset.y_train, dataset.X_val, dataset.y_val,
                      w_train=getattr(dataset, "w_train", None))


# -- one member ---------------------------------------------------------------------------------------
def all_finite(tree) -> jax.Array:
    """True when no leaf holds inf or NaN. max(|x|) is inf or NaN exactly then (XLA's max
    propagates NaN), and a float max reduces faster on a CPU than all(isfinite(x))."""
    leaves = [leaf for leaf in jax.tree.leaves(tree) if leaf.size]
    return jnp.isfinite(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in leaves]).max()) if leaves else jnp.bool_(True)


def select(take: jax.Array, new, old):
    """Per-member no-op guard: new where take, else old, bit for bit, on every leaf."""
    return jax.tree.map(lambda n, o: jnp.where(take, n, o), new, old)


def init_members(program: Program, hp: Mapping[str, jax.Array], controls: Controls, member_ids: jax.Array,
                 members_key: jax.Array):
    """Members' starting point -> (params, opt_state, model_state, keys), each with the member
    axis first. Traceable; vt.tune and the range test both start from here."""
    keys = streams.member_keys(members_key, member_ids)

    def one(key, hp_m, total_steps):
        params, model_state = program.model.init(streams.member_stream(key, streams.MEMBER_INIT), hp_m)
        return params, program.optimizer.init(params, hp_m, total_steps), model_state

    params, opt_state, model_state = jax.vmap(one)(keys, hp, controls.total_steps)
    return params, opt_state, model_state, keys


def member_update(program: Program, params, opt_state, model_state, key, hp_m, total_steps, mask, xb, yb, weights,
                  step, layout: FlatLayout | None = None):
    """One optimizer step of ONE member, not yet applied -> (params, opt_state, model_state, loss, ok).

    xb, yb: the step's rows; weights: (batch,) row weights (0 for padded rows, sample weights) or None. mask:
    the model's update mask (weights that must not change) or None. ok: the loss and the new
    weights and model state are finite; the caller keeps the new values only where it wants
    (`select`), so a frozen or failing member stays bit-identical. layout: params, mask and the
    optimizer's moments are one flat vector in this layout (vmaptune/flat.py), else pytrees."""
    dropout_key = streams.member_stream(key, streams.MEMBER_DROPOUT, step)

    def loss_fn(p):
        out, new_model_state = program.model.apply(p, model_state, xb, hp_m, train=True, key=dropout_key)
        return program.loss(out, yb, weights, hp_m), new_model_state

    tree = params if layout is None else layout.unravel_one(params)
    (loss, new_model_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(tree)
    if layout is not None:
        grads = layout.ravel_one(grads)
    updates, new_opt = program.optimizer.update(grads, opt_state, params, hp_m, total_steps)
    # the state keeps its dtypes, as optax.apply_updates keeps the weights' (a safety net: an optimizer of
    # yours gets its values weakly typed, optim._as_plain_numbers, so its bfloat16 moments stay bfloat16;
    # a change of dtype in the training loop's carry is a lax.scan error after compiling)
    new_opt = jax.tree.map(lambda new, old: new if new.dtype == old.dtype else new.astype(old.dtype),
                           new_opt, opt_state)
    new_params = optax.apply_updates(params, updates)
    if mask is not None:  # structure masks: padded units and skipped layers never change
        new_params = jax.tree.map(jnp.where, mask, new_params, params)
    ok = jnp.isfinite(loss) & all_finite((new_params, new_model_state))
    return new_params, new_opt, new_model_state, loss, ok


def update_masks(program: Program, hp: Mapping[str, jax.Array]):
    """(P, ...) bool masks of weights that may change, or None when the model masks nothing."""
    if program.model.update_mask(jax.tree.map(lambda v: v[0], hp)) is None:
        return None
    return jax.vmap(program.model.update_mask)(hp)


# -- the population --------------------------------------------------------------------------------------
def _init(program: Program, hp, controls: Controls, member_ids, members_key, active) -> PopulationState:
    TRACE_COUNTS["init"] += 1
    params, opt_state, model_state, keys = init_members(program, hp, controls, member_ids, members_key)
    restore = program.early_stopping is not None and program.early_stopping.restore_best_weights
    members = Members(params=params, opt_state=opt_state, model_state=model_state, key=keys,
                      status=Status.start(jnp.asarray(active, bool)),
                      best_params=params if restore else None, best_model_state=model_state if restore else None)
    return PopulationState(members=members, epoch=jnp.zeros((), jnp.int32))


#: The initialisation program runs once per population, so its speed hardly matters, but its
#: compile is paid by every first search: compiled quick (compile_cache.QUICK_COMPILER_OPTIONS)
#: it takes a third of the time (0.16 s against 0.50 s, bench/compile_time.py), to the same values.
INIT_COMPILER_OPTIONS = QUICK_COMPILER_OPTIONS

init_population = jax.jit(_init, static_argnames="program", compiler_options=INIT_COMPILER_OPTIONS)
init_population.__doc__ = """(program, hp, controls, member_ids (P,), members_key, active (P,)) -> PopulationState."""


def _epoch_order(program: Program, data: DataArrays, order_key, keys, fold, epoch) -> jax.Array:
    """(P, n_train) each member's row order for the epoch: one shared permutation (broadcast), or
    each member's own from its key. With folds of different sizes (data.fold_rows) a member's
    first fold_rows[fold] positions are the permutation a run on its fold's rows alone would draw
    (the same key, its fold's length), its fold's padding after them."""
    n_train = data.n_train
    sizes = (n_train,) if data.fold_rows is None else tuple(sorted(set(data.fold_rows)))

    def padded(key, n):  # a permutation of n positions, then the padding's positions in place
        perm = jax.random.permutation(key, n)
        return perm if n == n_train else jnp.concatenate([perm, jnp.arange(n, n_train, dtype=perm.dtype)])

    if program.shared_order:
        key = jax.random.fold_in(order_key, epoch)
        if data.fold_rows is None:
            return jnp.broadcast_to(padded(key, n_train), (keys.shape[0], n_train))
        return jnp.stack([padded(key, n) for n in data.fold_rows])[fold]
    member_keys = jax.vmap(lambda k: streams.member_stream(k, streams.MEMBER_ORDER, epoch))(keys)
    orders = [jax.vmap(lambda k: padded(k, n))(member_keys) for n in sizes]  # (P, n_train) per fold length
    if len(orders) == 1:
        return orders[0]
    which = jnp.asarray([sizes.index(n) for n in data.fold_rows])[fold]  # (P,) each member's fold length
    return jnp.stack(orders)[which, jnp.arange(keys.shape[0])]


def _train_steps(program: Program, data: DataArrays, members: dict, shared_rows, epoch, n_steps: int,
                 layout: FlatLayout | None = None):
    """One epoch of optimizer steps for a block of members (or the whole population).

    members: dict of per-member arrays (member axis first): params, opt_state, model_state,
      active, diverged, key, hp, batch_size, total_steps, fold, masks (or None), steps (steps each
      member takes this epoch) and, unless every member reads shared_rows, order (members, n_train).
    shared_rows: (steps, batch) rows every member reads, or None.
    layout: params, masks and the optimizer's moments are flat in this layout (see _train_chunk).
    -> params, opt_state, model_state, active, diverged, loss_sum (members,)."""
    hp, masks, n_train = members["hp"], members["masks"], data.n_train
    shared = shared_rows is not None and not data.folded  # one gather serves every member
    padded = program.padded_batch(n_train, data.fold_rows)
    # members whose batches differ (searched, or evened over folds of different sizes) weigh the
    # padded rows of a smaller batch 0
    weighted = program.variable_batch or (program.even_batches and data.fold_rows is not None)
    # each member's own row weights: padded rows of a smaller batch, or sample weights of its own rows
    own_weights = weighted or (data.w_train is not None and not shared)
    params, opt_state = members["params"], members["opt_state"]
    vstep = jax.vmap(functools.partial(member_update, program, layout=layout),
                     in_axes=(0, 0, 0, 0, 0, 0, 0 if masks is not None else None, None if shared else 0,
                              None if shared else 0, 0 if own_weights else None, 0))

    def step_body(carry, s):
        params, opt_state, model_state, active, diverged, loss_sum = carry
        live = s < members["steps"]
        weights = None
        if shared_rows is not None:
            idx = shared_rows[s]
        else:  # member with batch b takes rows s*b .. s*b+b-1 of its epoch order; padded rows weigh 0
            b = members["batch_size"]
            offsets = jnp.arange(padded)
            rows = jnp.clip(s * b[:, None] + offsets[None, :], 0, n_train - 1)
            idx = jnp.take_along_axis(members["order"], rows, axis=1)
            if weighted:
                weights = (offsets[None, :] < b[:, None]).astype(jnp.float32)
        if data.folded:  # fold-local positions -> rows of the pool, per member
            fold = members["fold"]
            local = jnp.broadcast_to(idx, (fold.shape[0],) + idx.shape[-1:]) if idx.ndim == 1 else idx
            idx = data.train_rows[fold[:, None], local]
        xb, yb = data.X_train[idx], data.y_train[idx]
        if data.w_train is not None:  # (a padded row's weight stays 0)
            weights = data.w_train[idx] if weights is None else weights * data.w_train[idx]
        if data.scaling is not None:  # (folded: every member's own rows, (members, batch, ...))
            xb, yb = data.scaling.inputs(xb, members["fold"]), data.scaling.targets(yb, members["fold"])
        # each member counts its own steps (its batch size's), so its randomness does not depend on
        # the program it shares (the smallest batch among its neighbours)
        step = epoch * members["steps"] + s
        new_params, new_opt, new_model_state, loss, ok = vstep(
            params, opt_state, model_state, members["key"], hp, members["total_steps"], masks, xb, yb, weights, step)
        take = active & live & ok
        newly = active & live & ~ok
        params = jax.vmap(select)(take, new_params, params)
        opt_state = jax.vmap(select)(take, new_opt, opt_state)
        model_state = jax.vmap(select)(take, new_model_state, model_state)
        loss_sum = loss_sum + jnp.where(take, loss, 0.0)
        return (params, opt_state, model_state, active & ~newly, diverged | newly, loss_sum), None

    active = members["active"]
    carry = (params, opt_state, members["model_state"], active, members["diverged"],
             jnp.zeros(active.shape[0], jnp.float32))
    (params, opt_state, *rest), _ = jax.lax.scan(step_body, carry, jnp.arange(n_steps))
    return (params, opt_state, *rest)


def flat_layout(program: Program, params) -> FlatLayout | None:
    """The flat layout a training chunk uses for these weights (member axis first), or None to
    train leaf by leaf: your own optimizer's state is opaque to the engine (vmaptune/flat.py)."""
    return FlatLayout.of(params) if isinstance(program.optimizer, PopulationOptimizer) else None


def _map_weights(program: Program, members: Members, fn) -> Members:
    """members with fn applied to the weights, the best weights and the optimizer's moments."""
    return members.replace(params=fn(members.params), opt_state=program.optimizer.map_moments(members.opt_state, fn),
                           best_params=None if members.best_params is None else fn(members.best_params))


def _evaluate(program: Program, params, model_state, hp, fold, data: DataArrays, rows=None):
    """Validation loss and metric of every member: (P,), (P,). With folds, each member is scored
    on its own fold's held-out rows, all of them (folds holding out different numbers: the loss
    and metric of each count are taken over the first rows, and each member's fold picks its
    own); rows (K, n): on these rows of X_train instead (its fold's)."""
    counts = data.val_counts if rows is None and data.folded else None
    lengths = None if counts is None else tuple(sorted(set(counts)))

    def member(p, s, hp_m, X, y, y_fold=None, head=None, which=None):
        out, _ = program.model.apply(p, s, X, hp_m, train=False, key=None)
        # the loss as the member trains on it (its fold's units), the metric in the data set's
        fitted, y_fold = (out, y) if head is None else (out * head[1] + head[0], y_fold)

        def scored(n=None):
            cut = (lambda tree: tree) if n is None else (lambda tree: jax.tree.map(lambda a: a[:n], tree))
            return program.loss(cut(out), cut(y_fold), hp=hp_m), program.metric.score(cut(fitted), cut(y))

        if lengths is None:
            return scored()
        # (a static loop over the folds' counts: a metric is a function of the rows it is given)
        return tuple(jnp.stack(values)[which] for values in zip(*(scored(n) for n in lengths)))

    if rows is not None or data.folded:  # each member's own fold's rows (P, n), as its fold scales them
        X, y = (data.X_train, data.y_train) if rows is not None else (data.X_val, data.y_val)
        rows = (data.val_rows if rows is None else rows)[fold]
        X, y = X[rows], y[rows]
        which = None if lengths is None else jnp.asarray([lengths.index(n) for n in counts])[fold]
        if data.scaling is None:
            return jax.vmap(member)(params, model_state, hp, X, y, None, None, which)
        return jax.vmap(member)(params, model_state, hp, data.scaling.inputs(X, fold), y,
                                data.scaling.targets(y, fold), data.scaling.heads(fold), which)
    return jax.vmap(member, in_axes=(0, 0, 0, None, None))(params, model_state, hp, data.X_val, data.y_val)


def _evaluate_population(program: Program, state: PopulationState, hp, controls: Controls, data: DataArrays):
    m = state.members
    return _evaluate(program, m.params, m.model_state, hp, controls.fold, data)


evaluate_population = jax.jit(_evaluate_population, static_argnames="program")
evaluate_population.__doc__ = """(program, state, hp, controls, data) -> (loss (P,), score (P,)) on data.X_val / y_val."""


#: The per-member training state a block's epoch reads and writes back (the first outputs of
#: `_epoch_in_blocks`'s run, in this order); the other member arrays are read only.
CARRIED = ("params", "opt_state", "model_state", "active", "diverged")


def _in_blocks(run, idle, members: dict, block: int):
    """An epoch over `members` in consecutive blocks of `block` members; the whole population at
    once when block is 0 or not smaller than it. Every array in `members` has the member axis first.

    run(block members) -> outputs, whose first entries are the block's CARRIED state; idle(members)
    -> the same outputs for members that do not train (their state as it is). The outputs start as
    idle's for everyone, and each block where a member trains is run and written back in place
    (one loop carrying the population): a block where nobody trains is neither computed nor
    copied, and no block's state is copied into a second buffer."""
    p = jax.tree.leaves(members)[0].shape[0]
    block = largest_divisor(p, block) if block else p
    if block >= p:
        return jax.lax.cond(jnp.any(members["active"]), run, idle, members)
    read_only = {k: v for k, v in members.items() if k not in CARRIED}

    def one_block(i, out):
        start = i * block
        take = functools.partial(jax.lax.dynamic_slice_in_dim, start_index=start, slice_size=block)
        part = jax.tree.map(take, {**read_only, **dict(zip(CARRIED, out[:len(CARRIED)]))})
        return jax.tree.map(lambda whole, new: jax.lax.dynamic_update_slice_in_dim(whole, new, start, 0), out,
                            run(part))

    def maybe(i, out):  # (the state is read from the loop's own buffers, so XLA updates them in place)
        busy = jnp.any(jax.lax.dynamic_slice_in_dim(out[CARRIED.index("active")], i * block, block))
        return jax.lax.cond(busy, one_block, lambda i, out: out, i, out)

    return jax.lax.fori_loop(0, p // block, maybe, idle(members))


def _epoch_in_blocks(program: Program, data: DataArrays, members: dict, shared_rows, epoch, n_steps: int,
                     layout: FlatLayout | None):
    """One epoch of every member, block by block (program.member_block): a block's steps, then its
    validation (in the same block, so the forward pass finds the weights in cache). A block where
    no member trains is skipped (`_in_blocks`): its members are frozen, so the steps would change
    nothing; their validation comes back NaN with evaluated False, and the host carries their last
    value on. Packing the members still training into the first blocks (vmaptune/packing.py)
    makes stopped members cost nothing, without a new program. members["due"]: (members,) bool
    with program.evaluate_every > 1 (else absent: every member): who is validated this epoch; a
    block where nobody is skips the validation pass, and the others come back NaN with evaluated
    False, as a skipped block's.
    -> params, opt_state, model_state, active, diverged, loss_sum, val_loss, val_score, evaluated,
    watched: (loss, score) early stopping watches, on data.stop_rows where there are some, else
    the validation's."""

    def run(b):
        due = b.get("due")
        params, opt_state, model_state, active, diverged, loss_sum = _train_steps(program, data, b, shared_rows,
                                                                                  epoch, n_steps, layout)
        size = active.shape[0]
        evaluated = jnp.ones(size, bool)
        if program.evaluate:
            tree = params if layout is None else layout.unravel(params)

            def scores(rows=None):
                return tuple(v.astype(jnp.float32) for v in _evaluate(program, tree, model_state, b["hp"], b["fold"],
                                                                       data, rows))

            if due is None:
                val_loss, val_score = scores()
            else:  # a real branch: the epochs between evaluations skip the validation pass
                nan = jnp.full(size, jnp.nan, jnp.float32)
                val_loss, val_score = jax.lax.cond(jnp.any(due), scores, lambda: (nan, nan))
                val_loss, val_score, evaluated = jnp.where(due, val_loss, nan), jnp.where(due, val_score, nan), due
        else:
            val_loss = val_score = jnp.zeros(size, jnp.float32)
        watched = (val_loss, val_score)
        if program.evaluate and data.stop_rows is not None:  # (early stopping validates every epoch)
            watched = scores(data.stop_rows)
        return params, opt_state, model_state, active, diverged, loss_sum, val_loss, val_score, evaluated, watched

    def idle(b):
        size = b["active"].shape[0]
        nan = jnp.full(size, jnp.nan, jnp.float32)
        return (*(b[k] for k in CARRIED), jnp.zeros(size, jnp.float32), nan, nan, jnp.zeros(size, bool), (nan, nan))

    return _in_blocks(run, idle, members, program.member_block)


def _train_chunk(program: Program, state: PopulationState, hp, controls: Controls, data: DataArrays, order_key,
                 n_epochs: int):
    TRACE_COUNTS["train_chunk"] += 1
    masks = update_masks(program, hp)
    # With the built-in optimizer, the chunk carries one vector of weights (and one per moment) per
    # member: its epochs' steps, member blocks and no-op guards touch a few arrays instead of every
    # leaf (a smaller program, compiled faster); pytrees again when the chunk ends.
    layout = flat_layout(program, state.members.params)
    if layout is not None:
        state = state.replace(members=_map_weights(program, state.members, layout.ravel))
        masks = None if masks is None else layout.ravel(masks)
    n_train = data.n_train
    n_steps = program.steps_per_epoch(n_train, data.fold_rows)
    member_steps = data.member_rows(controls.fold) // controls.batch_size
    nan = jnp.float32(jnp.nan)

    def epoch_body(state: PopulationState, _):
        m, status = state.members, state.members.status
        training = status.active & (state.epoch < controls.budget)
        members = {"params": m.params, "opt_state": m.opt_state, "model_state": m.model_state, "active": training,
                   "diverged": status.diverged, "key": m.key, "hp": hp, "masks": masks, "steps": member_steps,
                   "batch_size": controls.batch_size, "total_steps": controls.total_steps, "fold": controls.fold}
        shared_rows = None
        order = _epoch_order(program, data, order_key, m.key, controls.fold, state.epoch)
        if program.shared_order and not program.variable_batch and data.fold_rows is None:
            batch = program.padded_batch(n_train)  # (every member's)
            shared_rows = order[0, : n_steps * batch].reshape(n_steps, batch)
        else:
            members["order"] = order
        if program.evaluate_every > 1:  # every evaluate_every-th epoch, and a member's last
            members["due"] = training & (((state.epoch + 1) % program.evaluate_every == 0)
                                         | (state.epoch + 1 >= controls.budget))
        (params, opt_state, model_state, active, diverged, loss_sum, val_loss, val_score, evaluated,
         (watched_loss, watched_score)) = _epoch_in_blocks(program, data, members, shared_rows, state.epoch, n_steps,
                                                           layout)
        # A finite model can still overflow on validation data: that is divergence too. Only losses
        # count: a metric may be undefined on some rows (a MAPE with a zero target) while the model
        # trains fine; such a member has no score that epoch (NaN) and goes on (Results.metric_undefined).
        finite = jnp.isfinite(val_loss) & jnp.isfinite(watched_loss)
        blown = ~finite & ~diverged & active & evaluated
        diverged, active = diverged | blown, active & ~blown
        val_loss = jnp.where(diverged, nan, val_loss)
        val_score = jnp.where(diverged, nan, val_score)
        evaluated = evaluated | diverged  # NaN is its score now, validated or not (never a carried value)
        train_loss = jnp.where(diverged | ~training, nan, loss_sum / member_steps)
        epoch = state.epoch + 1
        tracked, better = early_stopping.track(program.early_stopping, status.replace(active=active, diverged=diverged),
                                               watched_loss, watched_score, train_loss)
        if data.stop_rows is None:
            improved = training & ~diverged & (val_score > status.best_score)  # frozen rows keep their records
        else:  # the score at the epoch the held-out stopping rows chose (the weights early stopping keeps)
            improved = better & ~diverged
        best_params, best_model_state = m.best_params, m.best_model_state
        if best_params is not None:
            best_params = jax.vmap(select)(better, params, best_params)
            best_model_state = jax.vmap(select)(better, model_state, best_model_state)
        # a member that has trained its budget is frozen (not "stopped": it did what it was given)
        status = tracked.replace(active=tracked.active & (epoch < controls.budget),
                                 best_score=jnp.where(improved, val_score, status.best_score),
                                 best_epoch=jnp.where(improved, epoch, status.best_epoch))
        members = m.replace(params=params, opt_state=opt_state, model_state=model_state, status=status,
                            best_params=best_params, best_model_state=best_model_state)
        return PopulationState(members=members, epoch=epoch), {"train_loss": train_loss, "val_loss": val_loss,
                                                               "val_score": val_score, "evaluated": evaluated}

    state, curves = jax.lax.scan(epoch_body, state, None, length=n_epochs)
    if layout is not None:
        state = state.replace(members=_map_weights(program, state.members, layout.unravel))
    return state, curves


def _train_chunk_on_devices(program: Program, state: PopulationState, hp, controls: Controls, data: DataArrays,
                            order_key, n_epochs: int):
    """_train_chunk with the population split over the program's devices (shard_map: each device
    runs the same chunk on its own members; members share nothing, so nothing is communicated)."""
    mesh = population_mesh(program.devices, state.size)
    if mesh is None:
        return _train_chunk(program, state, hp, controls, data, order_key, n_epochs)
    state_specs = state.specs()
    curve_spec = PartitionSpec(None, AXIS)  # curves are (n_epochs, P)
    chunk = shard_population_map(
        functools.partial(_train_chunk, program, n_epochs=n_epochs), mesh,
        in_specs=(state_specs, member_specs(hp), member_specs(controls), PartitionSpec(), PartitionSpec()),
        out_specs=(state_specs, {k: curve_spec for k in (*CURVES, "evaluated")}))
    return chunk(state, hp, controls, data, order_key)


# State buffers are donated: the old population is dead once the chunk has run (no copy on GPU).
train_chunk = jax.jit(_train_chunk_on_devices, static_argnames=("program", "n_epochs"), donate_argnames="state")
train_chunk.__doc__ = """(program, state, hp, controls, data, order_key, n_epochs) -> (state, curves)

curves: dict of (n_epochs, P) arrays: train_loss, val_loss, val_score (NaN once diverged), and
evaluated (bool): False where a member's block was skipped (nobody in it trained): its validation
is NaN there and stands for its last value."""

# The same program compiled quick (compile_cache.QUICK_TRAINING_COMPILER_OPTIONS), for populations that train for
# a moment (costs.quick_compile): a small first search is mostly compile. The numbers may differ
# from train_chunk's in their last bits (instruction selection), so a search chooses one for good.
train_chunk_quick = jax.jit(_train_chunk_on_devices, static_argnames=("program", "n_epochs"), donate_argnames="state",
                            compiler_options=QUICK_TRAINING_COMPILER_OPTIONS)
train_chunk_quick.__doc__ = train_chunk.__doc__


@functools.partial(jax.jit, static_argnames="program")
def write_hyperparameters(program: Program, state: PopulationState, hp, controls: Controls, where) -> PopulationState:
    """Writes the optimizer settings of hp (P,) into the optimizer state of the members `where`
    (P,) bool; they take effect at the next step, with no recompile."""
    members = state.members
    opt_state = program.optimizer.with_settings(members.opt_state, hp, controls.total_steps, where)
    return state.replace(members=members.replace(opt_state=opt_state))


def useful_compute_fraction(program: Program, hp: Mapping[str, jax.Array], controls: Controls, n_train: int,
                            active: Any = None, computed_rows: float | None = None, member_rows: Any = None,
                            fold_rows: Any = None) -> float:
    """Share of the training matmul FLOPs that members' own networks and rows need, out of what the
    padded program computes (padding members, padded units and layers, padded batch rows and the
    steps a member sits out all count as waste). active: (P,) weights of each member's useful
    work (1s, or the epochs it trained); computed_rows: row-epochs the program computed (default P);
    member_rows: (P,) rows each member trains on per epoch (default n_train: the program's);
    fold_rows: each fold's training rows (DataArrays.fold_rows), whose most steps the program takes."""
    batch = np.asarray(controls.batch_size, float)
    rows = (np.asarray(n_train if member_rows is None else member_rows) // batch) * batch
    useful = program.model.row_flops(hp, len(batch))
    live = np.ones_like(rows) if active is None else np.asarray(active, float)
    computed_rows = len(rows) if computed_rows is None else computed_rows
    computed = computed_rows * program.padded_row_epoch_flops(n_train, fold_rows)
    return float(np.sum(useful * rows * live) / computed) if computed else 1.0

