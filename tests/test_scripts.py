"""Every example in scripts/ runs as a user would run it (python scripts/X.py --quick), in its own
process, within a time limit (a hung script fails instead of hanging the suite)."""

import os
import pathlib
import subprocess
import sys

import pytest

SCRIPTS = sorted(p.name for p in (pathlib.Path(__file__).parent.parent / "scripts").glob("*.py"))


def test_the_examples_are_there():
    assert {"cnn_digits.py", "batchnorm_vs_not.py", "regression_custom_loss.py", "nnx_mlp.py", "sequence_model.py",
            "seed004_keras_regressor.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_quickly(script):
    root = pathlib.Path(__file__).parent.parent
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # the script's own device setup
    done = subprocess.run([sys.executable, str(root / "scripts" / script), "--quick"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "best" in done.stdout, done.stdout[-2000:]
