"""Coarse to fine: rounds of random search, each in a box shrunk around the best members so far.

Ranges live in the unit cube of the space (`Space.to_unit`), so a range shrinks in each
parameter's own scale: log for `LogUniform`, log of 1 - x for `OneMinusLogUniform`, bins for
integers and index neighbourhoods for `Choice` (the contiguous run of options whose bins meet
the range). The box never leaves [0, 1], the original bounds. In a space of only discrete values, a
round holds distinct settings that no earlier round trained, as far as its box holds them (as
RandomSearch's population: vmaptune/distinct.py).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.compile_cache import quick_program
from vmaptune.distinct import host_rng, is_discrete, redraw, repeated_rows, setting_rows, settings
from vmaptune.space import Choice, Space
from vmaptune.strategies.base import (
    Strategy,
    check_positive_int,
    check_scores,
    check_space,
    rank_descending,
)
from vmaptune.warn import warn

__all__ = ["CoarseToFine", "CoarseToFineState", "shrink_range", "sample_in_range", "unseen_in_range"]

# Discrete values are read a hair inside the range: an end that lands exactly on a bin edge
# (centre +- pad often does) would otherwise admit a neighbouring option with zero probability.
_EDGE = 1e-6


@struct.dataclass
class CoarseToFineState:
    """History of every round, rounds fixed up front so the arrays keep their shape.

    low, high: (rounds, d) the unit-cube range each round samples from (row `round` is current).
    hp: dict name -> (rounds, population) the members told for each round.
    scores: (rounds, population); NaN for rounds not yet told (NaN ranks last, like a failure).
    """

    low: jax.Array
    high: jax.Array
    hp: dict[str, jax.Array]
    scores: jax.Array
    space: Space = struct.field(pytree_node=False)
    round: int = struct.field(pytree_node=False, default=0)


def shrink_range(low, high, u, scores, top_k: int, margin: float):
    """The range around the top_k finite-scored members, in the unit cube.

    low, high: (d,) the current range; u: (m, d) members' unit positions; scores: (m,).
    Returns (d,), (d,): the span of the top_k members padded by margin * (high - low) on each
    side, clipped to [0, 1]. Padding by a fraction of the current width keeps the range from
    collapsing: it keeps at least margin * its width per round. With no finite score, the
    range is kept.
    """
    top = rank_descending(scores)[:top_k]
    ok = jnp.isfinite(scores[top])[:, None]
    span_low = jnp.min(jnp.where(ok, u[top], jnp.inf), axis=0)
    span_high = jnp.max(jnp.where(ok, u[top], -jnp.inf), axis=0)
    pad = margin * (high - low)
    new_low = jnp.clip(span_low - pad, 0.0, 1.0)
    new_high = jnp.clip(span_high + pad, 0.0, 1.0)
    any_ok = jnp.any(ok)
    return jnp.where(any_ok, new_low, low), jnp.where(any_ok, new_high, high)


def _value_bounds(space: Space, low, high) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Encoded values at the ends of a unit range (read just inside for discrete parameters)."""
    discrete = jnp.asarray([d.kind != "float" for _, d in space.items()])
    mid = 0.5 * (low + high)
    inner_low = jnp.where(discrete, jnp.minimum(low + _EDGE, mid), low)
    inner_high = jnp.where(discrete, jnp.maximum(high - _EDGE, mid), high)
    lo, hi = space.from_unit(inner_low[None]), space.from_unit(inner_high[None])
    return {name: (lo[name][0], hi[name][0]) for name in space.names}


@quick_program(static_argnames=("space", "n"))
def sample_in_range(key, space: Space, low, high, n: int) -> dict[str, jax.Array]:
    """n members uniform in the box [low, high] of the unit cube: dict name -> (n,)."""
    u = low + (high - low) * jax.random.uniform(key, (n, len(space)), jnp.float32)
    hp = space.from_unit(u)
    # from_unit is monotone, so only the edge-bin guard above can move a discrete value.
    bounds = _value_bounds(space, low, high)
    return {name: jnp.clip(x, *bounds[name]) for name, x in hp.items()}


