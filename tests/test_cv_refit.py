"""Cross-validation and repeats as population axes; refit and the test split; metrics."""

import dataclasses
import pickle
import warnings

import jax.numpy as jnp
import chex
import numpy as np
import pytest

import vmaptune as vt
from helpers import run_population
from vmaptune import engine
from vmaptune.cv_splits import resolve_cv
from vmaptune.replicas import cv_arrays

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), momentum=vt.Fixed(0.9))
MODEL = vt.MLP(hidden=1, units=16)
KW = dict(epochs=3, batch_size=64, progress=False)


def test_folds_are_disjoint_cover_the_pool_and_are_stratified(digits):
    fold = digits.folds(3, seed=0)
    _, y = digits.pool()
    assert len(fold) == digits.n_train + digits.X_val.shape[0]  # every pool row in exactly one fold
    assert set(np.unique(fold)) == {0, 1, 2}
    y = np.asarray(y)
    for c in range(10):
        counts = np.bincount(fold[y == c], minlength=3)
        assert counts.max() - counts.min() <= 1  # each class spread evenly
    np.testing.assert_array_equal(fold, digits.folds(3, seed=0))
    assert not np.array_equal(fold, digits.folds(3, seed=1))
    arrays, _ = cv_arrays(digits, 3, 0)
    train, val = np.asarray(arrays.train_rows), np.asarray(arrays.val_rows)
    for f in range(3):
        assert not set(train[f]) & set(val[f])
        assert np.all(fold[val[f]] == f) and np.all(fold[train[f]] != f)
    assert len(set(val.ravel())) >= len(fold) - 3  # at most a row per fold left out to equalise sizes


def _time_series_folds():
    from sklearn.model_selection import TimeSeriesSplit

    return TimeSeriesSplit(3)


@pytest.mark.filterwarnings("ignore:cv=TimeSeriesSplit.*test split was carved at random")
@pytest.mark.parametrize("name, cv, shared_order", [("digits", 3, True), ("digits", _time_series_folds, True),
                                                    ("digits", _time_series_folds, False),
                                                    ("diabetes", _time_series_folds, True)],
                         ids=["dealt", "growing_windows", "growing_windows_own_orders", "regression_growing_windows"])
def test_cv_equals_training_each_fold_separately(request, name, cv, shared_order):
    """Each fold trains as a run on its own rows alone would: on all of them (TimeSeriesSplit's
    growing windows: 359 to 1077 rows), standardised with their own statistics (inputs, and a
    regression's targets: nothing of the held-out rows reaches its training), with the members'
    shared minibatch order or each member's own. Scores are in the data set's units (a fold's
    neg_mse in its own units times its targets' variance)."""
    data = request.getfixturevalue(name)
    cv = cv if isinstance(cv, int) else cv()
    result = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), cv=cv, shared_order=shared_order, **KW)
    program = vt.build_program(MODEL, SPACE, data, batch_size=64, shared_order=shared_order)
    arrays, _ = cv_arrays(data, 3, 0, splits=resolve_cv(cv, data)[1])
    X, y = data.pool()
    order = np.argsort(data.pool_index)  # (a splitter sees the rows in the order they came: in time)
    windows = [order[train] for train, _ in cv.split(X[order])] if not isinstance(cv, int) else None
    sizes = arrays.fold_rows or (arrays.n_train,) * 3
    held = arrays.val_counts or (arrays.val_rows.shape[1],) * 3
    assert sum(held) == len(y) if windows is None else held == tuple(len(v) for _, v in cv.split(X))
    if windows is not None:
        assert sizes == tuple(len(train) for train in windows)  # every row of every window
    scaling, regression = arrays.scaling, data.task == "regression"
    hp = SPACE.numeric({k: jnp.asarray(v) for k, v in result.hp.items()})
    per_fold = []
    for f in range(3):
        tr, va = arrays.train_rows[f, :sizes[f]], arrays.val_rows[f, :held[f]]  # every row it holds out
        scale_x = (lambda a: (a - scaling.x_shift[f]) / scaling.x_scale[f])
        scale_y = (lambda a: (a - scaling.y_shift[f, 0]) / scaling.y_scale[f, 0]) if regression else (lambda a: a)
        if windows is not None:  # the fold's own statistics: its training rows standardised
            np.testing.assert_allclose(np.asarray(scale_x(X[windows[f]])).mean(0), 0.0, atol=1e-4)
            if regression:
                assert abs(float(np.asarray(scale_y(y[windows[f]])).std()) - 1.0) < 1e-4
        fold_data = engine.DataArrays(scale_x(X[tr]), scale_y(y[tr]), scale_x(X[va]), scale_y(y[va]))
        scores = run_population(program, hp, fold_data, np.arange(2), epochs=3).curves["val_score"]
        per_fold.append(scores * float(scaling.y_scale[f, 0]) ** 2 if regression else scores)
    per_fold = np.stack(per_fold, axis=1)  # (member, fold, epoch)
    tolerance = dict(rtol=1e-4, atol=1e-5) if regression else dict(atol=1e-5)
    np.testing.assert_allclose(result.curves["val_score"], per_fold.mean(axis=1), **tolerance)
    best = result.members["best_epoch"].to_numpy() - 1
    np.testing.assert_allclose(result.curves["split_scores"], per_fold[np.arange(2), :, best], **tolerance)
    np.testing.assert_allclose(result.curves["split_final_scores"], per_fold[:, :, -1], **tolerance)
    np.testing.assert_allclose(result.members["score_std"], per_fold[np.arange(2), :, best].std(axis=1), **tolerance)


