"""Delivery log of the night summaries: the ``SentSummary`` state machine and its backoff.

One row per (night, subscriber)::

    pending --claim--> sending --accepted--> sent
                          |   \\--alerts_only, no alert / subscriber gone--> skipped
                          '--SMTP failed--> failed --claim when next_attempt_at comes--> sending

* :func:`claim` moves a row to ``sending`` in one conditional UPDATE, committed
  *before* the SMTP conversation, so two processes (the daemon and a manual
  ``iopreport summary --send``) never send the same row at once.
* A row still ``sending`` after :data:`SENDING_LEASE` means its process died
  between claiming and recording the outcome - possibly after the server
  accepted the message. It is claimed again and sent again with the same
  Message-ID: delivery is **at least once** (never lost), and a duplicate,
  possible only in that crash window, carries the same Message-ID so mail
  systems and clients can drop it.
* Failures are retried forever, ``retry_interval_minutes`` after the first
  failure and twice as long after each further one, at most :data:`MAX_BACKOFF`.
"""

from __future__ import annotations

import datetime as dt

from iopreport.store import SentSummary
from iopreport.store.models import database_proxy

PENDING, SENDING, SENT, FAILED, SKIPPED = "pending", "sending", "sent", "failed", "skipped"
#: A claim older than this is taken as the mark of a crashed sender (SMTP timeouts are 30 s).
SENDING_LEASE = dt.timedelta(minutes=15)
#: Longest wait between two attempts.
MAX_BACKOFF = dt.timedelta(hours=12)


def backoff(attempts: int, base_minutes: float) -> dt.timedelta:
    """Wait after the ``attempts``-th failed attempt: base, 2 base, 4 base, ... capped."""
    factor = 2 ** max(0, min(attempts - 1, 20))
    return min(dt.timedelta(minutes=base_minutes * factor), MAX_BACKOFF)


def queue(night: dt.date, subscribers: list[str], now: dt.datetime) -> list[SentSummary]:
    """Make a ``pending`` row, due now, for each subscriber that has none for ``night``."""
    with database_proxy.atomic():
        for name in subscribers:
            SentSummary.insert(
                night=night, subscriber=name, status=PENDING, next_attempt_at=now
            ).on_conflict_ignore().execute()
    return list(
        SentSummary.select()
        .where((SentSummary.night == night) & SentSummary.subscriber.in_(subscribers))
        .order_by(SentSummary.subscriber)
    )


def missing(night: dt.date, subscribers: list[str]) -> list[str]:
    """The subscribers that have no row for ``night`` yet."""
    present = {
        row.subscriber
        for row in SentSummary.select(SentSummary.subscriber).where(SentSummary.night == night)
    }
    return [name for name in subscribers if name not in present]


def due(now: dt.datetime) -> list[SentSummary]:
    """Rows due: pending/failed with ``next_attempt_at <= now``, or stale ``sending``."""
    return list(
        SentSummary.select()
        .where(_due_condition(now, ignore_schedule=False))
        .order_by(SentSummary.night, SentSummary.subscriber)
    )


def _due_condition(now: dt.datetime, *, ignore_schedule: bool):
    waiting = SentSummary.status.in_([PENDING, FAILED])
    if not ignore_schedule:
        waiting &= SentSummary.next_attempt_at.is_null() | (SentSummary.next_attempt_at <= now)
    stale = (SentSummary.status == SENDING) & (
        SentSummary.last_attempt_at.is_null() | (SentSummary.last_attempt_at <= now - SENDING_LEASE)
    )
    return waiting | stale


def claim(
    row: SentSummary, now: dt.datetime, message_id: str, *, ignore_schedule: bool = False
) -> bool:
    """Atomically mark ``row`` as being sent by this process; False if it is not ours to send.

    With ``ignore_schedule`` a failed row is claimed before its ``next_attempt_at``
    (a person asked for ``--send``); sent rows and fresh claims are never taken.
    """
    updated = (
        SentSummary.update(
            status=SENDING,
            attempts=SentSummary.attempts + 1,
            last_attempt_at=now,
            message_id=message_id,
        )
        .where((SentSummary.id == row.id) & _due_condition(now, ignore_schedule=ignore_schedule))
        .execute()
    )
    if updated:
        SentSummary.update(first_attempt_at=now).where(
            (SentSummary.id == row.id) & SentSummary.first_attempt_at.is_null()
        ).execute()
        fresh = SentSummary.get_by_id(row.id)
        row.__data__.update(fresh.__data__)
    return bool(updated)


def mark_sent(row: SentSummary, now: dt.datetime, note: str = "") -> None:
    """The server accepted the message."""
    _set(row, status=SENT, sent_at=now, next_attempt_at=None, last_error=note)


def mark_failed(row: SentSummary, now: dt.datetime, error: str, base_minutes: float) -> None:
    """The attempt failed: keep the reason and schedule the next attempt."""
    _set(
        row,
        status=FAILED,
        last_error=error,
        next_attempt_at=now + backoff(row.attempts, base_minutes),
    )


def mark_skipped(row: SentSummary, reason: str) -> None:
    """Nothing to send to this subscriber (the reason says why); never retried."""
    _set(row, status=SKIPPED, last_error=reason, next_attempt_at=None)


def _set(row: SentSummary, **values) -> None:
    with database_proxy.atomic():
        SentSummary.update(**values).where(SentSummary.id == row.id).execute()
    for key, value in values.items():
        setattr(row, key, value)
