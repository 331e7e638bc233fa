"""Processor time of a benchmark's processes, and the virtual machine's first-touch cost.

Shared by the benchmarks (not part of the product).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
from pathlib import Path


def _stat_fields(entry: Path) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name, or None if gone."""
    try:
        return (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _processes() -> dict[int, list[str]]:
    """Every process's stat fields, by process id."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(entry)) is not None:
            found[int(entry.name)] = fields
    return found


def _seconds(ticks: str) -> float:
    return int(ticks) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> tuple[float, float]:
    """(user s, system s) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


class TreeCpu(threading.Thread):
    """CPU of every descendant of this process from :meth:`begin` to :meth:`stop`,
    sampled from /proc every 0.2 s.

    RUSAGE_CHILDREN misses a process pool's workers: they are children of the
    forkserver, which lives on until this process ends. Each descendant's own
    CPU at its last sample counts (a process that ends loses at most 0.2 s);
    what processes left from earlier work had used at :meth:`begin` is left out.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        #: (pid, start time) -> (user s, system s)
        self.seen: dict[tuple[int, int], tuple[float, float]] = {}
        self.halt = threading.Event()
        self.before: dict[tuple[int, int], tuple[float, float]] = {}

    def begin(self) -> TreeCpu:
        self.sample()
        self.before = dict(self.seen)
        self.start()
        return self

    def run(self) -> None:
        while not self.halt.wait(0.2):
            self.sample()

    def sample(self) -> None:
        stats = _processes()
        mine, frontier = set(), [os.getpid()]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, fields in stats.items() if int(fields[1]) == parent]
            mine.update(children)
            frontier += children
        for pid in mine:
            fields = stats[pid]
            self.seen[pid, int(fields[19])] = (_seconds(fields[11]), _seconds(fields[12]))

    def stop(self) -> tuple[float, float]:
        """(user s, system s) of the descendants since :meth:`begin`."""
        self.halt.set()
        self.join()
        self.sample()
        user = system = 0.0
        for key, (u, s) in self.seen.items():
            u0, s0 = self.before.get(key, (0.0, 0.0))
            user, system = user + u - u0, system + s - s0
        return user, system


def server_cpu(data_dir: str) -> float:
    """CPU seconds of the PostgreSQL server of ``data_dir``: its postmaster (with the backends
    it has reaped) and the backends running now. Other servers on the machine (run by the
    same user) are not counted."""
    if not data_dir:
        return 0.0
    try:
        postmaster = int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = 0.0
    for pid, fields in _processes().items():
        if pid == postmaster:  # its own CPU and that of its ended children
            total += sum(_seconds(f) for f in fields[11:15])
        elif int(fields[1]) == postmaster:
            total += _seconds(fields[11]) + _seconds(fields[12])
    return total


def add_warm_memory_option(parser: argparse.ArgumentParser) -> None:
    """The benchmarks' ``--warm-memory-gb`` (:func:`warm_memory`)."""
    parser.add_argument(
        "--warm-memory-gb",
        type=float,
        default=0.0,
        help="touch and free this much memory before each timed run (a virtual machine's "
        "first touch of memory its host took back costs many times a warm one)",
    )


def warm_memory(gigabytes: float) -> None:
    """Touch and free ``gigabytes`` of memory, as a warm-up run would.

    On a virtual machine whose host takes back the guest's free memory (a balloon
    device's free-page reporting), the first write to such a page costs many times a
    warm one; measured on the development machine with ``dd`` writing 500 MB into a
    new file: 1.7 s of system time the first time, 0.1 s the next times. A
    benchmark run right after other work finds warm pages, one run on a quiet
    machine cold ones; touching memory first makes the runs comparable. The memory
    is touched in a child process, so that this process's peak memory (which the
    benchmarks report) does not include it.
    """
    if gigabytes > 0:
        values = int(gigabytes * 1024**3) // 8
        subprocess.run([sys.executable, "-c", f"import numpy; numpy.ones({values})"], check=True)
