"""What one daemon job's run shares: the daemon's memory, the cycle, the stop signal.

:class:`DaemonState` lives as long as the process (the archives that failed);
a :class:`Cycle` is one job's run, passed to every step, collecting its report
lines and failures; :class:`DaemonStop` is raised by SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from iopreport.config import Config

log = logging.getLogger(__name__)


class DaemonStop(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGINT; recorded runs end as ``interrupted``."""


@dataclass
class DaemonState:
    """What one daemon process remembers between jobs."""

    failed_archives: dict[str, str] = field(default_factory=dict)  # telescope -> reason


@dataclass
class Cycle:
    """One job's run: what the steps share and report."""

    config: Config
    job: str
    state: DaemonState
    changed: bool = False  # new files or new reductions: the site is worth rebuilding
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def report(self, line: str, *, failed: bool = False) -> None:
        (log.error if failed else log.info)("%s", line)
        self.lines.append(line)
        if failed:
            self.failures.append(line)
