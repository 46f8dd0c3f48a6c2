"""Never lose work: run directories checked up front, exact and atomic saves, resume refused for
another run, Ctrl-C keeps the round in progress, all-failed searches said loudly, memory planning."""

import dataclasses
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import chex
import jax.numpy as jnp
import optax
import numpy as np
import pandas as pd
import pytest

import vmaptune as vt
from vmaptune import atomic, costs, engine, memory, population
from vmaptune import run_dir as run_dirs
from vmaptune.checkpoint import data_fingerprint
from vmaptune.program import one_member

sys.path.insert(0, os.path.dirname(__file__))
import resume_child  # noqa: E402

SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1), momentum=vt.OneMinusLogUniform(0.5, 0.95))
MODEL = vt.MLP(hidden=1, units=8)
SMALL = dict(epochs=3, batch_size=16, seed=3, progress=False)


@pytest.fixture(scope="module")
def data():
    return resume_child.data()


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    """A finished 2-round search with its run directory (results and checkpoints)."""
    run_dir = str(tmp_path_factory.mktemp("finished") / "run")
    result = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2), run_dir=run_dir, **SMALL)
    return result, run_dir


# -- run_dir checked before anything compiles ---------------------------------------------------------
def _no_compile(call):
    before = dict(engine.TRACE_COUNTS)
    call()
    assert engine.TRACE_COUNTS == before


def test_run_dir_problems_are_errors_before_anything_compiles(data, tmp_path, finished_run):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    tune = lambda **kw: vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), **{**SMALL, **kw})  # noqa: E731
    cases = [
        (dict(run_dir=str(a_file)), ValueError, r"run_dir='.*a_file' \(--out\) is a file; give a directory path"),
        (dict(run_dir=str(a_file / "below")), ValueError,
         r"run_dir='.*below' \(--out\) cannot be written.*choose a directory"),
        (dict(run_dir=finished_run[1]), FileExistsError,
         r"already holds a run\. Pass resume=True \(--resume\) .* overwrite=True \(--overwrite\) .* or choose "
         r"another run_dir"),
        (dict(run_dir=str(tmp_path / "x"), resume=True, overwrite=True), ValueError, "contradict each other"),
        (dict(run_dir=3), TypeError, r"run_dir=3: give a directory path"),
        (dict(max_memory="lots"), ValueError, r"max_memory='lots': give a positive number of bytes.*'2GB'"),
    ]
    for kwargs, error, match in cases:
        def call():
            with pytest.raises(error, match=match):
                tune(**kwargs)
        _no_compile(call)


def test_a_run_refused_before_it_writes_leaves_no_folder_it_made_behind(data, tmp_path):
    """A bad metric is refused after run_dir was made and locked: runs/x held only the lock (and a
    config's every mistake left one). Folders that were there stay, and so does their lock file."""
    with pytest.raises(ValueError, match="metric='acc' is unknown"):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), metric="acc", run_dir=tmp_path / "runs" / "x",
                **SMALL)
    assert os.listdir(tmp_path) == []
    (tmp_path / "theirs").mkdir()
    with pytest.raises(ValueError, match="metric='acc' is unknown"):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), metric="acc", run_dir=tmp_path / "theirs" / "y",
                **SMALL)
    assert os.listdir(tmp_path) == ["theirs"] and os.listdir(tmp_path / "theirs") == []
    with pytest.raises(ValueError, match="metric='acc' is unknown"):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), metric="acc", run_dir=tmp_path / "theirs", **SMALL)
    assert os.listdir(tmp_path / "theirs") == [".vmaptune-lock"]
    with warnings.catch_warnings():  # (refused while run_dir is prepared: its warning made an error, as -W error does)
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="holds no run yet"):
            vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), run_dir=tmp_path / "new" / "z", resume=True,
                    **SMALL)
    assert sorted(os.listdir(tmp_path)) == ["theirs"]


def test_resume_with_other_inputs_is_refused_naming_what_differs(data, finished_run):
    _, run_dir = finished_run
    other_data = vt.Dataset.from_arrays(np.asarray(data.X_train)[:60] + 1.0, np.asarray(data.y_train)[:60] % 3,
                                        task="classification")
    cases = [
        (dict(space=vt.Space(learning_rate=vt.LogUniform(1e-4, 3e-1), momentum=SPACE["momentum"])),
         r'space.learning_rate: saved \{"high": 0.3, "low": 0.001, "type": "LogUniform"\}\n.*now   \{"high": 0.3, "low": 0.0001'),
        (dict(data=other_data), r"data: saved .*\n.*now"),
        (dict(strategy=vt.RandomSearch(population=5, rounds=2)), r"strategy: saved .*\n.*now"),
        (dict(epochs=4), r"settings.epochs: saved 3\n\s+now   4\nResume"),  # the one setting that differs, not all
    ]
    for change, component in cases:
        args = {"space": SPACE, "data": data, "strategy": vt.RandomSearch(population=4, rounds=2), **SMALL, **change}
        with pytest.raises(ValueError, match=rf"cannot resume the run in .*different\n  {component}"):
            vt.tune(MODEL, args.pop("space"), args.pop("data"), args.pop("strategy"), run_dir=run_dir, resume=True,
                    **args)


def test_the_same_rows_under_another_dataset_name_resume_with_a_note(data, finished_run, tmp_path):
    """from_csv names a dataset by its file: the same csv copied as train_v1.csv was refused on resume,
    both sha256 values shown equal."""
    result, finished = finished_run
    run_dir = str(tmp_path / "run")
    shutil.copytree(finished, run_dir)
    renamed = dataclasses.replace(data, name="train_v1.csv")
    with pytest.warns(UserWarning, match=r"its data was named '.*', now 'train_v1.csv'; the rows are the same \(their "
                                         r"sha256 matches\), so the run resumes"):
        resumed = vt.tune(MODEL, SPACE, renamed, vt.RandomSearch(population=4, rounds=2), run_dir=run_dir, resume=True,
                          **SMALL)
    pd.testing.assert_frame_equal(resumed.members, result.members)


def test_resuming_a_finished_run_returns_it_and_overwrite_starts_again(data, finished_run, tmp_path):
    result, run_dir = finished_run
    time = result.settings["time"]  # where the call's time went (vmaptune/startup.py)
    assert time["total_seconds"] > 0 and min(time.values()) >= 0 and time["other_seconds"] <= time["total_seconds"]
    assert vt.load_results(run_dir).settings["time"] == time
    # what it was trained on: each split's rows and a digest of the arrays, which any change alters
    assert vt.load_results(run_dir).settings["data"] == result.settings["data"] == data_fingerprint(data)
    changed = dataclasses.replace(data, X_test=np.asarray(data.X_test).copy())
    changed.X_test[0, 0] += 1e-3
    assert data_fingerprint(changed) != data_fingerprint(data) and f"{len(data.y_train)} train" in data_fingerprint(data)
    again = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2), run_dir=run_dir, resume=True, **SMALL)
    pd.testing.assert_frame_equal(again.members, result.members)
    copy = str(tmp_path / "copy")
    result.save(copy)
    fresh = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=1), run_dir=copy, overwrite=True, **SMALL)
    assert len(vt.load_results(copy)) == len(fresh) == 4


def test_a_run_directory_in_use_is_refused_and_freed_when_its_writer_is_killed(data, finished_run, tmp_path):
    """Two runs writing one directory would overwrite (with overwrite=True: delete) each other's
    checkpoints; the second is refused before anything compiles, and a killed writer leaves no
    stale lock behind."""
    run_dir = str(tmp_path / "run")
    finished_run[0].save(run_dir)
    shutil.copytree(os.path.join(finished_run[1], "checkpoints"), os.path.join(run_dir, "checkpoints"))
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from vmaptune.run_dir import Claim; "
                               f"claim = Claim({run_dir!r}); print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # (the child exits on its own if this test dies)
        for flags in (dict(resume=True), dict(overwrite=True)):
            with pytest.raises(vt.RunDirInUseError, match=rf"run_dir='.*run' \(--out\) is in use: a vmaptune run "
                                                          rf"is writing there now \(pid {holder.pid} on .*, since "
                                                          rf".*\)\..* choose another run_dir"):
                _no_compile(lambda: vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2),
                                            run_dir=run_dir, **flags, **SMALL))
            assert os.path.isdir(os.path.join(run_dir, "checkpoints"))  # overwrite removed nothing
    finally:
        holder.kill()
        holder.communicate(timeout=60)
    again = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2), run_dir=run_dir, resume=True, **SMALL)
    pd.testing.assert_frame_equal(again.members, finished_run[0].members)
    with pytest.raises(vt.RunDirInUseError, match="is in use"):  # a claim is one per run, in one process too
        held = run_dirs.Claim(run_dir)
        run_dirs.Claim(run_dir)
    held.release()
    run_dirs.Claim(run_dir).release()  # (the earlier tune released its claim, and so did `held`)
    os.makedirs(tmp_path / "starting")
    starting = run_dirs.Claim(str(tmp_path / "starting"))  # a run started there, before its first round's table
    with warnings.catch_warnings(record=True) as said, pytest.raises(vt.RunDirInUseError, match="is in use"):
        warnings.simplefilter("always")
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), run_dir=str(tmp_path / "starting"), resume=True,
                **SMALL)
    assert not [w for w in said if "holds no run yet" in str(w.message)]  # (it was told "starting a new run there")
    starting.release()


def test_a_run_directory_deleted_while_its_run_goes_on_is_claimed_again_as_it_is_made_again(tmp_path):
    """rm -rf of the run directory mid-run: the run makes it again with its next write (each goes
    through keep_claim), and takes its lock again there, so a second run on that path is refused
    (it got in, and both wrote checkpoints and results into one directory)."""
    run_dir = str(tmp_path / "run")
    _, claim = run_dirs.prepare(run_dir, resume=False, overwrite=False)
    try:
        shutil.rmtree(run_dir)  # (the user's rm -rf, the run still going)
        run_dirs.keep_claim(os.path.join(run_dir, "checkpoints"))  # (the run's next write, into a folder of it)
        assert os.path.isdir(run_dir)
        with pytest.raises(vt.RunDirInUseError, match="is in use"):
            run_dirs.Claim(run_dir)  # (another run starting there now)
        run_dirs.keep_claim(run_dir)  # (its lock in place: nothing to take again)
    finally:
        claim.release()
    run_dirs.Claim(run_dir).release()  # (released when the run ended)
    assert not run_dirs.Claim.held


def test_a_claim_holds_the_directory_it_was_given_and_one_dropped_unreleased_frees_it(tmp_path, monkeypatch):
    """A relative run_dir, then os.chdir: the claim still checks (and keeps) the directory it took,
    not one of that name under the new working directory. A claim an error dropped before its
    release (a warning made an error in prepare) frees the lock: the next run there is not refused
    by this same process."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("a/run")
    os.makedirs("b/run")
    monkeypatch.chdir(tmp_path / "a")
    claim = run_dirs.Claim("run")
    monkeypatch.chdir(tmp_path / "b")
    run_dirs.keep_claim(str(tmp_path / "a" / "run" / "checkpoints"))  # (its next write)
    assert not os.path.exists(tmp_path / "b" / "run" / run_dirs.LOCK_FILE)  # (no stray lock where it now is)
    with pytest.raises(vt.RunDirInUseError, match="is in use"):
        run_dirs.Claim(str(tmp_path / "a" / "run"))
    claim.release()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ("holds no run yet: starting a new run there" raised in prepare)
        with pytest.raises(UserWarning, match="holds no run yet"):
            run_dirs.prepare(str(tmp_path / "new"), resume=True, overwrite=False)
    assert not os.path.exists(tmp_path / "new")  # (the folder it made, holding only its lock, removed)
    os.makedirs(tmp_path / "new")
    run_dirs.Claim(str(tmp_path / "new")).release()  # (and its lock freed)
    assert not run_dirs.Claim.held


def test_resuming_a_finished_run_reads_its_refit_back_instead_of_training_it_again(data, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4))
    first = vt.tune(*args, run_dir=run_dir, refit=2, **SMALL)
    calls = []
    original = vt.search.Search.refit
    monkeypatch.setattr(vt.search.Search, "refit", lambda self, results: calls.append(1) or original(self, results))
    again = vt.tune(*args, run_dir=run_dir, resume=True, refit=2, **SMALL)
    assert calls == []  # nothing trained: not the rounds, not the refit
    pd.testing.assert_frame_equal(again.members, first.members)  # test scores included
    assert sorted(again.models) == sorted(first.models) and len(first.models) == 2
    for row in first.models:
        chex.assert_trees_all_equal(again.model(row).variables, first.model(row).variables)
    assert sorted(vt.load_results(run_dir).models) == sorted(first.models)  # saved again, whole
    # a refit asked for after the run: the rounds are not trained again, the refit is
    more = vt.tune(*args, run_dir=run_dir, resume=True, refit=3, **SMALL)
    assert calls == [1] and len(more.models) == 3
    pd.testing.assert_frame_equal(more.members.drop(columns="test_score"), first.members.drop(columns="test_score"))
    both = first.members["test_score"].notna()
    np.testing.assert_allclose(more.members["test_score"][both], first.members["test_score"][both], rtol=1e-5)
    calls.clear()
    fewer = vt.tune(*args, run_dir=run_dir, resume=True, refit=2, **SMALL)  # (back to 2: the 3 are kept)
    assert calls == [] and sorted(vt.load_results(run_dir).models) == sorted(fewer.models) == sorted(more.models)
    pd.testing.assert_frame_equal(fewer.members, more.members)
    # killed during the refit: the rounds' results were saved without it, so the resume refits
    saved = vt.load_results(run_dir)
    saved.members, saved.models = saved.members.drop(columns="test_score"), {}
    saved.save(run_dir)
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, refit=2, **SMALL)
    assert calls == [1]
    pd.testing.assert_frame_equal(resumed.members, first.members)
    for row in first.models:
        chex.assert_trees_all_equal(resumed.model(row).variables, first.model(row).variables)


def test_a_finished_run_searching_on_keeps_its_refit(data, tmp_path, monkeypatch):
    """A notebook cell run again with more rounds and refit left out: the refit trained before is
    kept (its model on disk, its test score in the table) through every round's save."""
    run_dir = str(tmp_path / "run")
    first = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=1), run_dir=run_dir, refit=1, **SMALL)
    (row,) = first.models
    saves = []
    save = vt.Results.save
    monkeypatch.setattr(vt.Results, "save", lambda self, path, **k: saves.append(sorted(self.models)) or
                        save(self, path, **k))
    more = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3), run_dir=run_dir, resume=True, **SMALL)
    assert saves == [[row]] * 3  # (two rounds, then the end: none dropped the model)
    assert sorted(more.models) == [row] and more.members["test_score"].iloc[row] == first.test_score
    assert more.members["test_score"].drop(index=row).isna().all()
    chex.assert_trees_all_equal(vt.load_results(run_dir).model(row).variables, first.model(row).variables)


