"""A strategy of your own (README: Strategies): its mistakes are named before anything trains with
them, and what it asks for is what trains and what the table records."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import vmaptune as vt

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_hidden=vt.IntUniform(1, 2),
                 activation=vt.Choice(["relu", "tanh", "identity"]), n_units=vt.Choice([8, 16]))
KW = dict(epochs=1, batch_size=32, progress=False)


@dataclasses.dataclass(frozen=True)
class Asks(vt.Strategy):
    """One round asking the values `change` writes over a random sample."""

    population: int = 4
    change: tuple = ()  # ((name, values), ...)
    result: str = "pair"  # "pair", "hp only", "items" (hp's items, a tuple), "tell returns None" or "init returns None"

    def init(self, space, key):
        return None if self.result == "init returns None" else {"space": space, "round": 0}

    def ask(self, state, key):
        hp = dict(state["space"].sample(key, self.population))
        hp.update({name: np.asarray(values) for name, values in self.change})
        if self.result == "items":
            return tuple(hp.items()), state
        return hp if self.result == "hp only" else (hp, state)

    def tell(self, state, hp, scores):
        return None if self.result == "tell returns None" else {**state, "round": state["round"] + 1}

    def done(self, state):
        return state["round"] >= 1


@pytest.mark.parametrize("change, match", [
    # a Choice is asked for by index: -1 trained the first option while the table said the last
    ((("activation", [0, -1, 0, 0]),), r"Asks.ask result\['activation'\] holds \[-1\] \(members \[1\]\): a Choice is "
                                       r"asked for by its option's index, 0..2 for \['relu', 'tanh', 'identity'\]"),
    ((("n_units", [8, 16, 8, 16]),), r"result\['n_units'\] holds \[8, 16, 8\] \(members \[0, 1, 2\]\).*index, 0..1 for \[8, 16\] "
                                     r"\(space.encode turns values into indices\)"),
    # a depth beyond the space was recorded but the network built had only the space's layers
    ((("n_hidden", [1, 5, 2, 1]),), r"result\['n_hidden'\] holds \[5\] \(members \[1\]\), outside the space's "
                                    r"IntUniform\(low=1, high=2\)"),
    ((("n_hidden", [1.0, 1.5, 2.0, 1.0]),), r"holds \[1.5\] \(members \[1\]\): IntUniform\(low=1, high=2\) takes whole "
                                            r"numbers"),
    ((("learning_rate", [0.01, -0.5, 0.01, 0.01]),), r"result\['learning_rate'\] holds \[-0.5\].*outside the space's "
                                                     r"LogUniform"),
    ((("learning_rate", [0.01, np.nan, 0.01, 0.01]),), r"result\['learning_rate'\] holds \[nan\] \(members \[1\]\): "
                                                       r"values must be finite"),
])
def test_values_a_strategy_asks_for_are_checked_before_they_train(digits, change, match):
    with pytest.raises(ValueError, match=match):
        vt.tune(vt.MLP(), SPACE, digits, Asks(change=change), **KW)


def test_nan_asked_for_a_conditional_name_the_members_do_not_use_says_they_carry_a_value_all_the_same(digits):
    """NaN is how the table shows a name a member does not use; asked, it was refused as any NaN."""
    space = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), momentum=vt.OneMinusLogUniform(0.5, 0.99),
                     learning_rate=vt.LogUniform(1e-3, 1e-1)).only_when("momentum", optimizer="sgd")
    unused = (("optimizer", [0, 1, 0, 1]), ("momentum", [0.9, np.nan, 0.9, np.nan]))
    with pytest.raises(ValueError, match=r"result\['momentum'\] holds \[nan, nan\] \(members \[1, 3\]\): values must "
                                         r"be finite. These members do not use 'momentum' \(only_when\('momentum', "
                                         r"optimizer=\['sgd'\]\)\), but every member still carries a value for every "
                                         r"name: give any value inside the space's OneMinusLogUniform"):
        vt.tune(vt.MLP(hidden=1, units=8), space, digits, Asks(change=unused), **KW)
    used = (("optimizer", [0, 1, 0, 1]), ("momentum", [np.nan, np.nan, 0.9, 0.9]))  # (member 0 uses it)
    with pytest.raises(ValueError, match=r"values must be finite.$"):
        vt.tune(vt.MLP(hidden=1, units=8), space, digits, Asks(change=used), **KW)


def test_the_ask_tell_protocol_s_mistakes_are_named(digits):
    empty = tuple((name, np.zeros(0)) for name in SPACE.names)
    with pytest.raises(ValueError, match=r"Asks.ask returned an empty population \(0 members\)"):
        vt.tune(vt.MLP(), SPACE, digits, Asks(change=empty), **KW)
    with pytest.raises(TypeError, match=r"Asks.ask must return \(hp, state\): hp a dict name -> \(population,\) "
                                        r"array, and the strategy's new state; got a dict"):
        vt.tune(vt.MLP(), SPACE, digits, Asks(result="hp only"), **KW)
    with pytest.raises(TypeError, match=r"got a pair whose hp is a tuple"):  # ("a tuple of 2" read as the fault)
        vt.tune(vt.MLP(), SPACE, digits, Asks(result="items"), **KW)
    with pytest.raises(TypeError, match=r"Asks.tell returned None: return the strategy's new state"):
        vt.tune(vt.MLP(), SPACE, digits, Asks(result="tell returns None"), **KW)
    # (the error came from the strategy's own done, subscripting None)
    with pytest.raises(TypeError, match=r"Asks.init returned None: return the strategy's first state"):
        vt.tune(vt.MLP(), SPACE, digits, Asks(result="init returns None"), **KW)

    @dataclasses.dataclass(frozen=True)
    class NoDone(vt.Strategy):
        population: int = 2

        def init(self, space, key):
            return space

        def ask(self, state, key):
            return state.sample(key, 2), state

        def tell(self, state, hp, scores):
            return state

    with pytest.raises(NotImplementedError, match=r"NoDone does not define done\(self, state\) -> bool"):
        vt.tune(vt.MLP(), SPACE, digits, NoDone(), **KW)


@dataclasses.dataclass(frozen=True)
class Decides(vt.Strategy):
    """One round; at epoch 1 it returns the decision `field` = `value`."""

    population: int = 4
    field: str = "freeze"
    value: tuple = ()
    acts_during_training = True

    def init(self, space, key):
        return {"space": space, "round": 0}

    def ask(self, state, key):
        return state["space"].sample(key, self.population), state

    def tell(self, state, hp, scores):
        return {**state, "round": state["round"] + 1}

    def done(self, state):
        return state["round"] >= 1

    def decision_epochs(self, state, epochs):
        return (1,)

    def decide(self, state, snapshot, key):
        return state, vt.Decision(**{self.field: np.asarray(self.value)})


@pytest.mark.parametrize("field, value, match", [
    # indices of the right length were read as a mask: member 0 trained on, 1-3 froze
    ("freeze", (0, 1, 2, 3), r"Decision.freeze is a mask, one True / False per member; got \[0, 1, 2, 3\]\. For member "
                             r"indices i use mask = np.isin\(np.arange\(4\), i\)"),
    ("copy_from", (0.5, 1.0, 2.0, 3.0), r"Decision.copy_from must hold whole numbers >= 0"),
    ("budget", (2, -1, 2, 2), r"Decision.budget must hold whole numbers >= 0 .*got \[2, -1, 2, 2\]"),
    # [0.9, 2.9] kept members 0 and 2; a mask was said as indices [1, 1, 0, 0] with no hint
    ("keep", (0.9, 2.9), r"Decision.keep lists member indices \(whole numbers\), got \[0.9, 2.9\]"),
    ("keep", (True, True, False, False), r"Decision.keep lists member indices .*For a mask use np.flatnonzero"),
    # update without hp was a silent no-op (new values passed as update=, where hp= was meant)
    ("update", (True, True, False, False), r"Decides.decide: Decision.update is given with no hp: update is the "
                                           r"\(n,\) bool mask .*Give the values as hp="),
])
def test_malformed_decisions_are_refused(digits, field, value, match):
    with pytest.raises(ValueError, match=match) as refused:
        vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), digits,
                Decides(field=field, value=value), **{**KW, "epochs": 3})
    if field != "update":  # (the engine's refusals did not say which hook made the decision)
        assert "(the decision Decides.decide returned after epoch 1)" in getattr(refused.value, "__notes__", [])


@dataclasses.dataclass(frozen=True)
class _EndsWithoutState(vt.RandomSearch):
    acts_during_training = True

    def end_training(self, state, snapshot):
        pass  # (a forgotten `return state`)


def test_end_training_returning_none_is_named():
    with pytest.raises(TypeError, match=r"_EndsWithoutState.end_training returned None: return the strategy's state"):
        vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
                _EndsWithoutState(population=2, rounds=1), **KW)


@dataclasses.dataclass(frozen=True)
class _LosesItsState(vt.RandomSearch):
    acts_during_training = True
    hook: str = "decide"

    def begin_training(self, state, context):
        return (None if self.hook == "begin_training" else state), None

    def decision_epochs(self, state, epochs):
        return [1]

    def decide(self, state, snapshot, key):
        return (None if self.hook == "decide" else state), vt.Decision(freeze=np.arange(snapshot.size) >= 1)


@pytest.mark.parametrize("hook, got", [("decide", "a vt.Decision"), ("begin_training", "None")])
def test_a_hook_returning_a_state_of_none_is_named_where_it_returns_it(hook, got):
    """(None, decision) was taken: the round trained on, and end_training (not written) was blamed."""
    with pytest.raises(TypeError, match=rf"_LosesItsState.{hook} returned \(None, {got}\): return the strategy's "
                                        r"state first \(`return state, decision`"):
        vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
                _LosesItsState(population=2, rounds=1, hook=hook), **{**KW, "epochs": 3})


def test_a_strategy_that_overrides_the_hooks_of_acting_during_training_without_the_flag_is_refused():
    """Without `acts_during_training = True` vt.tune called none of the hooks: every member trained to
    the end, as if the rule never fired, and nothing said so."""

    @dataclasses.dataclass(frozen=True)
    class MedianStop(vt.RandomSearch):
        def decision_epochs(self, state, epochs):
            return [epochs // 2]

        def decide(self, state, snapshot, key):
            score = np.nan_to_num(snapshot.best_so_far, nan=-np.inf)
            return state, vt.Decision(freeze=score < np.median(score))

    with pytest.raises(TypeError, match=r"MedianStop defines decision_epochs and decide, but its acts_during_training "
                                        r"is False, so vt.tune would never call them .*`acts_during_training = True`"):
        MedianStop(population=4)

    @dataclasses.dataclass(frozen=True)
    class Checks(vt.RandomSearch):
        acts_during_training = False  # (said, as left out)

        def begin_training(self, state, context):
            return state, None

    with pytest.raises(TypeError, match=r"Checks defines begin_training, but .* never call it"):
        Checks(population=4)

    @dataclasses.dataclass(frozen=True)
    class Acts(MedianStop):  # (with the flag, as the built-in strategies, it is made as before)
        acts_during_training = True

    for strategy in (Acts(), vt.SuccessiveHalving(), vt.Hyperband(), vt.BOHB(), vt.PBT()):
        assert strategy.acts_during_training


def test_float64_arithmetic_and_bfloat16_values_are_checked_as_they_train():
    """0.30000000000000004 (exp(log(0.3)) in float64) trains as float32's 0.3: inside the space."""
    import jax.numpy as jnp

    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 0.3), n_hidden=vt.IntUniform(1, 2))
    top = np.exp(np.log(1e-3) + (np.log(0.3) - np.log(1e-3)))
    assert top > 0.3 and space.check_asked({"learning_rate": np.array([top, 1e-3]), "n_hidden": np.array([1, 2])},
                                           "S.ask") == 2
    assert space.check_asked({"learning_rate": jnp.asarray([0.01, 0.2], jnp.bfloat16),
                              "n_hidden": np.array([1, 2])}, "S.ask") == 2
    with pytest.raises(ValueError, match=r"S.ask result\['learning_rate'\] holds \[0.31\]"):
        space.check_asked({"learning_rate": np.array([0.31, 0.1]), "n_hidden": np.array([1, 2])}, "S.ask")


