"""One trained member, out of the population: predict, score, save and load.

    model = result.best_model()            # vt.tune(..., refit=1): the best setting, refit on train + val
    model.predict(X_raw)                   # the data set's own scaling in, original units / labels out
    model.predict_proba(X_raw)             # classification
    model.score(X_raw, y)                  # accuracy (classification) or r2 (regression), as scikit-learn
    model.variables                        # {"params": ..., "batch_stats": ...}: the flax variables
    model.save("runs/x/model"); vt.TrainedModel.load("runs/x/model")

Saving writes `model.pkl` (the static network description, the hyperparameters and the data's
scaling) and `weights.npz` (every weight and state array, exactly). Loading rebuilds the
variables' structure from the network description, so predictions after a round trip are
bit-identical. A user module (vt.Linen / vt.Nnx) is pickled by reference: its class must be
importable where the model is loaded.
"""

from __future__ import annotations

import dataclasses
import datetime
import numbers
import os
import pickle
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from vmaptune import atomic, distributed, interrupts
from vmaptune.checkpoint import source_fingerprint
from vmaptune.data import (column_names, default_feature_names, missing_labels, one_hot_rows, plain_labels,
                           refuse_sparse, scaled_split)
from vmaptune.provenance import written_by
from vmaptune.models.base import BuiltModel
from vmaptune.warn import warn

#: Rows per compiled prediction call. Every call has this shape (the last is padded), so a row's
#: outputs never depend on how many rows came with it or where it stood among them.
BATCH_ROWS = 256


def pickled(obj: Any, what: str) -> bytes:
    """pickle.dumps(obj), or an error saying why your model cannot be saved: a lambda, or a class or
    function defined inside a function, has no name to be found by when it is loaded."""
    try:
        return pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise TypeError(f"{what}: the model cannot be pickled ({type(err).__name__}: {err}). A module class or "
                        f"factory given as a lambda, or defined inside a function, is found by name when loaded, "
                        f"and has none: define it at the top level of a module (e.g. models.py) and import it "
                        f"from there. So is a value bound into the factory: functools.partial(Net, body=nn.Dense(16)) "
                        f"holds a built layer, its initialisers' closures too; bind plain settings "
                        f"(functools.partial(Net, width=16)) and build the layer inside the module.") from err


#: Standard deviations from the training mean beyond which a value lies far from the training data.
FAR_FROM_TRAINING = 10


