"""Per-member early stopping: the settings, the rule the compiled program applies every epoch, and
the packing of the survivors between chunks (a decision, like a strategy's).

A member whose monitored value (validation score or loss, or its training loss) has not
improved by more than `min_delta` for `patience` epochs is frozen (an exact no-op from then on)
and marked stopped. `Compaction` then
takes stopped members out of the population, so the members still training fill as few blocks as
possible (or a smaller population, where that pays: vmaptune/packing.py); results are the same
as without it.
"""

from __future__ import annotations

import dataclasses
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.arguments import checked_arguments
from vmaptune.checkpoint import repr_without_unset
from vmaptune.decisions import Decision, Snapshot
from vmaptune.state import Status


#: What early stopping may watch: the validation score or loss, or the training loss.
MONITORS = ("score", "loss", "train_loss")


#: Keras' monitor names -> vmaptune's (Keras' plain "loss" is the training loss: train_loss here).
KERAS_MONITORS = {"val_loss": "loss", "val_score": "score", "val_accuracy": "score"}


@checked_arguments("vt.EarlyStopping(patience=5, monitor='loss')", {
    "mode": "vmaptune knows each monitor's direction (a score higher, a loss lower is better): there is no mode "
            "to give.",
    "baseline": "a member is compared with its own best so far only; there is no baseline.",
    "start_from_epoch": "every epoch counts; raise patience to give members longer.",
    "verbose": "the results table says when each member stopped (status 'stopped', epochs_trained)."})
@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Per-member early stopping, as Keras' callback: a member whose monitored value has not
    improved by more than `min_delta` for `patience` epochs is frozen (an exact no-op from then
    on); an epoch whose monitored value is not finite (a metric undefined there) is not counted.
    monitor: "score" (the tuned validation metric), "loss" (validation loss) or "train_loss":
    the epoch's mean training loss, scikit-learn's convergence test for its MLPs (`tol`,
    `n_iter_no_change`): it reads no validation data to decide when a member stops (the score a
    search ranks by is still its best validation epoch, as for every monitor; a score read at
    the epoch the monitor chose: validation_fraction, below).
    restore_best_weights: keep a copy of each member's weights from its best monitored epoch
    (costs a second copy; with a min_delta, the last epoch that improved by more than it, as Keras
    keeps them; with monitor "loss" or "train_loss", the lowest loss's epoch, which need not be
    best_epoch). It matters where a member's own weights are the model: the scikit-learn
    estimators' fit (early_stopping=True sets it) and a PopulationRun run by hand
    (state.members.best_params). vt.tune never reads the copy: a member's score is its best
    epoch's either way, and its models (refit=) are retrained to best_epoch on train +
    validation, so there it only costs memory (it says so once).
    compact_below: once the share of members still training is this or under, stopped members
    leave the population between chunks: the survivors are regrouped into the fewest blocks, or
    packed into a smaller population where the compute saved outweighs a compile (1: as soon as
    one stops; 0: never).
    validation_fraction: None (watch the validation rows: under cv each fold's held-out rows,
    the rows it is scored on), or a share in (0, 1), with cv only: hold that share of each
    fold's training rows out of its training and watch them instead. A fold's score is then
    read at the epoch its own held-out rows chose, so the cross-validated score stays an
    unbiased estimate (the best epoch of the scored rows would be a maximum over noisy epochs).
    scikit-learn's MLP (early_stopping=True) and a Keras model given its own validation data
    stop the same way inside a cross-validated search. On small data watch the loss there: a
    few dozen rows' accuracy moves in steps, and a patience on it stops at the first plateau.
    counting: None (Keras': the best moves only on an improvement of more than min_delta, and a
    member stops after `patience` epochs without one) or "scikit-learn" (its MLPs' `tol` and
    `n_iter_no_change`: the best, and the best weights, move on any improvement, the count of
    epochs without one of at least min_delta resets on one, and a member stops once the count
    exceeds patience); the scikit-learn estimators use the latter."""

    patience: int = 5
    min_delta: float = 0.0
    monitor: str = "score"
    restore_best_weights: bool = False
    compact_below: float = 1.0
    validation_fraction: float | None = None
    counting: str | None = None

    def __post_init__(self):
        if isinstance(self.patience, bool) or not isinstance(self.patience, numbers.Integral) or self.patience < 1:
            raise ValueError(f"EarlyStopping(patience={self.patience!r}): patience must be an integer >= 1 "
                             "(epochs without improvement before a member stops).")
        if not isinstance(self.min_delta, numbers.Real) or not self.min_delta >= 0:
            raise ValueError(f"EarlyStopping(min_delta={self.min_delta!r}): min_delta must be a number >= 0.")
        if not isinstance(self.restore_best_weights, (bool, np.bool_)):
            raise TypeError(f"EarlyStopping(restore_best_weights={self.restore_best_weights!r}): give True or False.")
        object.__setattr__(self, "restore_best_weights", bool(self.restore_best_weights))
        if self.monitor in KERAS_MONITORS:  # (Keras' names for the same things)
            object.__setattr__(self, "monitor", KERAS_MONITORS[self.monitor])
        if self.monitor not in MONITORS:
            raise ValueError(f"EarlyStopping(monitor={self.monitor!r}): monitor must be one of {MONITORS} "
                             "(validation score, validation loss, training loss; Keras' 'val_loss' is 'loss' here, "
                             "its 'val_<metric>' is 'score', its 'loss' is 'train_loss').")
        if not isinstance(self.compact_below, numbers.Real) or not 0.0 <= float(self.compact_below) <= 1.0:
            raise ValueError(f"EarlyStopping(compact_below={self.compact_below!r}): must be a share in [0, 1] "
                             f"(1: take stopped members out as soon as one stops, 0: never).")
        share = self.validation_fraction
        if share is not None and (isinstance(share, bool) or not isinstance(share, numbers.Real)
                                  or not 0.0 < float(share) < 1.0):
            raise ValueError(f"EarlyStopping(validation_fraction={share!r}): give a share of each fold's training "
                             f"rows in (0, 1), such as 0.1, or None to watch the validation rows.")
        if self.counting not in (None, "scikit-learn"):
            raise ValueError(f"EarlyStopping(counting={self.counting!r}): give None (Keras' rule) or 'scikit-learn' "
                             f"(its MLPs' tol and n_iter_no_change).")
        if share is not None and self.monitor == "train_loss":
            raise ValueError(f"EarlyStopping(monitor='train_loss', validation_fraction={share!r}): the training "
                             f"loss reads no held-out rows; drop validation_fraction or monitor 'score' / 'loss'.")

    def __repr__(self) -> str:
        """The dataclass's, without validation_fraction while it is None (older run directories resume)."""
        return repr_without_unset(self, ("validation_fraction", "counting"))


