"""The engine applies decisions: packing, copying, new values, freezing and budgets do exactly what
they say, and nothing else."""

import jax
import numpy as np
import pytest

import vmaptune as vt
from helpers import TRAINING_SPACE, assert_trees_equal, host, take, training_program
from vmaptune import engine
from vmaptune.population import PopulationRun
from vmaptune.training import Population, train

SPACE = TRAINING_SPACE


@pytest.fixture(scope="module")
def program(digits):
    return training_program(digits)


def new_run(program, digits, epochs=3, n=4, **kwargs):
    hp = SPACE.numeric(SPACE.sample(jax.random.key(9), n))
    return PopulationRun(program, hp, engine.data_arrays(digits), member_ids=np.arange(n), seed=0, epochs=epochs,
                         **kwargs)


def test_budgets_and_freezing_are_exact_no_ops_from_then_on(program, digits):
    run = new_run(program, digits, budget=[3, 1, 3, 3])
    run.train(1)
    run.apply(vt.Decision(freeze=np.asarray([False, False, True, False])))
    after_one = host(run.state.members)
    run.train(2)
    after_three = host(run.state.members)
    steps = program.steps_per_epoch(digits.n_train)
    for i in (1, 2):  # out of budget / frozen after epoch 1: weights, optimizer and step count untouched
        assert_trees_equal(take(after_three.params, i), take(after_one.params, i))
        assert_trees_equal(take(after_three.opt_state, i), take(after_one.opt_state, i))
        assert int(take(after_three.opt_state, i).count) == steps
        assert np.isnan(run.curves["train_loss"][i, 1:]).all() and np.isfinite(run.curves["train_loss"][i, 0])
    assert int(take(after_three.opt_state, 0).count) == 3 * steps
    status = run.status()
    assert not status["stopped"].any() and not status["diverged"].any()  # frozen, not stopped or failed


def test_keep_packs_the_rows_and_the_kept_members_train_on_unchanged(program, digits):
    plain, packed = new_run(program, digits), new_run(program, digits, packing="always")
    plain.train(3)
    packed.train(1)
    packed.apply(vt.Decision(keep=[0, 3]))
    assert packed.rows == 2 and packed.snapshot().in_population.tolist() == [True, False, False, True]
    packed.train(2)
    for i in (0, 3):
        for key in ("train_loss", "val_loss", "val_score"):
            np.testing.assert_allclose(packed.curves[key][i], plain.curves[key][i], rtol=1e-5, atol=1e-6)
    for i in (1, 2):  # packed out: validation carried on, no training, records frozen
        assert (packed.curves["val_score"][i, 1:] == packed.curves["val_score"][i, 0]).all()
        assert np.isnan(packed.curves["train_loss"][i, 1:]).all()
    assert packed.row_epochs == 4 + 2 * 2 and packed.member_epochs == 4 + 2 * 2
    with pytest.raises(ValueError, match=r"Decision.keep must list distinct member indices in 0..3, got \[0, 7\]"):
        packed.apply(vt.Decision(keep=[0, 7]))
    with pytest.raises(ValueError, match=r"copy_from names members \[1\], which were packed out"):
        packed.apply(vt.Decision(copy_from=np.asarray([1, 1, 2, 3])))


def test_new_values_reach_the_model_and_the_optimizer_state_of_the_members_named(program, digits):
    run = new_run(program, digits)
    run.train(1)
    before = host(run.state.members)
    lr = np.asarray(run.snapshot().hp["learning_rate"]).copy()
    lr[0] = 0.0
    dropout = np.full(4, 0.25, np.float32)
    run.apply(vt.Decision(hp={"learning_rate": lr, "dropout": dropout},
                          update=np.asarray([True, False, True, False])))
    hyper = host(run.state.members.opt_state.hyperparams)
    np.testing.assert_array_equal(hyper["learning_rate"], np.float32(lr))
    np.testing.assert_array_equal(np.asarray(run.hp["dropout"])[[0, 2]], [0.25, 0.25])
    assert (run.snapshot().hp["dropout"][[1, 3]] != 0.25).all()  # not named: unchanged
    run.train(1)
    after = host(run.state.members)
    assert_trees_equal(take(after.params, 0), take(before.params, 0))  # learning rate 0: the weights stay
    assert not np.array_equal(after.params["head_kernel"][1], before.params["head_kernel"][1])


def test_decisions_split_over_program_groups(digits):
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), n_units=vt.Choice([8, 32]))
    model = vt.MLP(hidden=1)
    hp = space.numeric(space.encode([{"learning_rate": 0.05, "n_units": u} for u in (8, 32, 8, 32)]))
    from vmaptune.program import Programs

    programs = Programs(model, space, digits, vt.build_program(model, space, digits, batch_size=128), bucketing=True)
    parts = []
    for prog, members in programs.partition(hp):
        sub = {k: v[members] for k, v in hp.items()}
        parts.append((PopulationRun(prog, sub, engine.data_arrays(digits), member_ids=members, epochs=2,
                                    packing="always"), members))
    assert [m.tolist() for _, m in parts] == [[0, 2], [1, 3]]
    population = Population(parts)
    train(population, 2, deciders=[KeepFirstAndLast()])
    snapshot = population.snapshot()
    assert snapshot.in_population.tolist() == [True, False, False, True] and snapshot.rows == 2
    with pytest.raises(ValueError, match="copies between members that train in different programs"):
        population.apply(vt.Decision(copy_from=np.asarray([1, 1, 2, 3])))


class KeepFirstAndLast:
    def decision_epochs(self, epochs):
        return [1]

    def decide(self, snapshot):
        return vt.Decision(keep=[0, snapshot.size - 1])
