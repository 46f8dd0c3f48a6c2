"""PopulationSearchCV: scikit-learn's search interface (RandomizedSearchCV's arguments,
cv_results_, best_params_, best_estimator_) over a vt.tune whose candidates x folds train as one
population, then a refit of the best on all of X."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import numbers
import os
import re
import time
import warnings
from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import check_scoring, get_scorer
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted
from sklearn.utils.metaestimators import available_if

from vmaptune.checkpoint import RunMismatch
from vmaptune.cv_splits import (Splits, check_r2_folds, checked_splits, describe, moves_on, resolve_cv,
                                shuffles_unseeded)
from vmaptune import run_dir as run_dirs
from vmaptune.arguments import check_int_at_least
from vmaptune.data import Dataset, check_sample_weight
from vmaptune.early_stopping import EarlyStopping
from vmaptune.metrics import NOT_THE_SAME, Metric, errors_in_target_units
from vmaptune.models.base import Model
from vmaptune.models.mlp import MLP
from vmaptune.sklearn.estimators import RUN_PARAMETERS, _InitSignature, _Network, _NetworkParameters
from vmaptune.sklearn.inputs import (SKLEARN_NAMES, _AsBeforeIfItRaises, _batch, _check_learning_rate,
                                     _check_parameter_ranges, _check_tol, _classes_checked_here, _plain, _seed,
                                     _validation_tol, convergence)
from vmaptune.space import Choice, Distribution, Fixed, IntUniform, LogUniform, Space, Uniform
from vmaptune.strategies.base import check_strategy
from vmaptune.warn import warn

__all__ = ["PopulationSearchCV", "to_space"]

#: scikit-learn search arguments PopulationSearchCV does not take -> why, and what to do instead.
SEARCH_NAMES = {"param_grid": "give the grid as param_distributions (lists only: the whole grid when it holds at "
                              "most n_iter points)"}
DEFAULT_N_ITER = 64
#: scikit-learn scoring names -> vmaptune metrics (scores higher-is-better in both).
SCORING = {"accuracy": "accuracy", "neg_log_loss": "neg_log_loss", "balanced_accuracy": "balanced_accuracy",
           "f1_macro": "f1_macro", "roc_auc": "roc_auc", "roc_auc_ovr": "roc_auc_ovr", "r2": "r2",
           "neg_mean_squared_error": "neg_mse", "neg_mean_absolute_error": "neg_mae"}
SCORING_TASKS = {"classification": ("accuracy", "neg_log_loss", "balanced_accuracy", "f1_macro", "roc_auc", "roc_auc_ovr"),
                 "regression": ("r2", "neg_mse", "neg_mae")}


#: The parts of a run_dir's search (checkpoint.py's spec) as PopulationSearchCV's user gives them.
_KEPT_SEARCH_PARTS = {"data": "the rows (X, y, groups or sample_weight)",
                      "space": "param_distributions or the estimator's own settings",
                      "model": "the estimator's network", "strategy": "strategy or n_iter",
                      "settings.seed": "random_state", "settings.metric": "scoring",
                      "settings.evaluate_every": "early_stopping or epochs",
                      "settings.cv": "cv (its folds)", "version": "the vmaptune version"}


def _kept_search_parts(parts: list[str], strategy_given: bool) -> str:
    """The differing parts of a kept search (RunMismatch.differing: 'space.n_units', 'settings.seed',
    ...) said as PopulationSearchCV's arguments, each once."""
    said = []
    for part in parts:
        top, _, key = part.partition(".")
        if top == "strategy" and not strategy_given and any(p.startswith("space") for p in parts):
            continue  # (the search's own grid strategy holds the grid's values: param_distributions said it)
        if part == "settings.evaluate_every" and {"settings.epochs", "settings.early_stopping"} & set(parts):
            continue  # (set from those two)
        said.append(_KEPT_SEARCH_PARTS.get(top if top == "space" else part, key or top))
    return ", ".join(dict.fromkeys(said))


@contextlib.contextmanager
def _continued_by_fitting_again():
    """vt.tune's stop warnings (SIGTERM) say how the estimator's user goes on, not vt.tune's resume=."""
    from vmaptune.tune import HOW_TO_CONTINUE

    token = HOW_TO_CONTINUE.set("PopulationSearchCV.fit again with the same rows and settings")
    try:
        yield
    finally:
        HOW_TO_CONTINUE.reset(token)


# -- the search ---------------------------------------------------------------------------------------------
def _default_strategy(distributions: Any, n_iter: int):
    """Random search of n_iter candidates; when every parameter is a list, n_iter distinct points
    of their grid (the whole grid once when it holds at most n_iter, with scikit-learn's warning),
    as scikit-learn's ParameterSampler samples lists without replacement: drawing each list
    independently would repeat points and miss others."""
    from vmaptune.strategies.grid import GridSearch
    from vmaptune.strategies.random_search import RandomSearch

    # (a lone value is a grid of one point: as a Fixed among only Fixed values, random search would
    # train n_iter copies of one setting)
    one = (lambda v: isinstance(v, (str, bool, numbers.Number)))
    lists = isinstance(distributions, Mapping) and all(
        isinstance(v, (list, tuple, np.ndarray, range)) or one(v) for v in distributions.values())
    if not lists:
        return RandomSearch(population=n_iter)
    grid = {k: [_plain(values)] if one(values) else [_plain(v) for v in values] for k, values in distributions.items()}
    size = int(np.prod([len(v) for v in grid.values()]))
    if size < n_iter:
        warn(f"The total space of parameters {size} is smaller than n_iter={n_iter}. Running {size} "
             f"iterations: the whole grid, once each (lists only, as here, make a grid search; "
             f"pass n_iter={size} to run it without this warning).", UserWarning)
    if size <= n_iter:
        return GridSearch(values=grid, population=size)
    return GridSearch(values=grid, population=n_iter, sample=n_iter)


