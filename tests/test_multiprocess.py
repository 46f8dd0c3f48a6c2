"""Several processes on JAX's distributed runtime (vt.distributed), as a user runs them: the same
`vmaptune run CONFIG --coordinator ... --num-processes 2 --process-id I` in each process (here two
local CPU processes with one device each, exchanging through gloo). Every launch has a deadline and
is SIGKILLed past it: a test fails, it never hangs."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import tomllib

import jax
import numpy as np
import pytest
from sklearn.datasets import load_iris

import vmaptune as vt
from helpers import child_environment
from vmaptune import cli, engine, memory
from vmaptune.run_dir import Claim
from vmaptune.search import one_member

CHILD = os.path.join(os.path.dirname(__file__), "multiprocess_child.py")
DEADLINE = 240  # seconds for one launch of 2 processes (about 15 s alone on 2 cores)

def _config(epochs: int, rest: str, *, top: str = "", momentum: bool = True) -> str:
    """A small iris run's config: `epochs`, then `top` lines, the model, the space, and `rest`."""
    space = 'learning_rate = {type = "LogUniform", low = 1e-3, high = 0.3}\n'
    if momentum:
        space += 'momentum = {type = "OneMinusLogUniform", low = 0.5, high = 0.95}\n'
    return (f'dataset = "iris"\nepochs = {epochs}\nseed = 3\nbatch_size = 16\n{top}[model]\nhidden = 1\n'
            f'units = 8\n[space]\n{space}{rest}')


CONFIGS = {
    # early stopping: layouts are chosen from each process's clock, so processes must agree on them;
    # refit: one member's population still spans both processes
    "random": _config(6, '[strategy]\nname = "RandomSearch"\npopulation = 8\nrounds = 2\n'
                         '[early_stopping]\npatience = 1\n', top="refit = 1\n"),
    # rungs and stopped members move the population between layouts: the key arrays too, which JAX's
    # device_put did not move between two layouts over processes
    "halving": _config(8, '[strategy]\nname = "SuccessiveHalving"\npopulation = 16\neta = 2\n'
                          '[early_stopping]\npatience = 1\n', momentum=False),
    # exploit copies members between rows, across processes
    "pbt": _config(4, '[strategy]\nname = "PBT"\npopulation = 8\ninterval = 1\ngenerations = 2\n'),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def launch(tmp_path, config: str, *, run_dir: str = "run", child: tuple = (), flags: bool = True,
           extra: tuple = (), processes: int = 2, own_config: dict | None = None,
           told: dict | None = None, devices: int = 1) -> list[tuple[int, str, str]]:
    """Runs `processes` processes of `vmaptune run`, process i in tmp_path/p<i>; returns each one's
    (exit code, stdout, stderr). run_dir is relative to that folder unless absolute. own_config:
    process -> a config text of its own (a process started with other settings). told: process ->
    the num_processes it is told (flags=False), where that is not `processes`. devices: CPU devices
    per process."""
    path = tmp_path / "config.toml"
    path.write_text(CONFIGS[config])
    for i, text in (own_config or {}).items():
        (tmp_path / f"config{i}.toml").write_text(text)
    port = free_port()
    env = child_environment()  # the suite's compiler flags, not its 4 devices
    env["VMAPTUNE_CPU_DEVICES"] = str(devices)  # (one: the population spans the processes)
    started = []
    for i in range(processes):
        cwd = tmp_path / f"p{i}"
        cwd.mkdir(exist_ok=True)
        join = (("--coordinator", f"localhost:{port}", "--num-processes", str(processes), "--process-id", str(i))
                if flags else ())
        own = ("--join", f"localhost:{port}", str((told or {}).get(i, processes)), str(i)) if not flags else ()
        mine = tmp_path / f"config{i}.toml" if i in (own_config or {}) else path
        cmd = [sys.executable, CHILD, *child, *own, "--", "run", str(mine), "--out", run_dir, "--no-progress",
               *join, *extra]
        started.append(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, start_new_session=True))
    deadline, out = time.monotonic() + DEADLINE, []
    try:
        for p in started:
            stdout, stderr = p.communicate(timeout=max(deadline - time.monotonic(), 1))
            out.append((p.returncode, stdout, stderr))
    except subprocess.TimeoutExpired:
        for p in started:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:  # ended between the poll and the kill
                    pass
        errors = [p.communicate(timeout=10)[1] for p in started]
        tails = "\n".join(f"process {i} (exit {p.returncode}):\n{err[-2000:]}" for i, (p, err) in
                          enumerate(zip(started, errors)))
        pytest.fail(f"{processes} processes of `vmaptune run` did not end within {DEADLINE} s\n{tails}")
    return out


