"""Checks of the arguments of the public calls, before anything compiles.

Plain values (counts, seeds and on/off flags) come back as Python's own type (numpy's integers and
bools are taken) or raise an error naming the argument, the value and the fix. Calls that do not
fit a signature (`checked_arguments`, `checked_call`) raise a TypeError naming the argument, what
the callable takes and an example, instead of Python's bare "got an unexpected keyword argument"."""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
from typing import Any, Mapping

import numpy as np

#: The largest count the device programs hold (epochs, steps, rows: int32).
INT32_MAX = 2**31 - 1

#: The largest seed: jax.random.key takes a C long, and numpy's generators (the splits, the
#: folds) refuse negative seeds.
SEED_LIMIT = 2**63 - 1


def check_int_at_least(name: str, value: Any, minimum: int) -> int:
    """`value` as a Python int from `minimum` to INT32_MAX, else an error naming `name`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if value > INT32_MAX:
        raise ValueError(f"{name}={value!r} is past the largest count the compiled programs hold, 2**31 - 1 "
                         f"({INT32_MAX}); give a smaller one.")
    return int(value)


def check_seed(seed: Any, purpose: str, name: str = "seed") -> int:
    """`seed` as a Python int from 0 to SEED_LIMIT, else an error naming it, its purpose and the fix."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer ({purpose}), got {seed!r}; e.g. {name}=0.")
    if not 0 <= seed <= SEED_LIMIT:
        raise ValueError(f"{name}={seed!r} must be from 0 to 2**63 - 1 ({purpose}); e.g. {name}=0.")
    return int(seed)


def check_flag(name: str, value: Any) -> bool:
    """`value` as a bool: True / False (numpy's too), else a TypeError; the text 'no' or 'false'
    would otherwise switch an option on."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r}: give True or False.")
    return bool(value)


def argument_error(owner: str, positional: list[str], names: list[str], required: list[str], args: tuple,
                    kwargs: dict, example: str, hints: Mapping[str, str]) -> str:
    """The message for a call of `owner` whose arguments do not fit its signature."""
    takes = f"{owner} takes {', '.join(names) or 'no arguments'}; e.g. {example}."
    unknown = [k for k in kwargs if k not in names]
    if unknown:
        hint = "".join(f" {hints[k]}" if k in hints else f" Did you mean {close[0]!r} for {k!r}?" for k in unknown
                       if k in hints or (close := difflib.get_close_matches(k, names, n=1)))
        given = ", ".join(f"{k}={kwargs[k]!r}" for k in unknown)
        return f"{owner}: unknown argument{'s' if len(unknown) > 1 else ''} {given}.{hint} {takes}"
    if len(args) > len(positional):
        return (f"{owner}: {len(args)} positional arguments {args!r}, but it takes at most {len(positional)} "
                f"({', '.join(positional)}). {takes}")
    twice = [n for n in positional[:len(args)] if n in kwargs]
    if twice:
        return f"{owner}: {', '.join(twice)} given both by position and by name. {takes}"
    missing = [n for n in required if n not in positional[:len(args)] and n not in kwargs]
    if missing:
        return f"{owner}: missing {', '.join(missing)}. {takes}"
    return takes


def _argument_check(owner: str, fn, skip: int, example: str, hints: Mapping[str, str] | None):
    """(check(args, kwargs), names) for `fn`'s signature without its first `skip` parameters (a
    method's self): check raises the TypeError `argument_error` words for a call that does not fit."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())[skip:]
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    names = positional + [p.name for p in params if p.kind is p.KEYWORD_ONLY]
    required = [p.name for p in params if p.default is p.empty and p.name in names]

    def check(args: tuple, kwargs: dict) -> None:
        try:
            signature.bind(*(None,) * skip, *args, **kwargs)
        except TypeError:
            raise TypeError(argument_error(owner, positional, names, required, args, kwargs, example,
                                           hints or {})) from None

    return check, names


def checked_arguments(example: str, hints: Mapping[str, str] | None = None):
    """Class decorator (put it above @dataclass): a call with an unknown, missing or surplus
    argument raises a TypeError that names it and shows what the class takes and `example`,
    instead of Python's bare "__init__() got an unexpected keyword argument". Nothing else changes.
    hints: advice for likely unknown names (e.g. log=True on a linear range). `cls.argument_names`
    lists the arguments."""

    def decorate(cls):
        init = cls.__init__
        check, names = _argument_check(cls.__name__, init, 1, example, hints)

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            check(args, kwargs)
            init(self, *args, **kwargs)

        cls.__init__ = __init__
        cls.argument_names = tuple(names)
        return cls

    return decorate


def checked_call(example: str, hints: Mapping[str, str] | None = None):
    """Function decorator: checked_arguments for a function (vt.tune): a call that does not fit
    its signature raises a TypeError naming the argument, what it takes, `example` and `hints`."""

    def decorate(fn):
        check, _ = _argument_check(f"vt.{fn.__name__}", fn, 0, example, hints)

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            check(args, kwargs)
            return fn(*args, **kwargs)

        return checked

    return decorate
