import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from vmaptune import distinct

MIXED = vt.Space(
    learning_rate=vt.LogUniform(1e-4, 1e-1),
    momentum=vt.OneMinusLogUniform(0.9, 0.999),
    dropout=vt.Uniform(0.0, 0.5),
    n_hidden=vt.IntUniform(0, 3),
    n_units=vt.IntLogUniform(1, 128),
    activation=vt.Choice(["relu", "tanh", "gelu"]),
    batch=vt.Choice([16, 32, 64]),
    optimizer=vt.Fixed("sgd"),
    scale=vt.Fixed(0.5),
)


def test_sample_shapes_dtypes_and_bounds():
    hp = MIXED.sample(jax.random.key(0), 5000)
    assert set(hp) == set(MIXED.names)
    assert all(v.shape == (5000,) for v in hp.values())
    assert hp["learning_rate"].dtype == jnp.float32 and hp["n_hidden"].dtype == jnp.int32
    for name in ("learning_rate", "momentum", "dropout", "n_hidden", "n_units"):
        d = MIXED[name]
        assert float(hp[name].min()) >= d.low and float(hp[name].max()) <= d.high, name
    assert set(np.unique(hp["activation"]).tolist()) == {0, 1, 2}
    assert set(np.unique(hp["n_hidden"]).tolist()) == {0, 1, 2, 3}
    assert np.all(np.asarray(hp["optimizer"]) == 0) and np.all(np.asarray(hp["scale"]) == 0.5)


def test_one_minus_log_uniform_puts_half_the_draws_above_0_99():
    n = 40000
    x = np.asarray(vt.OneMinusLogUniform(0.9, 0.999).sample(jax.random.key(1), n))
    share = np.mean(x >= 0.99)
    assert abs(share - 0.5) < 4 * np.sqrt(0.25 / n)  # 4 standard errors
    # and a plain uniform would put only 1 % there: the scale matters
    assert np.mean(np.asarray(vt.Uniform(0.9, 0.999).sample(jax.random.key(1), n)) >= 0.99) < 0.1


def test_log_uniform_is_uniform_in_log_space():
    n = 40000
    x = np.asarray(vt.LogUniform(1e-4, 1e-1).sample(jax.random.key(2), n))
    counts, _ = np.histogram(np.log10(x), bins=6, range=(-4, -1))
    expected = n / 6
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 20.5  # chi-square, 5 degrees of freedom, p = 0.001
    # each decade holds a third of the draws
    assert abs(np.mean(x < 1e-3) - 1 / 3) < 0.02


def test_int_log_uniform_is_log_scaled():
    x = np.asarray(vt.IntLogUniform(1, 1000).sample(jax.random.key(3), 30000))
    assert x.min() >= 1 and x.max() <= 1000
    assert abs(np.mean(x < 32) - 0.5) < 0.03  # sqrt(1001) ~ 31.6 is the log-midpoint


@pytest.mark.parametrize("name", MIXED.names)
def test_unit_round_trip(name):
    d = MIXED[name]
    x = d.sample(jax.random.key(4), 500)
    u = d.to_unit(x)
    assert float(u.min()) >= 0 and float(u.max()) <= 1
    back = d.from_unit(u)
    if d.kind == "float":
        np.testing.assert_allclose(back, x, rtol=1e-5)
    else:
        np.testing.assert_array_equal(back, x)


def test_space_unit_cube_and_decode():
    hp = MIXED.sample(jax.random.key(5), 7)
    u = MIXED.to_unit(hp)
    assert u.shape == (7, len(MIXED))
    back = MIXED.from_unit(u)
    np.testing.assert_array_equal(back["activation"], hp["activation"])
    rows = MIXED.decode(hp)
    assert rows[0]["activation"] in ("relu", "tanh", "gelu") and rows[0]["batch"] in (16, 32, 64)
    assert isinstance(rows[0]["n_units"], int) and isinstance(rows[0]["learning_rate"], float)
    assert rows[0]["optimizer"] == "sgd"
    enc = MIXED.encode(rows)
    np.testing.assert_array_equal(enc["activation"], hp["activation"])
    np.testing.assert_array_equal(MIXED.numeric(hp)["batch"], np.array([16, 32, 64])[np.asarray(hp["batch"])])