def reference(config: str, tmp_path) -> vt.Results:
    """The same search in this one process (4 devices), trained once per test process: several
    tests compare with it (a Results the tests only read)."""
    if config not in _REFERENCES:
        path = tmp_path / "one.toml"
        path.write_text(CONFIGS[config])
        model, space, data, strategy, kwargs = cli.build(cli.load_config(str(path)))
        _REFERENCES[config] = vt.tune(model, space, data, strategy, progress=False, **kwargs)
    return _REFERENCES[config]


_REFERENCES: dict[str, vt.Results] = {}


def assert_same(got: vt.Results, want: vt.Results) -> None:
    assert len(got) == len(want)
    for name in want.space.names:
        np.testing.assert_allclose(got.hp[name], want.hp[name], rtol=1e-6)
    for column in ("score", "test_score"):
        if column in want.members:
            np.testing.assert_allclose(got.members[column], want.members[column], rtol=1e-5, atol=1e-6)
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose(got.curves[key], want.curves[key], rtol=1e-4, atol=1e-5)


def resume_here(tmp_path, config: str, run_dir: str) -> None:
    """`vmaptune run CONFIG --out RUN_DIR --resume` in this one process (4 devices): a run two
    processes checkpointed resumes here to the one-process result (the test of a killed run resumes
    on two processes)."""
    path = tmp_path / "resume.toml"
    path.write_text(CONFIGS[config])
    assert cli.main(["run", str(path), "--out", run_dir, "--resume", "--no-progress"]) == 0
    assert_same(vt.load_results(run_dir), reference(config, tmp_path))


def succeeded(out) -> None:
    for i, (code, stdout, stderr) in enumerate(out):
        assert code == 0, f"process {i} exited {code}:\n{stdout}\n{stderr[-3000:]}"


def assert_only_process_0_wrote(tmp_path, out) -> None:
    assert os.listdir(tmp_path / "p1") == [], "process 1 wrote files"  # its run_dir is its own folder's
    assert "best validation" in out[0][1] and "best validation" not in out[1][1]  # process 0 reports for both


# PBT across processes is compared with one process by the resume test below, "random" by the test
# of a process that reaches the search late
def test_two_processes_give_the_one_process_results_and_members_that_stop_move_to_fewer_devices(tmp_path):
    """2 processes x 2 devices, early stopping: the survivors go to a smaller mesh over fewer devices
    of each process, through the host (JAX reshards between processes only within one device set:
    the move failed with 'input and target sharding should have the same set of devices'). Under a
    max_memory that holds 2 members per device, the 16 members train in micro-populations of 8 rows
    over both processes (its measure lowered a one-row program over both processes, and failed with
    'a population of 1 rows cannot split over 2 processes'). The results are the one process's
    (without a budget), and only process 0 writes."""
    model, space, data, _, kwargs = cli.build(tomllib.loads(CONFIGS["halving"]))
    program = vt.build_program(model, space, data, batch_size=kwargs["batch_size"])
    one, two = (memory.training_bytes(program, engine.data_arrays(data), one_member(space), rows) for rows in (1, 2))
    budget = int(one + 1.5 * (two - one))  # (2 members per device, in the middle of 2 and 3)
    assert memory.members_that_fit(program, engine.data_arrays(data), one_member(space), budget) == 2
    limited = f"max_memory = {budget}\n" + CONFIGS["halving"]
    out = launch(tmp_path, "halving", devices=2, own_config={0: limited, 1: limited})
    succeeded(out)
    assert_same(vt.load_results(tmp_path / "p0" / "run"), reference("halving", tmp_path))
    assert_only_process_0_wrote(tmp_path, out)


def test_a_killed_multiprocess_run_resumes_to_the_uninterrupted_result(tmp_path):
    run_dir = str(tmp_path / "shared" / "run")  # one directory every process reads (a shared file system)
    killed = launch(tmp_path, "pbt", run_dir=run_dir, child=("--at-chunk", "3", "--do", "kill"))
    assert all(code == -signal.SIGKILL for code, _, _ in killed), [k[2][-2000:] for k in killed]
    assert os.listdir(os.path.join(run_dir, "checkpoints")), "no checkpoint was taken before the kill"
    succeeded(launch(tmp_path, "pbt", run_dir=run_dir, extra=("--resume",)))
    assert_same(vt.load_results(run_dir), reference("pbt", tmp_path))


def test_a_failing_process_ends_the_others_with_an_error(tmp_path):
    started = time.monotonic()
    out = launch(tmp_path, "pbt", flags=False, child=("--at-chunk", "1", "--do", "fail", "--in-process", "1"))
    assert time.monotonic() - started < DEADLINE
    (code0, _, err0), (code1, _, err1) = out
    assert code1 != 0 and "vmaptune: process 1 of 2 stopped on the error below" in err1
    assert "test failure in process 1" in err1
    assert code0 != 0 and "distributed service detected fatal errors" in err0, err0[-3000:]