def test_one_fold_of_your_own_is_a_hold_out_split_trained_as_alone(digits):
    """cv=[(train, validation)] (PredefinedSplit's, ShuffleSplit(1)'s): a run on those rows alone,
    standardised by its training rows, scored on every held-out row; no spread over one fold."""
    X, y = digits.pool()
    rows = np.random.default_rng(0).permutation(len(y))
    cv = [(rows[:1000], rows[1000:])]
    result = vt.tune(MODEL, SPACE, digits, vt.RandomSearch(population=2), cv=cv, refit=1, **KW)
    arrays, _ = cv_arrays(digits, 1, 0, splits=resolve_cv(cv, digits)[1])
    scaling = arrays.scaling
    scale = (lambda a: (a - scaling.x_shift[0]) / scaling.x_scale[0])
    train, val = np.asarray(arrays.train_rows[0]), np.asarray(arrays.val_rows[0])
    assert sorted(train) == sorted(rows[:1000]) and sorted(val) == sorted(rows[1000:])  # every row, once
    alone = engine.DataArrays(scale(X[train]), y[train], scale(X[val]), y[val])
    program = vt.build_program(MODEL, SPACE, digits, batch_size=64)
    hp = SPACE.numeric({k: jnp.asarray(v) for k, v in result.hp.items()})
    scores = run_population(program, hp, alone, np.arange(2), epochs=3).curves["val_score"]
    np.testing.assert_allclose(result.curves["val_score"], scores, atol=1e-5)
    assert (result.members["score_std"] == 0).all() and np.isfinite(result.members["test_score"]).sum() == 1


def test_seeds_train_each_setting_several_times(digits):
    result = vt.tune(MODEL, SPACE, digits, vt.RandomSearch(population=3), seeds=3, **KW)
    assert len(result) == 3 and result.curves["split_scores"].shape == (3, 3)
    splits = result.curves["split_scores"]
    assert np.all(splits.std(axis=1) > 0)  # different initialisations really differ
    np.testing.assert_allclose(result.members["score"], splits.mean(axis=1), rtol=1e-6)
    assert "score_std" in result.summary(3)


def test_refit_scores_the_test_split_which_never_changes_the_selection(digits):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1))
    result = vt.tune(MODEL, space, digits, vt.RandomSearch(population=6), refit=2, **KW)
    tested = result.members["test_score"].notna()
    assert tested.sum() == 2 and result.members.loc[tested].index.tolist() == sorted(result.ranking()[:2].tolist())
    assert 0.5 < result.test_score <= 1.0
    assert "test accuracy of the best setting" in result.summary(3)
    # corrupt only the test labels: selection is identical, only the test score moves
    rng = np.random.default_rng(0)
    corrupted = dataclasses.replace(digits, y_test=jnp.asarray(rng.permutation(np.asarray(digits.y_test))))
    again = vt.tune(MODEL, space, corrupted, vt.RandomSearch(population=6), refit=2, **KW)
    assert again.best_params == result.best_params
    np.testing.assert_array_equal(again.members["score"], result.members["score"])
    assert again.test_score < 0.3


def test_refit_true_is_one_refit_as_in_scikit_learn(digits):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1))
    one = vt.tune(MODEL, space, digits, vt.RandomSearch(population=3), refit=True, **KW)
    assert one.members["test_score"].notna().sum() == 1
    assert one.test_score == vt.tune(MODEL, space, digits, vt.RandomSearch(population=3), refit=1, **KW).test_score
    none = vt.tune(MODEL, space, digits, vt.RandomSearch(population=3), refit=False, **KW)
    assert "test_score" not in none.members


def test_a_refit_member_trains_as_alone_whatever_is_refit_beside_it(digits):
    """Each refit member follows its learning-rate schedule over the search's epochs for its own
    best epochs: refit=1 and refit=3 give the best setting the same weights bit for bit (its
    schedule was stretched to the longest budget refit with it)."""
    space = vt.Space(learning_rate=vt.LogUniform(3e-3, 1.0), schedule=vt.Fixed("cosine"), optimizer=vt.Fixed("sgd"))
    kwargs = dict(epochs=8, batch_size=64, progress=False, seed=1, bucketing=False)
    one = vt.tune(MODEL, space, digits, vt.RandomSearch(population=6), refit=1, **kwargs)
    three = vt.tune(MODEL, space, digits, vt.RandomSearch(population=6), refit=3, **kwargs)
    epochs = three.members["best_epoch"].to_numpy()[three.ranking()[:3]]
    assert one.best_index == three.best_index and epochs.max() > epochs[0]  # (the case: a longer refit beside it)
    assert one.test_score == three.test_score
    row = three.to_dataframe().iloc[three.best_index]  # a row of the table names its model too
    assert three.model(row) is three.model(three.best_index)
    chex.assert_trees_all_equal(one.best_model().variables, three.best_model().variables)


