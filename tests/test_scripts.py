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


def test_the_readme_lists_every_example_among_its_runnable_examples():
    """seed004_search_cv.py was named further down only, not where the examples to run are listed."""
    readme = (ROOT / "README.md").read_text()
    listed = readme[readme.index("Runnable examples"):]
    listed = listed[:listed.index("\n\n")]
    assert [s for s in SCRIPTS if f"scripts/{s}" not in listed] == []


def _keywords(source: str, name: str) -> dict:
    """The literal keyword arguments of the first call to vt.<name> in `source` (others, such as the
    scripts' `5 if args.quick else 100`, left out)."""
    import ast

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == f"vt.{name}":
            said = {}
            for keyword in node.keywords:
                try:
                    said[keyword.arg] = ast.literal_eval(keyword.value)
                except ValueError:
                    pass
            return said
    raise AssertionError(f"no call to vt.{name}")


def test_the_readme_search_cv_snippet_trains_as_its_script():
    """The README's Hands-On ML PopulationSearchCV snippet, said to be scripts/seed004_search_cv.py's
    search, trained with scikit-learn's momentum 0.9 and batches of 200 where the script (Keras')
    trains with 0 and 32."""
    readme = (ROOT / "README.md").read_text()
    snippet = next(block for block in readme.split("```python")[1:] if "vt.PopulationSearchCV(vt.MLPRegressor(" in block)
    snippet = snippet[:snippet.index("```")]
    script = (ROOT / "scripts" / "seed004_search_cv.py").read_text()
    for name in ("MLPRegressor", "PopulationSearchCV"):
        ours, its = _keywords(snippet, name), _keywords(script, name)
        assert {k: v for k, v in ours.items() if k not in ("epochs", "n_iter")} == its, name
    assert _keywords(snippet, "MLPRegressor")["momentum"] == 0.0
