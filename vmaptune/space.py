"""Search spaces: distributions over hyperparameters and the `Space` that holds them.

Every distribution maps to and from the unit interval in its own scale (log for `LogUniform`,
log of 1 - x for `OneMinusLogUniform`, bins for integers and choices). Strategies search in that
unit cube; `Space.from_unit` turns a point back into values.

Values travel as arrays with a population axis: floats as float32, integers as int32, and
categorical values (`Choice`, string `Fixed`) as int32 indices into their options. `Space.decode`
turns them into plain Python values for tables and reports.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import re
import reprlib
import zlib
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.arguments import checked_arguments
from vmaptune.compile_cache import quick_program
from vmaptune.naming import by_name, function_name, is_object, is_optax, own_optimizer, shown, what

Array = jax.Array


#: Values travel as float32 and int32 (see the module docstring): numbers beyond them cannot.
FLOAT32_MAX, FLOAT32_TINY = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)
INT32_MIN, INT32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)


def _check_number(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {value!r}.")
    if not math.isfinite(float(value)):
        raise ValueError(f"{owner}: {name} must be finite, got {value!r}.")
    _check_representable(owner, f"{name}={value!r}", value)
    return float(value)


def _check_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r}.")
    _check_representable(owner, f"{name}={value!r}", value)
    return int(value)


def _check_representable(owner: str, what: str, value: Any) -> None:
    """A number fits the dtype it travels in: int32 for integers, float32 for the rest."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return
    if isinstance(value, numbers.Integral) and not INT32_MIN <= int(value) <= INT32_MAX:
        raise ValueError(f"{owner}: {what} does not fit in int32, the dtype integer hyperparameters travel in; "
                         f"keep integers within [{INT32_MIN}, {INT32_MAX}].")
    if not isinstance(value, numbers.Integral) and abs(float(value)) > FLOAT32_MAX:
        raise ValueError(f"{owner}: {what} is beyond float32 (|x| <= {FLOAT32_MAX:.3g}), the dtype float "
                         f"hyperparameters travel in.")


def _set_bounds(dist, check, *, inclusive: bool) -> tuple[str, float, float]:
    """Checks and stores dist.low / dist.high (numbers of the right kind, in order); returns
    (owner, low, high), owner being the repr used in error messages."""
    owner = f"{type(dist).__name__}(low={dist.low!r}, high={dist.high!r})"
    low, high = check(owner, "low", dist.low), check(owner, "high", dist.high)
    if low > high or (low == high and not inclusive):
        fix = "(both inclusive). Swap them." if inclusive else ". Swap them, or use vt.Fixed for one value."
        raise ValueError(f"{owner}: low must be {'<=' if inclusive else '<'} high{' ' if inclusive else ''}{fix}")
    if inclusive and high - low + 1 > INT32_MAX:  # (a draw counts the integers of the range in int32)
        raise ValueError(f"{owner}: the range holds {high - low + 1} integers, more than int32, the dtype integer "
                         f"hyperparameters travel in, counts ({INT32_MAX}); narrow it, e.g. low={low}, "
                         f"high={low + INT32_MAX - 1}.")
    if not inclusive:  # (a continuous range: its values travel as float32)
        if np.float32(low) == np.float32(high):
            raise ValueError(f"{owner}: low and high are the same number in float32, the dtype float "
                             f"hyperparameters travel in, so every member would get one value. Widen the range, "
                             f"or use vt.Fixed for one value.")
        if high - low > FLOAT32_MAX:
            raise ValueError(f"{owner}: the range's width, {high - low:.3g}, is beyond float32 (<= "
                             f"{FLOAT32_MAX:.3g}), the dtype float hyperparameters travel in; narrow it.")
    object.__setattr__(dist, "low", low)
    object.__setattr__(dist, "high", high)
    return owner, low, high


def _unit_interval(u: Array) -> Array:
    """Positions clipped into [0, 1]: a bound rounded to float32 can lie a step outside the range (a
    narrow range near 1 of OneMinusLogUniform maps it to -1e-3)."""
    return jnp.clip(u, 0.0, 1.0)


class Distribution:
    """Base class. Subclasses are frozen dataclasses, so they hash and can be static config."""

    #: "float", "int" or "categorical": how values are encoded in the population arrays.
    kind: str = "float"

    @property
    def dtype(self):
        return jnp.float32 if self.kind == "float" else jnp.int32

    @property
    def is_fixed(self) -> bool:
        return False

    def from_unit(self, u: Array) -> Array:
        """u in [0, 1], any shape -> encoded values of the same shape."""
        raise NotImplementedError

    def to_unit(self, x: Array) -> Array:
        """Encoded values -> position in [0, 1] (the centre of the bin for discrete values)."""
        raise NotImplementedError

    def sample(self, key: Array, n: int) -> Array:
        """n independent draws, shape (n,)."""
        return self.from_unit(jax.random.uniform(key, (n,), jnp.float32))

    def decode(self, x) -> Any:
        """One encoded value -> plain Python value. A float32 value reads as the shortest decimal
        that is it (0.1, not float64's 0.10000000149011612): the value as a user gives it, so that
        a table filters on it (df[df.dropout == 0.1]) and float32(decoded) is the value that trained."""
        if self.kind != "float":
            return int(x)
        x = np.asarray(x)
        return float(str(x.astype(np.float32))) if x.dtype == np.float32 else float(x)

    def encode(self, value) -> Any:
        """Plain Python value -> encoded value (the inverse of decode)."""
        return value

    def grid(self, n: int) -> np.ndarray:
        """n points evenly spaced in this distribution's own scale (fewer where it has fewer)."""
        u = np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])
        values = self.from_unit_exact(u)
        if self.kind != "float":
            values = np.unique(values)
        return values

    def from_unit_exact(self, u: np.ndarray) -> np.ndarray:
        """from_unit on the host, rounded once to float32 (a grid's points: 1e-4 half way up
        LogUniform(1e-5, 1e-3), where float32's own exp and log give 9.999999e-05)."""
        return np.asarray(self.from_unit(jnp.asarray(u, jnp.float32)))

    def to_config(self) -> dict:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if "options" in fields:
            fields["options"] = list(fields["options"])
        return {"type": type(self).__name__, **fields}


class _Continuous(Distribution):
    """A float range whose value at u is one formula (`_value`), evaluated in float32 on the device
    and in float64 on the host (a grid's points), its bounds exact at u = 0 and 1."""

    def _value(self, u, xp):
        raise NotImplementedError

    def from_unit(self, u):
        # float32's rounding of exp / log lands a step inside or outside a bound (LogUniform(1e-3,
        # 0.1) gave 0.099999994 at u = 1, which a grid's corner and a table filter on 0.1 miss)
        u = jnp.asarray(u, jnp.float32)
        x = jnp.clip(self._value(u, jnp), self.low, self.high).astype(jnp.float32)
        return jnp.where(u <= 0.0, jnp.float32(self.low), jnp.where(u >= 1.0, jnp.float32(self.high), x))

    def from_unit_exact(self, u):
        return np.float32(np.clip(self._value(np.asarray(u, np.float64), np), self.low, self.high))


