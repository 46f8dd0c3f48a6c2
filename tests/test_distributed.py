"""Splitting a population over devices and stepping it in member blocks changes speed, never
results (within float tolerance: other matmul shapes may round differently)."""

import os
import signal
import socket
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

import vmaptune as vt
from helpers import SMALL_SPACE, host, run_population, small_program, train
from vmaptune import distributed, engine

P = 8


def assert_close_runs(a, b):
    (state_a, curves_a), (state_b, curves_b) = a, b
    for x, y in zip(jax.tree.leaves(host(state_a.params)), jax.tree.leaves(host(state_b.params))):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    for x, y in zip(jax.tree.leaves(host(state_a.opt_state)), jax.tree.leaves(host(state_b.opt_state))):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    for key in curves_a:
        np.testing.assert_allclose(curves_a[key], curves_b[key], rtol=1e-4, atol=1e-5)
    for key in ("active", "diverged", "best_epoch"):
        np.testing.assert_array_equal(np.asarray(getattr(state_a.status, key)),
                                      np.asarray(getattr(state_b.status, key)))


def test_the_suite_sees_several_devices():
    assert len(jax.devices()) == 4  # conftest: otherwise every test below runs on one device


@pytest.fixture(scope="module")
def hp():
    return SMALL_SPACE.sample(jax.random.key(5), P)


@pytest.fixture(scope="module")
def one_device(digits):
    return small_program(digits).replace(devices=1, member_block=0)


@pytest.mark.parametrize("devices, block", [(1, 2), (4, 0), (4, 1)])
def test_devices_and_blocks_train_the_same_members(one_device, digits, hp, devices, block):
    reference = train(one_device, SMALL_SPACE, digits, hp, range(P))
    layout = one_device.replace(devices=devices, member_block=block)
    assert_close_runs(train(layout, SMALL_SPACE, digits, hp, range(P)), reference)


def test_uneven_population_uses_the_devices_that_divide_it(one_device, digits, hp):
    six = {k: v[:6] for k, v in hp.items()}
    assert distributed.population_mesh(4, 6).devices.size == 3
    assert distributed.population_mesh(4, 7) is None
    reference = train(one_device, SMALL_SPACE, digits, six, range(6))
    layout = one_device.replace(devices=4, member_block=2)
    state, curves = train(layout, SMALL_SPACE, digits, six, range(6))
    assert len(state.params["hidden_0_kernel"].sharding.device_set) == 3
    assert_close_runs((state, curves), reference)


@pytest.mark.parametrize("kind", ["own_order", "batch_size", "cv"])
def test_blocks_and_devices_with_per_member_rows(digits, kind):
    """Each member's own minibatch order, own batch size or own fold is cut into blocks correctly."""
    space = SMALL_SPACE
    if kind == "batch_size":
        space = SMALL_SPACE.replace(batch_size=vt.IntUniform(16, 32))
    program = small_program(digits, space=space, shared_order=(kind != "own_order"))
    hp = space.numeric(space.sample(jax.random.key(6), P))
    arrays, fold = engine.data_arrays(digits), None
    if kind == "cv":
        from vmaptune.replicas import cv_arrays
        arrays, _ = cv_arrays(digits, 2, 0)
        fold = np.arange(P) % 2

    def run(devices, block):
        layout = program.replace(devices=devices, member_block=block)
        done = run_population(layout, hp, arrays, np.arange(P), epochs=2, fold=fold)
        return done.state.members, done.curves

    assert_close_runs(run(4, 2), run(1, 0))


def test_new_values_on_several_devices_do_not_recompile(digits, hp):
    program = small_program(digits).replace(devices=4, member_block=1)
    train(program, SMALL_SPACE, digits, hp, range(P))
    before = dict(engine.TRACE_COUNTS)
    other = SMALL_SPACE.sample(jax.random.key(99), P)
    train(program, SMALL_SPACE, digits, other, range(P), seed=3)
    assert dict(engine.TRACE_COUNTS) == before


