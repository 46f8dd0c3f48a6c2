"""GridSearch: every point of the product exactly once, in populations of the requested size."""

import collections
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from vmaptune.strategies.grid import GridSearch


def mixed_space():
    return vt.Space(
        learning_rate=vt.LogUniform(1e-4, 1e-1),
        momentum=vt.OneMinusLogUniform(0.9, 0.999),
        width=vt.IntLogUniform(8, 64),
        layers=vt.IntUniform(1, 3),
        dropout=vt.Uniform(0.0, 0.5),
        activation=vt.Choice(["relu", "tanh", "gelu"]),
        optimizer=vt.Fixed("adam"),
        epochs=vt.Fixed(5),
    )


def ask_all(strategy, space):
    """Every population the strategy asks, until done, as lists of plain-value tuples."""
    state = strategy.init(space, jax.random.key(0))
    chunks = []
    while not strategy.done(state):
        hp, state = strategy.ask(state, jax.random.key(len(chunks)))
        rows = space.decode(hp)
        chunks.append([tuple(r[n] for n in space.names) for r in rows])
        state = strategy.tell(state, hp, jnp.zeros(len(rows)))
    return chunks, state


def test_mixed_space_grid_covers_every_point_exactly_once():
    space = mixed_space()
    strategy = GridSearch(values={"activation": ["gelu", "relu"], "layers": [1, 3]}, points_per_axis=3, population=7)
    chunks, state = ask_all(strategy, space)

    # The axes, in plain values: points_per_axis in each scale, the listed values, fixed values.
    axes = {name: [space[name].decode(v) for v in space[name].grid(3)] for name in space.names}
    np.testing.assert_allclose(axes["learning_rate"], [1e-4, 10**-2.5, 1e-1], rtol=1e-5)
    np.testing.assert_allclose(axes["momentum"], [0.9, 0.99, 0.999], rtol=1e-6)
    assert axes["width"] == [8, 23, 64]
    np.testing.assert_allclose(axes["dropout"], [0.0, 0.25, 0.5])
    axes.update(activation=["gelu", "relu"], layers=[1, 3], optimizer=["adam"], epochs=[5])
    expected = set(itertools.product(*(axes[n] for n in space.names)))
    assert len(expected) == 3 * 3 * 3 * 2 * 3 * 2

    points = [p for chunk in chunks for p in chunk]
    duplicates = [p for p, c in collections.Counter(points).items() if c > 1]
    assert duplicates == []
    assert set(points) == expected
    assert strategy.grid_size(space) == len(points) == state.size
    # Full populations, then the remainder; the count was known before the first ask.
    assert [len(c) for c in chunks] == [7] * (324 // 7) + [324 % 7]
    assert state.rounds == len(chunks) == state.round


def test_values_only_grid_is_counted_up_front_and_smaller_last_population():
    space = vt.Space(lr=vt.LogUniform(1e-4, 1.0), act=vt.Choice(["relu", "tanh"]), n=vt.IntUniform(1, 4), seed=0)
    strategy = GridSearch(values={"lr": [1e-3, 1e-2, 0.1], "act": ["tanh", "relu"], "n": [4, 2]}, population=5)
    assert strategy.total_evaluations() == 12  # no space needed
    chunks, _ = ask_all(strategy, space)
    assert [len(c) for c in chunks] == [5, 5, 2]
    points = [p for c in chunks for p in c]
    expected = {
        (lr, act, n, 0)  # the values as given (float32 values decode to them)
        for lr, act, n in itertools.product([1e-3, 1e-2, 0.1], ["tanh", "relu"], [4, 2])
    }
    assert len(points) == len(set(points)) == 12
    assert set(points) == expected


def test_population_larger_than_grid_asks_it_all_at_once():
    space = vt.Space(act=vt.Choice(["a", "b", "c"]), n=vt.IntUniform(0, 1))
    strategy = GridSearch(points_per_axis=4, population=64)
    assert strategy.total_evaluations() is None  # depends on the space
    assert strategy.total_evaluations(space) == 6  # every option, the two integers (deduplicated)
    chunks, state = ask_all(strategy, space)
    assert [len(c) for c in chunks] == [6]
    assert sorted(chunks[0]) == sorted(itertools.product(["a", "b", "c"], [0, 1]))


def test_a_sample_draws_distinct_points_of_the_grid_from_the_key():
    space = vt.Space(lr=vt.LogUniform(1e-4, 1.0), act=vt.Choice(["relu", "tanh"]), n=vt.IntUniform(1, 4))
    values = {"lr": [1e-4, 1e-3, 1e-2, 0.1, 1.0], "act": ["tanh", "relu"], "n": [1, 2, 3, 4]}  # 40 points
    strategy = GridSearch(values=values, population=7, sample=30)
    assert strategy.total_evaluations() == strategy.total_evaluations(space) == 30
    chunks, state = ask_all(strategy, space)
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 2] and state.rounds == 5
    points = [p for c in chunks for p in c]
    grid = {(lr, act, n) for lr, act, n in itertools.product(*values.values())}
    assert len(set(points)) == 30 and set(points) <= grid  # without replacement, on the grid
    again, _ = ask_all(strategy, space)  # ask_all inits with key 0: the same points in the same order
    assert again == chunks
    other = strategy.init(space, jax.random.key(1))
    assert not np.array_equal(other.points, state.points)  # another seed, another sample
    assert len(np.unique(np.asarray(other.points))) == 30
    # a sample of at least the grid is the whole grid, in an order drawn from the key (as scikit-learn's
    # ParameterSampler): a search over several rounds does not take the grid's corners first
    whole = GridSearch(values=values, population=64, sample=40)
    assert whole.total_evaluations() == 40
    in_c_order = ask_all(GridSearch(values=values, population=64), space)[0]
    drawn = ask_all(whole, space)[0]
    assert sorted(drawn[0], key=str) == sorted(in_c_order[0], key=str) and drawn != in_c_order
    keyless = whole.init(space)  # ask / tell without a key: the whole grid, in C order
    assert keyless.points is None and keyless.size == 40
    larger = GridSearch(values=values, population=64, sample=50)  # more than the grid: said, as scikit-learn says it
    with pytest.warns(UserWarning, match=r"GridSearch\(sample=50\): the grid has only 40 points \(\{'lr': 5, "
                                         r"'act': 2, 'n': 4\}\); all of them are searched, once each"):
        assert ask_all(larger, space)[0] == ask_all(whole, space)[0]


