"""A search's results in Optuna's tools: one trial per member, with the distributions, values,
curves and states a user of Optuna's dashboard and plots expects."""

import copy
import datetime
import math
import re

import jax.numpy as jnp
import matplotlib
import numpy as np
import optuna
import pytest

import vmaptune as vt
from vmaptune.cli import main

matplotlib.use("Agg")
optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0), momentum=vt.OneMinusLogUniform(0.5, 0.99),
                 activation=vt.Choice(["relu", "tanh"]), n_units=vt.Choice([8, 16]), optimizer=vt.Fixed("sgd"))
States = optuna.trial.TrialState


@pytest.fixture(scope="module")
def hyperband(tmp_path_factory):
    """Hyperband with early stopping on iris: complete, early-stopped and pruned members."""
    run_dir = str(tmp_path_factory.mktemp("hb") / "run")
    result = vt.tune(vt.MLP(hidden=1), SPACE, vt.load_dataset("iris"), vt.Hyperband(max_epochs=4, eta=2), epochs=4,
                     batch_size=32, early_stopping=vt.EarlyStopping(patience=1), progress=False, run_dir=run_dir)
    return result, run_dir


def test_every_member_is_a_trial_with_its_values_distributions_curve_and_state(hyperband):
    result, _ = hyperband
    study = result.to_optuna()
    trials, table = study.trials, result.members
    assert len(trials) == len(table) and study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.metric_names == ["accuracy"] and study.user_attrs["vmaptune"]["fixed"] == {"optimizer": "sgd"}
    dists = trials[0].distributions
    assert dists["learning_rate"] == optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)
    assert dists["one_minus_momentum"].log and dists["n_units"].choices == (8, 16) and "optimizer" not in dists
    # the bounds as given (1 - 0.99 is 0.01, not float64's 0.010000000000000009)
    assert (dists["one_minus_momentum"].low, dists["one_minus_momentum"].high) == (0.01, 0.5)
    states = set()
    for trial, row in zip(trials, table.to_dict("records")):
        assert trial.user_attrs["member"] == row["member"] and trial.user_attrs["round"] == row["round"]
        # the values as the table shows them (0.1, not float32's 0.10000000149): a filter on one finds both
        assert trial.params["learning_rate"] == row["learning_rate"]
        assert trial.params["one_minus_momentum"] == float(f"{1 - row['momentum']:.15g}")
        assert trial.user_attrs["momentum"] == row["momentum"]  # the value itself, beside its searched scale
        assert trial.params["activation"] == row["activation"] and trial.params["n_units"] == row["n_units"]
        curve = result.curves["val_score"][row["member"]][: row["epochs_trained"]]
        assert trial.intermediate_values == {e + 1: pytest.approx(v) for e, v in enumerate(curve)}
        if row["status"] == "diverged":
            assert trial.state == States.FAIL and trial.value is None
        elif row["status"] == "pruned":  # halving ended it before the last epoch: its last intermediate value,
            # as Optuna's study.tell gives a pruned trial (it was None, and the dashboard had no point for it)
            assert trial.state == States.PRUNED and row["epochs_trained"] < 4
            assert trial.value == trial.intermediate_values[max(trial.intermediate_values)] == pytest.approx(curve[-1])
        else:  # trained to the end, or stopped on its own patience
            assert row["status"] in ("ok", "stopped") and (row["status"] == "stopped" or row["epochs_trained"] == 4)
            assert trial.state == States.COMPLETE and trial.value == pytest.approx(row["score"])
        assert trial.datetime_start <= trial.datetime_complete
        states.add(trial.state)
    assert {States.COMPLETE, States.PRUNED} <= states  # (the fixture has both, so each rule was checked)
    assert study.best_trial.user_attrs["member"] == int(table.loc[result.ranking()[0], "member"])


def test_a_saved_run_goes_to_a_database_optunas_plots_and_importances_read(hyperband, tmp_path):
    result, run_dir = hyperband
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    study = vt.load_results(run_dir).to_optuna(storage, study_name="hb")
    loaded = optuna.load_study(study_name="hb", storage=storage)  # what optuna-dashboard opens
    assert [t.params for t in loaded.trials] == [t.params for t in study.trials]
    assert loaded.trials_dataframe()["user_attrs_status"].tolist() == result.members["status"].tolist()
    with pytest.raises(ValueError, match=r"study_name='hb' is already in 'sqlite:///.*runs.db': pass overwrite=True "
                                         r"to replace it, append=True to add this run's new members to it, or another study_name"):
        result.to_optuna(storage, study_name="hb")
    result.to_optuna(storage, study_name="hb", overwrite=True)
    assert len(optuna.get_all_study_summaries(storage)) == 1 and len(optuna.load_study(study_name="hb",
                                                                                       storage=storage).trials) == len(result)
    importances = optuna.importance.get_param_importances(loaded)
    assert set(importances) == {"learning_rate", "one_minus_momentum", "activation", "n_units"}
    assert math.isclose(sum(importances.values()), 1.0, rel_tol=1e-6)
    from optuna.visualization import matplotlib as plots

    for plot in (plots.plot_optimization_history, plots.plot_param_importances, plots.plot_intermediate_values,
                 plots.plot_slice, plots.plot_parallel_coordinate):
        assert plot(loaded) is not None


