"""A run directory checked before anything compiles: a path that is a file, a directory that cannot
be written, or a run already there (without resume or overwrite) is an error up front, not after
the first round has trained."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings

from vmaptune.atomic import TMP_PREFIX
from vmaptune.checkpoint import CHECKPOINTS

#: What vmaptune writes into a run directory (overwrite=True removes these and nothing else).
RUN_FILES = ("results.npz", "members.csv", "curves.npz", "hp.npz", "run.json", "curves.png", "scores.png")
RUN_DIRS = (CHECKPOINTS, "models")


def holds_run(path: str) -> bool:
    """Whether `path` holds a vmaptune run (results or checkpoints)."""
    return any(os.path.exists(os.path.join(path, name)) for name in ("results.npz", "run.json", CHECKPOINTS))


def prepare(run_dir, *, resume: bool, overwrite: bool, write: bool = True) -> str:
    """Checks run_dir and creates it; with overwrite=True an earlier run's files are removed.
    Returns the path. write=False only checks (the processes of a multi-process run other than
    process 0, which writes)."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir={run_dir!r}: give a directory path (str or pathlib.Path), or None to keep the "
                        "results in memory only.")
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other: resume continues the run in "
                         "run_dir, overwrite starts it again; pass one of them.")
    path = os.fspath(run_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"run_dir={path!r} is a file; give a directory path (it is created if missing), "
                         "e.g. run_dir='runs/my_search'.")
    if os.path.isdir(path) and holds_run(path) and not (resume or overwrite):
        raise FileExistsError(f"run_dir={path!r} already holds a run. Pass resume=True (vmaptune --resume) to "
                              f"continue it, overwrite=True (--overwrite) to replace it, or choose another run_dir.")
    if resume and not (os.path.isdir(path) and holds_run(path)):
        warnings.warn(f"resume=True, but run_dir={path!r} holds no run yet: starting a new run there. (A mistyped "
                      f"run_dir would start from scratch: check the path if you meant to continue a run.)",
                      UserWarning, stacklevel=4)
    if not write:
        return path
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(f"run_dir={path!r} cannot be written ({err.strerror or err}); choose a directory you can "
                         "write to.") from err
    remove_leftovers(path)
    if overwrite:
        for name in RUN_FILES:
            if os.path.isfile(os.path.join(path, name)):
                os.unlink(os.path.join(path, name))
        for name in RUN_DIRS:
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    return path


def remove_leftovers(path: str) -> int:
    """Removes the temporary files and folders a killed save left in the run directory (and its
    models/): a save writes to a temporary name and renames it, so a kill between the two leaves
    one behind. Called before a run writes there (one writer per run directory). -> how many."""
    removed = 0
    for folder in (path, os.path.join(path, "models")):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith(TMP_PREFIX):
                target = os.path.join(folder, name)
                if os.path.isdir(target):
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    try:
                        os.unlink(target)
                    except OSError:
                        continue
                removed += 1
    return removed
