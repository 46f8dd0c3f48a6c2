"""The persistent compilation cache: on, pruned oldest-first at import, never JAX's per-write cap."""

import contextlib
import os
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vmaptune import compile_cache, startup
from vmaptune.space import LogUniform, Space


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



@contextlib.contextmanager
def configured_afresh():
    """configure_compile_cache as at an import with no directory set yet; the run's cache set back after."""
    directory = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", directory)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", compile_cache.MIN_COMPILE_SECONDS)


def test_a_cache_directory_that_cannot_be_written_is_read_with_one_warning_and_none_per_compile(monkeypatch):
    from jax._src import compilation_cache as jax_cache

    def program():  # a new function each time: not in memory, its entry in the persistent cache once written
        return jax.jit(lambda x: jnp.cos(x) * 2.125 - 0.375)

    directory = jax.config.jax_compilation_cache_dir
    program()(jnp.ones(9))
    monkeypatch.setattr(compile_cache, "DIRECTORY", None)
    # (as root every directory can be written: the probe is told otherwise)
    monkeypatch.setattr(compile_cache, "write_error", lambda path: PermissionError(13, "Permission denied"))
    writes = []

    def refused(*args, **kwargs):  # what JAX meets in a read-only directory
        writes.append(args)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(jax_cache, "put_executable_and_time", refused)
    with configured_afresh():
        with pytest.warns(RuntimeWarning, match=rf"{re.escape(directory)} cannot be written \(Permission denied\)"
                          r".*still load.*VMAPTUNE_COMPILE_CACHE=0") as caught:
            assert compile_cache.configure_compile_cache() == directory
        assert len(caught) == 1 and compile_cache.DIRECTORY == directory and compile_cache.is_on()
        profile = startup.TimeProfile()
        with warnings.catch_warnings(record=True) as jax_warnings, profile.measure():
            warnings.simplefilter("always")
            program()(jnp.ones(9))  # cached: loads
            jax.jit(lambda x: jnp.cos(x) * 3.625 + 0.125)(jnp.ones(9))  # new: compiled, not written
        assert profile.cache_hits >= 1 and writes == [] and [str(w.message) for w in jax_warnings] == []
    # where vmaptune did not know, JAX tries each write and warns at each
    with pytest.warns(UserWarning, match="Error writing persistent compilation cache entry"):
        jax.jit(lambda x: jnp.cos(x) * 4.875 + 0.625)(jnp.ones(9))
    assert len(writes) == 1


def test_a_cache_directory_that_cannot_be_made_turns_the_cache_off_with_one_warning(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "a_file" / "jax"))
    monkeypatch.setattr(compile_cache, "DIRECTORY", None)
    with configured_afresh():
        with pytest.warns(RuntimeWarning, match=r"a_file/jax cannot be made \(Not a directory\).*cache is off"
                          r".*VMAPTUNE_COMPILE_CACHE to a directory you can write.*=0") as caught:
            assert compile_cache.configure_compile_cache() is None
        assert len(caught) == 1 and not compile_cache.is_on() and compile_cache.DIRECTORY is None

def test_a_quick_program_compiles_quick_from_the_host_and_plainly_inside_another_program():
    @compile_cache.quick_program(static_argnames="n")
    def draw(key, n):
        return jax.random.uniform(key, (n,)) * 2.0

    key = jax.random.key(0)
    host = draw(key, n=3)
    assert draw.quick._cache_size() == 1 and draw.plain._cache_size() == 0
    # traced by a user's jit, vmap or grad: XLA refuses compiler options on a nested program
    inside = jax.jit(lambda k: draw(k, n=3))(key)
    batched = jax.vmap(lambda k: draw(k, n=3))(jax.random.split(key, 2))
    slope = jax.grad(lambda s: draw(key, n=3).sum() * s)(1.0)
    assert draw.quick._cache_size() == 1
    np.testing.assert_allclose(inside, host, rtol=1e-6)
    assert batched.shape == (2, 3) and np.isclose(slope, host.sum(), rtol=1e-6)


def test_a_space_samples_inside_a_users_jitted_function_with_a_key_made_outside_it():
    space = Space(lr=LogUniform(1e-4, 1e-1))
    key = jax.random.key(3)  # concrete, closed over: the sample is still traced inside the jit
    inside = jax.jit(lambda scale: space.sample(key, 4)["lr"] * scale)(jnp.float32(1.0))
    np.testing.assert_allclose(inside, space.sample(key, 4)["lr"], rtol=1e-6)