# -- exact, atomic saves --------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", [lambda n: vt.RandomSearch(population=3, rounds=n),
                                      lambda n: vt.BayesOpt(population=3, rounds=n)], ids=["random", "bayesopt"])
def test_a_finished_sweep_searches_on_with_more_rounds_as_if_started_with_them(data, tmp_path, strategy):
    """Optuna's study.optimize(n_trials=more): resume=True with more rounds trains only the new
    rounds, and the run, its refit included, equals one started with that many rounds."""
    tune = lambda rounds, run_dir, **kw: vt.tune(MODEL, SPACE, data, strategy(rounds), run_dir=str(tmp_path / run_dir),
                                                 refit=1, **SMALL, **kw)  # noqa: E731
    want = tune(3, "three")
    assert len(tune(2, "two")) == 6
    got = tune(3, "two", resume=True)
    for result in (got, vt.load_results(str(tmp_path / "two"))):
        pd.testing.assert_frame_equal(result.members, want.members)
        assert result.best_params == want.best_params
        assert sorted(result.models) == sorted(want.models)  # the refit of the best of 3 rounds
        chex.assert_trees_all_equal(result.model(want.best_index).variables, want.model(want.best_index).variables)
    # the earlier end's refit is gone from disk and from an Optuna study appended after each end
    assert os.listdir(tmp_path / "two" / "models") == [f"row_{i}" for i in sorted(want.models)]
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    tune(2, "two_again").to_optuna(storage, "s")
    study = tune(3, "two_again", resume=True).to_optuna(storage, "s", append=True)
    shown = {t.number: study.user_attrs.get("test_scores", {}).get(str(t.number), t.user_attrs.get("test_score"))
             for t in study.trials}
    assert shown == {i: (None if np.isnan(v) else pytest.approx(v)) for i, v in enumerate(want.members["test_score"])}
    again = tune(4, "two", resume=True)  # and on, from the extended run's own checkpoint
    assert len(again) == 12 and again.members["round"].max() == 3
    with pytest.raises(ValueError, match=r"with (RandomSearch|BayesOpt)\(rounds=2\): it holds 4 finished round\(s\) "
                                         r"\(saved with rounds=4\)\. Give rounds >= 4\."):
        tune(2, "two", resume=True)
    with pytest.raises(ValueError, match=r"strategy: saved .*population=3.*\n.*now .*population=4"):  # others: refused
        vt.tune(MODEL, SPACE, data, dataclasses.replace(strategy(4), population=4), run_dir=str(tmp_path / "two"),
                resume=True, **SMALL)


