"""Config fields that describe themselves: one declaration gives the default, the help text and the flag.

Every config dataclass (the recurrent stack, the model heads, the data and training options) declares its
fields with `opt`; the command line builds its options from these fields (rnnlab/cli/options.py), so an
option added to a config appears in every `rnnlab train <task>` that uses that config, with its help.

    hidden_size: int = opt(128, "units per layer and direction", flags=("--hidden", "--hidden-size"), metavar="H")

metadata keys: help; flags (the first is the one messages name; default `--field-name`); metavar; choices
(a tuple, or a function returning one, read when the parser is built); negative (the flag that sets a
boolean False, default `--no-field-name`); cli=False for fields the data sets (vocabulary size, classes);
parse (text -> value) for a field whose command-line text is not one scalar of its type (zoneout's "0.1,0.05").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["flag_of", "opt"]


def opt(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING,
        flags: tuple[str, ...] = (), metavar: str | None = None, choices: tuple | Callable[[], tuple] | None = None,
        negative: str | None = None, cli: bool = True, parse: Callable[[str], Any] | None = None) -> Any:
    """A dataclass field carrying its command-line description (see the module docstring)."""
    metadata = {"help": help, "flags": tuple(flags), "metavar": metavar, "choices": choices, "negative": negative,
                "cli": cli, "parse": parse}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_of(f: dataclasses.Field) -> str:
    """The flag that names field `f` on the command line (and in the command line's error messages)."""
    flags = f.metadata.get("flags") or ()
    return flags[0] if flags else "--" + f.name.replace("_", "-")
