"""Strategies that decide during training (successive halving, Hyperband, PBT) under cv folds and
repeated seeds: they see and decide about settings, and every split of a setting follows them."""

import re

import numpy as np
import pandas as pd
import pytest

import vmaptune as vt
from vmaptune import engine, memory
from vmaptune import search as search_module
from vmaptune import training
from vmaptune.decisions import Decision, Snapshot
from vmaptune.program import one_member
from vmaptune.replicas import Replicas

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-2, 0.3), momentum=vt.OneMinusLogUniform(0.5, 0.95))
MODEL = vt.MLP(hidden=1, units=16)


def blobs() -> vt.Dataset:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    return vt.Dataset.from_arrays(rng.normal(size=(240, 4)) + 1.5 * y[:, None], y, task="classification")


def tune_capturing(monkeypatch, strategy, **kwargs):
    """vt.tune, keeping each round's population (slots, before folding into settings)."""
    populations = []
    train = training.train

    def keep(population, *args, **kw):
        populations.append(population)
        return train(population, *args, **kw)

    monkeypatch.setattr(search_module, "train", keep)
    result = vt.tune(MODEL, SPACE, blobs(), strategy, batch_size=32, progress=False, **kwargs)
    return result, populations


# -- the translation between settings and their slots ------------------------------------------------------
def test_a_decision_about_settings_applies_to_every_split_of_each():
    replicas = Replicas(population=3, folds=2, seeds=2)  # 12 slots
    member, fold, repeat = replicas.slot_layout()
    decision = Decision(keep=np.array([2, 0]), copy_from=np.array([0, 0, 1]), freeze=np.array([False, True, False]),
                        budget=np.array([3, 4, 5]), hp={"learning_rate": np.array([0.1, 0.2, 0.3])},
                        update=np.array([True, False, True]))
    slots = replicas.slot_decision(decision)
    assert sorted(slots.keep) == sorted(np.flatnonzero(member != 1)) and len(slots.keep) == 8
    # a copy takes the source setting's own fold and repeat: fold f learns from fold f's weights
    np.testing.assert_array_equal(member[slots.copy_from], np.array([0, 0, 1])[member])
    np.testing.assert_array_equal(fold[slots.copy_from], fold)
    np.testing.assert_array_equal(repeat[slots.copy_from], repeat)
    np.testing.assert_array_equal(slots.freeze, np.array([False, True, False])[member])
    np.testing.assert_array_equal(slots.budget, np.array([3, 4, 5])[member])
    np.testing.assert_array_equal(slots.update, np.array([True, False, True])[member])
    np.testing.assert_array_equal(slots.hp["learning_rate"], np.array([0.1, 0.2, 0.3], np.float64)[member])
    assert replicas.slot_decision(None) is None
    alone = Replicas(population=3)  # one split: decisions pass through untouched
    assert alone.slot_decision(decision) is decision


def snapshot_of(replicas: Replicas, val_score: np.ndarray, **fields) -> Snapshot:
    size, epochs = val_score.shape
    base = dict(active=np.ones(size, bool), diverged=np.zeros(size, bool), stopped=np.zeros(size, bool),
                in_population=np.ones(size, bool), best_score=np.full(size, -np.inf, np.float32),
                best_epoch=np.zeros(size, np.int32), hp={"learning_rate": np.arange(size, dtype=np.float32)})
    base.update(fields)
    return Snapshot.make(epochs_done=epochs, epochs=5, curves={"val_score": val_score, "train_loss": val_score,
                                                               "val_loss": -val_score},
                         rows=size, row_epochs=size * epochs, member_epochs=size * epochs, **base)