def test_the_default_study_name_is_the_runs_start_in_utc_wherever_it_is_exported(hyperband, tmp_path, monkeypatch):
    """One run, one study name, in any time zone (local time named it in two ways, making a second
    study on a re-export from another machine)."""
    import time

    result, _ = hyperband
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    names = []
    for zone in ("UTC", "America/New_York", "Asia/Seoul"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        names.append(result.to_optuna(storage, overwrite=True).study_name)
    monkeypatch.delenv("TZ")
    time.tzset()
    started = datetime.datetime.fromtimestamp(result.settings["started_at"], datetime.timezone.utc)
    assert names == [f"vmaptune iris {started:%Y-%m-%d %H:%M:%S} UTC"] * 3
    assert optuna.get_all_study_names(storage) == names[:1]


def test_a_metric_where_lower_is_better_is_exported_as_itself_and_minimised():
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))
    result = vt.tune(vt.MLP(hidden=1, units=8), space, vt.load_dataset("diabetes"), vt.RandomSearch(population=4),
                     epochs=2, metric="mse", progress=False)
    study = result.to_optuna()
    assert study.direction == optuna.study.StudyDirection.MINIMIZE and study.metric_names == ["mse"]
    np.testing.assert_allclose([t.value for t in study.trials], -result.members["score"], rtol=1e-6)
    assert min(t.value for t in study.trials) > 0 and study.best_value == pytest.approx(-result.best_score)


