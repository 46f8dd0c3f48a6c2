"""The invariants that make a vmapped tuner trustworthy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from helpers import SMALL_SPACE, assert_trees_equal, host, small_program, take, train
from vmaptune import engine


# XLA's own defaults, stated per program: the suite's XLA_FLAGS (conftest.py) are the quick ones
XLA_DEFAULTS = {"xla_backend_optimization_level": 3, "xla_cpu_use_fusion_emitters": True}


@pytest.fixture(scope="module")
def program(digits):
    return small_program(digits)


@pytest.fixture(scope="module")
def hp():
    return SMALL_SPACE.sample(jax.random.key(11), 4)


def test_population_equals_separate_runs(program, digits, hp):
    together, curves = train(program, SMALL_SPACE, digits, hp, [0, 1, 2, 3])
    for i in range(4):
        alone, alone_curves = train(program, SMALL_SPACE, digits, take_hp(hp, i), [i])
        for a, b in zip(jax.tree.leaves(take(together.params, i)), jax.tree.leaves(take(alone.params, 0))):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(curves["val_loss"][i], alone_curves["val_loss"][0], rtol=1e-4)
        np.testing.assert_allclose(curves["val_score"][i], alone_curves["val_score"][0], atol=1e-6)
    assert not np.any(np.asarray(together.status.diverged))
    assert curves["val_score"].shape == (4, 2) and np.all(curves["val_score"][:, -1] > 0.5)


def take_hp(hp, i):
    return {k: v[i:i + 1] for k, v in hp.items()}


def test_diverging_member_is_frozen_and_changes_no_other(program, digits, hp):
    stable, stable_curves = train(program, SMALL_SPACE, digits, hp, [0, 1, 2, 3])
    blown_hp = dict(hp, learning_rate=hp["learning_rate"].at[3].set(1e6))
    blown, blown_curves = train(program, SMALL_SPACE, digits, blown_hp, [0, 1, 2, 3])
    diverged = np.asarray(blown.status.diverged)
    assert diverged.tolist() == [False, False, False, True]
    assert not np.asarray(blown.status.active)[3]
    for i in range(3):  # the others are bit-identical to the run without the diverging member
        assert_trees_equal(take(blown.params, i), take(stable.params, i))
        np.testing.assert_array_equal(blown_curves["val_score"][i], stable_curves["val_score"][i])
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(host(take(blown.params, 3))))
    assert np.isnan(blown_curves["val_score"][3, -1])


def test_frozen_members_are_exact_no_ops(program, digits, hp):
    numeric = SMALL_SPACE.numeric(hp)
    data = engine.data_arrays(digits)
    controls = program.controls(numeric, data.n_train, 2)
    state = engine.init_population(program, numeric, controls, jnp.arange(4), jax.random.key(0),
                                   jnp.array([True, True, False, True]))
    before = host(state.members)
    after, _ = engine.train_chunk(program, state, numeric, controls, data, jax.random.key(1), 2)
    after = after.members
    assert_trees_equal(take(after.params, 2), take(before.params, 2))
    # the whole optimizer state, step counts included, is unchanged
    assert_trees_equal(take(after.opt_state, 2), take(before.opt_state, 2))
    assert int(take(after.opt_state, 0).inner_state.count) == 2 * program.steps_per_epoch(data.n_train)
    assert not np.allclose(np.asarray(jax.tree.leaves(take(after.params, 0))[0]),
                           jax.tree.leaves(take(before.params, 0))[0])


def test_same_seed_same_result_new_seed_new_result(program, digits, hp):
    a, ca = train(program, SMALL_SPACE, digits, hp, [0, 1, 2, 3], seed=5)
    b, cb = train(program, SMALL_SPACE, digits, hp, [0, 1, 2, 3], seed=5)
    c, cc = train(program, SMALL_SPACE, digits, hp, [0, 1, 2, 3], seed=6)
    assert_trees_equal(a.params, b.params)
    np.testing.assert_array_equal(ca["val_loss"], cb["val_loss"])
    assert not np.allclose(ca["val_loss"], cc["val_loss"])


def test_member_identity_not_position_sets_its_randomness(program, digits, hp):
    """Member 7 trains the same in any population: keys come from member ids."""
    hp2 = {k: jnp.stack([v[1], v[0]]) for k, v in hp.items()}
    first, _ = train(program, SMALL_SPACE, digits, {k: v[:2] for k, v in hp.items()}, [7, 8])
    swapped, _ = train(program, SMALL_SPACE, digits, hp2, [8, 7])
    for a, b in zip(jax.tree.leaves(take(first.params, 0)), jax.tree.leaves(take(swapped.params, 1))):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def test_independent_minibatch_order(digits, hp):
    program = small_program(digits, shared_order=False)
    shared = small_program(digits)
    a, ca = train(program, SMALL_SPACE, digits, hp, [0, 1, 2, 3])
    b, cb = train(shared, SMALL_SPACE, digits, hp, [0, 1, 2, 3])
    assert np.all(ca["val_score"][:, -1] > 0.5)
    assert not np.allclose(ca["val_loss"], cb["val_loss"])


def test_a_second_call_with_new_values_does_not_recompile(digits):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), momentum=vt.OneMinusLogUniform(0.5, 0.99))
    model = vt.MLP(hidden=1, units=16)
    kwargs = dict(epochs=2, batch_size=64, progress=False)
    vt.tune(model, space, digits, vt.RandomSearch(population=6, rounds=2), seed=0, **kwargs)
    counts = dict(engine.TRACE_COUNTS)
    result = vt.tune(model, space, digits, vt.RandomSearch(population=6, rounds=2), seed=1, **kwargs)
    assert dict(engine.TRACE_COUNTS) == counts
    assert len(result) == 12


def test_population_equals_separate_runs_with_bfloat16_matmuls(digits, hp):
    program = vt.build_program(vt.MLP(hidden=1, units=32, matmul_dtype="bfloat16"), SMALL_SPACE, digits,
                               batch_size=32)
    hp = {k: v[:2] for k, v in hp.items()}
    together, curves = train(program, SMALL_SPACE, digits, hp, [0, 1], epochs=1)
    for i in range(2):
        alone, alone_curves = train(program, SMALL_SPACE, digits, take_hp(hp, i), [i], epochs=1)
        for a, b in zip(jax.tree.leaves(take(together.params, i)), jax.tree.leaves(take(alone.params, 0))):
            assert a.dtype == jnp.float32
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(curves["val_loss"][i], alone_curves["val_loss"][0], rtol=1e-4)


def test_flat_weight_steps_equal_leaf_by_leaf_steps(digits, monkeypatch):
    """A training chunk carrying one vector of weights per member (vmaptune/flat.py) changes nothing
    a member computes (up to rounding): the weights, moments and curves of training leaf by leaf,
    for a population mixing optimizer kinds (mu and nu both kept) and widths (update masks), with
    a diverging member."""
    from vmaptune.flat import FlatLayout

    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-2), optimizer=vt.Choice(["momentum", "adam", "rmsprop"]),
                     n_units=vt.IntUniform(4, 16), weight_decay=vt.LogUniform(1e-5, 1e-3))
    hp = space.sample(jax.random.key(3), 6)
    hp = dict(hp, learning_rate=hp["learning_rate"].at[5].set(np.inf))  # diverges at its first step
    program = vt.build_program(vt.MLP(hidden=1, units=16), space, digits, batch_size=48)
    flat, flat_curves = train(program, space, digits, hp, range(6), epochs=2)
    assert engine.flat_layout(program, flat.params) is not None
    monkeypatch.setattr(engine, "flat_layout", lambda program, params: None)
    tree_program = program.replace(member_block=program.member_block + 1)  # a new trace, leaf by leaf
    by_leaf, leaf_curves = train(tree_program, space, digits, hp, range(6), epochs=2)
    assert np.asarray(flat.status.diverged).tolist() == [False] * 5 + [True]
    for a, b in zip(jax.tree.leaves(host((flat.params, flat.opt_state))),
                    jax.tree.leaves(host((by_leaf.params, by_leaf.opt_state)))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # XLA fuses differently: rounding only
    for name in ("train_loss", "val_loss", "val_score"):
        np.testing.assert_allclose(flat_curves[name], leaf_curves[name], rtol=1e-5)
    # the layout itself: a round trip, and None for weights of mixed dtypes
    tree = {"a": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones((2, 2, 2))}
    layout = FlatLayout.of(tree)
    assert layout.size == 7 and layout.ravel(tree).shape == (2, 7)
    assert_trees_equal(layout.unravel(layout.ravel(tree)), tree)
    assert_trees_equal(layout.unravel_one(layout.ravel_one(take(tree, 1))), take(tree, 1))
    assert FlatLayout.of({"a": jnp.ones((2, 3)), "b": jnp.ones((2, 3), jnp.bfloat16)}) is None


def test_the_initialisation_compiled_without_llvm_optimisations_gives_the_same_members(program, digits, hp):
    """init_population is compiled at XLA's backend optimisation level 0 (it runs once; its compile
    is what a first search pays): the members it starts are bit for bit the optimised program's."""
    numeric = SMALL_SPACE.numeric(hp)
    controls = program.controls(numeric, digits.n_train, 2)
    args = (program, numeric, controls, jnp.arange(4), jax.random.key(5), jnp.ones(4, bool))
    assert engine.INIT_COMPILER_OPTIONS == {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
    optimised = jax.jit(engine._init, static_argnames="program", compiler_options=XLA_DEFAULTS)
    assert_trees_equal(engine.init_population(*args).members, optimised(*args).members)


def test_the_quick_training_program_trains_the_same_members_up_to_rounding(program, digits, hp, monkeypatch):
    """engine.train_chunk_quick (compiled quick, for populations that train for a moment) computes what train_chunk computes, up to rounding. costs.quick_compile takes it
    for a moment's training only, priced at default rates (the same choice in every process), and
    only on a CPU."""
    from vmaptune import costs

    numeric = SMALL_SPACE.numeric(hp)
    data = engine.data_arrays(digits)
    controls = program.controls(numeric, data.n_train, 2)

    def start():
        return engine.init_population(program, numeric, controls, jnp.arange(4), jax.random.key(0), jnp.ones(4, bool))

    usual_program = jax.jit(engine._train_chunk_on_devices, static_argnames=("program", "n_epochs"),
                            compiler_options=XLA_DEFAULTS)  # not the suite's quick flags (conftest.py)
    usual, usual_curves = usual_program(program, start(), numeric, controls, data, jax.random.key(1), 2)
    quick, quick_curves = engine.train_chunk_quick(program, start(), numeric, controls, data, jax.random.key(1), 2)
    for a, b in zip(jax.tree.leaves(host((usual.members.params, usual.members.opt_state))),
                    jax.tree.leaves(host((quick.members.params, quick.members.opt_state)))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for name in ("train_loss", "val_loss", "val_score"):
        np.testing.assert_allclose(usual_curves[name], quick_curves[name], rtol=1e-5)
    assert costs.quick_compile(program, data.n_train, 8 * 2)  # a tiny search: mostly compile
    assert not costs.quick_compile(program, data.n_train, 64 * 100)  # a real one: training decides
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not costs.quick_compile(program, data.n_train, 8 * 2)
