import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import vmaptune as vt
from vmaptune import engine

DEMO_LIKE = vt.Space(
    learning_rate=vt.LogUniform(1e-3, 3e-1),
    momentum=vt.OneMinusLogUniform(0.5, 0.99),
    dropout=vt.Uniform(0.0, 0.3),
    init_scale=vt.LogUniform(0.5, 2.0),
    weight_decay=vt.LogUniform(1e-6, 1e-3),
)


@pytest.fixture(scope="module")
def digits_result(digits):
    return vt.tune(vt.MLP(), DEMO_LIKE, digits, strategy=vt.RandomSearch(population=64), epochs=10, seed=0,
                   progress=False)


def test_random_search_reaches_095_on_digits(digits_result):
    assert digits_result.best_score >= 0.95
    assert (digits_result.members["status"] == "ok").mean() > 0.9


def test_results_table_and_best(digits_result):
    df = digits_result.to_dataframe()
    assert len(df) == 64
    for col in ["round", "member", *DEMO_LIKE.names, "score", "best_score", "final_score", "best_epoch", "status"]:
        assert col in df.columns, col
    best = digits_result.best_params
    assert set(best) == set(DEMO_LIKE.names) and all(type(v) is float for v in best.values())
    row = df.iloc[df["score"].idxmax()]
    assert digits_result.best_score == pytest.approx(row["score"])
    assert 1 <= row["best_epoch"] <= 10
    np.testing.assert_allclose(row["final_score"], digits_result.curves["val_score"][row.name, -1])
    assert digits_result.curves["val_score"].shape == (64, 10)
    assert "best validation accuracy" in digits_result.summary(5)


def test_save_and_load_round_trip(digits_result, tmp_path):
    digits_result.save(tmp_path / "run")
    loaded = vt.load_results(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded.members, digits_result.members, check_dtype=False)
    assert loaded.best_params == pytest.approx(digits_result.best_params)
    np.testing.assert_array_equal(loaded.curves["val_score"], digits_result.curves["val_score"])
    assert loaded.space == DEMO_LIKE and loaded.settings["epochs"] == 10
    with pytest.raises(FileNotFoundError, match="not a vmaptune run directory"):
        vt.load_results(tmp_path)


SMALL = dict(epochs=1, batch_size=128, progress=False)


def test_numpy_integers_are_taken_wherever_python_ones_are(digits):
    """A loop over np.arange(...) hands numpy integers: each argument takes them as the int."""
    args = (vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), digits, vt.RandomSearch(4))
    as_python = vt.tune(*args, cv=2, seed=3, devices=1, member_block=2, max_memory=10**9, **SMALL)
    as_numpy = vt.tune(*args, cv=np.int64(2), seed=np.int64(3), devices=np.int32(1), member_block=np.int64(2),
                       max_memory=np.int64(10**9), **SMALL)
    pd.testing.assert_frame_equal(as_numpy.members, as_python.members)
    assert as_numpy.settings["cv"] == 2 and type(as_numpy.settings["cv"]) is int
    # and numpy bools wherever Python's (bucketing refused np.True_, telling the user to give True)
    flags = dict(bucketing=True, shared_order=False, even_batches=True)
    as_python = vt.tune(*args, **flags, **SMALL)
    as_numpy = vt.tune(*args, **{k: np.bool_(v) for k, v in flags.items()}, **SMALL)
    pd.testing.assert_frame_equal(as_numpy.members, as_python.members)


def test_best_params_are_the_options_as_given(digits):
    """A Choice of 0.5, 1 and 2.5 holds a float column; best_params gives the option 1, not 1.0."""
    space = vt.Space(learning_rate=vt.Fixed(0.05), init_scale=vt.Choice([0.5, 1, 2.5]))
    result = vt.tune(vt.MLP(hidden=1, units=8), space, digits, vt.GridSearch(population=3), **SMALL)
    for option in (0.5, 1, 2.5):
        made_best = result.members["init_scale"].to_numpy() == option
        result.members["score"] = np.where(made_best, 1.0, 0.0)
        assert result.best_params == {"learning_rate": 0.05, "init_scale": option}
        assert type(result.best_params["init_scale"]) is type(option)
    # numpy options, and a conditional integer's value (read from the encoded hp): plain Python, as JSON takes
    space = vt.Space(learning_rate=vt.Fixed(0.05), n_hidden=vt.Choice(list(np.arange(1, 3))),
                     n_units=vt.IntUniform(4, 8)).only_when("n_units", n_hidden=1)
    result = vt.tune(vt.MLP(units=8), space, digits, vt.GridSearch(values={"n_hidden": [1], "n_units": [6]},
                                                                    population=1), **SMALL)
    assert json.loads(json.dumps(result.best_params)) == {"learning_rate": 0.05, "n_hidden": 1, "n_units": 6}


