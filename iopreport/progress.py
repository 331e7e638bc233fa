"""Progress reporting: a tqdm bar on a terminal, plain log lines otherwise.

One helper for every long command (fetch, reduce, reprocess, index downloads), so
that each shows progress the same way. On a terminal the bar is drawn by tqdm
(https://github.com/tqdm/tqdm); when stderr is not a terminal (the daemon, CI,
a pipe), a log line is written at most every ``log_every_s`` seconds and at the
end, so logs stay readable.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from tqdm import tqdm

log = logging.getLogger(__name__)

#: Seconds between two plain progress lines when stderr is not a terminal.
LOG_EVERY_S = 10.0


class Progress:
    """A counter of work done, shown as a bar on a terminal or as log lines.

    Parameters
    ----------
    total
        Units of work expected (``None`` when unknown).
    desc
        What is counted, e.g. ``"fetch OSN-T090 2024-10-08"``.
    unit
        Name of one unit (``"file"``, ``"frame"``, ``"B"``).
    bytes_
        Show sizes in bytes with binary prefixes (downloads).
    enabled
        ``None`` decides by whether stderr is a terminal; ``False`` shows nothing.
    """

    def __init__(
        self,
        total: float | None,
        desc: str,
        *,
        unit: str = "it",
        bytes_: bool = False,
        enabled: bool | None = None,
        initial: float = 0,
        log_every_s: float = LOG_EVERY_S,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self._log_every_s = log_every_s
        self._last_log = time.monotonic()
        self._started = time.monotonic()
        terminal = sys.stderr.isatty() if enabled is None else enabled
        self._quiet = enabled is False
        self._bar = (
            tqdm(
                total=total,
                desc=desc,
                unit=unit,
                unit_scale=bytes_,
                unit_divisor=1024 if bytes_ else 1000,
                initial=initial,
                leave=True,
                file=sys.stderr,
            )
            if terminal and not self._quiet
            else None
        )

    @property
    def drawn(self) -> bool:
        """Whether a bar is drawn (a terminal); otherwise progress goes to log lines."""
        return self._bar is not None

    def update(self, n: float = 1) -> None:
        """Add ``n`` units of work done."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if not self._quiet and now - self._last_log >= self._log_every_s:
            self._last_log = now
            log.info("%s", self.line())

    def line(self) -> str:
        """The plain progress line: done, total, rate and time left."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.n / elapsed
        if self.total:
            left = (self.total - self.n) / rate if rate > 0 else float("inf")
            eta = f", {left:.0f} s left" if left != float("inf") else ""
            return (
                f"{self.desc}: {self.n:g}/{self.total:g} {self.unit} "
                f"({rate:.2f} {self.unit}/s{eta})"
            )
        return f"{self.desc}: {self.n:g} {self.unit} ({rate:.2f} {self.unit}/s)"

    def close(self) -> None:
        """Finish the bar, or log the last line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif not self._quiet:
            log.info("%s", self.line())
            self._quiet = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