def test_save_and_load_round_trip_every_value_and_dtype(data, tmp_path):
    space = vt.Space(learning_rate=vt.Choice([1e-2, 1e7]), activation=vt.Choice(["relu", "tanh"]),
                     n_units=vt.Choice([4, 8]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = vt.tune(vt.MLP(hidden=1), space, data, vt.RandomSearch(population=8), **SMALL)
    assert (result.members["status"] == "diverged").any()  # NaN scores round-trip too
    result.save(tmp_path / "run")
    loaded = vt.load_results(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded.members, result.members, check_exact=True)  # dtypes included
    assert loaded.best_score == result.best_score and loaded.best_params == result.best_params
    for group in ("curves", "hp"):
        for name, value in getattr(result, group).items():
            np.testing.assert_array_equal(getattr(loaded, group)[name], value)
            assert getattr(loaded, group)[name].dtype == value.dtype
    assert loaded.settings == result.settings and loaded.space == space


def test_a_half_written_run_directory_still_loads_its_last_whole_save(finished_run, tmp_path):
    result, run_dir = finished_run
    copy = str(tmp_path / "copy")
    result.save(copy)
    open(os.path.join(copy, "members.csv"), "w").close()  # a reader of the old layout would fail here
    with open(os.path.join(copy, ".vmaptune-tmp-results"), "wb") as f:
        f.write(b"half a file")  # what a kill inside a save leaves
    pd.testing.assert_frame_equal(vt.load_results(copy).members, result.members)
    with pytest.raises(FileNotFoundError, match="not a vmaptune run directory"):
        vt.load_results(tmp_path)


def test_saving_over_another_saved_search_is_refused_unless_asked(finished_run, tmp_path):
    """Results.save into a directory holding another search would replace its table and models:
    refused, naming the fix; saved again where they were saved or loaded from, or where the same
    search was (a script run again), they are written over."""
    result, run_dir = finished_run
    first = str(tmp_path / "first")
    result.save(first)
    result.save(first)  # (the same results again: written over)
    loaded = vt.load_results(first)
    loaded.members = loaded.members.head(2)
    loaded.save(first)  # (where they were loaded from)
    assert len(vt.load_results(first)) == 2
    with pytest.raises(FileExistsError, match=r"results.save\('.*first'\): .*first already holds a saved search, "
                                              r"which this save would replace .* overwrite=True to replace it"):
        vt.load_results(run_dir).save(first)
    assert len(vt.load_results(first)) == 2
    third, fourth = str(tmp_path / "third"), str(tmp_path / "fourth")
    result.save(third)
    result.save(fourth)
    vt.load_results(fourth).save(third)  # (the same search saved elsewhere: a script run again, written over)
    vt.load_results(run_dir).save(first, overwrite=True)
    pd.testing.assert_frame_equal(vt.load_results(first).members, result.members)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(FileExistsError, match=r"a_file is a file; save writes a directory \(results.npz"):
        result.save(a_file)
    with pytest.raises(NotADirectoryError, match=r"a part of the path is a file"):
        result.save(a_file / "run")
    second = str(tmp_path / "second")
    result.save(second)
    result.save(first, overwrite=True)
    result.save(second)  # (every directory these results were saved to is theirs to write over)
    with pytest.raises(FileNotFoundError, match=r"results.npz is a file; give the run directory that holds it: "
                                                r"vt.load_results\('.*second'\)"):
        vt.load_results(os.path.join(second, "results.npz"))


def test_results_loaded_from_a_relative_path_find_their_models_after_a_chdir(finished_run, tmp_path, monkeypatch):
    result, run_dir = finished_run
    refit = vt.tune(MODEL, SPACE, resume_child.data(), vt.RandomSearch(population=2), refit=1, **SMALL)
    refit.save(tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    loaded = vt.load_results("run")
    monkeypatch.chdir(tmp_path.parent)
    chex.assert_trees_all_equal(loaded.best_model().variables, refit.best_model().variables)


def test_a_finished_run_whose_table_is_damaged_says_so_and_resumes_from_its_checkpoints(data, finished_run, tmp_path):
    result, run_dir = finished_run
    copy = str(tmp_path / "copy")
    shutil.copytree(run_dir, copy)
    os.truncate(os.path.join(copy, "results.npz"), 100)  # a disk failure; checkpoints/ intact
    with pytest.raises(ValueError, match=r"results\.npz is damaged \(BadZipFile: .*resume the run \(vt\.tune\(\.\.\., "
                                         r"run_dir=.*resume=True\).*writes results\.npz again"):
        vt.load_results(copy)
    again = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2), run_dir=copy, resume=True, **SMALL)
    pd.testing.assert_frame_equal(again.members, result.members)
    pd.testing.assert_frame_equal(vt.load_results(copy).members, result.members)


# -- everyone failed ---------------------------------------------------------------------------------------
def test_all_members_failed_is_said_loudly(data, tmp_path):
    space = vt.Space(learning_rate=vt.LogUniform(1e6, 1e8))
    with pytest.warns(UserWarning, match=r"all 4 members failed .*learning rates from .* all diverged: try a range"):
        result = vt.tune(MODEL, space, data, vt.RandomSearch(population=4), run_dir=str(tmp_path / "r"), **SMALL)
    assert not result.succeeded and "no member has a score" in repr(result)
    with pytest.raises(ValueError, match="there is no best member: all 4 members failed"):
        result.best_params
    assert "none with a score" in result.summary()
    assert len(vt.load_results(tmp_path / "r")) == 4


# -- Ctrl-C -------------------------------------------------------------------------------------------------
def after_chunk(monkeypatch, chunk: int, act) -> dict:
    """act() right after the `chunk`-th chunk of the test is recorded; returns {"n": chunks recorded}."""
    record, chunks = population.PopulationRun._record, {"n": 0}

    def record_then_act(self, *args, **kwargs):
        record(self, *args, **kwargs)
        chunks["n"] += 1
        if chunks["n"] == chunk:
            act()

    monkeypatch.setattr(population.PopulationRun, "_record", record_then_act)
    return chunks


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_ctrl_c_keeps_the_round_in_progress_checkpointed_and_the_resume_trains_only_what_was_left(
        data, tmp_path, monkeypatch):
    """With a run_dir the chunk in progress ends and the round is checkpointed there: before, the
    round was kept only in the table, and a resume trained it again from its start (mid-round
    checkpoints are otherwise once a minute)."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    whole = vt.tune(*args, **SMALL)
    chunks = after_chunk(monkeypatch, 5, lambda: os.kill(os.getpid(), signal.SIGINT))  # round 1, epoch 2 of 3
    run_dir = str(tmp_path / "r")
    with pytest.warns(UserWarning, match=r"interrupted: returning 1 finished round\(s\) and 4 members of the round"):
        stopped = vt.tune(*args, run_dir=run_dir, **SMALL)
    assert stopped.settings["interrupted"] and len(stopped) == 8 and chunks["n"] == 5
    assert stopped.members["status"].tolist()[4:] == ["interrupted"] * 4
    assert np.isfinite(stopped.curves["val_score"][4:, :2]).all() and np.isnan(stopped.curves["val_score"][4:, 2]).all()
    assert vt.load_results(run_dir).members["status"].tolist() == stopped.members["status"].tolist()
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)
    assert chunks["n"] - 5 == 9 - 5  # 3 rounds x 3 epochs: only the chunks left
    pd.testing.assert_frame_equal(resumed.members, whole.members)


def test_a_time_budget_stops_as_ctrl_c_does_and_the_resume_ends_as_an_uninterrupted_run(data, tmp_path, monkeypatch):
    """time_budget= is a Ctrl-C planned ahead: once spent, the run stops at the next chunk's start,
    checkpointed; the resume (with a budget of its own) ends as the uninterrupted run."""
    from vmaptune import interrupts

    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    whole = vt.tune(*args, **SMALL)
    # round 1, epoch 2 of 3: the clock passes the deadline
    chunks = after_chunk(monkeypatch, 5, lambda: interrupts._STATE.update(deadline=time.monotonic() - 1.0))
    run_dir = str(tmp_path / "r")
    with pytest.warns(UserWarning, match=r"the time budget is spent: returning 1 finished round\(s\) and 4 members of "
                                         r"the round in progress .* continues it \(time_budget= gives that call"):
        stopped = vt.tune(*args, run_dir=run_dir, time_budget="1h", **SMALL)
    assert stopped.settings["interrupted"] and stopped.settings["time_budget_spent"] and chunks["n"] == 5
    assert stopped.members["status"].tolist() == ["ok"] * 4 + ["interrupted"] * 4
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, time_budget=3600, **SMALL)
    assert chunks["n"] == 9 and not resumed.settings.get("interrupted")  # only the chunks left trained
    pd.testing.assert_frame_equal(resumed.members, whole.members)
    # a budget spent before anything trained still trains the first chunk: there are results to return
    first_dir = str(tmp_path / "first")
    with pytest.warns(UserWarning, match=r"the time budget is spent: returning 0 finished round.* Its refit=1 runs "
                                         r"there, once the search ends"):
        first = vt.tune(*args, run_dir=first_dir, time_budget=1e-9, refit=1, **SMALL)
    assert first.members["epochs_trained"].tolist() == [1] * 4
    # refit=1 was asked for: the messages say why there is none (they said to ask for refit=1), and that the
    # resume of this run_dir refits (they said "else run it again", which a budget cuts the same way)
    for no_refit in (lambda: first.test_score, first.best_model, vt.load_results(first_dir).best_model):
        with pytest.raises(ValueError, match=r"stopped by its time budget before its refit=1 ran; resume it: "
                                             r"vt.tune\(\.\.\., run_dir='.*first', resume=True\)") as said:
            no_refit()
        assert "run it again" not in str(said.value)


def test_a_time_budget_spent_before_the_last_round_without_a_run_dir_refits_the_best_so_far(data, monkeypatch,
                                                                                           tmp_path, capsys):
    """Without a run_dir nothing resumes a search its budget stopped: its refit ran only where the
    budget ran out in the last chunk, so a budget shorter than the rounds (its usual use) returned no
    model, and "run it again" met the same cut. The best so far are refit now, as a finished search's."""
    from vmaptune import interrupts
    from vmaptune import search as searches

    args = (MODEL, SPACE, data)
    first_round = vt.tune(*args, vt.RandomSearch(population=4, rounds=1), refit=1, **SMALL)
    # round 0 trained (3 chunks): the budget stops the search at round 1's first chunk
    after_chunk(monkeypatch, 3, lambda: interrupts._STATE.update(deadline=time.monotonic() - 1.0))
    with pytest.warns(UserWarning, match=r"the time budget is spent: returning 1 finished round\(s\)\. Without a "
                                         r"run_dir there is nothing to resume, so its refit=1 trains now"):
        cut = vt.tune(*args, vt.RandomSearch(population=4, rounds=3), refit=1, time_budget="1h", **SMALL)
    assert cut.settings["interrupted"] and cut.settings["time_budget_spent"] and cut.settings["refit_trained"] == 1
    pd.testing.assert_frame_equal(cut.members.drop(columns="test_score"), first_round.members.drop(columns="test_score"))
    assert cut.test_score == first_round.test_score
    assert cut.best_model().evaluate(*data.raw("test")) == first_round.best_model().evaluate(*data.raw("test"))
    # Ctrl-C stops the refit as it stops a finished search's: the results come back without it
    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    after_chunk(monkeypatch, 3, lambda: interrupts._STATE.update(deadline=time.monotonic() - 1.0))
    monkeypatch.setattr(searches, "refit_and_test", ctrl_c)
    with pytest.warns(UserWarning, match="its refit=1 trains now"), \
            pytest.warns(UserWarning, match=r"interrupted during the refit the time budget left: returning 1 "
                                            r"finished round\(s\) without it"):
        stopped = vt.tune(*args, vt.RandomSearch(population=4, rounds=3), refit=1, time_budget="1h", **SMALL)
    assert stopped.settings["refit_trained"] == 0 and "test_score" not in stopped.members and not stopped.models
    with pytest.raises(ValueError, match=r"The time budget stopped the search, and the refit=1 that followed was "
                                         r"interrupted as it trained; without a run_dir nothing is left to resume: run the search "
                                         r"again \(with run_dir= to keep it resumable\)\."):
        stopped.best_model()
    # the budget's refit models, saved by hand, are a run that a resume there would replace: refused
    cut.save(tmp_path / "kept")
    with pytest.raises(FileNotFoundError, match="holds a run.s results but no checkpoints.*would replace the run"):
        vt.tune(*args, vt.RandomSearch(population=4, rounds=3), refit=1, run_dir=str(tmp_path / "kept"), resume=True,
                **SMALL)
    assert vt.load_results(tmp_path / "kept").settings["refit_trained"] == 1
    from vmaptune import cli  # (and the report does not advise that resume)
    capsys.readouterr()
    assert cli.main(["report", str(tmp_path / "kept")]) == 0
    said = capsys.readouterr().out
    assert "holds no checkpoints/ (results.save of a run without a run_dir, or its checkpoints removed), so it cannot be continued" in said
    assert "--resume" not in said
    # a finished search's refit cut by Ctrl-C, without a run_dir: nothing resumes it either
    monkeypatch.undo()
    monkeypatch.setattr(searches, "refit_and_test", ctrl_c)
    with pytest.warns(UserWarning, match="interrupted: returning"):
        cut_refit = vt.tune(*args, vt.RandomSearch(population=4, rounds=1), refit=1, **SMALL)
    with pytest.raises(ValueError, match=r"The search ended, and the refit=1 that followed was interrupted as it trained; without a run_dir "
                                         r"nothing is left to resume"):
        cut_refit.best_model()


def test_a_time_budget_stops_a_search_not_the_refit_after_it(data, tmp_path, monkeypatch):
    """A finished search resumed with refit=1 under a budget shorter than the refit: the budget cut
    the refit after its first chunk, which is not checkpointed, so every resume (a requeued job
    with the same budget) trained that chunk again and never refit. The budget stops searches."""
    from vmaptune import interrupts

    args = (MODEL, SPACE, data, vt.RandomSearch(population=4))
    whole = vt.tune(*args, refit=1, **SMALL)
    run_dir = str(tmp_path / "r")
    vt.tune(*args, run_dir=run_dir, **SMALL)
    def clock_passes_the_deadline():
        if interrupts._STATE["deadline"] is not None:
            interrupts._STATE["deadline"] = time.monotonic() - 1.0

    chunks = after_chunk(monkeypatch, 1, clock_passes_the_deadline)
    refit = vt.tune(*args, run_dir=run_dir, resume=True, refit=1, time_budget=3600, **SMALL)
    assert chunks["n"] == SMALL["epochs"] and not refit.settings.get("interrupted")  # (the refit's chunks, all)
    assert refit.test_score == whole.test_score
    # spent as the search's last chunk trained: with a run_dir the refit waits for the resume; without
    # one (nothing to resume) it trains now
    chunks = after_chunk(monkeypatch, SMALL["epochs"], clock_passes_the_deadline)
    with pytest.warns(UserWarning, match=r"spent as the search ended: .* its refit=1 trains on a resume"):
        waits = vt.tune(*args, run_dir=str(tmp_path / "w"), refit=1, time_budget=3600, **SMALL)
    assert waits.settings["interrupted"] and "test_score" not in waits.members
    chunks = after_chunk(monkeypatch, SMALL["epochs"], clock_passes_the_deadline)
    now = vt.tune(*args, refit=1, time_budget=3600, **SMALL)
    assert not now.settings.get("interrupted") and now.test_score == whole.test_score


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_ctrl_c_in_a_later_hyperband_bracket_keeps_it(data, tmp_path, monkeypatch):
    """The finished brackets have the strategy's columns (rung, budget_epochs, bracket), the one in
    progress none yet: the table fills them in (a KeyError before)."""
    args = (MODEL, SPACE, data, vt.Hyperband(max_epochs=3, eta=2))
    counted = {"n": 0}
    record = population.PopulationRun._record

    def count(self, *a, **k):
        counted["n"] += 1
        return record(self, *a, **k)

    monkeypatch.setattr(population.PopulationRun, "_record", count)
    whole = vt.tune(*args, **SMALL)
    last = counted["n"]  # the last chunk trains the last bracket, after the others were told
    counted["n"] = 0

    def interrupt_at_the_last(self, *a, **k):
        count(self, *a, **k)
        if counted["n"] == last:  # twice: at once (one would wait for the next chunk, and there is none)
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(population.PopulationRun, "_record", interrupt_at_the_last)
    with pytest.warns(UserWarning, match=r"interrupted: returning \d+ finished round\(s\) and \d+ members"):
        result = vt.tune(*args, run_dir=str(tmp_path / "hb"), **SMALL)
    assert result.settings["interrupted"] and whole.members["round"].max() >= 1
    done = result.members["status"] != "interrupted"
    # the bracket in progress is at its rung in progress (its only one), the finished ones at theirs
    assert (result.members.loc[~done, "rung"] == 0).all() and (result.members.loc[done, "rung"] >= 0).all()
    pd.testing.assert_frame_equal(result.members[done], whole.members[whole.members["round"] < result.members["round"].max()])


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_ctrl_c_as_a_chunk_is_handed_its_state_keeps_the_round(data, monkeypatch):
    """The call donates the state's buffers: a Ctrl-C landing right after it (before the new
    state is kept) read deleted arrays ("Array has been deleted"); it now waits for the assignment."""
    train_chunk = engine.train_chunk
    calls = {"n": 0}

    def interrupted_right_after(*args, **kwargs):
        out = train_chunk(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Python raises it at the next bytecode: before the caller keeps `out`
            for _ in range(1000):
                pass
        return out

    interrupted_right_after.lower = train_chunk.lower  # (its first call is compiled ahead of the call)
    monkeypatch.setattr(engine, "train_chunk", interrupted_right_after)
    monkeypatch.setattr(costs, "QUICK_COMPILE_SAVES", 0.0)  # the usual training program (the one patched)
    with pytest.warns(UserWarning, match=r"interrupted: returning 0 finished round\(s\) and 4 members"):
        result = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), **SMALL)
    assert result.members["status"].tolist() == ["interrupted"] * 4
    assert np.isfinite(result.curves["train_loss"][:, :2]).all()


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_ctrl_c_during_the_last_save_returns_the_finished_run(data, tmp_path, monkeypatch):
    replace, seen = os.replace, {"n": 0}

    def replaced(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith("results.npz"):
            seen["n"] += 1
            if seen["n"] == 2:  # the round's save, then the finished run's
                os.kill(os.getpid(), signal.SIGINT)
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replaced)
    run_dir = str(tmp_path / "r")
    with pytest.warns(UserWarning, match="Ctrl-C came as the run was ending: it had nothing left to stop; the "
                                         "whole run is returned"):
        result = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), run_dir=run_dir, refit=1, **SMALL)
    assert not result.settings.get("interrupted") and np.isfinite(result.test_score)
    pd.testing.assert_frame_equal(vt.load_results(run_dir).members, result.members)


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
@pytest.mark.parametrize("stopped_by", ["ctrl_c", "time_budget"])
def test_a_ctrl_c_while_a_stopped_run_is_saved_says_it_is_already_stopping(data, tmp_path, monkeypatch, capsys,
                                                                          stopped_by):
    """The stop's save holds a (second) Ctrl-C and lets it through after: it was said as a first one
    ("the run stops after the chunk in progress"), and the run's end warned "the whole run is
    returned" of a run cut short; so too where the time budget stopped it."""
    save = vt.Results.save

    def saved_with_a_second_ctrl_c(self, *args, **kwargs):
        if self.settings.get("interrupted"):
            os.kill(os.getpid(), signal.SIGINT)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(vt.Results, "save", saved_with_a_second_ctrl_c)
    calls, record = {"n": 0}, population.PopulationRun._record

    def recorded(self, *args, **kwargs):  # (the first Ctrl-C, after the first chunk: held until the next starts)
        record(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1 and stopped_by == "ctrl_c":
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(population.PopulationRun, "_record", recorded)
    budget = {"time_budget": 1e-3} if stopped_by == "time_budget" else {}
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        result = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), run_dir=str(tmp_path / "r"), **budget,
                         **SMALL)
    assert result.settings["interrupted"]
    assert "vmaptune: Ctrl-C: already stopping; what trained is kept, then the run returns." in capsys.readouterr().err
    assert not [w for w in said if "whole run is returned" in str(w.message)]


