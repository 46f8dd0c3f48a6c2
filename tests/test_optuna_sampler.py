"""The Optuna bridge: Optuna samplers propose populations through ask/tell."""

import dataclasses
import importlib.util
import sys

import jax
import numpy as np
import optuna  # an optional extra (vmaptune[optuna]) that the test environment must install
import pytest

import vmaptune as vt
from vmaptune.space import Choice, Fixed, IntLogUniform, IntUniform, LogUniform, OneMinusLogUniform, Space, Uniform
from vmaptune.strategies.optuna_sampler import OptunaSampler
from vmaptune.strategies.pbt import PBTReplay, PBTSchedule
from vmaptune.strategies.random_search import RandomSearch
from vmaptune.testing_functions import BRANIN

optuna.logging.set_verbosity(optuna.logging.WARNING)

MIXED = Space(
    lr=LogUniform(1e-4, 1e-1),
    momentum=OneMinusLogUniform(0.9, 0.999),
    width=IntLogUniform(8, 512),
    depth=IntUniform(1, 4),
    act=Choice(["relu", "tanh", 3]),
    opt=Fixed("adam"),
    dropout=Uniform(0.0, 0.5),
)


def tpe(seed):
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)


def test_proposals_are_inside_the_space_and_scores_reach_the_study():
    strategy = OptunaSampler(optuna.samplers.RandomSampler(seed=0), population=5, rounds=2)
    state = strategy.init(MIXED, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(1))
    assert MIXED.check_population(hp) == 5
    for row in MIXED.decode(hp):
        assert 1e-4 <= row["lr"] <= 1e-1 and 0.9 <= row["momentum"] <= 0.999
        assert 8 <= row["width"] <= 512 and 1 <= row["depth"] <= 4
        assert row["act"] in ("relu", "tanh", 3) and row["opt"] == "adam" and 0 <= row["dropout"] <= 0.5
    scores = np.array([1.0, np.nan, 3.0, np.inf, 0.5])
    state = strategy.tell(state, hp, scores)
    trials = state.study.trials
    # a member without a score (diverged) is told the worst score seen, as vmaptune ranks it last
    # (a FAIL trial, which TPE skips, taught the sampler nothing)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    assert [t.value for t in trials] == [1.0, 0.5, 3.0, 0.5, 0.5]
    assert [t.user_attrs.get("no_score", False) for t in trials] == [False, True, False, True, False]
    first = OptunaSampler(optuna.samplers.RandomSampler(seed=0), population=2, rounds=1)
    alone = first.init(MIXED, jax.random.key(0))
    hp2, alone = first.ask(alone, jax.random.key(1))
    alone = first.tell(alone, hp2, np.array([np.nan, np.nan]))  # nothing scored yet: nothing to tell
    assert [t.state.name for t in alone.study.trials] == ["FAIL", "FAIL"]
    # Optuna sees the values we decode (1 - momentum on its log scale, the option itself).
    row = MIXED.decode(hp)[0]
    params = trials[0].params
    assert params["one_minus_momentum"] == pytest.approx(1 - row["momentum"], rel=1e-5)
    assert params["act"] == row["act"] and params["width"] == row["width"]
    assert "opt" not in params
    assert not strategy.done(state)