@checked_arguments("vt.Uniform(0.0, 0.5)", {"log": "For a log scale use vt.LogUniform(low, high)."})
@dataclasses.dataclass(frozen=True)
class Uniform(_Continuous):
    """Uniform on [low, high]."""

    low: float
    high: float

    def __post_init__(self):
        _set_bounds(self, _check_number, inclusive=False)

    def _value(self, u, xp):
        return self.low + u * (self.high - self.low)

    def to_unit(self, x):
        return _unit_interval((jnp.asarray(x, jnp.float32) - self.low) / (self.high - self.low))


@checked_arguments("vt.LogUniform(1e-4, 1e-1)")
@dataclasses.dataclass(frozen=True)
class LogUniform(_Continuous):
    """Log-uniform on [low, high], 0 < low < high: each decade equally likely (learning rates)."""

    low: float
    high: float

    def __post_init__(self):
        owner = f"{type(self).__name__}(low={self.low!r}, high={self.high!r})"
        if _check_number(owner, "low", self.low) <= 0 or _check_number(owner, "high", self.high) <= 0:
            raise ValueError(
                f"{owner}: bounds of a log scale must be > 0. Use vt.Uniform for ranges that include 0."
            )
        if self.low < FLOAT32_TINY:
            raise ValueError(f"{owner}: low is below {FLOAT32_TINY:.3g}, float32's smallest normal number (the "
                             f"dtype float hyperparameters travel in): values there round to 0 or lose their "
                             f"digits. Rescale the quantity, or raise low.")
        _set_bounds(self, _check_number, inclusive=False)

    def _value(self, u, xp):
        lo, hi = math.log(self.low), math.log(self.high)
        return xp.exp(lo + u * (hi - lo))

    def to_unit(self, x):
        lo, hi = math.log(self.low), math.log(self.high)
        return _unit_interval((jnp.log(jnp.asarray(x, jnp.float32)) - lo) / (hi - lo))


@checked_arguments("vt.OneMinusLogUniform(0.9, 0.999)")
@dataclasses.dataclass(frozen=True)
class OneMinusLogUniform(_Continuous):
    """x in [low, high] with 1 - x log-uniform, 0 < low < high < 1 (momentum, Adam betas).

    For (0.9, 0.999), 1 - x is log-uniform on [0.001, 0.1], so half the draws are >= 0.99.
    """

    low: float
    high: float

    def __post_init__(self):
        owner = f"{type(self).__name__}(low={self.low!r}, high={self.high!r})"
        low, high = _check_number(owner, "low", self.low), _check_number(owner, "high", self.high)
        if not (0.0 < low < 1.0 and 0.0 < high < 1.0):
            raise ValueError(
                f"{owner}: bounds must lie strictly inside (0, 1), because 1 - x is log-scaled. "
                "Use vt.Uniform for other ranges."
            )
        if np.float32(high) >= 1.0:
            raise ValueError(f"{owner}: high rounds to 1 in float32, the dtype float hyperparameters travel in "
                             f"(1 - x would be 0 on a log scale); keep high <= {float(np.nextafter(np.float32(1), np.float32(0))):.8f}.")
        _set_bounds(self, _check_number, inclusive=False)

    def _value(self, u, xp):
        lo, hi = math.log1p(-self.low), math.log1p(-self.high)
        return -xp.expm1(lo + u * (hi - lo))

    def to_unit(self, x):
        lo, hi = math.log1p(-self.low), math.log1p(-self.high)
        return _unit_interval((jnp.log1p(-jnp.asarray(x, jnp.float32)) - lo) / (hi - lo))


@checked_arguments("vt.IntUniform(1, 4)", {"log": "For a log scale use vt.IntLogUniform(low, high)."})
@dataclasses.dataclass(frozen=True)
class IntUniform(Distribution):
    """Integers low..high inclusive, each equally likely (drawn through a float32 position in [0, 1),
    so a range of more than 2**24 integers reaches only 2**24 of them, spread over it)."""

    low: int
    high: int
    kind = "int"

    def __post_init__(self):
        _set_bounds(self, _check_int, inclusive=True)

    def from_unit(self, u):
        n = self.high - self.low + 1
        k = jnp.floor(jnp.asarray(u, jnp.float32) * n).astype(jnp.int32)
        return self.low + jnp.clip(k, 0, n - 1)

    def to_unit(self, x):
        n = self.high - self.low + 1
        x = jnp.asarray(x)
        # The offset from low in int32 first: float32 holds integers exactly only up to 2**24.
        offset = x - self.low if jnp.issubdtype(x.dtype, jnp.integer) else x.astype(jnp.float32) - self.low
        return (offset.astype(jnp.float32) + 0.5) / n

    def grid(self, n):
        u = np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])  # (one point: the middle, as for floats)
        return np.unique(np.round(self.low + u * (self.high - self.low)).astype(np.int32))


@checked_arguments("vt.IntLogUniform(16, 512)")
@dataclasses.dataclass(frozen=True)
class IntLogUniform(Distribution):
    """Integers low..high inclusive (low >= 1), log-uniform: as many draws in 1..10 as in 10..100."""

    low: int
    high: int
    kind = "int"

    def __post_init__(self):
        owner = f"{type(self).__name__}(low={self.low!r}, high={self.high!r})"
        if _check_int(owner, "low", self.low) < 1:
            raise ValueError(f"{owner}: low must be >= 1 for a log scale. Use vt.IntUniform to include 0.")
        _set_bounds(self, _check_int, inclusive=True)

    def from_unit(self, u):
        lo, hi = math.log(self.low), math.log(self.high + 1)
        x = jnp.floor(jnp.exp(lo + jnp.asarray(u, jnp.float32) * (hi - lo))).astype(jnp.int32)
        return jnp.clip(x, self.low, self.high)

    def to_unit(self, x):
        lo, hi = math.log(self.low), math.log(self.high + 1)
        x = jnp.asarray(x, jnp.float32)
        centre = 0.5 * (jnp.log(x) + jnp.log(x + 1.0))
        return (centre - lo) / (hi - lo)

    def grid(self, n):
        u = np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5])  # (one point: the middle, as for floats)
        values = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        return np.unique(np.round(values).astype(np.int32))


def _as_python(value: Any) -> Any:
    """A numpy scalar as the Python value it stands for (np.bool_ is no numbers.Real, and tables,
    configs and saved spaces take Python's): a float32 as the decimal it prints as (0.05, not the
    0.05000000074505806 float64 reads it as)."""
    if isinstance(value, np.floating):  # (np.longdouble's item() stays numpy)
        return float(str(value)) if value.dtype.itemsize < 8 else float(value)
    return value.item() if isinstance(value, np.generic) else value