def test_a_strategy_sees_each_setting_as_the_mean_of_its_splits():
    replicas = Replicas(population=3, folds=2)  # slots: fold 0's settings 0, 1, 2, then fold 1's
    val = np.array([[0.5, 0.7, 0.6], [0.2, 0.3, 0.3], [0.1, 0.2, 0.2],
                    [0.7, 0.5, 0.8], [0.4, 0.5, np.nan], [0.9, 0.9, 0.9]], np.float32)
    seen = replicas.member_snapshot(snapshot_of(
        replicas, val,
        active=np.array([True, False, False, False, False, False]),  # setting 0 trains on in one split
        diverged=np.array([False, False, False, False, True, False]),  # setting 1 blew up in fold 1
        stopped=np.array([False, True, True, False, False, True]),
        in_population=np.array([True, True, False, True, True, False])))  # setting 2 was pruned
    assert seen.size == 3 and seen.epochs_done == 3 and seen.rows == 6
    np.testing.assert_allclose(seen.curves["val_score"][0], [0.6, 0.6, 0.7], rtol=1e-6)
    # its best so far is its mean curve's best: what the results will score it by (Replicas.aggregate)
    np.testing.assert_allclose(seen.best_score, [0.7, 0.4, 0.55], rtol=1e-6)
    np.testing.assert_array_equal(seen.best_epoch, [3, 2, 2])
    assert np.isnan(seen.best_so_far[1])  # a diverged split fails the setting: never kept
    np.testing.assert_array_equal(seen.active, [True, False, False])
    np.testing.assert_array_equal(seen.stopped, [False, False, True])
    np.testing.assert_array_equal(seen.any_stopped, [False, True, True])  # setting 1 stopped in fold 0
    np.testing.assert_array_equal(seen.in_population, [True, True, False])
    np.testing.assert_array_equal(seen.hp["learning_rate"], [0, 1, 2])  # fold 0's copy (every split's)
    none_yet = replicas.member_snapshot(snapshot_of(replicas, np.zeros((6, 0), np.float32)))
    assert (none_yet.best_score == -np.inf).all() and (none_yet.best_epoch == 0).all()


def test_pbt_never_copies_a_setting_one_of_whose_folds_stopped():
    """Under cv a setting is 'stopped' once all its folds are; one stopped fold is enough to keep it
    out of PBT's copies (a copy's fold would stop as the source's did, with values it never trained
    with)."""
    import jax

    replicas = Replicas(population=4, folds=2)
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0))
    strategy = vt.PBT(population=4, interval=1, fraction=0.25)
    hp, state = strategy.ask(strategy.init(space), jax.random.key(0))
    state, _ = strategy.begin_training(state, vt.TrainingContext(4, members=4))
    val = np.array([[0.9], [0.5], [0.6], [0.1], [0.9], [0.5], [0.6], [0.1]], np.float32)  # setting 0 the best
    stopped = np.zeros(8, bool)
    stopped[4] = True  # setting 0's fold 1
    seen = replicas.member_snapshot(snapshot_of(replicas, val, stopped=stopped,
                                                hp={"learning_rate": np.tile(np.asarray(hp["learning_rate"]), 2)}))
    assert not seen.stopped[0] and seen.any_stopped[0]
    for key in range(4):
        _, decision = strategy.decide(state, seen, jax.random.key(key))
        # 3 settings training: none replaced (floor(0.25 * 3) = 0), setting 0 neither copied nor copied into
        assert decision.copy_from.tolist() == [0, 1, 2, 3] and not decision.update.any()
    stopped[:] = False
    _, decision = strategy.decide(state, replicas.member_snapshot(snapshot_of(
        replicas, val, stopped=stopped, hp={"learning_rate": np.tile(np.asarray(hp["learning_rate"]), 2)})),
        jax.random.key(0))
    assert decision.copy_from.tolist() == [0, 1, 2, 0]  # with no fold stopped, the best is the source


def test_with_held_out_stopping_rows_a_setting_scores_its_splits_at_their_own_epochs():
    """EarlyStopping(validation_fraction=...): each split's score is at the epoch its own held-out
    rows chose (the engine's best_score / best_epoch), and the setting's the mean of those."""
    replicas = Replicas(population=2, folds=2, stop_split=True)
    val = np.array([[0.5, 0.9, 0.1], [0.2, 0.3, 0.3], [0.7, 0.5, 0.8], [0.4, 0.5, 0.6]], np.float32)
    seen = replicas.member_snapshot(snapshot_of(replicas, val, best_score=np.array([0.5, 0.3, 0.8, -np.inf],
                                                                                   np.float32),
                                                best_epoch=np.array([1, 2, 3, 0], np.int32)))
    np.testing.assert_allclose(seen.best_score[0], (0.5 + 0.8) / 2, rtol=1e-6)  # not the mean curve's 0.7
    assert seen.best_epoch[0] == 2  # the splits' epochs 1 and 3, averaged
    assert seen.best_score[1] == -np.inf and np.isnan(seen.best_so_far[1])  # a split never scored yet


