"""Shared helpers for tests: a small compiled program on digits, and exact tree comparisons."""

import os

import jax
import jax.numpy as jnp
import numpy as np

import vmaptune as vt
from vmaptune import engine
from vmaptune.population import PopulationRun

SMALL_SPACE = vt.Space(
    learning_rate=vt.LogUniform(1e-2, 5e-2),
    momentum=vt.OneMinusLogUniform(0.5, 0.9),
    dropout=vt.Uniform(0.0, 0.3),
    init_scale=vt.LogUniform(0.5, 2.0),
)
SMALL_MODEL = vt.MLP(hidden=1, units=32)


def small_program(data, space=SMALL_SPACE, batch_size=32, shared_order=True):
    return vt.build_program(SMALL_MODEL, space, data, batch_size=batch_size, shared_order=shared_order)


def host(tree):
    def to_numpy(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(to_numpy, tree)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(host(a)), jax.tree.leaves(host(b))):
        np.testing.assert_array_equal(x, y)


def take(tree, i):
    return jax.tree.map(lambda v: v[i], tree)


def run_population(program, numeric_hp, arrays, ids, *, seed=0, epochs=2, chunk_epochs=1, rows=None, fold=None):
    """A trained PopulationRun of members `ids`."""
    run = PopulationRun(program, numeric_hp, arrays, member_ids=ids, seed=seed, epochs=epochs, rows=rows, fold=fold)
    run.train(epochs, chunk_epochs)
    return run


def train(program, space, data, hp, ids, *, seed=0, epochs=2, rows=None):
    """-> (members: the trained state's per-member fields, curves) for members `ids` with encoded hp."""
    run = run_population(program, space.numeric(hp), engine.data_arrays(data), np.asarray(list(ids)), seed=seed,
                         epochs=epochs, rows=rows)
    return run.state.members, run.curves


# One program (model, space, batch size) for the in-training strategies' tests (test_pbt.py,
# test_halving.py): each new population size costs a compile of several seconds, so all share it.
TRAINING_SPACE = vt.Space(learning_rate=vt.LogUniform(1e-2, 0.3), momentum=vt.OneMinusLogUniform(0.5, 0.95),
                          dropout=vt.Uniform(0.0, 0.3))
TRAINING_MODEL = vt.MLP(hidden=1, units=16)
TRAINING_BATCH = 128


def training_program(data):
    return vt.build_program(TRAINING_MODEL, TRAINING_SPACE, data, batch_size=TRAINING_BATCH)


def drive(strategy, program, data, epochs, seed=0, packing="auto"):
    """What vt.tune does for a strategy that acts during training: ask, begin, train with its
    decisions, end. -> state, run, hp. packing: PopulationRun's layout rule."""
    from vmaptune.training import Population, StrategyDecider, train as train_population

    state = strategy.init(TRAINING_SPACE, jax.random.key(seed))
    hp, state = strategy.ask(state, jax.random.key(seed + 1))
    n = TRAINING_SPACE.check_population(hp)
    run = PopulationRun(program, TRAINING_SPACE.numeric(hp), engine.data_arrays(data), member_ids=np.arange(n),
                        seed=seed, epochs=epochs, rows=strategy.population, packing=packing)
    population = Population([(run, np.arange(n))])
    adapter = StrategyDecider(strategy, state, vt.TrainingContext(epochs, program.structural_names()),
                              jax.random.key(seed + 2))
    population.apply(adapter.begin())
    train_population(population, epochs, deciders=[adapter])
    return adapter.end(population.snapshot())[0], run, hp


def child_environment() -> dict:
    """os.environ for a child process: the suite's compiler flags (conftest.py) without its forced
    device count, so the child sets up its devices as a user's process would."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    return {**os.environ, "XLA_FLAGS": " ".join(flags)}


def ctrl_c_at_chunk(monkeypatch, n: int) -> None:
    """A second Ctrl-C (at once, no chunk's end waited for) as the n-th chunk of this process starts
    training: engine.train_chunk raises KeyboardInterrupt there (and every program is the usual one,
    not a quick compile, so each chunk goes through it)."""
    from vmaptune import costs

    train_chunk, calls = engine.train_chunk, {"n": 0}

    def stop_at_n(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return train_chunk(*args, **kwargs)

    stop_at_n.lower = train_chunk.lower
    monkeypatch.setattr(engine, "train_chunk", stop_at_n)
    monkeypatch.setattr(costs, "QUICK_COMPILE_SAVES", 0.0)
