"""A search's results as an Optuna study: Optuna's dashboard, plots and importances on a vmaptune run.

    study = result.to_optuna("sqlite:///runs.db")      # then: optuna-dashboard sqlite:///runs.db
    optuna.visualization.plot_optimization_history(study)
    optuna.importance.get_param_importances(study)

One trial per member, in table order. Parameters and their distributions are those vt.OptunaSampler
gives Optuna (log scales kept; a OneMinusLogUniform `momentum` is the log-scaled
`one_minus_momentum`; Fixed values go to the study's user attributes). A value a strategy set
outside the space (a custom strategy's Decision may) is exported as it trained, never clamped: that
parameter's distribution is widened to hold it, in every trial of the export (Optuna checks only a
distribution's kind and scale across trials, and its importances take a parameter only where all
trials' distributions are equal). The value is the member's score in the metric's own sense: a
metric where lower is better (mse) is exported positive, with the study minimising it. The
validation curve is the trial's intermediate values (step = epoch), at the epochs it was
validated (`evaluate_every=k`: every k-th, and its last).

States: a member that trained to the end (or stopped early on its own patience) is COMPLETE; one a
strategy stopped before the last epoch (successive halving's lower rungs, members packed out) is
PRUNED, its value its last intermediate value, as Optuna gives its own pruned trials; a diverged
member is FAIL. Every member of the round a Ctrl-C ended is RUNNING (status 'interrupted', and
those pruned, stopped or diverged so far: a strategy may still copy a network into one, PBT's
does), with its curve so far and no parameters yet (a strategy may still change them, PBT's
does): it is not finished, and the run can resume. An append after the resume (`append=True`, vt.OptunaExport, `vmaptune
export --append`) finishes those trials in place (state, value, curve, attributes), so the study
ends as a fresh export of the finished run (Optuna cannot change a finished trial, so they are
never exported as FAIL).
The table's other columns (round, member, status, epochs_trained, test_score, a strategy's rung or
lineage) are each trial's user attributes.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import math
import os
import warnings
from typing import Any

import jax
import numpy as np

from vmaptune import distributed
from vmaptune.metrics import shown
from vmaptune.results import (STANDARDISED_ERRORS, STATUS_DIVERGED, STATUS_INTERRUPTED, STATUS_OK, STATUS_PRUNED,
                               Results)
from vmaptune.space import Choice, OneMinusLogUniform
from vmaptune.strategies.optuna_sampler import _import_optuna, optuna_param, to_optuna_value
from vmaptune.warn import warn

#: Settings copied to the study's user attributes.
STUDY_SETTINGS = ("strategy", "model", "dataset", "data", "task", "metric", "loss", "optimizer", "epochs", "seed",
                  "batch_size", "cv", "seeds", "early_stopping", "refit")
#: Of those, what one run keeps from start to end: an append checks them (a resume may change the
#: strategy's rounds and the refit).
RUN_IDENTITY = ("model", "dataset", "data", "task", "metric", "loss", "optimizer", "epochs", "seed", "batch_size", "cv",
                "seeds", "early_stopping")
#: Table columns holding scores ("higher is better", losses negated): a trial's user attributes
#: give them in the metric's own sense, as its value (an mse positive).
SCORE_COLUMNS = ("score", "best_score", "final_score", "test_score")
#: The study's user attribute holding test scores a refit added after their trials finished
#: (Optuna cannot change a finished trial's attributes): trial number -> test score, None for a
#: trial refit at an earlier end of a run that searched on since (no longer among the best).
TEST_SCORES = "test_scores"


#: How an error names the ways out: the Python arguments (the command line passes CLI_FIXES).
PYTHON_FIXES = {
    "name": "study_name={name!r}",
    "exists": "pass overwrite=True to replace it, append=True to add this run's new members to it, or another "
              "study_name",
    "other_run": "append only the run that made the study, pass overwrite=True to replace it, or another "
                 "study_name",
    "anew": "pass overwrite=True to export the run anew",
    "direction": "pass overwrite=True to replace it, or another study_name (a study made beforehand must be made "
                 "with optuna.create_study(..., direction={direction!r}))",
}
CLI_FIXES = {
    "name": "study {name!r}",
    "exists": "pass --overwrite to replace it, --append to add this run's new members to it, or --study-name NAME "
              "for another study",
    "other_run": "use --append only with the run that made the study, or pass --overwrite to replace it",
    "anew": "pass --overwrite to export the run anew",
    "direction": "pass --overwrite to replace it, or --study-name NAME for another study (a study made beforehand "
                 "must be made with direction={direction!r})",
}
#: `vmaptune run --optuna` (and demo): the run exports as it goes, and its --overwrite starts the run anew too.
RUN_FIXES = {
    "name": "study {name!r}",
    "exists": "pass --study-name NAME for another study, or --overwrite to replace it (and start the run anew)",
    "other_run": "pass --study-name NAME for a study of this run's own, or another --out (--overwrite replaces "
                 "that study and starts the run anew)",
    "anew": "export the run anew once it ends: vmaptune export RUN_DIR --optuna STORAGE --overwrite",
    "direction": "pass --study-name NAME for another study, or --overwrite to replace it (and start the run anew); "
                 "a study made beforehand must be made with direction={direction!r}",
}


def to_optuna(results: Results, storage: Any = None, study_name: str | None = None, *, overwrite: bool = False,
              append: bool = False, _fixes: dict = PYTHON_FIXES, _in_every_process: bool = True):
    """-> an optuna.Study holding one trial per member of `results` (RUNNING for a member a
    Ctrl-C interrupted, finished for the others).

    storage: None (in memory), a database URL ("sqlite:///runs.db", what optuna-dashboard
      opens) or an optuna storage object. study_name: default "vmaptune <dataset> <start time>".
    overwrite: replace a study of that name already in storage (else that is an error).
    append: bring the study up to this run's results (the same run exported again as it goes on:
      `OptunaExport`, or after a resume): add the members it does not hold yet, and finish the
      RUNNING trials of members that were interrupted and have finished since; its trials must be
      this run's first members.
    In a multi-process run, a database storage is written by process 0 alone (every process holds
    the same results); the others get the study once it is written, so every process calls it (in
    process 0 alone: within vt.distributed.this_process_alone())."""
    optuna = _import_optuna()
    if not isinstance(results, Results):
        raise TypeError(f"to_optuna takes the Results of vt.tune or vt.load_results, got {type(results).__name__}.")
    if study_name is not None and not (isinstance(study_name, str) and study_name):
        raise ValueError(f"study_name={study_name!r}: give a non-empty string, or None for a name from the run.")
    if overwrite and append:
        raise ValueError("overwrite=True and append=True contradict each other: overwrite replaces the study, "
                         "append adds the members it lacks; pass one of them.")
    shared = storage is not None and not isinstance(storage, optuna.storages.InMemoryStorage)
    # (every process holds the same results: process 0 writes; OptunaExport runs in process 0 alone, and
    # an exchange there would pair with another exchange of the other processes)
    if shared and _in_every_process and distributed.process_count() > 1:
        return _in_process_0(optuna, results, storage, study_name, overwrite, append, _fixes)
    return _export(optuna, results, storage, open_storage(storage), study_name, overwrite, append, _fixes)


def _in_process_0(optuna, results: Results, given, study_name, overwrite: bool, append: bool, _fixes: dict):
    """A multi-process run's export to a shared storage: process 0 opens it and writes the study, and
    the others open it once written (all of them raced to create the database's tables, and to
    create, or delete and create, one study: every process but one failed)."""
    # (one name in every process: a run without a start time is named from process 0's clock; agreed
    # in every process whatever names they were given, so that none waits alone)
    try:  # (first a line-up, which learns of a process that ended or went elsewhere: a collective waited
        # for it until JAX's shutdown timeout, then aborted every process without a word)
        distributed.line_up("result.to_optuna(...)")
    except (distributed.ProcessLost, ValueError) as err:
        err.add_note("vmaptune: to_optuna is called in every process of a multi-process run (process 0 writes the "
                     "study). Called in process 0 alone (under `if vt.distributed.is_primary():`), it goes under "
                     "`with vt.distributed.this_process_alone():`.")
        raise
    now = distributed.agreed_time()
    name = study_name or _default_name(results, now)
    study = distributed.in_process_0(
        lambda: _export(optuna, results, given, open_storage(given), name, overwrite, append, _fixes),
        "to_optuna failed in process 0, which writes the study of a multi-process run (its error says why).",
        ValueError)
    found = True
    if not distributed.is_primary():
        try:  # (any failure here is said below, in every process: one raising alone would leave the others
            # waiting at the meeting below)
            study = optuna.load_study(study_name=name, storage=open_storage(given))
            found = _holds_export_of(optuna, study, results)  # (another database, a stale study there)
        except Exception:  # noqa: BLE001 (KeyError: none of that name; a storage that does not open)
            found = False
    # every process meets here once the others have read the study: process 0's next export (an
    # overwrite deletes the study) must not start while another process still reads this one
    if distributed.any_process(not found):
        who = f"process {jax.process_index()}" if not found else "another process"
        raise ValueError(f"to_optuna: {who} does not find in {given!r} the study {name!r} that process 0 wrote "
                         f"(none of that name, or one holding other trials): in a multi-process run every process "
                         f"must reach one storage (a database server, or a SQLite file on a file system they share). "
                         f"Or export from process 0 alone: if vt.distributed.is_primary(): with "
                         f"vt.distributed.this_process_alone(): result.to_optuna(...).")
    return study


def _holds_export_of(optuna, study, results: Results) -> bool:
    """Whether `study`'s trials are `results`' members (round, member, and a finished one's value):
    what process 0 exported, not a study another database holds under that name."""
    trials = study.get_trials(deepcopy=False)
    if len(trials) != len(results.members):
        return False
    complete = optuna.trial.TrialState.COMPLETE
    rows = results.members[["round", "member", "score"]].itertuples(index=False)
    for trial, (round_, member, score) in zip(trials, rows):
        if (trial.user_attrs.get("round"), trial.user_attrs.get("member")) != (int(round_), int(member)):
            return False
        if trial.state == complete and (trial.value is None or not math.isclose(
                trial.value, shown(float(score), results.metric_sign), rel_tol=1e-6, abs_tol=1e-12)):
            return False
    return True


def _default_name(results: Results, now: float | None = None) -> str:
    """'vmaptune <dataset> <start time> UTC' (a run without one: `now`, else this process's clock),
    in UTC: one name wherever it is exported (local time named one run's study in two ways on
    machines in two time zones; a study exported in local time before keeps its name: study_name=
    appends to it)."""
    stamp = next((float(t) for t in (results.settings.get("started_at"), now) if t is not None), None)
    zone = datetime.timezone.utc
    started = datetime.datetime.fromtimestamp(stamp, zone) if stamp is not None else datetime.datetime.now(zone)
    return f"vmaptune {results.settings.get('dataset', 'run')} {started:%Y-%m-%d %H:%M:%S} UTC"


def _export(optuna, results: Results, given, storage, study_name, overwrite: bool, append: bool, _fixes: dict):
    """to_optuna in this process (storage: `given`, opened)."""
    settings = results.settings
    started = _time(settings.get("started_at"))
    name = study_name or _default_name(results)
    metric, sign = results.metric, results.metric_sign
    if storage is not None and overwrite:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:  # (none of that name yet)
            pass
    existed = storage is None or name in optuna.get_all_study_names(storage)
    try:
        study = optuna.create_study(storage=storage, study_name=name, load_if_exists=append,
                                    direction="maximize" if sign > 0 else "minimize")
    except optuna.exceptions.DuplicatedStudyError:
        existing = optuna.load_study(study_name=name, storage=storage)
        if not existing.get_trials(deepcopy=False):  # (made beforehand: its direction is the first thing to fix)
            _check_direction(existing, metric, sign, f"{_fixes['name'].format(name=name)} in {given!r}", _fixes)
        raise ValueError(f"{_fixes['name'].format(name=name)} is already in {given!r}: {_fixes['exists']}.") from None
    held = study.get_trials(deepcopy=False)
    where = f"{_fixes['name'].format(name=name)} in {given!r}"
    if held:  # (another run's study is said as such, whatever its direction)
        _check_same_run(study, _run_settings(results), where, _fixes)
    _check_direction(study, metric, sign, where, _fixes)
    if held:
        _append(optuna, study, held, results, sign, started, where, _fixes)
        _set_run_attributes(study, results)
        return study
    try:
        with warnings.catch_warnings():  # (set_metric_names is marked experimental: not the user's concern)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric])
        study.add_trials(_trials(optuna, results, sign, started))
        _set_run_attributes(study, results)
    except BaseException:  # (an error or a Ctrl-C: a study this export made is not left behind, empty or half)
        if not existed:
            optuna.delete_study(study_name=name, storage=storage)
        raise
    return study


def _set_run_attributes(study, results: Results) -> None:
    """The study's "vmaptune" attribute: the run's settings (what an append checks) and fixed values."""
    fixed = {n: d.value for n, d in results.space.items() if getattr(d, "is_fixed", False)}
    study.set_user_attr("vmaptune", {**_run_settings(results), "fixed": {k: _plain(v) for k, v in fixed.items()}})


def _run_settings(results: Results) -> dict:
    """The run's settings as a study records them (STUDY_SETTINGS; a searched batch size said as
    searched, not the run's default; the units of a score that is not in the metric's own)."""
    settings = results.settings
    attributes = {k: _plain(settings.get(k)) for k in STUDY_SETTINGS if k in settings}
    if "batch_size" in results.space and not getattr(results.space["batch_size"], "is_fixed", False):
        attributes["batch_size"] = SEARCHED_BATCH_SIZE
    units = _score_units(results)
    if units:
        attributes["units"] = units
    return attributes


def _score_units(results: Results) -> str:
    """What a trial's value is in, where that is not the metric's plain sense: a built-in regression
    error is scored on standardised targets ('' otherwise)."""
    settings = results.settings
    if settings.get("task") != "regression" or results.metric not in STANDARDISED_ERRORS or \
            settings.get("metric_in_target_units"):
        return ""
    power = "**2" if "mse" in results.metric else ""
    std = settings.get("target_std")
    factor = "" if std is None or np.ndim(std) else f" = {float(std) ** (2 if power else 1):.6g}"
    return (f"{results.metric} of standardised targets: the targets' own units are these values times "
            f"y_std{power}{factor} (PopulationSearchCV's cv_results_ are in the targets' units; metric='r2' or a "
            f"vt.Metric of yours scores in theirs)")


def check_study(storage: Any, study_name: str, results: Results | None, _fixes: dict = PYTHON_FIXES, *,
                metric: Any = None) -> None:
    """Before a run that exports as it goes (vt.OptunaExport) starts: refuses a study of that name
    holding another run's trials, which no export of this run could then update (every round
    would warn, and the study shown be the other run's), or one whose direction is not the
    metric's. results: the run's so far (a resumed run), None for a run starting, whose study must
    not hold trials yet. metric: the run's vt.Metric (its direction), where results is None."""
    optuna = _import_optuna()
    opened = open_storage(storage)
    if opened is None:  # (in memory: nothing there before the run)
        return
    try:
        study = optuna.load_study(study_name=study_name, storage=opened)
    except KeyError:  # (none of that name yet: the first export creates it)
        return
    held = study.get_trials(deepcopy=False)
    where = f"{_fixes['name'].format(name=study_name)} in {storage!r}"
    if results is not None:
        _check_direction(study, results.metric, results.metric_sign, where, _fixes)
    elif metric is not None:
        _check_direction(study, metric.name, 1.0 if metric.greater_is_better else -1.0, where, _fixes)
    if held and results is None:
        raise ValueError(f"{where} already holds {len(held)} trials of another run (a run starting exports to a "
                         f"study of its own): {_fixes['other_run']}.")
    if held:
        _check_same_run(study, _run_settings(results), where, _fixes)
        _appendable(optuna, held, results, results.metric_sign, _time(results.settings.get("started_at")), where,
                    _fixes)


def delete_study(storage: Any, study_name: str) -> None:
    """Deletes the study `study_name` in `storage` if there is one (in memory: nothing to delete)."""
    optuna = _import_optuna()
    opened = open_storage(storage)
    if opened is None:
        return
    try:
        optuna.delete_study(study_name=study_name, storage=opened)
    except KeyError:  # (none of that name)
        pass


def check_storage(storage: Any) -> None:
    """What open_storage would refuse, found without opening anything (every process of a
    multi-process run builds its OptunaExport; only process 0 writes, and creating one SQLite
    database from several at once races): the URL parses, its dialect is known, a SQLite file's
    folder exists."""
    if not isinstance(storage, str):
        open_storage(storage)  # (None or a storage object: nothing opens; anything else: its TypeError)
        return
    import sqlalchemy

    try:  # (a URL string is a database's to Optuna: RDBStorage)
        url = sqlalchemy.engine.make_url(storage)
        url.get_dialect()
    except Exception as err:  # (ArgumentError, NoSuchModuleError)
        raise _refused(storage, err) from None
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        folder = os.path.dirname(os.path.abspath(url.database))
        if not os.path.isdir(folder):
            raise _refused(storage, f"the folder {folder} does not exist")


def open_storage(storage: Any) -> Any:
    """None (in memory), an Optuna storage object, or a database URL opened now: a URL Optuna cannot
    open (a typo, a missing folder) is an error before anything trains, not a failure after."""
    optuna = _import_optuna()
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str):
        raise TypeError(f"storage={storage!r}: give a database URL such as 'sqlite:///runs.db' (what optuna-dashboard "
                        f"opens), an optuna storage object, or None for a study in memory.")
    try:
        return optuna.storages.get_storage(storage)
    except Exception as err:  # (SQLAlchemy's ArgumentError, OperationalError, a missing driver...)
        raise _refused(storage, err) from None


