"""Your own model: a flax.linen CNN with BatchNorm and an nnx module train as populations with the
same invariants as the built-in MLP."""

import dataclasses
import pickle
import warnings

import flax.linen as nn
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

import vmaptune as vt
from helpers import assert_trees_equal, host, take
from user_models import CNN, MaxPooledAttention, NnxNet, TwoTargets, diabetes_two_targets, token_sequences
from vmaptune import engine
from vmaptune.population import PopulationRun

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-2, 5e-2), dropout=vt.Uniform(0.0, 0.3))
BATCH = 128


@pytest.fixture(scope="module")
def cnn_program(images):
    return vt.build_program(vt.Linen(CNN), SPACE, images, batch_size=BATCH)


@pytest.fixture(scope="module")
def hp():
    return SPACE.numeric(SPACE.sample(jax.random.key(3), 3))


def run(program, data, hp, ids, epochs=2, **kwargs):
    r = PopulationRun(program, hp, engine.data_arrays(data), member_ids=np.asarray(ids), seed=0, epochs=epochs,
                      **kwargs)
    r.train(epochs)
    return r


def one(hp, i):
    return {k: v[i:i + 1] for k, v in hp.items()}


def assert_close_trees(a, b, rtol=2e-4, atol=2e-5):
    for x, y in zip(jax.tree.leaves(host(a)), jax.tree.leaves(host(b))):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


# -- a population equals its members trained alone ----------------------------------------------------
def test_linen_cnn_population_equals_members_trained_alone(cnn_program, images, hp):
    together = run(cnn_program, images, hp, [0, 1, 2])
    members = together.state.members
    assert set(members.model_state) == {"batch_stats"}  # BatchNorm's statistics are per-member state
    for i in range(3):
        alone = run(cnn_program, images, one(hp, i), [i])
        assert_close_trees(take(members.params, i), take(alone.state.members.params, 0))
        assert_close_trees(take(members.model_state, i), take(alone.state.members.model_state, 0))
        np.testing.assert_allclose(together.curves["val_loss"][i], alone.curves["val_loss"][0], rtol=1e-4)
    assert np.isfinite(together.curves["val_score"]).all() and together.curves["val_score"][:, -1].min() > 0.5


def test_nnx_population_equals_members_trained_alone(digits):
    space = SPACE.replace(width=vt.Fixed(16))
    program = vt.build_program(vt.Nnx(NnxNet), space, digits, batch_size=BATCH)
    hp = space.numeric(space.sample(jax.random.key(4), 3))
    together = run(program, digits, hp, [0, 1, 2])
    assert jax.tree.leaves(together.state.members.model_state)  # nnx BatchStat variables are model state
    for i in range(3):
        alone = run(program, digits, one(hp, i), [i])
        assert_close_trees(take(together.state.members.params, i), take(alone.state.members.params, 0))
        assert_close_trees(take(together.state.members.model_state, i), take(alone.state.members.model_state, 0))
        np.testing.assert_allclose(together.curves["val_loss"][i], alone.curves["val_loss"][0], rtol=1e-4)
    assert (together.curves["val_loss"][:, -1] < together.curves["val_loss"][:, 0]).all()  # and they learn


# -- compiles: float fields are traced, structural fields make one program per value ---------------------
def test_new_float_values_never_recompile_and_a_structural_choice_compiles_one_program_per_value(images):
    space = vt.Space(learning_rate=vt.Fixed(0.03), dropout=vt.Uniform(0.0, 0.3), features=vt.Choice([2, 3, 5]))
    grid = vt.GridSearch(values={"features": [2, 3, 5], "dropout": [0.0, 0.2]}, population=6)
    kwargs = dict(epochs=1, batch_size=BATCH, progress=False)
    before = dict(engine.TRACE_COUNTS)
    result = vt.tune(vt.Linen(CNN), space, images, grid, **kwargs)
    assert engine.TRACE_COUNTS["train_chunk"] - before.get("train_chunk", 0) == 3  # features 2, 3 and 5
    assert sorted(result.members["features"].unique()) == [2, 3, 5]
    after = dict(engine.TRACE_COUNTS)
    vt.tune(vt.Linen(CNN), space, images, vt.GridSearch(values={"features": [2, 3, 5], "dropout": [0.1, 0.3]},
                                                        population=6), **kwargs)
    assert dict(engine.TRACE_COUNTS) == after  # new dropout values: nothing compiles



class TwoLayers(nn.Module):
    width: int = 16

    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(self.width)(x)))


def test_the_waste_figure_weighs_each_width_groups_rows_by_its_networks_flops(digits):
    """A structural width's programs weigh in useful_compute_fraction by their FLOPs (XLA's count):
    a wide program's filler rows are dearer than a narrow one's. Before, every program's rows
    counted alike (1 FLOP each) for a model of your own."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), width=vt.Choice([8, 1024]))
    result = vt.tune(vt.Linen(TwoLayers), space, digits, vt.RandomSearch(population=9), epochs=1, seed=0,
                     progress=False)
    counts = result.members["width"].value_counts().to_dict()
    assert counts == {8: 4, 1024: 5} and result.settings["programs"] == [2]  # (rows: 4 and 8, 3 filler rows wide)
    flops = {w: 2 * (64 * w + w * 10) for w in counts}  # (the matmuls' multiply-adds per row)
    rows = {w: 1 << (k - 1).bit_length() for w, k in counts.items()}
    expected = sum(k * flops[w] for w, k in counts.items()) / sum(rows[w] * flops[w] for w in counts)
    assert result.settings["useful_compute_fraction"][0] == pytest.approx(expected, abs=0.005)  # 0.627, not 9 / 12


def test_a_static_field_drawn_from_a_range_is_refused_before_anything_compiles_but_a_grid_across_it_trains(images):
    # (a random draw gives every member a value of its own, so a compile of its own, every round)
    kwargs = dict(epochs=1, batch_size=BATCH, progress=False)
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(ValueError, match=r"dropout=Uniform\(low=0.0, high=0.3\): dropout is named in vt.Linen\(CNN, "
                                         r"static=\('dropout',\)\), so each value compiles its own program, and "
                                         r"RandomSearch draws every member a value of its own.*one compile per member, "
                                         r"every round\). Search it with a vt.Choice of a few values, e.g. dropout="
                                         r"vt.Choice\(\[0.0, 0.15, 0.3\]\), or with vt.GridSearch.*or leave it out of "
                                         r"static to trace it \(a dropout rate: vt.nn.Dropout"):
        vt.tune(vt.Linen(CNN, static=("dropout",)), SPACE, images, vt.RandomSearch(population=2), **kwargs)
    with pytest.raises(ValueError, match=r"dropout=LogUniform.*and BayesOpt draws every member.*e.g. dropout=vt.Choice"
                                         r"\(\[0.01, 0.0548, 0.3\]\), or with vt.GridSearch, which trains a few "
                                         r"values across the range \(points_per_axis\), or leave it out of static"):
        vt.tune(vt.Linen(CNN, static=("dropout",)), SPACE.replace(dropout=vt.LogUniform(0.01, 0.3)), images,
                vt.BayesOpt(population=2), **kwargs)
    with pytest.raises(ValueError, match=r"and PBT keeps every member in one program, copying one into another: a "
                                         r"static field cannot differ across its members. Leave it out of static"):
        vt.tune(vt.Linen(CNN, static=("dropout",)), SPACE, images, vt.PBT(population=4, interval=1),
                **{**kwargs, "epochs": 2})
    with pytest.raises(ValueError, match=r"Search it with a vt.Choice of a few values, e.g. dropout=vt.Choice\(\[0.1, "
                                         r"0.1005, 0.101\]\)"):  # (a narrow range: 0.1 three times at 3 digits)
        vt.tune(vt.Linen(CNN, static=("dropout",)), SPACE.replace(dropout=vt.Uniform(0.1, 0.101)), images,
                vt.RandomSearch(population=2), **kwargs)
    assert dict(engine.TRACE_COUNTS) == before
    # a grid takes points_per_axis values of the range, which the members share: a program each
    result = vt.tune(vt.Linen(CNN, static=("dropout",)), SPACE.replace(learning_rate=vt.Fixed(0.03)), images,
                     vt.GridSearch(points_per_axis=3, population=3), **kwargs)
    assert engine.TRACE_COUNTS["train_chunk"] - before.get("train_chunk", 0) == 3
    np.testing.assert_allclose(sorted(result.members["dropout"].unique()), [0.0, 0.15, 0.3], atol=1e-6)

def test_the_example_values_of_a_refused_static_range_are_the_bounds_as_given():
    from vmaptune.models.fields import _few_values  # (float32's digits showed 1000.00006 for 1000.0001)

    assert _few_values(vt.Uniform(1000.0, 1000.0001), float) == "vt.Choice([1000.0, 1000.00005, 1000.0001])"
    assert _few_values(vt.LogUniform(1e-8, 1e-7), float) == "vt.Choice([1e-08, 3.16e-08, 1e-07])"
    assert _few_values(vt.Uniform(3.6, 4.4), int) == "vt.Fixed(4)"
    assert _few_values(vt.OneMinusLogUniform(0.9, 0.9999), float) == "vt.Choice([0.9, 0.9968, 0.9999])"  # (not 1.0)
    assert _few_values(vt.Uniform(0.0, 1.0), bool) == "vt.Choice([False, True])"


# -- BatchNorm statistics are per member ----------------------------------------------------------------
class Shrinks(nn.Module):
    """3x3 'VALID' convolutions: depth 4 leaves no pixels of an 8x8 image (a zero-sized layer's init divides by 0)."""

    depth: int = 1

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = nn.relu(nn.Conv(2, (3, 3), padding="VALID")(x))
        return nn.Dense(10)(x.reshape((x.shape[0], -1)))


class NnxShrinks(nnx.Module):
    def __init__(self, depth: int = 1, *, rngs: nnx.Rngs):
        side = 8 - 2 * depth
        self.out = nnx.Linear(side * side, 10, rngs=rngs)  # (0 inputs at depth 4)

    def __call__(self, x):
        return self.out(x[:, :self.out.in_features])


def test_a_module_that_fails_for_a_structural_value_names_it_and_the_finished_rounds_are_kept(images):
    """A module that failed for one value of a searched field (depth 4 of 1-4) was told to reshape X
    (its input shape is right: depths 1-3 train), without the value; an nnx module's __init__ raised
    bare; a later round's failure dropped the finished rounds."""
    grid = vt.GridSearch(population=1)  # (one depth a round: 1, then 4)
    space = vt.Space(learning_rate=vt.Fixed(0.01), depth=vt.Choice([1, 4]))
    with pytest.raises(ValueError, match=r"^vt.Linen\(Shrinks\), built with depth=4, fails when initialised") as failed:
        vt.tune(vt.Linen(Shrinks), space, images, grid, epochs=1, batch_size=64, progress=False)
    assert "If it fails only for some of the space's values of 'depth', narrow their range" in str(failed.value)
    assert "reshape" not in str(failed.value)
    assert "round 1 failed while it trained, after 1 finished round(s)" in failed.value.__notes__[-1]
    assert list(failed.value.results.to_dataframe()["depth"]) == [1] and failed.value.results.succeeded
    with pytest.raises(ValueError, match=r"^vt.Nnx\(NnxShrinks\), built with depth=4, fails when built: "
                                         r"ZeroDivisionError.*\nIf it fails only for some of the space's values of "
                                         r"'depth', narrow"):
        vt.tune(vt.Nnx(NnxShrinks), vt.Space(learning_rate=vt.Fixed(0.01), depth=vt.Fixed(4)), images,
                vt.RandomSearch(population=2), epochs=1, batch_size=64, progress=False)


def test_batch_stats_of_a_diverging_member_never_touch_the_others(cnn_program, images, hp):
    stable = run(cnn_program, images, hp, [0, 1, 2])
    blown_hp = dict(hp, learning_rate=hp["learning_rate"].at[2].set(1e8))
    blown = run(cnn_program, images, blown_hp, [0, 1, 2])
    assert blown.status()["diverged"].tolist() == [False, False, True]
    for i in (0, 1):
        assert_trees_equal(take(blown.state.members.model_state, i), take(stable.state.members.model_state, i))
        assert_trees_equal(take(blown.state.members.params, i), take(stable.state.members.params, i))
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(host(take(blown.state.members.model_state, 2))))


