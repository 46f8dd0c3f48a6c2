"""CoarseToFine: ranges shrink around the top-k in each parameter's scale, within the original bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from objectives import bowl, median_best, mixed_space, run
from vmaptune.strategies.coarse_to_fine import CoarseToFine, sample_in_range

SEEDS = range(9)


def test_beats_random_search_at_equal_evaluations():
    space = mixed_space()
    ctf, _ = median_best(CoarseToFine(population=32, rounds=5), space, bowl, SEEDS)
    rnd, _ = median_best(vt.RandomSearch(population=32, rounds=5), space, bowl, SEEDS)
    assert ctf > rnd, (ctf, rnd)


SPACE = vt.Space(
    x=vt.Uniform(0.0, 10.0),
    lr=vt.LogUniform(1e-4, 1.0),
    beta=vt.OneMinusLogUniform(0.9, 0.999),
    act=vt.Choice(["a", "b", "c", "d", "e"]),
    seed=7,
)


def told(scores, **columns):
    strategy = CoarseToFine(population=len(scores), rounds=3, top_k=2, margin=0.1)
    state = strategy.init(SPACE, jax.random.key(0))
    hp = SPACE.encode([dict(zip(columns, row), seed=7) for row in zip(*columns.values())])
    return strategy, strategy.tell(state, hp, jnp.asarray(scores, jnp.float32)), hp


def test_range_shrinks_around_top_k_in_each_scale_and_skips_failed_members():
    # Failed members sit at the far ends of every range: if one were a centre, the range would
    # reach them.
    strategy, state, _ = told(
        [1.0, 5.0, np.nan, 4.0, np.inf, -np.inf, 2.0],
        x=[5.0, 4.0, 0.0, 6.0, 10.0, 9.0, 5.0],
        lr=[1e-2, 1e-3, 1.0, 1e-2, 1e-4, 1e-4, 1e-3],
        beta=[0.9, 0.99, 0.999, 0.99, 0.9, 0.999, 0.99],
        act=["c", "b", "e", "c", "a", "a", "c"],
    )
    first, second = strategy.ranges(state)
    assert first["x"] == (0.0, 10.0) and first["act"] == ("a", "b", "c", "d", "e") and first["seed"] == 7
    # Top 2: x = 4 and 6 (u 0.4, 0.6), padded by 0.1 of the width (1.0) -> u in [0.3, 0.7].
    np.testing.assert_allclose(second["x"], (3.0, 7.0), rtol=1e-5)
    # lr 1e-3 and 1e-2 are u 0.25 and 0.5 of four decades -> u [0.15, 0.6]: log scale.
    np.testing.assert_allclose(second["lr"], (10 ** (-4 + 0.6), 10 ** (-4 + 2.4)), rtol=1e-4)
    # beta 0.99 is u 0.5 in log(1 - beta) -> [0.4, 0.6], i.e. 1 - beta in [10**-2.2, 10**-1.8].
    np.testing.assert_allclose(second["beta"], (1 - 10**-1.8, 1 - 10**-2.2), rtol=1e-5)
    # Options b and c (bin centres 0.3, 0.5) -> [0.2, 0.6]: the bins of b and c, not d.
    assert second["act"] == ("b", "c")
    assert second["seed"] == 7


@pytest.mark.parametrize(
    "round_two_scores, expected",
    [
        # Top 2 of both rounds are x = 4.5, 5.5 (round 2); padded by 0.1 * 0.4 -> [4.1, 5.9].
        ([9.0, 8.0, 0.0], (4.1, 5.9)),
        # A worse round 2: the top 2 so far are still x = 4 and 6 from round 1 -> [3.6, 6.4].
        ([3.0, np.nan, -1.0], (3.6, 6.4)),
    ],
)
def test_later_rounds_use_every_round_so_far_and_pad_by_the_current_width(round_two_scores, expected):
    strategy, state, _ = told(
        [5.0, 4.0, 1.0], x=[4.0, 6.0, 1.0], lr=[1e-2] * 3, beta=[0.99] * 3, act=["c"] * 3
    )  # round 2 searches x in [3, 7]: width 0.4 of the unit range
    hp = SPACE.encode([{"x": x, "lr": 1e-2, "beta": 0.99, "act": "c", "seed": 7} for x in (4.5, 5.5, 3.0)])
    state = strategy.tell(state, hp, jnp.asarray(round_two_scores))
    np.testing.assert_allclose(strategy.ranges(state)[2]["x"], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "dist, margin, expected",
    [
        # Bin 1 of 4 has centre 0.375; padding 0.125 gives [0.25, 0.5], exactly its edges.
        (vt.Choice(["a", "b", "c", "d"]), 0.125, ("b",)),
        (vt.IntUniform(0, 3), 0.125, (1, 1)),
        # Bin 1 of 3, padded by 1/6: float32 puts the ends just outside [1/3, 2/3], both sides.
        (vt.Choice(["a", "b", "c"]), 1 / 6, ("b",)),
    ],
)
def test_discrete_range_ending_on_a_bin_edge_excludes_the_next_bin(dist, margin, expected):
    space = vt.Space(v=dist)
    strategy = CoarseToFine(population=4, rounds=2, top_k=1, margin=margin)
    state = strategy.init(space, jax.random.key(0))
    n = len(dist.grid(4))
    state = strategy.tell(state, {"v": jnp.arange(4, dtype=jnp.int32) % n}, jnp.asarray([0.0, 1.0, 0.0, 0.0]))
    assert strategy.ranges(state)[1]["v"] == expected
    with pytest.warns(UserWarning, match=r"4 of round 1's 4 members repeat settings tried or asked before: round 1's "
                      r"range holds 1 setting, 1 of them tried\. A larger margin"):
        hp, _ = strategy.ask(state, jax.random.key(0))
    assert (np.asarray(hp["v"]) == 1).all()


def settings_of(space, hp):
    """Each member's setting: (name, value) pairs of the names it uses (Space.only_when)."""
    used = space.active(hp)
    return [tuple((name, value) for name, value in row.items() if name not in used or used[name][i])
            for i, row in enumerate(space.decode(hp))]


