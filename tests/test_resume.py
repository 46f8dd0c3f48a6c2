"""Kill -9 at chosen points, resume, and get exactly the uninterrupted run (vt.tune(..., resume=True))."""

import importlib
import os
import shutil
import signal
import subprocess
import sys

import chex
import numpy as np
import pandas as pd
import pytest

import vmaptune as vt

sys.path.insert(0, os.path.dirname(__file__))
import resume_child  # noqa: E402

CHILD = os.path.join(os.path.dirname(__file__), "resume_child.py")

# 10 kills over seven strategies and a flax module of your own: after a chunk (five strategies), inside a checkpoint's commit
# (three), inside a results write (one); mid-round in PBT, Hyperband, BOHB and successive halving under cv.
KILLS = {
    "random": ["chunk:3", "results:1"],  # two width groups, two refits of different widths (resume_child.py)
    "bayesopt": ["chunk:5"],  # in round 1, after the first model-based ask
    "evolution": ["checkpoint:3"],
    "pbt": ["chunk:2", "checkpoint:2"],
    "hyperband": ["checkpoint:4"],
    "bohb": ["chunk:6"],  # mid bracket 1, after its model-based proposals
    "halving_cv": ["chunk:2"],  # after the first rung's decision, the settings' folds packed together
    "linen_pbt": ["chunk:3"],  # your own module: BatchNorm statistics and PBT's copies of them, mid-round
}


def run_child(*args, timeout=300):
    return subprocess.run([sys.executable, CHILD, *args], capture_output=True, text=True, timeout=timeout)


def assert_same_results(got: vt.Results, want: vt.Results) -> None:
    pd.testing.assert_frame_equal(got.members, want.members)  # dtypes included
    assert got.curves.keys() == want.curves.keys()
    for name in want.curves:
        np.testing.assert_array_equal(got.curves[name], want.curves[name])
    for name in want.hp:
        np.testing.assert_array_equal(got.hp[name], want.hp[name])
    assert got.best_index == want.best_index and got.best_params == want.best_params


@pytest.mark.parametrize("name", sorted(KILLS))
def test_killed_runs_resume_to_the_uninterrupted_result(name, tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.import_module("vmaptune.tune"), "MID_ROUND_SECONDS", 0.0)  # the same checkpoints as the child's
    want = resume_child.search(name, str(tmp_path / "uninterrupted"), resume=False)
    if name == "hyperband":  # Hyperband(eta=2) took tune's epochs=4 as its largest budget: its brackets
        assert want.members.groupby("round").size().tolist() == [4, 3, 3]
    run_dir = str(tmp_path / "killed")
    for kill in KILLS[name]:
        done = run_child(name, run_dir, kill)
        assert done.returncode == -signal.SIGKILL, (kill, done.returncode, done.stderr[-2000:])
        if os.path.exists(os.path.join(run_dir, "results.npz")):  # whatever is there loads whole
            assert len(vt.load_results(run_dir)) > 0
    if name == "random":  # resumed in a fresh process, as after a crash
        done = run_child(name, run_dir)
        assert done.returncode == 0, done.stderr[-3000:]
        got = vt.load_results(run_dir)
    else:  # (in this one: a process less to start for each)
        got = resume_child.search(name, run_dir)
    assert_same_results(got, want)
    assert_same_results(vt.load_results(run_dir), want)
    assert sorted(got.models) == sorted(want.models)
    for row in want.models:  # refit weights too, bit for bit
        chex.assert_trees_all_equal(got.model(row).variables, want.model(row).variables)
    ids = got.members["member"].to_numpy()
    np.testing.assert_array_equal(ids, np.arange(len(ids)))  # no member lost or trained twice


@pytest.mark.parametrize("name", ["random_es", "pbt", "hyperband_plain"])
def test_a_run_killed_with_two_epoch_chunks_resumes_with_other_chunks_to_the_uninterrupted_result(name, tmp_path):
    """chunk_epochs changes no result where no decision waits for a chunk's end (every other is taken at
    epochs of its own, every draw indexed by epoch): a resume may shorten chunks for a scheduler's
    grace period. It was refused, the run lost."""
    want = resume_child.search(name, str(tmp_path / "uninterrupted"), chunk_epochs=2)
    killed = str(tmp_path / "killed")
    done = subprocess.run([sys.executable, CHILD, name, killed, "chunk:3"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "RESUME_CHILD_CHUNK_EPOCHS": "2"})
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    for chunks in (1, 3):
        run_dir = str(tmp_path / f"resumed{chunks}")
        shutil.copytree(killed, run_dir)
        assert_same_results(resume_child.search(name, run_dir, chunk_epochs=chunks), want)