def test_on_round_runs_in_process_0_and_its_error_stops_every_process_at_once(tmp_path):
    """on_round runs in process 0; its error is agreed on, so the others stop at that round's end with
    an error naming it instead of training on to wait for process 0 until JAX's shutdown timeout."""
    started = time.monotonic()
    (code0, _, err0), (code1, _, err1) = launch(tmp_path, "random", flags=False, child=("--on-round-fails",))
    assert code0 != 0 and "test on_round failure after round 0" in err0, err0[-3000:]
    assert code1 != 0 and "on_round raised in process 0 after round 0" in err1, err1[-3000:]
    assert "test on_round failure" not in err1  # (process 1 never called it)
    assert time.monotonic() - started < 120
    # (given to process 0 alone: the test of a process that reaches the search late)


def test_processes_started_differently_all_stop_at_once_naming_the_difference(tmp_path):
    """Another epoch count in one process, then a run directory another run holds: each is an
    error in every process before anything compiles, not a collective's size error or a wait."""
    started = time.monotonic()
    out = launch(tmp_path, "random", own_config={1: CONFIGS["random"].replace("epochs = 6", "epochs = 7")})
    for i, (code, _, err) in enumerate(out):
        assert code == 2 and "the processes of this run differ: process(es) [1] from process 0" in err, err[-2000:]
    for _, _, err in out:  # (process 0 names the difference too)
        assert "settings.epochs: process 0 has '6', process 1 has '7'" in err, err[-2000:]
    run_dir = tmp_path / "shared" / "run"
    run_dir.mkdir(parents=True)
    claim = Claim(str(run_dir))  # (as another run writing there holds it)
    try:
        out = launch(tmp_path, "random", run_dir=str(run_dir))
    finally:
        claim.release()
    assert out[0][0] == 2 and "is in use: a vmaptune run is writing there now" in out[0][2], out[0][2][-2000:]
    assert out[1][0] == 2 and "was refused in another process (its error says why)" in out[1][2], out[1][2][-2000:]
    assert time.monotonic() - started < 120  # (a process left waiting at a barrier would take minutes)


def test_ctrl_c_in_one_process_stops_every_process_together_and_the_run_resumes(tmp_path):
    """Ctrl-C (SIGINT) reaches process 0 only: every process stops at the next chunk's start and
    exits 130, instead of process 0 stopping alone while process 1 waits in a collective until the
    distributed service's timeout (or gloo aborts on mismatched collectives)."""
    run_dir = str(tmp_path / "shared" / "run")
    started = time.monotonic()
    out = launch(tmp_path, "pbt", run_dir=run_dir, child=("--at-chunk", "3", "--do", "interrupt", "--in-process", "0"))
    assert time.monotonic() - started < 60, "the processes waited for the distributed service's timeout"
    (code0, _, err0), (code1, _, err1) = out
    assert code0 == code1 == 130, (err0[-2000:], err1[-2000:])
    assert "vmaptune: Ctrl-C in process 0: every process stops after the chunk in progress" in err0
    assert "interrupted; " in err0 and "interrupted; " in err1
    # (process 1's own log says why it stopped: no Ctrl-C came to it)
    assert "vmaptune: Ctrl-C in process 0: every process stops after the chunk in progress, this one (1)" in err1
    resume_here(tmp_path, "pbt", run_dir)


def test_sigterm_in_every_process_checkpoints_saves_and_ends_them_all(tmp_path):
    """A scheduler preempting the job sends SIGTERM to every process: they stop together at the
    next chunk, checkpoint and save there, and end as SIGTERM ends a process; the run resumes."""
    run_dir = str(tmp_path / "shared" / "run")
    out = launch(tmp_path, "pbt", run_dir=run_dir, child=("--at-chunk", "3", "--do", "terminate", "--in-process",
                                                          "all"))
    for code, _, err in out:
        assert code == -signal.SIGTERM, err[-2000:]
        assert "every process stops after the chunk in progress" in err and "terminated (SIGTERM): saved" in err
    assert vt.load_results(run_dir).settings["interrupted"]
    resume_here(tmp_path, "pbt", run_dir)


