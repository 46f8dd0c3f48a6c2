"""vmaptune: tune neural-network hyperparameters by training the whole population at once."""

# Before anything can start JAX's backends: show each CPU core as a device, so a population is
# split over all cores (see vmaptune/distributed.py; VMAPTUNE_CPU_DEVICES=1 turns it off).
import time as _time

_import_started = _time.perf_counter()
__version__ = "0.1.0"  # before the imports below: checkpoints record it

from vmaptune import distributed
from vmaptune.distributed import configure_cpu_devices

configure_cpu_devices()

# A new process reuses the programs earlier ones compiled (vmaptune/compile_cache.py;
# VMAPTUNE_COMPILE_CACHE=0 turns it off).
from vmaptune.compile_cache import configure_compile_cache

configure_compile_cache()

from vmaptune.data import Dataset, load_dataset
from vmaptune.lr_finder import LRRangeTestResult, LRSuggestion, lr_range_test
from vmaptune.metrics import LOSSES, METRICS, Loss, Metric
from vmaptune import nn
from vmaptune.models import MLP, BuiltModel, Linen, Model, Nnx
from vmaptune.program import Program, build_program
from vmaptune.decisions import Decision, Snapshot, TrainingContext
from vmaptune.optim import OPTIMIZERS
from vmaptune.results import Results, load_results
from vmaptune.optuna_study import OptunaExport
from vmaptune.run_dir import RunDirInUseError
from vmaptune.trained import TrainedModel
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
from vmaptune.strategies import (
    BOHB,
    PBT,
    BayesOpt,
    CoarseToFine,
    Evolution,
    GridSearch,
    Hyperband,
    OptunaSampler,
    PBTReplay,
    PBTSchedule,
    RandomSearch,
    Strategy,
    SuccessiveHalving,
)
from vmaptune.tune import EarlyStopping, tune


# scikit-learn's estimator interface, imported when first used (it costs import time otherwise).
_LAZY = {name: "vmaptune.sklearn" for name in
         ("MLPClassifier", "MLPRegressor", "NetworkClassifier", "NetworkRegressor", "PopulationSearchCV")}


# modules reached as attributes (vmaptune.plots.plot_curves after `import vmaptune`), imported when
# first used: matplotlib and optuna cost import time otherwise
_LAZY_MODULES = ("plots", "optuna_study")


def __getattr__(name):
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"vmaptune.{name}")
    raise AttributeError(f"module 'vmaptune' has no attribute {name!r}")


__all__ = [
    # search spaces
    "Space", "Distribution", "Uniform", "LogUniform", "OneMinusLogUniform", "IntUniform",
    "IntLogUniform", "Choice", "Fixed",
    # data, model, training
    "Dataset", "load_dataset", "MLP", "Linen", "Nnx", "nn", "Model", "BuiltModel", "OPTIMIZERS", "METRICS",
    "Metric", "LOSSES", "Loss", "tune",
    "EarlyStopping", "lr_range_test", "LRRangeTestResult", "LRSuggestion",
    # the engine's public surface: programs, and decisions taken during training
    "Program", "build_program", "Snapshot", "Decision", "TrainingContext",
    # several processes (vt.distributed.initialize) on JAX's distributed runtime
    "distributed",
    # strategies
    "Strategy", "RandomSearch", "GridSearch", "CoarseToFine", "Evolution", "PBT", "PBTReplay", "PBTSchedule",
    "SuccessiveHalving", "Hyperband", "BOHB", "BayesOpt", "OptunaSampler",
    # results and trained models
    "Results", "load_results", "TrainedModel", "RunDirInUseError", "OptunaExport",
    # scikit-learn's interface
    "MLPClassifier", "MLPRegressor", "NetworkClassifier", "NetworkRegressor", "PopulationSearchCV",
]

from vmaptune import startup as _startup  # noqa: E402

_startup.IMPORT_SECONDS = _time.perf_counter() - _import_started
