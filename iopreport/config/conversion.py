"""TOML tables -> frozen dataclasses, checking every key and value.

The field's type (from its annotation) says what the TOML value must be; the
field's check (:func:`~iopreport.config.checks.setting`) what it may be. A
problem raises an InputError naming the key and its line.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from iopreport.tomlsource import KeyPath, TomlSource


def expect_table(source: TomlSource, key: KeyPath, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise source.error(key, f"must be a table, got {_type_name(value)}")
    return value


def reject_unknown(source: TomlSource, key: KeyPath, table: Mapping, known) -> None:
    for name in table:
        if name not in known:
            hint = difflib.get_close_matches(name, list(known), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = ", ".join(sorted(known))
            raise source.error((*key, name), f"unknown key{suggestion}; allowed here: {allowed}")


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def build_section(cls: type, table: Mapping[str, Any], source: TomlSource, key: KeyPath):
    """Make dataclass ``cls`` from ``table``, checking every key and value."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    toml_names = {f.metadata.get("key") or f.name: f for f in fields}
    if "password" in table and "password_env" in toml_names:
        raise source.error(
            (*key, "password"),
            "never write a password in config.toml; put it in an environment variable "
            "and give that variable's name as password_env",
        )
    reject_unknown(source, key, table, toml_names)
    values = {}
    for toml_name, item in toml_names.items():
        item_key = (*key, toml_name)
        if toml_name not in table:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise source.error(item_key, "required key is missing")
            continue
        value = _convert(hints[item.name], table[toml_name], source, item_key)
        check = item.metadata.get("check")
        if check and (problem := check(value)):
            raise source.error(item_key, problem)
        values[item.name] = value
    return cls(**values)


def _convert(kind: Any, value: Any, source: TomlSource, key: KeyPath) -> Any:
    origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            return _bad(source, key, "one of " + ", ".join(repr(c) for c in choices), value)
        return value
    if origin in (Mapping, dict):
        if not isinstance(value, dict):
            return _bad(source, key, "a table", value)
        _, value_kind = typing.get_args(kind)
        return types.MappingProxyType(
            {str(k): _convert(value_kind, v, source, (*key, k)) for k, v in value.items()}
        )
    if origin is tuple:
        (item_kind, _ellipsis) = typing.get_args(kind)
        if not isinstance(value, list):
            return _bad(source, key, "an array", value)
        return tuple(_convert(item_kind, item, source, key) for item in value)
    if kind is bool:
        return value if isinstance(value, bool) else _bad(source, key, "true or false", value)
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok else _bad(source, key, "an integer", value)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            return _bad(source, key, "a finite number", value)
        return float(value) if ok else _bad(source, key, "a number", value)
    if kind is str:
        return value if isinstance(value, str) else _bad(source, key, "a string", value)
    if kind is Path:
        return Path(value) if isinstance(value, str) else _bad(source, key, "a path string", value)
    raise TypeError(f"unsupported config type {kind!r}")  # a programming error, not user input


def _bad(source: TomlSource, key: KeyPath, expected: str, value: Any):
    raise source.error(key, f"must be {expected}, got {_type_name(value)} {value!r}")