@checked_arguments("vt.Choice(['relu', 'tanh'])")
@dataclasses.dataclass(frozen=True)
class Choice(Distribution):
    """One of `options`, each equally likely. Encoded as the int32 index of the option."""

    options: tuple
    kind = "categorical"

    def __post_init__(self):
        options = self.options
        if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
            raise TypeError(
                f"Choice(options={options!r}): options must be a list, e.g. vt.Choice(['relu', 'tanh'])."
            )
        options = tuple(_as_python(o) for o in options)
        if not options:
            raise ValueError("Choice(options=[]): give at least one option, e.g. vt.Choice(['relu', 'tanh']).")
        for o in options:
            if isinstance(o, numbers.Real) and not math.isfinite(float(o)):  # (np.float32('nan') too)
                raise ValueError(f"Choice(options={list(options)!r}): option {o!r} is not finite.")
            if isinstance(o, (tuple, list)):  # (a module field of layer widths, say: its own fix)
                raise TypeError(
                    f"Choice(options={list(options)!r}): option {o!r} must be a string or a real number, not a "
                    f"{type(o).__name__}: each member's values are one array per name. Search its parts as names "
                    f"of their own (depth=vt.IntUniform(1, 3), width=vt.Choice([8, 16]) for a tuple of widths), or "
                    f"name each option (vt.Choice(['narrow', 'wide'])) and look its value up in the module "
                    f"(WIDTHS = {{'narrow': (8,), 'wide': (16, 16)}})."
                )
            if callable(o) and not isinstance(o, (str, bool, numbers.Real)):  # (an activation: nn.relu)
                raise TypeError(
                    f"Choice(options=[{', '.join(shown(p) for p in options)}]): option {shown(o)} is "
                    f"{what(o)}; options must be strings, bools or real numbers (each member's values are one "
                    f"array per name). {by_name(options)}"
                )
            if not isinstance(o, (str, bool, numbers.Real)):
                raise TypeError(
                    f"Choice(options={list(options)!r}): option {o!r} must be a string, a bool or a real number."
                )
        if len(set(options)) != len(options):
            # (only a bool against a number: [True, 1], not [True, True, 2])
            by_kind = len({(isinstance(o, bool), o) for o in options}) == len(options)
            why = " (True == 1 and False == 0 in Python: a bool and a number can be the same option)" if by_kind else ""
            raise ValueError(f"Choice(options={list(options)!r}): options must be distinct{why}.")
        flags = [o for o in options if isinstance(o, bool)]
        if flags and len(flags) < len(options) and not any(isinstance(o, str) for o in options):
            # (neither numbers nor flags: a loss reading it got the option's index, 0.001 as 1)
            as_numbers = [float(o) if isinstance(o, bool) else o for o in options]
            raise ValueError(f"Choice(options={list(options)!r}) mixes True / False with numbers, which a model "
                             f"computes with as one kind of value: give numbers only (vt.Choice({as_numbers!r}), "
                             f"False as 0.0), or True / False only.")
        object.__setattr__(self, "options", options)
        if self.is_numeric:  # numeric options are gathered into an int32 array, or a float32 one
            integers = all(isinstance(o, numbers.Integral) for o in options)
            for o in options:
                _check_representable(f"Choice(options={list(options)!r})", f"option {o!r}", o if integers else float(o))

    @property
    def is_numeric(self) -> bool:
        return all(isinstance(o, numbers.Number) and not isinstance(o, bool) for o in self.options)

    @property
    def is_flag(self) -> bool:
        """True / False options: a model or a loss computes with 1 / 0, in whatever order they are
        listed (their index would read Choice([True, False]) inverted)."""
        return all(isinstance(o, bool) for o in self.options)

    @property
    def gathers(self) -> bool:
        """Whether Space.numeric turns this choice's index into its option's value (numbers, flags)."""
        return self.is_numeric or self.is_flag

    def values(self) -> np.ndarray:
        """The options as the numbers a model computes with (for a gather from indices): numeric
        choices, and flags as int32 1 / 0."""
        if self.is_flag:
            return np.asarray(self.options, np.int32)
        if not self.is_numeric:
            raise TypeError(f"{self!r} has non-numeric options.")
        return np.asarray(self.options)

    def from_unit(self, u):
        n = len(self.options)
        k = jnp.floor(jnp.asarray(u, jnp.float32) * n).astype(jnp.int32)
        return jnp.clip(k, 0, n - 1)

    def to_unit(self, x):
        return (jnp.asarray(x, jnp.float32) + 0.5) / len(self.options)

    def decode(self, x):
        return self.options[int(x)]

    def encode(self, value):
        try:
            return self.options.index(value)
        except ValueError:
            raise ValueError(f"{value!r} is not one of the options {list(self.options)!r}.") from None

    def grid(self, n=None):
        return np.arange(len(self.options), dtype=np.int32)


@checked_arguments("vt.Fixed(0.1)")
@dataclasses.dataclass(frozen=True)
class Fixed(Distribution):
    """One value, never searched. Strings are categorical (index 0), numbers stay numbers."""

    value: Any

    def __post_init__(self):
        object.__setattr__(self, "value", _as_python(self.value))
        v = self.value
        if isinstance(v, numbers.Real) and not math.isfinite(float(v)):  # (np.float32('nan') too)
            raise ValueError(f"Fixed({v!r}): the value must be finite.")
        if isinstance(v, (tuple, list, dict)):  # (a module field of layer widths, say: set where the module is made)
            raise TypeError(f"Fixed({v!r}): the value must be a string or a real number, not a {type(v).__name__}. "
                            f"A field that every member gives this value needs no space entry: leave it at the "
                            f"module's default, or make the module with it, e.g. "
                            f"vt.Linen(functools.partial(Net, widths={v!r})).")
        if callable(v) and not isinstance(v, (str, bool, numbers.Real)):  # (an activation: nn.tanh)
            name = function_name(v)
            head = f"Fixed({shown(v)}): the value must be a string or a real number, not {what(v)}."
            if is_optax(v):
                raise TypeError(f"{head} {own_optimizer([(name or '').removeprefix('optax.')])}")
            layer = isinstance(v, type) or is_object(v)
            code = name or ("your_layer" if layer else "your_function")  # (a lambda's repr is no code)
            named = f"; or give its name: {by_name([v]).removeprefix('Search them by name, ')}" \
                if name and name.startswith(("nn.", "jax.nn.")) else "."  # (flax's or jax.nn's own: a name does)
            raise TypeError(f"{head} A field that every member gives it needs no space entry: leave it at the "
                            f"module's default, or make the module with it, e.g. "
                            f"vt.{'Nnx' if code.startswith('nnx.') else 'Linen'}(functools.partial(Net, "
                            f"{'layer' if layer else 'activation'}={code})){named.removesuffix('.')}.")
        if not isinstance(v, (str, bool, numbers.Real)):
            raise TypeError(f"Fixed({v!r}): the value must be a string or a real number.")
        _check_representable(f"Fixed({v!r})", "the value", v)

    @property
    def kind(self):  # type: ignore[override]
        if isinstance(self.value, str):
            return "categorical"
        if isinstance(self.value, numbers.Integral) and not isinstance(self.value, bool):
            return "int"
        return "float"

    @property
    def options(self) -> tuple:
        return (self.value,)

    @property
    def is_numeric(self) -> bool:
        return self.kind != "categorical"

    @property
    def is_fixed(self) -> bool:
        return True

    def from_unit(self, u):
        u = jnp.asarray(u)
        fill = 0 if self.kind == "categorical" else self.value
        return jnp.full(u.shape, fill, self.dtype)

    def to_unit(self, x):
        return jnp.full(jnp.shape(x), 0.5, jnp.float32)

    def decode(self, x):
        return self.value

    def encode(self, value):
        if self.kind != "categorical":
            return value
        if value != self.value:  # (as Choice.encode: another name is no index of this one's)
            raise ValueError(f"{value!r} is not the value of {self!r}, its one option.")
        return 0

    def grid(self, n=None):
        return np.asarray([0 if self.kind == "categorical" else self.value])


