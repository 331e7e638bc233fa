"""Queue, send and retry the night summaries; the dry run.

The daemon calls :func:`send_due` on every tick: once ``schedule.summary_time``
has passed (local time in ``schedule.timezone``) it queues last night's
summary for every subscriber, then sends every pending summary and every
failed one whose ``next_attempt_at`` has come (see :mod:`iopreport.mail.log`
for the states and the at-least-once rule). :func:`queue_night` queues any
other night.
``iopreport summary --send`` calls :func:`send_night`, ``--dry-run``
:func:`dry_run`.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iopreport.config import Config, SubscriberConfig
from iopreport.errors import UsageError
from iopreport.mail import log as sendlog
from iopreport.mail.content import build_night_summary
from iopreport.mail.message import build_message, message_id
from iopreport.mail.outbox import write_outbox, write_site_copy
from iopreport.mail.send import SendError, send_message
from iopreport.mail.summary import NightSummary
from iopreport.store import SentSummary
from iopreport.store.models import utcnow

log = logging.getLogger(__name__)

#: Name of the preview written by ``--dry-run`` when config.toml has no subscribers.
PREVIEW = "preview"


@dataclass(frozen=True)
class SendOutcome:
    """What one attempt to send one summary ended with."""

    night: dt.date
    subscriber: str
    status: str  # sent | failed | skipped
    message_id: str
    attempts: int
    detail: str  # the error, refused recipients, or why nothing was sent
    next_attempt_at: dt.datetime | None

    def line(self) -> str:
        """One line for the terminal and the run log."""
        text = f"{self.night} {self.subscriber}: {self.status}"
        if self.detail:
            text += f" ({self.detail})"
        if self.status == sendlog.FAILED and self.next_attempt_at:
            text += f"; next attempt {self.next_attempt_at:%Y-%m-%d %H:%M} UTC"
        return text


def _subscriber(config: Config, name: str) -> SubscriberConfig | None:
    return next((s for s in config.subscribers if s.name == name), None)


def select_subscribers(config: Config, name: str | None) -> list[SubscriberConfig]:
    """Every subscriber, or the one named ``name`` (UsageError if there is none)."""
    if name is None:
        return list(config.subscribers)
    subscriber = _subscriber(config, name)
    if subscriber is None:
        known = ", ".join(s.name for s in config.subscribers) or "none configured"
        raise UsageError(f"no subscriber named {name!r} in [[subscribers]] (known: {known})")
    return [subscriber]


def _summaries(config: Config, now: dt.datetime) -> Callable[[dt.date], NightSummary]:
    cache: dict[dt.date, NightSummary] = {}

    def get(night: dt.date) -> NightSummary:
        if night not in cache:
            cache[night] = build_night_summary(config, night, now=now)
        return cache[night]

    return get


def queue_night(
    config: Config, night: dt.date, *, now: dt.datetime | None = None
) -> list[SentSummary]:
    """Write the site's copy of ``night``'s summary and queue it for every subscriber.

    Subscribers that already have a row for the night (sent or not) keep it,
    so queueing twice never sends twice.
    """
    now = now or utcnow()
    write_site_copy(config, build_night_summary(config, night, now=now))
    return sendlog.queue(night, [s.name for s in config.subscribers], now)


def _attempt(
    config: Config,
    row: SentSummary,
    now: dt.datetime,
    summary_of: Callable[[dt.date], NightSummary],
    *,
    ignore_schedule: bool,
) -> SendOutcome | None:
    identifier = message_id(row.night, row.subscriber, config.smtp.sender)
    if not sendlog.claim(row, now, identifier, ignore_schedule=ignore_schedule):
        return None  # sent, or being sent by another process
    subscriber = _subscriber(config, row.subscriber)
    try:
        if subscriber is None:
            sendlog.mark_skipped(row, "subscriber no longer in config.toml")
        else:
            summary = summary_of(row.night).for_subscriber(subscriber)
            if subscriber.alerts_only and not summary.alerts:
                sendlog.mark_skipped(row, "alerts_only and no alert this night")
            else:
                outgoing = build_message(
                    summary, subscriber, config.smtp, config.paths.templates_dir
                )
                delivery = send_message(outgoing.message, outgoing.recipients, config.smtp)
                note = "; ".join(f"refused {a}: {why}" for a, why in delivery.refused.items())
                sendlog.mark_sent(row, now, note)
    except SendError as exc:
        sendlog.mark_failed(row, now, str(exc), config.schedule.retry_interval_minutes)
    except Exception as exc:  # one summary's trouble must not stop the others, nor stay "sending"
        log.exception("summary %s to %s", row.night, row.subscriber)
        error = f"{type(exc).__name__}: {exc}"
        sendlog.mark_failed(row, now, error, config.schedule.retry_interval_minutes)
    outcome = SendOutcome(
        night=row.night,
        subscriber=row.subscriber,
        status=row.status,
        message_id=identifier,
        attempts=row.attempts,
        detail=row.last_error,
        next_attempt_at=row.next_attempt_at,
    )
    log.info("summary %s", outcome.line())
    return outcome


def due_night(config: Config, now: dt.datetime) -> dt.date | None:
    """The night whose summary is due at ``now`` (naive UTC), or None before summary time.

    At or after ``schedule.summary_time`` on local date D (``schedule.timezone``)
    it is the night that began on the evening of D - 1.
    """
    local = now.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(config.schedule.timezone))
    hour, minute = (int(part) for part in config.schedule.summary_time.split(":"))
    if (local.hour, local.minute) < (hour, minute):
        return None
    return local.date() - dt.timedelta(days=1)


def send_due(
    config: Config, now: dt.datetime | None = None, *, queue_last_night: bool = True
) -> list[SendOutcome]:
    """Send every summary that is due (pending, failed and due again, or stale ``sending``).

    For the daemon, on every tick. With ``queue_last_night`` (default), last
    night's summary is first queued for every subscriber once
    ``schedule.summary_time`` has passed (:func:`due_night`; idempotent, and
    the site's copy is written when the night is first queued). Each row is
    claimed atomically before it is sent and its outcome recorded right after,
    so a row is never lost and never sent twice except after a crash inside
    the SMTP exchange (then again with the same Message-ID).

    Returns
    -------
    list of SendOutcome
        One per summary attempted (sent, failed and scheduled again, or skipped).
    """
    now = now or utcnow()
    summary_of = _summaries(config, now)
    night = due_night(config, now) if queue_last_night and config.subscribers else None
    if night is not None:
        names = [s.name for s in config.subscribers]
        if sendlog.missing(night, names):
            write_site_copy(config, summary_of(night))
            sendlog.queue(night, names, now)
    outcomes = []
    for row in sendlog.due(now):
        outcome = _attempt(config, row, now, summary_of, ignore_schedule=False)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def send_night(
    config: Config,
    night: dt.date,
    *,
    subscriber: str | None = None,
    now: dt.datetime | None = None,
) -> list[SendOutcome]:
    """Queue ``night`` and send it now to every (or one) subscriber not yet served.

    Failed rows are tried at once, whatever their ``next_attempt_at``; rows
    already sent or skipped are left alone (reported as such).
    """
    subscribers = select_subscribers(config, subscriber)
    if not subscribers:
        raise UsageError("config.toml has no [[subscribers]]: nobody to send the summary to")
    now = now or utcnow()
    summary_of = _summaries(config, now)
    write_site_copy(config, summary_of(night))
    rows = sendlog.queue(night, [s.name for s in subscribers], now)
    outcomes = []
    for row in rows:
        outcome = _attempt(config, row, now, summary_of, ignore_schedule=True)
        if outcome is None:
            outcome = SendOutcome(
                night=night,
                subscriber=row.subscriber,
                status=row.status,
                message_id=row.message_id,
                attempts=row.attempts,
                detail=(
                    f"already sent {row.sent_at:%Y-%m-%d %H:%M} UTC"
                    if row.status == sendlog.SENT
                    else row.last_error or "being sent by another process"
                ),
                next_attempt_at=row.next_attempt_at,
            )
        outcomes.append(outcome)
    return outcomes


@dataclass(frozen=True)
class DryRunFile:
    """Files the dry run wrote for one subscriber."""

    subscriber: str
    eml: Path
    html: Path
    subject: str
    recipients: tuple[str, ...]


def dry_run(
    config: Config,
    night: dt.date,
    *,
    subscriber: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Path, list[DryRunFile]]:
    """Write the site's copy and each subscriber's message to the outbox; send nothing.

    Without ``[[subscribers]]`` one unfiltered ``preview`` message addressed to
    ``smtp.from`` is written. Alerts-only subscribers get their message written
    even on a night without alerts (the line says so).

    Returns
    -------
    (Path, list of DryRunFile)
        The site copy and the outbox files.
    """
    now = now or utcnow()
    summary = build_night_summary(config, night, now=now)
    site_copy = write_site_copy(config, summary)
    subscribers = select_subscribers(config, subscriber)
    if not subscribers:
        subscribers = [SubscriberConfig(name=PREVIEW, to=(config.smtp.sender,))]
    written = []
    for item in subscribers:
        limited = summary.for_subscriber(item)
        outgoing = build_message(limited, item, config.smtp, config.paths.templates_dir)
        eml, html = write_outbox(config, outgoing, limited, item.name)
        subject = limited.subject
        if item.alerts_only and not limited.alerts:
            subject += " [not sent: alerts_only and no alert]"
        written.append(DryRunFile(item.name, eml, html, subject, outgoing.recipients))
    return site_copy, written


__all__ = [
    "DryRunFile",
    "SendOutcome",
    "dry_run",
    "queue_night",
    "send_due",
    "send_night",
]
