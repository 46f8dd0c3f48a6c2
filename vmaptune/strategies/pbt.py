"""Population-based training (Jaderberg et al., 2017): exploit and explore while the population trains.

Every `interval` epochs the members are ranked on their latest validation score. Each member of the
bottom `fraction` copies the weights and the whole optimizer state of a member drawn uniformly from
the top `fraction` (one gather over the population arrays on the device), then explores: each of
its hyperparameters is perturbed by a factor (0.8 or 1.2 by default) in its own scale, or, with
probability `resample_prob`, drawn afresh from the space. Members that fail (NaN / inf score) are
always replaced and never copied from.

Perturbing "in its own scale":
  LogUniform, IntLogUniform      x -> x * f                     (rounded for integers)
  OneMinusLogUniform             x -> 1 - (1 - x) * f           (momentum: f > 1 lowers it)
  Uniform, IntUniform            x -> low + (x - low) * f       (the offset from the lower bound)
  Choice of numbers              the neighbouring option by value, up for f > 1, down for f < 1
  Choice of names                unchanged (such options have no order): only resampling moves it
  Fixed                          never changes
Integers move at least one step; every value is clipped to its distribution's bounds.

Inside `vt.tune` the strategy acts during training: every `interval` epochs it sees a snapshot of
the population and decides which members copy which (weights, the whole optimizer state and the
model state travel together) and their explored values; the engine applies it. New learning
rates, momentum, weight decay, betas and schedule settings take effect at once: they live in the
optimizer state (`optax.inject_hyperparams`), written in place, so nothing recompiles. Dropout
takes effect from the next chunk. Names fixed when a member is built (the model's structure, the
optimizer and schedule kind, the batch size: the program says which) are not explored there:
they travel with the copied weights.

Black-box use (ask / tell, no vmaptune training): `ask` returns the population's hyperparameters for
the next interval, after exploit / explore; `state.parents[i]` is the member whose weights member i
must continue from (i itself when it did not copy), so the caller copies its own weights with one
gather, `weights = weights[state.parents]`, trains every member one interval and tells the scores.

The lineage and hyperparameter schedule of every member are recorded; `PBT.schedule(state, member)`
returns a member's schedule and `PBTReplay(schedule)` trains it again from scratch (in `vt.tune` or
with ask / tell).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.decisions import Decision, Snapshot, TrainingContext
from vmaptune.compile_cache import quick_program
from vmaptune.space import (
    Choice,
    Distribution,
    Fixed,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLogUniform,
    Space,
    Uniform,
)
from vmaptune.strategies.base import Strategy, check_scores, check_space, finite_or_worst

__all__ = ["PBT", "PBTState", "PBTSchedule", "PBTReplay", "PBTReplayState", "perturb", "exploit_explore"]


# -- the operators: pure array functions -----------------------------------------------------------------
def perturb(dist: Distribution, x: jax.Array, factor: jax.Array) -> jax.Array:
    """Encoded values x (n,) of one distribution, each moved by its factor (n,) in the
    distribution's own scale (see the module docstring); the result stays within the bounds."""
    up = jnp.sign(factor - 1.0)  # the direction integers and ordered options step in
    if isinstance(dist, Fixed):
        return x
    if isinstance(dist, LogUniform):
        return jnp.clip(x * factor, dist.low, dist.high).astype(x.dtype)
    if isinstance(dist, OneMinusLogUniform):
        return jnp.clip(1.0 - (1.0 - x) * factor, dist.low, dist.high).astype(x.dtype)
    if isinstance(dist, Uniform):
        return jnp.clip(dist.low + (x - dist.low) * factor, dist.low, dist.high).astype(x.dtype)
    if isinstance(dist, (IntUniform, IntLogUniform)):
        xf = x.astype(jnp.float32)
        if isinstance(dist, IntLogUniform):
            moved = jnp.round(xf * factor)
        else:
            moved = dist.low + jnp.round((xf - dist.low) * factor)
        moved = jnp.where(moved == xf, xf + up, moved)  # at least one step, or small integers never move
        return jnp.clip(moved, dist.low, dist.high).astype(x.dtype)
    if isinstance(dist, Choice):
        if not dist.is_numeric:
            return x
        # the neighbour by value, whatever order the options are listed in
        by_value = np.argsort(np.asarray(dist.options, np.float64), kind="stable")  # (k,) option of each rank
        rank = jnp.asarray(np.argsort(by_value))[x]
        moved = jnp.clip(rank + up.astype(rank.dtype), 0, len(dist.options) - 1)
        return jnp.asarray(by_value, x.dtype)[moved]
    # Any other distribution: scale its position in the unit interval.
    return dist.from_unit(jnp.clip(dist.to_unit(x) * factor, 0.0, 1.0))


