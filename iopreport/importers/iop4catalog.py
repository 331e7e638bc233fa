"""IOP4's sources as catalog.toml ``[[source]]`` tables, merged into the file.

Every IOP4 ``AstroSource`` becomes a table appended to catalog.toml, its
``references`` naming the database and row it came from. A name the catalog
has already is left alone (``update=True`` overwrites the imported keys); the
"calibrates" links become the targets' ``calibrators``; the polarization of a
standard (IOP4 keeps one value, no band) becomes ``pol.<pol_band>``. The
merged text is checked as ``catalog check`` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from iopreport.catalog import Catalog, catalog_from_source, load_catalog
from iopreport.importers.iop4db import Iop4Database, Iop4Source
from iopreport.importers.report import ImportReport
from iopreport.importers.tomlmerge import (
    IMPORTED_KEYS,
    Appender,
    plain,
    read_document,
    set_keys,
    toml_value,
)
from iopreport.telescopes import BANDS
from iopreport.tomlsource import TomlSource


def _origin(db: Iop4Database, source: Iop4Source, srctype_note: str = "") -> str:
    return f"Imported from IOP4 database {db.path.name} (AstroSource id {source.id}{srctype_note})"


def _number(value: float) -> float:
    """A value scaled by 100 without float noise (0.0489 * 100 -> 4.89, not 4.8900000000000006)."""
    return float(f"{value:.12g}")


def _source_type(source: Iop4Source, is_calibrator: bool) -> tuple[str, str]:
    """iopreport's type of an IOP4 source, and a note when the type had to change."""
    if source.srctype == "blazar":
        return "blazar", ""
    if source.srctype == "star":
        if source.p is not None:
            return "polarization_standard", ""
        return ("calibrator" if is_calibrator else "star"), ""
    return "blazar", f", IOP4 type {source.srctype!r}"


def source_table(
    db: Iop4Database,
    source: Iop4Source,
    calibrators: list[str],
    is_calibrator: bool,
    pol_band: str,
    notes: list[str],
) -> dict[str, Any]:
    """The catalog.toml keys of one IOP4 source (plain values, in the documented order)."""
    srctype, type_note = _source_type(source, is_calibrator)
    if type_note:
        notes.append(
            f"source {source.name!r}: IOP4 type {source.srctype!r} imported as 'blazar' "
            "(iopreport's type of a monitored target)"
        )
    table: dict[str, Any] = {"name": source.name}
    others: list[str] = []
    for name in source.other_names:
        if name.casefold() not in {n.casefold() for n in (source.name, *others)}:
            others.append(name)
    if others:
        table["other_names"] = others
    table["type"] = srctype
    table["ra"] = source.ra_hms.strip()
    table["dec"] = source.dec_dms.strip()
    if source.redshift is not None:
        table["redshift"] = source.redshift
    if calibrators:
        table["calibrators"] = calibrators
    mags: dict[str, Any] = {}
    for band in BANDS:
        if band not in source.mags:
            continue
        value, error = source.mags[band]
        if error is not None and not 0 < error < 5:
            notes.append(f"source {source.name!r}: mag.{band} error {error} dropped (not in 0..5)")
            error = None
        mags[band] = [value, error] if error is not None else value
    if mags:
        table["mag"] = mags
    if source.p is not None:
        pol: dict[str, float] = {"p_percent": _number(source.p * 100)}
        if source.p_err is not None:
            pol["p_err_percent"] = _number(source.p_err * 100)
        if source.chi is not None:
            chi = source.chi % 180.0
            if chi != source.chi:
                notes.append(
                    f"source {source.name!r}: chi {source.chi} written as {chi:g} (mod 180)"
                )
            pol["chi_deg"] = chi
        if source.chi_err is not None:
            pol["chi_err_deg"] = source.chi_err
        table["pol"] = {pol_band: pol}
    if source.comment.strip():
        table["comment"] = source.comment.strip()
    table["references"] = [_origin(db, source, type_note)]
    return table


@dataclass
class _CatalogMerge:
    text: str | None
    catalog: Catalog
    names: dict[int, str]  # IOP4 source id -> its name in the merged catalog


