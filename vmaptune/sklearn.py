"""scikit-learn's estimator interface: one network as an estimator, and a search whose candidates x
folds train as one population.

    est = vt.MLPClassifier(n_hidden=2, n_units=64, epochs=50)       # fit / predict / score, in Pipelines
    search = vt.PopulationSearchCV(est, {"learning_rate": loguniform(1e-4, 1e-1),
                                         "n_units": list(range(1, 100))}, n_iter=64, cv=3).fit(X, y)
    search.best_params_, search.best_score_, search.best_estimator_.predict(X_new)
    pd.DataFrame(search.cv_results_)

An estimator's parameters are vmaptune's hyperparameter names (n_hidden, n_units, learning_rate,
momentum, ...), so a search space names them directly. `fit` trains one member with the engine
the searches use (standardising X with its own statistics, as vt.Dataset does); a search trains
every candidate on every fold at once (`vt.tune(cv=...)`), then refits the best on all of X: for
all its epochs, or with early stopping for the epochs the search chose.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import inspect
import numbers
import os
import re
import time
import warnings
from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.metrics import check_scoring, get_scorer
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from sklearn.utils.metaestimators import available_if

from vmaptune.checkpoint import RunMismatch
from vmaptune.cv_splits import (Splits, check_r2_folds, checked_splits, describe, moves_on, resolve_cv,
                                shuffles_unseeded)
from vmaptune import distributed
from vmaptune import run_dir as run_dirs
from vmaptune.arguments import check_int_at_least, check_seed
from vmaptune.data import Dataset, SplitMissesClassWarning, check_sample_weight
from vmaptune.early_stopping import EarlyStopping
from vmaptune.metrics import NOT_THE_SAME, Metric, errors_in_target_units
from vmaptune.models.base import Model
from vmaptune.models.mlp import MLP
from vmaptune.naming import OPTIMIZER_NAMES, function_name, is_optax, what
from vmaptune.optim import RANGES as OPTIMIZER_RANGES
from vmaptune.population import PopulationRun
from vmaptune.program import build_program
from vmaptune.refit import diverged_at
from vmaptune.space import Choice, Distribution, Fixed, IntUniform, LogUniform, Space, Uniform
from vmaptune.strategies.base import check_strategy
from vmaptune.trained import TrainedModel
from vmaptune.warn import warn

__all__ = ["MLPClassifier", "MLPRegressor", "NetworkClassifier", "NetworkRegressor", "PopulationSearchCV",
           "to_space"]

#: Estimator parameters that are settings of the training run, not hyperparameters of a member.
RUN_PARAMETERS = ("model", "epochs", "batch_size", "early_stopping", "patience", "tol", "validation_fraction",
                  "random_state", "hyperparameters")
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
#: scikit-learn MLP parameter names -> vmaptune's (what a user coming from sklearn types first).
SKLEARN_NAMES = {"hidden_layer_sizes": "n_hidden (the number of hidden layers) and n_units (the width of each)",
                 "max_iter": "epochs", "learning_rate_init": "learning_rate",
                 "alpha": "weight_decay, on another scale: scikit-learn adds alpha / batch_size x w to the weights' "
                          "gradients (not the biases'), vmaptune weight_decay x p to every parameter's (adamw: to "
                          "its update), so alpha=1e-4 at batch_size=200 is about weight_decay=5e-7",
                 "n_iter_no_change": "patience", "solver": "optimizer ('sgd', 'adam', ...)",
                 "nesterovs_momentum": "optimizer='nesterov'", "beta_1": "b1 (vt.tune's space)",
                 "beta_2": "b2 (vt.tune's space)", "epsilon": "eps (vt.tune's space)",
                 "warm_start": "not offered: every fit trains a new network (a search continues from "
                               "PopulationSearchCV(run_dir=...), or vt.tune(..., run_dir=..., resume=True))",
                 "shuffle": "not a setting: every epoch's batches are drawn in a new order, as shuffle=True",
                 "verbose": "not a setting of the estimators: vt.PopulationSearchCV(progress=True) shows a search's "
                            "progress, and loss_curve_ holds every epoch's training loss",
                 "class_weight": "not offered: weigh the rows in fit instead, fit(X, y, sample_weight="
                                 "sklearn.utils.class_weight.compute_sample_weight('balanced', y)) (and score "
                                 "with balanced_accuracy or f1_macro)",
                 "power_t": "not offered: learning_rate='invscaling' has no counterpart; vt.tune's space takes "
                            "schedule ('constant', 'step', 'exponential', 'cosine', 'linear')",
                 "max_fun": "not offered: it bounds the lbfgs solver, and vmaptune trains with minibatch optimizers"}
#: scikit-learn MLPs' fitted attributes these estimators lack -> where their counterparts are.
SKLEARN_FITTED = {
    **dict.fromkeys(("coefs_", "intercepts_"), "the trained weights are model_.variables['params'] (flax's tree: "
                    "each Dense layer's kernel and bias), or model_.flax_module() as flax objects"),
    **dict.fromkeys(("n_layers_", "n_outputs_", "out_activation_"), "the network's shape is in model_ "
                    "(model_.hyperparameters, model_.flax_module())"),
    **dict.fromkeys(("validation_scores_", "best_validation_score_"), "the per-epoch validation scores are not "
                    "kept; best_epoch_ is the epoch early stopping kept, and vt.tune's results.curves['val_score'] "
                    "holds every epoch's"),
    "t_": "n_iter_ epochs were trained; the number of steps is not kept"}
#: scikit-learn's MLPs' default tol (early_stopping=True watches the validation score with it when tol is None).
SKLEARN_TOL = 1e-4
#: scikit-learn's learning_rate schedule names (vmaptune's learning_rate is learning_rate_init's step size).
SKLEARN_SCHEDULES = ("constant", "invscaling", "adaptive")


class _InitSignature:
    """`inspect.signature(cls)` as __init__'s parameters: a class whose __new__ takes (*args,
    **kwargs) would otherwise show those, in help(), IDEs and scikit-learn's checks."""

    def __get__(self, instance, owner):
        signature = inspect.signature(owner.__init__)
        return signature.replace(parameters=list(signature.parameters.values())[1:])


