"""What a Dataset takes from its user, checked: X (any shape, a DataFrame's columns, no NaN, no
text), y (class labels of any kind, regression targets), sample_weight, splits given apart, and a
pandas index that does not line up."""

from __future__ import annotations

import collections
from typing import Any, Mapping

import jax.numpy as jnp
import numpy as np

from vmaptune.warn import warn

TASKS = ("classification", "regression")


def mean_std(values: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation over the rows, weighted by `weights` (None: alike)."""
    largest = np.max(np.abs(values), axis=0) if values.size else 0.0
    if np.any((largest > 1e150) | ((largest > 0) & (largest < 1e-150))):  # (squares overflow: the std is inf and
        # the column reads as zeros; or underflow: a column of 1e-300s reads as constant)
        scale = np.where(largest > 0, largest, 1.0)
        mean, std = mean_std(values / scale, weights)
        return mean * scale, std * scale
    if weights is None or not weights.any():
        return values.mean(0), values.std(0)
    mean = np.average(values, axis=0, weights=weights)
    return mean, np.sqrt(np.average(np.square(values - mean), axis=0, weights=weights))


def check_sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    """sample_weight as (n,) float32: one finite weight >= 0 per row, not all 0. Weights too large
    or too small for float32's sums are divided by their largest (the loss is their weighted mean,
    which that does not change)."""
    try:
        w = np.asarray(sample_weight)
        complex_ = w.dtype.kind == "c"
        w = w.astype(np.float64) if not complex_ else w
    except (TypeError, ValueError) as err:
        raise TypeError(f"sample_weight must be numbers, one per row of X; converting it failed: {err}.") from None
    if complex_:
        raise TypeError("sample_weight must be real numbers, one per row of X; it is complex. Give e.g. "
                        "np.abs(w) or w.real.")
    if w.ndim == 0:
        w = np.full(n, float(w))  # (scikit-learn takes one number for every row)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}; give one weight per row of X, shape ({n},).")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        raise ValueError(f"sample_weight must be finite and >= 0; row {bad[0]} has {float(w[bad[0]])!r} ({len(bad)} such "
                         f"rows).")
    if not w.any():
        raise ValueError("sample_weight: every row's weight is zero, so nothing would be learned; give some rows a "
                         "weight > 0.")
    if w.max() * n > _FLOAT32_COMFORT or w[w > 0].min() < 1 / _FLOAT32_COMFORT:  # (1e39 is inf, 1e-46 is 0)
        w = w / w.max()
    return w.astype(np.float32)


_FLOAT32_COMFORT = 2.0 ** 100  # sums of weights past it (or one below its inverse) leave float32's range


def _check_fraction(name: str, value: Any, zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not (0.0 <= float(value) < 1.0 if zero else 0.0 < float(value) < 1.0):
        raise ValueError(f"{name} must be a number in {'[0, 1)' if zero else '(0, 1)'}, got {value!r}.")


def _text_column(column: Any) -> bool:
    """A DataFrame column whose values, missing ones aside, do not convert to floats (pandas'
    nullable booleans hold pd.NA, which does not convert: missing, not text)."""
    try:
        np.asarray(column.dropna()).astype(np.float64)
        return False
    except (TypeError, ValueError):
        return True


def _refuse_several_inputs(X: Any, what: str) -> None:
    """A dict, or a list / tuple of arrays of different shapes (a model with several inputs, as
    Keras takes them): vmaptune feeds the model one array, so say how to make one."""
    if isinstance(X, Mapping):
        parts = {str(k): np.shape(v) for k, v in X.items()}
    elif isinstance(X, (list, tuple)) and len(X) > 1 and all(hasattr(v, "shape") for v in X) \
            and len({np.shape(v) for v in X}) > 1 and not all(np.ndim(v) == 1 for v in X):
        # (1-D arrays of different lengths are rows, token ids not padded, say: inputs share their rows)
        parts = {f"{what}[{i}]": np.shape(v) for i, v in enumerate(X)}
    else:
        return
    shown = ", ".join(f"{k}: {shape}" for k, shape in list(parts.items())[:5])
    raise TypeError(f"{what} must be one array of rows, got {type(X).__name__} of {len(parts)} inputs ({shown}). "
                    f"vmaptune feeds your model one input array: flatten each input to (rows, -1) and concatenate "
                    f"them (np.concatenate([a.reshape(len(a), -1) for a in inputs], axis=1)), then split and "
                    f"reshape them inside the module's __call__.")


def refuse_sparse(X: Any, what: str = "X") -> None:
    """A scipy sparse matrix is an error with the fix: numpy reads it as one object, not as rows."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise TypeError(f"{what} is a scipy sparse matrix of shape {X.shape}; give its dense array ({what}.toarray()), "
                        f"or fit vmaptune's scikit-learn estimators, which take sparse X themselves.")


