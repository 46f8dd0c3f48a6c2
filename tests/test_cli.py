import os
import re
import shutil
import signal
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

import vmaptune as vt
from vmaptune.cli import CSV_KEYS, NPZ_KEYS, build, load_config, main
from vmaptune.run_dir import Claim


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A run directory of 2 members trained 1 epoch on iris (tests copy it to change it)."""
    out = str(tmp_path_factory.mktemp("small") / "run")
    vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
            vt.RandomSearch(population=2), epochs=1, batch_size=16, progress=False, run_dir=out)
    return out


def _cannot_write(run_dir, how):
    """Makes the plots' files in run_dir unwritable: `read-only` as a read-only directory is to a user
    (chmod; root writes there all the same, so that case needs a user), `blocked` by directories
    in their place (an OSError for every user, root too)."""
    if how == "read-only":
        os.chmod(run_dir, 0o555)
        try:
            open(os.path.join(run_dir, "probe"), "w").close()
        except PermissionError:
            return
        os.remove(os.path.join(run_dir, "probe"))
        os.chmod(run_dir, 0o755)
        pytest.skip("chmod does not stop this user (root) writing; the `blocked` case runs the same path")
    for name in ("curves.png", "scores.png"):
        os.makedirs(os.path.join(run_dir, name))


@pytest.mark.parametrize("how", ["read-only", "blocked"])
def test_report_on_a_run_directory_it_cannot_write_prints_the_table_and_says_how_to_get_the_plots(
        small_run, tmp_path, capsys, how):
    import shutil

    run_dir = str(tmp_path / "run")
    shutil.copytree(small_run, run_dir)
    files = lambda: sorted(n for n in os.listdir(run_dir) if os.path.isfile(os.path.join(run_dir, n)))
    before = files()
    _cannot_write(run_dir, how)
    try:
        assert main(["report", run_dir]) == 0
    finally:
        os.chmod(run_dir, 0o755)
    out, err = capsys.readouterr()
    assert "top 2 of 2" in out and "best validation accuracy" in out and "plots:" not in out
    assert re.fullmatch(r"vmaptune report: warning: plots not written: \[Errno \d+\] [^\n]+: '"
                        + re.escape(os.path.join(run_dir, "curves.png")) + r"'; write them elsewhere with --plots "
                        r"DIR\.\n", err), err
    assert files() == before  # (nothing written, nothing half-written)


def test_report_writes_its_plots_where_plots_says(small_run, tmp_path, capsys):
    plots = tmp_path / "a" / "plots"  # made, parents too
    assert main(["report", small_run, "--top", "1", "--plots", str(plots)]) == 0
    assert capsys.readouterr().out.endswith(f"\nplots: {plots / 'curves.png'}, {plots / 'scores.png'}\n")
    assert os.path.getsize(plots / "curves.png") > 1000 and os.path.getsize(plots / "scores.png") > 1000
    assert not {"curves.png", "scores.png"} & set(os.listdir(small_run))  # the run directory as it was
    (tmp_path / "file").write_text("")
    for where in (tmp_path / "file", tmp_path / "file" / "sub"):  # a place that cannot be written: an error
        assert main(["report", small_run, "--plots", str(where)]) == 2
        assert re.fullmatch(rf"vmaptune report: error: --plots '{re.escape(str(where))}': the plots cannot be "
                            r"written there \(.+\); give a directory you can write to \(it is made if needed\)\.\n",
                            capsys.readouterr().err)


def test_report_of_a_run_that_did_not_end_says_so_and_of_a_finished_one_does_not(small_run, tmp_path, capsys):
    """A run killed after a round (or still running) has its rounds saved; its report looked like a
    finished run's. It now says the run did not end and how to continue it."""
    run_dir = str(tmp_path / "killed")

    def stop(results):  # (the process ends after round 0 was saved, as a kill would end it)
        raise RuntimeError("ended here")
    with pytest.raises(RuntimeError, match="ended here"):
        vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
                vt.RandomSearch(population=2, rounds=3), epochs=1, run_dir=run_dir, on_round=stop, progress=False)
    assert main(["report", run_dir, "--plots", str(tmp_path / "p")]) == 0
    assert capsys.readouterr().out.startswith(f"run unfinished: 1 round(s) saved, and the run did not end: it was "
                                              f"killed, or is still running. Continue a killed run with the command "
                                              f"that started it plus --resume (less any --overwrite): `vmaptune run "
                                              f"<config> --out {run_dir} "
                                              f"--resume`")
    assert main(["report", small_run, "--plots", str(tmp_path / "q")]) == 0
    assert "unfinished" not in capsys.readouterr().out


