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

import dataclasses
import difflib
import inspect
import numbers
import os
import reprlib
import weakref
import zipfile
import zlib
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.arguments import argument_error, check_flag, check_seed
from vmaptune.data.csv_columns import (MISSING_WORDS, _flag_column, _one_hot_columns, _refuse_thousands,
                                      _warn_index_columns)
from vmaptune.data.inputs import (_check_arrays, _check_fraction, _check_split, _pandas_index, _warn_constant_targets,
                                  _warn_misaligned, check_sample_weight, column_names, mean_std, scale_or_one,
                                  warn_misaligned)
from vmaptune.data.splits import _split, _split_in_order, _warn_uneven_stratification, _warn_untrained_classes
from vmaptune.warn import warn

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


def default_feature_names(n: int) -> tuple[str, ...]:
    """The names a Dataset gives unnamed features: x0, x1, ..."""
    return tuple(f"x{i}" for i in range(n))