def test_enqueued_settings_train_first_in_the_spaces_own_names_and_values():
    """A warm start: enqueue= takes settings as the table and best_params show them (momentum, not
    Optuna's one_minus_momentum; an option, not its index); a name a setting leaves out is the
    sampler's; the members after them are the sampler's; in vt.tune the first rows train them,
    on a conditional space too (where Optuna asks only for the names in use)."""
    space = Space(learning_rate=LogUniform(1e-3, 1e-1), momentum=OneMinusLogUniform(0.5, 0.99),
                  activation=Choice(["relu", "tanh"]), optimizer=Fixed("sgd"))
    strategy = OptunaSampler(tpe, population=4, enqueue=[{"learning_rate": 0.01, "momentum": 0.95},
                                                         {"activation": "tanh", "optimizer": "sgd"}])
    # (its repr, which a run_dir records and a resume compares, is as before: older runs resume)
    assert repr(strategy).endswith(", rounds=1)") and "enqueue" not in repr(strategy)
    result = vt.tune(vt.MLP(hidden=1, units=4), space, vt.load_dataset("iris"), strategy, epochs=1, batch_size=32,
                     progress=False)
    rows = result.to_dataframe()
    assert rows.loc[0, ["learning_rate", "momentum"]].tolist() == [0.01, 0.95]
    assert rows.loc[1, "activation"] == "tanh" and rows.loc[1, "learning_rate"] != 0.01
    assert rows["learning_rate"].nunique() == 4
    conditional = Space(optimizer=Choice(["sgd", "adam"]), learning_rate=LogUniform(1e-3, 1e-1),
                        momentum=OneMinusLogUniform(0.5, 0.99)).only_when("momentum", optimizer="sgd")
    given = OptunaSampler(tpe, population=2, enqueue={"optimizer": "adam", "learning_rate": 0.02})  # (one setting)
    hp, _ = given.ask(given.init(conditional, jax.random.key(0)), jax.random.key(1))
    assert {k: v for k, v in conditional.decode(hp)[0].items() if k != "momentum"} == \
        {"optimizer": "adam", "learning_rate": 0.02}


@pytest.mark.parametrize("setting, error, told", [
    ({"one_minus_momentum": 0.05}, ValueError, r"enqueue\[0\] names \['one_minus_momentum'\], not in the space "
     r"\['lr', .*'one_minus_momentum' is Optuna's name of 'momentum': give 'momentum' and its own value"),
    ({"dropuot": 0.1}, ValueError, r"enqueue\[0\] names \['dropuot'\], not in the space .* Did you mean 'dropout'\?"),
    ({"lr": 1.0}, ValueError, r"enqueue\[0\]\['lr'\] = 1\.0 is outside the space's LogUniform\(low=0\.0001, high=0\.1\); "
     r"give a value inside it"),
    ({"act": "gelu"}, ValueError, r"enqueue\[0\]\['act'\] = 'gelu': 'gelu' is not one of the options \['relu', 'tanh', 3\]"),
    ({"depth": 2.5}, ValueError, r"enqueue\[0\]\['depth'\] = 2\.5: IntUniform\(low=1, high=4\) takes whole numbers"),
    ({"opt": "sgd"}, ValueError, r"enqueue\[0\]\['opt'\] = 'sgd', but the space fixes opt at 'adam'; leave it out"),
    ("lr=0.01", TypeError, r"enqueue must be a list of settings, each a dict of the space's names and values, got "
     r"\['lr=0.01'\]"),
], ids=["optunas-name", "misspelt", "outside", "not-an-option", "not-whole", "fixed-otherwise", "not-a-dict"])
def test_an_enqueued_setting_the_space_cannot_hold_is_refused_before_anything_trains(setting, error, told):
    """Optuna itself drops a name it does not know, and a value outside a distribution, without a word."""
    with pytest.raises(error, match=told):
        OptunaSampler(tpe, population=2, enqueue=[setting]).init(MIXED, jax.random.key(0))


def test_a_trial_enqueued_on_the_study_in_the_spaces_names_is_warned_about():
    """Optuna knows momentum as one_minus_momentum, and drew it where a user enqueued momentum=0.95."""
    strategy = OptunaSampler(tpe, population=2)
    state = strategy.init(MIXED, jax.random.key(0))
    state.study.enqueue_trial({"lr": 0.01, "momentum": 0.95})
    with pytest.warns(UserWarning, match=r"a trial enqueued on the study names \['momentum'\], which Optuna is not "
                                         r"given .*Pass the settings as vt.OptunaSampler\(\.\.\., enqueue="):
        strategy.ask(state, jax.random.key(1))


def test_scores_reach_the_study_as_given_not_through_float32():
    strategy = OptunaSampler(optuna.samplers.RandomSampler(seed=0), population=3, rounds=1)
    state = strategy.init(MIXED, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(1))
    scores = np.array([0.1, 1e39, 1e8 - 1e-3])  # (float32 read 0.10000000149, inf, and 1e8)
    state = strategy.tell(state, hp, scores)
    assert [t.value for t in state.study.trials] == scores.tolist()