def test_sigterm_in_one_process_ends_it_and_the_others_return_interrupted_without_waiting(tmp_path):
    """SIGTERM reaches process 1 only (a scheduler preempting one host): every process stops at the
    next chunk, process 1 ends as SIGTERM ends a process, process 0 reports the run interrupted
    (130). Process 1 leaves JAX's distributed runtime first: killed without it, process 0 waited at
    its exit for the heartbeat timeout, then aborted with status 134."""
    run_dir = str(tmp_path / "shared" / "run")
    started = time.monotonic()
    out = launch(tmp_path, "pbt", run_dir=run_dir, child=("--at-chunk", "3", "--do", "terminate", "--in-process", "1"))
    assert time.monotonic() - started < 60, "a process waited for the distributed service's timeout"
    (code0, _, err0), (code1, _, err1) = out
    assert code1 == -signal.SIGTERM and "terminated (SIGTERM): saved" in err1, err1[-2000:]
    assert code0 == 130 and "interrupted; " in err0, err0[-2000:]
    assert "vmaptune: SIGTERM in process 1: every process stops after the chunk in progress, this one (0)" in err0
    resume_here(tmp_path, "pbt", run_dir)


def test_a_run_checkpointed_on_one_process_resumes_on_two(tmp_path):
    """A population of 7 rows checkpointed by one process resumes on two, which need an even row
    count: filler rows pad the restored round (the resume failed with 'a population of 7 rows
    cannot split over 2 processes'). Equal to the uninterrupted run up to float rounding."""
    run_dir = str(tmp_path / "shared" / "run")
    seven = CONFIGS["pbt"].replace("population = 8", "population = 7")
    killed = launch(tmp_path, "pbt", run_dir=run_dir, processes=1, own_config={0: seven},
                    child=("--at-chunk", "3", "--do", "kill"))
    assert killed[0][0] == -signal.SIGKILL, killed[0][2][-2000:]
    succeeded(launch(tmp_path, "pbt", run_dir=run_dir, own_config={0: seven, 1: seven}, extra=("--resume",)))
    path = tmp_path / "seven.toml"
    path.write_text(seven)
    model, space, data, strategy, kwargs = cli.build(cli.load_config(str(path)))
    assert_same(vt.load_results(run_dir), vt.tune(model, space, data, strategy, progress=False, **kwargs))


def test_a_process_told_another_process_count_stops_every_process(tmp_path):
    """Process 1 started with num_processes=3 joins the 2-process cluster of process 0 (JAX lets it)
    and ran on silently; vt.tune now compares the counts before anything compiles."""
    started = time.monotonic()
    out = launch(tmp_path, "random", flags=False, told={1: 3})
    assert time.monotonic() - started < 120
    for code, _, err in out:
        assert code == 2 and "the processes of this run differ: process(es) [1] from process 0" in err, err[-2000:]
    assert "num_processes given: process 0 has '2', process 1 has '3'" in out[1][2], out[1][2][-2000:]


def test_a_process_that_reaches_the_search_late_is_waited_for(tmp_path):
    """Process 1 reaches the search 35 s after process 0 (a host slower to load its data): gloo
    gives up on a process after 30 s, and process 0 stopped with ProcessLost, blaming a process
    that was only late. The search's start is a line-up through JAX's coordination service,
    which waits as long as the join did; both processes give the one-process results, and only
    process 0 writes.

    `--optuna sqlite:///...` (vt.OptunaExport as on_round, which runs in process 0) exports every
    round: the export must not exchange with the other processes, whose next exchange is the
    search's own (both processes hung after the first round). An on_round given to process 0 alone
    runs there after each round, and the processes' exchanges still pair up."""
    import optuna  # (the dev extra's)

    storage = f"sqlite:///{tmp_path}/runs.db"
    out = launch(tmp_path, "random", child=("--late", "35", "--in-process", "1", "--on-round-in-process-0"),
                 extra=("--optuna", storage, "--study-name", "live"))
    succeeded(out)
    assert "on_round after round 0" in out[0][1] and "on_round after round 1" in out[0][1]
    assert "on_round" not in out[1][1]
    assert_same(vt.load_results(tmp_path / "p0" / "run"), reference("random", tmp_path))
    assert_only_process_0_wrote(tmp_path, out)
    assert len(optuna.load_study(study_name="live", storage=storage).trials) == 16  # (2 rounds of 8)


def test_a_process_that_stops_before_the_search_stops_the_others_at_once(tmp_path):
    """Process 1 fails before the search (its data did not load): process 0, waiting at the
    search's start, is told through the coordination service and stops within seconds, naming
    process 1, instead of after gloo's 30 s with 'one of them never came'."""
    started = time.monotonic()
    (code0, _, err0), (code1, _, err1) = launch(tmp_path, "random", flags=False,
                                                child=("--fail-before-search", "--in-process", "1"))
    assert code1 != 0 and "test failure in process 1 before the search" in err1, err1[-2000:]
    assert code0 != 0 and ("process 0 of 2 waited at the start of a search (vt.tune) for the others, and process 1 "
                           "(RuntimeError) stopped before getting there: its own output says why") in err0, err0[-3000:]
    assert time.monotonic() - started < 60


