"""The daemon's heartbeat: the ``Heartbeat`` row named ``daemon``.

It tells ``iopreport status`` that the daemon is alive (pid, host, start and
last beat) and what it is doing; a busy store never stops the work.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

log = logging.getLogger(__name__)

#: ``Heartbeat.name`` of the daemon's row (iopreport.status reads it).
HEARTBEAT_NAME = "daemon"
#: Seconds between heartbeats while idle or busy (status calls it stale after 5 minutes).
HEARTBEAT_INTERVAL_S = 60


_started_at: dt.datetime | None = None


def beat(state: str) -> None:
    """Write the daemon's heartbeat row (pid, host, time, what it is doing)."""
    from iopreport.store import Heartbeat
    from iopreport.store.models import utcnow

    global _started_at
    now = utcnow()
    _started_at = _started_at or now
    fields = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started_at": _started_at,
        "beat_at": now,
        "state": state[:250],
    }
    try:
        updated = Heartbeat.update(**fields).where(Heartbeat.name == HEARTBEAT_NAME).execute()
        if not updated:
            Heartbeat.create(name=HEARTBEAT_NAME, **fields)
    except Exception as exc:  # a busy store must not stop the work
        log.warning("heartbeat not written: %s", exc)