def _check_parameters(estimator: _Network, names) -> None:
    """Every searched name is a parameter of the estimator (the refit sets them), before anything
    compiles: `epochs` is the run's, and a setting the MLP reads without an estimator parameter
    would fail only at the refit. (vt.NetworkClassifier / Regressor take any name: their model's.)"""
    valid = estimator.get_params(deep=False)
    for name in names:
        if name == "epochs":
            raise ValueError("param_distributions names 'epochs', a run setting, not a searched one: give "
                             "PopulationSearchCV(epochs=...), or strategy=vt.SuccessiveHalving(...) to give the "
                             "best candidates more epochs.")
        if name in RUN_PARAMETERS and name != "batch_size":
            raise ValueError(f"param_distributions names {name!r}, a setting of the training run, not a hyperparameter "
                             f"of the network: set it on the estimator ({type(estimator).__name__}({name}=...)); "
                             f"for early stopping, PopulationSearchCV(early_stopping=vt.EarlyStopping(...)).")
        if name in SKLEARN_NAMES:
            raise ValueError(f"param_distributions names {name!r}, scikit-learn's name; vmaptune's is "
                             f"{SKLEARN_NAMES[name]}.")
        if name not in valid and not isinstance(estimator, _NetworkParameters):  # those route any name
            close = difflib.get_close_matches(name, sorted(valid), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"param_distributions names {name!r}, which {type(estimator).__name__} has no parameter "
                             f"for.{hint} Its parameters: {sorted(valid)}. For vmaptune's other settings, search "
                             f"vt.NetworkClassifier / vt.NetworkRegressor(vt.MLP(), hyperparameters={{...}}) or "
                             f"use vt.tune.")


def to_space(distributions: Any, fixed: Mapping[str, Any] | None = None) -> Space:
    """A vt.Space from scikit-learn style distributions (a dict name -> list of values, or a
    scipy.stats distribution: loguniform / reciprocal -> LogUniform, uniform -> Uniform, randint ->
    IntUniform; a plain value -> Fixed), or a vt.Space as is; `fixed` adds Fixed values for the
    names it does not search."""
    if isinstance(distributions, Space):
        given = dict(zip(distributions.names, (distributions[n] for n in distributions.names)))
    elif isinstance(distributions, Mapping):  # ({}: one candidate of the fixed values, as in scikit-learn)
        given = {name: _distribution(name, value) for name, value in distributions.items()}
    elif isinstance(distributions, (list, tuple)) and distributions and all(isinstance(d, Mapping) for d in distributions):
        raise TypeError(f"param_distributions is a list of {len(distributions)} dicts, scikit-learn's way to search "
                        f"parameters that matter only for some settings; give one vt.Space whose conditional names say "
                        f"so, e.g. vt.Space(optimizer=vt.Choice(['sgd', 'adam']), momentum=vt.Choice([0.5, 0.9]))"
                        f".only_when('momentum', optimizer='sgd'), or run one search per dict.")
    else:
        raise TypeError(f"param_distributions must be a vt.Space or a dict name -> values or scipy.stats "
                        f"distribution, got {type(distributions).__name__}.")
    extra = {k: Fixed(_plain(v)) for k, v in (fixed or {}).items() if k not in given and v is not None}
    if isinstance(distributions, Space):
        return distributions.replace(**extra) if extra else distributions
    return Space({**given, **extra})


def _distribution(name: str, value: Any) -> Distribution:
    if isinstance(value, Distribution):
        return value
    dist = getattr(value, "dist", None)
    if dist is not None:  # a frozen scipy.stats distribution
        kind = dist.name
        low, high = value.support()  # loc and scale applied (randint's high inclusive)
        if np.isnan(low) or np.isnan(high):  # (scipy's support of invalid arguments, a width of 0: nan)
            raise ValueError(f"param_distributions[{name!r}]: scipy.stats.{kind}{tuple(value.args)} spans "
                             f"{low}..{high}, not a range of values (a width of 0?); give a range with low < high, or "
                             f"one value in a list ({name!r}: [value]).")
        if kind in ("loguniform", "reciprocal"):
            shift = value.args[2] if len(value.args) > 2 else value.kwds.get("loc", 0.0)
            if shift:  # a shifted log-uniform is not log-uniform over its support
                raise ValueError(f"param_distributions[{name!r}]: scipy.stats.{kind} with loc={shift!r} is not "
                                 f"log-uniform; drop loc (scale is fine) or give vt.LogUniform(low, high).")
            return LogUniform(float(low), float(high))
        if kind == "uniform":
            return Uniform(float(low), float(high))
        if kind == "randint":
            return IntUniform(int(low), int(high))
        raise ValueError(f"param_distributions[{name!r}]: scipy.stats.{kind} has no vmaptune equivalent; use "
                         f"loguniform / reciprocal, uniform, randint, a list of values, or a vt distribution.")
    if hasattr(value, "rvs") and hasattr(value, "pmf"):  # (scipy.stats.rv_discrete(values=...): not frozen)
        raise ValueError(f"param_distributions[{name!r}]: a scipy.stats.rv_discrete has no vmaptune equivalent; give "
                         f"its values as a list (a vt.Choice draws each alike), or a vt distribution.")
    if isinstance(value, (list, tuple, np.ndarray, range)):
        values = [_plain(v) for v in value]
        if not values:
            raise ValueError(f"param_distributions[{name!r}] is empty; give at least one value.")
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values) and \
                sorted(values) == list(range(min(values), max(values) + 1)) and len(values) > 2:
            return IntUniform(min(values), max(values))  # a range of integers: searched in order
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:  # (scikit-learn's sampler weighs a value by its repeats; a vt.Choice draws each alike)
            raise ValueError(f"param_distributions[{name!r}]={values!r} lists {repeated[0]!r} more than once: give "
                             f"each value once (a vmaptune Choice draws its values equally often; to search one "
                             f"region more finely, list more values there).")
        if name == "batch_size" and "auto" in values:
            _refuse_auto_batch(values)
        return Choice(values) if len(values) > 1 else Fixed(values[0])
    if isinstance(value, (numbers.Number, str)):
        if name == "batch_size" and value == "auto":
            _refuse_auto_batch(value)
        return Fixed(_plain(value))
    raise TypeError(f"param_distributions[{name!r}]={value!r}: give a list of values, a scipy.stats distribution "
                    f"or a vt distribution.")


def _refuse_auto_batch(given: Any) -> None:
    """batch_size='auto' among searched values: the estimators' spelling of scikit-learn's default,
    not a size the search can draw (vt.tune's message named its integer distributions)."""
    raise ValueError(f"param_distributions['batch_size']={given!r}: 'auto', the estimators' (and scikit-learn's) "
                     f"default batch size, min(200, rows), is not a size the search can draw; give 200 in its place "
                     f"(a fold of fewer rows then trains on all of them in one batch, as 'auto' does).")


def _check_refit(search) -> None:
    if not search.refit:
        raise AttributeError("PopulationSearchCV(refit=False) keeps no best_estimator_; fit with refit=True to "
                             "predict.")