def test_a_metric_of_yours_named_roc_auc_is_not_refused_on_one_class_as_the_built_in_is():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    data = vt.Dataset.from_arrays(X, y, "classification", validation=(X[:10], np.zeros(10, int)), test=(X[:10], y[:10]))
    hits = vt.Metric("roc_auc", "classification", lambda out, t: jnp.mean(jnp.argmax(out, 1) == t))
    result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.Fixed(0.05)), data,
                     vt.RandomSearch(population=2), metric=hits, epochs=1, batch_size=16, progress=False)
    assert np.isfinite(result.members["score"]).all()
    with pytest.raises(ValueError, match="metric='roc_auc' is undefined on the validation split"):
        vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.Fixed(0.05)), data,
                vt.RandomSearch(population=2), metric="roc_auc", epochs=1, batch_size=16, progress=False)


def test_diverged_members_rank_last_and_are_reported(digits):
    space = vt.Space(learning_rate=vt.Choice([1e-2, 1e7]))
    result = vt.tune(vt.MLP(hidden=1, units=8), space, digits, vt.RandomSearch(population=8), **SMALL)
    df = result.to_dataframe()
    blown = df["learning_rate"] == 1e7
    assert blown.any() and (~blown).any()
    assert (df.loc[blown, "status"] == "diverged").all() and df.loc[blown, "score"].isna().all()
    assert result.best_params["learning_rate"] == 1e-2
    assert set(result.ranking()[-blown.sum():]) == set(np.flatnonzero(blown))


def test_a_metric_undefined_on_the_validation_rows_diverges_no_one_and_is_named(diabetes):
    """A metric that is not finite while the loss is (a relative error over zero targets) is the
    metric's fault: the members train on, and the warning names the metric, not the learning rate."""
    relative = vt.Metric("neg_relative_error", "regression",
                         lambda out, y: -jnp.mean(jnp.abs(out[:, 0] - y) / (0.0 * y)))  # x / 0: inf or NaN
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-2))
    with pytest.warns(UserWarning, match=r"metric 'neg_relative_error' was NaN or infinite for 4 of 4 members .* "
                                         r"Their training went on\. Make the metric finite") as caught:
        result = vt.tune(vt.MLP(hidden=1, units=8), space, diabetes, vt.RandomSearch(population=4), epochs=3,
                         metric=relative, progress=False)
    assert not any("learning rate" in str(w.message) for w in caught)
    df = result.to_dataframe()
    assert (df["status"] == "ok").all() and (df["epochs_trained"] == 3).all() and df["score"].isna().all()
    assert np.isfinite(result.curves["train_loss"]).all() and np.isfinite(result.curves["val_loss"]).all()
    assert list(result.metric_undefined()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="no best member: metric 'neg_relative_error' was NaN"):
        result.best_params


@dataclasses.dataclass(frozen=True)
class FewerThanPopulation(vt.Strategy):
    """Asks 3 members although its population is 4 (like the last chunk of a grid)."""

    population: int = 4

    def init(self, space, key):
        return {"space": space, "round": 0}

    def ask(self, state, key):
        return state["space"].sample(key, 3), state

    def tell(self, state, hp, scores):
        assert scores.shape == (3,)
        return {**state, "round": state["round"] + 1}

    def done(self, state):
        return state["round"] >= 1


def test_short_populations_are_padded_with_frozen_members(digits):
    result = vt.tune(vt.MLP(hidden=1, units=8), DEMO_LIKE, digits, FewerThanPopulation(), **SMALL)
    assert len(result) == 3 and result.members["member"].tolist() == [0, 1, 2]


def test_run_dir_is_written_after_each_round(digits, tmp_path):
    vt.tune(vt.MLP(hidden=1, units=8), DEMO_LIKE, digits, vt.RandomSearch(population=4, rounds=2),
            run_dir=str(tmp_path / "r"), **SMALL)
    loaded = vt.load_results(tmp_path / "r")
    assert len(loaded) == 8 and loaded.members["round"].tolist() == [0] * 4 + [1] * 4


