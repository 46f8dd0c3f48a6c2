import os
import re

import pytest

import vmaptune as vt
from vmaptune.cli import main
from vmaptune.run_dir import Claim


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
    assert re.search(r"vmaptune demo: error: run_dir='.*demo' is in use: a vmaptune run is writing there now \(pid "
                     rf"{os.getpid()} on ", capsys.readouterr().err)


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


@pytest.mark.parametrize(
    "text, match",
    [
        ('dataset = "iris"\n', "needs a `space` entry"),
        ('dataset = "iris"\nwhatever = 1\n[space]\nlearning_rate = 0.1\n', r"unknown keys \['whatever'\]"),
        ('dataset = "iris"\n[strategy]\nname = "Magic"\n[space]\nlearning_rate = {type = "LogUniform", low = 1e-3, high = 1e-1}\n',
         "strategy name 'Magic' is unknown"),
        ('dataset = "iris"\n[strategy]\nname = "OptunaSampler"\nsampler = "TPE"\n[space]\nlearning_rate = {type = "Fixed", value = 0.1}\n',
         r"strategy sampler = 'TPE': give the name of an optuna.samplers class, one of \[.*'TPESampler'"),
    ],
)
def test_bad_config_exits_2_with_a_message(tmp_path, capsys, text, match):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert main(["run", str(config), "--no-progress", "--out", str(tmp_path / "o")]) == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize("argv, match", [
    (["demo", "--population", "0"], r"argument --population: 0 is below 1; give an integer >= 1"),
    (["demo", "--epochs", "two"], r"argument --epochs: 'two' is not an integer; give one >= 1"),
    (["report", "runs/x", "--top", "-3"], r"argument --top: -3 is below 1"),
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