@pytest.mark.parametrize("decision, message", [
    (Decision(freeze=np.zeros(5, bool)), r"Decision.freeze has shape \(5,\); give one entry per setting asked \(3,\)"),
    (Decision(keep=np.array([0, 3])), r"Decision.keep names settings \[3\]; the population holds settings 0..2"),
    (Decision(copy_from=np.array([0, 1, 3])), r"Decision.copy_from names settings \[3\]"),
    (Decision(hp={"learning_rate": np.ones(2)}), r"Decision.hp\['learning_rate'\] has shape \(2,\)"),
])
def test_a_decision_of_the_wrong_size_under_cv_is_named(decision, message):
    """(A setting outside 0..P-1 would otherwise land in another fold's slots.)"""
    with pytest.raises(ValueError, match=message):
        Replicas(population=3, folds=2).slot_decision(decision)


# -- inside vt.tune ----------------------------------------------------------------------------------------
def test_successive_halving_under_cv_prunes_settings_with_all_their_folds(monkeypatch):
    """Each setting's folds train exactly its budget; the kept settings are the best by the folds'
    mean; and a kept setting trains as it would have without any pruning (the same draws)."""
    kwargs = dict(epochs=4, cv=2, seeds=2, seed=5)
    got, (halved,) = tune_capturing(monkeypatch, vt.SuccessiveHalving(population=4, eta=2), **kwargs)
    want, (full,) = tune_capturing(monkeypatch, vt.RandomSearch(population=4), **kwargs)
    for name in SPACE.names:  # the same settings asked
        np.testing.assert_array_equal(got.hp[name], want.hp[name])
    replicas = Replicas(population=4, folds=2, seeds=2)
    member = replicas.slot_layout()[0]
    budgets = got.members["budget_epochs"].to_numpy()
    assert sorted(budgets) == [1, 1, 2, 4]
    trained = np.isfinite(halved.curves["train_loss"]).sum(axis=1)  # per slot
    np.testing.assert_array_equal(trained, budgets[member])
    # pruning a setting changes nobody else: every slot's curve is the unpruned run's, to its budget
    for name in ("train_loss", "val_score"):
        for slot in range(replicas.size):
            e = budgets[member[slot]]
            np.testing.assert_allclose(halved.curves[name][slot, :e], full.curves[name][slot, :e], rtol=2e-5,
                                       atol=1e-6)
    # rung 0 (1 epoch) kept the top half by the mean over the 4 splits of each setting
    mean = replicas.mean({"val_score": full.curves["val_score"][:, :1]})["val_score"][:, 0]
    assert set(np.flatnonzero(budgets > 1)) == set(np.argsort(-mean, kind="stable")[:2])
    assert got.members["score"].notna().all() and got.best_index in np.flatnonzero(budgets == 4)


def test_pbt_under_cv_copies_each_fold_from_the_same_fold(monkeypatch):
    """The population is told to copy slot by slot: each fold of a setting from the same fold of
    its source (weights trained on the other fold's rows would have seen this fold's held-out
    rows), and the sources are the parents PBT reports."""
    applied = []
    apply = training.Population.apply
    monkeypatch.setattr(training.Population, "apply", lambda self, d: (applied.append(d), apply(self, d))[1])
    result, _ = tune_capturing(monkeypatch, vt.PBT(population=4, interval=1, generations=3), epochs=4, cv=2, seed=1)
    df = result.to_dataframe()
    assert len(df) == 4 and {"parent", "lineage", "hp_schedule"} <= set(df.columns)
    member, fold, _ = Replicas(population=4, folds=2).slot_layout()
    copies = [d.copy_from for d in applied if d is not None and d.copy_from is not None]
    assert len(copies) == 3 and all(len(c) == 8 for c in copies)  # one per generation, over the 8 slots
    for copy_from in copies:
        np.testing.assert_array_equal(fold[copy_from], fold)
        assert (member[copy_from] == member[copy_from][fold == 0][member]).all()  # one source per setting
    lineage = np.array([[int(m) for m in chain.split(">")] for chain in df["lineage"]])  # (settings, generations)
    assert (lineage[:, 0] != np.arange(4)).any(), "no setting was copied: nothing above was checked"
    sources = np.stack([member[c][fold == 0] for c in copies])  # (generations, settings)
    parent = [next((int(g[i]) for g in sources[::-1] if g[i] != i), -1) for i in range(4)]  # at its last copy
    np.testing.assert_array_equal(df["parent"], parent)


