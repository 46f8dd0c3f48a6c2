"""Generational evolution (the sklearn-deap style), in the unit cube of the space.

Each generation is a fresh population trained from scratch: the `elite` best members of the
last generation are copied (and trained again, so a lucky seed does not survive on luck), and
every other member is a child of two parents picked by tournament or truncation selection,
mixed by uniform crossover and mutated gene by gene: Gaussian noise for numbers (reflected at
the bounds, so no mass piles up on them), a fresh uniform draw for a `Choice`.
Members with NaN or inf scores are never picked as parents or elites.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Mapping

import jax
import jax.numpy as jnp
from flax import struct

from vmaptune.space import Choice, Space
from vmaptune.strategies.base import (
    Strategy,
    check_positive_int,
    check_scores,
    check_space,
    rank_descending,
)

__all__ = ["Evolution", "EvolutionState", "select_parents", "uniform_crossover", "mutate", "next_generation"]

SELECTIONS = ("tournament", "truncation")


@struct.dataclass
class EvolutionState:
    """The last generation told: u (population, d) unit positions and its scores (population,)."""

    u: jax.Array
    scores: jax.Array
    is_choice: jax.Array  # (d,) bool: genes that are resampled rather than perturbed
    space: Space = struct.field(pytree_node=False)
    round: int = struct.field(pytree_node=False, default=0)


def select_parents(key, scores, n: int, selection: str, tournament_size: int, truncation: int):
    """n parent indices into a population by rank.

    Ranks with a finite score are the only candidates: tournament takes the best of
    `tournament_size` draws (with replacement, as in DEAP); truncation draws uniformly from the
    `truncation` best. Drawing rank positions and taking the minimum is the tournament.
    """
    order = rank_descending(scores)
    n_valid = jnp.maximum(jnp.sum(jnp.isfinite(scores)), 1)
    if selection == "tournament":
        pos = jax.random.randint(key, (n, tournament_size), 0, n_valid).min(axis=1)
    else:
        pos = jax.random.randint(key, (n,), 0, jnp.minimum(truncation, n_valid))
    return order[pos]


def uniform_crossover(key, a, b, crossover_prob: float):
    """a, b: (n, d) parents -> (n, d) children. With probability crossover_prob a child takes each
    gene from either parent with probability 1/2; otherwise it is a copy of a."""
    k_do, k_gene = jax.random.split(key)
    n, d = a.shape
    cross = jax.random.uniform(k_do, (n, 1)) < crossover_prob
    take_b = cross & jax.random.bernoulli(k_gene, 0.5, (n, d))
    return jnp.where(take_b, b, a)


def _reflect(u):
    """Folds any real into [0, 1] by reflection at the bounds."""
    r = jnp.mod(u, 2.0)
    return jnp.where(r > 1.0, 2.0 - r, r)


def mutate(key, u, is_choice, mutation_prob: float, sigma: float):
    """u: (n, d). Each gene mutates with probability mutation_prob: + N(0, sigma^2) reflected into
    [0, 1] for numbers, a uniform redraw for choices (their order means nothing)."""
    k_which, k_noise, k_redraw = jax.random.split(key, 3)
    which = jax.random.uniform(k_which, u.shape) < mutation_prob
    moved = _reflect(u + sigma * jax.random.normal(k_noise, u.shape))
    moved = jnp.where(is_choice, jax.random.uniform(k_redraw, u.shape), moved)
    return jnp.where(which, moved, u)


@dataclasses.dataclass(frozen=True)
class Evolution(Strategy):
    """A generational genetic algorithm over `generations` populations of `population` members.

    selection: "tournament" (best of tournament_size random members) or "truncation" (uniform
        among the best `truncation` fraction).
    elite: members copied unchanged into the next generation (they are trained again).
    crossover_prob: chance a child mixes two parents (uniform crossover) instead of copying one.
    mutation_prob: chance each gene of a child mutates; sigma: the Gaussian step in the unit cube.
    """

    population: int = 64
    generations: int = 10
    selection: str = "tournament"
    tournament_size: int = 3
    truncation: float = 0.5
    elite: int = 1
    crossover_prob: float = 0.5
    mutation_prob: float = 0.2
    sigma: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("Evolution", "population", self.population, minimum=2)
        check_positive_int("Evolution", "generations", self.generations)
        if self.selection not in SELECTIONS:
            raise ValueError(
                f"Evolution: selection must be one of {list(SELECTIONS)}, got selection={self.selection!r}."
            )
        check_positive_int("Evolution", "tournament_size", self.tournament_size)
        if self.tournament_size > self.population:
            raise ValueError(
                f"Evolution: tournament_size must be <= population, got tournament_size={self.tournament_size} "
                f"with population={self.population}. Lower tournament_size or raise population."
            )
        _check_fraction("truncation", self.truncation, low_open=True)
        check_positive_int("Evolution", "elite", self.elite, minimum=0)
        if self.elite >= self.population:
            raise ValueError(
                f"Evolution: elite must be < population, got elite={self.elite} with population="
                f"{self.population}: no room would be left for children. Lower elite or raise population."
            )
        _check_fraction("crossover_prob", self.crossover_prob)
        _check_fraction("mutation_prob", self.mutation_prob)
        s = self.sigma
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or not (0.0 < s < float("inf")):
            raise ValueError(
                f"Evolution: sigma must be a finite number > 0, got sigma={s!r}. It is the mutation step "
                f"in the unit cube of the space; try sigma=0.1."
            )

    @property
    def n_truncation(self) -> int:
        """How many of the best members truncation selection draws from (at least one)."""
        return max(1, int(self.truncation * self.population))

    def init(self, space: Space, key: jax.Array | None = None) -> EvolutionState:
        space = check_space("Evolution", space)
        d, p = len(space), self.population
        return EvolutionState(
            u=jnp.full((p, d), 0.5, jnp.float32),
            scores=jnp.full((p,), jnp.nan, jnp.float32),
            is_choice=jnp.asarray([isinstance(dist, Choice) for _, dist in space.items()]),
            space=space,
        )

    def ask(self, state: EvolutionState, key: jax.Array):
        """Generation `state.round`: random in the first, bred from the last one told after."""
        self._check_not_done(state, "ask")
        if state.round == 0:
            hp = _first_generation(key, state.space, self.population)
        else:
            hp = _bred(key, state.u, state.scores, state.is_choice, self, state.space)
        return hp, state

    def tell(self, state: EvolutionState, hp: Mapping[str, jax.Array], scores) -> EvolutionState:
        self._check_not_done(state, "tell")
        n = state.space.check_population(hp)
        if n != self.population:
            raise ValueError(
                f"Evolution.tell: hp has {n} members, expected population={self.population}. "
                f"Tell the whole population that ask returned."
            )
        scores = check_scores("Evolution", scores, n)
        return state.replace(u=_to_unit(hp, state.space), scores=scores, round=state.round + 1)

    def done(self, state: EvolutionState) -> bool:
        return state.round >= self.generations

    def total_evaluations(self) -> int:
        return self.population * self.generations

    def _check_not_done(self, state: EvolutionState, what: str):
        if self.done(state):
            raise RuntimeError(
                f"Evolution.{what}: all generations={self.generations} generations are done. "
                f"Check strategy.done(state) before ask."
            )


@functools.partial(jax.jit, static_argnames=("config",))
def next_generation(key, u, scores, is_choice, config: Evolution):
    """u: (P, d) last generation, scores: (P,) -> (P, d): elites first, then children.

    If every score failed there is nothing to breed from, and the generation is drawn afresh.
    """
    k_a, k_b, k_cross, k_mut, k_fresh = jax.random.split(key, 5)
    p, e = u.shape[0], config.elite
    pick = lambda k: select_parents(  # noqa: E731
        k, scores, p, config.selection, config.tournament_size, config.n_truncation
    )
    children = uniform_crossover(k_cross, u[pick(k_a)], u[pick(k_b)], config.crossover_prob)
    children = mutate(k_mut, children, is_choice, config.mutation_prob, config.sigma)
    # Elite slots hold the best members, but only those with a finite score.
    order = rank_descending(scores)
    n_valid = jnp.sum(jnp.isfinite(scores))
    is_elite = (jnp.arange(p) < e) & (jnp.arange(p) < n_valid)
    elites = u[order[jnp.minimum(jnp.arange(p), max(e - 1, 0))]]
    nxt = jnp.where(is_elite[:, None], elites, children)
    return jnp.where(n_valid > 0, nxt, jax.random.uniform(k_fresh, u.shape))


@functools.partial(jax.jit, static_argnames=("space",))
def _to_unit(hp, space: Space):
    return space.to_unit(hp)


@functools.partial(jax.jit, static_argnames=("space", "n"))
def _first_generation(key, space: Space, n: int):
    return space.from_unit(jax.random.uniform(key, (n, len(space))))


@functools.partial(jax.jit, static_argnames=("config", "space"))
def _bred(key, u, scores, is_choice, config: Evolution, space: Space):
    return space.from_unit(next_generation(key, u, scores, is_choice, config))


def _check_fraction(name: str, value, low_open: bool = False):
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    ok = ok and (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"Evolution: {name} must be a number in {interval}, got {name}={value!r}.")
