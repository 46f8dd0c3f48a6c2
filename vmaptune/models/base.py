"""The model protocol: what the engine needs from a model, with the defaults most models want.

Two objects, as in flax (a module definition, then its variables):

- A `Model` is what users pass to `vt.tune` (`vt.MLP()`; a user's own network in the same way).
  It checks the space against what it can build, says which of its hyperparameters are
  structural (fixed when the network is built: PBT never changes them during training), how
  members group into separately compiled programs, and builds one `BuiltModel` per group.
- A `BuiltModel` is static and hashable (part of the compiled program's cache key) and computes
  ONE member: the engine vmaps it. hp is that member's dict name -> scalar (numeric choices as
  their values, categorical ones as indices into the space's options).

The engine calls only the methods declared here; nothing is probed with hasattr.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping, Sequence

import jax
import numpy as np

from vmaptune.data import DataSpec
from vmaptune.space import Space

Group = Hashable  # a key naming one group of members that share a compiled program


class BuiltModel:
    """One member's network, static. Subclasses are frozen dataclasses (hashable)."""

    def hyperparameters(self) -> frozenset[str]:
        """Names this model reads from hp (the driver rejects unknown names before compiling)."""
        raise NotImplementedError

    def structural_names(self) -> frozenset[str]:
        """Names fixed when the network is built or initialised (never changed during training)."""
        return frozenset()

    def init(self, key: jax.Array, hp: Mapping[str, jax.Array]) -> tuple[Any, Any]:
        """-> (params, model_state): trainable weights, and mutable collections such as BatchNorm's
        batch_stats ({} when the model has none)."""
        raise NotImplementedError

    def apply(self, params: Any, model_state: Any, x: jax.Array, hp: Mapping[str, jax.Array], *, train: bool,
              key: jax.Array | None) -> tuple[jax.Array, Any]:
        """x: (batch, ...) -> (outputs (batch, n_outputs), new model_state). key: the member's
        dropout key for this step (None when not training)."""
        raise NotImplementedError

    def flax_module(self, params: Any, model_state: Any, hp: Mapping[str, Any]) -> Any:
        """The trained network as flax objects, for use outside vmaptune (TrainedModel.flax_module):
        for vt.Nnx the nnx.Module holding the variables, for vt.Linen (module, variables)."""
        raise TypeError(f"flax_module() gives back a module of your own (vt.Linen / vt.Nnx); this model is "
                        f"{type(self).__name__}: use model.outputs(X) for its outputs, model.variables "
                        f"for its weights.")

    def update_mask(self, hp: Mapping[str, jax.Array]) -> Any:
        """Pytree of bool like params, False where a weight must never change; None when every
        weight trains (then no masking is compiled)."""
        return None

    #: True when a member's initial weights do not depend on the padded shape it is built in
    #: (entry (i, j) of a weight depends on the member's key and (i, j) only), so the widest
    #: program's initialisation, cut to a narrower program's shapes, is that program's own
    #: (vmaptune/initialise.py: one initialisation program for all of a round's groups).
    shape_independent_init: bool = False

    def row_flops(self, hp: Mapping[str, np.ndarray], size: int) -> np.ndarray:
        """(size,) forward matmul FLOPs per input row each member's own network needs (waste
        accounting, on the host; hp: (size,) arrays); by default the padded cost, so a model
        without padding reports no waste."""
        return np.full(size, self.padded_row_flops())

    def padded_row_flops(self) -> float:
        """Forward matmul FLOPs per input row the compiled program computes for every member (what
        bucketing="auto" and the waste figure price a padded row at; vt.MLP counts its layers, vt.Linen
        and vt.Nnx ask XLA). 1.0 here, for a model that does not know its own: its padding looks free."""
        return 1.0


class Model:
    """A recipe for the per-member network (what `vt.tune` takes as `model`).

    loss, metric: the model's own training loss and validation metric (None: the task's
    defaults; vt.tune's metric= wins over the model's)."""

    loss: Any = None
    metric: Any = None

    def build(self, space: Space, data: DataSpec, group: Group = None) -> BuiltModel:
        """The static network for members of `group` (None: every member), after checking the
        space's names and ranges against what this model can build."""
        raise NotImplementedError

    def groups(self, space: Space, data: DataSpec, numeric_hp: Mapping[str, Any], *,
               bucketing: bool = False) -> list[tuple[Group, np.ndarray]]:
        """[(group, member indices)]: members that train in one compiled program each.
        numeric_hp: dict name -> (P,). Default: one group of every member."""
        size = len(next(iter(numeric_hp.values()))) if numeric_hp else 0
        return [(None, np.arange(size))]

    def merge_groups(self, groups: Sequence[Group]) -> tuple[bool, Group]:
        """(True, group) when one program of `group` can train the members of all `groups`
        (neighbours in `groups(bucketing=True)`'s order), else (False, None). bucketing="auto"
        prices such merges (fewer programs, more padding). Default: only equal groups merge."""
        return (True, groups[0]) if all(g == groups[0] for g in groups) else (False, None)
