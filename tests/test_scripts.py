"""Every example in scripts/ runs with --quick and prints its best setting. One runs as a user
would run it (python scripts/X.py --quick, its own process, within a time limit); the others run
in this process (the same code path, without paying for a new interpreter and JAX each time)."""

import pathlib
import runpy
import subprocess
import sys

import pytest
from helpers import child_environment

ROOT = pathlib.Path(__file__).parent.parent
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py"))
#: The one run as its own process: the cheapest.
IN_ITS_OWN_PROCESS = "nnx_mlp.py"


def test_the_examples_are_there():
    assert {"cnn_digits.py", "batchnorm_vs_not.py", "regression_custom_loss.py", "nnx_mlp.py", "sequence_model.py",
            "seed004_keras_regressor.py", "class_weights_label_smoothing.py", "conditional_space.py", IN_ITS_OWN_PROCESS} <= set(SCRIPTS)


def test_an_example_runs_from_the_command_line():
    # the script's own device setup (no forced device count); conftest's compile settings kept
    env = child_environment()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / IN_ITS_OWN_PROCESS), "--quick"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best" in done.stdout, done.stdout[-2000:]


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s != IN_ITS_OWN_PROCESS])
def test_example_runs_quickly(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [script, "--quick"])
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "scripts" / script), run_name="__main__")
    out = capsys.readouterr().out
    assert "best" in out, out[-2000:]