@dataclasses.dataclass(frozen=True)
class FailsOnce(vt.Strategy):
    """Three rounds of random search whose tell fails after the second while TELL_FAILS says so (a
    switch outside the strategy: the resumed run must see the same strategy)."""

    population: int = 4

    def init(self, space, key):
        return {"space": space, "round": 0}

    def ask(self, state, key):
        return state["space"].sample(key, self.population), state

    def tell(self, state, hp, scores):
        if TELL_FAILS["on"] and state["round"] == 1:
            raise RuntimeError("a bug in tell")
        if TELL_FAILS["unpicklable"] and state["round"] == 1:  # (a state that no checkpoint can hold)
            return {**state, "round": state["round"] + 1, "rule": lambda x: x}
        return {**state, "round": state["round"] + 1}

    def done(self, state):
        return state["round"] >= 3


TELL_FAILS = {"on": False, "unpicklable": False}


def test_a_round_whose_tell_fails_is_kept_and_a_resume_tells_it_again_without_training_it(digits, tmp_path,
                                                                                            monkeypatch):
    from vmaptune import engine

    args = (vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), digits, FailsOnce())
    kw = dict(KW, epochs=2, chunk_epochs=1)
    whole = vt.tune(*args, **kw)
    run_dir = str(tmp_path / "run")
    monkeypatch.setitem(TELL_FAILS, "on", True)
    with pytest.raises(RuntimeError, match="a bug in tell") as info:
        vt.tune(*args, run_dir=run_dir, **kw)
    assert info.value.__notes__ == [
        f"vmaptune: FailsOnce failed on round 1 after it trained. Its training is checkpointed in {run_dir}: once the "
        f"strategy is fixed, vt.tune(..., run_dir={run_dir!r}, resume=True) tells it again without training the "
        f"round again. The results so far, this round's included, are the error's `results` attribute "
        f"(`except Exception as e: e.results`)."]
    pd.testing.assert_frame_equal(info.value.results.members, whole.members[whole.members["round"] <= 1])
    with pytest.raises(RuntimeError) as info:
        vt.tune(*args, **kw)
    assert "Without a run_dir its training is lost" in info.value.__notes__[0]
    monkeypatch.setitem(TELL_FAILS, "on", False)
    chunks = {"n": 0}
    for name in ("train_chunk", "train_chunk_quick"):
        compiled = getattr(engine, name)

        def counting(*a, _compiled=compiled, **k):
            chunks["n"] += 1
            return _compiled(*a, **k)

        counting.lower = compiled.lower
        monkeypatch.setattr(engine, name, counting)
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, **kw)
    assert chunks["n"] == 2  # round 2's two chunks: round 1 is told again, not trained again
    pd.testing.assert_frame_equal(resumed.members, whole.members)


