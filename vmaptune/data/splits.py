"""The validation and test splits carved from a Dataset's rows: shuffled and stratified by class
(seeded), or in order as for a time series; warnings for classes a carve leaves out."""

from __future__ import annotations


import numpy as np

from vmaptune.warn import warn

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


def _split_in_order(n: int, val_fraction: float, test_fraction: float):
    """Train / val / test row indices in X's order: the first rows, the next, the last."""
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    rows = np.arange(n)
    return rows[:n - n_val - n_test], rows[n - n_val - n_test:n - n_test], rows[n - n_test:]
