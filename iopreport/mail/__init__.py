"""Night summaries: content, alerts, plots, rendering, sending and the send log.

The daemon needs two calls (docs/summaries.md):

>>> from iopreport.mail import queue_night, send_due
>>> queue_night(config, night)      # doctest: +SKIP  (at schedule.summary_time)
>>> send_due(config)                # doctest: +SKIP  (every tick: sends and retries)
"""

from iopreport.mail.dispatch import SendOutcome, dry_run, queue_night, send_due, send_night

__all__ = ["SendOutcome", "dry_run", "queue_night", "send_due", "send_night"]
