"""Structural and categorical hyperparameters inside one compiled program."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vmaptune as vt
from helpers import host, take, train
from vmaptune import engine
from vmaptune.optim import SCHEDULES, schedule_factor


def prepare(space, data, batch_size=64, model=vt.MLP(hidden=1, units=16)):
    return vt.build_program(model, space, data, batch_size=batch_size)


def run(program, space, data, hp, ids, epochs=1):
    return train(program, space, data, hp, ids, epochs=epochs)


def test_each_member_trains_on_exactly_the_rows_and_steps_of_its_batch_size(digits):
    space = vt.Space(learning_rate=vt.Fixed(0.05), batch_size=vt.Choice([16, 50, 128]))
    program = prepare(space, digits)
    assert program.variable_batch and program.batch_size == 128
    assert program.steps_per_epoch(digits.n_train) == digits.n_train // 16
    hp = space.encode([{"learning_rate": 0.05, "batch_size": b} for b in (16, 50, 128)])
    together, curves = run(program, space, digits, hp, [0, 1, 2], epochs=2)
    for i, b in enumerate((16, 50, 128)):
        fixed_space = vt.Space(learning_rate=vt.Fixed(0.05))
        alone_program = prepare(fixed_space, digits, batch_size=b)
        alone, alone_curves = run(alone_program, fixed_space, digits, fixed_space.encode({"learning_rate": 0.05}), [i],
                                  epochs=2)
        for x, y in zip(jax.tree.leaves(take(together.params, i)), jax.tree.leaves(take(alone.params, 0))):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
        # the step count is exactly what batch b implies for two epochs; then the member was frozen
        assert int(take(together.opt_state, i).inner_state.count) == 2 * (digits.n_train // b)
        np.testing.assert_allclose(curves["train_loss"][i], alone_curves["train_loss"][0], rtol=1e-4)


def test_even_batches_train_each_member_as_alone_on_batches_of_one_size_near_its_own(digits):
    """even_batches (the scikit-learn estimators' batching): batch b on n rows steps n // ceil(n / b)
    rows, n // that steps an epoch; a batch above the rows is one step of all of them."""
    n = digits.n_train
    sizes = (16, 50, 10 * n)
    space = vt.Space(learning_rate=vt.Fixed(0.05), batch_size=vt.Choice(list(sizes)))
    program = vt.build_program(vt.MLP(hidden=1, units=16), space, digits, even_batches=True)
    even = [n // -(-n // min(b, n)) for b in sizes]
    assert program.padded_batch(n) == n and program.steps_per_epoch(n) == n // even[0]
    hp = space.encode([{"learning_rate": 0.05, "batch_size": b} for b in sizes])
    together, curves = run(program, space, digits, hp, [0, 1, 2], epochs=2)
    for i, b in enumerate(sizes):
        fixed_space = vt.Space(learning_rate=vt.Fixed(0.05))
        alone_program = vt.build_program(vt.MLP(hidden=1, units=16), fixed_space, digits, batch_size=b,
                                         even_batches=True)
        assert alone_program.padded_batch(n) == even[i]
        alone, alone_curves = run(alone_program, fixed_space, digits, fixed_space.encode({"learning_rate": 0.05}), [i],
                                  epochs=2)
        for x, y in zip(jax.tree.leaves(take(together.params, i)), jax.tree.leaves(take(alone.params, 0))):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
        assert int(take(together.opt_state, i).inner_state.count) == 2 * (n // even[i])
        np.testing.assert_allclose(curves["train_loss"][i], alone_curves["train_loss"][0], rtol=1e-4)
        # the estimators' way before: whole batches of the evened size, bit for bit
        whole = vt.build_program(vt.MLP(hidden=1, units=16), fixed_space, digits, batch_size=even[i])
        same, _ = run(whole, fixed_space, digits, fixed_space.encode({"learning_rate": 0.05}), [i], epochs=2)
        for x, y in zip(jax.tree.leaves(same.params), jax.tree.leaves(alone.params)):
            np.testing.assert_array_equal(x, y)


def test_padded_units_and_skipped_layers_never_change(digits):
    space = vt.Space(learning_rate=vt.Fixed(0.1), n_hidden=vt.IntUniform(0, 2), n_units=vt.IntUniform(2, 16),
                     weight_decay=vt.Fixed(1e-2), optimizer=vt.Choice(["adamw", "momentum"]))
    program = prepare(space, digits, model=vt.MLP())
    hp = space.sample(jax.random.key(3), 6)
    numeric = space.numeric(hp)
    data = engine.data_arrays(digits)
    controls = program.controls(numeric, data.n_train, 10)
    state = engine.init_population(program, numeric, controls, jnp.arange(6), jax.random.key(0), jnp.ones(6, bool))
    before = host(state.members.params)
    after, _ = engine.train_chunk(program, state, numeric, controls, data, jax.random.key(1), 1)
    masks = host(jax.vmap(program.model.update_mask)(numeric))
    after = host(after.members.params)
    changed_somewhere = False
    for name in before:
        frozen = ~masks[name]
        np.testing.assert_array_equal(after[name][frozen], before[name][frozen], err_msg=name)
        changed_somewhere |= bool(np.any(after[name][~frozen] != before[name][~frozen]))
    assert changed_somewhere


def test_a_member_starts_and_trains_as_alone_whatever_depths_the_others_have(digits):
    # (the output layer's initial weights took flax's key, a count of the params made before it: a
    # member's start, and its score, depended on the population's largest depth)
    settings = [{"learning_rate": 0.05, "n_hidden": d, "n_units": u} for d, u in ((1, 16), (0, 8), (2, 8), (1, 8))]
    space = vt.Space(learning_rate=vt.Fixed(0.05), n_hidden=vt.IntUniform(0, 2), n_units=vt.Choice([8, 16]))
    _, curves = run(prepare(space, digits, model=vt.MLP()), space, digits, space.encode(settings), [0, 1, 2, 3],
                    epochs=2)
    for i, setting in enumerate(settings):
        alone_space = vt.Space(**{k: vt.Fixed(v) for k, v in setting.items()})
        _, alone = run(prepare(alone_space, digits, model=vt.MLP()), alone_space, digits, alone_space.encode(setting),
                       [i], epochs=2)
        np.testing.assert_allclose(curves["train_loss"][i], alone["train_loss"][0], rtol=1e-4, err_msg=str(setting))


def test_mixed_optimizers_and_schedules_in_one_population(digits):
    space = vt.Space(
        learning_rate=vt.LogUniform(3e-3, 3e-2),
        optimizer=vt.Choice(["sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad"]),
        schedule=vt.Choice(list(SCHEDULES)),
        warmup_steps=vt.IntUniform(0, 20),
        activation=vt.Choice(["relu", "tanh", "gelu", "elu", "leaky_relu", "sigmoid"]),
        init=vt.Choice(["he_normal", "xavier_uniform", "lecun_normal"]),
        l1=vt.LogUniform(1e-7, 1e-5),
    )
    result = vt.tune(vt.MLP(hidden=1, units=32), space, digits, vt.RandomSearch(population=12), epochs=3,
                     batch_size=64, progress=False)
    df = result.to_dataframe()
    assert set(df["optimizer"]) <= {"sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad"}
    assert df["optimizer"].nunique() >= 3 and df["schedule"].nunique() >= 2
    assert (df["status"] == "ok").all() and result.best_score > 0.8


def test_schedules_match_optax():
    steps = jnp.arange(120)

    def ours(name, warmup=0.0):
        return jax.vmap(lambda t: schedule_factor(SCHEDULES, SCHEDULES.index(name), t, warmup, 0.5, 10.0, 100.0))(steps)

    np.testing.assert_allclose(ours("cosine", 10.0), optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)(steps),
                               atol=1e-6)
    np.testing.assert_allclose(ours("step"), optax.exponential_decay(1.0, 10, 0.5, staircase=True)(steps), rtol=1e-6)
    np.testing.assert_allclose(ours("exponential"), optax.exponential_decay(1.0, 10, 0.5)(steps), rtol=1e-5)
    np.testing.assert_allclose(ours("linear"), optax.linear_schedule(1.0, 0.0, 100)(steps), atol=1e-6)
    np.testing.assert_allclose(ours("constant", 5.0)[:6], [0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-6)


def test_keras_regressor_space_of_the_seed_runs_as_one_population(diabetes):
    """Hands-on ML's RandomizedSearchCV space: 0..3 hidden layers, 1..99 units, reciprocal lr, SGD, MSE."""
    space = vt.Space(
        n_hidden=vt.IntUniform(0, 3),
        n_units=vt.IntUniform(1, 99),
        learning_rate=vt.LogUniform(3e-4, 3e-2),
        optimizer=vt.Fixed("sgd"),
    )
    result = vt.tune(vt.MLP(), space, diabetes, vt.RandomSearch(population=32), epochs=10, batch_size=32,
                     metric="neg_mse", progress=False)
    df = result.to_dataframe()
    assert len(df) == 32 and set(df["n_hidden"]) <= {0, 1, 2, 3} and df["n_hidden"].nunique() >= 3
    best = result.best_params
    assert isinstance(best["n_hidden"], int) and isinstance(best["n_units"], int) and best["optimizer"] == "sgd"
    assert result.best_score > -0.7  # standardised MSE: clearly better than predicting the mean (-1)
    assert "n_hidden" in result.summary(3) and "n_units" in result.summary(3)


def test_bucketing_by_width_gives_the_same_members_and_less_waste(digits):
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), n_units=vt.IntLogUniform(4, 16),
                     n_hidden=vt.IntUniform(1, 2), dropout=vt.Uniform(0.1, 0.5))  # (masks by unit, not by width)
    kwargs = dict(epochs=2, batch_size=64, progress=False)
    padded = vt.tune(vt.MLP(), space, digits, vt.RandomSearch(population=8), bucketing=False, **kwargs)
    bucketed = vt.tune(vt.MLP(), space, digits, vt.RandomSearch(population=8), bucketing=True, **kwargs)
    # initial weights do not depend on the padded shape, so each member trains the same network
    np.testing.assert_allclose(bucketed.curves["val_loss"], padded.curves["val_loss"], rtol=1e-4, atol=1e-5)
    assert bucketed.settings["useful_compute_fraction"][0] > padded.settings["useful_compute_fraction"][0]
    assert 0 < padded.settings["useful_compute_fraction"][0] < 1
    assert padded.settings["programs"] == [1] and bucketed.settings["programs"][0] > 1
    # "auto" picks one of the two plans: the same results whichever it picks
    auto = vt.tune(vt.MLP(), space, digits, vt.RandomSearch(population=8), bucketing="auto", **kwargs)
    np.testing.assert_allclose(auto.curves["val_loss"], padded.curves["val_loss"], rtol=1e-4, atol=1e-5)


def test_auto_bucketing_pays_for_groups_only_when_their_compiles_are_earned(digits, monkeypatch):
    from vmaptune import ahead, costs
    from vmaptune.program import Programs

    monkeypatch.setattr(costs, "COMPILE_SECONDS", {})  # this process has compiled nothing yet
    monkeypatch.setattr(costs, "ROW_SECONDS", {})
    monkeypatch.setattr(costs, "_machine", {})  # nor has this machine (the platform's default)
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), n_units=vt.Choice([8, 512]))
    hp = space.numeric(space.encode([{"learning_rate": 0.05, "n_units": u} for u in [8] * 60 + [512] * 4]))
    base = vt.build_program(vt.MLP(hidden=2), space, digits, batch_size=64)

    def plan(epochs, rounds=1):
        programs = Programs(vt.MLP(hidden=2), space, digits, base, bucketing="auto", epochs=epochs)
        return [len(members) for _, members in programs.partition(hp, rounds=rounds)]

    # 60 narrow members padded to 512 units: grouping saves most of the work, which pays for a
    # second program's compile only over enough epochs, or enough rounds (compiled once, trained
    # in each)
    assert plan(epochs=1) == [64]
    # where later programs compile beside the first one's training (vmaptune/ahead.py,
    # VMAPTUNE_COMPILE_AHEAD), the second compile is hidden and grouping wins at once
    monkeypatch.setenv(ahead.ENV, "2")
    assert plan(epochs=1) == [60, 4]
    monkeypatch.delenv(ahead.ENV)
    assert plan(epochs=2000) == [60, 4]
    assert plan(epochs=1, rounds=2000) == [60, 4]
    # once this process has compiled the groups, grouping costs no compile: it wins at once
    programs = Programs(vt.MLP(hidden=2), space, digits, base, bucketing=True)
    for program, members in programs.partition(hp):  # rows: a power of two per group
        monkeypatch.setitem(costs.COMPILE_SECONDS, (program, 1 << (len(members) - 1).bit_length(), 1), 1.0)
    assert plan(epochs=1) == [60, 4]


