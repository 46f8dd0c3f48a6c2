"""Every strategy drives vt.tune through the same ask/tell protocol; results carry the round."""

import numpy as np
import pytest

import vmaptune as vt

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1), activation=vt.Choice(["relu", "tanh"]))


@pytest.mark.parametrize(
    "strategy, rows, rounds",
    [
        (vt.GridSearch(values={"learning_rate": [0.01, 0.1, 0.3]}, points_per_axis=2, population=4), 6, 2),  # 3 x 2 points: 4 + 2
        (vt.CoarseToFine(population=4, rounds=2, top_k=2), 8, 2),
        (vt.Evolution(population=4, generations=2), 8, 2),
        (vt.RandomSearch(population=4, rounds=2), 8, 2),
        (vt.BayesOpt(population=4, rounds=2, acquisition="thompson"), 8, 2),
        (vt.OptunaSampler(lambda seed: __import__("optuna").samplers.TPESampler(seed=seed), population=4, rounds=2), 8, 2),
    ],
)
def test_strategy_runs_inside_tune(digits, strategy, rows, rounds):
    result = vt.tune(vt.MLP(hidden=1, units=32), SPACE, digits, strategy, epochs=3, batch_size=32, progress=False)
    df = result.to_dataframe()
    assert len(df) == rows and df["round"].nunique() == rounds
    assert df["member"].is_unique and result.best_score > 0.5
    if isinstance(strategy, vt.GridSearch):  # every grid point exactly once
        points = set(zip(df["learning_rate"].round(6), df["activation"]))
        assert points == {(lr, a) for lr in (0.01, 0.1, 0.3) for a in ("relu", "tanh")}


def test_pbt_and_hyperband_tables_carry_their_columns(digits):
    pbt = vt.tune(vt.MLP(hidden=1, units=16), SPACE, digits, vt.PBT(population=4, interval=1), epochs=3,
                  batch_size=64, progress=False)
    df = pbt.to_dataframe()
    assert {"parent", "lineage", "hp_schedule", "generation"} <= set(df.columns) and len(df) == 4
    replay = vt.PBTReplay.from_results(pbt, population=2)
    again = vt.tune(vt.MLP(hidden=1, units=16), SPACE, digits, replay, epochs=3, batch_size=64, progress=False)
    assert len(again) == 2
    hb = vt.tune(vt.MLP(hidden=1, units=16), SPACE, digits, vt.Hyperband(max_epochs=4, eta=2), epochs=4,
                 batch_size=64, progress=False)
    df = hb.to_dataframe()
    assert {"rung", "budget_epochs", "bracket"} <= set(df.columns)
    # halving trains fewer member-epochs than everyone for the full budget
    assert np.isfinite(hb.curves["train_loss"]).sum() < len(df) * 4


