"""Bookkeeping tables: command runs, night summaries' delivery, the daemon's heartbeat."""

from __future__ import annotations

import peewee as pw

from iopreport.store.models.base import BaseModel, JSONField, utcnow


class RunLog(BaseModel):
    """One run of a command: what ran, when, and how it ended."""

    command = pw.CharField()
    arguments = JSONField(default=list)
    started_at = pw.DateTimeField(default=utcnow, index=True)
    finished_at = pw.DateTimeField(null=True)
    outcome = pw.CharField(default="running")  # running | ok | failed | interrupted
    detail = pw.TextField(default="")
    pid = pw.IntegerField(null=True)
    hostname = pw.CharField(default="")


class SentSummary(BaseModel):
    """Delivery state of one night's summary to one subscriber (sent at most once)."""

    night = pw.DateField()
    subscriber = pw.CharField()
    status = pw.CharField(default="pending")  # pending | sending | sent | failed | skipped
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(default="")
    first_attempt_at = pw.DateTimeField(null=True)
    last_attempt_at = pw.DateTimeField(null=True)
    next_attempt_at = pw.DateTimeField(null=True)
    sent_at = pw.DateTimeField(null=True)
    message_id = pw.CharField(default="")

    class Meta:
        indexes = ((("night", "subscriber"), True),)


class Heartbeat(BaseModel):
    """Liveness of a long-running process (the daemon), updated while it runs."""

    name = pw.CharField(unique=True)
    pid = pw.IntegerField()
    hostname = pw.CharField(default="")
    started_at = pw.DateTimeField(default=utcnow)
    beat_at = pw.DateTimeField(default=utcnow)
    state = pw.CharField(default="")  # free text: idle, polling, reducing <night>, ...
