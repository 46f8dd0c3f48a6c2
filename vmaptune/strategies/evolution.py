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
import numbers
from typing import ClassVar, Mapping

import jax
import jax.numpy as jnp
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.compile_cache import quick_program
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
    """The last generation told: hp (dict name -> (population,)), its unit positions u
    (population, d) and its scores (population,)."""

    hp: dict[str, jax.Array]
    u: jax.Array
    scores: jax.Array
    is_choice: jax.Array  # (d,) bool: genes that are resampled rather than perturbed
    space: Space = struct.field(pytree_node=False)
    round: int = struct.field(pytree_node=False, default=0)


# The operators take uniform draws in [0, 1), not keys: `next_generation` makes every random
# choice of a generation from one block, because each separate PRNG call is one more kernel to
# compile (about 0.3 s each on CPU), and fixed draws make the operators easy to test.


def select_parents(draw, scores, selection: str, truncation):
    """draw: (n, t) uniforms -> n parent indices, picked by rank among the finite scores.

    "tournament": the best of t members drawn with replacement (t = tournament_size, as in DEAP);
    drawing rank positions and keeping the smallest is the tournament.
    "truncation": uniform among the `truncation` best (uses draw[:, 0]).
    """
    order = rank_descending(scores)
    n_valid = jnp.maximum(jnp.sum(jnp.isfinite(scores)), 1)
    if selection == "tournament":
        pos = jnp.floor(draw * n_valid).astype(jnp.int32).min(axis=1)
    else:
        pos = jnp.floor(draw[:, 0] * jnp.minimum(truncation, n_valid)).astype(jnp.int32)
    return order[jnp.minimum(pos, n_valid - 1)]


def uniform_crossover(draw, a, b, crossover_prob):
    """draw: (n, d + 1) uniforms; a, b: (n, d) parents -> (n, d) children. With probability
    crossover_prob a child takes each gene from either parent with probability 1/2; otherwise it
    is a copy of a."""
    take_b = (draw[:, :1] < crossover_prob) & (draw[:, 1:] < 0.5)
    return jnp.where(take_b, b, a)


def _reflect(u):
    """Folds any real into [0, 1] by reflection at the bounds."""
    r = jnp.mod(u, 2.0)
    return jnp.where(r > 1.0, 2.0 - r, r)


def mutate(draw, u, is_choice, mutation_prob, sigma):
    """draw: (n, 3d) uniforms; u: (n, d) -> (n, d). Each gene mutates with probability
    mutation_prob: + N(0, sigma^2) reflected into [0, 1] for numbers (no mass piles up on the
    bounds), a uniform redraw for choices (their order means nothing)."""
    which, redraw, q = jnp.split(draw, 3, axis=1)
    noise = jax.scipy.special.ndtri(jnp.clip(q, 1e-7, 1.0 - 1e-7))  # normal, by inverse CDF
    moved = jnp.where(is_choice, redraw, _reflect(u + sigma * noise))
    return jnp.where(which < mutation_prob, moved, u)