def test_demo_then_report(tmp_path, capsys):
    out = str(tmp_path / "demo")
    assert main(["demo", "--population", "8", "--epochs", "1", "--out", out, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "best validation accuracy" in text and "top 8 of 8" in text
    assert "test accuracy of the best setting, refit on train + validation" in text
    assert re.search(r"time: import [\d.]+ s, data [\d.]+ s, tracing [\d.]+ s, compiling [\d.]+ s", text)
    # 8 members over the devices: no member block smaller than a device's share, so none is named
    assert re.search(r"8 members trained in [\d.]+ s \(split over \d device\(s\)\)", text), text
    assert len(vt.load_results(out)) == 8
    assert main(["report", out, "--top", "3"]) == 0
    assert os.path.getsize(os.path.join(out, "curves.png")) > 1000
    assert os.path.getsize(os.path.join(out, "scores.png")) > 1000


def test_a_run_directory_in_use_exits_2_with_a_message(tmp_path, capsys):
    out = str(tmp_path / "demo")
    os.makedirs(out)
    claim = Claim(out)  # (as another run writing there holds it)
    try:
        assert main(["demo", "--quick", "--out", out, "--no-progress"]) == 2
    finally:
        claim.release()
    assert re.search(r"vmaptune demo: error: run_dir='.*demo' \(--out\) is in use: a vmaptune run is writing there "
                     rf"now \(pid {os.getpid()} on ", capsys.readouterr().err)


def test_an_overwrite_refused_by_a_run_in_progress_leaves_its_optuna_study(tmp_path, capsys):
    """`--overwrite --optuna DB` on a directory another run is writing is refused there, and the
    study that run keeps up to date is still whole: the study is replaced only once the directory
    is held (it was deleted first, and the live run's study lost its earlier rounds)."""
    import optuna

    out, db = str(tmp_path / "demo"), f"sqlite:///{tmp_path}/runs.db"
    live = optuna.create_study(study_name="demo", storage=db, direction="maximize")
    live.enqueue_trial({"x": 1.0})
    live.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    os.makedirs(out)
    claim = Claim(out)  # (the run writing there, and its study)
    try:
        assert main(["demo", "--quick", "--out", out, "--no-progress", "--overwrite", "--optuna", db]) == 2
    finally:
        claim.release()
    assert "is in use: a vmaptune run is writing there now" in capsys.readouterr().err
    assert len(optuna.load_study(study_name="demo", storage=db).trials) == 2
    assert main(["demo", "--population", "4", "--epochs", "1", "--out", out, "--no-progress", "--overwrite",
                 "--optuna", db]) == 0  # (once free: replaced by this run's members)
    trials = optuna.load_study(study_name="demo", storage=db).trials
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)


SPACE = '[space]\nlearning_rate = {type = "LogUniform", low = 1e-3, high = 1e-1}\n'


def small_config(settings: str, strategy: str = 'name = "RandomSearch"\npopulation = 4\n') -> str:
    """A config of a small iris run (an MLP of one layer of 8 units, batches of 16, SPACE):
    `settings`, its top-level lines (epochs = 1\\n...), and the [strategy] table's lines."""
    return f'dataset = "iris"\nbatch_size = 16\n{settings}[model]\nhidden = 1\nunits = 8\n[strategy]\n{strategy}{SPACE}'


def test_run_from_toml_config(tmp_path, capsys):
    config = tmp_path / "iris.toml"
    config.write_text(
        'dataset = "iris"\nepochs = 2\nbatch_size = 16\ncv = 2\n'
        '[early_stopping]\npatience = 1\n'
        '[model]\nhidden = 1\nunits = 8\n'
        '[strategy]\nname = "RandomSearch"\npopulation = 4\n'
        '[space]\nlearning_rate = {type = "LogUniform", low = 1e-3, high = 1e-1}\n'
        'activation = {type = "Choice", options = ["relu", "tanh"]}\n'
    )
    out = str(tmp_path / "run")
    assert main(["run", str(config), "--out", out, "--no-progress"]) == 0
    result = vt.load_results(out)
    assert len(result) == 4 and set(result.members["activation"]) <= {"relu", "tanh"}
    assert result.settings["cv"] == 2 and "patience=1" in result.settings["early_stopping"]


def test_a_finished_run_resumed_with_a_larger_refit_says_it_refit(tmp_path, capsys):
    """It trains no round but refits one more setting: 'none trained now' alone said nothing of it."""
    config = tmp_path / "iris.toml"
    config.write_text(small_config("epochs = 1\nrefit = 1\n"))
    out = str(tmp_path / "run")
    assert main(["run", str(config), "--out", out, "--no-progress"]) == 0
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 0
    assert f"the run in {out} had finished: 4 members, none trained now\n" in capsys.readouterr().out
    config.write_text(small_config("epochs = 1\nrefit = 2\n"))
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 0
    assert (f"the run in {out} had finished: 4 members, no round trained now; 1 setting(s) refit on train + "
            f"validation\n") in capsys.readouterr().out
    assert len(vt.load_results(out).models) == 2


def test_a_finished_run_resumed_says_it_refit_a_model_file_it_lost(tmp_path, capsys):
    """A refit model that no longer reads is refit again by a resume, and the summary says so."""
    config = tmp_path / "iris.toml"
    config.write_text(small_config("epochs = 1\nrefit = 1\n"))
    out = str(tmp_path / "run")
    assert main(["run", str(config), "--out", out, "--no-progress"]) == 0
    shutil.rmtree(os.path.join(out, "models", f"row_{next(iter(vt.load_results(out).models))}"))
    capsys.readouterr()
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 0
    said = capsys.readouterr()
    assert "cannot be read" in said.err and (f"the run in {out} had finished: 4 members, no round trained now; 1 "
                                              f"setting(s) refit on train + validation\n") in said.out


def test_a_time_budget_ends_a_run_that_resume_continues(tmp_path, capsys):
    """--time-budget (or a config's time_budget): a planned stop, exit 0; --resume goes on."""
    config = tmp_path / "iris.toml"
    config.write_text(small_config("epochs = 3\n", 'name = "RandomSearch"\npopulation = 4\nrounds = 2\n'))
    out = str(tmp_path / "run")
    assert main(["run", str(config), "--out", out, "--no-progress", "--time-budget", "0.000001"]) == 0
    assert "the time budget is spent; 4 members kept in" in capsys.readouterr().err
    assert vt.load_results(out).members["status"].tolist() == ["interrupted"] * 4  # the first chunk trained
    assert main(["report", out]) == 0  # (it said "run interrupted" of a planned stop, then "after 0 round(s)")
    assert capsys.readouterr().out.startswith("run stopped by its time budget during round 0 (the table's round "
                                              "column): 4 of 4 members are partial (scores so far); continue it with")
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 0
    assert vt.load_results(out).members["status"].tolist() == ["ok"] * 8
    config.write_text(small_config("epochs = 3\n", 'name = "RandomSearch"\npopulation = 4\nrounds = 3\n'))
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume", "--time-budget", "0.000001"]) == 0
    capsys.readouterr()
    assert main(["report", out]) == 0  # (a later round cut: that round, the two before it complete)
    assert capsys.readouterr().out.startswith("run stopped by its time budget during round 2 (the table's round "
                                              "column): 4 of 12 members are partial")


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_a_ctrl_c_before_any_member_trained_says_what_the_run_directory_holds(tmp_path, capsys, monkeypatch):
    """A --resume's or --overwrite's Ctrl-C while its data loaded said "nothing to keep" of a run
    directory that still held the run. It is now said from the disk: kept as it was and how to go
    on, or (--overwrite) removed already, or cut short as it was removed; one as the run's Optuna
    study took its last scores is said after the run ended."""
    from vmaptune import cli

    config = tmp_path / "iris.toml"
    config.write_text(small_config("epochs = 1\n"))
    out = str(tmp_path / "run")
    assert main(["run", str(config), "--out", out, "--no-progress"]) == 0
    saved = sorted(os.listdir(out))
    real_build = cli.build

    def build_then_ctrl_c(config):
        real_build(config)
        raise KeyboardInterrupt  # (Ctrl-C as the data finished loading)

    def ctrl_c(*args):  # (reading the config or importing vmaptune: before the run directory is looked at)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_config", ctrl_c)
    capsys.readouterr()
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 130
    assert capsys.readouterr().err == ("vmaptune run: interrupted before any member trained; the run directory is as "
                                       "it was.\n")
    monkeypatch.setattr(cli, "load_config", load_config)
    monkeypatch.setattr(cli, "build", build_then_ctrl_c)
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 130
    assert capsys.readouterr().err == (f"vmaptune run: interrupted before any member trained; the run in {out} is kept "
                                       f"as it was: run the same command with --resume to continue it.\n")
    assert main(["run", str(config), "--out", out, "--no-progress", "--overwrite"]) == 130
    assert capsys.readouterr().err == (
        f"vmaptune run: interrupted before any member trained; the run in {out} is kept as it was (--overwrite "
        f"removes it as the new run starts): run the same command again to replace it, or with --resume in place of "
        f"--overwrite to continue it.\n")
    assert sorted(os.listdir(out)) == saved and len(vt.load_results(out)) == 4
    monkeypatch.setattr(cli, "build", real_build)
    real_rmtree = shutil.rmtree

    def second_ctrl_c(path, *args, **kwargs):  # (at once, as --overwrite removes the old run's checkpoints)
        if os.path.basename(path) == "checkpoints":
            raise KeyboardInterrupt
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", second_ctrl_c)
    assert main(["run", str(config), "--out", out, "--no-progress", "--overwrite"]) == 130
    assert capsys.readouterr().err == (
        f"vmaptune run: interrupted before any member trained, as --overwrite removed the run in {out} (left there: "
        f"checkpoints); run the same command again to replace it.\n")
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    tune = sys.modules["vmaptune.tune"]  # (vt.tune is the function)
    real_line_up = tune.line_up

    def ctrl_c_while_tracing(*args, **kwargs):  # (held by vt.tune: it stops at the first chunk's start)
        signal.raise_signal(signal.SIGINT)
        return real_line_up(*args, **kwargs)

    monkeypatch.setattr(tune, "line_up", ctrl_c_while_tracing)
    assert main(["run", str(config), "--out", out, "--no-progress", "--overwrite"]) == 130
    assert capsys.readouterr().err.endswith(f"vmaptune run: interrupted before any member trained; nothing to keep "
                                            f"(--overwrite had removed the run in {out}).\n")
    assert os.listdir(out) == [".vmaptune-lock"]
    monkeypatch.setattr(tune, "line_up", real_line_up)
    calls = []

    def ctrl_c_in_the_last_export(self, results):  # (the command's own, after vt.tune returned)
        calls.append(results)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(vt.OptunaExport, "__call__", ctrl_c_in_the_last_export)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["run", str(config), "--out", out, "--no-progress", "--optuna", storage]) == 130
    assert capsys.readouterr().err == (
        f"vmaptune run: interrupted after the run ended; it is saved in {out}, and `vmaptune export {out} --optuna "
        f"{storage} --study-name run --append` brings its Optuna study up to date.\n")
    assert len(vt.load_results(out)) == 4 and vt.load_results(out).settings["finished"]


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_a_ctrl_c_while_the_summary_prints_says_the_run_is_saved(tmp_path, capsys, monkeypatch):
    """vt.tune had returned, the run saved and finished, but a Ctrl-C as its summary printed reached
    main: "interrupted before any member trained; nothing to keep" (with --overwrite: "the run
    directory is as it was"). It now says the run finished, or stopped, and is saved."""
    from vmaptune import cli

    def ctrl_c(self, *args, **kwargs):  # (a user's Ctrl-C as the table scrolls by)
        signal.raise_signal(signal.SIGINT)

    config = tmp_path / "iris.toml"
    config.write_text(small_config("epochs = 1\n"))
    out = str(tmp_path / "my run")
    monkeypatch.setattr(vt.Results, "summary", ctrl_c)
    for flags in ([], ["--overwrite"]):
        assert main(["run", str(config), "--out", out, "--no-progress", *flags]) == 130
        assert capsys.readouterr().err.endswith(
            f"\nvmaptune run: interrupted while its summary printed; the run finished and is saved in {out} "
            f"(`vmaptune report '{out}'` shows it).\n")
        assert vt.load_results(out).settings["finished"] and len(vt.load_results(out)) == 4

    def ctrl_c_as_the_stop_is_said(*args, **kwargs):
        if "the time budget is spent" in str(args[0]):
            signal.raise_signal(signal.SIGINT)
        print(*args, **kwargs)

    monkeypatch.setattr(cli, "print", ctrl_c_as_the_stop_is_said, raising=False)
    config.write_text(small_config("epochs = 3\n"))
    assert main(["run", str(config), "--out", out, "--no-progress", "--overwrite", "--time-budget", "0.000001"]) == 130
    assert capsys.readouterr().err.endswith(
        f"\nvmaptune run: interrupted while its summary printed; the run stopped and is saved in {out} (run the "
        f"same command with --resume in place of --overwrite to continue it).\n")
    assert vt.load_results(out).members["status"].tolist() == ["interrupted"] * 4