LOSS_FAILS_IN_PROCESS_1 = """
import sys
import jax
import optax
import vmaptune as vt
port, me = sys.argv[1], int(sys.argv[2])
vt.distributed.initialize(f"localhost:{port}", 2, me, heartbeat_timeout_seconds=10, shutdown_timeout_seconds=10)
def loss(outputs, targets):
    if jax.process_index() == 1:
        raise RuntimeError("test failure: the loss fails in process 1")
    return optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
vt.tune(vt.MLP(hidden=1, units=8, loss=loss), vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1)), vt.load_dataset("iris"),
        vt.RandomSearch(population=2), epochs=1, batch_size=16, progress=False)
"""


def test_a_loss_that_fails_in_one_process_as_the_search_checks_it_stops_the_others_at_once(tmp_path):
    """Your loss is first traced as the search checks the model: an error there in process 1 left
    process 0 in the next exchange until JAX's shutdown timeout aborted both (300 s by default),
    without naming process 1. A line-up after the checks stops it at once, naming process 1."""
    started = time.monotonic()
    (code0, _, err0), (code1, _, err1) = launch_script(tmp_path, LOSS_FAILS_IN_PROCESS_1)
    assert code1 != 0 and "test failure: the loss fails in process 1" in err1, err1[-2000:]
    assert code0 != 0 and ("ProcessLost: process 0 of 2 waited at the checks of the search's model, loss and metric "
                           "(vt.tune) for the others, and process 1 (") in err0, err0[-3000:]
    assert time.monotonic() - started < 60


AFTER_THE_SEARCH = """
import sys
import time
import tomllib
import vmaptune as vt
port, me, shared = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if me == 1:  # (a host whose clock is 5 s ahead)
    time.time = lambda now=time.time: now() + 5.0
vt.distributed.initialize(f"localhost:{port}", 2, me, heartbeat_timeout_seconds=10, shutdown_timeout_seconds=10)
live = lambda so_far: so_far.to_optuna(f"sqlite:///{shared}/live.db", "live", append=True)  # noqa: E731
result = vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1)), vt.load_dataset("iris"),
                 vt.RandomSearch(population=2, rounds=2), epochs=2, refit=1, progress=False, on_round=live)
study = result.to_optuna(f"sqlite:///{shared}/runs.db")  # (every process calls it; the default name from the start)
result.best_model().save(f"{shared}/model")
vt.distributed.barrier("saved")
if me == 1:  # a database each process has of its own, process 1's holding a stale study of that name
    import optuna
    stale = optuna.create_study(storage=f"sqlite:///{shared}/own1.db", study_name="own", direction="maximize")
    for member in range(4):
        stale.add_trial(optuna.trial.create_trial(value=0.1 * member, user_attrs={"round": 0, "member": member}))
try:
    result.to_optuna(f"sqlite:///{shared}/own{me}.db", study_name="own", overwrite=True)
    print("own database: exported", flush=True)
except ValueError as err:
    print("own database:", err, flush=True)
print("started", result.settings["started_at"], "study", study.study_name, flush=True)
print("trials", len(study.trials), "model", vt.TrainedModel.load(f"{shared}/model").predict(
    vt.load_dataset("iris").raw("test")[0])[:5].tolist(), flush=True)
if me == 0:  # process 1 ends: an export in process 0 alone, without this_process_alone
    try:
        result.to_optuna(f"sqlite:///{shared}/alone.db", study_name="alone")
    except Exception as err:
        print("alone:", type(err).__name__, err, *getattr(err, "__notes__", ()), file=sys.stderr, flush=True)
"""


def launch_script(tmp_path, script: str) -> list[tuple[int, str, str]]:
    """Two processes of a Python script of a user's (argv: port, process id, tmp_path); returns each
    one's (exit code, stdout, stderr). SIGKILLed past the deadline: a test fails, it never hangs."""
    port, env = free_port(), {**child_environment(), "VMAPTUNE_CPU_DEVICES": "1"}
    started = [subprocess.Popen([sys.executable, "-c", script, str(port), str(i), str(tmp_path)], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True) for i in range(2)]
    try:
        out = [p.communicate(timeout=DEADLINE) for p in started]
    finally:
        for p in started:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    return [(p.returncode, stdout, stderr) for p, (stdout, stderr) in zip(started, out)]


