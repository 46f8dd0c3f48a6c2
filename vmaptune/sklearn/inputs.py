"""What the estimators and PopulationSearchCV share: scikit-learn's inputs checked and converted
(X, y, sample_weight, random_state, batch_size, tol), the errors for scikit-learn's own parameter
names, and the convergence rule of scikit-learn's MLPs as an early-stopping rule."""

from __future__ import annotations

import contextlib
import difflib
import inspect
import numbers
import warnings
from typing import Any, Mapping

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from vmaptune.arguments import check_seed
from vmaptune.data import Dataset, SingleRowClassWarning, SplitMissesClassWarning, single_row_classes
from vmaptune.early_stopping import EarlyStopping
from vmaptune.optim import RANGES as OPTIMIZER_RANGES
from vmaptune.warn import warn

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
#: scikit-learn's MLPs' default tol (early_stopping=True watches the validation score with it when tol is None).
SKLEARN_TOL = 1e-4
#: scikit-learn's learning_rate schedule names (vmaptune's learning_rate is learning_rate_init's step size).
SKLEARN_SCHEDULES = ("constant", "invscaling", "adaptive")


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


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


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
        elif isinstance(w.message, SingleRowClassWarning) and classes is not None:  # (y's labels, not their ids)
            warn(single_row_classes([_plain(classes[i]) for i in w.message.class_ids]), UserWarning)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return data


def _fit_chunk(epochs: int) -> int:
    """The epochs of an estimator's fit per compiled call: the largest divisor of `epochs` at most
    an eighth of them (rounded up), so a Ctrl-C waits for about a quarter of the fit at most (the
    chunk in progress, and the next, sent as it is read); all of them where that divisor is below
    a 64th (997 epochs: one call per epoch cost 5x the one call's time)."""
    bound = max(1, -(-epochs // 8))
    chunk = max(d for d in range(1, bound + 1) if epochs % d == 0)
    return chunk if chunk * 64 >= epochs else epochs
