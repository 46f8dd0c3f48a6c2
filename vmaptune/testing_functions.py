"""Standard black-box test functions for search strategies (minimisation problems).

Each comes as a function of a population dict (name -> (n,) array) returning (n,) values to
*minimise*, with the search space, and the known minimum (so simple regret = best found - minimum).
Strategies maximise scores, so pass `-f(hp)` as scores.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

from vmaptune.space import Space, Uniform


class TestFunction(NamedTuple):
    name: str
    space: Space
    fn: object  # (dict name -> (n,) array) -> (n,) float64, to minimise
    minimum: float

    def __call__(self, hp: Mapping) -> np.ndarray:
        return self.fn(hp)

    def regret(self, values) -> float:
        """Simple regret of a set of evaluated values: min(values) - minimum (NaN ignored)."""
        values = np.asarray(values, np.float64)
        return float(np.nanmin(values) - self.minimum) if np.any(np.isfinite(values)) else float("inf")


def _branin(hp: Mapping) -> np.ndarray:
    x1, x2 = np.asarray(hp["x1"], np.float64), np.asarray(hp["x2"], np.float64)
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


_H6_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6(hp: Mapping) -> np.ndarray:
    x = np.stack([np.asarray(hp[f"x{i}"], np.float64) for i in range(1, 7)], axis=-1)  # (n, 6)
    inner = np.sum(_H6_A * (x[:, None, :] - _H6_P) ** 2, axis=-1)  # (n, 4)
    return -np.sum(_H6_ALPHA * np.exp(-inner), axis=-1)


BRANIN = TestFunction(
    "branin", Space(x1=Uniform(-5.0, 10.0), x2=Uniform(0.0, 15.0)), _branin, 0.397887357729738
)
HARTMANN6 = TestFunction(
    "hartmann6", Space({f"x{i}": Uniform(0.0, 1.0) for i in range(1, 7)}), _hartmann6, -3.322368011391339
)