def _takes(dist: Distribution, value: Any) -> bool:
    """Whether a condition's parent `dist` (Choice, Fixed, or an integer range) can take the plain `value`."""
    if isinstance(dist, (IntUniform, IntLogUniform)) and isinstance(value, numbers.Number):
        return dist.low <= value <= dist.high and value == int(value)
    return value in getattr(dist, "options", ())


DISTRIBUTIONS = {
    cls.__name__: cls
    for cls in (Uniform, LogUniform, OneMinusLogUniform, IntUniform, IntLogUniform, Choice, Fixed)
}


def distribution_from_config(config: Mapping, name: str | None = None, also: tuple[str, ...] = ()) -> Distribution:
    """{'type': 'LogUniform', 'low': 1e-4, 'high': 1e-1} -> the distribution (what to_config wrote).
    name: the hyperparameter it is for, named in the errors. also: keys the caller takes out of
    the entry first (a space entry's only_when), said among the keys it takes."""
    where = f"space entry {name!r}" if name is not None else "distribution config"
    example = "{'type': 'LogUniform', 'low': 1e-4, 'high': 1e-1}"
    if not isinstance(config, Mapping):
        raise TypeError(f"{where} must be a table such as {example}, got {config!r}"
                        + (f"; for one value write {{'type': 'Fixed', 'value': {config!r}}}." if
                           isinstance(config, (str, numbers.Number)) else "."))
    config = dict(config)
    kind = config.pop("type", None)
    if kind is None:
        raise ValueError(f"{where} = {config!r} has no 'type'; add one of {sorted(DISTRIBUTIONS)}, e.g. {example}.")
    if kind not in DISTRIBUTIONS:
        close = difflib.get_close_matches(str(kind), sorted(DISTRIBUTIONS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: unknown distribution type {kind!r} in {dict(config)!r}.{hint} Expected one of "
                         f"{sorted(DISTRIBUTIONS)}.")
    cls = DISTRIBUTIONS[kind]
    takes = list(cls.argument_names)
    unknown = [k for k in config if k not in takes]
    if unknown:  # (a misspelled only_when was told the entry takes only its distribution's settings)
        hints = "".join(f" Did you mean {c[0]!r} for {k!r}?" for k in unknown
                        if (c := difflib.get_close_matches(str(k), [*takes, *also], n=1)))
        what = f"setting {unknown[0]!r}" if len(unknown) == 1 else f"settings {unknown!r}"
        raise ValueError(f"{where}: {kind} has no {what}.{hints} It takes {takes}"
                         + "".join(f" and {key!r}" for key in also) + ".")
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        if type(err) not in (TypeError, ValueError):
            raise
        raise type(err)(f"{where}: {err}") from None


_NOT_IDENTIFIER = re.compile(r"\W|^(?=\d)")  # what to replace with "_" to make a name an identifier


def _name_key(key: Array, name: str) -> Array:
    # A key per name that does not depend on the other names: adding a hyperparameter to a space
    # leaves the draws of the others unchanged.
    return jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def _typed(value: Any) -> Any:
    """value with the type of each number in it (see Space._identity)."""
    if isinstance(value, (tuple, list)):
        return tuple(_typed(v) for v in value)
    return type(value), value


def _equivalent(value: Any) -> str | None:
    """The vt distribution a scikit-learn style value (a list, a range, a frozen scipy.stats
    loguniform / uniform / randint, scikit-optimize's (low, high, prior)) stands for, as text for
    an error's fix: only distributions that build, and None where no one reading is plain (this
    only words an error: it never raises, and never walks a long sequence)."""
    def said(dist: Distribution) -> str:
        args = [list(dist.options)] if isinstance(dist, Choice) else [dist.low, dist.high]
        return f"vt.{type(dist).__name__}({', '.join(map(repr, args))})"

    def built(*makers) -> list[str]:
        made = []
        for make in makers:
            try:
                made.append(said(make()))
            except (TypeError, ValueError):
                pass
        return made

    try:
        if getattr(value, "dist", None) is not None:  # (scikit-learn's translation: the two agree)
            from vmaptune.sklearn.search_cv import _distribution

            return said(_distribution("x", value))
        if isinstance(value, range):  # (from its ends: a range of 10**9 is not walked)
            if value.step == 1 and len(value) > 2:
                return said(IntUniform(value[0], value[-1]))
            value = list(value) if 2 <= len(value) <= 12 else ()
        if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype.kind in "iu" and len(value) > 2 \
                and np.array_equal(value, np.arange(value[0], value[0] + len(value))):
            return said(IntUniform(int(value[0]), int(value[-1])))
        if isinstance(value, list) and len(value) > 2 and type(value[0]) is int \
                and value == list(range(value[0], value[0] + len(value))):  # (stops at the first that differs)
            return said(IntUniform(value[0], value[-1]))
        if not isinstance(value, (list, tuple, np.ndarray)) or not 2 <= len(value) <= 12 or np.ndim(value) != 1:
            return None
        values = [v.item() if isinstance(v, np.generic) else v for v in value]
        numbers_only = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        whole = numbers_only and all(isinstance(v, numbers.Integral) for v in values)
        if whole and len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
            return said(IntUniform(values[0], values[-1]))
        if len(values) == 3 and isinstance(values[2], str) and values[2] in ("log-uniform", "uniform"):
            low, high = values[:2]  # (scikit-optimize's dimension: integer bounds make an integer one)
            integers = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in (low, high))
            kind = {("log-uniform", True): IntLogUniform, ("log-uniform", False): LogUniform,
                    ("uniform", True): IntUniform, ("uniform", False): Uniform}[values[2], integers]
            return next(iter(built(lambda: kind(low, high))), None)
        if not (numbers_only or all(isinstance(v, (str, bool)) for v in values)):
            return None  # (of mixed kinds)
        if len(values) == 2 and numbers_only:  # (two options, or scikit-optimize's range)
            choice, span = built(lambda: Choice(values)), built(lambda: (IntUniform if whole else Uniform)(*values))
            if choice and span:
                return f"{choice[0]} for those two values, or {span[0]} for the range"
            return (choice or span or [None])[0]
        return next(iter(built(lambda: Choice(values))), None)
    except Exception:
        return None


