"""Checks of plain arguments shared by the public calls: counts, seeds and on/off flags. Each
returns the value as Python's own type (numpy's integers and bools are taken) or raises an error
naming the argument, the value and the fix, before anything compiles."""

from __future__ import annotations

import numbers
from typing import Any

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
