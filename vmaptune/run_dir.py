"""A run directory checked before anything compiles: a path that is a file, a directory that cannot
be written, a run already there (without resume or overwrite), or a run another process is writing
there now is an error up front, not after the first round has trained."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import tempfile
import weakref

try:
    import fcntl
except ImportError:  # (Windows) no advisory locks: one writer per run directory is then the user's care
    fcntl = None

from vmaptune.atomic import TMP_PREFIX
from vmaptune.checkpoint import CHECKPOINTS
from vmaptune.warn import warn

#: The file a run holds locked while it writes its run directory (`Claim`).
LOCK_FILE = ".vmaptune-lock"

#: What vmaptune writes into a run directory (overwrite=True removes these and nothing else).
RUN_FILES = ("results.npz", "members.csv", "curves.npz", "hp.npz", "run.json", "curves.png", "scores.png")
RUN_DIRS = (CHECKPOINTS, "models")


def holds_run(path: str) -> bool:
    """Whether `path` holds a vmaptune run (results or checkpoints)."""
    return any(os.path.exists(os.path.join(path, name)) for name in ("results.npz", "run.json", CHECKPOINTS))


class RunDirInUseError(OSError):
    """Another run is writing the run directory now (`Claim`): an OSError, as a busy file is.
    holder: who holds it ('pid 123 on host, since ...')."""

    holder = "another process"


class Claim:
    """One writer per run directory: an advisory lock (flock) on run_dir/.vmaptune-lock, held while a
    run writes there. A second run on the same directory (another process, a notebook's second
    kernel, a thread) would overwrite the first one's checkpoints, or with overwrite=True delete
    them; it gets an error instead. The OS drops the lock when the process ends, killed or not, so
    a kill never leaves a stale lock in the way of a resume."""

    #: abspath -> the claim this process holds there (`keep_claim`); weak, so that a claim dropped
    #: without release (an error before the run's own release) still frees its lock as it goes
    held: "weakref.WeakValueDictionary[str, Claim]" = weakref.WeakValueDictionary()

    def __init__(self, path: str):
        # (absolute: a relative run_dir read after os.chdir would be another directory)
        self.given, self.path, self.file = path, os.path.realpath(path), None
        self.made: str | None = None  # the outermost folder of it that this call made (`tidy`)
        self.first = _identity(self.path)  # (the directory claimed: one made again at its path is another, `moved`)
        if fcntl is None:
            return
        self._take()
        if self.file is not None:
            Claim.held[self.path] = self

    def _take(self) -> None:
        path = self.given
        lock = os.path.join(self.path, LOCK_FILE)
        self.file = open(lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            self.file = None
            in_use = RunDirInUseError(f"run_dir={path!r} (--out) is in use: a vmaptune run is writing there now "
                                      f"({holder}). Two runs in one directory would overwrite each other's "
                                      f"checkpoints: wait for that run to end (or stop it, then pass resume=True "
                                      f"(--resume) to continue it), or choose another run_dir.")
            in_use.holder = holder
            raise in_use from None
        except OSError:  # a file system without locks (some network mounts): run unguarded
            return
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()} on {socket.gethostname()}, since "
                        f"{datetime.datetime.now().isoformat(sep=' ', timespec='seconds')}")
        self.file.flush()

    def release(self) -> None:
        """Lets another run write the directory (closing the file drops the lock; the file stays:
        removing it would race with a run that just opened it)."""
        if self.file is not None:
            self.file.close()
            self.file = None
            if Claim.held.get(self.path) is self:
                del Claim.held[self.path]

    def tidy(self) -> None:
        """Removes the directory where this call made it and it holds nothing but the lock: a run
        refused (or stopped) before it wrote anything leaves no empty directory behind. (A run that
        opened the lock meanwhile writes on: its next write makes the directory again, `renew`.)"""
        if self.made is None:
            return
        try:
            if os.listdir(self.path) == [LOCK_FILE]:
                os.unlink(os.path.join(self.path, LOCK_FILE))
                folder = self.path
                while True:  # (and the empty folders above it that this call made)
                    os.rmdir(folder)
                    if folder == self.made:
                        break
                    folder = os.path.dirname(folder)
        except OSError:  # (written meanwhile, or not ours to remove: left as it is)
            pass

    def renew(self) -> None:
        """Takes the lock again where its file is no longer the one held: the run directory was
        deleted (rm -rf) while the run went on and is made again by its next write, and another run
        could otherwise claim the new one and write beside this one. RunDirInUseError where another
        already has."""
        if self.file is None:
            return
        try:
            if os.path.samestat(os.fstat(self.file.fileno()), os.stat(os.path.join(self.path, LOCK_FILE))):
                return
        except OSError:  # (no lock file: the directory was removed)
            pass
        self.release()
        os.makedirs(self.path, exist_ok=True)
        try:
            self._take()
        except RunDirInUseError:
            with open(os.path.join(self.path, LOCK_FILE), encoding="utf-8") as lock:
                holder = lock.read().strip() or "another process"
            raise RunDirInUseError(f"run_dir={self.given!r} was removed while this run wrote there, and another run "
                                   f"has written there since ({holder}): this run stops rather than write beside "
                                   f"it.") from None
        Claim.held[self.path] = self


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a directory, None where there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def moved(path: str) -> bool | None:
    """Whether the run directory this process claimed at `path` is no longer there: moved, renamed
    or removed (the path missing, or holding a directory made again since: orbax's writer and
    `Claim.renew` make it again at once); None where this process claimed none there."""
    claim = Claim.held.get(os.path.realpath(path))
    if claim is None or claim.first is None:
        return None
    return _identity(claim.path) != claim.first


def keep_claim(path: str) -> None:
    """Before a write into `path` (a run directory or a folder in it): the claim this process holds
    on it renewed (`Claim.renew`)."""
    path = os.path.realpath(path)
    for held, claim in list(Claim.held.items()):
        if path == held or path.startswith(held + os.sep):
            claim.renew()


#: characters of a path orbax writes checkpoints under but cannot read them back from (a backslash
#: where it is not the separator)
UNREADABLE_CHARACTERS = ("[", "]") + (("\\",) if os.sep != "\\" else ())


def prepare(run_dir, *, resume: bool, overwrite: bool, write: bool = True) -> tuple[str, Claim | None]:
    """Checks run_dir, creates it and claims it (`Claim`: release it when the run ends); with
    overwrite=True an earlier run's files are then removed. Returns (path, claim). write=False
    only checks (the processes of a multi-process run other than process 0, which writes), and
    claims nothing. The path returned is the real one (absolute, symlinks followed): an os.chdir during
    the run moves no file."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir={run_dir!r}: give a directory path (str or pathlib.Path), or None to keep the "
                        "results in memory only.")
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other: resume continues the run in "
                         "run_dir, overwrite starts it again; pass one of them.")
    given = os.fspath(run_dir)
    # (the directory the OS opens: "link/../run" is not "./run" where link is a symlink)
    path = os.path.realpath(given)
    unreadable = sorted(set(path) & set(UNREADABLE_CHARACTERS))
    if unreadable:  # (tensorstore reads them as patterns: the run's checkpoints were written, never read back)
        raise ValueError(f"run_dir={given!r} (--out): its path {path!r} holds {' and '.join(map(repr, unreadable))}, "
                         f"which the "
                         f"checkpoint library (orbax, through tensorstore) cannot read a checkpoint back from, so "
                         f"the run could not be resumed; choose a path without "
                         f"{', '.join(map(repr, UNREADABLE_CHARACTERS))}.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"run_dir={given!r} (--out) is a file; give a directory path (it is created if missing), "
                         "e.g. run_dir='runs/my_search' (--out runs/my_search).")
    if os.path.isdir(path) and holds_run(path) and not (resume or overwrite):
        raise FileExistsError(f"run_dir={given!r} (--out) already holds a run. Pass resume=True (--resume) to "
                              f"continue it, overwrite=True (--overwrite) to replace it, or choose another run_dir.")
    if resume and results_without_checkpoints(path):
        raise FileNotFoundError(f"run_dir={given!r} (--out) holds a run's results but no {CHECKPOINTS}/ folder "
                                f"(removed?), so "
                                f"resume=True has nothing to continue from, and starting again there would replace "
                                f"the run. vt.load_results({given!r}) reads it as it is; give another run_dir to "
                                f"start a new run beside it, or overwrite=True (--overwrite) to replace it.")
    starting = resume and not (os.path.isdir(path) and holds_run(path))
    if not write:
        if starting:
            _warn_starting(given)
        return path, None
    made = path  # (the outermost folder this call makes: runs/ of runs/x where neither was there)
    while not os.path.isdir(os.path.dirname(made)) and os.path.dirname(made) != made:
        made = os.path.dirname(made)
    made = None if os.path.isdir(path) else made
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        if resume and os.path.isdir(path) and holds_run(path):  # (another directory would hold no run: a new one)
            raise ValueError(f"run_dir={given!r} (--out) holds the run to resume but cannot be written "
                             f"({err.strerror or err}), and a resume writes its checkpoints and results there. Copy "
                             f"the run directory somewhere writable (runs move freely: checkpoints hold no absolute "
                             f"paths) and resume the copy: vt.tune(..., run_dir=<the copy>, resume=True) (--out <the "
                             f"copy> --resume). vt.load_results({given!r}) reads it where it is.") from err
        raise ValueError(f"run_dir={given!r} (--out) cannot be written ({err.strerror or err}); choose a directory "
                         "you can write to.") from err
    claim = Claim(given)  # before anything is removed: a run in progress there keeps its files
    claim.made = made
    try:
        if starting:  # (once the directory is this call's: a run in progress there is refused, not "started")
            _warn_starting(given)
        remove_leftovers(path)
        if overwrite:
            for name in RUN_FILES:
                if os.path.isfile(os.path.join(path, name)):
                    os.unlink(os.path.join(path, name))
            for name in RUN_DIRS:
                shutil.rmtree(os.path.join(path, name), ignore_errors=True)
    except BaseException:  # (a warning made an error, say: the directory is not this call's after all)
        claim.tidy()
        claim.release()
        raise
    return claim.path, claim


