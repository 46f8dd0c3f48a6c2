"""Conditional hyperparameters (Space.only_when): a name that is a member's setting only when its
parents take some values. The population's arrays stay whole; the table, the grid, Optuna's sampler
and the Optuna export see the name only where it is used."""

import os
import pickle
import sys
import warnings

import flax.linen as nn
import jax
import numpy as np
import optuna
import pandas as pd
import pytest

import vmaptune as vt
from vmaptune.space import Space

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = vt.Space(
    optimizer=vt.Choice(["sgd", "adam"]),
    momentum=vt.OneMinusLogUniform(0.5, 0.99),
    learning_rate=vt.LogUniform(1e-3, 1e-1),
).only_when("momentum", optimizer="sgd")

DEEP = vt.Space(
    n_hidden=vt.IntUniform(1, 3),
    n_units_2=vt.Choice([8, 16]),
    n_units_3=vt.Choice([8, 16]),
    learning_rate=vt.Fixed(0.05),
).only_when("n_units_2", n_hidden=[2, 3]).only_when("n_units_3", n_hidden=3)


def test_active_follows_the_parents_values_and_chains():
    hp = DEEP.encode([{"n_hidden": h, "n_units_2": 8, "n_units_3": 16, "learning_rate": 0.05} for h in (1, 2, 3)])
    active = DEEP.active(hp)
    assert active["n_units_2"].tolist() == [False, True, True]
    assert active["n_units_3"].tolist() == [False, False, True]
    chained = vt.Space(a=vt.Choice(["x", "y"]), b=vt.Choice(["u", "v"]), c=vt.Uniform(0.0, 1.0)) \
        .only_when("b", a="x").only_when("c", b="u")
    hp = chained.encode([{"a": a, "b": "u", "c": 0.5} for a in ("x", "y")])
    assert chained.active(hp)["c"].tolist() == [True, False]  # (b is "u", but b is not y's setting)
    assert chained.parents_first() == ("a", "b", "c")
    assert vt.Space(c=vt.Uniform(0.0, 1.0), a=vt.Choice(["x", "y"])).only_when("c", a="x").parents_first() == ("a", "c")


def test_the_table_shows_none_where_unused_and_a_space_round_trips():
    hp = SPACE.encode([{"optimizer": o, "momentum": 0.9, "learning_rate": 0.01} for o in ("sgd", "adam")])
    assert SPACE.decode_columns(hp)["momentum"][0] == 0.9 and np.isnan(SPACE.decode_columns(hp)["momentum"][1])
    names = vt.Space(a=vt.Choice(["x", "y"]), b=vt.Choice(["u", "v"])).only_when("b", a="x")
    assert names.decode_columns(names.encode([{"a": "y", "b": "u"}]))["b"] == [None]  # (None among names)
    assert SPACE.decode(hp)[1]["momentum"] == 0.9  # (what trained: every member carries a value)
    assert Space.from_config(SPACE.to_config()) == SPACE
    assert SPACE.to_config()["momentum"]["only_when"] == {"optimizer": ["sgd"]}
    assert SPACE != vt.Space(dict(SPACE.items()))  # a condition makes another space
    assert pickle.loads(pickle.dumps(SPACE)) == SPACE
    one = DEEP.only_when("learning_rate", n_hidden=[2, 3], n_units_2=16)
    assert one == DEEP.only_when("learning_rate", n_units_2=[16, 16], n_hidden=[3, 2])  # (order and repeats alike)
    assert one.to_config() == DEEP.only_when("learning_rate", n_units_2=16, n_hidden=[3, 2]).to_config()
    assert SPACE.replace(learning_rate=vt.Fixed(0.01)).conditions == SPACE.conditions
    assert repr(SPACE).endswith(".only_when('momentum', optimizer=['sgd'])")


