"""Command-line options made from the config dataclasses' fields, and read back into nested overrides.

Each field declared with rnnlab._fields.opt becomes one option: its flag (`--field-name`, or the field's own
`flags`), its type from the annotation, its help text and its choices from the declaration, and the default
shown from the task's default config. A run config's sections become option groups: its own fields ("run"),
`data`, `model`, `model.rnn` ("recurrent layers", the RecurrentConfig every model nests) and `train`. So a
field added to RecurrentConfig is an option of every `rnnlab train <task>`.

The values given on the command line come back as a nested dict ({"model": {"rnn": {"hidden_size": 8}}}),
the form rnnlab.train.config.override applies; options not given are absent (the config's own value or a
preset's stands).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterator
from typing import Any

from .._fields import flag_of
from ..train.config import leaves, nest

__all__ = ["NONE", "add_config_options", "config_fields", "flag_namer", "given_overrides"]

GROUPS = {"": "run", "data": "data", "model": "model", "model.rnn": "recurrent layers", "train": "training"}


class _NoneGiven:
    """`--patience none`: the value None, given on purpose (argparse's None means "not given")."""

    def __repr__(self) -> str:
        return "none"


NONE = _NoneGiven()


def config_fields(cfg: Any, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any, type]]:
    """(dotted path, field, default value, type) of every command-line field of dataclass `cfg`, nested
    dataclasses walked (sections of a run config, the model's rnn)."""
    types = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from config_fields(value, path + ".")
        elif f.metadata.get("cli", False):
            yield path, f, value, types[f.name]


def _scalar_type(t: Any) -> tuple[type, bool]:
    """(int | float | str | bool, optional) of an annotation such as `int | None`."""
    every = typing.get_args(t)
    args = [a for a in every if a is not type(None)]
    return (args[0], type(None) in every) if args else (t, False)


def _converter(kind: type, optional: bool):
    def convert(text: str):
        if optional and text.lower() == "none":
            return NONE
        return kind(text)

    convert.__name__ = kind.__name__  # argparse names the type in "invalid int value: 'x'"
    return convert


def add_config_options(parser: argparse.ArgumentParser, default: Any, presets: dict[str, dict] | None = None) -> None:
    """Add an option for every command-line field of run config `default` (its values shown as defaults).
    presets: per data set, nested overrides; a field some preset sets says so in its help."""
    preset_paths = {p for preset in (presets or {}).values() for p, _ in leaves(preset)}
    groups: dict[str, Any] = {}
    for path, f, value, annotation in config_fields(default):
        section = path.rpartition(".")[0]
        group = groups.get(section) or groups.setdefault(section, parser.add_argument_group(GROUPS.get(section, section)))
        kind, optional = _scalar_type(annotation)
        help_text = f.metadata["help"]
        flags = f.metadata["flags"] or (flag_of(f),)
        shown = "none" if value is None else value
        note = "; a built-in data set's preset may set it" if path in preset_paths else ""
        if kind is bool:  # a flag that sets it and one that clears it; help shows the one that changes the default
            negative = f.metadata["negative"] or "--no-" + flags[0].removeprefix("--")
            shown_help = f"{help_text} (default {'on' if value else 'off'}{note})"
            group.add_argument(*flags, dest=path, action="store_true", default=None,
                               help=argparse.SUPPRESS if value else shown_help)
            group.add_argument(negative, dest=path, action="store_false", default=None,
                               help=shown_help if value else argparse.SUPPRESS)
            continue
        choices = f.metadata["choices"]
        choices = choices() if callable(choices) else choices
        parse = f.metadata.get("parse") or _converter(kind, optional)
        group.add_argument(*flags, dest=path, type=parse, default=None,
                           choices=list(choices) if choices else None,
                           metavar=f.metadata["metavar"] or (None if choices else f.name.upper()),
                           help=f"{help_text} (default {shown}{note}{'; none: no limit' if optional else ''})")


def given_overrides(args: argparse.Namespace, default: Any) -> dict:
    """The config options given on the command line, as nested overrides."""
    given = {path: getattr(args, path) for path, *_ in config_fields(default) if getattr(args, path, None) is not None}
    return nest({path: None if value is NONE else value for path, value in given.items()})


def flag_namer(default: Any, section: str = "model"):
    """name(field) -> its flag, for the fields under `section` (the model and its rnn): how checks name an
    option on the command line."""
    flags = {path.rpartition(".")[2]: flag_of(f) for path, f, *_ in config_fields(default)
             if path.startswith(section + ".")}
    return lambda field: flags.get(field, field)