class WideNet(nn.Module):
    """vt.MLP(hidden=2, units=512)'s network as a module of your own."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(512)(nn.relu(nn.Dense(512)(x)))))


def test_auto_bucketing_prices_the_padded_rows_of_a_model_of_your_own(digits, monkeypatch):
    """A module of your own's row costs its forward FLOPs (XLA's count of a lowered forward pass,
    nothing compiled), as vt.MLP's does: padding members of batch 16 to 256 rows is dear, so "auto"
    splits them by batch class for both. Before, its rows cost 1 FLOP and "auto" kept one padded program,
    several times slower."""
    from vmaptune import costs, startup
    from vmaptune.program import Programs

    monkeypatch.setattr(costs, "COMPILE_SECONDS", {})
    monkeypatch.setattr(costs, "ROW_SECONDS", {})
    monkeypatch.setattr(costs, "_machine", {})
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), batch_size=vt.Choice([16, 256]))
    hp = space.numeric(space.encode([{"learning_rate": 0.01, "batch_size": b} for b in [16] * 3 + [256] * 5]))
    mlp, linen = vt.MLP(hidden=2, units=512), vt.Linen(WideNet)
    with startup.TimeProfile().measure(this_thread=True) as profile:
        flops = linen.build(space, digits.spec).padded_row_flops()
    assert profile.lower_seconds > 0 and profile.compile_seconds == 0  # lowered, never compiled
    # (XLA also counts the biases and relus: a little above the matmuls' 2 per multiply-add)
    assert flops == pytest.approx(mlp.build(space, digits.spec).padded_row_flops(), rel=0.01)
    for model in (mlp, linen):
        programs = Programs(model, space, digits, vt.build_program(model, space, digits), bucketing="auto", epochs=2)
        assert [len(members) for _, members in programs.partition(hp, measured=False)] == [3, 5]


def test_a_later_search_does_not_trace_its_groups_member_blocks_again(digits, monkeypatch):
    import vmaptune.program as program_module
    from vmaptune.program import Programs

    traced = []
    real = program_module._member_bytes
    monkeypatch.setattr(program_module, "_member_bytes", lambda *args: traced.append(1) or real(*args))
    monkeypatch.setattr(program_module, "_MEMBER_BYTES", {})
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), n_units=vt.Choice([8, 512]))
    base = vt.build_program(vt.MLP(hidden=2), space, digits, batch_size=64)
    blocks = [Programs(vt.MLP(hidden=2), space, digits, base).program(group).member_block
              for _ in range(2) for group in (8, 512)]
    assert blocks[:2] == blocks[2:]  # the same blocks from the memo ...
    assert len(traced) == 2  # ... for one trace per group, not one per search


def test_useful_compute_fraction_counts_padding(digits):
    space = vt.Space(learning_rate=vt.Fixed(0.05), batch_size=vt.Choice([32, 64]))
    program = prepare(space, digits)
    hp = space.numeric(space.encode([{"learning_rate": 0.05, "batch_size": b} for b in (32, 64)]))
    n = digits.n_train
    # member 32: n//32 steps of 32 rows; member 64: n//64 steps of 64 rows; program: n//32 steps of 64 rows each
    expected = ((n // 32) * 32 + (n // 64) * 64) / (2 * (n // 32) * 64)
    assert engine.useful_compute_fraction(program, hp, program.controls(hp, n, 1), n) == pytest.approx(expected)


def test_the_waste_figure_and_the_plan_prices_count_the_steps_of_the_smaller_fold_with_even_batches():
    """even_batches on cv folds of 100 and 99 training rows with batch 2: the 99-row fold steps 99
    batches of 1 row (99 // ceil(99 / 2)), so the program steps 99 times of 2 rows for every member
    and the 100-row fold's members sit out 49 steps: about half of it is waste. Before, the figure
    and the prices counted the 100-row fold's 50 steps (0.995)."""
    from vmaptune import costs

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    data = vt.Dataset.from_arrays(X, (X[:, 0] > 0).astype(np.int32), task="classification")
    idx = np.arange(len(data.pool()[0]))
    folds = [(idx[:100], idx[100:150]), (idx[150:249], idx[249:299])]
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1))
    result = vt.tune(vt.MLP(), space, data, vt.RandomSearch(population=4), epochs=1, seed=0, progress=False,
                     cv=folds, batch_size=2, even_batches=True, bucketing=False)
    assert result.settings["useful_compute_fraction"][0] == pytest.approx((100 + 99) / 2 / (99 * 2), abs=1e-4)
    program = vt.build_program(vt.MLP(), space, data, batch_size=2, even_batches=True)
    assert costs.row_epoch_flops(program, 100, (100, 99)) == 3 * 99 * 2 * program.model.padded_row_flops()


