"""Compiling a round's other programs in the background while its first one trains (vmaptune/ahead.py)."""

import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from vmaptune import ahead, engine, startup


def test_compiling_ahead_is_off_unless_asked_and_a_bad_setting_is_named(monkeypatch):
    monkeypatch.delenv(ahead.ENV, raising=False)
    assert ahead.workers() == 0
    monkeypatch.setenv(ahead.ENV, "3")
    assert ahead.workers() == 3
    monkeypatch.setenv(ahead.ENV, "0")
    assert ahead.workers() == 0 and not ahead.start("off", lambda: None) and ahead.wait("off") is None
    monkeypatch.setenv(ahead.ENV, "many")
    with pytest.raises(ValueError, match=r"VMAPTUNE_COMPILE_AHEAD='many'.*whole number"):
        ahead.workers()


def test_a_background_compile_that_fails_leaves_the_error_to_the_call_that_needs_it(monkeypatch):
    monkeypatch.setenv(ahead.ENV, "1")

    def broken():
        raise RuntimeError("cannot lower")

    assert ahead.start("broken", broken) and ahead.wait("broken") is None
    assert ahead.start("fine", lambda: jax.jit(lambda x: x * 3.5 - 1).lower(jnp.ones(7)))
    assert ahead.start("fine", lambda: 1 / 0)  # compiling already: not started twice
    fine = ahead.wait("fine")
    assert fine is not None and fine > 0 and ahead.wait("fine") is None  # one waiter gets it


def space(widths=(5, 11, 23)):
    return vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), n_units=vt.Choice(list(widths)),
                    n_hidden=vt.IntUniform(1, 2))


@pytest.mark.parametrize("quick", [True, False])
def test_a_search_whose_groups_compile_ahead_compiles_each_once_and_trains_the_same(digits, monkeypatch, quick):
    from vmaptune import costs

    # widths of their own, width groups (powers of two up to the widest) of their own: programs no
    # other test compiled (the quick and the usual program share their traces where shapes match)
    widths = space((5, 11, 23) if quick else (33, 65, 129))
    monkeypatch.setattr(costs, "quick_compile", lambda *a: quick)
    remembered = []
    monkeypatch.setattr(costs, "remember", lambda *a, **k: remembered.append(a[1]))
    kwargs = dict(epochs=2, batch_size=64, bucketing=True, progress=False, seed=11)
    monkeypatch.setenv(ahead.ENV, "2")
    before = engine.TRACE_COUNTS["train_chunk"]
    main_thread = startup.TimeProfile()
    with main_thread.measure(this_thread=True):
        early = vt.tune(vt.MLP(), widths, digits, vt.RandomSearch(population=12), **kwargs)
    programs = early.settings["programs"][0]
    assert programs >= 3
    # each group's program traced once: the first part's in the call, the others' in the
    # background, where the call that needed them found them compiled (a call that compiled
    # again, its lowering not matched, would have turned compiling ahead off)
    assert engine.TRACE_COUNTS["train_chunk"] - before == programs
    assert early.settings["time"]["background_seconds"] > 0 and ahead.workers() == 2 and not ahead._pending
    # the main thread compiled too (the first group's program, the initialisation)
    assert 0 < main_thread.cache_hits + main_thread.cache_misses
    # with compiling ahead on no compile time is remembered for later processes (each may have been
    # slowed by compiles beside it)
    assert remembered == []
    monkeypatch.setenv(ahead.ENV, "0")
    serial = vt.tune(vt.MLP(), widths, digits, vt.RandomSearch(population=12), **kwargs)
    np.testing.assert_array_equal(early.curves["val_loss"], serial.curves["val_loss"])
    np.testing.assert_array_equal(early.members["score"], serial.members["score"])


def test_a_call_that_must_compile_again_turns_compiling_ahead_off_with_a_warning(digits, monkeypatch):
    monkeypatch.setenv(ahead.ENV, "2")
    monkeypatch.setattr(ahead, "_turned_off", False)
    kwargs = dict(epochs=1, batch_size=64, bucketing=True, progress=False, seed=5)
    # a setting of the calling thread only: the background lowers without it, the call compiles again
    with jax.default_matmul_precision("highest"), pytest.warns(RuntimeWarning, match="compiling ahead is off"):
        result = vt.tune(vt.MLP(), space((20, 36)), digits, vt.RandomSearch(population=12), **kwargs)
    assert ahead.workers() == 0 and np.isfinite(result.members["score"]).all()



