"""Night summaries: content, alerts, plots, rendering, sending and the send log.

The daemon needs one call, on every tick (docs/summaries.md):

>>> from iopreport.mail import send_due
>>> send_due(config)                # doctest: +SKIP  (queues last night after
...                                 #   schedule.summary_time, sends, retries)
"""

from iopreport.mail.dispatch import SendOutcome, dry_run, queue_night, send_due, send_night

__all__ = ["SendOutcome", "dry_run", "queue_night", "send_due", "send_night"]