def test_ask_is_deterministic_and_encodes_population_arrays():
    space = vt.Space(lr=vt.LogUniform(1e-4, 1.0), act=vt.Choice(["relu", "tanh"]), n=vt.IntUniform(1, 4))
    strategy = GridSearch(values={"act": ["tanh"]}, points_per_axis=2, population=3)
    state = strategy.init(space, jax.random.key(0))
    a, _ = strategy.ask(state, jax.random.key(1))
    b, _ = strategy.ask(state, jax.random.key(2))  # the key does not matter, nor asking twice
    for name in space.names:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["lr"].dtype == jnp.float32 and a["n"].dtype == jnp.int32 and a["act"].dtype == jnp.int32
    assert set(np.asarray(a["act"]).tolist()) == {1}  # the index of "tanh"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"values": {"lr": []}}, ValueError, r"values\['lr'\] is empty. Give at least one value"),
        ({"values": [0.1, 0.2]}, TypeError, r"values must be a dict name -> list of values, got list"),
        ({"values": {"lr": 0.1}}, TypeError, r"values\['lr'\] must be a list of values, got 0.1"),
        ({"values": {"act": "relu"}}, TypeError, r"values\['act'\] must be a list of values, got 'relu'"),
        ({"values": {"lr": [None]}}, TypeError, r"values\['lr'\] contains None"),
        ({"points_per_axis": 0}, ValueError, r"points_per_axis must be an integer >= 1, got 0"),
        ({"points_per_axis": 2.5}, ValueError, r"points_per_axis must be an integer >= 1, got 2.5"),
        ({"points_per_axis": 2, "population": 0}, ValueError, r"population must be an integer >= 1, got 0"),
        ({"sample": 0}, ValueError, r"sample must be an integer >= 1, got 0"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        GridSearch(**kwargs)


SPACE = vt.Space(lr=vt.LogUniform(1e-4, 1e-1), n=vt.IntUniform(1, 4), act=vt.Choice(["relu", "tanh"]), opt="adam")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"values": {"learning_rate": [0.1]}, "points_per_axis": 2},
         r"values has \['learning_rate'\] which is not in the space; the space has \['lr', 'n', 'act', 'opt'\]"),
        ({"values": {"lr": [1e-3, 0.5]}, "points_per_axis": 2},
         r"values\['lr'\] contains 0.5, which is outside \[0.0001, 0.1\].*Fix the value, or widen the space"),
        ({"values": {"n": [2, 2.5]}, "points_per_axis": 2}, r"values\['n'\] contains 2.5, which is not an integer"),
        ({"values": {"n": [0, 1]}, "points_per_axis": 2}, r"values\['n'\] contains 0, which is outside \[1, 4\]"),
        ({"values": {"lr": ["big"]}, "points_per_axis": 2},
         r"values\['lr'\] contains 'big', which is not a finite number"),
        ({"values": {"act": ["relu", "gelu"]}, "points_per_axis": 2},
         r"values\['act'\] contains 'gelu', which is not one of the options \['relu', 'tanh'\]"),
        ({"values": {"opt": ["sgd"]}, "points_per_axis": 2},
         r"values\['opt'\] = \['sgd'\], but the space fixes opt to 'adam'. Drop 'opt' from values"),
        ({"values": {"n": [1, 2, 1]}, "points_per_axis": 2},
         r"values\['n'\] has duplicates \[1\].*List each value once"),
        # Distinct in float64, one value in float32.
        ({"values": {"lr": [0.01, 0.01 + 1e-12]}, "points_per_axis": 2}, r"values\['lr'\] has duplicates \[0.01\] "),
    ],
)
def test_values_are_checked_against_the_space_at_init(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GridSearch(**kwargs).init(SPACE, jax.random.key(0))


def test_too_large_grid_fails_at_init():
    space = vt.Space({f"x{i}": vt.Uniform(0.0, 1.0) for i in range(10)})
    with pytest.raises(ValueError, match=r"the grid has 10000000000 points .* Lower points_per_axis"):
        GridSearch(points_per_axis=10).init(space, jax.random.key(0))


def test_misuse_of_ask_and_tell_fails_clearly():
    strategy = GridSearch(values={"n": [1, 2]}, points_per_axis=1, population=4)
    with pytest.raises(TypeError, match=r"space must be a vt.Space, got dict"):
        strategy.init({"n": vt.IntUniform(1, 4)}, jax.random.key(0))
    space = vt.Space(n=vt.IntUniform(1, 4))
    state = strategy.init(space, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(0))
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\) to match hp, got \(4,\)"):
        strategy.tell(state, hp, jnp.zeros(4))
    state = strategy.tell(state, hp, jnp.zeros(2))
    assert strategy.done(state)
    with pytest.raises(RuntimeError, match=r"all 2 grid points were already asked.*Check strategy.done"):
        strategy.ask(state, jax.random.key(0))


