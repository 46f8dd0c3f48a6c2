import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.fast_random import dropout_keep, hash_uniform


def test_uniform_range_mean_and_keep_rate():
    u = np.asarray(hash_uniform(jax.random.key(0), (256, 512)))
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    keep = np.asarray(dropout_keep(jax.random.key(1), jnp.float32(0.3), (256, 512)))
    assert abs(keep.mean() - 0.7) < 0.01


def test_neighbours_and_keys_are_uncorrelated():
    u = np.asarray(hash_uniform(jax.random.key(2), (200000,)))
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01
    v = np.asarray(hash_uniform(jax.random.key(3), (200000,)))
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01
    np.testing.assert_array_equal(u, np.asarray(hash_uniform(jax.random.key(2), (200000,))))