class Space:
    """Named distributions. `Space(learning_rate=vt.LogUniform(1e-4, 1e-1), ...)`.

    Plain numbers and strings are taken as `Fixed`. Order of names is the order given; it is the
    column order of the unit cube (`to_unit` / `from_unit`).
    """

    _conditions: Mapping[str, tuple] = {}  # (never changed in place; a space pickled before conditions has none)
    # name -> the plain value a member takes where the name is not its setting (over the model's default):
    # a scikit-learn search's estimator's own, which its best_estimator_ then trains with
    _otherwise: Mapping[str, Any] = {}

    def __init__(self, params: Mapping[str, Any] | None = None, /, **kwargs: Any):
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"Space({params!r}): name each hyperparameter, e.g. vt.Space(learning_rate="
                            f"vt.LogUniform(1e-4, 1e-1)), or give a dict of name -> distribution.")
        items = dict(params or {})
        overlap = set(items) & set(kwargs)
        if overlap:
            raise ValueError(f"Space: {sorted(overlap)} given twice (in the dict and as keywords).")
        items.update(kwargs)
        if not items:
            raise ValueError("Space(): give at least one hyperparameter, e.g. Space(learning_rate=vt.LogUniform(1e-4, 1e-1)).")
        dists: dict[str, Distribution] = {}
        for name, dist in items.items():
            if not isinstance(name, str) or not name.isidentifier():
                fix = f", e.g. {re.sub(_NOT_IDENTIFIER, '_', name)!r}" if isinstance(name, str) and name else ""
                raise ValueError(f"Space: hyperparameter name {name!r} must be a Python identifier{fix}.")
            if isinstance(dist, Distribution):
                dists[name] = dist
            elif isinstance(dist, (str, numbers.Number)):
                dists[name] = Fixed(dist)
            else:
                equivalent = _equivalent(dist)
                raise TypeError(
                    f"Space: {name}={reprlib.repr(dist)} is not a distribution. " + (
                        f"Use {name}={equivalent}." if equivalent else
                        "Use e.g. vt.LogUniform(1e-4, 1e-1), vt.Choice([...]) or vt.Fixed(value).")
                )
        self._dists = dists
        self._conditions: dict[str, tuple[tuple[str, tuple], ...]] = {}  # child -> ((parent, plain values), ...)

    # -- conditional hyperparameters -----------------------------------------------------------
    def only_when(self, name: str, /, **parents: Any) -> "Space":
        """A new space in which `name` matters only when each parent takes one of the values given:
        `space.only_when("momentum", optimizer="sgd")`, `space.only_when("n_units_1", n_hidden=[2, 3])`.
        Every member still carries a value (the population's arrays stay whole); where the
        condition fails it is not the member's setting: the table shows NaN (None among names), GridSearch
        keeps one of the points that differ only there, and Optuna sees no such parameter.
        A parent is a Choice, a Fixed or an integer distribution of this space."""
        if name not in self._dists:
            raise ValueError(f"Space.only_when({name!r}, ...): {name!r} is not in this space; it has {list(self.names)}.")
        if not parents:
            raise ValueError(f"Space.only_when({name!r}): name the parent and its values, e.g. "
                             f"space.only_when({name!r}, optimizer='sgd').")
        conditions = []
        for parent, values in parents.items():
            where = f"Space.only_when({name!r}, {parent}={values!r})"
            if parent == name:
                raise ValueError(f"{where}: a hyperparameter cannot depend on itself.")
            if parent not in self._dists:
                raise ValueError(f"{where}: {parent!r} is not in this space; it has {list(self.names)}.")
            dist = self._dists[parent]
            if not isinstance(dist, (Choice, Fixed, IntUniform, IntLogUniform)):
                raise ValueError(f"{where}: the parent {parent}={dist!r} takes continuous values; a condition needs "
                                 f"one with a few values (vt.Choice, vt.Fixed, vt.IntUniform).")
            values = tuple(values) if isinstance(values, (list, tuple, set, frozenset)) else (values,)
            if not values:
                raise ValueError(f"{where}: give at least one value of {parent!r}.")
            for value in values:
                if not _takes(dist, value):
                    raise ValueError(f"{where}: {value!r} is not a value of {parent}={dist!r}.")
            # (in one order, the parent's: the same condition written otherwise is the same space)
            conditions.append((parent, tuple(sorted(dict.fromkeys(values), key=dist.encode))))
        conditions.sort()
        if self._conditions.get(name) == tuple(conditions):  # (the same condition again: a cell run twice)
            return self
        if name in self._conditions:  # (replacing it would drop the first condition unseen)
            before = dict(self._conditions[name])
            given = ", ".join(f"{p}={v!r}" for p, v in parents.items())
            both = ", ".join(f"{p}={list(v)!r}" for p, v in sorted({**before, **dict(conditions)}.items()))
            raise ValueError(f"Space.only_when({name!r}, {given}): {name!r} is already used only when "
                             f"{', '.join(f'{p}={list(v)!r}' for p, v in before.items())}; a name takes one "
                             f"only_when, which may name several parents (each must hold). Give them in one call "
                             f"on the space before it, e.g. .only_when({name!r}, {both}).")
        return self._conditioned(name, tuple(conditions))

    def _conditioned(self, name: str, conditions: tuple) -> "Space":
        """A copy in which `name` has the condition ((parent, values), ...), sorted by parent, as
        given: only_when checks it first; a config to_config wrote is taken as it was (values a
        parent no longer takes after Space.replace included)."""
        out = Space(self._dists)
        out._conditions = {**self._conditions, name: conditions}
        out._otherwise = dict(self._otherwise)
        out._check_no_cycle(name)
        return out

    def _with_otherwise(self, values: Mapping[str, Any]) -> "Space":
        """A copy in which each conditional name of `values` takes that value where it is not a
        member's setting, instead of the model's or optimizer's default (values that are not among
        a categorical's options are left out)."""
        kept = {}
        for name, value in values.items():
            dist = self._dists.get(name)
            if name not in self._conditions:
                continue
            if dist.kind == "categorical" and not getattr(dist, "is_numeric", False):  # (its index: an option)
                try:
                    dist.encode(value)
                except (ValueError, TypeError, KeyError):
                    continue
            elif not isinstance(value, numbers.Number) or isinstance(value, bool):
                continue
            kept[name] = value
        out = self.replace()
        out._otherwise = {**self._otherwise, **kept}
        return out

    def _check_no_cycle(self, name: str) -> None:
        seen, todo = set(), [name]
        while todo:
            child = todo.pop()
            for parent, _ in self._conditions.get(child, ()):
                if parent == name:
                    raise ValueError(f"Space.only_when({name!r}, ...): {name!r} would depend on itself ({child!r} "
                                     f"is already used only when {name!r} takes some values).")
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)

    @property
    def conditions(self) -> dict[str, dict[str, tuple]]:
        """child -> {parent: values it is used for} (`only_when`); empty for an unconditional space."""
        return {child: dict(parents) for child, parents in self._conditions.items()}

    def is_used(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether `name` is the setting of a member whose plain values (parents at least) are
        `values`: True unless a condition of `only_when` fails."""
        return all(parent in values and values[parent] in options and self.is_used(parent, values)
                   for parent, options in self._conditions.get(name, ()))

    def parents_first(self) -> tuple[str, ...]:
        """The names in order, but each conditional one after the parents it depends on."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name not in order:
                for parent, _ in self._conditions.get(name, ()):
                    visit(parent)
                order.append(name)

        for name in self._dists:
            visit(name)
        return tuple(order)

    def active(self, hp: Mapping[str, Any], xp=np) -> dict[str, np.ndarray]:
        """Encoded population -> for each conditional name, (n,) bool: whether it is the member's
        setting (its parents take the values named, and are themselves active). xp=jnp traces."""
        memo: dict[str, np.ndarray] = {}

        def of(child: str) -> np.ndarray:
            if child not in memo:
                mask = xp.ones(np.shape(hp[child])[0], bool)
                for parent, values in self._conditions.get(child, ()):
                    dist = self._dists[parent]
                    column = xp.asarray(hp[parent])  # (the values in its dtype: float32 0.1 is not float64's)
                    # (a value the parent cannot take, after replace narrowed it, holds for no member)
                    encoded = xp.asarray([dist.encode(v) for v in values if _takes(dist, v)], dtype=column.dtype)
                    mask = mask & xp.isin(column, encoded) & of(parent)
                memo[child] = mask
            return memo[child]

        return {child: of(child) for child in self._conditions}

    def traced_conditions(self) -> "Conditions":
        """only_when's conditions in the values a model computes with (Space.numeric's), for the
        program: which members a name is the setting of, traced (static, hashable)."""
        rules = []
        for child, parents in sorted(self._conditions.items()):
            compiled = []
            for parent, values in parents:
                dist = self._dists[parent]
                values = tuple(v for v in values if _takes(dist, v))  # (as in `active`: the others hold for none)
                if isinstance(dist, Choice) and dist.gathers:  # (numeric: the value, float32 as gathered)
                    compiled.append((parent, tuple(float(np.float32(v)) for v in values)))
                else:  # (a categorical's index; an integer's value)
                    compiled.append((parent, tuple(float(dist.encode(v)) for v in values)))
            rules.append((child, tuple(compiled)))
        otherwise = []
        for name, value in sorted(self._otherwise.items()):
            dist = self._dists[name]
            numeric = value if not (dist.kind == "categorical" and not getattr(dist, "gathers", False)) \
                else dist.encode(value)  # (a categorical's index, as Space.numeric leaves it)
            otherwise.append((name, float(numeric)))
        return Conditions(tuple(rules), tuple(otherwise))

    # -- mapping-like access -------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._dists)

    @property
    def free_names(self) -> tuple[str, ...]:
        """Names that are searched (everything but Fixed)."""
        return tuple(n for n, d in self._dists.items() if not d.is_fixed)

    def __getitem__(self, name: str) -> Distribution:
        try:
            return self._dists[name]
        except KeyError:
            raise KeyError(f"{name!r} is not in this space; it has {list(self.names)}.") from None

    def __contains__(self, name) -> bool:
        return name in self._dists

    def __iter__(self):
        return iter(self._dists)

    def __len__(self):
        return len(self._dists)

    def items(self):
        return self._dists.items()

    def __eq__(self, other):
        return isinstance(other, Space) and self._identity() == other._identity() and \
            self._conditions == other._conditions and dict(self._otherwise) == dict(other._otherwise)

    def __hash__(self):
        return hash(self._identity())  # (conditions change no program: equal hashes are allowed)

    def _identity(self) -> tuple:
        """Each distribution with its values' types: a space is a compiled program's cache key, and
        Fixed(0) == Fixed(0.0) == Fixed(False) as dataclasses, though they encode as int32, float32, bool."""
        return tuple((name, type(dist), tuple((f.name, _typed(getattr(dist, f.name))) for f in dataclasses.fields(dist))
                      if dataclasses.is_dataclass(dist) else dist) for name, dist in self._dists.items())

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._dists.items())
        conditions = "".join(f".only_when({child!r}, {', '.join(f'{p}={list(v)!r}' for p, v in parents)})"
                             for child, parents in self._conditions.items())
        return f"Space({inner}){conditions}"

    def replace(self, **changes: Any) -> "Space":
        """A new space with some distributions replaced or added, its conditions kept as they are
        (a model narrows a parent's range for one width group: a condition on values outside it
        then holds for none of that group's members)."""
        out = Space({**self._dists, **changes})
        out._conditions = dict(self._conditions)
        out._otherwise = dict(self._otherwise)
        return out

    # -- sampling and the unit cube ------------------------------------------------------------
    def sample(self, key: Array, n: int, distinct: bool = False) -> dict[str, Array]:
        """n independent draws of every hyperparameter: dict name -> array of shape (n,).

        distinct=True (what the strategies ask for): in a space of only discrete values (Choice,
        Fixed, IntUniform, IntLogUniform), n distinct settings, as scikit-learn's ParameterSampler
        draws lists without replacement: each draw keeps the space's odds among the settings not
        drawn yet (vmaptune/distinct.py). A space of fewer settings than n gives each once, the rest
        drawn independently, with a warning. A space with a continuous range is drawn as independent
        draws (they do not repeat), unless each range is conditional: the members that use none of
        them are then distinct settings too."""
        n = _check_int("Space.sample", "n", n)
        if n < 1:
            raise ValueError(f"Space.sample: n must be >= 1, got {n}.")
        if key is None or isinstance(key, (numbers.Number, str)):  # (a seed where the key goes)
            raise TypeError(f"Space.sample(key, n): key must be a JAX random key, e.g. jax.random.key(0), got {key!r}.")
        hp = _sample(self, key, n)
        if distinct and n > 1:
            from vmaptune import distinct as without_replacement  # (it reads spaces: imported at use)

            if without_replacement.is_discrete(self):
                hp = without_replacement.distinct(self, key, hp, lambda fresh: _sample(self, fresh, n))
        return hp

    def from_unit(self, u: Array) -> dict[str, Array]:
        """u: (n, len(space)) in [0, 1] -> dict name -> (n,) encoded values."""
        u = jnp.asarray(u, jnp.float32)
        if u.ndim != 2 or u.shape[1] != len(self):
            raise ValueError(f"Space.from_unit: expected shape (n, {len(self)}), got {u.shape}.")
        u = jnp.clip(u, 0.0, 1.0)
        return {name: d.from_unit(u[:, i]) for i, (name, d) in enumerate(self._dists.items())}

    def to_unit(self, hp: Mapping[str, Array]) -> Array:
        """dict name -> (n,) -> (n, len(space)) positions in the unit cube."""
        self.check_population(hp, "hp")
        return jnp.stack([d.to_unit(hp[name]) for name, d in self._dists.items()], axis=1)

    # -- checks and decoding --------------------------------------------------------------------
    def check_population(self, hp: Mapping[str, Any], argname: str = "hp") -> int:
        """Checks that hp has exactly this space's names, 1-D and of one length; returns it."""
        if not isinstance(hp, Mapping):
            raise TypeError(f"{argname} must be a dict name -> array, got {type(hp).__name__}.")
        missing = [n for n in self.names if n not in hp]
        extra = [n for n in hp if n not in self._dists]
        if missing or extra:
            raise ValueError(
                f"{argname} does not match the space: missing {missing}, unknown {extra}. "
                f"The space has {list(self.names)}."
            )
        sizes = {n: np.shape(hp[n]) for n in self.names}
        shapes = set(sizes.values())
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"{argname}: every entry must be 1-D with one length, got shapes {sizes}.")
        return next(iter(shapes))[0]

    def check_told(self, hp: Mapping[str, Any], where: str) -> int:
        """check_asked for the encoded population a strategy's tell is given (the values members
        ended with: a decision may have taken them past the bounds), returning its size: decoded
        values (option names) or an index past a Choice's options are named here, not deep in the
        strategy."""
        return self.check_asked(hp, where, inside=False, what="hp")

    def check_asked(self, hp: Mapping[str, Any], where: str, *, inside: bool = True, what: str = "result") -> int:
        """Checks an encoded population as a strategy's ask returns it and returns its size: this
        space's names (check_population), at least one member, and values each distribution can
        take: finite numbers; whole numbers for integer distributions and for a Choice, whose
        value is an index into its options; inside the bounds (so a depth is one the network was
        built with, and the table records what trained). inside=False skips the bounds (the values
        members ended with: a Decision may take them outside, with a warning)."""
        n = self.check_population(hp, f"{where} {what}")
        if n == 0:
            raise ValueError(f"{where} {'returned' if what == 'result' else 'was given'} an empty population (0 "
                             f"members); ask for at least one member.")
        for name, dist in self._dists.items():
            given = np.asarray(hp[name])
            label = f"{where} {what}[{name!r}]"
            if given.dtype == bool or given.dtype.kind not in "iuf" and not jnp.issubdtype(given.dtype, jnp.floating):
                named = given.dtype.kind in "USO"  # (option names, as the table shows them)
                raise ValueError(f"{label} must be numbers (one per member), got dtype {given.dtype}" + (
                    ": the encoded values, a Choice's as its option's index (space.encode turns a list of "
                    "settings into them)." if named else "."))
            values = given.astype(np.float64)  # (bfloat16 too)
            if what == "hp":  # (a strategy's own ask may hold NaN for a place no member takes: SuccessiveHalving's)
                values = np.where(np.isnan(values), 0.0, values)
            shown = (lambda bad: f"{given[bad][:3].tolist()} (members {np.flatnonzero(bad)[:3].tolist()})")
            bad = ~np.isfinite(values)
            if bad.any():
                raise ValueError(f"{label} holds {shown(bad)}: values must be finite."
                                 f"{self._unused_hint(name, hp, bad)}")
            if isinstance(dist, Choice) or (isinstance(dist, Fixed) and dist.kind == "categorical"):
                bad = (values != np.round(values)) | (values < 0) | (values >= len(dist.options))
                if bad.any():
                    verb = "asked for" if what == "result" else "given"
                    raise ValueError(f"{label} holds {shown(bad)}: a {type(dist).__name__} is {verb} by its "
                                     f"option's index, 0..{len(dist.options) - 1} for {list(dist.options)} "
                                     f"(space.encode turns values into indices).")
                continue
            if dist.kind == "int" and (values != np.round(values)).any():
                raise ValueError(f"{label} holds {shown(values != np.round(values))}: {dist!r} takes whole numbers.")
            if not inside:
                continue
            low, high = numeric_bounds(dist)
            # as they train (float32: 0.30000000000000004 from float64 arithmetic is float32's 0.3)
            dtype = np.float32 if dist.kind == "float" else np.float64
            trained = values.astype(dtype)
            bad = (trained < np.asarray(low, dtype)) | (trained > np.asarray(high, dtype))
            if bad.any():
                raise ValueError(f"{label} holds {shown(bad)}, outside the space's {dist!r}; ask for values inside "
                                 f"it (space.from_unit maps the unit cube onto the space).")
        return n

    def _unused_hint(self, name: str, hp: Mapping[str, Any], bad: np.ndarray) -> str:
        """For members given NaN (as the table shows it) for a conditional name they do not use: that
        they carry a value all the same."""
        if name not in self._conditions or self.active({k: hp[k] for k in self.names}, np)[name][bad].any():
            return ""
        parents = ", ".join(f"{p}={list(v)!r}" for p, v in self._conditions[name])
        return (f" These members do not use {name!r} (only_when({name!r}, {parents})), but every member still "
                f"carries a value for every name: give any value inside the space's {self._dists[name]!r} "
                f"(space.sample's, for one); they do not train with it.")

    def decode(self, hp: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Encoded population -> one dict of plain Python values per member."""
        n = self.check_population(hp)
        columns = {name: np.asarray(hp[name]) for name in self.names}
        return [{name: d.decode(columns[name][i]) for name, d in self._dists.items()} for i in range(n)]

    def decode_columns(self, hp: Mapping[str, Any]) -> dict[str, list]:
        """Encoded population -> dict name -> list of plain Python values (table columns); None
        where a conditional name is not the member's setting (`only_when`)."""
        self.check_population(hp)
        active = self.active(hp)
        columns = {}
        for name, d in self._dists.items():
            values = [d.decode(v) for v in np.asarray(hp[name])]
            if name in active:  # (NaN in a column of numbers, None in one of names)
                unused = None if d.kind == "categorical" and not getattr(d, "is_numeric", False) else math.nan
                values = [v if on else unused for v, on in zip(values, active[name])]
            columns[name] = values
        return columns

    def encode(self, values: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, Array]:
        """Plain values (one dict, or a list of dicts) -> encoded population arrays."""
        rows = [values] if isinstance(values, Mapping) else list(values)
        out = {}
        for name, d in self._dists.items():
            col = []
            for row in rows:
                if name not in row:
                    raise ValueError(f"Space.encode: {name!r} missing from {dict(row)!r}.")
                col.append(d.encode(row[name]))
            out[name] = jnp.asarray(col, d.dtype)
        return out

    def numeric(self, hp: Mapping[str, Array]) -> dict[str, Array]:
        """Encoded population -> the values a model computes with: numeric choices become their
        values (a gather on device), True / False options 1 / 0, categorical ones stay indices
        into `options`."""
        out = {}
        for name, d in self._dists.items():
            x = hp[name]
            if isinstance(d, Choice) and d.gathers:
                if isinstance(x, jax.core.Tracer):
                    x = jnp.asarray(d.values())[x]
                else:  # on the host: no small program to compile for one gather
                    x = jnp.asarray(d.values()[np.asarray(x)])
            out[name] = x
        return out

    def from_numeric(self, hp: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inverse of `numeric` on the host: values a model computes with -> the encoded
        population (a numeric choice's value becomes its option's index; it must be an option)."""
        out = {}
        for name, d in self._dists.items():
            x = np.asarray(hp[name])
            if isinstance(d, Choice) and d.gathers:
                options = np.asarray(jnp.asarray(d.values()))  # as `numeric` gathered them (float32)
                match = x.astype(options.dtype)[:, None] == options[None, :]
                if not match.any(axis=1).all():
                    raise ValueError(f"{name}={x[~match.any(axis=1)][0]!r} is not one of the options of {d!r}.")
                x = match.argmax(axis=1)
            out[name] = x.astype(d.dtype)
        return out

    # -- persistence -------------------------------------------------------------------------
    def to_config(self) -> dict:
        """dict name -> {'type': ..., settings}; a conditional name's adds 'only_when': {parent: [values]}."""
        config = {name: d.to_config() for name, d in self._dists.items()}
        for child, parents in self._conditions.items():
            config[child]["only_when"] = {parent: list(values) for parent, values in parents}
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping], *, written: bool = False) -> "Space":
        """dict name -> {'type': ..., settings} (what to_config wrote) -> the Space. written=True: a
        config to_config wrote (a saved run's), whose conditions are taken as they were, values a
        parent no longer takes after Space.replace included (they hold for no member); a config a
        person wrote has each value checked (Space.only_when)."""
        if not isinstance(config, Mapping):
            raise TypeError(f"Space.from_config: config must be a dict name -> {{'type': 'LogUniform', 'low': 1e-4, "
                            f"'high': 1e-1}}, got {type(config).__name__}: {config!r}.")
        conditions = {name: c["only_when"] for name, c in config.items() if isinstance(c, Mapping) and "only_when" in c}
        space = cls({name: distribution_from_config({k: v for k, v in c.items() if k != "only_when"}
                                                    if isinstance(c, Mapping) else c, name, also=("only_when",))
                     for name, c in config.items()})
        for name, parents in conditions.items():
            if not isinstance(parents, Mapping):
                raise TypeError(f"space {name!r}: only_when must be a table parent -> values, e.g. "
                                f"only_when = {{optimizer = \"sgd\"}}; got {parents!r}.")
            if written and all(p in space._dists for p in parents) and \
                    not all(_takes(space[p], v) for p, vs in parents.items() for v in vs):
                space = space._conditioned(name, tuple(sorted((p, tuple(vs)) for p, vs in parents.items())))
            else:  # (a person's config, or a name not in the space: only_when says what is wrong)
                space = space.only_when(name, **parents)
        return space


