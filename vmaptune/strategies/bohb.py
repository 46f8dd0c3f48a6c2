"""BOHB: Hyperband whose brackets start from model-proposed members (Falkner, Klein and Hutter 2018).

Hyperband samples every bracket's members at random. BOHB keeps every score a rung reported,
with the budget it was measured at, and when a new bracket starts it fits a model on the largest
budget that has enough scores and proposes most of the new members with it; a share
(`random_fraction`, BOHB's rho) stays random so the search never stops exploring. The original uses
a TPE-like density model; here it is vmaptune's GP (vt.BayesOpt: the same encoding, fit and
acquisition maximiser), fitted on that budget's observations only, so scores of short runs never
mix with scores of long ones.

Everything else (the brackets, rungs, packing inside vt.tune, the table's columns) is Hyperband's.
"""

from __future__ import annotations

import dataclasses
import numbers

import jax
import numpy as np
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.strategies.bayesopt import BayesOpt
from vmaptune.strategies.halving import HalvingState, Hyperband


@struct.dataclass
class BOHBState(HalvingState):
    """HalvingState plus every observation so far (of the brackets before the current one).

    observed_hp: dict name -> (N,) the observed members' values; observed_budget: (N,) int32 the
    epochs each score was measured at; observed_score: (N,) float32 (NaN / inf: a failed member).
    from_model: (n_0,) bool, which members of the current bracket the model proposed.
    folded: how many brackets' scores are in the observations.
    model_budget: the budget whose observations proposed the current bracket (0: none, all random).
    """

    observed_hp: dict | None = None
    observed_budget: np.ndarray | None = None
    observed_score: np.ndarray | None = None
    from_model: np.ndarray | None = None
    folded: int = struct.field(pytree_node=False, default=0)
    model_budget: int = struct.field(pytree_node=False, default=0)


@checked_arguments("vt.BOHB(max_epochs=27, eta=3)",
                   {"population": "BOHB derives its population from max_epochs, eta and min_epochs, as Hyperband does."})
