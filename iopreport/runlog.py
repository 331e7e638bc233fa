"""Recording what ran, when, and how it ended (the ``RunLog`` table)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Sequence

from iopreport.store.models import RunLog, utcnow


@contextlib.contextmanager
def recorded_run(command: str, arguments: Sequence[str] = ()) -> Iterator[RunLog]:
    """Record a run of ``command`` in the store while the ``with`` body runs.

    The row is written as ``running`` at the start (so a crash leaves a trace)
    and closed as ``ok``, ``failed`` (with the exception text) or
    ``interrupted`` (Ctrl-C, SIGTERM). The body may set ``run.detail``, and
    ``run.outcome = "failed"`` when it finished but part of its work failed.
    """
    run = RunLog.create(
        command=command,
        arguments=list(arguments),
        pid=os.getpid(),
        hostname=socket.gethostname(),
    )
    try:
        yield run
    except (KeyboardInterrupt, SystemExit) as exc:
        if isinstance(exc, SystemExit) and not exc.code:
            _finish(run, "ok")
        else:
            _finish(run, "interrupted", f"{type(exc).__name__}")
        raise
    except BaseException as exc:
        _finish(run, "failed", f"{type(exc).__name__}: {exc}")
        raise
    else:
        _finish(run, run.outcome if run.outcome == "failed" else "ok")


def _finish(run: RunLog, outcome: str, problem: str = "") -> None:
    run.outcome = outcome
    run.finished_at = utcnow()
    if problem:
        run.detail = f"{run.detail}\n{problem}".strip()
    run.save()