NINE = vt.Space(activation=vt.Choice(["relu", "tanh", "gelu"]), n_hidden=vt.IntUniform(1, 3))


@pytest.mark.parametrize(
    "space",
    [
        NINE,
        # 2 sgd momenta + adam, times 3 activations: adam members differ in no unused momentum
        vt.Space(optimizer=vt.Choice(["sgd", "adam"]), momentum=vt.Choice([0.9, 0.99]),
                 activation=vt.Choice(["relu", "tanh", "gelu"]), seed=3).only_when("momentum", optimizer="sgd"),
    ],
)
def test_first_round_of_a_discrete_space_holds_distinct_settings_as_random_search_does(space):
    for seed in range(3):
        strategy = CoarseToFine(population=9, rounds=2)
        hp, _ = strategy.ask(strategy.init(space, jax.random.key(0)), jax.random.key(seed))
        assert len(set(settings_of(space, hp))) == 9, sorted(settings_of(space, hp))


def test_a_population_larger_than_a_discrete_space_gives_every_setting_once_then_repeats_with_a_warning():
    strategy = CoarseToFine(population=12, rounds=2)
    with pytest.warns(UserWarning, match=r"3 of round 0's 12 members repeat settings tried or asked before: the space "
                      r"holds 9 settings \(discrete values only\)"):
        hp, _ = strategy.ask(strategy.init(NINE, jax.random.key(0)), jax.random.key(0))
    assert len(set(settings_of(NINE, hp))) == 9