def test_user_defined_and_negated_metrics(diabetes):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-2))
    median_ae = vt.Metric("neg_median_ae", "regression", lambda out, y: -jnp.median(jnp.abs(out[:, 0] - y)))
    result = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric=median_ae, **KW)
    # your metric sees outputs and targets in the targets' own units (diabetes: std 77), not standardised
    assert result.metric == "neg_median_ae" and -150 < result.best_score < -10
    mine = vt.Metric("my_neg_mae", "regression", lambda out, y: -jnp.mean(jnp.abs(out[:, 0] - y)))
    own = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric=mine, refit=1, **KW)
    built_in = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric="neg_mae", refit=1, **KW)
    np.testing.assert_allclose(own.members["score"], built_in.members["score"] * diabetes.y_std, rtol=1e-4)
    model = own.best_model()
    assert model.evaluate(*diabetes.raw("test"), metric=mine) == pytest.approx(own.test_score, rel=1e-4)
    assert model.evaluate(*diabetes.raw("test"), metric=mine) == pytest.approx(
        model.evaluate(*diabetes.raw("test"), metric="neg_mae") * diabetes.y_std, rel=1e-4)
    # evaluate without a metric scores as the search scored (its test_score): yours too, in the search's
    # process; a model saved and loaded (or pickled) asks for yours, a function it cannot keep
    assert built_in.best_model().evaluate(*diabetes.raw("test")) == pytest.approx(built_in.test_score, rel=1e-4)
    assert model.evaluate(*diabetes.raw("test")) == pytest.approx(own.test_score, rel=1e-4)
    with pytest.raises(ValueError, match=r"searched with your metric 'my_neg_mae', which a saved or loaded model "
                                         r"does not keep"):
        pickle.loads(pickle.dumps(model)).evaluate(*diabetes.raw("test"))
    # a metric subtracting (n, 1) outputs from (n,) targets compares every output with every target
    unpaired = vt.Metric("unpaired", "regression", lambda out, y: -jnp.mean(jnp.abs(out - y)))
    with pytest.warns(UserWarning, match=r"vt.Metric\('unpaired'\) scores outputs in the right order and reversed "
                                         r"alike.*use outputs\[:, 0\]"):
        vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=2), metric=unpaired, **KW)
    mse = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric="mse", **KW)
    neg = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric="neg_mse", **KW)
    np.testing.assert_allclose(mse.members["score"], neg.members["score"], rtol=1e-6)  # mse is negated