def test_regression_on_diabetes(diabetes):
    result = vt.tune(vt.MLP(hidden=1, units=16), vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-2)), diabetes,
                     vt.RandomSearch(population=8), metric="r2", epochs=5, batch_size=32, progress=False)
    assert result.metric == "r2" and result.best_score > 0.2


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(space=vt.Space(learning_rte=vt.LogUniform(1e-3, 1e-1))), ValueError,
         r"space has 'learning_rte'.*Did you mean 'learning_rate'\?"),
        (dict(space=vt.Space(learning_rate=vt.Uniform(-0.1, 0.1))), ValueError,
         r"learning_rate=Uniform\(low=-0.1, high=0.1\) allows -0.1, outside \(0.0, inf\); use e.g. vt.LogUniform"),
        (dict(space=vt.Space(momentum=vt.Uniform(0.5, 1.0))), ValueError, r"momentum=.*allows 1.0, outside \[0.0, 1.0\)"),
        (dict(space=vt.Space(optimizer=vt.Choice(["sgd", "lbfgs"]))), ValueError, r"optimizer options \['lbfgs'\] are unknown"),
        (dict(space=vt.Space(batch_size=vt.Choice([16, 4096]))), ValueError,
         r"batch_size=Choice.*allows 4096, more than the 1079 training rows"),
        (dict(space=vt.Space(batch_size=vt.IntUniform(0, 8))), ValueError, "batch_size must be >= 1"),
        (dict(space=vt.Space(schedule=vt.Choice(["cosine", "cyclic"]))), ValueError,
         r"schedule options \['cyclic'\] are unknown"),
        (dict(space=vt.Space(decay_rate=vt.Uniform(0.5, 2.0))), ValueError, r"decay_rate=.*allows 2.0, outside \(0.0, 1.0\]"),
        (dict(batch_size=5000), ValueError, r"batch_size=5000 is larger than the 1079 training rows"),
        (dict(epochs=0), ValueError, "epochs must be an integer >= 1, got 0"),
        (dict(metric="r2"), ValueError, r"metric='r2' is for regression, but the data is classification"),
        (dict(metric="auc"), ValueError, r"metric='auc' is unknown"),
        (dict(strategy="random"), TypeError, "strategy must be a vt strategy"),
        (dict(data=np.zeros((3, 3))), TypeError, "data must be a vt.Dataset"),
        (dict(seed=1.5), TypeError, "seed must be an integer"),
        (dict(evaluate_every=0), ValueError, "evaluate_every must be an integer >= 1, got 0"),
        (dict(evaluate_every=2, early_stopping=vt.EarlyStopping(patience=3)), ValueError,
         r"evaluate_every=2 with early_stopping=.*needs every epoch's scores; use evaluate_every=1"),
        (dict(evaluate_every=2, strategy=vt.Hyperband(), epochs=9), ValueError,
         r"evaluate_every=2 with Hyperband, which decides on validation scores during training"),
    ],
)
def test_bad_input_fails_before_compiling(digits, change, error, match):
    kwargs = dict(model=vt.MLP(hidden=1, units=8), space=DEMO_LIKE, data=digits,
                  strategy=vt.RandomSearch(population=4), epochs=1, progress=False)
    kwargs.update(change)
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(error, match=match):
        vt.tune(**kwargs)
    assert dict(engine.TRACE_COUNTS) == before


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: vt.RandomSearch(population=0), "population must be an integer >= 1, got 0"),
        (lambda: vt.RandomSearch(population=4, rounds=0), "rounds must be an integer >= 1"),
        (lambda: vt.MLP(hidden=-1), "hidden must be an integer >= 0"),
        (lambda: vt.MLP(activation="swish2"), "activation='swish2'"),
        (lambda: vt.MLP(matmul_dtype="float16"), r"matmul_dtype='float16'\): choose from \['bfloat16', 'float32'\]"),
    ],
)
def test_bad_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_strategy_ask_tell_without_training():
    strategy = vt.RandomSearch(population=5, rounds=2)
    state = strategy.init(DEMO_LIKE, jax.random.key(0))
    seen = 0
    while not strategy.done(state):
        hp, state = strategy.ask(state, jax.random.key(seen))
        assert hp["learning_rate"].shape == (5,)
        state = strategy.tell(state, hp, jnp.where(jnp.arange(5) == 2, jnp.nan, hp["learning_rate"]))
        seen += 5
    assert seen == strategy.total_evaluations() == 10
    with pytest.raises(ValueError, match=r"scores must have shape \(5,\)"):
        strategy.tell(state, hp, jnp.zeros(4))