@pytest.mark.parametrize("call, message", [
    (lambda: SPACE.only_when("nesterov", optimizer="sgd"),
     r"Space.only_when\('nesterov', ...\): 'nesterov' is not in this space; it has \['optimizer', 'momentum', "),
    (lambda: SPACE.only_when("momentum"), r"name the parent and its values, e.g. space.only_when\('momentum', "),
    (lambda: SPACE.only_when("momentum", optimizer="rmsprop"),
     r"'rmsprop' is not a value of optimizer=Choice\(options=\('sgd', 'adam'\)\)"),
    (lambda: SPACE.only_when("momentum", optimiser="sgd"), r"'optimiser' is not in this space"),
    (lambda: SPACE.only_when("optimizer", learning_rate=0.01),
     r"the parent learning_rate=LogUniform\(.*\) takes continuous values; a condition needs one with a few values"),
    (lambda: DEEP.only_when("n_units_2", n_hidden=4), r"4 is not a value of n_hidden=IntUniform\(low=1, high=3\)"),
    (lambda: SPACE.only_when("optimizer", optimizer="sgd"), r"a hyperparameter cannot depend on itself"),
    (lambda: SPACE.only_when("momentum", optimizer="adam"),  # a second call would drop the first unseen
     r"only_when\('momentum', optimizer='adam'\): 'momentum' is already used only when optimizer=\['sgd'\]; a "
     r"name takes one only_when, which may name several parents .*e.g. .only_when\('momentum', optimizer=\['adam'\]\)"),
    (lambda: DEEP.only_when("n_units_3", n_units_2=8),
     r"'n_units_3' is already used only when n_hidden=\[3\]; .* .only_when\('n_units_3', n_hidden=\[3\], "
     r"n_units_2=\[8\]\)"),
    (lambda: SPACE.only_when("optimizer", momentum=0.9), r"takes continuous values"),
    (lambda: DEEP.only_when("n_hidden", n_units_2=8),
     r"'n_hidden' would depend on itself \('n_units_2' is already used only when 'n_hidden' takes some values\)"),
    (lambda: Space.from_config({"a": {"type": "Choice", "options": ["x"]},
                                "b": {"type": "Uniform", "low": 0, "high": 1, "only_when": "a"}}),
     r"space 'b': only_when must be a table parent -> values, e.g. only_when = \{optimizer = \"sgd\"\}"),
])
def test_a_bad_condition_names_the_argument_and_the_fix(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_a_grid_keeps_one_point_of_those_that_differ_only_where_unused():
    strategy = vt.GridSearch(population=5)
    assert strategy.grid_size(SPACE) == 3 * 3 + 3  # sgd: 3 momenta x 3 rates; adam: 3 rates
    state = strategy.init(SPACE, jax.random.key(0))
    rows = []
    while not strategy.done(state):
        hp, state = strategy.ask(state)
        rows += list(zip(*SPACE.decode_columns(hp).values()))
        state = strategy.tell(state, hp, np.zeros(len(hp["momentum"])))
    assert len(rows) == len(set(rows)) == 12
    assert sum(r[0] == "adam" for r in rows) == 3 and all(np.isnan(r[1]) for r in rows if r[0] == "adam")
    sampled = vt.GridSearch(population=8, sample=8).init(SPACE, jax.random.key(1))
    hp, _ = vt.GridSearch(population=8, sample=8).ask(sampled)
    drawn = list(zip(*SPACE.decode_columns(hp).values()))
    assert len(set(drawn)) == 8 and set(drawn) <= set(rows)


def test_optunas_sampler_suggests_a_name_only_where_it_is_used():
    strategy = vt.OptunaSampler(optuna.samplers.RandomSampler(seed=0), population=12)
    state = strategy.init(DEEP, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(1))
    active = DEEP.active(hp)
    for i, trial in enumerate(state.pending):
        assert ("n_units_2" in trial.params) == active["n_units_2"][i]
        assert ("n_units_3" in trial.params) == active["n_units_3"][i]
        assert trial.params["n_hidden"] == int(hp["n_hidden"][i])
        if active["n_units_3"][i]:
            assert trial.params["n_units_3"] == [8, 16][int(hp["n_units_3"][i])]
    assert 0 < active["n_units_3"].sum() < active["n_units_2"].sum() < 12  # (the draw covers all three depths)
    state = strategy.tell(state, hp, np.arange(12.0))
    assert [t.value for t in state.study.trials] == list(np.arange(12.0))
    strategy.tell(strategy.init(DEEP, jax.random.key(0)), hp, np.arange(12.0))  # points it did not propose


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("conditions") / "run")
    data = vt.load_dataset("iris")
    result = vt.tune(vt.MLP(hidden=1, units=8), SPACE, data, vt.GridSearch(population=12), epochs=2, seed=0,
                     run_dir=run_dir, progress=False)
    return result, run_dir, data