def test_a_resume_counts_the_members_it_trained_and_its_hints_paste_into_a_shell(tmp_path, capsys):
    """A resume that searches on says how many members it trained itself, and how many it read back
    (it said all of them trained); "stepped N at a time" is said of a round's members, not of every
    round's; commands printed for the user quote a path with a space; after --overwrite the hint is
    --resume in place of it (argparse refuses the two together)."""
    config = tmp_path / "iris.toml"
    rounds = 'name = "RandomSearch"\npopulation = 4\nrounds = {}\n'.format
    config.write_text(small_config("epochs = 2\nmember_block = 4\n", rounds(2)))
    out = str(tmp_path / "my run")
    assert main(["run", str(config), "--out", out, "--no-progress", "--overwrite", "--time-budget", "0.000001"]) == 0
    assert "run the same command with --resume in place of --overwrite to continue" in capsys.readouterr().err
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 0
    said = capsys.readouterr().out
    assert "8 members trained in" in said and "stepped" not in said  # (4 to a round: one block)
    assert f"see the plots with: vmaptune report '{out}'" in said
    config.write_text(small_config("epochs = 2\nmember_block = 4\n", rounds(3)))
    assert main(["run", str(config), "--out", out, "--no-progress", "--resume"]) == 0
    said = capsys.readouterr().out
    assert "\n4 members trained in" in said and ", 8 more read back from its checkpoint)" in said
    assert main(["report", out]) == 0
    assert len(vt.load_results(out)) == 12


@pytest.mark.parametrize("extra, population, said", [
    ("devices = 1\ncv = 2\nmember_block = 2\n", 4, "(split over 1 device(s), stepped 2 at a time)"),  # (8 networks)
    ("devices = 1\nmember_block = 3\n", 4, "stepped 2 at a time"),  # (the engine steps a divisor of the 4)
    ("devices = 1\nmember_block = 4\n", 4, None),
    ("devices = 2\nmember_block = 4\n", 9, "(split over 1 device(s), stepped 3 at a time)"),  # (2 does not divide 9)
])
def test_the_step_said_is_the_engines_over_a_rounds_networks(tmp_path, capsys, extra, population, said):
    config = tmp_path / "iris.toml"
    config.write_text(small_config(f"epochs = 1\n{extra}", f'name = "RandomSearch"\npopulation = {population}\n'))
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert (said in out) if said else ("stepped" not in out)