def test_the_main_threads_wait_for_a_background_compile_is_counted_as_compile_time_not_training(digits, monkeypatch):
    from vmaptune import costs

    monkeypatch.setenv(ahead.ENV, "2")
    monkeypatch.setattr(costs, "COMPILE_SECONDS", {})  # every program new to this process: each is compiled ahead
    start, wait, waited, gate = ahead.start, ahead.wait, [], threading.Event()

    def slow_start(key, lower):  # a background compile that ends only after the main thread waits for it
        return start(key, lambda: gate.wait(60) and lower())

    def timed_wait(key):
        if key in ahead._pending:  # (released half a second into the wait for it, however loaded the machine)
            threading.Timer(0.5, gate.set).start()
        began = time.perf_counter()
        try:
            return wait(key)
        finally:
            waited.append(time.perf_counter() - began)

    monkeypatch.setattr(ahead, "start", slow_start)
    monkeypatch.setattr(ahead, "wait", timed_wait)
    monkeypatch.setattr(ahead, "_pending", {})  # (a compile an earlier test started and left is not this one's)
    result = vt.tune(vt.MLP(), space((20, 36)), digits, vt.RandomSearch(population=12), epochs=1, batch_size=64,
                     bucketing=True, progress=False, seed=5)
    seconds = result.settings["time"]
    assert result.settings["programs"][0] >= 2 and sum(waited) > 0.2
    assert seconds.get("compile_wait_seconds", 0.0) == pytest.approx(sum(waited), abs=0.01)
    phases = sum(seconds[name] for name in ("trace_seconds", "lower_seconds", "compile_seconds", "other_seconds"))
    assert phases + seconds["compile_wait_seconds"] == pytest.approx(seconds["total_seconds"], abs=0.01)
    assert f"waiting {seconds['compile_wait_seconds']:.1f} s for compiles" in startup.describe(seconds)


def test_compiles_no_call_will_wait_for_are_dropped(monkeypatch):
    monkeypatch.setenv(ahead.ENV, "1")
    release = threading.Event()
    assert ahead.start("busy", lambda: release.wait(10) and None)  # holds the one thread
    assert ahead.start("queued", lambda: 1 / 0)
    ahead.cancel(["busy", "queued"])
    release.set()
    assert not ahead._pending and ahead.wait("queued") is None


def test_a_time_profile_counts_other_threads_compiles_apart(monkeypatch):
    mine, only_mine = startup.TimeProfile(), startup.TimeProfile()

    def compile_elsewhere():
        jax.jit(lambda x: jnp.tanh(x) * 2.25 + 0.5).lower(jnp.ones(13)).compile()

    with mine.measure(), only_mine.measure(this_thread=True):
        worker = threading.Thread(target=compile_elsewhere)
        worker.start()
        worker.join()
    assert mine.background_seconds > 0 and mine.compile_seconds == mine.trace_seconds == 0
    assert only_mine.background_seconds == only_mine.compile_seconds == only_mine.trace_seconds == 0
    assert "in the background" in startup.describe(mine.as_dict())


def test_a_plan_prices_later_compiles_beside_the_training_before_them():
    from vmaptune.costs import _first_round

    compiles, trains = [1.6, 1.6, 1.6], [0.1, 0.1, 0.1]
    assert _first_round(compiles, trains, 0) == pytest.approx(4.8 + 0.3)  # in series
    # two threads: parts 2 and 3 are compiled when part 1 is (1.6 s), then the three train in turn
    assert _first_round(compiles, trains, 2) == pytest.approx(1.6 + 0.3)
    # one thread: part 3's program is ready at 3.2 s, after parts 1 and 2 have trained (1.8 s)
    assert _first_round(compiles, trains, 1) == pytest.approx(3.2 + 0.1)
    # training longer than the compiles: they cost nothing after the first
    assert _first_round(compiles, [5.0, 5.0, 5.0], 1) == pytest.approx(1.6 + 15.0)
    assert _first_round([2.0], [1.0], 4) == pytest.approx(3.0)  # one part: nothing to overlap