def test_a_search_over_a_conditional_space_trains_saves_resumes_and_exports(conditional_run):
    result, run_dir, data = conditional_run
    table = result.members
    adam = table["optimizer"] == "adam"
    assert adam.sum() == 3 and table.loc[adam, "momentum"].isna().all() and table.loc[~adam, "momentum"].notna().all()
    best = result.best_params
    assert ("momentum" in best) == (best["optimizer"] == "sgd")
    loaded = vt.load_results(run_dir)
    assert loaded.space == SPACE
    np.testing.assert_array_equal(loaded.members["momentum"].isna(), adam)
    again = vt.tune(vt.MLP(hidden=1, units=8), SPACE, data, vt.GridSearch(population=12), epochs=2, seed=0,
                    run_dir=run_dir, resume=True, progress=False)
    assert again.members.equals(result.members)
    study = result.to_optuna()
    for trial, is_adam in zip(study.trials, adam):
        assert ("one_minus_momentum" in trial.params) != is_adam
        assert ("momentum" in trial.user_attrs) != is_adam
    assert set(optuna.importance.get_param_importances(study)) == {"optimizer", "learning_rate", "one_minus_momentum"}


def test_a_scikit_learn_search_leaves_an_unused_name_out_of_a_candidates_params():
    X, y = vt.load_dataset("iris").raw("train")
    space = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), momentum=vt.Choice([0.5, 0.9]),
                     learning_rate=vt.Fixed(0.05)).only_when("momentum", optimizer="sgd")
    search = vt.PopulationSearchCV(vt.MLPClassifier(n_units=8, epochs=2, random_state=0), space,
                                   strategy=vt.GridSearch(population=8), cv=2).fit(X, y)
    params = search.cv_results_["params"]
    assert params == [{"optimizer": "sgd", "momentum": 0.5, "learning_rate": 0.05},
                      {"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.05},
                      {"optimizer": "adam", "learning_rate": 0.05}]
    assert search.cv_results_["param_momentum"].mask.tolist() == [False, False, True]
    assert search.best_params_ == params[search.best_index_]  # (the refit takes them: no momentum=nan)
    widths = vt.Space(n_hidden=vt.Choice([1, 2]), n_units=vt.Choice([4, 8]), learning_rate=vt.Fixed(0.05)) \
        .only_when("n_units", n_hidden=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # (numpy's "converting a masked element to nan")
        search = vt.PopulationSearchCV(vt.MLPClassifier(epochs=2, random_state=0), widths,
                                       strategy=vt.GridSearch(population=8), cv=2).fit(X, y)
    column = search.cv_results_["param_n_units"]
    assert column.dtype == np.int64 and column.tolist() == [None, 4, 8]  # as scikit-learn's list-of-grids gives
    with pytest.raises(TypeError, match=r"param_distributions is a list of 2 dicts, scikit-learn's way .*give one "
                                        r"vt.Space whose conditional names say so, e.g. .*only_when\('momentum'"):
        vt.PopulationSearchCV(vt.MLPClassifier(), [{"optimizer": ["adam"]}, {"optimizer": ["sgd"],
                                                                             "momentum": [0.9]}]).fit(X, y)


def test_bayesopt_sees_members_alike_where_a_name_is_unused():
    from vmaptune.strategies.bayesopt import Encoding

    hp = SPACE.encode([{"optimizer": o, "momentum": m, "learning_rate": 0.01} for o, m in
                       (("adam", 0.6), ("adam", 0.95), ("sgd", 0.6), ("sgd", 0.95))])
    Z = np.asarray(Encoding(SPACE).encode(hp))
    np.testing.assert_array_equal(Z[0], Z[1])  # adam: momentum's column is one constant
    assert not np.array_equal(Z[2], Z[3])
    strategy = vt.BayesOpt(population=4, rounds=3)
    state = strategy.init(SPACE, jax.random.key(0))
    for r in range(3):
        hp, state = strategy.ask(state, jax.random.key(r))
        SPACE.check_asked(hp, "BayesOpt.ask")
        state = strategy.tell(state, hp, -np.abs(np.log10(np.asarray(hp["learning_rate"])) + 2))


def test_the_scores_plot_draws_a_name_only_for_members_that_use_it(conditional_run, monkeypatch):
    from vmaptune import plots

    made = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: made.append(fig) or path)
    result = conditional_run[0]
    plots.plot_scores(result, "scores.png")
    axes = {ax.get_xlabel(): ax for ax in made[0].axes}
    drawn = lambda ax: int(np.isfinite(np.asarray(ax.collections[0].get_offsets(), float)).all(axis=1).sum())  # noqa: E731
    assert drawn(axes["momentum"]) == (result.members["optimizer"] == "sgd").sum() == 9
    assert drawn(axes["learning_rate"]) == 12
    space = vt.Space(n_hidden=vt.IntUniform(1, 2), activation=vt.Choice(["relu", "tanh"]),
                     learning_rate=vt.Fixed(0.05)).only_when("activation", n_hidden=2)  # (a Choice: drawn by index)
    choices = vt.tune(vt.MLP(units=8), space, conditional_run[2], vt.GridSearch(population=3), epochs=1, progress=False)
    plots.plot_scores(choices, "scores.png")
    assert drawn({ax.get_xlabel(): ax for ax in made[1].axes}["activation"]) == 2
    import matplotlib.pyplot as plt

    for fig in made:
        plt.close(fig)


def test_a_width_as_a_parent_survives_the_width_groups_of_bucketing():
    """The MLP narrows n_units per width group (space.replace): a condition on a width outside a
    group's range holds for none of its members, and is no error."""
    space = vt.Space(n_units=vt.Choice([8, 64]), dropout=vt.Uniform(0.0, 0.5), learning_rate=vt.Fixed(0.05)) \
        .only_when("dropout", n_units=64)
    data = vt.load_dataset("iris")
    grid = vt.GridSearch(population=3, points_per_axis=2)  # width 8 (dropout unused), and 64 with 2 dropouts
    runs = [vt.tune(vt.MLP(hidden=1), space, data, grid, epochs=2, seed=1, bucketing=b, progress=False)
            for b in (False, True)]
    assert runs[1].settings["programs"] == [2]  # one program per width group
    np.testing.assert_allclose(runs[1].curves["val_loss"], runs[0].curves["val_loss"], rtol=1e-4)


def test_a_parent_that_replace_fixes_or_narrows_holds_a_condition_on_other_values_for_no_member():
    """space.replace(optimizer=vt.Fixed("sgd")) after a first search: Fixed.encode gave 'adamw' the
    index 0 of 'sgd', so weight_decay counted as every sgd member's setting (its row showed it, the
    grid held 3 points, the drawn value trained them). A narrower Choice failed deep in
    Space.active. A condition on a value the parent cannot take now holds for none, as replace says."""
    space = vt.Space(optimizer=vt.Choice(["sgd", "adamw"]), weight_decay=vt.LogUniform(1e-5, 1e-1),
                     learning_rate=vt.Fixed(0.05)).only_when("weight_decay", optimizer="adamw")
    for parent in (vt.Fixed("sgd"), vt.Choice(["sgd", "adam"])):
        narrowed = space.replace(optimizer=parent)
        hp = narrowed.encode([{"optimizer": "sgd", "weight_decay": 0.1, "learning_rate": 0.05}])
        assert narrowed.active(hp)["weight_decay"].tolist() == [False]
        assert np.isnan(narrowed.decode_columns(hp)["weight_decay"][0])
        settled = narrowed.traced_conditions().settle(narrowed.numeric(hp), {"weight_decay": 0.0})
        assert settled["weight_decay"].tolist() == [0.0]  # (what training reads)
        assert vt.GridSearch(points_per_axis=3).grid_size(narrowed) == len(parent.options)
    with pytest.raises(ValueError, match="'adamw' is not the value of Fixed"):
        vt.Fixed("sgd").encode("adamw")
    fixed, data = space.replace(optimizer=vt.Fixed("sgd")), vt.load_dataset("iris")
    losses = [vt.tune(vt.MLP(hidden=1, units=8), fixed, data, vt.GridSearch(values={"weight_decay": [wd]}, population=1),
                      epochs=2, seed=0, progress=False).curves["train_loss"][0] for wd in (1e-5, 1e-1)]
    np.testing.assert_array_equal(*losses)


def test_results_of_a_space_whose_parent_replace_narrowed_save_and_load(tmp_path):
    """Their config holds the condition as it was (weight_decay only when adamw, on a parent that
    is now Fixed('sgd')): load_results refused it as a person's config is refused; a written one
    is read back as it was. A config a person writes is still checked."""
    space = vt.Space(optimizer=vt.Choice(["sgd", "adamw"]), weight_decay=vt.LogUniform(1e-5, 1e-1),
                     learning_rate=vt.LogUniform(1e-2, 1e-1)).only_when("weight_decay", optimizer="adamw")
    fixed = space.replace(optimizer=vt.Fixed("sgd"))
    result = vt.tune(vt.MLP(hidden=1, units=4), fixed, vt.load_dataset("iris"), vt.RandomSearch(population=2),
                     epochs=1, seed=0, progress=False)
    result.save(str(tmp_path / "run"))
    loaded = vt.load_results(str(tmp_path / "run"))
    assert repr(loaded.space) == repr(fixed) and loaded.space.active(loaded.hp)["weight_decay"].tolist() == [False] * 2
    pd.testing.assert_frame_equal(loaded.members, result.members)
    with pytest.raises(ValueError, match=r"'adamw' is not a value of optimizer=Fixed"):
        vt.Space.from_config(fixed.to_config())


def test_an_empty_conditional_panel_on_a_log_scale_draws(tmp_path):
    space = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), weight_decay=vt.LogUniform(1e-5, 1e-2),
                     learning_rate=vt.Fixed(0.05)).only_when("weight_decay", optimizer="sgd")
    result = vt.tune(vt.MLP(hidden=1, units=8), space, vt.load_dataset("iris"),
                     vt.GridSearch(population=3, values={"optimizer": ["adam"]}), epochs=1, progress=False)
    assert result.members["weight_decay"].dtype == np.float64 and result.members["weight_decay"].isna().all()
    from vmaptune import plots

    assert os.path.exists(plots.plot_scores(result, str(tmp_path / "scores.png")))  # (log scale of nothing: raised)


