"""`vmaptune report` and what it shows: the summary, the plots, and the table's final_train_loss.
Most tests use a hand-made Results (no training): fast, and any score can be put in."""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import vmaptune as vt
from vmaptune import plots
from vmaptune.cli import main
from vmaptune.history import last_finite
from vmaptune.metrics import Metric, shown_sign
from vmaptune.results import Results


def made_results(scores, metric="accuracy", epochs=3, status=None, settings=None) -> Results:
    """Results of len(scores) members with these (stored, higher-is-better) scores; NaN = diverged.
    Each curve climbs to its member's score; a diverged member's curves are NaN."""
    space = vt.Space.from_config({"learning_rate": {"type": "LogUniform", "low": 1e-3, "high": 1.0},
                                  "activation": {"type": "Choice", "options": ["relu", "tanh"]}})
    scores = np.asarray(scores, float)
    n = len(scores)
    hp = {"learning_rate": np.geomspace(1e-3, 1.0, n), "activation": np.arange(n) % 2}
    status = status or ["ok" if np.isfinite(s) else "diverged" for s in scores]
    table = {"round": np.zeros(n, int), "member": np.arange(n), **space.decode_columns(hp), "score": scores,
             "best_epoch": np.full(n, epochs), "status": status}
    ramp = np.linspace(0.5, 1.0, epochs)
    finite = np.isfinite(scores)[:, None]
    curves = {"val_score": scores[:, None] * ramp, "train_loss": np.where(finite, 1.0 / ramp, np.nan),
              "val_loss": np.where(finite, 1.0 / ramp, np.nan)}
    return Results(space, pd.DataFrame(table), curves, hp, {"metric": metric, **(settings or {})})


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions make, kept open (instead of written) to look into."""
    made = []

    def keep(fig, path):
        made.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    yield made
    import matplotlib.pyplot as plt

    for fig in made:
        plt.close(fig)


# -- lower-is-better metrics are shown as people know them ------------------------------------------
def test_metric_sign_follows_the_metrics_direction():
    assert [shown_sign(m) for m in ("mse", "mae", "log_loss")] == [-1.0, -1.0, -1.0]
    assert [shown_sign(m) for m in ("accuracy", "neg_mse", "r2", "my_own_metric")] == [1.0, 1.0, 1.0, 1.0]
    mine = Metric("my_mae", "regression", lambda out, y: abs(out[:, 0] - y).mean(), greater_is_better=False)
    assert shown_sign(mine) == -1.0


def test_a_lower_is_better_metrics_zero_reads_zero_not_minus_zero():
    """An error rate of 0 (often on small data), stored as +0.0, was shown as -0 and exported as -0.0."""
    result = made_results([0.0, -0.1], metric="mse")
    text = result.summary()
    assert "best validation mse: 0.0000" in text and "-0" not in text and "mse=0)" in repr(result)
    study = result.to_optuna()
    assert str(study.best_value) == "0.0" and str(study.best_trial.user_attrs["score"]) == "0.0"


def test_a_best_row_found_after_the_refit_held_says_to_resume_with_that_refit():
    """A run that searched on with refit= left out keeps its refit of the earlier best: 'raise refit='
    was the wrong fix (a resume with the same refit refits the best of all rounds)."""
    result = made_results([0.5, 0.6, 0.9], settings={"refit": 1})
    result.models = {1: object()}  # (the refit of the best of the first rounds)
    with pytest.raises(ValueError, match=r"row 2 has no trained model: only refit settings keep their weights "
                                         r"\(rows \[1\]\). Those were the best before rounds added since; resume "
                                         r"with refit=1 \(vt.tune\(..., run_dir=..., resume=True, refit=1\)"):
        result.best_model()
    with pytest.raises(ValueError, match=r"row 0 has no trained model.*Raise refit= to keep more than 1"):
        result.model(0)


def test_a_row_past_the_table_is_not_told_to_raise_refit(tmp_path):
    result = made_results([0.5, 0.6, 0.9], settings={"refit": 1})
    result.models = {2: object()}
    for row in (3, 99, -1):
        with pytest.raises(IndexError, match=rf"results.model\({row}\): the table has 3 rows, counted from 0; the "
                                             rf"last is results.model\(2\)"):
            result.model(row)


def test_a_run_directory_without_a_refit_is_told_to_resume_for_one_and_so_is_its_test_score(tmp_path):
    """A run with a run_dir was told to run vt.tune(..., refit=1) again: the whole search; a resume
    with refit=1 trains the refit alone. The test score of a best row found after the refit held
    said so too (best_model() said to resume with that refit)."""
    result = made_results([0.5, 0.6, 0.9], settings={"refit": 0})
    (tmp_path / "checkpoints").mkdir()
    result._saved_at = frozenset({str(tmp_path)})
    for ask in (result.best_model, lambda: result.test_score):
        with pytest.raises(ValueError, match=rf"[Rr]esume the run with refit=1 \(vt.tune\(..., run_dir="
                                             rf"{re.escape(repr(str(tmp_path)))}, resume=True, refit=1\)"):
            ask()
    searched_on = made_results([0.5, 0.6, 0.9], settings={"refit": 1})
    searched_on.members["test_score"] = [np.nan, 0.7, np.nan]
    searched_on.models = {1: object()}
    with pytest.raises(ValueError, match=r"no test score: the best setting \(row 2\) was not refit; those were the "
                                         r"best before rounds added since; resume with refit=1"):
        searched_on.test_score


def test_summary_shows_a_lower_is_better_metric_positive():
    result = made_results([-0.5, -0.6, -0.45, np.nan], metric="mse")
    text = result.summary(10)
    assert "best validation mse: 0.4500" in text and "by validation mse (lower is better)" in text
    scores = [float(line.split()[4]) for line in text.splitlines()[2:5]]  # round member lr activation score
    assert scores == [0.45, 0.5, 0.6]  # positive, best (lowest) first
    assert result.members["score"].max() == -0.45  # stored negated, as before
    accuracy = made_results([0.9, 0.8]).summary()
    assert "best validation accuracy: 0.9000" in accuracy and "lower is better" not in accuracy
    assert "standardised units" not in text  # (no task recorded: not said)
    regression = made_results([-0.5, -0.6], metric="mse", settings={"task": "regression"}).summary()
    assert "(mse in standardised units: the targets' own are these times data.y_std**2" in regression
    r2 = made_results([0.5, 0.6], metric="r2", settings={"task": "regression"}).summary()
    assert "standardised units" not in r2


def test_plots_label_and_show_a_lower_is_better_metric_positive(figures):
    result = made_results([-0.5, -0.6, -0.45, -0.55], metric="mse")
    plots.plot_curves(result, "curves.png")
    plots.plot_scores(result, "scores.png")
    score_axes = [figures[0].axes[0], *figures[1].axes]
    assert all(ax.get_ylabel() == "validation mse" for ax in score_axes)
    assert all(0 < ax.get_ylim()[0] < ax.get_ylim()[1] < 1 for ax in score_axes)


def test_an_integer_hyperparameter_gets_whole_number_ticks(figures):
    space = vt.Space.from_config({"n_hidden": {"type": "IntUniform", "low": 1, "high": 2}})
    hp = {"n_hidden": np.array([1, 2, 1, 2])}
    table = pd.DataFrame({"round": np.zeros(4, int), "member": np.arange(4), **space.decode_columns(hp),
                          "score": [0.5, 0.6, 0.55, 0.65], "best_epoch": np.full(4, 2), "status": ["ok"] * 4})
    curves = {name: np.ones((4, 2)) for name in ("val_score", "train_loss", "val_loss")}
    plots.plot_scores(Results(space, table, curves, hp, {"metric": "accuracy"}), "scores.png")
    figures[0].canvas.draw()
    ticks = figures[0].axes[0].get_xticks()
    shown = ticks[(ticks >= figures[0].axes[0].get_xlim()[0]) & (ticks <= figures[0].axes[0].get_xlim()[1])]
    assert len(shown) >= 2 and np.all(shown == np.round(shown)), shown


def test_an_integer_hyperparameter_that_every_member_holds_at_one_value_gets_that_one_tick(figures):
    """GridSearch(values={"n_hidden": [1]}): the view around 1 (0.945 to 1.055) holds one whole
    number, so the integer locator gave up and labelled 0.945, 0.960, ... 1.065."""
    space = vt.Space.from_config({"n_hidden": {"type": "IntUniform", "low": 1, "high": 2}})
    hp = {"n_hidden": np.array([1, 1, 1])}
    table = pd.DataFrame({"round": np.zeros(3, int), "member": np.arange(3), **space.decode_columns(hp),
                          "score": [0.5, 0.6, np.nan], "best_epoch": np.full(3, 2), "status": ["ok", "ok", "diverged"]})
    curves = {name: np.ones((3, 2)) for name in ("val_score", "train_loss", "val_loss")}
    plots.plot_scores(Results(space, table, curves, hp, {"metric": "accuracy"}), "scores.png")
    figures[0].canvas.draw()
    ax = figures[0].axes[0]
    assert list(ax.get_xticks()) == [1] and [t.get_text() for t in ax.get_xticklabels()] == ["1"]
    assert ax.get_xlim()[0] < 1 < ax.get_xlim()[1]


def test_the_curves_of_many_members_draw_without_a_legend_that_outgrows_the_figure(figures):
    """report --top 500: a legend of 500 rows could not fit, and matplotlib warned "Tight layout not applied"."""
    import warnings

    result = made_results(np.linspace(0.1, 0.9, 60))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.plot_curves(result, "curves.png", k=60)
        plots.plot_curves(result, "curves.png", k=5)
    assert figures[0].axes[0].get_legend() is None and len(figures[0].axes[0].get_lines()) == 60
    assert len(figures[1].axes[0].get_legend().get_texts()) == 5


# -- plots stay readable with exploded and diverged members -----------------------------------------
def test_one_exploded_member_does_not_flatten_the_plots(figures):
    result = made_results([0.9, 0.8, 0.85, 0.7, 0.75, 0.6, -5e25, np.nan])
    plots.plot_scores(result, "scores.png")
    plots.plot_curves(result, "curves.png", k=8)
    scores_ax, curves_ax = figures[0].axes[0], figures[1].axes[0]
    low, high = scores_ax.get_ylim()
    assert 0.5 < low < 0.6 and 0.9 < high < 1.0  # the six normal members span the axis
    low, high = curves_ax.get_ylim()
    assert 0.2 < low < 0.4 and 0.9 < high < 1.0
    labels = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert labels == ["exploded (-5e+25, over 1000x the others' scale), drawn at the edge",
                      "diverged (no score), drawn at the edge"]


def test_a_merely_bad_member_is_a_normal_point_only_an_exploded_one_is_clipped(figures):
    """The user's report: a digits member at 0.496 (status ok) was drawn at the edge as "exploded"."""
    good = [0.97, 0.965, 0.96, 0.962, 0.958, 0.968, 0.971]
    plots.plot_scores(made_results(good + [0.1]), "scores.png")  # chance level on 10 classes
    ax = figures[0].axes[0]
    (points,) = ax.collections  # one scatter: every member a normal point
    assert sorted(points.get_offsets()[:, 1]) == pytest.approx(sorted(good + [0.1]))
    assert not figures[0].legends and ax.get_ylim()[0] < 0.1 < 0.971 < ax.get_ylim()[1]
    # two members that exploded (of 8): both off the axis, which the others span; the worst named
    plots.plot_scores(made_results(good[:6] + [-5e25, -3e9]), "scores.png")
    ax = figures[1].axes[0]
    normal, beyond = ax.collections
    assert sorted(normal.get_offsets()[:, 1]) == pytest.approx(sorted(good[:6]))
    low, high = ax.get_ylim()
    assert 0.95 < low < 0.958 and 0.97 < high < 0.98
    assert list(beyond.get_offsets()[:, 1]) == [low, low]  # drawn at the edge
    # (one legend for every panel, below them: inside a panel it covered the axis's label)
    assert [t.get_text() for t in figures[1].legends[0].get_texts()] == [
        "2 exploded (worst -5e+25, over 1000x the others' scale), drawn at the edge"]
    # a lower-is-better metric: an mse 20x the others' is a point, one of 1e12 is off the top edge
    plots.plot_scores(made_results([-0.5, -0.6, -0.45, -0.55, -10.0, -1e12], metric="mse"), "scores.png")
    ax = figures[2].axes[0]
    normal, beyond = ax.collections
    assert sorted(normal.get_offsets()[:, 1]) == pytest.approx([0.45, 0.5, 0.55, 0.6, 10.0])
    assert list(beyond.get_offsets()[:, 1]) == [ax.get_ylim()[1]] and 10.0 < ax.get_ylim()[1] < 11
    assert figures[2].legends[0].get_texts()[0].get_text().startswith("exploded (1e+12, ")