def test_writes_after_a_search_called_in_every_process_are_made_once(tmp_path):
    """Every process calls result.to_optuna(database) and model.save(dir), as a script written for
    one process does: the Optuna export raced to create one study (process 1 failed with 'already
    in') and both processes wrote one model's files at once. Process 0 writes; the others get the
    study it wrote, and read the model after a barrier."""
    out = launch_script(tmp_path, AFTER_THE_SEARCH)
    succeeded(out)
    # to_optuna in process 0 alone (under is_primary(), the others ended): said at once, with the fix (a
    # collective waited for process 1 until JAX's shutdown timeout, then aborted both processes)
    assert ("alone: ProcessLost process 0 of 2 waited at result.to_optuna(...) for the others, and process 1 (ended) "
            "stopped before getting there") in out[0][2], out[0][2][-3000:]
    assert "it goes under `with vt.distributed.this_process_alone():`" in out[0][2], out[0][2][-3000:]
    lines = [stdout.strip().splitlines()[-3:] for _, stdout, _ in out]
    # (on_round runs in process 0 alone: an export there waited for the others, which never came)
    optuna = pytest.importorskip("optuna")
    assert len(optuna.load_study(study_name="live", storage=f"sqlite:///{tmp_path}/live.db").trials) == 4
    # one start time (process 0's) names one default study, whatever the hosts' clocks say
    assert lines[0][1:] == lines[1][1:] and lines[0][2].startswith("trials 4 model ["), lines
    assert lines[0][1].startswith("started ") and "study vmaptune iris " in lines[0][1], lines
    # a storage that is not shared: process 1 is told, not handed Optuna's KeyError (or a stale study)
    assert lines[0][0].startswith(f"own database: to_optuna: another process does not find in "
                                  f"'sqlite:///{tmp_path}/own0.db' the study 'own' that process 0 wrote"), lines
    assert lines[1][0] == (f"own database: to_optuna: process 1 does not find in 'sqlite:///{tmp_path}/own1.db' the "
                           "study 'own' that process 0 wrote (none of that name, or one holding other trials): in a "
                           "multi-process run every process must reach one storage (a database server, or a SQLite "
                           "file on a file system they share). Or export from process 0 alone: if "
                           "vt.distributed.is_primary(): with vt.distributed.this_process_alone(): "
                           "result.to_optuna(...)."), lines


PROCESSES_THAT_DIFFER = """
import dataclasses
import sys
import flax.linen as nn
import jax.numpy as jnp
import numpy as np
from sklearn.model_selection import KFold
import vmaptune as vt
port, me, shared = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vt.distributed.initialize(f"localhost:{port}", 2, me, heartbeat_timeout_seconds=10, shutdown_timeout_seconds=10)
SCALE = 1.0 if me == 0 else 100.0  # (read from each host's own environment, say)


class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(3)(nn.relu(nn.Dense(8)(x * SCALE)))


@dataclasses.dataclass(frozen=True)
class Jittered(vt.RandomSearch):  # draws from numpy's own random state: another draw in each process
    def ask(self, state, key):
        hp, state = super().ask(state, key)
        rates = np.random.default_rng(me).uniform(1e-3, 0.1, self.population)
        return {**hp, "learning_rate": jnp.asarray(rates, jnp.float32)}, state


iris, rate = vt.load_dataset("iris"), vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1))
searches = {  # each refused in every process: the processes stay in step for the next one
    "modules": lambda: vt.tune(vt.Linen(Net), rate, iris, vt.RandomSearch(population=4), epochs=1, progress=False),
    "strategy": lambda: vt.tune(vt.MLP(hidden=1, units=4), rate, iris, Jittered(population=4), epochs=1,
                                progress=False),
    "unseeded folds": lambda: vt.tune(vt.MLP(hidden=1, units=8), rate, iris, vt.RandomSearch(population=4),
                                      epochs=1, batch_size=16, cv=KFold(3, shuffle=True), progress=False),
    "seeded folds": lambda: vt.tune(vt.MLP(hidden=1, units=8), rate, iris, vt.RandomSearch(population=4),
                                    epochs=1 + me, batch_size=16, cv=KFold(3, shuffle=True, random_state=0),
                                    progress=False),
}
for name, search in searches.items():
    try:
        search()
        print(f"{name}: trained", flush=True)
    except ValueError as err:
        print(f"{name}: refused: " + str(err).replace(chr(10), " ") + "|", flush=True)
"""