@pytest.fixture
def sigterm_to(monkeypatch):
    """sigterm_to(chunk, times) -> (received, chunks): SIGTERM `times` times right after the
    `chunk`-th chunk is recorded, under a user's own SIGTERM handler; `received` lists the signals
    that handler gets, chunks["n"] counts the chunks recorded in the test."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    record, chunks = population.PopulationRun._record, {"n": 0}

    def arrange(chunk: int, times: int = 1):
        def record_then_terminate(self, *args, **kwargs):
            record(self, *args, **kwargs)
            chunks["n"] += 1
            if chunks["n"] == chunk:
                for _ in range(times):
                    os.kill(os.getpid(), signal.SIGTERM)
        monkeypatch.setattr(population.PopulationRun, "_record", record_then_terminate)
        return received, chunks
    yield arrange
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("times", [1, 2])
def test_sigterm_stops_at_the_chunk_end_checkpointed_then_reaches_the_users_handler(data, tmp_path, sigterm_to,
                                                                                     times):
    """SIGTERM after round 1's second chunk: that chunk ends, the run is checkpointed there and
    saved, and then the handler the user had receives the signal (once); a resume trains only the
    chunks left (mid-round checkpoints are otherwise once a minute) to the uninterrupted result.
    A second SIGTERM stops at once, inside the chunk's reading: the run is saved, not checkpointed
    there, and the resume trains round 1 again from its start."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    whole = vt.tune(*args, **SMALL)
    received, chunks = sigterm_to(chunk=5, times=times)
    run_dir = str(tmp_path / "r")
    with pytest.warns(UserWarning, match=r"terminated \(SIGTERM\): saved 1 finished round\(s\) and 4 members of the "
                                         r"round in progress .* to .*; the process ends now"):
        stopped = vt.tune(*args, run_dir=run_dir, **SMALL)
    assert received == [signal.SIGTERM]
    assert stopped.settings["interrupted"] and stopped.members["status"].tolist()[4:] == ["interrupted"] * 4
    assert np.isfinite(stopped.curves["val_score"][4:, :2]).all() and np.isnan(stopped.curves["val_score"][4:, 2]).all()
    before = chunks["n"]  # (a chunk cut short in its reading is recorded again)
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)
    assert chunks["n"] - before == (9 - 5 if times == 1 else 9 - 3)  # 3 rounds x 3 epochs
    pd.testing.assert_frame_equal(resumed.members, whole.members)


def test_a_failing_callback_or_disk_says_what_is_saved_and_the_run_resumes(data, tmp_path, monkeypatch):
    """An on_round that raises, or a disk that refuses a write, ends the search with the error and a
    note saying what was kept; the resume ends as the uninterrupted run."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    whole = vt.tune(*args, **SMALL)

    def logging_server(results):
        if len(results) == 8:
            raise RuntimeError("my logging server is down")

    run_dir = str(tmp_path / "callback")
    with pytest.raises(RuntimeError, match="my logging server is down") as raised:
        vt.tune(*args, run_dir=run_dir, on_round=logging_server, **SMALL)
    assert any(f"on_round (logging_server) raised after round 1 (the table's round column); the search is saved in "
               f"{run_dir} up to this round: vt.tune(..., resume=True)" in note for note in raised.value.__notes__)
    pd.testing.assert_frame_equal(vt.tune(*args, run_dir=run_dir, resume=True, **SMALL).members, whole.members)
    with pytest.raises(RuntimeError) as raised:  # no run_dir: the finished rounds come with the error
        vt.tune(*args, on_round=logging_server, **SMALL)
    assert "give vt.tune a run_dir to resume from here. The results so far are the error's `results` attribute" in \
        raised.value.__notes__[0]
    pd.testing.assert_frame_equal(raised.value.results.members, whole.members.iloc[:8])

    write, seen = atomic.write_file, {"n": 0}

    def full_disk(path, *a, **k):
        if path.endswith("results.npz"):
            seen["n"] += 1
            if seen["n"] == 2:
                raise OSError(27, "File too large")
        return write(path, *a, **k)

    monkeypatch.setattr(atomic, "write_file", full_disk)
    run_dir = str(tmp_path / "disk")
    with pytest.raises(OSError, match="File too large") as raised:
        vt.tune(*args, run_dir=run_dir, **SMALL)
    assert any(f"writing {run_dir} failed. What was saved before is whole" in note and "resume=True" in note
               for note in raised.value.__notes__)
    # (and the error carries what the disk could not hold: 2 finished rounds)
    assert "The results so far (8 members) are the error's `results` attribute" in raised.value.__notes__[-1]
    pd.testing.assert_frame_equal(raised.value.results.members, whole.members.iloc[:8])
    monkeypatch.setattr(atomic, "write_file", write)
    pd.testing.assert_frame_equal(vt.tune(*args, run_dir=run_dir, resume=True, **SMALL).members, whole.members)


def test_a_failed_write_before_the_first_checkpoint_says_a_resume_starts_again(tmp_path):
    """It promised a resume from 'the last checkpoint' where none was committed, and blamed the disk
    for a directory made read-only."""
    import errno

    from vmaptune.tune import _write_failed

    held = tmp_path / "checkpoints"
    (held / "1.orbax-checkpoint-tmp").mkdir(parents=True)  # (a step begun, never committed)
    first = _write_failed(str(held), errno.ENOSPC)
    assert f"writing {held} failed" in first and "once the disk takes writes again" in first
    assert "trains the run from its start (no checkpoint was committed yet)" in first
    (held / "1").mkdir()
    later = _write_failed(str(tmp_path), errno.EACCES)
    assert "once the run directory can be written again (its permissions" in later
    assert "continues from the last checkpoint" in later


def failing_save_at(monkeypatch, nth: int, fail) -> None:
    """Checkpoints.save as it is, but its `nth` call, once committed, calls `fail()` (which moves a
    folder and raises what the write would), as a run directory moved mid-save does."""
    from vmaptune.checkpoint import Checkpoints

    save, seen = Checkpoints.save, {"n": 0}

    def save_then_fail(self, *a, **k):
        step = save(self, *a, **k)
        seen["n"] += 1
        if seen["n"] == nth:
            self._manager.wait_until_finished()
            fail()
        return step

    monkeypatch.setattr(Checkpoints, "save", save_then_fail)


def _tmp_folder_gone(run_dir: str):  # (orbax's own files vanish as the move lands mid-commit)
    raise FileNotFoundError(errno.ENOENT, "No such file or directory", os.path.join(
        run_dir, "checkpoints", "4.orbax-checkpoint-tmp", "commit_success.txt"))


def test_a_run_directory_moved_during_a_checkpoint_save_says_so_and_to_resume_where_it_now_is(data, tmp_path,
                                                                                              monkeypatch):
    """The note blamed the disk and, looking in the path the run no longer owned, said no checkpoint
    was committed, though three were, in the moved folder: a resume of the old path started again."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=4))
    whole = vt.tune(*args, **SMALL)
    run_dir, moved = str(tmp_path / "run"), str(tmp_path / "moved")
    with monkeypatch.context() as patched:
        failing_save_at(patched, 3, lambda: (os.rename(run_dir, moved), _tmp_folder_gone(run_dir)))
        with pytest.raises(FileNotFoundError) as raised:
            vt.tune(*args, run_dir=run_dir, **SMALL)
    note = raised.value.__notes__[-1]
    assert f"the run directory {run_dir} was moved, renamed or removed while the run wrote to it" in note
    assert "wherever the directory was moved (gone, where it was removed): there, vt.tune(..., run_dir=<its new " \
           "path>, resume=True)" in note
    assert "no checkpoint was committed" not in note and "disk" not in note
    pd.testing.assert_frame_equal(vt.tune(*args, run_dir=moved, resume=True, **SMALL).members, whole.members)


def test_a_run_directory_moved_as_orbax_saves_in_the_background_says_so(data, tmp_path, monkeypatch):
    """orbax's own failure there is a ValueError without an os_error_code ('Save failed: ... missing
    .zarray'): it went out bare, some 170 lines of tracebacks and no note."""
    run_dir, moved = str(tmp_path / "run"), str(tmp_path / "moved")

    def move_and_fail():
        os.rename(run_dir, moved)
        os.makedirs(os.path.join(run_dir, "checkpoints"))  # (as orbax's writer and the claim make it again)
        raise ValueError("Save failed: missing .zarray")

    failing_save_at(monkeypatch, 2, move_and_fail)
    with pytest.raises(OSError) as raised:
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=4), run_dir=run_dir, **SMALL)
    assert "was moved, renamed or removed while the run wrote to it" in raised.value.__notes__[-1]


def test_a_folder_gone_inside_a_run_directory_still_there_is_not_said_as_the_directory_moved(data, tmp_path,
                                                                                              monkeypatch):
    """orbax's tmp folder removed mid-commit (a /tmp cleaner) was said as the run directory moved, and
    'a resume of it would not find them', though a resume there goes on from its last checkpoint."""
    run_dir = str(tmp_path / "run")
    failing_save_at(monkeypatch, 3, lambda: _tmp_folder_gone(run_dir))
    with pytest.raises(FileNotFoundError) as raised:
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=4), run_dir=run_dir, **SMALL)
    note = raised.value.__notes__[-1]
    assert "moved, renamed or removed" not in note and "resume=True" in note


def test_resuming_a_run_directory_that_cannot_be_written_says_to_resume_a_writable_copy(data, finished_run, tmp_path,
                                                                                       monkeypatch):
    """It said 'choose a directory you can write to', and a resume=True there started a new run."""
    result, finished = finished_run
    archive, copy = str(tmp_path / "archive"), str(tmp_path / "copy")
    shutil.copytree(finished, archive)
    made = run_dirs.tempfile.TemporaryFile

    def read_only(*a, dir=None, **k):  # (a read-only mount: root writes through chmod)
        if dir == archive:
            raise OSError(errno.EROFS, "Read-only file system")
        return made(*a, dir=dir, **k)

    monkeypatch.setattr(run_dirs.tempfile, "TemporaryFile", read_only)
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2))
    with pytest.raises(ValueError, match=r"holds the run to resume but cannot be written \(Read-only file system\).* "
                                         r"Copy the run directory somewhere writable .* resume the copy: "
                                         r"vt.tune\(..., run_dir=<the copy>, resume=True\)"):
        vt.tune(*args, run_dir=archive, resume=True, **SMALL)
    with pytest.raises(ValueError, match="choose a directory you can write to"):  # (no run there: as before)
        run_dirs.prepare(archive, resume=False, overwrite=True)
    shutil.copytree(archive, copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pd.testing.assert_frame_equal(vt.tune(*args, run_dir=copy, resume=True, **SMALL).members, result.members)


def test_a_resume_with_nothing_to_resume_says_so(data, tmp_path):
    said = r"resume=True \(--resume\), but run_dir='.*typo' \(--out\) holds no run yet: starting a new run"
    with pytest.warns(UserWarning, match=said):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), run_dir=str(tmp_path / "typo"), resume=True,
                **{**SMALL, "epochs": 1})


def test_a_run_killed_before_its_first_table_says_how_to_go_on_and_leftovers_go(data, tmp_path):
    run_dir = tmp_path / "r"
    (run_dir / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no finished round saved yet \(only its checkpoints\): its table "
                                                r".* A run still in its first round: read it once that round ends\. "
                                                r"One stopped there: resume it"):
        vt.load_results(run_dir)
    leftover = run_dir / ".vmaptune-tmp-abc123"
    leftover.write_bytes(b"")  # what a kill between a save's write and its rename leaves
    (run_dir / "checkpoints" / "1").mkdir()
    (run_dir / "results.npz").write_bytes(b"")  # (holds a run and its checkpoints: resume is allowed)
    from vmaptune.run_dir import prepare
    prepare(str(run_dir), resume=True, overwrite=False)
    assert not leftover.exists()


def test_run_files_are_readable_as_the_umask_says(data, tmp_path):
    previous = os.umask(0o022)
    try:
        run_dir = tmp_path / "r"
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), run_dir=str(run_dir), refit=1,
                **{**SMALL, "epochs": 1})
    finally:
        os.umask(previous)
    for name in ("results.npz", "members.csv", "run.json"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o644, name  # not mkstemp's private 0600
    (model,) = (run_dir / "models").iterdir()
    assert model.stat().st_mode & 0o777 == 0o755 and model.name.startswith("row_")


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_the_cli_exits_130_with_one_line_on_ctrl_c(tmp_path):
    out = str(tmp_path / "demo")
    script = ("import sys, signal; sys.path.insert(0, sys.argv[1]); import resume_child; "
              "resume_child.kill_at('chunk', 2, signal.SIGINT); from vmaptune.cli import main; "
              "sys.exit(main(['demo', '--population', '4', '--epochs', '3', '--out', sys.argv[2], '--no-progress']))")
    done = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__), out], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 130, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "vmaptune demo: interrupted; 4 members kept in" in done.stderr and "--resume" in done.stderr
    assert set(vt.load_results(out).members["status"]) == {"interrupted"}


# -- memory planning --------------------------------------------------------------------------------------------
def _three_members(data) -> tuple[int, int, int]:
    """Bytes to train one member, two, and a max_memory of about three (MODEL on data)."""
    program = vt.build_program(MODEL, SPACE, data, batch_size=16)
    arrays = engine.data_arrays(data)
    one = memory.training_bytes(program, arrays, one_member(SPACE), 1)
    two = memory.training_bytes(program, arrays, one_member(SPACE), 2)
    assert two > one > 0
    return one, two, one + 2 * (two - one)


def _rows_of_each_run(monkeypatch) -> list[int]:
    """The rows of each PopulationRun made from now on (filled in as they are made)."""
    rows, init = [], population.PopulationRun.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        rows.append(self.rows)

    monkeypatch.setattr(population.PopulationRun, "__init__", spy)
    return rows