def test_a_strategy_of_your_own_decides_during_training(digits):
    """The README's example: random search that packs out the worst half at half time."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class DropTheWorstHalf(vt.RandomSearch):
        acts_during_training = True

        def decision_epochs(self, state, epochs):
            return [epochs // 2]

        def decide(self, state, snapshot, key):
            score = np.nan_to_num(snapshot.best_so_far, nan=-np.inf)
            return state, vt.Decision(keep=np.argsort(-score)[: snapshot.size // 2])

    result = vt.tune(vt.MLP(hidden=1, units=16), SPACE, digits, DropTheWorstHalf(population=8), epochs=4,
                     batch_size=64, progress=False)
    trained = np.isfinite(result.curves["train_loss"]).sum(axis=1)
    assert sorted(trained) == [2] * 4 + [4] * 4  # half the members stopped costing at epoch 2
    np.testing.assert_array_equal(result.members["epochs_trained"], trained)  # and the table says so
    kept = trained == 4
    at_half = np.nanmax(result.curves["val_score"][:, :2], axis=1)
    assert at_half[kept].min() >= at_half[~kept].max()  # and they were the best half then


# -- a strategy of your own: what it decides is what the table says, and what it cannot do is refused -------
import dataclasses  # noqa: E402
import re  # noqa: E402

COPY_SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1), n_units=vt.Choice([8, 16]), optimizer=vt.Fixed("sgd"))


@dataclasses.dataclass(frozen=True)
class _Decides(vt.RandomSearch):
    """Returns `decision(snapshot)` at epoch 1 (one program: copies_members)."""

    acts_during_training = True
    copies_members = True
    decision: object = None
    ended: object = None  # end_training's return value, if not the state
    looks: tuple = (1,)

    def decision_epochs(self, state, epochs):
        return self.looks

    def decide(self, state, snapshot, key):
        return self.decision(state, snapshot)

    def end_training(self, state, snapshot):
        return state if self.ended is None else self.ended(state)


def _copy_widest_into_narrowest(state, snapshot):
    units = np.asarray(snapshot.hp["n_units"])
    source, target = int(np.argmax(units)), int(np.argmin(units))
    copy_from = np.arange(snapshot.size)
    copy_from[target] = source
    lr = np.asarray(snapshot.hp["learning_rate"]).copy()
    lr[target] = 0.05
    return state, vt.Decision(copy_from=copy_from, hp={"learning_rate": lr})


def test_the_table_shows_the_values_a_strategys_decisions_left_members_with(digits):
    """A member that took over a wider network and a new learning rate is recorded with them:
    the table, best_params and the refit use what it trained with, not what was asked."""
    told = []

    @dataclasses.dataclass(frozen=True)
    class Tells(_Decides):
        def tell(self, state, hp, scores):
            told.append({k: np.asarray(v) for k, v in hp.items()})
            return super().tell(state, hp, scores)

    strategy = Tells(population=8, decision=_copy_widest_into_narrowest)
    result = vt.tune(vt.MLP(hidden=1), COPY_SPACE, digits, strategy, epochs=2, batch_size=64, seed=3,
                     progress=False)
    asked = vt.tune(vt.MLP(hidden=1), COPY_SPACE, digits, vt.RandomSearch(population=8), epochs=2, batch_size=64,
                    seed=3, progress=False)  # (the same draws, nothing decided)
    units, lr = asked.members["n_units"].to_numpy(), asked.members["learning_rate"].to_numpy()
    assert len(set(units)) == 2  # (the draw has both widths, so a copy changes one)
    target, source = int(np.argmin(units)), int(np.argmax(units))
    want_units, want_lr = units.copy(), lr.copy()
    want_units[target], want_lr[target] = units[source], np.float32(0.05)
    np.testing.assert_array_equal(result.members["n_units"], want_units)
    np.testing.assert_allclose(result.members["learning_rate"], want_lr, rtol=1e-6)
    np.testing.assert_array_equal(told[0]["learning_rate"], result.hp["learning_rate"])  # told what it scored
    assert result.strategy_state is not None and asked.strategy_state is not None


def _copy_the_best_into_the_failed(state, snapshot):
    copy_from = np.arange(snapshot.size)
    failed = ~np.isfinite(snapshot.latest_score)
    copy_from[failed] = int(np.nanargmax(snapshot.latest_score))
    return state, vt.Decision(copy_from=copy_from)


def test_a_member_that_copies_another_carries_the_record_of_the_network_it_took(digits):
    """A diverged member revived by a copy at epoch 1 (PBT's exploit) reads as the network it ends
    with: its curves before the copy are its source's, it trained every epoch, its status is ok and
    its best score and epoch are of that network (what a refit replays), not of the one it lost."""
    space = vt.Space(learning_rate=vt.Choice([0.05, 1e4]), n_units=vt.Fixed(16), optimizer=vt.Fixed("sgd"))
    strategy = _Decides(population=4, decision=_copy_the_best_into_the_failed)
    result = vt.tune(vt.MLP(hidden=1), space, digits, strategy, epochs=3, batch_size=64, seed=1, progress=False)
    plain = vt.tune(vt.MLP(hidden=1), space, digits, vt.RandomSearch(population=4), epochs=3, batch_size=64, seed=1,
                    progress=False)  # the same draws, nothing copied
    failed = plain.members["status"].to_numpy() == "diverged"
    assert failed.any() and not failed.all()  # (the draw has both learning rates)
    source = int(np.nanargmax(plain.curves["val_score"][:, 0]))
    table = result.members
    assert (table["status"] == "ok").all() and (table["epochs_trained"] == 3).all()
    for i in np.flatnonzero(failed):
        for name in ("val_score", "val_loss", "train_loss"):  # epoch 1 is the source's, the rest its own training
            np.testing.assert_array_equal(result.curves[name][i, :1], plain.curves[name][source, :1], err_msg=name)
        curve = result.curves["val_score"][i]
        assert table["best_score"][i] == pytest.approx(curve.max()) and table["best_epoch"][i] == curve.argmax() + 1
    # the work its row did is its own: epochs 2-3 (its diverged first epoch, and the source's, are not)
    own = np.where(failed, 2, 3)
    assert result.settings["useful_compute_fraction"][0] == pytest.approx(own.sum() / (4 * 3), abs=1e-4)


@pytest.mark.parametrize("decision, error, match", [
    (lambda state, s: (state, vt.Decision(hp={"n_units": np.full(s.size, 16)})), ValueError,
     r"_Decides.decide: Decision.hp changes \['n_units'\], which are fixed when a member is built .* Copy a member"),
    (lambda state, s: (state, vt.Decision(hp={"learning_rate": np.full(s.size, np.nan)})), ValueError,
     r"Decision.hp\['learning_rate'\] holds \[nan, nan, nan\] \(members \[0, 1, 2\]\): values must be finite"),
    (lambda state, s: (state, vt.Decision(hp={"learning_rate": -np.ones(s.size)})), ValueError,
     r"Decision.hp\['learning_rate'\] holds \[-1.0, -1.0, -1.0\] .*LogUniform.* is on a log scale, values must be > 0"),
    (lambda state, s: vt.Decision(keep=np.arange(2)), TypeError,
     r"_Decides.decide must return \(state, vt.Decision or None\), got a Decision: Decision\(keep=.*Return `state, "
     r"None` for no change"),
])
def test_a_decision_the_engine_cannot_apply_is_refused_naming_the_hook(digits, decision, error, match):
    with pytest.raises(error, match=match):
        vt.tune(vt.MLP(hidden=1), COPY_SPACE, digits, _Decides(population=4, decision=decision), epochs=2,
                batch_size=64, progress=False)


def _keep_three_then_copy_into_the_fourth(state, snapshot):
    if snapshot.epochs_done == 1:
        return state, vt.Decision(keep=np.arange(3))
    copy_from = np.arange(snapshot.size)
    copy_from[3] = 0
    return state, vt.Decision(copy_from=copy_from)


def test_a_copy_into_a_member_packed_out_is_refused(digits):
    """A member packed out has no training state left to take another's into: its row would read
    another network's record over epochs it never trained."""
    with pytest.raises(ValueError, match=r"Decision.copy_from copies into members \[3\], which were "
                                         r"packed out of the population.*Copy into members still in it"):
        vt.tune(vt.MLP(hidden=1), COPY_SPACE, digits, _Decides(population=4, decision=_keep_three_then_copy_into_the_fourth,
                                                               looks=(1, 2)), epochs=3, batch_size=64, progress=False)


def test_end_training_returns_the_state_only_and_out_of_range_values_warn(digits):
    no_change = lambda state, s: (state, None)
    with pytest.raises(TypeError, match=re.escape("_Decides.end_training must return the state only, got (state, "
                                                  "Decision(")):
        vt.tune(vt.MLP(hidden=1), COPY_SPACE, digits, _Decides(population=4, decision=no_change,
                ended=lambda state: (state, vt.Decision())), epochs=2, batch_size=64, progress=False)
    outside = lambda state, s: (state, vt.Decision(hp={"learning_rate": np.full(s.size, 0.5, np.float32)}))
    with pytest.warns(UserWarning, match=r"Decision.hp\['learning_rate'\] holds \[0.5, 0.5, 0.5\] .*outside the "
                                         r"space's LogUniform\(low=0.001, high=0.3.*used as given"):
        result = vt.tune(vt.MLP(hidden=1), COPY_SPACE, digits, _Decides(population=4, decision=outside), epochs=2,
                         batch_size=64, progress=False)
    np.testing.assert_allclose(result.members["learning_rate"], 0.5)


def test_decision_epochs_outside_the_round_are_an_error_not_skipped(digits):
    never = lambda state, s: (state, None)
    with pytest.raises(ValueError, match=re.escape("_Decides.decision_epochs returned [0, 2] for a 2-epoch round: "
                                                   "decide sees the population after epochs 1..1 only")):
        vt.tune(vt.MLP(hidden=1), COPY_SPACE, digits, _Decides(population=4, decision=never, looks=(0, 1, 2)),
                epochs=2, batch_size=64, progress=False)
