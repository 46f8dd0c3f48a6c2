"""Successive halving and Hyperband (Jamieson & Talwalkar 2016; Li et al. 2017), budgets in epochs.

Successive halving trains a population for a rung's budget, keeps the top 1/eta (ranked by each
member's best validation score so far; failed members last, and never kept), trains the survivors
on to the next rung's budget, and so on. Rung i of a bracket with s halvings trains to

    r_i = round(R * eta ** (i - s)) epochs with n_i = floor(n_0 / eta ** i) members,

so the last rung trains its survivors to R = max_epochs. Inside `vt.tune` the strategy decides at
each rung's budget which members stay (`Decision(keep=...)`), and the engine packs the survivors
into a smaller population, so the compute shrinks with them; the packed size is rounded up to a
power of two (capped at the current size), so a whole Hyperband run compiles the training program
for only a few sizes. Pruned members keep their records (curves, best score) from the rung where
they stopped.

Hyperband runs successive halving over brackets s = s_max .. 0 (s_max = floor(log_eta(R / min_epochs))),
bracket s starting n = ceil((s_max + 1) / (s + 1) * eta ** s) members at R * eta ** -s epochs: from many
members on small budgets to a few trained to R. In vt.tune each bracket is one round (one population).

Black-box use (ask / tell): `ask` returns the members of the current rung and `state.budget`, the
epochs each must have trained by this rung (the total, not the increment); `state.ids` gives, for
each row asked, its index in the bracket's first population, so the caller can continue the
survivors' training. `tell` takes the scores at that budget.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Mapping

import jax
import numpy as np
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.checkpoint import repr_without_unset
from vmaptune.decisions import Decision, Snapshot, TrainingContext
from vmaptune.distinct import is_discrete
from vmaptune.space import Space
from vmaptune.strategies.base import Strategy, check_scores, check_space

__all__ = ["SuccessiveHalving", "Hyperband", "HalvingState", "halving_rungs", "hyperband_brackets", "keep_top"]

Rungs = tuple[tuple[int, int], ...]  # ((members, epochs), ...) of one bracket


def _floor_log(x: float, eta: int) -> int:
    """The largest s >= 0 with eta ** s <= x (exact for integers, unlike math.log)."""
    s = 0
    while eta ** (s + 1) <= x * (1 + 1e-12):
        s += 1
    return s


def _budgets(max_epochs: int, eta: int, s: int) -> tuple[int, ...]:
    """round(R * eta ** (i - s)) for i = 0..s, kept strictly increasing."""
    out: list[int] = []
    for i in range(s + 1):
        r = max(1, int(math.floor(max_epochs * float(eta) ** (i - s) + 0.5)))
        out.append(max(r, out[-1] + 1) if out else r)
    return tuple(out)


def halving_rungs(population: int, eta: int, max_epochs: int, min_epochs: int = 1) -> Rungs:
    """The rungs of one successive-halving bracket: as many halvings as both the population
    (floor(log_eta(population))) and the budget (floor(log_eta(max_epochs / min_epochs))) allow."""
    s = min(_floor_log(population, eta), _floor_log(max_epochs / min_epochs, eta))
    return tuple((population // eta**i, r) for i, r in enumerate(_budgets(max_epochs, eta, s)))


def hyperband_brackets(max_epochs: int, eta: int, min_epochs: int = 1) -> tuple[Rungs, ...]:
    """Li et al.'s brackets for R = max_epochs, most exploratory first."""
    s_max = _floor_log(max_epochs / min_epochs, eta)
    brackets = []
    for s in range(s_max, -1, -1):
        n = int(math.ceil((s_max + 1) / (s + 1) * eta**s - 1e-9))
        brackets.append(tuple((n // eta**i, r) for i, r in enumerate(_budgets(max_epochs, eta, s))))
    return tuple(brackets)


def keep_top(scores, n_keep: int) -> np.ndarray:
    """Indices of the n_keep best of scores (n,), ranked on the host (as `rank_descending`: ties
    by position); members with a NaN / inf score are never kept (so fewer come back when fewer
    are finite). Sorted ascending."""
    scores = np.asarray(scores, np.float32)
    finite = np.isfinite(scores)
    n_keep = min(int(n_keep), int(finite.sum()))
    return np.sort(np.argsort(-np.where(finite, scores, -np.inf), kind="stable")[:n_keep])


@struct.dataclass
class HalvingState:
    """State of successive halving (one bracket) or Hyperband (several).

    hp: dict name -> (n_0,) the current bracket's members (its first rung).
    ids: (n_rung,) int32, the members of the current rung: indices into hp, ascending.
    scores: (rungs, n_0) the score of each member at each rung (NaN where not evaluated).
    reached: (n_0,) int32, the last rung each member was evaluated at (-1 none).
    plan: the brackets, each ((members, epochs), ...) per rung; bracket, rung: where the search is.
    row_epochs / member_epochs (vt.tune): population rows x epochs computed (packing included) and
    epochs members actually trained, summed over the brackets trained so far.
    The arrays live on the host (numpy): run eagerly on the device, each operation of a rung's
    bookkeeping compiled a small program for each rung size (about 80 in a Hyperband search).
    """

    hp: dict[str, np.ndarray]
    ids: np.ndarray
    scores: np.ndarray
    reached: np.ndarray
    space: Space = struct.field(pytree_node=False, default=None)
    plan: tuple = struct.field(pytree_node=False, default=())
    bracket: int = struct.field(pytree_node=False, default=0)
    rung: int = struct.field(pytree_node=False, default=0)
    last_bracket: int = struct.field(pytree_node=False, default=0)  # the bracket hp / scores / reached belong to
    trained: bool = struct.field(pytree_node=False, default=False)
    row_epochs: int = struct.field(pytree_node=False, default=0)
    member_epochs: int = struct.field(pytree_node=False, default=0)

    @property
    def budget(self) -> int:
        """Epochs the members of the current rung must have trained when their scores are told."""
        return self.plan[self.bracket][self.rung][1]

    @property
    def rungs(self) -> Rungs:
        return self.plan[self.bracket]


def _check_eta(owner: str, eta) -> int:
    if isinstance(eta, bool) or not isinstance(eta, numbers.Integral) or eta < 2:
        raise ValueError(f"{owner}: eta must be an integer >= 2, got eta={eta!r}. Each rung keeps the top 1/eta; "
                         f"try eta=3.")
    return int(eta)


@dataclasses.dataclass(frozen=True)
class _Halving(Strategy):
    """Shared ask / tell and training of successive halving and Hyperband. rank_by (inside vt.tune):
    what a rung ranks its members by, "best" (None: each member's best validation score so far,
    as vt.tune scores members) or "last" (its score after the rung's last epoch, as scikit-learn
    scores a fit and vt.PopulationSearchCV scores candidates)."""

    eta: int = 3
    min_epochs: int = 1
    max_epochs: int | None = None
    rank_by: str | None = None

    def __repr__(self) -> str:
        """The dataclass's, without rank_by while it is None: run directories written before it
        existed resume."""
        return repr_without_unset(self, ("rank_by",))

    def _check(self):
        owner = self.name
        _check_eta(owner, self.eta)
        if self.rank_by not in (None, "best", "last"):
            raise ValueError(f"{owner}: rank_by must be 'best' (each member's best validation score so far) or "
                             f"'last' (its score after the rung's last epoch), got rank_by={self.rank_by!r}.")
        for name, value in (("min_epochs", self.min_epochs), ("max_epochs", self.max_epochs)):
            if value is None and name == "max_epochs":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{owner}: {name} must be an integer >= 1 (epochs), got {name}={value!r}. "
                                 f"Try {name}={1 if name == 'min_epochs' else 27}.")
        if self.max_epochs is not None:
            if self.max_epochs < self.eta * self.min_epochs:
                raise ValueError(
                    f"{owner}: max_epochs={self.max_epochs} with min_epochs={self.min_epochs} and eta={self.eta} "
                    f"leaves a single rung: nothing to halve. Use max_epochs >= eta * min_epochs = "
                    f"{self.eta * self.min_epochs}, or lower min_epochs / eta.")

    def plan(self, epochs: int | None = None) -> tuple[Rungs, ...]:
        raise NotImplementedError

    def for_epochs(self, epochs: int) -> "_Halving":
        """max_epochs=None takes vt.tune's epochs (too few said as epochs, the argument given)."""
        if self.max_epochs is not None:
            return self
        self.check_epochs(epochs)
        return dataclasses.replace(self, max_epochs=int(epochs))

    def check_epochs(self, epochs: int) -> None:
        """Errors for a vt.tune run of `epochs` epochs (before anything trains)."""
        if self.max_epochs is not None and epochs != self.max_epochs:
            raise ValueError(f"{self.name}: max_epochs={self.max_epochs} but vt.tune(epochs={epochs}); the last rung "
                             f"trains to max_epochs. Use epochs={self.max_epochs}"
                             + (" or leave max_epochs=None (it is then tune's epochs)." if self.name ==
                                "SuccessiveHalving" else "."))
        if epochs < self.eta * self.min_epochs:
            raise ValueError(f"{self.name}: vt.tune(epochs={epochs}) with min_epochs={self.min_epochs} and "
                             f"eta={self.eta} leaves a single rung: nothing to halve. Use epochs >= eta * min_epochs "
                             f"= {self.eta * self.min_epochs}, or lower min_epochs / eta.")

    def init(self, space: Space, key: jax.Array | None = None) -> HalvingState:
        space = check_space(self.name, space)
        empty = np.zeros(0, np.int32)
        return HalvingState(hp={n: np.zeros(0, d.dtype) for n, d in space.items()}, ids=empty,
                            scores=np.zeros((0, 0), np.float32), reached=empty, space=space, plan=self.plan())

    def ask(self, state: HalvingState, key: jax.Array):
        """The current rung's members: dict name -> (n_rung,); state.budget is their budget in epochs
        and state.ids their indices in the bracket's first population."""
        if self.done(state):
            raise RuntimeError(f"{self.name}.ask: every rung is done. Check strategy.done(state) before ask.")
        if state.rung == 0:  # a new bracket: fresh members
            n0 = state.rungs[0][0]
            hp, state = self.new_members(state, key, n0)
            state = state.replace(hp={k: np.asarray(v) for k, v in hp.items()}, ids=np.arange(n0, dtype=np.int32),
                                  scores=np.full((len(state.rungs), n0), np.nan, np.float32),
                                  reached=np.full(n0, -1, np.int32), last_bracket=state.bracket)
        return {name: v[state.ids] for name, v in state.hp.items()}, state

    def new_members(self, state: HalvingState, key: jax.Array, n: int):
        """The first rung of a new bracket: (dict name -> (n,), state). At random here; BOHB
        proposes most of them with a model."""
        return self.sample(state.space, key, n), state

    def sample(self, space: Space, key: jax.Array, n: int) -> dict[str, np.ndarray]:
        """n random members: the first n of a draw of the largest bracket's size, so that every
        bracket shares one compiled draw; n distinct settings of a discrete space (drawn at this
        bracket's size: the largest's might run short of settings where this one does not)."""
        if n and is_discrete(space):  # (BOHB's random share of a bracket may be none)
            return {k: np.asarray(v) for k, v in space.sample(key, n, distinct=True).items()}
        return {k: np.asarray(v)[:n] for k, v in space.sample(key, max(n, self.population)).items()}

    def tell(self, state: HalvingState, hp: Mapping[str, jax.Array], scores) -> HalvingState:
        """Scores of the rung's members at state.budget; keeps the best for the next rung (its
        planned size: the top 1/eta of the rung as planned; never a failed member)."""
        n = state.space.check_told(hp, f"{self.name}.tell")
        scores = check_scores(self.name, scores, n)
        if state.trained:  # vt.tune: the whole bracket was trained, rung after rung
            return state.replace(bracket=state.bracket + 1, rung=0, trained=False)
        if self.done(state):
            raise RuntimeError(f"{self.name}.tell: every rung is done. Check strategy.done(state) before ask.")
        if n != state.ids.shape[0]:
            raise ValueError(f"{self.name}.tell: hp has {n} members, expected the {state.ids.shape[0]} members "
                             f"of rung {state.rung} that ask returned.")
        all_scores, reached = np.array(state.scores), np.array(state.reached)  # copies
        all_scores[state.rung, state.ids] = np.asarray(scores)
        reached[state.ids] = state.rung
        state = state.replace(scores=all_scores, reached=reached)
        last = state.rung + 1 >= len(state.rungs)
        kept = keep_top(scores, 0 if last else self._next_rung_size(state))
        if last or len(kept) == 0:
            return state.replace(bracket=state.bracket + 1, rung=0)
        return state.replace(ids=np.asarray(state.ids)[kept], rung=state.rung + 1)

    def done(self, state: HalvingState) -> bool:
        return state.bracket >= len(state.plan)

    def total_evaluations(self, space: Space | None = None) -> int:
        """Scores told over an ask / tell run (every rung of every bracket)."""
        return sum(n for rungs in self.plan() for n, _ in rungs)

    def tune_rounds(self, space: Space | None = None) -> int:
        """Rounds vt.tune runs: one per bracket."""
        return len(self.plan())

    # -- inside vt.tune: which members go on, decided at each rung's budget ------------------------------
    acts_during_training = True

    def begin_training(self, state: HalvingState, context: TrainingContext):
        """The bracket's plan for a run of context.epochs; keeps the bracket's members (the driver's
        padding beyond them is packed away)."""
        self.check_epochs(context.epochs)
        plan = self.plan(context.epochs)
        n0 = plan[state.bracket][0][0]
        if context.members is not None and context.members != n0:
            raise ValueError(f"{self.name}: the population must hold the {n0} members ask returned; "
                             f"it holds {context.members}.")
        rungs = len(plan[state.bracket])
        state = state.replace(plan=plan, scores=np.full((rungs, n0), np.nan, np.float32),
                              reached=np.full(n0, -1, np.int32), ids=np.arange(n0, dtype=np.int32))
        return state, Decision(keep=np.arange(n0))

    def work_share(self, state: HalvingState, epochs: int) -> float:
        """Members x epochs of the bracket's rungs over its first rung's members x the last budget."""
        rungs = self.plan(epochs)[min(state.bracket, len(self.plan(epochs)) - 1)]
        trained, before = 0, 0
        for members, budget in rungs:
            trained, before = trained + members * (budget - before), budget
        return trained / (rungs[0][0] * rungs[-1][1])

    def decision_epochs(self, state: HalvingState, epochs: int) -> tuple[int, ...]:
        return tuple(r for _, r in state.rungs[:-1])

    def decide(self, state: HalvingState, snapshot: Snapshot, key: jax.Array | None = None):
        """At a rung's budget: records the rung's scores (each member's best validation score so
        far) and keeps the top 1/eta of its members (never a failed one). A member early stopping
        stopped is done: it keeps its score (the search's best may be one) but takes no place in
        the next rung, which the best members still training fill (as ASHA promotes live trials)."""
        state = self._record_rung(state, snapshot)
        alive = np.asarray(state.ids)
        training = alive[~np.asarray(snapshot.stopped)[alive]]
        kept = training[keep_top(self._rung_scores(snapshot)[training], self._next_rung_size(state))]
        state = state.replace(ids=np.asarray(kept, np.int32), rung=state.rung + 1)
        return state, Decision(keep=kept)

    def end_training(self, state: HalvingState, snapshot: Snapshot) -> HalvingState:
        """Records the last rung and the compute the bracket used."""
        state = self._record_rung(state, snapshot)
        return state.replace(rung=len(state.rungs) - 1, trained=True, last_bracket=state.bracket,
                             row_epochs=state.row_epochs + snapshot.row_epochs,
                             member_epochs=state.member_epochs + snapshot.member_epochs)

    @staticmethod
    def _next_rung_size(state: HalvingState) -> int:
        """The planned size of the next rung (Li et al.'s floor(n_i / eta) of the planned n_i): a
        rung whose failed members were not kept fills the next from its other members, so failures
        at one rung never shrink every rung after it below the plan."""
        return state.rungs[state.rung + 1][0]

    def _rung_scores(self, snapshot: Snapshot) -> np.ndarray:
        """(n,) what the rung ranks by (rank_by); NaN for failed members."""
        if self.rank_by == "last":
            return np.where(snapshot.diverged, np.nan, snapshot.latest_score).astype(np.float32)
        return snapshot.best_so_far

    def _record_rung(self, state: HalvingState, snapshot: Snapshot) -> HalvingState:
        alive = np.asarray(state.ids)
        if not len(alive):  # nobody left (every member of the last rung failed)
            return state
        k = [r for _, r in state.rungs].index(snapshot.epochs_done)
        scores = np.asarray(state.scores).copy()
        reached = np.asarray(state.reached).copy()
        scores[k, alive] = self._rung_scores(snapshot)[alive]
        reached[alive] = k
        return state.replace(scores=scores, reached=reached)

    def member_columns(self, state: HalvingState) -> dict[str, np.ndarray]:
        """Extra table columns for the last bracket's members (n_0,): rung (the last rung reached,
        0-based) and budget_epochs (that rung's budget: the epochs it trained, or fewer where early
        stopping froze it first, as epochs_trained says); Hyperband adds bracket. A round cut short
        (Ctrl-C): the members still training are at the rung in progress, its budget ahead of them."""
        reached = np.asarray(state.reached).copy()
        if not state.trained and len(state.ids):  # (vt.tune's round is over once trained is set)
            reached[np.asarray(state.ids)] = state.rung
        budgets = np.asarray([0] + [r for _, r in state.plan[state.last_bracket]])
        columns = {"rung": reached, "budget_epochs": budgets[reached + 1]}
        if isinstance(self, Hyperband):
            columns["bracket"] = np.full(len(reached), state.last_bracket)
        return columns


@checked_arguments("vt.SuccessiveHalving(population=27, eta=3)")
@dataclasses.dataclass(frozen=True, repr=False)
class SuccessiveHalving(_Halving):
    """Successive halving over one population.

    population: members of the first rung (at least eta). eta: keep the top 1/eta at each rung.
    min_epochs: the smallest first-rung budget. max_epochs: the last rung's budget; None = vt.tune's
    epochs (ask / tell without it: halve until fewer than eta remain, from min_epochs up).
    """

    population: int = 27

    def __post_init__(self):
        super().__post_init__()
        self._check()
        if self.population < self.eta:
            raise ValueError(f"SuccessiveHalving: population={self.population} with eta={self.eta} cannot keep the top "
                             f"1/eta even once. Use population >= eta (e.g. population={self.eta ** 3}), or lower eta.")

    def plan(self, epochs: int | None = None) -> tuple[Rungs, ...]:
        """One bracket. R = max_epochs, else `epochs` (vt.tune's), else min_epochs * eta ** floor(log_eta(P))."""
        r_max = self.max_epochs or epochs or self.min_epochs * self.eta ** _floor_log(self.population, self.eta)
        return (halving_rungs(self.population, self.eta, r_max, self.min_epochs),)


@checked_arguments("vt.Hyperband(max_epochs=27, eta=3)",
                   {"population": "Hyperband derives its population from max_epochs, eta and min_epochs; use "
                                  "vt.SuccessiveHalving for a population of your own."})
@dataclasses.dataclass(frozen=True, repr=False)
class Hyperband(_Halving):
    """Hyperband: successive-halving brackets from many short runs to few long ones.

    max_epochs: R, the largest budget; None inside vt.tune takes its epochs (ask / tell needs it).
    eta: keep 1/eta per rung. min_epochs: the smallest budget. population is derived: the largest
    bracket's size (known once max_epochs is). iterations: how many times the whole set of brackets
    runs, each time with new members (Keras Tuner's hyperband_iterations; None: once): the budget
    to match another search's.
    """

    population: int = dataclasses.field(default=1, init=False)
    iterations: int | None = None

    def __repr__(self) -> str:
        return repr_without_unset(self, ("rank_by", "iterations"))

    def __post_init__(self):
        self._check()
        if self.iterations is not None and (isinstance(self.iterations, bool) or
                                            not isinstance(self.iterations, numbers.Integral) or self.iterations < 1):
            raise ValueError(f"Hyperband: iterations must be an integer >= 1 (times the whole set of brackets runs) "
                             f"or None (once), got iterations={self.iterations!r}. E.g. iterations=2.")
        if self.max_epochs is not None:
            object.__setattr__(self, "population", max(rungs[0][0] for rungs in self.plan()))
        super().__post_init__()

    def plan(self, epochs: int | None = None) -> tuple[Rungs, ...]:
        r_max = self.max_epochs or epochs
        if r_max is None:
            raise ValueError(f"{self.name}: max_epochs is needed for ask / tell (the largest budget in epochs); "
                             f"inside vt.tune it defaults to tune's epochs. E.g. {self.name}(max_epochs=27, eta=3).")
        return hyperband_brackets(r_max, self.eta, self.min_epochs) * (self.iterations or 1)
