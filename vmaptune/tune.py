"""The driver: ask the strategy for a population, train it in one program, tell the scores back.

    result = vt.tune(vt.MLP(), space, data, strategy=vt.RandomSearch(population=256), epochs=20)

Every input is checked before anything compiles. Each round reuses the compiled program (the
population is padded to the strategy's size with frozen members when a strategy asks fewer).
Results of finished rounds survive an interrupt (Ctrl-C returns them) and, with `run_dir`, are
written after every round.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from vmaptune import engine
from vmaptune.data import Dataset
from vmaptune.distributed import check_devices, check_member_block, default_member_block
from vmaptune.metrics import get_metric
from vmaptune.models import MLP, _int_bounds
from vmaptune.refit import refit_and_test
from vmaptune.replicas import Replicas, cv_arrays
from vmaptune.optim import OPTIMIZER_HYPERPARAMETERS, OPTIMIZERS, SCHEDULES
from vmaptune.results import STATUS_DIVERGED, STATUS_OK, STATUS_STOPPED, Results
from vmaptune.space import Choice, Fixed, IntUniform, Space
from vmaptune.strategies.base import Strategy, finite_or_worst
from vmaptune.strategies.random_search import RandomSearch

DEFAULT_OPTIMIZER = "sgd"

# Allowed ranges of numeric hyperparameters: name -> (low, high, low inclusive, high inclusive, fix).
RANGES = {
    "learning_rate": (0.0, np.inf, False, False, "use e.g. vt.LogUniform(1e-4, 1e-1)"),
    "momentum": (0.0, 1.0, True, False, "use e.g. vt.OneMinusLogUniform(0.9, 0.999)"),
    "b1": (0.0, 1.0, True, False, "use e.g. vt.OneMinusLogUniform(0.8, 0.99)"),
    "b2": (0.0, 1.0, True, False, "use e.g. vt.OneMinusLogUniform(0.99, 0.9999)"),
    "eps": (0.0, np.inf, False, False, "use e.g. vt.LogUniform(1e-10, 1e-6)"),
    "weight_decay": (0.0, np.inf, True, False, "use e.g. vt.LogUniform(1e-6, 1e-2)"),
    "l1": (0.0, np.inf, True, False, "use e.g. vt.LogUniform(1e-7, 1e-3)"),
    "dropout": (0.0, 1.0, True, False, "use e.g. vt.Uniform(0.0, 0.5)"),
    "init_scale": (0.0, np.inf, False, False, "use e.g. vt.LogUniform(0.1, 10.0)"),
    "warmup_steps": (0.0, np.inf, True, False, "use e.g. vt.IntUniform(0, 500)"),
    "decay_rate": (0.0, 1.0, False, True, "use e.g. vt.Uniform(0.05, 0.5)"),
    "decay_steps": (1.0, np.inf, True, False, "use e.g. vt.IntLogUniform(100, 5000)"),
}


def tune(
    model: MLP,
    space: Space,
    data: Dataset,
    strategy: Strategy | None = None,
    *,
    epochs: int = 20,
    seed: int = 0,
    metric: str | None = None,
    batch_size: int = 64,
    chunk_epochs: int = 1,
    shared_order: bool = True,
    progress: bool = True,
    run_dir: str | None = None,
    bucketing: bool = False,
    early_stopping: "EarlyStopping | None" = None,
    cv: int | None = None,
    seeds: int = 1,
    refit: int = 0,
    devices: int | None = None,
    member_block: int | None = None,
) -> Results:
    """Trains every population the strategy asks for and returns the `Results`.

    model: vt.MLP (its structure follows the space). space: vt.Space. data: vt.Dataset.
    strategy: default vt.RandomSearch(population=64). epochs: training epochs per member.
    metric: validation metric to maximise (accuracy / neg_log_loss for classification,
      neg_mse / neg_mae / r2 for regression; default accuracy or neg_mse).
    batch_size: minibatch rows (when the space has no batch_size; a space's batch_size gives each
      member its own, padded to the largest). chunk_epochs: epochs per compiled call (progress and strategies
      act between chunks). shared_order: members see the same minibatch order (fair, faster);
      False gives each member its own. run_dir: if given, results are saved there after each round.
    early_stopping: vt.EarlyStopping(patience=..., ...) freezes each member when its validation
      score stops improving (checked every epoch inside the program); stopped members are packed
      out of the population between chunks so the survivors run faster.
    bucketing: train members in groups of similar width (largest live width rounded up to a power
      of two), one compiled program per group, instead of padding everyone to the widest member.
    cv: K-fold cross-validation over train + validation, trained as K x P slots of one population;
      a setting's score is the mean over folds (std and per-fold scores reported).
    seeds: initialisations per setting, trained in the same program (mean and std reported).
    refit: retrain the best `refit` settings on train + validation and score them once on the
      test split (column test_score; never used for selection).
    devices: split each population over this many devices (default: all of JAX's default backend;
      on a CPU vmaptune shows each core as a device, see README). Results do not depend on it.
    member_block: on a CPU, members stepped at a time to keep their buffers in cache (default:
      chosen from the network's size; 0 = the whole population per step, the GPU default).
    """
    strategy = RandomSearch(population=64) if strategy is None else strategy
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be vt.EarlyStopping(patience=...), got {early_stopping!r}.")
    program, metric_name = _prepare(model, space, data, strategy, epochs=epochs, seed=seed, metric=metric,
                                    batch_size=batch_size, chunk_epochs=chunk_epochs, shared_order=shared_order,
                                    devices=devices, member_block=member_block)
    if hasattr(strategy, "check_epochs"):  # budget / interval checks before anything compiles
        strategy.check_epochs(epochs)
    if early_stopping is not None:
        program = dataclasses.replace(program, patience=early_stopping.patience, min_delta=early_stopping.min_delta,
                                      monitor=early_stopping.monitor, restore_best=early_stopping.restore_best_weights)
    compact_below = early_stopping.compact_below if early_stopping is not None else 0.0
    seeds, refit = _check_replicas(cv, seeds, refit, strategy)
    arrays = engine.data_arrays(data)
    if cv is not None:
        arrays, _ = cv_arrays(data, cv, seed)
        smallest, largest, _ = _batch_sizes(space, batch_size, arrays.n_train)
        program = dataclasses.replace(program, folds=cv, steps_per_epoch=arrays.n_train // smallest)
    replicas = Replicas(strategy.population, cv or 1, seeds)
    settings = {
        "strategy": repr(strategy), "model": repr(model), "dataset": getattr(data, "name", "?"),
        "task": data.task, "metric": metric_name, "epochs": epochs, "seed": seed, "batch_size": batch_size,
        "population": strategy.population, "shared_order": shared_order, "bucketing": bool(bucketing),
        "early_stopping": repr(early_stopping), "cv": cv, "seeds": seeds, "refit": refit,
        "devices": program.devices, "member_block": program.member_block,
        "useful_compute_fraction": [],
    }
    builder = _ProgramBuilder(model, space, data, program, member_block)
    root = jax.random.key(seed)
    state = strategy.init(space, jax.random.fold_in(root, 1))
    rounds: list[dict[str, Any]] = []
    bar = _progress_bar(strategy, space, epochs, progress)
    best = -np.inf
    started = time.perf_counter()
    try:
        while not strategy.done(state):
            round_index = len(rounds)
            hp, state = strategy.ask(state, jax.random.fold_in(jax.random.fold_in(root, 2), round_index))
            n = space.check_population(hp, f"{strategy.name}.ask result")
            padded, active = _pad(hp, n, strategy.population, strategy.name)
            ids = sum(len(r["score"]) for r in rounds) + jnp.arange(strategy.population)

            def on_chunk(done, curves, _n=n):
                bar.update(done - bar_done[0])
                bar_done[0] = done
                scores = curves["val_score"][:_n]
                if np.isfinite(scores).any():
                    bar.set_postfix({f"best {metric_name}": f"{max(best, np.nanmax(scores)):.4f}"}, refresh=False)

            bar_done = [0]
            numeric = space.numeric(padded)
            if hasattr(strategy, "train_population"):  # strategies that act during training (PBT, halving)
                run = engine.PopulationRun(program, numeric, arrays, member_ids=ids, seed=seed, epochs=epochs,
                                           active=active)
                state = strategy.train_population(state, run, epochs=epochs, chunk_epochs=chunk_epochs,
                                                  on_chunk=on_chunk, key=jax.random.fold_in(root, 3 + round_index))
                slot_final, slot_curves = run.status(), run.curves
                useful = engine.useful_compute_fraction(program, run.hp, arrays.n_train)
                # e.g. PBT: rows show the values members ended with, plus lineage / rung columns
                extra = strategy.member_columns(state) if hasattr(strategy, "member_columns") else {}
                table_hp = strategy.final_hp(state) if hasattr(strategy, "final_hp") else hp
            else:
                extra, table_hp = {}, hp
                slot_hp, slot_ids, slot_active = replicas.expand(numeric, ids, active)
                groups = builder.groups(slot_hp, slot_active) if bucketing else [(program, np.arange(replicas.size))]
                slot_final, slot_curves, useful = _train_groups(
                    groups, slot_hp, arrays, slot_ids, slot_active, seed, epochs, chunk_epochs,
                    on_chunk if len(groups) == 1 else None, arrays.n_train, compact_below)
                if len(groups) > 1:
                    on_chunk(epochs, slot_curves)
            final, curves = replicas.aggregate(slot_final, slot_curves)
            settings["useful_compute_fraction"].append(round(useful, 4))
            record = _round_record(round_index, np.asarray(ids)[:n], table_hp, final, curves, n)
            record["extra"] = {k: np.asarray(v)[:n] for k, v in extra.items()}
            state = strategy.tell(state, hp, jnp.asarray(record["score"]))
            rounds.append(record)
            best = max(best, float(np.max(np.asarray(finite_or_worst(record["score"])))))
            if run_dir is not None:
                _results(space, rounds, settings, started).save(run_dir)
    except KeyboardInterrupt:
        if not rounds:
            raise
        warnings.warn(f"interrupted: returning the {len(rounds)} finished round(s).", stacklevel=2)
    finally:
        bar.close()
    results = _results(space, rounds, settings, started)
    if refit and len(results):
        _refit(results, program, space, data, seeds, seed, refit)
        if run_dir is not None:
            results.save(run_dir)
    return results


def _refit(results: Results, program, space, data, seeds, seed, k):
    """Adds test_score for the best k settings, retrained on train + validation (never selects)."""
    top = [i for i in results.ranking()[:k] if np.isfinite(results.members["score"].iloc[i])]
    if not top:
        return
    hp = space.numeric({name: jnp.asarray(results.hp[name][top]) for name in space.names})
    ids = jnp.asarray(results.members["member"].to_numpy()[top]) * seeds
    epochs = results.members["best_epoch"].to_numpy()[top]
    scores = refit_and_test(program, hp, data, member_ids=ids, epochs=epochs, seed=seed)
    test = np.full(len(results), np.nan, np.float32)
    test[top] = scores
    results.members["test_score"] = test


def _check_replicas(cv, seeds, refit, strategy):
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2):
        raise ValueError(f"cv={cv!r}: use an integer >= 2 (folds), or None for the fixed validation split.")
    if isinstance(seeds, bool) or not isinstance(seeds, numbers.Integral) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}: use an integer >= 1 (initialisations per setting).")
    refit = int(refit) if isinstance(refit, (bool, numbers.Integral)) else refit
    if not isinstance(refit, int) or refit < 0:
        raise ValueError(f"refit={refit!r}: use the number of best settings to retrain and test (0 = none).")
    if hasattr(strategy, "train_population") and (cv is not None or seeds > 1):
        raise ValueError(f"{strategy.name} acts during training, which does not combine with cv or seeds > 1 yet; "
                         "leave them out for this strategy.")
    return int(seeds), refit


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Per-member early stopping, as Keras' callback: a member whose monitored validation value has
    not improved by more than `min_delta` for `patience` epochs is frozen (an exact no-op from then
    on). monitor: "score" (the tuned metric) or "loss" (validation loss).
    restore_best_weights: keep each member's weights from its best epoch (costs a second copy).
    compact_below: when the share of members still training falls to this or under, the
    survivors are packed into a smaller population between chunks (0 turns packing off)."""

    patience: int = 5
    min_delta: float = 0.0
    monitor: str = "score"
    restore_best_weights: bool = False
    compact_below: float = 0.5

    def __post_init__(self):
        if isinstance(self.patience, bool) or not isinstance(self.patience, numbers.Integral) or self.patience < 1:
            raise ValueError(f"EarlyStopping(patience={self.patience!r}): patience must be an integer >= 1 "
                             "(epochs without improvement before a member stops).")
        if not isinstance(self.min_delta, numbers.Real) or not self.min_delta >= 0:
            raise ValueError(f"EarlyStopping(min_delta={self.min_delta!r}): min_delta must be a number >= 0.")
        if self.monitor not in ("score", "loss"):
            raise ValueError(f"EarlyStopping(monitor={self.monitor!r}): monitor must be 'score' or 'loss'.")
        if not 0.0 <= float(self.compact_below) < 1.0:
            raise ValueError(f"EarlyStopping(compact_below={self.compact_below!r}): must be in [0, 1).")


# -- checks, before anything compiles ------------------------------------------------------------------
def _prepare(model, space, data, strategy, *, epochs, seed, metric, batch_size, chunk_epochs, shared_order,
             devices=None, member_block=None):
    if not isinstance(space, Space):
        raise TypeError(f"space must be a vt.Space, got {type(space).__name__}.")
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a vt.Dataset (vt.load_dataset or vt.Dataset.from_arrays), got {type(data).__name__}.")
    if not hasattr(model, "build"):
        raise TypeError(f"model must be a vt.MLP (or have build(space, n_features, n_outputs)), got {model!r}.")
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a vt strategy such as vt.RandomSearch(population=64), got {strategy!r}.")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("chunk_epochs", chunk_epochs)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {seed!r}.")
    if batch_size > data.n_train:
        raise ValueError(f"batch_size={batch_size} is larger than the {data.n_train} training rows; "
                         f"use batch_size <= {data.n_train}.")
    metric_obj = get_metric(metric, data.task)
    metric_name = metric_obj.name
    built = model.build(space, data.n_features, data.n_outputs)
    known = set(built.hyperparameters()) | set(OPTIMIZER_HYPERPARAMETERS) | {"batch_size"}
    for name in space.names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"space has {name!r}, which the model and optimizer do not read.{hint} "
                             f"Known names: {sorted(known)}.")
    for name, (low, high, low_ok, high_ok, fix) in RANGES.items():
        if name in space:
            _check_range(name, space[name], low, high, low_ok, high_ok, fix)
    smallest, largest, variable = _batch_sizes(space, batch_size, data.n_train)
    devices = check_devices(devices)
    member_block = _member_block(built, space, check_member_block(member_block))
    program = engine.Program(
        model=built, optimizers=_categorical_options(space, "optimizer", OPTIMIZERS, DEFAULT_OPTIMIZER),
        task=data.task, metric=metric_obj, batch_size=largest, steps_per_epoch=data.n_train // smallest,
        shared_order=bool(shared_order), schedules=_categorical_options(space, "schedule", SCHEDULES, "constant"),
        variable_batch=variable, devices=devices, member_block=member_block,
    )
    return program, metric_name


