"""Per-member early stopping inside the program, best weights, and compaction of the survivors."""

import jax
import numpy as np
import pytest

import vmaptune as vt
from helpers import host, take
from vmaptune import engine
from vmaptune.early_stopping import Compaction
from vmaptune.population import PopulationRun
from vmaptune.training import Population, train

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-6, 1e-1))


def program(digits, **stopping):
    rule = vt.EarlyStopping(**stopping) if stopping else None
    return vt.build_program(vt.MLP(hidden=1, units=16), SPACE, digits, batch_size=64, early_stopping=rule)


def lr_population(*rates):
    return SPACE.numeric(SPACE.encode([{"learning_rate": r} for r in rates]))


def test_a_stalled_member_stops_after_patience_and_the_others_go_on(digits):
    # lr 1e-6 barely moves the weights: its validation loss improves by far less than min_delta
    prog = program(digits, patience=2, monitor="loss", min_delta=1e-3)
    run = PopulationRun(prog, lr_population(1e-6, 0.05, 0.05, 1e-6), engine.data_arrays(digits),
                        member_ids=np.arange(4), seed=0, epochs=6)
    run.train(6)
    status = run.status()
    assert status["stopped"].tolist() == [True, False, False, True]
    # epoch 1 improves on -inf; epochs 2 and 3 do not by 1e-3 -> frozen after epoch 3
    steps = prog.steps_per_epoch(digits.n_train)
    assert int(take(run.state.members.opt_state, 0).inner_state.count) == 3 * steps
    assert int(take(run.state.members.opt_state, 1).inner_state.count) == 6 * steps
    assert np.all(np.isnan(run.curves["train_loss"][0, 3:])) and np.all(np.isfinite(run.curves["train_loss"][1]))
    assert status["best_epoch"][1] >= 5


def test_the_training_loss_rule_stops_a_converged_member_and_reads_no_validation_data(digits):
    """monitor="train_loss" (scikit-learn's convergence test): a member stops `patience` epochs
    after its training loss last improved by more than min_delta, wherever its validation went."""
    prog = program(digits, patience=2, monitor="train_loss", min_delta=0.02)
    run = PopulationRun(prog.replace(evaluate=False), lr_population(1e-6, 0.05, 0.5), engine.data_arrays(digits),
                        member_ids=np.arange(3), seed=0, epochs=8)
    run.train(8)
    status, losses = run.status(), run.curves["train_loss"]

    def expected_epochs(curve):  # Keras' rule on the curve itself
        best, since = np.inf, 0
        for epoch, loss in enumerate(curve, start=1):
            best, since = (loss, 0) if loss < best - 0.02 else (best, since + 1)
            if since >= 2:
                return epoch
        return len(curve)

    trained = np.isfinite(losses).sum(axis=1)
    for i in range(3):
        assert trained[i] == expected_epochs(losses[i][np.isfinite(losses[i])]), i
    # lr 1e-6: the loss only wanders with the batches it is averaged over (by about min_delta), so it stops early
    assert status["stopped"][0] and trained[0] < 8
    assert trained.tolist() != [trained[0]] * 3  # the members stopped at their own epochs


@pytest.mark.parametrize("counting", [None, "scikit-learn"])
def test_an_epoch_whose_score_is_undefined_counts_toward_no_patience(counting):
    """A precision of 0/0 until the network first predicts a positive: those NaN epochs counted as
    epochs without improvement, so members were stopped before they ever scored (status 'stopped',
    score NaN), while the warning said their training went on."""
    from vmaptune.early_stopping import track
    from vmaptune.state import Status

    rule = vt.EarlyStopping(patience=2) if counting is None else \
        vt.EarlyStopping(patience=2, counting=counting)
    status = Status.start(np.ones(2, bool))
    loss = np.ones(2, np.float32)
    for score in ([np.nan, 0.5], [np.nan, 0.4], [np.nan, 0.4], [0.3, 0.4], [np.nan, 0.4]):
        status, better = track(rule, status, loss, np.asarray(score, np.float32))
    # member 0: four NaN epochs count for nothing, its one finite score is its best so far
    assert status.active.tolist() == [True, False] and status.stopped.tolist() == [False, True]
    assert status.since_best.tolist()[0] == 0 and float(status.monitor_best[0]) == pytest.approx(0.3)