def test_a_tiny_search_compiles_quickly_and_the_same_way_every_time(monkeypatch):
    """A search that trains for a moment compiles its training program without LLVM's optimisations
    (most of a tiny first search is compile). The choice follows what the search trains, never a
    timing, so the same seed still gives the same numbers bit for bit. The checks before it trace
    the model with a member made on the host: nothing is sampled (compiled) for them."""
    from vmaptune import space as space_module
    from vmaptune.program import one_member

    calls = []
    quick = engine.train_chunk_quick
    monkeypatch.setattr(engine, "train_chunk_quick", lambda *a, **k: calls.append(a[0]) or quick(*a, **k))
    data = vt.load_dataset("iris")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_units=vt.Choice([4, 8]))

    def search():
        return vt.tune(vt.MLP(hidden=1, units=8), space, data, vt.RandomSearch(population=4), epochs=2, progress=False)

    first, second = search(), search()
    assert calls
    np.testing.assert_array_equal(first.curves["val_loss"], second.curves["val_loss"])
    monkeypatch.setattr(space_module, "_sample", lambda *a: pytest.fail("one_member sampled"))
    member = one_member(vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_units=vt.Choice([4, 8]),
                                 activation=vt.Choice(["tanh", "relu"]), momentum=vt.OneMinusLogUniform(0.5, 0.9)))
    assert member == {"learning_rate": np.float32(1e-3), "n_units": 4, "activation": 0, "momentum": np.float32(0.5)}


def test_evaluating_every_few_epochs_changes_nothing_but_the_skipped_epochs(digits):
    """evaluate_every=3 over 7 epochs validates after epochs 3, 6 and 7 (the last): the same
    scores there as validating every epoch, the same training, and the scores carried on between."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_units=vt.Choice([8, 16]))
    run = lambda every: vt.tune(vt.MLP(hidden=1), space, digits, vt.RandomSearch(population=6), epochs=7, cv=2,
                                batch_size=128, seed=3, progress=False, evaluate_every=every)
    every, sparse = run(1), run(3)
    np.testing.assert_array_equal(sparse.curves["train_loss"], every.curves["train_loss"])
    for key in ("val_score", "val_loss"):
        np.testing.assert_allclose(sparse.curves[key][:, [2, 5, 6]], every.curves[key][:, [2, 5, 6]], rtol=1e-6)
        assert np.isnan(sparse.curves[key][:, :2]).all()
        np.testing.assert_array_equal(sparse.curves[key][:, 3:5], sparse.curves[key][:, [2, 2]])
    np.testing.assert_allclose(sparse.curves["split_final_scores"], every.curves["split_final_scores"], rtol=1e-6)
    assert sparse.settings["evaluate_every"] == 3


def test_a_member_diverging_between_validations_scores_nan_from_then_on(digits):
    """Divergence between two validated epochs: the member's curve is NaN from then on (not its
    last validated score carried on), also when its block goes idle (member_block=1)."""
    space = vt.Space(learning_rate=vt.LogUniform(3e-2, 1e6))  # seed 1: 4 of 6 diverge, one between validations
    result = vt.tune(vt.MLP(hidden=1, units=8), space, digits, vt.RandomSearch(population=6), epochs=7,
                     batch_size=128, seed=1, progress=False, evaluate_every=2, member_block=1)
    diverged = (result.members["status"] == "diverged").to_numpy()
    assert diverged.any() and not diverged.all()
    assert np.isnan(result.curves["val_score"][diverged, -1]).all()
    assert np.isnan(result.members["final_score"].to_numpy()[diverged]).all()
    assert np.isfinite(result.curves["val_score"][~diverged, -1]).all()


def _random_sampler(seed):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


@pytest.mark.parametrize("strategy", [lambda: vt.RandomSearch(population=3), lambda: vt.BayesOpt(population=3, rounds=1),
                                      lambda: vt.OptunaSampler(_random_sampler, 3)], ids=["random", "bayesopt", "optuna"])
def test_a_search_with_jax_enable_x64_on_trains_in_float32_as_without(digits, strategy):
    """A user's process with 64-bit floats on (jax_enable_x64) searches as any other: the MLP's
    parameters stay float32 (a float64 bias broke the training loop's carry), and the draws and
    seeds are the same (float32 and int32 asked for: x64 made them 64-bit, other members)."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), dropout=vt.Uniform(0.0, 0.3),
                     optimizer=vt.Fixed("adam"), schedule=vt.Fixed("cosine"))
    kwargs = dict(epochs=2, batch_size=64, seed=4, refit=1, progress=False)
    want = vt.tune(vt.MLP(hidden=1, units=16), space, digits, strategy(), **kwargs)
    with jax.enable_x64(True):
        got = vt.tune(vt.MLP(hidden=1, units=16), space, digits, strategy(), **kwargs)
        model = got.best_model()
        assert {leaf.dtype for leaf in jax.tree.leaves(model.variables)} == {jnp.dtype(jnp.float32)}
        predictions = model.predict(digits.raw("test")[0])
    np.testing.assert_allclose(got.curves["val_loss"], want.curves["val_loss"], rtol=1e-5, atol=1e-6)
    assert (predictions == want.best_model().predict(digits.raw("test")[0])).mean() > 0.99