def _refused(storage: str, cause: Any) -> ValueError:
    """The error for a storage URL that cannot be opened, with its cause's first line."""
    if isinstance(cause, Exception):
        cause = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return ValueError(f"storage={storage!r} cannot be opened as an Optuna storage ({cause}): give a database URL such "
                      f"as 'sqlite:///runs.db' (its folder must exist), an optuna storage object, or None for a "
                      f"study in memory.")


SEARCHED_BATCH_SIZE = "searched: each trial's batch_size"


def _check_direction(study, metric: str, sign: float, where: str, fixes: dict) -> None:
    """A study made before the export (optuna.create_study's default direction is minimize; so is
    optuna-dashboard's "Create study") keeps its direction when loaded: filled with accuracies, its
    best trial would be the worst member. Optuna cannot change a study's direction."""
    wanted = "maximize" if sign > 0 else "minimize"
    directions = [d.name.lower() for d in study.directions]
    fix = fixes["direction"].format(direction=wanted)
    if len(directions) != 1:
        raise ValueError(f"{where} has {len(directions)} objectives ({', '.join(directions)}), but this run gives "
                         f"each trial one value, its {metric}: {fix}.")
    if directions != [wanted]:
        better = "higher" if sign > 0 else "lower"
        raise ValueError(f"{where} is set to {directions[0]}, but {better} is better for this run's {metric}: its "
                         f"best trial would be the worst member. Optuna cannot change a study's direction: {fix}.")


