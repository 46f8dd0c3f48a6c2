"""Refit the selected settings on train + validation and score them once on the test split.

Selection is over by the time this runs: the test score is reported beside the validation
score and never feeds back into any choice. Each setting trains for the epochs at which its
validation score peaked (Keras' practice of reusing the early-stopping epoch), with per-epoch
evaluation off, then the test split is evaluated once.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from vmaptune import engine
from vmaptune.data import Dataset


def refit_and_test(program: engine.Program, numeric_hp, data: Dataset, *, member_ids, epochs, seed: int,
                   chunk_on=None) -> np.ndarray:
    """numeric_hp: (k,) settings; epochs: (k,) ints >= 1. -> (k,) test scores (NaN if a refit diverged)."""
    epochs = np.maximum(np.asarray(epochs, int), 1)
    X, y = data.pool()
    arrays = engine.DataArrays(X, y, data.X_test, data.y_test)
    smallest = int(np.min(np.asarray(numeric_hp["batch_size"]))) if program.variable_batch else program.batch_size
    program = dataclasses.replace(program, folds=0, patience=0, restore_best=False, evaluate=False,
                                  steps_per_epoch=arrays.n_train // smallest)
    run = engine.PopulationRun(program, numeric_hp, arrays, member_ids=member_ids, seed=seed, epochs=int(epochs.max()))
    for done in range(1, int(epochs.max()) + 1):
        run.train(1)
        # a member that has had its epochs is frozen: an exact no-op from here on
        run.state = run.state.replace(active=run.state.active & jnp.asarray(epochs > done))
    _, scores = engine.evaluate_population(program, run.state.params, run.hp, arrays)
    scores = np.asarray(scores)
    return np.where(np.asarray(run.state.diverged), np.nan, scores)
