"""Datasets: built-in scikit-learn sets, arrays, CSV and NPZ files; checks, splits, scaling.

A `Dataset` holds fixed train / validation / test splits already standardised with the training
statistics and placed on the device once. Selection uses the validation split only; the test
split is for the final report.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

TASKS = ("classification", "regression")
BUILTIN = {
    "digits": ("load_digits", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a model needs to know of the data to build itself (static, hashable).

    input_shape: one example's shape, e.g. (n_features,) for a table. n_outputs: the width of
    the model's output (one logit per class, or one value per regression target)."""

    input_shape: tuple[int, ...]
    n_outputs: int
    task: str
    input_dtype: str = "float32"

    @property
    def n_features(self) -> int:
        """Features of a flat (1-D) example."""
        return int(np.prod(self.input_shape))


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Standardised splits on the device.

    X_*: float32 (n_*, n_features). y_*: int32 (n_*,) class ids for classification,
    float32 (n_*,) standardised targets for regression (y_mean, y_std undo that).
    """

    X_train: jax.Array
    y_train: jax.Array
    X_val: jax.Array
    y_val: jax.Array
    X_test: jax.Array
    y_test: jax.Array
    task: str
    n_classes: int | None = None
    name: str = "arrays"
    feature_names: tuple[str, ...] = ()
    y_mean: float = 0.0
    y_std: float = 1.0

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Width of the model's output layer: one logit per class, or one value."""
        return int(self.n_classes) if self.task == "classification" else 1

    @property
    def n_train(self) -> int:
        return int(self.X_train.shape[0])

    @property
    def spec(self) -> DataSpec:
        """The shapes a model is built for."""
        return DataSpec(tuple(int(d) for d in self.X_train.shape[1:]), self.n_outputs, self.task,
                        str(self.X_train.dtype))

    def __repr__(self):
        sizes = f"train={self.n_train}, val={self.X_val.shape[0]}, test={self.X_test.shape[0]}"
        extra = f", n_classes={self.n_classes}" if self.task == "classification" else ""
        return f"Dataset({self.name!r}, {self.task}, features={self.n_features}{extra}, {sizes})"

    def pool(self) -> tuple[jax.Array, jax.Array]:
        """Train and validation rows together (X, y): what cross-validation and refits train on.
        The test split is never part of it."""
        return (jnp.concatenate([self.X_train, self.X_val]), jnp.concatenate([self.y_train, self.y_val]))

    def folds(self, k: int, seed: int = 0) -> np.ndarray:
        """(n_pool,) fold id 0..k-1 of every pool row: fixed by `seed`, stratified by class for
        classification (each fold gets its share of every class)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"cv={k!r}: the number of folds must be an integer >= 2.")
        _, y = self.pool()
        y = np.asarray(y)
        if self.task == "classification":
            smallest = int(np.bincount(y).min())
            if smallest < k:
                raise ValueError(f"cv={k} needs at least {k} rows of every class in train + validation, but the "
                                 f"smallest class has {smallest}; use cv <= {smallest}.")
            groups = [np.flatnonzero(y == c) for c in range(int(y.max()) + 1)]
        else:
            if len(y) < 2 * k:
                raise ValueError(f"cv={k} is too many folds for {len(y)} rows; use cv <= {len(y) // 2}.")
            groups = [np.arange(len(y))]
        rng = np.random.default_rng(seed)
        fold = np.empty(len(y), np.int32)
        offset = 0
        for rows in groups:  # deal each class's shuffled rows round-robin, continuing across classes
            rows = rng.permutation(rows)
            fold[rows] = (offset + np.arange(len(rows))) % k
            offset += len(rows)
        return fold

    @classmethod
    def from_arrays(
        cls,
        X: Any,
        y: Any,
        task: str,
        *,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        seed: int = 0,
        standardize: bool = True,
        name: str = "arrays",
        feature_names: Sequence[str] | None = None,
    ) -> "Dataset":
        """Checks X (n, d) and y (n,), splits them (stratified for classification) and scales them."""
        X, y, n_classes = _check_arrays(X, y, task)
        _check_fraction("val_fraction", val_fraction)
        _check_fraction("test_fraction", test_fraction)
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 so rows remain for training, got "
                f"{val_fraction} + {test_fraction}."
            )
        train, val, test = _split(len(y), y if task == "classification" else None,
                                  val_fraction, test_fraction, seed)
        if min(len(train), len(val), len(test)) == 0:
            raise ValueError(
                f"{len(y)} rows are too few for the split (train={len(train)}, val={len(val)}, "
                f"test={len(test)}); give more data or change val_fraction / test_fraction."
            )
        mean = X[train].mean(0) if standardize else np.zeros(X.shape[1])
        std = X[train].std(0) if standardize else np.ones(X.shape[1])
        std = np.where(std > 0, std, 1.0)  # constant features stay constant instead of dividing by 0
        Xs = ((X - mean) / std).astype(np.float32)
        y_mean, y_std = 0.0, 1.0
        if task == "regression":
            y_mean, y_std = (float(y[train].mean()), float(y[train].std() or 1.0)) if standardize else (0.0, 1.0)
            y = ((y - y_mean) / y_std).astype(np.float32)
        names = tuple(feature_names) if feature_names is not None else tuple(f"x{i}" for i in range(X.shape[1]))
        if len(names) != X.shape[1]:
            raise ValueError(f"feature_names has {len(names)} names for {X.shape[1]} features.")
        put = jax.device_put
        return cls(
            X_train=put(Xs[train]), y_train=put(y[train]),
            X_val=put(Xs[val]), y_val=put(y[val]),
            X_test=put(Xs[test]), y_test=put(y[test]),
            task=task, n_classes=n_classes, name=name, feature_names=names,
            y_mean=y_mean, y_std=y_std,
        )

    @classmethod
    def from_csv(cls, path: str | os.PathLike, target: str, task: str, **split: Any) -> "Dataset":
        """A CSV with a header row; `target` names the label column, every other column is a feature."""
        import pandas as pd

        frame = pd.read_csv(path)
        if target not in frame.columns:
            raise ValueError(f"target={target!r} is not a column of {path}; columns are {list(frame.columns)}.")
        features = frame.drop(columns=[target])
        non_numeric = [c for c in features.columns if not np.issubdtype(features[c].dtype, np.number)]
        if non_numeric:
            raise ValueError(
                f"{path}: feature columns {non_numeric} are not numeric; encode them (e.g. pandas.get_dummies) first."
            )
        split.setdefault("name", os.path.basename(str(path)))
        return cls.from_arrays(features.to_numpy(np.float64), frame[target].to_numpy(), task,
                               feature_names=list(features.columns), **split)

    @classmethod
    def from_npz(cls, path: str | os.PathLike, task: str, *, X: str = "X", y: str = "y", **split: Any) -> "Dataset":
        """An .npz file holding arrays named `X` and `y` (names configurable)."""
        with np.load(path, allow_pickle=False) as archive:
            for key in (X, y):
                if key not in archive.files:
                    raise ValueError(f"{path} has no array {key!r}; it has {archive.files}.")
            Xa, ya = archive[X], archive[y]
        split.setdefault("name", os.path.basename(str(path)))
        return cls.from_arrays(Xa, ya, task, **split)


def load_dataset(name: str, **split: Any) -> Dataset:
    """A data set that ships with scikit-learn (no download): digits, breast_cancer, wine, iris, diabetes."""
    if name not in BUILTIN:
        raise ValueError(f"unknown dataset {name!r}; built-in ones are {sorted(BUILTIN)}. "
                         "For your own data use vt.Dataset.from_arrays, from_csv or from_npz.")
    import sklearn.datasets

    loader, task = BUILTIN[name]
    bunch = getattr(sklearn.datasets, loader)()
    split.setdefault("name", name)
    names = getattr(bunch, "feature_names", None)
    return Dataset.from_arrays(bunch.data, bunch.target, task,
                               feature_names=list(names) if names is not None else None, **split)


def _check_fraction(name: str, value: Any) -> None:
    if not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}.")


def _check_arrays(X: Any, y: Any, task: str) -> tuple[np.ndarray, np.ndarray, int | None]:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"X must be numeric; converting it failed: {err}") from None
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows, features), got shape {X.shape}; reshape it, e.g. X.reshape(len(X), -1).")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (rows,), got shape {y.shape}.")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty (shape {X.shape}).")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; they must match.")
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        r, c = bad[0]
        raise ValueError(f"X has {len(bad)} NaN or infinite values, the first at row {r}, column {c} "
                         f"({X[r, c]}); impute or drop them first.")
    if task == "regression":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"y must be numeric for regression, got dtype {y.dtype}.") from None
        bad = np.flatnonzero(~np.isfinite(y))
        if len(bad):
            raise ValueError(f"y has {len(bad)} NaN or infinite values, the first at row {bad[0]}; drop them first.")
        return X, y, None
    # classification: labels must be the integers 0..K-1, each present.
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating)
                                                   and np.all(np.isfinite(y)) and np.all(y == np.round(y)))):
        raise ValueError(f"y must hold integer class labels 0..K-1, got dtype {y.dtype} (e.g. {y[:3].tolist()}); "
                         "map them with `classes, y = np.unique(y, return_inverse=True)`.")
    y = y.astype(np.int64)
    labels = np.unique(y)
    expected = np.arange(labels.max() + 1) if labels.min() >= 0 else None
    if expected is None or len(labels) != len(expected):
        missing = sorted(set(range(int(labels.max()) + 1)) - set(labels.tolist())) if labels.min() >= 0 else []
        raise ValueError(f"y must hold class labels 0..K-1 with every class present; got labels "
                         f"{labels.tolist()[:10]}{' (missing ' + str(missing[:10]) + ')' if missing else ''}. "
                         "Map them with `classes, y = np.unique(y, return_inverse=True)`.")
    if len(labels) < 2:
        raise ValueError(f"y has a single class {labels.tolist()}; classification needs at least 2.")
    return X, y.astype(np.int32), int(len(labels))


def _split(n: int, stratify: np.ndarray | None, val_fraction: float, test_fraction: float, seed: int):
    """Fixed-seed train / val / test row indices, stratified by class when labels are given."""
    rng = np.random.default_rng(seed)
    if stratify is None:
        groups = [np.arange(n)]
    else:
        groups = [np.flatnonzero(stratify == c) for c in np.unique(stratify)]
    train, val, test = [], [], []
    for rows in groups:
        rows = rng.permutation(rows)
        n_test = int(round(len(rows) * test_fraction))
        n_val = int(round(len(rows) * val_fraction))
        test.append(rows[:n_test])
        val.append(rows[n_test:n_test + n_val])
        train.append(rows[n_test + n_val:])
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, test))