@pytest.mark.parametrize(
    "text, match",
    [
        ('dataset = "iris"\n', "needs a `space` entry"),
        ('dataset = "iris"\nwhatever = 1\n[space]\nlearning_rate = 0.1\n', r"unknown keys \['whatever'\]"),
        ('dataset = "iris"\n[strategy]\nname = "Magic"\n[space]\nlearning_rate = {type = "LogUniform", low = 1e-3, high = 1e-1}\n',
         "strategy name 'Magic' is unknown"),
        ('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = "TPE"\n[space]\nlearning_rate = {type = "Fixed", value = 0.1}\n',
         r"strategy sampler = 'TPE': give the name of an optuna.samplers class, one of \[.*'TPESampler'"),
        ('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = "TPESamplr"\n[space]\n'
         'learning_rate = {type = "Fixed", value = 0.1}\n',
         r"strategy sampler = 'TPESamplr': Did you mean 'TPESampler'\? give the name of an optuna.samplers class"),
    ],
)
def test_bad_config_exits_2_with_a_message(tmp_path, capsys, text, match):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["run", str(config), "--no-progress", "--out", str(tmp_path / "o")]) == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize("argv, match", [
    (["demo", "--population", "0"], r"argument --population: 0 is below 1; give an integer >= 1"),
    (["demo", "--epochs", "two"], r"argument --epochs: 'two' is not an integer; give an integer >= 1"),
    (["report", "runs/x", "--top", "-3"], r"argument --top: -3 is below 1"),
    (["demo", "--seed", "-1"], r"argument --seed: '-1': give an integer from 0 to 2\*\*63 - 1, e.g. --seed 0"),
    (["demo", "--time-budget", "2x"], r"argument --time-budget: '2x': give a positive number of seconds \(3600\)"),
    (["run", "x.toml", "--process-id", "-1"], r"argument --process-id: -1 is below 0; give this process's id, 0 .. N-1"),
])
def test_counts_below_one_are_refused_not_replaced_by_the_default(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and re.search(match, capsys.readouterr().err)


def test_an_optuna_sampler_by_name_from_a_config(tmp_path):
    config = tmp_path / "optuna.toml"
    config.write_text('dataset = "iris"\nepochs = 1\nbatch_size = 16\n[model]\nhidden = 1\nunits = 8\n'
                      '[strategy]\nname = "OptunaSampler"\nsampler = "TPESampler"\npopulation = 4\nrounds = 2\n'
                      '[space]\nlearning_rate = {type = "LogUniform", low = 1e-3, high = 1e-1}\n')
    runs = [str(tmp_path / name) for name in ("a", "b")]
    for out in runs:
        assert main(["run", str(config), "--out", out, "--no-progress"]) == 0
    first, second = (vt.load_results(out).members for out in runs)
    assert len(first) == 8 and first["learning_rate"].tolist() == second["learning_rate"].tolist()  # seeded by the run




def built(tmp_path, text, name="c.toml"):
    """build() of a config file (data, strategy, ... made; nothing trained or compiled)."""
    config = tmp_path / name
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return build(load_config(str(config)))


def write_csv(path):
    """A small classification CSV with a text feature column."""
    rows = [f"{i % 7},{'ab'[i % 2]},{i % 3}" for i in range(60)]
    path.write_text("x,colour,label\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("text, match", [
    # the dataset table's keys are checked
    ('dataset = {csv = "d.csv", target = "label", task = "classification", delimiter = ";"}\n',
     r"dataset table \(a csv file\): unknown keys \['delimiter'\]\. The keys are \['csv', 'target', 'task', "
     r"'one_hot', 'weight', 'val_fraction'"),
    ('dataset = {csv = "d.csv", target = "label", task = "classification", one_hoot = true}\n',
     r"unknown keys \['one_hoot'\]\. Did you mean 'one_hoot' -> 'one_hot'\?"),
    ('dataset = {npz = "d.npz", task = "classification", one_hot = true}\n',
     r"dataset table \(an npz file\): unknown keys \['one_hot'\]\. The keys are \['npz', 'task', 'X', 'y'"),
    # a strategy is a name or a table with a name
    ('dataset = "iris"\nstrategy = 3\n', r"strategy = 3: give a strategy's name \(strategy = \"RandomSearch\"\) or a "
     r"table \[strategy\] with name = \"...\" and its settings; the names are \[.*'RandomSearch'"),
    ('dataset = "iris"\n[strategy]\npopulation = 4\n',
     r"\[strategy\] = \{'population': 4\} has no name: add name = \"...\", one of \[.*'BayesOpt'.*'RandomSearch'"),
    ('dataset = "iris"\nstrategy = "Magic"\n', r"strategy name 'Magic' is unknown\. Choose from \["),
    ('dataset = "iris"\nstrategy = "RandomSerch"\n', r"strategy name 'RandomSerch' is unknown\. Did you mean "
                                                     r"'RandomSearch'\? Choose from \["),
    # another tuner's key is not the near miss among ours ('mode' is not 'model')
    ('dataset = "iris"\nmode = "min"\n', r"unknown keys \['mode'\]\. Scores are higher-is-better; the metric sets the "
     r"direction \(metric = \"log_loss\" or \"mse\" is minimised\)\. The keys are"),
    # an Optuna sampler is a name or a table of its name and settings
    ('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = {name = "TPESampler", n_startup_trial = 4}\n',
     r"strategy sampler TPESampler with \{'n_startup_trial': 4\}: .*unexpected keyword argument 'n_startup_trial'\. "
     r"Its settings are \[.*'n_startup_trials'"),
    ('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = {name = "TPESampler", seed = 4}\n',
     r"leave seed out; the sampler is seeded by the run's seed"),
    ('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = "GridSampler"\n',
     r"sampler = 'GridSampler': give the name of an optuna.samplers class, one of \[.*\], .*"
     r"\(for a grid: \[strategy\] name = \"GridSearch\"\)"),
    ('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = {n_startup_trials = 4}\n',
     r"sampler = \{'n_startup_trials': 4\}: give the name of an optuna.samplers class"),
    # a splitter that refuses its settings (scikit-learn's ValueError was a traceback and exit 1)
    ('dataset = "iris"\ncv = {name = "KFold", n_splits = 1}\n',
     r"^vmaptune run: error: cv = \{'name': 'KFold', 'n_splits': 1\}: [^\n]*n_splits=1\. KFold's settings are "
     r"\['n_splits', 'shuffle', 'random_state'\]\.\n$"),
    ('dataset = "iris"\ncv = {name = "KFold", n_splits = 3, random_state = 1}\n',
     r"^vmaptune run: error: cv = \{'name': 'KFold', 'n_splits': 3, 'random_state': 1\}: Setting a random_state has no "
     r"effect since shuffle is False[^\n]*\. KFold's settings are \['n_splits', 'shuffle', 'random_state'\]\.\n$"),
])
def test_bad_config_tables_exit_2_with_a_message(tmp_path, capsys, text, match):
    config = tmp_path / "bad.toml"
    config.write_text(text + SPACE)
    write_csv(tmp_path / "d.csv")
    np.savez(tmp_path / "d.npz", X=np.ones((40, 3)), y=np.arange(40) % 2)
    assert main(["run", str(config), "--no-progress", "--out", str(tmp_path / "o")]) == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.filterwarnings("ignore:.*is experimental")
