"""BOHB: Hyperband's brackets, each new bracket proposed by a GP fitted on the largest budget that
has enough scores; a share stays random. Ask / tell, inside vt.tune, and bad input."""

import os
import sys

import jax
import numpy as np
import pytest

import vmaptune as vt
from vmaptune.testing_functions import BRANIN

sys.path.insert(0, os.path.dirname(__file__))
import resume_child  # noqa: E402

# a small acquisition maximiser: these tests check bookkeeping and that the model helps
FAST = dict(model=vt.BayesOpt(restarts=1, num_candidates=128, num_starts=1, refine_steps=5))


def run(strategy, seed):
    """Ask / tell to the end on Branin (scores: -value, whatever the budget); returns the state
    after each bracket's ask and each member's regret, per bracket."""
    state = strategy.init(BRANIN.space, jax.random.key(seed))
    asked, regrets, k = [], [], 0
    while not strategy.done(state):
        hp, state = strategy.ask(state, jax.random.key(1000 * seed + k))
        k += 1
        value = np.asarray(BRANIN(hp))
        if state.rung == 0:
            asked.append(state)
            regrets.append(value - BRANIN.minimum)
        state = strategy.tell(state, hp, -value)
    return asked, regrets


@pytest.fixture(scope="module")
def runs():
    """BOHB(max_epochs=27, eta=3) to the end on Branin, seeds 0, 1 and 2."""
    strategy = vt.BOHB(max_epochs=27, eta=3, **FAST)  # min_points: 2 names + 2 = 4
    return [run(strategy, seed) for seed in range(3)]


def test_brackets_start_random_then_come_from_the_largest_budget_with_enough_scores(runs):
    asked, _ = runs[0]
    # bracket 0 has no scores; then the largest budget with >= 4 scores: 3 epochs (9 scores; 27
    # epochs has 1), 9 epochs (3 + 4), 27 epochs (1 + 1 + 2)
    assert [s.model_budget for s in asked] == [0, 3, 9, 27]
    sizes = [len(s.from_model) for s in asked]
    assert sizes == [27, 12, 6, 4]
    # a third of each bracket stays random (rounded), the rest comes from the model
    assert [int(s.from_model.sum()) for s in asked] == [0, 12 - 4, 6 - 2, 4 - 1]
    # one score per rung a member reached, with the budget it was measured at
    assert [len(s.observed_score) for s in asked] == [0, 27 + 9 + 3 + 1, 40 + 12 + 4 + 1, 57 + 6 + 2]
    last = asked[-1]
    assert np.bincount(last.observed_budget, minlength=28)[[1, 3, 9, 27]].tolist() == [27, 9 + 12, 3 + 4 + 6, 1 + 1 + 2]
    assert np.all(np.isfinite(last.observed_score))


def test_model_proposals_beat_the_random_members_of_the_same_brackets(runs):
    model, random = [], []
    for asked, regrets in runs:
        for state, regret in zip(asked[1:], regrets[1:]):
            model.extend(regret[state.from_model])
            random.extend(regret[~state.from_model])
    # the GP's proposals sit where Branin is low: a fraction of the random members' regret (over
    # 16 seeds, in groups of 3 to 8, that fraction ranged 0.10-0.44 with two candidate pools' streams)
    assert np.median(model) < 0.5 * np.median(random), (np.median(model), np.median(random))


@pytest.mark.parametrize("model", [None, vt.BayesOpt(acquisition="ucb", lengthscale_prior=(0.3, 0.5))])
def test_each_brackets_model_fits_by_maximum_likelihood_over_the_whole_space(model):
    bohb = vt.BOHB(max_epochs=9, model=model)
    proposer = bohb._proposer(5, len(bohb.plan()))
    assert proposer.lengthscale_prior is None and proposer.trust_region is False
    # one ask per bracket at most: its proposal program is priced for them all
    assert (proposer.population, proposer.rounds) == (5, 3)