def test_batch_size_classes_train_the_same_members_with_less_padding(digits):
    """bucketing splits members by batch-size class (one program each); a member's results do not
    depend on the class it trains in (dropout included: its randomness counts its own steps)."""
    from vmaptune.program import BatchClass, Programs

    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), dropout=vt.Uniform(0.0, 0.3),
                     batch_size=vt.Choice([16, 32, 128]))
    base = prepare(space, digits)
    hp = space.numeric(space.encode([{"learning_rate": 0.05, "dropout": 0.1, "batch_size": b}
                                     for b in (16, 128, 32, 16)]))
    groups = Programs(vt.MLP(hidden=1, units=16), space, digits, base, bucketing=True).partition(hp)
    assert [(g.batch_size, g.min_batch_size, g.variable_batch, m.tolist()) for g, m in groups] == \
        [(16, 16, False, [0, 3]), (32, 32, False, [2]), (128, 128, False, [1])]
    # an integer range: classes (2^(c-1), 2^c] within the space's bounds, the same every round
    ranged = vt.Space(learning_rate=vt.Fixed(0.05), batch_size=vt.IntUniform(20, 100))
    programs = Programs(vt.MLP(hidden=1, units=16), ranged, digits, prepare(ranged, digits), bucketing=True)
    split = programs.split_batches([(None, np.arange(3))], {"batch_size": np.array([20, 64, 65])})
    assert [(g, m.tolist()) for g, m in split] == [(BatchClass(None, 20, 32), [0]), (BatchClass(None, 33, 64), [1]),
                                                   (BatchClass(None, 65, 100), [2])]
    kwargs = dict(epochs=1, batch_size=64, progress=False, seed=1)
    model = vt.MLP(hidden=1, units=16)
    padded = vt.tune(model, space, digits, vt.RandomSearch(population=8), bucketing=False, **kwargs)
    classes = vt.tune(model, space, digits, vt.RandomSearch(population=8), bucketing=True, **kwargs)
    np.testing.assert_allclose(classes.curves["val_loss"], padded.curves["val_loss"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(classes.curves["train_loss"], padded.curves["train_loss"], rtol=1e-4, atol=1e-5)
    assert classes.settings["useful_compute_fraction"][0] > padded.settings["useful_compute_fraction"][0]
    assert classes.settings["programs"][0] > 1


def test_a_plan_priced_at_the_defaults_ignores_what_the_process_measured_and_compiled(digits, monkeypatch):
    # a refit runs once, in whichever process ends the search (a resumed one too): its plan must
    # not follow what that process measured or compiled, or a resumed run's refit weights would
    # differ in their last bits from the uninterrupted run's
    from vmaptune import ahead, costs
    from vmaptune.program import Programs

    monkeypatch.setattr(costs, "COMPILE_SECONDS", {})
    monkeypatch.setattr(costs, "ROW_SECONDS", {})
    monkeypatch.setattr(costs, "_machine", {})
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1), n_units=vt.Choice([8, 512]))
    hp = space.numeric(space.encode([{"learning_rate": 0.05, "n_units": u} for u in [8] * 60 + [512] * 4]))
    base = vt.build_program(vt.MLP(hidden=2), space, digits, batch_size=64)

    def plan(measured):
        programs = Programs(vt.MLP(hidden=2), space, digits, base, bucketing="auto", epochs=1)
        return [len(members) for _, members in programs.partition(hp, measured=measured)]

    assert plan(True) == plan(False) == [64]  # nothing measured: both at the defaults
    monkeypatch.setenv(ahead.ENV, "2")  # compiling ahead hides the second compile ...
    assert plan(True) == [60, 4] and plan(False) == [64]  # ... for the measured price only
    monkeypatch.delenv(ahead.ENV)
    grouped = Programs(vt.MLP(hidden=2), space, digits, base, bucketing=True)
    for program, members in grouped.partition(hp):  # this process compiled the groups
        monkeypatch.setitem(costs.COMPILE_SECONDS, (program, 1 << (len(members) - 1).bit_length(), 1), 1.0)
    assert plan(True) == [60, 4] and plan(False) == [64]

    seen = []
    partition = Programs.partition
    monkeypatch.setattr(Programs, "partition",
                        lambda self, *a, **k: seen.append(k.get("measured", True)) or partition(self, *a, **k))
    vt.tune(vt.MLP(hidden=1, units=8), vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1)), digits,
            vt.RandomSearch(population=2), epochs=1, refit=1, progress=False)
    assert seen == [True, False]  # the search's round measured, the refit at the defaults