# -- checks that models and optimizers run on the names they read ------------------------------
@quick_program(static_argnums=(0, 2))
def _sample(space: Space, key: Array, n: int) -> dict[str, Array]:
    # one compiled program per (space, n), instead of a small one per operation of every draw
    return {name: d.sample(_name_key(key, name), n) for name, d in space.items()}


def int_bounds(space: Space, name: str, minimum: int) -> tuple[int, int] | None:
    """(low, high) of an integer hyperparameter, checked against `minimum`; None if absent."""
    if name not in space:
        return None
    dist = space[name]
    if isinstance(dist, (IntUniform, IntLogUniform)):
        low, high = dist.low, dist.high
    elif isinstance(dist, (Choice, Fixed)) and all(
        isinstance(o, numbers.Integral) and not isinstance(o, bool) for o in dist.options
    ):
        low, high = min(dist.options), max(dist.options)
    else:
        raise ValueError(
            f"{name} must be an integer distribution (vt.IntUniform, vt.IntLogUniform, or vt.Choice / "
            f"vt.Fixed of integers), got {dist!r}."
        )
    if low < minimum:
        raise ValueError(f"{name}={dist!r} allows {low}; {name} must be >= {minimum}.")
    return int(low), int(high)


def categorical_options(space: Space, name: str, default: str, allowed: Sequence[str] | None = None
                        ) -> tuple[str, ...]:
    """The options a categorical hyperparameter takes (checked against `allowed` when given), or
    (default,) when the space does not name it."""
    if name not in space:
        return (default,)
    dist = space[name]
    if not isinstance(dist, (Choice, Fixed)) or dist.kind != "categorical":
        raise ValueError(f"{name} must be vt.Choice([...]) or vt.Fixed('...') of names, got {dist!r}.")
    if allowed is not None:
        unknown = [o for o in dist.options if o not in allowed]
        if unknown:
            raise ValueError(f"{name} options {unknown} are unknown; choose from {list(allowed)}.")
    return tuple(dist.options)


