"""vmaptune: tune neural-network hyperparameters by training the whole population at once."""

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
from vmaptune.strategies import RandomSearch, Strategy

__all__ = [
    "Choice", "Distribution", "Fixed", "IntLogUniform", "IntUniform", "LogUniform",
    "OneMinusLogUniform", "Space", "Uniform", "RandomSearch", "Strategy",
]
