"""scikit-learn's interface: the estimators pass scikit-learn's own checks, PopulationSearchCV's
cv_results_ matches RandomizedSearchCV's, and both work inside Pipelines and cross_val_score."""

import itertools
import os
import shutil
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform, randint, rankdata, uniform
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import vmaptune as vt
from vmaptune.metrics import METRICS, in_target_units

# Each entry: a scikit-learn check the estimators do not pass, and why.
FLOAT32 = ("weights equal repeated rows up to float32's rounding (the networks train in float32: relative "
           "differences of about 2e-6 in predict_proba), not to the check's rtol=1e-7")
EXPECTED_FAILED: dict[str, str] = {"check_sample_weight_equivalence_on_dense_data": FLOAT32,
                                   "check_sample_weight_equivalence_on_sparse_data": FLOAT32}


def expected_failed(estimator):
    return EXPECTED_FAILED


@parametrize_with_checks([vt.MLPClassifier(n_units=16, learning_rate=1e-2), vt.MLPRegressor(n_units=16, learning_rate=1e-2)],
                         expected_failed_checks=expected_failed)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_cv_results_have_randomized_search_cv_keys_dtypes_and_ranks(iris):
    X, y = iris
    grid = {"learning_rate": [0.01, 0.03], "n_units": [4, 8]}
    est = vt.MLPClassifier(epochs=3, batch_size=32)
    theirs = RandomizedSearchCV(est, grid, n_iter=4, cv=2, random_state=0).fit(X, y)
    ours = vt.PopulationSearchCV(est, grid, strategy=vt.GridSearch(values=grid, population=4), cv=2).fit(X, y)
    assert set(ours.cv_results_) == set(theirs.cv_results_)
    for key, value in theirs.cv_results_.items():
        mine = ours.cv_results_[key]
        assert type(mine) is type(value), key
        if isinstance(value, np.ndarray):
            assert mine.dtype == value.dtype and mine.shape == value.shape, key
    # the same candidates, as scikit-learn writes them
    assert sorted(map(lambda p: tuple(sorted(p.items())), ours.cv_results_["params"])) == \
        sorted(map(lambda p: tuple(sorted(p.items())), theirs.cv_results_["params"]))
    mean = ours.cv_results_["mean_test_score"]
    np.testing.assert_allclose(mean, np.mean([ours.cv_results_[f"split{k}_test_score"] for k in range(2)], axis=0))
    np.testing.assert_array_equal(ours.cv_results_["rank_test_score"], rankdata(-mean, method="min").astype(np.int32))
    assert ours.best_index_ == int(np.argmin(ours.cv_results_["rank_test_score"]))
    assert ours.best_score_ == mean[ours.best_index_] and ours.n_splits_ == 2
    assert pd.DataFrame(ours.cv_results_).shape == (4, len(theirs.cv_results_))
    # no early stopping: each candidate is scored after its last epoch and refit for all its epochs
    np.testing.assert_allclose(mean, ours.search_results_.curves["val_score"][:, -1], atol=1e-6)
    assert ours.best_estimator_.epochs == 3


def test_with_early_stopping_candidates_are_scored_and_refit_at_their_best_epoch(iris):
    X, y = iris
    grid = {"learning_rate": [0.01, 0.03], "n_units": [4, 8]}
    est = vt.MLPClassifier(epochs=6, batch_size=32)
    search = vt.PopulationSearchCV(est, grid, strategy=vt.GridSearch(values=grid, population=4), cv=2,
                                   early_stopping=vt.EarlyStopping(patience=2)).fit(X, y)
    results = search.search_results_
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], results.members["best_score"], atol=1e-6)
    assert search.best_estimator_.epochs == results.members["best_epoch"].iloc[search.best_index_]
    # the search's own results hold no model: asked for one, they name best_estimator_ (not vt.tune(refit=1))
    with pytest.raises(ValueError, match=r"PopulationSearchCV refits its best candidate itself, as scikit-learn's "
                                         r"searches do: the trained model is search.best_estimator_ \(its network: "
                                         r"search.best_estimator_.model_\) where refit=True, the default\.$"):
        results.best_model()


def test_an_early_stopping_estimator_is_refit_on_all_rows_for_the_chosen_epochs(iris):
    X, y = iris
    est = vt.MLPClassifier(epochs=8, batch_size=32, n_units=8, early_stopping=True, patience=2)
    search = vt.PopulationSearchCV(est, {"learning_rate": [0.01, 0.1]}, n_iter=2, cv=2).fit(X, y)
    best, chosen = search.best_estimator_, search.search_results_.members["best_epoch"].iloc[search.best_index_]
    assert best.epochs == chosen and best.early_stopping is False  # no second stop on a held-out tenth
    assert best.n_iter_ == best.best_epoch_ == chosen


def test_a_search_repeats_to_its_best_estimator_when_the_estimator_leaves_random_state_none(iris):
    """The search's random_state=None is seed 0 (a search repeats); its refit takes that seed where
    the estimator leaves its own at None (whose own fit draws anew), so the same search gives the
    same best_estimator_, not only the same cv_results_. The estimator's own seed is kept."""
    X, y = iris
    est = vt.MLPClassifier(epochs=3, batch_size=32, n_units=8)
    fits = [vt.PopulationSearchCV(est, {"learning_rate": [0.01, 0.1]}, n_iter=2, cv=2).fit(X, y) for _ in range(2)]
    np.testing.assert_array_equal(fits[0].best_estimator_.predict_proba(X), fits[1].best_estimator_.predict_proba(X))
    assert fits[0].best_estimator_.random_state == 0 and est.random_state is None
    seeded = vt.PopulationSearchCV(est.set_params(random_state=7), {"learning_rate": [0.01, 0.1]}, n_iter=2,
                                   cv=2).fit(X, y)
    assert seeded.best_estimator_.random_state == 7


def test_a_search_on_a_dataframe_keeps_its_column_names(iris):
    X, y = load_iris(return_X_y=True, as_frame=True)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=2, batch_size=32, n_units=8), {"learning_rate": [0.01, 0.1]},
                                   n_iter=2, cv=2).fit(X, y)
    assert list(search.feature_names_in_) == list(X.columns) == list(search.best_estimator_.feature_names_in_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X has feature names, but ... was fitted without"
        search.predict(X)
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        search.predict(X[X.columns[::-1]])
    # fitted again on numpy, it has no column names (they stayed, and its best_estimator_ had none)
    search.fit(X.to_numpy(), y.to_numpy())
    assert not hasattr(search, "feature_names_in_") and not hasattr(search.best_estimator_, "feature_names_in_")


def test_with_validation_fraction_folds_stop_on_held_out_rows_and_are_scored_where_those_chose(iris):
    X, y = iris
    grid = {"learning_rate": [0.01, 0.1]}
    rule = vt.EarlyStopping(patience=2, monitor="loss", validation_fraction=0.2)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=12, batch_size=32, n_units=8), grid,
                                   strategy=vt.GridSearch(values=grid, population=2), cv=2, early_stopping=rule).fit(X, y)
    results = search.search_results_
    assert "validation_fraction=0.2" in results.settings["early_stopping"]
    splits = np.stack([search.cv_results_[f"split{k}_test_score"] for k in range(2)], axis=1)
    np.testing.assert_allclose(splits, results.curves["split_scores"], atol=1e-6)
    assert search.best_estimator_.epochs == results.members["best_epoch"].iloc[search.best_index_]


def test_tol_stops_on_the_training_loss_as_scikit_learn_and_the_search_scores_the_last_epoch(iris):
    X, y = iris
    est = vt.MLPClassifier(epochs=15, batch_size=32, n_units=8, tol=0.02, patience=2, random_state=0)
    converged = clone(est).set_params(learning_rate=0.05).fit(X, y)
    assert 2 < converged.n_iter_ < 15  # it stopped once its training loss stopped improving by tol

    def stop_epoch(curve, tol=0.02, patience=2):  # Keras' rule, which vmaptune's follows
        best, since = np.inf, 0
        for epoch, loss in enumerate(curve, start=1):
            best, since = (loss, 0) if loss < best - tol else (best, since + 1)
            if since >= patience:
                return epoch
        return len(curve)

    assert stop_epoch(converged.loss_curve_) == converged.n_iter_ == len(converged.loss_curve_)
    assert converged.loss_ == converged.loss_curve_[-1] and converged.best_loss_ == min(converged.loss_curve_)

    grid = {"learning_rate": [1e-4, 0.05]}  # (1e-4 stalls at once) the refit below reuses the fit's compiled program
    search = vt.PopulationSearchCV(est, grid, strategy=vt.GridSearch(values=grid, population=2), cv=2).fit(X, y)
    results = search.search_results_
    assert "train_loss" in results.settings["early_stopping"]
    assert np.isfinite(results.curves["train_loss"]).sum() < 2 * 15  # a candidate stopped early
    splits = np.stack([search.cv_results_[f"split{k}_test_score"] for k in range(2)], axis=1)
    np.testing.assert_allclose(splits, results.curves["split_final_scores"], atol=1e-6)  # scored where it stopped
    assert search.best_estimator_.epochs == 15 and search.best_estimator_.tol == 0.02  # refit under the same rule


