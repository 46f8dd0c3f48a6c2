"""The learning-rate range test: its curve, stopping rule, suggestion, plot, groups and input checks."""

import os

import flax.linen as nn
import numpy as np
import optax
import pytest

import vmaptune as vt
from vmaptune import lr_finder
from vmaptune.lr_finder import LRSuggestion, ema_smooth, lr_range_test, suggest

SMALL_SPACE = vt.Space(n_hidden=vt.Fixed(1), n_units=vt.Fixed(32))


@pytest.fixture(scope="module")
def sgd_result(digits):
    """The defaults: SGD, 3 seeds, 1e-5 -> 10 over 300 steps, batch 64, the default MLP."""
    return lr_range_test(vt.MLP(), digits)


@pytest.fixture(scope="module")
def groups_result(digits):
    """2 optimizers x 2 batch sizes x 2 seeds = 8 members in one program."""
    return lr_range_test(vt.MLP(), digits, SMALL_SPACE, optimizer=["sgd", "adam"], batch_size=[32, 128],
                         seeds=2, steps=100, beta=0.9)


def test_suggested_lr_trains_digits_to_090_in_10_epochs(sgd_result, digits):
    lr = sgd_result.suggested_lr
    s = sgd_result.suggestion()
    assert s.ok and s.warnings == ()
    assert 1e-5 < s.lr_steepest < s.lr_at_min < 10.0
    assert lr == pytest.approx(s.lr_at_min / 10) and lr == s.lr_min_tenth
    assert s.low < lr < s.high
    result = vt.tune(vt.MLP(), vt.Space(learning_rate=vt.Fixed(lr)), digits,
                     strategy=vt.RandomSearch(population=3), epochs=10, seed=0, progress=False)
    assert (result.members["status"] == "ok").all()
    # every initialisation, at its last epoch (not just the best epoch of the best member)
    assert result.members["final_score"].min() >= 0.9, (lr, result.members["final_score"].tolist())


def test_space_entries(sgd_result):
    s = sgd_result.suggestion()
    entry = sgd_result.to_space_entry()
    assert entry == vt.LogUniform(s.low, s.high) and sgd_result.suggested_range == (s.low, s.high)
    assert sgd_result.to_space_entry(fixed=True) == vt.Fixed(s.suggested)
    space = vt.Space(learning_rate=entry)  # usable as is
    assert space["learning_rate"].low == s.low


def test_curve_shape_ramp_and_stopping(sgd_result):
    r = sgd_result
    lrs = r.learning_rates
    assert lrs.shape == (300,) and r.losses.shape == r.smoothed.shape == (3, 300)
    assert lrs[0] == pytest.approx(1e-5) and lrs[-1] == pytest.approx(10.0, rel=1e-6)
    np.testing.assert_allclose(np.diff(np.log(lrs)), np.log(1e6) / 299, rtol=1e-4)  # exponential ramp
    assert list(r.seed) == [0, 1, 2] and set(r.optimizer) == {"sgd"} and set(r.batch_size) == {64}
    for i in range(3):
        stop = int(r.stopped_at[i])
        assert 0 < stop < 300, "plain SGD at lr 10 must blow up and stop"
        assert np.isfinite(r.losses[i, :stop]).all() and np.isnan(r.losses[i, stop + 1:]).all()
        assert np.isnan(r.smoothed[i, stop + 1:]).all()
        best = np.minimum.accumulate(r.smoothed[i, :stop])
        assert (r.smoothed[i, 1:stop] <= 4.0 * best[:-1]).all()  # never stopped too early
        blew_up = not np.isfinite(r.losses[i, stop]) or r.smoothed[i, stop] > 4.0 * best[-1]
        assert blew_up  # and stopped for the stated reason


def test_smoothing_is_bias_corrected_ema(sgd_result):
    host = ema_smooth(sgd_result.losses, beta=0.98)
    finite = np.isfinite(sgd_result.smoothed)
    np.testing.assert_array_equal(finite, np.isfinite(host))
    np.testing.assert_allclose(sgd_result.smoothed[finite], host[finite], rtol=1e-4)
    np.testing.assert_allclose(ema_smooth([[2.0, 4.0]], beta=0.5), [[2.0, (0.25 * 2 + 0.5 * 4) / 0.75]])


