"""PBT: exact exploit copies, failed members never copied from, exploration in each parameter's own
scale, schedules that decay where they should, a win over random search, lineage and replay."""

import json
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import vmaptune as vt
from helpers import TRAINING_BATCH, TRAINING_MODEL, TRAINING_SPACE, drive, training_program
from helpers import assert_trees_equal, host, take
from vmaptune import engine
from vmaptune import refit as refit_module
from vmaptune.population import PopulationRun
from vmaptune.strategies.pbt import PBT, PBTReplay, PBTSchedule, exploit_explore, perturb
from vmaptune.training import Population, StrategyDecider, train

SPACE, MODEL, BATCH = TRAINING_SPACE, TRAINING_MODEL, TRAINING_BATCH


@pytest.fixture(scope="module")
def program(digits):
    return training_program(digits)


# -- exploit: exact copies, failed members never sources --------------------------------------------------
def test_exploit_copies_weights_and_whole_optimizer_state_bit_for_bit(program, digits):
    strategy = PBT(population=4, fraction=0.5, interval=1, resample_prob=0.0)
    hp, state = strategy.ask(strategy.init(SPACE), jax.random.key(4))
    numeric = SPACE.numeric(hp)
    numeric["learning_rate"] = numeric["learning_rate"].at[3].set(1e6)  # member 3 diverges
    run = PopulationRun(program, numeric, engine.data_arrays(digits), member_ids=np.arange(4), seed=0, epochs=3)
    run.train(2)
    assert run.status()["diverged"].tolist() == [False, False, False, True]
    before = host(run.state.members)
    snapshot = run.snapshot()
    scores = snapshot.latest_score
    assert np.isnan(scores[3]) and np.isfinite(scores[:3]).all()
    state, _ = strategy.begin_training(state, vt.TrainingContext(3, program.structural_names()))
    state, decision = strategy.decide(state, snapshot, jax.random.key(7))
    run.apply(decision)  # the strategy decided; the engine applies
    new_hp = state.hp
    parents, copied = np.asarray(decision.copy_from), np.asarray(decision.update)
    ranked = np.argsort(-np.where(np.isfinite(scores), scores, -np.inf), kind="stable")
    # bottom half (the NaN member and the worst finite one) copies from the top half, never from member 3
    assert set(np.flatnonzero(copied)) == {3, ranked[2]}
    assert set(parents[copied]) <= set(ranked[:2])
    after = host(run.state.members)
    for i in range(4):
        src = parents[i]
        assert_trees_equal(take(after.params, i), take(before.params, src))
        opt_after, opt_before = take(after.opt_state, i), take(before.opt_state, src)
        # moments, step count and every optimizer setting not explored: bit-identical to the source
        assert_trees_equal(opt_after.inner_state, opt_before.inner_state)
        assert int(opt_after.count) == int(opt_before.count) == 2 * program.steps_per_epoch(digits.n_train)
        for name, value in opt_after.hyperparams.items():
            if name in ("learning_rate", "momentum") and copied[i]:
                # the explored settings are in the optimizer state at once (no recompile, next step uses them)
                np.testing.assert_array_equal(value, np.float32(np.asarray(SPACE.numeric(new_hp)[name])[i]))
            else:
                np.testing.assert_array_equal(value, opt_before.hyperparams[name], err_msg=name)
        # status and record are the network's: the source's best score and epoch, and its curves
        for field in ("diverged", "active", "stopped", "since_best", "monitor_best", "best_score", "best_epoch"):
            np.testing.assert_array_equal(getattr(after.status, field)[i], getattr(before.status, field)[src])
        for name, curve in run.curves.items():
            np.testing.assert_array_equal(curve[i, :2], snapshot.curves[name][src], err_msg=name)
        np.testing.assert_array_equal(after.key[i], before.key[i])  # own dropout stream
    assert not after.status.diverged[3] and after.status.active[3]  # the failed member lives on as a copy
    # the explored values were perturbed by 0.8 / 1.2 in their own scale, and the model sees them
    for i in np.flatnonzero(copied):
        ratio = float(new_hp["learning_rate"][i] / hp["learning_rate"][parents[i]])
        assert ratio == pytest.approx(0.8, rel=1e-5) or ratio == pytest.approx(1.2, rel=1e-5)
    np.testing.assert_array_equal(np.asarray(run.hp["dropout"]), np.asarray(new_hp["dropout"]))
    run.train(1)  # and training goes on from the copies
    assert np.isfinite(run.curves["val_score"][:, 2]).all()


