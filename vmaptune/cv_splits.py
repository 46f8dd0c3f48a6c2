"""Cross-validation folds you choose: a scikit-learn splitter or your own (train, validation) rows.

`vt.tune(cv=3)` deals train + validation rows into stratified, shuffled folds itself
(`Dataset.folds`). `cv=` also takes a scikit-learn splitter (KFold, StratifiedKFold,
TimeSeriesSplit, GroupKFold with `groups=`, ...), called on the pool's rows in the order they came
to `Dataset.from_arrays` (X's, then a validation split's given apart): a carved validation split
is drawn from between X's rows, and TimeSeriesSplit must see them in time, GroupKFold's groups
must line up with them. Or a list of (train_rows, validation_rows) index pairs into
`data.pool()`'s rows (train split first, then validation, each in the order given), as
scikit-learn's `cv=` takes an iterable of splits. `vt.PopulationSearchCV` passes the splits of its
splitter over X's rows, with `groups=` (GroupKFold) where given.

Every fold is trained in one program: each fold trains on all its training rows (TimeSeriesSplit's
growing windows too: a member of a smaller fold takes its own fold's steps per epoch), and is
scored on all its held-out rows (GroupKFold's unequal groups, LeaveOneGroupOut's too). One pair
is a hold-out split of your own (PredefinedSplit).
"""

from __future__ import annotations

import dataclasses
import hashlib
import numbers
from typing import Any, Sequence

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


def shuffles_unseeded(cv) -> bool:
    """Whether a scikit-learn splitter deals other folds at every call: it shuffles (ShuffleSplit,
    KFold(shuffle=True)) without a random_state. (One seeded by a RandomState of the user's deals
    the same folds in each new process, which is what a killed run's resume needs; `moves_on`.)"""
    return hasattr(cv, "split") and getattr(cv, "random_state", 0) is None and getattr(cv, "shuffle", True)


def moves_on(cv) -> bool:
    """Whether a shuffling splitter's random_state is a RandomState / Generator, which each split
    moves on: a second call in one process deals other folds."""
    return hasattr(cv, "split") and getattr(cv, "shuffle", True) and isinstance(
        getattr(cv, "random_state", None), (np.random.RandomState, np.random.Generator))


def resolve_cv(cv: Any, data: Any, groups: Any = None) -> tuple[Any, Splits | None]:
    """vt.tune's cv= -> (the number of folds or None, Splits or None). An integer (or None) is
    returned as given (Settings checks it); a splitter is called on data.pool()'s rows (X, y, and
    `groups`, one per row given to from_arrays) in the order from_arrays was given them; pairs
    are checked against the pool's rows."""
    if groups is not None and not hasattr(cv, "split"):
        what = ("your pairs already say which rows each fold holds" if isinstance(cv, (list, tuple, Splits)) else
                "without cv= the search scores on the validation split, with no folds; give a group splitter, "
                "e.g. cv=GroupKFold(5)" if cv is None else
                f"an integer cv deals its own folds, ignoring groups; give a group splitter, e.g. cv=GroupKFold({cv})")
        raise ValueError(f"groups= with cv={describe(cv)}: {what} (or leave groups out).")
    if cv is None or isinstance(cv, (numbers.Integral, bool)):
        if cv is not None and not isinstance(cv, bool) and getattr(data, "in_order", False):
            warn(f"cv={cv} deals shuffled folds, but this data set was carved in order (shuffle=False, a time "
                 f"series?): each fold would train on rows after those it is scored on. For a series give "
                 f"cv=TimeSeriesSplit({cv}) (scikit-learn's), whose folds keep time.")
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
        order = data.pool_order() if hasattr(data, "pool_order") else None
        order = np.arange(n_pool) if order is None else order
        given = () if groups is None else (pool_groups(groups, data)[order],)
        _warn_time_order(cv, data)
        try:
            given_pairs = list(cv.split(np.asarray(X)[order], np.asarray(y)[order], *given))
        except (TypeError, ValueError) as err:
            if groups is None and "groups" in str(err):
                raise ValueError(f"cv={cv!r} needs the rows' groups: vt.tune(..., cv={source}, groups=groups), one "
                                 f"group per row of the X given to vt.Dataset.from_arrays (or "
                                 f"vt.PopulationSearchCV(...).fit(X, y, groups=groups)).") from None
            raise ValueError(f"cv={cv!r}: its split(X, y) over data.pool()'s {n_pool} rows failed: {err}") from None
        # (checked before they move: a PredefinedSplit of one entry per row of X names rows past the pool)
        try:
            checked = checked_splits(given_pairs, n_pool, source, rows="the train and validation splits'")
        except ValueError as err:
            if "are outside" not in str(err) or not (getattr(data, "source_rows", None) or 0) > n_pool:
                raise
            raise ValueError(f"{err} The splitter is given those rows only (the test split's left out), in the "
                             f"order they had in X: one built over all of X's rows (a PredefinedSplit(test_fold), "
                             f"say) takes the pool's part of them, e.g. PredefinedSplit(test_fold[np.sort("
                             f"data.pool_index)]) (with a validation split given apart, extend test_fold by an "
                             f"entry per validation row first).") from None
        pairs = [(order[train], order[val]) for train, val in checked.pairs]  # (positions in X's order -> the pool's)
        # (read from its settings, not by splitting again: a second split() would move a RandomState it holds)
        if shuffles_unseeded(cv):
            warn(f"cv={source} gives other folds at every call (it shuffles without a random_state): the same "
                 f"seed "
                 f"will not give the same result, and a run_dir of this run cannot be resumed (its folds would "
                 f"differ). Give it one, e.g. {type(cv).__name__}(..., random_state=0).")
    else:
        pairs = list(cv)
        source = f"a list of {len(pairs)} (train, validation) pairs"
    splits = checked_splits(pairs, n_pool, source)
    return len(splits), splits


