"""The strategy protocol shared by every search method, and helpers for population scores.

A strategy proposes whole populations and learns from their scores, with its state passed
explicitly (the evosax ask/tell style), so it works inside `vt.tune` and on any black-box
objective::

    state = strategy.init(space, key)
    while not strategy.done(state):
        hp, state = strategy.ask(state, key)        # dict name -> array[P]
        state = strategy.tell(state, hp, scores)    # scores: array[P], higher is better, NaN = failed

Scores are "higher is better"; NaN or inf marks a failed member, which ranks last.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

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


def check_space(owner: str, space: Any) -> Space:
    if not isinstance(space, Space):
        raise TypeError(f"{owner}.init: space must be a vt.Space, got {type(space).__name__}.")
    return space


def as_numpy_population(hp: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in hp.items()}