def made_up_snapshot(scores, hp, epochs_done=2, epochs=4, stopped=()):
    """A population snapshot with the given latest scores (n,), as the engine would show it;
    `stopped`: members early stopping stopped (their last score carried on)."""
    n = len(scores)
    stopped = np.isin(np.arange(n), stopped)
    curves = {k: np.zeros((n, epochs_done), np.float32) for k in ("train_loss", "val_loss", "val_score")}
    curves["val_score"][:, -1] = scores
    return vt.Snapshot.make(epochs_done=epochs_done, epochs=epochs, curves=curves, active=~stopped,
                            diverged=~np.isfinite(scores), stopped=stopped,
                            best_score=np.where(np.isfinite(scores), scores, -np.inf).astype(np.float32),
                            best_epoch=np.full(n, epochs_done, np.int32), in_population=np.ones(n, bool),
                            hp={k: np.asarray(v) for k, v in hp.items()}, rows=n)


def test_pbt_decisions_on_made_up_scores_need_no_training():
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0), n_units=vt.IntUniform(4, 64))
    strategy = PBT(population=8, interval=2, fraction=0.25, resample_prob=0.0, factors=(1.2,))
    hp, state = strategy.ask(strategy.init(space), jax.random.key(0))
    state, first = strategy.begin_training(state, vt.TrainingContext(6, frozenset({"n_units"})))
    assert first is None and list(strategy.decision_epochs(state, 6)) == [2, 4]
    scores = np.asarray([0.5, 0.9, np.nan, 0.7, 0.1, 0.8, 0.6, 0.95], np.float32)
    state, decision = strategy.decide(state, made_up_snapshot(scores, space.numeric(hp)), jax.random.key(1))
    copied = np.asarray(decision.update)
    assert set(np.flatnonzero(copied)) == {2, 4}  # the failed member and the worst; 8 x 0.25 = 2 replaced
    assert set(np.asarray(decision.copy_from)[copied]) <= {1, 7}  # from the two best
    np.testing.assert_array_equal(np.asarray(decision.copy_from)[~copied], np.flatnonzero(~copied))
    parents = np.asarray(decision.copy_from)
    for i in np.flatnonzero(copied):
        np.testing.assert_allclose(decision.hp["learning_rate"][i],
                                   min(1.2 * float(hp["learning_rate"][parents[i]]), 1.0), rtol=1e-6)
        # n_units is structural in the program: it comes with the weights, never explored
        assert decision.hp["n_units"][i] == hp["n_units"][parents[i]]
    state = strategy.end_training(state, made_up_snapshot(scores[::-1], space.numeric(state.hp), 6, 6))
    assert state.trained and len(state.history_scores) == 2


