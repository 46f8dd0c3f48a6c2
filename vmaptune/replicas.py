"""Cross-validation folds and repeated seeds as extra population axes.

A round of P settings with `cv=K` folds and `seeds=R` initialisations is trained as one
population of K * P * R slots (slot = (fold * P + member) * R + repeat). Slot member ids are
`member_id * R + repeat`, so every fold of a setting starts from the same weights (as sklearn
clones one estimator per fold) and each repeat from its own. After training, slots are folded back
into one row per setting: its curve is the mean over folds and repeats, its score the best epoch
of that mean curve, with the spread over the splits reported beside it.

A strategy that decides during training (successive halving, PBT) decides per setting, never per
slot: it sees the population folded the same way (`member_snapshot`), and its decision is spread
back over each setting's slots (`slot_decision`), so a setting's folds are kept, pruned, frozen or
given new values together, and a copy takes the source setting's state fold by fold.
"""

from __future__ import annotations

import dataclasses
import zlib

import jax.numpy as jnp
import numpy as np

from vmaptune.cv_splits import Splits
from vmaptune.data import Dataset, mean_std, scale_or_one
from vmaptune.decisions import Decision, Snapshot
from vmaptune.engine import DataArrays, FoldScaling


@dataclasses.dataclass(frozen=True)
class Replicas:
    """stop_split: early stopping watched rows held out of each fold's training
    (EarlyStopping(validation_fraction=...)): each split is then scored at its own best epoch."""

    population: int
    folds: int = 1
    seeds: int = 1
    stop_split: bool = False

    @property
    def splits(self) -> int:
        return self.folds * self.seeds

    @property
    def size(self) -> int:
        return self.folds * self.population * self.seeds

    def slot_layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(member, fold, repeat) of every slot, each (size,)."""
        slot = np.arange(self.size)
        return (slot // self.seeds) % self.population, slot // (self.population * self.seeds), slot % self.seeds

    def expand(self, numeric_hp, ids):
        """Member arrays (P,) -> slot arrays (K * P * R,): (hp, member ids, folds)."""
        member, fold, repeat = self.slot_layout()
        hp = {k: np.asarray(v)[member] for k, v in numeric_hp.items()}  # host arrays: nothing to compile
        slot_ids = np.asarray(ids)[member] * self.seeds + repeat
        return hp, slot_ids, fold

    def by_member(self, a) -> np.ndarray:
        """Slot array (size, ...) -> (P, K * R, ...): each member's splits."""
        a = np.asarray(a)
        a = a.reshape((self.folds, self.population, self.seeds) + a.shape[1:])
        return np.moveaxis(a, 1, 0).reshape((self.population, self.splits) + a.shape[3:])

    def member_values(self, hp: dict) -> dict:
        """Slot values name -> (size,) -> each setting's, name -> (P,) (its splits train with its own)."""
        return {k: self.by_member(v)[:, 0] for k, v in hp.items()}

    def mean(self, curves: dict) -> dict:
        """Slot curves (size, epochs) -> each member's mean over its splits (P, epochs)."""
        return {k: self.by_member(v).mean(axis=1) for k, v in curves.items()}

    def aggregate(self, final: dict, curves: dict) -> tuple[dict, dict]:
        """Slot status and curves -> one row per member.

        best_score / best_epoch: of the mean validation curve over the splits (with stop_split:
        the mean of the splits' scores at their own best epochs, and their mean epoch); score_std
        and split_scores (P, K * R): the splits' scores at that epoch; split_final_scores (P, K * R):
        each split's score at its last epoch trained. diverged: any split diverged; stopped:
        every split stopped early; epochs_trained: the most epochs a split trained. The mean
        training curve runs as long: a split that stopped early stands at its last training loss
        (as its validation score stands at its last), so the curve and final_train_loss follow
        the setting's epochs_trained; a diverged split leaves it NaN from there."""
        by_member = self.by_member
        split_curves = {k: by_member(v) for k, v in curves.items()}
        diverged = by_member(final["diverged"]).any(axis=1)
        trained = np.isfinite(split_curves["train_loss"]).sum(axis=2).max(axis=1)
        held = {**split_curves, "train_loss": np.where(diverged[:, None, None], split_curves["train_loss"],
                                                        held_until(split_curves["train_loss"], trained))}
        mean = {k: v.mean(axis=1) for k, v in held.items()}  # NaN in any split stays NaN
        for name in ("val_score", "val_loss"):  # (a row that never trained is still evaluated where its block trains)
            if name in mean:
                mean[name] = np.where((trained == 0)[:, None], np.nan, mean[name])
        if self.stop_split:  # each split at the epoch its own held-out rows chose (status best_*)
            split_scores = by_member(final["best_score"]).astype(np.float64)
            split_scores = np.where(by_member(final["best_epoch"]) > 0, split_scores, np.nan)
            best = split_scores.mean(axis=1)  # a split that never scored leaves NaN
            best_epoch = np.rint(by_member(final["best_epoch"]).mean(axis=1)).astype(int) - 1
        else:
            # (only epochs it trained: a row frozen before its first step is still evaluated where its block trains)
            score_curve = np.where(np.isfinite(mean["val_score"]) & np.isfinite(mean["train_loss"]),
                                   mean["val_score"], -np.inf)
            best_epoch = np.argmax(score_curve, axis=1)
            rows = np.arange(self.population)
            best = score_curve[rows, best_epoch]
            split_scores = split_curves["val_score"][rows, :, best_epoch]
        out = {
            "diverged": by_member(final["diverged"]).any(axis=1),
            "stopped": by_member(final["stopped"]).all(axis=1),
            "best_score": np.where(np.isfinite(best), best, np.nan).astype(np.float32),
            "best_epoch": np.where(np.isfinite(best), best_epoch + 1, 0).astype(np.int32),
            # (in float64: a fold that blew up without going non-finite scores about -1e26, whose square overflows)
            "score_std": (split_scores.astype(np.float64).std(axis=1).astype(np.float32) if self.splits > 1
                          else np.zeros(self.population, np.float32)),
            "epochs_trained": trained.astype(np.int32),
        }
        if "active" in final:  # trains on: any split does
            out["active"] = by_member(final["active"]).any(axis=1)
        mean["split_scores"] = split_scores
        mean["split_final_scores"] = last_finite(split_curves["val_score"])
        return out, mean


    # -- decisions during training, per setting ------------------------------------------------------------
    def member_snapshot(self, snapshot: Snapshot) -> Snapshot:
        """A snapshot of the (size,) slots -> one of the (P,) settings: curves are the splits' mean,
        best score and epoch those of the results (`aggregate`), a setting is active or in the
        population while any of its splits is, diverged when any split diverged, stopped when all
        did; hp are its own (every split trains with them). Engine totals (rows, row_epochs,
        member_epochs) stay those of the slots."""
        if self.splits == 1:
            return snapshot
        any_split = lambda a: self.by_member(a).any(axis=1)
        best = np.full(self.population, -np.inf, np.float32)
        best_epoch = np.zeros(self.population, np.int32)
        curves = {k: self.by_member(v).mean(axis=1) for k, v in snapshot.curves.items()}
        status = {"diverged": any_split(snapshot.diverged), "stopped": self.by_member(snapshot.stopped).all(axis=1)}
        if snapshot.epochs_done:
            final = {k: getattr(snapshot, k) for k in ("diverged", "stopped", "best_score", "best_epoch")}
            status, _ = self.aggregate(final, dict(snapshot.curves))
            scored = np.isfinite(status["best_score"])
            best = np.where(scored, status["best_score"], -np.inf).astype(np.float32)  # the engine's "none yet"
            best_epoch = status["best_epoch"]
        return Snapshot.make(epochs_done=snapshot.epochs_done, epochs=snapshot.epochs, curves=curves,
                             active=any_split(snapshot.active), diverged=status["diverged"],
                             stopped=status["stopped"], best_score=best, best_epoch=best_epoch,
                             in_population=any_split(snapshot.in_population),
                             hp=self.member_values(snapshot.hp), rows=snapshot.rows,
                             row_epochs=snapshot.row_epochs, member_epochs=snapshot.member_epochs,
                             any_stopped=any_split(snapshot.stopped))

    def slot_decision(self, decision: Decision | None) -> Decision | None:
        """A decision about the (P,) settings -> the same decision about their (size,) slots: keep
        keeps every split of a setting, copy_from takes the source setting's same fold and repeat,
        per-setting arrays (hp, update, freeze, budget) apply to each of its splits."""
        if decision is None or self.splits == 1:
            return decision
        member, fold, repeat = self.slot_layout()
        fields = {name: self._per_setting(name, getattr(decision, name))[member]
                  for name in ("update", "freeze", "budget") if getattr(decision, name) is not None}
        if decision.keep is not None:
            fields["keep"] = np.flatnonzero(np.isin(member, self._settings("keep", decision.keep)))
        if decision.copy_from is not None:
            source = self._settings("copy_from", self._per_setting("copy_from", decision.copy_from))[member]
            fields["copy_from"] = (fold * self.population + source) * self.seeds + repeat
        if decision.hp is not None:
            fields["hp"] = {k: self._per_setting(f"hp[{k!r}]", v)[member] for k, v in decision.hp.items()}
        return Decision(**fields)

    def _per_setting(self, name: str, value) -> np.ndarray:
        value = np.asarray(value)
        if value.ndim == 0 or len(value) != self.population:
            raise ValueError(f"Decision.{name} has shape {value.shape}; give one entry per setting asked "
                             f"({self.population},): under cv / seeds the engine spreads it over their splits.")
        return value

    def _settings(self, name: str, value) -> np.ndarray:
        value = np.asarray(value, int)
        outside = sorted(set(value[(value < 0) | (value >= self.population)].tolist()))
        if outside:
            raise ValueError(f"Decision.{name} names settings {outside}; the population holds settings "
                             f"0..{self.population - 1}.")
        return value