def track(rule: EarlyStopping | None, status: Status, val_loss: jax.Array, val_score: jax.Array,
          train_loss: jax.Array | None = None) -> tuple[Status, jax.Array]:
    """One epoch of the rule, inside the program. status.active must already exclude members that
    diverged this epoch; train_loss: (P,) the epoch's mean training loss. -> (status with
    since_best, monitor_best, stopped and active updated; (P,) bool `better`: the monitored value
    improved, so this epoch's weights are the best). Without a rule the records are kept (the
    score is monitored) but nobody stops."""
    monitor, min_delta = ("score", 0.0) if rule is None else (rule.monitor, float(rule.min_delta))
    monitored = {"score": lambda: val_score, "loss": lambda: -val_loss, "train_loss": lambda: -train_loss}[monitor]()
    active = status.active
    if rule is not None and rule.counting == "scikit-learn":  # (MLPClassifier._update_no_improvement_count)
        better = active & (monitored > status.monitor_best)  # the best (and its weights) on any improvement
        enough = active & (monitored >= status.monitor_best + min_delta)  # the count's reset
        beyond = 1  # it stops once the count exceeds n_iter_no_change
    else:
        better = enough = active & (monitored > status.monitor_best + min_delta)
        beyond = 0
    # an epoch without a value to compare (a metric undefined there: 0/0 precision before the first
    # positive prediction) is no epoch without improvement: it counts toward no patience
    counted = active & jnp.isfinite(monitored)
    since_best = jnp.where(enough, 0, jnp.where(counted, status.since_best + 1, status.since_best))
    stop = active & (since_best >= rule.patience + beyond) if rule is not None else jnp.zeros_like(active)
    return status.replace(active=active & ~stop, stopped=status.stopped | stop, since_best=since_best,
                          monitor_best=jnp.where(better, monitored, status.monitor_best)), better


@dataclasses.dataclass(frozen=True)
class Compaction:
    """Takes members that no longer train (stopped, diverged, out of budget) out of the population
    once those still training are `below` of its members or fewer; the population lays the rows
    left out as is cheapest (vmaptune/packing.py)."""

    below: float = 1.0

    def decision_epochs(self, epochs: int) -> None:
        return None  # looks after every chunk

    def decide(self, snapshot: Snapshot) -> Decision | None:
        held = snapshot.in_population
        training = snapshot.active & held
        n = int(training.sum())
        if n == int(held.sum()) or n > self.below * len(held):
            return None
        return Decision(keep=np.flatnonzero(training))