def test_tune_splits_populations_and_records_the_layout(digits):
    result = vt.tune(vt.MLP(hidden=1, units=16), SMALL_SPACE, digits, vt.RandomSearch(population=8), epochs=1,
                     progress=False, devices=2, member_block=2)
    assert result.settings["devices"] == 2 and result.settings["member_block"] == 2
    assert len(result.to_dataframe()) == 8


@pytest.mark.parametrize("kwargs, message", [
    ({"devices": 0}, r"devices must be None \(all 4\) or an integer >= 1, got 0"),
    ({"devices": 5}, r"devices=5, but JAX sees 4 device\(s\).*Use devices <= 4; on a CPU, set XLA_FLAGS' "
                     r"--xla_force_host_platform_device_count \(it decides the count here\)"),
    ({"devices": 2.0}, r"devices must be .* got 2.0"),
    ({"member_block": -1}, r"member_block must be None \(automatic\), 0 \(no blocks\) or an integer >= 1, got -1"),
])
def test_bad_layout_arguments_fail_before_compiling(digits, kwargs, message):
    before = dict(engine.TRACE_COUNTS)
    with pytest.raises(ValueError, match=message):
        vt.tune(vt.MLP(hidden=1, units=16), SMALL_SPACE, digits, vt.RandomSearch(population=8), epochs=1,
                progress=False, **kwargs)
    assert dict(engine.TRACE_COUNTS) == before


def test_default_member_block_follows_the_network_size():
    assert distributed.default_member_block(10_000, "cpu") == 32  # small net: many members per block
    assert distributed.default_member_block(106_000, "cpu") == 4  # 64-128-128-10 MLP
    assert distributed.default_member_block(1_200_000, "cpu") == 2  # never below 2
    assert distributed.default_member_block(10_000, "gpu") == 0  # accelerators: whole population


def run_python(code, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", distributed.CPU_DEVICES_ENV)}
    clean.update(env)
    return subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True, timeout=120)


def test_import_shows_cpu_cores_as_devices_unless_told_otherwise():
    code = "import vmaptune, jax; print(len(jax.devices()))"
    assert run_python(code, VMAPTUNE_CPU_DEVICES="3").stdout.strip() == "3"
    assert run_python(code, VMAPTUNE_CPU_DEVICES="1").stdout.strip() == "1"
    # the user's own choice wins
    assert run_python(code, VMAPTUNE_CPU_DEVICES="3",
                      XLA_FLAGS="--xla_force_host_platform_device_count=2").stdout.strip() == "2"
    started = "import jax; jax.numpy.ones(1); import vmaptune; print(len(jax.devices()))"
    assert run_python(started, VMAPTUNE_CPU_DEVICES="3").stdout.strip() == "1"  # too late: left alone
    bad = run_python(code, VMAPTUNE_CPU_DEVICES="two")
    assert bad.returncode != 0 and "VMAPTUNE_CPU_DEVICES='two' must be an integer >= 1" in bad.stderr
    # a later choice in code (vt.distributed.initialize(cpu_devices=...)) replaces the import's own
    later = "import vmaptune, jax; vmaptune.distributed.configure_cpu_devices({}); print(len(jax.devices()))"
    assert run_python(later.format(3), VMAPTUNE_CPU_DEVICES="2").stdout.strip() == "3"
    assert run_python(later.format(1), VMAPTUNE_CPU_DEVICES="2").stdout.strip() == "1"
    assert run_python(later.format(3), VMAPTUNE_CPU_DEVICES="2",
                      XLA_FLAGS="--xla_force_host_platform_device_count=2").stdout.strip() == "2"  # (the user's)
    late = run_python("import vmaptune, jax; jax.numpy.ones(1); vmaptune.distributed.initialize('localhost:1', 1, 0, "
                      "cpu_devices=3)", VMAPTUNE_CPU_DEVICES="2")
    assert late.returncode != 0 and "cpu_devices=3 cannot be applied: JAX's device count was set elsewhere" in late.stderr