def test_points_optuna_did_not_propose_are_added_as_finished_trials():
    strategy = OptunaSampler(tpe, population=4, rounds=3)
    state = strategy.init(MIXED, jax.random.key(0))
    _, state = strategy.ask(state, jax.random.key(1))
    other = MIXED.sample(jax.random.key(7), 4)
    state = strategy.tell(state, other, np.array([2.0, np.nan, 1.0, 0.0]))
    added = [t for t in state.study.trials if t.state.name in ("COMPLETE", "FAIL")]
    assert len(added) == 4 and added[0].value == 2.0 and added[1].value == 0.0 and added[1].user_attrs["no_score"]
    assert added[2].params["depth"] == int(other["depth"][2])


def test_seeded_factory_repeats_with_the_same_key():
    def proposals(key):
        strategy = OptunaSampler(tpe, population=8, rounds=2)
        state = strategy.init(BRANIN.space, key)
        out = []
        while not strategy.done(state):
            hp, state = strategy.ask(state, None)
            out.append(np.asarray(hp["x1"]))
            state = strategy.tell(state, hp, -BRANIN(hp))
        return np.concatenate(out)

    a, b, c = proposals(jax.random.key(0)), proposals(jax.random.key(0)), proposals(jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_tpe_beats_random_search_on_branin():
    def regret(strategy, seed):
        state = strategy.init(BRANIN.space, jax.random.key(seed))
        values = []
        while not strategy.done(state):
            hp, state = strategy.ask(state, jax.random.fold_in(jax.random.key(seed), state.round + 1))
            f = BRANIN(hp)
            values.extend(f)
            state = strategy.tell(state, hp, -f)
        return BRANIN.regret(values)

    seeds = range(3)
    tpe_regret = np.median([regret(OptunaSampler(tpe, population=8, rounds=10), s) for s in seeds])
    rs_regret = np.median([regret(RandomSearch(population=8, rounds=10), s) for s in seeds])
    assert tpe_regret < rs_regret


def test_bad_input_messages():
    with pytest.raises(TypeError, match=r"sampler must be an Optuna sampler or a function seed -> sampler, got 'tpe'.*TPESampler\(seed=0\)"):
        OptunaSampler("tpe")
    with pytest.raises(ValueError, match=r"population must be an integer >= 1, got 0"):
        OptunaSampler(tpe, population=0)
    with pytest.raises(ValueError, match=r"rounds must be an integer >= 1, got 0"):
        OptunaSampler(tpe, rounds=0)
    with pytest.raises(TypeError, match=r"the sampler function returned 3, not an Optuna sampler"):
        OptunaSampler(lambda seed: 3).init(BRANIN.space, jax.random.key(0))


def test_missing_optuna_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # makes `import optuna` raise ImportError
    with pytest.raises(ImportError, match=r"pip install vmaptune\[optuna\]"):
        OptunaSampler(object())


def test_a_sampler_needing_a_package_not_installed_is_refused_before_anything_trains(monkeypatch):
    # (GPSampler imports torch only at its first proposal from a model: round 2's ask, after round 1 trained)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else find_spec(name, *a))
    data = vt.load_dataset("iris")
    for sampler in (optuna.samplers.GPSampler(seed=0), lambda seed: optuna.samplers.GPSampler(seed=seed)):
        with pytest.raises(ImportError, match=r"Optuna's GPSampler needs torch, which is not installed .* pip install "
                                              r"torch; or use optuna.samplers.TPESampler"):
            vt.tune(vt.MLP(), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), data,
                    vt.OptunaSampler(sampler, population=4, rounds=2), epochs=1, progress=False)
    OptunaSampler(tpe, population=4).init(MIXED, jax.random.key(0))  # (TPE needs nothing more)
    wrapped = optuna.samplers.PartialFixedSampler({}, optuna.samplers.GPSampler(seed=0))  # (found inside)
    with pytest.raises(ImportError, match=r"Optuna's GPSampler needs torch"):
        OptunaSampler(wrapped, population=4).init(MIXED, jax.random.key(0))

    class GPSampler(optuna.samplers.RandomSampler):  # a class of the user's own, named as Optuna's
        pass

    OptunaSampler(GPSampler(seed=0), population=4).init(MIXED, jax.random.key(0))


