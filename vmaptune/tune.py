"""The driver: ask the strategy for a population, train it in one program, tell the scores back.

    result = vt.tune(vt.MLP(), space, data, strategy=vt.RandomSearch(population=256), epochs=20)

Every input is checked before anything compiles (`search.Search`). Each round reuses the compiled
program (a short round is padded with frozen fillers to the strategy's population). Results of
finished rounds survive an interrupt (Ctrl-C returns them) and, with `run_dir`, are written after
every round.
"""

from __future__ import annotations

import jax.numpy as jnp

from vmaptune import streams
from vmaptune.data import Dataset
from vmaptune.early_stopping import EarlyStopping
from vmaptune.history import History, Progress
from vmaptune.models.base import Model
from vmaptune.results import Results
from vmaptune.search import Search, Settings
from vmaptune.space import Space
from vmaptune.strategies.base import Strategy
from vmaptune.strategies.random_search import RandomSearch

__all__ = ["tune", "EarlyStopping"]


def tune(model: Model, space: Space, data: Dataset, strategy: Strategy | None = None, *, epochs: int = 20,
         seed: int = 0, metric=None, optimizer=None, batch_size: int = 64, chunk_epochs: int = 1,
         shared_order: bool = True,
         progress: bool = True, run_dir: str | None = None, bucketing: bool = False,
         early_stopping: EarlyStopping | None = None, cv: int | None = None, seeds: int = 1, refit: int = 0,
         devices: int | None = None, member_block: int | None = None) -> Results:
    """Trains every population the strategy asks for and returns the `Results`.

    model: the network to tune: vt.MLP() (its structure follows the space), or your own flax module
      as vt.Linen(MyModule) / vt.Nnx(MyModule) (space names matching its fields fill them).
    space: vt.Space. data: vt.Dataset. strategy: default vt.RandomSearch(population=64).
    epochs: per member.
    metric: validation metric to maximise (accuracy / neg_log_loss for classification,
      neg_mse / neg_mae / r2 for regression, or a vt.Metric; default: the model's, else accuracy
      or neg_mse).
    optimizer: None for the built-in per-member optimizer (its kind and settings from the space:
      optimizer, learning_rate, momentum, ...), or your own fn(hp) -> optax.GradientTransformation
      reading the space's names (e.g. lambda hp: optax.adamw(hp["learning_rate"])).
    batch_size: minibatch rows (when the space has no batch_size; a space's batch_size gives each
      member its own, padded to the largest). chunk_epochs: epochs per compiled call (progress and
      strategies act between chunks). shared_order: members see the same minibatch order (fair,
      faster); False gives each member its own. run_dir: results are saved there after each round.
    early_stopping: vt.EarlyStopping(patience=...) freezes each member when its validation score
      stops improving (checked every epoch inside the program); stopped members are packed out of
      the population between chunks so the survivors run faster.
    bucketing: train members in groups the model forms (the MLP: similar width, rounded up to a
      power of two), one compiled program per group, instead of padding everyone to the widest.
    cv: K-fold cross-validation over train + validation, trained as K x P slots of one population;
      a setting's score is the mean over folds (std and per-fold scores reported).
    seeds: initialisations per setting, trained in the same program (mean and std reported).
    refit: retrain the best `refit` settings on train + validation and score them once on the
      test split (column test_score; never used for selection).
    devices: split each population over this many devices (default: all of JAX's default backend;
      on a CPU vmaptune shows each core as a device, see README). Results do not depend on it.
    member_block: on a CPU, members stepped at a time to keep their buffers in cache (default:
      chosen from the network's size; 0 = the whole population per step, the GPU default).
    """
    strategy = RandomSearch(population=64) if strategy is None else strategy
    settings = Settings.check(epochs=epochs, seed=seed, batch_size=batch_size, chunk_epochs=chunk_epochs,
                              shared_order=shared_order, bucketing=bucketing, early_stopping=early_stopping, cv=cv,
                              seeds=seeds, refit=refit, devices=devices, member_block=member_block)
    if isinstance(strategy, Strategy):  # a budget left open (Hyperband()) takes tune's epochs
        strategy = strategy.for_epochs(settings.epochs)
    search = Search(model, space, data, strategy, settings, metric=metric, optimizer=optimizer)
    history = History(space, search.describe(data), run_dir)
    state = strategy.init(space, streams.stream(settings.seed, "strategy"))
    with Progress(strategy, space, settings.epochs, search.program.metric.name, progress) as bar, \
            history.keep_finished_rounds():
        while not strategy.done(state):
            hp, state = strategy.ask(state, streams.stream(settings.seed, "ask", history.rounds))
            state, record = search.train_round(state, hp, history.rounds, history.members,
                                               bar.start_round(history.best).on_chunk)
            state = strategy.tell(state, hp, jnp.asarray(record.scores))
            history.add(record)
    results = history.results()
    if settings.refit and len(results):
        search.refit(results)
        if run_dir is not None:
            results.save(run_dir)
    return results
