"""Search strategies: one file each, all sharing the ask/tell protocol in `base.py`."""

from vmaptune.strategies.base import Strategy
from vmaptune.strategies.bayesopt import BayesOpt
from vmaptune.strategies.bohb import BOHB
from vmaptune.strategies.coarse_to_fine import CoarseToFine
from vmaptune.strategies.evolution import Evolution
from vmaptune.strategies.grid import GridSearch
from vmaptune.strategies.halving import Hyperband, SuccessiveHalving
from vmaptune.strategies.optuna_sampler import OptunaSampler
from vmaptune.strategies.pbt import PBT, PBTReplay, PBTSchedule
from vmaptune.strategies.random_search import RandomSearch

__all__ = ["Strategy", "RandomSearch", "GridSearch", "CoarseToFine", "Evolution", "PBT", "PBTReplay",
           "PBTSchedule", "SuccessiveHalving", "Hyperband", "BOHB", "BayesOpt", "OptunaSampler"]