def _live_rank(scores, live):
    """(P,) order best -> worst: finite scores first (descending), then failed live members, then the
    members not taking part; and (P,) each member's position in that order."""
    p = scores.shape[0]
    valid = live & jnp.isfinite(scores)
    group = jnp.where(valid, 0, jnp.where(live, 1, 2))
    order = jnp.lexsort((-finite_or_worst(jnp.where(valid, scores, jnp.nan)), group))
    position = jnp.zeros(p, jnp.int32).at[order].set(jnp.arange(p, dtype=jnp.int32))
    return order, position


@quick_program(static_argnames=("space", "explore"))
def exploit_explore(key, hp, scores, live, fraction, factors, resample_prob, *, space: Space,
                    explore: tuple[str, ...]):
    """One PBT step over a population.

    hp: dict name -> (P,) encoded hyperparameters; scores: (P,), higher is better, NaN / inf failed;
    live: (P,) bool, members taking part (padding is neither copied to nor from).
    Returns (new hp, parents (P,) int32, copied (P,) bool): copied members took the hyperparameters
    (and must take the weights) of member parents[i], then explored the names in `explore`;
    for every other member parents[i] == i and its hyperparameters are unchanged.

    Truncation selection: with L live members and k = floor(fraction * L), the k last in rank order
    (and every failed member) copy from one of the k best (the best, where k is 0), drawn uniformly;
    only members with a finite score are ever sources. Nothing is copied when no score is finite.
    """
    p = scores.shape[0]
    order, position = _live_rank(scores, live)
    n_live = jnp.sum(live)
    n_valid = jnp.sum(live & jnp.isfinite(scores))
    k = jnp.floor(fraction * n_live).astype(jnp.int32)
    failed = live & ~jnp.isfinite(scores)
    # (fewer live members than 1 / fraction, early stopping having taken the others: k is 0, and a
    # failed member still copies, from the best)
    n_sources = jnp.minimum(jnp.maximum(k, jnp.any(failed).astype(jnp.int32)), n_valid)
    copied = live & ((position >= n_live - k) | failed) & (n_sources > 0)
    k_pick, k_explore = jax.random.split(key)
    pick = jnp.floor(jax.random.uniform(k_pick, (p,)) * n_sources).astype(jnp.int32)
    source = order[jnp.clip(pick, 0, jnp.maximum(n_sources - 1, 0))]
    parents = jnp.where(copied, source, jnp.arange(p, dtype=jnp.int32))
    new = {name: hp[name][parents] for name in space.names}
    # One block of draws per step: (resample?, which factor, fresh unit value) per member and name.
    draw = jax.random.uniform(k_explore, (p, len(space), 3), jnp.float32)
    n_factors = factors.shape[0]
    for i, (name, dist) in enumerate(space.items()):
        if name not in explore or dist.is_fixed:
            continue
        factor = factors[jnp.minimum(jnp.floor(draw[:, i, 1] * n_factors).astype(jnp.int32), n_factors - 1)]
        moved = jnp.where(draw[:, i, 0] < resample_prob, dist.from_unit(draw[:, i, 2]),
                          perturb(dist, new[name], factor))
        new[name] = jnp.where(copied, moved.astype(new[name].dtype), new[name])
    return new, parents, copied


