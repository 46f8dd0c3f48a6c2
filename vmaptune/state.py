"""The population's training state, typed: what each member carries, and the one shared counter.

Everything under `PopulationState.members` has the member axis first (P rows); `epoch` is the
only shared field. This file is the one place that says so: packing rows, copying members (PBT)
and splitting the population over devices all read it from here.

Controls are the per-member values the engine sets (batch rows, fold, epoch budget, schedule
length); they sit apart from the user's hyperparameters, which only ever hold the space's names.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import PartitionSpec

#: The name of the population axis in meshes and shard_map specs.
AXIS = "population"
MEMBER_SPEC = PartitionSpec(AXIS)  # split over the devices, member by member
SHARED_SPEC = PartitionSpec()  # the same on every device


@struct.dataclass
class Status:
    """Per-member flags and records, each (P,)."""

    active: jax.Array  # bool: trains this step; False = frozen (filler, diverged, stopped, out of budget)
    diverged: jax.Array  # bool: loss, weights or validation turned non-finite
    stopped: jax.Array  # bool: frozen by early stopping
    best_score: jax.Array  # float32: best validation score, -inf until the first finite one
    best_epoch: jax.Array  # int32: 1-based epoch of best_score, 0 if none
    since_best: jax.Array  # int32: epochs since the monitored value last improved (early stopping)
    monitor_best: jax.Array  # float32: best monitored value, higher is better (early stopping)

    @classmethod
    def start(cls, active: jax.Array) -> "Status":
        p = active.shape[0]
        return cls(active=jnp.asarray(active, bool), diverged=jnp.zeros(p, bool), stopped=jnp.zeros(p, bool),
                   best_score=jnp.full(p, -jnp.inf, jnp.float32), best_epoch=jnp.zeros(p, jnp.int32),
                   since_best=jnp.zeros(p, jnp.int32), monitor_best=jnp.full(p, -jnp.inf, jnp.float32))


@struct.dataclass
class Members:
    """What every member carries; every leaf has the member axis first.

    model_state: the model's mutable collections (e.g. BatchNorm's batch_stats), {} when none.
    best_params / best_model_state: the weights of the best monitored epoch (early stopping's
    restore_best_weights), else None. key: the member's own PRNG key, its identity (initial
    weights, dropout, own minibatch order): it stays with the row when a member copies another.
    """

    params: Any
    opt_state: Any
    model_state: Any
    status: Status
    key: jax.Array
    best_params: Any = None
    best_model_state: Any = None


@struct.dataclass
class Controls:
    """Per-member values the engine sets, each (P,) int32.

    batch_size: rows per step. total_steps: the member's whole training in steps (sizes its
    learning-rate schedule). fold: cross-validation fold (0 without folds). budget: epochs the
    member trains at most; it is frozen (an exact no-op) once it has trained them."""

    batch_size: jax.Array
    total_steps: jax.Array
    fold: jax.Array
    budget: jax.Array


@struct.dataclass
class PopulationState:
    """Members (P rows) and the shared count of epochs trained."""

    members: Members
    epoch: jax.Array  # () int32

    @property
    def size(self) -> int:
        return int(self.members.key.shape[0])

    @property
    def status(self) -> Status:
        return self.members.status

    def take(self, rows: jax.Array) -> "PopulationState":
        """State rows `rows`, in that order (packing): every member field moves, keys included."""
        return self.replace(members=take_rows(self.members, rows))

    def copy_from(self, parents: jax.Array) -> "PopulationState":
        """Row i takes the training state of row parents[i] (PBT's exploit): weights, optimizer
        and model state, the best weights and early stopping's count with them, whether it trains,
        and its record (best_score, best_epoch: of the network it now carries, whose curves the
        host copies beside it). Each row keeps its own key: its identity and dropout stream."""
        copied = take_rows(self.members, parents)
        return self.replace(members=copied.replace(key=self.members.key))

    def specs(self) -> "PopulationState":
        """shard_map / sharding specs: members split over AXIS, the epoch counter shared."""
        return PopulationState(members=member_specs(self.members), epoch=SHARED_SPEC)


def take_rows(tree, rows: jax.Array):
    """Rows `rows` of every leaf of a per-member pytree (hp, controls, members)."""
    return jax.tree.map(lambda x: x[rows], tree)


def member_specs(tree):
    """Specs for a per-member pytree: every leaf split over the population axis."""
    return jax.tree.map(lambda _: MEMBER_SPEC, tree)