def test_a_metric_in_units_that_float32_rounds_is_warned_about_before_anything_compiles():
    """Timestamps of 1.7e9 s spread 50 s: unscaled in float32 inside the program, every output and
    target is rounded to a multiple of 128 s, and a MAE of yours was scored in steps of 1.6 s (ties,
    and a test_score 20 % off the same MAE of model.predict) without a word."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    seconds = 50 * X[:, 0] + rng.normal(size=200)
    mae = vt.Metric("mae_s", "regression", lambda o, t: jnp.mean(jnp.abs(o[:, 0] - t)), greater_is_better=False)
    space = vt.Space(learning_rate=vt.Fixed(1e-2))
    stamps = vt.Dataset.from_arrays(X, 1.7e9 + seconds, "regression")
    with pytest.warns(UserWarning, match=r"vt.Metric\('mae_s'\) scores outputs and targets in the targets' own "
                                         r"units, computed in float32.*mean 1\d{9} and std 4\d\.\d+, where "
                                         r"float32's values are 128 apart \(2\.\d of a standard deviation\).*"
                                         r"y - y.mean\(\).*add it back to the predictions"):
        vt.build_program(MODEL, space, stamps, batch_size=32, metric=mae)
    # several targets: the one rounded is named; the offset taken away, or a built-in metric, is quiet
    both = vt.Metric("mae_s", "regression", lambda o, t: jnp.mean(jnp.abs(o - t)), greater_is_better=False)
    two = vt.Dataset.from_arrays(X, np.c_[seconds, 5.2e6 + seconds], "regression")
    with pytest.warns(UserWarning, match=r"target 1's values have mean 5\d{6}\.\d+ and std 4\d\.\d+, where float32's values are 0.5 apart"):
        vt.build_program(MODEL, space, two, batch_size=32, metric=both)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.build_program(MODEL, space, vt.Dataset.from_arrays(X, seconds, "regression"), batch_size=32, metric=mae)
        vt.build_program(MODEL, space, stamps, batch_size=32, metric="neg_mae")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cv=1), r"cv=1: use an integer >= 2"),
        (dict(seeds=0), r"seeds=0: use an integer >= 1"),
        (dict(refit=-1), r"refit=-1"),
        (dict(metric=vt.Metric("m", "regression", lambda o, y: 0.0)), "metric 'm' is for regression"),
    ],
)
def test_bad_replica_settings(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        vt.tune(MODEL, SPACE, digits, vt.RandomSearch(population=2), **KW, **kwargs)


def test_cv_needs_enough_rows_of_every_class():
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.r_[np.zeros(37, int), np.ones(3, int)]  # after the test split, 2 rows of class 1 remain
    data = vt.Dataset.from_arrays(X, y, "classification", val_fraction=0.25, test_fraction=0.25)
    with pytest.raises(ValueError, match=r"cv=3 needs at least 3 rows of every class.*use cv <= 2"):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), epochs=1, batch_size=4, cv=3, progress=False)


# -- early stopping on rows held out of each fold's training ---------------------------------------------
STOPPING = vt.EarlyStopping(patience=2, validation_fraction=0.25)


def test_stop_rows_are_held_out_of_each_folds_training_and_scored_rows(digits):
    plain, _ = cv_arrays(digits, 3, 0)
    arrays, _ = cv_arrays(digits, 3, 0, stop_fraction=0.25)
    n = plain.train_rows.shape[1]
    assert arrays.stop_rows.shape == (3, round(0.25 * n)) and arrays.n_train == n - round(0.25 * n)
    for f in range(3):
        train, stop, val = (set(np.asarray(a[f]).tolist()) for a in (arrays.train_rows, arrays.stop_rows,
                                                                      arrays.val_rows))
        assert not train & stop and not stop & val and not train & val
        assert train | stop == set(np.asarray(plain.train_rows[f]).tolist())  # the same rows, split in two
    np.testing.assert_array_equal(arrays.val_rows, plain.val_rows)


def _stopping_run(digits, arrays):
    program = vt.build_program(MODEL, SPACE, digits, batch_size=64, early_stopping=STOPPING)
    hp = SPACE.numeric(SPACE.encode([{"learning_rate": r, "momentum": 0.9} for r in (0.01, 0.03, 0.1)] * 2))
    return run_population(program, hp, arrays, np.tile(np.arange(3), 2), epochs=12, fold=np.repeat([0, 1], 3))


def test_the_rows_a_fold_is_scored_on_never_choose_its_epoch(digits):
    """With stop rows, scrambling the labels a fold is scored on changes its scores, and nothing
    else: the same epochs stopped at and chosen, the same training. Without them it would."""
    arrays, _ = cv_arrays(digits, 2, 0, stop_fraction=0.25)
    scrambled = arrays.replace(y_val=jnp.asarray(np.random.default_rng(0).permutation(np.asarray(arrays.y_val))))
    clean, noisy = _stopping_run(digits, arrays), _stopping_run(digits, scrambled)
    for key in ("stopped", "best_epoch"):
        np.testing.assert_array_equal(clean.status()[key], noisy.status()[key])
    assert clean.status()["stopped"].any()  # the rule did act
    np.testing.assert_array_equal(clean.curves["train_loss"], noisy.curves["train_loss"])
    assert not np.allclose(clean.curves["val_score"], noisy.curves["val_score"], equal_nan=True)
    # each member's score is its fold's score at the epoch its stop rows chose
    status = clean.status()
    assert (status["best_epoch"] >= 1).all()  # every member scored at least once
    at_best = clean.curves["val_score"][np.arange(6), status["best_epoch"] - 1]
    np.testing.assert_allclose(status["best_score"], at_best)
    # watching the scored rows instead, the scrambled labels move the epochs
    watched = [_stopping_run(digits, a.replace(stop_rows=None)).status()["best_epoch"] for a in (arrays, scrambled)]
    assert not np.array_equal(*watched)


def test_with_stop_rows_each_split_is_scored_at_its_own_epoch():
    """Replicas.aggregate with stop_split: a member's score is the mean of its splits' scores at
    their own best epochs (their status), not the peak of the mean curve; its epoch their mean."""
    from vmaptune.replicas import Replicas

    replicas = Replicas(population=2, folds=2, stop_split=True)  # slot = fold * 2 + member
    curves = {k: np.zeros((4, 6), np.float32) for k in ("train_loss", "val_loss")}
    curves["val_score"] = np.tile(np.linspace(0.1, 0.6, 6, dtype=np.float32), (4, 1))  # peaks at the end
    final = {"diverged": np.zeros(4, bool), "stopped": np.ones(4, bool),
             "best_score": np.array([0.3, 0.5, 0.4, 0.6], np.float32), "best_epoch": np.array([2, 3, 5, 0])}
    out, mean = replicas.aggregate(final, curves)
    np.testing.assert_allclose(mean["split_scores"][0], [0.3, 0.4])
    np.testing.assert_allclose(out["best_score"], [0.35, np.nan])  # member 1's second split never scored
    assert out["best_epoch"].tolist() == [4, 0]  # (2 + 5) / 2 rounded; none without a score
    plain, _ = Replicas(population=2, folds=2).aggregate(final, curves)
    np.testing.assert_allclose(plain["best_score"], [0.6, 0.6])  # the mean curve's peak, without stop rows


def test_validation_fraction_is_recorded_in_the_settings(digits):
    result = vt.tune(MODEL, SPACE, digits, vt.RandomSearch(population=2), cv=2, early_stopping=STOPPING,
                     **{**KW, "epochs": 4})
    assert "validation_fraction=0.25" in result.settings["early_stopping"]
    assert np.isfinite(result.members["best_score"]).all()


def test_validation_fraction_needs_cv_and_a_held_out_monitor(digits):
    with pytest.raises(ValueError, match=r"validation_fraction.*needs cv=.*Add cv=3, or drop validation_fraction"):
        vt.tune(MODEL, SPACE, digits, vt.RandomSearch(population=2), early_stopping=STOPPING, **KW)
    with pytest.raises(ValueError, match=r"validation_fraction=1.5\): give a share .* in \(0, 1\)"):
        vt.EarlyStopping(validation_fraction=1.5)
    with pytest.raises(ValueError, match=r"monitor='train_loss', validation_fraction=0.1\): the training loss reads "
                                         r"no held-out rows"):
        vt.EarlyStopping(monitor="train_loss", validation_fraction=0.1)
    # a fold trains on fewer rows than the training split, and fewer again without its stop rows
    with pytest.raises(ValueError, match=r"batch_size=1000 is larger than the \d+ rows the smallest of the cv=2 folds trains "
                                         r"on \(after early stopping's validation_fraction=0.25\)"):
        vt.tune(MODEL, SPACE, digits, vt.RandomSearch(population=2), cv=2, early_stopping=STOPPING,
                **{**KW, "batch_size": 1000})


def test_a_batch_is_checked_against_the_rows_a_fold_trains_on_not_the_training_split():
    """Under cv a fold trains on part of training + validation: iris's 90 + 30 rows in 5 folds
    train on 96 each, so a batch of 96 fits (though the training split has 90) and 97 does not."""
    iris = vt.load_dataset("iris")
    result = vt.tune(MODEL, SPACE, iris, vt.RandomSearch(population=2), cv=5, **{**KW, "epochs": 1, "batch_size": 96})
    assert (result.members["epochs_trained"] == 1).all()
    with pytest.raises(ValueError, match=r"batch_size=97 is larger than the 96 rows the smallest of the cv=5 folds "
                                         r"trains on; use batch_size <= 96"):
        vt.tune(MODEL, SPACE, iris, vt.RandomSearch(population=2), cv=5, **{**KW, "batch_size": 97})
    searched = SPACE.replace(batch_size=vt.Choice([16, 97]))
    with pytest.raises(ValueError, match=r"allows 97, more than the 96 rows the smallest of the cv=5 folds trains on; "
                                         r"keep batch sizes <= 96"):
        vt.tune(MODEL, searched, iris, vt.RandomSearch(population=2), cv=5, **KW)


def test_classification_metrics_equal_scikit_learns():
    """balanced_accuracy, f1_macro, roc_auc and roc_auc_ovr (jnp, inside the program) on random
    logits, ties and missing classes included, against sklearn.metrics."""
    import warnings

    import jax
    from sklearn import metrics

    from vmaptune.metrics import METRICS

    rng = np.random.default_rng(0)
    jitted = {name: jax.jit(METRICS[name].score) for name in METRICS}  # (as in the program)
    for trial in range(60):
        k, n = (2, 3, 5)[trial % 3], int(rng.choice([7, 24, 59]))  # (few shapes: each new one compiles every op)
        y = rng.integers(0, k, n)
        out = rng.normal(size=(n, k)).astype(np.float32)
        if trial % 4 == 0:
            out = np.round(out)  # ties
        pred, probabilities = out.argmax(1), np.asarray(jax.nn.softmax(jnp.asarray(out), axis=-1))
        score = lambda name: float(jitted[name](jnp.asarray(out), jnp.asarray(y)))  # noqa: E731
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (scikit-learn warns of classes never predicted)
            assert score("balanced_accuracy") == pytest.approx(metrics.balanced_accuracy_score(y, pred), abs=1e-6)
            assert score("f1_macro") == pytest.approx(metrics.f1_score(y, pred, average="macro"), abs=1e-6)
        if k == 2 and len(np.unique(y)) == 2:
            assert score("roc_auc") == pytest.approx(metrics.roc_auc_score(y, probabilities[:, 1]), abs=1e-6)
        if k > 2 and len(np.unique(y)) == k:
            assert score("roc_auc_ovr") == pytest.approx(metrics.roc_auc_score(y, probabilities, multi_class="ovr"),
                                                         abs=1e-6)
    with pytest.raises(ValueError, match=r"'roc_auc' scores two classes, but the model has 3 outputs; .*'roc_auc_ovr'"):
        METRICS["roc_auc"].score(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32))


def test_r2_of_targets_that_do_not_vary_is_scikit_learns_finite_value_not_minus_1e12():
    """A fold of one row, or of one target value (LeaveOneOut, GroupKFold), leaves r2 undefined:
    1 - residual / ~0 read about -1e12 and swamped every candidate's mean over folds."""
    from sklearn.metrics import r2_score

    from vmaptune.metrics import METRICS

    r2 = lambda out, y: float(METRICS["r2"].score(jnp.asarray(out, jnp.float32)[:, None],  # noqa: E731
                                                   jnp.asarray(y, jnp.float32)))
    constant, predicted = np.full(4, 1.5), np.array([1.4, 1.6, 1.5, 1.2])
    assert r2(predicted, constant) == r2_score(constant, predicted, force_finite=True) == 0.0
    assert r2(constant, constant) == r2_score(constant, constant, force_finite=True) == 1.0
    assert r2([0.3], [1.0]) == 0.0  # (one row: scikit-learn says NaN and warns; 0.0 keeps the fold mean finite)
    rng = np.random.default_rng(0)
    y, out = rng.normal(size=30), rng.normal(size=30)
    assert r2(out, y) == pytest.approx(r2_score(y, out), abs=1e-5)