def test_the_optuna_samplers_offered_can_be_built_from_a_config(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = "Nope"\n' + SPACE)
    assert main(["run", str(config), "--no-progress", "--out", str(tmp_path / "o")]) == 2
    names = eval(re.search(r"one of (\[.*?\])", capsys.readouterr().err).group(1))
    assert {"TPESampler", "CmaEsSampler", "RandomSampler", "QMCSampler"} <= set(names)
    assert not [n for n in names if n.startswith("Base") or n in ("PartialFixedSampler", "GridSampler",
                                                                  "BruteForceSampler")]
    for name in names:  # each of them, by its name alone
        strategy = built(tmp_path, f'dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = "{name}"\n'
                         + SPACE)[3]
        assert type(strategy.sampler(0)).__name__ == name


def test_an_optuna_sampler_with_settings_and_a_strategy_by_name(tmp_path):
    strategy = built(tmp_path, 'dataset = "iris"\n[strategy]\nname = "OptunaSampler"\n'
                     'sampler = {name = "TPESampler", n_startup_trials = 4}\n' + SPACE)[3]
    sampler = strategy.sampler(7)
    assert type(sampler).__name__ == "TPESampler" and sampler._n_startup_trials == 4
    assert "optuna.samplers.TPESampler(n_startup_trials=4)" in repr(strategy)  # (a resume compares it)
    strategy = built(tmp_path, 'dataset = "iris"\nstrategy = "Evolution"\n' + SPACE)[3]
    assert isinstance(strategy, vt.Evolution)


def test_dataset_table_options_reach_from_csv(tmp_path):
    write_csv(tmp_path / "d.csv")
    data = built(tmp_path, 'dataset = {csv = "d.csv", target = "label", task = "classification", one_hot = true, '
                 'val_fraction = 0.5, name = "mine"}\n' + SPACE)[2]
    assert data.name == "mine" and list(data.feature_names) == ["x", "colour_a", "colour_b"]
    assert len(data.y_val) == 30  # half of the 60 rows (the default is a fifth)
    np.savez(tmp_path / "d.npz", features=np.ones((40, 3)), labels=np.arange(40) % 2)
    data = built(tmp_path, 'dataset = {npz = "d.npz", task = "classification", X = "features", y = "labels"}\n'
                 + SPACE)[2]
    assert data.n_features == 3


def test_a_config_replays_a_pbt_run_s_schedule_from_its_run_directory(tmp_path, monkeypatch):
    """PBTReplay was listed among the strategy names, but a config could not build one: its
    schedule is a PBT run's. `results = "runs/pbt"` names that run."""
    monkeypatch.chdir(tmp_path)
    head = 'dataset = "iris"\nepochs = 4\nbatch_size = 32\n'
    (tmp_path / "pbt.toml").write_text(head + '[strategy]\nname = "PBT"\npopulation = 4\ninterval = 2\n' + SPACE)
    assert main(["run", "pbt.toml", "--no-progress"]) == 0
    pbt = vt.load_results("runs/pbt")
    replay = built(tmp_path, head + '[strategy]\nname = "PBTReplay"\nresults = "runs/pbt"\npopulation = 2\n' + SPACE)[3]
    assert replay == vt.PBTReplay.from_results(pbt, population=2)  # the best row's schedule
    (tmp_path / "replay.toml").write_text(head + '[strategy]\nname = "PBTReplay"\nresults = "runs/pbt"\n'
                                          'member = 1\npopulation = 2\n' + SPACE)
    assert main(["run", "replay.toml", "--no-progress"]) == 0
    assert len(vt.load_results("runs/replay")) == 2
    with pytest.raises(ValueError, match=r'name = "PBTReplay" replays a PBT run\'s schedule: add results = "runs/pbt"'):
        built(tmp_path, head + 'strategy = "PBTReplay"\n' + SPACE)
    for member in ("4", "-1", "true", "1.5", '"1"'):  # (the run has rows 0 .. 3)
        with pytest.raises(ValueError, match=r"\[strategy\] member = .*: give a row of the run in 'runs/pbt', an "
                                             r"integer in 0 .. 3, or leave member out for its best row"):
            built(tmp_path, head + f'[strategy]\nname = "PBTReplay"\nresults = "runs/pbt"\nmember = {member}\n' + SPACE)


def test_a_pbt_replays_results_path_that_holds_no_run_is_said_with_its_key_and_where_it_was_looked_for(
        tmp_path, monkeypatch, capsys):
    """It said "run directory 'runs/pbtt' does not exist." of [strategy] results = "runs/pbtt": no
    key, and not that the path is the current directory's (a dataset's file is the config's folder's)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "replay.toml").write_text('dataset = "iris"\n[strategy]\nname = "PBTReplay"\nresults = "runs/pbtt"\n'
                                          + SPACE)
    assert main(["run", "replay.toml", "--no-progress"]) == 2
    assert capsys.readouterr().err == (
        f"vmaptune run: error: [strategy] results = 'runs/pbtt' (relative to the current directory, {tmp_path}): no "
        f"such directory; give the --out directory of a PBT run, relative to the directory you run the command in, "
        f"or an absolute path.\n")
    with pytest.raises(FileNotFoundError, match=r"\[strategy\] results = 'replay.toml' \(relative to the current "
                                                r"directory, .*\): is a file; give the --out directory of a PBT run"):
        built(tmp_path, 'dataset = "iris"\n[strategy]\nname = "PBTReplay"\nresults = "replay.toml"\n' + SPACE)
    empty = str(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=rf"^\[strategy\] results = '{re.escape(empty)}': {re.escape(empty)} is "
                                                r"not a vmaptune run directory \(no results.npz in it\); .* Give the "
                                                r"--out directory of a PBT run\.$"):
        built(tmp_path, f'dataset = "iris"\n[strategy]\nname = "PBTReplay"\nresults = "{empty}"\n' + SPACE)
    assert not os.path.exists("runs")  # (refused before any run directory was made)


def test_a_config_takes_a_scikit_learn_splitter_by_name_for_a_series_carved_in_order(tmp_path, monkeypatch):
    """A time series from the command line: the data set carved in order and TimeSeriesSplit's folds
    (an integer cv deals shuffled folds, and a config could name no splitter)."""
    from sklearn.model_selection import TimeSeriesSplit

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=80), "y": np.sin(np.arange(80) / 5)})
    frame.to_csv(tmp_path / "series.csv", index=False)
    head = ('dataset = {csv = "series.csv", target = "y", task = "regression", shuffle = false}\n'
            'epochs = 2\nbatch_size = 8\nstrategy = {name = "RandomSearch", population = 2}\n')
    kwargs = built(tmp_path, head + 'cv = {name = "TimeSeriesSplit", n_splits = 3}\n' + SPACE)[4]
    assert repr(kwargs["cv"]) == repr(TimeSeriesSplit(3))
    assert isinstance(built(tmp_path, head + 'cv = "KFold"\n' + SPACE)[4]["cv"], KFold)
    (tmp_path / "series.toml").write_text(head + 'cv = {name = "TimeSeriesSplit", n_splits = 3}\n' + SPACE)
    assert main(["run", "series.toml", "--no-progress"]) == 0
    assert np.asarray(vt.load_results("runs/series").curves["split_scores"]).shape == (2, 3)
    with pytest.raises(ValueError, match=r"GroupKFold.*needs the rows' groups or folds, which a config cannot give"):
        built(tmp_path, head + 'cv = {name = "GroupKFold"}\n' + SPACE)
    with pytest.raises(ValueError, match=r"KFold's settings are \['n_splits', 'shuffle', 'random_state'\]"):
        built(tmp_path, head + 'cv = {name = "KFold", folds = 3}\n' + SPACE)


def test_a_built_in_dataset_takes_its_split_settings_in_a_table(tmp_path):
    data = built(tmp_path, 'dataset = {name = "iris", val_fraction = 0.5, seed = 3}\n' + SPACE)[2]
    same = vt.load_dataset("iris", val_fraction=0.5, seed=3)
    assert data.name == "iris" and np.array_equal(data.y_val, same.y_val) and np.array_equal(data.X_train, same.X_train)
    assert len(data.y_val) > len(vt.load_dataset("iris", seed=3).y_val)  # (the setting reached the split)
    with pytest.raises(ValueError, match=r"dataset table \(a built-in data set\): unknown keys \['val_frac'\]\. "
                                         r"Did you mean 'val_frac' -> 'val_fraction'\?"):
        built(tmp_path, 'dataset = {name = "iris", val_frac = 0.5}\n' + SPACE)


def test_cli_dataset_keys_are_from_csv_and_from_npz_keywords():
    import inspect

    def keywords(*functions):
        return {p for f in functions for p in inspect.signature(f).parameters}

    assert set(CSV_KEYS) - {"csv"} <= keywords(vt.Dataset.from_csv, vt.Dataset.from_arrays)
    assert set(NPZ_KEYS) - {"npz"} <= keywords(vt.Dataset.from_npz, vt.Dataset.from_arrays)


def test_data_paths_are_found_next_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    write_csv(tmp_path / "configs" / "d.csv")
    monkeypatch.chdir(tmp_path)
    text = 'dataset = {csv = "d.csv", target = "label", task = "classification", one_hot = true}\n' + SPACE
    (tmp_path / "configs" / "c.toml").write_text(text)
    assert load_config("configs/c.toml")["dataset"]["csv"] == str(tmp_path / "configs" / "d.csv")
    write_csv(tmp_path / "here.csv")  # not beside the config: from the current directory
    (tmp_path / "configs" / "c.toml").write_text(text.replace("d.csv", "here.csv"))
    assert load_config("configs/c.toml")["dataset"]["csv"] == str(tmp_path / "here.csv")
    (tmp_path / "configs" / "c.toml").write_text(text.replace("d.csv", "gone.csv"))
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"configs/c.toml: dataset csv = 'gone.csv' does not exist; looked at ['{tmp_path}/configs/gone.csv', "
            f"'{tmp_path}/gone.csv']. Give a path relative to the config file's folder, or an absolute one.")):
        load_config("configs/c.toml")


def test_a_tilde_in_a_path_is_the_home_directory_in_a_config_and_on_the_command_line(tmp_path, monkeypatch, capsys):
    """A config is no shell, and the shell leaves --out=~/x (and a quoted '~/x') as it is: out =
    "~/runs/x" made a folder named ~ in the current one, and csv = "~/d.csv" was refused as missing."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    write_csv(home / "d.csv")
    (work / "c.toml").write_text('dataset = {csv = "~/d.csv", target = "label", task = "classification", one_hot = '
                                 'true}\nout = "~/runs/x"\nepochs = 1\nbatch_size = 16\n[model]\nhidden = 1\n'
                                 'units = 8\n[strategy]\nname = "RandomSearch"\npopulation = 2\n' + SPACE)
    assert main(["run", "~/../work/c.toml", "--no-progress"]) == 0
    assert f"run directory: {home}/runs/x\n" in capsys.readouterr().out
    assert main(["run", "c.toml", "--no-progress", "--out=~/runs/y"]) == 0
    assert len(vt.load_results(str(home / "runs" / "x"))) == len(vt.load_results(str(home / "runs" / "y"))) == 2
    assert main(["report", "~/runs/x", "--plots", "~/plots"]) == 0
    assert os.path.isfile(home / "plots" / "curves.png")
    assert main(["export", "~/runs/x", "--optuna", f"sqlite:///{tmp_path / 'studies.db'}"]) == 0
    with pytest.raises(ValueError, match="no hp_schedule column"):  # (read: a random search's run, not a PBT's)
        built(work, 'dataset = "iris"\n[strategy]\nname = "PBTReplay"\nresults = "~/runs/x"\n' + SPACE)
    assert os.listdir(work) == ["c.toml"]  # (no folder named ~)


def test_a_run_where_every_member_failed_exits_1_saying_it_once_with_one_line_warnings(tmp_path, capsys):
    config = tmp_path / "diverge.toml"
    config.write_text('dataset = "iris"\nepochs = 1\nbatch_size = 16\n[model]\nhidden = 1\nunits = 8\n'
                      '[strategy]\nname = "RandomSearch"\npopulation = 2\n'
                      '[space]\nlearning_rate = {type = "Fixed", value = 1e30}\n')
    show = warnings.showwarning
    # --resume on a directory with no run: vt.tune warns (and starts a new run)
    assert main(["run", str(config), "--out", str(tmp_path / "o"), "--no-progress", "--resume"]) == 1
    assert warnings.showwarning is show  # (the command's own way of showing warnings ends with it)
    out, err = capsys.readouterr()
    assert (out + err).count("members failed") == 1 and "all 2 members failed" in out
    assert err.splitlines()[-1] == "vmaptune run: the run finished, but no member succeeded (exit code 1)."
    assert re.search(r"^vmaptune run: warning: resume=True \(--resume\), but run_dir='.*/o' \(--out\) holds no run "
                     r"yet: starting a new run there", err, re.M), err  # (the flags named too)
    assert "UserWarning" not in err and ".py:" not in err


def test_optuna_logs_no_info_lines_in_the_cli(tmp_path, capfd):
    import optuna

    config = tmp_path / "optuna.toml"
    config.write_text('dataset = "iris"\nepochs = 1\nbatch_size = 16\n[model]\nhidden = 1\nunits = 8\n'
                      '[strategy]\nname = "OptunaSampler"\nsampler = "RandomSampler"\npopulation = 2\n' + SPACE)
    before = optuna.logging.get_verbosity()
    assert main(["run", str(config), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "A new study created" not in capfd.readouterr().err
    assert optuna.logging.get_verbosity() == before  # the library's logging is left as it was


def test_a_run_keeps_its_optuna_study_up_to_date_and_export_writes_one(tmp_path, capsys, small_run):
    import optuna

    out, db = str(tmp_path / "demo"), f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["demo", "--population", "4", "--epochs", "1", "--out", out, "--no-progress", "--optuna", db]) == 0
    text = capsys.readouterr()
    assert f"and in Optuna's dashboard: optuna-dashboard {db} (study 'demo')" in text.out
    assert "A new study created" not in text.out + text.err  # (Optuna's INFO logs stay out of the output)
    live = optuna.load_study(study_name="demo", storage=db)
    assert [t.user_attrs["member"] for t in live.trials] == [0, 1, 2, 3]
    assert main(["export", out, "--optuna", db, "--study-name", "again"]) == 0
    assert re.search(rf"4 trials in study 'again' of {re.escape(db)} \(4 complete\); see them with: "
                     rf"optuna-dashboard {re.escape(db)}", capsys.readouterr().out)
    assert main(["export", out, "--optuna", db]) == 2  # the study 'demo' is there already: the flags say the fix
    err = capsys.readouterr().err
    assert err == (f"vmaptune export: error: study 'demo' is already in '{db}': pass --overwrite to replace it, "
                   f"--append to add this run's new members to it, or --study-name NAME for another study.\n")
    assert main(["export", out, "--optuna", db, "--append"]) == 0  # nothing new: the same 4 trials
    assert len(optuna.load_study(study_name="demo", storage=db).trials) == 4
    assert main(["export", str(tmp_path / "nothing"), "--optuna", db]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    # another run into this study: refused, with the flags to use
    assert main(["export", small_run, "--optuna", db, "--study-name", "demo", "--append"]) == 2
    assert re.search(r"^vmaptune export: error: study 'demo' in '.*' was exported from another run \(model: .*\): use "
                     r"--append only with the run that made the study, or pass --overwrite to replace it\.$",
                     capsys.readouterr().err)
    # the demo refits its best after the last round: its test score reached the live study (its
    # attributes: Optuna cannot change a finished trial's)
    result = vt.load_results(out)
    assert optuna.load_study(study_name="demo", storage=db).user_attrs["test_scores"] == {
        str(result.best_index): pytest.approx(result.test_score)}


def test_the_cli_s_optuna_study_and_run_directory_mistakes(tmp_path, capsys, monkeypatch):
    """A bad storage is said before anything trains; a run started over with --overwrite replaces
    its study; `export .` names the study after the folder; a run directory that holds a run is
    refused in the flags' words."""
    import optuna

    out, db = str(tmp_path / "demo"), f"sqlite:///{tmp_path / 'runs.db'}"
    demo = ["demo", "--population", "2", "--epochs", "1", "--out", out, "--no-progress"]
    for storage in ("notaurl", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"):
        assert main([*demo, "--optuna", storage]) == 2
        err = capsys.readouterr().err
        assert f"storage={storage!r} cannot be opened as an Optuna storage" in err and "members" not in err
    assert not os.path.exists(out)  # nothing trained
    assert main([*demo, "--optuna", db]) == 0
    capsys.readouterr()
    assert main(demo) == 2
    said = capsys.readouterr()
    assert said.out == ""  # (no "vmaptune demo: random search, ..." banner for a run it then refuses)
    assert said.err.endswith(f"vmaptune demo: error: {out!r} already holds a run: add --resume to "
                                            f"continue it, --overwrite to replace it, or --out DIR for another run "
                                            f"directory.\n")
    assert main(["demo", "--population", "2", "--epochs", "2", "--out", out, "--no-progress", "--optuna", db,
                 "--overwrite"]) == 0
    study = optuna.load_study(study_name="demo", storage=db)  # the new run's, not the first one's
    assert study.user_attrs["vmaptune"]["epochs"] == 2 and max(len(t.intermediate_values) for t in study.trials) == 2
    capsys.readouterr()
    assert main(["demo", "--population", "2", "--epochs", "2", "--out", out, "--no-progress", "--resume"]) == 0
    assert f"the run in {out} had finished: 2 members, none trained now" in capsys.readouterr().out
    assert main(["export", out, "--optuna", "notaurl"]) == 2
    assert "storage='notaurl' cannot be opened as an Optuna storage" in capsys.readouterr().err
    monkeypatch.chdir(out)
    assert main(["export", ".", "--optuna", f"sqlite:///{tmp_path / 'other.db'}"]) == 0
    assert "study 'demo'" in capsys.readouterr().out.splitlines()[-1]


def test_a_run_whose_study_holds_another_run_is_refused_before_it_trains(tmp_path, capsys):
    """runs/a/exp and runs/b/exp with one --optuna storage: the second run's study 'exp' held the
    first run's trials, so every round warned that it was not updated (advising --append, which
    `run` does not have), and the run still ended 0, pointing to study 'exp'."""
    import optuna

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    a, b = str(tmp_path / "a" / "exp"), str(tmp_path / "b" / "exp")
    demo = ["demo", "--population", "2", "--epochs", "1", "--no-progress", "--optuna", db]
    assert main([*demo, "--out", a]) == 0
    capsys.readouterr()
    fix = ("pass --study-name NAME for a study of this run's own, or another --out (--overwrite replaces that study "
           "and starts the run anew).\n")
    assert main([*demo, "--out", b, "--seed", "1"]) == 2
    assert capsys.readouterr().err == (f"vmaptune demo: error: study 'exp' in '{db}' already holds 2 trials of "
                                       f"another run (a run starting exports to a study of its own): {fix}")
    assert not os.path.exists(b)  # refused before anything trained
    assert main([*demo, "--out", b, "--seed", "1", "--study-name", "exp-b"]) == 0
    assert f"optuna-dashboard {db} (study 'exp-b')" in capsys.readouterr().out
    assert [optuna.load_study(study_name=n, storage=db).user_attrs["vmaptune"]["seed"] for n in ("exp", "exp-b")] == [
        0, 1]
    # resumed without --study-name: the run's rounds so far are not study 'exp''s
    assert main([*demo, "--out", b, "--seed", "1", "--resume"]) == 2
    assert capsys.readouterr().err == (f"vmaptune demo: error: study 'exp' in '{db}' was exported from another run "
                                       f"(seed: the study's 0, this run's 1): {fix}")
    assert main([*demo, "--out", b, "--seed", "1", "--resume", "--study-name", "exp-b"]) == 0
    capsys.readouterr()
    assert main(["demo", "--out", b, "--seed", "1", "--resume", "--study-name", "exp-b"]) == 2
    said = capsys.readouterr()
    assert "--study-name 'exp-b' names the study of --optuna: add --optuna STORAGE" in said.err
    assert "vmaptune demo: random search" not in said.out  # (refused before the banner announced a run)
    # a process other than 0 does not check: it stops with process 0's refusal, before anything trains
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vt.distributed, "is_primary", lambda: False)
        patch.setattr(vt.distributed, "any_process", lambda flag: True)  # (process 0 refused)
        assert main([*demo, "--out", str(tmp_path / "d" / "exp"), "--seed", "1"]) == 2
    assert "process 0 refused the run: the Optuna study 'exp'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "d")
    # --overwrite replaces the study when the run starts, once it holds its run directory (vt.tune calls
    # the export's before_search then; deleted before, a run refused there lost the live run's study):
    # stopped before its first export, the run resumes into no study, not into the other run's
    from vmaptune.cli import _check_study
    _check_study(db, "exp", b, resume=False, overwrite=True)
    assert "exp" in optuna.get_all_study_names(storage=db)
    vt.OptunaExport(db, "exp", overwrite=True).before_search(None, None)
    assert "exp" not in optuna.get_all_study_names(storage=db)
    _check_study(db, "exp", b, resume=True, overwrite=False)  # nothing there to refuse
    # an export that failed as the run went (the database gone): no dashboard line for a study not written
    c = str(tmp_path / "c")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vt.optuna_study, "to_optuna", lambda *a, **k: (_ for _ in ()).throw(ValueError("it is gone.")))
        assert main([*demo, "--out", c]) == 0
    text = capsys.readouterr()
    assert "optuna-dashboard" not in text.out and text.err.endswith(
        f"the Optuna study 'c' in {db} is not up to date (it is gone); once that is fixed: vmaptune export {c} "
        f"--optuna {db} --study-name c --append\n")


def test_python_dash_m_vmaptune_is_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "vmaptune", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "usage: vmaptune" in done.stdout and "demo" in done.stdout, done.stderr[-2000:]


def test_bohbs_model_is_a_table_of_its_bayesopt_settings_in_a_config(tmp_path):
    """model = {acquisition = "ucb"} was refused with a Python fix (model=vt.BayesOpt(...)) no config can write."""
    config = tmp_path / "bohb.toml"
    config.write_text(small_config("", 'name = "BOHB"\nmax_epochs = 3\nmodel = {acquisition = "ucb", xi = 0.5}\n'))
    strategy = build(load_config(str(config)))[3]
    assert strategy.model == vt.BayesOpt(acquisition="ucb", xi=0.5)


def test_every_argument_of_every_command_says_what_it_is(capsys):
    """`config`, `run_dir` and --no-progress showed no help; export's --study-name read STUDY_NAME."""
    for command in ("demo", "run", "report", "export"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        said = capsys.readouterr().out
        listed = said.split("positional arguments:")[-1]
        for line in listed.splitlines()[1:]:
            if line.startswith("  ") and not line.startswith("   ") and line.strip() not in ("options:",):
                assert len(line.split(None, 1)) == 2 or said.split(line, 1)[1].startswith("\n     "), (command, line)
        assert "STUDY_NAME" not in said


def test_an_error_while_running_keeps_its_traceback_and_a_full_disk_says_what_was_kept(tmp_path, capsys,
                                                                                        monkeypatch):
    """vmaptune's own checks are one line (exit 2); an error inside the run (here a stand-in for JAX's)
    keeps its traceback, and a write that fails says what was kept and how to go on (exit 1)."""
    from vmaptune import population

    config = tmp_path / "c.toml"
    config.write_text(small_config("epochs = 1\n", 'name = "RandomSearch"\npopulation = 2\n'))

    from vmaptune import checkpoint

    def run_failing(owner, name: str, error: Exception, out: str) -> str:
        """`vmaptune run` with owner.name raising `error` -> its stderr; exit code 1 asserted."""
        def inside_jax(*args, **kwargs):  # (the name the traceback shows)
            raise error

        with monkeypatch.context() as patch:
            patch.setattr(owner, name, inside_jax)
            assert main(["run", str(config), "--out", str(tmp_path / out), "--no-progress"]) == 1
        return capsys.readouterr().err

    err = run_failing(population.PopulationRun, "train", ValueError("device_put's second argument must be a Device"),
                      "a")
    assert "Traceback (most recent call last)" in err and "in inside_jax" in err
    assert err.rstrip().endswith("ValueError: device_put's second argument must be a Device")
    err = run_failing(vt.Results, "save", OSError(28, "No space left on device"), "b")
    assert "vmaptune run: error: [Errno 28] No space left on device\n" in err and "Traceback" not in err
    assert f"vmaptune: writing {tmp_path / 'b'} failed. What was saved before is whole" in err
    # (orbax says a failed write as a ValueError; vmaptune raises OSError)
    err = run_failing(checkpoint.Checkpoints, "save",
                      ValueError("RESOURCE_EXHAUSTED: No space left on device [os_error_code='28']"), "d")
    assert "error: [Errno 28] RESOURCE_EXHAUSTED" in err and "What was saved before is whole" in err
    csv = tmp_path / "bad.csv"
    csv.write_bytes(b"a,b,label\n1,2,0\n1,2,3,4,5\n")
    bad_data = tmp_path / "bad_data.toml"
    bad_data.write_text(config.read_text().replace('dataset = "iris"',
                                                   f'dataset = {{csv = "{csv}", target = "label", task = "classification"}}'))
    assert main(["run", str(bad_data), "--out", str(tmp_path / "e"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "cannot be read as a CSV file with a header row (ParserError" in err and "Traceback" not in err
    config.write_text(config.read_text().replace('dataset = "iris"', 'dataset = "irsi"'))
    assert main(["run", str(config), "--out", str(tmp_path / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err  # (vmaptune's own check stays one line)
    assert err.startswith("vmaptune run: error: ") and "Traceback" not in err and "irsi" in err


def test_orbaxs_failed_write_is_an_os_error_and_a_second_failure_does_not_hide_the_first(tmp_path, monkeypatch):
    import importlib

    from vmaptune import checkpoint, population

    tune = importlib.import_module("vmaptune.tune")  # (vt.tune the function hides the module)

    with pytest.raises(OSError) as raised:
        with tune._writing("run"):
            raise ValueError("RESOURCE_EXHAUSTED: Error writing local file \"run/checkpoints/2/manifest.ocdbt\": "
                             "No space left on device [os_error_code='28']")
    assert raised.value.errno == 28 and "What was saved before is whole" in raised.value.__notes__[0]
    assert isinstance(raised.value.__cause__, ValueError)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    def cannot_commit(self):
        raise ValueError("RESOURCE_EXHAUSTED: ... [os_error_code='28']")

    monkeypatch.setattr(population.PopulationRun, "train", full_disk)
    monkeypatch.setattr(checkpoint.Checkpoints, "close", cannot_commit)
    with pytest.raises(OSError, match="No space left on device") as raised:  # the first error, not the close's
        vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)), vt.load_dataset("iris"),
                vt.RandomSearch(population=2), epochs=1, batch_size=16, progress=False, run_dir=str(tmp_path / "r"))
    assert any("the checkpoint being written then failed too (OSError" in note for note in raised.value.__notes__)


@pytest.mark.parametrize("argv, said", [
    (["demo", "--quick", "--resume", "--overwrite"], "argument --overwrite: not allowed with argument --resume"),
    (["demo", "--quick", "--optuna", "sqlite:///x.db", "--study-name", ""],
     "argument --study-name: give the study a name, or leave --study-name out"),
    (["export", "runs/x", "--optuna", "sqlite:///x.db", "--study-name", " "],
     "argument --study-name: give the study a name"),
    (["run", "x.toml", "--out", ""], "argument --out: '': give the run directory, or leave --out out for its default "
                                     "(an empty --out is often an unset shell variable: --out \"$RUN_DIR\")"),
    (["run", "x.toml", "--out", " "], "argument --out: ' ': give the run directory"),
])
def test_contradicting_or_empty_flags_exit_2_naming_the_flags(capsys, argv, said):
    """In the command line's words (--resume --overwrite got the Python API's 'resume=True and
    overwrite=True'; an empty --study-name fell back to the default name unsaid, and an empty --out,
    an unset shell variable, to the default run directory)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and said in capsys.readouterr().err


def test_a_config_takes_every_vt_tune_setting_evaluate_every_included(tmp_path):
    """evaluate_every (vt.tune's, which the README's Optuna export relies on) was refused as unknown."""
    path = tmp_path / "c.toml"
    path.write_text('dataset = "iris"\nevaluate_every = 2\n[space]\n'
                    'learning_rate = {type = "LogUniform", low = 0.001, high = 0.1}\n')
    *_, kwargs = build(load_config(str(path)))
    assert kwargs["evaluate_every"] == 2


def test_a_top_level_batch_size_beside_a_searched_one_is_said_to_be_unused(tmp_path):
    """The space's batch_size is the one trained (as in vt.tune); the config's own went unsaid, and
    the run's settings record it."""
    path = tmp_path / "c.toml"
    path.write_text('dataset = "iris"\nbatch_size = 16\n' + SPACE + 'batch_size = {type = "Choice", options = [4, 8]}\n')
    with pytest.warns(UserWarning, match=re.escape(
            "batch_size = 16 is not used: [space] batch_size is searched and gives each member its own (a top-level "
            "batch_size is the batch of a space without one, as vt.tune's batch_size= is); remove one of the two from "
            "a new run's config (a run started with both resumes with both: its checkpoints record batch_size = 16).")):
        build(load_config(str(path)))
    for text in ('dataset = "iris"\nbatch_size = 16\n' + SPACE,  # (each alone: nothing to say)
                 'dataset = "iris"\n' + SPACE + 'batch_size = {type = "Choice", options = [4, 8]}\n'):
        path.write_text(text)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            build(load_config(str(path)))