def test_same_key_same_draws_and_names_are_independent():
    a = MIXED.sample(jax.random.key(6), 10)
    b = MIXED.sample(jax.random.key(6), 10)
    c = MIXED.sample(jax.random.key(7), 10)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["learning_rate"], c["learning_rate"])
    # adding a hyperparameter leaves the other draws unchanged
    d = MIXED.replace(extra=vt.Uniform(0, 1)).sample(jax.random.key(6), 10)
    np.testing.assert_array_equal(a["learning_rate"], d["learning_rate"])


def _settings(space, hp):
    used = space.active(hp)
    return [tuple(int(hp[n][i]) if n not in used or used[n][i] else None for n in space.names)
            for i in range(len(next(iter(hp.values()))))]


def test_distinct_draws_of_a_discrete_space_never_repeat_a_setting_and_keep_each_values_odds():
    """Lists are drawn without replacement, as scikit-learn's ParameterSampler does: 9 members of
    a 3 x 3 space are its 9 settings (independent draws repeat some and miss others); a draw that
    repeats is drawn again, so a log-scaled integer keeps its log odds; same key, same draws."""
    grid = vt.Space(a=vt.Choice([1, 2, 3]), b=vt.Choice(["x", "y", "z"]), c=vt.Fixed(0.5))
    independent = grid.sample(jax.random.key(0), 9)
    assert len(set(_settings(grid, independent))) < 9  # (the draws this key gives without distinct)
    hp = grid.sample(jax.random.key(0), 9, distinct=True)
    assert len(set(_settings(grid, hp))) == 9
    again = grid.sample(jax.random.key(0), 9, distinct=True)
    for name in hp:
        np.testing.assert_array_equal(hp[name], again[name])
    wide = vt.Space(units=vt.IntLogUniform(100, 1_000_000), act=vt.Choice(["relu", "tanh"]))
    hp = wide.sample(jax.random.key(1), 400, distinct=True)
    assert len(set(_settings(wide, hp))) == 400
    units = np.asarray(hp["units"])
    assert 0.15 < np.mean(units < 1000) < 0.35 and 0.4 < np.mean(units < 10_000) < 0.6  # log odds: 1/4, 1/2


def test_distinct_draws_compare_the_settings_members_use_and_warn_when_the_space_runs_out():
    """A conditional name not in use is not part of a setting (two adam members differing in an
    unused momentum are one setting); a space of fewer settings than members gives every one once,
    then repeats, with a warning that counts them; a continuous range is drawn as independent draws."""
    space = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), momentum=vt.Choice([0.5, 0.9])).only_when(
        "momentum", optimizer="sgd")
    hp = space.sample(jax.random.key(0), 3, distinct=True)
    assert sorted(_settings(space, hp), key=str) == sorted([(0, 0), (0, 1), (1, None)], key=str)
    wide = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), momentum=vt.IntUniform(1, 24), beta=vt.Choice([1, 2, 3])
                    ).only_when("momentum", optimizer="sgd").only_when("beta", optimizer="adam")
    for seed in range(3):  # (redrawn: 16 of 27 settings, the 3 adam ones taken early)
        hp = wide.sample(jax.random.key(seed), 16, distinct=True)
        assert len(set(_settings(wide, hp))) == 16 and int((np.asarray(hp["optimizer"]) == 1).sum()) == 3
    with pytest.warns(UserWarning, match=r"4 members drawn from a space of 3 settings \(discrete values only\): "
                                         r"every setting once, 1 of them again"):
        hp = space.sample(jax.random.key(0), 4, distinct=True)
    assert len(set(_settings(space, hp))) == 3
    a, b = MIXED.sample(jax.random.key(6), 10), MIXED.sample(jax.random.key(6), 10, distinct=True)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (one setting: each member another initialisation of it, not repeats)
        for one in (vt.Space(a=vt.Fixed(1), b=vt.Fixed("x")), vt.Space(a=vt.Choice([1]), b=vt.Fixed(0.5))):
            one.sample(jax.random.key(0), 4, distinct=True)