def test_random_state_none_draws_a_seed_per_fit_as_scikit_learns_estimators(iris):
    """Two default fits differ (a VotingClassifier of them is an ensemble); numpy's global seed or
    an int repeats a fit; a search's None stays seed 0 (it repeats)."""
    X, y = iris

    def fit(**kw):
        return vt.MLPClassifier(n_units=8, epochs=2, **kw).fit(X, y).predict_proba(X[:5])

    assert not np.array_equal(fit(), fit())
    np.random.seed(3)
    first = fit()
    np.random.seed(3)
    np.testing.assert_array_equal(fit(), first)
    np.testing.assert_array_equal(fit(random_state=4), fit(random_state=4))
    search = dict(param_distributions={"learning_rate": [0.01, 0.1]}, n_iter=2, cv=2, refit=False)
    est = vt.MLPClassifier(n_units=8, epochs=2, random_state=0)
    np.testing.assert_array_equal(vt.PopulationSearchCV(est, **search).fit(X, y).cv_results_["mean_test_score"],
                                  vt.PopulationSearchCV(est, **search).fit(X, y).cv_results_["mean_test_score"])


def test_scipy_distributions_become_vmaptune_distributions():
    space = vt.sklearn.to_space({"learning_rate": loguniform(1e-4, 1e-1), "dropout": uniform(0.1, 0.3),
                                 "n_units": randint(4, 65), "n_hidden": [0, 1, 2, 3], "activation": ["relu", "tanh"],
                                 "optimizer": "adam"})
    assert space["learning_rate"] == vt.LogUniform(1e-4, 1e-1)
    assert space["dropout"].low == 0.1 and space["dropout"].high == pytest.approx(0.4)
    assert space["n_units"] == vt.IntUniform(4, 64)  # scipy's high is exclusive
    assert space["n_hidden"] == vt.IntUniform(0, 3)
    assert space["activation"] == vt.Choice(["relu", "tanh"]) and space["optimizer"] == vt.Fixed("adam")
    shifted = vt.sklearn.to_space({"learning_rate": loguniform(1e-3, 1e-1, scale=2), "n_units": randint(1, 5, loc=10)})
    assert shifted["learning_rate"] == vt.LogUniform(2e-3, 2e-1) and shifted["n_units"] == vt.IntUniform(11, 14)
    with pytest.raises(ValueError, match=r"loguniform with loc=0.5 is not log-uniform; drop loc"):
        vt.sklearn.to_space({"learning_rate": loguniform(1e-3, 1e-1, 0.5)})
    with pytest.raises(ValueError, match=r"scipy.stats.norm has no vmaptune equivalent"):
        from scipy.stats import norm
        vt.sklearn.to_space({"x": norm(0, 1)})
    with pytest.raises(ValueError, match=r"param_distributions\['learning_rate'\]=\[0.03, 0.01, 0.03\] lists 0.03 "
                                         r"more than once: give each value once"):
        vt.sklearn.to_space({"learning_rate": [0.03, 0.01, 0.03]})


def test_a_search_in_a_pipeline_and_under_cross_val_score(iris):
    X, y = iris
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=40, batch_size=32, random_state=0),
                                   {"learning_rate": loguniform(1e-2, 1e-1)}, n_iter=4, cv=2, random_state=0)
    pipe = make_pipeline(StandardScaler(), search).fit(X, y)
    assert pipe.score(X, y) > 0.6 and pipe.predict_proba(X).shape == (150, 3)
    scores = cross_val_score(make_pipeline(StandardScaler(), search), X, y, cv=2)  # stratified: a classifier
    assert scores.shape == (2,) and (scores > 0.8).all()


def test_regression_search_scores_in_the_targets_units():
    X, y = load_diabetes(return_X_y=True)
    est = vt.MLPRegressor(epochs=5, batch_size=32, learning_rate=1e-2)
    search = vt.PopulationSearchCV(est, {"n_units": [8, 16]}, strategy=vt.GridSearch(values={"n_units": [8, 16]},
                                   population=2), cv=2, scoring="neg_mean_squared_error").fit(X, y)
    # negated MSE in the targets' own units (diabetes' variance is about 6000), as scikit-learn reports it
    assert -8000 < search.best_score_ < -1000
    # a search fitted on classes before keeps no classes_ once it does regression
    search.set_params(estimator=vt.MLPClassifier(epochs=1, batch_size=32), scoring=None).fit(*load_iris(return_X_y=True))
    assert list(search.classes_) == [0, 1, 2]
    search.set_params(estimator=est, scoring="neg_mean_squared_error").fit(X, y)
    assert not hasattr(search, "classes_")
    assert search.predict(X[:3]).shape == (3,)
    # score uses `scoring`, as scikit-learn's searches (it returned the estimator's r2)
    assert search.score(X, y) == pytest.approx(-mean_squared_error(y, search.predict(X)), rel=1e-6)
    metric = vt.Metric("neg_max_error", "regression", lambda out, t: -jnp.max(jnp.abs(out[:, 0] - t)))
    search.set_params(scoring=metric)
    # a vt.Metric of regression is called in the targets' own units (it was given standardised values)
    assert search.score(X, y) == pytest.approx(-np.max(np.abs(search.predict(X) - y)), rel=1e-5)
    with pytest.raises(ValueError, match=r"score\(X, y, sample_weight=...\) with scoring=vt.Metric\('neg_max_error'\): "
                                         r"a vt.Metric scores every row alike"):
        search.score(X, y, sample_weight=np.ones(len(y)))


def test_your_own_model_as_an_estimator(images_arrays):
    from user_models import CNN

    X, y = images_arrays
    est = vt.NetworkClassifier(vt.Linen(CNN), {"features": 4, "dropout": 0.1}, epochs=2, batch_size=128, random_state=0,
                               learning_rate=1e-2)
    est.fit(X, y)
    assert est.score(X, y) > 0.5 and est.predict(X[:2]).shape == (2,)
    with pytest.raises(ValueError, match=r"X has rows of shape \(64,\), but NetworkClassifier was fitted on rows of "
                                         r"shape \(8, 8, 1\): give X as \(n, 8, 8, 1\)"):  # (not "expecting 8 features")
        est.predict(X[:2].reshape(2, 64))
    grid = {"dropout": [0.0, 0.2], "learning_rate": [0.01, 0.03]}
    search = vt.PopulationSearchCV(est, grid, strategy=vt.GridSearch(values=grid, population=4), cv=2)
    search.fit(X, y)
    assert set(search.best_params_) == {"dropout", "learning_rate"}
    assert search.best_estimator_.hyperparameters["dropout"] == search.best_params_["dropout"]


@pytest.fixture(scope="module")
def images_arrays():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.reshape(-1, 8, 8, 1)[:600], y[:600]


@pytest.mark.parametrize("make, match", [
    (lambda: vt.PopulationSearchCV(vt.MLP(), {"learning_rate": [0.1]}),
     r"estimator must be vt.MLPClassifier.*got MLP\. Wrap your model .*vt.NetworkClassifier\(MLP\(\.\.\.\)\)"),
    (lambda: vt.PopulationSearchCV("mlp", {"learning_rate": [0.1]}), r"got str\.$"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, cv=1), r"cv=1: give the number"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, scoring="precision_macro"),
     r"scoring='precision_macro' is not supported"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, scoring="f1"),  # (not f1_macro)
     r"scoring='f1' is not supported; .*\(f1_macro averages the F1 of every class; scikit-learn's 'f1' on two "
     r"classes is class 1's alone: for that one, give a vt.Metric of your own \(its fn in jax.numpy\)\.\)$"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(tol=-1.0), {"learning_rate": [0.1]}),
     r"tol=-1.0: give a training-loss improvement >= 0"),
    (lambda: vt.MLPClassifier(tol="1e-4"), r"tol='1e-4': give a training-loss improvement >= 0"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"b2": [0.99, 0.999]}),
     r"names 'b2', which MLPClassifier has no parameter for\. Its parameters: \[.*vt.NetworkClassifier"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learnin_rate": [0.1]}), r"Did you mean 'learning_rate'\?"),
    (lambda: vt.MLPClassifier(epochs=0), r"MLPClassifier: epochs must be an integer >= 1, got 0"),
    (lambda: vt.MLPClassifier(n_units=(16, 8)), r"MLPClassifier\(n_units=\(16, 8\)\): give one string or number "
                                                r"\(n_hidden sets the depth"),
    (lambda: vt.PopulationSearchCV(vt.MLPRegressor(), {"learning_rate": [0.1]}, scoring="accuracy"),
     r"scoring='accuracy' does not score regression; for a regression estimator use one of \['neg_mean_absolute_error', "
     r"'neg_mean_squared_error', 'r2'\]"),
    (lambda: vt.MLPRegressor(epochs=-1), r"MLPRegressor: epochs must be an integer >= 1, got -1"),
    # an estimator's parameters out of range, in the estimator's terms (not a search space's)
    (lambda: vt.MLPClassifier(n_units=0), r"^MLPClassifier\(n_units=0\): n_units must be >= 1, e\.g\. n_units=100\.$"),
    (lambda: vt.MLPClassifier(learning_rate=-1), r"^MLPClassifier\(learning_rate=-1\): learning_rate must be > 0\.0, "
                                                 r"e\.g\. learning_rate=0\.001\.$"),
    (lambda: vt.MLPClassifier(dropout=1.0), r"^MLPClassifier\(dropout=1\.0\): dropout must be in \[0\.0, 1\.0\)"),
    (lambda: vt.MLPClassifier(early_stopping=True, patience=0), r"^MLPClassifier\(patience=0\): patience must be >= 1"),
    # ... and so through a search, before anything trains (it named the vt.Fixed(...) they become)
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(n_units=-1), {"learning_rate": [0.1]}),
     r"^MLPClassifier\(n_units=-1\): n_units must be >= 1, e\.g\. n_units=100\.$"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(momentum=2.0), {"n_units": [4, 8]}),
     r"^MLPClassifier\(momentum=2\.0\): momentum must be in \[0\.0, 1\.0\)"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(batch_size=0), {"learning_rate": [0.1]}),
     r"^MLPClassifier: batch_size must be an integer >= 1, got 0"),
    # batch_size='auto', the estimators' default, among searched values: the size to give instead
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"batch_size": [16, "auto"]}),
     r"^param_distributions\['batch_size'\]=\[16, 'auto'\]: 'auto', the estimators' \(and scikit-learn's\) default "
     r"batch size, min\(200, rows\), is not a size the search can draw; give 200 in its place"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"batch_size": "auto"}),
     r"^param_distributions\['batch_size'\]='auto': 'auto', .* give 200 in its place"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, epochs=0),
     r"PopulationSearchCV: epochs must be an integer >= 1, got 0"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, early_stopping=True),
     r"early_stopping=True: give a patience in epochs \(an integer >= 1\), vt.EarlyStopping"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"epochs": [3, 5]}),
     r"names 'epochs', a run setting, not a searched one: give PopulationSearchCV\(epochs=\.\.\.\)"),
    # scikit-learn's names, and settings of the run, name what to write instead
    (lambda: vt.MLPClassifier(max_iter=50), r"MLPClassifier\(max_iter=\.\.\.\): max_iter is scikit-learn's name; "
                                            r"vmaptune's is epochs"),
    (lambda: vt.MLPRegressor(hidden_layer_sizes=(10,)), r"vmaptune's is n_hidden \(the number of hidden layers\) and "
                                                        r"n_units"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"hidden_layer_sizes": [(10,), (20,)]}),
     r"names 'hidden_layer_sizes', scikit-learn's name; vmaptune's is n_hidden"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"patience": [2, 5]}),
     r"names 'patience', a setting of the training run.*MLPClassifier\(patience=\.\.\.\)"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, scoring=["accuracy", "neg_log_loss"]),
     r"several metrics at once are not supported"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, refit="auc",
                                   scoring={"auc": "roc_auc", "acc": "accuracy"}),  # (said before refit's check)
     r"several metrics at once are not supported"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), {"learning_rate": [0.1]}, scoring="roc_auc"),
     r"^metric 'roc_auc' scores two classes, but the model has 3 outputs; for several classes use 'roc_auc_ovr' "
     r"\(one class against the rest, averaged\)\.$"),  # (iris: no advice for a function of the user's own)
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, scoring=lambda e, X, y: 0.0),
     r"a scorer callable cannot run inside the compiled program.*vt.Metric"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, n_iter=0),
     r"PopulationSearchCV: n_iter must be an integer >= 1, got 0"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, n_iter=2.5),
     r"n_iter must be an integer >= 1, got 2.5"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, return_train_score=True),
     r"PopulationSearchCV\(return_train_score=True\) is not offered: training-fold scores are not computed.*Leave "
     r"return_train_score out \(False\)\.$"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, error_score="raise"),
     r"PopulationSearchCV\(error_score='raise'\) is not offered: a candidate whose training diverges raises no "
     r"error here; it scores NaN and ranks last.*Leave error_score out\.$"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, error_score=0),
     r"PopulationSearchCV\(error_score=0\) is not offered"),
    (lambda: vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]}, cv="3"),
     r"cv='3': give the number of folds \(an integer >= 2\), a scikit-learn splitter"),
])
def test_bad_search_arguments(iris, make, match):
    X, y = iris
    with pytest.raises((TypeError, ValueError), match=match):
        make().fit(X, y)


