"""Store rows for the night-summary tests: result histories as benchmarks/bench_store.py makes them.

Polarimetric results are not produced by the reduction yet, and a history of
earlier nights needs many nights: both are inserted here as rows with
realistic values (p as a fraction, chi in degrees, errors of a few per cent).
"""

from __future__ import annotations

import datetime as dt

import tomlkit

from iopreport.store import AstroSource, Epoch, PhotoPolResult, RawFit

NIGHT = dt.date(2024, 10, 8)


def jd_of(night: dt.date, hour: float = 22.0) -> float:
    """UTC Julian date of ``hour`` (may exceed 24) on the evening ``night``."""
    return 2440587.5 + (night - dt.date(1970, 1, 1)).days + hour / 24


def add_result(source: str, telescope: str, night: dt.date, *, mode: str, hour=22.0, **values):
    """Insert one PhotoPolResult of ``source`` (catalog name) with ``values``."""
    epoch, _ = Epoch.get_or_create(telescope=telescope, night=night)
    astrosource = AstroSource.get(AstroSource.name == source)
    count = PhotoPolResult.select().where(PhotoPolResult.epoch == epoch).count()
    jd = jd_of(night, hour)
    instrument = {"OSN-T090": "AndorT90", "OSN-T150": "AndorT150", "CAHA-T220": "CAFOS"}
    return PhotoPolResult.create(
        astrosource=astrosource,
        epoch=epoch,
        members_key=f"{epoch.epochname}/inserted-{count:04d}.fits",
        mode=mode,
        method="relphot" if mode == "photometry" else "osn-wheel",
        instrument=instrument.get(telescope, "AndorT90"),
        band=values.pop("band", "R"),
        juliandate=jd,
        juliandate_min=jd,
        juliandate_max=jd,
        **values,
    )


def add_frame(telescope: str, night: dt.date, filename: str, **values) -> RawFit:
    """Insert one raw frame row (light, photometry, R unless told)."""
    epoch, _ = Epoch.get_or_create(telescope=telescope, night=night)
    defaults = {"imgtype": "light", "obsmode": "photometry", "band": "R", "flags": 3}
    return RawFit.create(epoch=epoch, filename=filename, **{**defaults, **values})


def configure(config_path, *, smtp=None, subscribers=(), alerts=None) -> None:
    """Edit a project's config.toml: [smtp] keys, [[subscribers]], [alerts] keys."""
    document = tomlkit.parse(config_path.read_text(encoding="utf-8"))
    for key, value in (smtp or {}).items():
        document["smtp"][key] = value
    for key, value in (alerts or {}).items():
        document["alerts"][key] = value
    if subscribers:
        array = tomlkit.aot()
        for subscriber in subscribers:
            table = tomlkit.table()
            table.update(subscriber)
            array.append(table)
        document["subscribers"] = array
    config_path.write_text(tomlkit.dumps(document), encoding="utf-8")