def test_members_that_use_no_conditional_range_hold_distinct_settings():
    """momentum only when optimizer='sgd' made the space "continuous", so it was drawn as independent
    draws: the adam members' settings are lists only, and 8 of them held 6 settings (the same network
    trained twice, 3 never). They are now drawn without replacement; a space whose every member uses
    a range (momentum for sgd, b1 for adam) is drawn as before."""
    space = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), momentum=vt.OneMinusLogUniform(0.5, 0.99),
                     n_hidden=vt.IntUniform(1, 3), activation=vt.Choice(["relu", "tanh", "gelu"]),
                     learning_rate=vt.Fixed(0.01)).only_when("momentum", optimizer="sgd")

    def adam_settings(hp):
        adam = np.asarray(hp["optimizer"]) == 1
        return list(zip(np.asarray(hp["n_hidden"])[adam].tolist(), np.asarray(hp["activation"])[adam].tolist()))

    independent = adam_settings(space.sample(jax.random.key(0), 24))
    assert len(set(independent)) < len(independent)  # (the draws this key gives without distinct)
    for seed in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            hp = space.sample(jax.random.key(seed), 24, distinct=True)
        settings = adam_settings(hp)
        assert len(set(settings)) == len(settings) <= 9
        assert len(set(np.asarray(hp["momentum"])[np.asarray(hp["optimizer"]) == 0].tolist())) == 24 - len(settings)
    every = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), momentum=vt.Uniform(0.5, 0.9), b1=vt.Uniform(0.8, 0.9),
                     act=vt.Choice(["relu", "tanh"])).only_when("momentum", optimizer="sgd").only_when("b1",
                                                                                                  optimizer="adam")
    assert not distinct.is_discrete(every) and not distinct.is_discrete(MIXED.only_when("dropout", n_hidden=[1, 2]))


@pytest.mark.parametrize("space", [vt.Space(n=vt.IntUniform(1, 100)), vt.Space(n=vt.IntLogUniform(16, 256)),
                                   vt.Space(a=vt.Choice([1, 2, 3, 4]), b=vt.Choice([1, 2, 3, 4]),
                                            c=vt.Choice(["x", "y", "z", "w"]))], ids=["int", "intlog", "choices"])
def test_a_population_as_large_as_the_space_or_nearly_holds_each_setting_once(space):
    """Redraws alone miss settings once few are left (a coupon collector: IntLogUniform(16, 256)'s
    241 settings in 241 draws missed 6 to 11): the settings not drawn yet are then taken from the
    list of them, so n members of a space of m >= n settings are n distinct ones, m of m included."""
    m = len(next(iter(distinct.settings(space).values())))
    for seed in range(5):
        for n in (m - 1, m):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                hp = space.sample(jax.random.key(seed), n, distinct=True)
            assert len(set(_settings(space, hp))) == n


def test_a_wide_discrete_space_is_not_listed_and_a_bracket_of_no_random_members_draws_none():
    """IntUniform(0, 2e9) is not listed (an arange of it was 8 GB and 21 s before the size was
    checked); BOHB's random share of a small bracket can be 0 members (a draw of 0 was refused)."""
    wide = vt.Space(n=vt.IntUniform(0, 2 * 10**9), act=vt.Choice(["relu", "tanh"]))
    assert distinct.settings(wide) is None
    assert len(set(_settings(wide, wide.sample(jax.random.key(0), 8, distinct=True)))) == 8
    none = vt.SuccessiveHalving(population=4, eta=2).sample(vt.Space(a=vt.Choice([1, 2])), jax.random.key(0), 0)
    assert {name: len(v) for name, v in none.items()} == {"a": 0}


def test_config_round_trip():
    assert vt.Space.from_config(MIXED.to_config()) == MIXED