def test_a_resume_with_other_chunks_where_early_stopping_compacts_at_chunk_ends_is_refused_saying_why(tmp_path):
    run_dir = str(tmp_path / "run")
    resume_child.search("random_compact", run_dir, resume=False, chunk_epochs=2)
    with pytest.raises(ValueError, match=r"settings.chunk_epochs: saved 2\n.*now   1\nchunk_epochs matters to this "
                                         r"run: its early stopping takes stopped members out of the population at "
                                         r"chunk ends"):
        resume_child.search("random_compact", run_dir, chunk_epochs=1)


def resumed_here(name: str, run_dir: str, monkeypatch) -> tuple[vt.Results, int]:
    """Resumes the run in this process: (its results, the chunks it trained)."""
    from vmaptune import population

    record, chunks = population.PopulationRun._record, {"n": 0}

    def recorded(self, *args, **kwargs):
        record(self, *args, **kwargs)
        chunks["n"] += 1
    monkeypatch.setattr(population.PopulationRun, "_record", recorded)
    got = resume_child.search(name, run_dir)
    monkeypatch.setattr(population.PopulationRun, "_record", record)
    return got, chunks["n"]


def test_sigterm_checkpoints_at_the_chunk_end_saves_and_ends_the_process(tmp_path, monkeypatch):
    """A scheduler's SIGTERM (preemption): the chunk in progress ends, the run is checkpointed there
    and saved, the process ends as SIGTERM ends it (-15), and the resumed run trains only the chunks
    that were left (mid-round checkpoints at their usual pace: without the signal's own checkpoint
    the round would start over) and equals the uninterrupted run."""
    want = resume_child.search("bayesopt", str(tmp_path / "uninterrupted"), resume=False)  # 2 rounds x 4 epochs, one program
    run_dir = str(tmp_path / "preempted")
    done = run_child("bayesopt", run_dir, "chunk:3:TERM")
    assert done.returncode == -signal.SIGTERM, done.stderr[-2000:]
    assert ("SIGTERM: the run stops after the chunk in progress, checkpointed (a refit in progress is trained again "
            "on resume; SIGTERM again: at once)") in done.stderr
    assert "terminated (SIGTERM): saved 0 finished round(s) and 4 members of the round in progress" in done.stderr
    saved = vt.load_results(run_dir)
    assert saved.settings["interrupted"] and saved.members["status"].tolist() == ["interrupted"] * 4
    assert np.isfinite(saved.curves["val_score"][:, :3]).all() and np.isnan(saved.curves["val_score"][:, 3]).all()
    got, chunks = resumed_here("bayesopt", run_dir, monkeypatch)
    assert chunks == 5  # 8 in all, 3 before the signal
    assert_same_results(got, want)
    assert_same_results(vt.load_results(run_dir), want)


def test_sigterm_as_the_finished_run_is_saved_ends_the_process_once_it_is_saved_whole_and_says_so(tmp_path,
                                                                                                   monkeypatch):
    """SIGTERM as the finished run's save starts (after its refit): the save ends whole, then the
    process ends (-15), saying the run is finished. It said the run stops after the chunk in
    progress; two signals cut the save before it wrote, while a warning said it was saved whole."""
    want = resume_child.search("random", str(tmp_path / "uninterrupted"), resume=False)  # (refit=2: two models to save)
    for signals in (1, 2):
        run_dir = str(tmp_path / f"preempted_{signals}")
        done = run_child("random", run_dir, f"final_save:{signals}:TERM")
        assert done.returncode == -signal.SIGTERM, done.stderr[-2000:]
        assert "vmaptune: SIGTERM: the run has finished; it is being saved whole, then the process ends." in done.stderr
        said = "terminated (SIGTERM) while saving the finished run; it is saved whole in"  # (the second signal's)
        assert (said in done.stderr) == (signals == 2), done.stderr[-2000:]
        got = vt.load_results(run_dir)
        assert got.settings["finished"] and sorted(got.models) == sorted(want.models)
        assert_same_results(got, want)
        again, chunks = resumed_here("random", run_dir, monkeypatch)  # (the requeued job)
        assert chunks == 0
        assert_same_results(again, want)


