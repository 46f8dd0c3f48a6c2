"""One vt.tune call's fixed parts (checked settings, programs, data on the device) and the driver's
one training path for a round: asked settings -> replicas -> program groups -> a Population
trained with the strategy's and early stopping's decisions -> one row per setting.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from typing import Any, Callable, Mapping

import jax.numpy as jnp
import numpy as np

from vmaptune import costs, engine, memory, streams
from vmaptune.checkpoint import code_fingerprint, data_fingerprint, from_host, to_host
from vmaptune.arguments import INT32_MAX, check_flag, check_int_at_least, check_seed
from vmaptune.data import Dataset
from vmaptune.decisions import TrainingContext
from vmaptune.early_stopping import Compaction, EarlyStopping
from vmaptune.history import TABLE_COLUMNS, RoundRecord, round_record
from vmaptune.initialise import initialise_together
from vmaptune.models.base import Model
from vmaptune.population import PopulationRun
from vmaptune.memory import parse_bytes
from vmaptune.metrics import is_builtin, scores_in_target_units
from vmaptune.program import Programs, build_program, check_bucketing, check_dataset, one_member, updates_state
from vmaptune.refit import refit_and_test
from vmaptune.cv_splits import Splits, check_r2_folds
from vmaptune.replicas import Replicas, cv_arrays
from vmaptune.results import Results
from vmaptune.space import Space
from vmaptune.strategies.base import Strategy, check_strategy, checked_population_size
from vmaptune.strategies.pbt import PBTSchedule
from vmaptune.trained import TrainedModel
from vmaptune.training import Population, StrategyDecider, decided_by, train
from vmaptune.warn import warn

# the table's own columns, which a strategy's member_columns must not overwrite
_OWN_COLUMNS = ("round", "member", *TABLE_COLUMNS, "test_score")


@dataclasses.dataclass(frozen=True)
class Settings:
    """vt.tune's arguments after their checks (see vt.tune for each)."""

    epochs: int
    seed: int
    batch_size: int
    chunk_epochs: int
    shared_order: bool
    bucketing: bool | str
    early_stopping: EarlyStopping | None
    cv: int | None
    seeds: int
    refit: int
    devices: int | None
    member_block: int | None
    max_memory: int | None = None  # bytes per device (memory.py)
    evaluate_every: int = 1
    splits: Splits | None = None  # the folds themselves when cv= gave them (cv is then their number)
    even_batches: bool = False

    @classmethod
    def check(cls, **kwargs: Any) -> "Settings":
        for name in ("epochs", "batch_size", "chunk_epochs", "evaluate_every"):
            check_int_at_least(name, kwargs[name], 1)
        seed = check_seed(kwargs["seed"], "the root of every random draw of the search")
        stopping = kwargs["early_stopping"]
        if stopping is not None and not isinstance(stopping, EarlyStopping):
            raise TypeError(f"early_stopping must be vt.EarlyStopping(patience=...), got {stopping!r}.")
        cv, seeds, refit = kwargs["cv"], kwargs["seeds"], kwargs["refit"]
        given = kwargs.get("splits") is not None  # (folds of your own: one is a hold-out split)
        if cv is not None and (isinstance(cv, bool) or not isinstance(cv, numbers.Integral) or cv < 2 - given):
            raise ValueError(f"cv={cv!r}: use an integer >= 2 (folds), or None for the fixed validation split.")
        if stopping is not None and stopping.validation_fraction is not None and cv is None:
            raise ValueError(f"early_stopping={stopping!r} holds part of each fold's training rows out for early "
                             f"stopping, which needs cv=: without folds early stopping watches the validation "
                             f"split, and results score the test split apart. Add cv=3, or drop validation_fraction.")
        if isinstance(seeds, bool) or not isinstance(seeds, numbers.Integral) or seeds < 1:
            raise ValueError(f"seeds={seeds!r}: use an integer >= 1 (initialisations per setting).")
        if not isinstance(refit, numbers.Integral) or refit < 0:  # (True / False: scikit-learn's 1 / 0)
            raise ValueError(f"refit={refit!r}: use the number of best settings to retrain and test (0 = none; "
                             f"True is 1).")
        kwargs["max_memory"] = parse_bytes("max_memory", kwargs.get("max_memory"))
        return cls(**{**kwargs, "seed": seed, "seeds": int(seeds), "refit": int(refit),
                      "cv": None if cv is None else int(cv),
                      "shared_order": check_flag("shared_order", kwargs["shared_order"]),
                      "even_batches": check_flag("even_batches", kwargs.get("even_batches", False)),
                      "bucketing": check_bucketing(kwargs["bucketing"])})