# -- compile times remembered across processes (vmaptune/costs.py) -------------------------------------
def test_a_later_process_prices_programs_from_this_machines_remembered_compiles(tmp_path, monkeypatch):
    import vmaptune as vt
    from vmaptune import costs

    monkeypatch.setattr(compile_cache, "DIRECTORY", str(tmp_path))  # this test's own file
    for name, empty in (("COMPILE_SECONDS", {}), ("ROW_SECONDS", {}), ("_machine", None)):
        monkeypatch.setattr(costs, name, empty)  # a process that has measured nothing
    monkeypatch.setattr(costs, "QUICK_COMPILE_SAVES", 0.0)  # the usual compile (a quick one is not remembered)
    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1))
    vt.tune(vt.MLP(hidden=1, units=6), space, data, vt.RandomSearch(population=3), epochs=2, batch_size=16,
            progress=False)
    (program, rows, _, quick), first_call = next(iter(costs.COMPILE_SECONDS.items()))
    assert not quick
    file = tmp_path / costs.MACHINE_FILE
    assert file.exists()

    # the next process: nothing measured in it, the file read afresh
    monkeypatch.setattr(costs, "COMPILE_SECONDS", {})
    monkeypatch.setattr(costs, "_machine", None)
    entry = costs.machine_entries()[costs.program_key(program, rows)]
    assert list(entry) in (["compile"], ["load"]) and entry[next(iter(entry))] == round(first_call, 3)
    # the program it compiled before: its load from the cache (a share of its compile until measured)
    expected = entry["load"] if "load" in entry else costs.CACHED_SHARE * entry["compile"]
    assert costs.compile_estimate(program, rows) == expected
    # ... and its full compile when the cache is off
    monkeypatch.setattr(compile_cache, "is_on", lambda: False)
    assert costs.compile_estimate(program, rows) == entry.get("compile", entry.get("load", 0) / costs.CACHED_SHARE)
    # a program it never compiled: this machine's mean compile, not the platform's default
    monkeypatch.setattr(costs, "_machine", {"a": {"compile": 7.0}, "b": {"compile": 9.0}, "c": {"load": 0.5}})
    assert costs.compile_estimate(program.replace(batch_size=32), rows) == 8.0
    monkeypatch.setattr(costs, "_machine", {})
    assert costs.compile_estimate(program.replace(batch_size=32), rows) == costs.DEFAULT_COMPILE_SECONDS["cpu"]


def test_program_keys_leave_out_function_addresses_and_a_broken_file_is_started_afresh(tmp_path, monkeypatch):
    import vmaptune as vt
    from vmaptune import costs

    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1))
    program = vt.build_program(vt.MLP(), space, data, batch_size=16)
    assert " at 0x" in repr(program)  # the metric's and loss's functions
    assert costs.program_key(program, 8) == costs.program_key(program.replace(), 8)
    assert costs.program_key(program, 8) != costs.program_key(program, 16)
    assert costs.program_key(program, 8) != costs.program_key(program.replace(batch_size=32), 8)
    monkeypatch.setattr(compile_cache, "DIRECTORY", str(tmp_path))
    monkeypatch.setattr(costs, "_machine", None)
    (tmp_path / costs.MACHINE_FILE).write_text("{not json")
    assert costs.machine_entries() == {}
    costs.remember(program, 8, 2.5, from_cache=False)
    monkeypatch.setattr(costs, "_machine", None)
    assert costs.machine_entries() == {costs.program_key(program, 8): {"compile": 2.5}}
    # a first call on a busy machine (14 s) does not replace the program's real compile; a faster one does
    costs.remember(program, 8, 14.0, from_cache=False)
    costs.remember(program, 8, 0.9, from_cache=True)
    monkeypatch.setattr(costs, "_machine", None)
    assert costs.machine_entries() == {costs.program_key(program, 8): {"compile": 2.5, "load": 0.9}}
    costs.remember(program, 8, 2.0, from_cache=False)
    assert costs.machine_entries()[costs.program_key(program, 8)]["compile"] == 2.0


def test_this_process_memory_maps_are_counted_against_linuxs_limit():
    maps = compile_cache.memory_maps()
    if maps is None:  # not Linux: nothing to count, and nothing is ever released
        assert not compile_cache.release_if_near_map_limit()
        return
    used, limit = maps
    assert 0 < used < limit
    assert not compile_cache.release_if_near_map_limit()  # this process is far from it


def test_a_search_near_the_map_limit_drops_compiled_programs_first_and_gives_the_same_result(monkeypatch):
    import pytest

    import vmaptune as vt

    if compile_cache.memory_maps() is None:
        pytest.skip("the memory-map limit is Linux's (/proc/self/maps); this system has no such limit")
    data = vt.load_dataset("iris")
    space = Space(learning_rate=LogUniform(1e-3, 1e-1))

    def search():
        return vt.tune(vt.MLP(hidden=1, units=8), space, data, vt.RandomSearch(population=4), epochs=2, seed=5,
                       progress=False).members

    before = search()
    users_program = jax.jit(lambda x: x * 3.0)
    users_program(jnp.ones(2))
    assert users_program._cache_size() == 1
    monkeypatch.setattr(compile_cache, "MAP_LIMIT_SHARE", 0.0)  # any count is "near" the limit now
    with pytest.warns(RuntimeWarning, match=r"vm\.max_map_count.*jax\.clear_caches\(\)"):
        after = search()
    assert users_program._cache_size() == 0  # dropped before the search compiled its own
    np.testing.assert_array_equal(after["score"].to_numpy(), before["score"].to_numpy())
