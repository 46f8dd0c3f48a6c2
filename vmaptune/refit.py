"""Refit the selected settings on train + validation and score them once on the test split.

Selection is over by the time this runs: the test score is reported beside the validation
score and never feeds back into any choice. Each setting trains for the epochs at which its
validation score peaked (Keras' practice of reusing the early-stopping epoch: a per-member epoch
budget, after which the member is frozen), with per-epoch evaluation off, then the test split is
evaluated once. A refit member starts from the same initial weights as the member it refits; its
minibatch order comes from the "refit" random stream.
"""

from __future__ import annotations

import numpy as np

from vmaptune import engine
from vmaptune.data import Dataset
from vmaptune.population import PopulationRun
from vmaptune.program import Programs


def refit_and_test(programs: Programs, numeric_hp, data: Dataset, *, member_ids, epochs, seed: int) -> np.ndarray:
    """numeric_hp: (k,) settings; epochs: (k,) ints >= 1. -> (k,) test scores (NaN if a refit diverged).
    Members train in the programs of their groups (the model's structures), as in the search."""
    epochs = np.maximum(np.asarray(epochs, int), 1)
    member_ids = np.asarray(member_ids)
    X, y = data.pool()
    arrays = engine.DataArrays(X, y, data.X_test, data.y_test)
    scores = np.full(len(epochs), np.nan, np.float32)
    for program, members in programs.partition(numeric_hp):
        hp = {k: v[members] for k, v in numeric_hp.items()}
        smallest = int(np.min(np.asarray(hp["batch_size"]))) if program.variable_batch else program.batch_size
        program = program.replace(early_stopping=None, evaluate=False, min_batch_size=smallest)
        budget = epochs[members]
        run = PopulationRun(program, hp, arrays, member_ids=member_ids[members], seed=seed, epochs=int(budget.max()),
                            budget=budget, order="refit")
        run.train(int(budget.max()))
        _, score = engine.evaluate_population(program, run.state, run.hp, run.controls, run.data)
        scores[members] = np.where(np.asarray(run.state.status.diverged), np.nan, np.asarray(score))
    return scores