def test_a_grid_with_no_values_or_points_takes_three_points_per_parameter():
    """GridSearch(population=16) alone: low, middle and high of every searched parameter in its own
    scale (every option of a Choice); listed values still win."""
    axes = GridSearch(population=16).axes(SPACE)
    np.testing.assert_allclose(axes["lr"], [1e-4, 10 ** -2.5, 1e-1], rtol=1e-6)
    assert axes["n"].tolist() == [1, 2, 4] and axes["act"].tolist() == [0, 1] and len(axes["opt"]) == 1
    assert GridSearch(population=16).grid_size(SPACE) == 18
    assert GridSearch(values={"lr": [1e-3], "n": [1]}).grid_size(SPACE) == 2  # act: both options


def test_a_state_back_from_a_checkpoint_asks_the_same_points():
    """A checkpoint's restore (a tree map) gives the axes dict back with its names sorted, while
    the shape keeps the space's order: a resumed grid paired digits with the wrong axes, trained
    some points twice and others never (names not in alphabetical order)."""
    from vmaptune.checkpoint import from_host, to_host

    space = vt.Space(momentum=vt.Choice([0.5, 0.9]), learning_rate=vt.Choice([1e-3, 1e-2, 0.1]))
    strategy = GridSearch(population=2)
    state = strategy.init(space, jax.random.key(0))
    asked, restored_asked = [], []
    while not strategy.done(state):
        restored = from_host(to_host(state))
        assert list(restored.axes) == ["learning_rate", "momentum"]  # (what the bug stood on)
        for s, out in ((state, asked), (restored, restored_asked)):
            hp, _ = strategy.ask(s, jax.random.key(0))
            out += [tuple(r[n] for n in space.names) for r in space.decode(hp)]
        state = strategy.tell(state, hp, jnp.zeros(2))
    assert restored_asked == asked
    assert sorted(asked) == sorted(itertools.product([0.5, 0.9], [1e-3, 1e-2, 0.1]))
