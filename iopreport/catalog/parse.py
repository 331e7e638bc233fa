"""catalog.toml -> :class:`~iopreport.catalog.model.Catalog`, checked as a whole.

Unknown keys, duplicate names (across ``name`` and ``other_names``),
calibrators that are not in the file, bad coordinates, out-of-range values and
malformed host-galaxy tables raise :class:`~iopreport.errors.InputError`
naming the key and its line. Johnson-Cousins magnitudes missing from ``mag``
are derived here from ``sdss``/``ps1`` magnitudes (:mod:`iopreport.photsystems`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iopreport.catalog.model import Catalog, CatalogSource, HostTable, Magnitude, Polarization
from iopreport.photsystems import INPUT_BANDS, OUTPUT_BANDS, SYSTEMS, to_johnson
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
    "sdss",
    "ps1",
    "pol",
    "host",
    "comment",
    "references",
)
_POL_KEYS = ("p_percent", "p_err_percent", "chi_deg", "chi_err_deg")
_MAG_RANGE = (-2.0, 30.0)
_HOST_KEYS = (
    "reference",
    "band",
    "aperture_arcsec",
    "seeing_arcsec",
    "flux_mjy",
    "flux_err_mjy",
)


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
    mags = _magnitudes(source, (*key, "mag"), entry.get("mag", {}))
    other_systems = {
        system: _magnitudes(source, (*key, system), entry.get(system, {}), bands=INPUT_BANDS)
        for system in SYSTEMS
    }
    mags.update(_derived_magnitudes(mags, other_systems))
    host = None
    if "host" in entry:
        if srctype != "blazar":
            raise source.error(
                (*key, "host"),
                f"a host-galaxy table belongs to a blazar, not a {srctype} "
                "(a [source.host] header attaches to the [[source]] written above it)",
            )
        host = _host_table(source, (*key, "host"), entry["host"])
    return CatalogSource(
        name=name,
        srctype=srctype,
        ra_deg=ra_deg,
        dec_deg=dec_deg,
        other_names=_strings(source, (*key, "other_names"), entry.get("other_names", [])),
        redshift=redshift,
        calibrators=_strings(source, (*key, "calibrators"), entry.get("calibrators", [])),
        mags=mags,
        pol=_polarizations(source, (*key, "pol"), entry.get("pol", {})),
        comment=_string(source, (*key, "comment"), entry.get("comment", ""), allow_empty=True),
        references=_strings(source, (*key, "references"), entry.get("references", [])),
        line=source.line_of(key),
        host=host,
        sdss=other_systems["sdss"],
        ps1=other_systems["ps1"],
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


def _magnitudes(
    source: TomlSource, key: KeyPath, table: Any, bands: tuple[str, ...] = BANDS
) -> dict[str, Magnitude]:
    if not isinstance(table, dict):
        example = f"{key[-1]}.{bands[-2]} = [13.79, 0.05]"
        raise source.error(key, f"must be a table of bands, e.g. {example}")
    mags = {}
    for band, value in table.items():
        band_key = (*key, band)
        if band not in bands:
            raise source.error(band_key, f"unknown band; one of {', '.join(bands)}")
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


def _derived_magnitudes(
    mags: Mapping[str, Magnitude], other_systems: Mapping[str, Mapping[str, Magnitude]]
) -> dict[str, Magnitude]:
    """B, V, R, I missing from ``mags``, from SDSS (preferred) or PS1 magnitudes."""
    derived: dict[str, Magnitude] = {}
    for system in SYSTEMS:
        wanted = [b for b in OUTPUT_BANDS if b not in mags and b not in derived]
        inputs = {band: (mag.value, mag.err) for band, mag in other_systems[system].items()}
        for band, result in to_johnson(system, inputs, wanted).items():
            why = f"no literature {band} in mag.{band}; {result.note}"
            derived[band] = Magnitude(result.value, result.err, derived=why)
    return derived


def _host_table(source: TomlSource, key: KeyPath, table: Any) -> HostTable:
    """Check a ``[source.host]`` table: keys, axes, shapes, values."""
    if not isinstance(table, dict):
        raise source.error(key, "must be a table: write it as [source.host] after the entry")
    for name in table:
        if name not in _HOST_KEYS:
            raise source.error((*key, name), f"unknown key; allowed: {', '.join(_HOST_KEYS)}")
    for required in ("reference", "band", "aperture_arcsec", "flux_mjy"):
        if required not in table:
            raise source.error(key, f"host table is missing required key {required!r}")
    reference = _string(source, (*key, "reference"), table["reference"])
    band = _string(source, (*key, "band"), table["band"])
    if band not in BANDS:
        raise source.error((*key, "band"), f"unknown band; one of {', '.join(BANDS)}")
    apertures = _axis(source, (*key, "aperture_arcsec"), table["aperture_arcsec"])
    seeing = None
    if "seeing_arcsec" in table:
        seeing = _axis(source, (*key, "seeing_arcsec"), table["seeing_arcsec"])
    shape = (len(apertures), len(seeing)) if seeing else (len(apertures),)
    flux = _grid(source, (*key, "flux_mjy"), table["flux_mjy"], shape, apertures, seeing)
    flux_err = None
    if "flux_err_mjy" in table:
        flux_err = _grid(
            source, (*key, "flux_err_mjy"), table["flux_err_mjy"], shape, apertures, seeing
        )
    return HostTable(
        reference=reference,
        band=band,
        aperture_arcsec=apertures,
        seeing_arcsec=seeing,
        flux_mjy=flux,
        flux_err_mjy=flux_err,
        line=source.line_of(key),
    )


def _axis(source: TomlSource, key: KeyPath, value: Any) -> tuple[float, ...]:
    """A grid axis: at least two positive numbers, strictly increasing."""
    if not isinstance(value, list) or len(value) < 2:
        raise source.error(key, f"must be an array of at least two numbers, got {value!r}")
    numbers = tuple(_number(source, key, item) for item in value)
    if numbers[0] <= 0:
        raise source.error(key, f"values must be positive (arcsec), got {numbers[0]:g}")
    for position in range(1, len(numbers)):
        if numbers[position] <= numbers[position - 1]:
            raise source.error(
                key,
                f"must be strictly increasing: element {position + 1} ({numbers[position]:g}) "
                f"follows {numbers[position - 1]:g}",
            )
    return numbers


def _grid(
    source: TomlSource,
    key: KeyPath,
    value: Any,
    shape: tuple[int, ...],
    apertures: tuple[float, ...],
    seeing: tuple[float, ...] | None,
) -> tuple:
    """Fluxes (or errors) in mJy: one row per aperture, one column per seeing value."""
    if seeing is None:
        if not isinstance(value, list) or len(value) != shape[0]:
            count = len(value) if isinstance(value, list) else "not an array"
            raise source.error(
                key,
                f"must be an array of {shape[0]} numbers, one per aperture_arcsec value "
                f"(got {count})",
            )
        return tuple(
            _flux(source, key, item, f"element {i + 1} (aperture {apertures[i]:g} arcsec)")
            for i, item in enumerate(value)
        )
    if not isinstance(value, list) or len(value) != shape[0]:
        count = f"{len(value)} rows" if isinstance(value, list) else "not an array"
        raise source.error(
            key,
            f"must have {shape[0]} rows, one per aperture_arcsec value, each of {shape[1]} "
            f"numbers, one per seeing_arcsec value (got {count})",
        )
    rows = []
    for i, row in enumerate(value):
        where = f"row {i + 1} (aperture {apertures[i]:g} arcsec)"
        if not isinstance(row, list) or len(row) != shape[1]:
            count = f"{len(row)} numbers" if isinstance(row, list) else repr(row)
            raise source.error(
                key,
                f"{where} must have {shape[1]} numbers, one per seeing_arcsec value (got {count})",
            )
        rows.append(
            tuple(
                _flux(source, key, item, f"{where}, column {j + 1} (seeing {seeing[j]:g} arcsec)")
                for j, item in enumerate(row)
            )
        )
    return tuple(rows)


def _flux(source: TomlSource, key: KeyPath, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise source.error(key, f"{where} must be a number, got {value!r}")
    if value < 0:
        raise source.error(key, f"{where} is negative ({value:g} mJy)")
    return float(value)


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