def test_diverged_candidates_are_warned_about_and_rank_last(iris):
    X, y = iris
    est = vt.MLPClassifier(n_units=8, epochs=3, optimizer="sgd", random_state=0)
    with pytest.warns(UserWarning, match=r"1 of 2 candidates scored NaN \(their training diverged\), e\.g\. "
                                         r"\[\{'learning_rate': 1e\+30\}\]; they rank last"):
        search = vt.PopulationSearchCV(est, {"learning_rate": [0.01, 1e30]}, n_iter=2, cv=2, refit=False).fit(X, y)
    assert search.best_params_ == {"learning_rate": 0.01} and list(search.cv_results_["rank_test_score"]) == [1, 2]


def test_mse_and_mae_of_several_targets_are_scikit_learns_in_each_targets_units():
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    from vmaptune.sklearn import search_cv
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    Y = np.c_[X[:, 0], 100 * X[:, 1] + 5]  # two targets a hundred times apart in scale
    data = search_cv._pool_dataset(X, Y, "regression")[0]
    out = rng.normal(size=(40, 2)).astype(np.float32)  # outputs and targets, standardised
    y = rng.normal(size=(40, 2)).astype(np.float32)
    raw_out, raw_y = data.unscale_targets(out), data.unscale_targets(y)
    for name, sklearn_metric in (("neg_mse", mean_squared_error), ("neg_mae", mean_absolute_error)):
        metric = search_cv._in_target_units(name, data)  # as the search's program scores it:
        scored = in_target_units(metric if isinstance(metric, vt.Metric) else METRICS[metric], data.y_mean, data.y_std)
        score = float(scored.score(out, y)) * search_cv._score_unit(metric, data)
        assert score == pytest.approx(-sklearn_metric(raw_y, raw_out), rel=1e-5)


def test_errors_of_several_targets_ignore_a_targets_large_offset():
    """Unix-time-like targets (1.7e9 + a spread of 65): the errors of several targets were computed
    in the targets' own units in float32, rounded to steps of 128 there (MSE 3.6 times the same
    search's on y - offset), and warned about as a metric of the user's; the same training scores
    the same now, without a warning."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 4))
    Y = (X @ rng.normal(size=(4, 2)) + 0.3 * rng.normal(size=(120, 2))) * np.array([50.0, 1.0])
    scores = {}
    for scoring in ("neg_mean_squared_error", "neg_mean_absolute_error"):
        for offset in (0.0, 1.7e9):
            with warnings.catch_warnings():
                warnings.simplefilter("error", UserWarning)  # (no float32 advice: a built-in scoring needs none)
                search = vt.PopulationSearchCV(vt.MLPRegressor(epochs=3, batch_size=32), {"learning_rate": [1e-3, 1e-2]},
                                               n_iter=2, cv=3, scoring=scoring, refit=False).fit(X, Y + [offset, 0.0])
            scores[scoring, offset] = search.cv_results_["mean_test_score"]
        np.testing.assert_allclose(scores[scoring, 1.7e9], scores[scoring, 0.0], rtol=1e-4)


def test_what_scikit_learns_searches_take_is_read_or_refused_with_the_fix(iris):
    """A list of one dict is that dict, as scikit-learn reads it (it was refused as alternative
    grids); scikit-learn's schedule names searched as learning_rate are said to be schedules (the
    message was "must be numeric"); a search argument not offered says to leave it out."""
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=1, batch_size=32, n_units=4),
                                   [{"learning_rate": [0.01, 0.02]}], n_iter=2, cv=2).fit(*iris)
    assert sorted(p["learning_rate"] for p in search.cv_results_["params"]) == [0.01, 0.02]
    with pytest.raises(ValueError, match=r"param_distributions\['learning_rate'\]: MLPClassifier\(learning_rate="
                                         r"'constant'\) is scikit-learn's schedule name: vmaptune's learning_rate is "
                                         r"the step size"):
        vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), {"learning_rate": ["constant", "adaptive"]}, cv=2).fit(*iris)
    for given in ("adaptive", np.array(["adaptive"]), vt.Choice(["adaptive", "constant"])):
        with pytest.raises(ValueError, match=r"\(learning_rate='adaptive'\) is scikit-learn's schedule name"):
            vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), {"learning_rate": given}, cv=2).fit(*iris)
    with pytest.raises(TypeError, match=r"PopulationSearchCV\(param_grid=\.\.\.\) is not offered: .*; leave it out"):
        vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), param_grid={"learning_rate": [0.01]})
    # (scikit-learn's defaults say what this search does: a RandomizedSearchCV call that gives them runs unchanged)
    given = dict(n_jobs=-1, pre_dispatch="2*n_jobs", error_score=np.nan, return_train_score=np.False_)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=1, batch_size=32, n_units=4), {"learning_rate": [0.01]},
                                   cv=2, **given).fit(*iris)
    cloned = clone(search).get_params()
    assert len(search.cv_results_["params"]) == 1 and cloned["pre_dispatch"] == "2*n_jobs" and \
        np.isnan(cloned["error_score"]) and cloned["return_train_score"] is np.False_


def test_lists_whose_grid_is_smaller_than_n_iter_are_searched_once_each_as_scikit_learn(iris):
    X, y = iris
    # a lone value is a list of one (it trained n_iter copies of one setting, each ranked)
    lone = vt.PopulationSearchCV(vt.MLPClassifier(epochs=1, batch_size=32, n_units=4),
                                 {"learning_rate": 0.01, "activation": "tanh"}, n_iter=16, cv=2)
    with pytest.warns(UserWarning, match=r"The total space of parameters 1 is smaller than n_iter=16. Running 1"):
        lone.fit(X, y)
    assert lone.cv_results_["params"] == [{"learning_rate": 0.01, "activation": "tanh"}]
    grid = {"activation": ["relu", "tanh"], "learning_rate": [0.01, 0.03], "n_hidden": [0, 1, 2]}
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=1, batch_size=32, n_units=4), grid, n_iter=16, cv=2)
    with pytest.warns(UserWarning, match=r"The total space of parameters 12 is smaller than n_iter=16. Running 12 "
                                         r"iterations: the whole grid, once each \(lists only, as here, make a grid "
                                         r"search; pass n_iter=12 to run it without this warning\)"):
        search.fit(X, y)
    seen = {(p["activation"], p["learning_rate"], p["n_hidden"]) for p in search.cv_results_["params"]}
    assert len(search.cv_results_["params"]) == len(seen) == 12  # every point once, none repeated


def test_empty_param_distributions_cross_validate_the_estimator_as_it_is_set(iris):
    """{} searches nothing: one candidate, the estimator's own values, as scikit-learn runs it."""
    X, y = iris
    est = vt.MLPClassifier(epochs=5, batch_size=32, n_units=8, learning_rate=0.03, random_state=0)
    with pytest.warns(UserWarning, match=r"The total space of parameters 1 is smaller than n_iter=4"):
        search = vt.PopulationSearchCV(est, {}, n_iter=4, cv=2, random_state=0).fit(X, y)
    assert search.cv_results_["params"] == [{}] and search.best_params_ == {} and search.best_index_ == 0
    assert search.search_results_.members["learning_rate"].tolist() == [pytest.approx(0.03)]
    assert search.best_estimator_.get_params()["learning_rate"] == 0.03 and search.score(X, y) > 0.5