@checked_arguments("vt.Evolution(population=64, generations=10)")
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
    rounds_field: ClassVar[str | None] = "generations"  # a resume may change it (Strategy.rounds_field)
    selection: str = "tournament"
    tournament_size: int = 3
    truncation: float = 0.5
    elite: int = 1
    crossover_prob: float = 0.5
    mutation_prob: float = 0.3
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
        u = jnp.full((p, d), 0.5, jnp.float32)
        return EvolutionState(
            hp=space.from_unit(u),
            u=u,
            scores=jnp.full((p,), jnp.nan, jnp.float32),
            is_choice=jnp.asarray([isinstance(dist, Choice) for _, dist in space.items()]),
            space=space,
        )

    def ask(self, state: EvolutionState, key: jax.Array):
        """Generation `state.round`: uniform in the first, bred from the last one told after.
        Returns dict name -> (population,)."""
        self._check_not_done(state, "ask")
        hp = _propose(
            key, state.hp, state.u, state.scores, state.is_choice, space=state.space,
            selection=self.selection, tournament_size=self.tournament_size, truncation=self.n_truncation,
            elite=self.elite, crossover_prob=self.crossover_prob, mutation_prob=self.mutation_prob,
            sigma=self.sigma,
        )
        return hp, state

    def tell(self, state: EvolutionState, hp: Mapping[str, jax.Array], scores) -> EvolutionState:
        self._check_not_done(state, "tell")
        n = state.space.check_told(hp, "Evolution.tell")
        if n != self.population:
            raise ValueError(
                f"Evolution.tell: hp has {n} members, expected population={self.population}. "
                f"Tell the whole population that ask returned."
            )
        scores = check_scores("Evolution", scores, n)
        hp = {name: jnp.asarray(hp[name], dist.dtype) for name, dist in state.space.items()}
        return state.replace(hp=hp, u=_to_unit(hp, state.space), scores=scores, round=state.round + 1)

    def done(self, state: EvolutionState) -> bool:
        return state.round >= self.generations

    def total_evaluations(self, space: Space | None = None) -> int:
        return self.population * self.generations

    def _check_not_done(self, state: EvolutionState, what: str):
        if self.done(state):
            raise RuntimeError(
                f"Evolution.{what}: all generations={self.generations} generations are done. "
                f"Check strategy.done(state) before ask."
            )


@quick_program(static_argnames=("selection", "tournament_size"))
def next_generation(
    key, u, scores, is_choice, *, selection: str, tournament_size: int, truncation, elite,
    crossover_prob, mutation_prob, sigma,
):
    """u: (P, d) last generation in the unit cube, scores: (P,) -> the next generation (P, d),
    elites first, then children; and copied (P,): the member each elite slot copies, -1 elsewhere.

    If no score is finite there is nothing to breed from, and the generation is drawn afresh
    (that is also the first generation: `init` starts with every score NaN). Only settings that
    change shapes are static, so strategies differing in probabilities share one compilation.
    """
    p, d = u.shape
    t = tournament_size
    draw = jax.random.uniform(key, (p, 2 * t + (d + 1) + 3 * d + d), jnp.float32)
    pick, cross, mut, fresh = jnp.split(draw, [2 * t, 2 * t + d + 1, 2 * t + d + 1 + 3 * d], axis=1)
    parents = select_parents(pick.reshape(2 * p, t), scores, selection, truncation)
    children = uniform_crossover(cross, u[parents[:p]], u[parents[p:]], crossover_prob)
    children = mutate(mut, children, is_choice, mutation_prob, sigma)
    children = jnp.where(jnp.any(jnp.isfinite(scores)), children, fresh)
    # Elite slots hold the best members, but only those with a finite score.
    order = rank_descending(scores)
    slot = jnp.arange(p)
    copied = jnp.where((slot < elite) & (slot < jnp.sum(jnp.isfinite(scores))), order, -1)
    return jnp.where((copied >= 0)[:, None], u[order], children), copied


@quick_program(static_argnames=("space",))
def _to_unit(hp, space: Space):
    return space.to_unit(hp)


@quick_program(static_argnames=("space", "selection", "tournament_size"))
def _propose(key, hp, u, scores, is_choice, space: Space, **settings):
    u, copied = next_generation(key, u, scores, is_choice, **settings)
    # Elites are copied from the values told, not decoded from u: to_unit / from_unit need not
    # round-trip to the bit in float32.
    new = space.from_unit(u)
    keep = copied >= 0
    return {name: jnp.where(keep, hp[name][jnp.maximum(copied, 0)], new[name]) for name in space.names}


def _check_fraction(name: str, value, low_open: bool = False):
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    ok = ok and (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0)
    if not ok:
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"Evolution: {name} must be a number in {interval}, got {name}={value!r}.")