def test_coarse_to_fine_narrows_a_conditional_range_around_the_members_that_use_it():
    strategy = vt.CoarseToFine(population=8, rounds=2, top_k=2, margin=0.1)
    state = strategy.init(SPACE, jax.random.key(0))
    hp, state = strategy.ask(state, jax.random.key(1))
    sgd = np.asarray(hp["optimizer"]) == 0
    scores = np.where(sgd, 0.0, 1.0) + np.arange(8) * 0.01  # every adam member ranks above every sgd one
    state = strategy.tell(state, hp, scores)
    u = np.asarray(SPACE["momentum"].to_unit(hp["momentum"]))
    best_sgd = np.flatnonzero(sgd)[np.argsort(-scores[sgd])[:2]]
    j = SPACE.names.index("momentum")
    np.testing.assert_allclose([state.low[1, j], state.high[1, j]],
                               [max(u[best_sgd].min() - 0.1, 0.0), min(u[best_sgd].max() + 0.1, 1.0)], rtol=1e-5)


def test_a_trained_model_shows_only_the_settings_it_uses(conditional_run):
    result, _, data = conditional_run
    refit = vt.tune(vt.MLP(hidden=1, units=8), SPACE, data, vt.GridSearch(population=12), epochs=2, seed=0,
                    refit=12, progress=False)
    for row, model in refit.models.items():
        used = refit.space.active({k: v[row:row + 1] for k, v in refit.hp.items()})["momentum"][0]
        assert ("momentum" in model.hyperparameters) == used