def test_best_weights_are_the_weights_of_the_best_epoch(digits):
    prog = program(digits, patience=100, restore_best_weights=True)
    run = PopulationRun(prog, lr_population(0.3, 0.05, 0.02, 0.8), engine.data_arrays(digits),
                        member_ids=np.arange(4), seed=1, epochs=6)
    snapshots = []
    for _ in range(6):
        run.train(1)
        snapshots.append(host(run.state.members.params))
    best_epoch = run.status()["best_epoch"]
    for i in range(4):
        expected = take(snapshots[best_epoch[i] - 1], i)
        got = take(host(run.state.members.best_params), i)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
            np.testing.assert_array_equal(a, b)
    scores = run.curves["val_score"]
    np.testing.assert_array_equal(best_epoch, np.argmax(scores, axis=1) + 1)


def test_compaction_gives_the_same_results_as_no_compaction(digits):
    rates = (1e-6, 0.05, 1e-6, 1e-6, 0.02, 1e-6, 1e-6, 1e-6)
    prog = program(digits, patience=1, monitor="loss", min_delta=1e-3)
    hp = lr_population(*rates)
    plain = PopulationRun(prog, hp, engine.data_arrays(digits), member_ids=np.arange(8), seed=0, epochs=5)
    plain.train(5)
    packed = PopulationRun(prog, hp, engine.data_arrays(digits), member_ids=np.arange(8), seed=0, epochs=5,
                           packing="always")
    train(Population([(packed, np.arange(8))]), 5, deciders=[Compaction(0.5)])
    assert packed.rows < 8 and packed.row_epochs < 8 * 5  # the survivors really ran in a smaller population
    for key in ("best_score", "best_epoch", "stopped", "diverged"):
        np.testing.assert_array_equal(packed.status()[key], plain.status()[key], err_msg=key)
    for key in ("val_loss", "val_score", "train_loss"):
        np.testing.assert_allclose(packed.curves[key], plain.curves[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_tune_reports_stopped_members(digits):
    space = vt.Space(learning_rate=vt.Choice([1e-6, 0.05]))
    result = vt.tune(vt.MLP(hidden=1, units=16), space, digits, vt.RandomSearch(population=6), epochs=6,
                     progress=False, early_stopping=vt.EarlyStopping(patience=2, monitor="loss", min_delta=1e-3))
    df = result.to_dataframe()
    assert set(df.loc[df["learning_rate"] == 1e-6, "status"]) == {"stopped"}
    assert set(df.loc[df["learning_rate"] == 0.05, "status"]) == {"ok"}
    assert (df.loc[df["learning_rate"] == 1e-6, "epochs_trained"] < 6).all()
    assert (df.loc[df["learning_rate"] == 0.05, "epochs_trained"] == 6).all()


def test_restore_best_weights_in_vt_tune_is_said_once_to_change_nothing_it_returns(digits, monkeypatch):
    """The best epoch's copy of the weights is read by the estimators' fit only: vt.tune's scores are
    the best epoch's either way and its models are refit to best_epoch, so the option cost memory
    and read as the model keeping the best weights. The results are the same; it is said once."""
    import importlib
    import warnings

    tune_module = importlib.import_module("vmaptune.tune")  # (vt.tune the function hides the module)
    monkeypatch.setattr(tune_module, "_SAID_RESTORE", [], raising=False)
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))

    def run(restore):
        return vt.tune(vt.MLP(hidden=1, units=8), space, digits, vt.RandomSearch(population=4), epochs=4,
                       progress=False, refit=1, early_stopping=vt.EarlyStopping(patience=1, restore_best_weights=restore))

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (no warning without it)
        plain = run(False)
    with pytest.warns(UserWarning, match=r"EarlyStopping\(restore_best_weights=True\) changes nothing vt.tune returns, "
                                         r"and keeps a second copy .* Leave restore_best_weights out"):
        restored = run(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (once a process)
        run(True)
    assert restored.to_dataframe().equals(plain.to_dataframe()) and restored.test_score == plain.test_score


def test_early_stopping_that_fires_on_the_last_epoch_cut_nothing_short(digits):
    """The same members in a 3-epoch round: their early stopping fires on epoch 3, the last one, so
    they trained every epoch and read ok ('stopped' counts members it ended sooner)."""
    space = vt.Space(learning_rate=vt.Choice([1e-6, 0.05]))
    result = vt.tune(vt.MLP(hidden=1, units=16), space, digits, vt.RandomSearch(population=6), epochs=3,
                     progress=False, early_stopping=vt.EarlyStopping(patience=2, monitor="loss", min_delta=1e-3))
    df = result.to_dataframe()
    assert (df["epochs_trained"] == 3).all() and (df["status"] == "ok").all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(patience=0), r"patience=0.*integer >= 1"),
        (dict(patience=2.5), "patience must be an integer"),
        (dict(min_delta=-1), "min_delta must be a number >= 0"),
        (dict(monitor="accuracy"), r"monitor='accuracy'.*one of \('score', 'loss', 'train_loss'\)"),
        (dict(compact_below=1.5), r"compact_below=1.5.*share in \[0, 1\]"),
    ],
)
def test_bad_early_stopping_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vt.EarlyStopping(**kwargs)