def test_a_population_over_a_small_memory_budget_equals_the_unsplit_run(data, monkeypatch):
    one, two, budget = _three_members(data)
    whole = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), **SMALL)
    rows = _rows_of_each_run(monkeypatch)
    # the budget is per device: on one device three members fit
    split = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), max_memory=budget, devices=1, **SMALL)
    assert len(rows) > 1 and max(rows) < 8 and all(r * (two - one) <= budget for r in rows)
    pd.testing.assert_frame_equal(split.members, whole.members, check_exact=False, rtol=1e-5)
    np.testing.assert_allclose(split.curves["val_loss"], whole.curves["val_loss"], rtol=1e-5)
    with pytest.raises(ValueError, match=r"PBT copies members between rows.*raise max_memory or lower the population"):
        vt.tune(MODEL, SPACE, data, vt.PBT(population=8, interval=1), max_memory=budget, devices=1, **SMALL)
    with pytest.raises(ValueError, match="cannot hold one member"):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), max_memory=one // 4, **SMALL)


def test_a_refit_that_fails_says_the_search_finished_and_carries_its_results(data, tmp_path, monkeypatch):
    """A refit's error (a memory budget its train + validation rows do not fit, after a search that
    did) came bare, with the search's results lost where there was no run_dir."""
    from vmaptune.search import Search

    def cannot(self, results):
        raise ValueError("max_memory=112500 bytes cannot hold one member")

    monkeypatch.setattr(Search, "refit", cannot)
    for run_dir in (None, str(tmp_path / "r")):
        with pytest.raises(ValueError, match="cannot hold one member") as failed:
            vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), refit=2, run_dir=run_dir, **SMALL)
        assert len(failed.value.results) == 4 and failed.value.results.succeeded
        note = failed.value.__notes__[-1]
        assert note.startswith("vmaptune: the search finished (4 members), and its refit of the best 2 failed")
        assert ("where vt.tune(..., resume=True) with the same run_dir refits it" in note) == (run_dir is not None)


def test_a_refit_over_a_small_memory_budget_trains_in_parts_that_fit_and_equals_the_unsplit_refit(data, monkeypatch):
    """The refit trained its k settings in one population whatever max_memory held (8 members on a
    device that held 3); now it splits them as the search does, measured for its own rows (train +
    validation: more than the search's)."""
    _, _, budget = _three_members(data)  # (the search's rows: a refit member needs a little more)
    whole = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), devices=1, refit=8, **SMALL)
    runs, init = [], population.PopulationRun.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        runs.append((kwargs.get("order"), self))

    monkeypatch.setattr(population.PopulationRun, "__init__", spy)
    split = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), max_memory=budget, devices=1, refit=8, **SMALL)
    refits = [run for order, run in runs if order == "refit"]
    assert len(refits) > 1 and sum(run.members for run in refits) == 8 and refits[0].data.n_train > data.n_train
    for run in refits:  # (the bytes it takes by the estimate that sized it, at the refit's rows)
        one, two = (memory.training_bytes(run.program, run.data, one_member(SPACE), rows) for rows in (1, 2))
        assert one + (run.rows - 1) * (two - one) <= budget
    # (the same results as one population, as the search's micro-populations: bit for bit here)
    np.testing.assert_allclose(split.members["test_score"], whole.members["test_score"], rtol=1e-5)
    X = data.raw("test")[0]
    for row in range(8):
        np.testing.assert_allclose(split.model(row).predict_proba(X), whole.model(row).predict_proba(X), rtol=1e-5)
    runs.clear()  # 7 members on 3 devices, 3 each: 9 rows, a filler after each device's share (not in member order)
    spread = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), max_memory=budget, devices=3, refit=7, **SMALL)
    assert [run.rows for order, run in runs if order == "refit"] == [9]
    tested = spread.members["test_score"].notna().to_numpy()
    assert tested.sum() == 7
    np.testing.assert_allclose(spread.members["test_score"][tested], whole.members["test_score"][tested], rtol=1e-5)


def test_a_memory_budget_holds_on_each_device_where_the_rows_split_over_fewer_devices(data, monkeypatch):
    """max_memory is per device: 3 members each on devices=3 took micro-populations of 8 rows, which
    split over the 2 devices that divide them, 4 on each, past the budget."""
    from vmaptune.distributed import mesh_size

    _, _, budget = _three_members(data)  # (on a device)
    whole = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), **SMALL)
    rows = _rows_of_each_run(monkeypatch)
    split = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), max_memory=budget, devices=3, **SMALL)
    assert rows == [9]  # (8 members in 9 rows: 3 on each device, one padded)
    pd.testing.assert_frame_equal(split.members, whole.members, check_exact=False, rtol=1e-5)
    rows.clear()  # a population of 13 (5 per device over 3) in micro-populations within the budget
    split = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=13), max_memory=budget, devices=3, **SMALL)
    assert len(rows) > 1 and all(-(-r // mesh_size(r, 3)) <= 3 for r in rows)
    # PBT trains its population as one program: 8 members in 9 rows fit (a split into 6 + 6 failed it)
    pbt = vt.tune(MODEL, SPACE, data, vt.PBT(population=8, interval=1), max_memory=budget, devices=3, **SMALL)
    assert len(pbt.members) == 8 and np.isfinite(pbt.members["score"]).all()


def _one_members_state(data) -> int:
    """Bytes of one member's training state (MODEL on data)."""
    return memory.state_bytes(vt.build_program(MODEL, SPACE, data, batch_size=16), one_member(SPACE), 1)


def test_on_a_cpu_a_population_beyond_the_machines_memory_is_refused_before_it_compiles(data, monkeypatch):
    """Without max_memory a CPU plans nothing, but a state larger than the machine would be killed
    (or abort the process inside XLA: a width of 10**9 did) once it runs."""
    traced = engine.TRACE_COUNTS["train_chunk"]
    huge = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_units=vt.IntUniform(1, 10**9))
    with pytest.raises(ValueError, match=r"training \d+ members? of this model needs about [\d.e+]+ GB \(3 times "
                                         r"their weights and optimizer state.*shrink the model"):
        vt.tune(vt.MLP(), huge, data, vt.RandomSearch(population=8), **SMALL)
    state = 8 * _one_members_state(data)
    monkeypatch.setattr(memory, "host_memory", lambda: state)  # a machine of the population's state: a third of its peak
    # (half of it over the 4 devices is a member's state, less than its peak: one device takes half)
    advised = memory._bytes_text(state // 2)
    with pytest.raises(ValueError, match=rf"training 8 members.*give devices=1 and max_memory='{advised}' "
                                         r"to train it in parts that fit on one device \(max_memory is per device; "
                                         r"these 4 CPU devices share this machine's RAM"):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=8), **SMALL)
    assert engine.TRACE_COUNTS["train_chunk"] == traced  # no training program was traced (the state's shapes were)


def test_on_a_cpu_the_advised_max_memory_shares_the_machines_memory_among_its_devices(data, monkeypatch):
    """max_memory is per device, and every core of a CPU is a device on one RAM: the advice was half
    the RAM for each, so 4 devices planned micro-populations of twice the machine's memory."""
    ram = 32 * _one_members_state(data)  # (16 members peak at 48 states)
    monkeypatch.setattr(memory, "host_memory", lambda: ram)
    with pytest.raises(ValueError, match=r"training 16 members.*give max_memory \(e.g. max_memory='\w+': max_memory "
                                         r"is per device; these 4 CPU devices share this machine's RAM\) to train it "
                                         r"in parts that fit, or lower the population\.") as refused:
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=16), **SMALL)
    advised = memory.parse_bytes("max_memory", re.search(r"max_memory='(\w+)'", str(refused.value))[1])
    assert ram / 2 - 4 * 1000 < advised * 4 <= ram / 2  # (the 4 devices together take half, less kB rounded down)


def test_on_a_cpu_a_max_memory_whose_micro_populations_exceed_the_machines_memory_is_refused(data, monkeypatch):
    """With max_memory no host memory was checked: 3 members on each of 4 devices, 12 at once,
    planned on a machine that holds 8 (the same check as without max_memory, on the micro-population)."""
    _, _, budget = _three_members(data)
    ram = 24 * _one_members_state(data)  # (12 members peak at 36 states)
    monkeypatch.setattr(memory, "host_memory", lambda: ram)
    rows = _rows_of_each_run(monkeypatch)
    with pytest.raises(ValueError, match=rf"max_memory={budget} bytes per device plans micro-populations of 12 rows "
                                         r"over 4 devices, which need about .* GB \(3 times their weights.*more "
                                         r"than this machine's .* GB of memory: lower max_memory \(e.g. "
                                         r"max_memory='\w+': max_memory is per device; these 4 CPU devices share this "
                                         r"machine's RAM\)"):
        vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=16), max_memory=budget, **SMALL)
    assert rows == []  # (refused before any run was made)
    # PBT trains its population as one program: it is told to lower the population, not max_memory (which it
    # would refuse in turn, its population split in parts)
    with pytest.raises(ValueError, match=r"more than this machine's .* GB of memory: lower the population to about 4 "
                                         r"rows: this strategy copies members between rows, so its population trains "
                                         r"as one program, never in parts\."):
        vt.tune(MODEL, SPACE, data, vt.PBT(population=16, interval=1), max_memory=budget, **SMALL)
    monkeypatch.setattr(memory, "host_memory", lambda: 36 * _one_members_state(data))  # (12 fit)
    vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=16), max_memory=budget, **{**SMALL, "epochs": 1})
    assert rows == [12, 12]


def test_over_several_processes_each_host_holds_its_share_and_the_smallest_decides_for_all(data, monkeypatch):
    """A population over 2 processes was checked as if one host held every row (refusing what fits),
    against each process's own memory (one refusing alone left the others waiting in their next
    exchange)."""
    program = vt.build_program(MODEL, SPACE, data, batch_size=16, devices=4)
    state = _one_members_state(data)
    monkeypatch.setattr(memory, "process_count", lambda: 2)
    monkeypatch.setattr(memory, "mesh_size", lambda rows, devices: devices)
    monkeypatch.setattr(memory, "host_memory", lambda: 100 * state)  # this host: room for 16 (48 states)
    monkeypatch.setattr(memory, "smallest", lambda ram: min(ram, 30 * state))  # the other: for 8 (24), not 16
    memory.check_host_memory(program, one_member(SPACE), 16)  # (8 rows on each host)
    monkeypatch.setattr(memory, "smallest", lambda ram: min(ram, 20 * state))  # the other: not even 8
    with pytest.raises(ValueError, match=r"^training 16 members of this model needs, for the 8 rows of each of the 2 "
                                         r"processes, about .* GB .*more than the smallest host's .* GB of memory: give "
                                         r"max_memory \(e.g. max_memory='\w+': max_memory is per device; these 2 CPU "
                                         r"devices share this machine's RAM\)"):
        memory.check_host_memory(program, one_member(SPACE), 16)


# -- text class labels from a CSV, decoded in predictions ---------------------------------------------------------
def test_text_labels_from_a_csv_come_back_in_predictions(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.array(["setosa", "versicolor", "virginica"])[rng.integers(0, 3, 90)]
    X = rng.normal(size=(90, 2)) + (labels == "versicolor")[:, None] * 2.0 - (labels == "virginica")[:, None] * 2.0
    path = tmp_path / "flowers.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "kind": labels}).to_csv(path, index=False)
    data = vt.Dataset.from_csv(path, target="kind", task="classification")
    assert list(data.classes) == ["setosa", "versicolor", "virginica"]
    result = vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), refit=1, **SMALL)
    predicted = result.best_model().predict(X[:10])
    assert set(predicted) <= set(labels) and predicted.dtype.kind in "OU"
    assert 0.0 <= result.best_model().score(X, labels) <= 1.0


NET = """
import flax.linen as nn


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(nn.relu(nn.Dense({units})(x)))
"""


def test_resume_after_an_edit_of_your_own_module_is_refused(data, tmp_path, monkeypatch):
    # vt.Linen(Net)'s repr names only the class: the spec records its source too
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = str(tmp_path / "run")

    def tune_net(units, **kw):
        (tmp_path / "user_net.py").write_text(NET.format(units=units))
        sys.modules.pop("user_net", None)
        import user_net
        return vt.tune(vt.Linen(user_net.Net), vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1)), data,
                       vt.RandomSearch(population=2), run_dir=run_dir, **{**SMALL, "epochs": 1}, **kw)

    first = tune_net(4)
    pd.testing.assert_frame_equal(tune_net(4, resume=True).members, first.members)  # the same source resumes
    with pytest.raises(ValueError, match=r"different\n  model: saved Linen\(Net\) source sha256 [0-9a-f]{16}\n"):
        tune_net(8, resume=True)
    sys.modules.pop("user_net", None)


