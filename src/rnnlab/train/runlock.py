"""One training at a time per run folder: a lock file, `<run>/.lock`, held while `fit` writes the folder.

Two trainings on one folder would each write config.json, metrics.csv and last/ over the other's. The lock is
an advisory `flock` on `<run>/.lock` (the kernel drops it when its process dies, however it dies), and the file
names its holder (pid, host, start time) so that the refusal can say who holds it. A lock file naming a
process of this host that no longer runs (a crash, a SIGKILL) is stale: it is taken over, with a note. The
file is emptied, never deleted, on release: deleting a locked file lets a third process lock a new one.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the holder's pid alone decides
    fcntl = None

__all__ = ["RunLock", "RunLockedError", "check_unlocked"]

LOCK_NAME = ".lock"


class RunLockedError(ValueError):
    """Another live process is training into this run folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _holder(text: str) -> dict:
    try:
        holder = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int) or isinstance(holder.get("pid"), bool):
        return {}
    return holder


def _refusal(run: Path, holder: dict) -> RunLockedError:
    since = holder.get("started")
    since = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" \
        if isinstance(since, (int, float)) and not isinstance(since, bool) else ""
    host = holder.get("host") or "?"
    return RunLockedError(
        f"{run}: another training (pid {holder.get('pid', '?')} on {host}{since}) is writing this run folder; "
        f"wait for it to end or stop it, or choose another --out (if that process is not training, delete "
        f"{run / LOCK_NAME})"
    )


class RunLock:
    """`with RunLock(run, log):` holds run/.lock (RunLockedError if a live process holds it)."""

    def __init__(self, run: str | os.PathLike, log: Callable[[str], None] = print) -> None:
        self.run, self.log, self.fd = Path(run), log, None

    def acquire(self) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        fd = _open_locked(self.run)
        try:
            holder = _live_holder_refused(self.run, fd)
            if holder:  # a stale lock: its process died without releasing it
                self.log(f"note: {self.run / LOCK_NAME} named pid {holder['pid']} on this host, which is no longer "
                         f"running; taking the run folder over")
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "started": round(time.time(), 1)}).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # a clean end leaves no holder behind
        finally:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _open_locked(run: Path) -> int:
    """run/.lock opened and flock'ed (RunLockedError naming the holder if another process has it)."""
    path = run / LOCK_NAME
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise RunLockedError(f"{path}: not a regular file; delete it, it is not a lock rnnlab wrote")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            os.close(fd)
            raise _refusal(run, holder) from None
    return fd


def _live_holder_refused(run: Path, fd: int) -> dict:
    """With the flock held: the holder the file still names, if its process is gone (a stale lock, {} when
    the file names nobody); RunLockedError when it names a live process other than this one (a holder without
    the flock: a filesystem without flock, or a reused pid, which deleting the file settles) or a process of
    another host, whose life cannot be checked from here."""
    holder = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    pid = holder.get("pid")
    if pid is None or pid == os.getpid():
        return {}
    if holder.get("host") != socket.gethostname() or _alive(pid):
        raise _refusal(run, holder)
    return holder


def check_unlocked(run: str | os.PathLike) -> None:
    """RunLockedError when a live process holds run/.lock; the file is left as it is (the command line asks
    before reading any data; `fit` takes the lock itself)."""
    run = Path(run)
    if not (run / LOCK_NAME).exists() and not (run / LOCK_NAME).is_symlink():
        return
    fd = _open_locked(run)
    try:
        _live_holder_refused(run, fd)
    finally:
        os.close(fd)