def test_a_member_whose_folds_stopped_at_different_epochs_is_complete_not_pruned():
    """cv= with early stopping: a member trained as long as its longest fold (epochs_trained); one
    whose folds stopped apart was exported PRUNED, without a value, and the study's best was not
    the table's."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), momentum=vt.OneMinusLogUniform(0.5, 0.99))
    result = vt.tune(vt.MLP(), space, vt.load_dataset("diabetes"), vt.RandomSearch(population=16), epochs=6, cv=3,
                     seed=0, metric="mse", early_stopping=vt.EarlyStopping(patience=2), progress=False)
    table = result.members
    assert (table["epochs_trained"][table["status"] == "ok"] == 6).all() and "pruned" not in set(table["status"])
    assert (table["best_epoch"] <= table["epochs_trained"]).all()
    study = result.to_optuna()
    assert States.PRUNED not in {t.state for t in study.trials}  # nothing pruned them
    assert study.best_value == pytest.approx(-result.best_score) and study.best_trial.number == result.best_index


def test_a_running_search_keeps_its_study_up_to_date_round_by_round(tmp_path, hyperband):
    storage = f"sqlite:///{tmp_path / 'live.db'}"
    export, seen = vt.OptunaExport(storage, "live"), []

    def on_round(results):  # what optuna-dashboard would show after each round
        export(results)
        seen.append([t.user_attrs["member"] for t in optuna.load_study(study_name="live", storage=storage).trials])

    result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0)),
                     vt.load_dataset("iris"), vt.RandomSearch(population=4, rounds=2), epochs=1, progress=False,
                     on_round=on_round)
    assert seen == [[0, 1, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7]]
    values = [t.value for t in optuna.load_study(study_name="live", storage=storage).trials]
    np.testing.assert_allclose(values, result.members["score"], rtol=1e-6)
    with pytest.raises(ValueError, match=r"study_name='live' in .* was exported from another run \(model: the "
                                         r"study's .MLP\(hidden=1, units=8,.*this run's .MLP\(hidden=1, units=128,.*\): "
                                         r"append only the run that made the study, pass overwrite=True to "
                                         r"replace it, or another study_name"):
        hyperband[0].to_optuna(storage, "live", append=True)
    with pytest.warns(UserWarning, match=r"OptunaExport: the study 'live' in .* was not updated after round 3: "
                                         r"study_name='live' .* was exported from another run .* another "
                                         r"study_name\. The search goes on"):  # (a failing view never ends a search; one period)
        export(hyperband[0])


def test_a_live_export_adds_each_round_and_ends_with_the_study_a_single_export_makes(tmp_path, monkeypatch):
    """After its first round the live export only adds the new round's trials (reading the whole
    study each round grew with it); the study it ends with is the one exported at the end."""
    from vmaptune import optuna_study

    full_exports, export = [], optuna_study.to_optuna
    monkeypatch.setattr(optuna_study, "to_optuna", lambda *a, **k: full_exports.append(1) or export(*a, **k))
    live, once = f"sqlite:///{tmp_path / 'live.db'}", f"sqlite:///{tmp_path / 'once.db'}"
    result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0)),
                     vt.load_dataset("iris"), vt.RandomSearch(population=4, rounds=3), epochs=4, progress=False,
                     early_stopping=vt.EarlyStopping(patience=1), on_round=vt.OptunaExport(live, "s"))
    assert len(full_exports) == 1  # the first round's; the others were added
    result.to_optuna(once, "s")
    a, b = (optuna.load_study(study_name="s", storage=s) for s in (live, once))
    assert len(a.trials) == len(b.trials) == 12 and a.user_attrs == b.user_attrs and a.direction == b.direction
    for x, y in zip(a.trials, b.trials):
        assert (x.number, x.state, x.params, x.distributions, x.intermediate_values, x.user_attrs) == \
            (y.number, y.state, y.params, y.distributions, y.intermediate_values, y.user_attrs)
        assert x.value == pytest.approx(y.value, nan_ok=True)


def test_an_append_takes_only_its_own_run_and_brings_a_later_refit_s_test_scores(tmp_path):
    """Another run of the same seed and space (the same members and parameters) is refused by its
    settings; a refit after the study's trials finished reaches the study's attributes; a trial's
    score attributes are in the metric's own sense, as its value."""
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))
    tune = lambda epochs, **kw: vt.tune(vt.MLP(hidden=1, units=8), space, vt.load_dataset("diabetes"),  # noqa: E731
                                        vt.RandomSearch(population=3), epochs=epochs, metric="mse", progress=False, **kw)
    first = tune(1, run_dir=str(tmp_path / "run"))
    first.to_optuna(storage, "s")
    with pytest.raises(ValueError, match=r"study_name='s' in .* was exported from another run \(epochs: the study's 1, "
                                         r"this run's 2\): append only the run that made the study"):
        tune(2).to_optuna(storage, "s", append=True)
    refit = tune(1, run_dir=str(tmp_path / "run"), resume=True, refit=2)  # the refit of the finished run, then
    study = refit.to_optuna(storage, "s", append=True)
    tested = refit.members["test_score"].notna()
    assert study.user_attrs["test_scores"] == {str(i): pytest.approx(-refit.members["test_score"][i])
                                              for i in np.flatnonzero(tested)}
    assert study.user_attrs["vmaptune"]["refit"] == 2 and len(study.trials) == 3
    for trial in study.trials:  # mse: positive, minimised, the attributes too
        assert trial.value > 0 and trial.user_attrs["score"] == pytest.approx(trial.value)
        assert trial.user_attrs["best_score"] == pytest.approx(trial.value)
    with pytest.raises(TypeError, match=r"storage=123: give a database URL such as 'sqlite:///runs.db'"):
        first.to_optuna(123)
    with pytest.raises(ValueError, match=r"storage='sqlite:///.*/missing/x.db' cannot be opened as an Optuna storage "
                                         r"\(.*\): give a database URL .* \(its folder must exist\)"):
        vt.OptunaExport(f"sqlite:///{tmp_path / 'missing' / 'x.db'}", "s")  # before any search starts