def test_lists_whose_grid_is_larger_than_n_iter_are_sampled_without_replacement(iris):
    X, y = iris
    grid = {"activation": ["relu", "tanh"], "learning_rate": [0.01, 0.03, 0.1], "n_hidden": [0, 1, 2]}  # 18 points
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=1, batch_size=32, n_units=4), grid, n_iter=12, cv=2,
                                   random_state=3).fit(X, y)
    seen = {(p["activation"], p["learning_rate"], p["n_hidden"]) for p in search.cv_results_["params"]}
    assert len(search.cv_results_["params"]) == len(seen) == 12  # 12 distinct points of the 18
    assert all(p in set(itertools.product(*grid.values())) for p in seen)


def test_refit_callable_chooses_the_candidate_and_n_jobs_is_accepted(iris):
    X, y = iris
    grid = {"n_units": [2, 4, 8]}
    worst = lambda results: int(np.argmax(results["rank_test_score"]))  # noqa: E731
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=2, batch_size=32), grid, n_iter=3, cv=2, refit=worst, n_jobs=-1,
                                   verbose=0).fit(X, y)
    assert search.best_index_ == int(np.argmax(search.cv_results_["rank_test_score"]))
    assert search.best_params_ == search.cv_results_["params"][search.best_index_]
    assert search.best_estimator_.n_units == search.best_params_["n_units"]
    assert not hasattr(search, "best_score_")  # as scikit-learn with refit=callable
    np.testing.assert_allclose(search.predict_log_proba(X[:5]), np.log(search.predict_proba(X[:5])), rtol=1e-5)
    # (MLPClassifier's default batch of 200 is clipped to a fold's 75 rows, as scikit-learn clips it)
    with pytest.raises(IndexError, match=r"refit=callable returned 7: best_index_ must be in \[0, 3\)"):
        vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), grid, n_iter=3, cv=2, refit=lambda r: 7).fit(X, y)
    with pytest.raises(TypeError, match=r"refit='f1_macro': give True .* a callable.* or the scoring's own name "
                                        r"\('accuracy'"):
        vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), grid, n_iter=3, cv=2, refit="f1_macro").fit(X, y)


def test_fit_arguments_a_search_does_not_take_name_the_fix(iris):
    X, y = iris
    search = vt.PopulationSearchCV(vt.MLPClassifier(), {"learning_rate": [0.1]})
    with pytest.raises(TypeError, match=r"got epochs=\.\.\.: set it on the search: PopulationSearchCV\(\.\.\., epochs"):
        search.fit(X, y, epochs=100)
    with pytest.raises(TypeError, match=r"got validation_data=\.\.\.: the search validates on its cv folds"):
        search.fit(X, y, validation_data=(X, y))
    with pytest.raises(ValueError, match=r"groups=\.\.\.\) with cv=3: the folds of an integer cv ignore groups; "
                                         r"give a group splitter, e.g. cv=GroupKFold\(3\)"):
        search.fit(X, y, groups=np.arange(len(y)) // 10)
    from sklearn.model_selection import GroupKFold

    with pytest.raises(ValueError, match=r"needs the rows' groups: fit\(X, y, groups=groups\)"):
        search.set_params(cv=GroupKFold(3)).fit(X, y)
    strategy = vt.RandomSearch(population=2)
    with pytest.warns(UserWarning, match=r"n_iter=5\) is not used: strategy=RandomSearch"):
        vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), {"learning_rate": [0.1, 0.2]}, strategy=strategy,
                              n_iter=5).fit(X, y)


def test_a_scikit_learn_splitter_gives_the_folds_and_groups_keep_a_patient_in_one_fold():
    """Rows of one patient are near copies with the patient's label: folds that split a patient's
    rows let each candidate recognise the patient (a leak: a perfect cv score), GroupKFold with
    groups= keeps every patient in one fold (the score a new patient gets: chance)."""
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(0)
    patients = rng.normal(size=(40, 6))
    groups = np.repeat(np.arange(40), 8)
    X = patients[groups] + 0.01 * rng.normal(size=(len(groups), 6))
    y = rng.integers(0, 2, 40)[groups]  # labels unrelated to the features: nothing to learn but the patient
    est = vt.MLPClassifier(n_units=64, learning_rate=3e-2, batch_size=32, epochs=30)
    grid = {"weight_decay": [0.0, 1e-4]}
    leaked = vt.PopulationSearchCV(est, grid, cv=3, refit=False).fit(X, y)
    grouped = vt.PopulationSearchCV(est, grid, cv=GroupKFold(3), refit=False).fit(X, y, groups=groups)
    assert leaked.best_score_ > 0.9
    assert grouped.best_score_ < 0.75 and grouped.n_splits_ == 3


def test_your_own_folds_over_the_pool_equal_vmaptunes_own_folds_bit_for_bit(iris):
    X, y = iris
    data = vt.Dataset.from_arrays(X, y, "classification", test_fraction=0.1)
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))
    kw = dict(epochs=3, batch_size=16, progress=False, seed=3)
    dealt = vt.tune(vt.MLP(units=8), space, data, vt.RandomSearch(population=4), cv=3, **kw)
    fold = data.folds(3, 3)
    pairs = [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(3)]
    given = vt.tune(vt.MLP(units=8), space, data, vt.RandomSearch(population=4), cv=pairs, **kw)
    np.testing.assert_array_equal(given.members["score"], dealt.members["score"])
    assert given.settings["cv"] == 3
    from sklearn.model_selection import KFold

    unequal = [(np.arange(30, 120), np.arange(30)), (np.arange(90), np.arange(90, 120)),
               (np.arange(30), np.arange(30, 120))]
    # folds holding out 30, 30 and 90 rows are each scored on every one of them
    rows = vt.Metric("rows", "classification", lambda out, y: jnp.sum(jnp.isfinite(out[:, 0])).astype(jnp.float32))
    counted = vt.tune(vt.MLP(units=8), space, data, vt.RandomSearch(population=2), cv=unequal, metric=rows, **kw)
    np.testing.assert_array_equal(counted.curves["split_scores"], [[30, 30, 90]] * 2)
    splitter = vt.tune(vt.MLP(units=8), space, data, vt.RandomSearch(population=2), cv=KFold(4), **kw)
    assert splitter.settings["cv"] == 4


@pytest.mark.parametrize("cv, match", [
    ([(np.arange(10), np.arange(5, 20)), (np.arange(20, 40), np.arange(10))], r"fold 0 trains on 5 of the rows it is "
                                                                               r"scored on"),
    ([], r"gives no folds; give at least one \(train, validation\) pair"),
    ([(np.arange(10), np.arange(10, 20)), (np.arange(10), np.array([500]))], r"fold 1: validation rows \[500\] are "
                                                                              r"outside data.pool\(\)'s 135 rows"),
    ([(np.arange(10), np.arange(10, 20)), (np.arange(10), [])], r"fold 1 has no validation rows"),
    ("kfold", r"cv='kfold': give the number of folds"),
])
def test_bad_folds_are_refused_before_anything_compiles(iris, cv, match):
    X, y = iris
    data = vt.Dataset.from_arrays(X, y, "classification", test_fraction=0.1)
    with pytest.raises((TypeError, ValueError), match=match):
        vt.tune(vt.MLP(units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), data, vt.RandomSearch(population=2),
                cv=cv, epochs=1, progress=False)


def test_an_early_stopping_estimator_stops_each_fold_on_its_own_validation_fraction(iris):
    X, y = iris
    est = vt.MLPClassifier(n_units=8, epochs=4, early_stopping=True, validation_fraction=0.3, patience=2)
    search = vt.PopulationSearchCV(est, {"learning_rate": [0.01, 0.1]}, cv=3, refit=False).fit(X, y)
    # as under cross_val_score: never stopped on the rows a fold is scored on
    assert "validation_fraction=0.3" in search.search_results_.settings["early_stopping"]
    # refit=False keeps no best estimator: as scikit-learn's searches, it has no predict (duck typing)
    assert not any(hasattr(search, name) for name in ("predict", "predict_proba", "predict_log_proba"))
    with pytest.raises(AttributeError) as raised:
        search.predict(X)
    assert "PopulationSearchCV(refit=False) keeps no best_estimator_" in str(raised.value.__cause__)
    # a regressor's search has no predict_proba, fitted or not
    regressor = vt.PopulationSearchCV(vt.MLPRegressor(), {"learning_rate": [0.01, 0.1]})
    assert hasattr(regressor, "predict") and not hasattr(regressor, "predict_proba")