def test_copies_take_batch_stats_and_frozen_members_keep_theirs(cnn_program, images, hp):
    r = PopulationRun(cnn_program, hp, engine.data_arrays(images), member_ids=np.arange(3), seed=0, epochs=3)
    r.train(1)
    before = host(r.state.members)
    r.apply(vt.Decision(copy_from=np.asarray([0, 0, 2]), freeze=np.asarray([False, False, True])))
    copied = host(r.state.members)
    assert_trees_equal(take(copied.model_state, 1), take(before.model_state, 0))  # PBT's exploit: bit for bit
    assert_trees_equal(take(copied.params, 1), take(before.params, 0))
    assert_trees_equal(take(copied.opt_state, 1), take(before.opt_state, 0))
    r.train(2)
    after = host(r.state.members)
    assert_trees_equal(take(after.model_state, 2), take(before.model_state, 2))  # frozen: untouched
    assert_trees_equal(take(after.params, 2), take(before.params, 2))
    assert not np.array_equal(after.model_state["batch_stats"]["BatchNorm_0"]["mean"][0],
                              before.model_state["batch_stats"]["BatchNorm_0"]["mean"][0])


# -- vt.nn.Dropout -------------------------------------------------------------------------------------
def test_dropout_with_a_traced_rate():
    x = jnp.ones((200, 500))

    def drop(rate, key):
        return vt.nn.Dropout(rate).apply({}, x, deterministic=False, rngs={"dropout": key})

    np.testing.assert_array_equal(drop(0.0, jax.random.key(0)), x)  # rate 0: no dropout at all
    rates = jnp.asarray([0.1, 0.3, 0.6])
    out = jax.jit(jax.vmap(drop))(rates, jax.random.split(jax.random.key(1), 3))  # traced, per member
    for rate, o in zip(np.asarray(rates), np.asarray(out)):
        dropped = (o == 0).mean()
        assert abs(dropped - rate) < 0.01, (rate, dropped)
        np.testing.assert_allclose(o[o != 0], 1.0 / (1.0 - rate), rtol=1e-6)  # survivors scaled by 1 / (1 - r)
    np.testing.assert_array_equal(vt.nn.Dropout(0.5).apply({}, x, deterministic=True), x)
    assert not np.array_equal(drop(0.3, jax.random.key(2)), drop(0.3, jax.random.key(3)))


def test_flax_dropout_with_a_traced_rate_is_named_before_anything_compiles(images):
    class FlaxDropout(nn.Module):
        dropout: float = 0.0

        @nn.compact
        def __call__(self, x, train: bool = False):
            x = nn.Dropout(self.dropout)(x.reshape((x.shape[0], -1)), deterministic=not train)
            return nn.Dense(10)(x)

    # (not "annotate it int": a traced field takes floats, and a rate as an int would be 0)
    with pytest.raises(ValueError, match=r"per-member hyperparameter as a Python value.*\['dropout'\].*Keep such a "
                                         r"field traced.*flax's nn.Dropout tests `rate == 0` in Python, so use "
                                         r"vt.nn.Dropout for a searched rate. Or make it structural, static=\('dropout',"
                                         r"\), and search it with a vt.Choice of a few values"):
        vt.build_program(vt.Linen(FlaxDropout), SPACE, images)

    class NnxFlaxDropout(nnx.Module):
        def __init__(self, dropout: float = 0.0, *, rngs: nnx.Rngs):
            self.drop = nnx.Dropout(dropout, rngs=rngs)
            self.out = nnx.Linear(64, 10, rngs=rngs)

        def __call__(self, x):
            return self.out(self.drop(x.reshape((x.shape[0], -1))))

    with pytest.raises(ValueError, match=r"flax's nnx.Dropout tests `rate == 0` in Python, so use vt.nn.NnxDropout "
                                         r"for a searched rate. Or make it structural, static=\('dropout',\)"):
        vt.build_program(vt.Nnx(NnxFlaxDropout), SPACE, images)
    # (the structural route: a few values, a program each)
    program = vt.build_program(vt.Linen(FlaxDropout, static=("dropout",)),
                               SPACE.replace(dropout=vt.Choice([0.0, 0.2])), images)
    assert "dropout" in program.model.structural


def test_a_fixed_value_reaches_the_module_as_python_so_flax_dropout_takes_it(digits):
    """vt.Fixed is one value for every member: the module gets it as a Python number (flax's
    Dropout tests `rate == 0`), exactly as given."""
    class LinenDropout(nn.Module):
        rate: float = 0.0

        @nn.compact
        def __call__(self, x, train: bool = False):
            assert type(self.rate) is float and self.rate == 0.2
            return nn.Dense(10)(nn.Dropout(self.rate)(x, deterministic=not train))

    class NnxDropout(nnx.Module):
        def __init__(self, rate: float = 0.0, *, rngs: nnx.Rngs):
            self.drop, self.out = nnx.Dropout(rate, rngs=rngs), nnx.Linear(64, 10, rngs=rngs)

        def __call__(self, x):
            return self.out(self.drop(x))

    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 3e-2), rate=vt.Fixed(0.2))
    for model in (vt.Linen(LinenDropout), vt.Nnx(NnxDropout)):
        result = vt.tune(model, space, digits, vt.RandomSearch(population=2), epochs=1, progress=False)
        assert (result.to_dataframe()["status"] == "ok").all() and result.best_params["rate"] == 0.2


# -- losses, several targets, your own optimizer ------------------------------------------------------------
def test_mse_on_a_classifier_is_the_squared_error_of_the_class_probabilities(digits):
    """Seed 000's least mean squares against cross-entropy: loss='mse' on a classifier trains on
    mean((softmax(outputs) - one_hot(y))^2) over the classes, Keras' loss='mse' on softmax outputs."""
    loss = vt.metrics.get_loss("mse", "classification")
    out = jnp.asarray([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    p = np.exp(np.asarray(out)) / np.exp(np.asarray(out)).sum(axis=1, keepdims=True)
    expected = np.mean((p - np.eye(3)[[0, 1]]) ** 2, axis=1)
    np.testing.assert_allclose(loss.per_example(out, jnp.asarray([0, 1])), expected, rtol=1e-6)
    result = vt.tune(vt.MLP(hidden=1, units=16, loss="mse"), vt.Space(learning_rate=vt.Choice([0.5, 2.0])), digits,
                     vt.GridSearch(), epochs=3, batch_size=64, progress=False)
    assert (result.members["status"] == "ok").all() and result.best_score > 0.5  # it learns digits
    with pytest.raises(ValueError, match=r"loss='mae' is for regression, but the data is classification; use one "
                                         r"of \['cross_entropy', 'mse'\]"):
        vt.metrics.get_loss("mae", "classification")


def test_huber_and_custom_losses_with_two_regression_targets():
    data = diabetes_two_targets()
    assert data.n_outputs == 2 and data.y_train.shape[1] == 2 and np.asarray(data.y_std).shape == (2,)
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 5e-2), optimizer=vt.Fixed("adam"))
    kwargs = dict(epochs=4, batch_size=32, progress=False)
    huber = vt.tune(vt.Linen(TwoTargets, loss="huber"), space, data, vt.RandomSearch(population=3), metric="r2",
                    **kwargs)
    assert huber.settings["loss"] == "huber" and huber.best_score > 0.5  # r2 averaged over the two targets

    def cubic(out, y):  # per example, as the engine needs
        return jnp.mean(jnp.abs(out - y) ** 3, axis=-1)

    mine = vt.tune(vt.Linen(TwoTargets, loss=cubic), space, data, vt.RandomSearch(population=3), **kwargs)
    assert mine.settings["loss"] == "cubic" and np.isfinite(mine.members["score"]).all()
    assert not np.allclose(mine.curves["train_loss"], huber.curves["train_loss"])


def test_your_own_optax_optimizer_reads_the_space_and_can_be_rewritten_in_place(images):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-2), weight_decay=vt.LogUniform(1e-5, 1e-3),
                     dropout=vt.Fixed(0.1))

    def adamw(hp):
        return optax.adamw(hp["learning_rate"], weight_decay=hp["weight_decay"])

    program = vt.build_program(vt.Linen(CNN), space, images, batch_size=BATCH, optimizer=adamw)
    assert program.optimizer.hyperparameters() == {"learning_rate", "weight_decay"}
    hp = space.numeric(space.sample(jax.random.key(0), 3))
    r = PopulationRun(program, hp, engine.data_arrays(images), member_ids=np.arange(3), seed=0, epochs=2)
    r.train(1)  # (a decision comes while members train: one whose budget is spent keeps the values it trained with)
    np.testing.assert_array_equal(np.asarray(r.state.members.opt_state.hyperparams["learning_rate"]),
                                  np.asarray(hp["learning_rate"]))
    r.apply(vt.Decision(hp={"learning_rate": np.asarray([0.0, 0.0, 0.0], np.float32)},
                        update=np.asarray([True, False, False])))
    assert float(r.state.members.opt_state.hyperparams["learning_rate"][0]) == 0.0
    with pytest.raises(ValueError, match=r"optimizer= reads \['beta'\], which the space does not name"):
        vt.build_program(vt.Linen(CNN), space, images, optimizer=lambda hp: optax.sgd(hp["beta"]))
    with pytest.raises(ValueError, match=r"reads \['learning_rte'\], .*Did you mean 'learning_rate' \(a typo in your"):
        vt.build_program(vt.Linen(CNN), space, images, optimizer=lambda hp: optax.sgd(hp["learning_rte"]))
    with pytest.raises(ValueError, match=r"space names \['optimizer'\], the built-in optimizer's kind"):
        vt.build_program(vt.Linen(CNN), space.replace(optimizer=vt.Choice(["sgd"])), images, optimizer=adamw)


def test_an_inject_hyperparams_of_your_own_follows_the_new_values_as_the_plain_spelling_does(digits):
    # (its state kept the values it was initialised with: PBT's and a Decision's new ones never reached it)
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 5e-2), weight_decay=vt.LogUniform(1e-4, 1e-2))
    hp = space.numeric(space.sample(jax.random.key(1), 2))
    plain = lambda hp: optax.adamw(hp["learning_rate"], weight_decay=hp["weight_decay"])  # noqa: E731
    wrapped = lambda hp: optax.inject_hyperparams(optax.adamw)(  # noqa: E731
        learning_rate=hp["learning_rate"], weight_decay=hp["weight_decay"])
    params = {}
    for name, make in (("plain", plain), ("wrapped", wrapped)):
        program = vt.build_program(vt.MLP(hidden=1, units=8), space, digits, batch_size=BATCH, optimizer=make)
        r = PopulationRun(program, hp, engine.data_arrays(digits), member_ids=np.arange(2), seed=0, epochs=3)
        r.train(2)
        before = host(r.state.members.params)
        r.apply(vt.Decision(hp={"learning_rate": np.zeros(2, np.float32)}, update=np.asarray([True, False])))
        r.train(1)
        params[name] = host(r.state.members.params)
        assert_trees_equal(take(params[name], 0), take(before, 0))  # a learning rate of 0 stops it
    assert_close_trees(params["wrapped"], params["plain"])  # (float rounding apart)


# -- init_scale, data shapes and errors ---------------------------------------------------------------------
def test_init_scale_multiplies_kernels_at_initialisation(images):
    space = vt.Space(learning_rate=vt.Fixed(0.01), init_scale=vt.LogUniform(0.1, 10.0))
    built = vt.Linen(CNN).build(space, images.spec)
    small, _ = built.init(jax.random.key(0), {"init_scale": jnp.float32(0.5)})
    large, _ = built.init(jax.random.key(0), {"init_scale": jnp.float32(2.0)})
    np.testing.assert_allclose(large["Conv_0"]["kernel"], 4 * small["Conv_0"]["kernel"], rtol=1e-6)
    np.testing.assert_array_equal(large["BatchNorm_0"]["scale"], small["BatchNorm_0"]["scale"])  # not a kernel


class NnxSowing(nnx.Module):
    """Records an activation (flax's way to extract intermediates): not model state."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.hidden, self.out = nnx.Linear(64, 8, rngs=rngs), nnx.Linear(8, 10, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.hidden(x))
        self.sow(nnx.Intermediate, "h", h)
        return self.out(h)


def test_what_an_nnx_module_sows_is_not_its_model_state(digits):
    results = vt.tune(vt.Nnx(NnxSowing), vt.Space(learning_rate=vt.Fixed(0.05), optimizer=vt.Fixed("adam")), digits,
                      vt.RandomSearch(population=2), epochs=2, batch_size=64, progress=False)
    assert (results.members["status"] == "ok").all() and results.best_score > 0.5


class LinenSowingStats(nn.Module):
    """Logs an activation with self.sow into collections of its own ("logs", and "stats" beside a
    step counter): what is sown grows at every call, so it is left out; the counter is state."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train)(nn.relu(nn.Dense(8)(x)))
        self.sow("logs", "h_mean", h.mean())
        self.sow("stats", "h_max", h.max())
        steps = self.variable("stats", "steps", lambda: jnp.zeros((), jnp.int32))
        if self.is_mutable_collection("stats"):
            steps.value += 1
        return nn.Dense(10)(h)