def test_values_a_strategy_set_outside_the_space_are_exported_as_they_trained(tmp_path):
    """A custom strategy's Decision set warmup_steps=50 with IntUniform(0, 10) (Optuna refused the
    whole export) and learning_rate=0.5 with LogUniform(1e-3, 1e-1) (exported as 0.1): the
    distribution is widened to hold them, the same for every trial (Optuna's importances take a
    parameter only where the trials' distributions agree)."""
    import dataclasses
    import warnings

    @dataclasses.dataclass(frozen=True)
    class Boost(vt.RandomSearch):
        acts_during_training = True

        def decision_epochs(self, state, epochs):
            return [1]

        def decide(self, state, snapshot, key):  # member 0 only
            return state, vt.Decision(hp={"learning_rate": np.full(snapshot.size, 0.5),
                                          "warmup_steps": np.full(snapshot.size, 50)},
                                      update=np.arange(snapshot.size) == 0)

    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), warmup_steps=vt.IntUniform(0, 10),
                     optimizer=vt.Fixed("sgd"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the Decision's warning: values outside the space)
        result = vt.tune(vt.MLP(hidden=1, units=8), space, vt.load_dataset("iris"), Boost(population=2), epochs=2,
                         batch_size=32, progress=False)
    assert result.members["learning_rate"][0] == 0.5 and result.members["warmup_steps"][0] == 50
    study = result.to_optuna(f"sqlite:///{tmp_path / 'runs.db'}", "s")
    assert study.trials[0].params == {"learning_rate": 0.5, "warmup_steps": 50}
    assert study.trials[1].params["learning_rate"] == pytest.approx(result.members["learning_rate"][1], rel=1e-6)
    for trial in study.trials:
        assert trial.distributions == {"learning_rate": optuna.distributions.FloatDistribution(1e-3, 0.5, log=True),
                                       "warmup_steps": optuna.distributions.IntDistribution(0, 50)}
    assert set(optuna.search_space.intersection_search_space(study.trials)) == {"learning_rate", "warmup_steps"}


def test_a_choice_of_numpy_numbers_goes_to_a_database_as_python_numbers(tmp_path):
    # (Optuna's storages keep a categorical's choices as JSON: np.int64 raised "Object of type int64
    # is not JSON serializable", and the search's own OptunaSampler the same)
    space = vt.Space(n_units=vt.Choice(list(np.arange(8, 17, 8))),
                     learning_rate=vt.Choice(list(np.logspace(-2, -1, 2))))
    sampler = vt.OptunaSampler(lambda seed: optuna.samplers.RandomSampler(seed=seed), population=4, rounds=1)
    for strategy in (vt.RandomSearch(population=4), sampler):
        result = vt.tune(vt.MLP(hidden=1), space, vt.load_dataset("iris"), strategy, epochs=1, batch_size=32,
                         progress=False)
        study = result.to_optuna(f"sqlite:///{tmp_path / 'runs.db'}", type(strategy).__name__)
        assert [t.params for t in study.trials] == [
            {"n_units": int(u), "learning_rate": pytest.approx(float(lr))}
            for u, lr in zip(result.members["n_units"], result.members["learning_rate"])]
        assert all(type(t.params["n_units"]) is int for t in study.trials)


def test_an_export_stopped_half_way_leaves_no_study_behind(hyperband, tmp_path, monkeypatch):
    """A Ctrl-C (or an error) while the trials are written: the study this export made is deleted,
    not left empty for the dashboard and for the next export to be refused by."""
    from vmaptune import optuna_study

    result, _ = hyperband
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    writes = optuna_study._trials

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(optuna_study, "_trials", interrupted)
    with pytest.raises(KeyboardInterrupt):
        result.to_optuna(storage, "mine")
    assert optuna.get_all_study_names(storage) == []
    monkeypatch.setattr(optuna_study, "_trials", writes)
    assert len(result.to_optuna(storage, "mine").trials) == len(result.members)
    # a study of that name that was there before (made empty beforehand) is the user's: it stays
    optuna.create_study(storage=storage, study_name="theirs", direction="maximize")
    monkeypatch.setattr(optuna_study, "_trials", interrupted)
    with pytest.raises(KeyboardInterrupt):
        result.to_optuna(storage, "theirs", append=True)
    assert sorted(optuna.get_all_study_names(storage)) == ["mine", "theirs"]


def test_with_evaluate_every_the_curve_is_the_validated_epochs_only():
    """evaluate_every=2 over 5 epochs validates at epochs 2, 4 and 5: epochs 1 and 3 were exported
    too, copies of the score before (the curve carries it on)."""
    result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-2, 3e-1)),
                     vt.load_dataset("iris"), vt.RandomSearch(population=2), epochs=5, batch_size=32, evaluate_every=2,
                     progress=False)
    for trial, curve in zip(result.to_optuna().trials, result.curves["val_score"]):
        assert trial.intermediate_values == {e: pytest.approx(curve[e - 1]) for e in (2, 4, 5)}
        assert trial.value == pytest.approx(curve[-1])


def test_a_trial_refit_at_an_earlier_end_and_no_longer_has_test_score_none(tmp_path):
    """README: the study's test_scores holds None for a trial refit at an earlier end of a run that
    searched on since (and no longer among the best); its key was left out instead."""
    storage, run_dir = f"sqlite:///{tmp_path / 'runs.db'}", str(tmp_path / "run")
    tune = lambda rounds, **kw: vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)),  # noqa: E731
                                        vt.load_dataset("diabetes"), vt.RandomSearch(population=3, rounds=rounds),
                                        epochs=1, metric="mse", progress=False, run_dir=run_dir, **kw)
    tune(1).to_optuna(storage, "s")
    refit = tune(1, resume=True, refit=1)
    assert refit.to_optuna(storage, "s", append=True).user_attrs["test_scores"] == {
        str(refit.best_index): pytest.approx(-refit.test_score)}
    seen = []

    def on_round(results):  # the round searched on, before its refit: the earlier refit is still the run's
        seen.append(vt.OptunaExport(storage, "s")(results) or optuna.load_study(study_name="s", storage=storage)
                    .user_attrs["test_scores"])

    on = tune(2, resume=True, refit=1, on_round=on_round)
    assert seen == [{str(refit.best_index): pytest.approx(-refit.test_score)}]
    study = on.to_optuna(storage, "s", append=True)
    want = {str(refit.best_index): None}  # (every trial was held before the refit: its scores are the study's)
    want.update({str(i): pytest.approx(-t) for i, t in enumerate(on.members["test_score"]) if np.isfinite(t)})
    assert study.user_attrs["test_scores"] == want