@pytest.mark.filterwarnings("ignore:vt.Metric\\('mean_step'\\) scores outputs in the right order")  # (reads no output)
@pytest.mark.filterwarnings("ignore:cv=TimeSeriesSplit.*test split was carved at random")
def test_held_out_rows_reach_your_metric_in_their_order(diabetes):
    """A metric of yours may read the held-out rows in order (differences over time): each fold's
    come as the splitter gave them, in the targets' own units."""
    from sklearn.model_selection import TimeSeriesSplit

    steps = vt.Metric("mean_step", "regression", lambda out, y: jnp.mean(jnp.abs(jnp.diff(y))))
    result = vt.tune(MODEL, SPACE, diabetes, vt.RandomSearch(population=2), cv=TimeSeriesSplit(3), metric=steps,
                     evaluate_every=1, **KW)
    y_pool = np.concatenate([diabetes.raw("train")[1], diabetes.raw("val")[1]])[diabetes.pool_order()]  # (X's order)
    expected = [np.mean(np.abs(np.diff(y_pool[val]))) for _, val in TimeSeriesSplit(3).split(y_pool)]
    np.testing.assert_allclose(result.curves["split_scores"], np.tile(expected, (2, 1)), rtol=1e-4)


def test_a_splitter_sees_the_rows_in_the_order_they_came_so_time_series_folds_keep_time():
    """The validation split is carved from between X's rows; a splitter was called on the pool
    (train rows, then validation rows), so TimeSeriesSplit's last fold trained on the series' end
    and was scored on 20 rows of its past. A test split carved at random is said; shuffle=False
    carves validation and test as the series' last rows."""
    from sklearn.model_selection import TimeSeriesSplit

    time = np.arange(100.0)
    X = np.random.default_rng(0).normal(size=(100, 3))
    data = vt.Dataset.from_arrays(X, time, "regression")
    with pytest.warns(UserWarning, match=r"this data set's test split was carved at random: its rows lie between "
                                         r"the training rows in time\. .*\.from_arrays\(\.\.\., shuffle=False\)"):
        splits = resolve_cv(TimeSeriesSplit(3), data)[1]
    for train, val in splits.pairs:
        assert data.pool_index[val].min() > data.pool_index[train].max()  # scored on the future only
    np.testing.assert_allclose(np.sort(data.pool_index), np.sort(np.r_[data.raw("train")[1], data.raw("val")[1]]),
                               atol=1e-4)  # (the target is the row's time: pool_index names each row's place)
    in_order = vt.Dataset.from_arrays(X, time, "regression", shuffle=False)
    for split, rows in (("train", time[:60]), ("val", time[60:80]), ("test", time[80:])):
        np.testing.assert_allclose(in_order.raw(split)[1], rows, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (nothing carved at random: no warning)
        splits = resolve_cv(TimeSeriesSplit(3), in_order)[1]
    assert [len(t) for t, _ in splits.pairs] == [20, 40, 60]


def test_groups_keep_each_group_out_of_its_folds_training():
    """vt.tune(cv=GroupKFold(4), groups=...) with groups per row of X: folds over the pool's rows
    computed from X's rows (as the README said to) meant other rows, and every fold trained on
    patients it was scored on. groups= goes through each pool row's place in X."""
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 10)  # 12 patients of 10 rows
    X, y = rng.normal(size=(120, 3)) + groups[:, None], np.arange(120) % 2
    data = vt.Dataset.from_arrays(X, y, "classification", test=(rng.normal(size=(30, 3)), np.arange(30) % 2))
    result = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), cv=GroupKFold(4), groups=groups, **KW)
    assert np.asarray(result.curves["split_scores"]).shape == (2, 4)
    splits = resolve_cv(GroupKFold(4), data, groups)[1]
    pool_groups = groups[data.pool_index]
    for train, val in splits.pairs:
        assert not set(pool_groups[train]) & set(pool_groups[val])
        pool_X = np.concatenate([data.raw("train")[0], data.raw("val")[0]])
        np.testing.assert_allclose(pool_X[val], X[data.pool_index[val]], rtol=1e-5, atol=1e-5)  # (rows of X)
    assert sorted(np.concatenate([v for _, v in splits.pairs]).tolist()) == list(range(len(pool_groups)))


