"""SQL conditions that narrow the rows a flag set can touch (a speed-up, never a decision).

Each condition selects a *superset* of what the flags select: the exact test
stays :mod:`iopreport.flags.match`. Without a usable condition the answer is
None and every row is read. Results that carry a manual flag now are always
read, so that flags removed from the file are cleared.
"""

from __future__ import annotations

import functools
import operator

from iopreport.flags.model import Flag
from iopreport.store.models import AstroSource, Epoch, PhotoPolMember, PhotoPolResult, RawFit

#: Above this many flags (or excluded frames) the conditions get too big: read every row.
MAX_FLAGS = 200
MAX_IDS = 20_000


def _any(conditions):
    return functools.reduce(operator.or_, conditions)


def _all(conditions):
    return functools.reduce(operator.and_, conditions)


def _common(flag: Flag, *, instrument, band, mode) -> list:
    """Conditions every row a flag selects meets, on columns results and frames share."""
    parts = []
    if flag.telescope:
        parts.append(Epoch.telescope.in_(list(flag.telescope)))
    if flag.night:
        parts.append(Epoch.night.in_(list(flag.night)))
    if flag.instrument:
        parts.append(instrument.in_(list(flag.instrument)))
    if flag.band:
        parts.append(band.in_(list(flag.band)))
    if flag.mode:
        parts.append(mode.in_(list(flag.mode)))
    return parts


def _source(flag: Flag):
    """Source condition, or None when a name is not plain ASCII (SQLite folds ASCII only)."""
    if not flag.source or not all(name.isascii() for name in flag.source):
        return None
    from peewee import fn

    return fn.LOWER(AstroSource.name).in_([name.lower() for name in flag.source])


def results_where(flags, excluded_rawfit_ids):
    """Condition on PhotoPolResult (joined with AstroSource and Epoch), or None for all rows."""
    if len(flags) > MAX_FLAGS or len(excluded_rawfit_ids) > MAX_IDS:
        return None
    conditions = [
        PhotoPolResult.manual_flags != 0,
        PhotoPolResult.flag_reasons.contains("manual:"),
    ]
    for flag in flags:
        parts = _common(
            flag,
            instrument=PhotoPolResult.instrument,
            band=PhotoPolResult.band,
            mode=PhotoPolResult.mode,
        )
        if (source := _source(flag)) is not None:
            parts.append(source)
        if flag.jd_from is not None:
            parts.append(PhotoPolResult.juliandate_max >= flag.jd_from)
        if flag.jd_to is not None:
            parts.append(PhotoPolResult.juliandate_min <= flag.jd_to)
        if flag.file:
            names = {pattern.rsplit("/", 1)[-1] for pattern in flag.file}
            parts.append(_any([PhotoPolResult.members_key.contains(n) for n in names]))
        if not parts:
            return None  # this flag may select any result
        conditions.append(_all(parts))
    if excluded_rawfit_ids:
        members = PhotoPolMember.select(PhotoPolMember.result).where(
            PhotoPolMember.rawfit.in_(list(excluded_rawfit_ids))
        )
        conditions.append(PhotoPolResult.id.in_(members))
    return _any(conditions)


def frames_where(flags):
    """Condition on RawFit (joined with Epoch), or None for all frames."""
    if len(flags) > MAX_FLAGS:
        return None
    conditions = []
    for flag in flags:
        parts = _common(flag, instrument=RawFit.instrument, band=RawFit.band, mode=RawFit.obsmode)
        if flag.jd_from is not None:
            parts.append(RawFit.juliandate >= flag.jd_from)
        if flag.jd_to is not None:
            parts.append(RawFit.juliandate <= flag.jd_to)
        if flag.file:
            parts.append(RawFit.filename.in_(sorted({p.rsplit("/", 1)[-1] for p in flag.file})))
        if not parts:
            return None  # a source-only frame flag: the target is identified in Python
        conditions.append(_all(parts))
    return _any(conditions) if conditions else None