def test_plot_and_table(sgd_result, tmp_path):
    path = sgd_result.plot(tmp_path / "plots" / "lr_range.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 20_000
    df = sgd_result.to_dataframe()
    assert len(df) == 3 * 300
    assert list(df.columns) == ["member", "seed", "optimizer", "batch_size", "step", "learning_rate", "loss",
                                "smoothed"]
    row = df[(df.member == 2) & (df.step == 7)].iloc[0]
    assert row.loss == sgd_result.losses[2, 7] and row.learning_rate == sgd_result.learning_rates[7]
    assert "suggested lr" in sgd_result.summary()


def test_new_range_reuses_the_program_and_is_deterministic(sgd_result, digits):
    traces = lr_finder.TRACE_COUNTS["range_test"]
    again = lr_range_test(vt.MLP(), digits)
    other = lr_range_test(vt.MLP(), digits, min_lr=1e-4, max_lr=3.0, stop_factor=6.0, beta=0.9, seed=1)
    assert lr_finder.TRACE_COUNTS["range_test"] == traces
    np.testing.assert_array_equal(again.losses, sgd_result.losses)
    assert again.suggested_lr == sgd_result.suggested_lr
    assert other.learning_rates[0] == pytest.approx(1e-4) and other.learning_rates[-1] == pytest.approx(3.0)
    assert not np.array_equal(other.losses[:, :50], sgd_result.losses[:, :50])


def test_groups_labels_and_suggestions(groups_result):
    r = groups_result
    assert r.losses.shape == (8, 100)
    assert list(r.optimizer) == ["sgd"] * 4 + ["adam"] * 4
    assert list(r.batch_size) == [32, 32, 128, 128] * 2 and list(r.seed) == [0, 1] * 4
    assert [(s.optimizer, s.batch_size) for s in r.suggestions] == [("sgd", 32), ("sgd", 128), ("adam", 32),
                                                                     ("adam", 128)]
    for b in (32, 128):  # Adam's useful rates sit well below plain SGD's
        assert r.suggestion("adam", b).suggested < r.suggestion("sgd", b).suggested / 3
    with pytest.raises(ValueError, match=r"several groups.*\('sgd', 32\)"):
        r.suggested_lr
    with pytest.raises(ValueError, match="matches no group"):
        r.suggestion(optimizer="rmsprop")
    # the example is a group of the one asked for, in the call made (it said result.suggestion(optimizer='sgd', ...))
    with pytest.raises(ValueError, match=r"several groups.*e.g. result.to_space_entry\(optimizer='adam', batch_size=32\)"):
        r.to_space_entry(optimizer="adam")
    assert isinstance(r.to_space_entry("adam", 32), vt.LogUniform)


def test_mixed_population_members_match_a_plain_run(groups_result, digits):
    """A member's curve does not depend on which other optimizers share its program."""
    alone = lr_range_test(vt.MLP(), digits, SMALL_SPACE, optimizer="sgd", batch_size=[32, 128], seeds=2,
                          steps=100, beta=0.9)
    np.testing.assert_array_equal(alone.losses, groups_result.losses[:4])
    np.testing.assert_array_equal(alone.stopped_at, groups_result.stopped_at[:4])


# -- the suggestion rule on known curves --------------------------------------------------------------
def _lrs(n=200):
    return np.geomspace(1e-5, 10.0, n)


def test_suggest_finds_minimum_and_steepest_point():
    lrs = _lrs()
    x = np.log10(lrs)
    # a smooth valley: falls fastest at lr 1e-2, lowest at lr ~0.5, then rises
    curve = 2.0 - np.tanh(2 * (x + 2)) + 0.8 * np.maximum(x + 0.3, 0) ** 2
    s = suggest(lrs, np.stack([curve, curve + 0.01]), optimizer="adam", batch_size=32)
    i_min = int(np.argmin(curve))
    assert s.lr_at_min == pytest.approx(lrs[i_min]) and s.suggested == pytest.approx(lrs[i_min] / 10)
    assert s.lr_steepest == pytest.approx(1e-2, rel=0.1)
    assert s.low == pytest.approx(min(s.lr_steepest, s.lr_at_min / 30)) and s.high == pytest.approx(s.lr_at_min / 2)
    assert (s.optimizer, s.batch_size, s.warnings) == ("adam", 32, ())


def test_suggest_uses_only_steps_where_every_seed_runs():
    lrs = _lrs()
    curve = np.linspace(3.0, 1.0, 200)  # still falling everywhere
    assert "raise max_lr" in suggest(lrs, curve[None]).warnings[0]
    stopped = curve.copy()
    stopped[120:] = np.nan  # one seed stopped at step 120: the mean ends there
    s = suggest(lrs, np.stack([curve, stopped]))
    assert s.lr_at_min == pytest.approx(lrs[119]) and s.warnings == ()


def test_a_test_of_many_passes_over_small_data_says_its_suggestion_is_doubtful():
    """On 90 rows, 200 steps of 64 are 142 passes: the loss falls as the network learns the rows, at
    any rate, and 'raise max_lr' would push the user the wrong way (seed 004's test on wine
    suggested lr 1.0, which trains to chance)."""
    lrs = _lrs()
    curve = np.linspace(3.0, 1.0, 200)  # still falling at max_lr
    s = suggest(lrs, curve[None], batch_size=64, train_rows=90)
    assert len(s.warnings) == 1 and "raise max_lr" not in s.warnings[0]
    assert s.warnings[0].startswith("the test's 200 steps of 64 rows made 142 passes over the 90 training rows")
    assert "test again with steps=35 or fewer (at most 25 passes)" in s.warnings[0]
    assert suggest(lrs, curve[None], batch_size=64, train_rows=1079).warnings[0].endswith("raise max_lr.")  # 12


def test_suggest_reports_a_curve_that_blew_up_at_once():
    curve = np.full(200, np.nan)
    curve[:3] = 2.0
    s = suggest(_lrs(), curve[None])
    assert not s.ok and "lower min_lr" in s.warnings[0]
    with pytest.raises(ValueError, match="gave no learning rate.*lower min_lr"):
        s.to_space_entry()
    flat = suggest(_lrs(), np.full((1, 200), 2.3))
    assert any("hardly fell" in w for w in flat.warnings)


def test_hardly_fell_is_judged_against_the_warm_up_not_one_minibatch():
    falling = np.linspace(2.0, 1.0, 200)
    falling[0] = 0.5  # the first smoothed value is one minibatch's loss: here a lucky, low one
    assert not any("hardly fell" in w for w in suggest(_lrs(), falling[None]).warnings)
    flat = np.full(200, 2.3) - np.linspace(0, 0.01, 200)
    flat[0] = 4.0  # an unlucky, high one: the loss did not fall for that
    assert any("hardly fell" in w for w in suggest(_lrs(), flat[None]).warnings)


def test_a_loss_that_blew_up_in_the_warm_up_gets_no_suggestion(digits, monkeypatch):
    """adam from lr 1 on digits: the loss rose from 3 to thousands in its first step, which no stop
    watches, and stayed above 250; the 'minimum' after the warm-up (the warm-up itself the
    reference) gave a confident suggestion (61 over 100 steps to 1000, which trains digits to
    0.19), with no warning, and a plot whose y axis reached 1e28."""
    result = lr_range_test(vt.MLP(), digits, SMALL_SPACE, seeds=2, steps=50, min_lr=1.0, max_lr=1000.0,
                           optimizer="adam")
    s = result.suggestion()
    assert not s.ok and s.warnings[0].startswith("the loss blew up within the first 5 of 50 steps")
    assert "above stop_factor=4 x its first step's" in s.warnings[0] and s.warnings[0].endswith("(now 1).")
    axes = []
    monkeypatch.setattr("vmaptune.plots._save", lambda fig, path: axes.append(fig.axes[0]) or path)
    result.plot("unused.png")
    assert axes[0].get_ylim()[1] <= 4 * result.smoothed[:, 4].max() + 1e-6  # (4x its level over 5 steps)
    # a first minibatch of fewer than 16 rows (which every seed shares) may be a lucky one, far below the rest
    # (one row at batch_size=1: 0.2 where the rest read 2): judged against the level over the first 5 steps,
    # warned only against the first step's (sgd at batch_size=1 on diabetes was refused though nothing blew up)
    rose = np.linspace(2.0, 1.0, 200)
    rose[0] = 0.2
    lucky = suggest(_lrs(), rose[None], batch_size=1)
    assert lucky.ok and lucky.warnings[0].startswith("the loss may have blown up from its first steps")
    assert not suggest(_lrs(), rose[None], batch_size=16).ok
    blown = np.r_[np.full(6, 2.0), np.linspace(2.0, 100.0, 14), np.full(180, 90.0)]
    refused = suggest(_lrs(), blown[None], batch_size=1)
    assert not refused.ok and refused.warnings[0].startswith("the loss blew up within the first 20 of 200 steps")
    assert "above stop_factor=4 x its level over the first 5 steps (2)" in refused.warnings[0]
    assert suggest(_lrs(), blown[None], batch_size=1, stop_factor=50.0).ok


# -- bad input: errors name the argument, the value and the fix, before anything compiles ---------------
@pytest.mark.parametrize("kwargs, error, match", [
    (dict(min_lr=1.0, max_lr=0.1), ValueError, r"min_lr=1.0 must be < max_lr=0.1.*swap them"),
    (dict(min_lr=0.1, max_lr=0.1), ValueError, r"min_lr=0.1 must be < max_lr=0.1"),
    (dict(min_lr=0.0), ValueError, r"min_lr=0.0 must be > 0.*e.g. min_lr=1e-5"),
    (dict(min_lr=-1e-3), ValueError, r"min_lr=-0.001 must be > 0"),
    (dict(max_lr=float("inf")), ValueError, r"max_lr=inf must be finite"),
    (dict(max_lr="10"), TypeError, r"max_lr='10' must be a number"),
    (dict(steps=5), ValueError, r"steps=5 is too small: use steps >= 10"),
    (dict(steps=100.0), TypeError, r"steps=100.0 must be an integer"),
    (dict(seeds=0), ValueError, r"seeds=0 is too small: use seeds >= 1"),
    (dict(stop_factor=1.0), ValueError, r"stop_factor=1.0 must be > 1.*stop_factor=4.0"),
    (dict(beta=1.0), ValueError, r"beta=1.0 must be in \[0, 1\).*beta=0.98"),
    (dict(optimizer="sgdm"), ValueError, r"optimizer='sgdm'.*unknown; choose from \['sgd'"),
    (dict(optimizer=[]), ValueError, r"optimizer=\[\] must be one value or a non-empty list"),
    (dict(optimizer=["sgd", "sgd"]), ValueError, r"optimizer=\['sgd', 'sgd'\] lists a value twice"),
    (dict(batch_size=0), ValueError, r"batch_size=0: 0 is not an integer >= 1"),
    (dict(batch_size=[32, 100_000]), ValueError, r"100000 is larger than the \d+ training rows"),
    (dict(seed=1.5), TypeError, r"seed=1.5 must be an integer"),
    (dict(space={"momentum": 0.9}), TypeError, r"space=.* must be a vt.Space"),
    (dict(space=vt.Space(learning_rate=vt.Fixed(0.1))), ValueError,
     r"space has learning_rate=.*lr_range_test sets itself.*Drop 'learning_rate'"),
    (dict(space=vt.Space(optimizer=vt.Fixed("adam"))), ValueError, r"pass optimizer='sgd'.*instead"),
    (dict(space=vt.Space(momentum=vt.Uniform(0.5, 0.9))), ValueError,
     r"space has momentum=Uniform.*needs one value.*vt.Fixed\(value\)"),
    (dict(space=vt.Space(momentun=vt.Fixed(0.9))), ValueError, r"'momentun'.*Did you mean 'momentum'"),
])
def test_bad_input(digits, kwargs, error, match):
    traces = lr_finder.TRACE_COUNTS["range_test"]
    with pytest.raises(error, match=match):
        lr_range_test(vt.MLP(), digits, **kwargs)
    assert lr_finder.TRACE_COUNTS["range_test"] == traces


def test_bad_model_and_data(digits):
    with pytest.raises(TypeError, match="data must be a vt.Dataset"):
        lr_range_test(vt.MLP(), (digits.X_train, digits.y_train))
    with pytest.raises(TypeError, match="model must be a vt.MLP"):
        lr_range_test("mlp", digits)


def test_suggestion_is_a_plain_dataclass():
    s = LRSuggestion("sgd", 64, 1.0, 0.1, 0.05, 0.1, 0.03, 0.5, 0.8)
    assert s.ok and s.to_space_entry() == vt.LogUniform(0.03, 0.5) and s.to_space_entry(fixed=True) == vt.Fixed(0.1)


def test_range_test_starts_members_from_the_weights_tune_gives_them(digits):
    """The range test runs the engine's own initialisation and minibatch order: member id i starts
    from vt.tune's member i (bit for bit) and its first loss is taken on vt.tune's first batch."""
    import jax
    import jax.numpy as jnp
    import optax

    from helpers import assert_trees_equal
    from vmaptune import engine, streams
    from vmaptune.population import PopulationRun

    model, seed = vt.MLP(hidden=1, units=32), 7
    result = lr_range_test(model, digits, seeds=2, steps=10, seed=seed)
    space = vt.Space(learning_rate=vt.Fixed(1e-5), optimizer=vt.Choice(["sgd"]), batch_size=vt.Choice([64]))
    program = vt.build_program(model, space, digits, batch_size=64)
    hp = space.numeric(space.encode([{"learning_rate": 1e-5, "optimizer": "sgd", "batch_size": 64}] * 2))
    params, *_ = lr_finder.initial_members(program, hp, jnp.arange(2), streams.stream(seed, "members"))
    run = PopulationRun(program, hp, engine.data_arrays(digits), member_ids=np.arange(2), seed=seed, epochs=1)
    assert_trees_equal(params, run.state.members.params)
    first = jax.random.permutation(jax.random.fold_in(streams.stream(seed, "order"), 0), digits.n_train)[:64]
    for i in range(2):
        p = jax.tree.map(lambda v: v[i], run.state.members.params)
        out, _ = program.model.apply(p, {}, digits.X_train[first], {}, train=False)
        loss = optax.softmax_cross_entropy_with_integer_labels(out, digits.y_train[first]).mean()
        np.testing.assert_allclose(result.losses[i, 0], loss, rtol=1e-5)


def test_the_range_test_weighs_rows_as_the_search_does():
    """A dataset's sample_weight reaches the range test's loss: equal weights change nothing, other
    weights change the curve (in both batch layouts: one batch size, and several)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)  # (scaled once here: weighted scaling statistics would differ by themselves)
    make = lambda w: vt.Dataset.from_arrays(X, y, "classification", sample_weight=w,  # noqa: E731
                                            standardize=False)
    for sizes in (16, [8, 16]):
        run = lambda data: lr_range_test(vt.MLP(hidden=1, units=8), data, steps=30, seeds=1,  # noqa: E731
                                         batch_size=sizes).losses
        plain, ones, heavy = run(make(None)), run(make(np.ones(150))), run(make(np.where(y == 0, 5.0, 1.0)))
        np.testing.assert_array_equal(plain, ones)
        assert not np.allclose(plain, heavy, equal_nan=True)


def test_noise_in_the_first_steps_neither_stops_a_member_nor_takes_the_groups_suggestion():
    """50 rows in batches of 8: the first smoothed loss is one batch's, and the next batch's loss
    was 4x it, so a seed stopped at step 1 (at 1.4e-5, weights barely moved) and the group got no
    suggestion, with advice (lower min_lr) that could never help. The warm-up suggest skips now
    neither sets the best loss nor stops on a rise."""
    rng = np.random.default_rng(0)
    rng.normal(size=(12, 3))
    X = rng.normal(size=(50, 3)).astype(np.float32)
    data = vt.Dataset.from_arrays(X, (X @ np.array([1.0, 2, 3])).astype(np.float32), task="regression")
    result = lr_range_test(vt.MLP(), data, seeds=2, steps=40, batch_size=8, min_lr=1e-5)
    assert (result.stopped_at > 40 // 10).all()
    assert np.isfinite(result.suggestion().suggested)


def _regression(rows=200, seed=0):
    X = np.random.default_rng(seed).normal(size=(rows, 3)).astype(np.float32)
    return vt.Dataset.from_arrays(X, (X @ np.array([1.0, 2, 3])).astype(np.float32), task="regression")


def test_a_loss_below_zero_stops_on_its_rise_not_at_the_end_of_the_warm_up():
    """A loss that goes below 0 (a Gaussian NLL; here the squared error - 5): stop_factor x a
    negative best lies below the best, so every member stopped at the first step after the warm-up,
    and the group was told its loss blew up; stop_factor=inf (inf x a negative best = -inf) too."""
    shifted = vt.MLP(loss=lambda out, y: (out[:, 0] - y) ** 2 - 5.0)
    kw = dict(seeds=2, steps=60, batch_size=16, optimizer="adam", min_lr=1e-3, max_lr=0.1)
    result = lr_range_test(shifted, _regression(), **kw)
    assert np.nanmin(result.smoothed) < 0 and (result.stopped_at == 60).all()
    s = result.suggestion()
    assert s.ok and not any("blew up" in w or "hardly fell" in w for w in s.warnings)
    never = lr_range_test(shifted, _regression(), stop_factor=float("inf"), **{**kw, "max_lr": 10.0})
    assert (never.stopped_at == 60).all()  # (its loss stays finite: nothing stops it)


def test_the_stop_limit_is_smiths_rule_for_a_positive_loss_and_a_rise_on_its_scale_below_zero():
    def limit(best, first, factor=4.0):
        return float(lr_finder.stop_limit(np.float32(best), np.float32(first), np.float32(factor)))

    assert limit(0.3, 2.3) == float(np.float32(4.0) * np.float32(0.3))  # (bit for bit: suggestions unchanged)
    assert limit(-0.2, 1.0) == pytest.approx(-0.2 + 3 * 0.2)  # a rise of 3x |best|
    assert limit(0.0, 1.0) == pytest.approx(3 * 0.02 * 1.0)  # at 0: a rise of 3 x 2% of the fall from the start
    assert limit(0.001, 1.0) > limit(0.0, 1.0) > 0  # (no jump as the best crosses 0)
    assert limit(-0.2, 1.0, np.inf) == np.inf and limit(0.3, 2.3, np.inf) == np.inf
    assert limit(np.inf, 2.3) == np.inf  # the warm-up: never stops


def test_hardly_fell_and_the_plot_read_a_loss_below_zero(monkeypatch):
    lrs = _lrs()
    flat = np.full(200, -1.0) - np.linspace(0, 0.01, 200)
    assert any("hardly fell" in w for w in suggest(lrs, flat[None]).warnings)
    falling = np.linspace(-0.5, -2.0, 200)
    assert not any("hardly fell" in w for w in suggest(lrs, falling[None]).warnings)
    result = _result(lrs, np.stack([falling, falling - 0.1]))
    axes = []
    monkeypatch.setattr("vmaptune.plots._save", lambda fig, path: axes.append(fig.axes[0]) or path)
    result.plot("unused.png")
    bottom, top = axes[0].get_ylim()
    assert bottom < -2.1 and top > -0.5  # the whole curve shows (the axis began at 0, above it all)


def _result(lrs, smoothed, first=None):
    """A range test's result drawn from given curves (one group, no training)."""
    losses = smoothed.copy()
    if first is not None:
        losses[:, 0] = smoothed[:, 0] = first
    p = len(smoothed)
    return lr_finder.LRRangeTestResult(
        learning_rates=lrs, losses=losses, smoothed=smoothed, seed=np.arange(p), optimizer=np.array(["sgd"] * p),
        batch_size=np.full(p, 64), stopped_at=np.full(p, len(lrs)),
        suggestions=(suggest(lrs, smoothed, optimizer="sgd", batch_size=64),),
        settings={})


def test_the_suggested_range_stays_within_the_rates_tested(digits):
    """Squeezed against min_lr with max_lr close above it, the range widened below min_lr, to rates
    the test never tried (LogUniform(0.008, 0.08) for min_lr=0.05)."""
    result = lr_range_test(vt.MLP(), digits, SMALL_SPACE, steps=20, min_lr=0.05, max_lr=0.08)
    entry = result.suggestion()
    assert 0.05 <= entry.low < entry.high <= 0.08 + 1e-9


def test_a_flax_module_not_wrapped_is_told_how_to_wrap_it(digits):
    import flax.linen as nn

    with pytest.raises(TypeError, match=r"vt.Linen\(YourModule\) or vt.Nnx\(YourModule\)"):
        lr_range_test(nn.Dense(10), digits)
    with pytest.raises(ValueError, match=r"lr_range_test takes built-in optimizer names .* not an optax factory "
                                         r"of yours: test the nearest built-in kind \(e.g. 'adamw' for optax.adamw\)"):
        lr_range_test(vt.MLP(), digits, optimizer=lambda hp: None)


class _NeedsWidth(nn.Module):
    width: int  # (no default: the space must name it)

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(10)(nn.relu(nn.Dense(self.width)(x)))


def test_a_name_the_space_lacks_is_advised_as_a_fixed_value_in_the_range_test(digits):
    """The range test takes only vt.Fixed values: its errors for a loss's or a field's missing name
    advised 'a distribution to search' (which it then refused), and one began 'Otherwise' with no
    'Did you mean' before it. vt.tune's advice keeps the distribution."""
    def smoothed(outputs, targets, hp):
        return optax.softmax_cross_entropy_with_integer_labels(outputs, targets) * (1 - hp["label_smoothing"])

    with pytest.raises(ValueError, match=r"which the space does not name\. Add it, e.g. "
                                         r"label_smoothing=vt\.Fixed\(\.\.\.\)\.$"):
        lr_range_test(vt.MLP(loss=smoothed), digits, steps=10)
    with pytest.raises(ValueError, match=r"add them to the space \(width=vt\.Fixed\(\.\.\.\)\), or give them a "
                                         r"default"):
        lr_range_test(vt.Linen(_NeedsWidth), digits, steps=10)
    tune_space = vt.Space(learning_rate=vt.Fixed(0.05))
    with pytest.raises(ValueError, match=r"which the space does not name\. Add it, e.g. "
                                         r"label_smoothing=vt\.Fixed\(\.\.\.\) or a distribution to search\.$"):
        vt.build_program(vt.MLP(loss=smoothed), tune_space, digits)
    with pytest.raises(ValueError, match=r"\(width=vt\.Fixed\(\.\.\.\), or a distribution to search\), or give"):
        vt.build_program(vt.Linen(_NeedsWidth), tune_space, digits)


class _BatchNormed(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(16)(x)))
        return nn.Dense(10)(x)


def test_a_batchnorm_models_smaller_batch_curves_as_it_would_alone(digits):
    """A batch of 16 beside one of 128 steps on the larger's first 16 rows; BatchNorm's statistics
    would take the other 112 in, so each batch size runs in a program of its own: its curve is the
    one it has tested alone."""
    kw = dict(steps=20, seeds=2, optimizer=["sgd", "adam"])
    mixed = lr_range_test(vt.Linen(_BatchNormed), digits, batch_size=[16, 128], **kw)
    for size in (16, 128):
        alone = lr_range_test(vt.Linen(_BatchNormed), digits, batch_size=size, **kw)
        for got, want in ((mixed.losses, alone.losses), (mixed.smoothed, alone.smoothed),
                          (mixed.stopped_at, alone.stopped_at)):
            np.testing.assert_allclose(got[mixed.batch_size == size], want, rtol=1e-6)
        assert [(s.optimizer, s.suggested) for s in mixed.suggestions if s.batch_size == size] == \
            [(s.optimizer, s.suggested) for s in alone.suggestions]
