"""Processor time of a benchmark's child processes, and the virtual machine's first-touch cost.

Shared by the benchmarks (not part of the product).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np


def _proc_stat(entry: Path) -> tuple[int, int, float, float] | None:
    """(ppid, start time, user s, system s) of a process from /proc, or None if gone."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), int(fields[19]), int(fields[11]) / ticks, int(fields[12]) / ticks


class TreeCpu(threading.Thread):
    """CPU of every descendant of this process, sampled from /proc every 0.2 s.

    RUSAGE_CHILDREN misses a process pool's workers: they are children of the
    forkserver, which lives on until this process ends. Each descendant's own
    CPU at its last sample counts (a process that ends loses at most 0.2 s).
    :meth:`sample` once before :meth:`start` and :attr:`seen` then holds the
    processes left from earlier work, which :meth:`since` leaves out.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        #: (pid, start time) -> (user s, system s)
        self.seen: dict[tuple[int, int], tuple[float, float]] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.2):
            self.sample()

    def sample(self) -> None:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (stat := _proc_stat(entry)) is not None:
                stats[int(entry.name)] = stat
        mine, frontier = set(), [os.getpid()]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, (ppid, *_) in stats.items() if ppid == parent]
            mine.update(children)
            frontier += children
        for pid in mine:
            _, started, user, system = stats[pid]
            self.seen[pid, started] = (user, system)

    def stop(self) -> None:
        self.halt.set()
        self.join()
        self.sample()

    def since(self, before: dict[tuple[int, int], tuple[float, float]]) -> tuple[float, float]:
        """(user s, system s) of the descendants since ``before`` (an earlier :attr:`seen`)."""
        user = system = 0.0
        for key, (u, s) in self.seen.items():
            u0, s0 = before.get(key, (0.0, 0.0))
            user, system = user + u - u0, system + s - s0
        return user, system


#: Chunk of memory touched at a time by :func:`warm_memory`.
WARM_CHUNK_BYTES = 256 * 1024**2


def warm_memory(gigabytes: float) -> None:
    """Touch and free ``gigabytes`` of memory, as a warm-up run would.

    On a virtual machine whose host takes back the guest's free memory (a balloon
    device's free-page reporting), the first write to such a page costs many times a
    warm one; measured on the development machine with ``dd`` writing 500 MB into a
    new file: 1.7 s of system time the first time, 0.1 s the next times. A
    benchmark run right after other work finds warm pages, one run on a quiet
    machine cold ones; touching memory first makes the runs comparable.
    """
    chunks, left = [], int(gigabytes * 1024**3)
    while left > 0:  # held together: a freed chunk's pages would serve the next one
        size = min(left, WARM_CHUNK_BYTES)
        chunks.append(np.ones(size // 8))
        left -= size
    del chunks