def unseen_in_range(key, space: Space, low, high, hp: Mapping[str, Any], seen: Mapping[str, Any],
                    r: int) -> dict[str, jax.Array]:
    """hp: n draws of sample_in_range(key, ...) in a discrete space, for round r -> n settings that
    repeat neither one another nor a setting of `seen` (dict name -> (m,), the earlier rounds'
    members), as far as the box holds them.

    As Space.sample(distinct=True), inside the box: the members that repeat are drawn again (the
    box's odds among the settings left); once redraws stop finding new ones, the box's settings not
    tried yet are listed and taken at random, then those the round lacks (each of the box's settings
    once, the rest as drawn). Members that still repeat a setting are kept, with a warning.
    """
    hp = {name: np.array(v) for name, v in hp.items()}
    n = len(next(iter(hp.values())))
    repeats = redraw(hp, lambda hp: repeated_rows(space, hp, seen),
                     lambda key: sample_in_range(key, space, low, high, n), key)
    if not repeats.any():
        return {name: jnp.asarray(column) for name, column in hp.items()}
    # (redraws stopped finding new settings: the box is used up, or nearly; listed only now)
    listed = settings(space)
    if listed is None:  # (a space too large to list, or with conditional ranges some members use)
        warn(f"CoarseToFine: {int(repeats.sum())} of round {r}'s {n} members repeat a setting tried or asked "
             f"before: redraws in the round's range found no new one. {_fewer_repeats(space, r)}", UserWarning)
        return {name: jnp.asarray(column) for name, column in hp.items()}
    tried = {tuple(row) for row in setting_rows(space, seen)} if len(next(iter(seen.values()))) else set()
    used = space.active(listed)
    inside = np.ones(len(next(iter(listed.values()))), bool)
    for name, (lo, hi) in _value_bounds(space, low, high).items():
        unused = ~used[name] if name in used else False  # (a name a setting does not use is no part of it)
        inside &= ((listed[name] >= np.asarray(lo)) & (listed[name] <= np.asarray(hi))) | unused
    box = {name: column[inside] for name, column in listed.items()}
    box_rows = [tuple(row) for row in setting_rows(space, box)]
    rng = host_rng(key)

    def fill(members, taken):
        """Gives `members` settings of the box not in `taken`, at random, as far as there are any."""
        free = np.flatnonzero([row not in taken for row in box_rows])
        pick = rng.choice(free, min(len(free), len(members)), replace=False)
        members, chosen = members[: len(pick)], {name: column[pick] for name, column in box.items()}
        chosen_used = space.active(chosen)  # (a name they do not use keeps the value drawn in the box)
        for name, column in hp.items():
            column[members] = np.where(chosen_used[name], chosen[name], column[members]) \
                if name in chosen_used else chosen[name]

    fill(np.flatnonzero(repeats), tried | {tuple(row) for row in setting_rows(space, hp)[~repeats]})
    twice = repeated_rows(space, hp)
    fill(np.flatnonzero(twice), {tuple(row) for row in setting_rows(space, hp)[~twice]})
    left = int(repeated_rows(space, hp, seen).sum())
    if left:
        held = f"{len(box_rows)} setting{'s' if len(box_rows) != 1 else ''}"
        if r == 0:
            where = f"the space holds {held} (discrete values only)"
        else:
            where = f"round {r}'s range holds {held}, {sum(row in tried for row in box_rows)} of them tried"
        warn(f"CoarseToFine: {left} of round {r}'s {n} members repeat settings tried or asked before: {where}. "
             f"{_fewer_repeats(space, r)}", UserWarning)
    return {name: jnp.asarray(column) for name, column in hp.items()}


def _fewer_repeats(space: Space, r: int) -> str:
    """What repeats fewer settings in round r of a discrete (or conditionally continuous) space."""
    if r > 0:
        return "A larger margin (wider ranges) or fewer rounds repeat fewer."
    ranges = any(dist.kind == "float" for _, dist in space.items())  # (each conditional: is_discrete)
    return ("A population no larger than the space repeats none" + ("" if ranges else
            "; a range (vt.Uniform, vt.LogUniform) instead of a list gives every member a value of its own; a "
            "space this small is searched whole by vt.GridSearch") + ".")


@quick_program(static_argnames=("space", "top_k"))
def _record(low, high, hist_hp, hist_scores, hp, scores, r, margin, space: Space, top_k: int):
    """Writes round r into the history and, unless r is the last round, sets row r + 1 of the
    ranges around the top_k of every round so far."""
    hist_hp = {name: hist_hp[name].at[r].set(hp[name]) for name in space.names}
    # Rows of rounds not yet told hold zeros (to_unit may give inf there) but NaN scores,
    # so shrink_range masks them out.
    hist_scores = hist_scores.at[r].set(scores)
    u = space.to_unit({name: x.reshape(-1) for name, x in hist_hp.items()})
    flat_scores = hist_scores.reshape(-1)
    new_low, new_high = shrink_range(low[r], high[r], u, flat_scores, top_k, margin)
    # a conditional name's range: around the best of the members that use it (Space.only_when),
    # not the values the others carry unused
    used = space.active({name: x.reshape(-1) for name, x in hist_hp.items()}, xp=jnp)
    for j, name in enumerate(space.names):
        if name in used:
            lo, hi = shrink_range(low[r][j:j + 1], high[r][j:j + 1], u[:, j:j + 1],
                                  jnp.where(used[name], flat_scores, jnp.nan), top_k, margin)
            new_low, new_high = new_low.at[j].set(lo[0]), new_high.at[j].set(hi[0])
    last = low.shape[0] - 1
    nxt = jnp.minimum(r + 1, last)
    keep = r >= last  # the last round has no next range to set
    low = low.at[nxt].set(jnp.where(keep, low[nxt], new_low))
    high = high.at[nxt].set(jnp.where(keep, high[nxt], new_high))
    return low, high, hist_hp, hist_scores