def _check_same_run(study, settings: dict, where: str, fixes: dict) -> None:
    """An append must bring a study of this run up to date: the settings a run keeps from start to
    end must be those the study was exported with (another run of the same seed and space has
    the same members and parameters)."""
    exported = study.user_attrs.get("vmaptune")
    if not isinstance(exported, dict):  # (not made by vmaptune: the members and parameters are compared)
        return
    for key in RUN_IDENTITY:
        if key == "batch_size" and SEARCHED_BATCH_SIZE in (exported.get(key), settings.get(key)):
            continue  # (a study exported before a searched batch size was said so holds the run's default)
        if key in exported and key in settings and exported[key] != _plain(settings[key]):
            raise ValueError(f"{where} was exported from another run ({key}: the study's {exported[key]!r}, this "
                             f"run's {_plain(settings[key])!r}): {fixes['other_run']}.")


def _append(optuna, study, held: list, results: Results, sign: float, started, where: str, fixes: dict) -> None:
    """Brings a study of this run up to `results`: the study must be this run's (its trials are the
    table's first members, with their parameters); its RUNNING trials (members interrupted when it
    was exported) get their members' state, value, curve and attributes now, and the members after
    its trials are added. Everything is checked before the study is changed."""
    RUNNING = optuna.trial.TrialState.RUNNING
    first, fresh, pairs = _appendable(optuna, held, results, sign, started, where, fixes)
    storage = study._storage  # (Optuna's storage API: what study.tell and trial.report write through)
    for old, new in pairs:
        if old.state != RUNNING:
            continue
        trial_id = old._trial_id
        if new.state != RUNNING:  # its values, now final
            for name, value in new.params.items():
                distribution = new.distributions[name]
                storage.set_trial_param(trial_id, name, distribution.to_internal_repr(value), distribution)
        for step, value in new.intermediate_values.items():
            if old.intermediate_values.get(step) != value:
                storage.set_trial_intermediate_value(trial_id, step, value)
        for key, value in new.user_attrs.items():
            if key not in old.user_attrs or old.user_attrs[key] != value:
                storage.set_trial_user_attr(trial_id, key, value)
        if new.state != RUNNING:  # (last: a finished trial is no longer updatable)
            storage.set_trial_state_values(trial_id, new.state, None if new.value is None else [new.value])
    study.add_trials(fresh[len(held) - first:])
    # a refit after the trials finished (the refit follows the last round; `refit=k` on a resumed
    # finished run): their test scores go to the study's attributes, as Optuna cannot change theirs
    # (the whole mapping, anew: a run searched on since refits other rows; None: a trial refit at
    # an earlier end, by its own attribute or the mapping, and no longer)
    tests = results.members["test_score"].to_numpy() if "test_score" in results.members else ()
    before = study.user_attrs.get(TEST_SCORES) or {}
    late = {}
    for i, trial in enumerate(held):
        want = _plain(shown(float(tests[i]), sign)) if i < len(tests) and np.isfinite(tests[i]) else None
        if trial.state.is_finished() and (trial.user_attrs.get("test_score") != want
                                          or (want is None and str(trial.number) in before)):
            late[str(trial.number)] = want
    if late or TEST_SCORES in study.user_attrs:
        study.set_user_attr(TEST_SCORES, late)


