"""Replace an index directory atomically: build beside it, then swap by rename, under a build lock."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import functools
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from qa.errors import BuildInProgress, IndexCorrupt, IndexNotFound

_RENAME_EXCHANGE = 2  # from <linux/fs.h>
_AT_FDCWD = -100


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.building-"


def _retired_prefix(target: Path) -> str:
    return f".{target.name}.retired-"


@functools.cache
def _renameat2():
    """libc's renameat2, looked up once (``find_library`` runs a subprocess); None where there is none."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    return getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step with Linux renameat2(RENAME_EXCHANGE); False where unsupported."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a))


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    """Flush every file of a finished build to disk before it becomes visible."""
    for path in directory.iterdir():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_directory(directory)


def real_target(target: Path) -> Path:
    """The directory an index path stands for, symbolic links followed (it need not exist yet).

    The lock, the staging directory and the swap all use it, so ``--index link`` and ``--index target``
    are one index: they exclude each other, and a build through the link replaces the target, not the link.
    """
    return Path(target).absolute().resolve()


def replace_directory(new: Path, target: Path) -> None:
    """Make ``new`` appear at ``target`` (symbolic links followed); readers see the old index or the new one,
    never a mix."""
    target = real_target(target)
    _fsync_tree(new)
    if target.exists():
        if _exchange(new, target):
            shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the previous index
        else:
            # Two renames: if killed between them the old index survives under its retired name,
            # and ``recover`` puts it back.
            retired = target.with_name(f"{_retired_prefix(target)}{uuid.uuid4().hex[:8]}")
            os.rename(target, retired)
            os.rename(new, target)
            shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(new, target)
    _fsync_directory(target.parent)


def recover(target: Path) -> None:
    """Undo a swap cut short between its two renames: bring the retired index back."""
    if target.exists() or not target.parent.is_dir():
        return
    retired = sorted(target.parent.glob(f"{_retired_prefix(target)}*"), key=lambda p: p.stat().st_mtime)
    if retired:
        os.rename(retired[-1], target)


def interrupted_swap(target: Path) -> Path | None:
    """The previous index a swap cut short between its two renames left under its retired name, if ``target`` is
    missing because of one; read-only, for readers' messages (a build's ``recover`` puts it back)."""
    target = real_target(target)
    if target.exists() or not target.parent.is_dir():
        return None
    retired = sorted(target.parent.glob(f"{_retired_prefix(target)}*"), key=lambda p: p.stat().st_mtime)
    return retired[-1] if retired else None


def missing_index(index_dir: Path) -> IndexNotFound:
    """The error for no index at ``index_dir``; when a swap was cut short, it says where the previous one is kept."""
    kept = interrupted_swap(index_dir)
    if kept is not None:
        return IndexNotFound(
            f"no index at {index_dir}: a build was cut short while swapping it in; the previous index is kept at "
            f"{kept}, and the next `qa index --index {index_dir}` (or `qa serve` without --no-build) puts it back"
        )
    return IndexNotFound(f"no index at {index_dir}: run `qa index CORPUS --index {index_dir}` first")


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def recover_if_idle(target: Path) -> None:
    """``recover`` outside a build (the build step of `qa serve`): only when no build holds the lock, since a build
    between its two renames is not a crashed one (putting its retired index back would make its second rename
    fail). Readers never call it: the read path renames and deletes nothing."""
    target = real_target(target)
    if target.exists() or not target.parent.is_dir():
        return
    try:
        lock = open(_lock_path(target), "rb")
    except FileNotFoundError:
        recover(target)  # builds take the lock file first: none has ever run here
        return
    except OSError:
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        recover(target)


def _remove_abandoned_staging(target: Path) -> None:
    """Delete staging directories left by builds that were killed (safe: we hold the build lock)."""
    for leftover in target.parent.glob(f"{_staging_prefix(target)}*"):
        shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def staging_directory(target: Path) -> Iterator[Path]:
    """Hold the build lock for ``target`` and yield an empty directory beside it to build into.

    On success the caller swaps it in with ``replace_directory``; on any failure it is removed and the
    existing index is untouched.

    ``target`` may be a symbolic link: everything happens at the directory it points to (``real_target``).

    Raises:
        BuildInProgress: another build of the same index holds the lock.
        IndexCorrupt: ``target`` exists but is not an index (refuse to overwrite someone's folder).
    """
    target = real_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / "manifest.json").exists())):
        raise IndexCorrupt(f"refusing to replace {target}: it exists and is not a qa index")
    with open(_lock_path(target), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildInProgress(f"another `qa index` is building {target}; wait for it to finish") from None
        recover(target)
        _remove_abandoned_staging(target)
        staging = target.with_name(f"{_staging_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        staging.mkdir()
        try:
            yield staging
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
