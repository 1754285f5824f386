"""Recipes: a dataclass of hyperparameters, filled from a TOML file and then from ``--key value`` flags.

Nothing is executed: a recipe is data. An unknown key, or a value of the wrong type, is an error.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from nightvision.errors import InputError

__all__ = ["load_config"]

C = TypeVar("C")


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` (from TOML or a command-line string) to the field's declared type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):  # X | None
        is_none = value is None or (isinstance(value, str) and value.lower() == "none")
        if is_none and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if annotation in (int, float, str):
            if annotation is int and isinstance(value, float):
                raise ValueError(value)
            return annotation(value)
    except (TypeError, ValueError):
        raise InputError(f"config {name}: expected {annotation.__name__}, got {value!r}") from None
    return value


def load_config(cls: type[C], argv: list[str] | None = None) -> C:
    """Build ``cls`` (a dataclass) from ``--config FILE.toml`` and ``--key value`` / ``--key=value`` flags.

    Later sources win: dataclass defaults, then the file, then the flags (``--no-key`` sets a bool false).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}

    pairs: list[tuple[str, Any]] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            raise InputError(f"unexpected argument {arg!r}; options look like --key value")
        key, eq, val = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if key.startswith("no_") and key[3:] in fields and hints[key[3:]] is bool:
                key, val = key[3:], "false"
            elif key in fields and hints[key] is bool and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
                val = "true"
            else:
                if i + 1 >= len(argv):
                    raise InputError(f"option --{key} needs a value")
                i += 1
                val = argv[i]
        pairs.append((key, val))
        i += 1

    for key, val in pairs:
        if key == "config":
            path = Path(val)
            if not path.is_file():
                raise InputError(f"config file not found: {path}")
            with open(path, "rb") as f:
                for k, v in tomllib.load(f).items():
                    if k not in fields:
                        raise InputError(f"{path}: unknown key {k!r} (known: {', '.join(fields)})")
                    values[k] = _coerce(k, v, hints[k])
    for key, val in pairs:
        if key == "config":
            continue
        if key not in fields:
            raise InputError(f"unknown option --{key.replace('_', '-')} (known: {', '.join(fields)})")
        values[key] = _coerce(key, val, hints[key])
    return cls(**values)