@dataclasses.dataclass(frozen=True, repr=False)
class BOHB(Hyperband):
    """Hyperband with model-based proposals (BOHB).

    max_epochs, eta, min_epochs: as vt.Hyperband. random_fraction: the share of each bracket's new
    members drawn at random (BOHB's rho, default 1/3). min_points: scores a budget needs before its
    model proposes (default: the number of searched names + 2). model: a vt.BayesOpt whose
    settings (acquisition, fit restarts, maximiser) propose the members; its population, rounds
    and initial design are BOHB's business, it proposes over the whole space (trust_region is
    set to False: each bracket fits a fresh model, so a region has no history to grow or shrink
    from), and it fits by maximum likelihood (lengthscale_prior is set to None: a bracket's model
    sees 4-13 scores, which BayesOpt's lengthscale prior outweighs; on Branin, 15 seeds, the
    model's members then had a median regret of 0.21-1.21 of the random members', 0.04-0.27
    without it; bench/RESULTS.md). Default: vt.BayesOpt(restarts=2, num_candidates=512).
    """

    random_fraction: float = 1 / 3
    min_points: int | None = None
    model: BayesOpt | None = None

    def __post_init__(self):
        super().__post_init__()
        rf = self.random_fraction
        if isinstance(rf, bool) or not isinstance(rf, numbers.Real) or not (0.0 <= rf <= 1.0):
            raise ValueError(f"BOHB: random_fraction must be a number in [0, 1] (the share of each bracket drawn at "
                             f"random), got random_fraction={rf!r}. BOHB's paper uses 1/3.")
        if self.min_points is not None and (isinstance(self.min_points, bool) or not isinstance(
                self.min_points, numbers.Integral) or self.min_points < 2):
            raise ValueError(f"BOHB: min_points must be an integer >= 2 (scores a budget needs before its model is "
                             f"used), got min_points={self.min_points!r}; None takes the searched names + 2.")
        if self.model is not None and not isinstance(self.model, BayesOpt):
            raise TypeError(f"BOHB: model must be a vt.BayesOpt (its settings propose the members) or None, got "
                            f"model={self.model!r}. E.g. model=vt.BayesOpt(acquisition='ucb').")

    def _proposer(self, population: int, brackets: int = 1) -> BayesOpt:
        """The BayesOpt that proposes a bracket's members. brackets: how many brackets the search
        runs, each at most one ask: the proposer's rounds, so its proposal program is priced
        (acquisition.quick_proposal) for the asks the search can make, not for one."""
        model = self.model if self.model is not None else BayesOpt(restarts=2, num_candidates=512)
        # each bracket fits a fresh model: a trust region would have no history to grow or shrink
        # from, and a prior on the lengthscales would outweigh its few scores
        return dataclasses.replace(model, population=population, rounds=max(int(brackets), 1), initial_size=1,
                                   trust_region=False, lengthscale_prior=None)

    def _model_members(self, population: int) -> int:
        """How many of a new bracket of `population` the model proposes once it is in use."""
        return population - int(round(population * self.random_fraction))

    def _min_points(self, state: BOHBState) -> int:
        return self.min_points if self.min_points is not None else len(state.space.free_names) + 2

    def init(self, space, key=None) -> BOHBState:
        if not space.free_names:  # (said in BOHB's name: its model is a BayesOpt's, whose init said its own)
            raise ValueError(f"BOHB.init: the space has nothing to search (every parameter is Fixed): {space!r}. "
                             f"Give at least one distribution, e.g. vt.LogUniform(1e-4, 1e-1), or train the one "
                             f"setting with vt.RandomSearch.")
        base = super().init(space, key)
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        return BOHBState(**fields, observed_hp={n: np.zeros(0, d.dtype) for n, d in base.space.items()},
                         observed_budget=np.zeros(0, np.int32), observed_score=np.zeros(0, np.float32),
                         from_model=np.zeros(0, bool))

    def new_members(self, state: BOHBState, key: jax.Array, n: int):
        """A new bracket's members: (1 - random_fraction) from the model of the largest budget with
        at least min_points scores, the rest at random (all at random before any budget has)."""
        state = self._fold(state)
        key_random, key_model = jax.random.split(key)
        budget, rows = self._model_budget(state)
        n_model = self._model_members(n) if budget else 0
        hp = self.sample(state.space, key_random, n - n_model)
        if n_model:
            # one batch size for every bracket (the largest), cut to this bracket's share: the
            # acquisition maximiser compiles once, not once per bracket size
            proposer = self._proposer(max(self._model_members(rungs[0][0]) for rungs in state.plan), len(state.plan))
            model = proposer.init(state.space, jax.random.fold_in(key_model, 0))
            model = model.replace(design_next=len(model.design))  # no initial design: straight to the model
            model = proposer.tell(model, {k: v[rows] for k, v in state.observed_hp.items()},
                                  state.observed_score[rows])
            proposed, _ = proposer.ask(model, jax.random.fold_in(key_model, 1))
            hp = {k: np.concatenate([np.asarray(proposed[k])[:n_model].astype(d.dtype), np.asarray(hp[k], d.dtype)])
                  for k, d in state.space.items()}
        return hp, state.replace(from_model=np.arange(n) < n_model, model_budget=int(budget))

    def _fold(self, state: BOHBState) -> BOHBState:
        """Adds the finished bracket's scores (one per rung a member reached) to the observations,
        failed ones (NaN / inf) too: the model's `failed` policy ranks them last (BOHB keeps a
        crashed run as the worst loss), so it learns where runs diverge."""
        if state.folded >= state.bracket:  # bracket 0 (nothing yet), or folded already
            return state
        scores = np.asarray(state.scores, np.float32)
        budgets = [r for _, r in state.plan[state.last_bracket]]
        evaluated = np.arange(scores.shape[0])[:, None] <= np.asarray(state.reached)[None, :]
        rung, member = np.nonzero(evaluated)
        observed_hp = {n: np.concatenate([state.observed_hp[n], np.asarray(state.hp[n])[member]])
                       for n in state.observed_hp}
        return state.replace(observed_hp=observed_hp,
                             observed_budget=np.concatenate([state.observed_budget,
                                                             np.asarray(budgets, np.int32)[rung]]),
                             observed_score=np.concatenate([state.observed_score, scores[rung, member]]),
                             folded=state.bracket)

    def _model_budget(self, state: BOHBState) -> tuple[int, np.ndarray]:
        """(the largest budget with at least min_points finite scores, their rows); (0, none) if no budget has.
        The rows add the members that failed at a smaller budget: a run that diverged by epoch b has
        diverged at every later epoch, and as it was never promoted the model would otherwise never
        see it (and propose its neighbours: the best learning rate often lies just below divergence)."""
        need = self._min_points(state)
        budgets, failed = state.observed_budget, ~np.isfinite(state.observed_score)
        for budget in sorted(set(budgets.tolist()), reverse=True):
            if np.count_nonzero((budgets == budget) & ~failed) >= need:  # (scores to fit: failures only rank last)
                return int(budget), np.flatnonzero((budgets == budget) | ((budgets < budget) & failed))
        return 0, np.zeros(0, np.int64)

    def member_columns(self, state: BOHBState) -> dict[str, np.ndarray]:
        """Hyperband's columns, and proposed_by: 'model' or 'random' for each member."""
        columns = super().member_columns(state)
        n = len(columns["rung"])
        from_model = np.zeros(n, bool) if state.from_model is None or len(state.from_model) != n else state.from_model
        columns["proposed_by"] = np.where(from_model, "model", "random")
        return columns