def test_population_search_cv_takes_successive_halving(monkeypatch):
    """HalvingRandomSearchCV's workflow: rungs rank candidates as cv_results_ scores them (after
    their last epoch), cv_results_ has its iter / n_resources, and best_index_ is the best of the
    candidates trained longest (scikit-learn's choice from its last iteration)."""
    X, y = blobs().pool()
    told = []
    decide = training.StrategyDecider.decide
    monkeypatch.setattr(training.StrategyDecider, "decide",
                        lambda self, snapshot: (told.append(self.strategy), decide(self, snapshot))[1])
    search = vt.PopulationSearchCV(vt.MLPClassifier(n_units=16, epochs=4, batch_size=32),
                                   {"learning_rate": vt.LogUniform(1e-3, 0.3)}, cv=2, random_state=0,
                                   strategy=vt.SuccessiveHalving(population=8, eta=2))
    search.fit(X, y)
    assert told and all(strategy.rank_by == "last" for strategy in told)
    results = search.cv_results_
    assert len(results["params"]) == 8 and sorted(results["n_resources"]) == [1, 1, 1, 1, 2, 2, 4, 4]
    np.testing.assert_array_equal(results["iter"], np.searchsorted([1, 2, 4], results["n_resources"]))
    assert results["n_resources"].dtype == results["iter"].dtype == np.int64
    finalists = np.flatnonzero(results["n_resources"] == 4)
    assert search.best_index_ == finalists[np.argmax(results["mean_test_score"][finalists])]
    assert search.score(X, y) > 0.5
    assert len(pd.DataFrame(results)) == 8


def test_population_search_cv_trains_to_its_halving_strategys_max_epochs():
    """Hyperband(max_epochs=4) under PopulationSearchCV: the search trains to it, as scikit-learn's
    max_resources decides (it was refused naming vt.tune(epochs=200), the estimator's own epochs,
    a call the user never made); an epochs of the search's own that differs is refused in its words."""
    X, y = blobs().pool()
    search = vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, batch_size=32), {"learning_rate": vt.LogUniform(1e-3, 0.3)},
                                   cv=2, strategy=vt.SuccessiveHalving(population=4, eta=2, max_epochs=4)).fit(X, y)
    assert search.cv_results_["n_resources"].max() == 4 and search.best_estimator_.epochs == 4
    with pytest.raises(ValueError, match=r"^PopulationSearchCV\(epochs=6, strategy=Hyperband\(max_epochs=4\)\): the "
                                         r"strategy's last rung trains max_epochs.*leave epochs out.*or give epochs=4\.$"):
        vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, batch_size=32), {"learning_rate": vt.LogUniform(1e-3, 0.3)},
                              cv=2, epochs=6, strategy=vt.Hyperband(max_epochs=4)).fit(X, y)


def test_population_search_cv_over_lists_gives_each_strategy_distinct_candidates():
    """Lists are sampled without replacement (scikit-learn's ParameterSampler, HalvingRandomSearchCV)
    by a strategy of yours too: 9 candidates of a 3 x 3 grid are its 9 points, not repeats of some
    and none of others (each name was drawn independently)."""
    X, y = blobs().pool()
    grid = {"learning_rate": [0.01, 0.03, 0.1], "weight_decay": [1e-4, 1e-3, 1e-2]}
    for strategy in (vt.SuccessiveHalving(population=9, eta=3), vt.RandomSearch(population=9)):
        search = vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, epochs=3, batch_size=32), grid, cv=2,
                                       strategy=strategy, random_state=0).fit(X, y)
        points = {tuple(sorted(p.items())) for p in search.cv_results_["params"]}
        assert len(points) == len(search.cv_results_["params"]) == 9, strategy