def _batch_sizes(space: Space, batch_size: int, n_train: int) -> tuple[int, int, bool]:
    """(smallest, largest, per-member?) batch size: from the space if it names batch_size."""
    if "batch_size" not in space:
        return int(batch_size), int(batch_size), False
    low, high = _int_bounds(space, "batch_size", 1)
    if high > n_train:
        raise ValueError(f"batch_size={space['batch_size']!r} allows {high}, more than the {n_train} training "
                         f"rows; keep batch sizes <= {n_train}.")
    return low, high, low != high


def _categorical_options(space: Space, name: str, allowed: tuple[str, ...], default: str) -> tuple[str, ...]:
    """The options a categorical hyperparameter takes (checked against `allowed`), else (default,)."""
    if name not in space:
        return (default,)
    dist = space[name]
    if not isinstance(dist, (Choice, Fixed)) or dist.kind != "categorical":
        raise ValueError(f"{name} must be vt.Choice([...]) or vt.Fixed('...') of names, got {dist!r}.")
    unknown = [o for o in dist.options if o not in allowed]
    if unknown:
        raise ValueError(f"{name} options {unknown} are unknown; choose from {list(allowed)}.")
    return tuple(dist.options)


def _check_range(name, dist, low, high, low_ok, high_ok, fix):
    if dist.kind == "categorical" and not getattr(dist, "is_numeric", False):
        raise ValueError(f"{name}={dist!r} must be numeric; {fix}.")
    values = [dist.low, dist.high] if hasattr(dist, "low") else list(dist.options)
    for v in values:
        below = v < low or (v == low and not low_ok)
        above = v > high or (v == high and not high_ok)
        if below or above:
            interval = f"{'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"
            raise ValueError(f"{name}={dist!r} allows {v}, outside {interval}; {fix}.")