def test_a_misspelled_only_when_in_a_config_entry_is_said_among_the_keys_it_takes():
    """`when = {...}` was told that Uniform takes ['low', 'high']: as if an entry could hold no condition."""
    for key in ("when", "onlywhen"):
        with pytest.raises(ValueError, match=re.escape(
                f"space entry 'momentum': Uniform has no setting {key!r}. Did you mean 'only_when' for {key!r}? It "
                f"takes ['low', 'high'] and 'only_when'.")):
            vt.Space.from_config({"optimizer": {"type": "Choice", "options": ["sgd", "adam"]},
                                  "momentum": {"type": "Uniform", "low": 0.1, "high": 0.9, key: {"optimizer": "sgd"}}})
    space = vt.Space.from_config({"optimizer": {"type": "Choice", "options": ["sgd", "adam"]},
                                  "momentum": {"type": "Uniform", "low": 0.1, "high": 0.9,
                                               "only_when": {"optimizer": ["sgd"]}}})
    assert space.to_config()["momentum"]["only_when"] == {"optimizer": ["sgd"]}


def test_grid_points():
    np.testing.assert_allclose(vt.LogUniform(1e-4, 1e-1).grid(4), [1e-4, 1e-3, 1e-2, 1e-1], rtol=1e-5)
    np.testing.assert_array_equal(vt.IntUniform(0, 3).grid(10), [0, 1, 2, 3])
    np.testing.assert_array_equal(vt.Choice(["a", "b"]).grid(5), [0, 1])
    # one point is the middle of the range in its own scale, for integers as for floats (it was low)
    assert vt.Uniform(1, 10).grid(1).tolist() == [5.5] and vt.IntUniform(1, 9).grid(1).tolist() == [5]
    assert vt.IntLogUniform(1, 1024).grid(1).tolist() == [32] and vt.IntUniform(0, 3).grid(2).tolist() == [0, 3]


