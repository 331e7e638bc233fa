"""``iopreport daemon``: the long-running process that fetches, reduces and publishes.

The work is data: :data:`JOBS` says which steps each scheduled job runs, in
order, and :data:`STEPS` maps a step name to the function that does it:
``fetch`` (archives), ``reduce`` (every night with new files), ``build``
(flags, catalog and the site) and ``summary`` (the e-mails that are due).

Scheduling (APScheduler 3): a *poll* job every ``schedule.poll_interval_minutes``
(and once at start), the *summary* job at ``schedule.summary_time`` in
``schedule.timezone``, and a *retry* job every ``schedule.retry_interval_minutes``
for archives that failed. The scheduler's jobs only queue a request; the main
thread runs the queued jobs one at a time under one lock, so jobs never
overlap and a job asked for twice while waiting runs once (coalescing).

Safety: a lock file (``fcntl.flock`` on ``<datadir>/daemon.lock``) keeps a
second daemon off the same data directory; SIGTERM and SIGINT stop the
daemon within seconds, abandoning the file or frame in flight (it is redone on
the next start: every step is idempotent and crash-safe); the ``Heartbeat``
row named ``daemon`` shows ``iopreport status`` that it is alive and what it is doing.
"""

from iopreport.daemon.cycle import Cycle, DaemonState
from iopreport.daemon.lock import daemon_lock
from iopreport.daemon.service import Daemon
from iopreport.daemon.steps import JOBS, STEPS, Step, nights_to_reduce, register_step, step_reduce

__all__ = [
    "JOBS",
    "STEPS",
    "Cycle",
    "Daemon",
    "DaemonState",
    "Step",
    "daemon_lock",
    "nights_to_reduce",
    "register_step",
    "step_reduce",
]