def _check_scorable(metric: str | None, arrays: engine.DataArrays, cv: Any, y_test: np.ndarray | None = None) -> None:
    """roc_auc (and roc_auc_ovr) is undefined on validation rows of one class: every member would
    score NaN, which marks it diverged. Said before anything compiles, with the fold; and for the
    test split a refit scores (y_test: its targets, None without a refit)."""
    if metric == "r2":  # (a fold of one row, LeaveOneOut's; a validation split of one row)
        held = np.asarray(arrays.val_rows) if arrays.val_rows is not None else None
        counts = [len(arrays.y_val)] if held is None else arrays.val_counts or (held.shape[1],) * len(held)
        check_r2_folds(counts, "metric='r2'", "metric='neg_mse'", split=None if held is not None else "validation")
        if y_test is not None and 0 < len(y_test) < 2:  # (the refit's test_score would read 0.0 or 1.0)
            check_r2_folds([len(y_test)], "metric='r2'", "metric='neg_mse' (or refit=0)", split="test")
    if metric not in ("roc_auc", "roc_auc_ovr"):
        return
    if y_test is not None and len(y_test) and len(np.unique(y_test)) < 2:
        raise ValueError(f"metric={metric!r} is undefined on the test split: its {len(y_test)} rows are all of one "
                         f"class, so the refit's test_score would be NaN. Give a test split that holds more than "
                         f"one class, refit=0, or metric='neg_log_loss' / 'accuracy'.")
    y = np.asarray(arrays.y_val)
    if arrays.val_rows is None:
        sets = [("the validation split", y)]
    else:  # (a fold's rows past its count pad it to the largest fold's)
        held = np.asarray(arrays.val_rows)
        counts = arrays.val_counts or (held.shape[1],) * len(held)
        sets = [(f"fold {k}'s {n} held-out rows", y[rows[:n]]) for k, (rows, n) in enumerate(zip(held, counts))]
    for where, targets in sets:
        if len(np.unique(targets)) < 2:
            fix = ("Shuffle or stratify the folds (StratifiedKFold(k, shuffle=True, random_state=0), or an integer "
                   "cv)" if cv is not None else "Give a validation split that holds more than one class")
            raise ValueError(f"metric={metric!r} is undefined on {where}: they are all of one class, so every member "
                             f"would score NaN. {fix}, or use metric='neg_log_loss' / 'accuracy'.")