def test_bad_arguments_are_refused_with_the_fix_before_anything_trains():
    with pytest.raises(TypeError, match="to_optuna takes the Results of vt.tune or vt.load_results, got dict"):
        vt.optuna_study.to_optuna({})
    with pytest.raises(TypeError, match=r"on_round=3: give a function results -> None"):
        vt.tune(vt.MLP(), vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0)), vt.load_dataset("iris"), on_round=3)
    with pytest.raises(ValueError, match="overwrite=True and append=True contradict each other"):
        vt.optuna_study.to_optuna(vt.Results(vt.Space(x=vt.Uniform(0, 1)), __import__("pandas").DataFrame(), {},
                                             {}, {}), "sqlite://", "x", overwrite=True, append=True)
    with pytest.raises(ValueError, match=r"study_name='': give the study a name"):
        vt.OptunaExport("sqlite://", "")


def _as_exported(study):
    """What an Optuna user sees of each trial (not its times: a trial finished by an append ends then)."""
    return [(t.number, t.state, t.value, t.params, t.distributions, t.intermediate_values, t.user_attrs)
            for t in study.trials]


def test_an_interrupted_run_exported_then_resumed_and_appended_is_its_fresh_export(tmp_path, capsys):
    """Ctrl-C in round 1 (its members saved 'interrupted', 2 of 3 epochs), exported; the run
    resumed and appended (by `vmaptune export --append` and by vt.OptunaExport during the resume):
    the study is the finished run's fresh export (no trial left FAIL)."""
    import signal

    from vmaptune import interrupts, population

    run_dir, storage = str(tmp_path / "run"), f"sqlite:///{tmp_path / 'runs.db'}"
    args = (vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0)), vt.load_dataset("iris"),
            vt.RandomSearch(population=4, rounds=2))
    small = dict(epochs=3, batch_size=32, seed=3, progress=False)
    record, chunks = population.PopulationRun._record, {"n": 0}

    def record_then_ctrl_c(self, *a, **k):
        record(self, *a, **k)
        chunks["n"] += 1
        if chunks["n"] == 5:  # round 1, epoch 2 of 3: a Ctrl-C, held to the chunk's end (there is a run_dir)
            interrupts._STATE["pending"] = signal.SIGINT

    with pytest.MonkeyPatch.context() as patch, pytest.warns(UserWarning, match=r"interrupted: returning 1 finished"):
        patch.setattr(population.PopulationRun, "_record", record_then_ctrl_c)
        vt.tune(*args, run_dir=run_dir, **small)
    interrupted = vt.load_results(run_dir)
    assert interrupted.members["status"].tolist()[4:] == ["interrupted"] * 4
    assert main(["export", run_dir, "--optuna", storage, "--study-name", "cli"]) == 0  # the user's report
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"8 trials in study 'cli' of {storage} (4 complete, 4 running); see them with: optuna-dashboard {storage}",
        "the 4 running trials are the members of the interrupted round: after `vmaptune run ... --resume`, export "
        "with --append to finish them."]
    for name in ("live", "legacy"):
        study = interrupted.to_optuna(storage, name)
    assert [t.state for t in study.trials] == [States.COMPLETE] * 4 + [States.RUNNING] * 4  # not finished: resumable
    assert [len(t.intermediate_values) for t in study.trials] == [3] * 4 + [2] * 4
    # a running member's values may still change (PBT's do): its trial gets them once it finishes
    assert [bool(t.params) for t in study.trials] == [True] * 4 + [False] * 4
    legacy = optuna.load_study(study_name="legacy", storage=storage).trials  # as vmaptune exported them before: FAIL
    optuna.delete_study(study_name="legacy", storage=storage)
    old = optuna.create_study(storage=storage, study_name="legacy", direction="maximize")
    old.add_trials([t if t.state != States.RUNNING else optuna.trial.create_trial(
        state=States.FAIL, params=t.params, distributions=t.distributions, user_attrs=t.user_attrs,
        intermediate_values=t.intermediate_values) for t in legacy])
    assert [t.state for t in old.trials] == [States.COMPLETE] * 4 + [States.FAIL] * 4

    finished = vt.tune(*args, run_dir=run_dir, resume=True, on_round=vt.OptunaExport(storage, "live"), **small)
    assert not finished.settings.get("interrupted") and set(finished.members["status"]) == {"ok"}
    assert main(["export", run_dir, "--optuna", storage, "--study-name", "cli", "--append"]) == 0
    assert "(8 complete)" in capsys.readouterr().out
    want = _as_exported(finished.to_optuna())
    assert [w[1] for w in want] == [States.COMPLETE] * 8 and [len(w[5]) for w in want] == [3] * 8
    for name in ("cli", "live"):
        assert _as_exported(optuna.load_study(study_name=name, storage=storage)) == want, name
    finished.to_optuna(storage, "cli", append=True)  # again: nothing changes
    assert _as_exported(optuna.load_study(study_name="cli", storage=storage)) == want
    with pytest.raises(ValueError, match=r"study_name='legacy' in 'sqlite:///.*runs.db': trials 4-7 were exported "
                                         r"as FAIL while their members were interrupted, and those members have "
                                         r"finished since; a finished trial cannot be changed: pass overwrite=True "
                                         r"to export the run anew\."):
        finished.to_optuna(storage, "legacy", append=True)
    assert _as_exported(finished.to_optuna(storage, "legacy", overwrite=True)) == want


