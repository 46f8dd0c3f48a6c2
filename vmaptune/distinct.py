"""Distinct settings from a space of discrete values: a population drawn without replacement.

In a space whose every value is one of finitely many (vt.Choice, vt.Fixed, vt.IntUniform,
vt.IntLogUniform), independent draws repeat settings and miss others: 9 members of a 3 x 3 space
held 6 settings. scikit-learn's ParameterSampler draws lists without replacement; so do vmaptune's
random strategies (Space.sample(distinct=True)). A draw that repeats an earlier setting is drawn
again, so each draw keeps the space's odds among the settings not drawn yet; once redraws stop
finding new ones (a space nearly used up), the settings left are listed and taken at random. A
space of no more settings than members gives each once, the rest drawn independently.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.warn import warn

#: A space of at most this many grid points (before conditions) has its settings listed.
MAX_LISTED = 1 << 20
#: Redraws of the repeated rows at most, and in a row that remove none before the list is used.
ATTEMPTS, STALLED = 64, 4


def is_discrete(space) -> bool:
    """Whether every value of `space` is one of finitely many (and it has more than one setting
    to give: a space of Fixed values only is one setting, each member another initialisation), or
    of some members: each range is a conditional name (Space.only_when) that some members use none
    of (momentum only when optimizer='sgd': the adam members' settings are lists only)."""
    dists = [space[name] for name in space.names]
    if all(d.is_fixed for d in dists):
        return False
    ranges = [name for name, d in zip(space.names, dists) if d.kind == "float" and not d.is_fixed]
    return not ranges or _unused_together(space, ranges)


def _unused_together(space, names: list[str]) -> bool:
    """Whether some setting of the conditions' parents leaves every one of `names` unused."""
    conditions = space.conditions
    if any(name not in conditions for name in names):
        return False
    parents, todo = set(), list(names)
    while todo:
        for parent in conditions.get(todo.pop(), {}):
            if parent not in parents:
                parents.add(parent)
                todo.append(parent)
    if math.prod(len(_values(space[parent], count=True)) for parent in parents) > MAX_LISTED:
        return True  # (too many to list: a draw whose members all use a range repeats none, and is kept)
    axes = {parent: _values(space[parent]) for parent in sorted(parents)}
    points = np.meshgrid(*axes.values(), indexing="ij")
    size = points[0].size
    hp = {name: points[list(axes).index(name)].ravel() if name in axes else np.zeros(size, np.dtype(space[name].dtype))
          for name in space.names}
    used = space.active(hp)
    return bool((~np.any([used[name] for name in names], axis=0)).any())


def distinct(space, key: jax.Array, hp: dict, draw: Callable[[jax.Array], dict]) -> dict:
    """hp: n independent draws of a discrete space -> n distinct settings (dict name -> (n,)).
    draw(key): another n independent draws (the same compiled program). A member that uses a
    range (is_discrete's conditional one) has a setting of its own: only the others are redrawn."""
    hp = {name: np.array(v) for name, v in hp.items()}
    n = len(next(iter(hp.values())))
    # (with a conditional range a redraw can always find a new setting, one that uses it; no list to fall back on)
    ranged = any(space[name].kind == "float" and not space[name].is_fixed for name in space.names)
    repeats = redraw(hp, lambda hp: repeated_rows(space, hp), draw, key, give_up_when_stalled=not ranged)
    if not repeats.any():
        return _device(hp)
    # (redraws stopped finding new settings: the space is used up, or nearly; listed only now, as a
    # listing costs memory and time a draw that found n settings never needs)
    rng = host_rng(key)
    listed = settings(space)
    m = None if listed is None else len(next(iter(listed.values())))
    if m is not None and m <= n:  # every setting once, in random order; the rest as drawn
        order = rng.permutation(m)
        for name, column in hp.items():
            column[:m] = listed[name][order]
        if 1 < m < n:
            warn(f"{n} members drawn from a space of {m} settings (discrete values only): every setting once, "
                 f"{n - m} of them again. A population no larger than the space repeats none; a range "
                 f"(vt.Uniform, vt.LogUniform) instead of a list gives every member a value of its own.", UserWarning)
        return _device(hp)
    if listed is not None:  # (more settings than members: those not drawn, at random)
        drawn, every = setting_rows(space, hp)[~repeats], setting_rows(space, listed)
        _, inverse = np.unique(np.concatenate([drawn, every]), axis=0, return_inverse=True)
        free = np.flatnonzero(~np.isin(inverse.ravel()[len(drawn):], inverse.ravel()[:len(drawn)]))
        pick = rng.choice(free, int(repeats.sum()), replace=False)
        for name, column in hp.items():
            column[repeats] = listed[name][pick]
    else:
        warn(f"{n} members drawn from a space of discrete values: {int(repeats.sum())} repeat a setting after "
             f"redraws found no new one. A range (vt.Uniform, vt.LogUniform) instead of a list gives every member a value "
             f"of its own.", UserWarning)
    return _device(hp)


def redraw(hp: dict, repeats_of: Callable[[dict], np.ndarray], draw: Callable[[jax.Array], dict], key: jax.Array,
           give_up_when_stalled: bool = True) -> np.ndarray:
    """Draws again the members that repeat a setting, until none does: hp (dict name -> (n,) numpy,
    changed in place); repeats_of(hp) -> (n,) bool, the members to draw again; draw(key) -> n fresh
    draws (the same compiled program each time). Stops after ATTEMPTS draws, or (give_up_when_stalled)
    after STALLED in a row that left no fewer repeats. Returns the members that still repeat."""
    repeats, stalled = repeats_of(hp), 0
    for attempt in range(1, ATTEMPTS + 1):
        if not repeats.any() or (give_up_when_stalled and stalled >= STALLED):
            break
        fresh = draw(jax.random.fold_in(key, attempt))
        for name, column in hp.items():
            column[repeats] = np.asarray(fresh[name])[repeats]
        now = repeats_of(hp)
        stalled = stalled + 1 if now.sum() >= repeats.sum() else 0
        repeats = now
    return repeats


def repeated_rows(space, hp: dict, seen: dict | None = None) -> np.ndarray:
    """(n,) bool: the members whose setting an earlier member has, or a member of `seen` (dict
    name -> (m,), earlier members: an earlier round's)."""
    rows = setting_rows(space, hp)
    earlier = 0 if seen is None else len(next(iter(seen.values())))
    if earlier:
        rows = np.concatenate([setting_rows(space, seen), rows])
    _, first = np.unique(rows, axis=0, return_index=True)
    repeats = np.ones(len(rows), bool)
    repeats[first] = False
    return repeats[earlier:]


def setting_rows(space, hp: dict) -> np.ndarray:
    """(n, len(space)): each member's setting, a conditional name not in use as -inf (not a part of
    it; not NaN, which np.unique would count as a value of its own in every row)."""
    used = space.active(hp)
    return np.stack([np.where(used[name], hp[name], -np.inf) if name in used else np.asarray(hp[name], np.float64)
                     for name in space.names], 1).astype(np.float64)


@functools.lru_cache(maxsize=4)
def settings(space) -> dict | None:
    """Every distinct setting of a discrete space, dict name -> (m,) encoded values (a conditional
    name not in use at its first value); None where the grid holds more than MAX_LISTED points,
    or a distribution lists no values."""
    dists = {name: space[name] for name in space.names}
    listed = all(d.is_fixed or hasattr(d, "options") or (d.kind != "float" and hasattr(d, "low") and hasattr(d, "high"))
                 for d in dists.values())  # (not a range of floats: a conditional one's members have no list)
    # (counted before any axis is made: IntUniform(0, 2e9) would be 8 GB)
    if not listed or math.prod(len(_values(d, count=True)) for d in dists.values()) > MAX_LISTED:
        return None
    axes = {name: _values(dist) for name, dist in dists.items()}
    digits = np.unravel_index(one_point_per_setting(space, axes), tuple(len(axis) for axis in axes.values()))
    return {name: axes[name][index] for name, index in zip(axes, digits)}


def one_point_per_setting(space, axes: dict) -> np.ndarray:
    """Indices (C order) of the points of the grid `axes` (name -> encoded values) that are distinct
    settings: where a conditional name is not used (Space.only_when), only the point at its axis's
    first value is kept. GridSearch's grid and a discrete space's listing."""
    shape = tuple(len(axis) for axis in axes.values())
    digits = dict(zip(axes, np.unravel_index(np.arange(math.prod(shape)), shape)))
    keep = np.ones(math.prod(shape), bool)
    for name, used in space.active({name: axes[name][digits[name]] for name in axes}).items():
        keep &= used | (digits[name] == 0)
    return np.flatnonzero(keep)


def host_rng(key: jax.Array) -> np.random.Generator:
    """A numpy generator seeded from a JAX key (typed or raw): host draws that follow the search's seed."""
    data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.random.default_rng(np.asarray(data, np.uint32).ravel().tolist())


def _values(dist, count: bool = False):
    """A discrete distribution's encoded values, (k,); count=True: a range of their number only."""
    if dist.is_fixed or hasattr(dist, "options"):  # (Fixed, Choice: their grid is every value)
        return np.asarray(dist.grid(), np.dtype(dist.dtype))
    if count:
        return range(int(dist.high) - int(dist.low) + 1)
    return np.arange(dist.low, dist.high + 1, dtype=np.dtype(dist.dtype))


def _device(hp: dict) -> dict:
    return {name: jnp.asarray(column) for name, column in hp.items()}