class _TwoDepths(nn.Module):
    """A linen network whose second layer's width is structural and used only at depth 2."""

    depth: int = 1
    width2: int = 4
    n_outputs: int = 3

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Dense(8)(x))
        if self.depth == 2:
            x = nn.relu(nn.Dense(self.width2)(x))
        return nn.Dense(self.n_outputs)(x)


def test_an_unused_structural_value_does_not_split_a_group_of_your_model():
    space = vt.Space(depth=vt.IntUniform(1, 2), width2=vt.Choice([4, 8, 16, 32]), learning_rate=vt.LogUniform(0.03, 0.1)) \
        .only_when("width2", depth=2)
    result = vt.tune(vt.Linen(_TwoDepths), space, vt.load_dataset("iris"), vt.RandomSearch(population=12), epochs=1,
                     seed=0, progress=False)
    table = result.members
    carried = np.asarray(result.hp["width2"])[(table["depth"] == 1).to_numpy()]
    assert len(set(carried.tolist())) > 1  # (depth-1 members carry several unused widths)
    networks = 1 + table.loc[table["depth"] == 2, "width2"].nunique()
    assert result.settings["programs"] == [networks]  # one per distinct network, not per unused width


def test_a_fixed_float_parent_is_matched_in_the_populations_float32():
    space = vt.Space(dropout=vt.Fixed(0.1), learning_rate=vt.LogUniform(1e-3, 1e-1)).only_when("learning_rate",
                                                                                              dropout=0.1)
    assert vt.GridSearch(population=5, points_per_axis=5).grid_size(space) == 5
    hp = space.encode([{"dropout": 0.1, "learning_rate": 0.01}])
    assert space.active(hp)["learning_rate"].tolist() == [True] and space.is_used("learning_rate", {"dropout": 0.1})


