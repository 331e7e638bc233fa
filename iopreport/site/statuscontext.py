"""What the status page shows, read from the store: the last runs, the recent
failed frames and the daemons' heartbeats.
"""

from __future__ import annotations

import datetime as dt

from iopreport import urls
from iopreport.site.storerows import sql_rows
from iopreport.store.models import Heartbeat, RunLog

#: Nights the status page looks through for failed frames (the most recent ones).
RECENT_NIGHTS = 60


def status_context(limit: int = 40) -> dict:
    """Last runs, recent failures and daemon heartbeats."""
    runs = list(
        RunLog.select().order_by(RunLog.started_at.desc(), RunLog.id.desc()).limit(limit).dicts()
    )
    failures = sql_rows(
        "SELECT e.night, e.telescope, r.filename, r.error FROM raw_fit r"
        " JOIN epoch e ON r.epoch_id = e.id WHERE r.error != '' AND e.id IN"
        " (SELECT id FROM epoch ORDER BY night DESC LIMIT ?)"
        " UNION ALL SELECT e.night, e.telescope, r.filename, f.error FROM reduced_fit f"
        " JOIN raw_fit r ON f.rawfit_id = r.id JOIN epoch e ON r.epoch_id = e.id"
        " WHERE f.error != '' AND e.id IN (SELECT id FROM epoch ORDER BY night DESC LIMIT ?)"
        " ORDER BY 1 DESC LIMIT ?",
        (RECENT_NIGHTS, RECENT_NIGHTS, limit),
    )
    heartbeats = list(Heartbeat.select().order_by(Heartbeat.name).dicts())
    return {
        "runs": runs,
        "failures": [
            {
                "night": str(night),
                "telescope": telescope,
                "filename": filename,
                "reason": error,
                "page": urls.night_page(dt.date.fromisoformat(str(night)), telescope),
            }
            for night, telescope, filename, error in failures
        ],
        "heartbeats": heartbeats,
    }