def _appendable(optuna, held: list, results: Results, sign: float, started, where: str, fixes: dict) -> tuple:
    """Checks that `results` can bring a study holding the trials `held` up to date (they are this
    run's first members, with their parameters) -> (first, fresh, pairs): the row of the first
    trial to compare, the trials of the rows from it on, and (held, fresh) pairs. Only the rows
    from its first RUNNING trial (else its last trial, to compare) on are built: a long run
    appends a round at a time."""
    RUNNING = optuna.trial.TrialState.RUNNING
    members = results.members["member"].tolist()
    if len(held) > len(members) or [t.user_attrs.get("member") for t in held] != members[:len(held)]:
        raise ValueError(f"{where} holds {len(held)} trials that are not this run's first members: "
                         f"{fixes['other_run']}.")
    first = min([i for i, t in enumerate(held) if t.state == RUNNING or t.user_attrs.get("status") ==
                 STATUS_INTERRUPTED] + [len(held) - 1])
    fresh = _trials(optuna, results, sign, started, first=first)
    pairs = list(zip(held[first:], fresh))
    # (a running member's trial has no parameters yet: nothing to compare)
    if any(old.params and new.params and not _same_params(old.params, new.params) for old, new in pairs):
        raise ValueError(f"{where} holds {len(held)} trials that are not this run's first members: "
                         f"{fixes['other_run']}.")
    # an older vmaptune exported interrupted members as FAIL: finished trials, which Optuna cannot change
    stale = [old.number for old, new in pairs if old.state.is_finished() and old.user_attrs.get("status") ==
             STATUS_INTERRUPTED and new.user_attrs.get("status") != STATUS_INTERRUPTED]
    lost = [old.number for old, new in pairs if old.state == RUNNING
            and set(old.intermediate_values) - set(new.intermediate_values)]
    if stale or lost:
        why = (f"trials {_numbers(stale)} were exported as {held[stale[0]].state.name} while their members were "
               f"interrupted, and those members have finished since; a finished trial cannot be changed"
               if stale else f"trials {_numbers(lost)} hold intermediate values at epochs the run no longer has, "
               f"which Optuna cannot remove")
        raise ValueError(f"{where}: {why}: {fixes['anew']}.")
    return first, fresh, pairs