def test_the_same_condition_again_is_the_same_space():
    """A notebook cell run twice: the second only_when of an identical condition changes nothing."""
    assert SPACE.only_when("momentum", optimizer="sgd") == SPACE
    assert DEEP.only_when("n_units_3", n_hidden=[3]).conditions == DEEP.conditions


class _ScaledInputs(nn.Module):
    """Reads `shrink` whatever `kind` is: a condition that says it is used only by kind 'b'
    contradicts the module, which vmaptune must not let train a member whose row hides it."""

    kind: str = "a"
    shrink: float = 0.0
    n_outputs: int = 3

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(self.n_outputs)(nn.relu(nn.Dense(8)(x * (1.0 - self.shrink))))


_LEAKS = {  # space, the member's settings, the value its row hides (two of them), one it uses (two)
    "weight_decay only for adamw (sgd reads it as L2)": (
        vt.Space(optimizer=vt.Choice(["sgd", "adamw"]), weight_decay=vt.LogUniform(1e-3, 1.0),
                 learning_rate=vt.Fixed(0.05)).only_when("weight_decay", optimizer="adamw"),
        vt.MLP(hidden=1, units=16), "weight_decay", dict(optimizer="sgd"), dict(optimizer="adamw"), (1e-3, 1.0)),
    "momentum only for sgd (the momentum kind reads it)": (
        vt.Space(optimizer=vt.Choice(["sgd", "momentum", "adam"]), momentum=vt.OneMinusLogUniform(0.5, 0.999),
                 learning_rate=vt.Fixed(0.05)).only_when("momentum", optimizer="sgd"),
        vt.MLP(hidden=1, units=16), "momentum", dict(optimizer="momentum"), dict(optimizer="sgd"), (0.5, 0.999)),
    "dropout only at depth 2 (the MLP drops after every layer)": (
        vt.Space(n_hidden=vt.IntUniform(1, 2), dropout=vt.Uniform(0.0, 0.9), learning_rate=vt.Fixed(0.05))
        .only_when("dropout", n_hidden=2),
        vt.MLP(units=16), "dropout", dict(n_hidden=1), dict(n_hidden=2), (0.0, 0.9)),
    "activation only at depth 2 (a categorical the MLP reads at every depth)": (
        vt.Space(n_hidden=vt.IntUniform(1, 2), activation=vt.Choice(["relu", "tanh"]), learning_rate=vt.Fixed(0.05))
        .only_when("activation", n_hidden=2),
        vt.MLP(units=16), "activation", dict(n_hidden=1), dict(n_hidden=2), ("relu", "tanh")),
    "a schedule only for adam (sgd's updates read it)": (
        vt.Space(optimizer=vt.Choice(["sgd", "adam"]), schedule=vt.Choice(["constant", "cosine"]),
                 learning_rate=vt.Fixed(0.05)).only_when("schedule", optimizer="adam"),
        vt.MLP(hidden=1, units=16), "schedule", dict(optimizer="sgd"), dict(optimizer="adam"), ("constant", "cosine")),
    "a width only for adam (inside the padded network, not the MLP's 128)": (
        vt.Space(optimizer=vt.Choice(["sgd", "adam"]), n_units=vt.Choice([16, 32]), learning_rate=vt.Fixed(0.05))
        .only_when("n_units", optimizer="adam"),
        vt.MLP(hidden=1), "n_units", dict(optimizer="sgd"), dict(optimizer="adam"), (16, 32)),
    "a field of your module only for one kind (the module reads it for both)": (
        vt.Space(kind=vt.Choice(["a", "b"]), shrink=vt.Uniform(0.0, 0.9), learning_rate=vt.Fixed(0.05))
        .only_when("shrink", kind="b"),
        vt.Linen(_ScaledInputs), "shrink", dict(kind="a"), dict(kind="b"), (0.0, 0.9)),
}


