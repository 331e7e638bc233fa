"""Which nights of an archive are polled, and when a night is closed.

The daemon lists new nights and those not closed yet; a night closes
``close_night_after_hours`` after its evening's local noon.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

import peewee as pw

from iopreport.config import Config


def close_time(night: dt.date, config: Config) -> dt.datetime:
    """When a night stops being polled: ``close_night_after_hours`` after its evening's noon.

    Noon is local time in ``schedule.timezone``; the result is naive UTC like the store.
    """
    zone = zoneinfo.ZoneInfo(config.schedule.timezone)
    noon = dt.datetime.combine(night, dt.time(12), tzinfo=zone)
    closing = noon + dt.timedelta(hours=config.schedule.close_night_after_hours)
    return closing.astimezone(dt.UTC).replace(tzinfo=None)


def nights_to_poll(telescope: str, remote_nights: Sequence[dt.date]) -> list[dt.date]:
    """Nights the daemon lists: new ones and those not closed yet, newest first.

    Nights older than the oldest night already in the store for this telescope
    are left alone, so ``iopreport fetch --since D`` sets where the daemon
    starts; with no night in the store yet, every night of the archive is new.
    """
    from iopreport.store import Epoch, EpochFlags

    mine = Epoch.telescope == telescope
    oldest = Epoch.select(pw.fn.MIN(Epoch.night)).where(mine).scalar()
    closed = {
        epoch.night
        for epoch in Epoch.select(Epoch.night).where(
            mine & (Epoch.flags.bin_and(int(EpochFlags.CLOSED)) != 0)
        )
    }
    return sorted(
        (n for n in remote_nights if n not in closed and (oldest is None or n >= oldest)),
        reverse=True,
    )