def test_a_state_tell_makes_unpicklable_is_named_with_the_round_kept_for_a_resume(digits, tmp_path, monkeypatch):
    """init's state pickled (checked before training), tell's does not: the error names tell and
    the fix, and the round that trained is checkpointed (it was lost to a bare pickle error)."""
    args = (vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), digits, FailsOnce())
    kw = dict(KW, epochs=2, chunk_epochs=1)
    whole = vt.tune(*args, **kw)
    run_dir = str(tmp_path / "run")
    monkeypatch.setitem(TELL_FAILS, "unpicklable", True)
    with pytest.raises(TypeError, match=r"FailsOnce.tell's state cannot be checkpointed to run_dir \(.*pickle.*\): "
                                        r"every part of a strategy's state must pickle") as info:
        vt.tune(*args, run_dir=run_dir, **kw)
    assert "FailsOnce failed on round 1 after it trained. Its training is checkpointed" in info.value.__notes__[0]
    monkeypatch.setitem(TELL_FAILS, "unpicklable", False)
    pd.testing.assert_frame_equal(vt.tune(*args, run_dir=run_dir, resume=True, **kw).members, whole.members)


def test_a_strategy_class_that_sets_its_settings_without_the_dataclass_decorator_is_refused(digits):
    """Without @dataclass the inherited __init__ set population=64 over the class's `population = 4`
    (64 members trained a round), and the repr a resume compares showed none of its settings."""
    import enum
    import functools

    class Plain(FailsOnce):
        population = 3
        rounds = 2  # (not a field: a constant, as harmless as a ClassVar)

    with pytest.raises(TypeError, match=r"Plain sets population = 3 without @dataclasses.dataclass\(frozen=True\): "
                                        r".* ignored \(population=4 trains, not 3\).*Decorate Plain"):
        Plain()

    class Small:  # a mixin's value is ignored alike
        population = 2

    class Mixed(Small, vt.RandomSearch):
        pass

    with pytest.raises(TypeError, match=r"Small sets population = 2 without.*\(population=64 trains, not 2\)"):
        Mixed()

    @dataclasses.dataclass(frozen=True)
    class Unannotated(vt.RandomSearch):  # (decorated, but a dataclass takes only annotated names as fields)
        population = 4
        rounds: int = 2

    with pytest.raises(TypeError, match=r"Unannotated sets population = 4 without a type annotation: .*\(population=64 "
                                        r"trains, not 4\).*\(population: int = 4\)"):
        Unannotated()

    class Annotated(FailsOnce):
        rounds: int = 2

    with pytest.raises(TypeError, match=r"Annotated sets rounds = 2 without"):
        Annotated()

    class Mode(enum.Enum):
        FAST = 1

    class MethodsOnly(FailsOnce):  # methods, constants, descriptors and the base's switches need no decorator
        acts_during_training = False
        MODE = Mode.FAST
        TABLE = {"small": 1e-3}
        name = "Mine"

        @functools.cached_property
        def table(self):
            return dict(self.TABLE)

        def finished(self, state):  # (a helper of any name: vt.tune calls only the protocol's methods)
            return state["round"] >= 1

        def done(self, state):
            return self.finished(state)

    assert MethodsOnly(population=2).population == 2
    assert len(vt.tune(vt.MLP(hidden=1, units=8), SPACE, digits, MethodsOnly(population=2), **KW).members) == 2


