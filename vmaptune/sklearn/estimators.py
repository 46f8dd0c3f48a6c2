"""One network as a scikit-learn estimator: MLPClassifier / MLPRegressor (the built-in MLP) and
NetworkClassifier / NetworkRegressor (your own vt.Linen / vt.Nnx model). `fit` trains one member
with the engine the searches use, in this process alone; predict / predict_proba / score read
the trained model (vmaptune.trained.TrainedModel)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from vmaptune import distributed
from vmaptune.arguments import check_int_at_least
from vmaptune.data import Dataset
from vmaptune.early_stopping import EarlyStopping
from vmaptune.models.base import Model
from vmaptune.models.mlp import MLP
from vmaptune.naming import OPTIMIZER_NAMES, function_name, is_optax, what
from vmaptune.population import PopulationRun
from vmaptune.program import build_program
from vmaptune.refit import diverged_at
from vmaptune.sklearn.inputs import (_AsBeforeIfItRaises, _batch, _check_learning_rate, _check_parameter_ranges,
                                     _check_tol, _dataset, _dense, _fit_chunk, _plain, _refuse_fit_params,
                                     _refuse_sklearn_names, _refuse_text_columns, _refuse_unknown_names, _row, _seed,
                                     _validation_tol, convergence)
from vmaptune.space import Fixed, Space
from vmaptune.trained import TrainedModel
from vmaptune.warn import warn

__all__ = ["MLPClassifier", "MLPRegressor", "NetworkClassifier", "NetworkRegressor"]

#: Estimator parameters that are settings of the training run, not hyperparameters of a member.
RUN_PARAMETERS = ("model", "epochs", "batch_size", "early_stopping", "patience", "tol", "validation_fraction",
                  "random_state", "hyperparameters")
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