def test_processes_that_differ_are_refused_naming_the_difference(tmp_path):
    """One launch of two processes, four searches, each refused in every process:
    - the same module class reading a global that differs between hosts trained half the members
      with one network and half with the other, and ranked them together, without a word;
    - a strategy drawing other values in each process: JAX's own error said a numpy.ndarray passed
      to device_put differed, and dumped it;
    - a cv splitter that shuffles without a random_state deals other folds in each process, and
      "start every process with the same arguments, data and code" was no fix;
    - the same folds (a seeded splitter), other epochs: the hint is for the folds alone."""
    out = launch_script(tmp_path, PROCESSES_THAT_DIFFER)
    for code, stdout, err in out:
        assert code == 0, err[-3000:]
        names = ("modules", "strategy", "unseeded folds", "seeded folds")
        said = dict(line.split(": ", 1) for line in stdout.splitlines() if line.split(": ", 1)[0] in names)
        assert said.keys() == set(names), stdout  # (gloo writes lines of its own there)
        assert all(value.startswith("refused: ") for value in said.values()), said
        assert "the processes of this run differ" in said["modules"], said
        assert "model code: process 0 has 'Linen(Net) code Net.__call__ " in said["modules"], said
        assert "the processes of this run computed different values for the population" in said["strategy"], said
        assert "must draw only from the key it is given" in said["strategy"], said
        assert "settings.splits: process 0 has" in said["unseeded folds"], said
        assert ("The folds differ: a cv splitter that shuffles without a random_state deals other folds"
                in said["unseeded folds"]), said
        assert "settings.epochs: process 0 has '1', process 1 has '2'" in said["seeded folds"], said
        assert "settings.splits" not in said["seeded folds"] and "The folds differ" not in said["seeded folds"], said


A_STUDY_IT_CANNOT_FILL = """
import sys
import optuna
import vmaptune as vt
port, me, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vt.distributed.initialize(f"localhost:{port}", 2, me, heartbeat_timeout_seconds=10, shutdown_timeout_seconds=10)
storage = f"sqlite:///{folder}/runs.db"
if me == 0:
    optuna.create_study(storage=storage, study_name="made")  # (made beforehand: minimize)
vt.distributed.barrier("study made")
export = vt.OptunaExport(storage, "made") if me == 0 else None  # (given in process 0 alone)
try:
    vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1)), vt.load_dataset("iris"),
            vt.RandomSearch(population=2), epochs=1, progress=False, on_round=export)
except ValueError as err:
    print("refused:", err, flush=True)
"""


def test_a_live_export_refused_in_process_0_stops_every_process_before_training(tmp_path):
    """vt.OptunaExport given in process 0 alone, into a study set to the other direction: process 0
    refuses before the first round, and process 1, which has no on_round, stops with it (it would
    otherwise wait in the first round's exchange for a process that left)."""
    pytest.importorskip("optuna")
    out = launch_script(tmp_path, A_STUDY_IT_CANNOT_FILL)
    succeeded(out)
    assert "refused: study_name='made' in " in out[0][1] and "is set to minimize" in out[0][1], out[0]
    assert "refused: vmaptune: on_round refused the run in process 0" in out[1][1], out[1]


OUT_OF_STEP = """
import sys
import vmaptune as vt
from vmaptune import cli, engine, memory
port, me, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vt.distributed.initialize(f"localhost:{port}", 2, me, heartbeat_timeout_seconds=10, shutdown_timeout_seconds=10)
with open(f"{folder}/bad{me}.toml", "w") as f:
    f.write('dataset = "iris"\\nepochs = "six"\\n[space]\\nlearning_rate = 0.01\\n')
assert cli.main(["run", f"{folder}/bad{me}.toml", "--no-progress"]) == 2  # (refused: this process goes on)
search = lambda: vt.tune(vt.MLP(hidden=1, units=4), vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1)),
                         vt.load_dataset("iris"), vt.RandomSearch(population=2), epochs=1, progress=False)
print("first search", len(search()), flush=True)
if me == 0:
    vt.distributed.barrier("only in process 0")
search()
"""


def test_processes_out_of_step_are_named_and_one_refused_config_does_not_stop_the_others(tmp_path):
    """A config refused by `vmaptune run` called as a function (the process goes on) is not said as a
    stop to the others: the next search runs. A barrier only process 0 reaches paired with process
    1's next search and passed silently; now both name where each of them is."""
    started = time.monotonic()
    out = launch_script(tmp_path, OUT_OF_STEP)
    in_order = "every process must reach each vt.tune and each vt.distributed.barrier(...) in the same order"
    for code, stdout, err in out:
        assert "first search 2" in stdout, err[-3000:]
        # (process 1 may read process 0's stop before its arrival, under load: then it says that, as true)
        assert code != 0 and (in_order in err or "process 0 (ValueError) stopped before getting there" in err), \
            err[-3000:]
    assert in_order in out[0][2], out[0][2][-3000:]
    assert "process 0 of 2 is at vt.distributed.barrier('only in process 0'), and process 1 at the start of a " \
           "search (vt.tune)" in out[0][2], out[0][2][-3000:]
    assert time.monotonic() - started < 120