def _best_estimator_has(name: str):
    """available_if's check, as scikit-learn's searches: a search with refit=False, or whose
    estimator lacks `name` (predict_proba of a regressor), has no such method (hasattr is False)."""
    def check(search) -> bool:
        _check_refit(search)
        getattr(getattr(search, "best_estimator_", search.estimator), name)
        return True
    return check


class PopulationSearchCV(BaseEstimator):
    """scikit-learn's search interface (RandomizedSearchCV's attributes), with every candidate on
    every fold trained at once as one population (`vt.tune(..., cv=cv)`).

    estimator: vt.MLPClassifier / MLPRegressor / NetworkClassifier / NetworkRegressor (its
      parameters not searched stay fixed). param_distributions: a vt.Space, or a dict in
      scikit-learn's style (lists; scipy.stats loguniform, reciprocal, uniform, randint).
    strategy: any vt strategy (default vt.RandomSearch(population=n_iter); lists only, whose grid has at
    most n_iter points: vt.GridSearch of the whole grid). cv: folds (int: stratified, shuffled by
    random_state), a scikit-learn splitter (GroupKFold with fit(X, y, groups=...)) or an iterable
    of (train, test) index arrays, as scikit-learn's searches take.
    scoring: None (the estimator's: accuracy / r2), a scikit-learn name (accuracy, neg_log_loss,
      balanced_accuracy, f1_macro, roc_auc, roc_auc_ovr, r2, neg_mean_squared_error,
      neg_mean_absolute_error) or a vt.Metric. refit: refit the best
      on all of X (best_estimator_): for all its epochs, or with early stopping for the epochs
      the search chose (see below for a callable).
    epochs: per candidate (default: the estimator's). early_stopping: a vt.EarlyStopping, or an
      int patience (default, when the estimator's early_stopping is on: its patience and tol on
      its validation_fraction of each fold's training rows, as under cross_val_score; else its
      training-loss convergence test when it has a tol).
      vt.EarlyStopping(validation_fraction=...) watches rows held out of each fold's training
      instead, so the rows a fold is scored on never choose its epoch.
    random_state: the seed of the candidates, folds and initial weights (None: 0, so a search
      repeats; scikit-learn's None draws anew). progress (or verbose > 0): show tqdm's bar.
    n_jobs, pre_dispatch: accepted so a RandomizedSearchCV call runs unchanged, and unused: every
      candidate-fold already trains at once in one program, on every device JAX sees.
    error_score: np.nan only (a candidate whose training diverges scores NaN and ranks last, with a
      warning). return_train_score: False only (training-fold scores are not computed).
    run_dir: None, or a directory that keeps the search as it trains (vt.tune's run_dir: its
      rounds and checkpoints). A fit killed, stopped by Ctrl-C or SIGTERM goes on from there when
      fit is called again with the same rows and settings, to the scores an uninterrupted fit
      gets; a search that finished there is read back, not trained again (the refit trains). A fit
      on other rows or with other settings is refused: give each search its own run_dir.
    refit: True, False, or a callable(cv_results_) -> best_index_ (scikit-learn's; best_score_
      is then not set).
    Lists only (no distribution): n_iter distinct points of their grid, the whole grid when it
      holds fewer (scikit-learn's ParameterSampler); {}: one candidate, the estimator as it is set.

    Scores: without early stopping, or with the training-loss test, each fold's score after its
    last epoch, as scikit-learn scores a fitted estimator (the best epoch of a noisy curve would
    flatter noisy candidates); with early stopping on validation data, the scores at the epoch
    where the folds' mean peaked (the weights it keeps), or with validation_fraction each fold's
    score at the epoch its held-out rows chose; the refit trains for that epoch (the folds' mean
    of them). Without any early stopping the folds
    are validated only after their last epoch (`vt.tune(evaluate_every=...)`): the per-epoch
    validation curves of search_results_ are then empty before it.
    Successive halving, Hyperband or BOHB as the strategy (scikit-learn's HalvingRandomSearchCV,
    in one population): a rung ranks candidates by their folds' mean score scored the same way
    (rank_by="last" unless the strategy sets rank_by), cv_results_ adds "iter" (the last rung each
    reached) and "n_resources" (the epochs it trained), and best_index_ is the best of the
    candidates trained longest, as scikit-learn picks from its last iteration.
    cv_results_ has scikit-learn's keys and dtypes. Every candidate-fold trains in one program,
    so mean_fit_time is the search's training time divided evenly (std 0), and scoring happens
    inside the program: mean_score_time is 0.
    """

    __signature__ = _InitSignature()

    def __new__(cls, *args, **kwargs):
        # (scikit-learn's searches take these; Python's own error would not say why this one does not)
        for name in kwargs:
            if name in SEARCH_NAMES:
                raise TypeError(f"PopulationSearchCV({name}=...) is not offered: {SEARCH_NAMES[name]}; leave it "
                                f"out.")
        return super().__new__(cls)

    def __init__(self, estimator, param_distributions, *, strategy=None, n_iter=DEFAULT_N_ITER, cv=3, scoring=None, refit=True,
                 epochs=None, early_stopping=None, random_state=None, progress=False, n_jobs=None, verbose=0,
                 pre_dispatch="2*n_jobs", error_score=np.nan, return_train_score=False, run_dir=None):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.strategy = strategy
        self.n_iter = n_iter
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.progress = progress
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.pre_dispatch = pre_dispatch
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.run_dir = run_dir

    def _check(self):
        if not isinstance(self.estimator, _Network):
            name = type(self.estimator).__name__
            fix = (f" Wrap your model in an estimator that says the task: vt.NetworkClassifier({name}(...)) or "
                   f"vt.NetworkRegressor({name}(...))." if isinstance(self.estimator, Model) else "")
            if hasattr(self.estimator, "steps"):  # a Pipeline: the search goes inside it instead
                fix = (" Put the search inside the Pipeline instead: Pipeline([..., ('search', "
                       "vt.PopulationSearchCV(vt.MLPClassifier(), {...}))]), so each step before it is fitted on "
                       "the rows the search sees.")
            raise TypeError(f"estimator must be vt.MLPClassifier, vt.MLPRegressor, vt.NetworkClassifier or "
                            f"vt.NetworkRegressor, got {name}.{fix}")
        cv = self._cv
        if isinstance(cv, (bool, str, bytes, dict)) or (isinstance(cv, numbers.Integral) and cv < 2) or \
                not (isinstance(cv, numbers.Integral) or hasattr(cv, "split") or hasattr(cv, "__iter__")):
            raise ValueError(f"cv={cv!r}: give the number of folds (an integer >= 2), a scikit-learn splitter "
                             f"(KFold(5), StratifiedKFold(5, shuffle=True), GroupKFold(5) with fit(..., groups=)) "
                             f"or an iterable of (train, test) index arrays, as scikit-learn's searches take.")
        stopping = self.early_stopping
        if not (stopping is None or isinstance(stopping, EarlyStopping) or
                (isinstance(stopping, numbers.Integral) and not isinstance(stopping, bool) and stopping >= 1)):
            raise TypeError(f"early_stopping={stopping!r}: give a patience in epochs (an integer >= 1), "
                            f"vt.EarlyStopping(patience=...), or None (the estimator's own early_stopping / tol).")
        # (scikit-learn's defaults, which say what this search does, run unchanged; other values cannot)
        if not (isinstance(self.error_score, numbers.Real) and np.isnan(self.error_score)):
            raise ValueError(f"PopulationSearchCV(error_score={self.error_score!r}) is not offered: a candidate whose "
                             f"training diverges raises no error here; it scores NaN and ranks last, with a warning "
                             f"naming it, as error_score=np.nan (scikit-learn's default). Leave error_score out.")
        if not (isinstance(self.return_train_score, (bool, np.bool_)) and not self.return_train_score):
            raise ValueError(f"PopulationSearchCV(return_train_score={self.return_train_score!r}) is not offered: "
                             f"training-fold scores are not computed (each candidate's training loss per epoch is "
                             f"in search_results_.curves['train_loss']). Leave return_train_score out (False).")
        if self.epochs is not None:
            check_int_at_least("PopulationSearchCV: epochs", self.epochs, 1)
        check_int_at_least("PopulationSearchCV: n_iter", self.n_iter, 1)
        if self.strategy is not None:
            check_strategy(self.strategy)
            from vmaptune.strategies.pbt import PBT, PBTReplay

            if isinstance(self.strategy, (PBT, PBTReplay)):  # (its refit would train a constant, not what scored)
                raise ValueError(f"PopulationSearchCV(strategy={type(self.strategy).__name__}(...)): it changes a "
                                 f"candidate's values while it trains (and PBT copies weights between candidates), "
                                 f"so a candidate's params do not say what scored, and best_estimator_, the "
                                 f"estimator refit with best_params_, would train other values. Use "
                                 f"vt.tune(model, space, data, vt.PBT(...), refit=1), whose refit replays the "
                                 f"schedule that scored.")
        if self.strategy is not None and self.n_iter != DEFAULT_N_ITER:
            warn(f"PopulationSearchCV(n_iter={self.n_iter}) is not used: strategy={self.strategy!r} sets the "
                 f"candidates. Drop n_iter, or give the strategy the population you want.", UserWarning)
        if isinstance(self.scoring, (list, tuple, set, dict)):  # (before refit: refit names one of them)
            self._metric("classification")
        if not (isinstance(self.refit, bool) or callable(self.refit) or self.refit in ("score", self._scoring_name)):
            raise TypeError(f"refit={self.refit!r}: give True (refit the best on all of X), False, a "
                            f"callable(cv_results_) -> best_index_, or the scoring's own name "
                            f"({self._scoring_name!r}, as scikit-learn takes it); one scoring has no other metric "
                            f"to refit on.")

    def fit(self, X, y, groups=None, sample_weight=None, **fit_params):
        """Searches on X, y (groups: the group of each row, for a group splitter such as
        cv=GroupKFold(5); sample_weight: (n,) weights of the rows in every candidate's training loss
        and in the refit's, as scikit-learn passes fit parameters to the estimator; scores are not
        weighted, as scikit-learn's searches score). A fit that raises before its search is done
        (Ctrl-C, a refused input) leaves the search as it was; one cut short in its refit keeps the
        new search, its best_estimator_ unfitted."""
        with _AsBeforeIfItRaises(self) as kept:
            return self._fit(X, y, groups, sample_weight, kept, **fit_params)

    def _fit(self, X, y, groups, sample_weight, kept: _AsBeforeIfItRaises, **fit_params):
        from vmaptune.tune import tune

        if fit_params:
            name = next(iter(fit_params))
            fix = {"epochs": "set it on the search: PopulationSearchCV(..., epochs=...)",
                   "validation_data": "the search validates on its cv folds; PopulationSearchCV(early_stopping="
                                      "vt.EarlyStopping(patience=...)) stops on them"}.get(
                name, "set run settings on the search (epochs, early_stopping) or on the estimator")
            raise TypeError(f"PopulationSearchCV.fit(X, y, groups=None, sample_weight=None) got {name}=...: {fix}.")
        self._check()
        est = self.estimator
        X_given, y_given = X, y  # the refit takes them as given: a DataFrame's column names stay checked
        probe = clone(est)  # validation records n_features_in_ on the estimator: not on the user's
        X, y = probe._validate(X, y)
        self.n_features_in_ = probe.n_features_in_
        for name in ("feature_names_in_", "classes_"):  # (a fit before, on other data: as scikit-learn's reset)
            self.__dict__.pop(name, None)
        if hasattr(probe, "feature_names_in_"):
            self.feature_names_in_ = probe.feature_names_in_
        task = est._task
        if len(y) < 2:
            raise ValueError(f"PopulationSearchCV.fit: X has 1 sample (n_samples=1); cross-validation needs rows to "
                             f"train on and rows to score on: give at least cv={self._cv} rows.")
        if task == "classification":
            check_classification_targets(y)
            self.classes_, y_index = np.unique(y, return_inverse=True)
            _check_classes(self.classes_, np.bincount(y_index), self._cv)
        else:
            y_index = y
        distributions = _one_grid(self.param_distributions)
        if "learning_rate" not in _names(distributions):
            _check_learning_rate(type(est).__name__, est.learning_rate)
        elif isinstance(distributions, Mapping):  # (scikit-learn's schedules, a common tutorial grid)
            given = distributions["learning_rate"]
            values = given.options if isinstance(given, Choice) else [given] if isinstance(given, str) else \
                list(given) if isinstance(given, (list, tuple)) else \
                given.ravel().tolist() if isinstance(given, np.ndarray) else []
            for value in values:
                _check_learning_rate("param_distributions['learning_rate']: " + type(est).__name__, value)
        if isinstance(distributions, (Space, Mapping)):  # (to_space's error otherwise) before the values: a
            _check_parameters(est, _names(distributions))
        else:  # (a list of dicts, ...: named, never searched as nothing)
            to_space(distributions)
        # (a scikit-learn name such as hidden_layer_sizes may hold tuples; {} searches nothing)
        searched = to_space(distributions) if _names(distributions) else {}
        own = est._hyperparameters()
        fixed = {k: v for k, v in own.items() if k not in searched}
        # (the estimator's own settings said as its fit says them, before anything trains: vt.tune's checks
        # named the Fixed(...) they become, and a patience out of range was found by the refit, after the search)
        if self.epochs is None:
            check_int_at_least(f"{type(est).__name__}: epochs", est.epochs, 1)
        if "batch_size" not in searched and est.batch_size != "auto":
            check_int_at_least(f"{type(est).__name__}: batch_size", est.batch_size, 1)
        _check_parameter_ranges(type(est).__name__, {**fixed, "patience": est.patience})
        space = to_space(searched, fixed)
        model = est._model()
        if space.conditions:  # (where a name is not a candidate's setting it trains with the estimator's own value,
            # as best_estimator_, refit without it, then does; not the model's default)
            wanted = {k: _plain(v) for k, v in own.items() if k in space.conditions}
            space = space._with_otherwise(wanted)
            dropped = sorted(set(wanted) - set(space._otherwise))
            own_mlp = {k: wanted[k] for k in dropped if k in ("activation", "init")} if isinstance(model, MLP) else {}
            # (a name not among the options: vt.MLP's own, which it compiles in beside them)
            model = dataclasses.replace(model, **own_mlp) if own_mlp else model
            dropped = [k for k in dropped if k not in own_mlp]
            if dropped:  # (a categorical's index must be one of its options)
                name = dropped[0]
                warn(f"{type(est).__name__}({name}={wanted[name]!r}) is not among the searched values "
                     f"{list(getattr(space[name], 'options', [space[name]]))}: candidates for which {name} is not their "
                     f"setting (Space.only_when) "
                     f"train with the network's default, while best_estimator_, refit without {name}, trains "
                     f"{wanted[name]!r}. Add {wanted[name]!r} to the options to have both alike.", UserWarning)
        seed = _seed(self.random_state)
        data, pool_row = _pool_dataset(X, y_index, task, sample_weight)
        folds = self._folds(X, y, groups, task, pool_row, data, seed)
        metric = _in_target_units(self._metric(task), data)
        if metric == "r2" and isinstance(folds, Splits):  # (an integer cv's folds hold out 2 rows or more)
            given = "scoring='r2'" if self.scoring is not None else "scoring=None (the regressor's r2)"
            check_r2_folds([len(held) for _, held in folds.pairs], given, "scoring='neg_mean_squared_error'")
        stopping = self.early_stopping
        if isinstance(stopping, numbers.Integral) and not isinstance(stopping, bool):
            stopping = EarlyStopping(patience=int(stopping))
        elif stopping is None and est.early_stopping:
            # as the estimator fits under cross_val_score: each fold stops on its own validation_fraction of
            # its training rows (keeping its best weights), never on the rows it is scored on
            stopping = EarlyStopping(patience=int(est.patience), min_delta=_validation_tol(_check_tol(est.tol)),
                                     validation_fraction=float(est.validation_fraction), counting="scikit-learn")
        elif stopping is None:  # the estimator's own convergence test, if it has one
            stopping = convergence(est.patience, _check_tol(est.tol), data)
        strategy = self.strategy if self.strategy is not None else _default_strategy(distributions, int(self.n_iter))
        # Without early stopping on the folds' validation data a candidate is scored as scikit-learn
        # scores it (`final`): trained for all its epochs (or until its training loss converged). Its
        # best epoch would be a maximum over noisy epochs, and picking the largest of those favours
        # candidates whose curves are noisy (a high learning rate) over those that generalise.
        # Successive halving's rungs then rank candidates by the same score.
        final = stopping is None or stopping.monitor == "train_loss"
        if final and getattr(strategy, "rank_by", "") is None:  # (successive halving, Hyperband, BOHB)
            strategy = dataclasses.replace(strategy, rank_by="last")
        started = time.perf_counter()
        epochs = int(self.epochs or est.epochs)
        max_epochs = getattr(strategy, "max_epochs", None)  # (successive halving's last rung, Hyperband's)
        if max_epochs is not None and self.epochs is None:  # (as HalvingRandomSearchCV's max_resources decides)
            epochs = int(max_epochs)
        elif max_epochs is not None and epochs != max_epochs:
            raise ValueError(f"PopulationSearchCV(epochs={epochs}, strategy={type(strategy).__name__}(max_epochs="
                             f"{max_epochs})): the strategy's last rung trains max_epochs, so the two must agree: "
                             f"leave epochs out (the search then trains to max_epochs) or give epochs={max_epochs}.")
        # Without early stopping a fold is scored once, after its last epoch (`final`):
        # the validation pass of the other epochs would be a seventh of the training's work for
        # nothing. (A strategy of several rounds is told each round's best-epoch scores: it keeps them.)
        once = stopping is None and not strategy.acts_during_training and strategy.tune_rounds(space) == 1
        resume = self._resuming()
        with warnings.catch_warnings(), _continued_by_fitting_again():
            # (vt.tune's "returning ..." on Ctrl-C: fit raises it instead, below)
            warnings.filterwarnings("ignore", message="interrupted: returning", category=UserWarning)
            try:
                results = tune(model, space, data, strategy, epochs=epochs,
                               # (a searched batch_size sets each candidate's: the estimator's own is not read)
                               batch_size=_batch("auto" if "batch_size" in searched else est.batch_size),
                               even_batches=True, seed=seed, metric=metric, cv=folds,
                               early_stopping=stopping, progress=bool(self.progress or self.verbose),
                               evaluate_every=epochs if once else 1, run_dir=self.run_dir, resume=resume)
            except RunMismatch as err:  # (vt.tune's advice names its own arguments: resume=, overwrite=)
                differing = _kept_search_parts(err.differing, strategy_given=self.strategy is not None)
                if "settings.cv" in err.differing and moves_on(self.cv):
                    differing += (f" (cv's random_state, {type(self.cv.random_state).__name__}, moves on at every "
                                  f"split, so each fit in one process deals other folds: give it an integer)")
                # (each part as saved and now, but the rows: counted as vt.tune pools them, not as X holds them)
                shown = "\n".join(part for part in re.split(r"\n(?=  \S)", err.difference)
                                  if not part.startswith("  data:"))
                raise ValueError(f"PopulationSearchCV(run_dir={self.run_dir!r}) holds a search that differs from this "
                                 f"one in: {differing}. A fit goes on from the search kept in its run_dir only with "
                                 f"the same rows and settings: give this search its own run_dir, or delete that "
                                 f"directory to start again there." + (f"\n{shown}" if shown else "")) from None
            except run_dirs.RunDirInUseError as err:
                raise run_dirs.RunDirInUseError(
                    f"PopulationSearchCV(run_dir={self.run_dir!r}): another fit or run is writing there now "
                    f"({err.holder}). Fit again once it has ended (this fit then goes "
                    f"on from there), or give this search another run_dir.") from None
        if results.settings.get("interrupted"):  # Ctrl-C: as scikit-learn's fit, stop, selecting and refitting nothing
            stop = KeyboardInterrupt()
            stop.results = results
            again = (f" It is kept in run_dir={self.run_dir!r}: fit again with the same rows and settings to go on "
                     f"from there." if self.run_dir is not None else "")
            stop.add_note(f"PopulationSearchCV.fit was interrupted: no candidate was selected or refit (their "
                          f"folds trained {int(results.members['epochs_trained'].max())} of {epochs} epochs at "
                          f"most). What trained is kept on this exception: `err.results`, a vt.Results (except "
                          f"KeyboardInterrupt as err: ...).{again}")
            raise stop
        seconds = time.perf_counter() - started
        results.refit_elsewhere = ("PopulationSearchCV refits its best candidate itself, as scikit-learn's searches "
                                   "do: the trained model is search.best_estimator_ (its network: "
                                   "search.best_estimator_.model_) where refit=True, the default.")
        self.search_results_ = results
        self.n_splits_ = len(folds) if isinstance(folds, Splits) else folds
        self.cv_results_ = _cv_results(results, _names(searched), self.n_splits_, seconds,
                                       _score_unit(metric, data), final)
        failed = ~np.isfinite(self.cv_results_["mean_test_score"])
        failed &= (results.members["status"] == "diverged").to_numpy()  # (vt.tune warned of an undefined metric)
        if failed.any():  # (scikit-learn's searches warn of non-finite test scores too)
            shown = [self.cv_results_["params"][i] for i in np.flatnonzero(failed)[:3]]
            warn(f"{int(failed.sum())} of {len(failed)} candidates scored NaN (their training diverged), e.g. "
                 f"{shown}; they rank last. Narrow the ranges that lead there (often a learning rate too high).",
                 UserWarning)
        ranks = self.cv_results_["rank_test_score"]
        if "n_resources" in self.cv_results_:  # halving: only those trained longest compete for best
            ranks = np.where(self.cv_results_["n_resources"] == self.cv_results_["n_resources"].max(), ranks,
                             np.iinfo(ranks.dtype).max)
        if callable(self.refit):  # the user's choice of candidate, as scikit-learn's refit=callable
            self.best_index_ = _chosen_index(self.refit(self.cv_results_), len(ranks))
        else:
            self.best_index_ = int(np.argmin(ranks))  # the first of the best, as sklearn
            self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.best_params_ = self.cv_results_["params"][self.best_index_]
        self.scorer_ = self._scorer()
        self.multimetric_ = False
        if self.refit:
            kept.keep()  # (the search is done: a refit cut short keeps it)
            started = time.perf_counter()
            if not final:  # early stopping: for the epochs it chose (the folds' mean of them)
                epochs = int(results.members["best_epoch"].iloc[self.best_index_]) or epochs
            # (with the estimator's tol, its own fit stops where its training loss converges); chosen
            # by early stopping, the refit trains on all of X for exactly those epochs
            exact = {} if final else {"early_stopping": False, "tol": None}
            if est.random_state is None:  # (its own fit would draw anew: the search's seed, so a search repeats)
                exact["random_state"] = seed
            # (unfitted until its fit returns, as scikit-learn's searches: a refit cut short leaves no
            # model of an earlier fit behind the new best_params_)
            self.best_estimator_ = clone(est).set_params(**self.best_params_, epochs=epochs, **exact)
            try:
                self.best_estimator_.fit(X_given, y_given, sample_weight=sample_weight)
            except BaseException as err:
                if not hasattr(err, "results"):
                    err.results = results
                self.__dict__.pop("refit_time_", None)  # (an earlier fit's)
                err.add_note("PopulationSearchCV.fit: the search finished and its results are kept (cv_results_, "
                             "best_params_, search_results_; also err.results); the refit of the best candidate "
                             "did not, so best_estimator_ is unfitted: search.best_estimator_.fit(X, y, "
                             "sample_weight=...) refits it.")
                raise
            self.refit_time_ = time.perf_counter() - started
        return self

    def _resuming(self) -> bool:
        """Whether run_dir holds a search this fit goes on from (kept by a fit killed, interrupted or
        finished); refuses one that cannot be gone on from."""
        if self.run_dir is None or not isinstance(self.run_dir, (str, os.PathLike)):
            return False  # (vt.tune says what is wrong with a run_dir that is no path)
        path = os.path.realpath(self.run_dir)
        if run_dirs.holds_run(path) and run_dirs.results_without_checkpoints(path):
            raise FileNotFoundError(f"PopulationSearchCV(run_dir={self.run_dir!r}) holds a search's results but no "
                                    f"{run_dirs.CHECKPOINTS}/ folder (removed?), so fit cannot go on from it; "
                                    f"vt.load_results({self.run_dir!r}) reads it as it is. Give this search another "
                                    f"run_dir, or delete that directory to start again there.")
        return run_dirs.holds_run(path)

    @property
    def _scoring_name(self) -> str:
        """The name refit= may give for the search's one scoring (or 'score', scikit-learn's own)."""
        if self.scoring is None:
            return "accuracy" if getattr(self.estimator, "_task", "") == "classification" else "r2"
        return self.scoring if isinstance(self.scoring, str) else getattr(self.scoring, "name", "score")

    @property
    def _cv(self):
        return 5 if self.cv is None else self.cv  # (scikit-learn's None: 5 folds)

    def _folds(self, X, y, groups, task: str, pool_row: np.ndarray, data: Dataset, seed: int) -> "int | Splits":
        """cv as vt.tune takes it: the number of folds (vmaptune deals them, stratified and shuffled
        by random_state), or the splitter's folds over X's rows moved to the pool's rows."""
        cv = self.cv
        if isinstance(self._cv, numbers.Integral):
            if groups is not None:
                raise ValueError(f"fit(..., groups=...) with cv={self._cv}: the folds of an integer cv ignore groups; "
                                 f"give a group splitter, e.g. cv=GroupKFold({self._cv}), to keep each group in one "
                                 f"fold.")
            if task != "classification" or np.unique(y, return_counts=True)[1].min() >= self._cv:
                return int(self._cv)
            # (a class of fewer rows than folds: vt.tune's own dealing refuses it; scikit-learn's searches deal
            # StratifiedKFold's folds, some holding none of its rows, with its warning, and so does this one)
            from sklearn.model_selection import StratifiedKFold

            cv = StratifiedKFold(int(self._cv), shuffle=True, random_state=seed)
        from sklearn.model_selection import check_cv

        if self.run_dir is not None and shuffles_unseeded(cv):  # (read from its settings: no second split)
            raise ValueError(f"cv={describe(cv)} gives other folds at every fit (it shuffles without a "
                             f"random_state), "
                             f"so a search kept in run_dir={self.run_dir!r} could never go on: the next fit's folds "
                             f"would differ. Give it one, e.g. {type(cv).__name__}(..., random_state=0), or leave "
                             f"run_dir out.")
        splitter = check_cv(cv, y, classifier=task == "classification")
        try:
            folds = list(splitter.split(X, y, groups))
        except ValueError as err:
            if groups is None and "groups" in str(err):
                raise ValueError(f"cv={cv!r} needs the rows' groups: fit(X, y, groups=groups).") from None
            raise
        if not folds:
            raise ValueError(f"cv={cv!r} gave no folds (an iterator used up by an earlier fit?): give a splitter "
                             f"or a list of (train, test) index arrays.")
        checked = checked_splits(folds, len(y), describe(cv), rows="X's")  # indices into X
        pairs = [(pool_row[train], pool_row[test]) for train, test in checked.pairs]
        return dataclasses.replace(resolve_cv(pairs, data)[1], source=describe(cv))

    def _metric(self, task: str):
        if self.scoring is None:
            return "accuracy" if task == "classification" else "r2"
        if isinstance(self.scoring, Metric):
            return self.scoring
        if isinstance(self.scoring, (list, tuple, set, dict)):
            raise ValueError(f"scoring={self.scoring!r}: several metrics at once are not supported; give one name "
                             f"(the search ranks and refits on it), or score the refit model yourself with "
                             f"sklearn.model_selection.cross_validate(search.best_estimator_, X, y, scoring=...).")
        if callable(self.scoring):
            raise ValueError(f"scoring={self.scoring!r}: a scorer callable cannot run inside the compiled program that "
                             f"scores every candidate; give one of {sorted(SCORING)}, or your metric as "
                             f"vt.Metric(name, task, fn) with fn(outputs, targets) written in jax.numpy.")
        if self.scoring not in SCORING:
            differs = NOT_THE_SAME.get(str(self.scoring).lower())
            raise ValueError(f"scoring={self.scoring!r} is not supported; use one of {sorted(SCORING)}, a vt.Metric "
                             f"or None (the estimator's own score).{f' ({differs}.)' if differs else ''}")
        fits = sorted(k for k, v in SCORING.items() if v in SCORING_TASKS[task])
        if SCORING[self.scoring] not in SCORING_TASKS[task]:
            raise ValueError(f"scoring={self.scoring!r} does not score {task}; for a {task} estimator use one of "
                             f"{fits}, a vt.Metric or None (the estimator's own score).")
        return SCORING[self.scoring]

    # -- delegation to the best estimator ------------------------------------------------------------
    def _best(self):
        check_is_fitted(self)
        _check_refit(self)
        return self.best_estimator_

    @available_if(_best_estimator_has("predict"))
    def predict(self, X):
        return self._best().predict(X)

    @available_if(_best_estimator_has("predict_proba"))
    def predict_proba(self, X):
        return self._best().predict_proba(X)

    @available_if(_best_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X):
        return self._best().predict_log_proba(X)

    def score(self, X, y, sample_weight=None):
        """The best estimator's score with `scoring`, as scikit-learn's searches score (its own
        score, accuracy / r2, when scoring is None; a vt.Metric of regression in the targets' units).
        sample_weight: the rows' weights in a scikit-learn scoring (a vt.Metric weighs rows alike)."""
        if sample_weight is None:
            return self._scorer()(self._best(), X, y)
        if isinstance(self.scoring, Metric):
            raise ValueError(f"score(X, y, sample_weight=...) with scoring=vt.Metric({self.scoring.name!r}): a vt.Metric "
                             f"scores every row alike; call score(X, y), or give the metric's scikit-learn name.")
        return self._scorer()(self._best(), X, y, sample_weight=sample_weight)

    def _scorer(self):
        """scorer_: scikit-learn's scorer(estimator, X, y) -> float for `scoring`."""
        if self.scoring is None:
            return check_scoring(self.estimator)
        if isinstance(self.scoring, Metric):
            return _MetricScorer(self.scoring)
        return get_scorer(self.scoring)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "cv_results_")

    def __sklearn_tags__(self):
        """The estimator's kind (classifier / regressor), as BaseSearchCV: cross_val_score then
        folds a classifier's data stratified."""
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = copy.deepcopy(inner.classifier_tags)
        tags.regressor_tags = copy.deepcopy(inner.regressor_tags)
        tags.target_tags = copy.deepcopy(inner.target_tags)
        tags.input_tags = copy.deepcopy(inner.input_tags)  # (sparse X: made dense, as the estimator's)
        return tags