def test_halving_ranks_a_rung_by_the_score_it_was_asked_for():
    """rank_by="last": the score after the rung's last epoch, not the best so far."""
    snapshot = snapshot_of(Replicas(population=4), np.array([[0.9, 0.1], [0.5, 0.6], [0.2, 0.3], [0.8, 0.7]],
                                                            np.float32),
                           best_score=np.array([0.9, 0.6, 0.3, 0.8], np.float32))
    best, last = vt.SuccessiveHalving(population=4, eta=2), vt.SuccessiveHalving(population=4, eta=2, rank_by="last")
    np.testing.assert_array_equal(best._rung_scores(snapshot), np.float32([0.9, 0.6, 0.3, 0.8]))
    np.testing.assert_array_equal(last._rung_scores(snapshot), np.float32([0.1, 0.6, 0.3, 0.7]))
    with pytest.raises(ValueError, match=r"rank_by must be 'best' .* or 'last' .* got rank_by='final'"):
        vt.SuccessiveHalving(rank_by="final")
    assert "rank_by" not in repr(best) and "rank_by='last'" in repr(last)  # old run directories still resume


@pytest.mark.parametrize("seeds", [1, 2])
def test_hyperband_under_cv_runs_its_brackets(monkeypatch, seeds):
    result, populations = tune_capturing(monkeypatch, vt.Hyperband(max_epochs=4, eta=2), epochs=4, cv=2,
                                         seeds=seeds)
    df = result.to_dataframe()
    assert df.groupby("round").size().tolist() == [4, 3, 3] and df["score"].notna().all()
    for round_index, population in enumerate(populations):  # every split trains its setting's budget
        budgets = df[df["round"] == round_index]["budget_epochs"].to_numpy()
        member = Replicas(population=len(budgets), folds=2, seeds=seeds).slot_layout()[0]
        np.testing.assert_array_equal(np.isfinite(population.curves["train_loss"]).sum(axis=1), budgets[member])


def test_pbt_under_cv_short_of_memory_says_how_many_settings_fit():
    """PBT needs its population in one program: the advice counts settings, not their fold rows."""
    with pytest.raises(ValueError) as error:
        vt.tune(MODEL, SPACE, blobs(), vt.PBT(population=16, interval=1), epochs=2, batch_size=32, cv=2,
                max_memory="60 KiB", progress=False)  # (per device: the tests run on 4)
    found = re.search(r"max_memory fits (\d+) of its 32 rows \(2 per setting under cv / seeds\); raise max_memory "
                      r"or lower the population to (\d+)\.", str(error.value))
    assert found, str(error.value)
    assert int(found[2]) == int(found[1]) // 2 < 16


def test_pbt_short_of_memory_for_one_settings_seeds_says_so_and_never_advises_a_population_of_0():
    """max_memory fitting 1 row of PBT's 4 settings x 2 seeds advised "lower the population to 0"; a
    search without cv / seeds was told "(1 per setting under cv / seeds)"."""
    data = blobs()
    program = vt.build_program(MODEL, SPACE, data, batch_size=32)
    one, two = (memory.training_bytes(program, engine.data_arrays(data), one_member(SPACE), rows) for rows in (1, 2))
    budget = one + (two - one) // 2  # (one row on a device)
    kwargs = dict(epochs=2, batch_size=32, devices=1, max_memory=budget, progress=False)
    with pytest.raises(ValueError) as error:
        vt.tune(MODEL, SPACE, data, vt.PBT(population=4, interval=1), seeds=2, **kwargs)
    assert str(error.value).endswith("max_memory fits 1 of its 8 rows (2 per setting under cv / seeds); not even one "
                                     "setting's 2 rows fit: raise max_memory, or lower seeds."), str(error.value)
    with pytest.raises(ValueError) as error:
        vt.tune(MODEL, SPACE, data, vt.PBT(population=4, interval=1), **kwargs)
    assert str(error.value).endswith("max_memory fits 1 of its 4 rows; raise max_memory or lower the population to "
                                     "1."), str(error.value)