def test_a_class_flag_declared_with_a_type_annotation_is_named_in_the_class_that_annotates_it():
    """Under a parent that sets the flag as the README does, the error named the parent and asked to
    annotate it there; directly under vt.RandomSearch the flag became a field, shown in the repr."""
    import typing

    @dataclasses.dataclass(frozen=True)
    class DropTheWorstHalf(vt.RandomSearch):
        acts_during_training = True

        def decide(self, state, snapshot, key):
            return state, None

    @dataclasses.dataclass(frozen=True)
    class Mine(DropTheWorstHalf):
        acts_during_training: bool = True

    with pytest.raises(TypeError, match=r"Mine declares `acts_during_training: bool = True` with a type annotation: "
                                        r"acts_during_training is a class flag of vt.Strategy, not a setting.*Write "
                                        r"it without the annotation: `acts_during_training = True`"):
        Mine(population=4)

    @dataclasses.dataclass(frozen=True)
    class Copies(vt.RandomSearch):
        copies_members: bool = True

    with pytest.raises(TypeError, match=r"Copies declares `copies_members: bool = True`"):
        Copies(population=4)

    @dataclasses.dataclass(frozen=True)
    class AsAClassVar(DropTheWorstHalf):
        acts_during_training: typing.ClassVar[bool] = True

    assert AsAClassVar(population=4).acts_during_training  # (annotated as a ClassVar: no field)
    assert [field.name for field in dataclasses.fields(AsAClassVar)] == ["population", "rounds"]