# -- rounds -------------------------------------------------------------------------------------------
def _pad(hp, n, population, owner):
    """Pads a population of n <= P members to P with frozen copies of member 0 (one program shape)."""
    if n > population:
        raise ValueError(f"{owner} returned {n} members, more than its population={population}.")
    active = jnp.arange(population) < n
    if n == population:
        return hp, active
    return {k: jnp.concatenate([v, jnp.repeat(v[:1], population - n)]) for k, v in hp.items()}, active


def _member_block(built, space: Space, requested: int | None) -> int:
    """Members per block: `requested`, or when None the automatic size for the built network (its
    padded shape sets the buffer bytes, so one sampled member measures every member)."""
    if requested is not None:
        return requested
    one = {k: v[0] for k, v in space.numeric(space.sample(jax.random.key(0), 1)).items()}
    return default_member_block(engine.member_bytes(built, one))


class _ProgramBuilder:
    """Programs for width buckets: the same model sized for a smaller maximum width (with its own
    automatic member block, unless the user chose one: a narrower network fits more members in cache)."""

    def __init__(self, model, space: Space, data: Dataset, program: engine.Program, member_block: int | None = None):
        self.model, self.space, self.data, self.program = model, space, data, program
        self.member_block = member_block
        self.width_names = [n for n in space.names if n == "n_units" or n.startswith("n_units_")]
        self.cache: dict[int, engine.Program] = {}

    def program_for(self, cap: int) -> engine.Program:
        if cap not in self.cache:
            capped = self.space.replace(**{n: IntUniform(1, cap) for n in self.width_names})
            built = self.model.build(capped, self.data.n_features, self.data.n_outputs)
            self.cache[cap] = dataclasses.replace(self.program, model=built,
                                                  member_block=_member_block(built, capped, self.member_block))
        return self.cache[cap]

    def groups(self, numeric_hp, active) -> list[tuple[engine.Program, np.ndarray]]:
        """[(program, member indices)]: members grouped by live width rounded up to a power of two."""
        net = self.program.model
        if not self.width_names or not hasattr(net, "net"):
            return [(self.program, np.arange(len(active)))]
        depth, widths, _ = jax.vmap(net.net.structure)(numeric_hp)
        live = np.arange(widths.shape[1])[None, :] < np.asarray(depth)[:, None]
        widest = np.max(np.where(live, np.asarray(widths), 1), axis=1)
        top = net.net.max_width
        caps = np.minimum(2 ** np.ceil(np.log2(np.maximum(widest, 8))).astype(int), top)
        caps = np.where(np.asarray(active), caps, caps[0])  # padding members ride with member 0
        return [(self.program_for(int(c)), np.flatnonzero(caps == c)) for c in np.unique(caps)]