@dataclasses.dataclass(eq=False)
class TrainedModel:
    """A single trained network with the data scaling it was trained under.

    network: the static per-member network (BuiltModel). params, model_state: its variables
    (host arrays). hp: the numeric hyperparameters it computes with (scalars). hyperparameters:
    the same as plain Python values. task: "classification" or "regression". classes: the label
    of each output for classification. x_mean / x_std: the input scaling (None: inputs are used as
    given); y_mean / y_std: the target scaling (regression). input_shape / input_dtype: one
    example's. feature_names: the input columns' names when the data named them (a DataFrame's
    columns, or Dataset.from_arrays(feature_names=...)): a DataFrame given to predict must have
    them, in that order. categories / source_columns: a model trained on Dataset.from_csv(one_hot=True)
    data: the text columns it encoded and their values, and the CSV's feature columns; a DataFrame
    of those columns is encoded as the training rows were. info: where it came from (epochs trained,
    test score, ...; "diverged_at_epoch" where its training diverged: it then refuses to predict)."""

    network: BuiltModel
    params: Any
    model_state: Any
    hp: Mapping[str, Any]
    hyperparameters: Mapping[str, Any]
    task: str
    classes: np.ndarray | None
    input_shape: tuple[int, ...]
    input_dtype: str
    x_mean: np.ndarray | None = None
    x_std: np.ndarray | None = None
    y_mean: Any = 0.0
    y_std: Any = 1.0
    info: dict = dataclasses.field(default_factory=dict)
    feature_names: tuple[str, ...] | None = None  # (None in models saved before it existed)
    categories: Mapping[str, tuple[str, ...]] | None = None
    source_columns: tuple[str, ...] | None = None

    def __post_init__(self):
        self._forward = jax.jit(self._outputs)

    def __getstate__(self):  # pickling (scikit-learn estimators hold a model): the compiled function stays
        state = dict(self.__dict__)
        state.pop("_forward", None)
        state.pop("_search_metric", None)  # (a metric of yours is a function: kept in this process only)
        state["info"] = {**self.info, "written_by": written_by()}  # (a joblib file says what wrote it, as save's)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # (as load: a class edited since it was pickled is refused, not run with weights that do not fit it, a
        # new layer's at their initial values)
        weights = (self.params, self.model_state)
        _, leaves = _fitted_weights(self.network, self.hp, jax.tree.leaves(weights), _weight_names(weights), None,
                                    "", "the pickled (or copied) model")
        self._warn_edited("the pickled (or copied) model: ")
        # (read-only views: copy.copy hands the original's arrays here, whose flags stay as they were)
        self.params, self.model_state = jax.tree.unflatten(jax.tree.structure(weights), _read_only(leaves))
        self._forward = jax.jit(self._outputs)

    @classmethod
    def from_dataset(cls, network, params, model_state, hp, hyperparameters, data, **info) -> "TrainedModel":
        """A trained member of a search on `data` (vt.Dataset): its scaling travels with it."""
        classes = np.asarray(getattr(data, "classes", None) if getattr(data, "classes", None) is not None
                             else np.arange(data.n_classes)) if data.task == "classification" else None
        return cls(network=network, params=jax.device_get(params), model_state=jax.device_get(model_state),
                   hp={k: np.asarray(v) for k, v in hp.items()}, hyperparameters=dict(hyperparameters),
                   task=data.task, classes=classes, input_shape=data.input_shape,
                   input_dtype=str(data.X_train.dtype), x_mean=data.x_mean, x_std=data.x_std, y_mean=data.y_mean,
                   y_std=data.y_std, info={**info, **_ids_trained_on(data), **_source_of(network),
                                           "trained_by": written_by()},
                   feature_names=_named_features(data),
                   categories=getattr(data, "categories", None),
                   source_columns=getattr(data, "source_columns", None) or None)

    # -- using it --------------------------------------------------------------------------------
    @property
    def variables(self) -> dict[str, Any]:
        """The flax variables: {"params": ..., plus model-state collections such as batch_stats}."""
        state = self.model_state if isinstance(self.model_state, Mapping) else {"state": self.model_state}
        return {"params": self.params, **state}

    def flax_module(self) -> Any:
        """The trained network as flax objects, for use outside vmaptune. They take scaled inputs,
        `model.scale(X)`, and give `model.outputs(X)` (logits, or standardised
        values). vt.Nnx: the nnx.Module holding the trained weights and state, in eval mode:
        `module(model.scale(X))`. vt.Linen: (module, variables): `module.apply(variables,
        model.scale(X))` (pass your __call__'s train=False where it has no default). vt.MLP:
        (PlainMLP, variables), the member's Dense layers at its own depth and widths."""
        return self.network.flax_module(self.params, self.model_state, self.hp)

    def _outputs(self, params, model_state, x):
        hp = {k: jnp.asarray(v) for k, v in self.hp.items()}
        return self.network.apply(params, model_state, x, hp, train=False, key=None)[0]

    def scale(self, X: Any) -> np.ndarray:
        """Raw inputs (n, ...) scaled as the training data was."""
        split = scaled_split(X)
        if split is not None and self.x_mean is not None:
            raise ValueError(f"X is a vt.Dataset's X_{split}, which it holds standardised; a trained model takes raw "
                             f"rows, as new data comes, and scales them itself (scaled twice, the outputs are "
                             f"wrong). Pass data.raw({split!r}): e.g. model.score(*data.raw({split!r})).")
        X = self._encoded(X)
        self._check_columns(X)
        refuse_sparse(X)
        X = _numbers(X, self.source_columns if self.categories else None)
        given = X.shape
        if X.ndim == len(self.input_shape):  # one example
            X = X[None]
        if tuple(X.shape[1:]) != tuple(self.input_shape):
            if len(given) == len(self.input_shape):  # one example of the wrong shape, or rows missing an axis
                raise ValueError(f"X has shape {given}, but the model takes rows of shape {tuple(self.input_shape)}: "
                                 f"give X as (n, {', '.join(map(str, self.input_shape))}), or one example as "
                                 f"{tuple(self.input_shape)}.")
            names = " (the features in training order: model.feature_names)" if self.feature_names else ""
            raise ValueError(f"X has examples of shape {X.shape[1:]}, but the model was trained on {self.input_shape}: "
                             f"give X as (n, {', '.join(map(str, self.input_shape))}){names}.")
        if not np.issubdtype(X.dtype, np.integer):
            bad = ~np.isfinite(X.reshape(len(X), int(np.prod(X.shape[1:]))).astype(np.float64)).all(axis=1)
            if bad.any():
                raise ValueError(f"X has {int(bad.sum())} row(s) with NaN or infinite values (rows "
                                 f"{np.flatnonzero(bad)[:5].tolist()}{'...' if bad.sum() > 5 else ''}); the model "
                                 f"would answer them with NaN. Impute or drop them first.")
        if self.x_mean is None:
            if np.issubdtype(self.input_dtype, np.integer) and not np.issubdtype(X.dtype, np.integer):
                flat = X.reshape(len(X), int(np.prod(X.shape[1:])))
                bad = (flat != np.round(flat)).any(axis=1)
                if bad.any():  # (token ids: astype would truncate 3.7 to 3)
                    raise ValueError(f"X holds values that are not whole numbers (rows {np.flatnonzero(bad)[:5].tolist()}"
                                     f"), but the model was trained on {self.input_dtype} inputs (token ids, say); "
                                     f"give whole numbers.")
            if np.issubdtype(self.input_dtype, np.integer) and X.size:  # (astype would wrap 2**32 + 3 to id 3)
                held = np.iinfo(self.input_dtype)
                flat = X.reshape(len(X), int(np.prod(X.shape[1:])))
                bad = ((flat < held.min) | (flat > held.max)).any(axis=1)
                if bad.any():
                    raise ValueError(f"X has {int(bad.sum())} row(s) with values outside {self.input_dtype}'s range "
                                     f"[{held.min}, {held.max}] (rows {np.flatnonzero(bad)[:5].tolist()}), but the "
                                     f"model takes {self.input_dtype} inputs (token ids, say): cast to it, they would "
                                     f"wrap to other values (2**32 + 3 to 3). Give values the model was trained on.")
            if "input_ids" in self.info and X.size:
                self._warn_unseen_ids(X)
            with np.errstate(over="ignore", invalid="ignore"):  # (_finite names the rows that overflow)
                return self._finite(X.astype(self.input_dtype), "as the model's inputs")
        with np.errstate(over="ignore"):
            scaled = self._finite(((X.astype(np.float64) - self.x_mean) / self.x_std).astype(np.float32), "once scaled")
        per_row = int(np.prod(scaled.shape[1:]))  # (one or two features far away: extrapolation, said nothing)
        far = float(np.mean(np.abs(scaled) > FAR_FROM_TRAINING)) if scaled.size and per_row >= 4 else 0.0
        if far > 0.5:  # (most values, not one odd column: rows scaled already, or in other units)
            warn(f"X lies far from the training data: {far:.0%} of its values are more than {FAR_FROM_TRAINING} "
                 f"standard deviations from the training rows' mean. A trained model takes raw rows, in the data's "
                 f"own units, and scales them itself; rows taken from a vt.Dataset's X_train, X_val or X_test "
                 f"(data.X_test[:5]) are standardised already: use data.raw('test') instead. Otherwise check X's "
                 f"units.")
        return scaled

    @staticmethod
    def _finite(X: np.ndarray, how: str) -> np.ndarray:
        """X, refused when a finite input went past float32's range (1e39: inf inside the network)."""
        if np.issubdtype(X.dtype, np.floating):
            bad = ~np.isfinite(X.reshape(len(X), int(np.prod(X.shape[1:])))).all(axis=1)
            if bad.any():
                raise ValueError(f"X has {int(bad.sum())} row(s) with values past float32's range (about 3.4e38) "
                                 f"{how} (rows {np.flatnonzero(bad)[:5].tolist()}); the network computes in float32 "
                                 f"and would answer NaN. Check their units.")
        return X

    def _encoded(self, X: Any) -> Any:
        """X, or, where it holds a text column the model's data encoded (from_csv(one_hot=True)),
        X's rows encoded as the training rows were (one_hot_rows), once its columns are checked
        against the CSV's."""
        given, _ = _columns(X)
        if not self.categories or given is None or not set(self.categories) & set(given):
            return X
        if isinstance(X, pd.Series):  # (one row, df.iloc[0]: its values as the columns' own types)
            X = X.to_frame().T.infer_objects()
        self._check_columns(X, self.source_columns)
        return one_hot_rows(X, self.categories)

    def _check_columns(self, X: Any, names: tuple[str, ...] | None = None) -> None:
        """A DataFrame's columns against the names the model was trained with (as scikit-learn
        checks them): a column moved or renamed would silently feed the wrong input. names: the
        columns expected (the features by default; the CSV's, for rows one_hot_rows encodes)."""
        raw = names is not None
        names = self.feature_names if names is None else names
        given, what = _columns(X)
        if not names or given is None or tuple(given) == tuple(names):
            return
        missing, unexpected = [n for n in names if n not in given], [n for n in given if n not in names]
        why = (f"missing {missing}" if missing else "") + ("; " if missing and unexpected else "") + \
            (f"unexpected {unexpected}" if unexpected else "")
        attribute = "model.source_columns" if raw else "model.feature_names"
        if not missing:
            fix = f"Select them as X[{attribute}]" + ("." if raw else ", or pass a numpy array in that order.")
        else:  # (X[model.feature_names] raises KeyError: the columns must come first)
            fix = f"Add the missing column(s), then select X[{attribute}]" + (
                "." if raw else ", or pass a numpy array in that order.")
        if self.categories and not raw:  # (a model of from_csv(one_hot=True): its CSV's columns are the easy way)
            fix += (f" This model was trained on Dataset.from_csv(one_hot=True): a DataFrame of the CSV's own "
                    f"columns, {list(self.source_columns)}, is encoded as its training rows were.")
        elif missing and not raw:  # (a model saved before it recorded its categories, or of your own one-hot columns)
            fix += (" A model trained on one-hot columns (Dataset.from_csv(one_hot=True) before vmaptune recorded "
                    "them, or pandas.get_dummies of your own) takes new rows encoded as its training rows were: "
                    "pandas.get_dummies(X, dtype=float).reindex(columns=model.feature_names, fill_value=0) (a text "
                    "value the rows lack is a column of 0; one row as a DataFrame, X.to_frame().T, not a Series).")
        features = "columns of the CSV the model was trained on" if raw else "features the model was trained on"
        raise ValueError(f"{what} {given} are not the {len(names)} {features}, in "
                         f"order: {list(names)} ({why or 'the same names, in another order'}). {fix}")

    def outputs(self, X: Any) -> np.ndarray:
        """The network's raw outputs (n, n_outputs) for raw inputs: logits, or standardised values."""
        self._refuse_diverged()
        Xs = self.scale(X)
        n = len(Xs)
        padded = np.zeros((-(-n // BATCH_ROWS) * BATCH_ROWS,) + Xs.shape[1:], Xs.dtype)
        padded[:n] = Xs
        chunks = [np.asarray(self._forward(self.params, self.model_state, jnp.asarray(padded[i:i + BATCH_ROWS])))
                  for i in range(0, len(padded), BATCH_ROWS)]
        if not chunks:  # no rows: no outputs, as wide as the network's
            return np.asarray(self._forward(self.params, self.model_state, jnp.zeros((BATCH_ROWS,) + Xs.shape[1:],
                                                                                      Xs.dtype)))[:0]
        return np.concatenate(chunks)[:n]

    def _refuse_diverged(self) -> None:
        """An error where the model's training diverged (info["diverged_at_epoch"]): its weights are
        those of the step before the loss turned non-finite, and its outputs, finite, mean nothing
        (1e28 for targets near 100), so predict, score and the others refuse it."""
        if "diverged_at_epoch" not in self.info:
            return
        epoch = self.info["diverged_at_epoch"]
        at = f" at epoch {epoch}" + (f" of {self.info['epochs']}" if self.info.get("epochs") else "") if epoch else ""
        row = self.info.get("row")
        if row is not None:  # (a refit of vt.tune: the search run of its row did not diverge)
            fix = (f"It is the refit of row {row}, whose search run did not diverge (the refit trains on train + "
                   f"validation, in another minibatch order); its test_score is NaN. Search again with a lower "
                   f"learning rate, or take another refit row: results.model(row).")
        else:
            fix = "Train it again with a lower learning rate."
        raise ValueError(f"this model's training diverged{at} (a non-finite loss): it holds the weights of the step "
                         f"before, whose outputs mean nothing, so it gives no outputs, predictions or scores. {fix} "
                         f"Its weights stay readable to inspect: model.variables, model.flax_module().")

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores as scikit-learn's classifiers give them: for two classes (n,), the second class's
        logit less the first's (its log-odds, so roc_auc and CalibratedClassifierCV read it as they
        read scikit-learn's); else `outputs(X)`, (n, n_outputs)."""
        outputs = self.outputs(X)
        if self.task == "classification" and len(self.classes) == 2 and outputs.shape[1:] == (2,):
            return outputs[:, 1] - outputs[:, 0]
        return outputs

    def _warn_unseen_ids(self, X: np.ndarray) -> None:
        """Warns of integer inputs (token ids) outside the range the model trained on: an
        embedding has no trained row for them, reads an id past its table as a fill value that
        pooling may hide, and a negative one as counted from the end."""
        low, high = self.info["input_ids"]
        flat = X.reshape(len(X), -1)
        bad = ((flat < low) | (flat > high)).any(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            values = sorted({int(v) for v in flat[rows[:5]].ravel() if v < low or v > high})[:5]
            warn(f"X has {len(rows)} row(s) holding integer inputs outside {low}..{high}, the range of those the "
                 f"model trained on (rows {rows[:5].tolist()}{'...' if len(rows) > 5 else ''}: values {values}). "
                 f"Integer inputs are ids (an embedding's rows): none was trained for these, an id past the "
                 f"table reads a fill value (NaN in flax's nn.Embed, which a max or a mask may pass over without "
                 f"an error), and a negative one is counted from the end (-1: the last id), so these rows' "
                 f"predictions do not rest on their values. "
                 f"Map unseen ids to one the training rows held (an 'unknown' id).", UserWarning)

    def _logits(self, X: Any, outputs: np.ndarray | None = None) -> np.ndarray:
        """outputs(X) (`outputs`, when computed already), refused where they are not
        finite: argmax would read NaN as the first class, and a regression's -inf is no value."""
        logits = self.outputs(X) if outputs is None else outputs
        bad = ~np.isfinite(logits).all(axis=1)
        if bad.any():
            told = "class" if self.task == "classification" else "value"
            raise ValueError(f"the network's outputs for {int(bad.sum())} row(s) of X are NaN or infinite (rows "
                             f"{np.flatnonzero(bad)[:5].tolist()}), so no {told} can be told for them. Inputs unlike "
                             f"the training data do this: token ids past an embedding's vocabulary, or values "
                             f"that overflow inside the network; so does a network whose training diverged (a "
                             f"learning rate too high). model.outputs(X) shows the raw outputs.")
        return logits

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (classification) or values in the targets' own units (regression)."""
        return self._predicted(X)

    def _predicted(self, X: Any, outputs: np.ndarray | None = None) -> np.ndarray:
        """predict(X) from outputs(X) (`outputs`, when computed already)."""
        if self.task == "classification":
            return self.classes[np.argmax(self._logits(X, outputs), axis=-1)]
        values = self._logits(X, outputs) * np.asarray(self.y_std) + np.asarray(self.y_mean)
        return values[:, 0] if values.shape[1] == 1 else values

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, n_classes) class probabilities (softmax of the logits)."""
        if self.task != "classification":
            raise ValueError("predict_proba is for classification; this model does regression: use predict.")
        logits = self._logits(X).astype(np.float64)
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return exp / exp.sum(axis=-1, keepdims=True)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (classification) or r2 (regression) on raw data, each row weighted by
        `sample_weight` (n,) where given, as scikit-learn's estimators."""
        from sklearn.metrics import accuracy_score, r2_score

        outputs, y = self._scored(X, y, "score")
        predicted = self._predicted(X, outputs)
        scored = accuracy_score if self.task == "classification" else r2_score
        return float(scored(y, predicted, sample_weight=sample_weight))

    def _scored(self, X: Any, y: Any, call: str) -> tuple[np.ndarray, np.ndarray]:
        """(outputs, y) for scoring: at least one row, y shaped as the outputs' rows, and labels of
        the classes' kind (names or ids)."""
        outputs = self.outputs(X)
        if len(outputs) == 0:  # (a metric of no rows is NaN; scikit-learn's score refuses them too)
            raise ValueError(f"{call}(X, y) got 0 rows; a metric needs at least one row to score.")
        y = np.asarray(y)
        if y.dtype.kind == "O":  # (None, NaN or pandas' NA among labels, or in a nullable Float64 target)
            missing = np.flatnonzero(missing_labels(y))
            if len(missing):
                raise ValueError(f"{call}(X, y): y has {len(missing)} row(s) of missing labels or targets (None, NaN "
                                 f"or NA), the first at row {missing[0]}; drop those rows first.")
        y = _targets_shaped(y, outputs, self.task)  # (an (n, 1) column of labels becomes (n,) here)
        if y.dtype.kind == "O":
            y = plain_labels(y) if self.task == "classification" else y.astype(np.float64)
        if y.dtype.kind == "f" and not np.isfinite(y).all():  # (a metric of them is NaN; from_arrays refuses them too)
            bad = np.flatnonzero(~np.isfinite(y).reshape(len(y), -1).all(axis=1))
            raise ValueError(f"{call}(X, y): y has {len(bad)} row(s) of NaN or infinite targets, the first at row "
                             f"{bad[0]}; drop those rows first.")
        if self.task == "classification" and (self.classes.dtype.kind in "OSU") != (y.dtype.kind in "OSU"):
            raise ValueError(f"y holds labels such as {y[:3].tolist()}, but the model's classes are "
                             f"{self.classes.tolist()[:10]}: give y as the labels it was trained on.")
        if self.task == "classification":  # (score read ids 0..k-1 of classes [3, 7, 9] as wrong answers: 0.0)
            ids = np.searchsorted(self.classes, y)
            known = (ids < len(self.classes)) & (self.classes[np.minimum(ids, len(self.classes) - 1)] == y)
            unseen = np.unique(y[~known])[:5].tolist()
            as_ids = np.issubdtype(y.dtype, np.integer) and ((y >= 0) & (y < len(self.classes))).all()
            fix = " (class ids 0..k-1, as a LabelEncoder gives them? their labels are model.classes[y])" \
                if as_ids and not np.array_equal(self.classes, np.arange(len(self.classes))) else ""
            if not known.any() or (not known.all() and call != "score"):
                raise ValueError(f"{call}(X, y): y holds labels the model was not trained on: {unseen}; its classes "
                                 f"are {self.classes.tolist()}{fix}. Give y as the labels it was trained on.")
            if not known.all():  # (as scikit-learn's score: a label no output names is a wrong answer)
                warn(f"score(X, y): y holds labels the model was not trained on, {unseen} ({int((~known).sum())} of "
                     f"{len(y)} rows), which it never predicts: they are scored as wrong answers. Its classes are "
                     f"{self.classes.tolist()}{fix}.", UserWarning)
        return outputs, y

    def evaluate(self, X: Any, y: Any, metric: "str | Any" = None) -> float:
        """`metric` (a name vt.tune takes, or a vt.Metric; default: the search's metric for a model of
        vt.tune's, else accuracy / neg_mse) on raw X, y,
        scored as the search scores: higher is better, the built-in regression errors in standardised
        units (a vt.Metric of yours in the targets' own). So model.evaluate(*data.raw("test"),
        metric=...) is the refit's test_score with that metric."""
        from vmaptune.metrics import METRICS, get_metric, in_target_units, is_builtin

        if metric is None and self.info.get("metric") is not None:  # the search's, as test_score scored
            metric = self.info["metric"]
            if metric not in METRICS or self.info.get("metric_is_yours"):
                # a metric of yours (whatever its name): the search's process keeps it (the program's own,
                # scaled as test_score was)
                metric = getattr(self, "_search_metric", None)
                if metric is None:
                    raise ValueError(f"this model was searched with your metric {self.info['metric']!r}, which a "
                                     f"saved or loaded model does not keep (a function): pass it, "
                                     f"model.evaluate(X, y, metric=your_metric).")
        named = get_metric(metric, self.task)
        chosen = in_target_units(named, self.y_mean, self.y_std)
        outputs, y = self._scored(X, y, "evaluate")
        if self.task == "classification":  # (_scored refused labels the model was not trained on)
            targets = np.searchsorted(self.classes, y).astype(np.int32)
            # (roc_auc of more than two classes is refused by the metric itself, whatever the rows)
            auc = named.name == "roc_auc_ovr" or (named.name == "roc_auc" and len(self.classes) == 2)
            if auc and is_builtin(named) and len(np.unique(y)) < 2:
                raise ValueError(f"metric={named.name!r} is undefined on rows of one class (y holds only "
                                 f"{np.unique(y).tolist()}): give rows of more than one class, or use "
                                 f"metric='neg_log_loss' / 'accuracy'.")
        else:
            targets = ((y.astype(np.float64) - np.asarray(self.y_mean)) / np.asarray(self.y_std)).astype(np.float32)
        return float(chosen.score(jnp.asarray(outputs), jnp.asarray(targets)))

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags: its scorers (get_scorer("roc_auc_ovr")),
        permutation_importance and sklearn.frozen.FrozenEstimator (a fitted step of a Pipeline) take
        the trained model as the fitted classifier or regressor it is. It has no fit: it is trained."""
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        classifier = self.task == "classification"
        multi = not classifier and len(np.atleast_1d(np.asarray(self.y_mean))) > 1
        return Tags(estimator_type="classifier" if classifier else "regressor",
                    target_tags=TargetTags(required=True, multi_output=multi, single_output=not multi),
                    classifier_tags=ClassifierTags() if classifier else None,
                    regressor_tags=None if classifier else RegressorTags())

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any = None, y: Any = None, **fit_params):
        """A trained model is not trained again (scikit-learn's check that this is an estimator reads
        that it has fit): wrap it in sklearn.frozen.FrozenEstimator, whose fit does nothing."""
        raise TypeError(f"{self!r} is trained already and has no fit of its own: use it as it is "
                        f"(sklearn.frozen.FrozenEstimator(model) as a fitted Pipeline step), or fit an estimator "
                        f"(vt.MLPClassifier, vt.NetworkClassifier, ...) with its settings, model.hyperparameters.")

    @property
    def classes_(self) -> np.ndarray:
        """The class labels (scikit-learn's name for `classes`)."""
        if self.classes is None:
            raise AttributeError("a regression model has no classes_.")
        return self.classes

    def __repr__(self):
        values = ", ".join(f"{k}={v}" for k, v in self.hyperparameters.items())
        if "diverged_at_epoch" in self.info:  # (it refuses to predict: outputs says why)
            epoch = self.info["diverged_at_epoch"]
            values += ", diverged" + (f" at epoch {epoch}" if epoch else "")
        return f"TrainedModel({self.task}, {values})"

    # -- save / load ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, shown_as: str | None = None) -> str:
        """Writes the model to the directory `path` (created; a path that is a file is refused):
        model.pkl and weights.npz, each whole or not at all (a kill mid-save leaves the files that
        were there). The loaded model's info["written_by"] holds the versions of vmaptune, jax,
        flax, optax and Python that wrote it. In a multi-process run only process 0 writes (every
        process holds the same model), as results.save. shown_as: the path a warning names (where
        `path` is a temporary directory renamed to it once written)."""
        path = os.fspath(path)
        if os.path.exists(os.path.join(path, "run.json")):  # (its files would sit beside a run's results)
            raise ValueError(f"model.save({path!r}): {path} holds a run (run.json); save the model in a directory "
                             f"of its own, e.g. {os.path.join(path, 'best_model')!r} (results.save keeps a run's "
                             f"refit models under models/).")
        if not distributed.is_primary():
            return path
        described = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                     if f.name not in ("params", "model_state")}
        described["info"] = {**self.info, "written_by": written_by()}  # (what a later reader can check)
        # (each weight's dtype by name: np.savez keeps bfloat16 or float8 as raw bytes, which load names again;
        # in info, which a version before it loads as it is, not in weights.npz, whose arrays it counts)
        described["info"]["weight_dtypes"] = [str(np.asarray(x).dtype) for x in
                                              jax.tree.leaves((self.params, self.model_state))]
        # (and by name: load refuses a class whose layers were renamed, added or removed since)
        described["info"]["weight_names"] = _weight_names((self.params, self.model_state))
        data = pickled(described, f"model.save({shown_as or path!r})")
        atomic.make_dir(path, f"model.save({path!r})", "model.pkl and weights.npz")
        leaves = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves((self.params, self.model_state)))}
        if b"__main__" in data:  # (a class pickled by reference to the script run: loads only under that script)
            warn(f"model.save({shown_as or path!r}): the model's class is defined in the script run as __main__, so "
                 f"model.pkl can be loaded only by a process whose __main__ defines it too (a server or a "
                 f"notebook cannot). Move the class to a module of its own (e.g. models.py) and import it "
                 f"from there, then save again.", UserWarning)
        with interrupts.deferred():  # (Ctrl-C waits for the pair: weights.npz and model.pkl of one model)
            atomic.write_file(os.path.join(path, "weights.npz"), lambda f: np.savez(f, **leaves))
            atomic.write_file(os.path.join(path, "model.pkl"), lambda f: f.write(data))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TrainedModel":
        """A model written by `save`: the same weights, bit for bit."""
        path = os.fspath(path)
        if not os.path.isfile(os.path.join(path, "model.pkl")):
            what = "does not exist" if not os.path.exists(path) else \
                "is a file" if not os.path.isdir(path) else "holds no model.pkl"
            raise FileNotFoundError(f"TrainedModel.load({path!r}): {path} {what}; give the directory model.save(dir) "
                                    f"wrote (model.pkl and weights.npz in it). A search's refit models are in its run "
                                    f"directory: vt.load_results(run_dir).best_model().")
        with open(os.path.join(path, "model.pkl"), "rb") as f:
            try:
                described = pickle.load(f)
            except (ImportError, AttributeError) as err:  # the class of a model of your own is not importable here
                raise ImportError(f"{path}: the model's class cannot be imported here ({err}). Import the module that "
                                  f"defines it first (or run from its folder); a class defined in a script run as "
                                  f"__main__ must move to a module of its own to load elsewhere.") from err
        network: BuiltModel = described["network"]
        with np.load(os.path.join(path, "weights.npz")) as weights:
            leaves = [weights[f"leaf_{i}"] for i in range(sum(name.startswith("leaf_") for name in weights.files))]
            # (a few commits wrote the dtypes as an entry of weights.npz; None: saved before either)
            written = weights["dtypes"].tolist() if "dtypes" in weights.files else None
        saved = described["info"].pop("weight_dtypes", None) or written
        names = described["info"].pop("weight_names", None)  # (None: saved before they were)
        treedef, leaves = _fitted_weights(network, described["hp"], leaves, names, saved, f"{path}: ", "weights.npz")
        params, model_state = jax.tree.unflatten(treedef, _read_only(leaves))
        model = cls(params=params, model_state=model_state, **described)
        model._warn_edited(f"{path}: ")
        return model

    def _warn_edited(self, where: str) -> None:
        """Warns where the source of the class of a model of your own differs from the one it was
        trained with (info["source_sha256"], as a resume compares it): an edit that keeps every
        weight's name and shape (an activation, the order the layers are called in) loads, and
        changes what the weights compute."""
        saved, now = self.info.get("source_sha256"), _source_of(self.network).get("source_sha256")
        if saved and now and saved != now:
            shown = _network_name(self.network)
            warn(f"{where}the source of {shown}'s class changed since the model was trained (sha256 {saved}, now "
                 f"{now}). Its weights fit the class as it is now, so it loads, but an edit that keeps every "
                 f"weight's name and shape (an activation, the order the layers are called in) changes what they "
                 f"compute: check the edit, load it where the class is as it was when trained, or train it again.",
                 UserWarning)


def _weight_names(weights: Any) -> list[str]:
    """Each weight's name in (params, model_state), as save records them and load compares them:
    params['Dense_0']['kernel'] (the layers' own names; nnx's Variable attribute, .value, left out)."""
    names = []
    for at, _ in jax.tree_util.tree_flatten_with_path(weights)[0]:
        name = ("params", "model_state")[at[0].idx]
        for key in at[1:]:
            if isinstance(key, jax.tree_util.GetAttrKey):
                name += "" if key.name == "value" else f".{key.name}"
            else:  # (DictKey, SequenceKey, FlattenedIndexKey)
                name += f"[{getattr(key, 'key', getattr(key, 'idx', None))!r}]"
        names.append(name)
    return names


def _fitted_weights(network: BuiltModel, hp: Mapping[str, Any], leaves: list, names: list[str] | None,
                    dtypes: list[str] | None, where: str, holder: str) -> tuple[Any, list]:
    """(treedef, leaves): the saved weight arrays `leaves` checked against the variables `network`'s
    class builds now, and their structure. A class edited since it was saved is refused naming the
    weights: those added, removed or renamed (a renamed layer took another's weights by position),
    or a weight's saved shape and the one the class builds now (predict failed, advising a reshape,
    or ran a new layer at its initial weights). names: the saved weights' names (None: saved before
    they were); dtypes: their dtype names (None: the network's). where: the message's start (a
    path); holder: what holds the saved weights (weights.npz, the pickled model)."""
    hp = {k: jnp.asarray(v) for k, v in hp.items()}
    structure = jax.eval_shape(lambda key: network.init(key, hp), jax.random.key(0))
    treedef = jax.tree.structure(structure)
    shown = _network_name(network)
    fix = "Load it where the class is as it was when saved, or train the model again."
    built = _weight_names(structure)
    if names is not None and list(names) != built:
        listed = (lambda weights: ", ".join(weights[:6]) + (f", ... ({len(weights)})" if len(weights) > 6 else ""))
        added, missing = [n for n in built if n not in names], [n for n in names if n not in built]
        said = ([f"builds {listed(added)}, which {holder} does not hold"] if added else []) + \
            ([f"does not build {listed(missing)}, which {holder} holds"] if missing else []) or \
            [f"orders its weights otherwise than {holder}"]
        raise ValueError(f"{where}{shown} as importable now {'; it '.join(said)}: the class changed since the model "
                         f"was saved (a layer added, removed or renamed). {fix}")
    if treedef.num_leaves != len(leaves):  # (a model saved before its weights' names were)
        raise ValueError(f"{where}{shown} as importable now builds {treedef.num_leaves} weight arrays, but {holder} "
                         f"holds {len(leaves)}: the class changed since the model was saved (a layer added or "
                         f"removed), or the files do not belong together. {fix}")
    # (np.savez cannot name ml_dtypes' types, bfloat16 or float8: np.load gives their raw bytes, '|V2'; the
    # dtypes saved beside them read them back, bits intact; a file saved before names none: the network's)
    named = dtypes or [str(want.dtype) for want in jax.tree.leaves(structure)]
    leaves = [leaf.view(jnp.dtype(name)) if leaf.dtype.kind == "V" and leaf.dtype.itemsize ==
              jnp.dtype(name).itemsize else leaf for leaf, name in zip(leaves, named)]
    widened = [name for leaf, want, name in zip(leaves, jax.tree.leaves(structure), built)
               if tuple(leaf.shape) == tuple(want.shape) and leaf.dtype != want.dtype
               and leaf.dtype in (np.float32, np.float64) and jnp.issubdtype(want.dtype, jnp.floating)]  # (numpy's
    # promotion: p * np.float32(0.9) of a float16 p is float32; a class edited from bfloat16 to float16 is a class
    # changed, refused below)
    if widened:  # (weights replaced by the user's own arithmetic: float32 * np.float64(0.9) is float64 in numpy 2)
        warn(f"{where}{holder}'s {', '.join(widened[:3])}{' ...' if len(widened) > 3 else ''} "
             f"{'is' if len(widened) == 1 else 'are'} of another float width than {shown} builds "
             f"({len(widened)} weight(s)); they are cast to the network's dtype, as its training and predict "
             f"compute in it (weights replaced with numpy's float64 arithmetic, say).", UserWarning)
        leaves = [leaf.astype(want.dtype) if name in widened else leaf
                  for leaf, want, name in zip(leaves, jax.tree.leaves(structure), built)]
    for leaf, want, leaf_name in zip(leaves, jax.tree.leaves(structure), built):
        if tuple(leaf.shape) != tuple(want.shape) or leaf.dtype != want.dtype:
            raise ValueError(f"{where}{holder}'s {leaf_name} is {tuple(leaf.shape)} {leaf.dtype}, but "
                             f"{shown} as importable now builds {tuple(want.shape)} {want.dtype}: the class "
                             f"changed since the model was saved (a default, a layer's width). {fix}")
    return treedef, leaves


def _network_name(network: BuiltModel) -> str:
    """How messages name the network: your class as vt.Linen(Net) / vt.Nnx(Net); a built-in one as
    vt.MLP."""
    name = getattr(network, "name", None)
    return name() if callable(name) else f"vt.{type(network).__name__.removeprefix('Built')}"


def _read_only(leaves: list) -> list:
    """The weight arrays as read-only views, as a model's fresh from training are (jax's host
    copies): an edit in place of the flax_module() variables or model.variables handed out
    (pruning, *=) is refused, not made to the model's own weights."""
    views = []
    for leaf in leaves:
        if isinstance(leaf, np.ndarray):
            leaf = leaf.view()  # (a view: the arrays it shares with a copy.copy's original keep their flags)
            leaf.flags.writeable = False
        views.append(leaf)
    return views


def _source_of(network: BuiltModel) -> dict[str, str]:
    """{"source_sha256": <hex>} of the class (or factory) of a model of your own, as a resume
    fingerprints it; {} for the built-in models and a class whose source cannot be read."""
    fingerprint = source_fingerprint(network)
    return {"source_sha256": fingerprint.split()[-1]} if fingerprint else {}


def _columns(X: Any) -> tuple[list[str] | None, str]:
    """X's column names (a DataFrame's, or a one-row Series' index: df.iloc[0]) and how to name
    them in a message; None for arrays."""
    given = column_names(X)
    if given is None and isinstance(X, pd.Series) and all(isinstance(i, str) for i in X.index):
        return [str(i) for i in X.index], "X's index (one row, a pandas Series)"
    return given, "X's columns"


def _ids_trained_on(data) -> dict[str, list[int]]:
    """{"input_ids": [lowest, highest]} of integer inputs (token ids) in the rows a model trains
    on (train and validation; predict warns of ids outside them); {} for other inputs."""
    X = np.asarray(data.X_train)
    if not np.issubdtype(X.dtype, np.integer):
        return {}
    rows = np.concatenate([X.reshape(-1), np.asarray(data.X_val).reshape(-1)])
    return {"input_ids": [int(rows.min()), int(rows.max())]} if rows.size else {}


def _named_features(data) -> tuple[str, ...] | None:
    """The data's feature names when they were given (not the x0, x1, ... of unnamed columns)."""
    names = tuple(getattr(data, "feature_names", ()) or ())
    return names if names and names != default_feature_names(len(names)) else None


def _numbers(X: Any, source_columns: tuple[str, ...] | None = None) -> np.ndarray:
    """X as a numeric array: pandas' missing values (pd.NA) as NaN, which the row check names; a
    ragged list or text is an error saying so (numpy's own errors name neither). source_columns:
    the CSV's columns of a model that encodes their text itself (from_csv(one_hot=True))."""
    frame = X if isinstance(X, pd.DataFrame) else None  # (its columns name the one that holds text)
    try:
        X = np.asarray(X)
    except ValueError:  # (rows of different lengths)
        raise ValueError("X's rows have different lengths (a ragged list); give every row the same number of "
                         "values, as the model was trained on.") from None
    if X.dtype.kind in "Mmc":  # (dates read as days since 1970; complex values lose their imaginary part)
        what = {"M": "dates", "m": "time spans", "c": "complex numbers"}[X.dtype.kind]
        raise ValueError(f"X holds {what} ({X.dtype}); the model takes real numbers: encode them first (dates as "
                         f"features such as the day of the week, time spans as seconds: .astype('timedelta64[s]')"
                         f".astype(float), complex values as their real and imaginary parts).")
    if X.dtype.kind not in "OSU":
        return X
    missing = pd.isna(X) if X.dtype.kind == "O" else np.zeros(X.shape, bool)
    try:  # (numpy text arrays as objects: np.where has no common type for NaN and text)
        return np.where(missing, np.nan, X.astype(object)).astype(np.float64)
    except (TypeError, ValueError):
        cells = X.ravel()
        at = next((i for i in np.flatnonzero(~missing.ravel()) if _not_a_number(cells[i])), None)
        odd = None if at is None else cells[at]
        if isinstance(odd, (datetime.date, datetime.timedelta, np.datetime64, np.timedelta64)):
            raise ValueError(f"X holds dates or time spans, such as {str(odd)!r}; the model takes real numbers: encode "
                             f"them first (dates as features such as the day of the week, time spans as seconds)."
                             ) from None
        if isinstance(odd, numbers.Complex):
            raise ValueError(f"X holds complex numbers, such as {odd!r}; the model takes real numbers: give their real "
                             f"and imaginary parts as features of their own.") from None
        if frame is not None and X.ndim == 2 and at is not None:  # (the column, and its row by the frame's label)
            column, row = frame.columns[at % X.shape[1]], frame.index[at // X.shape[1]]
            fix = ("the model was trained on it as numbers: give its values as numbers, as the CSV it was trained on "
                   "held them (a yes/no column as True/False or 1/0)" if source_columns is not None else
                   "the model takes numbers: encode text first (e.g. scikit-learn's OrdinalEncoder or OneHotEncoder "
                   "in a Pipeline)")
            raise ValueError(f"X's column {column!r} holds text, such as {str(odd)!r} (row {row!r}); {fix}.") from None
        if source_columns is not None:  # (the CSV's rows as an array: only a DataFrame names their text columns)
            raise ValueError(f"X holds values that are not numbers, such as {str(odd)!r} (text): this model encodes "
                             f"the text columns of its CSV itself, given as a DataFrame of its columns "
                             f"{list(source_columns)} (pandas.DataFrame(X, columns=model.source_columns)), not as "
                             f"an array.") from None
        raise ValueError(f"X holds values that are not numbers, such as {str(odd)!r} (text); the model takes numbers: "
                         f"encode text first (e.g. scikit-learn's OrdinalEncoder or OneHotEncoder in a Pipeline)."
                         ) from None


def _not_a_number(value: Any) -> bool:
    """Whether float(value) fails (text such as 'red'; '1.5' reads as a number, as astype reads it)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def _targets_shaped(y: np.ndarray, outputs: np.ndarray, task: str) -> np.ndarray:
    """y as the metrics take it: (n,) labels or one target, (n, k) for k targets; a column (n, 1)
    of one is raveled, as scikit-learn's column_or_1d does (a metric would broadcast it to (n, n))."""
    if y.ndim == 0 and len(outputs) == 1:  # one example and its label (X[0], y[0])
        y = y[None]
    if y.ndim == 0 or len(y) != len(outputs):
        raise ValueError(f"y has {len(y) if y.ndim else 'no'} rows for X's {len(outputs)}.")
    k = 1 if task == "classification" else outputs.shape[1]
    if k == 1 and y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    want = (len(outputs),) if k == 1 else (len(outputs), k)
    if y.shape != want:
        what = ("class labels, one per row" + (" (one-hot rows: y.argmax(axis=1))" if y.ndim == 2 else "")
                if task == "classification" else f"{k} target{'s' if k > 1 else ''} per row, as the model was trained")
        raise ValueError(f"y has shape {y.shape}; the model scores {what}: shape {want}.")
    return y