def test_cma_es_without_cmaes_is_refused_only_where_it_would_import_it(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else find_spec(name, *a))
    with pytest.raises(ImportError, match=r"Optuna's CmaEsSampler needs cmaes, .* pip install cmaes"):
        OptunaSampler(optuna.samplers.CmaEsSampler(seed=0), population=4).init(MIXED, jax.random.key(0))
    options = Space(act=Choice(["relu", "tanh"]), width=Choice([8, 16]))  # (CMA-ES leaves options to its TPE)
    OptunaSampler(optuna.samplers.CmaEsSampler(seed=0), population=4).init(options, jax.random.key(0))


def test_a_sampler_class_or_a_function_without_the_seed_is_refused():
    with pytest.raises(TypeError, match=r"sampler is the class TPESampler, not a sampler. Pass an instance"):
        OptunaSampler(optuna.samplers.TPESampler, population=4)
    with pytest.raises(TypeError, match=r"must take one argument, the seed"):
        OptunaSampler(lambda: optuna.samplers.TPESampler(), population=4)


def _nsga(seed):
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=4)


def test_a_sampler_holding_a_lock_checkpoints_and_resumes_to_the_uninterrupted_run(tmp_path):
    """NSGA-II guards itself with a thread lock, which pickle refuses: the run directory's
    checkpoint failed after the first round trained. A lock is saved as a new one."""
    import shutil

    import pandas as pd

    import vmaptune as vt

    data = vt.load_dataset("iris")
    space = Space(learning_rate=LogUniform(1e-3, 3e-1), momentum=OneMinusLogUniform(0.5, 0.95))
    args = (vt.MLP(hidden=1, units=8), space, data, OptunaSampler(_nsga, population=4, rounds=3))
    small = dict(epochs=2, batch_size=16, seed=1, progress=False)
    whole = vt.tune(*args, run_dir=str(tmp_path / "whole"), **small)
    cut = tmp_path / "cut"  # the same run, killed after its second round (its last checkpoint removed)
    shutil.copytree(tmp_path / "whole", cut)
    steps = sorted(int(p.name) for p in (cut / "checkpoints").iterdir() if p.name.isdigit())
    shutil.rmtree(cut / "checkpoints" / str(steps[-1]))
    resumed = vt.tune(*args, run_dir=str(cut), resume=True, **small)
    pd.testing.assert_frame_equal(resumed.members, whole.members)


def test_a_resume_given_a_sampler_with_other_options_names_them_and_goes_on_with_the_saved_one(tmp_path):
    """The study saved in the checkpoint holds the run's sampler: one given with other options was
    silently not used. It is named; the run goes on as it started (a fresh run's continuation)."""
    import warnings

    import pandas as pd

    import vmaptune as vt

    space = Space(learning_rate=LogUniform(1e-3, 3e-1))
    small = dict(epochs=1, batch_size=16, seed=1, progress=False)
    tpe = lambda **kw: OptunaSampler(optuna.samplers.TPESampler(seed=1, **kw), population=2, rounds=2)  # noqa: E731
    data, model, run_dir = vt.load_dataset("iris"), vt.MLP(hidden=1, units=4), str(tmp_path / "r")
    done = vt.tune(model, space, data, tpe(), run_dir=run_dir, **small)
    with pytest.warns(UserWarning, match=r"goes on with the TPESampler its study saved; the sampler given has other "
                                         r"options \(n_startup_trials: saved 10, given 1\) and is not used"):
        again = vt.tune(model, space, data, tpe(n_startup_trials=1), run_dir=run_dir, resume=True, **small)
    pd.testing.assert_frame_equal(again.members, done.members)
    with warnings.catch_warnings():  # the same options: nothing to say
        warnings.simplefilter("error")
        vt.tune(model, space, data, tpe(), run_dir=run_dir, resume=True, **small)