def test_a_plot_of_a_run_where_every_member_failed_says_so(figures):
    result = made_results([np.nan] * 4)
    plots.plot_curves(result, "curves.png")
    (ax,) = figures[0].axes
    assert not ax.axison and ax.get_legend() is None
    assert [t.get_text() for t in ax.texts] == ["no member has a finite learning curve: all 4 diverged or never scored"]
    plots.plot_scores(result, "scores.png")
    assert [t.get_text() for t in figures[1].legends[0].get_texts()] == [
        "diverged (no score), drawn at the edge"]


def test_a_pruned_member_s_curves_end_at_its_last_trained_epoch_and_one_point_shows(figures):
    """A member halving pruned after 1 of 4 epochs: its validation curve carries its score on in
    results.curves, and was drawn over 3 epochs it never trained; its one-point training loss
    had no marker, so it was not drawn at all."""
    result = made_results([0.9, 0.8, 0.7], epochs=4, status=["ok", "pruned", "pruned"])
    result.members["epochs_trained"] = [4, 1, 2]
    for i, trained in [(1, 1), (2, 2)]:  # as the engine records them: the score carried on, no loss
        result.curves["val_score"][i, trained:] = result.curves["val_score"][i, trained - 1]
        result.curves["train_loss"][i, trained:] = np.nan
    plots.plot_curves(result, "curves.png")
    ax_score, ax_loss = figures[0].axes
    for ax in (ax_score, ax_loss):
        drawn = [int(np.isfinite(line.get_ydata()).sum()) for line in ax.get_lines()]
        assert drawn == [4, 1, 2]  # best first: up to each member's epochs_trained
        one = ax.get_lines()[1]
        assert one.get_marker() == "o" and list(one.get_markevery()) == [0]  # a single point is marked
        assert ax.get_lines()[0].get_marker() in ("None", None, "") and ax.get_lines()[2].get_marker() in ("None", None, "")