def test_done_returning_none_and_ask_returning_too_many_members_are_named(digits):
    @dataclasses.dataclass(frozen=True)
    class ForgetsReturn(FailsOnce):
        def done(self, state):
            state["round"] >= 1  # (no return: the search never ended)

    with pytest.raises(TypeError, match=r"ForgetsReturn.done returned None: return True once nothing is left to ask"):
        vt.tune(vt.MLP(hidden=1, units=8), SPACE, digits, ForgetsReturn(population=2), **KW)

    @dataclasses.dataclass(frozen=True)
    class TooMany(FailsOnce):
        def ask(self, state, key):
            return state["space"].sample(key, self.population + 2), state

    with pytest.raises(ValueError, match=r"TooMany.ask returned 4 members, more than its population=2: ask for at "
                                         r"most population members \(fewer are fine\), or raise population"):
        vt.tune(vt.MLP(hidden=1, units=8), SPACE, digits, TooMany(population=2), **KW)


@dataclasses.dataclass(frozen=True)
class Reports(Asks):
    """Asks, recording what `final_hp` and `member_columns` give."""

    final: tuple = ()  # ((name, values), ...) written over the asked values
    columns: tuple = ()  # ((name, values), ...)

    def final_hp(self, state, asked):
        return {**asked, **{name: np.asarray(values) for name, values in self.final}}

    def member_columns(self, state):
        return {name: np.asarray(values) for name, values in self.columns}