def merge_catalog(
    db: Iop4Database, path: Path, report: ImportReport, *, update: bool, pol_band: str
) -> _CatalogMerge:
    """catalog.toml with IOP4's sources merged in (text None when nothing changes)."""
    existing = load_catalog(path) if path.exists() else None
    document = read_document(path)
    taken: dict[str, int | str] = {}  # casefolded name -> existing entry index, or "import"
    if existing is not None:
        for index, entry in enumerate(existing.sources):
            for name in entry.all_names:
                taken[name.casefold()] = index
    calibrated: dict[int, list[int]] = {}
    calibrators_of: set[int] = set()
    for calibrator_id, target_id in db.calibrates:
        if calibrator_id == target_id:
            report.conflicts.append(
                f"source {db.source(target_id).name!r}: IOP4 lists it as its own calibrator; "
                "link dropped"
            )
            continue
        calibrated.setdefault(target_id, []).append(calibrator_id)
        calibrators_of.add(calibrator_id)

    # first the names: which IOP4 source is new, unchanged, overwritten or left alone
    names: dict[int, str] = {}
    plans: list[tuple[Iop4Source, int | None]] = []  # (source, existing index or None)
    for source in db.sources:
        folded = source.name.casefold()
        match = taken.get(folded)
        if match == "import":
            report.conflicts.append(
                f"source {source.name!r} (IOP4 id {source.id}): the name is used by another "
                "IOP4 source (names are compared ignoring case); not imported"
            )
            report.count("sources", "conflicts")
            continue
        if isinstance(match, int):
            names[source.id] = existing.sources[match].name
            plans.append((source, match))
            continue
        names[source.id] = source.name
        taken[folded] = "import"
        plans.append((source, None))

    appender = Appender(document, "source", path)
    array = document.get("source")
    tables: dict[int, dict[str, Any]] = {}
    for source, match in plans:
        links = [names[c] for c in calibrated.get(source.id, []) if c in names]
        table = source_table(db, source, links, source.id in calibrators_of, pol_band, report.notes)
        kept_others = []
        for name in table.get("other_names", []):
            owner = taken.get(name.casefold())
            if owner is None or owner == match:
                kept_others.append(name)
                if match is None:
                    taken[name.casefold()] = "import"
            else:
                report.conflicts.append(
                    f"source {source.name!r}: other name {name!r} belongs to another catalog "
                    "entry; left out"
                )
        if kept_others:
            table["other_names"] = kept_others
        else:
            table.pop("other_names", None)
        tables[source.id] = table
    # calibration links: a calibrator must not be a blazar and must have a magnitude
    final = {}  # name -> (type, has magnitudes) after the import
    if existing is not None:
        final = {e.name: (e.srctype, bool(e.mags)) for e in existing.sources}
    for source, match in plans:
        if match is None or update:
            table = tables[source.id]
            final[names[source.id]] = (table["type"], bool(table.get("mag")))
    for source, _match in plans:
        table = tables[source.id]
        valid = []
        for name in table.get("calibrators", []):
            entry = existing.get(name) if existing is not None else None
            kind = final.get(entry.name if entry is not None else name)
            if kind is None:
                problem = "is not in the catalog"
            elif kind[0] == "blazar":
                problem = "is a blazar"
            elif not kind[1]:
                problem = "has no literature magnitude"
            else:
                valid.append(name)
                continue
            report.conflicts.append(
                f"source {source.name!r}: calibrator {name!r} {problem}; link dropped"
            )
        if valid:
            table["calibrators"] = valid
        else:
            table.pop("calibrators", None)
    changed = False
    for source, match in plans:
        table = tables[source.id]
        if match is None:
            new = tomlkit.table()
            for key in IMPORTED_KEYS:
                if key in table:
                    new.add(key, toml_value(key, table[key]))
            appender.append(new)
            changed = True
            report.count("sources", "new")
            report.count("links", "imported", len(table.get("calibrators", [])))
            continue
        entry = existing.sources[match]
        # other names the catalog has besides IOP4's stay (a rename keeps finding its row)
        known = {n.casefold() for n in (table["name"], *table.get("other_names", []))}
        extra = [n for n in entry.all_names if n.casefold() not in known]
        if extra:
            table["other_names"] = [*table.get("other_names", []), *extra]
        if plain(array[match]) == table:
            report.count("sources", "unchanged")
        elif update:
            names[source.id] = source.name  # the entry takes IOP4's name, the old one stays
            set_keys(array[match], table, IMPORTED_KEYS)
            changed = True
            report.count("sources", "updated")
            report.count("links", "imported", len(table.get("calibrators", [])))
        else:
            where = f"line {entry.line}" if entry.line else "catalog.toml"
            report.conflicts.append(
                f"source {source.name!r}: catalog.toml has {entry.name!r} ({where}) with other "
                "values; kept (--update overwrites it)"
            )
            report.count("sources", "conflicts")
    text = tomlkit.dumps(document) if changed else None
    catalog = (
        catalog_from_source(TomlSource.from_text(text, path))
        if text is not None
        else (existing or Catalog(path=path, sources=()))
    )
    return _CatalogMerge(text=text, catalog=catalog, names=names)