@pytest.mark.parametrize("case", list(_LEAKS))
def test_a_value_that_is_not_a_members_setting_never_trains_it(case):
    """Where a name is not a member's setting its row shows NaN and best_params leaves it out, but
    the built-in optimizer (sgd's L2, the momentum kind's momentum), the MLP (dropout at every
    depth) and a module's field read the value the member drew, so the row's score came from a
    value it hides (0.43 against 0.50 final loss). It now trains with the value a space without
    the name gives; the members that use it still train with theirs."""
    space, model, name, unused, used, values = _LEAKS[case]
    data = vt.load_dataset("iris")

    def loss(settings, value):
        grid = vt.GridSearch(values={**{k: [v] for k, v in settings.items()}, name: [value]}, population=1)
        result = vt.tune(model, space, data, grid, epochs=3, seed=0, progress=False)
        return result.curves["train_loss"][0]

    np.testing.assert_array_equal(loss(unused, values[0]), loss(unused, values[1]))
    assert not np.allclose(loss(used, values[0]), loss(used, values[1]))


def test_a_member_whose_width_is_not_its_setting_comes_out_as_the_network_it_trained():
    """A conditional n_units of Choice([16, 32]) where it is not the member's setting took vt.MLP's
    128 units in a network padded to 32: flax_module() failed on the weights' shapes."""
    space = _LEAKS["a width only for adam (inside the padded network, not the MLP's 128)"][0]
    data = vt.load_dataset("iris")
    grid = vt.GridSearch(values={"optimizer": ["sgd"], "n_units": [16]}, population=1)
    result = vt.tune(vt.MLP(hidden=1), space, data, grid, epochs=2, refit=1, progress=False)
    model = result.best_model()
    module, variables = model.flax_module()
    assert variables["params"]["hidden_0"]["kernel"].shape == (4, 32)  # (the MLP's 128, clipped into the space)
    X = data.raw("test")[0][:5]
    np.testing.assert_allclose(module.apply(variables, model.scale(X)), model.outputs(X), atol=1e-5)


def test_a_scikit_learn_search_trains_an_unused_name_at_the_estimators_own_value(monkeypatch):
    """PopulationSearchCV(MLPClassifier(n_units=4), n_units only for one layer): the two-layer
    candidates were scored at vt.MLP's width (capped to the space's 16) while best_estimator_,
    refit without n_units, trained the estimator's 4 units: best_score_ was another network's."""
    from sklearn.datasets import load_iris

    from vmaptune.models.mlp import MaskedMLP

    seen = []
    structure = MaskedMLP.structure

    def recorded(self, hp, xp=jax.numpy):
        out = structure(self, hp, xp)
        if xp is np:  # (on the host: every member's live layers, as the program will train them)
            seen.append((np.asarray(out[0]), np.asarray(out[1])))
        return out

    monkeypatch.setattr(MaskedMLP, "structure", recorded)
    X, y = load_iris(return_X_y=True)
    space = vt.Space(n_hidden=vt.Choice([1, 2]), n_units=vt.Choice([8, 16])).only_when("n_units", n_hidden=1)
    est = vt.MLPClassifier(n_units=4, epochs=1, random_state=0, batch_size=50, learning_rate=3e-2)
    two = lambda cv: int(np.flatnonzero([p["n_hidden"] == 2 for p in cv["params"]])[0])
    search = vt.PopulationSearchCV(est, space, cv=3, n_iter=4, refit=two).fit(X, y)
    assert search.best_params_ == {"n_hidden": 2} and search.best_estimator_.model_.flax_module()[0].widths == (4, 4)
    two_layers = [widths[depth == 2] for depth, widths in seen if (depth == 2).any()]
    assert two_layers and all((w[:, :2] == 4).all() for w in two_layers)  # (scored as the estimator refits it)


def test_an_unused_activation_comes_out_as_the_one_it_trained_with():
    """flax_module read the drawn activation (tanh) of a member that trained with relu, the
    default, as its activation is not its setting: the exported network's outputs were another's."""
    space = vt.Space(n_hidden=vt.IntUniform(1, 2), activation=vt.Choice(["tanh", "relu"]),
                     learning_rate=vt.Fixed(0.05)).only_when("activation", n_hidden=2)
    data = vt.load_dataset("iris")
    grid = vt.GridSearch(values={"n_hidden": [1], "activation": ["tanh"]}, population=1)
    model = vt.tune(vt.MLP(units=8), space, data, grid, epochs=2, refit=1, progress=False).best_model()
    module, variables = model.flax_module()
    X = data.raw("test")[0][:5]
    assert module.activation == "relu"
    np.testing.assert_allclose(module.apply(variables, model.scale(X)), model.outputs(X), atol=1e-5)