@pytest.mark.parametrize("final, columns, match", [
    ((("learning_rate", [0.01, np.nan, 0.01, 0.01]),), (), r"Reports.final_hp result\['learning_rate'\] holds \[nan\]"),
    ((("activation", [0, 5, 0, 0]),), (), r"Reports.final_hp result\['activation'\] holds \[5\]"),
    ((), (("score", [0.0, 1.0, 0.5, 0.5]),), r"Reports.member_columns returns 'score', a column the table has already"),
    ((), (("learning_rate", [9.0] * 4),), r"returns 'learning_rate', a column the table has already"),
    ((), (("note", [1, 2]),), r"Reports.member_columns\['note'\] has shape \(2,\); give one value per member, "
                              r"shape \(4,\)"),
])
def test_what_a_strategy_reports_after_a_round_is_checked(digits, final, columns, match):
    with pytest.raises(ValueError, match=match):
        vt.tune(vt.MLP(), SPACE, digits, Reports(final=final, columns=columns), **KW)


@dataclasses.dataclass(frozen=True)
class AsksBadlyLater(Asks):
    def ask(self, state, key):
        hp, state = super().ask(state, key)
        if state["round"] == 1:
            hp = {**hp, "learning_rate": np.full(self.population, -1.0)}
        return hp, state

    def done(self, state):
        return state["round"] >= 2


def test_a_strategy_failing_between_rounds_keeps_the_finished_ones(digits, tmp_path):
    with pytest.raises(ValueError, match=r"AsksBadlyLater.ask result\['learning_rate'\]") as info:
        vt.tune(vt.MLP(), SPACE, digits, AsksBadlyLater(), run_dir=str(tmp_path / "run"), **KW)
    assert len(info.value.results) == 4 and (info.value.results.members["round"] == 0).all()
    assert "after 1 finished round(s); they are saved in" in info.value.__notes__[0]
    assert len(vt.load_results(str(tmp_path / "run"))) == 4


def test_a_final_hp_of_the_wrong_length_is_named(digits):
    @dataclasses.dataclass(frozen=True)
    class Short(Asks):
        def final_hp(self, state, asked):
            return {name: np.asarray(values)[:2] for name, values in asked.items()}

    with pytest.raises(ValueError, match=r"Short.final_hp returned 2 members for a round of 4; give the values of the "
                                         r"round's members, one each"):
        vt.tune(vt.MLP(), SPACE, digits, Short(), **KW)


REPORT_FAILS = {"on": False}


@dataclasses.dataclass(frozen=True)
class PBTReportsBadly(vt.PBT):
    """PBT (its end_training keeps state) whose final_hp fails while REPORT_FAILS is on."""

    def final_hp(self, state, hp):
        if REPORT_FAILS["on"]:
            raise RuntimeError("a bug in final_hp")
        return super().final_hp(state, hp)


