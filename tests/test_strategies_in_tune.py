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