@dataclasses.dataclass(frozen=True)
class _MetricScorer:
    """A vt.Metric as a scikit-learn scorer: the estimator's network scored on X, y (a regression
    metric in the targets' units)."""

    metric: Metric

    def __call__(self, estimator, X, y) -> float:
        check_is_fitted(estimator)
        return float(estimator.model_.evaluate(estimator._validate(X, reset=False), y, self.metric))


def _chosen_index(index: Any, candidates: int) -> int:
    """refit=callable's answer, checked as scikit-learn checks it."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"refit=callable returned {index!r}: it must return best_index_, an integer index into "
                        f"cv_results_['params'].")
    if not 0 <= index < candidates:
        raise IndexError(f"refit=callable returned {index}: best_index_ must be in [0, {candidates}) (the "
                         f"candidates of cv_results_).")
    return int(index)


def _one_grid(distributions: Any) -> Any:
    """param_distributions, a list of one dict read as that dict (as scikit-learn reads it)."""
    if isinstance(distributions, (list, tuple)) and len(distributions) == 1 and isinstance(distributions[0], Mapping):
        return distributions[0]
    return distributions


def _names(distributions: Any) -> list[str]:
    """The parameter names a search's param_distributions gives (a Space's, a dict's, or none)."""
    if isinstance(distributions, Space):
        return list(distributions.names)
    return list(distributions) if isinstance(distributions, Mapping) else []


