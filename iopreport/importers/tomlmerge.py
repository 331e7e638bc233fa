"""Editing catalog.toml and flags.toml with tomlkit, keeping their comments and order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT

from iopreport.errors import InputError

#: Catalog keys an import writes (``update`` replaces these and keeps any other key).
IMPORTED_KEYS = (
    "name",
    "other_names",
    "type",
    "ra",
    "dec",
    "redshift",
    "calibrators",
    "mag",
    "pol",
    "comment",
    "references",
)


def toml_value(key: str, value: Any):
    """tomlkit item of a catalog value: inline tables for ``mag`` and ``pol``."""
    if key in ("mag", "pol"):
        inline = tomlkit.inline_table()
        for band, item in value.items():
            if isinstance(item, dict):
                nested = tomlkit.inline_table()
                nested.update(item)
                inline.append(band, nested)
            else:
                inline.append(band, item)
        return inline
    if key == "comment" and "\n" in value:
        return tomlkit.string(value, multiline=True)
    return value


def plain(table) -> dict[str, Any]:
    value = table.unwrap() if hasattr(table, "unwrap") else dict(table)
    return {k: value[k] for k in IMPORTED_KEYS if k in value}


def read_document(path: Path) -> tomlkit.TOMLDocument:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise InputError(path, exc.line, f"TOML syntax error: {exc}") from None


def array_of_tables(document: tomlkit.TOMLDocument, key: str, path: Path) -> AoT:
    value = document.get(key)
    if value is None:
        document.add(tomlkit.nl())
        document.append(key, tomlkit.aot())
        return document[key]
    if not isinstance(value, AoT):
        raise InputError(path, None, f"{key}: must be an array of tables: [[{key}]]")
    return value


class Appender:
    """Appends tables to an array of tables, one blank line between them.

    tomlkit separates the tables of an array it made itself; in an array read
    from the file the blank line is added (the file's end is read once).
    """

    def __init__(self, document: tomlkit.TOMLDocument, key: str, path: Path) -> None:
        self.document, self.key, self.path = document, key, path
        self.fresh = not isinstance(document.get(key), AoT)
        self.checked = False

    def append(self, table) -> None:
        array = array_of_tables(self.document, self.key, self.path)
        if len(array) and not self.fresh:
            if self.checked or not tomlkit.dumps(self.document).endswith("\n\n"):
                array[-1].add(tomlkit.nl())
            self.checked = True
        array.append(table)


def set_keys(table, values: dict[str, Any], order: tuple[str, ...]) -> None:
    """Replace ``table``'s keys of ``order`` with ``values`` (others kept, positions kept)."""
    for key in order:
        if key in table and key not in values:
            del table[key]
    for key in order:
        if key in values:
            table[key] = toml_value(key, values[key])