def _numbers(numbers: list[int]) -> str:
    """[16, 17, 18, 20] -> '16-18, 20'."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)


class OptunaExport:
    """A vt.tune callback (`on_round=`) that keeps an Optuna study up to date while a search runs:
    after each round the members not yet in the study are added, so optuna-dashboard shows a
    long run as it goes; a resumed run goes on adding to the same study (and finishes the RUNNING
    trials an export of the interrupted run left). An export that fails (the
    database unreachable, a study of another run under that name) is a warning: the search goes on.

        vt.tune(..., on_round=vt.OptunaExport("sqlite:///runs.db", "digits-bo"))"""

    def __init__(self, storage: Any, study_name: str, *, overwrite: bool = False, _fixes: dict = PYTHON_FIXES):
        if not (isinstance(study_name, str) and study_name):
            raise ValueError(f"study_name={study_name!r}: give the study a name (a long run is followed by it).")
        check_storage(storage)  # (before the search starts: a typo is said now, not after every round)
        self.storage, self.study_name, self._fixes = storage, study_name, _fixes
        self.overwrite = bool(overwrite)  # the first export replaces a study of that name (a run started over)
        self._overwrite_asked = self.overwrite  # (and each run's that starts: the object may serve several)
        self.error: str | None = None  # why the last export failed (None: the study is up to date)
        # After an export that left every trial finished: (the study, the run's identity, the members it
        # holds: _rows). The next round only adds its members' trials; bringing the study up to date from
        # its trials (to_optuna's append) reads them all, a cost that grew with the study
        # (bench/optuna_export.py).
        self._exported: tuple[Any, dict, dict] | None = None

    def before_search(self, results: Results | None, metric: Any) -> None:
        """Called by vt.tune before the first round trains: a study of this name that no export of
        the run could fill (set to the other direction than `metric`'s, a vt.Metric; holding another
        run's trials) is refused now, not warned about after every round. results: a resumed run's
        so far (None: a run starting). An export that replaces the study (overwrite) deletes it now,
        as the run directory was replaced: here vt.tune holds that directory, so a run refused there
        (another process writing it) leaves that run's study alone; and a run stopped before its first
        export resumes into no study, not into the one it replaced."""
        if results is None:  # (a notebook cell run again with this export: its first export replaces it again,
            # not adding to the last run's study, whose members and values it may share)
            self.overwrite, self._exported = self._overwrite_asked, None
        if self.overwrite and results is None:
            with _quiet_optuna():
                delete_study(self.storage, self.study_name)
        elif not self.overwrite:
            with _quiet_optuna():
                check_study(self.storage, self.study_name, results, self._fixes, metric=metric)

    def __call__(self, results: Results) -> None:
        try:
            with _quiet_optuna():
                if not self._add_round(results):
                    study = to_optuna(results, self.storage, self.study_name, overwrite=self.overwrite,
                                      append=not self.overwrite, _fixes=self._fixes, _in_every_process=False)
                    self._exported = (study, _identity(results), _rows(results)) if _final(results) else None
            self.overwrite, self.error = False, None
        except Exception as err:  # a view that fails must not end an hours-long search: said, and it goes on
            self._exported = None  # (the next round brings the study up to date from its trials)
            self.error = str(err).rstrip(".")
            warn(f"OptunaExport: the study {self.study_name!r} in {self.storage!r} was not updated after "
                 f"round {results.settings.get('rounds', '?')}: {str(err).rstrip('.')}. The search goes on; "
                 f"export its results later with result.to_optuna(...) or `vmaptune export`.", UserWarning)

    def _add_round(self, results: Results) -> bool:
        """Adds the trials of the members after those the last export left finished -> False where
        that is not enough: no such export, members of a round cut short, a refit's test scores
        (whose study attributes an append rewrites), another run, or a table that does not start
        with them (to_optuna's append then checks, or refuses)."""
        if self._exported is None or not _final(results) or "test_score" in results.members:
            return False
        study, identity, held = self._exported
        rows, n = _rows(results), len(held["member"])
        if _identity(results) != identity or set(rows) != set(held) or len(rows["member"]) < n or \
                not all(np.array_equal(rows[k][:n], held[k], equal_nan=rows[k].dtype.kind == "f") for k in held):
            return False
        optuna = _import_optuna()
        study.add_trials(_trials(optuna, results, results.metric_sign, _time(results.settings.get("started_at")),
                                 first=n))
        _set_run_attributes(study, results)
        self._exported = (study, identity, rows)
        return True


def _rows(results: Results) -> dict:
    """The members of `results` as an export holds them: their ids and encoded values."""
    return {"member": results.members["member"].to_numpy(), **{f"hp/{k}": np.array(v) for k, v in results.hp.items()}}


def _identity(results: Results) -> dict:
    """The settings that say which run `results` are of (what an append compares)."""
    return {k: _plain(results.settings[k]) for k in RUN_IDENTITY if k in results.settings}


def _final(results: Results) -> bool:
    """Whether every member of `results` is exported as a finished trial (no round cut short)."""
    return not results.settings.get("interrupted") and not (
        "status" in results.members and (results.members["status"] == STATUS_INTERRUPTED).any())


@contextlib.contextmanager
def _quiet_optuna():
    """Optuna's INFO logs ("Using an existing study ...") off while a search exports each round."""
    optuna = _import_optuna()
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _trials(optuna, results: Results, sign: float, started: datetime.datetime | None, first: int = 0) -> list:
    """The trials of the table's members from row `first` on."""
    TrialState = optuna.trial.TrialState
    space, table, settings = results.space, results.members, results.settings
    params = {n: p for n, d in space.items() if (p := optuna_param(n, d)) is not None}
    # every member's values as trained, and distributions holding them all (the whole table's, so
    # an append's new trials get a fresh export's distributions)
    values = {n: _optuna_values(space[n], dist, results.hp[n]) for n, (_, dist) in params.items()}
    distributions = {oname: _holding(_as_given(dist, space[n]), values[n]) for n, (oname, dist) in params.items()}
    epochs = int(settings.get("epochs") or 0)
    curve = results.curves.get("val_score")
    validated = results.validated()
    times = _round_times(settings, started)
    hp_names = set(space.names)
    active = space.active(results.hp)  # (a name a member's setting does not use is not its trial's parameter)
    renamed = {n for n, (oname, _) in params.items() if oname != n}  # momentum as itself too, beside one_minus_momentum
    unfinished = results.unfinished()  # (RUNNING: interrupted, or of the round a Ctrl-C cut short)
    out = []
    for i, row in enumerate(table.iloc[first:].itertuples(index=False), start=first):
        row = row._asdict()
        status = row.get("status")
        trained = int(row.get("epochs_trained") or 0)
        running = bool(unfinished[i])
        # the epochs it was validated at (the curve carries the last score on between them)
        steps = {} if curve is None else {
            e + 1: shown(float(v), sign) for e, v in enumerate(curve[i][:trained])
            if np.isfinite(v) and validated[i, e]}
        if running:  # not finished: the run can resume it (an append then finishes it)
            state, value = TrialState.RUNNING, None
        elif status == STATUS_DIVERGED or not math.isfinite(row.get("score", math.nan)):
            state, value = TrialState.FAIL, None
        elif status == STATUS_PRUNED or (status == STATUS_OK and epochs and trained < epochs):  # (older tables: ok)
            # a strategy ended it before the last epoch: its last intermediate value, as Optuna's
            # study.tell gives a pruned trial
            state, value = TrialState.PRUNED, steps[max(steps)] if steps else None
        else:
            state, value = TrialState.COMPLETE, shown(float(row["score"]), sign)
        start, end = times.get(int(row["round"]), (None, None))
        # (a running member's values may still change, PBT's do: given once it finishes, as Optuna's
        # own running trials get theirs when they are suggested)
        given = {} if state == TrialState.RUNNING else {oname: values[n][i] for n, (oname, _) in params.items()
                                                        if n not in active or active[n][i]}
        lost = {n for n, (oname, _) in params.items() if oname in given and given[oname] is None}
        given = {k: v for k, v in given.items() if v is not None}
        out.append(optuna.trial.FrozenTrial(
            number=-1, trial_id=-1, state=state, value=value, values=None,
            datetime_start=start or end or datetime.datetime.now(),
            datetime_complete=None if state == TrialState.RUNNING else end or start or datetime.datetime.now(),
            params=given, distributions={k: distributions[k] for k in given},
            intermediate_values=steps, system_attrs={},
            # (a value no Optuna distribution of its scale holds, a log-scaled 0, is an attribute)
            user_attrs={k: _plain(shown(v, sign) if k in SCORE_COLUMNS else v) for k, v in row.items()
                        if k not in hp_names or (k in renamed or k in lost) and (k not in active or active[k][i])}))
    return out


def _optuna_values(dist, optuna_dist, encoded) -> list:
    """A parameter's value for every member, as Optuna's (to_optuna_value), as it trained: a value
    a strategy set outside the space stays as set (within float32 rounding of a bound it is the
    bound); None for one no distribution of that scale holds (0 on a log scale, a Choice index
    past its options)."""
    out = []
    encoded = np.asarray(encoded)
    # a float32 as the shortest decimal that is it (0.1, not 0.10000000149), as the table shows it
    as_given = encoded.dtype == np.float32 and dist.kind == "float"
    for x in encoded.astype(float).tolist():
        if not math.isfinite(x):
            out.append(None)
        elif isinstance(dist, Choice):
            out.append(_plain(dist.options[int(x)]) if 0 <= int(x) < len(dist.options) else None)
        elif dist.low - 1e-6 * abs(dist.low) <= x <= dist.high + 1e-6 * abs(dist.high):  # (float32 rounding)
            given = dist.decode(np.float32(x)) if as_given else x
            if as_given and isinstance(dist, OneMinusLogUniform):  # 1 - 0.96423376 as 0.03576624, in decimal
                value = min(max(_one_minus(given), optuna_dist.low), optuna_dist.high)
            else:
                value = to_optuna_value(dist, optuna_dist, given)
            out.append(_decimal(value) if as_given else value)
        else:
            one_minus = isinstance(dist, OneMinusLogUniform)
            if dist.kind == "int":
                v = int(x)
            elif as_given:  # (the shortest decimal, as in the space: 0.4 set outside it, not 0.4000000059604645)
                given = dist.decode(np.float32(x))
                v = _one_minus(given) if one_minus else _decimal(given)
            else:
                v = 1.0 - x if one_minus else x
            out.append(v if not optuna_dist.log or v >= (1 if dist.kind == "int" else np.finfo(float).tiny) else None)
    return out


def _same_params(a: dict, b: dict) -> bool:
    """Equal parameters, floats within float32 rounding (a study an older vmaptune exported holds
    float64's 0.10000000149 where this one writes 0.1)."""
    def close(key, x, y):
        if x == y or not (isinstance(x, float) and isinstance(y, float)):
            return x == y
        # (a one_minus_ value: 1 - x carries the float32 noise of x near 1)
        return abs(x - y) <= 1e-6 * max(abs(x), abs(y)) or (key.startswith("one_minus_")
                                                           and np.float32(1 - x) == np.float32(1 - y))

    return a.keys() == b.keys() and all(close(k, a[k], b[k]) for k in a)


def _one_minus(value: float) -> float:
    """1 - value, worked in decimal from value's shortest repr: float64's 1 - 0.96423376 is
    0.03576623999999995, which no rounding to 15 digits brings back to 0.03576624."""
    return float(decimal.Decimal(1) - decimal.Decimal(repr(float(value))))


def _decimal(value: float) -> float:
    """value at 15 significant digits: 1 - 0.99 as 0.01, not float64's 0.010000000000000009."""
    return float(f"{value:.15g}")


def _as_given(optuna_dist, dist=None):
    """A float distribution with its bounds as given: at 15 significant digits, and a
    OneMinusLogUniform's one_minus_ bounds worked in decimal (OneMinusLogUniform(0.9, 0.99999)'s
    from 1e-05, not float64's 9.99999999995449e-06), as the values it holds are."""
    if not isinstance(optuna_dist, _import_optuna().distributions.FloatDistribution):
        return optuna_dist
    low, high = optuna_dist.low, optuna_dist.high
    if isinstance(dist, OneMinusLogUniform):
        low, high = _one_minus(dist.high), _one_minus(dist.low)
    return type(optuna_dist)(_decimal(low), _decimal(high), log=optuna_dist.log, step=optuna_dist.step)


def _holding(optuna_dist, values: list):
    """optuna_dist, widened to hold `values` (None: left out) where one lies outside it."""
    given = [v for v in values if v is not None]
    if isinstance(optuna_dist, _import_optuna().distributions.CategoricalDistribution) or not given:
        return optuna_dist
    low, high = min(optuna_dist.low, min(given)), max(optuna_dist.high, max(given))
    if (low, high) == (optuna_dist.low, optuna_dist.high):
        return optuna_dist
    return type(optuna_dist)(low, high, log=optuna_dist.log, step=optuna_dist.step)


def _round_times(settings: dict, started: datetime.datetime | None) -> dict:
    """round -> (start, end) wall-clock times: a round starts when the one before it ended."""
    ends = [_time(t) for t in settings.get("round_ended_at") or []]
    times, previous = {}, started
    for r, end in enumerate(ends):
        start = previous if previous is not None and (end is None or previous <= end) else end
        times[r], previous = (start, end), end
    return times


def _time(stamp) -> datetime.datetime | None:
    return None if stamp is None else datetime.datetime.fromtimestamp(float(stamp))


def _plain(value):
    """A JSON-ready value (Optuna's storages keep attributes as JSON): numpy scalars as Python's,
    NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