def _check_classes(classes: np.ndarray, counts: np.ndarray, cv: Any) -> None:
    """y's classes, by their labels, against what the search's folds need (integer cv: stratified;
    a class of fewer rows than folds, but 2 or more, is dealt as StratifiedKFold deals it: `_folds`)."""
    if len(classes) < 2:
        raise ValueError(f"y has 1 class ({_plain(classes[0])!r}); classification needs at least 2.")
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool) and counts.min() < 2:
        label, count = _plain(classes[int(np.argmin(counts))]), int(counts.min())
        raise ValueError(f"cv={cv} deals every class's rows over {cv} stratified folds, but class {label!r} has "
                         f"{count} row(s); a class of one row cannot be both held out of a fold and trained on in "
                         f"another: add rows of it, drop it, or give a splitter that does not stratify, e.g. "
                         f"cv=KFold({cv}, shuffle=True).")


def _pool_dataset(X, y, task: str, sample_weight=None) -> tuple[Dataset, np.ndarray]:
    """X, y as a vt.Dataset whose pool (train + validation, what cross-validation folds) is every
    row, and each X row's index in the pool, (n,). The pool keeps X's order but for one row of the
    commonest class (or the last row), which stands as the validation split, last. sample_weight:
    the rows' weights in the training loss (the pool's weights follow its order), or None."""
    X, y = np.asarray(X), np.asarray(y)
    r = int(np.flatnonzero(y == np.bincount(y).argmax())[-1]) if task == "classification" else len(y) - 1
    order = np.r_[np.delete(np.arange(len(y)), r), r]
    pool_row = np.empty(len(y), np.int64)
    pool_row[order] = np.arange(len(y))
    w = None if sample_weight is None else check_sample_weight(sample_weight, len(y))
    with _classes_checked_here():
        data = Dataset.from_arrays(X[order[:-1]], y[order[:-1]], task, validation=(X[r:r + 1], y[r:r + 1]),
                                   test=(X[:1], y[:1]), sample_weight=None if w is None else w[order[:-1]])
    if w is not None:  # (the validation row given apart weighs 1 there: here it is one of X's rows)
        data = dataclasses.replace(data, w_val=np.asarray(w[r:r + 1], np.float32))
    return data, pool_row