# -- sample weights ----------------------------------------------------------------------------------------
def _iris_split(sample_weight=None, duplicate: int = 0):
    """iris, standardised once, as 100 training rows (the first `duplicate` rows again at the end)
    and 50 validation rows of its own, so the two ways of weighing rows share every other row."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = (X[order] - X.mean(0)) / X.std(0), y[order]
    Xt, yt = np.r_[X[:100], X[:duplicate]], np.r_[y[:100], y[:duplicate]]
    return vt.Dataset.from_arrays(Xt, yt, "classification", validation=(X[100:], y[100:]), test_fraction=0,
                                  standardize=False, sample_weight=sample_weight)


def test_a_row_of_weight_two_trains_as_that_row_twice():
    """Full-batch gradient descent: weights 2 on 20 rows give the steps those rows repeated give."""
    weights = np.r_[np.full(20, 2.0), np.ones(80)]
    space = vt.Space(learning_rate=vt.LogUniform(0.05, 0.5), optimizer=vt.Fixed("sgd"))
    weighted = vt.tune(vt.MLP(hidden=1, units=8), space, _iris_split(weights), vt.RandomSearch(population=3),
                       epochs=5, batch_size=100, progress=False)
    twice = vt.tune(vt.MLP(hidden=1, units=8), space, _iris_split(duplicate=20), vt.RandomSearch(population=3),
                    epochs=5, batch_size=120, progress=False)
    np.testing.assert_allclose(weighted.curves["val_loss"], twice.curves["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(weighted.curves["train_loss"], twice.curves["train_loss"], rtol=1e-5)
    plain = vt.tune(vt.MLP(hidden=1, units=8), space, _iris_split(), vt.RandomSearch(population=3), epochs=5,
                    batch_size=100, progress=False)
    assert np.abs(plain.curves["val_loss"] - weighted.curves["val_loss"]).max() > 1e-3  # the weights mattered


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_equal_weights_train_as_none_under_cv_minibatches_and_a_refit(scale):
    """Every row weighing `scale`: the loss is a weighted mean, so nothing changes (up to float32 rounding:
    the weighted program sums a batch in an order of its own, a last bit apart on some orders of rows)."""
    space = vt.Space(learning_rate=vt.LogUniform(0.01, 0.1), batch_size=vt.Choice([16, 32]))
    runs = [vt.tune(vt.MLP(hidden=1, units=8), space, _iris_split(weights), vt.RandomSearch(population=4), epochs=3,
                    cv=3, refit=1, progress=False) for weights in (None, np.full(100, scale))]
    for name in ("train_loss", "val_loss"):
        np.testing.assert_allclose(runs[0].curves[name], runs[1].curves[name], rtol=1e-6 if scale == 1 else 1e-5)
    np.testing.assert_allclose(runs[0].members["score"], runs[1].members["score"], rtol=1e-6 if scale == 1 else 1e-5)


def test_a_fold_trains_as_it_would_with_no_other_fold_beside_it():
    """A fold's training order comes from the seed and its own rows: fold k of a search over all your
    splits equals a search over that split alone (the order was drawn from one stream across the
    folds, so it depended on how many came before)."""
    from sklearn.model_selection import KFold

    data = vt.load_dataset("iris")
    pairs = list(KFold(4, shuffle=True, random_state=0).split(np.arange(len(data.pool()[1]))))
    kw = dict(epochs=2, batch_size=16, progress=False, metric="neg_log_loss", bucketing=False)
    space = vt.Space(learning_rate=vt.Fixed(0.05))
    every = vt.tune(vt.MLP(hidden=1, units=8), space, data, vt.RandomSearch(population=1), cv=pairs, **kw)
    alone = vt.tune(vt.MLP(hidden=1, units=8), space, data, vt.RandomSearch(population=1), cv=[pairs[2]], **kw)
    assert every.curves["split_scores"][0][2] == alone.curves["split_scores"][0][0]
