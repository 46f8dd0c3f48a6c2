"""Layers whose hyperparameters may be traced values, for models trained as a population.

flax's own layers read some settings in Python (`nn.Dropout` tests `if self.rate == 0.0`), which
fails when the rate is a per-member traced value, as it is when `vt.Linen` / `vt.Nnx` fill a
float field from the space. These layers compute the same thing from arrays:

    x = vt.nn.Dropout(self.dropout)(x, deterministic=not train)          # flax.linen
    self.drop = vt.nn.NnxDropout(dropout, rngs=rngs); self.drop(x)        # flax.nnx

The mask comes from vmaptune's counter hash (vmaptune/fast_random.py): under vmap, jax.random's
threefry cost more than the matmuls on a CPU. Each element is kept with probability 1 - rate
(rate rounded to a multiple of 2^-16) and scaled by 1 / (1 - rate); rate 0 returns the input
exactly, rate 1 returns zeros.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as linen
import jax
import jax.numpy as jnp
from flax import nnx

from vmaptune.fast_random import dropout_keep

__all__ = ["Dropout", "NnxDropout", "dropout"]


def dropout(key: jax.Array, rate, x: jax.Array, broadcast_dims: Sequence[int] = ()) -> jax.Array:
    """Inverted dropout of x with a (possibly traced) rate: kept elements scaled by 1 / (1 - rate)."""
    rate = jnp.asarray(rate, jnp.float32)
    shape = list(x.shape)
    for dim in broadcast_dims:
        shape[dim] = 1
    keep = dropout_keep(key, rate, tuple(shape))
    keep = jnp.broadcast_to(keep, x.shape)
    scale = jnp.where(rate < 1.0, 1.0 / jnp.maximum(1.0 - rate, 1e-12), 0.0).astype(x.dtype)
    return jnp.where(keep, x * scale, jnp.zeros_like(x))


class Dropout(linen.Module):
    """flax.linen.Dropout whose rate may be a traced value (a per-member hyperparameter).

    rate: probability of dropping an element. broadcast_dims: dimensions sharing one mask.
    deterministic: as in nn.Dropout (given here or at call). rng_collection: the rng stream used
    (vt.tune passes each member's dropout key as "dropout")."""

    rate: float | jax.Array
    broadcast_dims: Sequence[int] = ()
    deterministic: bool | None = None
    rng_collection: str = "dropout"

    @linen.compact
    def __call__(self, inputs: jax.Array, deterministic: bool | None = None, rng: jax.Array | None = None):
        deterministic = linen.merge_param("deterministic", self.deterministic, deterministic)
        if deterministic:
            return inputs
        key = self.make_rng(self.rng_collection) if rng is None else rng
        return dropout(key, self.rate, inputs, self.broadcast_dims)


class NnxDropout(nnx.Module):
    """flax.nnx.Dropout whose rate may be a traced value. Use `model.train()` / `model.eval()` (or
    `deterministic=` at construction or call) as with nnx.Dropout; `rngs` supplies the
    "dropout" stream (vt.Nnx gives each member its own key at every step)."""

    def __init__(self, rate, *, broadcast_dims: Sequence[int] = (), deterministic: bool = False,
                 rng_collection: str = "dropout", rngs: nnx.Rngs | None = None):
        self.rate = rate
        self.broadcast_dims = tuple(broadcast_dims)
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        # its own fork of the stream, as nnx.Dropout takes (the shared Rngs fails inside nnx.scan layer
        # stacks); a Rngs without the stream (a model rebuilt for inference, Rngs(params=0)): none
        if isinstance(rngs, nnx.Rngs):
            try:  # (Rngs(0): its default stream, as nnx.Dropout takes it)
                rngs = rngs[rng_collection].fork()
            except KeyError:
                rngs = None
        elif isinstance(rngs, nnx.RngStream):
            rngs = rngs.fork()
        self.rngs = rngs

    def __call__(self, inputs: jax.Array, *, deterministic: bool | None = None,
                 rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None):
        deterministic = self.deterministic if deterministic is None else deterministic
        if deterministic:
            return inputs
        rngs = self.rngs if rngs is None else rngs
        if rngs is None:
            raise ValueError("NnxDropout needs `rngs` (at construction or call) when it is not deterministic.")
        key = rngs[self.rng_collection]() if isinstance(rngs, nnx.Rngs) else \
            rngs() if isinstance(rngs, nnx.RngStream) else rngs  # (a key, as nnx.Dropout takes)
        return dropout(key, self.rate, inputs, self.broadcast_dims)