def test_members_pruned_before_the_interrupt_stay_running_until_an_append_finishes_them(tmp_path):
    """Successive halving cut short in its last rung: the members it pruned before read 'pruned',
    but a strategy may still copy a network into one (PBT's exploit does), and Optuna cannot change
    a finished trial; so the whole round is RUNNING, and the append after the resume ends as a
    fresh export (final scores and all)."""
    import signal

    from vmaptune import interrupts, population

    run_dir, storage = str(tmp_path / "run"), f"sqlite:///{tmp_path / 'runs.db'}"
    args = (vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0)), vt.load_dataset("iris"),
            vt.SuccessiveHalving(population=8, min_epochs=1, eta=2))
    small = dict(epochs=4, batch_size=32, seed=3, progress=False)
    record, chunks = population.PopulationRun._record, {"n": 0}

    def record_then_ctrl_c(self, *a, **k):
        record(self, *a, **k)
        chunks["n"] += 1
        if chunks["n"] == 3:  # the last rung (epochs 3-4), after two cuts
            interrupts._STATE["pending"] = signal.SIGINT

    with pytest.MonkeyPatch.context() as patch, pytest.warns(UserWarning, match=r"interrupted: returning 0 finished"):
        patch.setattr(population.PopulationRun, "_record", record_then_ctrl_c)
        vt.tune(*args, run_dir=run_dir, **small)
    interrupted = vt.load_results(run_dir)
    assert "pruned" in set(interrupted.members["status"]) and "interrupted" in set(interrupted.members["status"])
    study = interrupted.to_optuna(storage, "s")
    assert [t.state for t in study.trials] == [States.RUNNING] * 8
    finished = vt.tune(*args, run_dir=run_dir, resume=True, **small)
    finished.to_optuna(storage, "s", append=True)
    assert _as_exported(optuna.load_study(study_name="s", storage=storage)) == _as_exported(finished.to_optuna())


def test_a_run_interrupted_between_rounds_exports_its_last_round_finished(tmp_path):
    """A Ctrl-C as round 0's last epoch ends: the round finished (no member of it 'interrupted'), so
    its trials are COMPLETE, as the run's on_round export had them, not RUNNING."""
    import signal

    from vmaptune import interrupts, population

    run_dir, storage = str(tmp_path / "run"), f"sqlite:///{tmp_path / 'runs.db'}"
    record, chunks = population.PopulationRun._record, {"n": 0}

    def record_then_ctrl_c(self, *a, **k):
        record(self, *a, **k)
        chunks["n"] += 1
        if chunks["n"] == 3:  # round 0's last epoch of 3
            interrupts._STATE["pending"] = signal.SIGINT

    with pytest.MonkeyPatch.context() as patch, pytest.warns(UserWarning, match=r"interrupted: returning 1 finished"):
        patch.setattr(population.PopulationRun, "_record", record_then_ctrl_c)
        result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0)),
                         vt.load_dataset("iris"), vt.RandomSearch(population=4, rounds=2), epochs=3, batch_size=32,
                         seed=3, progress=False, run_dir=run_dir, on_round=vt.OptunaExport(storage, "live"))
    assert result.settings["interrupted"] and result.members["status"].tolist() == ["ok"] * 4
    study = vt.load_results(run_dir).to_optuna(storage, "exported")
    assert [t.state for t in study.trials] == [States.COMPLETE] * 4
    assert _as_exported(study) == _as_exported(optuna.load_study(study_name="live", storage=storage))


def test_a_study_says_when_its_values_are_in_standardised_units_and_a_searched_batch_size(tmp_path):
    """A built-in regression error is scored on standardised targets: the study says so and gives the
    factor back to the targets' units; a searched batch size is said as searched, not the default."""
    data = vt.load_dataset("diabetes")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), batch_size=vt.Choice([16, 32]))
    storage = f"sqlite:///{tmp_path / 's.db'}"
    result = vt.tune(vt.MLP(hidden=1, units=8), space, data, vt.RandomSearch(population=4, rounds=2), epochs=1,
                     metric="mae", progress=False, on_round=vt.OptunaExport(storage, "s"))
    attributes = optuna.load_study(study_name="s", storage=storage).user_attrs["vmaptune"]
    assert attributes["batch_size"] == "searched: each trial's batch_size"
    factor = float(attributes["units"].split("y_std = ")[1].split()[0])
    assert factor == pytest.approx(float(data.y_std), rel=1e-5) and attributes["units"].startswith("mae of standardised")
    result.to_optuna(storage, "s", append=True)  # (an append compares the settings the same way)
    r2 = vt.tune(vt.MLP(hidden=1, units=8), space, data, vt.RandomSearch(population=2), epochs=1, metric="r2",
                 progress=False)
    assert "units" not in r2.to_optuna().user_attrs["vmaptune"]  # r2 needs no unit


