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
    """Bool mask of `shape`, each element True with probability 1 - rate (rate rounded up to a
    multiple of 2^-16). Element (..., i, j) depends only on (key, its leading index, j), not on the
    last axis's length: a member's units keep their masks in whatever width a program pads them to
    (padded and bucketed plans then train the same network). One hash gives two 16-bit draws."""
    seeds = jax.random.bits(key, (2,), jnp.uint32)
    *lead, last = shape
    half = (last + 1) // 2
    rows = 1
    for d in lead:
        rows *= d
    # a hash per row and per column pair, added and mixed once per element pair
    row_key = _fmix32(jax.lax.iota(jnp.uint32, rows) * jnp.uint32(0x9E3779B9) + seeds[1]).reshape(*lead, 1)
    column_key = _fmix32(jax.lax.iota(jnp.uint32, half) ^ seeds[0])
    bits = _fmix32(row_key + column_key)
    draws = jnp.stack([bits >> 16, bits & jnp.uint32(0xFFFF)], axis=-1).reshape(*lead, 2 * half)[..., :last]
    return draws.astype(jnp.float32) >= rate * jnp.float32(65536.0)


def hash_normal_matrix(key: jax.Array, shape: tuple[int, int]) -> tuple[jax.Array, jax.Array]:
    """(normal, uniform[-1, 1)) draws of a (rows, cols) matrix where entry (i, j) depends only on
    (key, i, j), not on the matrix shape: a padded weight matrix holds the same values in its live
    block as the small one, so a member starts from the same network whatever program pads it."""
    rows, cols = shape
    seeds = jax.random.bits(key, (4,), jnp.uint32)
    counter = (jax.lax.iota(jnp.uint32, rows)[:, None] * jnp.uint32(1 << 16)
               + jax.lax.iota(jnp.uint32, cols)[None, :])

    def uniform(a, b):
        bits = _fmix32(_fmix32(counter ^ a) + b)
        return ((bits >> 8).astype(jnp.float32) + 0.5) * jnp.float32(2.0**-24)  # in (0, 1)

    u1, u2 = uniform(seeds[0], seeds[1]), uniform(seeds[2], seeds[3])
    normal = jnp.sqrt(-2.0 * jnp.log(u1)) * jnp.cos(2.0 * jnp.pi * u2)  # Box-Muller
    return normal, 2.0 * u2 - 1.0
