"""IOP4's manual result flags as flags.toml ``[[flag]]`` tables.

The bad-photometry and bad-polarimetry bits of an IOP4 result become a flag
selecting the same raw files by location (``TEL/night/file``). Bits that
IOP4's automatic rule explains (``auto_flag``: p outside 0..1, magnitude error
above 0.3) are left to iopreport's own ``[quality]`` thresholds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT

from iopreport.catalog import Catalog
from iopreport.flags.edit import ADD_ORDER
from iopreport.importers.iop4db import BAD_PHOTOMETRY, BAD_POLARIMETRY, Iop4Database, Iop4Result
from iopreport.importers.report import ImportReport
from iopreport.importers.tomlmerge import Appender, read_document
from iopreport.tomlsource import TomlSource

#: Author of imported flags (IOP4 does not record who set a flag).
FLAG_AUTHOR = "IOP4 (imported)"


def flag_values(db: Iop4Database, result: Iop4Result, source: str, bits: int) -> dict[str, Any]:
    """flags.toml keys of the flag that marks IOP4 result ``result`` bad."""
    what = []
    if bits & BAD_PHOTOMETRY:
        what.append("photometry")
    if bits & BAD_POLARIMETRY:
        what.append("polarimetry")
    return {
        "id": f"iop4-{result.id}",
        "what": what,
        "source": source,
        "mode": result.mode,
        "file": list(result.files),
        "reason": f"flagged bad {' and '.join(what)} in IOP4 "
        f"(PhotoPolResult id {result.id}, {db.path.name})",
        "author": FLAG_AUTHOR,
        "date": result.modified or dt.datetime.now(dt.UTC).date(),
    }


def _flag_item(key: str, value: Any):
    if isinstance(value, list):
        if len(value) == 1:
            return value[0]
        array = tomlkit.array()
        array.extend(value)
        if key == "file":
            array.multiline(True)
        return array
    return value


def _flag_plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in values.items()}


def merge_flags(
    db: Iop4Database,
    path: Path,
    names: dict[int, str],
    catalog: Catalog,
    telescopes: list[str],
    report: ImportReport,
    *,
    update: bool,
) -> str | None:
    """flags.toml with a flag per IOP4 result a person flagged (None when nothing changes)."""
    from iopreport.flags.parse import flags_from_source

    document = read_document(path)
    array = document.get("flag")
    by_id = {str(t.get("id")): t for t in array} if isinstance(array, AoT) else {}
    appender = Appender(document, "flag", path)
    changed = False
    for result in db.results:
        bits = result.flags & (BAD_PHOTOMETRY | BAD_POLARIMETRY)
        if not bits:
            continue
        automatic = bits & result.auto_flags()
        if automatic:
            report.count("flags", "automatic in IOP4, not imported")
            bits &= ~automatic
        if bits & BAD_POLARIMETRY and result.mode != "polarimetry":
            report.notes.append(
                f"IOP4 result {result.id}: bad polarimetry on a photometric result; not imported"
            )
            bits &= ~BAD_POLARIMETRY
        if not bits:
            continue
        if result.source_id not in names:
            report.conflicts.append(f"IOP4 result {result.id}: its source was not imported")
            report.count("flags", "conflicts")
            continue
        values = flag_values(db, result, names[result.source_id], bits)
        current = by_id.get(values["id"])
        if current is not None:
            if current.unwrap() == _flag_plain(values):
                report.count("flags", "unchanged")
                continue
            if not update:
                report.conflicts.append(
                    f"flag {values['id']!r}: flags.toml has it with other values; kept "
                    "(--update overwrites it)"
                )
                report.count("flags", "conflicts")
                continue
            _set_keys_flag(current, values)
            report.count("flags", "updated")
            changed = True
            continue
        table = tomlkit.table()
        for key in ADD_ORDER:
            if key in values:
                table.add(key, _flag_item(key, values[key]))
        appender.append(table)
        by_id[values["id"]] = table
        report.count("flags", "new")
        changed = True
    if not changed:
        return None
    text = tomlkit.dumps(document)
    flags_from_source(TomlSource.from_text(text, path), catalog, telescopes=telescopes)
    return text


def _set_keys_flag(table, values: dict[str, Any]) -> None:
    for key in list(table.keys()):
        if key not in values:
            del table[key]
    for key in ADD_ORDER:
        if key in values:
            table[key] = _flag_item(key, values[key])