@checked_arguments("vt.CoarseToFine(population=64, rounds=4)")
@dataclasses.dataclass(frozen=True)
class CoarseToFine(Strategy):
    """`rounds` rounds of `population` random members; each round's range is the previous one
    shrunk around the `top_k` best members of all rounds so far, padded by `margin`.

    top_k: members that set the next range (default: population // 8, at least 2).
    margin: padding on each side, as a fraction of the current range's width, in (0, 0.5).
    """

    population: int = 64
    rounds: int = 4
    top_k: int | None = None
    margin: float = 0.1

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("CoarseToFine", "rounds", self.rounds)
        if self.top_k is not None:
            check_positive_int("CoarseToFine", "top_k", self.top_k)
            if self.top_k > self.population:
                raise ValueError(
                    f"CoarseToFine: top_k must be <= population, got top_k={self.top_k} with "
                    f"population={self.population}. Lower top_k or raise population."
                )
        m = self.margin
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not (0.0 < m < 0.5):
            raise ValueError(
                f"CoarseToFine: margin must be a number in (0, 0.5), got margin={m!r}. It pads each side of "
                f"the top-k span by margin * the current width: at 0 a range can collapse to a point, "
                f"at 0.5 or more it can never shrink. Try margin=0.1."
            )

    @property
    def k(self) -> int:
        """The top_k in use."""
        if self.top_k is not None:
            return self.top_k
        return min(self.population, max(2, self.population // 8))

    def init(self, space: Space, key: jax.Array | None = None) -> CoarseToFineState:
        space = check_space("CoarseToFine", space)
        d, r, p = len(space), self.rounds, self.population
        return CoarseToFineState(
            low=jnp.zeros((r, d), jnp.float32),
            high=jnp.ones((r, d), jnp.float32),
            hp={name: jnp.zeros((r, p), dist.dtype) for name, dist in space.items()},
            scores=jnp.full((r, p), jnp.nan, jnp.float32),
            space=space,
        )

    def ask(self, state: CoarseToFineState, key: jax.Array):
        """`population` members uniform in the current range: dict name -> (population,). In a space
        of only discrete values, distinct settings not tried in earlier rounds, as far as the range
        holds them (unseen_in_range)."""
        self._check_not_done(state, "ask")
        space, r = state.space, state.round
        low, high = state.low[r], state.high[r]
        hp = sample_in_range(key, space, low, high, self.population)
        if is_discrete(space) and (self.population > 1 or r > 0):
            seen = {name: np.asarray(x)[:r].reshape(-1) for name, x in state.hp.items()}
            hp = unseen_in_range(key, space, low, high, hp, seen, r)
        return hp, state

    def tell(self, state: CoarseToFineState, hp: Mapping[str, jax.Array], scores) -> CoarseToFineState:
        """Records the round and sets the next round's range around the top_k so far."""
        self._check_not_done(state, "tell")
        space, r = state.space, state.round
        n = space.check_told(hp, "CoarseToFine.tell")
        if n != self.population:
            raise ValueError(
                f"CoarseToFine.tell: hp has {n} members, expected population={self.population}. "
                f"Tell the whole population that ask returned."
            )
        scores = check_scores("CoarseToFine", scores, n)
        hp = {name: jnp.asarray(hp[name], dist.dtype) for name, dist in space.items()}
        # The round index goes in traced, so every round reuses one compiled update.
        low, high, history, all_scores = _record(
            state.low, state.high, state.hp, state.scores, hp, scores, jnp.int32(r), self.margin,
            space=space, top_k=self.k,
        )
        return state.replace(low=low, high=high, hp=history, scores=all_scores, round=r + 1)

    def done(self, state: CoarseToFineState) -> bool:
        return state.round >= self.rounds

    def total_evaluations(self, space: Space | None = None) -> int:
        return self.population * self.rounds

    def ranges(self, state: CoarseToFineState) -> list[dict[str, Any]]:
        """The range each round searched (or is about to), in plain values, for reports.

        One dict per round: name -> (low, high) for numbers, the tuple of allowed options for a
        Choice, the value for a Fixed parameter.
        """
        out = []
        for r in range(min(state.round + 1, self.rounds)):
            bounds = _value_bounds(state.space, state.low[r], state.high[r])
            row = {}
            for name, dist in state.space.items():
                lo, hi = (np.asarray(b) for b in bounds[name])
                if dist.is_fixed:
                    row[name] = dist.value
                elif isinstance(dist, Choice):
                    row[name] = tuple(dist.options[int(lo) : int(hi) + 1])
                else:
                    row[name] = (dist.decode(lo), dist.decode(hi))
            out.append(row)
        return out

    def _check_not_done(self, state: CoarseToFineState, what: str):
        if self.done(state):
            raise RuntimeError(
                f"CoarseToFine.{what}: all rounds={self.rounds} rounds are done. "
                f"Check strategy.done(state) before ask."
            )