def test_width_buckets_get_their_own_automatic_member_block(digits):
    from vmaptune.program import Programs

    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 5e-2), n_units=vt.IntUniform(8, 512))
    program = vt.build_program(vt.MLP(hidden=2), space, digits, batch_size=32)
    narrow = Programs(vt.MLP(hidden=2), space, digits, program, bucketing=True).program(16)
    assert program.member_block == 2 and narrow.member_block > program.member_block  # a narrow net fits more
    chosen = vt.build_program(vt.MLP(hidden=2), space, digits, batch_size=32, member_block=8)
    assert Programs(vt.MLP(hidden=2), space, digits, chosen, member_block=8).program(16).member_block == 8


@pytest.mark.parametrize("kwargs, message", [
    ({"coordinator_address": "node001", "num_processes": 2, "process_id": 0}, "must be 'host:port'"),
    ({"coordinator_address": "node001:8476", "num_processes": 2, "process_id": 2}, "must be below num_processes=2"),
    ({"coordinator_address": "node001:8476", "num_processes": -1, "process_id": 0}, "num_processes=-1 must be"),
])
def test_distributed_initialize_refuses_bad_arguments_before_starting_anything(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distributed.initialize(**kwargs)
    assert jax.process_count() == 1


def test_distributed_initialize_outside_a_cluster_says_what_to_pass(tmp_path):
    # a fresh process (initialize must come before JAX starts), no cluster in its environment
    code = "import vmaptune as vt; vt.distributed.initialize()"
    cluster = ("SLURM_", "OMPI_", "PMI_", "KUBERNETES_", "JAX_COORDINATOR", "TPU_", "CLOUD_TPU", "MEGASCALE_")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(cluster)}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "vt.distributed.initialize(coordinator_address=None, num_processes=None, process_id=None) found no " \
           "cluster" in done.stderr, done.stderr[-2000:]
    assert "coordinator_address='host:port'" in done.stderr and "leave the call out" in done.stderr
    # (no "joining the cluster's coordinator; it waits up to 300 s" before an error that comes at once)
    assert "vmaptune: process looking for its cluster (SLURM, Open MPI" in done.stderr and "joining" not in done.stderr
    config = tmp_path / "c.toml"
    config.write_text("dataset = 'iris'\nepochs = 1\n[space]\nlearning_rate = 0.01\n")
    code = f"from vmaptune.cli import main; raise SystemExit(main(['run', {str(config)!r}, '--distributed']))"
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--distributed found no cluster" in done.stderr, done.stderr[-2000:]
    assert "--coordinator HOST:PORT" in done.stderr and "leave --distributed out" in done.stderr


def test_a_coordinator_port_in_use_is_named_before_joining(tmp_path):
    """JAX's coordinator server crashed (a segmentation fault, no message) on a port in use."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"coordinator_address='localhost:{port}': port {port} is already in use "
                                             rf"on this host .* Give every process another free port \(e\.g\. localhost:"):
            distributed.initialize(f"localhost:{port}", 2, 0)
        assert jax.process_count() == 1
        config = tmp_path / "c.toml"
        config.write_text("dataset = 'iris'\nepochs = 1\n[space]\nlearning_rate = 0.01\n")
        code = (f"from vmaptune.cli import main; raise SystemExit(main(['run', {str(config)!r}, '--coordinator', "
                f"'localhost:{port}', '--num-processes', '2', '--process-id', '0']))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"--coordinator localhost:{port}: port {port} is already in use" in done.stderr, \
        done.stderr[-2000:]


def test_one_process_helpers_change_nothing():
    assert distributed.whole_rows(5) == 5 and distributed.is_primary()
    assert distributed.agree(3) == 3
    distributed.barrier("nothing to wait for")
    x = jax.device_put(np.arange(8.0), jax.sharding.NamedSharding(distributed.population_mesh(4, 8),
                                                                  jax.sharding.PartitionSpec("population")))
    host = distributed.to_host({"x": x, "key": jax.random.key(1)})
    np.testing.assert_array_equal(host["x"], np.arange(8.0))
    np.testing.assert_array_equal(host["key"], np.asarray(jax.random.key_data(jax.random.key(1))))
    assert distributed.mesh_size(8, 4) == 4 and distributed.mesh_size(6, 4) == 3 and distributed.mesh_size(0, 4) == 1


def test_the_run_command_wants_all_three_process_flags(tmp_path, capsys):
    from vmaptune import cli

    config = tmp_path / "c.toml"
    config.write_text('dataset = "iris"\n[space]\nlearning_rate = {type = "LogUniform", low = 0.001, high = 0.1}\n')
    assert cli.main(["run", str(config), "--coordinator", "localhost:1234", "--no-progress"]) == 2
    assert "--coordinator, --num-processes and --process-id go together" in capsys.readouterr().err


def exchange_failing_with(monkeypatch, error: Exception, process: int) -> None:
    """This process is `process` of 2, and its exchanges' gather raises `error`."""
    from jax.experimental import multihost_utils

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(multihost_utils, "process_allgather", failing)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "process_index", lambda: process)