def test_members_early_stopping_stopped_are_neither_copied_from_nor_into():
    """A stopped member is done: copying it gave copies that stopped at once with values they never
    trained with; copying into it lost its record. The fraction counts the members training."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0))
    strategy = PBT(population=8, interval=2, fraction=0.25)
    hp, state = strategy.ask(strategy.init(space), jax.random.key(0))
    state, _ = strategy.begin_training(state, vt.TrainingContext(6))
    scores = np.asarray([0.5, 0.9, np.nan, 0.7, 0.1, 0.8, 0.6, 0.95], np.float32)
    for key in range(5):
        _, decision = strategy.decide(state, made_up_snapshot(scores, space.numeric(hp), stopped=(4, 7)),
                                      jax.random.key(key))
        # 6 training: one replaced (the failed member, also the last), from the best still training
        assert np.flatnonzero(decision.update).tolist() == [2] and decision.copy_from[2] == 1
        assert decision.copy_from[4] == 4 and decision.copy_from[7] == 7


MOSTLY_FAILED = jnp.asarray([np.nan, np.inf, 1.0, np.nan, -np.inf, 2.0, np.nan, 3.0])


@pytest.mark.parametrize("key", range(6))
def test_failed_members_are_never_sources_and_always_replaced(key):
    space = vt.Space(x=vt.Uniform(0.0, 1.0))
    hp = {"x": jnp.arange(8, dtype=jnp.float32) / 8}
    args = (jnp.float32(0.5), jnp.asarray([0.8, 1.2]), jnp.float32(0.25))
    _, parents, copied = exploit_explore(jax.random.key(key), hp, MOSTLY_FAILED, jnp.ones(8, bool), *args,
                                         space=space, explore=("x",))
    parents, copied = np.asarray(parents), np.asarray(copied)
    assert set(np.flatnonzero(copied)) == {0, 1, 3, 4, 6}  # every failed member (+inf and -inf too)
    assert set(parents[copied]) <= {2, 5, 7}
    np.testing.assert_array_equal(parents[~copied], np.flatnonzero(~copied))
    # members not taking part (padding) are neither replaced nor copied from
    live = jnp.asarray([True] * 6 + [False] * 2)
    _, parents, copied = exploit_explore(jax.random.key(key), hp, MOSTLY_FAILED, live, *args, space=space,
                                         explore=("x",))
    assert not np.asarray(copied)[6:].any() and set(np.asarray(parents)[np.asarray(copied)]) <= {2, 5}
    # nothing finite: nobody to copy from, nothing changes
    new, parents, copied = exploit_explore(jax.random.key(key), hp, jnp.full(8, jnp.nan), jnp.ones(8, bool), *args,
                                           space=space, explore=("x",))
    assert not np.asarray(copied).any()
    np.testing.assert_array_equal(new["x"], hp["x"])
    # fewer live members than 1 / fraction (early stopping took the others): k is 0, yet the failed
    # ones copy from the best (they were left diverged for the rest of the run)
    few = jnp.asarray([True, True, True] + [False] * 5)
    scores = jnp.asarray([np.nan, 0.4, 0.9] + [0.0] * 5)
    _, parents, copied = exploit_explore(jax.random.key(key), hp, scores, few, jnp.float32(0.25), *args[1:],
                                         space=space, explore=("x",))
    assert np.flatnonzero(np.asarray(copied)).tolist() == [0] and int(parents[0]) == 2


def test_perturbations_move_each_parameter_in_its_own_scale():
    up, down = jnp.float32(1.2), jnp.float32(0.8)
    x = lambda v, dt=jnp.float32: jnp.asarray([v], dt)
    assert float(perturb(vt.LogUniform(1e-3, 1.0), x(0.01), up)[0]) == pytest.approx(0.012)
    assert float(perturb(vt.LogUniform(1e-3, 1.0), x(0.9), up)[0]) == pytest.approx(1.0)  # clipped at high
    assert float(perturb(vt.OneMinusLogUniform(0.5, 0.999), x(0.9), up)[0]) == pytest.approx(0.88)
    assert float(perturb(vt.Uniform(0.1, 0.5), x(0.3), down)[0]) == pytest.approx(0.26)
    assert int(perturb(vt.IntUniform(0, 10), x(5, jnp.int32), up)[0]) == 6  # at least one step
    assert int(perturb(vt.IntLogUniform(1, 512), x(1, jnp.int32), up)[0]) == 2
    assert int(perturb(vt.IntLogUniform(1, 512), x(100, jnp.int32), down)[0]) == 80
    assert int(perturb(vt.Choice([16, 32, 64]), x(1, jnp.int32), up)[0]) == 2  # the next option
    # the neighbour by value, whatever the list's order: 128 is the largest of [128, 32, 64]
    assert perturb(vt.Choice([128, 32, 64]), x([0, 1, 2], jnp.int32)[0], up).tolist() == [0, 2, 0]
    assert perturb(vt.Choice([128, 32, 64]), x([0, 1, 2], jnp.int32)[0], down).tolist() == [2, 1, 1]
    assert int(perturb(vt.Choice(["relu", "tanh"]), x(1, jnp.int32), down)[0]) == 1  # names: only resampled
    assert float(perturb(vt.Fixed(0.5), x(0.5), up)[0]) == 0.5


# -- ask / tell on any black-box objective --------------------------------------------------------------------
def test_ask_tell_tells_the_caller_whose_weights_to_copy():
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0), width=vt.IntLogUniform(4, 256),
                     act=vt.Choice(["relu", "tanh", "gelu"]))
    strategy = PBT(population=8, generations=3, fraction=0.25, explore=("learning_rate",), factors=(1.2,),
                   resample_prob=0.0)
    state = strategy.init(space, jax.random.key(0))
    hp0, state = strategy.ask(state, jax.random.key(1))
    np.testing.assert_array_equal(state.parents, np.arange(8))
    state = strategy.tell(state, hp0, jnp.arange(8.0))  # member 7 best, member 0 worst
    hp1, state = strategy.ask(state, jax.random.key(2))
    parents, copied = np.asarray(state.parents), np.asarray(state.copied)
    assert np.flatnonzero(copied).tolist() == [0, 1] and set(parents[copied]) <= {6, 7}
    for name in ("width", "act"):  # not explored: taken from the parent with its weights
        np.testing.assert_array_equal(hp1[name], np.asarray(hp0[name])[parents])
    np.testing.assert_allclose(hp1["learning_rate"][:2],
                               np.minimum(np.asarray(hp0["learning_rate"])[parents[:2]] * 1.2, 1.0), rtol=1e-6)
    np.testing.assert_array_equal(hp1["learning_rate"][2:], hp0["learning_rate"][2:])
    state = strategy.tell(state, hp1, jnp.arange(8.0)[::-1])
    hp2, state = strategy.ask(state, jax.random.key(3))
    state = strategy.tell(state, hp2, jnp.zeros(8))
    assert strategy.done(state) and strategy.total_evaluations() == 24
    with pytest.raises(RuntimeError, match="done"):
        strategy.ask(state, jax.random.key(4))
    lineage = strategy.lineage(state)
    assert lineage.shape == (8, 3) and (lineage[:, -1] == np.arange(8)).all()
    # member 0 copied its parent at the start of generation 1 and, best in it, kept its own network after
    assert lineage[0].tolist() == [parents[0], 0, 0]


# Noisy quadratic (Zhang et al. 2019): SGD on 0.5 * sum(h * w^2) with gradient noise. A large step
# helps early, but the noise floor grows with the step: the best learning rate falls over time.
D, STEPS = 64, 10
H = jnp.logspace(-2, 0, D)
NQM_SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0))


@jax.jit
def nqm_interval(w, lr, key):
    """w: (P, D), lr: (P,) -> w after STEPS noisy SGD steps, score -log10(loss) (P,)."""
    def step(w, k):
        return w - lr[:, None] * (H * w + jnp.sqrt(H) * jax.random.normal(k, w.shape)), None

    w, _ = jax.lax.scan(step, w, jax.random.split(key, STEPS))
    return w, -jnp.log10(0.5 * jnp.mean(H * w**2, axis=1))


def nqm_run(strategy, seed, generations=20, population=16):
    """Trains a population on the noisy quadratic for `generations` intervals, scoring every member
    after each (population x generations evaluations). PBT asks before every interval and the
    weights follow state.parents; random search asks once and keeps its draws.
    -> best score seen, final state."""
    key = jax.random.key(seed)
    state = strategy.init(NQM_SPACE, key)
    w = jnp.full((population, D), 10.0)
    best, hp = -np.inf, None
    for g in range(generations):
        if isinstance(strategy, PBT) or g == 0:
            hp, state = strategy.ask(state, jax.random.fold_in(key, g))
        if isinstance(strategy, PBT):
            w = w[state.parents]  # the caller's own exploit: one gather
        w, scores = nqm_interval(w, hp["learning_rate"], jax.random.fold_in(key, 1000 + g))
        best = max(best, float(jnp.max(scores)))
        if isinstance(strategy, PBT):
            state = strategy.tell(state, hp, scores)
    return best, state


def test_the_toy_needs_a_decaying_learning_rate():
    lrs = jnp.asarray([0.9, 0.5, 0.3, 0.1, 0.03])
    w = jnp.full((5, D), 10.0)
    curve = []
    for g in range(20):
        w, scores = nqm_interval(w, lrs, jax.random.fold_in(jax.random.key(0), g))
        curve.append(np.asarray(scores))
    assert int(np.argmax(curve[0])) == 0  # the largest step is best at first
    assert int(np.argmax(curve[-1])) > 0  # later a smaller one is


@pytest.mark.parametrize("seed", range(5))
def test_pbt_finds_a_decaying_schedule(seed):
    strategy = PBT(population=16, generations=20, interval=1)
    _, state = nqm_run(strategy, seed)
    schedule = strategy.schedule(state)  # the best member's
    lr = np.asarray([schedule.value_at("learning_rate", e) for e in range(20)])
    assert lr[:5].mean() > 3 * lr[-5:].mean(), lr


def test_pbt_beats_random_search_at_equal_evaluations():
    seeds = range(7)
    pbt = [nqm_run(PBT(population=16, generations=20, interval=1), s)[0] for s in seeds]
    rnd = [nqm_run(vt.RandomSearch(population=16), s)[0] for s in seeds]  # 16 fixed rates, same 320 evaluations
    assert np.median(pbt) > np.median(rnd) + 0.1, (pbt, rnd)  # -log10 loss: over 25% lower loss


# -- inside vt.tune: lineage, schedules, replay --------------------------------------------------------------
def test_pbt_runs_inside_tune(digits):
    result = vt.tune(MODEL, SPACE, digits, PBT(population=4, interval=1), epochs=3, batch_size=BATCH, progress=False)
    df = result.to_dataframe()
    assert len(df) == 4 and (df["round"] == 0).all() and result.best_score > 0.5


def test_lineage_and_schedules_are_consistent_and_replay_from_scratch(program, digits):
    strategy = PBT(population=4, interval=1, fraction=0.5)
    state, run, hp0 = drive(strategy, program, digits, epochs=3)
    state = strategy.tell(state, hp0, jnp.asarray(run.status()["best_score"]))
    assert strategy.done(state) and len(state.history_hp) == 3
    lineage = strategy.lineage(state)
    for g in range(1, 3):  # each generation's network came from its parent in the generation before
        np.testing.assert_array_equal(lineage[:, g - 1], np.asarray(state.history_parents[g])[lineage[:, g]])
    columns = strategy.member_columns(state)
    assert (columns["copies"] > 0).sum() >= 2  # two exploit steps, half the population replaced each time
    assert ((columns["parent"] == -1) == (columns["copies"] == 0)).all()
    final = SPACE.decode(strategy.final_hp(state))
    initial = SPACE.decode(hp0)
    for i in range(4):
        schedule = PBTSchedule.from_json(columns["hp_schedule"][i])
        assert schedule.values[-1] == pytest.approx(final[i])  # ends with the member's final values
        assert schedule.values[0] == pytest.approx(initial[lineage[i, 0]])  # starts as its root member
        assert columns["lineage"][i] == ">".join(map(str, lineage[i]))
    # replay the best schedule from scratch: the settings change at the schedule's epochs
    schedule = strategy.schedule(state)
    assert schedule.member == int(np.nanargmax(np.asarray(state.final_scores)))
    replay = PBTReplay(schedule, population=4)
    seen = []
    replay_state = replay.init(SPACE)
    hp, replay_state = replay.ask(replay_state, jax.random.key(0))
    rerun = PopulationRun(program, SPACE.numeric(hp), engine.data_arrays(digits), member_ids=np.arange(4), seed=5,
                          epochs=3)
    run_train = rerun.train

    def spy(n, *args, **kwargs):
        seen.append((rerun.epochs_done, np.asarray(rerun.state.members.opt_state.hyperparams["learning_rate"]),
                     np.asarray(rerun.hp["dropout"])))
        run_train(n, *args, **kwargs)

    rerun.train = spy
    adapter = StrategyDecider(replay, replay_state, vt.TrainingContext(3, program.structural_names()),
                              jax.random.key(0))
    population = Population([(rerun, np.arange(4))])
    population.apply(adapter.begin())
    train(population, 3, deciders=[adapter])
    assert [e for e, _, _ in seen] == list(schedule.starts)
    for epoch, lr, dropout in seen:
        np.testing.assert_allclose(lr, schedule.value_at("learning_rate", epoch), rtol=1e-6)
        np.testing.assert_allclose(dropout, schedule.value_at("dropout", epoch), rtol=1e-6)
    assert np.isfinite(rerun.curves["val_score"]).all()
    # and through vt.tune, from a results table
    table = vt.Results(SPACE, pd.DataFrame({"member": [0, 1], "score": [0.5, 0.9],
                                            "hp_schedule": ["[]", schedule.to_json()]}), {}, {}, {})
    again = vt.tune(MODEL, SPACE, digits, PBTReplay.from_results(table, population=4), epochs=3, batch_size=BATCH,
                    progress=False)
    assert len(again) == 4 and again.best_score > 0.5
    assert json.loads(schedule.to_json())[0]["epoch"] == 0
    # a row the table does not have (an IndexError of pandas' before), or one read as another (-1,
    # True, 1.9 took the last row and row 1), is refused
    for member in (2, -1, True, 1.9, "1"):
        with pytest.raises(ValueError, match=rf"PBTReplay.from_results\(member={re.escape(repr(member))}\): give a row "
                                             rf"of the results, an integer in 0 .. 1, or None for the best row"):
            PBTReplay.from_results(table, member=member)
    assert PBTReplay.from_results(table, member=np.int64(1)) == PBTReplay.from_results(table)


def test_the_refit_replays_the_schedule_a_member_trained_with(digits, monkeypatch):
    """A PBT member's refit changes its values at the epochs its schedule did (it was refit with its
    last values from the first epoch: a member that ended on a small learning rate after a large
    one refit far worse than it had scored)."""
    first = {"learning_rate": 0.01, "momentum": 0.9, "dropout": 0.3}
    schedule = PBTSchedule((0, 1), (first, {**first, "learning_rate": 0.3, "dropout": 0.0}))
    seen = []

    class Spied(PopulationRun):
        def train(self, n, *args, **kwargs):
            seen.append((self.epochs_done, np.asarray(self.state.members.opt_state.hyperparams["learning_rate"]),
                         np.asarray(self.hp["dropout"])))
            return super().train(n, *args, **kwargs)

    monkeypatch.setattr(refit_module, "PopulationRun", Spied)
    result = vt.tune(MODEL, SPACE, digits, PBTReplay(schedule, population=2), epochs=3, batch_size=BATCH, refit=1,
                     progress=False)
    assert result.best_params["learning_rate"] == pytest.approx(0.3)  # the table shows the values it ended with
    assert result.members["best_epoch"].iloc[result.best_index] > 1  # (the refit trains to the best epoch)
    assert [epoch for epoch, _, _ in seen] == [0, 1]
    for epoch, lr, dropout in seen:
        np.testing.assert_allclose(lr, schedule.value_at("learning_rate", epoch), rtol=1e-6)
        np.testing.assert_allclose(dropout, schedule.value_at("dropout", epoch), rtol=1e-6)


def test_a_refit_that_peaked_before_a_change_shows_the_values_it_trained_with(digits, monkeypatch):
    """The model's hyperparameters are those of its last refit epoch: one refit for 1 epoch of a
    schedule that changes at epoch 1 never trained with the later values (it showed them)."""
    import vmaptune.search as search_module

    first = {"learning_rate": 0.01, "momentum": 0.9, "dropout": 0.3}
    schedule = PBTSchedule((0, 1), (first, {**first, "learning_rate": 0.3, "dropout": 0.0}))
    real = search_module.refit_and_test
    monkeypatch.setattr(search_module, "refit_and_test",  # (as if its validation score had peaked at epoch 1)
                        lambda *a, epochs, **k: real(*a, epochs=np.ones_like(epochs), **k))
    result = vt.tune(MODEL, SPACE, digits, PBTReplay(schedule, population=2), epochs=3, batch_size=BATCH, refit=1,
                     progress=False)
    model = result.best_model()
    assert model.info["epochs"] == 1 and result.best_params["learning_rate"] == pytest.approx(0.3)
    assert model.hyperparameters["learning_rate"] == pytest.approx(0.01)
    assert model.hyperparameters["dropout"] == pytest.approx(0.3)


def test_a_refit_starts_from_the_initial_weights_its_network_grew_from(digits, monkeypatch):
    """A row's network may have been copied in from another member (lineage 'a>b>i'): its refit
    starts from member a's initial weights, as the network it scored did, not from member i's."""
    import vmaptune.search as search_module

    seen = {}
    real = search_module.refit_and_test

    def spy(*args, member_ids, **kwargs):
        seen["ids"] = np.asarray(member_ids)
        return real(*args, member_ids=member_ids, **kwargs)

    monkeypatch.setattr(search_module, "refit_and_test", spy)
    result = vt.tune(MODEL, SPACE, digits, PBT(population=4, interval=1, fraction=0.5), epochs=3, batch_size=BATCH,
                     refit=4, progress=False)
    table = result.members.iloc[result.ranking()[:4]]
    roots = [int(text.split(">")[0]) for text in table["lineage"]]
    assert (table["member"].to_numpy() != roots).any()  # (some network was copied in)
    np.testing.assert_array_equal(seen["ids"], roots)


# -- bad input: argument, value and fix in the message ------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(fraction=0.0), r"fraction must be a number in \(0, 0.5\], got fraction=0.0.*try fraction=0.25"),
    (dict(fraction=0.6), r"fraction must be a number in \(0, 0.5\], got fraction=0.6"),
    (dict(interval=0), r"interval must be an integer >= 1 .*got interval=0. Try interval=2"),
    (dict(population=3), r"population=3 with fraction=0.25 replaces no member.*population >= 4"),
    (dict(population=1), r"population=1 .*population >= 4"),
    (dict(factors=(0.8, -1.0)), r"factors must be a non-empty list of positive numbers.*factors=\(0.8, 1.2\)"),
    (dict(resample_prob=1.5), r"resample_prob must be a number in \[0, 1\], got resample_prob=1.5"),
    (dict(generations=0), r"generations must be an integer >= 1 or None, got generations=0.*try generations"),
])
def test_bad_settings_fail_with_argument_value_and_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PBT(**kwargs)


def test_bad_explore_names_and_epochs_fail_before_training(digits):
    with pytest.raises(ValueError, match=r"explore names \['lr'\], which the space does not have"):
        PBT(population=4, explore=("lr",)).init(SPACE)
    space = SPACE.replace(n_units=vt.IntUniform(4, 16))
    strategy = PBT(population=4, interval=1, explore=("n_units",))
    state = strategy.init(space)  # fine for ask / tell, where any name may change
    context = vt.TrainingContext(2, vt.build_program(MODEL, space, digits).structural_names())
    with pytest.raises(ValueError, match=r"explore names \['n_units'\], which vt.tune cannot change.*Leave them out"):
        strategy.begin_training(state, context)  # fails before anything compiles
    with pytest.raises(ValueError, match=r"interval=3 with epochs=3 never exploits.*interval < epochs"):
        vt.tune(MODEL, SPACE, digits, PBT(population=4, interval=3), epochs=3, batch_size=BATCH, progress=False)
    with pytest.raises(ValueError, match=r"interval=1 with epochs=1 never exploits.*Train at least 2 epochs"):
        PBT(population=4, interval=1).check_epochs(1)  # (it advised 'Use interval < epochs, e.g. interval=1')
    with pytest.raises(ValueError, match=r"changes hyperparameters at epoch 2, but epochs=2"):
        PBTReplay(PBTSchedule((0, 2), ({"x": 1.0}, {"x": 2.0}))).check_epochs(2)
    # a space without one of the schedule's names trained the model's default while the schedule showed its value
    schedule = PBTSchedule((0, 1), ({"learning_rate": 0.01, "n_units": 10}, {"learning_rate": 0.02, "n_units": 10}))
    with pytest.raises(ValueError, match=r"PBTReplay: the schedule sets \['n_units'\], which the space does not have "
                                         r"\(it has \['learning_rate'\]\); a replay trains the schedule whole"):
        PBTReplay(schedule).init(vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)))


def test_pbt_keeps_structural_names_in_one_program_under_automatic_bucketing(digits, monkeypatch):
    """Batch-size classes and width groups would split the population into several programs,
    which PBT's copies cannot cross: bucketing="auto" (the default) keeps PBT in one."""
    from vmaptune import costs

    monkeypatch.setattr(costs, "plan_seconds", lambda parts, *a: -len(parts))  # the most programs look cheapest
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), batch_size=vt.Choice([16, 128]),
                     n_units=vt.Choice([8, 64]))
    result = vt.tune(vt.MLP(hidden=1), space, digits, vt.PBT(population=4, interval=1), epochs=2, progress=False)
    assert result.settings["programs"] == [1] and len(result) == 4
    # bucketing=True too, said (it failed after the first chunks were planned, telling to fix n_units)
    with pytest.warns(UserWarning, match=r"bucketing=True is not applied: PBT copies members' weights between rows, "
                                         r"so its population trains in one program"):
        forced = vt.tune(vt.MLP(hidden=1), space, digits, vt.PBT(population=4, interval=1), epochs=2, progress=False,
                         bucketing=True)
    pd.testing.assert_frame_equal(forced.members, result.members)