def _train_groups(groups, numeric_hp, arrays, ids, active, seed, epochs, chunk_epochs, on_chunk, n_train,
                  compact_below=0.0):
    """Trains each (program, members) group, padded to a power-of-two size so shapes repeat across
    rounds; returns the population's final status arrays, curves and useful-compute fraction."""
    p = len(active)
    out = {"diverged": np.zeros(p, bool), "stopped": np.zeros(p, bool),
           "best_score": np.full(p, -np.inf, np.float32), "best_epoch": np.zeros(p, np.int32)}
    curves: dict[str, np.ndarray] = {}
    useful_flops = computed = 0.0
    for program, members in groups:
        size = 1 << int(np.ceil(np.log2(len(members)))) if len(groups) > 1 else len(members)
        take = np.concatenate([members, np.full(size - len(members), members[0])])
        group_hp = {k: jnp.asarray(v)[take] for k, v in numeric_hp.items()}
        group_active = jnp.asarray(active)[take] & (jnp.arange(size) < len(members))
        fraction = engine.useful_compute_fraction(program, group_hp, n_train, group_active)
        run = engine.PopulationRun(program, group_hp, arrays, member_ids=jnp.asarray(ids)[take], seed=seed,
                                   epochs=epochs, active=group_active)
        run.train(epochs, chunk_epochs, on_chunk, compact_below)
        group_curves, final = run.curves, run.status()
        n = len(members)
        for key in out:
            out[key][members] = final[key][:n]
        for key, value in group_curves.items():
            curves.setdefault(key, np.full((p, epochs), np.nan, np.float32))[members] = value[:n]
        cost = size * program.steps_per_epoch * program.batch_size * program.model.padded_row_flops() \
            if hasattr(program.model, "padded_row_flops") else float(size)
        useful_flops += fraction * cost
        computed += cost
    return out, curves, useful_flops / computed


