"""Refit the selected settings on train + validation and score them once on the test split.

Selection is over by the time this runs: the test score is reported beside the validation
score and never feeds back into any choice. Each setting trains for the epochs at which its
validation score peaked (Keras' practice of reusing the early-stopping epoch: a per-member epoch
budget, after which the member is frozen), with per-epoch evaluation off, then the test split is
evaluated once. A refit member starts from the same initial weights as the member it refits (a
network PBT copied between members: those of its lineage's first member); its
minibatch order comes from the "refit" random stream. A member whose values changed during
training (PBT, a replayed PBT schedule: its `hp_schedule` column) is refit with the same changes
at the same epochs, not with its last values from the start. The refit weights are kept: they are
the trained models `Results.best_model()` hands out.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from vmaptune import costs, engine, memory
from vmaptune.distributed import to_host
from vmaptune.data import Dataset
from vmaptune.decisions import Decision
from vmaptune.models.base import BuiltModel
from vmaptune.population import PopulationRun
from vmaptune.program import Programs


@dataclasses.dataclass
class Refitted:
    """One refit member: its test score (NaN if it diverged), network, and trained variables (host).
    diverged: its training turned non-finite (its variables are then those of the step before);
    diverged_at_epoch: in which epoch (1-based; None if it did not, or the curves do not say)."""

    test_score: float
    network: BuiltModel
    params: Any
    model_state: Any
    epochs: int
    diverged: bool = False
    diverged_at_epoch: int | None = None


def refit_and_test(programs: Programs, numeric_hp, data: Dataset, *, member_ids, epochs, schedule_epochs: int,
                   seed: int, changes: list[dict[int, dict[str, float]]] | None = None,
                   max_memory: int | None = None) -> list[Refitted]:
    """numeric_hp: (k,) settings (the values each starts with); epochs: (k,) ints >= 1, the epochs
    each trains; schedule_epochs: the search's epochs, which every member's learning-rate schedule
    spans, as it did in the search (a member that peaked at epoch 5 of 20 trains the first 5
    epochs of its 20-epoch schedule; not stretched to the longest refit beside it, which made one
    member's weights depend on the others refit with it); changes: per setting, {epoch: {name:
    numeric value from that epoch on}} (None: none change); max_memory: the search's, in bytes (the
    budget applies as in the search: a group that does not fit trains as micro-populations, sized
    for the refit's rows, train + validation). -> one Refitted per setting, in order.
    Members train in the programs bucketing chooses for them, as in the search; with "auto" the
    plan is priced at the platform's defaults, never at what this process measured: the refit
    runs once, in whichever process finishes the search (a resumed one too), and must train the
    same programs, so that its weights and test scores are the same bit for bit."""
    epochs = np.maximum(np.asarray(epochs, int), 1)
    member_ids = np.asarray(member_ids)
    X, y = data.pool()
    arrays = engine.DataArrays(X, y, data.X_test, data.y_test, w_train=data.pool_weights())
    memory_budget = memory.device_budget(max_memory)
    out: list[Refitted | None] = [None] * len(epochs)
    for program, members in programs.partition(numeric_hp, measured=False):
        hp = {k: v[members] for k, v in numeric_hp.items()}
        # (the smallest batch it trains with sets an epoch's steps: a change may bring a smaller one)
        later = [c["batch_size"] for m in members for c in (changes[m] if changes else {}).values() if "batch_size" in c]
        smallest = int(np.min(np.r_[np.asarray(hp["batch_size"]), later])) if program.variable_batch else \
            program.batch_size
        program = program.replace(early_stopping=None, evaluate=False, min_batch_size=smallest, even_over=0)
        budget = epochs[members]
        # the group's program, epochs and compile mode whichever micro-population a member trains in
        # (members share nothing: the same results as one run of them all)
        total_epochs = max(int(schedule_epochs), int(budget.max()))
        quick = costs.quick_compile(program, arrays.n_train, len(members) * int(budget.max()))
        size = None  # (no budget: one run of them all)
        if memory_budget is not None:
            fit = memory.members_that_fit(program, arrays, {k: v[0] for k, v in hp.items()}, memory_budget,
                                          devices=program.devices)
            size = memory.rows_within(len(members), fit, program.devices)
        for start in range(0, len(members), size or len(members)):
            part = np.arange(start, min(start + (size or len(members)), len(members)))
            run = PopulationRun(program, {k: v[part] for k, v in hp.items()}, arrays,
                                member_ids=member_ids[members[part]], seed=seed, epochs=total_epochs, rows=size,
                                budget=budget[part], order="refit", quick=quick)
            _train_with_changes(run, budget[part], [changes[members[i]] for i in part] if changes else None)
            _tested(run, program, data, members[part], budget[part], out)
    return out


def _tested(run: PopulationRun, program, data: Dataset, members: np.ndarray, budget: np.ndarray,
            out: list[Refitted | None]) -> None:
    """Scores a trained refit `run` on the test split: out[members[i]] = its member i's Refitted
    (budget: (n,) the epochs each trained)."""
    if data.X_test.shape[0]:
        _, score = engine.evaluate_population(program, run.state, run.hp, run.controls, run.data)
    else:  # no test split (test_fraction=0): trained, never tested
        score = np.full(run.rows, np.nan, np.float32)
    diverged, score, params, model_state = to_host((run.state.status.diverged, score, run.state.members.params,
                                                    run.state.members.model_state))
    score = np.where(diverged, np.nan, score)
    for row, i in enumerate(run.slots):  # (padded rows on several devices: a member's row is not its index)
        if i < 0:
            continue
        take = (lambda tree: jax.tree.map(lambda x: x[row], tree))
        out[members[i]] = Refitted(float(score[row]), program.model, take(params), take(model_state),
                                   int(budget[i]), bool(diverged[row]), diverged_at(run, i, diverged[row]))


def diverged_at(run: PopulationRun, row: int, diverged: bool) -> int | None:
    """The epoch (1-based) in which member `row` of `run` diverged: its first without a finite
    training loss (the engine's NaN for that epoch and every later one); None if it did not."""
    if not diverged:
        return None
    trained = np.isfinite(run.curves["train_loss"][row])
    return int(np.argmin(trained)) + 1 if not trained.all() else None


def _train_with_changes(run: PopulationRun, budget: np.ndarray, changes: list[dict[int, dict[str, float]]] | None
                        ) -> None:
    """Trains each member its `budget` (k,) epochs, writing its changed values at their epochs (as
    PBT did: into the optimizer state, from the next step on) while it still trains: a change at
    the epoch a member stops comes after its last step, and the test split scores it with the
    values it trained with (not with a value read at evaluation that it never trained under)."""
    changes = [{e: c for e, c in member.items() if 0 < e < budget[i]} for i, member in enumerate(changes or ())]
    at = sorted({e for member in changes for e in member})
    for stop in at:
        run.train(stop - run.epochs_done)
        update = np.array([stop in member for member in changes])
        names = sorted({name for member in changes if stop in member for name in member[stop]})
        hp = {name: np.array([member[stop][name] if stop in member else run.member_hp[name][i]
                              for i, member in enumerate(changes)]) for name in names}
        run.apply(Decision(hp=hp, update=update))
    run.train(int(np.max(budget)) - run.epochs_done)