def check_r2_folds(held_out: Sequence[int], given: str, instead: str, split: str | None = None) -> None:
    """r2 on a held-out fold of fewer than 2 rows: undefined (scikit-learn's r2_score is NaN there,
    whatever its force_finite), so every candidate would score alike and the best be chosen blind.
    Said before anything trains, with the fold. held_out: each fold's number of held-out rows;
    given: the metric as the caller's argument names it; instead: the caller's name of a metric
    that scores one row; split: "validation" or "test" for a split of rows (not folds)."""
    small = [k for k, n in enumerate(held_out) if 0 < n < 2]
    if not small:
        return
    if split is not None:
        raise ValueError(f"{given} is undefined on the {split} split's 1 row: r2 weighs the errors against the spread "
                         f"of at least 2 targets (scikit-learn's r2_score is NaN there), so "
                         + ("every candidate would score alike and the best would be chosen blind" if split ==
                            "validation" else "the refit's test_score would mean nothing")
                         + f". Use {instead}, or a {split} split of at least 2 rows.")
    also = f" (as are {len(small) - 1} other folds of {len(held_out)})" if len(small) > 1 else ""
    raise ValueError(f"{given} is undefined on fold {small[0]}'s {held_out[small[0]]} held-out row{also}: r2 weighs "
                     f"the errors against the spread of at least 2 targets (scikit-learn's r2_score is NaN there), "
                     f"so every candidate would score alike and the best would be chosen blind. Use {instead}, or a "
                     f"cv whose folds hold out at least 2 rows each (an integer cv, e.g. cv=5, or KFold(5, "
                     f"shuffle=True, random_state=0)).")


def pool_groups(groups: Any, data: Any) -> np.ndarray:
    """groups= (one per row given to from_arrays: X's, then a validation split's given apart)
    -> (n_pool,) the group of each pool row."""
    if getattr(data, "pool_order", lambda: None)() is None:
        raise ValueError("groups=: this Dataset does not record which of your rows each of its rows is (it was not "
                         "made by vt.Dataset.from_arrays, from_csv, from_npz or vt.load_dataset, or its splits were "
                         "replaced since); give cv as "
                         "(train_rows, validation_rows) pairs into data.pool()'s rows instead.")
    from vmaptune.data import warn_misaligned

    warn_misaligned(getattr(data, "x_index", None), groups, "groups",
                    "group, and a group would straddle folds. Align them first: groups.loc[X.index]")
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != data.source_rows:
        raise ValueError(f"groups has shape {groups.shape}, but the data set came from {data.source_rows} rows; "
                         f"give one group per row, in the order given to vt.Dataset.from_arrays: every row of its X "
                         f"(rows it carved into validation or test included), then a validation split's given apart "
                         f"(not a test split's).")
    return groups[data.pool_index]


def warn_groups_in_test(groups: Any, data: Any) -> None:
    """Groups split so no group straddles a fold, while the test split carved from X holds rows of
    groups the folds (and a refit) train on: test_score then reads those groups' rows as seen, not
    new. (vt.tune calls it where a refit scores the test split; groups= checked by resolve_cv.)"""
    groups = np.asarray(groups)
    test_rows = np.setdiff1d(np.arange(data.source_rows), data.pool_index)  # (X's rows carved into test)
    if not len(test_rows):
        return
    shared = np.intersect1d(groups[test_rows], groups[data.pool_index])
    if len(shared):
        warn(f"groups=: {len(shared)} of the groups in the test split carved from X also have rows the folds train "
             f"on (e.g. {shared[:3].tolist()}), so test_score scores groups the refit has seen, not new ones, and "
             f"reads higher than the grouped cv score. Carve the test split by group (GroupShuffleSplit) and give it "
             f"as vt.Dataset.from_arrays(..., test=(X_test, y_test)), with groups for the other rows only.")


def _warn_time_order(cv: Any, data: Any) -> None:
    """TimeSeriesSplit over a data set whose test split was carved at random: the folds keep
    time, but the test rows lie between the training rows, so the test score sees the future."""
    try:
        from sklearn.model_selection import TimeSeriesSplit
    except ImportError:  # pragma: no cover (scikit-learn is a dependency)
        return
    if isinstance(cv, TimeSeriesSplit) and "test" in getattr(data, "carved_at_random", ()):
        warn(f"cv={describe(cv)} keeps each fold's validation rows after its training rows, but this data set's "
             f"test split was carved at random: its rows lie between the training rows in time. For a series, "
             f"carve in order with vt.Dataset.from_arrays(..., shuffle=False) (validation and test the last rows), "
             f"or give test= yourself.")


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
