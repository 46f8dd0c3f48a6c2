"""Cross-validation folds you choose: a scikit-learn splitter or your own (train, validation) rows.

`vt.tune(cv=3)` deals train + validation rows into stratified, shuffled folds itself
(`Dataset.folds`). `cv=` also takes a scikit-learn splitter (KFold, StratifiedKFold,
TimeSeriesSplit, ShuffleSplit, ...: called on `data.pool()`) or a list of (train_rows,
validation_rows) index pairs into `data.pool()`'s rows (train split first, then validation, each
in the order given), as scikit-learn's `cv=` takes an iterable of splits. `vt.PopulationSearchCV`
passes the splits of its splitter over X's rows, with `groups=` (GroupKFold) where given.

Every fold is trained in one program: each fold trains on all its training rows (TimeSeriesSplit's
growing windows too: a member of a smaller fold takes its own fold's steps per epoch), and is
scored on all its held-out rows (GroupKFold's unequal groups, LeaveOneGroupOut's too). One pair
is a hold-out split of your own (PredefinedSplit).
"""

from __future__ import annotations

import dataclasses
import hashlib
import numbers
from typing import Any

import numpy as np

from vmaptune.warn import warn


@dataclasses.dataclass(frozen=True, eq=False)
class Splits:
    """(train rows, validation rows) per fold: int64 index arrays into data.pool()'s rows."""

    pairs: tuple[tuple[np.ndarray, np.ndarray], ...]
    source: str = "splits"  # what gave them (a splitter's repr), for messages

    def __len__(self) -> int:
        return len(self.pairs)

    def fingerprint(self) -> str:
        """Text that identifies the splits (what a resumed run must match)."""
        digest = hashlib.sha256()
        for train, val in self.pairs:
            digest.update(np.ascontiguousarray(train).tobytes() + b"|" + np.ascontiguousarray(val).tobytes() + b";")
        return f"{len(self)} given folds, sha256 {digest.hexdigest()[:16]}"

    def __repr__(self) -> str:
        return f"Splits({self.source}: {self.fingerprint()})"


def resolve_cv(cv: Any, data: Any) -> tuple[Any, Splits | None]:
    """vt.tune's cv= -> (the number of folds or None, Splits or None). An integer (or None) is
    returned as given (Settings checks it); a splitter is called on data.pool() (X, y); pairs are
    checked against the pool's rows."""
    if cv is None or isinstance(cv, (numbers.Integral, bool)):
        return cv, None
    if isinstance(cv, Splits):
        return len(cv), cv
    if not hasattr(data, "pool"):
        raise TypeError(f"data must be a vt.Dataset (vt.load_dataset or vt.Dataset.from_arrays), got "
                        f"{type(data).__name__}.")
    n_pool = int(data.X_train.shape[0] + data.X_val.shape[0])
    if isinstance(cv, (str, bytes, dict)) or not (hasattr(cv, "split") or hasattr(cv, "__iter__")):
        raise TypeError(f"cv={cv!r}: give the number of folds (an integer >= 2), a scikit-learn splitter such as "
                        f"StratifiedKFold(5), or a list of (train_rows, validation_rows) index pairs into "
                        f"data.pool()'s rows.")
    if hasattr(cv, "split"):
        source = describe(cv)
        X, y = data.pool()
        try:
            pairs = list(cv.split(np.asarray(X), np.asarray(y)))
        except (TypeError, ValueError) as err:
            if "groups" in str(err):
                raise ValueError(f"cv={cv!r} needs groups, which vt.tune cannot pass: give the folds as "
                                 f"cv=list({type(cv).__name__}(...).split(X_pool, y_pool, groups)) over data.pool()'s "
                                 f"rows (train split, then validation), or use vt.PopulationSearchCV(...).fit(X, y, "
                                 f"groups=groups).") from None
            raise ValueError(f"cv={cv!r}: its split(X, y) over data.pool()'s {n_pool} rows failed: {err}") from None
        # (read from its settings, not by splitting again: a second split() would move a RandomState it holds)
        if getattr(cv, "random_state", 0) is None and getattr(cv, "shuffle", True):
            warn(f"cv={source} gives other folds at every call (it shuffles without a random_state): the same seed "
                 f"will not give the same result, and a run_dir of this run cannot be resumed (its folds would "
                 f"differ). Give it one, e.g. {type(cv).__name__}(..., random_state=0).")
    else:
        pairs = list(cv)
        source = f"a list of {len(pairs)} (train, validation) pairs"
    splits = checked_splits(pairs, n_pool, source)
    return len(splits), splits


def describe(cv: Any) -> str:
    """cv as messages name it: a splitter's repr, short (PredefinedSplit's holds every row's fold);
    a list of folds by their number (their repr is every index of every fold)."""
    if isinstance(cv, (list, tuple)):
        return f"a list of {len(cv)} (train, validation) pairs"
    text = repr(cv)
    return text if len(text) <= 120 else f"{type(cv).__name__}(...)"


def checked_splits(pairs: list, n_rows: int, source: str, rows: str = "data.pool()'s") -> Splits:
    """(train, validation) index pairs into `n_rows` rows (`rows` names them in messages) as Splits.
    One pair is a hold-out split of your own (PredefinedSplit, ShuffleSplit(1)): scored on it alone."""
    if len(pairs) < 1:
        raise ValueError(f"cv ({source}) gives no folds; give at least one (train, validation) pair.")
    return Splits(tuple(_checked_pair(i, pair, n_rows, rows) for i, pair in enumerate(pairs)), source)


def _checked_pair(i: int, pair: Any, n_pool: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One fold's (train, validation) rows, as int64 arrays: in range, unique, disjoint, non-empty."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise TypeError(f"cv's fold {i} is {type(pair).__name__}, not a (train_rows, validation_rows) pair of "
                        f"index arrays.")
    arrays = []
    for what, rows in zip(("train", "validation"), pair):
        rows = np.asarray(rows)
        if rows.dtype == bool:  # a mask over the pool, as some users write folds
            if rows.shape != (n_pool,):
                raise ValueError(f"cv's fold {i}: the {what} mask has shape {rows.shape}, not ({n_pool},) (one "
                                 f"entry per row of {where} rows).")
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise TypeError(f"cv's fold {i}: {what} rows must be a 1-D array of row indices, got {rows.dtype} of "
                            f"shape {rows.shape}.")
        rows = rows.astype(np.int64)
        if rows.size == 0:
            raise ValueError(f"cv's fold {i} has no {what} rows; every fold needs both.")
        outside = rows[(rows < 0) | (rows >= n_pool)]
        if outside.size:
            raise ValueError(f"cv's fold {i}: {what} rows {outside[:5].tolist()} are outside {where} {n_pool} rows "
                             f"(0..{n_pool - 1}).")
        if len(np.unique(rows)) != len(rows):
            raise ValueError(f"cv's fold {i} lists some {what} rows twice; give each row once.")
        arrays.append(rows)
    both = np.intersect1d(*arrays)
    if both.size:
        raise ValueError(f"cv's fold {i} trains on {both.size} of the rows it is scored on (e.g. {both[:5].tolist()}); "
                         f"a fold's validation rows must be held out of its training.")
    return arrays[0], arrays[1]
