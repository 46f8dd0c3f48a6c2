"""Cheap random numbers for dropout masks.

jax.random's threefry costs ~20 integer operations per 32-bit draw, and dropout draws one per
activation per member per step: at P = 256 on a CPU that took more time than the matmuls. Here a
member's key is turned into two 32-bit seeds once (one threefry call), and each element's draw is
a counter-based hash of its index: two rounds of the murmur3 finaliser, ~12 integer operations,
fused by XLA into the dropout itself. Plenty for Bernoulli masks (tests/test_fast_random.py
checks rates, independence across elements and keys); not for anything cryptographic.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _fmix32(x: jax.Array) -> jax.Array:
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def hash_uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform [0, 1) float32 of `shape`, a deterministic function of `key` (24-bit resolution)."""
    seeds = jax.random.bits(key, (2,), jnp.uint32)
    size = 1
    for d in shape:
        size *= d
    counter = jax.lax.iota(jnp.uint32, size).reshape(shape)
    bits = _fmix32(_fmix32(counter ^ seeds[0]) + seeds[1])
    return (bits >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


def dropout_keep(key: jax.Array, rate: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Bool mask of `shape`, each element True with probability 1 - rate."""
    return hash_uniform(key, shape) >= rate
