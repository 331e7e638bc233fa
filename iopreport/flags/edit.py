"""``flags add`` and ``flags remove``: edit flags.toml keeping its comments and order.

The file is edited with tomlkit (a style-preserving TOML library), the new
text is checked exactly as a build would check it, and only then written,
atomically (temporary file in the same folder, then rename): a failed edit
leaves the file as it was.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT

from iopreport.errors import InputError, UsageError
from iopreport.fileio import write_text_atomic
from iopreport.flags.model import FlagSet

#: Key order of a flag written by ``flags add``.
ADD_ORDER = (
    "id",
    "what",
    "source",
    "telescope",
    "instrument",
    "band",
    "mode",
    "night",
    "file",
    "from",
    "to",
    "reason",
    "author",
    "date",
)
_AUTO_ID = re.compile(r"^F(\d+)$")

Validate = Callable[[str], FlagSet]


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read file: {exc}") from None
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise InputError(path, exc.line, f"TOML syntax error: {exc}") from None


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (keeps the file's permissions)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    write_text_atomic(path, text, mode=mode)


def next_id(existing: list[str]) -> str:
    """``F0001``, ``F0002``, ...: one past the highest automatic id in use."""
    numbers = [int(m.group(1)) for i in existing if (m := _AUTO_ID.match(i))]
    return f"F{max(numbers, default=0) + 1:04d}"


def _flags_array(document: tomlkit.TOMLDocument) -> AoT | None:
    value = document.get("flag")
    return value if isinstance(value, AoT) else None


def _item(value: Any):
    if isinstance(value, (list, tuple)):
        return value[0] if len(value) == 1 else list(value)
    return value


def add_flag(path: Path | str, values: dict[str, Any], validate: Validate) -> str:
    """Append a ``[[flag]]`` with ``values`` to ``path``; return its id.

    ``values`` holds flags.toml keys (:data:`ADD_ORDER`); ``id`` is chosen
    when missing. ``validate(text)`` must raise :class:`InputError` for a
    file that would not load; nothing is written then.
    """
    path = Path(path)
    document = _read(path)
    array = _flags_array(document)
    ids = [str(table.get("id")) for table in array] if array is not None else []
    values = dict(values)
    flag_id = values.get("id") or next_id(ids)
    if flag_id in ids:
        raise UsageError(f"{path}: a flag with id {flag_id!r} exists already")
    values["id"] = flag_id
    values.setdefault("date", dt.datetime.now(dt.UTC).date())
    table = tomlkit.table()
    for key in ADD_ORDER:
        if values.get(key) not in (None, (), []):
            table.add(key, _item(values[key]))
    unknown = set(values) - set(ADD_ORDER)
    if unknown:
        raise UsageError(f"unknown flag keys: {', '.join(sorted(unknown))}")
    if array is None:
        if "flag" in document:
            raise InputError(path, None, "flag: must be an array of tables: [[flag]]")
        document.add(tomlkit.nl())
        document.append("flag", tomlkit.aot())
        array = _flags_array(document)
    elif len(array) and not tomlkit.dumps(document).endswith("\n\n"):
        array[-1].add(tomlkit.nl())  # a blank line between the last flag and the new one
    array.append(table)
    text = tomlkit.dumps(document)
    validate(text)
    write_atomic(path, text)
    return flag_id


def _keep_trailing_comments(document, array: AoT, index: int) -> None:
    """Move the comments written after flag ``index``'s last key out of it before it goes.

    tomlkit files a comment written just above a ``[[flag]]`` header under the
    flag before; deleting that flag would take the next flag's comment along.
    """
    body = array[index].value.body
    last_key = max((i for i, (key, _) in enumerate(body) if key is not None), default=-1)
    trailing = [item for key, item in body[last_key + 1 :] if key is None]
    if not trailing:
        return
    del body[last_key + 1 :]
    if index > 0:
        previous = array[index - 1].value
        for item in trailing:
            previous.body.append((None, item))
        return
    # the first flag: the comments go just before the array, at the top level
    position = next(i for i, (key, _) in enumerate(document.body) if key == "flag")
    document.body[position:position] = [(None, item) for item in trailing]
    shift = len(trailing)
    for key, value in list(document._map.items()):  # tomlkit's key -> body index map
        if isinstance(value, tuple):
            document._map[key] = tuple(v + shift if v >= position else v for v in value)
        elif value >= position:
            document._map[key] = value + shift


def remove_flag(path: Path | str, flag_id: str, validate: Validate) -> None:
    """Delete the ``[[flag]]`` whose id is ``flag_id`` from ``path``; other text is kept."""
    path = Path(path)
    document = _read(path)
    array = _flags_array(document)
    index = next(
        (i for i, table in enumerate(array or ()) if str(table.get("id")) == flag_id), None
    )
    if index is None:
        ids = ", ".join(str(t.get("id")) for t in array or ()) or "none"
        raise UsageError(f"{path}: no flag with id {flag_id!r} (ids: {ids})")
    _keep_trailing_comments(document, array, index)
    del array[index]
    if not len(array):
        del document["flag"]
    text = tomlkit.dumps(document)
    validate(text)
    write_atomic(path, text)
