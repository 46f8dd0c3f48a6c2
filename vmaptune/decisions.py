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
from typing import Any, Collection, Mapping, Protocol

import numpy as np

from vmaptune.space import Choice, IntLogUniform, LogUniform, OneMinusLogUniform, Space, numeric_bounds
from vmaptune.warn import warn


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
    any_stopped: (n,) bool, settings one of whose splits (cv folds, seeds) stopped, where `stopped`
      says all did; None: as `stopped` (no splits).
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
    any_stopped: np.ndarray | None = None

    @classmethod
    def make(cls, **fields) -> "Snapshot":
        """A snapshot whose arrays are read-only copies."""
        for name in ("active", "diverged", "stopped", "best_score", "best_epoch", "in_population"):
            fields[name] = _frozen(fields[name])
        fields["curves"] = {k: _frozen(v) for k, v in fields["curves"].items()}
        fields["hp"] = {k: _frozen(v) for k, v in fields["hp"].items()}
        if fields.get("any_stopped") is not None:
            fields["any_stopped"] = _frozen(fields["any_stopped"])
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
    copy_from: (n,) member whose training state each member takes over: weights, optimizer and
      model state, hyperparameters (structural ones included: the network travels with its
      weights), whether it is active, and its record: the curves and best score so far of the
      network it now carries (its lineage), so that the table's score, best epoch and epochs
      trained describe the network the member ends with, which a refit replays; itself =
      unchanged. Not its random key: a copy draws its own dropout masks (and batch order under
      shared_order=False). Sources must be in the population, and in its program (`TrainingContext.programs`).
    hp: name -> (n,) numeric hyperparameter values, written for the members in `update`
      (and into their optimizer state: a new learning rate applies from the next step). Only
      names that are not structural (`TrainingContext.structural`), finite, valid on the
      distribution's scale (> 0 on a log scale); a value outside the space's range is used as
      given, with a warning.
    update: (n,) bool, the members `hp` applies to (default: every member); a member that no
      longer trains (stopped, frozen, packed out, diverged, its budget spent) keeps the values
      it trained with (its row, its refit and tell read them).
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
    different programs have different structures, so one cannot copy another: set
    `copies_members = True` on the strategy to keep one program). space: the search space."""

    epochs: int
    structural: frozenset[str] = frozenset()
    members: int | None = None
    programs: int = 1
    space: Space | None = None


def hook_result(owner: str, hook: str, out: Any) -> tuple[Any, "Decision | None"]:
    """A strategy hook's (state, decision) return value, or an error that names the hook."""
    if isinstance(out, tuple) and len(out) == 2 and (out[1] is None or isinstance(out[1], Decision)):
        if out[0] is None:  # (a forgotten return: it was said by end_training, after the round had trained)
            got = "None" if out[1] is None else "a vt.Decision"
            raise TypeError(f"{owner}.{hook} returned (None, {got}): return the strategy's state first (`return "
                            f"state, decision`; strategies pass their state explicitly).")
        return out
    got = f"a {type(out).__name__}" if not isinstance(out, tuple) else f"a tuple of {len(out)}"
    raise TypeError(f"{owner}.{hook} must return (state, vt.Decision or None), got {got}: {_short(out)}. Return "
                    f"`state, None` for no change.")


def end_result(owner: str, out: Any) -> Any:
    """end_training's state, or an error when it returned (state, decision) like the other hooks
    (or None: a forgotten return)."""
    if out is None:
        raise TypeError(f"{owner}.end_training returned None: return the strategy's state (`return state`; "
                        f"strategies pass their state explicitly).")
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Decision):
        raise TypeError(f"{owner}.end_training must return the state only, got (state, {_short(out[1])}): after the "
                        f"last epoch there is nothing left to apply a decision to.")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_decision(owner: str, hook: str, decision: "Decision | None", context: TrainingContext,
                   current: Mapping[str, np.ndarray], warned: set[str]) -> None:
    """Refuses a decision's hyperparameter values the engine cannot apply as asked: a new value of
    a structural name (fixed when a member is built; `current`: (n,) each member's values now,
    which copy_from carries), a value that is not finite or not on the distribution's scale, a
    categorical index out of range, a numeric choice's value that is not an option. Warns (once
    per name, names added to `warned`) about values outside the space's range. Shapes and indices
    are the engine's to check (`PopulationRun.apply`)."""
    if decision is not None and decision.update is not None and not decision.hp:  # (it would do nothing)
        given = "a dict" if isinstance(decision.update, Mapping) else "no hp"
        raise ValueError(f"{owner}.{hook}: Decision.update is given with {given}: update is the (n,) bool mask of the "
                         f"members that Decision.hp's values apply to. Give the values as hp={{name: (n,) values}} "
                         f"(and update=mask to change some members only).")
    if decision is None or not decision.hp:
        return
    changed = _changed_structure(decision, context.structural, current)
    if changed:
        raise ValueError(f"{owner}.{hook}: Decision.hp changes {changed}, which are fixed when a member is built "
                         f"(its network, optimizer kind and schedule, batch size) and cannot change during training. "
                         f"Copy a member that has the value you want (Decision.copy_from), or ask for it in the "
                         f"next round.")
    for name, values in decision.hp.items():
        if context.space is not None and name in context.space:  # (an unknown name: the engine lists the names)
            _check_values(f"{owner}.{hook}: Decision.hp[{name!r}]", context.space[name], np.asarray(values),
                          warn_once=name not in warned)
            warned.add(name)


