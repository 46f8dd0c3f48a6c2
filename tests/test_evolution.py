"""Evolution: selection, elitism, crossover and mutation in the unit cube; failed members never breed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from objectives import bowl, median_best, mixed_space, run
from vmaptune.strategies.evolution import Evolution, mutate, select_parents, uniform_crossover

SEEDS = range(9)


@pytest.mark.parametrize("selection", ["tournament", "truncation"])
def test_beats_random_search_at_equal_evaluations(selection):
    space = mixed_space()
    evo, _ = median_best(Evolution(population=16, generations=10, selection=selection), space, bowl, SEEDS)
    rnd, _ = median_best(vt.RandomSearch(population=16, rounds=10), space, bowl, SEEDS)
    assert evo > rnd, (evo, rnd)


SPACE = vt.Space(x=vt.Uniform(0.0, 1.0), n=vt.IntUniform(0, 7), act=vt.Choice(["a", "b", "c", "d"]), seed=3)
P = 8


def breed(scores, key=1, x=None, n=None, act=None, **settings):
    """Tells one generation of P members (member i has x = i / 10, n = i) and asks the next."""
    strategy = Evolution(population=P, generations=2, **settings)
    state = strategy.init(SPACE, jax.random.key(0))
    hp = {
        "x": jnp.asarray(np.arange(P) / 10 if x is None else x, jnp.float32),
        "n": jnp.asarray(np.arange(P) if n is None else n, jnp.int32),
        "act": jnp.asarray(np.arange(P) % 4 if act is None else act, jnp.int32),
        "seed": jnp.full(P, 3, jnp.int32),
    }
    state = strategy.tell(state, hp, jnp.asarray(scores, jnp.float32))
    child, _ = strategy.ask(state, jax.random.key(key))
    return hp, child


# Members 2 and 5 are the only finite ones; the failures include +inf, which must not win either.
MOSTLY_FAILED = [np.nan, np.inf, 1.0, np.nan, -np.inf, 2.0, np.nan, np.nan]


@pytest.mark.parametrize("selection", ["tournament", "truncation"])
@pytest.mark.parametrize("key", [1, 2, 3])
def test_failed_members_are_never_parents_or_elites(selection, key):
    parent_hp, child = breed(
        MOSTLY_FAILED, key=key, selection=selection, truncation=1.0, elite=3, crossover_prob=1.0, mutation_prob=0.0
    )
    # With crossover but no mutation every gene comes from a parent: members 2 or 5 only.
    for name in SPACE.names:
        assert np.isin(np.asarray(child[name]), np.asarray(parent_hp[name])[[2, 5]]).all(), name
    assert set(np.asarray(child["n"]).tolist()) == {2, 5}
    # Elites: the best finite member first; member 2 second; no failed member in the third slot.
    assert int(child["n"][0]) == 5 and int(child["n"][1]) == 2


def test_every_member_failed_draws_a_fresh_generation():
    parent_hp, child = breed([np.nan] * P, mutation_prob=0.0, crossover_prob=0.0)
    x = np.asarray(child["x"])
    assert len(np.unique(x)) == P and not np.isin(x, np.asarray(parent_hp["x"])).any()
    assert ((x >= 0) & (x <= 1)).all()


def test_elites_are_copied_exactly_in_rank_order():
    scores = [0.0, 7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0]
    parent_hp, child = breed(scores, elite=2, mutation_prob=1.0, sigma=0.3)
    for name in SPACE.names:
        np.testing.assert_array_equal(child[name][:2], parent_hp[name][jnp.asarray([1, 3])])
    # Everything else was mutated (mutation_prob=1): no other member is a copy.
    assert not np.isin(np.asarray(child["x"][2:]), np.asarray(parent_hp["x"])).any()


def test_elites_keep_their_exact_values_in_every_scale():
    # Unit-cube positions do not round-trip every float32 value; elites are copied, not decoded.
    space = mixed_space()
    pool = space.sample(jax.random.key(0), 256)
    back = space.from_unit(space.to_unit(pool))
    lossy = np.flatnonzero(np.asarray(back["dropout"]) != np.asarray(pool["dropout"]))
    assert len(lossy) >= 2  # else this test would prove nothing
    # A population of 16 whose two best members (8 and 3) do not round-trip.
    members = np.arange(16)
    members[[8, 3]] = lossy[:2]
    hp = {name: x[members] for name, x in pool.items()}
    scores = np.zeros(16, np.float32)
    scores[[8, 3]] = [2.0, 1.0]
    strategy = Evolution(population=16, generations=10, elite=2)
    state = strategy.tell(strategy.init(space, jax.random.key(0)), hp, scores)
    nxt, _ = strategy.ask(state, jax.random.key(1))
    for name in space.names:
        np.testing.assert_array_equal(nxt[name][:2], hp[name][np.asarray([8, 3])])


def test_truncation_breeds_only_from_the_best_fraction():
    scores = np.arange(P, dtype=np.float32)  # member 7 best
    _, child = breed(scores, selection="truncation", truncation=0.25, elite=0, crossover_prob=0.0, mutation_prob=0.0)
    assert set(np.asarray(child["n"]).tolist()) <= {6, 7}
    assert len(set(np.asarray(child["n"]).tolist())) == 2


def test_tournament_selects_better_members_than_uniform():
    n = 256
    strategy = Evolution(population=n, generations=2, tournament_size=3, elite=0, crossover_prob=0.0, mutation_prob=0.0)
    space = vt.Space(x=vt.Uniform(0.0, 1.0))
    state = strategy.init(space, jax.random.key(0))
    hp, _ = strategy.ask(state, jax.random.key(0))
    state = strategy.tell(state, hp, hp["x"])  # score = x
    child, _ = strategy.ask(state, jax.random.key(1))
    # Best of 3 uniform draws has mean 3/4; one uniform draw, 1/2.
    assert float(jnp.mean(child["x"])) > 0.68 > 0.55 > float(jnp.mean(hp["x"]))


def test_mutation_is_gaussian_in_the_unit_cube_and_resamples_choices():
    x = np.asarray([0.0, 1.0, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0])
    parent_hp, child = breed(
        np.zeros(P), x=x, act=np.zeros(P), elite=0, crossover_prob=0.0, mutation_prob=1.0, sigma=0.05
    )
    cx, px = np.asarray(child["x"]), np.asarray(parent_hp["x"])
    # Near a parent, reflected at the bounds: inside [0, 1], not piled on them.
    assert ((cx >= 0) & (cx <= 1)).all() and not np.isin(cx, [0.0, 1.0]).any()
    assert (np.min(np.abs(cx[:, None] - px[None]), axis=1) < 0.25).all()
    # Every parent has option "a"; a mutated choice is a fresh uniform draw.
    assert len(set(np.asarray(child["act"]).tolist())) >= 2


def test_same_key_same_proposals_and_counts():
    space = mixed_space()
    strategy = Evolution(population=16, generations=10)
    a = run(strategy, space, bowl, jax.random.key(1))
    b = run(strategy, space, bowl, jax.random.key(1))
    c = run(strategy, space, bowl, jax.random.key(2))
    assert a["evaluations"] == strategy.total_evaluations() == 160 and a["state"].round == 10
    for x, y, z in zip(a["asked"], b["asked"], c["asked"]):
        for name in space.names:
            np.testing.assert_array_equal(x[name], y[name])
        assert not np.array_equal(x["learning_rate"], z["learning_rate"])


def test_operators_on_fixed_draws():
    scores = jnp.asarray([np.nan, 1.0, 3.0, 2.0])  # ranks: member 2, 3, 1; member 0 failed
    draw = jnp.asarray([[0.9, 0.5], [0.99, 0.99], [0.0, 0.7]])
    # Tournament: rank positions floor(draw * 3 finite) = (2, 1), (2, 2), (0, 2) -> best of each.
    assert select_parents(draw, scores, "tournament", 2).tolist() == [3, 1, 2]
    # Truncation to the best 2: floor(draw[:, 0] * 2) = 1, 1, 0.
    assert select_parents(draw, scores, "truncation", 2).tolist() == [3, 3, 2]
    a, b = jnp.zeros((2, 3)), jnp.ones((2, 3))
    cross = jnp.asarray([[0.1, 0.2, 0.7, 0.4], [0.9, 0.2, 0.2, 0.2]])  # first column: cross or copy
    assert uniform_crossover(cross, a, b, 0.5).tolist() == [[1, 0, 1], [0, 0, 0]]
    u = jnp.asarray([[0.85, 0.5, 0.5]])
    is_choice = jnp.asarray([False, True, False])
    # Genes 0 and 1 mutate (0.1, 0.2 < 0.5). Gene 0: quantile 0.97725 is +2 sigma, 0.85 + 0.2
    # reflects at 1 to 0.95. Gene 1, a choice: redrawn as 0.8. Gene 2 stays.
    draw = jnp.asarray([[0.1, 0.2, 0.9, 0.3, 0.8, 0.3, 0.97725, 0.5, 0.5]])
    mutated = jax.jit(mutate)(draw, u, is_choice, 0.5, 0.1)  # one compilation, not one per op
    np.testing.assert_allclose(mutated, [[0.95, 0.8, 0.5]], atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"population": 1}, r"population must be an integer >= 2, got 1"),
        ({"generations": 0}, r"generations must be an integer >= 1, got 0"),
        ({"selection": "roulette"},
         r"selection must be one of \['tournament', 'truncation'\], got selection='roulette'"),
        ({"tournament_size": 0}, r"tournament_size must be an integer >= 1, got 0"),
        ({"population": 4, "tournament_size": 5},
         r"tournament_size must be <= population, got tournament_size=5 with population=4. Lower tournament_size"),
        ({"truncation": 0.0}, r"truncation must be a number in \(0, 1\], got truncation=0.0"),
        ({"truncation": 1.5}, r"truncation must be a number in \(0, 1\], got truncation=1.5"),
        ({"elite": -1}, r"elite must be an integer >= 0, got -1"),
        ({"population": 4, "elite": 4}, r"elite must be < population, got elite=4 with population=4.*Lower elite"),
        ({"crossover_prob": 1.5}, r"crossover_prob must be a number in \[0, 1\], got crossover_prob=1.5"),
        ({"mutation_prob": -0.1}, r"mutation_prob must be a number in \[0, 1\], got mutation_prob=-0.1"),
        ({"mutation_prob": "0.2"}, r"mutation_prob must be a number in \[0, 1\], got mutation_prob='0.2'"),
        ({"sigma": 0.0}, r"sigma must be a finite number > 0, got sigma=0.0.*try sigma=0.1"),
        ({"sigma": float("inf")}, r"sigma must be a finite number > 0, got sigma=inf"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Evolution(**kwargs)


def test_misuse_of_ask_and_tell_fails_clearly():
    strategy = Evolution(population=4, generations=1)
    with pytest.raises(TypeError, match=r"Evolution.init: space must be a vt.Space"):
        strategy.init(None, jax.random.key(0))
    space = vt.Space(x=vt.Uniform(0.0, 1.0))
    state = strategy.init(space, jax.random.key(0))
    hp, _ = strategy.ask(state, jax.random.key(0))
    with pytest.raises(ValueError, match=r"hp has 3 members, expected population=4"):
        strategy.tell(state, {"x": hp["x"][:3]}, jnp.zeros(3))
    with pytest.raises(ValueError, match=r"hp does not match the space: missing \['x'\], unknown \['y'\]"):
        strategy.tell(state, {"y": hp["x"]}, jnp.zeros(4))
    state = strategy.tell(state, hp, jnp.zeros(4))
    with pytest.raises(RuntimeError, match=r"all generations=1 generations are done. Check strategy.done"):
        strategy.ask(state, jax.random.key(0))