def diverging_above(hp, budget):
    """Better with a larger learning rate, up to 0.05, above which every run diverges (NaN): the
    best learning rate lies just below divergence, as it often does."""
    lr, x = np.asarray(hp["lr"], float), np.asarray(hp["x"], float)
    return np.where(lr > 0.05, np.nan, np.log10(lr) - 0.5 * (x - 0.5) ** 2 + 0.01 * budget)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_model_learns_where_runs_diverge(seed):
    """Failed runs are observations ranked last (BOHB keeps a crash as the worst loss), and the
    model of budget B sees the runs that failed before B (never promoted, they have no score at B).
    Before, the model saw finite scores only and proposed 14 diverging members of 15."""
    space = vt.Space(lr=vt.LogUniform(1e-4, 1.0), x=vt.Uniform(0.0, 1.0))
    strategy = vt.BOHB(max_epochs=27, eta=3, **FAST)
    state, diverged = strategy.init(space, jax.random.key(seed)), {True: [], False: []}
    for k in range(100):
        if strategy.done(state):
            break
        hp, state = strategy.ask(state, jax.random.key(100 * seed + k))
        if state.rung == 0:
            for from_model in (True, False):
                diverged[from_model] += list(np.asarray(hp["lr"])[state.from_model == from_model] > 0.05)
        state = strategy.tell(state, hp, diverging_above(hp, state.budget))
    assert np.isnan(state.observed_score).sum() >= 5  # the failures are kept, at the budget they failed at
    assert len(diverged[True]) == 15 and sum(diverged[True]) <= 2
    assert sum(diverged[False]) >= 8  # (about 30 % of the random members: the space's share above 0.05)


def test_random_fraction_one_is_hyperband():
    asked, _ = run(vt.BOHB(max_epochs=9, eta=3, random_fraction=1.0, **FAST), 0)
    assert all(s.from_model.sum() == 0 and s.model_budget == 0 for s in asked[:1])
    assert all(s.from_model.sum() == 0 for s in asked)


def test_bohb_runs_its_brackets_inside_tune(tmp_path):
    # the resume test's search (tests/resume_child.py) with BOHB for Hyperband: the same programs
    result = vt.tune(vt.MLP(hidden=1, units=8), resume_child.SPACE, resume_child.data(),
                     vt.BOHB(eta=2, min_points=3, **FAST), epochs=resume_child.EPOCHS, batch_size=16, seed=3,
                     progress=False, run_dir=str(tmp_path / "run"))
    members = result.members
    # Hyperband(eta=2) over 4 epochs: brackets of 4, 3 and 3 members (one round each)
    assert members.groupby("round").size().tolist() == [4, 3, 3]
    assert set(members["proposed_by"]) <= {"model", "random"}
    assert (members.loc[members["round"] == 0, "proposed_by"] == "random").all()
    later = members[members["round"] > 0]
    assert (later["proposed_by"] == "model").sum() == 2 + 2  # 3 - round(3 / 3) per bracket
    assert np.isfinite(result.best_score)
    saved = vt.load_results(str(tmp_path / "run"))
    assert saved.members["proposed_by"].tolist() == members["proposed_by"].tolist()


@pytest.mark.parametrize("kwargs, match", [
    (dict(random_fraction=1.5), r"random_fraction must be a number in \[0, 1\].*random_fraction=1.5"),
    (dict(min_points=1), r"min_points must be an integer >= 2.*min_points=1"),
    (dict(model="gp"), r"model must be a vt.BayesOpt.*model='gp'"),
    (dict(population=8), r"BOHB derives its population from max_epochs"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        vt.BOHB(max_epochs=27, **kwargs)


def test_a_budget_needs_min_points_finite_scores_before_its_model_proposes():
    """Failures are observations, ranked last, but they are no scores to fit: a budget of 1 finite
    and 3 failed scores took the model (which then proposed at random, labelled 'model')."""
    strategy = vt.BOHB(max_epochs=27, eta=3, min_points=4)
    state = strategy.init(vt.Space(x=vt.Uniform(0.0, 1.0)), jax.random.key(0))
    nan = np.nan
    state = state.replace(observed_hp={"x": np.linspace(0, 1, 9).astype(np.float32)},
                          observed_budget=np.asarray([3, 3, 3, 3, 1, 27, 27, 27, 27], np.int32),
                          observed_score=np.asarray([.1, .2, .3, .4, nan, .5, nan, nan, nan], np.float32))
    budget, rows = strategy._model_budget(state)
    assert budget == 3 and rows.tolist() == [0, 1, 2, 3, 4]  # (and the failure at budget 1, ranked last)


def test_bohb_over_a_space_of_fixed_values_says_so_in_its_own_name():
    with pytest.raises(ValueError, match=r"^BOHB.init: the space has nothing to search"):
        vt.BOHB(max_epochs=9).init(vt.Space(learning_rate=vt.Fixed(0.1)), None)