def test_with_evaluate_every_the_score_curves_are_drawn_at_the_validated_epochs_only(figures):
    """evaluate_every=2 over 5 epochs: scores are measured at epochs 2, 4 and 5, and results.curves
    carries each on; the carried copy at epoch 3 was drawn as a point, a flat step then a jump never
    seen. Now the line joins the measurements, as the Optuna export's intermediate values; a member's
    last epoch is one (pruned at 3), an interrupted member's is not; the training loss is every epoch's."""
    result = made_results([0.9, 0.8, 0.7], epochs=5, status=["ok", "pruned", "interrupted"],
                          settings={"epochs": 5, "evaluate_every": 2})
    result.members["epochs_trained"] = [5, 3, 3]
    val = result.curves["val_score"]
    val[:, 0] = np.nan  # (not validated yet)
    val[:, 2] = val[:, 1]  # carried on from epoch 2
    val[2, 2] = val[2, 1]
    plots.plot_curves(result, "curves.png")
    ax_score, ax_loss = figures[0].axes
    assert [list(line.get_xdata()) for line in ax_score.get_lines()] == [[2, 4, 5], [2, 3], [2]]
    assert list(ax_score.get_lines()[0].get_ydata()) == pytest.approx(list(val[0, [1, 3, 4]]))
    assert list(ax_score.get_lines()[2].get_markevery()) == [0]  # (the interrupted member's one point, marked)
    assert [int(np.isfinite(line.get_ydata()).sum()) for line in ax_loss.get_lines()] == [5, 3, 3]
    # evaluate_every=1 (or a run saved without it): every epoch is drawn, as before
    plots.plot_curves(made_results([0.9, 0.8], epochs=4), "curves.png")
    assert [list(line.get_xdata()) for line in figures[1].axes[0].get_lines()] == [[1, 2, 3, 4]] * 2


