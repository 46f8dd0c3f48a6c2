"""Successive halving and Hyperband: exactly the top 1/eta survive each rung, survivors are packed so
compute shrinks, Li et al.'s brackets, ask / tell with budgets, clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from helpers import TRAINING_BATCH, TRAINING_MODEL, TRAINING_SPACE, drive, training_program
from vmaptune.packing import packed_size
from vmaptune.strategies.halving import Hyperband, SuccessiveHalving, halving_rungs, hyperband_brackets

SPACE, MODEL, BATCH = TRAINING_SPACE, TRAINING_MODEL, TRAINING_BATCH


@pytest.fixture(scope="module")
def program(digits):
    return training_program(digits)


def test_each_rung_keeps_exactly_the_top_1_over_eta_and_compute_shrinks(program, digits):
    strategy = SuccessiveHalving(population=7, eta=2)
    state, run, _ = drive(strategy, program, digits, epochs=4, packing="always")
    rungs = state.plan[0]
    assert rungs == ((7, 1), (3, 2), (1, 4))
    curves, status = run.curves, run.status()
    reached = np.asarray(state.reached)
    scores = np.asarray(state.scores)
    for k, (n_k, r_k) in enumerate(rungs):
        here = np.flatnonzero(reached >= k)
        assert len(here) == n_k
        # a rung's score is the best validation score so far, read back from the engine's curves
        np.testing.assert_array_equal(scores[k, here], np.nanmax(curves["val_score"][here, :r_k], axis=1))
        if k + 1 < len(rungs):
            order = here[np.argsort(-scores[k, here], kind="stable")]
            assert set(np.flatnonzero(reached > k)) == set(order[: n_k // 2])  # exactly the top 1/eta
    # a pruned member's record stops at its rung (also the one packed along, frozen, as a filler)
    for m in np.flatnonzero(reached < len(rungs) - 1):
        assert status["best_score"][m] == scores[reached[m], m]
        assert not np.isfinite(curves["train_loss"][m, rungs[reached[m]][1]:]).any()
    # compute: member-epochs actually trained (finite training losses) and rows computed, vs 7 x 4
    trained = int(np.isfinite(curves["train_loss"]).sum())
    assert trained == state.member_epochs == 7 * 1 + 3 * 1 + 1 * 2 == 12
    assert state.row_epochs == 7 * 1 + 4 * 1 + 1 * 2 == 13  # 3 survivors packed into 4 rows, then 1
    assert state.row_epochs < 7 * 4 / 2
    columns = strategy.member_columns(state)
    np.testing.assert_array_equal(columns["rung"], reached)
    np.testing.assert_array_equal(columns["budget_epochs"], np.asarray([1, 2, 4])[reached])


def test_hyperband_runs_its_brackets_as_populations_inside_tune(digits):
    strategy = Hyperband(max_epochs=4, eta=2)
    assert strategy.plan() == (((4, 1), (2, 2), (1, 4)), ((3, 2), (1, 4)), ((3, 4),)) and strategy.population == 4
    result = vt.tune(MODEL, SPACE, digits, strategy, epochs=4, batch_size=BATCH, progress=False)
    df = result.to_dataframe()
    assert df.groupby("round").size().tolist() == [4, 3, 3] and df["member"].is_unique
    trained = np.isfinite(result.curves["train_loss"]).sum(axis=1)  # epochs each member trained
    assert sorted(trained[:4]) == [1, 1, 2, 4] and sorted(trained[4:7]) == [2, 2, 4] and list(trained[7:]) == [4] * 3
    assert trained.sum() == 28 < 10 * 4
    assert result.best_score > 0.5
    # the members a rung ended are said so in the table (a filter on status "ok" finds the finished ones)
    np.testing.assert_array_equal(df["status"], np.where(trained < 4, "pruned", "ok"))


def test_hyperband_iterations_run_the_brackets_again_with_new_members(digits):
    """Keras Tuner's hyperband_iterations: the budget of another search, matched."""
    once, twice = Hyperband(max_epochs=4, eta=2), Hyperband(max_epochs=4, eta=2, iterations=2)
    assert twice.plan() == once.plan() * 2 and twice.total_evaluations() == 2 * once.total_evaluations()
    assert repr(once) == "Hyperband(population=4, eta=2, min_epochs=1, max_epochs=4)"  # run dirs written before resume
    result = vt.tune(MODEL, SPACE, digits, twice, epochs=4, batch_size=BATCH, progress=False)
    df = result.to_dataframe()
    assert df.groupby("round").size().tolist() == [4, 3, 3] * 2 and df["bracket"].tolist() == sorted(df["bracket"])
    first, again = df[df["round"] < 3], df[df["round"] >= 3]
    assert not np.isin(again["learning_rate"], first["learning_rate"]).any()  # new members, not the same again
    with pytest.raises(ValueError, match=r"iterations must be an integer >= 1 .* got iterations=0. E.g. iterations=2"):
        Hyperband(iterations=0)