def test_later_rounds_of_a_discrete_space_draw_settings_no_round_tried_where_the_range_holds_them():
    space = vt.Space(x=vt.IntUniform(0, 19), act=vt.Choice(["a", "b", "c", "d"]))  # 80 settings
    strategy = CoarseToFine(population=8, rounds=3, top_k=2, margin=0.1)
    state = strategy.init(space, jax.random.key(0))
    # The top 2 (x 9 "b", x 10 "c") set round 1's range: x 7..12, act b or c: 12 settings, 3 tried.
    first = space.encode([{"x": x, "act": a} for x, a in [(9, "b"), (10, "c"), (8, "b"), (0, "a"), (19, "d"),
                                                          (5, "a"), (15, "d"), (2, "c")]])
    state = strategy.tell(state, first, jnp.asarray([8.0, 7.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    assert strategy.ranges(state)[1] == {"x": (7, 12), "act": ("b", "c")}
    for seed in range(3):
        hp, _ = strategy.ask(state, jax.random.key(seed))
        rows = settings_of(space, hp)
        assert len(set(rows)) == 8 and not set(rows) & set(settings_of(space, first)), sorted(rows)
        assert set(rows) <= {(("x", x), ("act", a)) for x in range(7, 13) for a in "bc"}


def test_a_range_of_settings_all_tried_gives_each_once_then_repeats_with_a_warning():
    strategy = CoarseToFine(population=9, rounds=2, top_k=2, margin=0.1)
    state = strategy.init(NINE, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(0))  # all 9 settings
    state = strategy.tell(state, hp, jnp.arange(9.0))
    box = strategy.ranges(state)[1]
    in_box = {(("activation", a), ("n_hidden", h)) for a in box["activation"] for h in range(box["n_hidden"][0],
                                                                                        box["n_hidden"][1] + 1)}
    assert 1 < len(in_box) < 9
    with pytest.warns(UserWarning, match=rf"9 of round 1's 9 members repeat settings tried or asked before: round 1's "
                      rf"range holds {len(in_box)} settings, {len(in_box)} of them tried"):
        hp, _ = strategy.ask(state, jax.random.key(1))
    rows = settings_of(NINE, hp)
    assert set(rows) == in_box  # every setting of the range once, the rest as drawn


def test_a_space_with_a_range_is_drawn_as_before_independently_in_the_box():
    strategy = CoarseToFine(population=16, rounds=2)
    state = strategy.init(SPACE, jax.random.key(0))
    hp, _ = strategy.ask(state, jax.random.key(5))
    plain = sample_in_range(jax.random.key(5), SPACE, state.low[0], state.high[0], 16)
    for name in SPACE.names:
        np.testing.assert_array_equal(hp[name], plain[name])


def test_range_is_kept_when_every_member_failed_and_history_is_recorded():
    strategy, state, hp = told(
        [np.nan, np.nan, np.inf], x=[1.0, 2.0, 3.0], lr=[1e-3] * 3, beta=[0.95] * 3, act=["a", "b", "c"]
    )
    first, second = strategy.ranges(state)
    assert second == first
    for name in SPACE.names:
        np.testing.assert_array_equal(state.hp[name][0], hp[name])
    assert np.isnan(state.scores[0, 0]) and np.isinf(state.scores[0, 2])
    assert np.isnan(state.scores[1:]).all()  # rounds not yet told


def test_every_member_lies_in_its_round_range_and_ranges_shrink():
    space = mixed_space()
    strategy = CoarseToFine(population=32, rounds=5)
    out = run(strategy, space, bowl, jax.random.key(3))
    state, asked = out["state"], out["asked"]
    ranges = strategy.ranges(state)
    assert len(ranges) == len(asked) == state.round == 5
    for r, (hp, rng) in enumerate(zip(asked, ranges)):
        for name in space.free_names:
            x = np.asarray(space.decode_columns(hp)[name], dtype=object)
            if isinstance(space[name], vt.Choice):
                assert set(x) <= set(rng[name]), (r, name)
            else:
                dist = space[name]  # never past the bounds (as float32, like the values)
                assert rng[name][0] >= np.float32(dist.low) and rng[name][1] <= np.float32(dist.high)
                assert ((x >= rng[name][0]) & (x <= rng[name][1])).all(), (r, name)
        for name, x in hp.items():
            np.testing.assert_array_equal(state.hp[name][r], x)  # every round kept
    # The learning rate range ends narrower than half its six decades, measured in log scale.
    lo, hi = ranges[-1]["learning_rate"]
    assert np.log10(hi / lo) < 0.5 * np.log10(1.0 / 1e-6)
    assert (state.high[-1] - state.low[-1] < state.high[0] - state.low[0]).all()


def test_same_key_same_proposals():
    space = mixed_space()
    strategy = CoarseToFine(population=32, rounds=5)  # the shapes of the other tests: no new compile
    a = run(strategy, space, bowl, jax.random.key(1))["asked"]
    b = run(strategy, space, bowl, jax.random.key(1))["asked"]
    c = run(strategy, space, bowl, jax.random.key(2))["asked"]
    for x, y, z in zip(a, b, c):
        for name in space.names:
            np.testing.assert_array_equal(x[name], y[name])
        assert not np.array_equal(x["learning_rate"], z["learning_rate"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"population": 8, "top_k": 9}, r"top_k must be <= population, got top_k=9 with population=8. Lower top_k"),
        ({"top_k": 0}, r"top_k must be an integer >= 1, got 0"),
        ({"rounds": 0}, r"rounds must be an integer >= 1, got 0"),
        ({"population": 0}, r"population must be an integer >= 1, got 0"),
        ({"margin": 0.0}, r"margin must be a number in \(0, 0.5\), got margin=0.0.*Try margin=0.1"),
        ({"margin": 0.5}, r"margin must be a number in \(0, 0.5\), got margin=0.5.*can never shrink"),
        ({"margin": -0.1}, r"got margin=-0.1"),
        ({"margin": "0.1"}, r"got margin='0.1'"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoarseToFine(**kwargs)


def test_default_top_k_fits_small_populations():
    assert CoarseToFine(population=64).k == 8
    assert CoarseToFine(population=8).k == 2
    assert CoarseToFine(population=1).k == 1


def test_misuse_of_ask_and_tell_fails_clearly():
    strategy = CoarseToFine(population=4, rounds=1)
    with pytest.raises(TypeError, match=r"CoarseToFine.init: space must be a vt.Space"):
        strategy.init("lr", jax.random.key(0))
    space = vt.Space(x=vt.Uniform(0.0, 1.0))
    state = strategy.init(space, jax.random.key(0))
    hp, _ = strategy.ask(state, jax.random.key(0))
    with pytest.raises(ValueError, match=r"hp has 2 members, expected population=4"):
        strategy.tell(state, {"x": hp["x"][:2]}, jnp.zeros(2))
    with pytest.raises(ValueError, match=r"scores must have shape \(4,\)"):
        strategy.tell(state, hp, jnp.zeros(3))
    state = strategy.tell(state, hp, jnp.zeros(4))
    with pytest.raises(RuntimeError, match=r"all rounds=1 rounds are done. Check strategy.done"):
        strategy.ask(state, jax.random.key(0))