def test_a_process_that_never_comes_to_an_exchange_is_said_as_process_lost(monkeypatch):
    """Process 0 stopped before the search (a Ctrl-C while data loaded): process 1's exchange got
    gloo's raw DEADLINE_EXCEEDED after 30 s; now an error that says what happened and where to look."""
    exchange_failing_with(monkeypatch, jax.errors.JaxRuntimeError(
        "UNKNOWN: Gloo context initialization failed: DEADLINE_EXCEEDED: GetKeyValue() timed out with key: "
        "cpu:gloo/0,2048/0"), process=1)
    with pytest.raises(distributed.ProcessLost, match=r"process 1 of 2 waited for the others in an exchange "
                                                      r"\(smallest\) and one of them never came \(JAX: UNKNOWN: Gloo "
                                                      r"context .*DEADLINE_EXCEEDED.*\)\. It ended or was stopped "
                                                      r"\(Ctrl-C, an error, a kill\).*its own output says why"):
        distributed.smallest(1.0)


def test_a_process_that_goes_away_during_an_exchange_is_said_as_process_lost(monkeypatch):
    """Another process killed while this one gathers: gloo's connection reset comes as a ValueError,
    which JAX's runtime errors alone were translated from; a ValueError of the exchange's own stays."""
    exchange_failing_with(monkeypatch, ValueError(
        "UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:538] Read error "
        "[127.0.0.1]:6346: Connection reset by peer"), process=0)
    with pytest.raises(distributed.ProcessLost, match=r"process 0 of 2 waited for the others in an exchange "
                                                      r"\(smallest\) and one of them went away during it \(JAX: "
                                                      r"UNKNOWN: Gloo AllGather failed.*Connection reset by peer\)"):
        distributed.smallest(1.0)
    exchange_failing_with(monkeypatch, ValueError("shapes differ"), process=0)
    with pytest.raises(ValueError, match="^shapes differ$"):
        distributed.smallest(1.0)


def test_a_second_ctrl_c_of_several_processes_says_it_is_already_stopping(capsys):
    """Several processes stop together, after the chunk in progress, so a second Ctrl-C cannot stop
    one at once; it was met by silence. It now says so, with the kill that ends this process."""
    from vmaptune import interrupts

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # (as a user's terminal has it)
    try:
        with interrupts.held_until_chunk_end(process=1, processes=2):
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # (held, not raised: the processes stop together)
            assert interrupts.pending() == signal.SIGINT
            interrupts.take_pending()
    finally:
        signal.signal(signal.SIGINT, previous)
    err = capsys.readouterr().err
    assert "Ctrl-C in process 1: every process stops after the chunk in progress" in err
    assert f"already stopping: every process stops together, after the chunk in progress (kill -9 {os.getpid()} " \
           f"ends process 1 now" in err


