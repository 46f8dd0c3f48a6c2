"""Stopped members stop costing: the layout rule (vmaptune/packing.py) and the engine's skipping of
blocks in which nobody trains. Results never depend on the layout."""

import numpy as np
import pytest

import vmaptune as vt
from vmaptune import engine
from vmaptune.early_stopping import Compaction
from vmaptune.packing import Costs, Shape, arrangement, choose_layout
from vmaptune.population import PopulationRun
from vmaptune.training import Population, train


def test_shape_follows_the_engine_split():
    assert Shape.of(192, 2, 4) == Shape(rows=192, devices=2, block=4)
    assert Shape.of(12, 8, 4) == Shape(rows=12, devices=6, block=2)  # devices divide the rows, blocks the shard
    assert Shape.of(16, 1, 0) == Shape(rows=16, devices=1, block=16)  # no blocks: the shard is one block


def test_busy_rows_count_the_busiest_device_blocks():
    shape = Shape.of(16, 2, 2)  # 2 devices x 4 blocks of 2
    training = np.zeros(16, bool)
    training[[0, 3, 5, 7]] = True  # device 0: blocks 0, 1, 2, 3 all busy; device 1 idle
    assert shape.busy_rows(training) == 4 * 2 * 2
    assert shape.busy_rows_arranged(4) == 1 * 2 * 2  # 2 members per device fill one block each
    assert shape.busy_rows(np.zeros(16, bool)) == 0


def test_arrangement_deals_training_rows_first_on_every_device():
    shape = Shape.of(8, 2, 2)
    rows = arrangement(np.array([5, 6, 7]), np.array([1]), np.array([0, 2, 3, 4]), shape)
    assert sorted(rows.tolist()) == list(range(8))
    assert rows[:4].tolist()[:2] == [5, 7] and rows[4] == 6  # device 0 gets 5 and 7, device 1 gets 6
    training = np.isin(rows, [5, 6, 7])
    assert shape.busy_rows(training) == shape.busy_rows_arranged(3)


def test_choose_layout_regroups_for_free_and_packs_only_when_it_pays():
    training = np.zeros(64, bool)  # 64 rows: 16 blocks of 4 (member_block=4), or one block (0)
    training[::8] = True  # 8 members scattered over 8 blocks
    cheap = Costs(seconds_per_row_epoch=1e-3, epochs_left=50, compile_seconds={8: 5.0, 16: 5.0, 32: 5.0})
    assert choose_layout(training, 8, 1, 4, cheap) == 64  # regroup: 2 busy blocks, no compile
    already = Costs(seconds_per_row_epoch=1e-3, epochs_left=50, compile_seconds={8: 0.0, 16: 0.0, 32: 0.0})
    assert choose_layout(training, 8, 1, 4, already) == 8  # compiled before: packing is free
    assert choose_layout(training, 8, 1, 4, cheap, policy="always") == 8
    assert choose_layout(training, 0, 1, 4, cheap) == 0  # nobody left
    # one block per device (member_block=0, an accelerator): only a smaller population saves, if it
    # earns its compile
    short = Costs(seconds_per_row_epoch=1e-3, epochs_left=5, compile_seconds={8: 5.0, 16: 5.0, 32: 5.0})
    long = Costs(seconds_per_row_epoch=1e-3, epochs_left=500, compile_seconds={8: 5.0, 16: 5.0, 32: 5.0})
    assert choose_layout(training, 8, 1, 0, short) is None
    assert choose_layout(training, 8, 1, 0, long) == 8
    assert choose_layout(training, 8, 1, 0, long, policy="never") is None
    # 9 rows on 3 devices (3 each, as max_memory sized them): 8 rows would take 2 devices, 4 each
    nine = np.r_[np.ones(6, bool), np.zeros(3, bool)]
    cheap_everywhere = Costs(seconds_per_row_epoch=1.0, epochs_left=500, compile_seconds={8: 0.0, 16: 0.0})
    assert choose_layout(nine, 6, 3, 0, cheap_everywhere) is None
    assert choose_layout(nine, 6, 3, 0, cheap_everywhere, policy="always") == 9
    assert choose_layout(np.r_[np.ones(6, bool), np.zeros(10, bool)], 6, 4, 0, cheap_everywhere) == 8  # (2 each)
    # nothing measured yet: regroup if it frees blocks, never compile
    unknown = Costs(seconds_per_row_epoch=None, epochs_left=50, compile_seconds={})
    assert choose_layout(training, 8, 1, 4, unknown) == 64
    assert choose_layout(training, 8, 1, 0, unknown) is None