def test_a_state_that_cannot_be_checkpointed_is_refused_before_training(tmp_path):
    import dataclasses

    import vmaptune as vt
    from vmaptune import engine

    @dataclasses.dataclass(frozen=True)
    class KeepsALambda(RandomSearch):
        def init(self, space, key):
            return {"search": super().init(space, key), "score": lambda x: x}

    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(TypeError, match=r"KeepsALambda's state cannot be checkpointed to run_dir \(.*lambda.*\): "
                                        r"every part of a strategy's state must pickle\. Run without run_dir"):
        vt.tune(vt.MLP(hidden=1, units=8), Space(learning_rate=LogUniform(1e-3, 3e-1)), vt.load_dataset("iris"),
                KeepsALambda(population=4), epochs=1, run_dir=str(tmp_path / "r"), progress=False)
    assert engine.TRACE_COUNTS == before


# -- a @dataclass subclass of a strategy whose first argument is not population ----------------------------
@dataclasses.dataclass(frozen=True)
class TPEMedian(OptunaSampler):
    """The user's report: TPE proposals, the members below the median dropped at half time."""

    acts_during_training = True
    patience: int = 3

    def decision_epochs(self, state, epochs):
        return [epochs // 2]

    def decide(self, state, snapshot, key):
        score = np.nan_to_num(snapshot.best_so_far, nan=-np.inf)
        return state, vt.Decision(keep=np.flatnonzero(score >= np.median(score)))


@dataclasses.dataclass(frozen=True)
class NoFieldsOfItsOwn(OptunaSampler):
    def work_share(self, state, epochs):
        return 1.0


class NotADataclass(OptunaSampler):
    pass


def test_a_dataclass_subclass_takes_the_sampler_first_as_its_parent_does():
    rs = optuna.samplers.RandomSampler(seed=0)
    for strategy in (TPEMedian(tpe, population=8, rounds=3), TPEMedian(tpe, 8, 3), TPEMedian(tpe, 8, 3, 3),
                     TPEMedian(sampler=tpe, rounds=3, population=8, patience=3)):
        assert (strategy.sampler, strategy.population, strategy.rounds, strategy.patience) == (tpe, 8, 3, 3)
    assert TPEMedian(tpe, patience=5).patience == 5 and TPEMedian(tpe).population == 64  # the parent's defaults
    assert dataclasses.replace(TPEMedian(tpe, 4), patience=1) == TPEMedian(tpe, 4, 1, 1)
    for cls in (NoFieldsOfItsOwn, NotADataclass):
        strategy = cls(rs, 4, 2)
        assert (strategy.sampler, strategy.population, strategy.rounds) == (rs, 4, 2)
        assert cls(sampler=rs, rounds=2).population == 64 and strategy.name == "Optuna(RandomSampler)"


def test_a_subclass_keeps_its_parents_argument_checks_and_messages():
    takes = r"TPEMedian takes sampler, population, rounds, patience, enqueue; e.g. vt.OptunaSampler\(optuna"
    with pytest.raises(TypeError, match=r"TPEMedian: unknown argument populaton=8. Did you mean 'population'.* " + takes):
        TPEMedian(tpe, populaton=8)
    with pytest.raises(TypeError, match=r"TPEMedian: missing sampler. " + takes):
        TPEMedian(population=8)
    with pytest.raises(TypeError, match=r"TPEMedian: 5 positional arguments .* at most 4 "):
        TPEMedian(tpe, 8, 3, 3, 1)
    with pytest.raises(TypeError, match=r"sampler must be an Optuna sampler or a function seed -> sampler, got 'tpe'"):
        TPEMedian("tpe", population=8)
    with pytest.raises(ValueError, match=r"TPEMedian: population must be an integer >= 1, got 0"):
        TPEMedian(tpe, 0)
    with pytest.raises(ValueError, match=r"rounds must be an integer >= 1, got 0"):
        NoFieldsOfItsOwn(tpe, 4, 0)
    with pytest.raises(TypeError, match=r"NotADataclass: unknown argument patience=3.* takes sampler, population, rounds, "
                                        r"enqueue;"):
        NotADataclass(tpe, patience=3)


@dataclasses.dataclass(frozen=True)
class SlowReplay(PBTReplay):
    warmup: int = 0


@dataclasses.dataclass(frozen=True)
class PlainReplay(PBTReplay):
    pass


def test_a_dataclass_subclass_of_pbt_replay_takes_the_schedule_first():
    schedule = PBTSchedule(starts=(0, 1), values=({"learning_rate": 0.1}, {"learning_rate": 0.01}))
    for strategy in (SlowReplay(schedule, 3), SlowReplay(schedule, population=3), SlowReplay(schedule, 3, 0),
                     SlowReplay(population=3, schedule=schedule)):
        assert (strategy.schedule, strategy.population, strategy.warmup) == (schedule, 3, 0)
    assert SlowReplay(schedule, warmup=2).population == 1 and PlainReplay(schedule, 2).population == 2
    assert PlainReplay(schedule).total_evaluations() == 2
    with pytest.raises(TypeError, match=r"SlowReplay: unknown argument schedul=.* takes schedule, population, warmup; "
                                        r"e.g. vt.PBTReplay\(pbt.schedule\(state\)"):
        SlowReplay(schedul=schedule)
    with pytest.raises(TypeError, match=r"PBTReplay: schedule must be a PBTSchedule"):
        PlainReplay(None, 2)


def test_a_dataclass_subclass_that_acts_during_training_runs_in_tune():
    space = Space(learning_rate=LogUniform(1e-3, 3e-1), momentum=OneMinusLogUniform(0.5, 0.95))
    strategy = TPEMedian(lambda seed: optuna.samplers.TPESampler(seed=seed), population=4, rounds=2)
    result = vt.tune(vt.MLP(hidden=1, units=8), space, vt.load_dataset("iris"), strategy, epochs=2, batch_size=16,
                     seed=0, progress=False)
    df = result.to_dataframe()
    assert len(df) == 8 and df["round"].nunique() == 2
    assert (df["epochs_trained"] == 1).any()  # members below the median stopped at half time


@pytest.mark.parametrize("make", [lambda: optuna.samplers.NSGAIISampler(seed=0, population_size=4),
                                  lambda: optuna.samplers.QMCSampler()])
def test_the_identical_call_resumed_says_nothing_of_the_sampler(tmp_path, make):
    """What a sampler caches as it samples (NSGA-II's generation) and a seed it drew for itself
    (QMCSampler without one) are not options: the identical call was told its sampler differed."""
    import warnings

    import vmaptune as vt

    args = (vt.MLP(hidden=1, units=4), Space(learning_rate=LogUniform(1e-3, 3e-1)), vt.load_dataset("iris"))
    small = dict(epochs=1, batch_size=16, seed=1, progress=False, run_dir=str(tmp_path / "r"))
    vt.tune(*args, OptunaSampler(make(), population=4, rounds=2), **small)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        vt.tune(*args, OptunaSampler(make(), population=4, rounds=2), resume=True, **small)
    assert not [w for w in said if "OptunaSampler" in str(w.message)]


@pytest.mark.parametrize("make", [
    lambda seed: optuna.samplers.GridSampler({"width": [8, 16], "act": ["relu", "tanh"]}, seed=seed),
    lambda seed: optuna.samplers.BruteForceSampler(seed=seed),
], ids=["grid", "brute_force"])
def test_a_sampler_that_stops_the_study_once_its_grid_is_covered_is_told_every_member(make):
    # (GridSampler and BruteForceSampler call study.stop() when the grid is covered: outside
    # study.optimize Optuna raised, and the round's other members were never told)
    space = Space(width=Choice([8, 16]), act=Choice(["relu", "tanh"]))
    strategy = OptunaSampler(make, population=3, rounds=2)
    state = strategy.init(space, jax.random.key(0))
    for round_ in range(2):
        hp, state = strategy.ask(state, jax.random.key(round_))
        state = strategy.tell(state, hp, np.arange(3.0) + 3 * round_)
    trials = state.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6 and [t.value for t in trials] == list(range(6))
    covered = {(t.params["width"], t.params["act"]) for t in trials}
    assert covered == {(w, a) for w in (8, 16) for a in ("relu", "tanh")}
    assert strategy.done(state)