def held_until(curves: np.ndarray, epochs) -> np.ndarray:
    """(P, K, E) curves, (P,) epochs -> each curve's NaN after its last finite value filled with
    that value up to epoch `epochs` of its row (a stopped split standing still); NaN after."""
    e = curves.shape[-1]
    seen = np.maximum.accumulate(np.where(np.isfinite(curves), np.arange(e), -1), axis=-1)
    value = np.take_along_axis(curves, np.maximum(seen, 0), axis=-1)
    within = np.arange(e) < np.asarray(epochs)[:, None, None]
    return np.where((seen >= 0) & within, value, np.nan).astype(curves.dtype)


def last_finite(curves: np.ndarray) -> np.ndarray:
    """(..., epochs) -> (...): the last finite value of each curve (NaN where there is none)."""
    finite = np.isfinite(curves)
    last = curves.shape[-1] - 1 - np.argmax(finite[..., ::-1], axis=-1)
    value = np.take_along_axis(curves, last[..., None], axis=-1)[..., 0]
    return np.where(finite.any(axis=-1), value, np.nan)


def _stop_rows(n_train: int, stop_fraction: float | None) -> int:
    return 0 if not stop_fraction else min(max(1, round(stop_fraction * n_train)), n_train - 1)


def _fold_rows(data: Dataset, folds: int, seed: int, splits: Splits | None) -> tuple[list, list, np.ndarray | None]:
    """Each fold's (held-out rows, training rows), and the (n_pool,) fold assignment (None for
    folds you gave: a row may be held out by several or none). The held-out rows keep their order
    (yours, or the pool's): a metric of yours may read them in order (differences over time); the
    training rows are in random order, drawn from the seed and the rows themselves: a fold trains
    on the same order whatever other folds are beside it (a search over one of your splits equals
    that split's fold in a search over all of them)."""
    if splits is not None:
        held, train = [val for _, val in splits.pairs], [train for train, _ in splits.pairs]
    else:
        fold = data.folds(folds, seed)
        held = [np.flatnonzero(fold == f) for f in range(folds)]
        train = [np.flatnonzero(fold != f) for f in range(folds)]
    order = [np.random.default_rng([seed + 1, zlib.crc32(np.asarray(t, np.int64).tobytes())]).permutation(t)
             for t in train]
    return held, order, None if splits is not None else fold


