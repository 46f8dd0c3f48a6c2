"""Shared helpers for tests: a small compiled program on digits, and exact tree comparisons."""

import jax
import jax.numpy as jnp
import numpy as np

import vmaptune as vt
from vmaptune import engine
from vmaptune.tune import _prepare

SMALL_SPACE = vt.Space(
    learning_rate=vt.LogUniform(1e-2, 5e-2),
    momentum=vt.OneMinusLogUniform(0.5, 0.9),
    dropout=vt.Uniform(0.0, 0.3),
    init_scale=vt.LogUniform(0.5, 2.0),
)
SMALL_MODEL = vt.MLP(hidden=1, units=32)


def small_program(data, space=SMALL_SPACE, batch_size=32, shared_order=True):
    program, _ = _prepare(SMALL_MODEL, space, data, vt.RandomSearch(population=4), epochs=2, seed=0,
                          metric=None, batch_size=batch_size, chunk_epochs=1, shared_order=shared_order)
    return program


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


def train(program, space, data, hp, ids, *, seed=0, epochs=2, active=None):
    return engine.run_population(program, space.numeric(hp), engine.data_arrays(data),
                                 member_ids=jnp.asarray(ids), seed=seed, epochs=epochs, active=active)


# One program (model, space, batch size) for the in-training strategies' tests (test_pbt.py,
# test_halving.py): each new population size costs a compile of several seconds, so all share it.
TRAINING_SPACE = vt.Space(learning_rate=vt.LogUniform(1e-2, 0.3), momentum=vt.OneMinusLogUniform(0.5, 0.95),
                          dropout=vt.Uniform(0.0, 0.3))
TRAINING_MODEL = vt.MLP(hidden=1, units=16)
TRAINING_BATCH = 128


def training_program(data):
    program, _ = _prepare(TRAINING_MODEL, TRAINING_SPACE, data, vt.RandomSearch(population=4), epochs=1, seed=0,
                          metric=None, batch_size=TRAINING_BATCH, chunk_epochs=1, shared_order=True)
    return program


def drive(strategy, program, data, epochs, seed=0):
    """What vt.tune does for a strategy with train_population: ask, pad, train. -> state, run, hp."""
    from vmaptune.tune import _pad

    state = strategy.init(TRAINING_SPACE, jax.random.key(seed))
    hp, state = strategy.ask(state, jax.random.key(seed + 1))
    n = TRAINING_SPACE.check_population(hp)
    padded, active = _pad(hp, n, strategy.population, strategy.name)
    run = engine.PopulationRun(program, TRAINING_SPACE.numeric(padded), engine.data_arrays(data),
                               member_ids=jnp.arange(strategy.population), seed=seed, epochs=epochs, active=active)
    state = strategy.train_population(state, run, epochs=epochs, chunk_epochs=1, on_chunk=None,
                                      key=jax.random.key(seed + 2))
    return state, run, hp
