"""Checks at the public boundary. Every message names who complains, what was expected, what came, the fix."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

__all__ = ["InputShapeError", "check_positive_ints", "reject_unknown_options", "shape_str"]


class InputShapeError(ValueError, RuntimeError):
    """A forward's input or state does not fit the module (size, batch, dtype, device).

    torch.nn raises RuntimeError for these and rnnlab used to raise ValueError: this class is both, so
    `except RuntimeError` written for torch.nn and `except ValueError` written for rnnlab both catch it. Its
    message starts with torch.nn's own words for the same mistake, then rnnlab's: who, expected, got, fix."""
def shape_str(shape: Iterable[int]) -> str:
    dims = [str(int(s)) for s in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def reject_unknown_options(owner: str, unknown: dict, known: Iterable[str]) -> None:
    """Raise TypeError for keyword arguments `owner` does not take, suggesting the closest known one."""
    if not unknown:
        return
    known = sorted(known)
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(f"{owner}: unknown option {', '.join(parts)}; known options: {', '.join(known)}")


def check_positive_ints(owner: str, obj: object, fields: Iterable[str], name: Callable[[str], str] = str) -> None:
    """Raise ValueError naming the first of `fields` of `obj` that is not an int >= 1 (name(field): how the
    option is named: the keyword, or the command line's flag)."""
    for field in fields:
        value = getattr(obj, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{owner}: {name(field)} must be an integer >= 1, got {value!r}")