INTEGER_DTYPES = ("int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8")


class _Network(BaseEstimator):
    """What every network estimator shares: fit one member, predict with it."""

    _task = "classification"
    __signature__ = _InitSignature()

    def __new__(cls, *args, **kwargs):
        # (scikit-learn wants every parameter in __init__'s signature, so a name it does not have is
        # caught here, where Python's own "unexpected keyword argument" would name a private class)
        _refuse_sklearn_names(cls.__name__, kwargs, TypeError)
        _refuse_unknown_names(cls, kwargs)
        return super().__new__(cls)

    def set_params(self, **params):
        _refuse_sklearn_names(f"{type(self).__name__}.set_params", params)
        return super().set_params(**params)

    # -- what a subclass says -------------------------------------------------------------------
    def _model(self) -> Model:
        return self.model if getattr(self, "model", None) is not None else MLP()

    def _hyperparameters(self) -> dict[str, Any]:
        """The member's hyperparameters (the space's names) from this estimator's parameters."""
        params = self.get_params(deep=False)
        unset = [k for k, v in params.items() if k not in RUN_PARAMETERS and v is None]
        if unset:  # (dropped, the network fell back to vt.MLP's own defaults, not the estimator's)
            import inspect

            default = inspect.signature(type(self).__init__).parameters[unset[0]].default
            raise ValueError(f"{type(self).__name__}({unset[0]}=None): give a value (the default is {default!r}); "
                             f"None is not a setting of {unset[0]}.")
        values = {k: v for k, v in params.items() if k not in RUN_PARAMETERS}
        given = dict(params.get("hyperparameters") or {})
        shadowed = sorted(set(given) & set(params))
        if shadowed:  # (the dict won: set_params and the searches changed the parameter, and nothing trained with it)
            name = shadowed[0]
            raise ValueError(f"{type(self).__name__}: hyperparameters={given!r} sets {shadowed}, which "
                             f"{'are' if len(shadowed) > 1 else 'is'} the estimator's own parameter"
                             f"{'s' if len(shadowed) > 1 else ''}: give {name}={given[name]!r} as a parameter "
                             f"(set_params and the searches change that one) and leave it out of hyperparameters.")
        values.update(given)
        return values

    # -- scikit-learn ---------------------------------------------------------------------------------
    def _validate(self, X, y="no_validation", reset=True):
        """scikit-learn's input checks. The MLP reads float features (integers are features too, and
        are standardised), as does any model given a DataFrame (its columns are features); your own
        model may take an integer array of token ids, and inputs of any shape. A sparse matrix (a
        OneHotEncoder's output) is made dense: the network trains on dense device arrays."""
        flat = isinstance(self._model(), MLP)
        numbers_only = flat or (hasattr(X, "columns") and hasattr(X, "iloc"))
        # (any integer dtype kept, as vt.Dataset keeps it: scikit-learn turns one not listed into float64,
        # and uint16 token ids reached an embedding as standardised floats)
        dtype = ("float64", "float32") if numbers_only else ("float64", "float32") + INTEGER_DTYPES
        checks = dict(reset=reset, allow_nd=not flat, dtype=dtype, accept_sparse=("csr", "csc", "coo"))
        trained_on = tuple(getattr(getattr(self, "model_", None), "input_shape", ()) or ())
        if not reset and len(trained_on) > 1 and tuple(np.shape(X)[1:]) != trained_on:
            # (scikit-learn's own check counts X.shape[1] only: "expecting 8 features" for rows of (8, 8, 1))
            raise ValueError(f"X has rows of shape {tuple(np.shape(X)[1:])}, but {type(self).__name__} was fitted on "
                             f"rows of shape {trained_on}: give X as (n, {', '.join(map(str, trained_on))}).")
        _refuse_text_columns(X, type(self).__name__)
        if isinstance(y, str) and y == "no_validation":
            return _dense(validate_data(self, X, **checks))
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        shape = tuple(getattr(y, "shape", None) or (np.shape(y) if isinstance(y, list) else ()))  # (any array-like)
        if self._task == "classification" and len(shape) == 2 and shape[1] > 1:  # (column_or_1d's error)
            raise ValueError(f"{type(self).__name__} takes one label per row; y has shape {shape} (multilabel "
                             f"or one-hot rows). For one-hot rows give y.argmax(axis=1); for several labels per "
                             f"row wrap it in sklearn.multioutput.MultiOutputClassifier.")
        X, y = validate_data(self, X, y, multi_output=self._task == "regression",
                             y_numeric=self._task == "regression", **checks)
        return _dense(X), y

    def __getattr__(self, name: str):
        """(Only for names not found.) `model`, seed 004's spelling of Keras' attribute, named."""
        if name == "model":
            raise AttributeError(f"{type(self).__name__} has no attribute 'model': the fitted network is `model_` "
                                 f"(scikit-learn's trailing underscore for what fit learned), e.g. "
                                 f"search.best_estimator_.model_.save(path).")
        if name in SKLEARN_FITTED and not name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r} (scikit-learn's MLPs "
                                 f"have it): {SKLEARN_FITTED[name]}.")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Trains one network on X, y for `epochs` epochs (with early_stopping: on a carved-out
        validation_fraction, keeping the best epoch's weights; with tol and no early_stopping:
        until the training loss stops improving by tol, as scikit-learn's MLPs converge).
        sample_weight: (n,) weights of the rows in the training loss (scores are not weighted).
        A fit that raises (Ctrl-C included) leaves the estimator as it was before it."""
        with _AsBeforeIfItRaises(self):
            return self._fit(X, y, sample_weight, **fit_params)

    def _fit(self, X, y, sample_weight, **fit_params):
        _refuse_fit_params(type(self).__name__, fit_params, self.get_params())
        check_int_at_least(f"{type(self).__name__}: epochs", self.epochs, 1)
        if self.batch_size != "auto":  # (scikit-learn's default: 200 rows, or all of them)
            check_int_at_least(f"{type(self).__name__}: batch_size", self.batch_size, 1)
        _check_learning_rate(type(self).__name__, self.learning_rate)
        X, y = self._validate(X, y)
        if self._task == "classification":
            check_classification_targets(y)
            self.classes_, y = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes in y; got 1 class: {self.classes_}.")
        seed = _seed(self.random_state, none_draws=True)
        data = _dataset(X, y, self._task, self.validation_fraction if self.early_stopping else None,
                        seed, getattr(self, "feature_names_in_", None), sample_weight, type(self).__name__,
                        getattr(self, "classes_", None) if self._task == "classification" else None)
        hyperparameters = self._hyperparameters()
        _check_parameter_ranges(type(self).__name__, {**hyperparameters, "patience": self.patience})
        space = Space({k: self._fixed(k, v) for k, v in hyperparameters.items()})
        # One network, trained in this process alone on its own device, also in a multi-process run
        # (vt.distributed): every process that fits it (each one, in a script written for one, as
        # PopulationSearchCV's refit) trains the same network from the same data and seed, and holds
        # it where it can read it, without waiting on the others.
        with distributed.this_process_alone():
            program = build_program(self._model(), space, data, batch_size=_batch(self.batch_size),
                                    even_batches=True, early_stopping=self._stopping(data), devices=1, member_block=0,
                                    _names_given=f"{type(self).__name__} was given (hyperparameters= or set_params)")
            program = program.replace(evaluate=bool(self.early_stopping))
            hp = space.numeric(space.encode([{k: d.value for k, d in space.items()}]))
            from vmaptune.engine import data_arrays

            run = PopulationRun(program, hp, data_arrays(data), member_ids=[0], seed=seed,
                                epochs=int(self.epochs))
            # (in about eight chunks, not one call: a Ctrl-C stops the fit at a chunk's end, where it waited for
            # every epoch to train and then raised; a divisor of epochs, so one program serves every chunk)
            run.train(int(self.epochs), chunk_epochs=_fit_chunk(int(self.epochs)))
            members = run.state.members
            params = members.best_params if self.early_stopping else members.params
            state = members.best_model_state if self.early_stopping else members.model_state
            take = (lambda tree: _row(tree, 0))
            status = run.status()
        # (early stopping restored its best epoch's weights, where one scored before it diverged; else its
        # weights are its last finite ones, or its first ones: predict refuses them)
        restored = bool(self.early_stopping) and int(status["best_epoch"][0]) > 0
        if status["diverged"][0]:
            kept = ("the model keeps its best epoch's weights" if restored else
                    "the model refuses to predict (its last finite weights mean nothing)")
            warn(f"{type(self).__name__}: training diverged (a non-finite loss or weight); {kept}. Lower "
                 f"learning_rate.", ConvergenceWarning)
        diverged = {"diverged_at_epoch": diverged_at(run, 0, True)} if status["diverged"][0] and not restored else {}
        self.model_ = TrainedModel.from_dataset(program.model, take(params), take(state), {k: v[0] for k, v in hp.items()},
                                                {k: d.value for k, d in space.items()}, data, **diverged)
        if self._task == "classification":
            self.model_.classes = self.classes_
        trained = np.isfinite(run.curves["train_loss"][0])
        self.loss_curve_ = run.curves["train_loss"][0][trained].tolist()
        # (NaN: no epoch ended with a finite loss, training diverged in its first)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else float("nan")
        self.best_loss_ = None if self.early_stopping else min(self.loss_curve_, default=float("nan"))  # (sklearn: None)
        self.n_iter_ = int(trained.sum())
        self.best_epoch_ = int(status["best_epoch"][0]) if self.early_stopping else self.n_iter_
        return self

    def _fixed(self, name: str, value: Any) -> Fixed:
        """An estimator parameter as the member's one value, named when it is not one."""
        try:
            return Fixed(_plain(value))
        except TypeError:
            if callable(value) and not isinstance(value, str):  # (an activation function: nn.tanh)
                raise TypeError(_function_given(self, name, value)) from None
            if hasattr(value, "init") and hasattr(value, "update"):  # (an optimizer made: optax.adam(1e-3))
                raise TypeError(f"{type(self).__name__}({name}=<an optax optimizer>): the estimators take the "
                                f"optimizer by name, one of {sorted(OPTIMIZER_NAMES)}, with learning_rate (and "
                                f"momentum, weight_decay) as numbers: optimizer='adam', learning_rate=1e-3. An "
                                f"optax optimizer of your own trains through vt.tune(..., optimizer=lambda hp: "
                                f"optax.adamw(hp['learning_rate'])).") from None
            depth = " (n_hidden sets the depth; every hidden layer has n_units units)" if name == "n_units" else ""
            raise TypeError(f"{type(self).__name__}({name}={value!r}): give one string or number{depth}; to search "
                            f"several values use vt.PopulationSearchCV(estimator, {{{name!r}: [...]}}).") from None

    def _stopping(self, data: Dataset | None = None) -> EarlyStopping | None:
        """The rule `fit` trains under: patience on the held-out split (early_stopping), else
        scikit-learn's convergence test on the training loss (tol, on data's loss scale), else none."""
        tol = _check_tol(self.tol)
        if self.early_stopping:
            return EarlyStopping(patience=int(self.patience), min_delta=_validation_tol(tol),
                                 restore_best_weights=True, compact_below=0.0, counting="scikit-learn")
        return convergence(self.patience, tol, data)

    def predict(self, X):
        check_is_fitted(self)
        return self.model_.predict(self._validate(X, reset=False))

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": self._task == "regression"}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self._task == "regression":
            tags.target_tags.multi_output = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = True  # (made dense: `_validate`)
        return tags


class _Classifier(ClassifierMixin, _Network):
    _task = "classification"

    def predict_proba(self, X):
        check_is_fitted(self)
        return self.model_.predict_proba(self._validate(X, reset=False))

    def predict_log_proba(self, X):
        return np.log(np.clip(self.predict_proba(X), 1e-300, None))


class _Regressor(RegressorMixin, _Network):
    _task = "regression"


class _MLPParameters:
    """The built-in MLP's and its optimizer's hyperparameters as estimator parameters."""

    def __init__(self, n_hidden=1, n_units=100, activation="relu", init="xavier_uniform", init_scale=1.0, dropout=0.0,
                 optimizer="adam", learning_rate=1e-3, momentum=0.9, weight_decay=0.0, batch_size=200, epochs=200,
                 early_stopping=False, patience=10, tol=None, validation_fraction=0.1, random_state=None):
        self.n_hidden = n_hidden
        self.n_units = n_units
        self.activation = activation
        self.init = init
        self.init_scale = init_scale
        self.dropout = dropout
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.random_state = random_state


class MLPClassifier(_MLPParameters, _Classifier):
    """The built-in MLP (vt.MLP) as a scikit-learn classifier: n_hidden layers of n_units units,
    trained with `optimizer` for `epochs` epochs of `batch_size` rows. Parameters are vmaptune's
    hyperparameter names, so vt.PopulationSearchCV searches them directly. Defaults follow
    sklearn.neural_network.MLPClassifier: one layer of 100 relu units, Glorot-uniform initial
    weights (init="xavier_uniform"), adam at 1e-3, batches of 200, 200 epochs. As scikit-learn's,
    an epoch takes ceil(rows / batch_size) steps, its batches evened out (399 rows: two of 199)
    so that an epoch sees nearly every row. early_stopping:
    hold out validation_fraction and stop after `patience` epochs without improvement, keeping
    the best weights. tol: without early_stopping, stop once
    the training loss has not improved by more than tol for `patience` epochs (scikit-learn's
    tol and n_iter_no_change; its default is tol=1e-4); None (the default) trains every epoch
    (with early_stopping, None watches the validation score with scikit-learn's 1e-4).
    Inputs are standardised with the training data's statistics."""


class MLPRegressor(_MLPParameters, _Regressor):
    """The built-in MLP as a scikit-learn regressor (targets (n,) or (n, k), standardised inside);
    parameters as vt.MLPClassifier's."""


def _function_given(estimator: Any, name: str, value: Any) -> str:
    """The message for a function (class, object) given as one of a network estimator's values: an
    activation in `hyperparameters` ({'activation': nn.tanh}): make the module with it, or give
    flax's by name; one of the estimator's own parameters (optimizer=optax.adam, activation=nn.tanh
    of vt.MLP): the names it takes."""
    from vmaptune.models.mlp import ACTIVATIONS, INITS

    owner, model = type(estimator).__name__, getattr(estimator, "model", None)
    shown = function_name(value) or f"your_{'layer' if what(value) != 'a function' else 'function'}"
    prefix, _, short = shown.rpartition(".")
    if is_optax(value):  # (optimizer=optax.adam, or a schedule as learning_rate)
        by_name = f"optimizer={short!r}" if short in OPTIMIZER_NAMES else f"one of {sorted(OPTIMIZER_NAMES)}"
        return (f"{owner}({name}={shown}): {what(value)} of optax's; the estimators take the optimizer by name, "
                f"{by_name}, and learning_rate as a number. Your own optax optimizer (or schedule) trains through "
                f"vt.tune(..., optimizer=lambda hp: optax.adamw(hp['learning_rate'])).")
    own = name not in (getattr(estimator, "hyperparameters", None) or {})
    if own or not hasattr(model, "_module_name"):  # (vt.MLP's names: its activations and initialisers by name)
        said = f"{name}={shown}" if own else f"hyperparameters={{{name!r}: {shown}}}"
        names = {"activation": sorted(ACTIVATIONS), "init": sorted(INITS)}.get(name)
        takes = f": give one of the names it takes, {names}" if names else ": give one string or number"
        return f"{owner}({said}): {what(value)}, but each value here is one string or number{takes}."
    by_name = f"; or give its name, {{{name!r}: {short!r}}}, with the field annotated str and looked up inside the " \
              f"module: getattr({prefix}, self.{name}){'(x)' if what(value) == 'a function' else ''}" \
        if prefix in ("nn", "jax.nn") else ""
    return (f"{owner}(hyperparameters={{{name!r}: {shown}}}): {what(value)}, but each hyperparameter here is one "
            f"string or number. Make the module with it: model=vt.{type(model).__name__}(functools.partial("
            f"{model._module_name()}, {name}={shown})){by_name}.")


class _NetworkParameters:
    """Your own model (vt.Linen / vt.Nnx) as an estimator: `hyperparameters` fills its fields
    (and any optimizer setting); the optimizer's own settings are parameters too."""

    def __init__(self, model=None, hyperparameters=None, optimizer="adam", learning_rate=1e-3, momentum=0.9,
                 weight_decay=0.0, batch_size=64, epochs=50, early_stopping=False, patience=10, tol=None,
                 validation_fraction=0.1, random_state=None):
        self.model = model
        self.hyperparameters = hyperparameters
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def set_params(self, **params):
        """Estimator parameters, or the model's own hyperparameters (they go to `hyperparameters`)."""
        _refuse_sklearn_names(f"{type(self).__name__}.set_params", params)
        own = self._get_param_names()
        fields = {k: params.pop(k) for k in list(params) if k not in own and "__" not in k}
        if "hyperparameters" in params:  # (first: the fields given beside it go on top, in either order)
            super().set_params(hyperparameters=params.pop("hyperparameters"))
        if fields:
            self.hyperparameters = {**(self.hyperparameters or {}), **fields}
        return super().set_params(**params)


class NetworkClassifier(_NetworkParameters, _Classifier):
    """A classifier from your own model: vt.NetworkClassifier(vt.Linen(CNN), {"features": 8})."""


class NetworkRegressor(_NetworkParameters, _Regressor):
    """A regressor from your own model: vt.NetworkRegressor(vt.Linen(Net), {"hidden": 32})."""


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


class _AsBeforeIfItRaises:
    """A fit that raises (a refused input, Ctrl-C) leaves the estimator's fitted attributes as they
    were before it: classes_ and n_features_in_ are set before training, model_ (or cv_results_)
    after, and an earlier fit's model beside this fit's classes would predict the wrong labels.
    keep(): what the fit set so far stays, whatever comes next (a search whose refit is cut short)."""

    def __init__(self, estimator: BaseEstimator):
        self.estimator = estimator
        self.before: dict[str, Any] | None = {n: getattr(estimator, n) for n in self._fitted()}

    def _fitted(self) -> list[str]:
        return [n for n in vars(self.estimator) if n.endswith("_") and not n.startswith("_")]

    def keep(self) -> None:
        self.before = None

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if error is not None and self.before is not None:
            for name in self._fitted():
                delattr(self.estimator, name)
            for name, value in self.before.items():
                setattr(self.estimator, name, value)


def _refuse_text_columns(X: Any, who: str) -> None:
    """A DataFrame's text or categorical columns, named (scikit-learn's own error is "could not
    convert string to float: 'u'", naming no column)."""
    dtypes = getattr(X, "dtypes", None)
    if dtypes is None or not hasattr(X, "columns"):
        return
    import pandas as pd

    text = [c for c, d in dtypes.items() if not (pd.api.types.is_numeric_dtype(d) or pd.api.types.is_bool_dtype(d))]
    if text:
        raise ValueError(f"{who}: X's columns {text} hold text or categories, not numbers. Encode them in a "
                         f"pipeline: make_pipeline(make_column_transformer((OneHotEncoder(), {text}), "
                         f"remainder='passthrough'), {who}(...)).")


def convergence(patience: int, tol: float | None, data: Dataset | None = None) -> EarlyStopping | None:
    """scikit-learn's convergence test for its MLPs as an early-stopping rule: stop once the
    training loss has not improved by at least tol for more than `patience` epochs (None: no
    test). For regression scikit-learn's loss is half the squared error in the targets' units,
    the engine's the squared error of standardised targets: tol is carried over to that scale
    (2 tol / y_std^2), so a fit converges at the same point of its curve."""
    if tol is None:
        return None
    if data is not None and data.task == "regression":
        tol = 2.0 * float(tol) / float(np.mean(np.square(np.asarray(data.y_std, np.float64))))
    return EarlyStopping(patience=int(patience), min_delta=float(tol), monitor="train_loss", counting="scikit-learn")


def _validation_tol(tol: float | None) -> float:
    """early_stopping's tol on the validation score: None is scikit-learn's default, 1e-4 (at 0 a
    score that repeats, as a small split's accuracy does on a plateau, would reset the count
    every time and the fit would never stop)."""
    return SKLEARN_TOL if tol is None else tol


def _check_tol(tol) -> float | None:
    if tol is None:
        return None
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol={tol!r}: give a training-loss improvement >= 0 (scikit-learn's default is 1e-4), "
                         f"or None to train every epoch.")
    return float(tol)


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


# -- helpers --------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _chosen_index(index: Any, candidates: int) -> int:
    """refit=callable's answer, checked as scikit-learn checks it."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"refit=callable returned {index!r}: it must return best_index_, an integer index into "
                        f"cv_results_['params'].")
    if not 0 <= index < candidates:
        raise IndexError(f"refit=callable returned {index}: best_index_ must be in [0, {candidates}) (the "
                         f"candidates of cv_results_).")
    return int(index)


def _refuse_sklearn_names(owner: str, params: Mapping[str, Any], error: type = ValueError) -> None:
    """A parameter named as scikit-learn's MLPs name it: the error names vmaptune's."""
    for name in params:
        if name in SKLEARN_NAMES:
            raise error(f"{owner}({name}=...): {_vmaptunes_name(name)}.")


def _refuse_unknown_names(cls: type, params: Mapping[str, Any]) -> None:
    """A keyword __init__ does not take, named with the class's parameters (Python's own error
    names a private base class)."""
    own = list(inspect.signature(cls.__init__).parameters)[1:]
    for name in params:
        if name not in own:
            close = difflib.get_close_matches(name, own, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            fields = (" Your model's own fields go in hyperparameters={...}." if "hyperparameters" in own else "")
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}.{hint} Its parameters: "
                            f"{', '.join(own)}.{fields}")


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


#: The estimators' numeric parameters with a range of their own: name -> (low, high, low inclusive,
#: high inclusive, an example value) (the optimizer's from vmaptune/optim.py's RANGES).
PARAMETER_RANGES = {
    "n_hidden": (0, np.inf, True, False, 1), "n_units": (1, np.inf, True, False, 100),
    "init_scale": (0.0, np.inf, False, False, 1.0), "dropout": (0.0, 1.0, True, False, 0.1),
    "patience": (1, np.inf, True, False, 10),
    **{name: (low, high, low_ok, high_ok, {"learning_rate": 1e-3, "momentum": 0.9}.get(name, low if low_ok else 1e-3))
       for name, (low, high, low_ok, high_ok, _) in OPTIMIZER_RANGES.items()},
}


def _check_parameter_ranges(owner: str, params: Mapping[str, Any]) -> None:
    """An estimator's parameters in their ranges, said in the estimator's terms before anything
    compiles (vt.tune's checks name search-space distributions)."""
    for name, value in params.items():
        if name not in PARAMETER_RANGES or isinstance(value, (bool, str)) or not isinstance(value, numbers.Real):
            continue
        low, high, low_ok, high_ok, example = PARAMETER_RANGES[name]
        inside = (value >= low if low_ok else value > low) and (value <= high if high_ok else value < high)
        if not inside:
            where = (f"{'>=' if low_ok else '>'} {low}" if high == np.inf else
                     f"in {'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}")
            raise ValueError(f"{owner}({name}={value!r}): {name} must be {where}, e.g. {name}={example!r}.")


def _check_learning_rate(owner: str, value: Any) -> None:
    """scikit-learn's learning_rate='adaptive' (a schedule name) where vmaptune wants a step size."""
    if isinstance(value, str):
        what = ("scikit-learn's schedule name" if value in SKLEARN_SCHEDULES else "a string")
        raise ValueError(f"{owner}(learning_rate={value!r}) is {what}: vmaptune's learning_rate is the step size "
                         f"(scikit-learn's learning_rate_init), e.g. learning_rate=1e-3. Schedules are vt.tune's "
                         f"`schedule` hyperparameter ('constant', 'step', 'exponential', 'cosine', 'linear'); "
                         f"'invscaling' and 'adaptive' have no counterpart (early_stopping=True stops a plateau).")


def _vmaptunes_name(name: str) -> str:
    """'<name> is scikit-learn's name; vmaptune's is ...' for a name in SKLEARN_NAMES."""
    return f"{name} is scikit-learn's name; vmaptune's is {SKLEARN_NAMES[name]}"


def _refuse_fit_params(owner: str, fit_params: Mapping[str, Any], params: Mapping[str, Any]) -> None:
    """fit(X, y, epochs=..., validation_data=..., callbacks=...) as Keras takes them: each named with
    where it goes here."""
    for name, value in fit_params.items():
        if name in params:
            fix = f"it is the estimator's parameter: {owner}({name}={value!r}).fit(X, y)"
        elif name in ("validation_data", "validation_split"):
            fix = (f"{owner}(early_stopping=True, validation_fraction=0.1) holds out a share of X for the best epoch, "
                   f"or vt.tune(..., data=vt.Dataset.from_arrays(...)) takes validation rows of your own")
        elif name == "callbacks":
            fix = f"{owner}(early_stopping=True, patience=...) stops early; vt.tune(..., on_round=...) calls you back"
        elif name in SKLEARN_NAMES:
            fix = _vmaptunes_name(name)
        else:
            fix = "the estimator's settings are its parameters, set on it or with set_params"
        raise TypeError(f"{owner}.fit(X, y, {name}=...): fit takes X and y only; {fix}.")


def _batch(batch_size: "int | str") -> int:
    """An estimator's batch_size as a number (scikit-learn's "auto": min(200, rows), the rows
    being clipped by the even batches the estimators train in: as many steps as scikit-learn's
    MLP takes, ceil(rows / batch_size), of one size, Program.rows_per_step; whole batches of 200
    would train on 200 of 399 rows)."""
    return 200 if batch_size == "auto" else int(batch_size)


#: A sparse X whose dense copy (float64 on the host, then float32 on the device) would pass this many
#: bytes is refused before it is made: a TF-IDF matrix of 20 000 rows x 100 000 terms is 16 GB dense.
MAX_DENSE_BYTES = 4 * 1024**3


def _dense(X):
    """X, or a sparse matrix's dense array (refused, with the fix, where it would be too large)."""
    if not hasattr(X, "toarray"):
        return X
    dense = int(np.prod(X.shape)) * 8
    if dense > MAX_DENSE_BYTES:
        raise ValueError(f"X is a sparse matrix of shape {X.shape} with {X.nnz} stored values; the network trains on "
                         f"dense arrays, and its dense copy would take {dense / 1024**3:.1f} GB. Reduce the features "
                         f"first, e.g. make_pipeline(TfidfVectorizer(max_features=...) or TruncatedSVD(300), "
                         f"vt.MLPClassifier()), or raise vmaptune.sklearn.MAX_DENSE_BYTES if the memory is there.")
    return X.toarray()


def _seed(random_state: Any, *, none_draws: bool = False) -> int:
    """A seed from scikit-learn's random_state: an int as given, a RandomState's next draw. None
    is 0 (a search repeats), or where none_draws (an estimator's fit, as scikit-learn's) a draw
    from numpy's global RandomState (np.random.seed fixes it), so that two default fits differ."""
    if random_state is None and none_draws:
        random_state = check_random_state(None)
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return check_seed(random_state, "it fixes the initial weights, the minibatches and the splits", "random_state")
    raise ValueError(f"random_state={random_state!r}: give None, an integer or a np.random.RandomState, as "
                    f"scikit-learn's random_state.")


def _row(tree, i: int):
    import jax

    return jax.tree.map(lambda x: np.asarray(x)[i], tree)


@contextlib.contextmanager
def _classes_checked_here():
    """Dataset.from_arrays's warning of a class of one row, silenced where it would speak of the
    layout made here (the training part of a pool that moved a row out, or an estimator that
    validates nothing), not of the user's rows: the search checks its folds' classes itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"y's class\(es\) .* have a single row each")
        yield


def _dataset(X, y, task: str, validation_fraction: float | None, seed: int, feature_names=None,
             sample_weight=None, owner: str = "the estimator", classes=None) -> Dataset:
    """X, y as a vt.Dataset: all rows train (no validation) unless validation_fraction carves one
    out; the test split is a placeholder row nobody reads. feature_names: a DataFrame's columns
    (feature_names_in_), which the trained model then checks as the estimator does.
    sample_weight: the rows' weights in the training loss, or None."""
    X, y = np.asarray(X), np.asarray(y)
    placeholder = (X[:1], y[:1])
    names = None if feature_names is None else [str(name) for name in feature_names]
    if validation_fraction is None:
        with _classes_checked_here():
            return Dataset.from_arrays(X, y, task, validation=placeholder, test=placeholder, seed=seed,
                                       feature_names=names, sample_weight=sample_weight)
    if not 0.0 < float(validation_fraction) < 1.0:
        raise ValueError(f"validation_fraction={validation_fraction!r} must be in (0, 1).")
    # (Dataset.from_arrays's warning of a class the validation split missed, said in the estimator's
    # terms: its validation_fraction, as fit takes no split given apart, and its labels, y's classes_)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = Dataset.from_arrays(X, y, task, val_fraction=float(validation_fraction), test=placeholder, seed=seed,
                                   feature_names=names, sample_weight=sample_weight)
    for w in caught:
        if isinstance(w.message, SplitMissesClassWarning):
            labels = [_plain(classes[i]) if classes is not None else i for i in w.message.class_ids[:5]]
            warn(f"{owner}(validation_fraction={validation_fraction}) holds out no row of class(es) {labels}: early "
                 f"stopping's scores cannot see them. Raise validation_fraction, or give more rows of them.",
                 UserWarning)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return data


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


def _fit_chunk(epochs: int) -> int:
    """The epochs of an estimator's fit per compiled call: the largest divisor of `epochs` at most
    an eighth of them (rounded up), so a Ctrl-C waits for about a quarter of the fit at most (the
    chunk in progress, and the next, sent as it is read); all of them where that divisor is below
    a 64th (997 epochs: one call per epoch cost 5x the one call's time)."""
    bound = max(1, -(-epochs // 8))
    chunk = max(d for d in range(1, bound + 1) if epochs % d == 0)
    return chunk if chunk * 64 >= epochs else epochs


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