@pytest.mark.parametrize("even", [False, True])
def test_a_refit_whose_schedule_shrinks_the_batch_takes_every_step_of_the_smaller_batch(even):
    """A replayed PBT lineage that copies a smaller batch_size mid-run: each epoch takes the steps of
    the batch it trains with then (an epoch's steps were set by the starting batches: 2 of 25)."""
    from vmaptune import refit
    from vmaptune.program import Programs

    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.Fixed(0.05), batch_size=vt.Choice([5, 64]))
    model = vt.MLP(hidden=1, units=8)
    programs = Programs(model, space, data, vt.build_program(model, space, data, even_batches=even), bucketing=False)
    hp = {k: np.asarray(v) for k, v in space.numeric(space.encode([{"learning_rate": 0.05, "batch_size": 64}])).items()}
    runs = []
    train = refit._train_with_changes
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(refit, "_train_with_changes", lambda run, *a: (train(run, *a), runs.append(run)))
        refit.refit_and_test(programs, hp, data, member_ids=np.array([0]), epochs=np.array([2]), schedule_epochs=2,
                             seed=0, changes=[{1: {"batch_size": 5.0}}])
    n = data.n_train + data.X_val.shape[0]
    rows = (lambda b: n // -(-n // min(b, n))) if even else (lambda b: b)
    assert int(np.asarray(runs[0].state.members.opt_state.inner_state.count)[0]) == n // rows(64) + n // rows(5)


class _Shifted(nn.Module):  # a float field read at evaluation: the test score shows which value it had
    shift: float = 0.0

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.relu(nn.Dense(8)(x))) + 5.0 * self.shift