def test_a_run_written_before_sources_were_recorded_still_resumes():
    from vmaptune.checkpoint import spec_difference
    now = {"model": "Linen(Net) source sha256 0123456789abcdef", "space": "s"}
    assert spec_difference({"model": "Linen(Net)", "space": "s"}, now) == ""
    assert "model" in spec_difference({"model": "Linen(Other)", "space": "s"}, now)


def sgd(hp):
    return optax.sgd(hp["learning_rate"])


def adam(hp):
    return optax.adam(hp["learning_rate"])


def accuracy(out, y):
    return jnp.mean(jnp.argmax(out, -1) == y)


def negated_accuracy(out, y):
    return -jnp.mean(jnp.argmax(out, -1) == y)


@pytest.mark.parametrize("first, second, label", [
    (dict(optimizer=sgd), dict(optimizer=adam), "settings.optimizer"),
    (dict(metric=vt.Metric("mine", "classification", accuracy)),
     dict(metric=vt.Metric("mine", "classification", negated_accuracy)), "settings.metric"),
])
def test_resume_with_another_function_of_the_same_name_is_refused(data, tmp_path, first, second, label):
    """Your optimizer factory, metric or loss function is recorded by its code, not its name or repr:
    resumed with another, the run would train its new rounds with Adam after SGD, or rank scores of
    opposite signs in one table. The same functions resume."""
    args = (MODEL, vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1)), data, vt.RandomSearch(population=2))
    run_dir = str(tmp_path / "run")
    done = vt.tune(*args, run_dir=run_dir, **first, **{**SMALL, "epochs": 1})
    pd.testing.assert_frame_equal(vt.tune(*args, run_dir=run_dir, resume=True, **first, **{**SMALL, "epochs": 1}).members,
                                  done.members)
    with pytest.raises(ValueError, match=rf"different\n  {label}: saved .* code sha256 [0-9a-f]{{16}}\"\n"):
        vt.tune(*args, run_dir=run_dir, resume=True, **second, **{**SMALL, "epochs": 1})


def test_a_lambda_written_in_the_call_resumes_when_resume_true_is_added_to_it(data, tmp_path):
    """The code hash is of the compiled function, not its source text: a lambda's source is its
    whole line, which adding resume=True changes (the identical search was refused)."""
    args = (MODEL, vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1)), data, vt.RandomSearch(population=2))
    run_dir, small = str(tmp_path / "run"), {**SMALL, "epochs": 1}
    done = vt.tune(*args, optimizer=lambda hp: optax.sgd(hp["learning_rate"]), run_dir=run_dir, **small)
    again = vt.tune(*args, optimizer=lambda hp: optax.sgd(hp["learning_rate"]), run_dir=run_dir, resume=True, **small)
    pd.testing.assert_frame_equal(again.members, done.members)
    with pytest.raises(ValueError, match=r"settings.optimizer"):
        vt.tune(*args, optimizer=lambda hp: optax.sgd(hp["learning_rate"] * 2), run_dir=run_dir, resume=True, **small)


def test_a_run_written_before_functions_were_recorded_by_their_code_still_resumes():
    from vmaptune.checkpoint import spec_difference

    now = {"settings": json.dumps({"metric": "mine code sha256 0123456789abcdef", "epochs": 3}, sort_keys=True)}
    assert spec_difference({"settings": json.dumps({"metric": "mine", "epochs": 3}, sort_keys=True)}, now) == ""
    assert "settings.metric" in spec_difference({"settings": json.dumps({"metric": "other", "epochs": 3})}, now)
    assert "settings.metric" in spec_difference(
        {"settings": json.dumps({"metric": "mine code sha256 fedcba9876543210", "epochs": 3})}, now)


CLASS_WEIGHTS = np.ones(3, np.float32)


def reads_jnp_mean(out, y):
    return jnp.mean(out)


def weighted_hits(out, y):
    return jnp.mean(jnp.asarray(CLASS_WEIGHTS)[y] * (jnp.argmax(out, -1) == y))


def test_resume_with_other_array_contents_read_by_your_function_is_refused(data, tmp_path, monkeypatch):
    """A metric reading class weights (an array, a list, a dict) is recorded by their contents:
    resumed after the weights changed, its new rounds would be scored on another scale than the
    table's. The same contents resume."""
    metric = vt.Metric("weighted_hits", "classification", weighted_hits)
    args = (MODEL, vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1)), data, vt.RandomSearch(population=2))
    run_dir, small = str(tmp_path / "run"), {**SMALL, "epochs": 1}
    done = vt.tune(*args, metric=metric, run_dir=run_dir, **small)
    monkeypatch.setattr(sys.modules[__name__], "CLASS_WEIGHTS", np.ones(3, np.float32))  # (equal contents)
    pd.testing.assert_frame_equal(vt.tune(*args, metric=metric, run_dir=run_dir, resume=True, **small).members,
                                  done.members)
    monkeypatch.setattr(sys.modules[__name__], "CLASS_WEIGHTS", np.array([1.0, 5.0, 1.0], np.float32))
    with pytest.raises(ValueError, match=r"settings.metric: saved .* values sha256 [0-9a-f]{16}"):
        vt.tune(*args, metric=metric, run_dir=run_dir, resume=True, **small)


def test_a_functions_values_hash_covers_arrays_lists_and_dicts_and_a_run_written_before_it_resumes():
    from vmaptune.checkpoint import code_fingerprint as hashed
    from vmaptune.checkpoint import spec_difference
    import functools

    def closing_over(value):
        return lambda hp: optax.sgd(hp["learning_rate"] * value[0])

    def bound(hp, table):
        return optax.sgd(hp["learning_rate"] * table["scale"])

    for one, other in [(np.array([1.0, 2.0]), np.array([1.0, 3.0])), ([1.0, 2.0], [1.0, 3.0]),
                       (jnp.ones(2), jnp.zeros(2)), (np.ones(2, np.float32), np.ones(2, np.float64))]:
        assert hashed(closing_over(one)) == hashed(closing_over(one)) != hashed(closing_over(other))
    assert hashed(functools.partial(bound, table={"scale": 1.0, "b": [1]})) == hashed(
        functools.partial(bound, table={"b": [1], "scale": 1.0}))  # (a dict's order does not count)
    assert hashed(functools.partial(bound, table={"scale": 1.0})) != hashed(functools.partial(bound, table={"scale": 2.0}))
    assert " values sha256 " not in hashed(closing_over(1.0))  # (numbers: the code hash alone, as before)
    module = sys.modules[__name__]
    before = hashed(reads_jnp_mean)
    module.mean = np.ones(3)  # (a script's `mean = X.mean(0)`: jnp.mean is an attribute, not that global)
    try:
        assert hashed(reads_jnp_mean) == before
    finally:
        del module.mean
    assert hashed(closing_over(object())) == hashed(closing_over(object()))  # (an object: not covered)
    now = {"settings": json.dumps({"metric": "mine code sha256 0123456789abcdef values sha256 00000000000000aa"})}
    assert spec_difference({"settings": json.dumps({"metric": "mine code sha256 0123456789abcdef"})}, now) == ""
    assert spec_difference({"settings": json.dumps({"metric": "mine"})}, now) == ""
    assert "settings.metric" in spec_difference({"settings": json.dumps({"metric": "mine code sha256 fedcba9876543210"})},
                                                now)
    assert "settings.metric" in spec_difference(
        {"settings": json.dumps({"metric": "mine code sha256 0123456789abcdef values sha256 00000000000000bb"})}, now)


def test_a_round_checkpointed_before_epochs_trained_existed_still_makes_a_table(data, finished_run):
    from vmaptune.history import History
    result, _ = finished_run
    records = [dataclasses.replace(r, columns={k: v for k, v in r.columns.items() if k != "epochs_trained"})
               for r in _records(result)]
    history = History(SPACE, {"useful_compute_fraction": []})
    for record in records:
        history.add(record)
    np.testing.assert_array_equal(history.results().members["epochs_trained"], result.members["epochs_trained"])


def _records(result):
    from vmaptune.history import RoundRecord
    out = []
    for r, rows in result.members.groupby("round").groups.items():
        rows = np.asarray(rows)
        table = result.members.iloc[rows]
        out.append(RoundRecord(round=r, member=table["member"].to_numpy(), hp={k: v[rows] for k, v in result.hp.items()},
                               columns={k: table[k].to_numpy() for k in vt.history.TABLE_COLUMNS},
                               curves={k: v[rows] for k, v in result.curves.items()}, extra={}))
    return out


def test_a_saved_run_loads_its_table_without_the_models_code(data, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "gone_net.py").write_text(NET.format(units=4))
    import gone_net
    result = vt.tune(vt.Linen(gone_net.Net), vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1)), data,
                     vt.RandomSearch(population=2), refit=1, **{**SMALL, "epochs": 1})
    result.save(tmp_path / "run")
    (tmp_path / "gone_net.py").unlink()
    sys.modules.pop("gone_net")
    again = vt.load_results(tmp_path / "run")  # the table and curves need no model code
    pd.testing.assert_frame_equal(again.members, result.members)
    assert sorted(again.models) == sorted(result.models)
    with pytest.raises(ImportError, match=r"the model's class cannot be imported here .*gone_net.*Import the module"):
        again.best_model()


def test_a_checkpoint_keeps_arrays_of_zero_size(tmp_path):
    """A population part whose members were all packed out has zero rows; orbax saves no array of
    zero size, and the mid-round checkpoint of Hyperband with early stopping failed on it."""
    from vmaptune.checkpoint import Checkpoints

    checkpoints = Checkpoints(str(tmp_path), {"run": "x"})
    arrays = {"part0_controls_0": np.zeros((0,), np.int32), "part0_state_0": np.zeros((0, 3), np.float32),
              "part1_state_0": np.arange(6, dtype=np.float32).reshape(2, 3)}
    checkpoints.save({"round": 1}, arrays, round=0, epochs_done=2)
    checkpoints.close()
    restored = Checkpoints(str(tmp_path), {"run": "x"}).restore()
    assert restored.host == {"round": 1} and sorted(restored.arrays) == sorted(arrays)
    for name, array in arrays.items():
        assert restored.arrays[name].dtype == array.dtype
        np.testing.assert_array_equal(restored.arrays[name], array)


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_an_interrupted_pbt_round_keeps_its_lineage_columns_so_far(data, monkeypatch):
    """A strategy's own columns of the round in progress come from its state at the interrupt (the
    table lacked them: a script reading result.members["parent"] failed with a KeyError)."""
    record, counted = population.PopulationRun._record, {"n": 0}

    def interrupt(self, *a, **k):
        record(self, *a, **k)
        counted["n"] += 1
        if counted["n"] == 3:  # after two exploit / explore steps
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(population.PopulationRun, "_record", interrupt)
    with pytest.warns(UserWarning, match=r"interrupted: returning 0 finished round\(s\) and 4 members"):
        result = vt.tune(MODEL, SPACE, data, vt.PBT(population=4, interval=1), **{**SMALL, "epochs": 6})
    members = result.members
    assert (members["status"] == "interrupted").all()
    assert (members["generation"] >= 1).all() and members["parent"].notna().all()
    assert members["lineage"].str.count(">").eq(members["generation"]).all()
    # the values members were training with at the interrupt (after copies and perturbations), as a
    # finished round's rows have them; the asked ones are where their schedules start
    import json
    schedules = [json.loads(text) for text in members["hp_schedule"]]
    for name in ("learning_rate", "momentum"):
        np.testing.assert_allclose(members[name], [s[-1][name] for s in schedules], rtol=1e-6, err_msg=name)
    assert any(len(s) > 1 for s in schedules)  # (some member's values changed)


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_members_a_halving_round_pruned_before_the_interrupt_read_pruned_not_interrupted(data, monkeypatch):
    record, counted = population.PopulationRun._record, {"n": 0}

    def interrupt(self, *a, **k):
        record(self, *a, **k)
        counted["n"] += 1
        if counted["n"] == 3:  # in the last rung (epochs 3-4 of 4), after two cuts
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(population.PopulationRun, "_record", interrupt)
    with pytest.warns(UserWarning, match=r"interrupted: returning 0 finished round\(s\) and 8 members"):
        result = vt.tune(MODEL, SPACE, data, vt.SuccessiveHalving(population=8, min_epochs=1, eta=2),
                         **{**SMALL, "epochs": 4})
    status = result.members["status"].to_numpy()
    assert sorted(set(status)) == ["interrupted", "pruned"]
    pruned = status == "pruned"
    members = result.members
    assert (members["epochs_trained"][pruned] < members["epochs_trained"][~pruned].min()).all()
    # the pruned ones trained their rung's budget; the rest train in the last rung (2 of 8 members,
    # epochs 3-4), toward its budget
    assert (members["rung"][~pruned] == 2).all() and (members["rung"][pruned] < 2).all()
    assert (members["epochs_trained"][pruned] == members["budget_epochs"][pruned]).all()
    assert (members["epochs_trained"][~pruned] <= members["budget_epochs"][~pruned]).all()