def test_errors_in_the_targets_own_units_under_a_built_in_name_are_not_said_standardised():
    """PopulationSearchCV's MSE of several targets, and a vt.Metric of yours named "mae", are in the
    targets' own units: the study and the summary said they were standardised, to be multiplied by
    y_std**2 (scaled twice)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    Y = np.c_[X[:, 0], 100 * X[:, 1] + 5]
    search = vt.PopulationSearchCV(vt.MLPRegressor(epochs=1, batch_size=32), {"learning_rate": [1e-3, 1e-2]}, n_iter=2,
                                   cv=2, scoring="neg_mean_squared_error", refit=False).fit(X, Y)
    mae = vt.Metric("mae", "regression", lambda out, y: jnp.mean(jnp.abs(out[:, 0] - y)), greater_is_better=False)
    mine = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)),
                   vt.load_dataset("diabetes"), vt.RandomSearch(population=2), epochs=1, metric=mae, progress=False)
    for results in (search.search_results_, mine):
        assert "units" not in results.to_optuna().user_attrs["vmaptune"]
        assert "standardised" not in results.summary()
    # a Metric of yours marked standardised=True is what the built-in is: said so
    own = vt.Metric("mae", "regression", lambda out, y: jnp.mean(jnp.abs(out[:, 0] - y)), greater_is_better=False,
                    standardised=True)
    scaled = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)),
                     vt.load_dataset("diabetes"), vt.RandomSearch(population=2), epochs=1, metric=own, progress=False)
    assert scaled.to_optuna().user_attrs["vmaptune"]["units"].startswith("mae of standardised targets")


def test_a_study_exported_before_values_were_written_as_given_still_takes_appends():
    """An older export wrote float64's reading of float32 values (0.10000000149, and 1 - x with
    x's float32 noise near 1): the trial an append compares matches them, and nothing else."""
    from vmaptune.optuna_study import _same_params

    momentum = np.float32(0.9990000128746033)  # a float32 value near 1
    older = {"learning_rate": float(np.float32(0.1)), "one_minus_momentum": 1.0 - float(momentum), "act": "relu"}
    now = {"learning_rate": 0.1, "one_minus_momentum": float(f"{1 - float(str(momentum)):.15g}"), "act": "relu"}
    assert older != now and _same_params(older, now)
    assert not _same_params(older, {**now, "learning_rate": 0.1001})
    assert not _same_params(older, {**now, "one_minus_momentum": 0.0011})
    assert not _same_params(older, {**now, "act": "tanh"})
    # the near-1 reading is for one_minus_ values only: 0.0 and 2e-8 of another name differ
    assert not _same_params({"dropout": 0.0}, {"dropout": 2e-8})


def test_a_study_made_beforehand_in_the_other_direction_is_refused_not_filled(hyperband, tmp_path, capsys):
    """optuna.create_study's default direction (and optuna-dashboard's "Create study") is minimize:
    filled with accuracies, its best trial would be the worst member. Optuna cannot change a
    study's direction, so every way into such a study refuses it, the command line before training."""
    result, _ = hyperband
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    for name in ("appended", "live", "demo"):
        optuna.create_study(storage=db, study_name=name)  # direction: minimize
    fix = r"Optuna cannot change a study's direction:"
    with pytest.raises(ValueError, match=rf"study_name='appended' in '{db}' is set to minimize, but higher is better "
                                         rf"for this run's accuracy: its best trial would be the worst member. {fix} "
                                         r"pass overwrite=True to replace it, or another study_name \(a study made "
                                         r"beforehand must be made with optuna.create_study\(..., "
                                         r"direction='maximize'\)\)"):
        result.to_optuna(db, "appended", append=True)
    with pytest.raises(ValueError, match=r"study_name='appended' in .* is set to minimize"):
        result.to_optuna(db, "appended")  # (not first told to append, then of the direction)
    export = vt.OptunaExport(db, "live")
    with pytest.warns(UserWarning, match="OptunaExport: the study 'live' .* not updated .* is set to minimize"):
        export(result)  # (an export that fails warns: the search goes on)
    assert "is set to minimize" in export.error
    out = tmp_path / "demo"
    assert main(["demo", "--population", "4", "--epochs", "1", "--out", str(out), "--no-progress", "--optuna", db]) == 2
    assert re.search(rf"study 'demo' in '{re.escape(db)}' is set to minimize, but higher is better .* {fix} "
                     r"pass --study-name NAME for another study, or --overwrite to replace it \(and start the run "
                     r"anew\); a study made beforehand must be made with direction='maximize'", capsys.readouterr().err)
    assert not (out / "members.csv").exists()  # refused before anything trained
    for name in ("appended", "live", "demo"):
        assert optuna.load_study(study_name=name, storage=db).trials == []
    # an error where lower is better, into a study made to maximise: refused the other way
    optuna.create_study(storage=db, study_name="mse", direction="maximize")
    errors = vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)),
                     vt.load_dataset("diabetes"), vt.RandomSearch(population=2), epochs=1, metric="mse", progress=False)
    with pytest.raises(ValueError, match=r"is set to maximize, but lower is better for this run's mse"):
        errors.to_optuna(db, "mse", append=True)
    assert len(errors.to_optuna(db, "mse", overwrite=True).trials) == 2  # the fix it names
    optuna.create_study(storage=db, study_name="two", directions=["maximize", "minimize"])
    with pytest.raises(ValueError, match=r"study_name='two' in .* has 2 objectives \(maximize, minimize\), but this "
                                         r"run gives each trial one value, its accuracy: pass overwrite=True"):
        result.to_optuna(db, "two", append=True)