@dataclasses.dataclass(frozen=True)
class Conditions:
    """Space.only_when's conditions over the values a model computes with: a value a member draws
    for a name that is not its setting (its row shows NaN) must not train it, so the built-in
    optimizer, the MLP and your module's fields take their default there instead, the value a
    space without that name gives (`settle`). One member (traced, in the program) or many."""

    rules: tuple[tuple[str, tuple[tuple[str, tuple[float, ...]], ...]], ...] = ()
    otherwise: tuple[tuple[str, float], ...] = ()  # values given in place of the defaults (Space._with_otherwise)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(child for child, _ in self.rules)

    def active(self, name: str, hp: Mapping[str, Any], xp=jnp):
        """Whether `name` is each member's setting: its parents take the values named (and are
        themselves active); True where the space sets no condition on it."""
        rules = dict(self.rules)
        mask = True
        for parent, values in rules.get(name, ()):
            column = hp[parent]
            # (no value left: the parent cannot take those named, Space.replace having narrowed it)
            hit = functools.reduce(xp.logical_or, [column == value for value in values]) if values else \
                xp.zeros(xp.shape(column), bool)
            mask = xp.logical_and(mask, xp.logical_and(hit, self.active(parent, hp, xp)))
        return mask

    def settle(self, hp: Mapping[str, Any], defaults: Mapping[str, Any], xp=jnp) -> dict[str, Any]:
        """hp with each conditional name in `defaults` set to its default where it is not the
        member's setting (conditions read from hp as given)."""
        out = dict(hp)
        defaults = {**defaults, **dict(self.otherwise)}
        for name in self.names:
            if name in hp and name in defaults:
                value = xp.asarray(hp[name])
                out[name] = xp.where(self.active(name, hp, xp), value, xp.asarray(defaults[name], value.dtype))
        return out


def numeric_bounds(dist: Distribution) -> tuple:
    """(smallest, largest) value a numeric distribution allows."""
    if isinstance(dist, (Choice, Fixed)):
        return min(dist.options), max(dist.options)
    return dist.low, dist.high


def check_range(space: Space, name: str, low: float, high: float, low_ok: bool, high_ok: bool, fix: str) -> None:
    """Every value `space[name]` allows must lie in the interval low..high (ends included where
    low_ok / high_ok); the error names the value and the fix. A no-op when the space lacks name."""
    if name not in space:
        return
    dist = space[name]
    if (dist.kind == "categorical" and not getattr(dist, "is_numeric", False)) or (
            isinstance(dist, Fixed) and isinstance(dist.value, (bool, np.bool_))):  # (True would be 1.0)
        raise ValueError(f"{name}={dist!r} must be numeric; {fix}.")
    for v in numeric_bounds(dist):
        below = v < low or (v == low and not low_ok)
        above = v > high or (v == high and not high_ok)
        if below or above:
            interval = f"{'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"
            raise ValueError(f"{name}={dist!r} allows {v}, outside {interval}; {fix}.")
