"""Progress: plain log lines when stderr is not a terminal, with done/total and rate."""

from __future__ import annotations

import logging

from iopreport.progress import Progress


def test_plain_lines_when_not_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="iopreport.progress")
    with Progress(10, "fetch X", unit="file", enabled=None, log_every_s=0.0) as bar:
        for _ in range(10):
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines, "no progress line was logged"
    assert lines[-1].startswith("fetch X: 10/10 file")
    assert "file/s" in lines[-1]


def test_disabled_is_silent(caplog):
    caplog.set_level(logging.INFO, logger="iopreport.progress")
    with Progress(3, "quiet", enabled=False) as bar:
        bar.update(3)
    assert not caplog.records
