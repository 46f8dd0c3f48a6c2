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
from vmaptune.program import Program


def refit_and_test(program: Program, numeric_hp, data: Dataset, *, member_ids, epochs, seed: int) -> np.ndarray:
    """numeric_hp: (k,) settings; epochs: (k,) ints >= 1. -> (k,) test scores (NaN if a refit diverged)."""
    epochs = np.maximum(np.asarray(epochs, int), 1)
    X, y = data.pool()
    arrays = engine.DataArrays(X, y, data.X_test, data.y_test)
    smallest = int(np.min(np.asarray(numeric_hp["batch_size"]))) if program.variable_batch else program.batch_size
    program = program.replace(early_stopping=None, evaluate=False, min_batch_size=smallest)
    run = PopulationRun(program, numeric_hp, arrays, member_ids=member_ids, seed=seed, epochs=int(epochs.max()),
                        budget=epochs, order="refit")
    run.train(int(epochs.max()))
    _, scores = engine.evaluate_population(program, run.state, run.hp, run.controls, run.data)
    return np.where(np.asarray(run.state.status.diverged), np.nan, np.asarray(scores))