def results_without_checkpoints(path: str) -> bool:
    """Whether run_dir holds a finished round's results but no checkpoints to resume from (removed)."""
    return _finished_run(path) and not _has_checkpoints(path)


def _finished_run(path: str) -> bool:
    """Whether run_dir's results hold a round that ended (not only the members of a first round
    stopped by Ctrl-C before any checkpoint, which a resume trains again)."""
    if not os.path.isfile(os.path.join(path, "results.npz")):
        return False
    try:  # (the settings count finished rounds: a round cut short also holds members that stopped or diverged)
        with open(os.path.join(path, "run.json")) as f:
            settings = json.load(f)["settings"]
        # (refit models: a search its time budget stopped without a run_dir refits its first round's
        # members, saved with results.save: a resume would replace them)
        return not (settings.get("interrupted") and settings.get("rounds") == 0) or bool(settings.get("refit_trained"))
    except (OSError, ValueError, KeyError, TypeError):
        return True  # (results that cannot be read: refuse rather than replace them)


def _has_checkpoints(path: str) -> bool:
    folder = os.path.join(path, CHECKPOINTS)
    return os.path.isdir(folder) and any(not name.startswith(".") for name in os.listdir(folder))


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


def _warn_starting(path: str) -> None:
    warn(f"resume=True (--resume), but run_dir={path!r} (--out) holds no run yet: starting a new run there. (A "
         f"mistyped path would start from scratch: check it if you meant to continue a run.)", UserWarning)