def test_a_round_whose_report_fails_is_kept_and_a_resume_ends_it_once(digits, tmp_path, monkeypatch):
    """end_training runs before final_hp: a resume ends the checkpointed round again from the state it
    had before (not from the ended one), so it equals a run that never failed."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))
    args = (vt.MLP(hidden=1, units=8), space, digits, PBTReportsBadly(population=4, interval=1))
    kw = dict(KW, epochs=3)
    whole = vt.tune(*args, **kw)
    run_dir = str(tmp_path / "run")
    monkeypatch.setitem(REPORT_FAILS, "on", True)
    with pytest.raises(RuntimeError, match="a bug in final_hp") as info:
        vt.tune(*args, run_dir=run_dir, **kw)
    assert info.value.__notes__[0].startswith(f"vmaptune: PBTReportsBadly failed on round 0 after it trained. Its "
                                              f"training is checkpointed in {run_dir}")
    assert len(info.value.results) == 0  # (no round finished; the trained one is in the checkpoint)
    monkeypatch.setitem(REPORT_FAILS, "on", False)
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, **kw)
    pd.testing.assert_frame_equal(resumed.members, whole.members)


@dataclasses.dataclass(frozen=True)
class _FreezesTheFirst(vt.RandomSearch):
    acts_during_training = True

    def begin_training(self, state, context):
        return state, vt.Decision(freeze=np.arange(context.members) == 0)  # member 0 never trains


def test_a_member_frozen_before_it_trains_scores_nothing_in_every_member_block():
    """Evaluated where its block trained, it scored its initial weights (best_epoch 1): the search's
    best where the others diverged, though it trained no epoch; NaN alone in a block of one."""
    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1), optimizer=vt.Fixed("sgd"))
    runs = [vt.tune(vt.MLP(), space, data, _FreezesTheFirst(population=4, rounds=1), epochs=4, seed=0, batch_size=16,
                    member_block=block, devices=1, progress=False) for block in (1, 4)]
    for result in runs:
        first = result.members.iloc[0]
        assert np.isnan(first["score"]) and first["best_epoch"] == 0 and first["epochs_trained"] == 0
        assert np.isnan(result.curves["val_score"][0]).all() and np.isnan(result.curves["val_loss"][0]).all()
    np.testing.assert_allclose(runs[1].members["score"], runs[0].members["score"], rtol=1e-5)


@dataclasses.dataclass(frozen=True)
class _LooksAt(Decides):
    epochs: tuple = (1,)
    seen: list = dataclasses.field(default_factory=list, compare=False)

    def decision_epochs(self, state, epochs):
        return self.epochs

    def decide(self, state, snapshot, key):
        self.seen.append(snapshot.epochs_done)
        return state, None


def test_decision_epochs_listed_twice_decide_once_and_a_fraction_or_a_number_alone_is_named(digits):
    """[2, 2] ran decide twice at epoch 2; 2.7 was cut to 2; epochs // 2 alone failed as "'int' object
    is not iterable"."""
    kwargs = dict(model=vt.MLP(hidden=1, units=8), space=vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)),
                  data=digits, **{**KW, "epochs": 4})
    twice = _LooksAt(field="freeze", value=None, epochs=(2, 2, 1))
    vt.tune(strategy=twice, **kwargs)
    assert twice.seen == [1, 2]
    with pytest.raises(ValueError, match=r"_LooksAt.decision_epochs returned \[2.7\]: epochs are whole numbers"):
        vt.tune(strategy=_LooksAt(field="freeze", value=None, epochs=(2.7,)), **kwargs)
    with pytest.raises(TypeError, match=r"_LooksAt.decision_epochs returned 2; return a list of the epochs after "
                                        r"which decide sees the population, e.g. \[2\]"):
        vt.tune(strategy=_LooksAt(field="freeze", value=None, epochs=2), **kwargs)