@dataclasses.dataclass
class RoundInProgress:
    """A round being trained: what its record and its checkpoints are made of."""

    round: int
    hp: Mapping[str, Any]  # as the strategy asked
    ids: np.ndarray
    replicas: Replicas
    population: Population
    adapter: StrategyDecider | None
    plan: int = -1  # the programs it trains in (Programs.partition): a resumed round keeps them

    def record(self, hp: Mapping[str, Any], extra: Mapping[str, Any], in_progress: bool = False) -> RoundRecord:
        final, curves = self.replicas.aggregate(self.population.status(), self.population.curves)
        record = round_record(self.round, self.ids, hp, final, curves, extra, in_progress)
        record.useful_compute_fraction = self.population.useful_compute_fraction()
        record.programs = len({run.program for run, _ in self.population.parts})
        return record

    def checkpoint(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(host, arrays): the round's population and its strategy decider's state."""
        host, arrays = self.population.checkpoint()
        host = {"round": self.round, "hp": to_host(dict(self.hp)), "population": host,
                "plan": self.plan}  # the plan bucketing="auto" chose: a resumed round keeps it
        if self.adapter is not None:
            host["adapter"] = {"state": to_host(self.adapter.state), "looks": self.adapter.looks}
        return host, arrays

    def restore(self, host: dict) -> None:
        self.population.restore(host["population"], host["arrays"])
        if self.adapter is not None:
            self.adapter.state = from_host(host["adapter"]["state"])
            self.adapter.looks = host["adapter"]["looks"]


class Search:
    """Everything a vt.tune call fixes before its first round; every input is checked here,
    before anything compiles."""

    def __init__(self, model: Model, space: Space, data: Dataset, strategy: Strategy, settings: Settings, *,
                 metric: Any = None, optimizer: Any = None):
        check_strategy(strategy)
        check_dataset(data)
        stop_fraction = None if settings.early_stopping is None else settings.early_stopping.validation_fraction
        self.arrays = engine.data_arrays(data) if settings.cv is None else \
            cv_arrays(data, settings.cv, settings.seed, stop_fraction, settings.splits)[0]
        # under cv a member trains on its fold's rows (of training + validation), not the training split
        held = "" if stop_fraction is None else f" (after early stopping's validation_fraction={stop_fraction})"
        train_rows = None if settings.cv is None else \
            (self.arrays.fewest_rows, f"rows the smallest of the cv={settings.cv} folds trains on{held}")
        self.program = build_program(model, space, data, batch_size=settings.batch_size, metric=metric,
                                     optimizer=optimizer, shared_order=settings.shared_order,
                                     early_stopping=settings.early_stopping, devices=settings.devices,
                                     member_block=settings.member_block, evaluate_every=settings.evaluate_every,
                                     even_batches=settings.even_batches, train_rows=train_rows)
        strategy.check_epochs(settings.epochs)
        if settings.evaluate_every > 1 and strategy.acts_during_training:
            raise ValueError(f"evaluate_every={settings.evaluate_every} with {strategy.name}, which decides on "
                             f"validation scores during training: use evaluate_every=1 with this strategy.")
        self.model, self.space, self.data, self.strategy, self.settings = model, space, data, strategy, settings
        # (the built-in AUC's check: a metric of yours of that name may score one class)
        _check_scorable(self.program.metric.name if is_builtin(self.program.metric) else None, self.arrays, settings.cv,
                        np.asarray(data.y_test) if settings.refit else None)
        if settings.even_batches and self.arrays.fold_rows is not None and updates_state(self.program.model, space):
            # (BatchNorm: no member's batch padded beside the larger folds')
            self.program = self.program.replace(even_over=self.arrays.fewest_rows)
        # a member's step count is an int32 on the device (its schedule, its budget); a refit steps
        # over train + validation
        rows = data.n_train + int(data.X_val.shape[0])
        steps, smallest = self.program.steps_per_epoch(rows), self.program.min_batch_size
        if settings.epochs * steps > INT32_MAX:
            raise ValueError(f"epochs={settings.epochs} of up to {steps} steps (batches of {smallest} of "
                             f"{rows} rows) make more steps than the compiled programs count, 2**31 - 1; give "
                             f"epochs <= {INT32_MAX // steps}.")
        # a strategy that copies members between rows needs them in one program: it never splits them
        bucketing = False if strategy.copies_members else settings.bucketing
        if settings.bucketing is True and strategy.copies_members:
            warn(f"bucketing=True is not applied: {strategy.name} copies members' weights between rows, so its "
                 f"population trains in one program (widths and batch sizes padded, as bucketing=False). "
                 f"Leave bucketing at 'auto' to say nothing.")
        self.programs = Programs(model, space, data, self.program, bucketing=bucketing,
                                 one_program=strategy.copies_members,
                                 member_block=settings.member_block, epochs=settings.epochs,
                                 n_train=self.arrays.n_train, fold_rows=self.arrays.fold_rows)
        self._fits: dict = {}  # program -> members that fit the memory budget
        self.current: RoundInProgress | None = None  # the round training now
        self.trained: RoundInProgress | None = None  # the last round trained (kept until the next starts)

    def describe(self, data: Dataset) -> dict[str, Any]:
        """The settings recorded with the results."""
        s = self.settings
        return {"strategy": repr(self.strategy), "model": repr(self.model), "dataset": getattr(data, "name", "?"),
                "data": data_fingerprint(data), "task": data.task, "metric": self.program.metric.name,
                "greater_is_better": self.program.metric.greater_is_better, "loss": self.program.loss.name,
                "optimizer": repr(self.program.optimizer), "epochs": s.epochs, "seed": s.seed,
                "batch_size": s.batch_size, "population": self.strategy.population, "shared_order": s.shared_order,
                "bucketing": s.bucketing, "early_stopping": repr(s.early_stopping), "cv": s.cv, "seeds": s.seeds,
                "refit": s.refit, "devices": self.program.devices, "member_block": self.program.member_block,
                "evaluate_every": s.evaluate_every, "even_batches": s.even_batches,
                # (the factor from a built-in regression error's standardised units to the targets' own)
                **({"target_std": np.asarray(data.y_std, np.float64).tolist()} if data.task == "regression" else {}),
                # (a metric of yours, or PopulationSearchCV's errors of several targets, bearing a built-in's name
                # in the targets' own units: not to be said standardised)
                **({"metric_in_target_units": True} if data.task == "regression" and scores_in_target_units(
                    self.program.metric) else {}),
                "useful_compute_fraction": [], "programs": [], "round_seconds": []}

    def spec_settings(self) -> dict[str, Any]:
        """The settings a resumed run must share (not the layout: devices, member blocks and the
        memory budget do not change results)."""
        s = self.settings
        spec = {"epochs": s.epochs, "seed": s.seed, "batch_size": s.batch_size, "chunk_epochs": s.chunk_epochs,
                "shared_order": s.shared_order, "bucketing": s.bucketing, "early_stopping": repr(s.early_stopping),
                "cv": s.cv if s.splits is None else s.splits.fingerprint(), "seeds": s.seeds, "refit": s.refit,
                # (your functions' code too: a resume with another fn under the same name would mix two searches)
                "metric": self.program.metric.name + code_fingerprint(self.program.metric),
                "loss": self.program.loss.name + code_fingerprint(self.program.loss),
                "optimizer": repr(self.program.optimizer) + code_fingerprint(self.program.optimizer)}
        if s.evaluate_every != 1:  # (absent otherwise: run directories written before it still resume)
            spec["evaluate_every"] = s.evaluate_every
        if s.even_batches:  # (the same)
            spec["even_batches"] = True
        return spec

    # -- a round -----------------------------------------------------------------------------------------
    def train_round(self, state, hp: Mapping[str, Any], round_index: int, first_id: int,
                    on_chunk: Callable | None = None, on_stop: Callable[["RoundInProgress"], None] | None = None,
                    resume: dict | None = None) -> None:
        """Trains the n settings asked (n <= the strategy's population); `trained` is then the round
        (report_round reports it).
        on_stop(round): called at chunk ends with the round in progress (to checkpoint it).
        resume: a round in progress's `checkpoint()` host dict (with `arrays`): go on from there."""
        strategy, s = self.strategy, self.settings
        n = checked_population_size(strategy, self.space.check_population(hp))  # (values: checked in vt.tune)
        ids = first_id + np.arange(n)
        replicas = Replicas(n, s.cv or 1, s.seeds, stop_split=self.arrays.stop_rows is not None)
        slot_hp, slot_ids, slot_fold = replicas.expand(self.space.numeric(hp), ids)
        rows = replicas.folds * replicas.seeds * strategy.population  # one program: every round the same shape
        planned = strategy.tune_rounds(self.space)  # None: not known ahead (one round is priced)
        groups = self.programs.partition(slot_hp, rows=rows, plan=None if resume is None else resume.get("plan"),
                                         rounds=max(planned - round_index, 1) if planned else 1,
                                         work_share=strategy.work_share(state, s.epochs))
        deciders, adapter, first = [], None, None
        if strategy.acts_during_training:  # its checks run before anything of the round compiles
            context = TrainingContext(epochs=s.epochs, structural=self.program.structural_names(), members=n,
                                      programs=len(groups), space=self.space)
            adapter = StrategyDecider(strategy, state, context, streams.stream(s.seed, "decide", round_index),
                                      replicas, hp=self.space.numeric(hp))
            if resume is None:
                first = adapter.begin()
            deciders.append(adapter)
        # one choice for every round (its full rows, as its programs' shapes) and for all its groups
        quick = costs.quick_compile(self.program, self.arrays.n_train, rows * s.epochs)
        population = self._population(groups, slot_hp, slot_ids, slot_fold, rows, quick)
        self.trained = None
        self.current = RoundInProgress(round_index, hp, ids, replicas, population, adapter,
                                       plan=self.programs.plan)
        if resume is None:
            with decided_by(strategy.name, "begin_training", 0):
                population.apply(first)
        else:
            self.current.restore(resume)
        if s.early_stopping is not None and s.early_stopping.compact_below > 0 and not strategy.copies_members:
            deciders.append(Compaction(s.early_stopping.compact_below))
        train(population, s.epochs, chunk_epochs=s.chunk_epochs, deciders=deciders,
              on_chunk=None if on_chunk is None else (lambda done, curves: on_chunk(done, replicas.mean(curves))),
              on_stop=None if on_stop is None else (lambda: on_stop(self.current)))
        self.current, self.trained = None, self.current

    def report_round(self, state) -> tuple[Any, RoundRecord]:
        """The round just trained (`trained`) as its strategy reports it -> (strategy state, record):
        its end_training (a strategy acting during training), final_hp and member_columns, each
        checked. Kept apart from the training: when one of these fails, the round is checkpointed
        trained, and a resume reports it again without training it."""
        strategy, current = self.strategy, self.trained
        n, ended = len(current.ids), current.hp
        if current.adapter is not None:  # the values the members ended with: what the strategy's decisions made them
            state, ended_hp = current.adapter.end(current.population.snapshot())
            ended = self.space.from_numeric(ended_hp)
        final_hp = strategy.final_hp(state, ended)
        # (the values the table records and a refit trains): what ask may return, though a Decision may
        # have taken them outside the space's bounds
        if self.space.check_asked(final_hp, f"{strategy.name}.final_hp", inside=False) != n:
            raise ValueError(f"{strategy.name}.final_hp returned {self.space.check_population(final_hp)} members for "
                             f"a round of {n}; give the values of the round's members, one each.")
        return state, current.record(final_hp, self._checked_columns(strategy.member_columns(state), n))

    def _checked_columns(self, columns: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
        """A strategy's member_columns: new names, one value per member (1-D, length n)."""
        name, out = self.strategy.name, {}
        for column, values in dict(columns or {}).items():
            if column in self.space or column in _OWN_COLUMNS:  # (it would overwrite the table's)
                raise ValueError(f"{name}.member_columns returns {column!r}, a column the table has already (the "
                                 f"space's names and {list(_OWN_COLUMNS)}); give it a name of its own.")
            values = np.asarray(values)
            if values.shape != (n,):
                raise ValueError(f"{name}.member_columns[{column!r}] has shape {values.shape}; give one value per "
                                 f"member, shape ({n},).")
            out[column] = values
        return out

    def interrupted_record(self, reported: int) -> RoundRecord | None:
        """The round in progress when Ctrl-C came, as a record (members still training get status
        'interrupted', their scores so far); None when no round was training or nothing trained.
        reported: the rounds the history holds. A round whose training had ended but which was not
        reported yet (Ctrl-C in the strategy's tell) is the round in progress: it is not lost."""
        current, self.current = self.current, None
        if current is None and self.trained is not None and self.trained.round == reported:
            current = self.trained
        # (the population counts epochs between decisions; its runs count every chunk trained)
        if current is None or max(run.epochs_done for run, _ in current.population.parts) == 0:
            return None
        hp = current.hp
        if current.adapter is not None:  # the values members train with now, after the strategy's copies
            # (not a snapshot: parts a Ctrl-C cut between them stand at different epochs)
            hp = self.space.from_numeric(current.replicas.member_values(current.population.member_hp))
        return current.record(hp, self._columns_so_far(current), in_progress=True)

    def _columns_so_far(self, current: RoundInProgress) -> Mapping[str, Any]:
        """A strategy acting during training: its table columns (PBT's lineage) from its state
        mid-round, so an interrupted round's rows have them too; {} when it has none yet."""
        if current.adapter is None:
            return {}
        try:
            return self.strategy.member_columns(current.adapter.state)
        except Exception as err:  # (never lose the interrupted results to a column)
            warn(f"{self.strategy.name}.member_columns failed on the interrupted round's state "
                 f"({type(err).__name__}: {err}); its rows are saved without those columns.")
            return {}

    current: "RoundInProgress | None" = None

    def _population(self, groups, hp, ids, fold, rows: int, quick: bool) -> Population:
        """The slots as one run per program group. One group uses `rows` rows (the strategy's full
        population: every round compiles to the same shape); several groups each round theirs up to a
        power of two, so shapes repeat across rounds. quick: compile quick (engine.train_chunk_quick)."""
        parts = []
        for program, members in groups:
            size = rows if len(groups) == 1 else 1 << max(len(members) - 1, 0).bit_length()
            size = self._rows_per_part(program, size)
            if size < len(members) and self.strategy.copies_members:
                cv, seeds = self.settings.cv or 1, self.settings.seeds
                splits = cv * seeds  # rows per setting
                used = " / ".join(name for name, value in (("cv", cv), ("seeds", seeds)) if value > 1)
                fix = (f"raise max_memory or lower the population to {size // splits}" if size >= splits else
                       f"not even one setting's {splits} rows fit: raise max_memory, or lower {used}")
                raise ValueError(f"{self.strategy.name} copies members between rows, so its population trains as one "
                                 f"program, but max_memory fits {size} of its {len(members)} rows"
                                 f"{f' ({splits} per setting under cv / seeds)' if splits > 1 else ''}; {fix}.")
            for start in range(0, len(members), size):  # micro-populations when the budget is short
                part = members[start:start + size]
                run = PopulationRun(program, {k: np.asarray(v)[part] for k, v in hp.items()}, self.arrays,
                                    member_ids=ids[part],
                                    seed=self.settings.seed, epochs=self.settings.epochs, rows=size,
                                    fold=fold[part] if self.settings.cv else None, quick=quick)
                parts.append((run, part))
        # one initialisation program for every group, where the model allows (initialise.py); not
        # under a memory budget, which the padded state of every group at once could exceed
        if memory.device_budget(self.settings.max_memory) is None:
            initialise_together([run for run, _ in parts], self.program)
        return Population(parts)

    def _rows_per_part(self, program, rows: int) -> int:
        """Rows of each micro-population of `program` for a population of `rows` (memory.py):
        `rows` when no budget applies, else the most that fit max_memory on each device. On a CPU
        that population, or micro-population, must fit the machine's RAM."""
        budget = memory.device_budget(self.settings.max_memory)
        if budget is not None:
            if program not in self._fits:
                self._fits[program] = memory.members_that_fit(program, self.arrays, one_member(self.space), budget,
                                                              devices=program.devices)
            rows = memory.rows_within(rows, self._fits[program], program.devices)  # each device: fit // devices
        # (max_memory is per device, and a CPU's devices share one RAM: all of them together must fit)
        memory.check_host_memory(program, one_member(self.space), rows, max_memory=self.settings.max_memory,
                                 in_parts=not self.strategy.copies_members)
        return rows

    # -- refit ------------------------------------------------------------------------------------------------
    def refit(self, results: Results) -> None:
        """Adds test_score for the best `refit` settings, retrained on train + validation (never selects)."""
        # (rows whose refit a resume carried keep it: a larger refit= or a model file lost trains the rest)
        top = [row for row in results.refit_rows(self.settings.refit) if row not in results.models]
        results.settings["refit_trained"] = len(top)  # (what this call trained: a resumed run's summary says it)
        if not top:
            return
        encoded = {name: jnp.asarray(results.hp[name][top]) for name in self.space.names}
        hp = self.space.numeric(encoded)
        start, changes = self._replayed(results, top, hp)
        ids = self._initial_members(results, top) * self.settings.seeds
        epochs = results.members["best_epoch"].to_numpy()[top]
        refitted = refit_and_test(self.programs, start, self.data, member_ids=ids, epochs=epochs,
                                  schedule_epochs=self.settings.epochs, seed=self.settings.seed, changes=changes,
                                  max_memory=self.settings.max_memory)
        test = np.full(len(results), np.nan, np.float32)  # (rows refit before, kept by a resume, keep theirs)
        if "test_score" in results.members:
            test = results.members["test_score"].to_numpy(np.float32, copy=True)
        for j, (row, fit) in enumerate(zip(top, refitted)):
            test[row] = fit.test_score
            hp_row = {k: v[j] for k, v in hp.items()}
            member = {k: v[j:j + 1] for k, v in encoded.items()}
            if changes and changes[j]:  # the values it trained with last: a refit that peaked before a change never made it
                hp_row = {k: np.asarray(v[j]) for k, v in start.items()}
                for epoch in sorted(e for e in changes[j] if e < fit.epochs):
                    hp_row.update({k: np.asarray(v) for k, v in changes[j][epoch].items()})
                member = self.space.from_numeric({k: v[None] for k, v in hp_row.items()})
            unused = {name for name, on in self.space.active(member).items() if not on[0]}  # (Space.only_when)
            shown = {k: v for k, v in self.space.decode(member)[0].items() if k not in unused}
            # (a PBT row's values changed as it trained: its schedule says how, beside the values it ended with)
            schedule = {}
            if changes and any(e < fit.epochs for e in changes[j] if e > 0):  # (cut where the refit stopped)
                steps = [step for step in json.loads(results.members["hp_schedule"].iloc[row]) if step["epoch"] < fit.epochs]
                schedule = {"hp_schedule": json.dumps(steps)}
            # (a refit that diverged keeps the weights of the step before, which TrainedModel refuses to use)
            diverged = {"diverged_at_epoch": fit.diverged_at_epoch} if fit.diverged else {}
            results.models[int(row)] = TrainedModel.from_dataset(
                fit.network, fit.params, fit.model_state, hp_row, shown,
                self.data, epochs=fit.epochs, test_score=fit.test_score, row=int(row), metric=self.program.metric.name,
                **schedule, **diverged, **({} if is_builtin(self.program.metric) else
                                           {"metric_is_yours": True}))  # (a metric of yours may bear a built-in's name)
            results.models[int(row)]._search_metric = self.program.metric  # (in memory: TrainedModel.evaluate)
        results.members["test_score"] = test
        diverged = {int(row): fit.diverged_at_epoch for row, fit in zip(top, refitted) if fit.diverged}
        if diverged:  # (their search runs did not diverge: a refit retrains only rows that did not)
            at = ", ".join(f"row {row}" + (f" at epoch {epoch}" if epoch else "") for row, epoch in diverged.items())
            warn(f"the refit of {len(diverged)} row(s) diverged ({at}), though their search runs did not (the refit "
                 f"trains on train + validation, in another minibatch order): their test_score is NaN, and their "
                 f"models refuse to predict. Search again with a lower learning rate, or take another refit row: "
                 f"results.model(row).")

    @staticmethod
    def _initial_members(results: Results, rows: list[int]) -> np.ndarray:
        """(len(rows),) the member whose initial weights each refit starts from: the row's own, or
        for a network copied between members (PBT's `lineage` 'a>b>...>i') the first member of its
        lineage, whose initialisation that network grew from."""
        members = results.members["member"].to_numpy()[rows].astype(np.int64)
        if "lineage" not in results.members:
            return members
        lineage = results.members["lineage"].to_numpy()[rows]
        return np.asarray([int(text.split(">")[0]) if isinstance(text, str) and text else m
                           for text, m in zip(lineage, members)], np.int64)

    def _replayed(self, results: Results, rows: list[int], hp: dict[str, Any]):
        """(numeric values each refit setting starts with, the changes it made during training or
        None) -> refit_and_test's numeric_hp and changes. A member whose values changed as it
        trained (PBT's `hp_schedule` column) starts from its first values and changes them at the
        same epochs; the others train with their values throughout."""
        texts = results.members["hp_schedule"].to_numpy()[rows] if "hp_schedule" in results.members else None
        if texts is None or not any(isinstance(t, str) for t in texts):
            return hp, None
        start = {name: np.array(values) for name, values in hp.items()}
        changes: list[dict[int, dict[str, float]]] = []
        for j, text in enumerate(texts):
            changes.append({})
            if not isinstance(text, str):
                continue
            schedule = PBTSchedule.from_json(text)
            numeric = {k: np.asarray(v) for k, v in self.space.numeric(schedule.encoded(self.space)).items()}
            for name, values in numeric.items():
                start[name][j] = values[0]
                for segment in range(1, len(schedule.starts)):
                    if values[segment] != values[segment - 1]:
                        changes[j].setdefault(schedule.starts[segment], {})[name] = values[segment]
        return start, changes
