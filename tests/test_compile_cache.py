"""The persistent compilation cache: on, pruned oldest-first at import, never JAX's per-write cap."""

import os

import jax

from vmaptune import compile_cache


def test_prune_removes_the_oldest_entries_until_the_rest_fit(tmp_path):
    for age, name in enumerate(["newest", "middle", "oldest"]):
        path = tmp_path / name
        path.write_bytes(b"x" * 100)
        os.utime(path, (1_000_000 - age, 1_000_000 - age))
    assert compile_cache.prune(str(tmp_path), max_bytes=250) == 1
    assert sorted(os.listdir(tmp_path)) == ["middle", "newest"]
    assert compile_cache.prune(str(tmp_path), max_bytes=250) == 0  # already fits
    assert compile_cache.prune(str(tmp_path / "missing"), max_bytes=0) == 0  # no directory: nothing to do


def test_the_cache_is_on_without_jaxs_per_write_size_cap():
    # conftest.py points VMAPTUNE_COMPILE_CACHE at this run's directory
    assert jax.config.jax_compilation_cache_dir == os.environ[compile_cache.ENV]
    assert jax.config.jax_persistent_cache_min_compile_time_secs == compile_cache.MIN_COMPILE_SECONDS
    # a cap makes JAX list the whole directory under a file lock at every write
    assert jax.config.jax_compilation_cache_max_size == -1
