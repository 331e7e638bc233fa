"""``iopreport import iop4``: an IOP4 database's catalog, flags and results.

* **catalog**: every IOP4 ``AstroSource`` becomes a ``[[source]]`` table
  appended to catalog.toml (tomlkit: the file's comments and order are kept),
  its ``references`` naming the database and row it came from. A name the
  catalog has already is reported and left alone (``update=True`` overwrites
  the imported keys). IOP4's ``calibrates`` links become the targets'
  ``calibrators``; the polarization of a standard (IOP4 keeps one value, no
  band) becomes ``pol.<pol_band>``.
* **flags**: the bad-photometry and bad-polarimetry bits of IOP4 results
  become ``[[flag]]`` tables selecting the same raw files by location. Bits
  that IOP4's automatic rule explains (``auto_flag``: p outside 0..1, mag error
  above 0.3) are left to iopreport's own ``[quality]`` thresholds.
* **results**: IOP4's results go to the ``imported_result`` table as method
  ``iop4-import``, apart from iopreport's own results (never in nightly means,
  alerts, night summaries, recomputation or flags); the source pages draw them
  as their own trace.

Everything is checked before anything is written: the new catalog.toml and
flags.toml texts are validated as a build would read them, then written
atomically. Importing the same database again finds every entry unchanged and
writes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT

from iopreport.catalog import Catalog, catalog_from_source, load_catalog
from iopreport.errors import InputError
from iopreport.fileio import write_text_atomic
from iopreport.flags.edit import ADD_ORDER
from iopreport.importers.iop4db import (
    BAD_PHOTOMETRY,
    BAD_POLARIMETRY,
    RESULT_VALUES,
    Iop4Database,
    Iop4Result,
    Iop4Source,
    read_iop4,
)
from iopreport.telescopes import BANDS
from iopreport.tomlsource import TomlSource

#: ``ImportedResult.method`` of IOP4's results.
METHOD = "iop4-import"
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
#: Rows per INSERT (38 columns each, below SQLite's 32,766 bound variables).
INSERT_BATCH = 500
#: Author of imported flags (IOP4 does not record who set a flag).
FLAG_AUTHOR = "IOP4 (imported)"
KINDS = ("sources", "links", "flags", "results")
#: Order of the counts in the report.
ORDER = ("new", "updated", "unchanged", "conflicts", "imported")


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    database: Path
    migrations: tuple[str, ...]
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def count(self, kind: str, what: str, n: int = 1) -> None:
        self.counts[kind][what] = self.counts[kind].get(what, 0) + n

    def text(self, *, dry_run: bool) -> str:
        """Counts per kind, then every conflict and note."""
        verb = "would be" if dry_run else "were"
        lines = [
            f"{self.database}: IOP4 database (migrations {', '.join(self.migrations)})"
            + (" — dry run, nothing written" if dry_run else "")
        ]
        for kind in KINDS:
            counts = self.counts[kind]
            order = [w for w in ORDER if w in counts] + [w for w in counts if w not in ORDER]
            parts = ", ".join(f"{counts[what]} {what}" for what in order if counts[what])
            if parts:
                lines.append(f"  {kind}: {parts}")
        if self.conflicts:
            lines.append(f"{len(self.conflicts)} conflicts (left as they are):")
            lines += [f"  {c}" for c in self.conflicts]
        if self.notes:
            lines.append("notes:")
            lines += [f"  {n}" for n in self.notes]
        if not dry_run:
            lines.append(
                f"written: {', '.join(self.written)}" if self.written else "nothing to write"
            )
        elif any(self.counts[k].get("new") or self.counts[k].get("updated") for k in KINDS):
            lines.append(f"(the counts say what {verb} written)")
        return "\n".join(lines)


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


def _toml_value(key: str, value: Any):
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


def _plain(table) -> dict[str, Any]:
    value = table.unwrap() if hasattr(table, "unwrap") else dict(table)
    return {k: value[k] for k in IMPORTED_KEYS if k in value}


def _read_document(path: Path) -> tomlkit.TOMLDocument:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise InputError(path, exc.line, f"TOML syntax error: {exc}") from None


def _array(document: tomlkit.TOMLDocument, key: str, path: Path) -> AoT:
    value = document.get(key)
    if value is None:
        document.add(tomlkit.nl())
        document.append(key, tomlkit.aot())
        return document[key]
    if not isinstance(value, AoT):
        raise InputError(path, None, f"{key}: must be an array of tables: [[{key}]]")
    return value


class _Appender:
    """Appends tables to an array of tables, one blank line between them.

    tomlkit separates the tables of an array it made itself; in an array read
    from the file the blank line is added (the file's end is read once).
    """

    def __init__(self, document: tomlkit.TOMLDocument, key: str, path: Path) -> None:
        self.document, self.key, self.path = document, key, path
        self.fresh = not isinstance(document.get(key), AoT)
        self.checked = False

    def append(self, table) -> None:
        array = _array(self.document, self.key, self.path)
        if len(array) and not self.fresh:
            if self.checked or not tomlkit.dumps(self.document).endswith("\n\n"):
                array[-1].add(tomlkit.nl())
            self.checked = True
        array.append(table)


def _set_keys(table, values: dict[str, Any], order: tuple[str, ...]) -> None:
    """Replace ``table``'s keys of ``order`` with ``values`` (others kept, positions kept)."""
    for key in order:
        if key in table and key not in values:
            del table[key]
    for key in order:
        if key in values:
            table[key] = _toml_value(key, values[key])


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
    document = _read_document(path)
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

    appender = _Appender(document, "source", path)
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
                    new.add(key, _toml_value(key, table[key]))
            appender.append(new)
            changed = True
            report.count("sources", "new")
            report.count("links", "imported", len(table.get("calibrators", [])))
            continue
        entry = existing.sources[match]
        if _plain(array[match]) == table:
            report.count("sources", "unchanged")
        elif update:
            if entry.name.casefold() != source.name.casefold():
                others = table.setdefault("other_names", [])
                if entry.name.casefold() not in {n.casefold() for n in others}:
                    others.append(entry.name)
            _set_keys(array[match], table, IMPORTED_KEYS)
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

    document = _read_document(path)
    array = document.get("flag")
    by_id = {str(t.get("id")): t for t in array} if isinstance(array, AoT) else {}
    appender = _Appender(document, "flag", path)
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


def result_row(result: Iop4Result) -> dict[str, Any]:
    """``ImportedResult`` columns of an IOP4 result (without its source)."""
    from iopreport.store.models import PhotoPolResult

    row = {
        "method": METHOD,
        "origin_id": result.id,
        "members_key": PhotoPolResult.make_members_key(result.files),
        "telescope": result.telescope,
        "night": result.night,
        "mode": result.mode,
        "reduction": result.reduction,
        "instrument": result.instrument,
        "band": result.band,
        "exptime": result.exptime,
        "juliandate": result.juliandate,
        "juliandate_min": result.juliandate_min,
        "juliandate_max": result.juliandate_max,
        "n_frames": len(result.files),
        "flags": result.flags,
    }
    for column, name in RESULT_VALUES.items():
        row[name] = result.values[column]
    return row


def _existing_results() -> dict[tuple[str, str, str], dict[str, Any]]:
    from iopreport.store.models import AstroSource, ImportedResult

    rows = (
        ImportedResult.select(ImportedResult, AstroSource.name.alias("source_name"))
        .join(AstroSource)
        .where(ImportedResult.method == METHOD)
        .dicts()
    )
    return {(r["source_name"].casefold(), r["members_key"], r["mode"]): r for r in rows}


def _same(row: dict[str, Any], current: dict[str, Any]) -> bool:
    for key, value in row.items():
        have = current.get(key)
        if isinstance(value, dt.date) and not isinstance(have, dt.date):
            have = dt.date.fromisoformat(str(have)[:10]) if have else None
        if have != value:
            return False
    return True


def plan_results(
    db: Iop4Database, names: dict[int, str], report: ImportReport, *, update: bool, store: bool
) -> list[tuple[str, dict[str, Any], int | None]]:
    """Rows to write: (source name, columns, id of the row to overwrite or None)."""
    current = _existing_results() if store else {}
    seen: dict[tuple[str, str, str], int] = {}
    todo = []
    for note in db.skipped_results:
        report.notes.append(note + "; not imported")
        report.count("results", "incomplete")
    for result in db.results:
        if result.source_id not in names:
            report.conflicts.append(f"IOP4 result {result.id}: its source was not imported")
            report.count("results", "conflicts")
            continue
        name = names[result.source_id]
        row = result_row(result)
        key = (name.casefold(), row["members_key"], row["mode"])
        if key in seen:
            report.conflicts.append(
                f"IOP4 result {result.id}: same source, files and mode as IOP4 result "
                f"{seen[key]}; not imported"
            )
            report.count("results", "conflicts")
            continue
        seen[key] = result.id
        have = current.get(key)
        if have is None:
            todo.append((name, row, None))
            report.count("results", "new")
        elif _same(row, have):
            report.count("results", "unchanged")
        elif update:
            todo.append((name, row, have["id"]))
            report.count("results", "updated")
        else:
            report.conflicts.append(
                f"IOP4 result {result.id} ({name}, {result.night}): imported before with other "
                "values; kept (--update overwrites it)"
            )
            report.count("results", "conflicts")
    return todo


def write_results(todo: list[tuple[str, dict[str, Any], int | None]]) -> None:
    """Insert or overwrite imported results, in one transaction."""
    from iopreport.store.models import AstroSource, ImportedResult, database_proxy, utcnow

    ids = {s.name.casefold(): s.id for s in AstroSource.select(AstroSource.id, AstroSource.name)}
    now = utcnow()
    new = []
    with database_proxy.atomic():
        for name, row, row_id in todo:
            values = {**row, "astrosource": ids[name.casefold()], "modified": now}
            if row_id is None:
                new.append(values)
            else:
                ImportedResult.update(values).where(ImportedResult.id == row_id).execute()
        for start in range(0, len(new), INSERT_BATCH):
            ImportedResult.insert_many(new[start : start + INSERT_BATCH]).execute()


def import_iop4(
    config,
    database: Path | str,
    *,
    results: bool = False,
    flags: bool = False,
    dry_run: bool = False,
    update: bool = False,
    pol_band: str = "R",
) -> ImportReport:
    """Import an IOP4 database into the project of ``config``.

    Nothing is written when ``dry_run``; otherwise catalog.toml and flags.toml
    are rewritten atomically only if something changes, and with ``results``
    the catalog is loaded into the store and the results written in one
    transaction.

    Raises
    ------
    InputError
        Not an IOP4 database, an unknown IOP4 schema, or a catalog.toml or
        flags.toml that does not load (before or after the merge).
    """
    from iopreport.catalog import sync_catalog

    if pol_band not in BANDS:
        raise InputError("--pol-band", None, f"unknown band {pol_band!r}; one of {BANDS}")
    db = read_iop4(database)
    report = ImportReport(database=Path(database), migrations=db.migrations)
    catalog_path = Path(config.paths.catalog)
    merged = merge_catalog(db, catalog_path, report, update=update, pol_band=pol_band)
    flags_text = None
    if flags:
        telescopes = sorted({i.telescope for i in config.instruments.values()})
        flags_text = merge_flags(
            db,
            Path(config.paths.flags),
            merged.names,
            merged.catalog,
            telescopes,
            report,
            update=update,
        )
    todo = []
    if results:
        store_path = Path(config.database_path)
        if store_path.exists():
            from iopreport.store import open_store

            open_store(store_path, create=False, upgrade=not dry_run)
        todo = plan_results(db, merged.names, report, update=update, store=store_path.exists())
    if dry_run:
        return report
    if merged.text is not None:
        write_text_atomic(catalog_path, merged.text)
        report.written.append(str(catalog_path))
    if flags_text is not None:
        write_text_atomic(Path(config.paths.flags), flags_text)
        report.written.append(str(config.paths.flags))
    if results and todo:
        from iopreport.store import open_store

        open_store(config.database_path)
        sync_catalog(merged.catalog)
        write_results(todo)
        report.written.append(f"{config.database_path} ({len(todo)} results)")
    return report
