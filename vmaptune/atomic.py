"""Files written whole or not at all (Ctrl-C and SIGTERM are held back while they are written:
`interrupts.deferred`).

A reader (`load_results`, `vmaptune report`, a resumed run) never sees a half-written file: each is
written to a temporary name in the same directory, flushed to disk, then renamed over the old one
(`os.replace` is atomic on POSIX and Windows). A directory is built under a temporary name and
swapped in the same way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from typing import Callable, IO

TMP_PREFIX = ".vmaptune-tmp-"


@functools.lru_cache(maxsize=None)
def _umask() -> int:
    mask = os.umask(0)  # (reading the umask means setting it: put back at once, read once per process)
    os.umask(mask)
    return mask


def _usual_mode(path: str, directory: bool) -> None:
    """The mode a file or folder made with open() / mkdir() would have: mkstemp and mkdtemp make
    them private (0600 / 0700), which would keep a shared run directory from its readers."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def write_file(path: str, write: Callable[[IO[bytes]], None]) -> str:
    """Calls write(f) on a temporary file next to `path`, then renames it to `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _usual_mode(tmp, directory=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str, text: str) -> str:
    return write_file(path, lambda f: f.write(text.encode()))


def write_dir(path: str, write: Callable[[str], None]) -> str:
    """Calls write(tmp_dir) on a fresh temporary directory next to `path`, then puts it at `path`
    (replacing what was there)."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=parent)
    try:
        write(tmp)
        _usual_mode(tmp, directory=True)
        if os.path.isdir(path):  # os.replace cannot replace a non-empty directory: move it aside first
            old = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=parent)
            os.replace(path, os.path.join(old, "old"))
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def make_dir(path: str, call: str, holds: str) -> None:
    """Makes the directory `path` (and those above it) for `call` (e.g. "model.save('m')"), which
    writes `holds` into it; a path that is a file, or has a file on its way, is an error saying so."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise FileExistsError(f"{call}: {path} is a file; save writes a directory ({holds} in it). Give a directory "
                              f"path, new or existing, e.g. {path + '_saved'!r}.")
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:  # a folder on the way is a file
        raise type(err)(f"{call}: cannot make the directory ({err}): a part of the path is a file. save writes a "
                        f"directory ({holds} in it): give a path under directories.") from err