def test_a_refit_change_at_the_epoch_a_member_stops_never_reaches_its_test_score():
    """A change at epoch 2 of a member refit for 2 epochs comes after its last step: it scored the
    test split with that value when a member refit beside it trained longer."""
    from vmaptune.program import Programs

    data = vt.load_dataset("diabetes")
    space = vt.Space(learning_rate=vt.Fixed(0.01), shift=vt.Uniform(-1.0, 1.0))
    model = vt.Linen(_Shifted)
    programs = Programs(model, space, data, vt.build_program(model, space, data), bucketing=False)
    rows = [{"learning_rate": 0.01, "shift": 0.0}, {"learning_rate": 0.01, "shift": 0.5}]
    hp = {k: np.asarray(v) for k, v in space.numeric(space.encode(rows)).items()}
    refit = lambda members, epochs: refit_module.refit_and_test(  # noqa: E731
        programs, {k: v[members] for k, v in hp.items()}, data, member_ids=np.asarray(members),
        epochs=np.asarray(epochs), schedule_epochs=3, seed=0, changes=[{2: {"shift": 1.0}}, {}][:len(members)])
    beside, alone = refit([0, 1], [2, 3])[0], refit([0], [2])[0]
    assert alone.test_score == pytest.approx(beside.test_score, rel=1e-5)