def test_what_a_linen_module_sows_into_a_collection_of_its_own_is_left_out_of_its_model_state(digits, tmp_path):
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 5e-2))
    program = vt.build_program(vt.Linen(LinenSowingStats), space, digits, batch_size=BATCH)
    r = PopulationRun(program, space.numeric(space.sample(jax.random.key(0), 2)), engine.data_arrays(digits),
                      member_ids=np.arange(2), seed=0, epochs=2)
    r.train(1)
    before = host(r.state.members)
    assert set(before.model_state) == {"batch_stats", "stats"} and set(before.model_state["stats"]) == {"steps"}
    r.apply(vt.Decision(freeze=np.asarray([False, True])))
    r.train(1)
    after = host(r.state.members)
    assert_trees_equal(take(after.model_state, 1), take(before.model_state, 1))  # frozen: untouched
    assert_trees_equal(take(after.params, 1), take(before.params, 1))
    steps = [int(m.model_state["stats"]["steps"][0]) for m in (before, after)]
    assert steps[1] - steps[0] == steps[0] - 1 > 0  # carried: one per step, the same each epoch (init counted 1)
    result = vt.tune(vt.Linen(LinenSowingStats), space, digits, vt.RandomSearch(population=2), epochs=1,
                     batch_size=BATCH, refit=1, progress=False)
    model, X = result.best_model(), digits.raw("test")[0]
    for again in (vt.TrainedModel.load(model.save(tmp_path / "best")), pickle.loads(pickle.dumps(model))):
        assert_trees_equal(again.model_state, model.model_state)
        np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


class LinenHalvesNormalised(nn.Module):
    """Normalises each half of its batch in training (a module that needs two rows to train): the
    check of what a training step carries traced it on init's one row and refused it."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(8)(x)
        if train:
            halves = jnp.split(h, 2)
            norm = nn.BatchNorm(use_running_average=False)
            h = jnp.concatenate([norm(halves[0]), norm(halves[1])])
        else:
            h = nn.BatchNorm(use_running_average=True)(h)
        return nn.Dense(10)(h)


def test_a_linen_module_that_needs_two_rows_to_train_keeps_its_batchnorm_state(digits):
    result = vt.tune(vt.Linen(LinenHalvesNormalised), vt.Space(learning_rate=vt.LogUniform(1e-2, 5e-2)), digits,
                     vt.RandomSearch(population=2), epochs=1, batch_size=BATCH, progress=False)
    assert np.isfinite(result.members["score"]).all()


class NnxLogged(nnx.Variable):
    """A Variable type of the user's own, to sow into."""


class NnxSowingItsOwn(nnx.Module):
    """Sows with its own Variable type (not nnx.Intermediate), beside BatchNorm's statistics."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.hidden, self.out = nnx.Linear(64, 8, rngs=rngs), nnx.Linear(8, 10, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)

    def __call__(self, x):
        h = self.norm(jax.nn.relu(self.hidden(x)))
        self.sow(NnxLogged, "h_mean", h.mean())
        return self.out(h)


class NnxCountingInCall(NnxSowingItsOwn):
    """Makes a variable of its own in __call__, not in __init__: it would start again at every step."""

    def __call__(self, x):
        if not hasattr(self, "calls"):
            self.calls = NnxLogged(jnp.zeros((), jnp.int32))
        self.calls.value += 1
        return self.out(self.norm(jax.nn.relu(self.hidden(x))))


def test_what_an_nnx_module_sows_with_a_variable_type_of_its_own_is_left_out_and_one_made_in_call_refused(
        digits, tmp_path):
    space = vt.Space(learning_rate=vt.Fixed(0.05), optimizer=vt.Fixed("adam"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (flax: Module.sow outside nnx.capture)
        result = vt.tune(vt.Nnx(NnxSowingItsOwn), space, digits, vt.RandomSearch(population=2), epochs=2,
                         batch_size=64, refit=1, progress=False)
        assert (result.members["status"] == "ok").all() and result.best_score > 0.5
        model, X = result.best_model(), digits.raw("test")[0]
        assert set(model.variables) == {"params", "norm"}  # BatchNorm's statistics, not what was sown
        again = vt.TrainedModel.load(model.save(tmp_path / "best"))
        np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(ValueError, match=r"vt.Nnx\(NnxCountingInCall\): its variable self.calls \(NnxLogged\) is "
                                         r"made when the module is called, not when it is built.*would start again at "
                                         r"every step. Make it in __init__ \(self.calls = NnxLogged\(...\)\), or sow "
                                         r"into nnx.Intermediate"):
        vt.build_program(vt.Nnx(NnxCountingInCall), space, digits)
    assert dict(engine.TRACE_COUNTS) == before


class MomentumField(nn.Module):
    """A field named as an optimizer setting: BatchNorm's momentum."""

    momentum: float = 0.99

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum)(nn.relu(nn.Dense(8)(x)))
        return nn.Dense(10)(h)


def test_a_field_named_as_an_optimizer_setting_takes_the_name_and_the_optimizer_keeps_its_default(digits):
    """README: a space name that matches a field of the module fills it; the optimizer (sgd, momentum 0)
    does not read it too. Said, since searching the optimizer's momentum may have been meant."""
    space = vt.Space(learning_rate=vt.Fixed(0.1), optimizer=vt.Fixed("sgd"), momentum=vt.Fixed(0.5))
    with pytest.warns(UserWarning, match=r"space's \['momentum'\] fill the fields of Linen\(MomentumField\) so named, "
                                         r"not the optimizer's .* rename the field"):
        program = vt.build_program(vt.Linen(MomentumField), space, digits)
    assert "momentum" not in program.optimizer.hyperparameters()
    numeric = space.numeric(space.encode({"learning_rate": 0.1, "optimizer": "sgd", "momentum": 0.5}))
    assert float(program.optimizer.settings(numeric, 10)["momentum"][0]) == 0.0  # sgd's default, not 0.5
    hp = {k: v for k, v in numeric.items()}
    trained = run(program, digits, hp, [0], epochs=1)
    assert float(np.asarray(trained.state.members.opt_state.hyperparams["momentum"])[0]) == 0.0
    assert float(np.asarray(jax.tree.leaves(trained.state.members.model_state)[0]).std()) > 0  # BatchNorm trained


class NnxTakingTrain(nnx.Module):
    """nnx layers switched per call by a `train` argument (it has no default): the linen convention."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.hidden, self.out = nnx.Linear(64, 8, rngs=rngs), nnx.Linear(8, 10, rngs=rngs)
        self.norm, self.drop = nnx.BatchNorm(8, rngs=rngs), nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x, train: bool):
        h = self.norm(jax.nn.relu(self.hidden(x)), use_running_average=not train)
        return self.out(self.drop(h, deterministic=not train))


def test_an_nnx_module_taking_train_is_given_it_as_a_linen_one(digits):
    """vt.Nnx passes the mode keyword of __call__ (train=True while training): BatchNorm's statistics
    move and dropout is on; evaluation and the trained model's predictions are in eval mode."""
    results = vt.tune(vt.Nnx(NnxTakingTrain), vt.Space(learning_rate=vt.Fixed(0.01)), digits,
                      vt.RandomSearch(population=1), epochs=1, batch_size=64, refit=1, progress=False)
    model = results.best_model()
    assert np.abs(np.asarray(model.variables["norm"]["mean"])).max() > 0  # (it stays 0 without train=True)
    assert model.score(*digits.raw("test")) == pytest.approx(results.test_score, abs=1e-6)


def test_init_scale_multiplies_an_nnx_models_kernels_at_initialisation(digits):
    space = vt.Space(learning_rate=vt.Fixed(0.01), init_scale=vt.LogUniform(0.1, 10.0), width=vt.Fixed(8),
                     dropout=vt.Fixed(0.0))
    built = vt.Nnx(NnxNet).build(space, digits.spec)
    small, _ = built.init(jax.random.key(0), {"init_scale": jnp.float32(0.5), "dropout": jnp.float32(0.0)})
    large, _ = built.init(jax.random.key(0), {"init_scale": jnp.float32(2.0), "dropout": jnp.float32(0.0)})
    kernel = lambda params: np.asarray(params["hidden"]["kernel"][...])  # noqa: E731
    np.testing.assert_allclose(kernel(large), 4 * kernel(small), rtol=1e-6)
    np.testing.assert_array_equal(large["norm"]["scale"][...], small["norm"]["scale"][...])  # not a kernel


class NoiseFromParams(nnx.Module):  # draws its training noise from the params stream it was given
    def __init__(self, width: int, *, rngs: nnx.Rngs):
        self.hidden, self.rngs = nnx.Linear(64, width, rngs=rngs), rngs

    def __call__(self, x, train: bool = False):
        h = self.hidden(x)
        return h + jax.random.normal(self.rngs.params(), h.shape) if train else h


def test_an_nnx_module_drawing_from_params_in_its_call_gets_each_steps_own_key(digits):
    """A draw from `params` in __call__ got one fixed key: the same noise for every member and step."""
    built = vt.Nnx(NoiseFromParams).build(vt.Space(learning_rate=vt.Fixed(0.01), width=vt.Fixed(4)), digits.spec)
    params, state = built.init(jax.random.key(0), {"init_scale": jnp.float32(1.0)})
    x = jnp.ones((2, 64))
    hp = {"init_scale": jnp.float32(1.0)}
    out = lambda **how: np.asarray(built.apply(params, state, x, hp, **how)[0])  # noqa: E731
    first, second = out(train=True, key=jax.random.key(1)), out(train=True, key=jax.random.key(2))
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, out(train=True, key=jax.random.key(1)))  # (same key, same numbers)
    np.testing.assert_array_equal(out(key=None), out(key=None))


class BatchNormWithoutTrain(nn.Module):  # statistics updated in every call: evaluation cannot run
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.BatchNorm(use_running_average=False)(x.reshape((x.shape[0], -1))))


class NeedsWidth(nn.Module):  # a field without a default: the space must name it
    width: int
    scales: tuple = dataclasses.field(default_factory=tuple)  # (a default_factory is a default)

    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(self.width)(x.reshape((x.shape[0], -1)))))


def needs_width_factory(width, depth=1):
    return NeedsWidth(width=width)


class NoiseOfItsOwn(nn.Module):  # a noise layer on a random stream vmaptune does not give
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Dense(16)(x.reshape((x.shape[0], -1)))
        return nn.Dense(10)(x + jax.random.normal(self.make_rng("noise"), x.shape) if train else x)


class DropoutWithoutTrain(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.Dropout(0.5, deterministic=False)(x.reshape((x.shape[0], -1))))