def _score_unit(metric, data: Dataset) -> float:
    """Factor from vmaptune's standardised-target scores to the targets' own units (MSE and MAE of
    one target; several targets are weighted inside the program: `_in_target_units`)."""
    if data.task != "regression" or not isinstance(metric, str) or np.ndim(data.y_std) > 0:
        return 1.0
    y_std = float(data.y_std)
    return {"neg_mse": y_std ** 2, "neg_mae": y_std}.get(metric, 1.0)


def _in_target_units(metric, data: Dataset):
    """neg_mse / neg_mae of several targets as scikit-learn's: the mean over targets of each one's
    error in its own units (a mean over standardised targets would weigh a target of large scale
    too little), from the standardised values (metrics.errors_in_target_units; one target's built-in
    errors are converted after: `_score_unit`)."""
    if data.task != "regression" or metric not in ("neg_mse", "neg_mae") or np.ndim(data.y_std) == 0:
        return metric
    return errors_in_target_units(metric, data.y_std)



def _cv_results(results, names: list[str], n_splits: int, seconds: float, unit: float,
                final: bool) -> dict[str, Any]:
    """scikit-learn's cv_results_ from a vt.tune(cv=...) run's Results. final: each fold's score
    after its last epoch (the estimator as it is set, trained for all its epochs), else at the
    epoch where the folds' mean peaked (early stopping's restored weights), or with
    EarlyStopping(validation_fraction=...) each fold at the epoch its held-out rows chose."""
    df = results.members
    n = len(df)
    out: dict[str, Any] = {
        "mean_fit_time": np.full(n, seconds / max(n * n_splits, 1), np.float64),
        "std_fit_time": np.zeros(n, np.float64),
        "mean_score_time": np.zeros(n, np.float64),
        "std_score_time": np.zeros(n, np.float64),
    }
    # (a name a candidate's setting does not use, Space.only_when, is not in its params, and masked
    # in its param_ column, as scikit-learn's list-of-grids searches leave it)
    active = results.space.active(results.hp)
    params = [{name: _plain(df[name].iloc[i]) if name not in active else results.space[name].decode(results.hp[name][i])
               for name in names if name not in active or active[name][i]} for i in range(n)]
    for name in names:
        given = [(i, p[name]) for i, p in enumerate(params) if name in p]  # (a candidate not using it: masked)
        try:
            array = np.array([value for _, value in given])
            dtype = array.dtype if array.dtype.kind != "U" and array.ndim == 1 and len(given) else object
        except ValueError:
            dtype = object
        masked = np.ma.MaskedArray(np.empty(n, dtype=dtype), mask=True)
        for i, value in given:
            masked[i] = value
        out[f"param_{name}"] = masked
    out["params"] = params
    splits = np.asarray(results.curves["split_final_scores" if final else "split_scores"], np.float64) * unit  # (n, folds)
    diverged = (df["status"] == "diverged").to_numpy()
    splits[diverged] = np.nan
    for k in range(n_splits):
        out[f"split{k}_test_score"] = splits[:, k]
    mean = splits.mean(axis=1)
    out["mean_test_score"] = mean
    out["std_test_score"] = splits.std(axis=1)
    if np.isnan(mean).all():
        rank = np.ones(n, np.int32)
    else:
        from scipy.stats import rankdata

        rank = rankdata(-np.nan_to_num(mean, nan=np.nanmin(mean) - 1), method="min").astype(np.int32)
    out["rank_test_score"] = rank
    if "budget_epochs" in df:  # successive halving, Hyperband, BOHB: HalvingRandomSearchCV's keys
        out["iter"] = df["rung"].to_numpy().astype(np.int64)
        out["n_resources"] = df["budget_epochs"].to_numpy().astype(np.int64)
    return out
