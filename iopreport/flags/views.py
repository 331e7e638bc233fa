"""What flags match against: the store's raw frames and results as plain views.

:func:`frame_views` yields every classified LIGHT frame as a
:class:`~iopreport.flags.match.FrameView`, :func:`result_views` every result
as a :class:`~iopreport.flags.match.ResultView`; both read in one query each.
"""

from __future__ import annotations

import datetime as dt

import peewee as pw

from iopreport.flags.match import FrameView, ResultView
from iopreport.flags.rows import raw_rows, reason_list
from iopreport.store.models import AstroSource, Epoch, PhotoPolResult, RawFit


def _dates():
    """``'YYYY-MM-DD'`` (as SQLite keeps dates) -> date, cached."""
    cache: dict[str, dt.date] = {}

    def convert(value):
        if isinstance(value, dt.date):
            return value
        if value not in cache:
            cache[value] = dt.date.fromisoformat(value)
        return cache[value]

    return convert


def _identify(catalog, object_name: str | None, cache: dict) -> str | None:
    if catalog is None or not object_name:
        return None
    if object_name not in cache:
        from iopreport.identify import identify_target

        cache[object_name] = identify_target(object_name, catalog.sources)
    return cache[object_name]


def frame_views(catalog=None, *, need_target: bool = True, where=None):
    """``(rawfit id, flags, FrameView)`` of every classified LIGHT raw frame in the store.

    The frame's target is ``RawFit.target`` or, when unset, the catalog source
    its OBJECT keyword names (:func:`iopreport.identify.identify_target`).
    """
    query = (
        RawFit.select(
            RawFit.id,
            RawFit.filename,
            RawFit.flags,
            RawFit.instrument,
            RawFit.band,
            RawFit.obsmode,
            RawFit.juliandate,
            RawFit.object_name,
            Epoch.telescope,
            Epoch.night,
            AstroSource.name,
        )
        .join(Epoch)
        .switch(RawFit)
        .join(AstroSource, pw.JOIN.LEFT_OUTER, on=(RawFit.target == AstroSource.id))
        .where(RawFit.imgtype == "light")
    )
    if where is not None:
        query = query.where(where)
    cache: dict[str, str | None] = {}
    date = _dates()
    for rid, filename, flags, inst, band, mode, jd, obj, tel, night, target in raw_rows(query):
        night = date(night)
        if target is None and need_target:
            target = _identify(catalog, obj, cache)
        view = FrameView(
            fileloc=f"{tel}/{night.isoformat()}/{filename}",
            telescope=tel,
            night=night,
            instrument=inst,
            band=band,
            mode=mode,
            jd=jd,
            target=target,
        )
        yield rid, flags, view


def result_views(where=None):
    """``(id, manual_flags, flags, flag_reasons, ResultView, members_key)`` of every result."""
    query = (
        PhotoPolResult.select(
            PhotoPolResult.id,
            PhotoPolResult.mode,
            PhotoPolResult.instrument,
            PhotoPolResult.band,
            PhotoPolResult.juliandate_min,
            PhotoPolResult.juliandate_max,
            PhotoPolResult.members_key,
            PhotoPolResult.manual_flags,
            PhotoPolResult.flags,
            PhotoPolResult.flag_reasons,
            AstroSource.name,
            Epoch.telescope,
            Epoch.night,
        )
        .join(AstroSource)
        .switch(PhotoPolResult)
        .join(Epoch)
    )
    if where is not None:
        query = query.where(where)
    date = _dates()
    for row in raw_rows(query):
        rid, mode, inst, band, jmin, jmax, key, manual, auto, reasons, src, tel, night = row
        view = ResultView(
            source=src,
            mode=mode,
            instrument=inst,
            band=band,
            telescope=tel,
            night=date(night),
            jd_min=jmin,
            jd_max=jmax,
            members=ResultView.members_of(key),
        )
        yield rid, manual, auto, reason_list(reasons), view, key