SCALE = 1.0
CHOICES = (optax.sgd, object())  # objects whose repr holds an address: another in every process


def _optimizer_reading_a_global(hp):
    return CHOICES[0](hp["learning_rate"] * SCALE)


def test_processes_given_different_functions_of_one_name_are_told_apart(monkeypatch):
    """The facts every process compares (tune._facts) fingerprint your functions: `def opt(hp)` reading
    another value (a closure's, a global's) in one process is a difference, not a silent mixture."""
    from vmaptune.checkpoint import code_fingerprint

    def made(scale):
        def opt(hp):
            return optax.sgd(hp["learning_rate"] * scale)
        return opt
    assert code_fingerprint(made(1.0)) == code_fingerprint(made(1.0)) != code_fingerprint(made(10.0))
    before = code_fingerprint(_optimizer_reading_a_global)
    monkeypatch.setattr(sys.modules[__name__], "CHOICES", (optax.sgd, object()))  # (as another process sees it)
    assert code_fingerprint(_optimizer_reading_a_global) == before
    monkeypatch.setattr(sys.modules[__name__], "SCALE", 10.0)
    assert code_fingerprint(_optimizer_reading_a_global) != before
    metric = vt.Metric("hits", "classification", lambda outputs, targets: (outputs.argmax(-1) == targets).mean())
    assert code_fingerprint(metric).startswith(" code sha256 ") and code_fingerprint("accuracy") == ""


MODULE_SOURCE = """
import flax.linen as nn

CFG = {{"hidden": 8, "out_dir": {out_dir!r}}}  # (a config with each host's own paths)
name = {name!r}  # (a log name of each host's: the module's self.name is no read of it)
SCALE = {scale}


class Net(nn.Module):
    width: int = {width}

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(3)(nn.Dense(CFG["hidden"])(x * SCALE) + self.width)
"""


def _module(out_dir="/a", name="worker-0", scale=1.0, width=8):
    namespace = {"__name__": "models"}
    exec(compile(MODULE_SOURCE.format(out_dir=out_dir, name=name, scale=scale, width=width), "models.py", "exec"),
         namespace)
    return vt.Linen(namespace["Net"])


def test_the_model_code_processes_compare_names_the_part_that_differs_and_only_that():
    """Two processes running one script: a module reading a global that differs, or a field default
    that differs, is a difference (the part named); a host's own log name or paths in a config the
    module reads another key of are not (the same script was refused)."""
    from vmaptune.checkpoint import model_fingerprint

    same = model_fingerprint(_module())
    assert same.startswith(" code Net.__call__ ") and ", Net.width " in same
    assert model_fingerprint(_module(out_dir="/b", name="worker-1")) == same
    scaled, wider = model_fingerprint(_module(scale=100.0)), model_fingerprint(_module(width=16))
    assert scaled.split(", ")[0] != same.split(", ")[0] and scaled.split(", ")[1:] == same.split(", ")[1:]
    assert wider.split(", ")[0] == same.split(", ")[0] and wider.split(", ")[1:] != same.split(", ")[1:]
    assert model_fingerprint(vt.MLP()) == ""


HASH_SEEDED = """
import flax.linen as nn, jax.numpy as jnp, numpy as np
import vmaptune as vt
from vmaptune.checkpoint import model_fingerprint
KINDS = {"relu", "gelu", "tanh", "silu", "elu"}
TABLE = {"names": ["a", "b"], "kinds": KINDS}
WEIGHTS = np.linspace(0, 1, 4)
class Net(nn.Module):
    act: str = "relu"
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x + WEIGHTS.sum() + jnp.ones(4).sum() + len(TABLE["names"])
        return nn.Dense(3)(x if self.act in KINDS else -x)
print(model_fingerprint(vt.Linen(Net)))
"""