SPACE = vt.Space(learning_rate=vt.LogUniform(1e-6, 1e-1))
RATES = (1e-6, 0.05, 1e-6, 1e-6, 0.02, 1e-6, 0.03, 1e-6)  # the 1e-6 members stall and stop early


def stopping_run(digits, packing, member_block=2):
    rule = vt.EarlyStopping(patience=1, monitor="loss", min_delta=1e-3)
    prog = vt.build_program(vt.MLP(hidden=1, units=16), SPACE, digits, batch_size=64, early_stopping=rule,
                            devices=2, member_block=member_block)
    hp = SPACE.numeric(SPACE.encode([{"learning_rate": r} for r in RATES]))
    return PopulationRun(prog, hp, engine.data_arrays(digits), member_ids=np.arange(8), seed=0, epochs=5,
                         packing=packing)


@pytest.fixture(scope="module")
def plain(digits):
    run = stopping_run(digits, "auto")
    run.train(5)  # no decider: stopped members stay where they are
    return run


@pytest.mark.parametrize("packing", ["auto", "never", "always"])
def test_every_layout_gives_the_results_of_no_layout_change(digits, plain, packing):
    run = stopping_run(digits, packing)
    train(Population([(run, np.arange(8))]), 5, deciders=[Compaction()])
    assert run.status()["stopped"].sum() >= 4  # the stalled members stopped, and were taken out
    assert run.busy_row_epochs < plain.busy_row_epochs == 8 * 5
    if packing == "always":
        assert run.rows < 8
    if packing == "never":
        assert run.rows == 8
    for key in ("best_score", "best_epoch", "stopped", "diverged"):
        np.testing.assert_array_equal(run.status()[key], plain.status()[key], err_msg=key)
    for key in ("val_loss", "val_score", "train_loss"):
        np.testing.assert_allclose(run.curves[key], plain.curves[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_a_block_where_nobody_trains_is_skipped_and_reports_nothing_new(digits, plain):
    run = stopping_run(digits, "never")
    run.train(1)
    # freeze the first block of each device (rows 0, 1 and 4, 5): the engine skips those blocks
    run.apply(vt.Decision(freeze=np.isin(np.arange(8), [0, 1, 4, 5])))
    state, curves = engine.train_chunk(run.program, run.state, run.hp, run.controls, run.data, run.order_key, 1)
    evaluated = np.asarray(curves["evaluated"])[0]
    assert evaluated.tolist() == [False, False, True, True, False, False, True, True]
    assert np.isnan(np.asarray(curves["val_loss"])[0, ~evaluated]).all()
    # the host carries a skipped member's last validation value on (it did not change)
    run.state = state
    run._record(1, 1, curves, None)
    np.testing.assert_array_equal(run.curves["val_loss"][[0, 1, 4, 5], 1], run.curves["val_loss"][[0, 1, 4, 5], 0])



def test_busy_row_epochs_count_the_blocks_the_program_ran_not_those_it_skipped(digits, monkeypatch):
    # no regroup (no decider): stopped members stay in their blocks, which the program skips from the
    # epoch after the stop, within a chunk or in the chunk sent before the stop was read; a member that
    # diverges computed its block that epoch. The costs measured (per busy row-epoch) count the same
    from vmaptune import costs

    monkeypatch.setattr(costs, "ROW_SECONDS", {})
    space = vt.Space(learning_rate=vt.LogUniform(1e-6, 1e4))
    rule = vt.EarlyStopping(patience=1, monitor="loss", min_delta=1e-3)
    prog = vt.build_program(vt.MLP(hidden=1, units=16), space, digits, batch_size=64, early_stopping=rule,
                            devices=1, member_block=1)
    rates = RATES[:7] + (1e4,)  # the last one diverges
    hp = space.numeric(space.encode([{"learning_rate": r} for r in rates]))
    run = PopulationRun(prog, hp, engine.data_arrays(digits), member_ids=np.arange(8), seed=0, epochs=6)
    run.train(6, chunk_epochs=2)
    trained = np.isfinite(run.curves["train_loss"])
    assert run.status()["diverged"].tolist() == [False] * 7 + [True]
    trained[7, np.argmin(trained[7])] = True  # (its NaN epoch: it trained, then diverged)
    assert run.status()["stopped"].sum() >= 4
    expected = sum(Shape.of(8, 1, 1).busy_rows(trained[:, epoch]) for epoch in range(6))
    assert run.busy_row_epochs == expected < 8 * 6
    assert costs.ROW_SECONDS[prog][1] == expected * prog.steps_per_epoch(digits.n_train)

def test_a_short_population_spreads_its_members_over_the_devices():
    from vmaptune.population import _initial_slots

    # 5 members in 8 rows on 2 devices: 3 and 2 members, fillers last in each shard
    assert _initial_slots(5, 8, Shape.of(8, 2, 2)).tolist() == [0, 1, 2, -1, 3, 4, -1, -1]
    assert _initial_slots(8, 8, Shape.of(8, 2, 2)).tolist() == list(range(8))  # full: row i holds member i
    assert _initial_slots(3, 4, Shape.of(4, 1, 2)).tolist() == [0, 1, 2, -1]
    slots = _initial_slots(144, 256, Shape.of(256, 2, 8))
    assert Shape.of(256, 2, 8).busy_rows(slots >= 0) == 2 * 72  # each device: 72 members in 9 blocks of 8


def test_a_run_prices_layouts_the_same_whatever_the_process_measured_or_compiled(digits, monkeypatch):
    # a packed population is another program (results may differ in their last bits), so the
    # choice must not follow the machine's load or the process's history: a resumed run, or the
    # same search run again, lays its rows out as the first did
    from vmaptune import costs

    run = stopping_run(digits, "auto")
    before = run._costs()
    run.train(1)
    monkeypatch.setitem(costs.ROW_SECONDS, run.program, (1.0, 1.0, 1e3))  # a very slow machine
    for size in (1, 2, 4):  # and every smaller size compiled already
        monkeypatch.setitem(costs.COMPILE_SECONDS, (run.program, size, 1, False), 0.01)
    after = run._costs()
    assert after.epochs_left == before.epochs_left - 1
    assert after.seconds_per_row_epoch == before.seconds_per_row_epoch > 0
    assert after.compile_seconds == before.compile_seconds and set(after.compile_seconds) == {1, 2, 4}
    assert min(after.compile_seconds.values()) > 0


CV_RATES = [1e-6, 0.05, 2e-6, 3e-6, 0.02, 4e-6, 0.03, 5e-6]  # RATES, each once (a grid's points are distinct)


@pytest.fixture(scope="module", params=["dealt_folds", "folds_of_different_sizes"])
def cv_layouts(digits, request):
    """One cross-validated search with stalling settings, its rows packed into a smaller population
    at once ("always") and never ("never"), and the sizes each layout choice returned; over two
    folds dealt by vmaptune, or two of your own training on 600 and 1000 rows."""
    import vmaptune.population as population

    folds = 2 if request.param == "dealt_folds" else [(np.arange(600), np.arange(1000, 1300)),
                                                      (np.arange(300, 1300), np.arange(300))]

    out = {}
    for packing in ("always", "never"):
        sizes = []

        def spy(training, kept, *args, _choose=population.choose_layout, **kwargs):
            sizes.append((len(training), _choose(training, kept, *args, **kwargs)))
            return sizes[-1][1]

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(population, "choose_layout", spy)
            patch.setattr(population.PopulationRun.__init__, "__kwdefaults__",
                          {**population.PopulationRun.__init__.__kwdefaults__, "packing": packing})
            result = vt.tune(vt.MLP(hidden=1, units=16), SPACE, digits,
                             vt.GridSearch(values={"learning_rate": CV_RATES}, population=8), epochs=5, cv=folds,
                             batch_size=64, early_stopping=vt.EarlyStopping(patience=1, monitor="loss", min_delta=1e-3),
                             progress=False, seed=1)
        out[packing] = result, sizes
    return out


def test_packing_under_cv_gives_the_results_of_the_unpacked_rows(cv_layouts):
    (packed, packed_sizes), (kept, kept_sizes) = cv_layouts["always"], cv_layouts["never"]
    assert any(size is not None and size < rows for rows, size in packed_sizes)  # folds really were packed
    assert all(size in (None, rows) for rows, size in kept_sizes)
    assert (packed.members["status"] == "stopped").sum() >= 4  # the stalled settings stopped on both folds
    for column in ("status", "best_epoch", "member"):
        np.testing.assert_array_equal(packed.members[column], kept.members[column], err_msg=column)
    np.testing.assert_allclose(packed.members["score"], kept.members["score"], rtol=1e-5, atol=1e-6)
    for name in ("val_loss", "val_score", "train_loss", "split_scores"):
        np.testing.assert_allclose(packed.curves[name], kept.curves[name], rtol=1e-5, atol=1e-6, err_msg=name)