def test_hyperband_brackets_match_li_et_al():
    # Li et al. (2017), table 1: R = 81, eta = 3.
    assert hyperband_brackets(81, 3) == (
        ((81, 1), (27, 3), (9, 9), (3, 27), (1, 81)),
        ((34, 3), (11, 9), (3, 27), (1, 81)),
        ((15, 9), (5, 27), (1, 81)),
        ((8, 27), (2, 81)),
        ((5, 81),),
    )
    assert Hyperband(max_epochs=81).population == 81 and Hyperband(max_epochs=81).tune_rounds() == 5
    assert halving_rungs(16, 2, 8) == ((16, 1), (8, 2), (4, 4), (2, 8))
    assert halving_rungs(27, 3, 5) == ((27, 2), (9, 5))  # the budget allows one halving only
    assert [packed_size(n, 27) for n in (27, 9, 3, 1)] == [27, 16, 4, 1]


def test_halving_decisions_on_made_up_scores_need_no_training():
    from test_pbt import made_up_snapshot

    strategy = SuccessiveHalving(population=9, eta=3)
    hp, state = strategy.ask(strategy.init(SPACE), jax.random.key(0))
    state, first = strategy.begin_training(state, vt.TrainingContext(9))
    np.testing.assert_array_equal(first.keep, np.arange(9))  # the bracket's members; padding goes
    assert tuple(strategy.decision_epochs(state, 9)) == (1, 3)  # rungs (9, 1), (3, 3), (1, 9)
    scores = np.asarray([0.2, np.nan, 0.9, 0.5, 0.95, 0.1, np.inf, 0.3, 0.6], np.float32)
    numeric = SPACE.numeric(hp)
    state, decision = strategy.decide(state, made_up_snapshot(scores, numeric, epochs_done=1, epochs=9))
    assert decision.keep.tolist() == [2, 4, 8]  # the top third, never a failed member
    # the next rung sees only the survivors' new scores
    scores = np.asarray([0.2, np.nan, 0.4, 0.5, 0.3, 0.1, np.inf, 0.3, 0.7], np.float32)
    state, decision = strategy.decide(state, made_up_snapshot(scores, numeric, epochs_done=3, epochs=9))
    assert decision.keep.tolist() == [8]
    state = strategy.end_training(state, made_up_snapshot(scores, numeric, epochs_done=9, epochs=9))
    assert np.asarray(state.reached).tolist() == [0, 0, 1, 0, 1, 0, 0, 0, 2] and state.trained


def test_a_member_early_stopping_stopped_keeps_its_score_and_gives_its_place_to_one_training():
    """Member 4 (the rung's best) stopped: it cannot use the next rung's epochs, so the next best
    still training takes its place (it keeps its score and 'stopped'; the rung is still a third)."""
    from test_pbt import made_up_snapshot

    strategy = SuccessiveHalving(population=9, eta=3)
    hp, state = strategy.ask(strategy.init(SPACE), jax.random.key(0))
    state, _ = strategy.begin_training(state, vt.TrainingContext(9))
    scores = np.asarray([0.2, np.nan, 0.9, 0.5, 0.95, 0.1, np.inf, 0.3, 0.6], np.float32)
    state, decision = strategy.decide(state, made_up_snapshot(scores, SPACE.numeric(hp), epochs_done=1, epochs=9,
                                                              stopped=(4,)))
    assert decision.keep.tolist() == [2, 3, 8] and np.asarray(state.reached)[4] == 0
    state, decision = strategy.decide(state, made_up_snapshot(scores, SPACE.numeric(hp), epochs_done=3, epochs=9,
                                                              stopped=(2, 3, 8)))
    assert decision.keep.tolist() == []  # every member of the rung stopped: nobody trains on


BOX_SPACE = vt.Space(learning_rate=vt.LogUniform(1e-6, 1.0), dropout=vt.Uniform(0.0, 0.6))