def test_a_finished_run_resumed_keeps_its_refit_and_one_without_checkpoints_is_never_replaced(data, tmp_path):
    """A requeued job (or a notebook run again) without refit= reads the run back with its refit,
    not deleting it; a run whose checkpoints/ folder went is refused, not started again over it."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2))
    run_dir = str(tmp_path / "r")
    first = vt.tune(*args, run_dir=run_dir, refit=2, **SMALL)
    again = vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)  # refit not given: 0
    assert sorted(os.listdir(os.path.join(run_dir, "models"))) == sorted(f"row_{row}" for row in first.models)
    pd.testing.assert_frame_equal(again.members, first.members)
    loaded = vt.load_results(run_dir)
    assert loaded.settings["refit"] == 2
    np.testing.assert_array_equal(loaded.best_model().predict(np.asarray(data.X_test)),
                                  first.best_model().predict(np.asarray(data.X_test)))
    shutil.rmtree(os.path.join(run_dir, "checkpoints"))
    before = sorted(os.listdir(run_dir))
    with pytest.raises(FileNotFoundError, match=r"holds a run's results but no checkpoints/ folder \(removed\?\).*"
                                                r"give another run_dir .* or overwrite=True"):
        vt.tune(*args, run_dir=run_dir, resume=True, **{**SMALL, "seed": 4})
    assert sorted(os.listdir(run_dir)) == before
    pd.testing.assert_frame_equal(vt.load_results(run_dir).members, first.members)


def test_a_finished_run_resumed_with_a_larger_refit_trains_only_the_rows_it_lacks(data, tmp_path):
    """refit=1 then refit=2: one more refit, not two (the same test scores and weights as refit=2 at once)."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4))
    run_dir = str(tmp_path / "r")
    first = vt.tune(*args, run_dir=run_dir, refit=1, **SMALL)
    assert first.settings["refit_trained"] == 1
    more = vt.tune(*args, run_dir=run_dir, resume=True, refit=2, **SMALL)
    at_once = vt.tune(*args, refit=2, **SMALL)
    assert more.settings["refit_trained"] == 1 and sorted(more.models) == sorted(at_once.models)
    # (a call that refits nothing says 0: the key was missing, a KeyError for a script following the README)
    assert vt.tune(*args, run_dir=run_dir, resume=True, refit=2, **SMALL).settings["refit_trained"] == 0
    assert vt.tune(*args, run_dir=run_dir, resume=True, **SMALL).settings["refit_trained"] == 0
    assert vt.load_results(run_dir).settings["refit_trained"] == 0
    np.testing.assert_allclose(more.members["test_score"], at_once.members["test_score"], rtol=1e-6)
    X = np.asarray(data.X_test)
    for row in at_once.models:
        np.testing.assert_allclose(more.model(row).predict_proba(X), at_once.model(row).predict_proba(X), rtol=1e-5)


def test_a_damaged_newest_checkpoint_is_passed_over_and_the_run_resumes_from_the_one_before(data, tmp_path):
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    whole = vt.tune(*args, **SMALL)
    run_dir = str(tmp_path / "r")
    vt.tune(*args, run_dir=run_dir, **SMALL)
    folder = os.path.join(run_dir, "checkpoints")
    steps = sorted(int(name) for name in os.listdir(folder) if name.isdigit())
    meta = os.path.join(folder, str(steps[-1]), "meta", "metadata")
    with open(meta, "wb") as f:
        f.write(os.urandom(64))  # (a disk that failed under it)
    with pytest.warns(UserWarning, match=rf"1 newer checkpoint\(s\) cannot be read \(checkpoint {steps[-1]}: "
                                         rf".*resuming from checkpoint {steps[-2]}, the newest whole one"):
        resumed = vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)
    pd.testing.assert_frame_equal(resumed.members, whole.members)
    for step in sorted(os.listdir(folder), key=int)[-1:]:  # damaged again: fewer rounds would drop one
        with open(os.path.join(folder, step, "meta", "metadata"), "wb") as f:
            f.write(b"\xc7" * 64)
    fewer = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2))
    with pytest.warns(UserWarning, match="cannot be read"), \
            pytest.raises(ValueError, match=r"has 3 finished round\(s\) in its table .* Give rounds >= 3"):
        vt.tune(*fewer, run_dir=run_dir, resume=True, **SMALL)
    pd.testing.assert_frame_equal(vt.load_results(run_dir).members, whole.members)
    for step in os.listdir(folder):  # (the resumed run took checkpoints of its own)
        if step.isdigit():
            with open(os.path.join(folder, step, "meta", "metadata"), "wb") as f:
                f.write(b"\xc7" * 64)
    with pytest.raises(ValueError, match=r"no checkpoint in .* can be read .* overwrite=True"):
        vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)


def test_a_checkpoint_that_reads_but_differs_from_its_checksum_is_passed_over_and_one_without_a_checksum_is_trusted(
        data, tmp_path):
    """A flipped bit may still decompress and unpickle (orbax's chunks keep no checksum): the resume
    took those values and failed blaming the strategy. The newest checkpoint's arrays replaced by
    the previous one's read whole; only their sha256, saved with the meta, tells."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    whole = vt.tune(*args, **SMALL)
    run_dir = str(tmp_path / "r")
    vt.tune(*args, run_dir=run_dir, **SMALL)
    folder = os.path.join(run_dir, "checkpoints")
    steps = sorted(int(name) for name in os.listdir(folder) if name.isdigit())
    shutil.rmtree(os.path.join(folder, str(steps[-1]), "arrays"))
    shutil.copytree(os.path.join(folder, str(steps[-2]), "arrays"), os.path.join(folder, str(steps[-1]), "arrays"))
    with pytest.warns(UserWarning, match=rf"cannot be read \(checkpoint {steps[-1]}: \d+ of its arrays differ from the "
                                         rf"sha256 saved with them\); resuming from checkpoint {steps[-2]}"):
        resumed = vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)
    pd.testing.assert_frame_equal(resumed.members, whole.members)
    newest = os.path.join(folder, max(os.listdir(folder), key=int), "meta", "metadata")
    with open(newest) as f:
        meta = json.load(f)
    del meta["sha256"]  # (written before checksums were kept: trusted as then)
    with open(newest, "w") as f:
        json.dump(meta, f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pd.testing.assert_frame_equal(vt.tune(*args, run_dir=run_dir, resume=True, **SMALL).members, whole.members)


def test_passing_over_a_damaged_checkpoint_prints_no_event_loop_is_closed_tracebacks(data, tmp_path, monkeypatch):
    """orbax's failed restore closes its asyncio loop while tensorstore's other reads are in flight;
    each read ending then printed 'RuntimeError: Event loop is closed' (some 75 tracebacks around
    the warning, in most tries). Such a read is made certain here: one that ends as the restore fails."""
    import asyncio

    import orbax.checkpoint as ocp

    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    whole = vt.tune(*args, **SMALL)
    run_dir = str(tmp_path / "r")
    vt.tune(*args, run_dir=run_dir, **SMALL)
    folder = os.path.join(run_dir, "checkpoints")
    newest = max((name for name in os.listdir(folder) if name.isdigit()), key=int)
    for name in os.listdir(os.path.join(folder, newest, "arrays", "d")):
        cut = os.path.join(folder, newest, "arrays", "d", name)
        os.truncate(cut, os.path.getsize(cut) // 2)
    restore = ocp.CheckpointManager.restore

    class ReadInFlight:  # (its callback comes to a closed loop, as tensorstore's do)
        def __init__(self):
            self.loop = asyncio.new_event_loop()
            self.loop.close()

        def __del__(self):
            self.loop.call_soon_threadsafe(print)

    def failing(self, *a, **k):
        try:
            return restore(self, *a, **k)
        except Exception:
            ReadInFlight()
            raise

    printed = []
    monkeypatch.setattr(ocp.CheckpointManager, "restore", failing)
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: printed.append(str(unraisable.exc_value)))
    with pytest.warns(UserWarning, match=rf"cannot be read \(checkpoint {newest}: "):
        resumed = vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)
    assert printed == []
    pd.testing.assert_frame_equal(resumed.members, whole.members)
    ReadInFlight()  # (elsewhere, such an error is shown as before)
    assert printed == ["Event loop is closed"]


@pytest.mark.parametrize("diverged", [False, True])
def test_a_run_stopped_at_once_in_its_first_round_resumes_though_it_has_no_checkpoint(data, tmp_path, monkeypatch,
                                                                                      diverged):
    """A second Ctrl-C stops at once: the first round's members are saved (status 'interrupted')
    before any checkpoint was taken; resume=True trains the run from the start. Members that had
    already diverged or stopped (their own status in the table) do not make the round a finished one."""
    from helpers import ctrl_c_at_chunk

    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e6), momentum=SPACE["momentum"]) if diverged else SPACE
    args = (MODEL, space, data, vt.RandomSearch(population=4, rounds=2))
    whole = vt.tune(*args, **SMALL)
    train_chunk = engine.train_chunk
    ctrl_c_at_chunk(monkeypatch, 2)
    run_dir = str(tmp_path / "r")
    with pytest.warns(UserWarning, match="interrupted: returning 0 finished round"):
        stopped = vt.tune(*args, run_dir=run_dir, chunk_epochs=1, **SMALL)
    assert not os.path.isdir(os.path.join(run_dir, "checkpoints")) or not os.listdir(os.path.join(run_dir, "checkpoints"))
    assert ("diverged" in stopped.members["status"].tolist()) == diverged
    trained = stopped.members["epochs_trained"].to_numpy()  # (final_score: the last epoch each trained, not NaN)
    last = stopped.curves["val_score"][np.arange(len(trained)), np.maximum(trained, 1) - 1]
    np.testing.assert_array_equal(stopped.members["final_score"], np.where(stopped.members["status"] == "diverged",
                                                                            np.nan, last))
    assert np.isfinite(stopped.members["final_score"][stopped.members["status"] == "interrupted"]).all()
    monkeypatch.setattr(engine, "train_chunk", train_chunk)
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, chunk_epochs=1, **SMALL)
    pd.testing.assert_frame_equal(resumed.members, whole.members)
    # the run's start is its first call's: the default Optuna study of the interrupted export is the one an
    # append finishes (its RUNNING trials were left for ever, and a second study made)
    assert resumed.settings["started_at"] == stopped.settings["started_at"]


def test_a_checkpoint_that_cannot_close_inside_a_callers_except_still_raises(data, tmp_path, monkeypatch):
    from vmaptune import checkpoint

    def cannot_commit(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.Checkpoints, "close", cannot_commit)
    try:
        raise MemoryError("an earlier attempt, being retried")
    except MemoryError as first:
        with pytest.raises(OSError, match="No space left on device"):
            vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=2), run_dir=str(tmp_path / "r"),
                    **{**SMALL, "epochs": 1})
        assert not getattr(first, "__notes__", None)


def _immutable(path: str, on: bool) -> bool:
    """chattr +i / -i over path (what makes a directory unwritable even to root); False without it."""
    try:
        return subprocess.run(["chattr", "-R", "+i" if on else "-i", path], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


def test_a_run_directory_made_unwritable_mid_run_ends_the_process_at_once(tmp_path):
    """A checkpoint whose directories cannot be created raises in the search, and the process ends
    then: with the directories created in orbax's thread its other threads waited minutes for
    them before the interpreter could exit."""
    run_dir = tmp_path / "run"
    probe = tmp_path / "probe"
    probe.mkdir()
    if not _immutable(str(probe), True):
        pytest.skip("chattr +i is not available here (a file system or user without it)")
    _immutable(str(probe), False)
    script = textwrap.dedent(f"""
        import subprocess, vmaptune as vt
        from vmaptune.checkpoint import Checkpoints
        save, saves = Checkpoints.save, []
        def locked_before_the_second(self, *args, **kwargs):  # the run directory stops taking writes
            saves.append(1)
            if len(saves) == 2:  # (once the first has committed: this one's directories fail)
                self._manager.wait_until_finished()
                subprocess.run(["chattr", "-R", "+i", {str(run_dir)!r}], check=True)
            return save(self, *args, **kwargs)
        Checkpoints.save = locked_before_the_second
        try:
            vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1)),
                    vt.load_dataset("iris"), vt.RandomSearch(population=2, rounds=3), epochs=1, batch_size=16,
                    progress=False, run_dir={str(run_dir)!r})
        except PermissionError as err:
            print("raised:", any("resume=True" in note for note in err.__notes__))
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not end within 120 s of its search failing to write")
    finally:
        _immutable(str(run_dir), False)
    assert done.returncode == 0 and "raised: True" in done.stdout, done.stdout + done.stderr[-3000:]


