"""Random search (Bergstra & Bengio, 2012): independent draws from the space, round after round."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Mapping

import jax
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.space import Space
from vmaptune.strategies.base import Strategy, check_positive_int, check_scores, check_space


@struct.dataclass
class RandomSearchState:
    space: Space = struct.field(pytree_node=False)
    round: int = struct.field(pytree_node=False, default=0)


@checked_arguments("vt.RandomSearch(population=64, rounds=1)")
@dataclasses.dataclass(frozen=True)
class RandomSearch(Strategy):
    """`rounds` populations of `population` members, each drawn independently from the space (in a
    space of only discrete values, distinct settings within a population: Space.sample(distinct=True))."""

    population: int = 64
    rounds: int = 1
    rounds_field: ClassVar[str | None] = "rounds"  # a resume may change it (Strategy.rounds_field)

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("RandomSearch", "rounds", self.rounds)

    def init(self, space: Space, key: jax.Array) -> RandomSearchState:
        return RandomSearchState(space=check_space("RandomSearch", space))

    def ask(self, state: RandomSearchState, key: jax.Array):
        hp = state.space.sample(key, self.population, distinct=True)
        return hp, state

    def tell(self, state: RandomSearchState, hp: Mapping[str, jax.Array], scores) -> RandomSearchState:
        n = state.space.check_told(hp, "RandomSearch.tell")
        check_scores("RandomSearch", scores, n)
        return state.replace(round=state.round + 1)

    def done(self, state: RandomSearchState) -> bool:
        return state.round >= self.rounds

    def total_evaluations(self, space: Space | None = None) -> int:
        return self.population * self.rounds