def test_a_search_prices_its_plan_over_the_rounds_it_has_left(digits, monkeypatch):
    from vmaptune.program import Programs

    seen = []
    partition = Programs.partition
    monkeypatch.setattr(Programs, "partition", lambda self, *a, **k: seen.append(k["rounds"]) or partition(self, *a, **k))
    space = vt.Space(learning_rate=vt.LogUniform(1e-2, 1e-1))
    vt.tune(vt.MLP(hidden=1, units=8), space, digits, vt.RandomSearch(population=4, rounds=3), epochs=1,
            progress=False)
    assert seen == [3, 2, 1]


def test_one_initialisation_program_gives_every_group_its_own_initial_state(digits, monkeypatch):
    import chex

    import vmaptune.search as search_module
    from vmaptune import initialise
    from vmaptune.distributed import to_host

    checked = []

    def check(runs, program):
        assert initialise.initialise_together(runs, program)
        for run in runs:  # bit for bit what the run's own initialisation program gives, typed keys included
            own = engine.init_population(run.program, *run.init_args)
            chex.assert_trees_all_equal(to_host(run.state), to_host(own))
            shapes = (lambda tree: jax.tree.map(lambda a: (a.shape, a.dtype), tree))
            assert shapes(run.state) == shapes(own)
            checked.append(run.program)
        return True

    monkeypatch.setattr(search_module, "initialise_together", check)
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_units=vt.Choice([8, 16, 32]),
                     n_hidden=vt.IntUniform(0, 2), optimizer=vt.Choice(["adam", "sgd"]))
    vt.tune(vt.MLP(), space, digits, vt.RandomSearch(population=12), epochs=1, bucketing=True, progress=False,
            early_stopping=vt.EarlyStopping(patience=2, restore_best_weights=True))  # best weights cut too
    assert len(set(checked)) >= 3  # widths and depths: programs of different shapes


def test_a_grouped_search_traces_one_initialisation(digits):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), n_units=vt.Choice([4, 8, 16, 32]))
    before = engine.TRACE_COUNTS["init"]
    result = vt.tune(vt.MLP(hidden=1), space, digits, vt.RandomSearch(population=12), epochs=1, bucketing=True,
                     progress=False, seed=7)
    assert result.settings["programs"][0] >= 3 and engine.TRACE_COUNTS["init"] - before <= 1