# -- the strategy ---------------------------------------------------------------------------------------------
@struct.dataclass
class PBTState:
    """hp: dict name -> (P,) the population's current hyperparameters (the last asked).
    scores: (P,) the last scores told (NaN before). parents: (P,) int32, the member whose weights
    each member continues from at the last ask (itself when it did not copy); copied: (P,) bool.
    history_*: one entry per generation told: the hp trained with, the parents at its start and
    the scores at its end. `final_scores` are the scores vt.tune told (best validation score per
    member) after a whole run. structural: names vt.tune's program fixes (never explored there)."""

    hp: dict[str, jax.Array]
    scores: jax.Array
    parents: jax.Array
    copied: jax.Array
    history_hp: tuple = ()
    history_parents: tuple = ()
    history_scores: tuple = ()
    final_scores: jax.Array | None = None
    space: Space = struct.field(pytree_node=False, default=None)
    generation: int = struct.field(pytree_node=False, default=0)  # generations told
    trained: bool = struct.field(pytree_node=False, default=False)  # a whole vt.tune run went through
    training: bool = struct.field(pytree_node=False, default=False)  # inside vt.tune's round: a generation runs
    finished: bool = struct.field(pytree_node=False, default=False)
    structural: frozenset = struct.field(pytree_node=False, default=frozenset())


@dataclasses.dataclass(frozen=True)
class PBTSchedule:
    """A member's hyperparameters over time. starts[j]: the epoch segment j begins at (starts[0] = 0);
    values[j]: plain values of every hyperparameter during segment j. lineage: the member whose
    network it was in each generation (itself at the end). member: whose schedule it is."""

    starts: tuple[int, ...]
    values: tuple[dict[str, Any], ...]
    member: int = -1
    lineage: tuple[int, ...] = ()

    def __post_init__(self):
        if not self.starts or len(self.starts) != len(self.values) or self.starts[0] != 0 \
                or any(b <= a for a, b in zip(self.starts, self.starts[1:])):
            raise ValueError(f"PBTSchedule: starts must begin at 0 and increase, one per values entry; got "
                             f"starts={list(self.starts)} for {len(self.values)} values.")

    def to_json(self) -> str:
        return json.dumps([{"epoch": s, **v} for s, v in zip(self.starts, self.values)])

    @classmethod
    def from_json(cls, text: str, member: int = -1) -> "PBTSchedule":
        rows = json.loads(text)
        return cls(starts=tuple(int(r.pop("epoch")) for r in rows), values=tuple(rows), member=member)

    def encoded(self, space: Space) -> dict[str, jax.Array]:
        """dict name -> (segments,) encoded values; a name the space lacks is refused (encode
        leaves it out: the replay trained the model's default while the schedule showed the value)."""
        extra = sorted({name for values in self.values for name in values} - set(space.names))
        if extra:
            raise ValueError(f"PBTReplay: the schedule sets {extra}, which the space does not have (it has "
                             f"{list(space.names)}); a replay trains the schedule whole: add them to the space (any "
                             f"distribution holding the schedule's values, e.g. the PBT run's own space).")
        return space.encode(list(self.values))

    def value_at(self, name: str, epoch: int):
        """The value of `name` during `epoch` (0-based)."""
        j = int(np.searchsorted(np.asarray(self.starts), epoch, side="right")) - 1
        return self.values[j][name]


