"""The driver: ask the strategy for a population, train it in one program, tell the scores back.

    result = vt.tune(vt.MLP(), space, data, strategy=vt.RandomSearch(population=256), epochs=20)

Every input is checked before anything compiles (`search.Search`, `run_dir.prepare`). Each round
reuses the compiled program (a short round is padded with frozen fillers to the strategy's
population). With `run_dir`, the run directory is checkpointed after every round and during
rounds (vmaptune/checkpoint.py), so `resume=True` continues a killed run exactly; Ctrl-C returns
(and saves) what was trained, the round in progress included.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import errno
import os
import re
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune import __version__, interrupts, run_dir as run_dirs, streams
from vmaptune.arguments import check_flag, checked_call
from vmaptune.cv_splits import resolve_cv, warn_groups_in_test
from vmaptune.checkpoint import (Checkpoints, check_picklable, code_fingerprint, from_host, model_fingerprint,
                                 run_spec, to_host, unnamed_data, without_addresses)
from vmaptune.data import Dataset
from vmaptune.distributed import (agreed_time, any_process, barrier, check_same_everywhere, given_num_processes,
                                  in_process_0, is_primary, line_up, process_count, smallest, this_process_alone)
from vmaptune.early_stopping import EarlyStopping
from vmaptune.history import History, Progress
from vmaptune.models.base import Model
from vmaptune.models.fields import FlaxModel
from vmaptune.results import STATUS_INTERRUPTED, Results, load_results
from vmaptune.search import Search, Settings
from vmaptune.space import Space
from vmaptune.startup import TimeProfile
from vmaptune.strategies.base import Strategy, check_strategy, checked_done, checked_population_size
from vmaptune.strategies.grid import GridSearch
from vmaptune.strategies.random_search import RandomSearch
from vmaptune.trained import pickled
from vmaptune.warn import warn

__all__ = ["tune", "EarlyStopping"]

#: During a round, a run is checkpointed at most this often (seconds), and after each decision of a
#: strategy that acts during training (PBT, Hyperband), so it resumes at its last decision.
MID_ROUND_SECONDS = 60.0


#: What continues a run kept in a run_dir, as the messages of its stops and failures say it (the
#: subject of "... continues it"): a caller whose user does not call vt.tune (PopulationSearchCV:
#: its fit again) sets its own words here.
HOW_TO_CONTINUE: contextvars.ContextVar[str | None] = contextvars.ContextVar("how_to_continue", default=None)


def _continued_by(default: str) -> str:
    """The words for what continues a run kept in its run_dir: `default` (vt.tune's), or the caller's."""
    return HOW_TO_CONTINUE.get() or default

_BUDGET = ("A strategy's population and rounds say how many settings train (vt.RandomSearch(population=64, "
           "rounds=2)).")
_VALIDATION = ("The data carries its splits: vt.Dataset.from_arrays(X, y, task, validation=(X_val, y_val)) or "
               "val_fraction=0.2; cv=5 cross-validates.")
#: What other tuners call their arguments (Keras Tuner, Ray Tune, Optuna, scikit-learn) -> how vt.tune says it.
FOREIGN_ARGUMENTS = {
    **dict.fromkeys(("mode", "direction"), "Scores are higher-is-better; the metric sets the direction "
                                           "(metric='log_loss' or 'mse' is minimised, 'accuracy' maximised)."),
    **dict.fromkeys(("objective", "scoring"),
                    "Did you mean metric=? (e.g. metric='accuracy', 'log_loss', 'neg_mse', or a vt.Metric)"),
    **dict.fromkeys(("time_budget_s", "timeout", "max_time", "time_limit"),
                    "Did you mean time_budget=? (seconds, or '30min', '2h'; what trained is kept, and with run_dir= "
                    "a later call resumes it)"),
    "max_trials": _BUDGET, "n_trials": _BUDGET, "num_samples": _BUDGET, "n_iter": _BUDGET,
    "max_epochs": "Did you mean epochs=? (Hyperband(max_epochs=...) and SuccessiveHalving take their own budget)",
    **dict.fromkeys(("callbacks", "callback"),
                    "on_round=fn(results) is called after each round (vt.OptunaExport(storage, name) is one)."),
    "validation_data": _VALIDATION, "validation_split": _VALIDATION, "val_fraction": _VALIDATION,
    "n_jobs": "The population trains as one program over every device (devices=); there are no workers to set.",
    "random_state": "Did you mean seed=?",
    "verbose": "Did you mean progress=? (True shows a progress bar)",
    **dict.fromkeys(("name", "directory", "storage_path"),
                    "Did you mean run_dir=? (a directory that keeps the run and resumes it)"),
    "scheduler": "Did you mean strategy=? (vt.Hyperband, vt.SuccessiveHalving, vt.PBT, ...)",
    "search_alg": "Did you mean strategy=? (vt.BayesOpt, vt.OptunaSampler(optuna.samplers.TPESampler()), ...)",
    "sampler": "Did you mean strategy=? (vt.OptunaSampler(optuna.samplers.TPESampler()), vt.BayesOpt, ...)",
    "pruner": "Did you mean strategy=? (vt.Hyperband or vt.SuccessiveHalving prune during training)",
    **dict.fromkeys(("loss", "loss_fn", "criterion"),
                    "A loss goes on the model: vt.Linen(Net, loss=...), vt.Nnx(Net, loss=...) or vt.MLP(loss=...), a "
                    "name from vt.LOSSES or fn(outputs, targets) -> (batch,) losses."),
    **dict.fromkeys(("learning_rate", "lr", "momentum", "weight_decay", "dropout"),
                    "Hyperparameters go in the space: vt.Space(learning_rate=vt.LogUniform(1e-4, 1e-1)), or "
                    "vt.Fixed(value) for one value every member takes."),
}


@checked_call("vt.tune(vt.MLP(), vt.Space(learning_rate=vt.LogUniform(1e-4, 1e-1)), vt.load_dataset('digits'), "
              "vt.RandomSearch(population=64), epochs=20)", FOREIGN_ARGUMENTS)
def tune(model: Model, space: Space, data: Dataset, strategy: Strategy | None = None, *, epochs: int = 20,
         seed: int = 0, metric=None, optimizer=None, batch_size: int = 64, chunk_epochs: int = 1,
         shared_order: bool = True,
         progress: bool = True, run_dir: str | None = None, bucketing: bool | str = "auto",
         early_stopping: EarlyStopping | None = None, cv: int | None = None, groups: Any = None, seeds: int = 1,
         refit: int = 0,
         devices: int | None = None, member_block: int | None = None, resume: bool = False,
         overwrite: bool = False, max_memory: int | str | None = None, evaluate_every: int = 1,
         on_round: Callable[[Results], None] | None = None, time_budget: float | str | None = None,
         even_batches: bool = False) -> Results:
    """Trains every population the strategy asks for and returns the `Results`.

    model: the network to tune: vt.MLP() (its structure follows the space), or your own flax module
      as vt.Linen(MyModule) / vt.Nnx(MyModule) (space names matching its fields fill them).
    space: vt.Space. data: vt.Dataset. strategy: default vt.RandomSearch(population=64).
    epochs: per member.
    metric: validation metric to maximise (accuracy / neg_log_loss / balanced_accuracy / f1_macro
      / roc_auc / roc_auc_ovr for classification, neg_mse / neg_mae / r2 for regression, or a
      vt.Metric; default: the model's, else accuracy or neg_mse).
    optimizer: None for the built-in per-member optimizer (its kind and settings from the space:
      optimizer, learning_rate, momentum, ...), or your own fn(hp) -> optax.GradientTransformation
      reading the space's names (e.g. lambda hp: optax.adamw(hp["learning_rate"])).
    batch_size: minibatch rows (when the space has no batch_size; a space's batch_size gives each
      member its own, padded to the largest); an epoch of n rows is n // batch_size whole batches.
      even_batches=True makes every batch n // ceil(n / batch_size) rows (each member's n: its
      fold's), so an epoch covers all but fewer than a batch of its rows in batches of one size
      (scikit-learn's MLP takes ceil(n / batch_size) steps, the last partial; its estimators here
      train so); a batch_size above the rows is then one step of all of them.
      chunk_epochs: epochs per compiled call (progress and
      strategies act between chunks). shared_order: members see the same minibatch order (fair,
      faster); False gives each member its own.
    run_dir: a directory for the results (saved after every round) and checkpoints. It must not hold
      a run already, unless resume=True (continue it: a killed run ends exactly as an uninterrupted
      one would) or overwrite=True (start again).
    early_stopping: vt.EarlyStopping(patience=...) freezes each member when its validation score
      stops improving (checked every epoch inside the program); stopped members cost nothing from
      then on (their blocks are skipped; survivors are regrouped, or packed into a smaller
      population where that pays: vmaptune/packing.py).
    bucketing: "auto" (default): per round, the cheaper of one program padded to the widest member
      and one program per group the model forms (the MLP: similar width, rounded up to a power of
      two; with batch_size in the space, also per batch-size class), compiles included, from this machine's measured costs (vmaptune/costs.py); True /
      False force groups / one padded program. Results agree up to float rounding; as "auto" prices
      from measurements, force True / False where two runs must agree bit for bit.
    cv: K-fold cross-validation over train + validation, trained as K x P slots of one population;
      a setting's score is the mean over folds (std and per-fold scores reported). An integer K
      deals stratified, shuffled folds (fixed by seed); a scikit-learn splitter (KFold,
      TimeSeriesSplit, ...) or a list of (train_rows, validation_rows) pairs into data.pool()'s
      rows gives your own (vmaptune/cv_splits.py). A splitter sees the rows in the order they
      came to vt.Dataset.from_arrays (X's, then a validation split's given apart), so
      TimeSeriesSplit keeps time.
    groups: with a group splitter (cv=GroupKFold(5), LeaveOneGroupOut()): each row's group, one
      per row given to vt.Dataset.from_arrays (X's, then a validation split's given apart).
    seeds: initialisations per setting, trained in the same program (mean and std reported).
    refit: retrain the best `refit` settings on train + validation and score them once on the
      test split (column test_score; never used for selection).
    devices: split each population over this many devices (default: all of JAX's default backend;
      on a CPU vmaptune shows each core as a device, see README). Results do not depend on it.
      After vt.distributed.initialize() every process runs this same call, the devices are all
      processes' and only process 0 writes run_dir (README: Many machines).
    member_block: on a CPU, members stepped at a time to keep their buffers in cache (default:
      chosen from the network's size; 0 = the whole population per step, the GPU default).
    evaluate_every: score members on the validation data every this many epochs (and after each
      member's last), not every epoch: the validation pass costs a share of training (about a
      seventh for digits' 3-fold cv). The curves carry each score on until the next; a member
      whose training fails is NaN from then on, one whose validation overflows is caught at the
      next validation. Not with
      early_stopping or a strategy that decides during training (they read every epoch's score).
    max_memory: bytes (or text like '2GB') one device may use; a population that does not fit
      trains as micro-populations of the largest size that does (same results). Default: 90 % of
      an accelerator's free memory; no limit on a CPU, whose devices (one per core) share one RAM:
      there every device may hold max_memory at once, so give at most the RAM over the devices.
    on_round: called with the results so far after each round (saved to run_dir first): e.g.
      vt.OptunaExport(storage, name) keeps an Optuna study up to date for its dashboard. With
      several processes it runs in process 0; its error stops every process. An on_round with a
      before_search(results, metric) method has it called before the first round (results: a
      resumed run's so far, else None): vt.OptunaExport refuses a study it could not fill there.
    time_budget: seconds (or text like '30min', '2h') after which the search stops as a Ctrl-C
      stops it, at the next chunk's start (Ray Tune's time_budget_s, Optuna's timeout): the
      finished rounds and the round in progress come back ('interrupted' members), checkpointed
      with a run_dir, where vt.tune(..., resume=True) goes on (with a budget of its own). The
      first chunk always trains; compiling counts. It stops the search, not the refit after it
      (a refit runs to its end): with a run_dir the resume refits; without one (nothing to resume)
      the best `refit` settings so far are refit then, as a finished search's are.
    results.settings["time"]: where the call's time went (tracing, compiling, cache loads, training;
      vmaptune/startup.py).
    Ctrl-C returns (and saves to run_dir) the finished rounds and the round in progress, its
    members marked 'interrupted'; results.settings['interrupted'] is then True. With a run_dir
    the chunk in progress ends first and the round is checkpointed there (Ctrl-C again: at once),
    so a resume trains only what was left. SIGTERM (a
    scheduler's preemption) waits for the chunk in progress, checkpoints there and saves the same,
    then ends the process as SIGTERM would (status 143): a requeued job continues with resume=True
    from that chunk (vmaptune/interrupts.py).
    """
    profile = TimeProfile()
    budget = interrupts.parse_seconds("time_budget", time_budget)
    # (SIGTERM, and Ctrl-C with a run_dir or several processes: checkpointed and stopped at the next chunk)
    # (the budget inside: its state, as a tune inside a tune's callback restores it, is back before a
    # SIGTERM held here is sent on to the outer run's handler, which reads it)
    with profile.measure(), interrupts.held_until_chunk_end(
            jax.process_index(), process_count(), hold_ctrl_c=run_dir is not None), interrupts.time_budget(budget):
        return _tune(profile, model, space, data, strategy, epochs=epochs, seed=seed, metric=metric,
                     optimizer=optimizer, batch_size=batch_size, chunk_epochs=chunk_epochs, shared_order=shared_order,
                     progress=progress, run_dir=run_dir, bucketing=bucketing, early_stopping=early_stopping, cv=cv,
                     groups=groups, seeds=seeds, refit=refit, devices=devices, member_block=member_block,
                     resume=resume, overwrite=overwrite, max_memory=max_memory, evaluate_every=evaluate_every,
                     on_round=on_round, even_batches=even_batches)


def _tune(profile: TimeProfile, model, space, data, strategy, *, epochs, seed, metric, optimizer, batch_size,
          chunk_epochs, shared_order, progress, run_dir, bucketing, early_stopping, cv, groups, seeds, refit, devices,
          member_block, resume, overwrite, max_memory, evaluate_every, on_round, even_batches) -> Results:
    strategy = RandomSearch(population=64) if strategy is None else check_strategy(strategy)
    cv, splits = resolve_cv(cv, data, groups)  # (your own folds: a scikit-learn splitter, or (train, validation) rows)
    settings = Settings.check(splits=splits, epochs=epochs, seed=seed, batch_size=batch_size, chunk_epochs=chunk_epochs,
                              shared_order=shared_order, bucketing=bucketing, early_stopping=early_stopping, cv=cv,
                              seeds=seeds, refit=refit, devices=devices, member_block=member_block,
                              max_memory=max_memory, evaluate_every=evaluate_every, even_batches=even_batches)
    if groups is not None and settings.refit:  # (the refit's test_score: groups it trained on are not new)
        warn_groups_in_test(groups, data)
    if settings.early_stopping is not None and settings.early_stopping.restore_best_weights:
        _warn_restore_best_weights()
    progress, resume, overwrite = (check_flag(name, value) for name, value in
                                   (("progress", progress), ("resume", resume), ("overwrite", overwrite)))
    if resume and run_dir is None:
        raise ValueError("resume=True needs run_dir=, the directory of the run to continue (vt.tune(..., "
                         "run_dir='runs/x', resume=True)); without one there is nothing to resume.")
    if run_dir is not None and settings.refit:  # (said now, not once the refit has trained)
        pickled(model, f"vt.tune(..., run_dir={run_dir!r}, refit={settings.refit}) saves the refit's trained "
                       f"models, and {model!r}")
    if on_round is not None and not callable(on_round):
        raise TypeError(f"on_round={on_round!r}: give a function results -> None (called after each round), "
                        f"e.g. vt.OptunaExport('sqlite:///runs.db', 'my-search'), or None.")
    if process_count() > 1:  # every process must run this same search (before anything compiles)
        facts = _facts(model, space, data, strategy, settings, metric, optimizer, run_dir, resume, overwrite)
        hints = {"settings.splits": "The folds differ: a cv splitter that shuffles without a random_state deals "
                                    "other folds in each process; give it one, e.g. random_state=0."}
        check_same_everywhere(facts, fix="Start every process with the same arguments, data and code (a 'model code' "
                                         "part differs where a function reads a global, or a field's default is, "
                                         "another value in each process).", hints=hints)
    claim = None
    try:
        if run_dir is not None:
            run_dir, claim = _prepare_everywhere(run_dir, resume, overwrite)
            barrier("vmaptune: run_dir prepared")  # (several processes) nobody reads it before process 0 set it up
        return _run(profile, model, space, data, strategy, settings, run_dir, resume, metric, optimizer, progress,
                    on_round)
    except BaseException:
        if claim is not None:  # (refused before it wrote anything: no directory of only a lock left behind)
            claim.tidy()
        raise
    finally:
        if claim is not None:
            claim.release()


def _facts(model, space, data, strategy, settings, metric, optimizer, run_dir, resume, overwrite) -> dict[str, str]:
    """What identifies a search (checkpoint.run_spec, each setting on its own): the same in every
    process of a multi-process run."""
    spec = run_spec(space=space, data=data, model=model, strategy=strategy, settings={}, version=__version__)
    spec.pop("settings")
    spec["data"] = unnamed_data(spec["data"])  # (the same rows under another file name on another host: one run)
    for field in dataclasses.fields(settings):  # (not asdict: it would unpack Splits' arrays)
        spec[f"settings.{field.name}"] = without_addresses(repr(getattr(settings, field.name)))
    # (not run_dir's text: hosts may mount one shared directory at different paths; a resume
    # checks that every process found the same checkpoint instead)
    spec.update({"num_processes given": repr(given_num_processes()),
                 "metric": without_addresses(repr(metric)) + code_fingerprint(metric),
                 "optimizer": without_addresses(repr(optimizer)) + code_fingerprint(optimizer),
                 "model code": without_addresses(repr(model)) + model_fingerprint(model),
                 "run_dir given": repr(run_dir is not None), "resume": repr(resume), "overwrite": repr(overwrite)})
    return spec


def _prepare_everywhere(run_dir, resume: bool, overwrite: bool):
    """run_dirs.prepare in every process (process 0 writes and claims it); one process's refusal
    (process 0's lock, say) stops them all, instead of leaving the others at the next barrier."""
    try:
        prepared, error = run_dirs.prepare(run_dir, resume=resume, overwrite=overwrite, write=is_primary()), None
    except (OSError, ValueError, TypeError) as err:
        prepared, error = (None, None), err
    if process_count() > 1 and smallest(0.0 if error is not None else 1.0) == 0.0 and error is None:
        if prepared[1] is not None:
            prepared[1].tidy()
            prepared[1].release()
        raise ValueError(f"run_dir={run_dir!r} was refused in another process (its error says why); every process "
                         f"stops.")
    if error is not None:
        raise error
    return prepared


def _run(profile, model, space, data, strategy, settings, run_dir, resume, metric, optimizer, progress,
         on_round) -> Results:
    if isinstance(strategy, Strategy):  # a budget left open (Hyperband()) takes tune's epochs
        strategy = strategy.for_epochs(settings.epochs)
    search = Search(model, space, data, strategy, settings, metric=metric, optimizer=optimizer)
    if isinstance(model, FlaxModel) and not isinstance(strategy, GridSearch):  # (a grid's few values are shared)
        model.check_static_ranges(space, strategy)
    # (the model, loss and metric were first traced there: an error of one process's code stops the others
    # at once, not after the next exchange's timeout, 300 s by default)
    line_up("the checks of the search's model, loss and metric (vt.tune)")
    history = History(space, {**search.describe(data), "started_at": agreed_time()})
    checkpoints = None if run_dir is None else Checkpoints(run_dir, run_spec(
        space=space, data=data, model=model, strategy=strategy, settings=search.spec_settings(), version=__version__),
        strategy=strategy, free=() if _compacts(settings, strategy) else ("chunk_epochs",))
    restored = checkpoints.restore() if checkpoints is not None and resume else None
    if restored is not None and restored.rounds_before is not None:
        _check_rounds_left(strategy, restored.rounds_before, restored.host, run_dir)
        # results.npz may hold rounds the checkpoint lacks: a damaged newer checkpoint passed over, or
        # a kill after a round's table was written but before its checkpoint (written in the
        # background) was committed
        _check_rounds_saved(strategy, run_dir)
    if process_count() > 1 and resume:  # a run_dir that is not one shared directory resumes differently
        check_same_everywhere({"checkpoint resumed": "none" if restored is None else str(restored.step)},
                              fix="run_dir must be one directory every process reads (a shared file system).")
    if restored is None:
        state, in_progress = strategy.initialised(strategy.init(space, streams.stream(settings.seed, "strategy"))), None
        if checkpoints is not None:  # (a state that cannot be saved is said now, not after a round trained)
            check_picklable(strategy.name, to_host(state))
    else:
        for record in restored.host["records"]:
            history.add(record)
        state, in_progress = strategy.resumed(from_host(restored.host["strategy_state"])), restored.host["round"]
        if in_progress is not None:
            in_progress["arrays"] = restored.arrays
    saver = _Saver(checkpoints, history)
    # a finished run resumed (to search on, or refit more) keeps the refit it has: its models are
    # carried into every save, which would otherwise drop them
    saved = _saved_results(run_dir) if resume and run_dir is not None else None
    refit_before = _saved_refit(saved, run_dir) if saved is not None and restored is not None else None
    if saved is not None and saved.settings.get("started_at") is not None:
        # (the run's own start, not this call's: its default Optuna study's name, its first trials' times)
        history.settings["started_at"] = saved.settings["started_at"]
    outside = sys.exc_info()[1]  # (vt.tune called in a caller's `except`: that error is not this run's)
    refitting = False  # (the rounds are done and the refit trains)
    try:  # (within: a refusal below still closes the checkpoints)
        before_search = getattr(on_round, "before_search", None)  # (vt.OptunaExport: its study checked now)
        if before_search is not None or process_count() > 1:  # (on_round may be given in process 0 only)
            in_process_0(lambda: before_search is not None and _before_search(before_search, saved,
                                                                              search.program.metric),
                         "vmaptune: on_round refused the run in process 0 (process 0's output says why); every "
                         "process stops.", ValueError)
        with Progress(strategy, space, settings.epochs, search.program.metric, progress and is_primary()) as bar:
            bar.skip(history.rounds)
            while True:
                try:  # your strategy between rounds: its error carries the finished rounds
                    if checked_done(strategy, strategy.done(state)):
                        break
                    if in_progress is None:
                        hp, state = strategy.asked(strategy.ask(state, streams.stream(settings.seed, "ask",
                                                                                      history.rounds)))
                        checked_population_size(strategy, search.space.check_asked(hp, f"{strategy.name}.ask"))
                except Exception as err:
                    _failed_between_rounds(err, history, run_dir)
                    raise
                if in_progress is not None:
                    hp = from_host(in_progress["hp"])
                saver.round_started(state)
                try:  # (a round that fails, a module that fails for the values it drew, keeps the finished rounds)
                    search.train_round(state, hp, history.rounds, history.members,
                                       bar.start_round(history.best).on_chunk,
                                       on_stop=saver.mid_round if checkpoints else None, resume=in_progress)
                except Exception as err:
                    _failed_in_round(err, history, run_dir)
                    raise
                in_progress, record = None, None
                try:  # your strategy's hooks on the trained round; the round's training is kept if one fails
                    state, record = search.report_round(state)
                    # told the values the members were scored with (a strategy's decisions may have changed them)
                    state = strategy.told(strategy.tell(state, record.hp, jnp.asarray(record.scores)))
                    if checkpoints is not None:  # (said here, with the round kept, not as the checkpoint fails)
                        check_picklable(f"{strategy.name}.tell", to_host(state))
                except Exception as err:
                    note = saver.round_trained(search.trained, strategy.name, run_dir)
                    # (and travels with the error, as on_round's does)
                    err.add_note(note + _carry_results(err, history.results(record), "The results so far" + (
                        "" if record is None else ", this round's included,")))
                    raise
                history.add(record)
                saver.round_finished(state)
                if run_dir is not None or on_round is not None:
                    so_far = history.results()
                    so_far.settings["finished"] = False  # (what a report of a run killed, or running, says)
                    _carry_refit(so_far, refit_before, settings.refit, interim=True)  # (searching on: kept until replaced)
                    if run_dir is not None:
                        with _writing(run_dir, lambda: so_far):
                            so_far.save(run_dir, overwrite=True)
                if on_round is not None or process_count() > 1:  # (on_round may be given in process 0 only)
                    _on_round_everywhere(on_round, so_far if on_round is not None else None, run_dir,
                                         history.rounds - 1)
        results = history.results()
        _warn_if_failed(results)
        # a finished run resumed trains no round: its refit, saved with it, is read back, not redone
        results.settings["rounds_resumed"] = 0 if restored is None else len(restored.host["records"])
        kept = _carry_refit(results, refit_before, settings.refit)
        results.settings["refit_trained"] = 0  # (search.refit counts what it trains)
        if settings.refit and results.succeeded and not kept:
            refitting = True
            # (spent at the search's last chunk: the refit waits for a resume, where there is a run_dir to resume)
            if run_dir is None or not interrupts.budget_spent():
                interrupts.budget_off()
            try:
                search.refit(results)
            except Exception as err:  # (the search is done: its results are not lost to its refit's error)
                _refit_failed(err, results, run_dir, settings.refit)
                raise
    except KeyboardInterrupt as stop:
        results = _interrupted(history, search, run_dir, profile, stop, refit_before, refitting)
        results.strategy_state = state  # (as told after the last finished round)
    else:
        results.strategy_state = state
        results.settings["time"] = profile.as_dict()
        results.settings["finished"] = True
        if run_dir is not None:  # also when a resumed run had nothing left but this save
            interrupts.finishing()  # (a signal from now on: the run is finished, said so)
            try:
                with interrupts.deferred(), _writing(run_dir, lambda: results):
                    results.save(run_dir, overwrite=True)
            except interrupts.Terminated:  # held until the save ended: whole on disk, then SIGTERM ends the process
                warn(f"terminated (SIGTERM) while saving the finished run; it is saved whole in {run_dir} (a "
                     f"resume trains nothing), and the process ends now.")
                raise
            except KeyboardInterrupt:  # held until the save ended: the run is finished and whole on disk
                warn(f"interrupted while saving the finished run; it is saved whole in {run_dir}, and "
                     f"returned.")
    finally:
        if checkpoints is not None:
            _close(checkpoints, outside)
    return results


_SAID_RESTORE = []  # (restore_best_weights' warning: once a process)


def _warn_restore_best_weights() -> None:
    """EarlyStopping(restore_best_weights=True) keeps a second copy of every member's weights, which
    nothing in vt.tune reads: its scores are each member's best epoch's either way, and its models
    come from the refit, trained to best_epoch (the scikit-learn estimators' fit reads the copy)."""
    if _SAID_RESTORE or not is_primary():
        return
    _SAID_RESTORE.append(True)
    warn("EarlyStopping(restore_best_weights=True) changes nothing vt.tune returns, and keeps a second copy of "
         "every member's weights in memory (and its checkpoints): a member's score is its best epoch's either "
         "way, and its model (refit=) is retrained to its best_epoch on train + validation, not taken from the "
         "search. Leave restore_best_weights out (a run started with it resumes with it).")


def _compacts(settings: Settings, strategy) -> bool:
    """Whether early stopping's compaction looks at every chunk's end (Search.train_round adds it so):
    then chunk_epochs sets when the population's layout changes, and float rounding may follow it.
    Else a run's results do not depend on chunk_epochs (every other decision is taken at epochs of its
    own, and every draw is indexed by epoch), so a resume may change it: shorter chunks for a
    scheduler's grace period, say."""
    stopping = settings.early_stopping
    return stopping is not None and stopping.compact_below > 0 and not getattr(strategy, "copies_members", False)


def _close(checkpoints: Checkpoints, outside: BaseException | None = None) -> None:
    """Lets the checkpoints go (a save in progress commits first). When an error is already on
    its way out, a failure here (the same full disk) is added to it as a note, not put in its
    place: the first error says what happened."""
    on_its_way = sys.exc_info()[1]
    on_its_way = None if on_its_way is outside else on_its_way
    try:
        with _writing(checkpoints.directory):
            checkpoints.close()
    except Exception as err:
        if on_its_way is None:
            raise
        on_its_way.add_note(f"vmaptune: the checkpoint being written then failed too ({type(err).__name__}: "
                            f"{str(err)[:300]}); the checkpoints before it are whole.")


def _check_rounds_saved(strategy: Strategy, run_dir: str) -> None:
    """Fewer rounds than run_dir's table holds would drop finished rounds from it (a round a Ctrl-C
    cut short, its members still training marked interrupted, is not one: a resume may end before it)."""
    try:
        members = load_results(run_dir).members
    except (OSError, ValueError, KeyError):
        return
    cut_short = members["round"][members["status"] == STATUS_INTERRUPTED].unique()
    finished = members["round"][~members["round"].isin(cut_short)]
    saved = int(finished.max()) + 1 if len(finished) else 0
    if getattr(strategy, strategy.rounds_field) < saved:
        raise ValueError(f"{strategy.name}({strategy.rounds_field}={getattr(strategy, strategy.rounds_field)}): the "
                         f"run in {run_dir} has {saved} finished round(s) in its table (more than its newest "
                         f"checkpoint holds); resuming with fewer would drop them. Give {strategy.rounds_field} >= "
                         f"{saved}.")


def _check_rounds_left(strategy: Strategy, before: int, host: dict, run_dir: str) -> None:
    """A resume that changed the strategy's rounds (`rounds_field`) must leave the rounds already
    trained within them: a finished sweep searches on, an unfinished one may end sooner."""
    field = strategy.rounds_field
    finished, going = len(host["records"]), host["round"] is not None
    least = finished + 1 if going else finished
    if getattr(strategy, field) < least:
        so_far = f"{finished} finished round(s)" + (" and one in progress" if going else "")
        raise ValueError(f"cannot resume the run in {run_dir} with {strategy.name}({field}="
                         f"{getattr(strategy, field)}): it holds {so_far} (saved with {field}={before}). "
                         f"Give {field} >= {least}.")


class _Saver:
    """Checkpoints a run: after every round, and during one at chunk ends: after a chunk that
    ended in a decision of a strategy acting during training (so a resume goes on from its last
    decision), else every MID_ROUND_SECONDS. (Saving after every chunk cost a PBT(interval=50)
    run of 200 one-epoch chunks twice its time; the chunks between two decisions replay exactly.)"""

    def __init__(self, checkpoints: Checkpoints | None, history: History):
        self.checkpoints, self.history = checkpoints, history
        self.state, self.last = None, time.perf_counter()
        self.saved_decisions = None  # (round, decisions made in it) at the last save

    def round_started(self, state) -> None:
        self.state = state  # what the strategy is told with at the end of the round

    def mid_round(self, current) -> None:
        decisions = None if current.adapter is None else (current.round, current.adapter.looks)
        decided = decisions is not None and decisions[1] > 0 and decisions != self.saved_decisions
        due = decided or time.perf_counter() - self.last >= MID_ROUND_SECONDS
        # (several processes) a save gathers the population from all of them: all must agree to save,
        # on process 0's clock, or when a signal held in any stops the run at the next chunk's start
        if not any_process((due and is_primary()) or bool(interrupts.pending()) or interrupts.budget_spent()):
            return
        host, arrays = current.checkpoint()
        self._save({"records": self.history.records, "strategy_state": to_host(self.state), "round": host}, arrays,
                   epochs_done=current.population.epochs_done)
        self.saved_decisions = decisions

    def round_trained(self, current, strategy: str, run_dir: str | None) -> str:
        """Checkpoints a round whose training ended but whose strategy failed on it (end_training,
        final_hp, member_columns or tell: a resume then reports and tells it again, training nothing);
        returns the note for the error."""
        failed = f"vmaptune: {strategy} failed on round {self.history.rounds} after it trained."
        if self.checkpoints is None:
            return f"{failed} Without a run_dir its training is lost; give run_dir= to keep each round's."
        try:
            host, arrays = current.checkpoint()
            self._save({"records": self.history.records, "strategy_state": to_host(self.state), "round": host},
                       arrays, epochs_done=current.population.epochs_done)
        except Exception as err:  # (the error to see is the strategy's)
            return f"{failed} Checkpointing the round failed too ({type(err).__name__}: {err})."
        return (f"{failed} Its training is checkpointed in {run_dir}: once the strategy is fixed, vt.tune(..., "
                f"run_dir={run_dir!r}, resume=True) tells it again without training the round again.")

    def round_finished(self, state) -> None:
        self._save({"records": self.history.records, "strategy_state": to_host(state), "round": None}, {},
                   epochs_done=0)

    def _save(self, host, arrays, epochs_done: int) -> None:
        if self.checkpoints is not None:
            with _writing(self.checkpoints.directory, self.history.results):
                self.checkpoints.save(host, arrays, round=self.history.rounds, epochs_done=epochs_done)
            self.last = time.perf_counter()


def _interrupted(history: History, search: Search, run_dir: str | None, profile: TimeProfile,
                 stop: KeyboardInterrupt, refit_before: Results | None = None, refitting: bool = False) -> Results:
    """Ctrl-C or SIGTERM (`stop`): the finished rounds and the round in progress (members marked
    'interrupted'), saved; `stop` itself, raised again, when no member had trained yet. A time budget
    spent without a run_dir (nothing to resume) refits the best of them, as a finished search would."""
    budget = isinstance(stop, interrupts.TimeBudgetSpent)
    # (the refit below stays stoppable: Ctrl-C and SIGTERM stop it as they stop a finished search's)
    refit_now = budget and run_dir is None and bool(search.settings.refit) and not refitting
    if not refit_now:
        interrupts.stopping()  # (a signal during the save below: said as one that stops nothing more)
    terminated = isinstance(stop, interrupts.Terminated)
    partial = search.interrupted_record(history.rounds)
    results = history.results(partial)
    _carry_refit(results, refit_before, search.settings.refit, interim=True)  # (searching on: kept)
    results.settings["interrupted"] = True
    results.settings["refit_trained"] = 0  # (a refit cut short keeps nothing)
    if refitting and run_dir is None:  # (best_model's advice: the refit ran, was cut, and nothing resumes it)
        results.settings["refit_interrupted"] = True
    if isinstance(stop, interrupts.TimeBudgetSpent):
        results.settings["time_budget_spent"] = True
    results.settings["time"] = profile.as_dict()
    if len(results) == 0:  # (the same exception, not a second one raised while handling it)
        stop.add_note("vmaptune: interrupted before any member trained; nothing to keep.")
        raise stop
    kept = f"{history.rounds} finished round(s)" + (f" and {len(partial.member)} members of the round in "
                                                    "progress (status 'interrupted')" if partial else "")
    if refit_now:
        _refit_after_budget(search, results, kept)
        interrupts.stopping()
        return results
    if run_dir is not None:
        with _writing(run_dir, lambda: results):
            results.save(run_dir, overwrite=True)
    by = _continued_by("vt.tune(..., resume=True) with the same run_dir (on the command line: the same command with "
                       "--resume in place of any --overwrite)")
    own_budget = budget and HOW_TO_CONTINUE.get() is None
    resume = (f" {by} continues it" + (" (time_budget= gives that call its own; on the command line, "
                                       "--time-budget)" if own_budget else "") + ".") if run_dir else ""
    if terminated:
        where = f"saved {kept} to {run_dir}" if run_dir else f"{kept} not saved (no run_dir)"
        warn(f"terminated (SIGTERM): {where}; the process ends now.{resume}")
    elif budget and refitting:  # (spent as the search's last chunk trained: the budget stops no refit it starts)
        warn(f"the time budget was spent as the search ended: returning {kept}; its refit={search.settings.refit} "
             f"trains on a resume, to its end.{resume}")
    elif budget:
        refit = (f" Its refit={search.settings.refit} runs there, once the search ends." if search.settings.refit
                 else "")
        warn(f"the time budget is spent: returning {kept}.{resume}{refit}")
    else:
        warn(f"interrupted: returning {kept}.{resume}")
    return results


def _refit_after_budget(search: Search, results: Results, kept: str) -> None:
    """A time budget spent without a run_dir: nothing can resume the search, so its refit runs now,
    of the best settings so far (`results`, `kept` says what they hold), as a finished search's runs
    (the budget stops searches, not refits). Ctrl-C or SIGTERM during it returns them without it."""
    refit = search.settings.refit
    if not results.succeeded:  # (no member scored: nothing to refit, as after a finished search)
        warn(f"the time budget is spent: returning {kept}; no member has a score, so there is nothing to refit.")
        return
    warn(f"the time budget is spent: returning {kept}. Without a run_dir there is nothing to resume, so its "
         f"refit={refit} trains now, of the best so far (to its end: the budget stops searches, not refits).")
    interrupts.budget_off()
    try:
        search.refit(results)
    except KeyboardInterrupt as stop:  # (a refit cut short keeps nothing)
        results.models.clear()
        results.members = results.members.drop(columns="test_score", errors="ignore")
        results.settings["refit_trained"] = 0
        results.settings["refit_interrupted"] = True  # (best_model's advice: the refit ran, and was cut)
        what = "terminated (SIGTERM)" if isinstance(stop, interrupts.Terminated) else "interrupted"
        then = "; the process ends now" if isinstance(stop, interrupts.Terminated) else ""
        warn(f"{what} during the refit the time budget left: returning {kept} without it{then}.")
    except Exception as err:  # (the search's results are not lost to its refit's error)
        _refit_failed(err, results, None, refit)
        raise


@contextlib.contextmanager
def _writing(path: str, results: Callable[[], Results] | None = None):
    """A write into the run directory that fails (a full disk, a quota, a file size limit) says
    what is safe and how to go on; the error itself is kept. results: () -> the run's results so
    far, which the error carries (`e.results`): none is lost where the disk cannot hold it."""
    try:
        run_dirs.keep_claim(path)  # (a run directory deleted mid-run: its lock taken again as it is made again)
        yield
    except run_dirs.RunDirInUseError:  # (deleted, and claimed by another run since: no disk to blame)
        raise
    except OSError as err:
        err.add_note(_write_failed(path, err.errno) + _carried(err, results))
        raise
    except ValueError as err:  # orbax (tensorstore) says a failed write as ValueError("RESOURCE_EXHAUSTED: ...
        code = re.search(r"os_error_code='(\d+)'", str(err))  # ... No space left on device [os_error_code='28']")
        gone = code is None and _moved(path)  # (moved mid-save: "Save failed: ... missing .zarray")
        if code is None and not gone:
            raise
        failure = OSError(errno.ENOENT if gone else int(code.group(1)), str(err))
        failure.add_note(_write_failed(path, failure.errno) + _carried(failure, results))
        raise failure from err


def _carried(err: Exception, results: Callable[[], Results] | None) -> str:
    """err carries results() where given (`e.results`) -> the note's sentence saying so, or ''."""
    if results is None or len(so_far := results()) == 0:
        return ""
    return _carry_results(err, so_far, f"The results so far ({len(so_far)} members)")


def _moved(path: str) -> bool:
    """Whether the run directory of `path` (it, or its checkpoints/) was moved, renamed or removed
    mid-run: by the identity of the directory the run claimed; where it claimed none (a file system
    without locks), by its checkpoints/ being gone."""
    run_dir = os.path.dirname(path) if os.path.basename(os.path.normpath(path)) == "checkpoints" else path
    found = run_dirs.moved(run_dir)
    return found if found is not None else not os.path.isdir(os.path.join(run_dir, "checkpoints"))


def _write_failed(path: str, code: int | None) -> str:
    """What a failed write into the run directory leaves, and how to go on: from the last
    checkpoint, or, before the first one was committed, from the run's start; where a folder it
    wrote in is gone (ENOENT), from where the moved run directory now is."""
    run_dir = os.path.dirname(path) if os.path.basename(os.path.normpath(path)) == "checkpoints" else path
    # (a folder it was writing in is gone: no disk to blame, and what the path now holds, made again by the run
    # or empty, is not what it committed; where the run directory is still there, only a folder inside it went)
    if code == errno.ENOENT and _moved(run_dir):
        how = _continued_by("vt.tune(..., run_dir=<its new path>, resume=True) (vmaptune run ... --out <its new "
                            "path> --resume)")
        return (f"vmaptune: writing {path} failed: a folder the run was writing in is gone, so the run directory "
                f"{run_dir} was moved, renamed or removed while the run wrote to it. What it committed before (its "
                f"results and checkpoints) is whole wherever the directory was moved (gone, where it was removed): "
                f"there, {how} continues from its last checkpoint (runs move freely). {run_dir} itself holds no "
                f"checkpoint of it now.")
    held = os.path.join(run_dir, "checkpoints")
    # (orbax commits a step by renaming its folder to the step's number: a tmp folder is none)
    committed = os.path.isdir(held) and any(name.isdigit() for name in os.listdir(held))
    cause = ("the run directory can be written again (its permissions: the error above)"
             if code in (errno.EACCES, errno.EPERM, errno.EROFS) else "the disk takes writes again")
    where = ("continues from the last checkpoint" if committed else
             "trains the run from its start (no checkpoint was committed yet)")
    return (f"vmaptune: writing {path} failed. What was saved before is whole (files are replaced at once, "
            f"checkpoints committed whole): once {cause}, "
            f"{_continued_by('vt.tune(..., resume=True) with the same run_dir (vmaptune run ... --resume)')} {where}.")


def _failed_between_rounds(err: Exception, history: History, run_dir: str | None) -> None:
    """The strategy's done / ask (or what it asked) failed after some rounds finished."""
    _failed_after_rounds(err, history, run_dir, "the strategy failed between rounds", "the strategy is fixed")


def _failed_in_round(err: Exception, history: History, run_dir: str | None) -> None:
    """A round failed while it trained (a module that fails for the values it drew, a memory
    budget): the round itself is lost, the finished rounds before it are not."""
    _failed_after_rounds(err, history, run_dir, f"round {history.rounds} failed while it trained",
                         "the cause is fixed")


def _failed_after_rounds(err: Exception, history: History, run_dir: str | None, what: str, fixed: str) -> None:
    """An error after some rounds finished: it carries them (`e.results`) and its note says `what`
    failed and where they are kept, to go on from once `fixed`."""
    if history.rounds:
        kept = (f"they are saved in {run_dir}: {_continued_by(f'vt.tune(..., run_dir={run_dir!r}, resume=True)')} "
                f"goes on from them once {fixed}" if run_dir is not None else
                "give vt.tune a run_dir to resume from them")
        err.add_note(f"vmaptune: {what}, after {history.rounds} finished round(s); {kept}."
                     + _carry_results(err, history.results(), "They"))


def _refit_failed(err: Exception, results: Results, run_dir: str | None, refit: int) -> None:
    """The refit's error (a memory budget its train + validation rows do not fit, say) says the search
    finished, and carries its results."""
    kept = (f"it is saved in {run_dir}, where {_continued_by('vt.tune(..., resume=True) with the same run_dir')} "
            f"refits it once the cause is fixed" if run_dir is not None else "")
    held = _carry_results(err, results, "The search's results (without test scores)")
    err.add_note(f"vmaptune: the search finished ({len(results)} members), and its refit of the best "
                 f"{refit} failed{'; ' + kept if kept else ''}.{held}")


def _carry_results(err: Exception, results: Results, what: str) -> str:
    """Sets err.results (nothing trained is lost to an error) -> the note's sentence saying so, or ""
    for an exception type that takes no attributes."""
    try:
        err.results = results
    except AttributeError:
        return ""
    return f" {what} are the error's `results` attribute (`except Exception as e: e.results`)."


def _before_search(hook, saved: Results | None, metric) -> None:
    """on_round.before_search(results, metric): its error says where it was called."""
    try:
        hook(saved, metric)
    except Exception as err:
        err.add_note("vmaptune: vt.tune called on_round.before_search(results, metric) before the first round (the "
                     "hook vt.OptunaExport checks its study with); nothing has trained.")
        raise


def _on_round_everywhere(on_round, so_far: Results | None, run_dir: str | None, round_index: int) -> None:
    """on_round in process 0 only (one export, one print per round), whether every process was
    given it or process 0 alone; its error stops every process together: the others would train
    on and wait for process 0 in the next exchange until JAX's shutdown timeout (minutes) ended
    them without a word of why. Called in every process of several (the exchange is in each)."""
    in_process_0(lambda: on_round is not None and _call_on_round(on_round, so_far, run_dir),
                 f"vmaptune: on_round raised in process 0 after round {round_index} (process 0's output says why); "
                 f"every process stops. The run is saved up to this round where a run_dir was given: start every "
                 f"process again with resume=True.")


def _call_on_round(on_round, so_far: Results, run_dir: str | None) -> None:
    """The user's callback; its error ends the search (a broken callback is a bug to see), saying
    what was kept."""
    try:
        with this_process_alone():  # (it runs in process 0 alone: what it calls, to_optuna say, waits for no other)
            on_round(so_far)
    except Exception as err:
        name = getattr(on_round, "__name__", type(on_round).__name__)
        held = _carry_results(err, so_far, "The results so far")  # (nothing trained is lost to a broken callback)
        kept = (f"the search is saved in {run_dir} up to this round: "
                f"{_continued_by('vt.tune(..., resume=True) with the same run_dir')} continues it (and calls "
                f"on_round from the next round on)" if run_dir is not None else
                "give vt.tune a run_dir to resume from here")
        err.add_note(f"vmaptune: on_round ({name}) raised after round {int(so_far.members['round'].max())} (the "
                     f"table's round column); {kept}.{held}")
        raise


def _saved_results(run_dir: str) -> Results | None:
    """The results saved in run_dir (None: none yet, or not readable)."""
    try:
        return load_results(run_dir)
    except (OSError, ValueError, KeyError):
        return None


def _saved_refit(saved: Results, run_dir: str) -> Results | None:
    """`saved` (run_dir's results) when they hold a refit (test scores and trained models), else None."""
    if "test_score" not in saved.members:
        return None
    for row in list(saved.models):  # (read now: a refit model that cannot be read is refit again, not a dead end)
        try:
            saved.models[row]
        except Exception as err:  # (a file cut short or deleted, a zip that does not open, ...)
            cause = err.__cause__ if isinstance(err, ValueError) and err.__cause__ is not None else err  # (SavedModels')
            warn(f"{os.path.join(run_dir, 'models', f'row_{row}')} cannot be read ({type(cause).__name__}: {cause}); "
                 f"it is dropped, and a refit of row {row} (refit= as large as the run's) trains it again: the same "
                 f"setting from the same initial weights, equal to the lost model up to float rounding (it may train "
                 f"beside other rows than before).")
            del saved.models[row]
            saved.members.loc[row, "test_score"] = np.nan
    return saved if len(saved.models) > 0 else None


def _carry_refit(results: Results, saved: Results | None, refit: int, interim: bool = False) -> bool:
    """Takes the test scores and trained models of a saved refit into `results` for the rows its
    table still holds as they were: all of a finished run resumed, and the first rows of one that
    searches on after it finished with a smaller refit or none (nothing trained is deleted; with
    as large a refit, the refit is of the best of all rounds, as in a run started with them). True
    when they hold every row `refit` asks for (nothing to train).
    interim: results saved or returned before the search's own refit (its rounds, a Ctrl-C): they
    keep the saved refit whatever `refit` is, so a kill while searching on never leaves a run with
    none; settings['refit_of_rows'] then says which rows it was the refit of, and
    settings['refit_asked'] the refit still to run."""
    if interim:  # (the refit this search runs once its rounds are done: its messages say so)
        results.settings["refit_asked"] = int(refit)
    n = 0 if saved is None else int(saved.settings.get("refit_of_rows") or len(saved))
    if not (0 < n <= min(len(results), len(saved)) and np.array_equal(
            saved.members["score"].to_numpy()[:n], results.members["score"].to_numpy()[:n], equal_nan=True)):
        return False
    if n < len(results) and refit >= int(saved.settings.get("refit") or len(saved.models)) and not interim:
        return False
    if interim and n < len(results):
        results.settings["refit_of_rows"] = n
    test = np.full(len(results), np.nan, saved.members["test_score"].dtype)
    test[:n] = saved.members["test_score"].to_numpy()[:n]
    results.members["test_score"] = test
    results.models = saved.models  # read from run_dir when asked for
    saved_refit = int(saved.settings.get("refit") or len(saved.models))
    # (interim: the refit it holds is the saved one; the one asked for has not run)
    results.settings["refit"] = saved_refit if interim else max(int(refit), saved_refit)
    return set(results.refit_rows(refit)) <= set(saved.models)


def _warn_if_failed(results: Results) -> None:
    if len(results) and not results.succeeded:
        warn(f"vt.tune: {results.failure()}")
    elif len(results.metric_undefined()):
        warn(f"vt.tune: {results.metric_undefined_message()}")