def test_sigterm_after_joining_and_before_a_search_ends_the_process(tmp_path):
    """JAX's preemption notifier takes SIGTERM at jax.distributed.initialize and only records it: a
    scheduler's stop between joining and the search (loading data, compiling) went unheeded. After
    vt.distributed.initialize, SIGTERM leaves the run and ends the process as its default would."""
    script = ("import sys, time\nimport vmaptune as vt\n"
              f"vt.distributed.initialize('localhost:{free_port()}', 1, 0)\n"
              "print('joined', flush=True)\ntime.sleep(60)\nprint('still running', flush=True)\n")
    env = {**child_environment(), "VMAPTUNE_CPU_DEVICES": "1"}
    p = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 120)  # (a hung child fails the test, never hangs it)
        assert ready and p.stdout.readline().strip() == "joined"
        p.send_signal(signal.SIGTERM)
        stdout, stderr = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == -signal.SIGTERM and "still running" not in stdout, (stdout, stderr[-2000:])
    assert "vmaptune: SIGTERM: process 0 leaves the run and ends." in stderr


SKLEARN_SEARCH = """
import json, sys
import jax
import numpy as np
from sklearn.datasets import load_iris
import vmaptune as vt
port, me = sys.argv[1], int(sys.argv[2])
vt.distributed.initialize(f"localhost:{port}", 2, me, heartbeat_timeout_seconds=10, shutdown_timeout_seconds=10)
X, y = load_iris(return_X_y=True)
search = vt.PopulationSearchCV(SEARCH_ESTIMATOR, {"learning_rate": vt.LogUniform(1e-3, 0.1)}, n_iter=4, cv=2,
                               random_state=0).fit(X, y)
weights = lambda est: np.concatenate([np.ravel(w) for w in jax.tree.leaves(est.model_.params)]).tolist()
if me == 0:  # a fit in one process alone waits on no other process
    vt.NetworkClassifier(vt.MLP(hidden=1, units=4), epochs=2, random_state=1).fit(X, y)
vt.distributed.barrier("after the fit in process 0")
alone = vt.NetworkClassifier(vt.MLP(hidden=1, units=4), epochs=5, early_stopping=True, patience=2,
                             random_state=2).fit(X, y)  # (in every process)
print(json.dumps({"best_params": search.best_params_, "mean_test_score": search.cv_results_["mean_test_score"].tolist(),
                  "proba": search.predict_proba(X[::10]).tolist(), "score": search.score(X, y),
                  "weights": weights(search.best_estimator_), "alone": weights(alone)}), flush=True)
"""
SEARCH_ESTIMATOR = "vt.NetworkClassifier(vt.MLP(hidden=1, units=8), epochs=3, batch_size=16, random_state=0)"


def test_a_search_refits_in_every_process_and_a_network_fits_in_each_alone(tmp_path):
    """PopulationSearchCV(...).fit, then predict / score / best_estimator_, in every process, as a
    script written for one process does: the refit's one network (NetworkClassifier.fit, devices=1)
    was refused in a run of 2 processes ('devices=1 must be a multiple of the 2 processes'), and
    over every process's devices its weights were on devices the other process cannot read. Each
    process now trains it alone on its own device: the same weights in every process (same data and
    seed), equal to the one-process search's; a fit in one process alone does not wait for the others."""
    out = launch_script(tmp_path, SKLEARN_SEARCH.replace("SEARCH_ESTIMATOR", SEARCH_ESTIMATOR))
    succeeded(out)
    got = [json.loads(stdout.strip().splitlines()[-1]) for _, stdout, _ in out]
    assert got[0] == got[1]  # bit for bit: the same network in every process
    X, y = load_iris(return_X_y=True)
    one = vt.PopulationSearchCV(eval(SEARCH_ESTIMATOR), {"learning_rate": vt.LogUniform(1e-3, 0.1)}, n_iter=4, cv=2,
                                random_state=0).fit(X, y)
    assert got[0]["best_params"] == pytest.approx(one.best_params_, rel=1e-6)
    np.testing.assert_allclose(got[0]["mean_test_score"], one.cv_results_["mean_test_score"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0]["proba"], one.predict_proba(X[::10]), rtol=1e-4, atol=1e-5)
    weights = np.concatenate([np.ravel(w) for w in jax.tree.leaves(one.best_estimator_.model_.params)])
    np.testing.assert_allclose(got[0]["weights"], weights, rtol=1e-4, atol=1e-5)
    assert got[0]["score"] == pytest.approx(one.score(X, y))