class LogitsAndFeatures(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(16)(x.reshape((x.shape[0], -1)))
        return nn.Dense(10)(h), h


class ActivationByName(nn.Module):
    act: str = "relu"

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(16)(x.reshape((x.shape[0], -1)))
        return nn.Dense(10)(nn.relu(h) if self.act == "relu" else nn.tanh(h))


class NnxWithItsOwnRngs(nnx.Module):
    def __init__(self, width: int = 16):
        self.linear = nnx.Linear(64, 10, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.linear(x.reshape((x.shape[0], -1)))


class Bfloat16Weights(nn.Module):  # mixed precision spelled with bfloat16 weights (param_dtype)
    @nn.compact
    def __call__(self, x):
        dense = nn.Dense(10, dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
        return dense(x.reshape((x.shape[0], -1))).astype(jnp.float32)


class WidthAndBias(nn.Module):
    width: int = 8
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(self.width, use_bias=self.use_bias)(x.reshape((x.shape[0], -1)))))


class CounterMadeInTraining(nn.Module):  # a variable made under `if train:`: init (evaluation mode) lacks it
    @nn.compact
    def __call__(self, x, train: bool = False):
        self.variable("stats", "seen", lambda: jnp.zeros(()))
        if train:
            self.variable("stats", "steps", lambda: jnp.zeros((), jnp.int32)).value += 1
        return nn.Dense(10)(x.reshape((x.shape[0], -1)))


def any_keyword_factory(**fields):
    return NeedsWidth(width=fields.get("width", 8))


@pytest.mark.parametrize("model, space, match", [
    (vt.Linen(NeedsWidth), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"NeedsWidth has field\(s\) \['width'\] without a default, and the space does not name them; add them to "
     r"the space \(width=vt.Fixed\(...\)"),
    (vt.Linen(needs_width_factory), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"needs_width_factory has field\(s\) \['width'\] without a default"),
    (vt.Linen(CNN), SPACE.replace(featurs=vt.Choice([4, 8])),
     r"space has 'featurs', which the model and optimizer do not read. Did you mean 'features'\?"),
    (vt.Linen(CNN), SPACE.replace(features=vt.Uniform(2.0, 8.0)),
     r"features=Uniform.*structural field of CNN.*vt.IntUniform, vt.Choice or vt.Fixed"),
    # an int field named in static takes integers whatever the strategy (a range gives it floats)
    (vt.Linen(CNN, static=("features",)), SPACE.replace(features=vt.LogUniform(2.0, 32.0)),
     r"features=LogUniform.*structural field of CNN.*vt.IntUniform, vt.Choice or vt.Fixed, e.g. features=vt.Choice"
     r"\(\[2, 8, 32\]\), or annotate it float and leave it out of static to trace it\.$"),
    # (its example fits the field: True and False for a bool, vt.Fixed where a narrow range holds one integer)
    (vt.Linen(WidthAndBias, static=("use_bias",)), vt.Space(learning_rate=vt.Fixed(0.01), use_bias=vt.Uniform(0, 1)),
     r"use_bias is a structural field of WidthAndBias.*e.g. use_bias=vt.Choice\(\[False, True\]\), or annotate"),
    (vt.Linen(WidthAndBias, static=("width",)), vt.Space(learning_rate=vt.Fixed(0.01), width=vt.Uniform(4.1, 4.4)),
     r"width is a structural field of WidthAndBias.*e.g. width=vt.Fixed\(4\), or annotate"),
    (vt.Linen(TwoTargets), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"output for a batch of 2 has shape \(2, 8, 8, 2\); the data needs \(2, 10\): one logit per class"),
    (vt.Linen(CNN, loss=lambda out, y: jnp.mean(out)), SPACE,
     r"loss '<lambda>' returns shape \(\) for a batch of 2; it must return one loss per example"),
    (vt.Linen(CNN), SPACE.replace(features=vt.Choice(["4", "8"])),
     r"features=Choice\(options=\('4', '8'\)\): features is annotated int in CNN, and \['4', '8'\] are not; give int"),
    (vt.Linen(CNN), SPACE.replace(features=vt.Fixed(True)), r"features is annotated int in CNN, and \[True\] is not"),
    (vt.Linen(CNN), SPACE.replace(dropout=vt.Choice(["low", "high"])),
     r"dropout is annotated float in CNN, and \['low', 'high'\] are not; give numbers"),
    (vt.Linen(CNN), SPACE.replace(features=vt.Choice([4.0, 8.0])),
     r"features is annotated int in CNN, and \[4.0, 8.0\] are not; give integers"),
    (vt.Linen(CNN, loss=lambda out, y: optax.softmax_cross_entropy(out, y)), SPACE,
     r"loss '<lambda>' fails on outputs \(2, 10\) and targets \(2,\).*integer class labels.*jax.nn.one_hot\(y, 10\)"),
    (vt.Linen(CNN, metric=vt.Metric("hits", "classification", lambda out, y: out.argmax(-1) == y)), SPACE,
     r"metric 'hits' returns shape \(2,\) for a batch of 2; it must return one value for the whole batch"),
    (vt.Linen(BatchNormWithoutTrain), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"updates a variable when evaluated.*take `train: bool = False`.*use_running_average=not train.*a counter"),
    (vt.Linen(NoiseOfItsOwn), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"(?s)needs PRNG for \"noise\".*one random stream, 'dropout', and only in training.*self\.make_rng\('dropout'\)"),
    (vt.Linen(DropoutWithoutTrain), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"(?s)needs PRNG for \"dropout\".*It also needs a `train: bool = False` argument in __call__"),
    (vt.Linen(LogitsAndFeatures), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"the model returns tuple \(\(2, 10\), \(2, 16\)\).*return the logits only"),
    (vt.Linen(any_keyword_factory), vt.Space(learning_rate=vt.Fixed(0.01), width=vt.Fixed(8)),
     r"space has 'width'.*takes \*\*kwargs, whose names vmaptune cannot see: name each argument"),
    (vt.Linen(NeedsWidth), vt.Space(learning_rate=vt.Fixed(0.01), widht=vt.Fixed(8)),
     r"The space's 'widht' \(did you mean 'width'\?\) is not a field"),
    # a number never equals the names a str field is compared with: every member trained as 'tanh'
    (vt.Linen(ActivationByName), vt.Space(learning_rate=vt.Fixed(0.01), act=vt.Choice([1, 2])),
     r"act is annotated str in ActivationByName, and \[1, 2\] are not; give text, e.g. vt.Choice\(\['relu', 'tanh'\]\)"),
    (vt.Linen(ActivationByName), vt.Space(learning_rate=vt.Fixed(0.01), act=vt.IntUniform(0, 2)),
     r"act is annotated str in ActivationByName, and this gives numbers; give text"),
    # (the members' state would change structure after the first step, inside the compiled program)
    (vt.Linen(CounterMadeInTraining), vt.Space(learning_rate=vt.Fixed(0.01)),
     r"vt.Linen\(CounterMadeInTraining\): the variable 'stats/steps' is made only when the module trains, not when it "
     r"is initialised.*make it in both modes.*is_mutable_collection\('stats'\).*or sow into 'intermediates'"),
    # the built-in optimizer's float32 settings would make the moments float32: a lax.scan error after compiling
    (vt.Linen(Bfloat16Weights), vt.Space(learning_rate=vt.Fixed(0.01), momentum=vt.Fixed(0.9)),
     r"vt.Linen\(Bfloat16Weights\)'s parameter Dense_0/bias is bfloat16 \(and 1 more\).*must be float32. Keep "
     r"param_dtype float32 and compute in bfloat16 with dtype=.*matmul_dtype=\"bfloat16\".*optimizer=fn\(hp\)"),
])
def test_bad_user_models_are_named_before_anything_compiles(images, model, space, match):
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises((ValueError, TypeError), match=match):
        vt.build_program(model, space, images)
    assert dict(engine.TRACE_COUNTS) == before


def test_bfloat16_parameters_are_taken_with_an_optimizer_of_your_own(images):
    # (optax's own optimizers keep their moments in the parameters' dtype: only the built-in one refuses them)
    program = vt.build_program(vt.Linen(Bfloat16Weights), vt.Space(learning_rate=vt.Fixed(0.01)), images,
                               optimizer=lambda hp: optax.adam(hp["learning_rate"]))
    assert program.model.name() == "vt.Linen(Bfloat16Weights)"


@pytest.mark.parametrize("make", [lambda hp: optax.sgd(hp["learning_rate"], hp["momentum"]),
                                  lambda hp: optax.adam(hp["learning_rate"], b1=hp["momentum"]),
                                  lambda hp: optax.chain(optax.add_decayed_weights(hp["momentum"] / 100),
                                                         optax.adam(hp["learning_rate"])),
                                  lambda hp: optax.apply_if_finite(optax.adam(hp["learning_rate"], b1=hp["momentum"]),
                                                                   3)],
                         ids=["sgd-momentum", "adam-b1", "decay-then-adam", "apply-if-finite"])
def test_bfloat16_parameters_train_with_an_optimizer_of_your_own_reading_more_than_the_learning_rate(images, make):
    # (its float32 settings made the moments float32: the epoch's lax.scan refused the changed carry after compiling;
    # they made the updates float32 too, which apply_if_finite's lax.cond refused against its bfloat16 "no step")
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 5e-2), momentum=vt.Uniform(0.5, 0.9))
    program = vt.build_program(vt.Linen(Bfloat16Weights), space, images, batch_size=BATCH, optimizer=make)
    r = run(program, images, space.numeric(space.sample(jax.random.key(0), 2)), [0, 1], epochs=1)
    moments = [leaf for leaf in jax.tree.leaves(r.state.members.opt_state.inner_state) if jnp.ndim(leaf) > 1]
    assert moments and {leaf.dtype for leaf in moments} == {jnp.dtype(jnp.bfloat16)}
    assert np.isfinite(np.asarray(r.state.members.params["Dense_0"]["kernel"], np.float32)).all()


def test_an_nnx_module_that_makes_its_own_rngs_is_refused_where_it_is_named():
    with pytest.raises(TypeError, match=r"NnxWithItsOwnRngs takes no `rngs` argument.*Add `\*, rngs: nnx.Rngs`"):
        vt.Nnx(NnxWithItsOwnRngs)


class NeedsRate(nn.Module):  # a searched float field (traced: each member its own) without a default
    rate: float

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.relu(nn.Dense(8)(x.reshape((x.shape[0], -1))))
        return nn.Dense(10)(vt.nn.Dropout(self.rate)(h, deterministic=not train))


