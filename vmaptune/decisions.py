"""Decisions taken while a population trains, as data: strategies decide, the engine applies.

Between chunks the engine shows whoever decides (PBT, successive halving, the driver's early-stop
packing, a replayed schedule) a read-only `Snapshot` of the population, and takes back a
`Decision`: which members stay in the population, whose training state each member takes over,
new hyperparameter values, members to freeze, per-member epoch budgets. Only the engine
(`PopulationRun.apply`) gathers rows, packs the population and writes optimizer state.

Both speak of members by their index 0..n-1 in the population asked for, never of device rows:
packing and padding are the engine's business.
"""

from __future__ import annotations

import dataclasses
from typing import Collection, Mapping, Protocol

import numpy as np


def _frozen(array) -> np.ndarray:
    out = np.array(array, copy=True)
    out.setflags(write=False)
    return out


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The population between two chunks (host copies, read-only). n = members asked for.

    epochs_done: epochs trained so far (the same for every member still in the population).
    epochs: epochs planned for the whole run.
    curves: name -> (n, epochs_done): train_loss, val_loss, val_score (NaN where a member did not
      train or was not scored; members taken out keep their last validation values).
    active, diverged, stopped: (n,) bool. best_score: (n,) float32 (-inf before a finite score,
      NaN never); best_epoch: (n,) int32.
    in_population: (n,) bool, members that still hold a row (not packed out).
    hp: name -> (n,) the numeric hyperparameters each member trains with now.
    rows: device rows the population occupies now (members, plus frozen fillers after packing).
    row_epochs: rows x epochs computed so far; member_epochs: members in the population x epochs.
    """

    epochs_done: int
    epochs: int
    curves: Mapping[str, np.ndarray]
    active: np.ndarray
    diverged: np.ndarray
    stopped: np.ndarray
    best_score: np.ndarray
    best_epoch: np.ndarray
    in_population: np.ndarray
    hp: Mapping[str, np.ndarray]
    rows: int
    row_epochs: int = 0
    member_epochs: int = 0

    @classmethod
    def make(cls, **fields) -> "Snapshot":
        """A snapshot whose arrays are read-only copies."""
        for name in ("active", "diverged", "stopped", "best_score", "best_epoch", "in_population"):
            fields[name] = _frozen(fields[name])
        fields["curves"] = {k: _frozen(v) for k, v in fields["curves"].items()}
        fields["hp"] = {k: _frozen(v) for k, v in fields["hp"].items()}
        return cls(**fields)

    @property
    def size(self) -> int:
        return len(self.active)

    @property
    def latest_score(self) -> np.ndarray:
        """(n,) validation score of the last epoch trained (NaN when there is none)."""
        if self.epochs_done == 0:
            return np.full(self.size, np.nan, np.float32)
        return self.curves["val_score"][:, self.epochs_done - 1]

    @property
    def best_so_far(self) -> np.ndarray:
        """(n,) each member's best validation score so far, NaN for failed or unscored members."""
        ok = ~self.diverged & np.isfinite(self.best_score)
        return np.where(ok, self.best_score, np.nan).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Decision:
    """What to change before the next chunk; every field optional. Applied in this order:

    keep: member indices that stay in the population; the others are packed out (frozen for
      good, their records kept). The population lays the rows left out as is cheapest: members
      still training regrouped into the fewest blocks, or a smaller power-of-two population
      where that pays for its compile (vmaptune/packing.py).
    copy_from: (n,) member whose training state each member takes over (weights, optimizer and
      model state, status and records; itself = unchanged). Sources must be in the population.
    hp: name -> (n,) numeric hyperparameter values, written for the members in `update`
      (and into their optimizer state: a new learning rate applies from the next step).
    update: (n,) bool, the members `hp` applies to (default: every member).
    freeze: (n,) bool, members to freeze now (an exact no-op from here on).
    budget: (n,) int, total epochs each member may train; it is frozen once it has trained them.
    """

    keep: np.ndarray | None = None
    copy_from: np.ndarray | None = None
    hp: Mapping[str, np.ndarray] | None = None
    update: np.ndarray | None = None
    freeze: np.ndarray | None = None
    budget: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))


@dataclasses.dataclass(frozen=True)
class TrainingContext:
    """What a strategy that acts during training is told before its population trains.

    epochs: epochs the round trains. structural: hyperparameter names fixed when a member is built
    (its network, optimizer kind and schedule shape, batch size): they travel with copied weights
    and cannot change during training. members: how many members the round trains (None: not
    known to the caller). programs: how many compiled programs they train in (members of
    different programs have different structures, so one cannot copy another)."""

    epochs: int
    structural: frozenset[str] = frozenset()
    members: int | None = None
    programs: int = 1


class Decider(Protocol):
    """Anything that decides during training (a strategy's adapter, early-stop packing)."""

    def decision_epochs(self, epochs: int) -> Collection[int] | None:
        """Epochs (1 .. epochs - 1) after which `decide` must see the population: chunks are cut
        there. None: after every chunk."""

    def decide(self, snapshot: Snapshot) -> Decision | None:
        """The decision for this point of training, or None for no change."""