def test_sklearn_names_integer_frames_sparse_input_and_even_batches(iris):
    import scipy.sparse

    X, y = iris
    # an epoch of 399 rows at batch_size=200 takes two steps of 199 (scikit-learn's two steps: 200 + 199; whole
    # batches of 200 would leave half the rows out each epoch), as at any batch_size that takes two steps
    rows = np.random.default_rng(0).integers(0, 150, 399)
    a = vt.MLPClassifier(n_units=8, epochs=3, batch_size=200, random_state=0).fit(X[rows], y[rows])
    b = vt.MLPClassifier(n_units=8, epochs=3, batch_size=300, random_state=0).fit(X[rows], y[rows])
    c = vt.MLPClassifier(n_units=8, epochs=3, batch_size=199, random_state=0).fit(X[rows], y[rows])  # 3 steps
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))
    # a sparse matrix (a OneHotEncoder's output) trains as its dense array
    dense = vt.MLPClassifier(n_units=8, epochs=2, random_state=0).fit(X, y)
    sparse = vt.MLPClassifier(n_units=8, epochs=2, random_state=0).fit(scipy.sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(sparse.predict_proba(scipy.sparse.csr_matrix(X)), dense.predict_proba(X))
    assert list(dense.model_.classes_) == [0, 1, 2]


def test_a_searched_batch_size_trains_each_candidate_as_the_estimator_set_to_it(iris):
    """A candidate's batch_size trains as the estimator set to it does, in each fold (ceil(rows /
    batch) steps of even batches, on that fold's rows: 8 on folds of 112 and 113 rows is batches
    of 8 and 7; 64 is 2 steps of 56), a batch above a fold's rows included (one step of all of them, as the estimator)."""
    X, y = iris
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    est = vt.MLPClassifier(n_units=8, epochs=2, learning_rate=1e-2, random_state=0)
    for b in (8, 64, 200):  # (64: 2 steps of 56 rows, where whole batches of 64 took 1)
        with pytest.warns(UserWarning, match="smaller than n_iter"):  # (b is the first candidate: the same seed)
            searched = vt.PopulationSearchCV(est, {"batch_size": [b, 5]}, cv=cv, random_state=0, refit=False).fit(X, y)
            fixed = vt.PopulationSearchCV(clone(est).set_params(batch_size=b), {}, cv=cv, random_state=0,
                                          refit=False).fit(X, y)
        assert searched.cv_results_["params"][0] == {"batch_size": b}
        for k in range(4):
            assert searched.cv_results_[f"split{k}_test_score"][0] == fixed.cv_results_[f"split{k}_test_score"][0]


def test_integer_columns_of_a_dataframe_are_standardised_as_features(iris):
    from user_models import CNN

    X, y = iris
    frame = pd.DataFrame((X * 10).astype(np.int64), columns=["a", "b", "c", "d"])
    data = vt.Dataset.from_arrays(frame, y, "classification")
    assert data.x_mean is not None and data.X_train.dtype == np.float32
    # your own model's estimator keeps an integer array (token ids), but a DataFrame's columns are numbers
    own = vt.NetworkClassifier(vt.Linen(CNN))
    assert own._validate(frame, y)[0].dtype == np.float64
    assert own._validate(frame.to_numpy(), y)[0].dtype == np.int64
    for ids in (np.uint16, np.uint8, np.int16):  # (a tokenizer's ids: kept as vt.Dataset keeps them, not floats)
        assert own._validate(frame.to_numpy().astype(ids), y)[0].dtype == ids
    ids = vt.Dataset.from_arrays((X * 10).astype(np.int64), y, "classification")  # an integer array: token ids
    assert ids.x_mean is None
    with pytest.warns(UserWarning, match=r"vt.MLP reads its inputs as numbers, but the data's are int32"):
        vt.tune(vt.MLP(units=4), vt.Space(learning_rate=vt.Fixed(0.01)), ids, vt.RandomSearch(population=1), epochs=1,
                progress=False)


def test_scoring_for_imbalanced_classes_is_scikit_learns(iris):
    """f1_macro, balanced_accuracy and roc_auc are computed inside the program; the search's score()
    is scikit-learn's scorer on the refit estimator."""
    from sklearn.metrics import roc_auc_score

    X, y = iris
    binary = (y == 2).astype(int)  # one class in three: imbalanced
    search = vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, epochs=3), {"learning_rate": [0.01, 0.1]},
                                   scoring="roc_auc", cv=3).fit(X, binary)
    assert 0.5 < search.best_score_ <= 1.0
    assert search.score(X, binary) == pytest.approx(roc_auc_score(binary, search.predict_proba(X)[:, 1]))
    macro = vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, epochs=3), {"learning_rate": [0.01, 0.1]},
                                  scoring="f1_macro", cv=3, refit=False).fit(X, y)
    assert 0.0 < macro.best_score_ <= 1.0 and macro.search_results_.metric == "f1_macro"


def test_search_folds_given_over_x_are_checked_and_none_is_five_folds(iris):
    X, y = iris
    est = vt.MLPClassifier(n_units=4, epochs=1)
    outside = [(np.arange(100), np.arange(100, 151)), (np.arange(50, 150), np.arange(50))]
    with pytest.raises(ValueError, match=r"cv's fold 0: validation rows \[150\] are outside X's 150 rows"):
        vt.PopulationSearchCV(est, {"learning_rate": [0.1]}, cv=outside).fit(X, y)
    folds = ((np.r_[np.arange(i), np.arange(i + 50, 150)], np.arange(i, i + 50)) for i in (0, 50, 100))
    search = vt.PopulationSearchCV(est, {"learning_rate": [0.1]}, cv=folds, refit=False).fit(X, y)
    assert search.n_splits_ == 3
    with pytest.raises(ValueError, match=r"gave no folds \(an iterator used up by an earlier fit\?\)"):
        search.fit(X, y)
    assert vt.PopulationSearchCV(est, {"learning_rate": [0.1]}, cv=None, refit=False).fit(X, y).n_splits_ == 5
    with pytest.raises(ValueError, match=r"MLPClassifier.set_params\(max_iter=\.\.\.\): max_iter is scikit-learn's "
                                         r"name; vmaptune's is epochs"):
        est.set_params(max_iter=5)
    assert vt.MLPClassifier(n_units=4, epochs=1, batch_size="auto", random_state=0).fit(X, y).score(X, y) > 0  # scikit-learn's default


def test_a_regressor_converges_on_scikit_learns_loss_scale():
    """scikit-learn's tol applies to half the squared error in the targets' units; the engine
    trains on standardised targets: tol carries over as 2 tol / y_std^2, so targets 10x larger
    train as long as scikit-learn's would (longer), not the same number of epochs."""
    from vmaptune.sklearn.inputs import _dataset

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=200)
    data = _dataset(X, 10 * y, "regression", None, 0)
    rule = vt.MLPRegressor(tol=1e-3)._stopping(data)
    assert rule.monitor == "train_loss" and rule.min_delta == pytest.approx(2e-3 / float(data.y_std) ** 2)
    labels = _dataset(X, (y > 0).astype(int), "classification", None, 0)
    assert vt.MLPClassifier(tol=1e-3)._stopping(labels).min_delta == 1e-3  # cross-entropy: the same scale
    small = vt.MLPRegressor(tol=1e-3, epochs=300, random_state=0).fit(X, y).n_iter_
    large = vt.MLPRegressor(tol=1e-3, epochs=300, random_state=0).fit(X, 10 * y).n_iter_
    assert large > small


def test_a_search_speaks_scikit_learns_api(iris):
    """signature, scorer_, refit=<the scoring's name> and tags as scikit-learn's searches have them."""
    import inspect

    from sklearn.utils import get_tags

    X, y = iris
    assert list(inspect.signature(vt.PopulationSearchCV).parameters)[:3] == ["estimator", "param_distributions",
                                                                              "strategy"]
    assert "n_hidden" in inspect.signature(vt.MLPClassifier).parameters
    assert "hyperparameters" in inspect.signature(vt.NetworkClassifier).parameters
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=2, batch_size=32, n_units=8), {"learning_rate": [0.01, 0.1]},
                                   n_iter=2, cv=2, refit="accuracy").fit(X, y)
    assert search.scorer_(search.best_estimator_, X, y) == search.score(X, y) == search.best_estimator_.score(X, y)
    by_name = search.set_params(scoring="balanced_accuracy", refit="balanced_accuracy").fit(X, y)
    from sklearn.metrics import balanced_accuracy_score

    assert by_name.scorer_(by_name.best_estimator_, X, y) == balanced_accuracy_score(y, by_name.predict(X))
    assert get_tags(search).input_tags.sparse and get_tags(search).estimator_type == "classifier"


def test_an_estimators_model_checks_a_dataframes_columns_and_says_what_wrote_it(tmp_path):
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = vt.MLPClassifier(epochs=2, n_units=8).fit(X, y).model_
    assert model.feature_names == tuple(X.columns)
    reordered = X[X.columns[::-1]]
    with pytest.raises(ValueError, match="the same names, in another order"):
        model.predict(reordered)
    loaded = vt.TrainedModel.load(model.save(tmp_path / "m"))
    with pytest.raises(ValueError, match="the same names, in another order"):
        loaded.predict(reordered)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.info["written_by"]["vmaptune"] == vt.__version__
    assert set(loaded.info["written_by"]) >= {"jax", "flax", "optax", "python"}
    # the versions that trained it, in memory; and the ones that pickled it, in a joblib / pickle file
    assert model.info["trained_by"]["vmaptune"] == vt.__version__
    import joblib

    joblib.dump(model, tmp_path / "m.joblib")
    assert joblib.load(tmp_path / "m.joblib").info["written_by"] == loaded.info["written_by"]