def test_groups_shared_by_a_carved_test_split_and_the_folds_are_warned_of():
    """The folds keep each group apart, but a test split carved at random held rows of 23 of 23
    test groups that the folds and the refit train on: test_score read 1.0 where the grouped cv
    score was 0.72, without a word. Without a refit (no test_score), or with a test split given
    apart, nothing is said."""
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 5)
    X, y = rng.normal(size=(150, 3)), groups % 2
    carved = vt.Dataset.from_arrays(X, y, "classification", test_fraction=0.2)
    search = (MODEL, SPACE, carved, vt.RandomSearch(population=2))
    with pytest.warns(UserWarning, match=r"groups=: \d+ of the groups in the test split carved from X also have rows "
                                         r"the folds train on .* Carve the test split by group \(GroupShuffleSplit\)"):
        vt.tune(*search, cv=GroupKFold(3), groups=groups, refit=1, **KW)
    apart = vt.Dataset.from_arrays(X[groups < 24], y[groups < 24], "classification",
                                   test=(X[groups >= 24], y[groups >= 24]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.tune(*search, cv=GroupKFold(3), groups=groups, **KW)  # (refit=0: no test score)
        vt.tune(MODEL, SPACE, apart, vt.RandomSearch(population=2), cv=GroupKFold(3), groups=groups[groups < 24],
                refit=1, **KW)


@pytest.mark.filterwarnings("ignore:cv=TimeSeriesSplit.*test split was carved at random")
def test_early_stopping_holds_out_each_folds_own_share(digits):
    """EarlyStopping(validation_fraction=...) takes that share of each fold's own training rows out of
    its training (a fold's training does not depend on the other folds' sizes); it watches as many
    of them in every fold as the smallest fold holds out."""
    from sklearn.model_selection import TimeSeriesSplit

    splits = resolve_cv(TimeSeriesSplit(3), digits)[1]
    arrays, _ = cv_arrays(digits, 3, 0, stop_fraction=0.1, splits=splits)
    windows = [len(train) for train, _ in splits.pairs]
    held = [round(0.1 * n) for n in windows]
    assert arrays.fold_rows == tuple(n - k for n, k in zip(windows, held))
    assert np.asarray(arrays.stop_rows).shape == (3, min(held))
    for f, (train, _) in enumerate(splits.pairs):  # watched rows are the fold's own, never trained on
        trained = set(np.asarray(arrays.train_rows)[f, :arrays.fold_rows[f]].tolist())
        assert set(np.asarray(arrays.stop_rows)[f].tolist()) <= set(train.tolist()) - trained
        assert len(trained) == arrays.fold_rows[f]


def test_a_settings_training_curve_runs_as_long_as_its_longest_split(diabetes):
    """A fold that stopped early stands at its last training loss, as its validation score does:
    the mean training curve and final_train_loss follow epochs_trained (they ended with the first
    fold to stop, while status and the validation curve followed the last)."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1))
    result = vt.tune(vt.MLP(), space, diabetes, vt.RandomSearch(population=8), epochs=12, cv=3, batch_size=32,
                     early_stopping=vt.EarlyStopping(patience=2), progress=False, seed=0)
    members, curves = result.members, result.curves["train_loss"]
    trained = members["status"] != "diverged"
    assert (members.loc[trained, "epochs_trained"] < 12).any()  # early stopping fired
    finite = np.isfinite(curves).sum(axis=1)
    np.testing.assert_array_equal(finite[trained], members.loc[trained, "epochs_trained"])
    last = curves[np.arange(len(curves)), np.maximum(members["epochs_trained"] - 1, 0)]
    np.testing.assert_allclose(members.loc[trained, "final_train_loss"], last[trained], rtol=1e-6)


def test_a_fold_that_blew_up_to_a_huge_finite_score_reads_as_a_spread_without_an_overflow():
    """Two folds of one setting scored -1e26 and -3e26 (a regression that blew up without going
    non-finite): the spread is 1e26, computed without numpy's bare 'overflow encountered'."""
    from vmaptune.replicas import Replicas

    replicas = Replicas(population=1, folds=2)
    curves = {"val_score": np.asarray([[-1e26], [-3e26]], np.float32), "train_loss": np.ones((2, 1), np.float32)}
    final = {"diverged": np.zeros(2, bool), "stopped": np.zeros(2, bool),
             "best_score": curves["val_score"][:, 0], "best_epoch": np.ones(2, np.int32)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status, _ = replicas.aggregate(final, curves)
    np.testing.assert_allclose(status["score_std"], [1e26], rtol=1e-6)


def test_a_splitter_that_shuffles_without_a_random_state_is_named_before_it_costs_a_resume(digits):
    """Its folds differ at every call: the same seed gave other scores, and a run_dir of it was
    refused on resume with 'a different settings.cv' though the call was the same."""
    from sklearn.model_selection import KFold, StratifiedKFold

    with pytest.warns(UserWarning, match=r"cv=StratifiedKFold\(.*\) gives other folds at every call .* cannot be "
                                         r"resumed .* StratifiedKFold\(\.\.\., random_state=0\)"):
        resolve_cv(StratifiedKFold(3, shuffle=True), digits)
    held = np.random.RandomState(0)  # seeded by a RandomState of the user's: told by its settings, never split twice
    splitter = StratifiedKFold(3, shuffle=True, random_state=held)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_cv(StratifiedKFold(3, shuffle=True, random_state=0), digits)
        resolve_cv(KFold(3), digits)
        resolve_cv(splitter, digits)
    # one split() call: the folds a user's RandomState gives next are as without vmaptune
    calls = []

    class Counting(KFold):
        def split(self, X, y=None, groups=None):
            calls.append(1)
            return super().split(X, y, groups)

    resolve_cv(Counting(3), digits)
    assert len(calls) == 1


def test_a_data_set_whose_splits_were_replaced_is_split_in_the_pools_order():
    """dataclasses.replace(data, X_train=...) kept the old pool_index: a splitter crashed on
    positions past the pool, or left the new rows out of every fold."""
    from sklearn.model_selection import KFold

    data = vt.load_dataset("iris")
    fewer = dataclasses.replace(data, X_train=data.X_train[:40], y_train=data.y_train[:40])
    splits = resolve_cv(KFold(3), fewer)[1]
    n_pool = 40 + len(data.y_val)
    assert sorted(np.concatenate([v for _, v in splits.pairs]).tolist()) == list(range(n_pool))
    with pytest.raises(ValueError, match=r"its splits were replaced since"):
        resolve_cv(KFold(3), fewer, groups=np.arange(150) % 5)


def test_your_optimizer_reading_a_conditional_name_is_told_it_gets_the_drawn_value():
    import optax

    space = vt.Space(n_hidden=vt.IntUniform(1, 2), momentum=vt.Uniform(0.0, 0.9),
                     learning_rate=vt.LogUniform(1e-3, 1e-1)).only_when("momentum", n_hidden=2)
    with pytest.warns(UserWarning, match=r"space's \['momentum'\] are read by your optimizer function, and "
                                         r"Space.only_when says some members do not use them"):
        vt.build_program(vt.MLP(units=8), space, vt.load_dataset("iris"),
                         optimizer=lambda hp: optax.sgd(hp["learning_rate"], hp["momentum"]))


def test_a_run_whose_splitter_folds_changed_order_says_how_to_resume_it(digits, tmp_path):
    """A splitter's folds follow the rows' order given to from_arrays now; a run started when it
    split data.pool()'s order was refused as if its inputs had changed. The refusal gives the
    folds it was started with, and they resume it."""
    from sklearn.model_selection import KFold

    splitter = KFold(3, shuffle=True, random_state=0)
    before = list(splitter.split(np.asarray(digits.pool()[0])))  # (the folds as vmaptune made them before)
    args = (MODEL, SPACE, digits, vt.RandomSearch(population=2, rounds=2))
    kw = dict(KW, epochs=2, chunk_epochs=1, run_dir=str(tmp_path / "r"))
    with pytest.warns(UserWarning, match="the time budget is spent"):
        vt.tune(*args, cv=before, time_budget=1e-9, **kw)
    with pytest.raises(ValueError, match=r"Given folds differ where the splitter, its settings or groups= differ\. "
                                         r"Or the run was started before .*where validation was carved, it split them "
                                         r"in data.pool\(\)'s order.*cv=list\(splitter.split\(np.asarray\(data.pool"
                                         r"\(\)\[0\]\)\)\)"):
        vt.tune(*args, cv=splitter, resume=True, **kw)
    resumed = vt.tune(*args, cv=list(splitter.split(np.asarray(digits.pool()[0]))), resume=True, **kw)
    assert len(resumed) == 4


def test_dealt_folds_over_a_series_carved_in_order_are_warned_about():
    data = vt.Dataset.from_arrays(np.random.default_rng(0).normal(size=(60, 3)), np.arange(60.0), "regression",
                                  shuffle=False)
    with pytest.warns(UserWarning, match=r"cv=3 deals shuffled folds, but this data set was carved in order "
                                         r"\(shuffle=False, a time series\?\).*cv=TimeSeriesSplit\(3\)"):
        resolve_cv(3, data)


def test_groups_in_another_order_than_x_are_warned_about():
    """A groups Series whose index holds X's rows in another order paired by position: 50 of 60
    rows got another patient, and GroupKFold's folds shared patients, without a word."""
    import pandas as pd
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)}, index=np.arange(200, 260))
    data = vt.Dataset.from_arrays(X, np.arange(60) % 2, "classification", test_fraction=0.0)  # (no test groups)
    groups = pd.Series(np.repeat(np.arange(6), 10), index=X.index)
    with pytest.warns(UserWarning, match=r"the index of groups holds X's row labels in another order.*groups.loc\[X.index\]"):
        resolve_cv(GroupKFold(3), data, groups.sample(frac=1.0, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_cv(GroupKFold(3), data, groups)


def test_standardize_false_keeps_inputs_and_targets_as_given_under_cv():
    """Dataset.from_arrays(standardize=False): each cv fold feeds its network the values as given,
    as a run without cv does (the folds standardised them anyway: a sigmoid loss on 0/1 targets
    trained against targets outside [0, 1], and the refit, on unscaled rows, disagreed)."""
    import flax.linen as nn
    import jax.numpy as jnp

    class FirstColumns(nn.Module):  # its outputs are its inputs: the metric sees what the network was fed
        @nn.compact
        def __call__(self, x):
            return x[:, :2] + 0.0 * nn.Dense(2)(x)

    class Zeros(nn.Module):  # outputs 0: mapped back to the targets' units, a fold's target shift shows
        @nn.compact
        def __call__(self, x):
            return 0.0 * nn.Dense(2)(x)

    rng = np.random.default_rng(0)
    X = rng.random((96, 2)) * 10 + 100
    Y = rng.random((96, 2)) * 10 + 50
    mean_output = vt.Metric("mean_output", "regression", lambda out, y: jnp.mean(out))
    for standardize in (False, True):
        data = vt.Dataset.from_arrays(X, Y, "regression", standardize=standardize, test_fraction=0.0)
        for module, as_given, standardised in ((FirstColumns, 105.0, 55.0), (Zeros, 0.0, 55.0)):
            for cv in (None, 3):
                score = vt.tune(vt.Linen(module, loss="mse"), vt.Space(learning_rate=vt.Fixed(1e-3)), data,
                                vt.RandomSearch(population=1), epochs=1, batch_size=16, cv=cv, metric=mean_output,
                                progress=False).best_score
                expected = as_given if not standardize else standardised
                assert score == pytest.approx(expected, abs=3.0), (module.__name__, standardize, cv)