def _round_record(round_index, ids, hp, final: dict, curves, n) -> dict[str, Any]:
    diverged = final["diverged"][:n]
    stopped = final["stopped"][:n] & ~diverged
    best_score = final["best_score"][:n]
    score_std = np.where(diverged, np.nan, final["score_std"][:n])
    curves = {k: v[:n] for k, v in curves.items()}
    best_score = np.where(np.isfinite(best_score), best_score, np.nan)
    return {
        "round": np.full(n, round_index), "member": ids,
        "hp": {k: np.asarray(v) for k, v in hp.items()},
        "score": np.where(diverged, np.nan, best_score),
        "best_score": best_score,
        "score_std": score_std,
        "final_score": curves["val_score"][:, -1],
        "best_epoch": final["best_epoch"][:n],
        "status": np.where(diverged, STATUS_DIVERGED, np.where(stopped, STATUS_STOPPED, STATUS_OK)),
        "final_train_loss": curves["train_loss"][:, -1],
        "curves": curves,
    }


def _results(space: Space, rounds, settings, started) -> Results:
    settings = {**settings, "rounds": len(rounds), "seconds": round(time.perf_counter() - started, 3)}
    if not rounds:
        empty = pd.DataFrame(columns=["round", "member", *space.names, "score", "status"])
        return Results(space, empty, {}, {n: np.zeros(0) for n in space.names}, settings)
    hp = {k: np.concatenate([r["hp"][k] for r in rounds]) for k in space.names}
    columns = {"round": np.concatenate([r["round"] for r in rounds]),
               "member": np.concatenate([r["member"] for r in rounds])}
    columns.update(space.decode_columns(hp))
    for key in ("score", "score_std", "best_score", "final_score", "best_epoch", "status", "final_train_loss"):
        columns[key] = np.concatenate([r[key] for r in rounds])
    for key in rounds[0].get("extra", {}):
        columns[key] = np.concatenate([r["extra"][key] for r in rounds])
    curves = {k: np.concatenate([r["curves"][k] for r in rounds]) for k in rounds[0]["curves"]}
    return Results(space, pd.DataFrame(columns), curves, hp, settings)


def _progress_bar(strategy, space, epochs, enabled):
    from tqdm.auto import tqdm

    total = strategy.total_evaluations(space)
    rounds = -(-total // strategy.population) if total else None  # the last round may be short
    if hasattr(strategy, "tune_rounds"):  # strategies whose rounds are not population-sized asks
        rounds = strategy.tune_rounds()
    return tqdm(total=epochs * rounds if rounds else None, unit="epoch", desc=strategy.name,
                disable=not enabled, dynamic_ncols=True, leave=True)
