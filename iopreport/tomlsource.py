"""Read a TOML file and remember where each key was written.

``tomllib`` gives values but no positions, and every file a person edits here
(config.toml, catalog.toml, flags.toml) must report a mistake with its line.
:class:`TomlSource` keeps the text beside the parsed data and answers
"on which line is this key?" for dotted key paths, including arrays of tables
(``("source", 3, "ra")`` is the ``ra`` key of the fourth ``[[source]]``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iopreport.errors import InputError

KeyPath = tuple[str | int, ...]

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_TABLE_RE = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]\s*(?:#.*)?$")
_ARRAY_TABLE_RE = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]\s*(?:#.*)?$")
_KEY_RE = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART_RE = re.compile(_BARE_OR_QUOTED)
_TOML_ERROR_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = []
    for match in _PART_RE.finditer(text):
        part = match.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


@dataclass
class TomlSource:
    """Parsed TOML data plus the line of every key.

    Attributes
    ----------
    path : Path
        The file the text came from (used in messages).
    data : dict
        What ``tomllib`` parsed.
    lines : dict
        Key path (strings, with integers for array-of-table indices) to the
        1-based line where it was written.
    """

    path: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)

    @classmethod
    def from_text(cls, text: str, path: Path | str) -> TomlSource:
        """Parse ``text``; a syntax error raises :class:`InputError` with its line."""
        path = Path(path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            pos = _TOML_ERROR_POS.search(message)
            line = int(pos.group(1)) if pos else None
            reason = _TOML_ERROR_POS.sub("", message).strip()
            raise InputError(path, line, f"TOML syntax error: {reason}") from None
        except RecursionError:  # tomllib parses nested arrays and tables recursively
            raise InputError(path, None, "TOML nested too deeply to be read") from None
        return cls(path=path, data=data, lines=_index_lines(text))

    @classmethod
    def read(cls, path: Path | str) -> TomlSource:
        """Read and parse a file; a missing or unreadable file raises :class:`InputError`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(path, None, "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, None, f"cannot read file: {exc}") from None
        return cls.from_text(text, path)

    def line_of(self, key_path: Sequence[str | int]) -> int | None:
        """Line of ``key_path``, or of its nearest enclosing table that was written."""
        key_path = tuple(key_path)
        while key_path:
            if key_path in self.lines:
                return self.lines[key_path]
            key_path = key_path[:-1]
        return None

    def error(self, key_path: Sequence[str | int], message: str) -> InputError:
        """An :class:`InputError` that names the key and the line it is on."""
        return InputError(self.path, self.line_of(key_path), message, key=format_key(key_path))


def format_key(key_path: Sequence[str | int]) -> str:
    """``("archives", "OSN-T090", "port")`` -> ``archives.OSN-T090.port``; ``source[3].ra``."""
    text = ""
    for part in key_path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


def _index_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path written in ``text`` to its 1-based line number."""
    lines: dict[KeyPath, int] = {}
    array_counts: dict[tuple[str, ...], int] = {}
    prefix: KeyPath = ()
    in_multiline: str | None = None
    bracket_depth = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw
        if in_multiline:
            if in_multiline in line:
                in_multiline = None
            continue
        if bracket_depth > 0:
            bracket_depth += line.count("[") - line.count("]")
            continue
        if match := _ARRAY_TABLE_RE.match(line):
            names = _split_dotted(match.group(1))
            index = array_counts.get(names, 0)
            array_counts[names] = index + 1
            # Arrays nested under an element of another array are rare in our files;
            # they are indexed relative to their own name only.
            for name in [k for k in array_counts if k[: len(names)] == names and k != names]:
                del array_counts[name]
            prefix = (*names, index)
            lines.setdefault(prefix, number)
            lines.setdefault(names, number)
            continue
        if match := _TABLE_RE.match(line):
            names = _split_dotted(match.group(1))
            prefix = _resolve_table(names, array_counts)
            lines.setdefault(prefix, number)
            continue
        if match := _KEY_RE.match(line):
            key = prefix + _split_dotted(match.group(1))
            for depth in range(len(prefix) + 1, len(key) + 1):
                lines.setdefault(key[:depth], number)
            rest = line[match.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) == 1:
                    in_multiline = quote
            value = rest.split("#", 1)[0] if '"' not in rest and "'" not in rest else rest
            bracket_depth = max(0, value.count("[") - value.count("]"))
    return lines


def _resolve_table(names: tuple[str, ...], array_counts: dict[tuple[str, ...], int]) -> KeyPath:
    """Insert array indices for a ``[a.b]`` header written under ``[[a]]``."""
    resolved: list[str | int] = []
    for depth in range(1, len(names) + 1):
        resolved.append(names[depth - 1])
        count = array_counts.get(names[:depth])
        if count and depth < len(names):
            resolved.append(count - 1)
    return tuple(resolved)
