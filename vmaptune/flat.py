"""Members' weights as one flat vector each while they train.

An epoch's optimizer steps touch every weight leaf several times (the optimizer's update, the
update mask, the finite check, the no-op guard over weights and optimizer moments). Leaf by leaf,
that is a few XLA kernels per leaf per step, and each kernel is compiled (tens of milliseconds on
a CPU) and launched on its own. On one vector per member it is a few kernels in all: the
training program compiles faster and a small network's step has fewer launches. A training
chunk flattens once at its start and restores the pytrees at its end, so its member blocks
(`engine._in_blocks`) also slice a few arrays instead of every leaf. The forward and backward pass still
see the model's own pytree (slices of the vector), so nothing the model or the user sees
changes; outside the chunk, weights and optimizer state keep their pytree form (checkpoints,
trained models, strategies).

Only for the built-in optimizer (its state is known: moments shaped like the weights) and
weights of one dtype; anything else trains leaf by leaf, as before.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class FlatLayout:
    """Where each weight leaf sits in a member's vector. shapes: one member's leaf shapes."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, params: Any, members_axis: bool = True) -> "FlatLayout | None":
        """The layout of `params` (leaves with the member axis first when members_axis), or None
        when they do not share one floating dtype (or there is nothing to flatten)."""
        leaves, treedef = jax.tree.flatten(params)
        if not leaves or len({leaf.dtype for leaf in leaves}) != 1 \
                or not jnp.issubdtype(leaves[0].dtype, jnp.floating):
            return None
        return cls(treedef, tuple(tuple(leaf.shape[1:] if members_axis else leaf.shape) for leaf in leaves))

    @property
    def size(self) -> int:
        return sum(math.prod(s) for s in self.shapes)

    def ravel(self, tree: Any) -> jax.Array:
        """Leaves with the member axis first -> (members, size)."""
        leaves = self.treedef.flatten_up_to(tree)
        return jnp.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)

    def unravel(self, flat: jax.Array) -> Any:
        """(members, size) -> the pytree, member axis first."""
        return self._split(flat, lambda part, shape: part.reshape((flat.shape[0],) + shape))

    def ravel_one(self, tree: Any) -> jax.Array:
        """One member's pytree -> (size,)."""
        return jnp.concatenate([leaf.reshape(-1) for leaf in self.treedef.flatten_up_to(tree)])

    def unravel_one(self, flat: jax.Array) -> Any:
        """(size,) -> one member's pytree."""
        return self._split(flat, lambda part, shape: part.reshape(shape))

    def _split(self, flat: jax.Array, shape_part) -> Any:
        leaves, start = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            leaves.append(shape_part(flat[..., start:start + n], shape))
            start += n
        return self.treedef.unflatten(leaves)
