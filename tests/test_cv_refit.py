"""Cross-validation and repeats as population axes; refit and the test split; metrics."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from helpers import run_population
from vmaptune import engine
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


def test_cv_equals_training_each_fold_separately(digits):
    result = vt.tune(MODEL, SPACE, digits, vt.RandomSearch(population=2), cv=3, **KW)
    program = vt.build_program(MODEL, SPACE, digits, batch_size=64)
    arrays, _ = cv_arrays(digits, 3, 0)
    X, y = digits.pool()
    hp = SPACE.numeric({k: jnp.asarray(v) for k, v in result.hp.items()})
    per_fold = []
    for f in range(3):
        tr, va = arrays.train_rows[f], arrays.val_rows[f]
        fold_data = engine.DataArrays(X[tr], y[tr], X[va], y[va])
        per_fold.append(run_population(program, hp, fold_data, np.arange(2), epochs=3).curves["val_score"])
    per_fold = np.stack(per_fold, axis=1)  # (member, fold, epoch)
    np.testing.assert_allclose(result.curves["val_score"], per_fold.mean(axis=1), atol=1e-5)
    best = result.members["best_epoch"].to_numpy() - 1
    np.testing.assert_allclose(result.curves["split_scores"], per_fold[np.arange(2), :, best], atol=1e-5)
    np.testing.assert_allclose(result.curves["split_final_scores"], per_fold[:, :, -1], atol=1e-5)
    np.testing.assert_allclose(result.members["score_std"], per_fold[np.arange(2), :, best].std(axis=1), atol=1e-5)


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


def test_user_defined_and_negated_metrics(diabetes):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-2))
    median_ae = vt.Metric("neg_median_ae", "regression", lambda out, y: -jnp.median(jnp.abs(out[:, 0] - y)))
    result = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric=median_ae, **KW)
    assert result.metric == "neg_median_ae" and -1.5 < result.best_score < 0
    mse = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric="mse", **KW)
    neg = vt.tune(MODEL, space, diabetes, vt.RandomSearch(population=4), metric="neg_mse", **KW)
    np.testing.assert_allclose(mse.members["score"], neg.members["score"], rtol=1e-6)  # mse is negated


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