def cv_arrays(data: Dataset, folds: int, seed: int, stop_fraction: float | None = None,
              splits: Splits | None = None) -> tuple[DataArrays, np.ndarray | None]:
    """Device arrays for K-fold cross-validation over train + validation (never test).

    Every fold trains on all its training rows (folds of different sizes, such as
    TimeSeriesSplit's growing windows, pad to the largest: a member of a smaller fold takes its own
    fold's steps per epoch and sits out the rest, DataArrays.fold_rows) and is scored on all its
    held-out rows (folds holding out different numbers pad to the largest: DataArrays.val_counts),
    so one program serves all folds. Each fold is standardised with its own training
    rows' statistics (FoldScaling: its inputs, and a regression's targets), so nothing of its
    held-out rows, their targets' mean included, reaches its training.
    stop_fraction: that share of each fold's training rows is held out of its training, and early
    stopping watches as many of them as the smallest fold holds out (DataArrays.stop_rows;
    EarlyStopping(validation_fraction=...)).
    splits: your own folds (vmaptune/cv_splits.py) instead of `folds` dealt by `seed`.
    Returns the arrays and the (n_pool,) fold assignment (None for your own folds)."""
    X, y = data.pool()
    held, train, fold = _fold_rows(data, folds, seed, splits)
    stops = [_stop_rows(len(t), stop_fraction) for t in train]  # each fold's own share
    n_stop = min(stops)
    counts = [len(t) - k for t, k in zip(train, stops)]
    # the training rows are in random order: each fold's first stops[k] are held out of its training,
    # and early stopping watches the first n_stop of them (as many in every fold: one program scores all)
    # (a smaller fold's list is padded with its last row, at positions its members never reach)
    train_rows = jnp.asarray(np.stack([np.pad(t[k:], (0, max(counts) - c), mode="edge")
                                       for t, k, c in zip(train, stops, counts)]), jnp.int32)
    fold_rows = None if len(set(counts)) == 1 else tuple(counts)
    scaling = fold_scaling(X, y, train, data.task, data.pool_weights()) if data.standardized else None
    # a smaller fold's held-out rows are padded with its last row, past the count it is scored on
    n_held = [len(h) for h in held]
    val_rows = jnp.asarray(np.stack([np.pad(h, (0, max(n_held) - len(h)), mode="edge") for h in held]), jnp.int32)
    val_counts = None if len(set(n_held)) == 1 else tuple(n_held)
    stop_rows = jnp.asarray(np.stack([t[:n_stop] for t in train]), jnp.int32) if n_stop else None
    return DataArrays(X, y, X, y, train_rows=train_rows, val_rows=val_rows, stop_rows=stop_rows,
                      fold_rows=fold_rows, scaling=scaling, val_counts=val_counts, w_train=data.pool_weights()), fold


def fold_scaling(X, y, train: list[np.ndarray], task: str, weights=None) -> FoldScaling:
    """Each fold's standardisation from all its training rows (those early stopping watches too, as
    a scaler fitted on a fold's training rows has it), over the pool's already scaled values:
    inputs unless they are token ids, and regression targets. weights: the pool's row weights
    (sample_weight), which weigh the statistics as they weigh the loss, or None."""
    w = None if weights is None else np.asarray(weights, np.float64)

    def moments(a: np.ndarray):
        stats = [mean_std(a[rows], None if w is None else w[rows]) for rows in train]
        shift, scale = (np.stack(s) for s in zip(*stats))
        return jnp.asarray(shift, jnp.float32), jnp.asarray(scale_or_one(scale, shift), jnp.float32)

    X = np.asarray(X, np.float64) if jnp.issubdtype(X.dtype, jnp.floating) else None
    x_shift, x_scale = (None, None) if X is None else moments(X)
    if task != "regression":
        return FoldScaling(x_shift, x_scale)
    y = np.asarray(y, np.float64)
    y_shift, y_scale = moments(y.reshape(len(y), -1))  # (K, k): broadcast over a member's (n, k) outputs
    return FoldScaling(x_shift, x_scale, y_shift, y_scale)