@pytest.mark.parametrize("make, error, match", [
    (lambda: vt.MLPClassifier(warm_start=True), TypeError, r"warm_start is scikit-learn's name; .*every fit trains a new"),
    (lambda: vt.MLPClassifier(epsilon=1e-8), TypeError, r"epsilon is scikit-learn's name; vmaptune's is eps"),
    (lambda: vt.MLPClassifier(class_weight="balanced"), TypeError,
     r"class_weight .* fit\(X, y, sample_weight=sklearn.utils.class_weight.compute_sample_weight\('balanced', y\)\)"),
    (lambda: vt.MLPClassifier(n_unit=8), TypeError, r"MLPClassifier\(\) got an unexpected keyword argument 'n_unit'\. "
                                                    r"Did you mean 'n_units'\? Its parameters: n_hidden, n_units"),
    (lambda: vt.NetworkClassifier(feature=8), TypeError, r"own fields go in hyperparameters=\{\.\.\.\}"),
])
def test_scikit_learn_parameters_vmaptune_does_not_have_are_named(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_small_or_odd_data_is_refused_in_the_users_terms_before_anything_trains(iris):
    from sklearn.model_selection import KFold
    from sklearn.pipeline import Pipeline

    X, y = iris
    search = lambda est=vt.MLPClassifier(epochs=1), **kw: vt.PopulationSearchCV(est, {"n_units": [4, 8]}, n_iter=2, **kw)  # noqa: E731
    with pytest.raises(ValueError, match=r"X has 1 sample \(n_samples=1\)"):
        search().fit(X[:1], y[:1])
    with pytest.raises(ValueError, match=r"y has 1 class \(0\)"):
        search().fit(X[:4], np.zeros(4, int))
    with pytest.raises(ValueError, match=r"class 2 has 1 row\(s\); .* e\.g\. cv=KFold\(3, shuffle=True\)"):
        search().fit(X[:5], np.array([0, 1, 0, 1, 2]))
    # small data whose classes the search (or an estimator that validates nothing) can hold: no word of the
    # one-row classes of the layout made inside (a pool that moved a row out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        search(cv=2).fit(X[[0, 1, 50, 51]], np.array([0, 0, 1, 1]))
        vt.MLPClassifier(epochs=1, n_units=4).fit(X[[0, 50]], np.array([0, 1]))
    with pytest.raises(ValueError, match=r"learning_rate='adaptive'\) is scikit-learn's schedule name: vmaptune's "
                                         r"learning_rate is the step size"):
        search(vt.MLPClassifier(learning_rate="adaptive")).fit(X, y)
    with pytest.raises(ValueError, match=r"learning_rate='adaptive'\) is scikit-learn's schedule name"):
        vt.MLPClassifier(learning_rate="adaptive").fit(X, y)
    with pytest.raises(TypeError, match=r"Put the search inside the Pipeline instead"):
        search(Pipeline([("scale", StandardScaler()), ("mlp", vt.MLPClassifier())])).fit(X, y)
    binary = (y == 2).astype(int)  # rows sorted by class: unshuffled folds hold out one class only
    with pytest.raises(ValueError, match=r"metric='roc_auc' is undefined on fold 0's 50 held-out rows: they are all "
                                         r"of one class"):
        search(scoring="roc_auc", cv=KFold(3)).fit(X, binary)


def test_an_integer_cv_above_a_rare_classs_rows_warns_and_searches_as_scikit_learns(iris):
    """cv=3 with a class of 2 rows: scikit-learn's StratifiedKFold warns and deals folds, one holding
    none of its rows; the search was refused ("use cv <= 2"), and so was cross_val_score over it."""
    X, y = iris
    keep = np.r_[np.arange(100), 100, 101]  # class 2 cut to 2 rows
    X, y = X[keep], y[keep]

    def search(cv):
        return vt.PopulationSearchCV(vt.MLPClassifier(epochs=2, n_units=4), {"learning_rate": [0.01, 0.1]}, n_iter=2,
                                     cv=cv, random_state=0)

    with pytest.warns(UserWarning, match=r"The least populated class in y has only 2 members, which is less than "
                                         r"n_splits=3"):
        ours = search(3).fit(X, y)
    assert ours.n_splits_ == 3 and np.isfinite(ours.cv_results_["mean_test_score"]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs = search(StratifiedKFold(3, shuffle=True, random_state=0)).fit(X, y)
    np.testing.assert_array_equal(ours.cv_results_["mean_test_score"], theirs.cv_results_["mean_test_score"])


def test_r2_on_held_out_folds_of_one_row_is_refused_before_anything_trains():
    """LeaveOneOut with a regressor's default scoring: scikit-learn's r2 is NaN on one row, and every
    candidate scored 0.0 here, ranked 1, and the first was picked as best without a word."""
    from sklearn.model_selection import KFold, LeaveOneOut

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:12], y[:12]

    def search(**kw):
        return vt.PopulationSearchCV(vt.MLPRegressor(epochs=1, n_units=4), {"learning_rate": [1e-3, 1e-2]}, **kw)

    with pytest.raises(ValueError, match=r"^scoring=None \(the regressor's r2\) is undefined on fold 0's 1 held-out "
                                         r"row \(as are 11 other folds of 12\): .* Use "
                                         r"scoring='neg_mean_squared_error', or a cv whose folds hold out at least 2"):
        search(cv=LeaveOneOut()).fit(X, y)
    pairs = [(np.arange(2, 12), np.arange(2)), (np.arange(11), np.array([11]))]  # (the second fold holds out one row)
    with pytest.raises(ValueError, match=r"^scoring='r2' is undefined on fold 1's 1 held-out row: "):
        search(cv=pairs, scoring="r2").fit(X, y)
    search(cv=KFold(6), scoring="r2").fit(X, y)  # (folds of 2 rows: scored)


def test_early_stopping_without_tol_stops_on_a_plateau_as_scikit_learns_default():
    estimator = vt.MLPClassifier(early_stopping=True, patience=5)
    assert estimator._stopping().min_delta == 1e-4 == vt.MLPClassifier(early_stopping=True, tol=1e-4)._stopping().min_delta
    assert vt.MLPClassifier(early_stopping=True, tol=0.0)._stopping().min_delta == 0.0
    assert vt.MLPClassifier()._stopping() is None  # without early_stopping, None trains every epoch


def test_sample_weight_weighs_every_candidates_folds_and_the_refit(iris):
    """fit(X, y, sample_weight=w) as scikit-learn passes it to each fold's and the refit's fit:
    equal weights change nothing; other weights reach the folds and the refit."""
    X, y = iris
    est = vt.MLPClassifier(n_units=8, epochs=3, batch_size=32, random_state=0)
    grid = {"learning_rate": [0.01, 0.05]}

    def search(weights):
        return vt.PopulationSearchCV(est, grid, cv=3, random_state=0).fit(X, y, sample_weight=weights)

    plain, ones, heavy = search(None), search(np.ones(len(y))), search(np.where(y == 2, 5.0, 1.0))
    np.testing.assert_array_equal(plain.cv_results_["mean_test_score"], ones.cv_results_["mean_test_score"])
    assert not np.array_equal(plain.search_results_.curves["train_loss"], heavy.search_results_.curves["train_loss"])
    weights = np.where(y == 2, 5.0, 1.0)
    assert heavy.score(X, y, sample_weight=weights) == pytest.approx(
        accuracy_score(y, heavy.predict(X), sample_weight=weights))  # (weighted scoring, as scikit-learn's)
    alone = clone(est).set_params(**heavy.best_params_).fit(X, y, sample_weight=np.where(y == 2, 5.0, 1.0))
    assert heavy.best_estimator_.loss_curve_ == alone.loss_curve_  # the refit weighs the rows too
    unweighted = clone(est).set_params(**heavy.best_params_).fit(X, y)
    assert unweighted.loss_curve_ != alone.loss_curve_


@pytest.mark.parametrize("estimator", [vt.MLPClassifier, vt.MLPRegressor])
def test_integer_sample_weights_equal_repeated_rows_up_to_float32(estimator):
    """scikit-learn's check_sample_weight_equivalence at float32's tolerance (see EXPECTED_FAILED):
    full-batch steps, and the input scaling's statistics weighted too. A weight of 0 drops a row."""
    rng = np.random.RandomState(42)
    X, y = rng.rand(15, 30), rng.randint(0, 3, size=15)
    sw = rng.randint(0, 5, size=15)
    make = lambda: estimator(n_units=16, learning_rate=1e-2, epochs=20, random_state=0)  # noqa: E731
    weighted = make().fit(X, y, sample_weight=sw)
    repeated = make().fit(X.repeat(sw, axis=0), y.repeat(sw))
    predict = "predict_proba" if estimator is vt.MLPClassifier else "predict"
    np.testing.assert_allclose(getattr(weighted, predict)(X), getattr(repeated, predict)(X), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-5)


def test_a_sparse_x_too_large_to_make_dense_is_refused_with_the_fix(monkeypatch):
    import scipy.sparse

    monkeypatch.setattr(vt.sklearn.inputs, "MAX_DENSE_BYTES", 10_000)  # (a small limit: the same check, cheaply)
    X = scipy.sparse.random(40, 50, density=0.1, format="csr", random_state=0)  # 16 000 bytes dense
    y = np.arange(40) % 2
    with pytest.raises(ValueError, match=r"X is a sparse matrix of shape \(40, 50\) with 200 stored values; the "
                                         r"network trains on dense arrays.*TruncatedSVD"):
        vt.MLPClassifier(epochs=1).fit(X, y)
    with pytest.raises(ValueError, match=r"X is a sparse matrix of shape \(40, 50\)"):
        vt.PopulationSearchCV(vt.MLPClassifier(epochs=1), {"learning_rate": [0.01, 0.1]}, cv=2).fit(X, y)
    monkeypatch.setattr(vt.sklearn.inputs, "MAX_DENSE_BYTES", 16_000)
    assert vt.MLPClassifier(epochs=1, random_state=0).fit(X, y).predict(X).shape == (40,)


def test_ctrl_c_in_a_search_stops_fit_and_keeps_what_trained_on_the_exception(iris, monkeypatch):
    """Ctrl-C raises out of fit, as from scikit-learn's: nothing is selected or refit (fit returned
    a 'fitted' search whose best was candidate 0 of NaN scores, then refit it on all of X)."""
    from helpers import ctrl_c_at_chunk

    ctrl_c_at_chunk(monkeypatch, 2)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=4, batch_size=32), {"learning_rate": [0.01, 0.1]},
                                   cv=2, early_stopping=2)
    with pytest.raises(KeyboardInterrupt) as stopped:
        search.fit(*iris)
    assert "no candidate was selected or refit" in stopped.value.__notes__[0]
    assert len(stopped.value.results) == 2 and stopped.value.results.settings["interrupted"]
    assert not hasattr(search, "best_estimator_") and not hasattr(search, "cv_results_")