def test_one_minus_values_are_the_decimals_the_table_shows():
    """1 - 0.96423376 is 0.03576624, not float64's 0.03576623999999995 (the dashboard's parameter
    table showed 0.0357662399999999)."""
    from vmaptune.optuna_study import _optuna_values

    dist = vt.OneMinusLogUniform(0.5, 0.99)
    values = _optuna_values(dist, optuna.distributions.FloatDistribution(0.01, 0.5, log=True),
                            np.float32([0.96423376, 0.99, 0.5, 0.9, 0.4]))
    assert values == [0.03576624, 0.01, 0.5, 0.1, 0.6]  # (0.4: set outside the space by a strategy of yours)
    rates = _optuna_values(vt.LogUniform(1e-3, 0.1), optuna.distributions.FloatDistribution(1e-3, 0.1, log=True),
                           np.float32([0.05, 0.4]))
    assert rates == [0.05, 0.4]


def test_one_minus_bounds_are_the_decimals_given():
    """OneMinusLogUniform(0.9, 0.99999)'s one_minus_ bounds were float64's 1 - 0.99999,
    9.99999999995449e-06, shown so in the dashboard."""
    from vmaptune.optuna_study import _as_given

    dist = vt.OneMinusLogUniform(0.9, 0.99999)
    given = _as_given(optuna.distributions.FloatDistribution(1.0 - 0.99999, 1.0 - 0.9, log=True), dist)
    assert (given.low, given.high, given.log) == (1e-05, 0.1, True)


def test_a_live_export_into_a_study_it_cannot_fill_is_refused_before_anything_trains(tmp_path):
    """vt.OptunaExport into a study of the other direction, or one holding another run's trials,
    would warn after every round of a long search and fill nothing: vt.tune refuses it before the
    first round trains (the run directory holds no round); overwrite=True replaces it, the fix named."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    optuna.create_study(storage=db, study_name="made")  # direction: minimize
    args = (vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
            vt.RandomSearch(population=2))
    with pytest.raises(ValueError, match=r"study_name='made' in .* is set to minimize, but higher is better for this "
                                         r"run's accuracy: .* pass overwrite=True to replace it"):
        vt.tune(*args, epochs=1, progress=False, run_dir=str(tmp_path / "run"),
                on_round=vt.OptunaExport(db, "made"))
    assert not (tmp_path / "run" / "members.csv").exists()
    replacing = vt.OptunaExport(db, "made", overwrite=True)
    for _ in range(2):  # (a notebook cell run again with one export: each run's first export replaces the study)
        first = vt.tune(*args, epochs=1, progress=False, on_round=replacing)
        assert len(optuna.load_study(study_name="made", storage=db).trials) == 2
    edited = copy.copy(first)  # (the cell run again after an edit the run's identity does not show: other scores)
    edited.members = first.members.assign(score=first.members["score"] / 2)
    replacing.before_search(None, first.metric)
    replacing(edited)
    values = [t.value for t in optuna.load_study(study_name="made", storage=db).trials]
    np.testing.assert_allclose(values, edited.members["score"], rtol=1e-6)
    with pytest.raises(ValueError, match=r"study_name='made' in .* already holds 2 trials of another run"):
        vt.tune(*args, epochs=1, progress=False, run_dir=str(tmp_path / "again"), on_round=vt.OptunaExport(db, "made"))
    assert not (tmp_path / "again" / "members.csv").exists()