def test_a_strategy_acting_during_training_is_checkpointed_at_its_decisions_not_after_every_chunk(tmp_path,
                                                                                                  monkeypatch):
    """A checkpoint after every one-epoch chunk made PBT(interval=50) with a run_dir twice as slow;
    the chunks between two decisions replay exactly, so the run is saved where a decision was made
    (and on the clock), and at the end of the round (epochs_done 0)."""
    from vmaptune.checkpoint import Checkpoints

    saved, save = [], Checkpoints.save

    def spy(self, host, arrays, **meta):
        saved.append(meta["epochs_done"])
        return save(self, host, arrays, **meta)

    monkeypatch.setattr(Checkpoints, "save", spy)
    vt.tune(vt.MLP(hidden=1, units=8), resume_child.SPACE, resume_child.data(), vt.PBT(population=4, interval=3),
            epochs=9, batch_size=16, run_dir=str(tmp_path / "pbt"), progress=False)
    assert saved == [3, 6, 0]


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_a_ctrl_c_before_anything_trained_says_so_and_promises_no_checkpoint(tmp_path, capsys):
    """Ctrl-C while the first round is still being prepared (its strategy asking, programs
    compiling): no chunk is in progress, so the held Ctrl-C says nothing trained yet, not 'stops
    after the chunk in progress, checkpointed', and the run ends with nothing to keep."""

    class InterruptedWhileAsking(vt.RandomSearch):
        def ask(self, *args, **kwargs):
            signal.raise_signal(signal.SIGINT)  # (held: vt.tune's handler only records it)
            return super().ask(*args, **kwargs)

    with pytest.raises(KeyboardInterrupt) as stop:
        vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1)), vt.load_dataset("iris"),
                InterruptedWhileAsking(population=2), epochs=1, run_dir=str(tmp_path / "run"), progress=False)
    err = capsys.readouterr().err
    assert "Ctrl-C: nothing has trained yet in this call; the run stops before its first chunk (Ctrl-C again: at once)" in err
    assert "checkpointed" not in err
    assert "interrupted before any member trained; nothing to keep" in "".join(stop.value.__notes__)


@pytest.mark.usefixtures("sigint_as_a_user_has_it")
def test_a_ctrl_c_while_the_first_chunk_compiles_keeps_that_chunk_and_says_so(tmp_path, capsys, monkeypatch):
    """Ctrl-C while the first chunk compiles: that chunk's start has passed, so it trains and is
    checkpointed, and the message says that, not 'nothing has trained yet'."""
    from vmaptune import population

    chunk_function, fired = population.PopulationRun._chunk_function, []

    def interrupted_while_compiling(self):
        function = chunk_function(self)

        class Lowered:
            def lower(self, *args):
                if not fired:
                    fired.append(signal.raise_signal(signal.SIGINT))  # (held by vt.tune's handler)
                return function.lower(*args)

            def __call__(self, *args):
                return function(*args)

        return Lowered()

    monkeypatch.setattr(population.PopulationRun, "_chunk_function", interrupted_while_compiling)
    run_dir = str(tmp_path / "run")
    with pytest.warns(UserWarning, match="interrupted: returning 0 finished round"):
        result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1)),
                         vt.load_dataset("iris"), vt.RandomSearch(population=2), epochs=6, chunk_epochs=3,
                         run_dir=run_dir, progress=False)
    assert fired and "Ctrl-C: the run stops after the chunk in progress, checkpointed" in capsys.readouterr().err
    assert result.members["epochs_trained"].tolist() == [3, 3] and os.listdir(os.path.join(run_dir, "checkpoints"))


def test_a_resumed_runs_progress_bar_rates_only_the_epochs_this_call_trains():
    """The rounds finished before are where the bar starts (tqdm's update counted them as trained
    in an instant: a resumed finished run showed some 800,000 epoch/s)."""
    import io
    import time

    from vmaptune.history import Progress
    from vmaptune.metrics import get_metric

    progress = Progress(vt.RandomSearch(population=2, rounds=4), vt.Space(learning_rate=vt.Fixed(0.1)), 10,
                        get_metric(None, "classification"), enabled=True)
    progress.bar.fp = io.StringIO()
    progress.skip(3)
    time.sleep(0.2)
    progress.start_round(0.0).on_chunk(5, {"val_score": np.array([[0.5]])})
    shown = progress.bar.format_dict
    assert shown["n"] == 35 and shown["rate"] is not None and shown["rate"] <= 5 / 0.2 + 1e-6
    progress.bar.close()