def test_a_search_with_a_run_dir_goes_on_where_a_ctrl_c_stopped_it_to_the_uninterrupted_scores(iris, monkeypatch,
                                                                                               tmp_path):
    """PopulationSearchCV(run_dir=...) keeps the search as it trains: a fit stopped by Ctrl-C goes
    on from its checkpoint when fit is called again (training only what was left, to the scores an
    uninterrupted fit gets); a finished one is read back, only its refit trains; a fit on other rows
    is refused, naming the run_dir (before, a stopped search's every epoch was lost)."""
    from helpers import ctrl_c_at_chunk
    import importlib

    from vmaptune import costs, engine

    tune_module = importlib.import_module("vmaptune.tune")

    def search(run_dir=None):
        return vt.PopulationSearchCV(vt.MLPClassifier(epochs=6, batch_size=32), {"learning_rate": [0.01, 0.03, 0.1]},
                                     n_iter=3, cv=2, early_stopping=3, run_dir=run_dir)

    whole = search().fit(*iris)
    monkeypatch.setattr(tune_module, "MID_ROUND_SECONDS", 0.0)  # (a checkpoint at every chunk's end)
    ctrl_c_at_chunk(monkeypatch, 4)
    run_dir = str(tmp_path / "search")
    stopped = search(run_dir)
    with pytest.raises(KeyboardInterrupt) as interrupted:
        stopped.fit(*iris)
    assert f"It is kept in run_dir={run_dir!r}: fit again" in interrupted.value.__notes__[0]
    monkeypatch.undo()
    monkeypatch.setattr(costs, "QUICK_COMPILE_SAVES", 0.0)
    chunks, train_chunk = [], engine.train_chunk

    def counted(*args, **kwargs):
        chunks.append(1)
        return train_chunk(*args, **kwargs)

    counted.lower = train_chunk.lower
    monkeypatch.setattr(engine, "train_chunk", counted)
    stopped.set_params(refit=False).fit(*iris)
    assert len(chunks) == 3  # (the 3 epochs left of 6: one chunk each)
    np.testing.assert_array_equal(stopped.cv_results_["mean_test_score"], whole.cv_results_["mean_test_score"])
    chunks.clear()
    assert search(run_dir).set_params(refit=False).fit(*iris).best_params_ == whole.best_params_ and not chunks
    # (to float rounding: the refit here is compiled without the quick compile the first one had)
    np.testing.assert_allclose(search(run_dir).fit(*iris).predict_proba(iris[0]), whole.predict_proba(iris[0]),
                               rtol=1e-4, atol=1e-6)
    assert clone(search(run_dir)).get_params()["run_dir"] == run_dir


def test_a_search_kept_in_a_run_dir_is_refused_in_the_estimators_words(iris, tmp_path):
    """What cannot go on from a run_dir is said as the estimator's user acts (fit again, another
    run_dir), not in vt.tune's resume= / overwrite= / --out, which PopulationSearchCV does not
    take; the rows are not counted as vt.tune pools them; a splitter shuffling without a seed
    (other folds at every fit: never resumable) is refused before anything trains."""
    from sklearn.model_selection import KFold

    from vmaptune import run_dir as run_dirs

    def search(run_dir, **given):
        return vt.PopulationSearchCV(vt.MLPClassifier(epochs=2, batch_size=32, n_units=4),
                                     {"learning_rate": [0.01, 0.1]}, n_iter=2, run_dir=run_dir, **{"cv": 2, **given})

    run_dir = str(tmp_path / "search")
    search(run_dir).fit(*iris)
    for given, rows, differs in (({"random_state": 1}, iris, r"random_state\.[^\n]*\n  settings.seed: saved 0\n"),
                                 ({}, (iris[0][:100], iris[1][:100]), r"the rows \(X, y, groups or sample_weight\)\."),
                                 ({"param_distributions": {"learning_rate": [0.01, 0.2]}}, iris,
                                  r"param_distributions or the estimator's own settings\."),  # (not its grid strategy)
                                 ({"scoring": "balanced_accuracy"}, iris, r"scoring\."),
                                 ({"early_stopping": 2}, iris, r"early_stopping\.")):
        with pytest.raises(ValueError, match=rf"^PopulationSearchCV\(run_dir='.*search'\) holds a search that differs "
                                             rf"from this one in: {differs}") as refused:
            search(run_dir).set_params(**given).fit(*rows)
        told = str(refused.value)
        assert "resume=" not in told and "overwrite" not in told and "--out" not in told and "149 train" not in told
    held = run_dirs.Claim(run_dir)  # (another fit writing there now)
    with pytest.raises(vt.RunDirInUseError, match=r"^PopulationSearchCV\(run_dir='.*search'\): another fit or run is "
                                                  r"writing there now \(pid \d+ .*\)\. Fit again once it has ended"):
        search(run_dir).fit(*iris)
    held.release()
    shutil.rmtree(os.path.join(run_dir, "checkpoints"))
    with pytest.raises(FileNotFoundError, match=r"holds a search's results but no checkpoints/ folder \(removed\?\), "
                                                r"so fit cannot go on from it.*Give this search another run_dir"):
        search(run_dir).fit(*iris)
    with pytest.raises(ValueError, match=r"^cv=KFold\(n_splits=2, random_state=None, shuffle=True\) gives other folds "
                                         r"at every fit .*could never go on.*KFold\(\.\.\., random_state=0\), or leave "
                                         r"run_dir out\.$"):
        search(str(tmp_path / "other"), cv=KFold(2, shuffle=True)).fit(*iris)
    assert not os.path.exists(tmp_path / "other")
    # (a RandomState deals the same folds in a new process, as after a kill; a fit again in one process: others)
    moving = search(str(tmp_path / "moving"), cv=KFold(2, shuffle=True, random_state=np.random.RandomState(0)))
    moving.fit(*iris)
    with pytest.raises(ValueError, match=r"differs from this one in: cv \(its folds\) \(cv's random_state, "
                                         r"RandomState, moves on at every split.*give it an integer\)"):
        moving.fit(*iris)


def test_a_search_kept_in_a_run_dir_says_how_to_go_on_in_the_estimators_words(iris, tmp_path, monkeypatch):
    """A write that fails (a full disk) says to fit again, not vt.tune(..., resume=True)."""
    import errno

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(vt.Results, "save", full)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=2, batch_size=32, n_units=4), {"learning_rate": [0.01]},
                                   n_iter=1, cv=2, run_dir=str(tmp_path / "search"))
    with pytest.raises(OSError, match="No space left on device") as failed:
        search.fit(*iris)
    assert "PopulationSearchCV.fit again with the same rows and settings" in failed.value.__notes__[0]
    assert "resume=True" not in failed.value.__notes__[0]


def test_a_search_stopped_before_any_validated_epoch_says_so_not_that_its_members_diverged(iris, monkeypatch):
    """Without early stopping a search validates after its last epoch: stopped before it, every
    member is interrupted without a score, which best_params blamed on divergence (a lower range)."""
    from helpers import ctrl_c_at_chunk

    ctrl_c_at_chunk(monkeypatch, 2)
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=4, batch_size=32), {"learning_rate": [0.01, 0.1]}, cv=2)
    with pytest.raises(KeyboardInterrupt) as stopped:
        search.fit(*iris)
    told = stopped.value.results.failure()
    assert told.startswith("all 2 of 2 members were interrupted before any of their epochs was validated") and \
        "diverged" not in told


def test_ctrl_c_in_an_estimators_fit_stops_it_within_a_quarter_of_its_epochs(iris, monkeypatch):
    """One compiled call trained every epoch: a Ctrl-C waited for all of them, then raised. The fit
    trains in chunks of a divisor of its epochs (one program), each as the one call trained (where
    the divisor is not too small: a prime number of epochs trains in one call, as before)."""
    from helpers import ctrl_c_at_chunk

    assert [vt.sklearn.inputs._fit_chunk(e) for e in (1, 2, 16, 100, 199, 200, 3000, 997)] == [1, 1, 2, 10, 199, 25, 375,
                                                                                        997]
    whole = vt.MLPClassifier(n_units=8, epochs=16, random_state=0).fit(*iris).predict_proba(iris[0])
    monkeypatch.setattr(vt.sklearn.estimators, "_fit_chunk", lambda epochs: epochs)  # (one call, as before)
    np.testing.assert_array_equal(vt.MLPClassifier(n_units=8, epochs=16, random_state=0).fit(*iris)
                                  .predict_proba(iris[0]), whole)
    monkeypatch.undo()
    ctrl_c_at_chunk(monkeypatch, 2)
    clf = vt.MLPClassifier(n_units=8, epochs=16, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(*iris)
    assert not hasattr(clf, "model_")


def test_ctrl_c_in_the_refit_leaves_the_search_kept_and_no_earlier_fits_model_behind_it(iris, monkeypatch):
    """A search fitted again and stopped while its best candidate refits: its cv_results_ and
    best_params_ are the new search's, and best_estimator_ is unfitted (as scikit-learn's), not
    the earlier fit's model predicting behind the new best_params_."""
    from sklearn.exceptions import NotFittedError

    search = vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, epochs=2, batch_size=32),
                                   {"learning_rate": [0.01, 0.02]}, cv=2).fit(*iris)
    assert search.best_estimator_.predict(iris[0][:2]).shape == (2,)
    fit = vt.MLPClassifier.fit

    def interrupted_refit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(vt.MLPClassifier, "fit", interrupted_refit)
    search.set_params(param_distributions={"learning_rate": [0.05, 0.1]})
    with pytest.raises(KeyboardInterrupt) as stopped:
        search.fit(*iris)
    monkeypatch.setattr(vt.MLPClassifier, "fit", fit)
    assert "the refit of the best candidate did not" in stopped.value.__notes__[-1]
    assert stopped.value.results is search.search_results_
    assert search.best_params_["learning_rate"] in (0.05, 0.1)
    assert search.best_estimator_.learning_rate == search.best_params_["learning_rate"]
    with pytest.raises(NotFittedError):
        search.predict(iris[0][:2])
    search.best_estimator_.fit(*iris)  # (the fix the note names)
    assert search.predict(iris[0][:2]).shape == (2,)


