"""The error a user's data raises: a ValueError whose message names the problem and the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["DataError", "check_regular"]


class DataError(ValueError):
    """Bad input data (missing, empty, binary, undecodable, too small, unseen characters).

    The command line shows the message as one line and exits with code 2.
    """


def check_regular(path: str | os.PathLike, what: str = "--data") -> Path:
    """`path`, once it is a regular file (a link to one is fine): a FIFO would block the reader forever and a
    device such as /dev/zero never ends, so both are a DataError instead of a hang or a MemoryError."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path given to {what}") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a folder, expected a file for {what}")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or \
            stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise DataError(f"{path}: is {kind}, not a regular file; give {what} a file saved on disk")
    return path
