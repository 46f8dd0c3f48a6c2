"""The strategy protocol shared by every search method, and helpers for population scores.

A strategy proposes whole populations and learns from their scores, with its state passed
explicitly (the evosax ask/tell style), so it works inside `vt.tune` and on any black-box
objective::

    state = strategy.init(space, key)
    while not strategy.done(state):
        hp, state = strategy.ask(state, key)        # dict name -> array[P]
        state = strategy.tell(state, hp, scores)    # scores: array[P], higher is better, NaN = failed

Scores are "higher is better"; NaN or inf marks a failed member, which ranks last.

Inside `vt.tune` a strategy may also act while its population trains (PBT, successive halving):
it sets `acts_during_training` and the driver calls `begin_training`, `decide` (after the epochs
`decision_epochs` names) and `end_training`. Each sees a read-only `Snapshot` of the population
and returns a `Decision` (vmaptune/decisions.py): the strategy decides, the engine applies.
Every hook is declared here with its default; the driver never probes for methods.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, ClassVar, Collection, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.decisions import Decision, Snapshot, TrainingContext
from vmaptune.space import Space


def check_positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def finite_or_worst(scores) -> jax.Array:
    """NaN / inf scores -> -inf, so they rank last. Never argmax over raw scores."""
    scores = jnp.asarray(scores, jnp.float32)
    return jnp.where(jnp.isfinite(scores), scores, -jnp.inf)


def rank_descending(scores) -> jax.Array:
    """Indices from best to worst; failed members last, ties broken by position (stable)."""
    return jnp.argsort(-finite_or_worst(scores), stable=True)


def check_scores(owner: str, scores: Any, population: int) -> jax.Array:
    scores = jnp.asarray(scores, jnp.float32)
    if scores.shape != (population,):
        raise ValueError(
            f"{owner}.tell: scores must have shape ({population},) to match hp, got {scores.shape}."
        )
    return scores


@dataclasses.dataclass(frozen=True)
class Strategy:
    """Base class: a frozen dataclass of settings. State lives in the objects init/ask/tell pass."""

    population: int = 64

    def __post_init__(self):
        check_positive_int(type(self).__name__, "population", self.population)

    @property
    def name(self) -> str:
        return type(self).__name__

    def init(self, space: Space, key: jax.Array):
        raise NotImplementedError

    def ask(self, state, key: jax.Array) -> tuple[dict[str, jax.Array], Any]:
        raise NotImplementedError

    def tell(self, state, hp: Mapping[str, jax.Array], scores) -> Any:
        raise NotImplementedError

    def done(self, state) -> bool:
        """True when the strategy has nothing more to ask."""
        raise NotImplementedError

    def total_evaluations(self, space: Space | None = None) -> int | None:
        """How many members the whole search trains, when known up front (some need the space)."""
        return None

    # -- inside vt.tune -------------------------------------------------------------------------------
    #: True for strategies that decide while their population trains (vt.tune then calls
    #: begin_training / decide / end_training around the round's chunks).
    acts_during_training: ClassVar[bool] = False
    #: True when decisions copy one member's training state into another (PBT): the driver then
    #: keeps every member in the population (no early-stop packing), so every source stays there.
    copies_members: ClassVar[bool] = False

    def for_epochs(self, epochs: int) -> "Strategy":
        """This strategy for a vt.tune run of `epochs` epochs (a budget left open takes them)."""
        return self

    def check_epochs(self, epochs: int) -> None:
        """Raises when a vt.tune run of `epochs` epochs cannot work with these settings (before
        anything compiles)."""

    def tune_rounds(self, space: Space | None = None) -> int | None:
        """Rounds (populations) vt.tune trains, when known: by default the evaluations over the
        population, rounded up."""
        total = self.total_evaluations(space)
        return -(-total // self.population) if total else None

    def work_share(self, state, epochs: int) -> float:
        """The share of the round's members x epochs this strategy expects to train (successive
        halving prunes most members early); the plan's price (bucketing="auto") scales by it."""
        return 1.0

    def begin_training(self, state, context: TrainingContext) -> tuple[Any, Decision | None]:
        """Before the round's population trains (before anything of it compiles): check the run,
        -> (state, a decision or None)."""
        return state, None

    def decision_epochs(self, state, epochs: int) -> Collection[int]:
        """Epochs (1 .. epochs - 1) after which `decide` sees the population."""
        return ()

    def decide(self, state, snapshot: Snapshot, key: jax.Array) -> tuple[Any, Decision | None]:
        """Between chunks, at one of decision_epochs: -> (state, a decision or None)."""
        return state, None

    def end_training(self, state, snapshot: Snapshot) -> Any:
        """After the round's last epoch, before tell: -> state (only: no decision is left to apply)."""
        return state

    def member_columns(self, state) -> dict[str, np.ndarray]:
        """Extra results-table columns for the round's members (name -> (n,)), e.g. PBT's lineage."""
        return {}

    def final_hp(self, state, asked: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """The encoded hyperparameters the round's members ended with: the table, best_params and
        the refit use them. `asked`: the values asked, as the members ended training with them
        (inside vt.tune, after every Decision's copies and new values); the default returns them."""
        return asked


def check_space(owner: str, space: Any) -> Space:
    if not isinstance(space, Space):
        raise TypeError(f"{owner}.init: space must be a vt.Space, got {type(space).__name__}.")
    return space


def as_numpy_population(hp: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in hp.items()}