def test_a_field_without_a_default_trains_once_the_space_names_it(images, tmp_path):
    program = vt.build_program(vt.Linen(NeedsWidth), vt.Space(learning_rate=vt.Fixed(0.01), width=vt.Choice([4, 8])),
                               images)
    assert program.model is not None
    # a searched float field without a default: the class's own __call__ is read (its mode keyword), and no
    # instance is made before the members give their values; a factory is called with placeholders for them
    space = vt.Space(learning_rate=vt.Fixed(0.01), rate=vt.Uniform(0.0, 0.3))
    for model in (vt.Linen(NeedsRate), vt.Linen(lambda rate: NeedsRate(rate=rate))):
        results = vt.tune(model, space, images, vt.RandomSearch(population=2), epochs=1, batch_size=32,
                          progress=False, refit=1)
        assert (results.members["status"] == "ok").all() and results.members["rate"].nunique() == 2
    # a lambda has no name to be loaded by: saving says so, and writes nothing
    with pytest.raises(TypeError, match=r"model.save\(.*\): the model cannot be pickled .* define it at the top level"):
        results.best_model().save(tmp_path / "model")
    assert not (tmp_path / "model").exists()
    with pytest.raises(TypeError, match=r"results.save\(.*\) \(the refit model of row \d+\): the model cannot be "
                                         r"pickled"):  # (the whole run's save: said before anything is written)
        results.save(tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert vt.build_program(vt.Linen(NeedsRate), space, images).model.mode == ("train", False)


def test_bad_adapter_arguments():
    with pytest.raises(TypeError, match=r"Linen\(module=3\): give the module class"):
        vt.Linen(3)
    with pytest.raises(ValueError, match=r"static=\['width'\]\): \['width'\] are not fields of CNN"):
        vt.Linen(CNN, static=["width"])


def test_a_module_of_the_wrong_kind_is_named_with_the_adapter_to_use(images):
    with pytest.raises(TypeError, match=r"vt.Linen\(NnxNet\): NnxNet is a flax.nnx Module, not a flax.linen one; "
                                        r"use vt.Nnx\(NnxNet\)\.$"):
        vt.Linen(NnxNet)
    with pytest.raises(TypeError, match=r"vt.Nnx\(CNN\): CNN is a flax.linen Module, not a flax.nnx one; use "
                                        r"vt.Linen\(CNN\)\.$"):
        vt.Nnx(CNN)
    for adapter, kind in ((vt.Linen, "flax.linen"), (vt.Nnx, "flax.nnx")):
        name = adapter.__name__
        with pytest.raises(TypeError, match=rf"vt.{name}\(dict\): dict is a class, but not a {kind}.Module; "
                                            rf"vt.{name} needs a {kind}.Module class"):
            adapter(dict)
        # a function is taken as a factory: one that cannot be is told what vt.Linen / vt.Nnx need
        with pytest.raises(ValueError, match=rf"vt.{name}\(<lambda>\): vt.{name} needs a {kind}.Module class; "
                                             rf"got a function, which it takes as a factory .* <lambda> has field\(s\) "
                                             rf"\['x'\] without a default"):
            vt.build_program(adapter(lambda x: x), SPACE, images)
    # a factory object that cannot hash (a dataclass, not frozen) is told before anything traces (it failed
    # later with a bare "unhashable type: 'Factory'")
    factory = dataclasses.make_dataclass("Factory", [("width", int, 8)], namespace={"__call__": lambda self: CNN()})
    for adapter in (vt.Linen, vt.Nnx):
        with pytest.raises(TypeError, match=rf"{adapter.__name__}\(module=Factory\(...\)\): a factory object must be "
                                            r"hashable .* make it a frozen dataclass \(@dataclasses.dataclass\(frozen="
                                            r"True\)\), or give a function\.$"):
            adapter(factory())
    with pytest.raises(TypeError, match=r"vt.Linen\(<lambda>\): <lambda>\(\*\*\{\}\) returned int, not a flax.linen "
                                        r"Module; give vt.Linen a flax.linen.Module class"):
        vt.build_program(vt.Linen(lambda: 3), vt.Space(learning_rate=vt.Fixed(0.01)), images)
    with pytest.raises(TypeError, match=r"vt.Nnx\(make\): make\(...\) returned CNN, not a flax.nnx Module; use "
                                        r"vt.Linen\(make\)"):
        def make(rngs):
            return CNN()

        vt.build_program(vt.Nnx(make), vt.Space(learning_rate=vt.Fixed(0.01)), images)


def test_a_module_given_inputs_of_another_shape_is_named_with_the_reshape_to_make(digits, images):
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(ValueError, match=r"(?s)vt.Linen\(CNN\) fails when initialised \(module.init\) on an input batch "
                                         r"of shape \(1, 64\), dtype float32 .*: ValueError: operands could not be "
                                         r"broadcast.*reshape X .*X.reshape\(-1, 8, 8, 1\), shape \(n, 8, 8, 1\)") as info:
        vt.build_program(vt.Linen(CNN), SPACE, digits)  # flat (n, 64) rows into a 2-D convolution
    assert isinstance(info.value.__cause__, ValueError)  # flax's own error, chained
    with pytest.raises(TypeError, match=r"(?s)vt.Nnx\(NnxNet\), built with width=4, fails when called on an input batch of shape "
                                        r"\(2, 8, 8, 1\), dtype float32.*dot_general.*X.reshape\(len\(X\), -1\), "
                                        r"shape \(n, 64\)"):
        vt.build_program(vt.Nnx(NnxNet), SPACE.replace(width=vt.Fixed(4)), images)  # images into nnx.Linear(64, ..)
    assert dict(engine.TRACE_COUNTS) == before


class DividesByZero(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(10)(x) / (x.shape[0] // 0)  # (a bug of the module's own: "integer division ... by zero")


def test_a_modules_zero_division_is_not_told_to_give_integer_inputs(digits):
    with pytest.raises(ValueError, match=r"(?s)vt.Linen\(DividesByZero\) fails when .*ZeroDivisionError: integer "
                                         r"division or modulo by zero") as info:
        vt.build_program(vt.Linen(DividesByZero), vt.Space(learning_rate=vt.Fixed(0.01)), digits)
    assert "wants integers" not in str(info.value) and "astype('int32')" not in str(info.value)


def test_a_layer_made_for_another_number_of_features_is_named_with_the_datas_count(digits):
    """NnxNet's nnx.Linear(64, ...) fits digits' 64 features: on 16 of them the fix is the layer's size, not a
    reshape of X into 4x4 images (which images into it, (n, 8, 8, 1), still get)."""
    X, y = digits.raw("train")
    narrow = vt.Dataset.from_arrays(X[:, :16], y, "classification")
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(TypeError, match=r"(?s)vt.Nnx\(NnxNet\), built with width=4, fails when called on an input batch of shape \(2, 16\)"
                                        r".*got \(16,\) and \(64,\)\.\nA layer of the module expects 64 input "
                                        r"features, and the data has 16 \(examples of shape \(16,\)\): make the layer "
                                        r"with the data's feature count, nnx.Linear\(16, ...\)") as info:
        vt.build_program(vt.Nnx(NnxNet), SPACE.replace(width=vt.Fixed(4)), narrow)
    assert "reshape" not in str(info.value)
    assert dict(engine.TRACE_COUNTS) == before
    # (64 features for a layer of 8: the module may take 8 rows of 8, an image's rows; both fixes are said)
    with pytest.raises(TypeError, match=r"expects 8 input features, and the data has 64 .*nnx.Linear\(64, ...\).* Or, "
                                        r"where the module takes examples of 8 rows of 8 \(an image's rows\), reshape X "
                                        r"to it when you make the vt.Dataset: X.reshape\(-1, 8, 8\)\."):
        vt.build_program(vt.Nnx(NnxRowsOf8), vt.Space(learning_rate=vt.Fixed(0.01)), digits)


class NnxRowsOf8(nnx.Module):
    """Made for digits as 8 rows of 8 pixels (a sequence of rows)."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.rows, self.out = nnx.Linear(8, 4, rngs=rngs), nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.rows(x).reshape(len(x), -1))


class LinenTakingAMask(nn.Module):  # a second input, as Keras' multi-input models take them
    @nn.compact
    def __call__(self, x, mask):
        return nn.Dense(10)(x * mask)


class NnxTakingAMask(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x, mask, lengths):
        return self.out(x * mask)


def test_a_module_taking_a_second_input_is_told_to_take_it_concatenated_into_x(digits):
    before = dict(engine.TRACE_COUNTS)
    # (a factory's module too: its class is known once built, and the failing call is vmaptune's own)
    for model, name, names in ((vt.Linen(LinenTakingAMask), "LinenTakingAMask", "'mask'"),
                               (vt.Nnx(NnxTakingAMask), "NnxTakingAMask", "'mask' and 'lengths'"),
                               (vt.Linen(lambda: LinenTakingAMask()), "LinenTakingAMask", "'mask'"),
                               (vt.Nnx(lambda rngs: NnxTakingAMask(rngs=rngs)), "NnxTakingAMask",
                                "'mask' and 'lengths'")):
        with pytest.raises(TypeError, match=rf"(?s){name}.__call__\(\) missing \d required positional arguments?: "
                                            rf"'mask'.*{name}\.__call__ takes {names} besides its input, and "
                                            rf"vmaptune calls the module on one array.*several inputs takes them "
                                            rf"concatenated into X \(np.concatenate\(\[x.reshape\(len\(x\), -1\), "
                                            rf"mask.reshape.*splits them in __call__ \(x, mask = x\[:, :k\], "
                                            rf"x\[:, k:\]\); or give {names} a default\."):
            vt.build_program(model, vt.Space(learning_rate=vt.Fixed(0.01)), digits)
    assert dict(engine.TRACE_COUNTS) == before


class LinenCallingAMaskedInner(nn.Module):
    """Its own __call__ takes one input; an inner module it calls lacks its mask (the user's bug)."""

    @nn.compact
    def __call__(self, x):
        return LinenTakingAMask()(x)


def test_an_inner_modules_missing_argument_in_a_factorys_module_is_not_said_to_be_a_second_input(digits):
    """A factory's class is known only once built: a missing argument named on another class (an
    inner module called without it) is the module's own bug, not an input vmaptune should pass."""
    with pytest.raises(TypeError, match=r"LinenTakingAMask.__call__\(\) missing 1 required") as info:
        vt.build_program(vt.Linen(lambda: LinenCallingAMaskedInner()), vt.Space(learning_rate=vt.Fixed(0.01)), digits)
    assert "concatenated into X" not in str(info.value)


def test_an_optimizer_that_makes_a_hyperparameter_a_python_float_is_told_to_pass_the_array(images):
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(TypeError, match=r"optimizer= \(<lambda>\) uses a hyperparameter as a Python value "
                                        r"\(ConcretizationTypeError.*its hp values \(\['learning_rate'\]\) are traced "
                                        r"arrays, one per member inside the compiled program.*pass them to optax as "
                                        r"they are.*do not call float\(\) / int\(\) / bool\(\) / np.asarray\(\) on them") as info:
        vt.build_program(vt.Linen(CNN), SPACE, images, optimizer=lambda hp: optax.sgd(float(hp["learning_rate"])))
    assert isinstance(info.value.__cause__, jax.errors.ConcretizationTypeError)
    with pytest.raises(TypeError, match=r"uses a hyperparameter as a Python value \(TracerBoolConversionError"):
        vt.build_program(vt.Linen(CNN), SPACE, images,
                         optimizer=lambda hp: optax.sgd(0.1) if hp["learning_rate"] > 0.02 else optax.adam(0.1))
    assert dict(engine.TRACE_COUNTS) == before


# -- every strategy and every option, on the CNN -----------------------------------------------------------
STRATEGIES = [
    vt.RandomSearch(population=4, rounds=2),
    vt.GridSearch(values={"dropout": [0.0, 0.1, 0.2, 0.3]}, points_per_axis=2, population=4),
    vt.CoarseToFine(population=4, rounds=2, top_k=2),
    vt.Evolution(population=4, generations=2),
    vt.BayesOpt(population=4, rounds=2),
    vt.OptunaSampler(lambda seed: __import__("optuna").samplers.TPESampler(seed=seed), population=4, rounds=2),
    vt.PBT(population=4, interval=1),
    vt.SuccessiveHalving(population=4, eta=2),
    vt.Hyperband(max_epochs=2, eta=2),
]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.name)
def test_every_strategy_runs_on_the_cnn(images, strategy):
    result = vt.tune(vt.Linen(CNN), SPACE, images, strategy, epochs=2, batch_size=BATCH, progress=False)
    assert len(result) >= 4 and result.members["member"].is_unique
    assert result.best_score > 0.3 and result.members["status"].isin(["ok", "pruned"]).all()  # (halving prunes)
    if isinstance(strategy, vt.PBT):  # copies happened, batch statistics and all
        assert (result.members["copies"] > 0).any()


def test_cv_seeds_refit_early_stopping_and_the_range_test_on_the_cnn(images):
    result = vt.tune(vt.Linen(CNN), SPACE, images, vt.RandomSearch(population=2), epochs=2, batch_size=BATCH,
                     progress=False, cv=2, seeds=2, refit=1, early_stopping=vt.EarlyStopping(patience=1))
    assert result.curves["split_scores"].shape == (2, 4) and 0.3 < result.test_score <= 1.0
    lr = vt.lr_range_test(vt.Linen(CNN), images, vt.Space(dropout=vt.Fixed(0.1)), steps=30, seeds=2, batch_size=BATCH)
    assert lr.losses.shape == (2, 30) and np.isfinite(lr.losses[:, 0]).all()


def test_an_nnx_model_with_a_float_argument_saves_and_loads(digits, tmp_path):
    # NnxDropout keeps its traced rate as a plain attribute; rebuilt for loading, the rate is a
    # concrete array, which nnx lists as state: the model state must be its Variables only.
    space = SPACE.replace(width=vt.Fixed(16))
    result = vt.tune(vt.Nnx(NnxNet), space, digits, vt.RandomSearch(population=2), epochs=1, batch_size=BATCH,
                     refit=1, progress=False)
    model = result.best_model()
    again = vt.TrainedModel.load(model.save(tmp_path / "best"))
    X = digits.raw("test")[0]  # raw rows, as new data comes (a model refuses the standardised X_test)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    assert_trees_equal(again.model_state, model.model_state)  # BatchNorm's statistics came back
    # the nnx.Module back, its trained weights and batch statistics in it: the model's outputs on scaled rows
    assert set(model.variables) == {"params", "norm"}  # nnx state is keyed by the module's attributes
    for trained in (model, again):
        module = trained.flax_module()
        assert isinstance(module, NnxNet) and module.norm.use_running_average  # eval mode
        np.testing.assert_allclose(np.asarray(module(trained.scale(X))), model.outputs(X), rtol=1e-5,
                                   atol=1e-5)
    result.save(tmp_path / "run")
    np.testing.assert_array_equal(vt.load_results(tmp_path / "run").best_model().predict(X), model.predict(X))


class Bfloat16Statistic(nn.Module):  # a running mean kept in bfloat16 (ml_dtypes: np.savez cannot name it)
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.relu(nn.Dense(16)(x))
        mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((16,), jnp.bfloat16))
        if train:
            mean.value = (0.9 * mean.value + 0.1 * h.mean(0)).astype(jnp.bfloat16)
        return nn.Dense(10)(h - mean.value.astype(jnp.float32))


def test_a_model_with_a_bfloat16_variable_saves_and_loads_bit_for_bit(digits, tmp_path):
    result = vt.tune(vt.Linen(Bfloat16Statistic), vt.Space(learning_rate=vt.Fixed(0.05)), digits,
                     vt.RandomSearch(population=1), epochs=1, batch_size=BATCH, refit=1, progress=False)
    model = result.best_model()
    X = digits.raw("test")[0]
    for again in (vt.TrainedModel.load(model.save(tmp_path / "best")),
                  vt.load_results(result.save(tmp_path / "run")).best_model()):
        assert again.model_state["batch_stats"]["mean"].dtype == jnp.bfloat16
        assert_trees_equal(again.model_state, model.model_state)
        np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_a_bool_field_takes_true_and_false_only():
    from vmaptune.models.fields import _check_option_types
    _check_option_types("use_bias", bool, vt.Choice([True, False]), "Net")
    with pytest.raises(ValueError, match=r"use_bias is annotated bool in Net, and \['yes', 'no'\] are not; give True"):
        _check_option_types("use_bias", bool, vt.Choice(["yes", "no"]), "Net")


def test_a_linen_model_comes_back_as_module_and_variables(images, tmp_path):
    result = vt.tune(vt.Linen(CNN), SPACE, images, vt.RandomSearch(population=2), epochs=1, batch_size=BATCH,
                     refit=1, progress=False)
    model = result.best_model()
    X = images.raw("test")[0][:50]
    module, variables = model.flax_module()
    assert isinstance(module, CNN) and set(variables) == {"params", "batch_stats"}
    np.testing.assert_allclose(np.asarray(module.apply(variables, model.scale(X))), model.outputs(X),
                               rtol=1e-5, atol=1e-5)
    open(tmp_path / "a_file", "w").close()
    with pytest.raises(FileExistsError, match=r"a_file is a file; save writes a directory \(model.pkl and "
                                              r"weights.npz in it\). Give a directory path"):
        model.save(tmp_path / "a_file")
    with pytest.raises(NotADirectoryError, match=r"a part of the path is a file. save writes a directory"):
        model.save(tmp_path / "a_file" / "model")


def test_the_built_in_mlp_comes_back_as_a_plain_flax_network_of_its_own_size(digits):
    """A member of a search over depth, widths and activation: flax Dense layers at its own
    widths (not the padded ones it trained in), the same outputs as the trained model."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), n_hidden=vt.IntUniform(0, 3), n_units=vt.Choice([8, 32]),
                     activation=vt.Choice(["relu", "tanh"]), n_units_2=vt.Choice([4, 16]))
    result = vt.tune(vt.MLP(hidden=3, units=64), space, digits, vt.RandomSearch(population=6), epochs=1, refit=6,
                     seed=1, progress=False)
    X = digits.raw("test")[0]
    depths = set()
    for row, model in result.models.items():
        module, variables = model.flax_module()
        params = result.to_dataframe().iloc[row]
        depth = int(params["n_hidden"])
        widths = [int(params["n_units"]), int(params["n_units_2"]), int(params["n_units"])][:depth]
        assert module.widths == tuple(widths) and module.activation == params["activation"]
        assert [variables["params"][f"hidden_{i}"]["kernel"].shape[1] for i in range(depth)] == widths
        assert set(variables["params"]) == {*(f"hidden_{i}" for i in range(depth)), "head" if depth else "direct_head"}
        np.testing.assert_allclose(module.apply(variables, model.scale(X)), model.outputs(X), atol=1e-4)
        depths.add(depth)
    assert len(depths) >= 2

def test_a_keras_style_loss_of_one_target_that_broadcasts_is_warned_about_and_a_pairing_one_is_not():
    data = vt.load_dataset("diabetes")
    space = vt.Space(learning_rate=vt.Fixed(1e-2))

    def keras_mse(out, y):  # (batch, 1) - (batch,) -> (batch, batch): every output against every target
        return jnp.mean(jnp.square(out - y), axis=-1)

    def paired(out, y):
        return jnp.square(out[:, 0] - y)

    with pytest.warns(UserWarning, match=r"your loss 'keras_mse' scores outputs in the right order and reversed "
                                         r"alike .* use outputs\[:, 0\], e\.g\. jnp\.square\(outputs\[:, 0\] - targets\)"):
        vt.build_program(vt.MLP(hidden=1, units=4, loss=keras_mse), space, data)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.build_program(vt.MLP(hidden=1, units=4, loss=paired), space, data)
        vt.build_program(vt.MLP(hidden=1, units=4, loss="huber"), space, data)


def test_a_loss_non_finite_from_the_start_is_named_as_well_as_the_learning_rate():
    def log_of_a_negative(out, y):
        return jnp.log(-jnp.abs(out[:, 0]) - 1.0) + 0.0 * y

    space = vt.Space(learning_rate=vt.LogUniform(1e-12, 1e-11))
    with pytest.warns(UserWarning, match=r"every member failed in its first epoch, which a loss or model that is "
                                         r"non-finite from the initial weights also does at any learning rate"):
        vt.tune(vt.MLP(hidden=1, units=4, loss=log_of_a_negative), space, vt.load_dataset("diabetes"),
                vt.RandomSearch(population=2), epochs=1, batch_size=32, progress=False)


def test_saving_a_model_whose_class_lives_in_the_script_run_warns(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(
        "import warnings\nimport flax.linen as nn\nimport vmaptune as vt\n"
        "class Net(nn.Module):\n    width: int = 4\n    @nn.compact\n"
        "    def __call__(self, x, train=False):\n        return nn.Dense(3)(nn.relu(nn.Dense(self.width)(x)))\n"
        "r = vt.tune(vt.Linen(Net), vt.Space(learning_rate=vt.Fixed(1e-2)), vt.load_dataset('iris'),\n"
        "            vt.RandomSearch(population=1), epochs=1, batch_size=16, refit=1, progress=False)\n"
        "with warnings.catch_warnings(record=True) as seen:\n    warnings.simplefilter('always')\n"
        "    r.best_model().save('m')\n"
        "print([str(w.message) for w in seen])\n")
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "the model's class is defined in the script run as __main__" in out.stdout


@pytest.mark.parametrize("bucketing", [False, True, "auto"])
def test_batchnorm_members_of_other_batch_sizes_never_share_a_program(images, bucketing):
    """BatchNorm's statistics are taken over a batch as a whole: a member padded to a neighbour's
    larger batch would take the padded rows into them. Each batch size trains in a program of its
    own, so a member trains as it does alone, whatever the plan."""
    fixed = dict(learning_rate=vt.Fixed(0.05), dropout=vt.Fixed(0.0))
    alone = vt.tune(vt.Linen(CNN), vt.Space(**fixed, batch_size=vt.Fixed(24)), images,
                    vt.GridSearch(values={"batch_size": [24]}), epochs=2, progress=False)
    together = vt.tune(vt.Linen(CNN), vt.Space(**fixed, batch_size=vt.Choice([24, 64])), images,
                       vt.GridSearch(values={"batch_size": [24, 64]}), epochs=2, progress=False, bucketing=bucketing)
    assert together.members["batch_size"].tolist() == [24, 64]
    for key in ("train_loss", "val_loss"):  # (padded, they differed by about 1e-2)
        np.testing.assert_allclose(together.curves[key][0], alone.curves[key][0], rtol=1e-5, atol=1e-6)


def test_batchnorm_batch_sizes_that_must_share_a_program_train_padded_and_say_so(images):
    """PBT copies members between rows (one program), and a range of batch sizes would compile a
    program per size: both keep the padded program, with a warning naming the effect."""
    space = vt.Space(learning_rate=vt.Fixed(0.05), dropout=vt.Fixed(0.0), batch_size=vt.Choice([16, 32]))
    with pytest.warns(UserWarning, match=r"the strategy copies members between rows, so they share one program: a "
                                         r"member whose batch is smaller than its program's takes the padded rows"):
        result = vt.tune(vt.Linen(CNN), space, images, vt.PBT(population=4, interval=1), epochs=2, progress=False)
    assert len(result) == 4 and result.succeeded
    ranged = space.replace(batch_size=vt.IntUniform(16, 40))
    with pytest.warns(UserWarning, match=r"batch_size=IntUniform.* is a range .*Search batch_size with vt.Choice"):
        vt.tune(vt.Linen(CNN), ranged, images, vt.RandomSearch(population=2), epochs=1, progress=False)


def test_an_attention_model_with_max_pooling_trains_the_same_in_the_quick_program():
    """A short search's quick training program (engine.train_chunk_quick) computes an attention
    model's gradients as XLA's default compile does. Compiled at LLVM's level 0 it did not: max
    pooling's gradient found no maximum in a recomputed copy, divided 0 by 0, and every member
    diverged in its first epoch."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-2), optimizer=vt.Fixed("adam"))
    data = token_sequences()
    program = vt.build_program(vt.Linen(MaxPooledAttention), space, data, batch_size=64)
    numeric = space.numeric(space.sample(jax.random.key(0), 2))
    arrays = engine.data_arrays(data)
    controls = program.controls(numeric, arrays.n_train, 1)

    def start():
        return engine.init_population(program, numeric, controls, jnp.arange(2), jax.random.key(0), jnp.ones(2, bool))

    xla_defaults = jax.jit(engine._train_chunk_on_devices, static_argnames=("program", "n_epochs"),
                           compiler_options={"xla_backend_optimization_level": 3, "xla_cpu_use_fusion_emitters": True})
    usual, usual_curves = xla_defaults(program, start(), numeric, controls, arrays, jax.random.key(1), 1)
    quick, quick_curves = engine.train_chunk_quick(program, start(), numeric, controls, arrays, jax.random.key(1), 1)
    assert np.isfinite(quick_curves["train_loss"]).all(), quick_curves["train_loss"]
    for name in ("train_loss", "val_loss"):
        np.testing.assert_allclose(quick_curves[name], usual_curves[name], rtol=1e-4)
    assert_close_trees(quick.members.params, usual.members.params)


# -- a loss that reads hyperparameters ----------------------------------------------------------------------
def smoothed_cross_entropy(outputs, targets, hp):
    """Cross-entropy against labels smoothed by the member's label_smoothing."""
    labels = optax.smooth_labels(jax.nn.one_hot(targets, outputs.shape[-1]), hp["label_smoothing"])
    return optax.softmax_cross_entropy(outputs, labels)


def test_a_loss_of_yours_reads_the_members_hyperparameters_and_new_values_never_recompile(digits):
    """fn(outputs, targets, hp): label smoothing searched like any hyperparameter. A member at 0
    trains as the built-in cross-entropy does; new values compile nothing."""
    space = vt.Space(learning_rate=vt.Fixed(0.05), label_smoothing=vt.Uniform(0.0, 0.3))
    model = vt.MLP(hidden=1, units=16, loss=smoothed_cross_entropy)
    grid = vt.GridSearch(values={"label_smoothing": [0.0, 0.2]}, population=2)
    result = vt.tune(model, space, digits, grid, epochs=2, progress=False)
    plain = vt.tune(vt.MLP(hidden=1, units=16), vt.Space(learning_rate=vt.Fixed(0.05)), digits,
                    vt.RandomSearch(population=1), epochs=2, progress=False)
    np.testing.assert_allclose(result.curves["val_loss"][0], plain.curves["val_loss"][0], rtol=1e-5)
    np.testing.assert_allclose(result.curves["train_loss"][0], plain.curves["train_loss"][0], rtol=1e-5)
    assert (result.curves["val_loss"][1] > result.curves["val_loss"][0] + 0.1).all()  # smoothed targets: larger loss
    before = dict(engine.TRACE_COUNTS)
    vt.tune(model, space, digits, vt.GridSearch(values={"label_smoothing": [0.05, 0.1]}, population=2), epochs=2,
            progress=False)
    assert dict(engine.TRACE_COUNTS) == before


def _smoothed_or_not(outputs, targets, hp):
    labels = optax.smooth_labels(jax.nn.one_hot(targets, outputs.shape[-1]), jnp.where(hp["smoothed"], 0.3, 0.0))
    return optax.softmax_cross_entropy(outputs, labels)


@pytest.mark.parametrize("options", [[True, False], [False, True]], ids=["true-first", "false-first"])
def test_a_loss_reads_a_choice_of_true_and_false_as_the_rows_value(digits, options):
    """The member whose row says smoothed=True trains with smoothing, in either order of the
    options (Choice([True, False]) gave the loss True's index, 0)."""
    space = vt.Space(learning_rate=vt.Fixed(0.05), smoothed=vt.Choice(options))
    model = vt.MLP(hidden=1, units=16, loss=_smoothed_or_not)
    result = vt.tune(model, space, digits, vt.GridSearch(population=2), epochs=1, progress=False)
    plain = vt.tune(vt.MLP(hidden=1, units=16), vt.Space(learning_rate=vt.Fixed(0.05)), digits,
                    vt.RandomSearch(population=2), epochs=1, progress=False)  # (member i: the same weights)
    smoothed = result.members["smoothed"].to_numpy(bool)
    np.testing.assert_allclose(result.curves["val_loss"][~smoothed], plain.curves["val_loss"][~smoothed], rtol=1e-5)
    assert (result.curves["val_loss"][smoothed] > plain.curves["val_loss"][smoothed] + 0.1).all()


def test_a_loss_reading_a_name_the_space_lacks_is_named_before_anything_compiles(digits):
    space = vt.Space(learning_rate=vt.Fixed(0.05), label_smoothing=vt.Uniform(0.0, 0.3))

    def typo(outputs, targets, hp):
        return optax.softmax_cross_entropy_with_integer_labels(outputs, targets) * hp["label_smothing"]

    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(ValueError, match=r"loss 'typo' reads hp\['label_smothing'\], which the space does not name\. "
                                         r"Did you mean 'label_smoothing' \(a typo in your loss\)\?"):
        vt.build_program(vt.MLP(hidden=1, units=8, loss=typo), space, digits)
    with pytest.raises(ValueError, match=r"space has 'label_smoothing', which the model and optimizer do not read.*"
                                         r"a loss of yours reads any it is given: loss=fn\(outputs, targets, hp\)"):
        vt.build_program(vt.MLP(hidden=1, units=8), space, digits)
    assert dict(engine.TRACE_COUNTS) == before


@pytest.mark.parametrize("copy", [lambda hp: {**hp}, lambda hp: dict(hp), lambda hp: dict(hp.items()), lambda hp: hp.copy()],
                         ids=["unpack", "dict", "items", "copy"])
def test_a_loss_that_copies_hp_is_seen_reading_it(digits, copy):
    space = vt.Space(learning_rate=vt.Fixed(0.05), gamma=vt.Uniform(0.0, 1.0))

    def weighted(outputs, targets, hp):
        return optax.softmax_cross_entropy_with_integer_labels(outputs, targets) * (1 + copy(hp)["gamma"])

    program = vt.build_program(vt.MLP(hidden=1, units=8, loss=weighted), space, digits)
    assert "gamma" in program.loss.names


def _branching(outputs, targets, hp):
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    return ce * 2 if hp["gamma"] > 0.5 else ce


def _numpy(outputs, targets, hp):  # (numpy's conversion raises TracerArrayConversionError, not a concretization error)
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    return ce * np.log1p(np.asarray(hp["gamma"]))


@pytest.mark.parametrize("loss, error", [(_branching, "TracerBoolConversionError"),
                                         (_numpy, "TracerArrayConversionError")])
def test_a_loss_using_a_hyperparameter_as_a_python_value_is_told_to_use_jnp(digits, loss, error):
    space = vt.Space(learning_rate=vt.Fixed(0.05), gamma=vt.Uniform(0.0, 1.0))
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(ValueError, match=rf"loss '{loss.__name__}' uses a hyperparameter as a Python value .*"
                                         rf"{error}\); it had read \['gamma'\] .*jnp\.where"):
        vt.build_program(vt.MLP(hidden=1, units=8, loss=loss), space, digits)
    assert dict(engine.TRACE_COUNTS) == before


def test_a_module_handing_a_hyperparameter_to_numpy_is_named_before_anything_compiles(digits):
    class NumpyScale(nn.Module):
        scale: float = 1.0

        @nn.compact
        def __call__(self, x, train: bool = False):
            return nn.Dense(10)(x) * np.asarray(self.scale)

    space = vt.Space(learning_rate=vt.Fixed(0.05), scale=vt.Uniform(0.5, 2.0))
    with pytest.raises(ValueError, match=r"per-member hyperparameter as a Python value .*"
                                         r"TracerArrayConversionError\); the traced ones are \['scale'\]"):
        vt.build_program(vt.Linen(NumpyScale), space, digits)


def test_token_ids_past_the_embeddings_table_are_named_before_anything_compiles():
    """flax's nn.Embed gives NaN for an id past its table: a validation row holding one marked every
    member diverged (as a learning rate too high would), a test row scored as the first class."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 12, size=(200, 24))
    val = X[150:175].copy()
    val[3, 5] = 15  # (MaxPooledAttention embeds 12 ids)
    data = vt.Dataset.from_arrays(X[:150], (X[:150, 0] > 5).astype(int), "classification",
                                  validation=(val, (val[:, 0] > 5).astype(int)), test=(X[175:], (X[175:, 0] > 5).astype(int)))
    space = vt.Space(learning_rate=vt.Fixed(0.01))
    with pytest.raises(ValueError, match=r"outputs for row 3 of the val split \(ids \d+ to 15\) are NaN: an id outside an "
                                         r"embedding's table .* ids run from 0 to 15: give the embedding "
                                         r"num_embeddings > 15"):
        vt.build_program(vt.Linen(MaxPooledAttention), space, data)
    assert vt.build_program(vt.Linen(MaxPooledAttention), space, token_sequences()).model is not None


def test_integer_inputs_a_module_reads_as_numbers_are_said_and_token_ids_are_not(digits):
    """Integer inputs are kept unscaled as token ids: a module that makes them floats (nn.Dense on
    int16 pixels) trained on unscaled values without a word (0.78 against 0.87 standardised on
    digits). An embedding (and attention over it) is not told anything."""

    class DenseNet(nn.Module):
        @nn.compact
        def __call__(self, x, train: bool = False):
            return nn.Dense(10)(x)

    X, y = digits.raw("train")
    space = vt.Space(learning_rate=vt.Fixed(0.05))
    with pytest.warns(UserWarning, match=r"vt.Linen\(DenseNet\) reads its input as numbers \(it makes X's integers "
                                         r"floats\), and vmaptune keeps integer inputs as they are, unscaled .* pass "
                                         r"X.astype\('float32'\)"):
        vt.build_program(vt.Linen(DenseNet), space, vt.Dataset.from_arrays(X.astype(np.int16), y, "classification"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.build_program(vt.Linen(MaxPooledAttention), space, token_sequences())


class NormalisedMLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train)(nn.relu(nn.Dense(8)(x)))
        return nn.Dense(3)(h)


def test_batchnorm_members_of_folds_of_other_sizes_share_an_even_batch_and_none_is_padded(tmp_path):
    """even_batches (PopulationSearchCV's batching) over folds of 30, 60 and 90 rows: a model whose
    statistics each batch updates evens every member's batch over the fewest rows, so no member's
    batch is padded (padded rows weigh 0 in the loss, not in BatchNorm's statistics): each member
    equals itself trained alone on its fold's rows with that batch."""
    from sklearn.model_selection import TimeSeriesSplit

    from helpers import run_population
    from vmaptune.search import Search, Settings

    data = vt.load_dataset("iris")
    model, space = vt.Linen(NormalisedMLP), vt.Space(learning_rate=vt.Fixed(0.05))
    splits = vt.cv_splits.resolve_cv(TimeSeriesSplit(3), data)[1]
    settings = Settings.check(epochs=2, seed=0, batch_size=400, chunk_epochs=1, shared_order=True, bucketing=False,
                              early_stopping=None, cv=3, seeds=1, refit=0, devices=1, member_block=None, splits=splits,
                              evaluate_every=1, even_batches=True)
    search = Search(model, space, data, vt.RandomSearch(population=3), settings)
    arrays, program = search.arrays, search.program
    assert arrays.fold_rows == (30, 60, 90) and program.even_over == 30
    assert program.padded_batch(arrays.n_train, arrays.fold_rows) == 30  # (one step of a 30-row fold, two of 60)
    hp = space.numeric(space.encode([{"learning_rate": 0.05}] * 3))
    together = run_population(program, hp, arrays, np.arange(3), epochs=2, fold=np.arange(3))
    X, y = data.pool()
    for f, n in enumerate(arrays.fold_rows):
        rows, held = np.asarray(arrays.train_rows[f, :n]), np.asarray(arrays.val_rows[f])
        scaled = lambda a: (a - arrays.scaling.x_shift[f]) / arrays.scaling.x_scale[f]  # noqa: E731
        alone = run_population(program, space.numeric(space.encode({"learning_rate": 0.05})),
                               engine.DataArrays(scaled(X[rows]), y[rows], scaled(X[held]), y[held]), np.array([f]),
                               epochs=2)
        for a, b in zip(jax.tree.leaves((take(together.state.members.params, f), take(together.state.members.model_state, f))),
                        jax.tree.leaves((take(alone.state.members.params, 0), take(alone.state.members.model_state, 0)))):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_your_model_with_the_same_seed_gives_the_same_search_under_cv_and_seeds():
    """Same seed, same result, for a module of your own with BatchNorm and a traced dropout rate,
    its folds and repeats in one program (and another seed another search)."""
    import resume_child

    data = resume_child.data()
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), dropout=vt.Uniform(0.0, 0.5))
    search = lambda seed: vt.tune(vt.Linen(resume_child.NormalisedDropoutNet), space, data,  # noqa: E731
                                  vt.RandomSearch(population=3), epochs=2, batch_size=16, cv=2, seeds=2,
                                  seed=seed, progress=False)
    first, again, other = search(0), search(0), search(1)
    pd.testing.assert_frame_equal(first.members, again.members)
    for name in first.curves:
        np.testing.assert_array_equal(first.curves[name], again.curves[name])
    assert not np.array_equal(first.members["score"], other.members["score"])


class NormalisedByIsTrain(nn.Module):  # a training switch of its own name, declared with train_switch
    @nn.compact
    def __call__(self, x, is_train: bool = False):
        return nn.Dense(10)(nn.BatchNorm(use_running_average=not is_train)(nn.relu(nn.Dense(8)(x))))


class NnxNormalisedByEvalMode(nnx.Module):  # True to evaluate: train_switch="not eval_mode"
    def __init__(self, *, rngs: nnx.Rngs):
        self.hidden, self.out = nnx.Linear(64, 8, rngs=rngs), nnx.Linear(8, 10, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)

    def __call__(self, x, eval_mode: bool):
        return self.out(self.norm(jax.nn.relu(self.hidden(x)), use_running_average=eval_mode))


@pytest.mark.parametrize("model", [vt.Linen(NormalisedByIsTrain, train_switch="is_train"),
                                   vt.Nnx(NnxNormalisedByEvalMode, train_switch="not eval_mode")], ids=repr)
def test_a_training_switch_of_another_name_is_declared_with_train_switch(digits, model):
    """The declared keyword is passed True (its inverse False) in the training step: the BatchNorm
    statistics move from their start (mean 0, variance 1); evaluation and the trained model's
    predictions pass it the other way."""
    results = vt.tune(model, vt.Space(learning_rate=vt.Fixed(0.01)), digits, vt.RandomSearch(population=1),
                      epochs=1, batch_size=64, refit=1, progress=False)
    trained = results.best_model()
    statistics = jax.tree.leaves({k: v for k, v in trained.variables.items() if k != "params"})
    assert len(statistics) == 2 and not any(np.allclose(np.asarray(s), start)
                                             for s, start in zip(statistics, (0.0, 1.0)))
    assert trained.score(*digits.raw("test")) == pytest.approx(results.test_score, abs=1e-6)


class DropoutWithOptionsOfItsOwn(nn.Module):  # no training switch; train_only is the module's own option
    @nn.compact
    def __call__(self, x, train_only: bool = False):
        return nn.Dense(10)(nn.Dense(8)(x))


def test_train_switch_none_passes_no_switch_and_a_declared_one_must_exist(digits):
    with pytest.raises(TypeError, match=r"takes train_only=False as its switch"):
        vt.build_program(vt.Linen(DropoutWithOptionsOfItsOwn), vt.Space(learning_rate=vt.Fixed(0.01)), digits)
    program = vt.build_program(vt.Linen(DropoutWithOptionsOfItsOwn, train_switch=None),
                               vt.Space(learning_rate=vt.Fixed(0.01)), digits)
    assert program.model.mode is None
    with pytest.raises(ValueError, match=r"^vt.Linen\(train_switch='is_train'\): DropoutWithOptionsOfItsOwn.__call__ "
                                         r"takes no keyword argument 'is_train' to switch modes \(its input and self "
                                         r"are not one\); it takes \['train_only'\]\. Give the name of its training "
                                         r"switch\.$"):
        vt.Linen(DropoutWithOptionsOfItsOwn, train_switch="is_train")
    with pytest.raises(TypeError, match=r"vt.Nnx\(train_switch=True\): give the name of the __call__ argument that "
                                        r"is True when the module trains \(train_switch='is_train'\), 'not NAME'"):
        vt.Nnx(NnxNormalisedByEvalMode, train_switch=True)
    assert repr(vt.Nnx(NnxNormalisedByEvalMode, train_switch="not eval_mode")) == \
        "Nnx(NnxNormalisedByEvalMode, train_switch='not eval_mode')"
    from vmaptune.models.fields import mode_arguments

    # a model saved before train_switch holds its keyword's name alone: still told its mode
    assert mode_arguments("train", True) == {"train": True} and mode_arguments("deterministic", True) == \
        {"deterministic": False}
    assert mode_arguments(("eval_mode", True), False) == {"eval_mode": True}


class LayersOfWidths(nn.Module):
    widths: tuple[int, ...] = (16, 16)  # (a tuple: no space holds it; a factory sets it)
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        for width in self.widths:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(3)(vt.nn.Dropout(self.dropout)(x, deterministic=not train))


def test_a_tuple_field_is_set_by_a_partial_of_the_module_as_its_error_says():
    import functools

    with pytest.raises(TypeError, match=r"vt.Linen\(functools.partial\(Net, widths=\(8, 4\)\)\)"):
        vt.Fixed((8, 4))
    results = vt.tune(vt.Linen(functools.partial(LayersOfWidths, widths=(8, 4))),
                      vt.Space(learning_rate=vt.Fixed(0.01), dropout=vt.Uniform(0.0, 0.5)), vt.load_dataset("iris"),
                      vt.RandomSearch(population=2), epochs=1, refit=1, progress=False)
    shapes = jax.tree.map(lambda a: a.shape, results.best_model().variables["params"])
    assert [shapes[f"Dense_{i}"]["kernel"] for i in range(3)] == [(4, 8), (8, 4), (4, 3)]


def test_a_declared_train_switch_that_reads_the_other_way_or_cannot_switch_is_refused():
    """A switch whose name says evaluation (eval_mode, deterministic) declared as True to train, or
    one saying training declared with `not`, would train in evaluation mode, silently: BatchNorm
    frozen at mean 0, dropout inverted. So would None beside a keyword vmaptune passes. The input
    and self are no switch. Written two ways, one switch is one model (a resume takes either)."""
    def check(model, match):
        with pytest.raises(ValueError, match=match):
            model()

    check(lambda: vt.Nnx(NnxNormalisedByEvalMode, train_switch="eval_mode"),
          r"^vt.Nnx\(train_switch='eval_mode'\) passes eval_mode=True in the training step and eval_mode=False to "
          r"evaluate, but its name reads True to evaluate: train_switch='not eval_mode'\.$")
    check(lambda: vt.Linen(NormalisedByIsTrain, train_switch="not is_train"), r"reads True to train: "
                                                                             r"train_switch='is_train'")
    check(lambda: vt.Linen(CNN, train_switch="deterministic"), r"takes no keyword argument 'deterministic'")
    check(lambda: vt.Linen(CNN, train_switch=None), r"^vt.Linen\(train_switch=None\): CNN.__call__ takes 'train', "
                                                    r"which vmaptune passes \(train=True in the training step\)")
    check(lambda: vt.Linen(CNN, train_switch="x"), r"takes no keyword argument 'x' to switch modes \(its input and "
                                                   r"self are not one\); it takes \['train'\]")
    assert vt.Linen(CNN, train_switch="train").train_switch == "auto"  # (what auto finds: the same model)
    import functools

    assert vt.Linen(functools.partial(CNN, features=4), train_switch="train").train_switch == "auto"
    # a name turned round (no_train, stochastic_inference) says nothing of its sense: taken as declared
    for switch in ("not no_train", "no_train", "stochastic_inference", "not stochastic_inference"):
        assert vt.Linen(TurnedSwitch, train_switch=switch).train_switch == switch
    assert vt.Nnx(NnxNormalisedByEvalMode, train_switch="not  eval_mode").train_switch == "not eval_mode"


class TurnedSwitch(nn.Module):
    @nn.compact
    def __call__(self, x, no_train: bool = True, stochastic_inference: bool = False):
        return nn.Dense(10)(x)


class NnxNormalisedOrNot(nnx.Module):  # nnx style: the BatchNorm is built whether or not it is used
    def __init__(self, use_norm: bool = False, *, rngs: nnx.Rngs):
        self.use_norm = use_norm
        self.hidden, self.out = nnx.Linear(64, 8, rngs=rngs), nnx.Linear(8, 10, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.hidden(x))
        return self.out(self.norm(h) if self.use_norm else h)


class NnxWithBuffer(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.hidden, self.out = nnx.Linear(64, 8, rngs=rngs), nnx.Linear(8, 10, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)  # (follows train() / eval())
        self.buffer = nnx.Variable(jnp.ones(8))  # (a constant of the module's own: model state, never updated)

    def __call__(self, x):
        return self.out(self.norm(jax.nn.relu(self.hidden(x))) * self.buffer[...])


class NnxStatisticsFrozen(NnxWithBuffer):  # use_running_average=True in every call: train() cannot move them
    def __call__(self, x):
        return self.out(self.norm(jax.nn.relu(self.hidden(x)), use_running_average=True) * self.buffer[...])


def test_nnx_batchnorm_statistics_that_never_move_are_refused_and_a_constant_variable_is_not(digits):
    space = vt.Space(learning_rate=vt.Fixed(0.01))
    with pytest.raises(ValueError, match=r"vt.Nnx\(NnxStatisticsFrozen\)'s BatchNorm statistics do not change when it "
                                         r"trains.* leave nnx.BatchNorm's use_running_average at None"):
        vt.build_program(vt.Nnx(NnxStatisticsFrozen), space, digits)
    vt.build_program(vt.Nnx(NnxWithBuffer), space, digits)
    # a BatchNorm built but not called (use_norm=False, the first value checked) keeps its statistics, rightly
    vt.build_program(vt.Nnx(NnxNormalisedOrNot), space, digits)
    vt.build_program(vt.Nnx(NnxNormalisedOrNot), space.replace(use_norm=vt.Choice([False, True])), digits)


class NnxOfWidths(nnx.Module):
    def __init__(self, widths: tuple[int, ...], rate: float = 0.0, *, rngs: nnx.Rngs):
        sizes = (64, *widths)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.out, self.drop = nnx.Linear(sizes[-1], 10, rngs=rngs), vt.nn.NnxDropout(rate, rngs=rngs)

    def __call__(self, x):
        for layer in self.layers:
            x = jax.nn.relu(layer(x))
        return self.out(self.drop(x))


def test_a_partial_of_an_nnx_class_shows_its_fields(digits):
    """functools.partial(NnxOfWidths, widths=(8, 4)) shows only *args, **kwargs: its fields are
    read from the class, less what the partial sets (the fix the tuple errors name)."""
    import functools

    model = vt.Nnx(functools.partial(NnxOfWidths, widths=(8, 4)))
    assert set(model.fields()) == {"widths", "rate"} and not model.takes_any_keyword()
    program = vt.build_program(model, vt.Space(learning_rate=vt.Fixed(0.01), rate=vt.Uniform(0.0, 0.5)), digits)
    assert program.model.traced == ("rate",)


class DroppingBlock(nnx.Module):
    def __init__(self, width: int, rate, *, rngs: nnx.Rngs):
        self.lin, self.drop = nnx.Linear(width, width, rngs=rngs), vt.nn.NnxDropout(rate, rngs=rngs)

    def __call__(self, h):
        return h + self.drop(jax.nn.relu(self.lin(h)))


class ScannedBlocks(nnx.Module):  # nnx's layer stack: blocks built by nnx.vmap over split rngs, run by nnx.scan
    def __init__(self, dropout: float = 0.1, *, rngs: nnx.Rngs):
        self.inp, self.out = nnx.Linear(64, 8, rngs=rngs), nnx.Linear(8, 10, rngs=rngs)

        @nnx.split_rngs(splits=2)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def blocks(rngs):
            return DroppingBlock(8, dropout, rngs=rngs)

        self.blocks = blocks(rngs)

    def __call__(self, x):
        @nnx.scan(in_axes=(0, nnx.Carry), out_axes=nnx.Carry)
        def step(block, h):
            return block(h)

        return self.out(step(self.blocks, self.inp(x)))


def test_nnx_dropout_with_a_traced_rate_works_in_a_scanned_layer_stack(digits):
    """vt.nn.NnxDropout forks its stream from the Rngs, as nnx.Dropout does: the shared Rngs
    object inside nnx.split_rngs / nnx.vmap / nnx.scan failed with an IndexError."""
    ScannedBlocks(rngs=nnx.Rngs(0, dropout=1))(jnp.ones((2, 64)))
    for seeded in (nnx.Rngs(0), nnx.Rngs(default=0)):  # (the default stream, as nnx.Dropout takes it)
        assert vt.nn.NnxDropout(0.5, rngs=seeded)(jnp.ones(100)).min() == 0.0
    rebuilt = vt.nn.NnxDropout(0.5, deterministic=True, rngs=nnx.Rngs(params=0))  # (for inference: no stream)
    assert rebuilt(jnp.ones(3)).tolist() == [1.0, 1.0, 1.0]
    dropped = vt.nn.NnxDropout(0.5)(jnp.ones(1000), rngs=jax.random.key(0))  # (a key at call, as nnx.Dropout's)
    assert set(np.unique(np.asarray(dropped)).tolist()) == {0.0, 2.0}
    program = vt.build_program(vt.Nnx(ScannedBlocks), vt.Space(learning_rate=vt.Fixed(0.02),
                                                               dropout=vt.Uniform(0.0, 0.5)), digits)
    assert program.model.traced == ("dropout",)


class TemperatureKept(nn.Module):  # the searched float kept in a variable: read when a member is built only
    temperature: float = 1.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        kept = self.variable("constants", "temperature", lambda: jnp.asarray(self.temperature))
        return nn.Dense(10)(x) / kept.value


class NnxTemperatureKept(nnx.Module):
    def __init__(self, temperature: float = 1.0, *, rngs: nnx.Rngs):
        self.out, self.temperature = nnx.Linear(64, 10, rngs=rngs), nnx.Variable(jnp.asarray(temperature))

    def __call__(self, x):
        return self.out(x) / self.temperature[...]


class TemperatureRead(nn.Module):  # read in every step: PBT may change it
    temperature: float = 1.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(10)(x) / self.temperature


@pytest.mark.parametrize("model, at_start", [(vt.Linen(TemperatureKept), True), (vt.Nnx(NnxTemperatureKept), True),
                                             (vt.Linen(TemperatureRead), False)], ids=repr)
def test_a_field_read_only_when_a_member_is_built_is_fixed_for_pbt(digits, model, at_start):
    """A float kept in a variable is read at initialisation only: a value PBT's explore gave it
    mid-run would never reach the network while the table showed it. It is fixed at the start, as
    structural names are: PBT does not explore it, and it travels with the copied weights."""
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), temperature=vt.Uniform(0.5, 2.0))
    program = vt.build_program(model, space, digits)
    assert ("temperature" in program.structural_names()) == at_start
    explored = vt.PBT(population=4).explored_names(space, program.structural_names())
    assert ("temperature" in explored) != at_start and "learning_rate" in explored
    if at_start:  # a loss of yours reading it in every step: a new value reaches training
        reading = vt.build_program(dataclasses.replace(model, loss=_tempered), space, digits)
        assert "temperature" not in reading.structural_names()
        # one structural group's reading is not every group's: not judged where structure is searched
        grouped = vt.build_program(TemperatureKeptOrRead, space.replace(kept=vt.Choice([True, False])), digits)
        assert "temperature" not in grouped.structural_names()


def _tempered(outputs, labels, hp):
    return optax.softmax_cross_entropy_with_integer_labels(outputs / hp["temperature"], labels)


class TemperatureKeptOrReadModule(nn.Module):
    temperature: float = 1.0
    kept: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False):
        if self.kept:
            return nn.Dense(10)(x) / self.variable("constants", "t", lambda: jnp.asarray(self.temperature)).value
        return nn.Dense(10)(x) / self.temperature


