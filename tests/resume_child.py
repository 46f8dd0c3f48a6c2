"""A search run as a separate process by tests/test_resume.py, killed (SIGKILL) at a chosen point.

    python tests/resume_child.py STRATEGY RUN_DIR [KILL]

KILL is 'chunk:N' (after the N-th chunk this process trains), 'checkpoint:N' (inside the N-th
checkpoint save, its files written but not yet committed) or 'results:N' (inside the N-th
results.npz write, the temporary file written, not yet renamed). Without KILL the run finishes.
'chunk:N:TERM' sends SIGTERM instead, and leaves the mid-round checkpoints to their usual pace
(one a minute: none in these short runs but the one SIGTERM makes). 'final_save:N:TERM' sends N
SIGTERMs at once as the finished run's save starts. Every search resumes from
RUN_DIR when there is something to resume; the process prints how many chunks it trained.
"""

import os
import re
import signal
import sys

import flax.linen as nn
import numpy as np

import vmaptune as vt
import importlib
from vmaptune import population

EPOCHS = 4
SPACE = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-1), momentum=vt.OneMinusLogUniform(0.5, 0.95))


class NormalisedDropoutNet(nn.Module):
    """A user's model: BatchNorm statistics (model state a resume must restore, PBT's copies must
    carry) and a traced dropout rate."""

    dropout: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Dense(8)(x))
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(3)(vt.nn.Dropout(self.dropout)(x, deterministic=not train))


def strategy(name: str):
    return {"random": vt.RandomSearch(population=4, rounds=3),
            "linen_pbt": vt.PBT(population=4, interval=1, generations=2),
            "bayesopt": vt.BayesOpt(population=4, rounds=2, initial_size=4, num_candidates=64, restarts=1),
            "evolution": vt.Evolution(population=4, generations=2),
            "pbt": vt.PBT(population=4, interval=1, generations=2),
            "hyperband": vt.Hyperband(eta=2),
            "bohb": vt.BOHB(eta=2, min_points=2, model=vt.BayesOpt(num_candidates=64, restarts=1)),
            "halving_cv": vt.SuccessiveHalving(population=4, eta=2),
            "random_es": vt.RandomSearch(population=4, rounds=3),
            "hyperband_plain": vt.Hyperband(eta=2),  # (without early stopping)
            "random_compact": vt.RandomSearch(population=4, rounds=3)}[name]


def data() -> vt.Dataset:
    """Three noisy blobs (no scikit-learn import: each process of the test starts faster)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    return vt.Dataset.from_arrays(rng.normal(size=(150, 4)) + y[:, None], y, task="classification")


def search(name: str, run_dir: str, *, resume: bool = True, progress: bool = False, chunk_epochs: int | None = None):
    """RESUME_CHILD_CHUNK_EPOCHS sets chunk_epochs where it is not given (default 1)."""
    chunk_epochs = chunk_epochs or int(os.environ.get("RESUME_CHILD_CHUNK_EPOCHS", "1"))
    if name.startswith("linen"):  # your own flax module (no refit: its pickled class would be __main__'s here)
        return vt.tune(vt.Linen(NormalisedDropoutNet), SPACE.replace(dropout=vt.Uniform(0.0, 0.5)), data(),
                       strategy(name), epochs=EPOCHS, batch_size=16, seed=3, run_dir=run_dir, resume=resume,
                       progress=progress, chunk_epochs=chunk_epochs)
    grouped = name == "random"  # two width groups (forced: "auto" prices its plan from measurements), two refits
    space = SPACE.replace(n_units=vt.Choice([4, 16])) if grouped else SPACE
    return vt.tune(vt.MLP(hidden=1) if grouped else vt.MLP(hidden=1, units=8), space, data(), strategy(name),
                   epochs=EPOCHS, batch_size=16, seed=3, run_dir=run_dir, resume=resume, progress=progress,
                   cv=2 if name.endswith("_cv") else None, bucketing=True if grouped else "auto",
                   refit=2 if grouped else 0, chunk_epochs=chunk_epochs,
                   # (Hyperband's early stopping packs whole parts out: a checkpoint with zero-row arrays)
                   early_stopping=vt.EarlyStopping(patience=1) if name in ("hyperband", "random_compact") else
                   vt.EarlyStopping(patience=1, compact_below=0) if name == "random_es" else None)


def kill_at(where: str, count: int, sig: int = signal.SIGKILL) -> None:
    """Arranges the signal `sig` (SIGKILL) at the count-th occurrence of `where` in this process."""
    seen = {"n": 0}

    def hit():
        seen["n"] += 1
        if seen["n"] == count:
            os.kill(os.getpid(), sig)

    if where == "chunk":
        record = population.PopulationRun._record

        def recorded(self, *args, **kwargs):
            record(self, *args, **kwargs)
            hit()
        population.PopulationRun._record = recorded
    elif where == "checkpoint":  # orbax commits a checkpoint by renaming its temporary directory
        rename = os.rename

        def renamed(src, dst, *args, **kwargs):
            if re.search(r"checkpoints/\d+$", os.fspath(dst)):
                hit()
            return rename(src, dst, *args, **kwargs)
        os.rename = renamed
    elif where == "final_save":  # `count` signals at once, as the finished run's save starts
        save = vt.Results.save

        def saving(self, *args, **kwargs):
            if self.settings.get("finished"):
                for _ in range(count):
                    os.kill(os.getpid(), sig)
            return save(self, *args, **kwargs)
        vt.Results.save = saving
    elif where == "results":
        replace = os.replace

        def replaced(src, dst, *args, **kwargs):
            if os.fspath(dst).endswith("results.npz"):
                hit()
            return replace(src, dst, *args, **kwargs)
        os.replace = replaced
    else:
        raise ValueError(f"unknown kill point {where!r}")


def count_chunks() -> dict:
    counted = {"n": 0}
    record = population.PopulationRun._record

    def recorded(self, *args, **kwargs):
        record(self, *args, **kwargs)
        counted["n"] += 1
    population.PopulationRun._record = recorded
    return counted


if __name__ == "__main__":
    name, run_dir = sys.argv[1], sys.argv[2]
    kill = sys.argv[3].split(":") if len(sys.argv) > 3 else None
    chunks = count_chunks()
    if kill is None or kill[2:] != ["TERM"]:  # checkpoint at every chunk, so kills land mid-round too
        importlib.import_module("vmaptune.tune").MID_ROUND_SECONDS = 0.0
    if kill is not None:
        kill_at(kill[0], int(kill[1]), signal.SIGTERM if kill[2:] == ["TERM"] else signal.SIGKILL)
    search(name, run_dir)
    print(f"chunks trained: {chunks['n']}")