def test_past_ten_curves_every_member_has_its_own_colour_and_epochs_are_whole_ticks(figures):
    """k=15: matplotlib's default cycle repeats after 10, so the 11th best was drawn in the best
    one's colour; and 3 epochs drew ticks at 1.25, 1.5, ... on both panels."""
    from matplotlib.colors import to_rgba

    result = made_results(np.linspace(0.5, 0.9, 15), epochs=3)
    plots.plot_curves(result, "curves.png", k=15)
    ax_score, ax_loss = figures[0].axes
    for ax in (ax_score, ax_loss):
        colours = {to_rgba(line.get_color()) for line in ax.get_lines()}
        assert len(ax.get_lines()) == 15 and len(colours) == 15
        ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_a_momentum_panel_spans_its_range_on_its_own_scale(figures):
    """OneMinusLogUniform(0.5, 0.99): the axis was padded in momentum before its scale was set,
    reached past 1 and stretched over twelve decades, every point in its first seventh."""
    space = vt.Space(momentum=vt.OneMinusLogUniform(0.5, 0.99))
    hp = {"momentum": np.asarray([0.5, 0.9, 0.95, 0.99])}
    table = pd.DataFrame({"round": 0, "member": range(4), "momentum": hp["momentum"], "score": [0.5, 0.6, 0.7, 0.8],
                          "best_epoch": 1, "status": "ok"})
    curves = {k: np.ones((4, 1)) for k in ("val_score", "train_loss", "val_loss")}
    plots.plot_scores(Results(space, table, curves, hp, {"metric": "accuracy"}), "scores.png")
    low, high = figures[0].axes[0].get_xlim()
    assert 0.35 < low < 0.5 and 0.99 < high < 0.992  # a twentieth of the range's 1.7 decades of 1 - v either side
    assert [t.get_text() for t in figures[0].axes[0].get_xticklabels()] == ["0.5", "0.9", "0.99"]