@checked_arguments("vt.PBT(population=32, interval=2)")
@dataclasses.dataclass(frozen=True)
class PBT(Strategy):
    """Population-based training.

    population: members trained together (at least ceil(1 / fraction), so someone is replaced).
    interval: epochs between exploit / explore steps (inside vt.tune).
    fraction: the bottom fraction copies from the top fraction, in (0, 0.5] (default 0.25, as the paper).
    factors: perturbation factors, one drawn uniformly per hyperparameter (default 0.8 / 1.2).
    resample_prob: chance a hyperparameter is drawn afresh from the space instead of perturbed.
    explore: names to perturb; None = every searched name (inside vt.tune, the names the program
      fixes when a member is built are left out: they are copied with the weights).
    generations: ask / tell generations (None: no limit, the caller stops). vt.tune ignores it: one
      run of `epochs`, with an exploit / explore step every `interval` epochs.
    """

    population: int = 32
    interval: int = 2
    fraction: float = 0.25
    factors: tuple[float, ...] = (0.8, 1.2)
    resample_prob: float = 0.25
    explore: tuple[str, ...] | None = None
    generations: int | None = None

    def __post_init__(self):
        super().__post_init__()
        i = self.interval
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 1:
            raise ValueError(f"PBT: interval must be an integer >= 1 (epochs between exploit / explore steps), got "
                             f"interval={i!r}. Try interval=2.")
        f = self.fraction
        if isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0.0 < f <= 0.5:
            raise ValueError(f"PBT: fraction must be a number in (0, 0.5], got fraction={f!r}. The bottom fraction "
                             f"copies from the top fraction, so more than half would overlap; try fraction=0.25.")
        need = math.ceil(1.0 / f - 1e-9)
        if int(self.population * f) < 1:
            raise ValueError(f"PBT: population={self.population} with fraction={f} replaces no member "
                             f"(floor({self.population} * {f}) = 0). Use population >= {need}, or raise fraction.")
        factors = self.factors
        if isinstance(factors, (str, bytes)) or not isinstance(factors, Sequence) or not factors or any(
                isinstance(x, bool) or not isinstance(x, numbers.Real) or not 0.0 < x < math.inf for x in factors):
            raise ValueError(f"PBT: factors must be a non-empty list of positive numbers, got factors={factors!r}. "
                             f"Try factors=(0.8, 1.2).")
        object.__setattr__(self, "factors", tuple(float(x) for x in factors))
        r = self.resample_prob
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0.0 <= r <= 1.0:
            raise ValueError(f"PBT: resample_prob must be a number in [0, 1], got resample_prob={r!r}. Try 0.25.")
        if self.explore is not None:
            if isinstance(self.explore, str) or not all(isinstance(n, str) for n in self.explore):
                raise ValueError(f"PBT: explore must be a list of hyperparameter names or None, got "
                                 f"explore={self.explore!r}, e.g. explore=('learning_rate', 'momentum').")
            object.__setattr__(self, "explore", tuple(self.explore))
        g = self.generations
        if g is not None and (isinstance(g, bool) or not isinstance(g, numbers.Integral) or g < 1):
            raise ValueError(f"PBT: generations must be an integer >= 1 or None, got generations={g!r}. It bounds "
                             f"ask / tell runs (vt.tune ignores it); try generations=10.")

    # -- ask / tell ------------------------------------------------------------------------------------------
    def explored_names(self, space: Space, structural: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The names exploration perturbs. structural: names that cannot change (inside vt.tune,
        those the program fixes when a member is built); they are never explored."""
        if self.explore is None:
            return tuple(n for n in space.free_names if n not in structural)
        unknown = [n for n in self.explore if n not in space]
        if unknown:
            raise ValueError(f"PBT: explore names {unknown}, which the space does not have; it has "
                             f"{list(space.names)}.")
        fixed = [n for n in self.explore if space[n].is_fixed]
        if fixed:
            raise ValueError(f"PBT: explore names {fixed}, which the space fixes; give them a distribution or "
                             f"leave them out of explore.")
        fixed_in_training = [n for n in self.explore if n in structural]
        if fixed_in_training:
            raise ValueError(f"PBT: explore names {fixed_in_training}, which vt.tune cannot change during training "
                             f"(they fix the network, its initialisation or its program). Leave them out of explore; "
                             f"they are copied with the weights.")
        return self.explore

    def init(self, space: Space, key: jax.Array | None = None) -> PBTState:
        space = check_space("PBT", space)
        self.explored_names(space)  # unknown names fail here, before anything trains
        p = self.population
        return PBTState(hp={n: jnp.zeros(p, d.dtype) for n, d in space.items()},
                        scores=jnp.full(p, jnp.nan, jnp.float32), parents=jnp.arange(p, dtype=jnp.int32),
                        copied=jnp.zeros(p, bool), space=space)

    def ask(self, state: PBTState, key: jax.Array):
        """Generation 0: `population` draws from the space. Later: the last generation told, after
        exploit / explore; state.parents says whose weights each member continues from."""
        self._check_open(state, "ask")
        if state.generation == 0:
            hp = state.space.sample(key, self.population, distinct=True)
            return hp, state.replace(hp=hp, parents=jnp.arange(self.population, dtype=jnp.int32),
                                     copied=jnp.zeros(self.population, bool))
        hp, parents, copied = self._step(key, state, state.scores, jnp.ones(self.population, bool))
        return hp, state.replace(hp=hp, parents=parents, copied=copied)

    def tell(self, state: PBTState, hp: Mapping[str, jax.Array], scores) -> PBTState:
        """Scores of the generation just trained (its last interval), higher is better, NaN failed.
        After a vt.tune run, the best validation score of each member."""
        n = state.space.check_told(hp, "PBT.tell")
        scores = check_scores("PBT", scores, n)
        if state.trained:  # vt.tune tells once, after the whole run
            return state.replace(final_scores=scores, finished=True)
        self._check_open(state, "tell")
        if n != self.population:
            raise ValueError(f"PBT.tell: hp has {n} members, expected population={self.population}. "
                             f"Tell the whole population that ask returned.")
        hp = {name: jnp.asarray(hp[name], d.dtype) for name, d in state.space.items()}
        return self._record(state, hp, state.parents, scores).replace(hp=hp, scores=scores)

    def done(self, state: PBTState) -> bool:
        return state.finished or (self.generations is not None and state.generation >= self.generations)

    def total_evaluations(self, space: Space | None = None) -> int:
        """Scores told over an ask / tell run: population x generations (population when unbounded)."""
        return self.population * (self.generations or 1)

    def tune_rounds(self, space: Space | None = None) -> int:
        """Rounds vt.tune runs: one (the whole run is one population)."""
        return 1

    def check_epochs(self, epochs: int) -> None:
        """Errors for a vt.tune run of `epochs` epochs that could never exploit."""
        if self.interval >= epochs:
            raise ValueError(f"PBT: interval={self.interval} with epochs={epochs} never exploits (the first step "
                             f"would come after training ends). " + (
                                 f"Use interval < epochs, e.g. interval={max(1, epochs // 4)}." if epochs > 1 else
                                 "Train at least 2 epochs (epochs=2 with interval=1), or search with another "
                                 "strategy."))

    def _step(self, key, state: PBTState, scores, live):
        return exploit_explore(key, state.hp, jnp.asarray(scores, jnp.float32), jnp.asarray(live),
                               jnp.float32(self.fraction), jnp.asarray(self.factors, jnp.float32),
                               jnp.float32(self.resample_prob), space=state.space,
                               explore=self.explored_names(state.space, state.structural))

    @staticmethod
    def _record(state: PBTState, hp, parents, scores) -> PBTState:
        return state.replace(history_hp=state.history_hp + (hp,), history_parents=state.history_parents + (parents,),
                             history_scores=state.history_scores + (jnp.asarray(scores, jnp.float32),),
                             generation=state.generation + 1)

    def _check_open(self, state: PBTState, what: str):
        if self.done(state):
            raise RuntimeError(f"PBT.{what}: the search is done (generations={self.generations}). "
                               f"Check strategy.done(state) before ask.")

    # -- inside vt.tune: decisions between chunks ---------------------------------------------------------
    acts_during_training = True
    copies_members = True

    def begin_training(self, state: PBTState, context: TrainingContext):
        """Checks the run (interval against epochs; explored names the program fixes, members in
        several programs fail here, before anything compiles) and remembers the names the program
        fixes."""
        self.check_epochs(context.epochs)
        self.explored_names(state.space, context.structural)
        if context.members is not None and context.members != self.population:
            raise ValueError(f"PBT: the population holds {context.members} members, expected "
                             f"population={self.population}.")
        if context.programs > 1:
            structural = sorted(n for n in state.space.free_names if n in context.structural)
            raise ValueError(f"PBT copies members' weights into each other, which needs every member in one "
                             f"compiled program, but the structural names {structural} split this population into "
                             f"{context.programs} programs. Fix them with vt.Fixed (or let the model pad them into "
                             f"one program), or search them with another strategy.")
        return state.replace(structural=frozenset(context.structural), training=True), None

    def decision_epochs(self, state: PBTState, epochs: int) -> range:
        return range(self.interval, epochs, self.interval)

    def decide(self, state: PBTState, snapshot: Snapshot, key: jax.Array):
        """Ends a generation: ranks the members on their latest validation score (NaN once
        diverged), records it, and decides who copies whom and their explored values. A member
        early stopping stopped is done (as Ray Tune's PBT leaves a finished trial): never copied
        from (its copies would stop at once, with values they never trained with) nor into (its
        record stays); the fraction counts the members still training. Under cv / seeds a setting one
        of whose splits stopped is done too (its copies' splits would stop as that one did)."""
        scores = jnp.asarray(snapshot.latest_score)
        state = self._record(state, state.hp, state.parents, scores)
        stopped = snapshot.stopped if snapshot.any_stopped is None else snapshot.any_stopped
        hp, parents, copied = self._step(key, state, scores, snapshot.in_population & ~stopped)
        numeric = {k: np.asarray(v) for k, v in state.space.numeric(hp).items()}
        decision = Decision(copy_from=np.asarray(parents), hp=numeric, update=np.asarray(copied))
        return state.replace(hp=hp, parents=parents, copied=copied, scores=scores), decision

    def end_training(self, state: PBTState, snapshot: Snapshot) -> PBTState:
        """Records the last generation; the state then holds the whole run's history."""
        scores = jnp.asarray(snapshot.latest_score)
        state = self._record(state, state.hp, state.parents, scores)
        return state.replace(scores=scores, trained=True, training=False)

    # -- lineage, schedules, table columns ------------------------------------------------------------------
    def lineage(self, state: PBTState) -> np.ndarray:
        """(P, G) int: lineage[i, g] is the member whose network member i's final network was during
        generation g (lineage[i, -1] == i)."""
        g_total = len(state.history_parents)
        p = self.population
        out = np.zeros((p, g_total), np.int64)
        current = np.arange(p)
        for g in range(g_total - 1, -1, -1):
            out[:, g] = current
            current = np.asarray(state.history_parents[g])[current]  # vectorised over members
        return out

    def schedule(self, state: PBTState, member: int | None = None) -> PBTSchedule:
        """The hyperparameter schedule member `member` (default: the best) trained with, merged
        where consecutive generations kept the same values. Segment starts are in epochs
        (generation g starts at g * interval)."""
        if not state.history_hp:
            raise ValueError("PBT.schedule: no generation has been told yet.")
        member = self.best_member(state) if member is None else int(member)
        chain = self.lineage(state)[member]
        space = state.space
        starts, values = [], []
        for g, ancestor in enumerate(chain):
            row = {name: space[name].decode(np.asarray(state.history_hp[g][name])[ancestor]) for name in space.names}
            if not values or row != values[-1]:
                starts.append(g * self.interval)
                values.append(row)
        return PBTSchedule(tuple(starts), tuple(values), member=member, lineage=tuple(int(c) for c in chain))

    def best_member(self, state: PBTState) -> int:
        """The member with the best final score (vt.tune's scores, else the last generation told)."""
        scores = state.final_scores if state.final_scores is not None else state.scores
        return int(jnp.argmax(finite_or_worst(scores)))

    def final_hp(self, state: PBTState, asked=None) -> dict[str, np.ndarray]:
        """dict name -> (P,) the encoded hyperparameters members finished with (after perturbations)."""
        return {k: np.asarray(v) for k, v in state.hp.items()}

    def member_columns(self, state: PBTState) -> dict[str, np.ndarray]:
        """Extra table columns for the run's members (P,): generation (exploit / explore steps taken),
        parent (member copied from at its last copy, -1 never), copies (how many times it was
        replaced), lineage ('a>b>...>i': its network's member per generation) and hp_schedule
        (JSON list of {epoch, hyperparameters...}, what PBTReplay.from_results reads). Mid-run (a
        round interrupted) the generation in progress counts: the values members train with now."""
        if state.training:
            state = self._record(state, state.hp, state.parents, state.scores)
        p, g_total = self.population, len(state.history_parents)
        parents = np.stack([np.asarray(x) for x in state.history_parents]) if g_total else np.zeros((0, p), int)
        moved = parents != np.arange(p)[None, :]
        last = np.where(moved.any(axis=0), parents[::-1][np.argmax(moved[::-1], axis=0), np.arange(p)], -1)
        chains = self.lineage(state)
        return {
            "generation": np.full(p, max(g_total - 1, 0)),
            "parent": last.astype(np.int32),  # (int32 under x64 too)
            "copies": moved.sum(axis=0),
            "lineage": np.asarray([">".join(map(str, c)) for c in chains], dtype=object),
            "hp_schedule": np.asarray([self.schedule(state, i).to_json() for i in range(p)], dtype=object),
        }


# -- replaying a schedule from scratch ----------------------------------------------------------------------
@struct.dataclass
class PBTReplayState:
    space: Space = struct.field(pytree_node=False, default=None)
    segment: int = struct.field(pytree_node=False, default=0)  # ask / tell: segments told
    trained: bool = struct.field(pytree_node=False, default=False)
    finished: bool = struct.field(pytree_node=False, default=False)


_REPLAY_EXAMPLE = "vt.PBTReplay(pbt.schedule(state), population=3) or vt.PBTReplay.from_results(results)"


@checked_arguments(_REPLAY_EXAMPLE)
@dataclasses.dataclass(frozen=True, init=False)
class PBTReplay(Strategy):
    """Trains `population` fresh members (different seeds) with one PBT schedule, from scratch:
    the hyperparameters change at the schedule's epochs, in the optimizer state, as in PBT.

        schedule = pbt.schedule(state)                        # or PBTReplay.from_results(results)
        vt.tune(model, space, data, vt.PBTReplay(schedule, population=3), epochs=E)

    Ask / tell: one ask per segment, each returning the segment's values for every member.
    A @dataclass subclass takes the same arguments, schedule first, then its own fields
    (Strategy.leading_arguments).
    """

    schedule: PBTSchedule = None
    population: int = 1

    leading_arguments = ("schedule",)
    argument_example = _REPLAY_EXAMPLE

    def __init__(self, schedule: PBTSchedule, population: int = 1):  # schedule first: PBTReplay(schedule)
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "population", population)
        self.__post_init__()

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.schedule, PBTSchedule):
            raise TypeError(f"PBTReplay: schedule must be a PBTSchedule (from PBT.schedule or "
                            f"PBTReplay.from_results), got {self.schedule!r}.")

    @classmethod
    def from_results(cls, results, member: int | None = None, population: int = 1) -> "PBTReplay":
        """The schedule of row `member` of a PBT run's Results (default: the best row)."""
        df = results.members
        if "hp_schedule" not in df.columns:
            raise ValueError("PBTReplay.from_results: these results have no hp_schedule column; they were not "
                             "made by vt.PBT. Use PBTReplay(pbt.schedule(state)) instead.")
        if member is not None and (isinstance(member, (bool, np.bool_)) or not isinstance(member, numbers.Integral)
                                   or not 0 <= member < len(df)):
            raise ValueError(f"PBTReplay.from_results(member={member!r}): give a row of the results, an integer in "
                             f"0 .. {len(df) - 1}, or None for the best row.")
        row = results.best_index if member is None else int(member)
        return cls(PBTSchedule.from_json(df["hp_schedule"].iloc[row], member=int(df["member"].iloc[row])),
                   population=population)

    def init(self, space: Space, key: jax.Array | None = None) -> PBTReplayState:
        space = check_space("PBTReplay", space)
        self.schedule.encoded(space)  # unknown or missing names fail here
        return PBTReplayState(space=space)

    def _segment_hp(self, space: Space, j: int) -> dict[str, jax.Array]:
        enc = self.schedule.encoded(space)
        return {name: jnp.repeat(v[j:j + 1], self.population) for name, v in enc.items()}

    def ask(self, state: PBTReplayState, key: jax.Array):
        if self.done(state):
            raise RuntimeError("PBTReplay.ask: every segment is done. Check strategy.done(state) before ask.")
        return self._segment_hp(state.space, state.segment), state

    def tell(self, state: PBTReplayState, hp, scores) -> PBTReplayState:
        check_scores("PBTReplay", scores, state.space.check_told(hp, "PBTReplay.tell"))
        if state.trained:
            return state.replace(finished=True)
        return state.replace(segment=state.segment + 1)

    def done(self, state: PBTReplayState) -> bool:
        return state.finished or state.segment >= len(self.schedule.starts)

    def total_evaluations(self, space: Space | None = None) -> int:
        return self.population * len(self.schedule.starts)

    def check_epochs(self, epochs: int) -> None:
        if self.schedule.starts[-1] >= epochs:
            raise ValueError(f"PBTReplay: the schedule changes hyperparameters at epoch {self.schedule.starts[-1]}, "
                             f"but epochs={epochs}. Replay with epochs > {self.schedule.starts[-1]} (the PBT run's).")

    # -- inside vt.tune: the schedule's changes as decisions ------------------------------------------------
    acts_during_training = True

    def tune_rounds(self, space: Space | None = None) -> int:
        return 1

    def begin_training(self, state: PBTReplayState, context: TrainingContext):
        self.check_epochs(context.epochs)
        if context.members is not None and context.members != self.population:
            raise ValueError(f"PBTReplay: the population holds {context.members} members, expected "
                             f"population={self.population}.")
        return state, None  # segment 0's values are the ones the members start with

    def decision_epochs(self, state: PBTReplayState, epochs: int) -> tuple[int, ...]:
        return self.schedule.starts[1:]

    def decide(self, state: PBTReplayState, snapshot: Snapshot, key: jax.Array):
        """Every member takes the values of the segment that starts now."""
        j = self.schedule.starts.index(snapshot.epochs_done)
        numeric = state.space.numeric(self._segment_hp(state.space, j))
        return state, Decision(hp={k: np.asarray(v) for k, v in numeric.items()})

    def end_training(self, state: PBTReplayState, snapshot: Snapshot) -> PBTReplayState:
        return state.replace(trained=True)

    def final_hp(self, state: PBTReplayState, asked=None) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in self._segment_hp(state.space, len(self.schedule.starts) - 1).items()}

    def member_columns(self, state: PBTReplayState) -> dict[str, np.ndarray]:
        return {"hp_schedule": np.asarray([self.schedule.to_json()] * self.population, dtype=object)}
