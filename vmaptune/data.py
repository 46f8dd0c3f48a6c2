"""Datasets: built-in scikit-learn sets, arrays, CSV and NPZ files; checks, splits, scaling.

A `Dataset` holds fixed train / validation / test splits already standardised with the training
statistics and placed on the device once. Selection uses the validation split only; the test
split is for the final report. Inputs may have any shape per example ((n, d) tables, (n, h, w, c)
images, (n, t) integer token ids, which are not standardised); regression targets may be (n,) or
(n, k). The scaling is kept (`x_mean`, `x_std`, `y_mean`, `y_std`) so new raw rows can be scaled
the same way (`scale_inputs`, `unscale_targets`), and a split can be had back in its own units
(`raw`), as new data comes to a trained model.
"""

from __future__ import annotations

import collections
import dataclasses
import difflib
import inspect
import numbers
import os
import re
import reprlib
import weakref
import zipfile
import zlib
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.arguments import argument_error, check_flag, check_seed
from vmaptune.warn import warn

TASKS = ("classification", "regression")
SPLITS = ("train", "val", "test")
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

    X_*: (n_*, ...) float32 standardised inputs, or int32 ids. y_*: int32 (n_*,) class ids for
    classification; float32 (n_*,) or (n_*, k) standardised targets for regression (y_mean, y_std
    undo that). x_mean / x_std: the input scaling (arrays of one example's shape; None when the
    inputs were not scaled).
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
    y_mean: Any = 0.0
    y_std: Any = 1.0
    x_mean: np.ndarray | None = None
    x_std: np.ndarray | None = None
    classes: np.ndarray | None = None  # the original label of each class id (classification)
    # (n_train,) and (n_val,) float32 row weights of the training loss (sample_weight), or None:
    # every row weighs the same. Scores are not weighted, as scikit-learn's searches score.
    w_train: Any = None
    w_val: Any = None
    # (n_pool,) int64: the row of each pool row (train, then validation) in the rows from_arrays
    # was given: X's, then a validation split's given apart (len(X) + its row). None: unknown.
    pool_index: np.ndarray | None = None
    source_rows: int | None = None  # rows from_arrays was given: len(X) (+ a validation split's given apart)
    # the splits carved from X at random (shuffle=True): their rows lie between the others in X's order
    carved_at_random: tuple[str, ...] = ()
    in_order: bool = False  # carved with shuffle=False (a time series, say)
    x_index: Any = None  # the row labels of an X given as a pandas frame (groups= given as a Series are checked on them)
    # from_arrays' standardize: each cv fold then scales its inputs (floats) and a regression's
    # targets by its own training rows; standardize=False keeps them as given under cv too
    standardized: bool = True
    # from_csv(one_hot=...): each column it encoded -> its values as text, in the order of their 0/1
    # columns (named column_value, as pandas.get_dummies names them), and the CSV's feature columns
    # before encoding, in order: a model trained on them encodes new rows of those columns itself
    categories: Mapping[str, tuple[str, ...]] | None = None
    source_columns: tuple[str, ...] = ()

    def __post_init__(self):
        if self.x_mean is not None:  # (a trained model's predict refuses them: it scales its inputs itself)
            for split in SPLITS:
                _remember_scaled(getattr(self, f"X_{split}"), split)

    def raw(self, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of `split` ("train", "val" (or "validation") or "test") in the data's own units, as
        new data comes to a trained model: inputs unscaled (float64), class labels as given,
        regression targets in their units, up to float32's rounding (they are unscaled from the
        float32 copies X_* and y_* that training uses). E.g. model.score(*data.raw("test"))."""
        split = "val" if split == "validation" else split  # (the prose's name for it)
        if split not in SPLITS:
            raise ValueError(f"split={split!r}: use one of {list(SPLITS)}.")
        X, y = np.asarray(getattr(self, f"X_{split}")), np.asarray(getattr(self, f"y_{split}"))
        if self.x_mean is not None:
            X = X.astype(np.float64) * self.x_std + self.x_mean
        if self.task == "classification":
            return X, (y if self.classes is None else np.asarray(self.classes)[y])
        return X, self.unscale_targets(y.astype(np.float64))

    @property
    def n_features(self) -> int:
        """Values per example (the product of its shape)."""
        return int(np.prod(self.X_train.shape[1:]))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.X_train.shape[1:])

    @property
    def n_outputs(self) -> int:
        """Width of the model's output layer: one logit per class, or one value per target."""
        if self.task == "classification":
            return int(self.n_classes)
        return int(self.y_train.shape[1]) if self.y_train.ndim == 2 else 1

    def scale_inputs(self, X: Any) -> np.ndarray:
        """Raw inputs (n, ...) scaled as the training split was (float32; ids stay int32)."""
        X = np.asarray(X)
        if X.shape[1:] != self.input_shape:
            raise ValueError(f"X has examples of shape {X.shape[1:]}, but the data set's are {self.input_shape}.")
        if self.x_mean is None:
            return X.astype(self.X_train.dtype)
        return ((X.astype(np.float64) - self.x_mean) / self.x_std).astype(np.float32)

    def unscale_targets(self, y: Any) -> np.ndarray:
        """Standardised regression targets or predictions -> the original units."""
        return np.asarray(y) * np.asarray(self.y_std) + np.asarray(self.y_mean)

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
        extra = f", n_classes={self.n_classes}" if self.task == "classification" else f", outputs={self.n_outputs}"
        shape = f"features={self.n_features}" if len(self.input_shape) == 1 else f"input_shape={self.input_shape}"
        return f"Dataset({self.name!r}, {self.task}, {shape}{extra}, {sizes})"

    def pool(self) -> tuple[jax.Array, jax.Array]:
        """Train and validation rows together (X, y): what cross-validation and refits train on.
        The test split is never part of it."""
        return (jnp.concatenate([self.X_train, self.X_val]), jnp.concatenate([self.y_train, self.y_val]))

    def pool_order(self) -> np.ndarray | None:
        """Pool positions in the order their rows came to from_arrays (X's order, then a
        validation split's given apart), or None where unknown: what splitters and groups read."""
        if self.pool_index is None or len(self.pool_index) != len(self.y_train) + len(self.y_val):
            return None  # (unknown, or a Dataset whose splits were replaced since: its rows' places are not known)
        return np.argsort(self.pool_index, kind="stable")

    def pool_weights(self) -> jax.Array | None:
        """The pool's row weights (train then validation), or None where rows weigh the same."""
        if self.w_train is None:
            return None
        val = jnp.ones(self.X_val.shape[0], jnp.float32) if self.w_val is None else self.w_val
        return jnp.concatenate([self.w_train, val])

    def folds(self, k: int, seed: int = 0) -> np.ndarray:
        """(n_pool,) fold id 0..k-1 of every pool row: fixed by `seed`, stratified by class for
        classification (each fold gets its share of every class)."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
            raise ValueError(f"cv={k!r}: the number of folds must be an integer >= 2.")
        k, seed = int(k), check_seed(seed, "it fixes the folds")
        _, y = self.pool()
        y = np.asarray(y)
        if self.task == "classification":
            smallest = int(np.bincount(y).min())
            if smallest < k:
                fix = (f"use cv <= {smallest}" if smallest >= 2 else
                       f"class {int(np.argmin(np.bincount(y)))} has {smallest} row(s), too few to be held out of any "
                       f"fold and trained on in another: add rows of it or drop it")
                raise ValueError(f"cv={k} needs at least {k} rows of every class in train + validation, but the "
                                 f"smallest class has {smallest}; {fix}.")
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
        validation: tuple[Any, Any] | None = None,
        test: tuple[Any, Any] | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        seed: int = 0,
        standardize: bool = True,
        name: str = "arrays",
        feature_names: Sequence[str] | None = None,
        sample_weight: Any = None,
        shuffle: bool = True,
    ) -> "Dataset":
        """Checks X (n, ...) and y ((n,), or (n, k) for regression), splits them and scales them.

        validation, test: (X, y) of your own split; a split not given is carved from X (fixed by
        `seed`, stratified for classification) with val_fraction / test_fraction of its rows
        (test_fraction=0: no test split; a refit then trains but has no test_score).
        shuffle=False carves in X's order, as for a time series: training the first rows, then
        validation, then test the last (not stratified).
        Float inputs are standardised per value with the training split's statistics; integer
        arrays (token ids) are kept as they are (a DataFrame's columns are numbers, whatever their
        dtype: standardised). Regression targets are standardised too.
        sample_weight: (n,) weights of X's rows in the training loss (a row of weight 2 counts as
        two), as scikit-learn's fit(X, y, sample_weight) takes them; rows of a `validation` given
        apart weigh their mean (they train under cv and in a refit). Scores are not weighted."""
        seed = check_seed(seed, "it fixes the validation / test split")
        standardize = check_flag("standardize", standardize)
        shuffle = check_flag("shuffle", shuffle)
        if feature_names is None and column_names(X) is not None:  # a DataFrame's columns name the features
            feature_names = column_names(X)
        dtype = getattr(X, "dtype", None)
        if standardize and dtype is not None and np.issubdtype(dtype, np.unsignedinteger) and (
                np.ndim(X) >= 3 or (np.ndim(X) == 2 and dtype == np.uint8)):  # (uint16 rows: a tokenizer's ids)
            # (flattened 8-bit pixels too: on digits unscaled 0..255 scored 0.86 against 0.98 standardised)
            warn(f"X is {dtype} with examples of shape {np.shape(X)[1:]}: integer inputs are kept as they "
                 f"are (token ids), not standardised. For images or other quantities, pass X.astype('float32') "
                 f"to have them standardised with the training split's statistics.")
        _warn_misaligned(X, y)
        x_index = _pandas_index(X)
        warn_misaligned(x_index, sample_weight, "sample_weight",
                        "weight. Align them first: sample_weight.loc[X.index] (or sample_weight.reindex(X.index))")
        X, y, classes = _check_arrays(X, y, task)
        if np.issubdtype(X.dtype, np.integer) and X.size and int(X.min()) < 0:
            warn(f"X holds negative integers (down to {int(X.min())}): integer inputs are kept as token ids, and an "
                 f"embedding reads a negative id as one counted from the end (flax's nn.Embed: -1 is the last id, "
                 f"shared with that token). Map them to ids of their own >= 0 (padding -1 -> an id of its own), "
                 f"or pass X.astype('float32') for numbers.")
        weights = None if sample_weight is None else check_sample_weight(sample_weight, len(y))
        n_classes = None if classes is None else len(classes)
        given = {}
        for split_name, pair in (("validation", validation), ("test", test)):
            columns = None if pair is None or feature_names is None else column_names(pair[0])
            if columns is not None and list(columns) != list(feature_names):
                raise ValueError(f"{split_name}'s X has columns {columns}, but the training X's are "
                                 f"{list(feature_names)}; give every split the same columns in the same order.")
            if pair is not None:
                given[split_name] = _check_split(split_name, pair, X, y, task, classes)
        carve_val = 0.0 if validation is not None else val_fraction
        carve_test = 0.0 if test is not None else test_fraction
        if validation is None:
            _check_fraction("val_fraction", val_fraction)
        if test is None:  # (0: no test split, e.g. beside your own validation split of a time series)
            _check_fraction("test_fraction", test_fraction, zero=True)
        if carve_val + carve_test >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 so rows remain for training, got "
                f"{val_fraction} + {test_fraction}."
            )
        if shuffle:
            train, val, test_rows = _split(len(y), y if task == "classification" else None, carve_val, carve_test, seed)
        else:
            train, val, test_rows = _split_in_order(len(y), carve_val, carve_test)
        sizes = {"train": len(train), "val": len(val) if validation is None else len(given["validation"][1]),
                 "test": len(test_rows) if test is None else len(given["test"][1])}
        if min(sizes["train"], sizes["val"]) == 0 or (sizes["test"] == 0 and (test is not None or test_fraction > 0)):
            raise ValueError(
                f"{len(y)} rows are too few for the split ({', '.join(f'{k}={v}' for k, v in sizes.items())}); "
                f"give more data or change val_fraction / test_fraction."
            )
        if task == "classification" and shuffle:
            _warn_uneven_stratification(y, classes, train, {"val": (val, carve_val), "test": (test_rows, carve_test)})
        elif task == "classification":
            _warn_untrained_classes(y, classes, train, {"val": val, "test": test_rows})
        parts = {"train": (X[train], y[train]),
                 "val": given.get("validation", (X[val], y[val])),
                 "test": given.get("test", (X[test_rows], y[test_rows]))}
        # the training rows' statistics, weighted as the loss weighs them (a row of weight 2 counts as
        # two rows here too: weights equal repeated rows)
        train_weights = None if weights is None else weights[train].astype(np.float64)
        if train_weights is not None and not train_weights.any():  # (a loss of 0: every member "ok", none trained)
            raise ValueError(f"sample_weight is 0 on every one of the {len(train)} training rows (its nonzero weights "
                             f"fell in the validation / test splits): no row would train. Weigh training rows, or "
                             f"give the splits yourself (validation=, test=).")
        x_mean = x_std = None
        if standardize and np.issubdtype(X.dtype, np.floating):
            x_mean, x_std = mean_std(parts["train"][0], train_weights)
            x_std = scale_or_one(x_std, x_mean)  # constant features stay constant instead of dividing by ~0
        y_mean, y_std = 0.0, 1.0
        if task == "regression" and standardize:
            y_mean, y_std = mean_std(parts["train"][1], train_weights)
            _warn_constant_targets(y_std, y_mean)
            y_std = scale_or_one(y_std, y_mean)
            if y.ndim == 1:
                y_mean, y_std = float(y_mean), float(y_std)

        def scaled(Xp, yp):
            Xp = ((Xp - x_mean) / x_std).astype(np.float32) if x_mean is not None else _as_model_input(Xp)
            if task == "regression":
                yp = ((yp - np.asarray(y_mean)) / np.asarray(y_std)).astype(np.float32)
            return jax.device_put(Xp), jax.device_put(yp)

        if feature_names is not None and (X.ndim != 2 or len(feature_names) != X.shape[1]):
            raise ValueError(f"feature_names has {len(feature_names)} names for inputs of shape {X.shape[1:]}; "
                             f"give one name per column of a 2-D X.")
        names = tuple(feature_names) if feature_names is not None else \
            (default_feature_names(X.shape[1]) if X.ndim == 2 else ())
        (X_train, y_train), (X_val, y_val), (X_test, y_test) = (scaled(*parts[k]) for k in ("train", "val", "test"))
        w_train = w_val = None
        if weights is not None:
            w_train = jax.device_put(weights[train])
            # (a validation split given apart joins the training rows under cv and in a refit: as average rows)
            w_val = jax.device_put(np.full(sizes["val"], weights.mean(), np.float32) if validation is not None
                                   else weights[val])
        pool_index = np.concatenate([train, val if validation is None else len(y) + np.arange(sizes["val"])])
        carved = tuple(split for split, fraction in (("val", carve_val), ("test", carve_test)) if fraction > 0)
        return cls(
            X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val, X_test=X_test, y_test=y_test,
            task=task, n_classes=n_classes, name=name, feature_names=names,
            y_mean=y_mean, y_std=y_std, x_mean=x_mean, x_std=x_std, classes=classes, w_train=w_train, w_val=w_val,
            pool_index=pool_index.astype(np.int64), source_rows=len(y) + (sizes["val"] if validation is not None else 0),
            carved_at_random=carved if shuffle else (), in_order=not shuffle and bool(carved), x_index=x_index,
            standardized=standardize,
        )

    @classmethod
    def from_csv(cls, path: str | os.PathLike, target: "str | list[str]", task: str, *,
                 one_hot: "bool | list[str]" = False, weight: str | None = None, **split: Any) -> "Dataset":
        """A CSV with a header row; `target` names the label column (or a regression's target columns,
        a list), every other column is a feature.
        Class labels may be strings (kept in `classes`). one_hot=True turns text feature columns
        into one 0/1 column per value (pandas.get_dummies); otherwise they are an error. one_hot=[...]:
        the columns named (numbers too: codes such as zip codes), which must hold every text column. An
        empty cell is an error in a text column as in a number column (fill or drop those rows first).
        weight: the column of the rows' weights in the training loss (from_arrays' sample_weight), not
        a feature."""
        import pandas as pd

        _check_split_keywords("vt.Dataset.from_csv", split, ("path", "target", "task", "one_hot", "weight"),
                              "vt.Dataset.from_csv('data.csv', target='label', task='classification', "
                              "val_fraction=0.2)", CSV_HINTS, filled=("feature_names",))
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path!r} does not exist; give the path of a CSV file with a header row.")
        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError, IsADirectoryError) as err:  # (pandas' ParserError, EmptyDataError)
            raise ValueError(f"{path} cannot be read as a CSV file with a header row ({type(err).__name__}: "
                             f"{err}).") from err
        if len(frame) == 0:
            raise ValueError(f"{path} has a header row ({list(frame.columns)}) but no rows of data under it.")
        targets = list(target) if isinstance(target, (list, tuple)) else [target]  # (several: a regression's k targets)
        if not targets or not all(isinstance(t, str) for t in targets):
            raise TypeError(f"target={target!r}: name the label column (text), e.g. target='label', or a regression's "
                            f"target columns, e.g. target=['price', 'rent'].")
        for key, column in [("target", t) for t in targets] + [("weight", weight)]:
            if column is not None and column not in frame.columns:
                names = [str(c) for c in frame.columns]
                close = [n for n in names if n.strip() == column.strip()] or difflib.get_close_matches(column, names, 1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                separator = next((c for c in (";", "\t", "|") if len(names) == 1 and c in names[0]), None)
                if separator is not None:  # (one column whose name holds the real ones: another separator)
                    hint += (f" The file looks separated by {separator!r}, not commas: read it with "
                             f"pandas.read_csv(path, sep={separator!r}) and give the frame to vt.Dataset.from_arrays.")
                raise ValueError(f"{key}={column!r} is not a column of {path}; columns are {list(frame.columns)}."
                                 f"{hint}")
        if weight is not None:
            if weight in targets:
                raise ValueError(f"weight={weight!r} is the target column; name the column of the rows' weights.")
            if split.get("sample_weight") is not None:  # (one would replace the other without a word)
                raise ValueError(f"weight={weight!r} and sample_weight= both give the rows' weights; give them once: "
                                 f"weight={weight!r} names the file's column of weights, sample_weight= an array "
                                 f"of them (one per row).")
            split["sample_weight"] = frame[weight].to_numpy()
        features = frame.drop(columns=targets + ([weight] if weight is not None else []))
        _warn_index_columns(features, path)
        # (a True/False column with an empty cell is read as objects: a flag with a missing value, not text. Only
        # bools: float() takes text such as '5_9' or ' nan', which would become numbers without a word)
        non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c].dtype)
                       and not _flag_column(features[c])]
        _refuse_thousands(features, non_numeric, path)
        for c in non_numeric:  # (a number column with a missing-value marker, UCI's '?': not 72 one-hot columns
            # of ages; pandas reads '', 'NA', 'null', ... as NaN itself. Codes such as 'V58' or '5+' are categories)
            as_numbers = pd.to_numeric(features[c], errors="coerce")
            raw = features[c][as_numbers.isna() & features[c].notna()].astype(str)
            odd = raw.str.strip().str.lower()
            markers = sorted(set(raw))  # (as in the file: pandas' na_values matches cells exactly)
            # mostly numbers, and the rest a marker: no letter or digit ('?', '-', '*', ' ') or a word for
            # "missing" ('unk', 'Missing', 'n/a'); words such as 'studio', 'K' or 'yes' beside numbers, and codes
            # with digits ('V58', '5+'), are categories
            is_marker = odd.str.fullmatch(r"[^a-z0-9]*") | odd.isin(MISSING_WORDS)
            if len(odd) and as_numbers.notna().sum() >= len(odd) and is_marker.all():
                raise ValueError(f"{path}: column {c!r} holds numbers and {len(odd)} cell(s) of {markers[:5]}, a "
                                 f"marker of missing values (the first in data row {odd.index[0]}): read as text, it "
                                 f"would be a column of words. Drop or fill those rows first "
                                 f"(pandas.read_csv(path, na_values={markers[:5]}) reads them as NaN); for a column "
                                 f"of categories, one-hot it yourself (pandas.get_dummies(frame, columns=[{c!r}])) and "
                                 f"give the frame to vt.Dataset.from_arrays.")
        encode = _one_hot_columns(one_hot, features, non_numeric, targets, weight)
        left = [c for c in non_numeric if c not in encode]
        if left:
            how = ("pass one_hot=True to give each of their values a 0/1 column" if one_hot is False else
                   f"add them to one_hot={list(one_hot)!r} to give each of their values a 0/1 column")
            raise ValueError(f"{path}: feature columns {left} hold text, not numbers; {how}, or encode them yourself "
                             f"(e.g. pandas.get_dummies) first.")
        empty = features.isna().sum()
        if empty.any():  # (named here by the file's own column and line: from_arrays sees "column 0" of an array;
            # checked before one_hot, whose get_dummies would make a text column's empty cells all-0 rows unseen)
            column = empty.index[empty.to_numpy() > 0][0]
            row = int(np.flatnonzero(features[column].isna().to_numpy())[0])
            cells = features[column].dropna()  # (a yes / no column as True / False, or as 0 / 1: not its mean, 0.4)
            # (one of the values it holds: not 0 for a column of 1s)
            flag = repr(bool(cells.iloc[0])) if _flag_column(cells) else str(int(cells.iloc[0])) if \
                pd.api.types.is_numeric_dtype(cells.dtype) and len(cells) > 0 and bool(cells.isin([0, 1]).all()) \
                else None
            fill = ("with a value of their own, e.g. 'unknown', which one_hot=True gives a 0/1 column; pandas reads "
                    "text such as 'NA', 'N/A' or 'null' as empty too" if column in non_numeric else
                    f"a yes / no column: with one of its values, e.g. {flag}" if flag else
                    "e.g. with the column's mean")
            raise ValueError(f"{path}: column {column!r} has {int(empty[column])} empty cell(s), the first in data row "
                             f"{row} (counting from 0 below the header); fill them ({fill}) or drop those rows "
                             f"first.")
        if encode:
            many = [c for c in encode if features[c].nunique() > max(20, 0.9 * len(features))]
            if many:  # (an id or a free-text column: a 0/1 column per row, each telling one row apart)
                said = "one_hot=True gives text column(s)" if one_hot is True else "one_hot gives column(s)"
                warn(f"{path}: {said} {many} a 0/1 column per value, and they hold "
                     f"{[int(features[c].nunique()) for c in many]} distinct values in {len(features)} rows: an id "
                     f"or free text, not categories. Drop them (or encode them yourself) and give the frame to "
                     f"vt.Dataset.from_arrays.")
            source_columns = tuple(str(c) for c in features.columns)
            # (each value as get_dummies names its column: a number code as str(v), 75001 or 1.5)
            categories = {str(c): tuple(str(v) for v in pd.Categorical(features[c]).categories) for c in encode}
            features = pd.get_dummies(features, columns=encode, dtype=float)
        numbers = features.select_dtypes("number")
        infinite = np.isinf(numbers.to_numpy(np.float64)).sum(axis=0)
        if infinite.any():  # (named as empty cells are: from_arrays sees a column of the matrix get_dummies reordered)
            at = int(np.flatnonzero(infinite)[0])
            column, cells = numbers.columns[at], numbers.iloc[:, at].to_numpy(np.float64)
            row = int(np.flatnonzero(np.isinf(cells))[0])
            raise ValueError(f"{path}: column {column!r} has {int(infinite[at])} infinite value(s) ({cells[row]}), the "
                             f"first in data row {row} (counting from 0 below the header); replace them with finite "
                             f"numbers or drop those rows first.")
        split.setdefault("name", os.path.basename(str(path)))
        y = frame[targets].to_numpy() if len(targets) > 1 else frame[targets[0]].to_numpy()
        try:
            data = cls.from_arrays(features.to_numpy(np.float64), y, task, feature_names=list(features.columns),
                                   **split)
        except (ValueError, TypeError) as err:  # (from_arrays' words: y, sample_weight, rows; said in the file's)
            named = f"target column {targets[0]!r}" if len(targets) == 1 else f"target columns {targets}"
            weights = f", sample_weight its weight={weight!r} column" if weight is not None else ""
            err.add_note(f"vmaptune: in {path}, y is the {named}{weights}; rows count from 0 below the header.")
            raise
        if not encode:
            return data
        return dataclasses.replace(data, categories=categories, source_columns=source_columns)

    @classmethod
    def from_npz(cls, path: str | os.PathLike, task: str, *, X: str = "X", y: str = "y", **split: Any) -> "Dataset":
        """An .npz file holding arrays named `X` and `y` (names configurable)."""
        _check_split_keywords("vt.Dataset.from_npz", split, ("path", "task", "X", "y"),
                              "vt.Dataset.from_npz('data.npz', 'classification', X='X', y='y', val_fraction=0.2)",
                              NPZ_HINTS)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path!r} does not exist; give the path of an .npz file holding arrays "
                                    f"{X!r} and {y!r} (np.savez(path, {X}=X, {y}=y)).")
        try:
            archive = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:  # (not a zip of arrays: cut short, say)
            raise ValueError(f"{path} cannot be read as an .npz file of arrays ({type(err).__name__}: {err}); "
                             f"write it with np.savez(path, {X}=X, {y}=y).") from err
        with archive:
            for key in (X, y):
                if key not in archive.files:
                    raise ValueError(f"{path} has no array {key!r}; it has {archive.files}. Name the arrays with "
                                     f"X= and y=, e.g. from_npz(path, task, X={archive.files[0]!r}, ...)."
                                     if archive.files else f"{path} holds no arrays; save them with "
                                     f"np.savez(path, {X}=X, {y}=y).")
            arrays = {}
            for key in (X, y):
                try:
                    arrays[key] = archive[key]
                except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # (read when asked)
                    if "Object arrays" in str(err):
                        raise ValueError(f"{path}: array {key!r} holds Python objects (text labels from pandas' "
                                         f"to_numpy() are dtype object), which are not read without pickle; save it "
                                         f"as numbers or text, e.g. np.savez(path, {key}={key}.astype(str)) for "
                                         f"labels ({err}).") from err
                    raise ValueError(f"{path}: array {key!r} cannot be read ({type(err).__name__}: {err}); write the "
                                     f"file again with np.savez(path, {X}=X, {y}=y).") from err
            Xa, ya = arrays[X], arrays[y]
        split.setdefault("name", os.path.basename(str(path)))
        return cls.from_arrays(Xa, ya, task, **split)


#: The keywords of Dataset.from_arrays that load_dataset passes on (its data is the set's own).
SPLIT_SETTINGS = ("val_fraction", "test_fraction", "seed", "standardize", "name", "shuffle")


def load_dataset(name: str, **split: Any) -> Dataset:
    """A data set that ships with scikit-learn (no download): digits, breast_cancer, wine, iris, diabetes."""
    if not isinstance(name, str) or name not in BUILTIN:
        raise ValueError(f"unknown dataset {name!r}; built-in ones are {sorted(BUILTIN)}. "
                         "For your own data use vt.Dataset.from_arrays, from_csv or from_npz.")
    unknown = sorted(set(split) - set(SPLIT_SETTINGS))
    if unknown:
        raise TypeError(f"load_dataset: unknown argument(s) {unknown}; it takes the split's settings "
                        f"{list(SPLIT_SETTINGS)}, e.g. vt.load_dataset({name!r}, val_fraction=0.2).")
    import sklearn.datasets

    loader, task = BUILTIN[name]
    bunch = getattr(sklearn.datasets, loader)()
    split.setdefault("name", name)
    names = getattr(bunch, "feature_names", None)
    return Dataset.from_arrays(bunch.data, bunch.target, task,
                               feature_names=list(names) if names is not None else None, **split)


#: Advice for keywords neither from_csv nor from_npz takes (scikit-learn's words).
SPLIT_HINTS = {"random_state": "The split's seed is seed=, e.g. seed=0."}

#: Advice for keywords from_csv does not take (feature_names: from_arrays' own, which from_csv fills itself).
CSV_HINTS = {
    **SPLIT_HINTS,
    "feature_names": "from_csv names the features by the file's header row.",
    **dict.fromkeys(("sep", "delimiter"), "A file separated by another character: read it with "
                                          "pandas.read_csv(path, sep=';') and give the frame to vt.Dataset.from_arrays."),
    **dict.fromkeys(("y", "X"), "from_csv takes the label column as target='label'; every other column is a "
                                "feature (weight='w' names a column of row weights)."),
}

#: Advice for keywords from_npz does not take (from_csv's words: a file's columns, not its arrays).
NPZ_HINTS = {
    **SPLIT_HINTS,
    "target": "from_npz names the arrays, not a column: y='name of the labels array' (and X='name of the "
              "inputs array'), e.g. y='y'.",
    "weight": "Give the rows' weights as an array: sample_weight=np.load(path)['w'].",
    "one_hot": "from_npz takes arrays of numbers: encode text columns before np.savez (pandas.get_dummies), or "
               "read a CSV with vt.Dataset.from_csv(..., one_hot=True).",
}


def _check_split_keywords(owner: str, split: Mapping[str, Any], own: Sequence[str], example: str,
                          hints: Mapping[str, str] | None = None, filled: Sequence[str] = ()) -> None:
    """The keywords from_csv / from_npz pass on to from_arrays: one it does not take (a misspelt
    val_fraction) is named by `owner`, with the close match and what it takes (its `own` arguments,
    then from_arrays' keywords but those it `filled` itself), not by Python's bare
    "from_arrays() got an unexpected keyword argument"."""
    settings = [p.name for p in inspect.signature(Dataset.from_arrays).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in filled]
    takes = [*own, *settings]
    if any(k not in takes for k in split):
        shown = {k: _Shown(v) for k, v in split.items()}  # (an array as its type and shape, not its every value)
        raise TypeError(argument_error(owner, [], takes, [], (), shown, example, hints or {}))


class _Shown:
    """A keyword's value as an error message shows it: an array by its type and shape, anything
    else by a repr cut short."""

    def __init__(self, value: Any, depth: int = 0):
        self.value, self.depth = value, depth

    def __repr__(self) -> str:
        if self.depth > 2:  # (a list holding itself: reprlib's [...] where it nests deeper)
            return reprlib.repr(self.value)
        shape = getattr(self.value, "shape", None)
        if isinstance(shape, tuple) and len(shape) >= 1:
            return f"<{type(self.value).__name__} of shape {shape}>"
        if isinstance(self.value, (tuple, list)):  # (validation_data=(X_val, y_val): each array by its shape)
            shown = [repr(_Shown(v, self.depth + 1)) for v in self.value[:6]] + (["..."] if len(self.value) > 6 else [])
            one = "," if isinstance(self.value, tuple) and len(self.value) == 1 else ""
            return f"({', '.join(shown)}{one})" if isinstance(self.value, tuple) else f"[{', '.join(shown)}]"
        if isinstance(self.value, dict):
            shown = [f"{reprlib.repr(k)}: {_Shown(v, self.depth + 1)!r}" for k, v in list(self.value.items())[:6]]
            return f"{{{', '.join(shown + (['...'] if len(self.value) > 6 else []))}}}"
        return reprlib.repr(self.value)


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


_SCALED: dict[int, tuple[weakref.ref, str]] = {}  # id -> (the array, its split): a Dataset's standardised inputs


def _remember_scaled(X: Any, split: str) -> None:
    def forget(ref, key=id(X)):
        if _SCALED.get(key, (None,))[0] is ref:
            del _SCALED[key]
    try:
        _SCALED[id(X)] = (weakref.ref(X, forget), split)
    except TypeError:  # (an array type without weak references is not guarded)
        pass


def scaled_split(X: Any) -> str | None:
    """The split ("test", ...) when X is a Dataset's standardised input array itself, else None."""
    held = _SCALED.get(id(X))
    return held[1] if held is not None and held[0]() is X else None


def _as_model_input(X: np.ndarray) -> np.ndarray:
    """Unscaled inputs as the engine holds them: int32 ids, or float32."""
    if not np.issubdtype(X.dtype, np.integer):
        return X.astype(np.float32)
    limits = np.iinfo(np.int32)
    if X.size and (X.min() < limits.min or X.max() > limits.max):
        raise ValueError(f"X holds integers from {X.min()} to {X.max()}, outside int32 (the token ids an embedding "
                         f"takes); integer inputs are kept unscaled as ids. Number them 0..vocabulary-1, or pass "
                         f"X.astype('float64') if they are quantities to be standardised.")
    return X.astype(np.int32)


#: Words a CSV's number column may hold for a missing value (lower case), which pandas reads as text.
MISSING_WORDS = ("unk", "unknown", "missing", "na", "n/a", "n.a.", "nan", "null", "none", "nil", "undefined")


def _flag_column(column: Any) -> bool:
    """A column whose values, missing ones aside, are all True / False (pandas reads a True/False
    column with an empty cell as objects)."""
    cells = column.dropna()
    return len(cells) > 0 and bool(cells.map(lambda v: isinstance(v, (bool, np.bool_))).all())


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


class SplitMissesClassWarning(UserWarning):
    """A stratified carve left a split without a row of some classes. It carries its facts, so a
    caller that made the carve for the user (an estimator's validation_fraction) can say them in
    its own terms: split ("val" / "test"), class_ids (indices into the classes), fraction."""

    def __init__(self, message: str, split: str, class_ids: list[int], fraction: float):
        super().__init__(message)
        self.split, self.class_ids, self.fraction = split, class_ids, fraction

    def __reduce__(self):  # (copied and pickled whole: a joblib worker's warning made an error reaches its parent)
        return type(self), (str(self), self.split, self.class_ids, self.fraction)


def _warn_uneven_stratification(y: np.ndarray, classes: np.ndarray, train: np.ndarray, carved: dict) -> None:
    """A stratified carve rounds each class's share: a class of 2 rows at 0.2 gives none to the
    split (its scores cannot see it), and many classes of 3 rows give one row each to validation
    and test (training keeps a third, not 60 %). Said, not changed: the splits stay those of the seed
    (but for the row of each class that _split keeps in training, where the shares would use it up:
    a split can lack the class for that too)."""
    counts = np.bincount(y, minlength=len(classes))
    for name, (rows, fraction) in carved.items():
        if fraction > 0 and len(rows):
            missing = np.flatnonzero((counts >= 2) & (np.bincount(y[rows], minlength=len(classes)) == 0))
            if len(missing):
                count = int(counts[missing[0]])
                other = next((f"{k}_fraction={f}" for k, (_, f) in carved.items() if k != name), "")
                why = "rounds to none" if round(count * fraction) == 0 else \
                    f"beside {other} would leave training none: that row trains instead"
                warn(SplitMissesClassWarning(
                    f"the {name} split holds no row of class(es) {classes[missing][:5].tolist()} ({name}_fraction="
                    f"{fraction} of {count} rows {why}): its scores cannot see them. "
                    f"Give that split yourself ({'validation' if name == 'val' else 'test'}=(X, y) of "
                    f"vt.Dataset.from_arrays) or more rows of them.", name, missing.tolist(), fraction))
    asked = len(y) * (1 - sum(fraction for _, fraction in carved.values()))
    if len(train) < 0.75 * asked:
        warn(f"stratifying {len(classes)} classes leaves {len(train)} of {len(y)} rows to train on (about "
             f"{int(asked)} asked for): each class's share of the other splits rounds up to a row. Carve "
             f"less (vt.Dataset.from_arrays' val_fraction / test_fraction, an estimator's validation_fraction), "
             f"or give the splits yourself.", UserWarning)


def _warn_untrained_classes(y: np.ndarray, classes: np.ndarray, train: np.ndarray, carved: dict) -> None:
    """A carve in X's order (shuffle=False) is not stratified: a class that only later rows hold
    is in the validation or test split and never in training, so the network never learns it and
    those scores are capped. Said, not changed: the order is the user's."""
    trained = np.bincount(y[train], minlength=len(classes)) > 0
    for name, rows in carved.items():
        missing = np.flatnonzero(~trained & (np.bincount(y[rows], minlength=len(classes)) > 0))
        if len(missing):
            warn(f"the training split (X's first rows: shuffle=False) holds no row of class(es) "
                 f"{classes[missing][:5].tolist()}, which the {name} split has: the network never learns them, "
                 f"and its scores count them wrong. Put rows of every class before the split (or shuffle=True), "
                 f"or give the splits yourself (validation=(X, y)).", UserWarning)


def _split(n: int, stratify: np.ndarray | None, val_fraction: float, test_fraction: float, seed: int):
    """Fixed-seed train / val / test row indices, stratified by class when labels are given (each
    class keeps a training row)."""
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
        if stratify is not None and n_test + n_val >= len(rows):
            # (the rounded shares use the class up, 2 rows at 0.3 and 0.3: the network would never see it
            # while validation and test count it. A row comes back from the larger share; of equal shares,
            # from test, as validation ranks the members)
            n_test, n_val = (n_test - 1, n_val) if n_test >= n_val else (n_test, n_val - 1)
        test.append(rows[:n_test])
        val.append(rows[n_test:n_test + n_val])
        train.append(rows[n_test + n_val:])
    for part, fraction in ((val, val_fraction), (test, test_fraction)):
        want = min(int(round(n * fraction)), len(groups))
        # every class rounded to no row (20 rows of 4 classes at 0.1): a row from each of the largest
        # that keeps rows to train on (only where the split would otherwise be refused, so no other
        # split changes; classes of one row stay in training)
        if want and not sum(len(rows) for rows in part):
            for g in np.argsort([-len(rows) for rows in train], kind="stable")[:want]:
                if len(train[g]) >= 2:
                    part[g], train[g] = train[g][:1], train[g][1:]
    return tuple(np.sort(np.concatenate(part)) for part in (train, val, test))


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


def _warn_index_columns(features: Any, path: Any) -> None:
    """A column 'Unnamed: 0' of distinct whole numbers is a pandas index that DataFrame.to_csv
    wrote: as a feature it tells each row's place in the frame it came from (on a file sorted by
    label, pure-noise labels scored 0.86 on validation)."""
    for c in features.columns:
        column = features[c]
        if re.fullmatch(r"Unnamed: \d+", str(c)) and np.issubdtype(column.dtype, np.integer) and len(column) > 1 \
                and column.is_unique:
            warn(f"{path}: column {c!r} holds distinct row numbers ({column.iloc[0]}, {column.iloc[1]}, ...): an index that "
                 f"pandas' DataFrame.to_csv wrote, which as a feature tells each row's place in the file. Drop it "
                 f"(pandas.read_csv(path, index_col=0), then vt.Dataset.from_arrays), or write the file with "
                 f"to_csv(index=False).")


def _refuse_thousands(features: Any, text_columns: list, path: Any) -> None:
    """A text column of numbers written with ',' between thousands ('1,234') is a quantity, not
    categories: one-hot, it became a column per price."""
    for c in text_columns:
        cells = features[c].dropna().astype(str).str.strip()
        marker = cells.str.lower().str.fullmatch(r"[^a-z0-9]*") | cells.str.lower().isin(MISSING_WORDS)  # ('?', 'n/a')
        cells = cells[~marker]
        grouped = cells.str.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?")
        if grouped.any() and (grouped | cells.str.fullmatch(r"-?\d+(\.\d+)?")).all():
            raise ValueError(f"{path}: column {c!r} holds numbers written with ',' between thousands (e.g. "
                             f"{cells[grouped].iloc[0]!r}), read as text. Read the file with "
                             f"pandas.read_csv(path, thousands=',') (or decimal=',' where ',' is the decimal "
                             f"point; na_values= for missing-value markers) and give the frame to "
                             f"vt.Dataset.from_arrays.")


def _split_in_order(n: int, val_fraction: float, test_fraction: float):
    """Train / val / test row indices in X's order: the first rows, the next, the last."""
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    rows = np.arange(n)
    return rows[:n - n_val - n_test], rows[n - n_val - n_test:n - n_test], rows[n - n_test:]


def column_names(X: Any) -> list[str] | None:
    """A DataFrame's column names (all strings), else None."""
    columns = getattr(X, "columns", None)
    if columns is None or not all(isinstance(c, str) for c in columns):
        return None
    return [str(c) for c in columns]


def one_hot_rows(frame: Any, categories: Mapping[str, Sequence[str]]) -> Any:
    """Raw rows (a DataFrame) of the text columns Dataset.from_csv(one_hot=True) encoded ->
    the same rows encoded as its training rows were: each text column replaced by a 0/1 column
    per training value (every one, whether the rows hold it or not), after the other columns.
    An empty cell, or a value the training rows did not hold, is refused by column and row."""
    import pandas as pd

    coded = {}
    for column, values in categories.items():
        cells = frame[column]
        labels = (lambda rows: frame.index[rows][:5].tolist())  # (the frame's own row labels: X.drop(index=...))
        empty = np.flatnonzero(cells.isna().to_numpy())
        if len(empty):
            raise ValueError(f"X's column {column!r} has {len(empty)} empty cell(s) (rows {labels(empty)}), but "
                             f"the model was trained on its values {list(values)}; fill them with one of those "
                             f"values or drop those rows first.")
        text = _as_categories(cells, values)
        unknown = ~text.isin(values).to_numpy()
        if unknown.any():  # (as scikit-learn's OneHotEncoder refuses them by default: no column says it)
            seen = list(dict.fromkeys(text[unknown]))
            raise ValueError(f"X's column {column!r} holds {seen[:5]}{'...' if len(seen) > 5 else ''} (rows "
                             f"{labels(np.flatnonzero(unknown))}), value(s) the training rows did not hold: "
                             f"the model has an input for each of {list(values)} only. Map them to one of those "
                             f"values or drop those rows first.")
        coded[column] = pd.Categorical(text, categories=list(values))
    return pd.get_dummies(frame.assign(**coded), columns=list(categories), dtype=float)


def _one_hot_columns(one_hot: Any, features: Any, text: list, targets: list, weight: str | None) -> list:
    """from_csv's one_hot -> the feature columns to encode, in the file's order: True, its text
    columns; False, none; a list of column names, those (numbers too: codes such as zip codes)."""
    if isinstance(one_hot, (bool, np.bool_)):
        return list(text) if one_hot else []
    if isinstance(one_hot, str) or not isinstance(one_hot, (list, tuple)) or \
            not all(isinstance(c, str) for c in one_hot):
        raise TypeError(f"one_hot={one_hot!r}: give True (a 0/1 column per value of every text column), False, or "
                        f"a list of the columns to encode, e.g. one_hot=['colour', 'zip'] (numbers too: codes).")
    names = [str(c) for c in features.columns]
    for column in one_hot:
        if column not in names:
            taken = " (the target)" if column in targets else " (the weight column)" if column == weight else ""
            close = difflib.get_close_matches(column, names, 1)
            hint = f" Did you mean {close[0]!r}?" if close and not taken else ""
            raise ValueError(f"one_hot={list(one_hot)!r} names {column!r}{taken}, which is not a feature column; the "
                             f"feature columns are {names}.{hint}")
    return [c for c in features.columns if str(c) in one_hot]


def _as_categories(cells: Any, values: Sequence[str]) -> Any:
    """A column of new rows as the text of the categories `values`: each cell as str(cell), or, a
    number whose text is none of them, the category of its value (codes such as '1' that a new CSV
    reads as the number 1, or df.iloc[0] as 1.0 in a row of numbers)."""
    import pandas as pd

    text = cells.astype(str)
    by_number = {}
    for value in values:
        try:
            by_number.setdefault(float(value), value)
        except ValueError:  # (a word: no number names it)
            pass
    unmatched = ~text.isin(values).to_numpy()
    if not by_number or not unmatched.any():
        return text
    read = [by_number.get(float(cell), shown) if miss and isinstance(cell, numbers.Real) and
            not isinstance(cell, (bool, np.bool_)) else shown for cell, shown, miss in zip(cells, text, unmatched)]
    return pd.Series(read, index=cells.index)


def default_feature_names(n: int) -> tuple[str, ...]:
    """The names a Dataset gives unnamed features: x0, x1, ..."""
    return tuple(f"x{i}" for i in range(n))