def _changed_structure(decision: "Decision", structural: Collection[str],
                       current: Mapping[str, np.ndarray]) -> list[str]:
    """Structural names the decision gives a value other than the one each member has, or gets
    from the member it copies (PBTReplay sets every name, structural ones unchanged)."""
    changed = []
    for name in sorted(set(decision.hp) & set(structural)):
        if name not in current:
            changed.append(name)
            continue
        now = np.asarray(current[name])
        source = np.arange(len(now)) if decision.copy_from is None else np.asarray(decision.copy_from, np.int64)
        update = np.ones(len(now), bool) if decision.update is None else np.asarray(decision.update, bool)
        try:
            if (np.asarray(decision.hp[name]) != now[source])[update].any():
                changed.append(name)
        except (IndexError, ValueError):  # a malformed decision: the engine's shape and index errors say so
            continue
    return changed


def _check_values(where: str, dist, values: np.ndarray, warn_once: bool) -> None:
    """Raises for values `dist` cannot take as a training value; warns (if `warn_once`) for values
    outside its range."""
    shown = lambda bad: f"{values[bad][:3].tolist()} (members {np.flatnonzero(bad)[:3].tolist()})"
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise ValueError(f"{where} must be numbers (one per member), got dtype {values.dtype}.")
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{where} holds {shown(bad)}: values must be finite.")
    if dist.kind == "categorical" and not getattr(dist, "gathers", False):
        bad = (values != np.round(values)) | (values < 0) | (values >= len(dist.options))
        if bad.any():
            raise ValueError(f"{where} holds {shown(bad)}: a categorical value is an index into "
                             f"{list(dist.options)}, 0..{len(dist.options) - 1}.")
        return
    if isinstance(dist, Choice):
        options = np.asarray(dist.values()).astype(values.dtype)
        bad = ~np.isin(values, options)
        if bad.any():
            raise ValueError(f"{where} holds {shown(bad)}, not among the options of {dist!r}: a Choice takes its "
                             f"options only. For a range a strategy may move in, use vt.LogUniform / vt.Uniform.")
        return
    if isinstance(dist, (LogUniform, IntLogUniform)) and (values <= 0).any():
        raise ValueError(f"{where} holds {shown(values <= 0)}: {dist!r} is on a log scale, values must be > 0.")
    if isinstance(dist, OneMinusLogUniform) and (values >= 1).any():
        raise ValueError(f"{where} holds {shown(values >= 1)}: {dist!r} is on a log scale of 1 - x, values must "
                         f"be < 1.")
    low, high = numeric_bounds(dist)
    dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float64  # (float32 bounds round up)
    bad = (values < np.asarray(low, dtype)) | (values > np.asarray(high, dtype))
    if bad.any() and warn_once:
        warn(f"{where} holds {shown(bad)}, outside the space's {dist!r}; they are used as given.",
             UserWarning)


class Decider(Protocol):
    """Anything that decides during training (a strategy's adapter, early-stop packing)."""

    def decision_epochs(self, epochs: int) -> Collection[int] | None:
        """Epochs (1 .. epochs - 1) after which `decide` must see the population: chunks are cut
        there. None: after every chunk."""

    def decide(self, snapshot: Snapshot) -> Decision | None:
        """The decision for this point of training, or None for no change."""