# -- vmaptune report ---------------------------------------------------------------------------------
def test_report_of_a_file_says_it_is_a_file(tmp_path, capsys):
    run = tmp_path / "run"
    made_results([0.9, 0.8]).save(run)
    assert main(["report", str(run / "results.npz")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"vmaptune report: error: '.*results\.npz' is a file, not a run directory; give the directory "
                     rf"a run wrote: vmaptune report {re.escape(str(run))}\.", err), err
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert main(["report", str(other)]) == 2
    assert "is a file, not a run directory; give the directory a run wrote: vmaptune report RUN_DIR" in \
        capsys.readouterr().err


def test_report_of_an_interrupted_run_says_how_to_continue_it(tmp_path, capsys):
    run = str(tmp_path / "run")
    made_results([0.9, 0.8, 0.5, 0.4], status=["ok", "ok", "interrupted", "interrupted"],
                 settings={"interrupted": True, "rounds": 0}).save(run)  # (cut before its first checkpoint)
    assert main(["report", run]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"run interrupted: 2 of 4 members are partial (scores so far); continue it with the command "
                        f"that started it plus --resume (less any --overwrite): `vmaptune run <config> --out {run} "
                        f"--resume`, or "
                        f"`vmaptune demo [its flags] --out {run} --resume` for a demo; in Python, vt.tune(..., "
                        f"run_dir={run!r}, resume=True).")
    made_results([0.9, 0.8]).save(run, overwrite=True)
    assert main(["report", run]) == 0
    assert "run interrupted" not in capsys.readouterr().out


# -- final_train_loss --------------------------------------------------------------------------------
def test_last_finite():
    curves = np.array([[1.0, 2.0, np.nan], [np.nan, np.nan, np.nan], [1.0, np.inf, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(last_finite(curves), [2.0, np.nan, 3.0, 6.0])


def test_final_train_loss_is_the_last_trained_epochs_for_stopped_members_nan_for_diverged():
    space = vt.Space(learning_rate=vt.Choice([1e-3, 0.3, 1e4]))  # (sgd) stops early, trains on, diverges
    result = vt.tune(vt.MLP(hidden=1, units=8), space, vt.load_dataset("iris"), strategy=vt.GridSearch(), epochs=4,
                     batch_size=16, progress=False,
                     early_stopping=vt.EarlyStopping(patience=1, monitor="train_loss", min_delta=0.05))
    table = result.members
    assert table["status"].tolist() == ["stopped", "ok", "diverged"]
    trained = table["epochs_trained"].to_numpy()
    assert 0 < trained[0] < 4 and trained[1] == 4
    for row in (0, 1):
        assert table["final_train_loss"].iloc[row] == result.curves["train_loss"][row, trained[row] - 1]
    assert np.isnan(table["final_train_loss"].iloc[2])


def test_a_metric_of_your_own_where_lower_is_better_is_recorded_and_shown_positive():
    mae = vt.Metric("my_mae", "regression", lambda out, y: abs(out[:, 0] - y).mean(), greater_is_better=False)
    result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)),
                     vt.load_dataset("diabetes"), vt.RandomSearch(population=2), epochs=1, metric=mae, progress=False)
    assert result.settings["greater_is_better"] is False and result.metric_sign == -1.0
    assert (result.members["score"] < 0).all()  # stored higher-is-better
    shown = re.search(r"best validation my_mae: (\S+)", result.summary()).group(1)
    assert float(shown) == pytest.approx(-result.best_score, rel=1e-3) and float(shown) > 0
    assert f"best my_mae={-result.best_score:.4g}" in repr(result)


def test_a_plot_s_path_is_the_file_written(tmp_path):
    """A path without an extension (or with a dot in its name) gets .png, and is what comes back."""
    result = made_results([0.9, 0.8])
    for given, written in (("curves", "curves.png"), ("curves_lr0.01", "curves_lr0.01.png"), ("c.PDF", "c.PDF")):
        path = plots.plot_curves(result, str(tmp_path / given))
        assert path == str(tmp_path / written) and (tmp_path / written).is_file()
    assert plots.plot_scores(result, str(tmp_path / "scores")) == str(tmp_path / "scores.png")
    for k in (1.5, -1, 0, None, True):  # (k=0 drew "every member diverged")
        with pytest.raises(ValueError, match=rf"plot_curves\(k={re.escape(repr(k))}\): k is how many of the best"):
            plots.plot_curves(result, str(tmp_path / "x.png"), k=k)


def test_no_test_score_when_every_member_failed_says_why_not_to_refit():
    failed = made_results([np.nan, np.nan], settings={"refit": 1})
    with pytest.raises(ValueError, match=r"no test score: no member scored, so none was refit. all 2 members failed"):
        failed.test_score
    with pytest.raises(ValueError, match=r"run vt.tune\(..., refit=1\)"):
        made_results([0.5, np.nan]).test_score


def test_the_plots_module_is_an_attribute_after_import_vmaptune_as_the_readme_writes_it():
    code = ("import sys, vmaptune; assert 'vmaptune.plots' not in sys.modules; "
            "print(vmaptune.plots.plot_curves.__name__, vmaptune.optuna_study.to_optuna.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["plot_curves", "to_optuna"]