@pytest.mark.parametrize("name, options", [("activation", ["tanh", "elu"]), ("init", ["lecun_normal", "he_uniform"])])
def test_an_unused_categorical_whose_options_lack_the_mlps_own_trains_with_the_mlps_own(name, options):
    """activation=Choice(["tanh", "elu"]) only at depth 2: a one-layer member trained with tanh (the
    first option) while its row, best_params and a rerun of them said relu, vt.MLP's own."""
    data = vt.load_dataset("iris")
    fixed = dict(learning_rate=vt.Fixed(0.05))
    space = vt.Space(n_hidden=vt.IntUniform(1, 2), **{name: vt.Choice(options)}, **fixed).only_when(name, n_hidden=2)
    grid = vt.GridSearch(values={"n_hidden": [1], name: [options[0]]}, population=1)
    result = vt.tune(vt.MLP(units=8), space, data, grid, epochs=3, refit=1, seed=0, progress=False)
    without = vt.tune(vt.MLP(units=8), vt.Space(n_hidden=vt.Fixed(1), **fixed), data, vt.RandomSearch(population=1),
                      epochs=3, seed=0, progress=False)
    np.testing.assert_allclose(result.curves["train_loss"][0], without.curves["train_loss"][0], rtol=1e-6)
    assert name not in result.best_params
    if name == "activation":
        module, variables = result.best_model().flax_module()
        X = data.raw("test")[0][:5]
        assert module.activation == "relu"
        np.testing.assert_allclose(module.apply(variables, result.best_model().scale(X)),
                                   result.best_model().outputs(X), atol=1e-5)


def test_an_unused_width_is_the_same_in_width_groups_and_your_modules_structural_field_takes_its_default():
    """bucketing=True clipped an unused n_units into its width group's range (4 wide, 8 without);
    a module's structural field took the distribution's first value, not its default."""
    space = vt.Space(optimizer=vt.Choice(["sgd", "adam"]), n_units=vt.Choice([4, 8]),
                     learning_rate=vt.Fixed(0.05)).only_when("n_units", optimizer="adam")
    data = vt.load_dataset("iris")
    grid = vt.GridSearch(values={"optimizer": ["sgd", "adam"], "n_units": [4]}, population=2)
    runs = [vt.tune(vt.MLP(hidden=1), space, data, grid, epochs=2, bucketing=b, progress=False) for b in (False, True)]
    np.testing.assert_allclose(runs[0].curves["train_loss"], runs[1].curves["train_loss"], rtol=1e-5)

    class Wide(nn.Module):
        kind: str = "a"
        width: int = 64

        @nn.compact
        def __call__(self, x, train: bool = False):
            return nn.Dense(3)(nn.relu(nn.Dense(self.width)(x)))

    space = vt.Space(kind=vt.Choice(["a", "b"]), width=vt.Choice([8, 16])).only_when("width", kind="b")
    hp = space.numeric(space.encode([{"kind": "a", "width": 8}, {"kind": "b", "width": 8}]))
    keys = [dict(key) for key, _ in vt.Linen(Wide).groups(space, data.spec, hp)]
    assert keys == [{"kind": "a", "width": 64}, {"kind": "b", "width": 8}]


def test_a_scikit_learn_search_trains_the_estimators_own_init_where_the_options_lack_it(monkeypatch):
    """MLPClassifier's init is xavier_uniform; a search of init=Choice(["he_normal", "lecun_normal"])
    only at depth 2 trained its one-layer candidates with he_normal (only a warning said so), while
    best_estimator_, refit without init, trains xavier_uniform. The search's vt.MLP now takes it as
    its own, which a member whose init is not its setting trains with (the test above)."""
    from sklearn.datasets import load_iris

    tune_module = sys.modules["vmaptune.tune"]  # (the search imports tune from it when it fits)
    models, tune = [], tune_module.tune
    monkeypatch.setattr(tune_module, "tune", lambda model, *args, **kwargs: models.append(model) or tune(
        model, *args, **kwargs))
    X, y = load_iris(return_X_y=True)
    space = vt.Space(n_hidden=vt.Choice([1, 2]), init=vt.Choice(["he_normal", "lecun_normal"])).only_when(
        "init", n_hidden=2)
    est = vt.MLPClassifier(epochs=1, batch_size=50, n_units=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vt.PopulationSearchCV(est, space, cv=2, n_iter=2).fit(X, y)
    assert est.init == "xavier_uniform" and [m.init for m in models] == ["xavier_uniform"]