TemperatureKeptOrRead = vt.Linen(TemperatureKeptOrReadModule)


def test_a_built_layer_bound_into_a_factory_is_named_when_the_model_cannot_be_saved():
    import functools

    from vmaptune.trained import pickled

    with pytest.raises(TypeError, match=r"the model cannot be pickled .* functools.partial\(Net, body=nn.Dense\(16\)\) "
                                        r"holds a built layer"):
        pickled(functools.partial(LayersOfWidths, body=nn.Dense(16, kernel_init=lambda *a: None)), "results.save")


class NnxIgnoringItsRngs(nnx.Module):  # every layer on a key of its own: one set of initial weights for all
    def __init__(self, width: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, width, rngs=nnx.Rngs(0))
        self.out = nnx.Linear(width, 10, rngs=nnx.Rngs(1))

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))


def test_an_nnx_module_ignoring_the_rngs_it_is_given_is_warned_about(digits):
    """Every member and seed started from the same weights, unsaid."""
    space = vt.Space(learning_rate=vt.Fixed(0.01), width=vt.Fixed(8))
    with pytest.warns(UserWarning, match=r"vt.Nnx\(NnxIgnoringItsRngs\)'s initial weights do not depend on the rngs "
                                         r"vmaptune builds it with, so every member \(and every seed of seeds=\)"):
        vt.build_program(vt.Nnx(NnxIgnoringItsRngs), space, digits)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*initial weights do not depend")
        vt.build_program(vt.Nnx(NnxNet), space.replace(dropout=vt.Fixed(0.0)), digits)