def test_the_model_code_is_the_same_under_another_hash_seed():
    """Sets iterate in another order in each process (PYTHONHASHSEED): the globals a module loads
    were read in that order, and two processes of one script differed."""
    runs = [subprocess.run([sys.executable, "-c", HASH_SEEDED], env={**os.environ, "PYTHONHASHSEED": seed},
                           capture_output=True, text=True, timeout=120) for seed in ("1", "777")]
    assert runs[0].returncode == 0, runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.startswith(" code Net.__call__ ")


def test_the_model_code_leaves_out_what_each_process_holds_of_its_own():
    """A class attribute read as its repr differed between processes running one script: a logger's
    level, a set's order, a path. Such objects are left out; functions, partials, enums, dtypes and
    jax.random.key values are compared."""
    import enum
    import functools
    import logging
    import pathlib
    import threading

    import flax.linen as nn
    import jax.numpy as jnp

    from vmaptune.checkpoint import model_fingerprint

    class Colour(enum.Enum):
        RED = 1
        BLUE = 2

    def net(level, colour, slope, key):
        class Net(nn.Module):
            log = logging.getLogger(f"net-{level}")
            lock = threading.Lock()
            folder = pathlib.Path(f"/scratch/host{level}")
            act = functools.partial(nn.leaky_relu, negative_slope=slope)
            tint = colour
            dtype = jnp.float32
            seed = key

            @nn.compact
            def __call__(self, x, train: bool = False):
                return nn.Dense(3)(self.act(x))
        return vt.Linen(Net)

    key = jax.random.key(0)
    same = model_fingerprint(net(0, Colour.RED, 0.1, key))
    assert model_fingerprint(net(1, Colour.RED, 0.1, key)) == same  # (the logger, lock and path left out)
    assert "Net.log" not in same and "Net.lock" not in same and "Net.act " in same and "Net.tint " in same
    others = (net(0, Colour.BLUE, 0.1, key), net(0, Colour.RED, 0.2, key), net(0, Colour.RED, 0.1, jax.random.key(1)))
    for other in others:
        assert model_fingerprint(other) != same


def test_the_model_code_compares_a_config_dataclass_default_by_its_fields():
    """A frozen dataclass default (a config of the module's) was left out with the objects a
    process holds of its own: Cfg(scale=1) in one process and Cfg(scale=100) in the other trained
    one mixed population."""
    import dataclasses
    import logging

    import flax.linen as nn

    from vmaptune.checkpoint import model_fingerprint

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        scale: float
        log: logging.Logger = logging.getLogger("cfg")  # (left out: its text is each process's own)

    def net(scale):
        class Net(nn.Module):
            cfg: Cfg = Cfg(scale)
            dtype: np.dtype = np.dtype("float32")

            @nn.compact
            def __call__(self, x, train: bool = False):
                return nn.Dense(3)(x * self.cfg.scale)
        return vt.Linen(Net)

    assert model_fingerprint(net(1.0)) == model_fingerprint(net(1.0)) != model_fingerprint(net(100.0))


def test_the_processes_agree_on_the_rows_whatever_each_names_its_data():
    """Hosts reading their own copies of a CSV under other file names were refused as running other
    data (the rows and their sha256 the same), though a resume takes exactly that difference."""
    import dataclasses

    from vmaptune.tune import _facts

    Settings = dataclasses.make_dataclass("Settings", [("epochs", int)])  # (the settings' fields as they are)
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    facts = [_facts(vt.MLP(), SMALL_SPACE, vt.Dataset.from_arrays(X, y, "classification", name=name),
                    vt.RandomSearch(population=4), Settings(epochs=1), None, None, None, False, False)
             for name in ("train", "train_copy")]
    assert facts[0] == facts[1]
    other = vt.Dataset.from_arrays(np.random.default_rng(1).normal(size=(40, 3)), y, "classification", name="train")
    assert _facts(vt.MLP(), SMALL_SPACE, other, vt.RandomSearch(population=4), Settings(epochs=1), None, None, None,
                  False, False)["data"] != facts[0]["data"]
