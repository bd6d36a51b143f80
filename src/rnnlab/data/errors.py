"""The error a user's data raises: a ValueError whose message names the problem and the fix."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad input data (missing, empty, binary, undecodable, too small, unseen characters).

    The command line shows the message as one line and exits with code 2.
    """