@dataclasses.dataclass(frozen=True)
class _StopsThenDecays(vt.RandomSearch):
    decay: float = 0.1
    acts_during_training = True

    def decision_epochs(self, state, epochs):
        return [2, 3]

    def decide(self, state, snapshot, key):
        if snapshot.epochs_done == 2:  # a median rule: the worse half stops
            return state, vt.Decision(freeze=snapshot.latest_score < np.median(snapshot.latest_score))
        return state, vt.Decision(hp={"learning_rate": snapshot.hp["learning_rate"] * self.decay})  # (every member)


def test_new_values_for_every_member_leave_a_stopped_members_row_as_it_trained():
    """A decay for every member at epoch 3 rewrote the rows (and refit values) of members a median
    rule had stopped at epoch 2, which never trained with them."""
    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1), optimizer=vt.Fixed("sgd"))
    runs = []
    for decay in (1.0, 0.1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the decayed values fall below the space's range, said)
            runs.append(vt.tune(vt.MLP(), space, data, _StopsThenDecays(population=4, rounds=1, decay=decay), epochs=4,
                                seed=0, batch_size=16, progress=False).members)
    drawn, decayed = runs
    stopped = (decayed["status"] == "pruned").to_numpy()
    assert stopped.sum() == 2
    np.testing.assert_allclose(decayed["learning_rate"][stopped], drawn["learning_rate"][stopped], rtol=1e-6)
    np.testing.assert_allclose(decayed["learning_rate"][~stopped], drawn["learning_rate"][~stopped] * 0.1, rtol=1e-5)


@dataclasses.dataclass(frozen=True)
class _FreezesThenCopies(vt.RandomSearch):
    into_the_frozen: bool = False
    acts_during_training = True
    copies_members = True

    def decision_epochs(self, state, epochs):
        return [2, 3]

    def decide(self, state, snapshot, key):
        if snapshot.epochs_done == 2:
            return state, vt.Decision(freeze=np.arange(snapshot.size) == 1)
        source = np.arange(snapshot.size)
        source[1 if self.into_the_frozen else 2] = 2 if self.into_the_frozen else 1  # (member 1 is frozen)
        return state, vt.Decision(copy_from=source)


@pytest.mark.parametrize("into_the_frozen, said", [
    (False, r"copies from members \[1\], which no longer train: each copy stops with them"),
    (True, r"copies into members \[1\], which had stopped: their own trial \(row, curves, score\) is replaced"),
])
def test_a_copy_from_or_into_a_member_that_no_longer_trains_is_said(into_the_frozen, said):
    """Allowed (PBT does neither), but unsaid it threw away the copy's training, or a finished trial."""
    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1), optimizer=vt.Fixed("sgd"))
    with pytest.warns(UserWarning, match=rf"Decision.copy_from {said}"):
        vt.tune(vt.MLP(), space, data, _FreezesThenCopies(population=4, rounds=1, into_the_frozen=into_the_frozen),
                epochs=4, seed=0, batch_size=16, progress=False)


@pytest.mark.parametrize("strategy", [vt.RandomSearch(population=4), vt.BayesOpt(population=4),
                                      vt.Evolution(population=4), vt.PBT(population=4), vt.GridSearch(population=4),
                                      vt.SuccessiveHalving(population=4), vt.CoarseToFine(population=4)],
                         ids=lambda s: type(s).__name__)
def test_a_built_in_strategys_tell_names_decoded_values_and_indices_past_the_options(strategy):
    """Used on their own (ask / tell around your evaluation): option names, or an index past a
    Choice's options, failed inside the strategy, or PBT proposed them."""
    import jax

    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), activation=vt.Choice(["relu", "tanh"]))
    state = strategy.init(space, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(1))
    n = len(hp["learning_rate"])
    owner = type(strategy).__name__
    with pytest.raises(ValueError, match=rf"{owner}.tell hp\['activation'\] must be numbers .*space.encode"):
        strategy.tell(state, {**hp, "activation": np.array(["relu"] * n)}, np.zeros(n))
    with pytest.raises(ValueError, match=rf"{owner}.tell hp\['activation'\] holds \[2\] .*given by its option's index"):
        strategy.tell(state, {**hp, "activation": np.r_[2, np.zeros(n - 1, int)]}, np.zeros(n))
    strategy.tell(state, hp, np.zeros(n))