def _row_lengths(X: Any) -> set[int]:
    """The lengths of X's rows where X is a list (or object array) of sequences, else an empty set."""
    rows = X if isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1) \
        else ()
    if not len(rows) or not all(hasattr(r, "__len__") and not isinstance(r, (str, bytes)) for r in rows):
        return set()
    return {len(r) for r in rows}


def _check_inputs(X: Any, what: str = "X") -> np.ndarray:
    """X as float64, or int64 when it holds integers (token ids); (n, ...) with finite values.
    A DataFrame is float64 whatever its columns' dtypes: its columns are features (an age, a count),
    never token ids, so they are standardised."""
    frame = X if hasattr(X, "columns") and hasattr(X, "iloc") else None
    _refuse_several_inputs(X, what)
    refuse_sparse(X, what)
    if frame is not None:  # (dates convert to floats silently, or fail as "text" with a time zone)
        import pandas as pd

        dates = [str(c) for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
        if dates:
            raise TypeError(f"{what}'s column(s) {dates[:10]} hold dates; give numbers (e.g. the day of the year, "
                            f"X[c].dt.dayofyear, or seconds since a start) or drop them.")
        spans = [str(c) for c in frame.columns if pd.api.types.is_timedelta64_dtype(frame[c])]
        if spans:  # (alone they convert to nanoseconds silently, beside numbers they fail as "text")
            raise TypeError(f"{what}'s column(s) {spans[:10]} hold time spans (durations); give numbers (e.g. seconds, "
                            f"X[c].dt.total_seconds(), or days, X[c].dt.days) or drop them.")
        # (a category dtype says its values are codes: numbers among them were standardised as quantities, where
        # the estimators refuse the same frame)
        coded = [str(c) for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
        if coded:
            raise TypeError(f"{what}'s column(s) {coded[:10]} are categorical (pandas' category dtype): their values "
                            f"are codes, not quantities. One-hot encode them first (pandas.get_dummies(X, "
                            f"columns={coded[:10]}), or Dataset.from_csv(..., one_hot={coded[:10]})), or give numbers "
                            f"that are quantities as a numeric column (X[c].astype(float)).")
    try:
        X = np.asarray(X)
        complex_ = X.dtype.kind == "c"  # (numpy's cast would drop the imaginary parts with a mere warning)
        if not complex_ and (frame is not None or X.dtype == bool or not np.issubdtype(X.dtype, np.integer)):
            X = X.astype(np.float64)
    except (TypeError, ValueError) as err:
        if frame is not None:  # name the columns that hold text
            text = [str(c) for c in frame.columns if _text_column(frame[c])]
            if text:
                raise TypeError(f"{what}'s column(s) {text[:10]} hold text ({err}); encode them as numbers first "
                                f"(pandas.get_dummies(X, columns={text[:10]}), or Dataset.from_csv(..., "
                                f"one_hot=True)), or drop them.") from None
            missing = [str(c) for c in frame.columns if frame[c].isna().any()]
            if missing:  # (pandas' nullable Int64 or boolean with pd.NA does not become a float array)
                flags = [str(c) for c in frame.columns if frame[c].isna().any() and frame[c].dtype == "boolean"]
                flag = f"; yes / no columns with one of their values, X.fillna({{{flags[0]!r}: False}})" if flags else ""
                raise ValueError(f"{what}'s column(s) {missing[:10]} have missing values; fill them (e.g. "
                                 f"X.fillna(X.mean()){flag}) or drop those rows first.") from None
        lengths = _row_lengths(X)
        if len(lengths) > 1:  # (token-id sequences, say, not padded to one length)
            raise ValueError(f"{what}'s rows are sequences of different lengths ({sorted(lengths)[:5]}...); pad them "
                             f"to one length (token ids: with an id of its own for padding, e.g. 0, and a mask or "
                             f"pooling that skips it): rows = [list(r) + [0] * (n - len(r)) for r in rows], n the "
                             f"longest row's length.") from None
        raise TypeError(f"{what} must be numeric; converting it failed: {err}. Encode text columns as numbers first "
                        f"(e.g. pandas.get_dummies, or Dataset.from_csv(..., one_hot=True)).") from None
    if complex_:
        raise TypeError(f"{what} holds complex numbers; give real features (e.g. np.abs({what}), or the real and "
                        f"imaginary parts as columns of their own: np.concatenate([{what}.real, {what}.imag], axis=1)).")
    if X.ndim < 2:
        raise ValueError(f"{what} must be at least 2-D, (rows, features) or (rows, ...), got shape {X.shape}; "
                         f"for one feature use {what}.reshape(-1, 1).")
    if X.shape[0] == 0 or X.size == 0:
        raise ValueError(f"{what} is empty (shape {X.shape}); give at least one row and one feature.")
    if np.issubdtype(X.dtype, np.floating):
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            first = tuple(int(i) for i in bad[0])
            at = f"row {first[0]}, column {first[1]}" if X.ndim == 2 else f"row {first[0]}, position {first[1:]}"
            if frame is not None:  # (a DataFrame's own names: its column, and its index's label of the row)
                at += f" (column {frame.columns[first[1]]!r}, index {frame.index[first[0]]!r})"
            raise ValueError(f"{what} has {len(bad)} NaN or infinite values, the first at {at} ({X[first]}); "
                             f"impute or drop them first.")
    return X


def _check_arrays(X: Any, y: Any, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """-> X (float64, or int64 ids), y (class ids int32, or float64 targets), classes (or None)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    X = _check_inputs(X)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:  # one label or target per row as a column (a one-column DataFrame): (rows,),
        y = y[:, 0]  # as scikit-learn's column_or_1d takes it
    if task == "classification" and y.ndim != 1:
        hint = (" It looks one-hot encoded: pass y.argmax(axis=1)." if y.ndim == 2 and y.shape[1] > 1 and
                np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all() else
                " It holds several labels per row (multi-label), which is not one classification: tune one search "
                "per label column, or give task='regression' with standardize=False (X scaled beforehand) and a "
                "loss of your own such as lambda out, y: optax.sigmoid_binary_cross_entropy(out, y).mean(-1)." if y.ndim == 2 and
                np.isin(y, (0, 1)).all() else "")
        raise ValueError(f"y must be 1-D (rows,) class labels for classification, got shape {y.shape}.{hint}")
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be (rows,) or, for several regression targets, (rows, k); got shape {y.shape}.")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; they must match.")
    if task == "regression":
        return X, _regression_targets(y, "y"), None
    ids, classes = _encode_labels(y, "y")
    _warn_sparse_classes(ids, classes)
    return X, ids, classes


def _regression_targets(y: np.ndarray, what: str) -> np.ndarray:
    """y as float64 targets: numbers, every one finite (a NaN target would make every member's
    loss NaN, read as diverged)."""
    if y.ndim > 1 and 0 in y.shape[1:]:
        raise ValueError(f"{what} has shape {y.shape}: no targets in its rows; give (n,) for one target or (n, k) for "
                         f"k of them.")
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be numeric for regression, got dtype {y.dtype} (e.g. {y[:3].tolist()}); for "
                        f"class labels use task='classification'.") from None
    bad = np.argwhere(~np.isfinite(y.reshape(len(y), -1)))
    if len(bad):
        raise ValueError(f"{what} has {len(bad)} NaN or infinite values, the first at row {bad[0][0]}; "
                         f"drop those rows first.")
    return y


def _warn_sparse_classes(ids: np.ndarray, classes: np.ndarray) -> None:
    """Classes too thin to learn or validate: a numeric target given as classification (diabetes'
    whole-number values: 214 classes over 442 rows), or a class of one row (it cannot be both
    trained on and validated)."""
    counts = np.bincount(ids, minlength=len(classes))
    single = classes[counts == 1]
    if len(classes) > 10 and np.mean(counts < 3) > 0.5 and np.issubdtype(classes.dtype, np.number):
        warn(f"y has {len(classes)} classes over {len(ids)} rows, {int(np.sum(counts < 3))} of them with "
             f"fewer than 3 rows: it looks like a numeric target. For a quantity (a price, a score) use "
             f"task='regression'.", UserWarning)
    elif len(single):
        warn(SingleRowClassWarning(single_row_classes(single[:5].tolist()), np.flatnonzero(counts == 1)[:5].tolist()))


def single_row_classes(labels: list) -> str:
    """The warning of classes of one row each (labels: up to 5 of them)."""
    return (f"y's class(es) {labels} have a single row each: a class of one row is trained on or validated, never "
            f"both, and stratified splits and folds cannot hold it out. Add rows of it, or drop it.")


def _encode_labels(y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Class labels (integers, strings or booleans) -> (int32 class ids, the sorted labels)."""
    if y.dtype.kind == "V" and jnp.issubdtype(y.dtype, jnp.floating):  # (bfloat16: checked as the floats it is)
        y = y.astype(np.float64)
    if y.dtype.kind == "O":  # (an empty cell among text labels: None, NaN or pandas' NA)
        missing = np.flatnonzero(missing_labels(y))
        if len(missing):
            raise ValueError(f"{what} has {len(missing)} missing labels (None or NaN), the first at row {missing[0]}; "
                             f"drop those rows first (y.astype(str) would make a class of them).")
        y = plain_labels(y)
    if y.dtype.kind == "f":
        missing = np.flatnonzero(~np.isfinite(y))
        if len(missing):
            raise ValueError(f"{what} has {len(missing)} NaN or infinite labels, the first at row {missing[0]}; "
                             f"drop those rows first.")
        if not np.all(y == np.round(y)):
            fractional = y[y != np.round(y)][:3].tolist()
            raise ValueError(f"{what} holds non-integer numbers (e.g. {fractional}) but task='classification'; "
                             f"class labels must be integers or strings. For a continuous target use "
                             f"task='regression'.")  # (kept as floats: predictions come back as given)
    try:
        classes, ids = np.unique(y, return_inverse=True)
    except TypeError:
        raise TypeError(f"{what} mixes label types ({sorted({type(v).__name__ for v in y.tolist()})}); give labels "
                        f"of one type, e.g. all strings: y.astype(str).") from None
    if len(classes) < 2:
        raise ValueError(f"{what} has a single class {classes.tolist()}; classification needs at least 2.")
    return ids.astype(np.int32).reshape(-1), classes


def plain_labels(y: np.ndarray) -> np.ndarray:
    """Object-dtype labels all of one plain kind as that kind's array: integers as int64 (pandas'
    .astype(object) of them: their classes are integers, as scikit-learn's), floats as float64,
    text as str."""
    if y.dtype.kind != "O" or y.ndim != 1:
        return y
    values = y.tolist()
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and -2**63 <= v < 2**63
           for v in values):
        return np.asarray(values, np.int64)
    if all(isinstance(v, (float, np.floating)) for v in values):
        return np.asarray(values, np.float64)
    if all(isinstance(v, (str, np.str_)) for v in values):
        return np.asarray(values, str)
    return y


def missing_labels(y: np.ndarray) -> np.ndarray:
    """(n,) bool: labels that are missing (None, NaN, pandas' NA) in an object-dtype y."""
    import pandas as pd

    return np.asarray(pd.isna(y), bool).reshape(len(y), -1).any(axis=1)


def scale_or_one(std: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Standard deviations to divide by: 1 where a value is constant. Constant up to rounding too:
    0.1 repeated has a float64 std of about 4e-17, and dividing by it turns rounding into values
    of +-1."""
    std = np.asarray(std, np.float64)
    return np.where(std > 1e-10 * np.abs(np.asarray(mean, np.float64)), std, 1.0)


def _warn_constant_targets(y_std: np.ndarray, y_mean: np.ndarray) -> None:
    """A regression target without variance over the training rows: nothing to learn, and r2
    (which divides by the targets' variance) is undefined, so its scores would rank nonsense."""
    constant = np.flatnonzero(np.ravel(scale_or_one(y_std, y_mean) != y_std))  # (std 0, or 0 up to rounding)
    if constant.size:
        what = ("y is constant" if np.ndim(y_std) == 0 else
                f"y's column(s) {constant.tolist()} are constant")
        warn(f"{what} over the training rows ({np.ravel(y_mean)[constant][:3].tolist()}): there is nothing "
             f"to learn there, and metric='r2' (which divides by the targets' variance) is undefined. Drop "
             f"constant target columns, or check that y is the column you meant.", UserWarning)


def _check_split(name: str, pair: Any, X: np.ndarray, y: np.ndarray, task: str, classes: np.ndarray | None):
    """A split given as (X, y): same example shape, targets and dtype kind as the main arrays."""
    short = "val" if name == "validation" else name
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        got = f"a {type(pair).__name__} of {len(pair)}" if isinstance(pair, (tuple, list)) else type(pair).__name__
        raise TypeError(f"{name} must be a pair (X_{short}, y_{short}), got {got}; e.g. {name}=(X_{short}, y_{short}).")
    # (as the main pair's: a split's labels in another order, after a sort say, would rank members on shuffled labels)
    warn_misaligned(_pandas_index(pair[0]), pair[1], f"y_{short} in {name}=(X_{short}, y_{short})",
                    f"target. Align them first: y_{short}.loc[X_{short}.index] (or y_{short}.reindex(X_{short}.index))",
                    f"X_{short}")
    Xs = _check_inputs(pair[0], f"{name}[0] (X)")
    ys = np.asarray(pair[1])
    if y.ndim == 1 and ys.ndim == 2 and ys.shape[1] == 1:  # (as y's column: _check_arrays)
        ys = ys[:, 0]
    if Xs.shape[1:] != X.shape[1:]:
        raise ValueError(f"{name}: X has examples of shape {Xs.shape[1:]}, but X's are {X.shape[1:]}; give "
                         f"{name}=(X_{short}, y_{short}) with the same features (columns) as X.")
    if np.issubdtype(Xs.dtype, np.integer) != np.issubdtype(X.dtype, np.integer):
        raise ValueError(f"{name}: X is {Xs.dtype}, but the training X is {X.dtype}; give both as floats or both "
                         f"as integer ids.")
    if len(Xs) != len(ys) or ys.shape[1:] != y.shape[1:]:
        raise ValueError(f"{name}: X has {len(Xs)} rows and y has shape {ys.shape}; in {name}=(X_{short}, y_{short}) "
                         f"y_{short} must be {(len(Xs),) + y.shape[1:]}.")
    if task == "classification":
        missing = np.flatnonzero(missing_labels(ys)) if ys.dtype.kind in "Of" else []
        if len(missing):  # (np.unique below cannot even sort None among text)
            raise ValueError(f"{name}: y_{short} has {len(missing)} missing labels (None or NaN), the first at row "
                             f"{missing[0]}; drop those rows from {name}=(X_{short}, y_{short}) first.")
        ys = plain_labels(ys)
        if ys.dtype.kind == "f" and np.all(ys == np.round(ys)):
            ys = ys.astype(np.int64)
        unknown = sorted(set(np.unique(ys).tolist()) - set(classes.tolist()), key=str)
        if unknown:
            raise ValueError(f"{name}: y holds labels {unknown[:10]} that the training labels do not have "
                             f"(classes {classes.tolist()[:10]}); every class of y_{short} must appear in y.")
        return Xs, np.searchsorted(classes, ys).astype(np.int32)
    return Xs, _regression_targets(ys, f"{name}[1] (y_{short})")


class SingleRowClassWarning(UserWarning):
    """Classes of y with one row each. It carries class_ids (indices into the classes), so a caller
    that encoded the labels itself (an estimator) can name them as its user gave them."""

    def __init__(self, message: str, class_ids: list[int]):
        super().__init__(message)
        self.class_ids = class_ids

    def __reduce__(self):  # (copied and pickled whole, as SplitMissesClassWarning)
        return type(self), (str(self), self.class_ids)


def _pandas_index(values: Any) -> Any:
    """A pandas frame's or series' row labels, else None."""
    index = getattr(values, "index", None)
    return index if type(index).__module__.startswith("pandas") else None


def warn_misaligned(X_index: Any, values: Any, what: str, fix: str, x: str = "X") -> None:
    """A pandas `values` whose index holds X's row labels in another order: rows pair by
    position (as scikit-learn pairs them), so a row would get another row's label or group.
    x: the name X goes by in the message (X_val for a validation split's)."""
    index = _pandas_index(values)
    if X_index is not None and index is not None and len(X_index) == len(index) and not X_index.equals(index) \
            and _same_labels(X_index, index):
        warn(f"the index of {what} holds {x}'s row labels in another order: rows are paired by position (as "
             f"scikit-learn pairs them), so a row would get another's {fix}.")


def _same_labels(a: Any, b: Any) -> bool:
    """Two pandas indexes hold the same labels, each as often, in any order."""
    try:
        return a.sort_values().equals(b.sort_values())
    except TypeError:  # (labels that do not order, ints beside strings after pd.concat: counted instead)
        return collections.Counter(a) == collections.Counter(b)


def _warn_misaligned(X: Any, y: Any) -> None:
    warn_misaligned(_pandas_index(X), y, "y", "target. Align them first: y.loc[X.index] (or y.reindex(X.index))")


def column_names(X: Any) -> list[str] | None:
    """A DataFrame's column names (all strings), else None."""
    columns = getattr(X, "columns", None)
    if columns is None or not all(isinstance(c, str) for c in columns):
        return None
    return [str(c) for c in columns]
