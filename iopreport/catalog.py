"""catalog.toml: the sources iopreport knows, read on every run.

The file is a list of ``[[source]]`` tables (format in docs/catalog.md). It is
checked as a whole before anything is written: unknown keys, duplicate names
(across ``name`` and ``other_names``), calibrators that are not in the file,
bad coordinates and out-of-range values raise
:class:`~iopreport.errors.InputError` naming the key and its line.
:func:`sync_catalog` then writes it into the ``AstroSource`` table in one
transaction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iopreport.telescopes import BANDS
from iopreport.tomlsource import KeyPath, TomlSource

SOURCE_TYPES = ("blazar", "star", "calibrator", "polarization_standard")

_SOURCE_KEYS = (
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
_POL_KEYS = ("p_percent", "p_err_percent", "chi_deg", "chi_err_deg")
_MAG_RANGE = (-2.0, 30.0)


@dataclass(frozen=True)
class Magnitude:
    """A literature magnitude; ``err`` is None when the source gives none."""

    value: float
    err: float | None = None


@dataclass(frozen=True)
class Polarization:
    """Literature polarization in one band: p as a fraction, chi in degrees."""

    p: float
    p_err: float | None = None
    chi: float | None = None
    chi_err: float | None = None


@dataclass(frozen=True)
class CatalogSource:
    """One ``[[source]]`` entry, checked."""

    name: str
    srctype: str
    ra_deg: float
    dec_deg: float
    other_names: tuple[str, ...] = ()
    redshift: float | None = None
    calibrators: tuple[str, ...] = ()
    mags: Mapping[str, Magnitude] = field(default_factory=dict)
    pol: Mapping[str, Polarization] = field(default_factory=dict)
    comment: str = ""
    references: tuple[str, ...] = ()
    line: int | None = None

    @property
    def all_names(self) -> tuple[str, ...]:
        return (self.name, *self.other_names)


@dataclass(frozen=True)
class Catalog:
    """All sources of a catalog file, in file order."""

    path: Path
    sources: tuple[CatalogSource, ...]

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, name: str) -> CatalogSource | None:
        """The source with this name or other name (case-insensitive), or None."""
        wanted = name.casefold()
        for source in self.sources:
            if any(n.casefold() == wanted for n in source.all_names):
                return source
        return None

    def targets(self) -> list[CatalogSource]:
        """Sources that have calibrators (what the pipeline measures)."""
        return [s for s in self.sources if s.calibrators]


def load_catalog(path: Path | str) -> Catalog:
    """Read and check a catalog file.

    Raises
    ------
    InputError
        For the first problem found, naming its key and line.
    """
    return catalog_from_source(TomlSource.read(path))


def catalog_from_source(source: TomlSource) -> Catalog:
    """Check already-parsed catalog TOML and build the :class:`Catalog`."""
    for key in source.data:
        if key != "source":
            raise source.error((key,), "unknown key; a catalog holds only [[source]] tables")
    entries = source.data.get("source", [])
    if not isinstance(entries, list):
        raise source.error(("source",), "must be an array of tables: write each as [[source]]")
    sources = [_parse_source(source, index, entry) for index, entry in enumerate(entries)]
    _check_unique_names(source, sources)
    _check_calibrators(source, sources)
    return Catalog(path=source.path, sources=tuple(sources))


def _parse_source(source: TomlSource, index: int, entry: Any) -> CatalogSource:
    key: KeyPath = ("source", index)
    if not isinstance(entry, dict):
        raise source.error(key, "must be a table")
    for name in entry:
        if name not in _SOURCE_KEYS:
            raise source.error((*key, name), f"unknown key; allowed: {', '.join(_SOURCE_KEYS)}")
    for required in ("name", "type", "ra", "dec"):
        if required not in entry:
            raise source.error(key, f"[[source]] entry is missing required key {required!r}")
    name = _string(source, (*key, "name"), entry["name"])
    srctype = _string(source, (*key, "type"), entry["type"])
    if srctype not in SOURCE_TYPES:
        raise source.error(
            (*key, "type"), f"unknown type {srctype!r}; one of {', '.join(SOURCE_TYPES)}"
        )
    ra_deg, dec_deg = _coordinates(source, key, entry["ra"], entry["dec"])
    redshift = None
    if "redshift" in entry:
        redshift = _number(source, (*key, "redshift"), entry["redshift"])
        if redshift < 0:
            raise source.error((*key, "redshift"), "must not be negative")
    return CatalogSource(
        name=name,
        srctype=srctype,
        ra_deg=ra_deg,
        dec_deg=dec_deg,
        other_names=_strings(source, (*key, "other_names"), entry.get("other_names", [])),
        redshift=redshift,
        calibrators=_strings(source, (*key, "calibrators"), entry.get("calibrators", [])),
        mags=_magnitudes(source, (*key, "mag"), entry.get("mag", {})),
        pol=_polarizations(source, (*key, "pol"), entry.get("pol", {})),
        comment=_string(source, (*key, "comment"), entry.get("comment", ""), allow_empty=True),
        references=_strings(source, (*key, "references"), entry.get("references", [])),
        line=source.line_of(key),
    )


def _string(source: TomlSource, key: KeyPath, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise source.error(key, f"must be a string, got {value!r}")
    if not allow_empty and not value.strip():
        raise source.error(key, "must not be empty")
    return value.strip()


def _strings(source: TomlSource, key: KeyPath, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise source.error(key, f"must be an array of strings, got {value!r}")
    return tuple(_string(source, key, item) for item in value)


def _number(source: TomlSource, key: KeyPath, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise source.error(key, f"must be a number, got {value!r}")
    return float(value)


def _coordinates(source: TomlSource, key: KeyPath, ra: Any, dec: Any) -> tuple[float, float]:
    """ICRS RA (sexagesimal hours or decimal degrees) and Dec (sexagesimal or decimal degrees)."""
    import astropy.units as u
    from astropy.coordinates import Angle

    def parse(name: str, value: Any, unit) -> float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise source.error((*key, name), f"must be a string or a number, got {value!r}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                if isinstance(value, str):
                    angle = Angle(value.strip(), unit=unit)
                else:
                    angle = Angle(float(value), unit=u.deg)
        except Exception as exc:
            raise source.error(
                (*key, name), f"cannot read {value!r} as a coordinate: {exc}"
            ) from None
        return float(angle.to_value(u.deg))

    ra_deg = parse("ra", ra, u.hourangle)
    dec_deg = parse("dec", dec, u.deg)
    if not 0.0 <= ra_deg < 360.0:
        raise source.error((*key, "ra"), f"{ra!r} is outside 0h..24h")
    if not -90.0 <= dec_deg <= 90.0:
        raise source.error((*key, "dec"), f"{dec!r} is outside -90..+90 degrees")
    return ra_deg, dec_deg


def _magnitudes(source: TomlSource, key: KeyPath, table: Any) -> dict[str, Magnitude]:
    if not isinstance(table, dict):
        raise source.error(key, "must be a table of bands, e.g. mag.R = [13.79, 0.05]")
    mags = {}
    for band, value in table.items():
        band_key = (*key, band)
        if band not in BANDS:
            raise source.error(band_key, f"unknown band; one of {', '.join(BANDS)}")
        if isinstance(value, list):
            if len(value) != 2:
                raise source.error(band_key, "must be [value, error] or a single value")
            mag = Magnitude(
                _number(source, band_key, value[0]), _number(source, band_key, value[1])
            )
        else:
            mag = Magnitude(_number(source, band_key, value))
        if not _MAG_RANGE[0] <= mag.value <= _MAG_RANGE[1]:
            raise source.error(band_key, f"magnitude {mag.value} is outside {_MAG_RANGE}")
        if mag.err is not None and not 0 < mag.err < 5:
            raise source.error(band_key, f"error {mag.err} must be positive and below 5 mag")
        mags[band] = mag
    return mags


def _polarizations(source: TomlSource, key: KeyPath, table: Any) -> dict[str, Polarization]:
    if not isinstance(table, dict):
        raise source.error(key, "must be a table of bands, e.g. pol.R = { p_percent = 5.2, ... }")
    pols = {}
    for band, value in table.items():
        band_key = (*key, band)
        if band not in BANDS:
            raise source.error(band_key, f"unknown band; one of {', '.join(BANDS)}")
        if not isinstance(value, dict):
            raise source.error(
                band_key, "must be an inline table { p_percent = ..., chi_deg = ... }"
            )
        for name in value:
            if name not in _POL_KEYS:
                raise source.error(
                    (*band_key, name), f"unknown key; allowed: {', '.join(_POL_KEYS)}"
                )
        if "p_percent" not in value:
            raise source.error(band_key, "p_percent is required")
        numbers = {name: _number(source, (*band_key, name), value[name]) for name in value}
        if not 0 <= numbers["p_percent"] <= 100:
            raise source.error((*band_key, "p_percent"), "must be between 0 and 100 (percent)")
        if "chi_deg" in numbers and not 0 <= numbers["chi_deg"] <= 180:
            raise source.error((*band_key, "chi_deg"), "must be between 0 and 180 degrees")
        for name in ("p_err_percent", "chi_err_deg"):
            if name in numbers and numbers[name] < 0:
                raise source.error((*band_key, name), "must not be negative")
        pols[band] = Polarization(
            p=numbers["p_percent"] / 100.0,
            p_err=numbers["p_err_percent"] / 100.0 if "p_err_percent" in numbers else None,
            chi=numbers.get("chi_deg"),
            chi_err=numbers.get("chi_err_deg"),
        )
    return pols


def _check_unique_names(source: TomlSource, sources: list[CatalogSource]) -> None:
    seen: dict[str, int] = {}
    for index, entry in enumerate(sources):
        folded_names = [n.casefold() for n in entry.all_names]
        repeated = next(
            (n for i, n in enumerate(entry.all_names) if n.casefold() in folded_names[:i]), None
        )
        if repeated:
            raise source.error(("source", index, "other_names"), f"repeats the name {repeated!r}")
        for position, name in enumerate(entry.all_names):
            folded = name.casefold()
            if folded in seen:
                first = sources[seen[folded]]
                key = ("source", index, "name" if position == 0 else "other_names")
                where = f"line {first.line}" if first.line else "an earlier entry"
                raise source.error(
                    key, f"name {name!r} is already used by {first.name!r} ({where})"
                )
            seen[folded] = index


def _check_calibrators(source: TomlSource, sources: list[CatalogSource]) -> None:
    by_name = {name.casefold(): entry for entry in sources for name in entry.all_names}
    for index, entry in enumerate(sources):
        for calibrator in entry.calibrators:
            other = by_name.get(calibrator.casefold())
            key = ("source", index, "calibrators")
            if other is None:
                raise source.error(
                    key, f"calibrator {calibrator!r} is not a source in this catalog"
                )
            if other is entry:
                raise source.error(key, "a source cannot calibrate itself")
            if other.srctype == "blazar":
                raise source.error(key, f"calibrator {calibrator!r} is a blazar, not a star")
            if not other.mags:
                raise source.error(key, f"calibrator {calibrator!r} has no literature magnitude")


def sync_catalog(catalog: Catalog) -> dict[str, int]:
    """Write ``catalog`` into the store (``AstroSource`` and its link tables).

    Sources are matched by name, ignoring case. A source renamed in the file
    keeps its row (and so its results) when its old name is listed in
    ``other_names``. A source missing from the file keeps its row with
    ``in_catalog = False`` (results pointing at it stay readable) and loses its
    calibrator and polarization links.

    Returns
    -------
    dict
        Counts: ``added``, ``updated``, ``retired``.
    """
    from iopreport.store.models import (
        AstroSource,
        Calibrator,
        StandardPolarization,
        database_proxy,
        utcnow,
    )

    counts = {"added": 0, "updated": 0, "retired": 0}
    with database_proxy.atomic():
        existing = {s.name.casefold(): s for s in AstroSource.select()}
        rows: dict[str, AstroSource] = {}
        for entry in catalog.sources:
            row = existing.pop(entry.name.casefold(), None)
            for old_name in entry.other_names:
                if row is None:
                    row = existing.pop(old_name.casefold(), None)
            values = {
                "other_names": list(entry.other_names),
                "srctype": entry.srctype,
                "ra_deg": entry.ra_deg,
                "dec_deg": entry.dec_deg,
                "redshift": entry.redshift,
                "comment": entry.comment,
                "references": list(entry.references),
                "in_catalog": True,
                "catalog_line": entry.line,
                "modified": utcnow(),
            }
            for band in BANDS:
                mag = entry.mags.get(band)
                values[f"mag_{band}"] = mag.value if mag else None
                values[f"mag_{band}_err"] = mag.err if mag else None
            if row is None:
                row = AstroSource.create(name=entry.name, **values)
                counts["added"] += 1
            else:
                AstroSource.update(name=entry.name, **values).where(
                    AstroSource.id == row.id
                ).execute()
                counts["updated"] += 1
            rows[entry.name] = row
        retired_ids = [row.id for row in existing.values() if row.in_catalog]
        if retired_ids:
            AstroSource.update(in_catalog=False).where(AstroSource.id.in_(retired_ids)).execute()
        counts["retired"] = len(retired_ids)

        Calibrator.delete().execute()
        StandardPolarization.delete().execute()
        links = []
        pols = []
        for entry in catalog.sources:
            for calibrator in entry.calibrators:
                other = catalog.get(calibrator)
                links.append({"target": rows[entry.name].id, "calibrator": rows[other.name].id})
            for band, pol in entry.pol.items():
                pols.append(
                    {
                        "source": rows[entry.name].id,
                        "band": band,
                        "p": pol.p,
                        "p_err": pol.p_err,
                        "chi": pol.chi,
                        "chi_err": pol.chi_err,
                    }
                )
        if links:
            Calibrator.insert_many(links).execute()
        if pols:
            StandardPolarization.insert_many(pols).execute()
    return counts