def test_grid_points_and_bounds_are_the_values_a_user_gives():
    """A grid's points are float32 roundings of the exact values (decades, bounds, halves), so the
    table filters on them; a scale's bounds decode exactly wherever they are drawn."""
    for dist, n, given in [(vt.LogUniform(1e-3, 1e-1), 3, [0.001, 0.01, 0.1]),
                           (vt.LogUniform(1e-5, 1e-3), 3, [1e-5, 1e-4, 1e-3]),
                           (vt.OneMinusLogUniform(0.9, 0.999), 3, [0.9, 0.99, 0.999]),
                           (vt.Uniform(0.1, 0.7), 4, [0.1, 0.3, 0.5, 0.7])]:
        points = dist.grid(n)
        assert points.dtype == np.float32 and [dist.decode(x) for x in points] == given, (dist, points)
        ends = np.asarray(dist.from_unit(jnp.array([0.0, 1.0])))
        assert [dist.decode(x) for x in ends] == [dist.low, dist.high], (dist, ends)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: vt.Uniform(1.0, 0.5), ValueError, r"Uniform\(low=1.0, high=0.5\): low must be < high"),
        (lambda: vt.Uniform(0.0, float("nan")), ValueError, "high must be finite"),
        (lambda: vt.LogUniform(0.0, 0.1), ValueError, r"LogUniform\(low=0.0, high=0.1\).*must be > 0.*vt.Uniform"),
        (lambda: vt.LogUniform(-1, 1), ValueError, "must be > 0"),
        (lambda: vt.LogUniform(1e-1, 1e-4), ValueError, "low must be < high"),
        (lambda: vt.OneMinusLogUniform(0.9, 1.0), ValueError, r"strictly inside \(0, 1\)"),
        (lambda: vt.OneMinusLogUniform(0.0, 0.9), ValueError, r"strictly inside \(0, 1\)"),
        (lambda: vt.IntUniform(5, 1), ValueError, "low must be <= high"),
        (lambda: vt.IntUniform(0.5, 3), TypeError, "low must be an integer"),
        (lambda: vt.IntLogUniform(0, 10), ValueError, "low must be >= 1"),
        (lambda: vt.Choice([]), ValueError, "at least one option"),
        (lambda: vt.Choice("relu"), TypeError, "must be a list"),
        (lambda: vt.Choice(["a", "a"]), ValueError, "distinct"),
        (lambda: vt.Fixed(float("inf")), ValueError, "finite"),
        (lambda: vt.Space(lr=[1, 2]), TypeError, r"lr=\[1, 2\] is not a distribution"),
        (lambda: vt.Space(), ValueError, "at least one"),
        (lambda: vt.Space({"bad name": vt.Uniform(0, 1)}), ValueError, "identifier"),
        (lambda: vt.Space.from_config({"lr": {"type": "Normal"}}), ValueError, "unknown distribution type 'Normal'"),
    ],
)
def test_invalid_definitions(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_population_checks():
    hp = MIXED.sample(jax.random.key(0), 3)
    del hp["dropout"]
    with pytest.raises(ValueError, match=r"missing \['dropout'\]"):
        MIXED.to_unit(hp)
    with pytest.raises(ValueError, match="is not one of the options"):
        MIXED["activation"].encode("swish")


def test_spaces_that_encode_differently_are_different_cache_keys():
    """A space keys its compiled sampler: Fixed(0) == Fixed(0.0) as dataclasses, but they encode
    as int32 and float32, so a second search in the process must not reuse the first's program."""
    key = jax.random.key(0)
    spaces = [vt.Space(lr=vt.LogUniform(1e-3, 1e-1), wd=vt.Fixed(value)) for value in (0, 0.0, False)]
    assert len(set(spaces)) == 3 and spaces[0] != spaces[1]
    assert vt.Space(wd=vt.Fixed(0.0)) == vt.Space(wd=vt.Fixed(0.0))
    for space, dtype in zip(spaces, (np.int32, np.float32)):
        assert space.sample(key, 3)["wd"].dtype == dtype
    assert vt.Space(c=vt.Choice([0, 1])) != vt.Space(c=vt.Choice([0.0, 1.0]))


def test_float32_values_decode_to_the_shortest_decimal_that_is_them():
    """0.1 trains as float32 0.1; its plain value reads 0.1 (float64's 0.10000000149 failed a
    user's df[df.dropout == 0.1] and sat above a LogUniform's high of 0.1), and float32 of every
    decoded value is the value that trained."""
    d = vt.LogUniform(1e-3, 0.1)
    assert d.decode(np.float32(0.1)) == 0.1 and d.decode(np.asarray(np.float32(1e-3))) == 0.001
    drawn = np.asarray(vt.Space(x=d).sample(jax.random.key(0), 2000)["x"])
    assert drawn.dtype == np.float32
    decoded = np.asarray([d.decode(v) for v in drawn])
    np.testing.assert_array_equal(decoded.astype(np.float32), drawn)
    assert d.decode(np.float64(0.1 + 1e-12)) == 0.1 + 1e-12  # a float64 value stays as it is
    space = vt.Space(lr=vt.LogUniform(1e-3, 1e-1), dropout=vt.Uniform(0.0, 0.5))
    rows = space.decode(space.encode([{"lr": 0.1, "dropout": 0.3}, {"lr": 0.01, "dropout": 0.1}]))
    assert rows == [{"lr": 0.1, "dropout": 0.3}, {"lr": 0.01, "dropout": 0.1}]


def test_a_choice_of_numpy_bools_is_a_choice_of_bools():
    # (np.bool_ is no numbers.Real: vt.Choice(list(np.array([True, False]))) was refused)
    choice = vt.Choice(list(np.array([True, False])))
    assert choice.options == (True, False) and all(type(o) is bool for o in choice.options)
    assert choice == vt.Choice([True, False])
    assert vt.Fixed(np.True_).value is True and vt.Fixed(np.True_) == vt.Fixed(True)
    with pytest.raises(ValueError, match=r"options must be distinct\.$"):  # (no word of bools: [True, True] repeats)
        vt.Choice([True, True, 2])


def test_numpy_numbers_in_a_choice_or_fixed_are_the_python_values_they_print_as():
    """vt.Choice(list(np.arange(...))) and np.float32 values: the space held numpy scalars, so
    to_config() was no JSON, a saved space loaded unequal, and 0.05 read 0.05000000074505806."""
    import json

    space = vt.Space(n_units=vt.Choice(list(np.arange(4, 9, 4))), learning_rate=vt.Fixed(np.float32(0.05)),
                     dropout=vt.Choice(list(np.array([0.1, 0.2], np.float32))), seed=vt.Fixed(np.int64(3)),
                     scale=vt.Fixed(np.float64(0.1 + 1e-12)))
    assert space == vt.Space(n_units=vt.Choice([4, 8]), learning_rate=vt.Fixed(0.05), dropout=vt.Choice([0.1, 0.2]),
                             seed=vt.Fixed(3), scale=vt.Fixed(0.1 + 1e-12))
    assert [type(o) for o in space["n_units"].options] == [int, int] and space["learning_rate"].value == 0.05
    assert vt.Space.from_config(json.loads(json.dumps(space.to_config()))) == space
    assert vt.Choice([np.longdouble(0.05), np.longdouble(0.1)]).options == (0.05, 0.1)  # (jax took no longdouble)


def test_max_memory_text_reads_as_written():
    from vmaptune.memory import parse_bytes

    given = {"2GB": 2 * 10**9, " 3 gb ": 3 * 10**9, "1.5GiB": 3 * 2**29, ".5GB": 5 * 10**8, "1e9": 10**9,
             "1.5e9B": 15 * 10**8, 7: 7, 3e9: 3 * 10**9, 10**400: 10**400}
    assert {v: parse_bytes("max_memory", v) for v in given} == given


def test_a_scikit_learn_style_value_in_a_space_names_an_equivalent_that_builds():
    """The hint of Space's 'is not a distribution' error: only distributions that build, read from a
    range's ends (range(1, 10**9) was turned into a list of a billion numbers first)."""
    from vmaptune.space import _equivalent

    assert _equivalent(range(1, 10**9)) == "vt.IntUniform(1, 999999999)"
    assert _equivalent(np.arange(5, 50)) == _equivalent(list(range(5, 50))) == "vt.IntUniform(5, 49)"
    assert _equivalent((8, 512, "log-uniform")) == "vt.IntLogUniform(8, 512)"  # (integer bounds: scikit-optimize's)
    assert _equivalent((1e-6, 0.1, "log-uniform")) == "vt.LogUniform(1e-06, 0.1)"
    assert _equivalent([0.5, 0.1]) == "vt.Choice([0.5, 0.1])"  # (not Uniform(0.5, 0.1), which is refused)
    assert _equivalent([16, 256]) == ("vt.Choice([16, 256]) for those two values, or vt.IntUniform(16, 256) for the "
                                      "range")
    assert [_equivalent(v) for v in ([1, 2, 2, 3], [None, 0.1], [float("nan"), 1.0], ["a", 1], list(range(0, 99, 3)))] \
        == [None] * 5


def test_a_choice_of_true_and_false_reaches_a_model_as_1_and_0_in_any_order():
    """Choice([True, False]) gave a loss its option's index: True arrived as 0, every member
    trained with the other setting than its row showed."""
    space = vt.Space(flag=vt.Choice([True, False]), rate=vt.Uniform(0.0, 1.0)).only_when("rate", flag=[True])
    hp = space.encode([{"flag": True, "rate": 0.5}, {"flag": False, "rate": 0.5}])
    numeric = space.numeric(hp)
    np.testing.assert_array_equal(numeric["flag"], [1, 0])
    np.testing.assert_array_equal(space.from_numeric(numeric)["flag"], np.asarray(hp["flag"]))
    # only_when's traced rule compares the value the model computes with
    np.testing.assert_array_equal(space.traced_conditions().active("rate", numeric), [True, False])
    np.testing.assert_array_equal(space.active(hp)["rate"], [True, False])