def budget_objective(hp, budget):
    """A black-box objective (host numpy): better with more budget, best near lr 3e-3 and dropout
    0.15, NaN ('diverged') for learning rates above 0.3."""
    lr, dropout = np.asarray(hp["learning_rate"]), np.asarray(hp["dropout"])
    loss = np.log10(lr / 3e-3) ** 2 + ((dropout - 0.15) / 0.1) ** 2 + 1.0 / budget
    return np.where(lr > 0.3, np.nan, -loss)


@pytest.mark.parametrize("strategy", [SuccessiveHalving(population=27, eta=3), Hyperband(max_epochs=9, eta=3)])
def test_ask_tell_with_budgets_keeps_the_top_and_never_a_failed_member(strategy):
    space = BOX_SPACE
    state = strategy.init(space, jax.random.key(0))
    told, budgets, key = 0, [], jax.random.key(1)
    while not strategy.done(state):
        key, k = jax.random.split(key)
        hp, state = strategy.ask(state, k)
        ids, rung, bracket = np.asarray(state.ids), state.rung, state.bracket
        np.testing.assert_array_equal(hp["learning_rate"], np.asarray(state.hp["learning_rate"])[ids])
        scores = budget_objective(hp, state.budget)
        budgets.append((bracket, rung, len(ids), state.budget))
        state = strategy.tell(state, hp, scores)
        told += len(scores)
        if state.bracket == bracket and state.rung == rung + 1:  # went on to the next rung
            finite = np.flatnonzero(np.isfinite(scores))
            best = finite[np.argsort(-scores[finite], kind="stable")][: len(ids) // 3]
            np.testing.assert_array_equal(np.asarray(state.ids), np.sort(ids[best]))
    assert told == strategy.total_evaluations()
    expected = [(b, i, n, r) for b, rungs in enumerate(strategy.plan()) for i, (n, r) in enumerate(rungs)]
    assert budgets == expected  # (no bracket ended early: enough members were finite)
    if isinstance(strategy, SuccessiveHalving):
        assert budgets == [(0, 0, 27, 1), (0, 1, 9, 3), (0, 2, 3, 9), (0, 3, 1, 27)]


def test_failed_members_are_never_kept():
    space = vt.Space(x=vt.Uniform(0.0, 1.0))
    strategy = SuccessiveHalving(population=9, eta=3, max_epochs=9)
    state = strategy.init(space, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(1))
    state = strategy.tell(state, hp, jnp.asarray([np.nan, np.inf, 5.0, np.nan, -np.inf, np.nan, np.nan, 1.0, np.nan]))
    assert np.asarray(state.ids).tolist() == [2, 7]  # 9 // 3 = 3 asked for, but only two are finite
    hp, state = strategy.ask(state, jax.random.key(2))
    state = strategy.tell(state, hp, jnp.full(2, jnp.nan))
    assert strategy.done(state)  # nobody left to continue


def test_failures_at_one_rung_never_shrink_the_later_rungs_below_the_plan():
    """Li et al. keep floor(n_i / eta) of the planned n_i: failed members leave their places to the
    rung's others. Each rung kept a third of whoever was told (27 -> 7 finite -> 2 -> 0), and no
    member reached max_epochs although two finite ones reached rung 2."""
    strategy = SuccessiveHalving(population=27, eta=3, max_epochs=27)
    state = strategy.init(vt.Space(x=vt.Uniform(0.0, 1.0)), jax.random.key(0))
    asked = []
    while not strategy.done(state):
        hp, state = strategy.ask(state, jax.random.key(len(asked) + 1))
        asked.append((len(state.ids), state.budget))
        scores = np.asarray(hp["x"], np.float32)
        if state.rung == 0:
            scores[:20] = np.nan  # 20 of 27 diverge in the first rung
        state = strategy.tell(state, hp, scores)
    assert asked == [(27, 1), (7, 3), (3, 9), (1, 27)]
    # inside vt.tune: the decisions at each rung's budget
    from test_pbt import made_up_snapshot

    strategy = SuccessiveHalving(population=9, eta=3)
    hp, state = strategy.ask(strategy.init(SPACE), jax.random.key(0))
    state, _ = strategy.begin_training(state, vt.TrainingContext(9))
    numeric = SPACE.numeric(hp)
    scores = np.asarray([np.nan, 0.2, np.nan, np.nan, 0.9, np.nan, np.inf, np.nan, np.nan], np.float32)
    state, decision = strategy.decide(state, made_up_snapshot(scores, numeric, epochs_done=1, epochs=9))
    assert decision.keep.tolist() == [1, 4]  # 3 places, 2 finite members
    state, decision = strategy.decide(state, made_up_snapshot(scores, numeric, epochs_done=3, epochs=9))
    assert decision.keep.tolist() == [4]  # the last rung's 1 place (2 // 3 gave it to nobody)


@pytest.mark.parametrize("make, match", [
    (lambda: SuccessiveHalving(eta=1), r"eta must be an integer >= 2, got eta=1.*try eta=3"),
    (lambda: SuccessiveHalving(eta=2.5), r"eta must be an integer >= 2, got eta=2.5"),
    (lambda: Hyperband(max_epochs=27, eta=0), r"eta must be an integer >= 2, got eta=0"),
    (lambda: SuccessiveHalving(population=2, eta=3), r"population=2 with eta=3 cannot keep.*population >= eta"),
    (lambda: SuccessiveHalving(min_epochs=0), r"min_epochs must be an integer >= 1 \(epochs\), got min_epochs=0.*"
                                              r"Try min_epochs=1"),
    (lambda: SuccessiveHalving(max_epochs=2, eta=3), r"max_epochs=2 with min_epochs=1 and eta=3 leaves a single "
                                                     r"rung.*max_epochs >= eta \* min_epochs = 3"),
    (lambda: Hyperband().plan(), r"max_epochs is needed for ask / tell.*inside vt.tune it defaults to tune's epochs"),
])
def test_bad_settings_fail_with_argument_value_and_fix(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_budgets_that_do_not_fit_the_run_fail_before_training(digits):
    state = SuccessiveHalving(population=8, eta=3).init(SPACE)
    with pytest.raises(ValueError, match=r"epochs=2\) with min_epochs=1 and eta=3 leaves a single rung.*epochs >= "):
        SuccessiveHalving(population=8, eta=3).begin_training(state, vt.TrainingContext(2))  # before training
    for strategy in (SuccessiveHalving(population=8, eta=3), Hyperband(eta=3)):  # (it said a max_epochs never given)
        with pytest.raises(ValueError, match=r"^\w+: vt.tune\(epochs=2\) with min_epochs=1 and eta=3 leaves a single "
                                             r"rung: nothing to halve. Use epochs >= eta \* min_epochs = 3"):
            vt.tune(MODEL, SPACE, digits, strategy, epochs=2, batch_size=BATCH, progress=False)
    with pytest.raises(ValueError,
                       match=r"max_epochs=4 but vt.tune\(epochs=3\).*Use epochs=4 or leave max_epochs=None"):
        vt.tune(MODEL, SPACE, digits, SuccessiveHalving(population=4, eta=2, max_epochs=4), epochs=3,
                batch_size=BATCH, progress=False)


def test_budgets_left_open_take_tunes_epochs():
    # vt.tune calls strategy.for_epochs(epochs); tests/test_resume.py runs vt.Hyperband(eta=2) in vt.tune
    assert Hyperband().for_epochs(4) == Hyperband(max_epochs=4)
    assert Hyperband(eta=2).for_epochs(4).plan() == Hyperband(eta=2, max_epochs=4).plan()
    assert SuccessiveHalving(population=8, eta=2).for_epochs(4).max_epochs == 4
    assert Hyperband(max_epochs=9).for_epochs(4) == Hyperband(max_epochs=9)  # a budget given is kept


def test_work_share_is_the_member_epochs_the_rungs_train():
    """bucketing="auto" prices a halving round's training at this share of everyone for all epochs."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))
    halving = SuccessiveHalving(population=64, eta=3, min_epochs=10)
    state = halving.init(space, jax.random.key(0))
    assert halving.plan(100) == (((64, 11), (21, 33), (7, 100)),)
    assert halving.work_share(state, 100) == (64 * 11 + 21 * 22 + 7 * 67) / (64 * 100)
    hyperband = Hyperband(max_epochs=4, eta=2)
    state = hyperband.init(space, jax.random.key(0))
    shares = [hyperband.work_share(state.replace(bracket=b), 4) for b in range(3)]  # one bracket a round
    assert shares == [(4 * 1 + 2 * 1 + 1 * 2) / (4 * 4), (3 * 2 + 1 * 2) / (3 * 4), 1.0]
    assert vt.RandomSearch(population=4).work_share(None, 4) == 1.0