def test_ctrl_c_after_a_rounds_training_while_its_strategy_is_told_keeps_the_round(data, monkeypatch):
    """Ctrl-C in the moment between a round's training and its report (the strategy's tell): the
    trained round comes back (status 'interrupted': the strategy was not told). It was lost: round
    0 said 'interrupted before any member trained', a later round went missing."""
    tell, calls = vt.RandomSearch.tell, {"n": 0}

    def ctrl_c_in_second_tell(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return tell(self, *a, **k)

    monkeypatch.setattr(vt.RandomSearch, "tell", ctrl_c_in_second_tell)
    whole_rounds = vt.RandomSearch(population=4, rounds=3)
    with pytest.warns(UserWarning, match=r"interrupted: returning 1 finished round\(s\) and 4 members of the round"):
        results = vt.tune(MODEL, SPACE, data, whole_rounds, **SMALL)
    members = results.members
    assert members["round"].tolist() == [0] * 4 + [1] * 4 and results.settings["interrupted"]
    assert (members.loc[members["round"] == 1, "status"] == "interrupted").all()
    assert members.loc[members["round"] == 1, "score"].notna().all()  # trained to the end: scored


@pytest.mark.parametrize("stop_in, stopped_refit", [("a new round", 1), ("the refit", 1), ("a new round", 2)])
def test_searching_on_with_the_same_refit_keeps_the_old_refit_until_the_new_one_replaces_it(data, tmp_path,
                                                                                           monkeypatch, stop_in,
                                                                                           stopped_refit):
    """A finished run with refit=1 searches on (2 -> 4 rounds, refit=1 again) and is stopped at
    once in its second new round (the first is saved) or in its refit: the old refit's model and test score are still in the
    run (they were deleted at the first new round's save), and the resumed search equals the
    search on that was never stopped (whose refit is of the best of all rounds). Stopped while it
    searched on with a larger refit (2) and resumed with refit=1, it also ends as that search: the
    stopped run's save said refit=2 of the one model it held, and the resume kept that stale refit."""
    from helpers import ctrl_c_at_chunk
    from vmaptune import search as searches

    args = (MODEL, SPACE, data)
    finished = str(tmp_path / "finished")
    vt.tune(*args, vt.RandomSearch(population=4, rounds=2), run_dir=finished, refit=1, **SMALL)
    whole, stopped = str(tmp_path / "whole"), str(tmp_path / "stopped")
    shutil.copytree(finished, whole)
    shutil.copytree(finished, stopped)
    more = vt.RandomSearch(population=4, rounds=4)
    searched_on = vt.tune(*args, more, run_dir=whole, resume=True, refit=1, **SMALL)

    def stop_at_once(*a, **k):
        raise KeyboardInterrupt  # (a second Ctrl-C: no chunk's end is waited for)

    if stop_in == "a new round":
        ctrl_c_at_chunk(monkeypatch, 2)
    else:
        monkeypatch.setattr(searches, "refit_and_test", stop_at_once)
    with pytest.warns(UserWarning, match="interrupted: returning"):
        returned = vt.tune(*args, more, run_dir=stopped, resume=True, refit=stopped_refit, **SMALL)
    monkeypatch.undo()
    if returned.best_index in list(returned.models):  # (the earlier refit's best is still the best)
        assert returned.test_score == returned.members["test_score"][returned.best_index]
    else:  # a better row of the new rounds: not refit yet, said (it read as a silent NaN)
        with pytest.raises(ValueError, match=rf"the best setting \(row {returned.best_index}\) was not refit; the "
                                             r"search was interrupted before its refit"):
            returned.test_score
    kept, old = vt.load_results(stopped), vt.load_results(finished)
    assert kept.members["round"].max() == (2 if stop_in == "a new round" else 3)
    assert sorted(kept.models) == sorted(old.models) and len(old.models) == 1
    row = next(iter(old.models))
    assert kept.members["test_score"][row] == old.members["test_score"][row]
    resumed = vt.tune(*args, more, run_dir=stopped, resume=True, refit=1, **SMALL)
    pd.testing.assert_frame_equal(resumed.members, searched_on.members)
    assert sorted(resumed.models) == sorted(searched_on.models)
    assert sorted(os.listdir(os.path.join(stopped, "models"))) == sorted(os.listdir(os.path.join(whole, "models")))


@pytest.mark.parametrize("damage", ["cut short", "deleted"])
def test_a_refit_model_that_cannot_be_read_is_refit_again_on_resume(data, tmp_path, damage):
    """A finished run whose refit model file was damaged resumed with a raw FileNotFoundError or
    BadZipFile (with a note blaming the disk's writes), forever: only overwrite=True got out."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4))
    run_dir = str(tmp_path / "run")
    done = vt.tune(*args, run_dir=run_dir, refit=1, **SMALL)
    row = next(iter(done.models))
    weights = os.path.join(run_dir, "models", f"row_{row}", "weights.npz")
    if damage == "deleted":
        os.remove(weights)
    else:
        with open(weights, "r+b") as f:
            f.truncate(os.path.getsize(weights) // 2)
    with pytest.warns(UserWarning, match=rf"row_{row} cannot be read \((?!ValueError).*; it is dropped, and a refit "
                                         rf"of row {row} \(refit= as large as the run's\) trains it again: the same setting from the same initial weights, equal to "
                                         r"the lost model up to float rounding"):
        resumed = vt.tune(*args, run_dir=run_dir, resume=True, refit=1, **SMALL)
    pd.testing.assert_frame_equal(resumed.members, done.members)
    X = np.asarray(data.X_test)
    np.testing.assert_array_equal(vt.load_results(run_dir).model(row).predict_proba(X),
                                  done.model(row).predict_proba(X))


def test_a_functions_code_hash_sees_its_defaults_constants_and_numbers_it_reads_and_not_where_it_is_written():
    from vmaptune.checkpoint import code_fingerprint as hashed

    def scaled(hp, scale=1.0):
        return optax.sgd(hp["learning_rate"] * scale)

    def scaled_more(hp, scale=10.0):
        return optax.sgd(hp["learning_rate"] * scale)

    def keyword(hp, *, scale=1.0):
        return optax.sgd(hp["learning_rate"] * scale)

    def keyword_more(hp, *, scale=10.0):
        return optax.sgd(hp["learning_rate"] * scale)

    def closing_over(value):
        return lambda hp: optax.sgd(hp["learning_rate"] * value)

    assert hashed(scaled) != hashed(scaled_more) and hashed(keyword) != hashed(keyword_more)
    assert hashed(lambda hp: 1 if hp["a"] in {"relu", "gelu"} else 0) != hashed(
        lambda hp: 1 if hp["a"] in {"tanh", "elu"} else 0)
    assert hashed(closing_over(np.float32(1.0))) != hashed(closing_over(np.float32(5.0)))
    assert hashed(closing_over(np.float32(1.0))) == hashed(closing_over(np.float32(1.0)))
    import functools

    assert hashed(functools.partial(scaled, scale=1.0)) != hashed(functools.partial(scaled, scale=2.0))
    assert hashed(functools.partial(scaled, scale=1.0)) == hashed(functools.partial(scaled, scale=1.0)) != ""
    # the same function, written on another line and with other spacing, hashes alike
    assert hashed(lambda hp: optax.sgd(hp["learning_rate"])) == hashed(
        lambda  hp :  optax.sgd( hp["learning_rate"] ))  # noqa: E201, E202, E203, E271


def test_a_grid_over_names_out_of_alphabetical_order_resumes_to_the_whole_run(data, tmp_path, monkeypatch):
    """Stopped in its second round and resumed, a grid trains the points the whole run trains (its
    restored state paired the digits of each point with the wrong axes)."""
    from helpers import ctrl_c_at_chunk

    space = vt.Space(momentum=vt.Choice([0.5, 0.9]), learning_rate=vt.Choice([1e-3, 1e-2, 0.1]))
    args = (MODEL, space, data, vt.GridSearch(population=2))
    whole = vt.tune(*args, **SMALL)
    train_chunk = engine.train_chunk
    ctrl_c_at_chunk(monkeypatch, 5)  # (three one-epoch chunks a round: the second round's second)
    run_dir = str(tmp_path / "r")
    with pytest.warns(UserWarning, match="interrupted: returning 1 finished round"):
        stopped = vt.tune(*args, run_dir=run_dir, chunk_epochs=1, **SMALL)
    monkeypatch.setattr(engine, "train_chunk", train_chunk)
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, chunk_epochs=1, **SMALL)
    pd.testing.assert_frame_equal(resumed.members[["momentum", "learning_rate", "score"]],
                                  whole.members[["momentum", "learning_rate", "score"]])
    # the run's start is its first call's (a default Optuna study name, the first trials' times), not the resume's
    assert resumed.settings["started_at"] == stopped.settings["started_at"] < whole.settings["started_at"] + 60
    assert resumed.to_optuna().study_name == stopped.to_optuna().study_name


def test_a_relative_run_dir_keeps_every_file_where_it_was_given_after_a_chdir(data, tmp_path, monkeypatch):
    """A relative run_dir and an os.chdir during the search (in on_round, here): the table, the
    results and the checkpoints all stay in the directory the run was given."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("elsewhere")
    moved = []

    def move_away(results):
        if not moved:
            moved.append(1)
            os.chdir(tmp_path / "elsewhere")

    vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2), run_dir="run", on_round=move_away, **SMALL)
    assert moved and os.listdir(tmp_path / "elsewhere") == []
    assert len(vt.load_results(str(tmp_path / "run")).to_dataframe()) == 2 * 4


def test_a_resume_with_fewer_rounds_keeps_a_round_whose_checkpoint_was_not_committed(data, tmp_path):
    """Killed after a round's table was written but before its checkpoint (written in the
    background) was committed: the newest checkpoint lacks a round the table holds. Resuming with
    fewer rounds is refused (it dropped that round from the table); with as many, it trains the
    round again, as it was."""
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=3))
    run_dir = str(tmp_path / "r")
    whole = vt.tune(*args, run_dir=run_dir, **SMALL)
    folder = os.path.join(run_dir, "checkpoints")
    newest = max(int(name) for name in os.listdir(folder) if name.isdigit())
    os.rename(os.path.join(folder, str(newest)), os.path.join(folder, f"{newest}.orbax-checkpoint-tmp-0"))
    fewer = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2))
    with pytest.raises(ValueError, match=r"has 3 finished round\(s\) in its table \(more than its newest checkpoint "
                                         r"holds\); resuming with fewer would drop them\. Give rounds >= 3\."):
        vt.tune(*fewer, run_dir=run_dir, resume=True, **SMALL)
    pd.testing.assert_frame_equal(vt.load_results(run_dir).members, whole.members)
    resumed = vt.tune(*args, run_dir=run_dir, resume=True, **SMALL)
    pd.testing.assert_frame_equal(resumed.members, whole.members)


def test_a_run_dir_through_a_symlink_and_dot_dot_is_the_directory_the_os_opens(data, tmp_path, monkeypatch):
    """run_dir='link/../run' with link a symlink to real/deep is real/run to the OS: the run goes
    there, and ./run's earlier run is neither refused against nor written over (the path taken
    apart as text, ./run, lost 4 of its 8 members)."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("real/deep")
    os.symlink("real/deep", "link")
    args = (MODEL, SPACE, data, vt.RandomSearch(population=4, rounds=2))
    vt.tune(*args, run_dir="run", **SMALL)
    vt.tune(MODEL, SPACE, data, vt.RandomSearch(population=4), run_dir=os.path.join("link", "..", "run"), **SMALL)
    assert len(vt.load_results("run").to_dataframe()) == 8
    assert len(vt.load_results(os.path.join("real", "run")).to_dataframe()) == 4


@pytest.mark.parametrize("strategy", [vt.RandomSearch(population=4), vt.SuccessiveHalving(population=4, eta=2)])
def test_a_round_of_several_programs_stopped_by_its_time_budget_is_checkpointed_and_resumes_to_the_whole_run(
        data, tmp_path, strategy):
    """A round trained as several programs (width groups): a spent budget is heeded before any
    group trains the next chunk, so every group ends the chunk and it is checkpointed there (heeded
    at the second group's start, the first's chunk was never checkpointed: every resume under a
    budget began the round again); stopped without a run_dir, a strategy acting during training
    returns the round so far (it failed reading groups at different epochs)."""
    space = SPACE.replace(n_units=vt.Choice([4, 32]))
    args = (vt.MLP(hidden=1), space, data, strategy)
    kw = dict(SMALL, bucketing=True)
    whole = vt.tune(*args, **kw)
    assert whole.settings["programs"] == [2]
    with pytest.warns(UserWarning, match="the time budget is spent"):
        cut = vt.tune(*args, time_budget=1e-9, **kw)
    assert cut.settings["time_budget_spent"] and set(cut.members["status"]) == {"interrupted"}
    run_dir, trained = str(tmp_path / "r"), []
    for _ in range(SMALL["epochs"] + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resumed = vt.tune(*args, run_dir=run_dir, resume=True, time_budget=1e-9, **kw)
        if not resumed.settings.get("interrupted"):
            break
        trained.append(resumed.members["epochs_trained"].tolist())
    assert trained == [[e] * 4 for e in range(1, SMALL["epochs"])]  # every group one chunk further each call
    pd.testing.assert_frame_equal(resumed.members, whole.members)