def test_a_fit_cut_short_or_refused_leaves_the_estimator_as_it_was(iris, monkeypatch):
    """classes_ and n_features_in_ are set before training, model_ after: a second fit stopped
    between them paired the new data's classes with the earlier fit's network. A fit that raises
    (Ctrl-C, a refused input) leaves the earlier fit whole, as scikit-learn's estimators do; so
    does a search stopped before its search is done."""
    X, y = iris
    clf = vt.MLPClassifier(n_units=8, epochs=1, random_state=0).fit(X, y)
    before = clf.predict_proba(X[:3])
    train = vt.sklearn.estimators.PopulationRun.train
    monkeypatch.setattr(vt.sklearn.estimators.PopulationRun, "train", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X[:, :2], np.where(y == 0, "setosa", "other"))
    monkeypatch.setattr(vt.sklearn.estimators.PopulationRun, "train", train)
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(np.where(X > 7, np.nan, X), y)
    assert clf.n_features_in_ == 4 and clf.classes_.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(clf.predict_proba(X[:3]), before)
    search = vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, epochs=2, batch_size=32),
                                   {"learning_rate": [0.01, 0.02]}, cv=2).fit(X, y)
    fitted = {n: v for n, v in vars(search).items() if n.endswith("_")}
    from helpers import ctrl_c_at_chunk

    ctrl_c_at_chunk(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        search.fit(X, np.where(y == 0, "setosa", "other"))
    assert {n: v for n, v in vars(search).items() if n.endswith("_")} == fitted
    assert search.predict(X[:3]).tolist() == [0, 0, 0]


def test_a_network_diverged_in_its_first_epoch_fits_with_a_warning_and_predicts_nothing_silently():
    """No epoch ended with a finite loss: loss_ is NaN (it was an IndexError out of fit), and its
    model is marked diverged: predict refuses it (its outputs were -inf; a network that diverged
    later kept finite weights of the step before, and predicted with them)."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_diabetes(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="training diverged"):
        regressor = vt.MLPRegressor(epochs=2, learning_rate=1e6, optimizer="sgd", random_state=0).fit(X, y)
    assert np.isnan(regressor.loss_) and np.isnan(regressor.best_loss_) and regressor.n_iter_ == 0
    assert regressor.model_.info["diverged_at_epoch"] == 1
    for call in (regressor.predict, lambda X: regressor.score(X, y[:5])):
        with pytest.raises(ValueError, match=r"this model's training diverged at epoch 1 \(a non-finite loss\).* Train "
                                             r"it again with a lower learning rate"):
            call(X[:5])
    # with early stopping no epoch scored before it diverged: no best epoch's weights to keep (it kept its
    # first, untrained ones, and said it kept its best epoch's)
    with pytest.warns(ConvergenceWarning, match=r"training diverged .*; the model refuses to predict"):
        stopped = vt.MLPRegressor(epochs=2, learning_rate=1e6, optimizer="sgd", random_state=0,
                                  early_stopping=True).fit(X, y)
    assert stopped.best_epoch_ == 0 and stopped.model_.info["diverged_at_epoch"] == 1


def test_the_trained_model_is_a_fitted_estimator_to_scikit_learns_scorers_and_frozen_pipelines(iris):
    from sklearn.base import is_classifier
    from sklearn.frozen import FrozenEstimator
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import get_scorer, roc_auc_score
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris
    model = vt.MLPClassifier(n_units=8, epochs=3, random_state=0).fit(X, y).model_
    assert is_classifier(model)
    assert get_scorer("roc_auc_ovr")(model, X, y) == pytest.approx(roc_auc_score(y, model.predict_proba(X),
                                                                                 multi_class="ovr"))
    assert permutation_importance(model, X, y, n_repeats=2, random_state=0).importances_mean.shape == (4,)
    frozen = make_pipeline(FunctionTransformer(), FrozenEstimator(model)).fit(X, y)
    assert frozen.score(X, y) == model.score(X, y)
    with pytest.raises(TypeError, match=r"is trained already and has no fit of its own: .*FrozenEstimator"):
        make_pipeline(FunctionTransformer(), model).fit(X, y)


def test_set_params_takes_hyperparameters_and_fields_beside_them_in_either_order():
    from user_models import CNN

    for params in ({"features": 4, "hyperparameters": {"dropout": 0.1}},
                   {"hyperparameters": {"dropout": 0.1}, "features": 4}):
        estimator = vt.NetworkClassifier(vt.Linen(CNN), {"features": 8}).set_params(**params)
        assert estimator.hyperparameters == {"dropout": 0.1, "features": 4}
    pipeline = make_pipeline(StandardScaler(), vt.NetworkClassifier(vt.Linen(CNN)))
    pipeline.set_params(networkclassifier__features=4, networkclassifier__hyperparameters={"dropout": 0.1})
    assert pipeline[-1].hyperparameters == {"dropout": 0.1, "features": 4}
    # a misspelt field is refused as the estimator's (its user wrote no space: "space has 'featurs'" said)
    X = np.zeros((20, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match=r"^NetworkClassifier was given \(hyperparameters= or set_params\) 'featurs', "
                                         r"which the model and optimizer do not read. Did you mean 'features'\?"):
        vt.NetworkClassifier(vt.Linen(CNN), epochs=1).set_params(featurs=4).fit(X, np.arange(20) % 2)


def test_a_class_the_estimators_validation_fraction_misses_is_said_in_the_estimators_terms(iris):
    """fit takes no split given apart: the fix is the estimator's validation_fraction (or more rows)."""
    X, y = iris
    few = np.r_[np.flatnonzero(y == 0)[:5], np.flatnonzero(y == 1)[:5]]  # 10 rows, 5 per class: 0.1 holds out one
    labels = np.array(["setosa", "versicolor"])[y[few]]
    with pytest.warns(UserWarning, match=r"MLPClassifier\(validation_fraction=0.1\) holds out no row of class\(es\) "
                                         r"\['(setosa|versicolor)'\]: early stopping's scores cannot see them. Raise "
                                         r"validation_fraction") as said:
        vt.MLPClassifier(epochs=2, batch_size=4, early_stopping=True).fit(X[few], labels)
    assert [w.filename for w in said if "holds out" in str(w.message)] == [__file__]  # (the fit's line, not contextlib)
    rare = np.r_[labels, ["rare"]]  # a class of one row, named by its label (it said the class's index, [2])
    with pytest.warns(UserWarning, match=r"y's class\(es\) \['rare'\] have a single row each"):
        vt.MLPClassifier(epochs=1, batch_size=4, early_stopping=True).fit(X[np.r_[few, 0]], rare)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vt.MLPClassifier(epochs=2, batch_size=4, early_stopping=True).fit(X[few], y[few])
    assert not any("from_arrays" in str(w.message) or "val_fraction" in str(w.message) for w in caught)


def test_a_searched_batch_size_is_not_checked_against_the_estimators_own(iris):
    """The estimator's batch_size is not read where the search gives each candidate one (as
    scikit-learn's searches set it); it was handed to vt.tune, which refused it as batch_size=0."""
    X, y = iris
    search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=1, batch_size=0), {"batch_size": [16, 32]}, n_iter=2, cv=2,
                                   random_state=0).fit(X, y)
    assert search.best_estimator_.batch_size in (16, 32)


def test_what_was_pickled_before_vmaptune_sklearn_and_vmaptune_data_became_packages_still_loads():
    """A pickle names a class by its module: vmaptune.sklearn._MetricScorer (a search's scorer_ under a
    vt.Metric) stopped loading once the class moved into vmaptune.sklearn.search_cv."""
    import pickle

    from vmaptune.data import DataSpec, SplitMissesClassWarning
    from vmaptune.sklearn import search_cv

    for cls, before in ((search_cv._MetricScorer, "vmaptune.sklearn"), (vt.PopulationSearchCV, "vmaptune.sklearn"),
                        (vt.MLPClassifier, "vmaptune.sklearn"), (vt.NetworkRegressor, "vmaptune.sklearn"),
                        (vt.Dataset, "vmaptune.data"), (DataSpec, "vmaptune.data"),
                        (SplitMissesClassWarning, "vmaptune.data")):
        text = pickle.dumps(cls, protocol=0)  # (protocol 0: the module's name as a line of text)
        assert cls.__module__.encode() + b"\n" in text
        assert pickle.loads(text.replace(cls.__module__.encode() + b"\n", before.encode() + b"\n")) is cls
