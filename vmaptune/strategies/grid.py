"""Grid search: every point of a cartesian product of per-parameter values, exactly once.

The grid is never materialised: point i of the product is found by reading i in the mixed radix
of the axis lengths (`jnp.unravel_index`), so a population is one gather per parameter.
Points come in C order (the last parameter of the space varies fastest), `population` at a time;
the last population may be smaller. With `sample=n`, n distinct points of the grid drawn at random
(scikit-learn's ParameterSampler over lists: without replacement), in the order drawn. In a space
with conditions (Space.only_when), points that differ only in a name their setting does not use are
one point: the distinct points' indices are listed at init.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.distinct import host_rng, one_point_per_setting
from vmaptune.space import Choice, Distribution, Fixed, Space
from vmaptune.strategies.base import Strategy, check_positive_int, check_scores, check_space
from vmaptune.warn import warn

__all__ = ["GridSearch", "GridSearchState"]

# Point indices travel as int32 on device; no grid this large could be trained anyway.
_MAX_GRID = 2**31 - 1
_MAX_LISTED = 10**8  # a grid under conditions lists its distinct points (int64 digits per axis)


@struct.dataclass
class GridSearchState:
    """`axes[name]`: encoded values of that axis; `shape`: the axis lengths; `size`: their product."""

    axes: dict[str, jax.Array]
    space: Space = struct.field(pytree_node=False)
    shape: tuple[int, ...] = struct.field(pytree_node=False)
    size: int = struct.field(pytree_node=False)
    rounds: int = struct.field(pytree_node=False)  # asks the whole grid takes
    round: int = struct.field(pytree_node=False, default=0)
    points: jax.Array | None = None  # (size,) int32 grid indices asked, in order (sample=n, conditions); None: all


def _plain_value_error(name: str, value: Any, dist: Distribution, why: str) -> ValueError:
    return ValueError(
        f"GridSearch: values[{name!r}] contains {value!r}, {why} (the space has {name}={dist!r}). "
        f"Fix the value, or widen the space."
    )


def _encode_axis(name: str, plain: Sequence[Any], dist: Distribution) -> np.ndarray:
    """Plain values of one axis -> encoded values (dtype of the distribution), checked against dist."""
    encoded = []
    for v in plain:
        if isinstance(dist, Fixed):
            if v != dist.value:
                raise ValueError(
                    f"GridSearch: values[{name!r}] = {list(plain)!r}, but the space fixes {name} to "
                    f"{dist.value!r}. Drop {name!r} from values, or make it a distribution in the space."
                )
            encoded.append(dist.encode(v))
        elif isinstance(dist, Choice):
            if v not in dist.options:
                raise _plain_value_error(name, v, dist, f"which is not one of the options {list(dist.options)!r}")
            encoded.append(dist.options.index(v))
        else:
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
                raise _plain_value_error(name, v, dist, "which is not a finite number")
            if dist.kind == "int" and float(v) != int(v):
                raise _plain_value_error(name, v, dist, "which is not an integer")
            if not dist.low <= v <= dist.high:
                raise _plain_value_error(name, v, dist, f"which is outside [{dist.low!r}, {dist.high!r}]")
            encoded.append(int(v) if dist.kind == "int" else float(v))
    axis = np.asarray(encoded, dtype=np.dtype(dist.dtype))
    # Distinct plain values can collide once encoded (two floats one float32 apart).
    uniq, counts = np.unique(axis, return_counts=True)
    if len(uniq) != len(axis):
        # the values as given (0.01, not float32's 0.009999999776482582)
        dupes = [plain[int(np.flatnonzero(axis == x)[0])] for x in uniq[counts > 1]]
        raise ValueError(
            f"GridSearch: values[{name!r}] has duplicates {dupes!r} (as encoded for {dist!r}). "
            f"List each value once: the grid evaluates every point exactly once."
        )
    return axis


#: Points per unlisted parameter when points_per_axis is not given: low, middle and high.
DEFAULT_POINTS = 3


@checked_arguments("vt.GridSearch(population=64, values={'learning_rate': [1e-3, 1e-2]})")
@dataclasses.dataclass(frozen=True)
class GridSearch(Strategy):
    """Every point of a grid, `population` points per ask.

    values: {name: [plain values]}, e.g. {"learning_rate": [1e-3, 1e-2], "activation": ["relu"]};
        stored as a tuple of (name, tuple) pairs so the strategy stays hashable.
    points_per_axis: n for every parameter not in `values`: `dist.grid(n)`, n points evenly spaced
        in the distribution's own scale (fewer for narrow integer ranges, every option of a Choice).
        None: DEFAULT_POINTS (3: low, middle, high in the parameter's scale).
    Fixed parameters take their one value.
    sample: None (every point), or n: n distinct points of the grid drawn at random from the
        search's seed (without replacement; every point once, in random order, when the grid
        holds n or fewer; in C order for an ask / tell init without a key).
    """

    population: int = 64
    values: Any = None
    points_per_axis: int | None = None
    sample: int | None = None

    def __post_init__(self):
        super().__post_init__()
        if self.points_per_axis is not None:
            check_positive_int("GridSearch", "points_per_axis", self.points_per_axis)
        if self.sample is not None:
            check_positive_int("GridSearch", "sample", self.sample)
        values = self.values if self.values is not None else {}
        if isinstance(values, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in values):
            values = dict(values)  # already normalised (dataclasses.replace passes it back in)
        if not isinstance(values, Mapping):
            raise TypeError(
                f"GridSearch: values must be a dict name -> list of values, got {type(values).__name__}: "
                f"{values!r}. E.g. values={{'learning_rate': [1e-3, 1e-2]}}."
            )
        pairs = []
        for name, vals in values.items():
            if not isinstance(name, str):
                raise TypeError(f"GridSearch: values keys must be parameter names, got {name!r}.")
            if isinstance(vals, (str, bytes)) or not isinstance(vals, (Sequence, np.ndarray)):
                raise TypeError(
                    f"GridSearch: values[{name!r}] must be a list of values, got {vals!r}. "
                    f"E.g. values={{{name!r}: [{vals!r}]}}."
                )
            vals = tuple(vals.tolist() if isinstance(vals, np.ndarray) else vals)
            if not vals:
                raise ValueError(
                    f"GridSearch: values[{name!r}] is empty. Give at least one value, or leave {name!r} "
                    f"out of values to use points_per_axis."
                )
            for v in vals:
                if not isinstance(v, (str, numbers.Number)):
                    raise TypeError(f"GridSearch: values[{name!r}] contains {v!r}; values must be numbers or strings.")
            pairs.append((name, vals))
        object.__setattr__(self, "values", tuple(pairs))

    # -- the grid ----------------------------------------------------------------------------
    def axes(self, space: Space) -> dict[str, np.ndarray]:
        """name -> encoded values of that axis, in the space's order. Validates against the space."""
        space = check_space("GridSearch", space)
        given = dict(self.values)
        unknown = [n for n in given if n not in space]
        if unknown:
            raise ValueError(
                f"GridSearch: values has {unknown} which {'is' if len(unknown) == 1 else 'are'} not in the "
                f"space; the space has {list(space.names)}. Fix the name or add it to the space."
            )
        axes = {}
        for name, dist in space.items():
            if name in given:
                axes[name] = _encode_axis(name, given[name], dist)
            elif dist.is_fixed:
                axes[name] = np.asarray(dist.grid(), np.dtype(dist.dtype))
            else:
                # np.unique: float32 can merge neighbouring points of a very narrow range.
                axes[name] = np.unique(np.asarray(dist.grid(self.points_per_axis or DEFAULT_POINTS),
                                                  np.dtype(dist.dtype)))
        return axes

    def grid_size(self, space: Space) -> int:
        """Number of points in the grid over `space`: the product of the axis lengths, less the
        points that differ from another only in a name their settings do not use (Space.only_when)."""
        axes = self.axes(space)
        kept = _distinct_points(space, axes)
        return math.prod(len(a) for a in axes.values()) if kept is None else len(kept)

    def total_evaluations(self, space: Space | None = None) -> int | None:
        """Grid size (at most `sample`); known without the space when every parameter is listed in
        `values`."""
        if space is not None:
            size = self.grid_size(space)
        elif self.points_per_axis is None and self.values:  # every searched name listed (the usual case)
            size = math.prod(len(v) for _, v in self.values)
        else:
            return self.sample
        return size if self.sample is None else min(size, self.sample)

    # -- ask / tell --------------------------------------------------------------------------
    def init(self, space: Space, key: jax.Array | None = None) -> GridSearchState:
        axes = self.axes(space)
        shape = tuple(len(a) for a in axes.values())
        size = math.prod(shape)
        if size > _MAX_GRID:
            raise ValueError(
                f"GridSearch: the grid has {size} points ({dict(zip(axes, shape))}), more than 2**31 - 1. "
                f"Lower points_per_axis or shorten values; or use RandomSearch."
            )
        points = kept = _distinct_points(space, axes)  # (n,) indices of the product; None: all of it
        if kept is not None:
            size = len(kept)
            points = jnp.asarray(kept, jnp.int32)
        if self.sample is not None and self.sample > size:
            warn(f"GridSearch(sample={self.sample}): the grid has only {size} points "
                 f"({dict(zip(axes, shape))}); all of them are searched, once each.", UserWarning)
        if self.sample is not None and (key is not None or self.sample < size):  # (no key: a whole grid in C order)
            if key is None:
                raise ValueError("GridSearch(sample=...).init needs a key: the sampled points come from it "
                                 "(vt.tune passes the search's own).")
            rng = host_rng(key)
            # the order drawn, as scikit-learn's ParameterSampler (a whole grid too: its rounds differ)
            drawn = rng.choice(size, min(self.sample, size), replace=False)
            points = jnp.asarray(drawn if kept is None else kept[drawn], jnp.int32)
            size = len(points)
        return GridSearchState(
            axes={k: jnp.asarray(v) for k, v in axes.items()}, space=space, shape=shape, size=size,
            rounds=-(-size // self.population), points=points,
        )

    def ask(self, state: GridSearchState, key: jax.Array | None = None):
        """The points [round * population, ...) of the grid: dict name -> (n,), n <= population.

        `key` is unused: the grid (and a sample's points, drawn at init) is deterministic.
        """
        if self.done(state):
            raise RuntimeError(
                f"GridSearch.ask: all {state.size} grid points were already asked (round {state.round}). "
                f"Check strategy.done(state) before ask."
            )
        start = state.round * self.population
        n = min(self.population, state.size - start)
        index = start + jnp.arange(n, dtype=jnp.int32)
        if state.points is not None:
            index = state.points[index]
        digits = jnp.unravel_index(index, state.shape)
        # (shape is in the space's order; axes, a dict in a pytree, comes back from any tree map,
        # a checkpoint's restore among them, with its names sorted)
        names = [name for name in state.space.names if name in state.axes]
        hp = {name: state.axes[name][d] for name, d in zip(names, digits)}
        return hp, state

    def tell(self, state: GridSearchState, hp: Mapping[str, jax.Array], scores) -> GridSearchState:
        """Scores do not steer a grid; tell checks them and moves to the next population."""
        n = state.space.check_told(hp, "GridSearch.tell")
        check_scores("GridSearch", scores, n)
        return state.replace(round=state.round + 1)

    def done(self, state: GridSearchState) -> bool:
        return state.round * self.population >= state.size


def _distinct_points(space: Space, axes: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Indices (C order) of the grid's points that are distinct settings: where a conditional name
    is not used (Space.only_when), only the point at its axis's first value is kept. None when the
    space has no conditions."""
    if not space.conditions:
        return None
    shape = tuple(len(a) for a in axes.values())
    if math.prod(shape) > _MAX_LISTED:
        raise ValueError(f"GridSearch: the grid has {math.prod(shape)} points ({dict(zip(axes, shape))}), too many to "
                         f"list its distinct settings under the space's conditions; lower points_per_axis or shorten "
                         f"values, or use RandomSearch.")
    return one_point_per_setting(space, axes)
