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


def test_matrix_normals_have_unit_moments_and_do_not_depend_on_the_shape():
    from vmaptune.fast_random import hash_normal_matrix

    big, uniform = hash_normal_matrix(jax.random.key(4), (300, 400))
    big = np.asarray(big)
    assert abs(big.mean()) < 0.01 and abs(big.std() - 1) < 0.01
    assert abs(np.mean(np.abs(big) < 1.96) - 0.95) < 0.005
    assert np.asarray(uniform).min() >= -1 and np.asarray(uniform).max() <= 1
    small, _ = hash_normal_matrix(jax.random.key(4), (20, 30))
    np.testing.assert_array_equal(np.asarray(small), big[:20, :30])


def test_dropout_masks_are_independent_and_do_not_depend_on_the_padded_width():
    """A member's units keep their masks whatever width a program pads them to (padded and
    bucketed plans train the same network); neighbouring rows and columns are uncorrelated."""
    rate = jnp.float32(0.5)
    wide = np.asarray(dropout_keep(jax.random.key(5), rate, (64, 3, 257))).astype(np.float32)
    narrow = np.asarray(dropout_keep(jax.random.key(5), rate, (64, 3, 8)))
    np.testing.assert_array_equal(narrow, wide[..., :8].astype(bool))
    flat = wide.reshape(-1, 257)
    assert abs(flat.mean() - 0.5) < 0.005
    for a, b in [(flat[:, :-1], flat[:, 1:]), (flat[:, :-2], flat[:, 2:]), (flat[:-1], flat[1:])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02
    other = np.asarray(dropout_keep(jax.random.key(6), rate, (64, 3, 257))).astype(np.float32)
    assert abs(np.corrcoef(wide.ravel(), other.ravel())[0, 1]) < 0.02