def test_members_taken_out_before_training_keep_empty_records(digits):
    prog = program(digits)
    run = PopulationRun(prog, lr_population(0.05, 0.02, 0.01, 0.03), engine.data_arrays(digits),
                        member_ids=np.arange(4), seed=0, epochs=2)
    run.apply(vt.Decision(keep=[0, 2]))  # e.g. halving pruning members before they train
    run.train(2)
    assert np.all(np.isnan(run.curves["val_score"][[1, 3]])) and np.all(np.isfinite(run.curves["val_score"][[0, 2]]))
    assert run.status()["best_epoch"][[1, 3]].tolist() == [0, 0]


def test_the_repr_leaves_out_an_unset_validation_fraction_so_older_run_directories_resume():
    # run directories record this text and resume only under the same
    before = "EarlyStopping(patience=3, min_delta=0.0, monitor='score', restore_best_weights=False, compact_below=1.0)"
    assert repr(vt.EarlyStopping(patience=3)) == before
    assert repr(vt.EarlyStopping(patience=3, validation_fraction=0.1)) == before[:-1] + ", validation_fraction=0.1)"


def _scikit_learns(values, tol, n_iter_no_change, validation: bool):
    """scikit-learn's own MLP bookkeeping (MLPClassifier._update_no_improvement_count and its fit
    loop's `count > n_iter_no_change`) over a curve -> (epoch it stops after or None, epoch whose
    weights it keeps)."""
    from sklearn.neural_network import MLPClassifier

    m = MLPClassifier(tol=tol, n_iter_no_change=n_iter_no_change)
    m.loss_curve_, m.best_loss_, m._no_improvement_count = [], np.inf, 0
    m.validation_scores_, m.best_validation_score_ = [], -np.inf
    m.coefs_, m.intercepts_ = [np.zeros(1)], [np.zeros(1)]
    kept = 0
    for epoch, value in enumerate(values, 1):
        m.coefs_ = [np.full(1, epoch)]
        if validation:
            m._score = lambda X, y, sample_weight=None, v=value: v
        else:
            m.loss_curve_.append(value)
        m._update_no_improvement_count(validation, None, None, None)
        kept = int(m._best_coefs[0][0]) if validation else kept
        if m._no_improvement_count > m.n_iter_no_change:
            return epoch, kept
    return None, kept


def _vmaptunes(rule, values, validation: bool):
    from vmaptune import early_stopping
    from vmaptune.state import Status

    status, kept = Status.start(np.ones(1, bool)), 0
    for epoch, value in enumerate(values, 1):
        v = np.asarray([value], np.float32)
        status, better = early_stopping.track(rule, status, np.zeros(1, np.float32), v if validation else v * 0,
                                              None if validation else v)
        kept = epoch if bool(better[0]) else kept  # (the engine keeps the weights of a `better` epoch)
        if bool(status.stopped[0]):
            return epoch, kept
    return None, kept


def test_the_estimators_stop_and_keep_weights_as_scikit_learns_mlps():
    """MLPClassifier(tol, patience) converges on the training loss, and with early_stopping=True
    keeps the best validation epoch's weights, exactly as scikit-learn's MLPs count: on flat,
    slowly falling and noisy curves, and ties."""
    rng = np.random.default_rng(0)
    tol = 1e-2
    curves = [np.ones(30), 1.0 - 0.6 * tol * np.arange(30), np.round(1 - 0.5 * np.log1p(np.arange(30)), 2)]
    curves += [np.cumsum(rng.normal(-0.004, 0.01, 30)) + 1 for _ in range(30)]
    for patience in (1, 3, 10):
        for curve in curves:
            curve = curve.astype(np.float32).astype(np.float64)  # (the engine's precision on both sides)
            converge = vt.MLPClassifier(tol=tol, patience=patience)._stopping()
            assert _vmaptunes(converge, curve, False)[0] == _scikit_learns(curve, tol, patience, False)[0]
            early = vt.MLPClassifier(tol=tol, patience=patience, early_stopping=True)._stopping()
            assert _vmaptunes(early, -curve, True) == _scikit_learns(-curve, tol, patience, True)


def test_keras_monitor_names_are_taken():
    """Keras' val_loss / val_accuracy are this library's validation loss / score (its plain "loss" is
    the training loss, which this library calls train_loss: refused with that said)."""
    assert vt.EarlyStopping(monitor="val_loss") == vt.EarlyStopping(monitor="loss")
    assert vt.EarlyStopping(monitor="val_accuracy").monitor == "score"
