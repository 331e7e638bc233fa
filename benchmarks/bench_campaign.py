"""A reprocessing campaign on three back ends: nights/s, frames/s, CPU s per science frame.

Usage: python benchmarks/bench_campaign.py [--nights 20] [--preset tiny] [--workers 2]

Simulates ``--nights`` nights (the three telescopes on consecutive dates, not
timed), then reprocesses the same nights from scratch (masters included, no
site build) three times, each into a fresh store and each in a fresh Python
process (so that no configuration inherits another's imports, forkserver or
caches):

(a) the local process pool, store on SQLite;
(b) a Dask ``LocalCluster`` of ``--workers`` processes, store on SQLite;
(c) the same cluster, store on a PostgreSQL server started here (as the
    ``postgres`` user when run as root; Debian's postgresql package).

CPU is that of this process, of every process it started (the pool's or the
cluster's workers, sampled from /proc) and, for (c), of the PostgreSQL
server's processes.
The wall time counts the start of the workers. For Dask it is also printed
apart as "executor start": the ``LocalCluster``, its client, the worker plugin
and the data-folder check, which run in a background thread while the first
nights' files are registered and classified (so they overlap that work); the
local pool starts its workers at the first job, inside the run.
The ratios (b)/(a) and (c)/(a) of the throughputs are printed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import tomlkit

from iopreport.archive.sync import fetch_night
from iopreport.config import load_config
from iopreport.demo import point_archives_at
from iopreport.fileio import write_text_atomic
from iopreport.reduce.executor import make_executor
from iopreport.reprocess import reprocess
from iopreport.simulate import simulate_night
from iopreport.skeleton import init_project
from iopreport.store import RawFit, close_store, open_store
from iopreport.telescopes import TELESCOPES

FIRST_NIGHT = dt.date(2024, 10, 8)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_stat(entry: Path) -> tuple[int, int, float] | None:
    """(ppid, start time, own CPU seconds) of a process from /proc, or None if gone."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), int(fields[19]), (int(fields[11]) + int(fields[12])) / ticks


class TreeCpu(threading.Thread):
    """CPU of every descendant of this process, sampled from /proc every 0.2 s.

    RUSAGE_CHILDREN misses the local pool's workers: they are children of the
    forkserver, which lives on until this process ends. Each descendant's own
    CPU at its last sample counts (a process that ends loses at most 0.2 s).
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[tuple[int, int], float] = {}
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
            children = [pid for pid, (ppid, _, _) in stats.items() if ppid == parent]
            mine.update(children)
            frontier += children
        for pid in mine:
            _, started, cpu = stats[pid]
            self.seen[pid, started] = cpu

    def total(self) -> float:
        self.halt.set()
        self.join()
        self.sample()
        return sum(self.seen.values())


def _user_cpu(user: str) -> float:
    """CPU seconds of the running processes of ``user`` (the PostgreSQL server)."""
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return total


def _project(root: Path, nights: list[tuple[str, dt.date]], preset: str) -> Path:
    project = root / "site"
    init_project(project)
    point_archives_at(project / "config.toml", project / "archive")
    config = load_config(project / "config.toml")
    by_date: dict[dt.date, list[str]] = {}
    for telescope, night in nights:
        by_date.setdefault(night, []).append(telescope)
    for index, (night, telescopes) in enumerate(sorted(by_date.items())):
        simulate_night(project / "archive", night, telescopes=telescopes, preset=preset, seed=index)
        for telescope in telescopes:
            root_dir = Path(config.archives[telescope].root)
            fetch_night(root_dir, telescope, night, config.paths.data_subdir("raw"))
    return project


def _configure(project: Path, database: str, scheduler: str, workers: int) -> None:
    path = project / "config.toml"
    document = tomlkit.parse(path.read_text())
    document["paths"]["database"] = database
    document["processing"]["workers"] = workers
    document["cluster"] = {"scheduler": scheduler, "local_workers": workers}
    write_text_atomic(path, tomlkit.dumps(document))
    for folder in ("masterbias", "masterdark", "masterflat", "calibration", "campaigns"):
        shutil.rmtree(project / "data" / folder, ignore_errors=True)


def _run(project: Path, label: str, server_user: str | None) -> dict:
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    server0, wall0, self0 = _user_cpu(server_user or ""), time.perf_counter(), _self_cpu()
    tree = TreeCpu()
    tree.sample()
    before = dict(tree.seen)  # processes left from an earlier configuration
    tree.start()
    with make_executor(config) as pool:
        report = reprocess(
            config,
            FIRST_NIGHT,
            FIRST_NIGHT + dt.timedelta(days=400),
            build=False,
            progress=False,
            executor=pool,
        )
        start = getattr(pool, "start_s", 0.0)  # the local pool starts inside the run
    wall = time.perf_counter() - wall0
    writer = _self_cpu() - self0  # this process: planning, storing every outcome (the writer)
    tree.total()
    workers = sum(cpu - before.get(key, 0.0) for key, cpu in tree.seen.items())
    server = _user_cpu(server_user) - server0 if server_user else 0.0
    cpu = writer + workers + server
    science = RawFit.select().where(RawFit.imgtype == "light").count()
    frames = sum(n.files for n in report.nights)
    close_store()
    figures = {
        "label": label,
        "nights": len(report.nights),
        "frames": frames,
        "science": science,
        "wall_s": wall,
        "start_s": start,
        "nights_per_s": len(report.nights) / wall,
        "frames_per_s": frames / wall,
        "cpu_per_science_s": cpu / max(science, 1),
        "writer_per_frame_s": writer / max(frames, 1),
        "failed": report.failed,
    }
    print(
        f"{label}: {figures['nights']} nights, {frames} frames ({science} science) in {wall:.1f} s"
        f" (executor start {start:.1f} s), {figures['nights_per_s']:.3f} nights/s,"
        f" {figures['frames_per_s']:.2f} frames/s,"
        f" {figures['cpu_per_science_s']:.3f} CPU s per science frame,"
        f" main process {figures['writer_per_frame_s'] * 1000:.0f} ms CPU per frame"
        f"{' (failures)' if report.failed else ''}",
        flush=True,
    )
    print(report.table(), flush=True)
    return figures


MODES = {
    "a": ("(a) local pool + SQLite", ""),
    "b": ("(b) Dask LocalCluster + SQLite", "local"),
    "c": ("(c) Dask LocalCluster + PostgreSQL", "local"),
}


def _child(args) -> None:
    """One configuration, in this (fresh) process: its figures as JSON on the last line."""
    label, scheduler = MODES[args.run]
    _configure(args.project, args.database, scheduler, args.workers)
    figures = _run(args.project, label, args.server_user or None)
    print("RESULT " + json.dumps(figures), flush=True)


def _in_child(mode: str, project: Path, database: str, workers: int, user: str) -> dict:
    command = [sys.executable, __file__, "--run", mode, "--project", str(project)]
    command += ["--database", database, "--workers", str(workers), "--server-user", user]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith("RESULT ")), flush=True)
    return json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=20)
    parser.add_argument("--preset", default="tiny", choices=("tiny", "small", "full"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work in this folder (default: a temporary one)")
    parser.add_argument("--run", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--server-user", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _child(args)
        return
    nights = [
        (telescope, FIRST_NIGHT + dt.timedelta(days=day))
        for day in range(args.nights)
        for telescope in TELESCOPES
    ][: args.nights]
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    started = time.perf_counter()
    project = _project(root, nights, args.preset)
    print(f"simulated {len(nights)} {args.preset} nights in {time.perf_counter() - started:.0f} s")
    print(f"load average before: {os.getloadavg()}", flush=True)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pgserver import PostgresServer  # the test suite's throw-away server

    results = [
        _in_child("a", project, str(root / "a.db"), args.workers, ""),
        _in_child("b", project, str(root / "b.db"), args.workers, ""),
    ]
    server = PostgresServer().start()
    try:
        results.append(_in_child("c", project, server.database(), args.workers, server.user))
    finally:
        server.stop()
    base = results[0]
    for figures in results[1:]:
        speed = figures["nights_per_s"] / base["nights_per_s"]
        cpu = figures["cpu_per_science_s"] / base["cpu_per_science_s"]
        print(f"{figures['label']} / (a): nights/s x{speed:.2f}, CPU per science frame x{cpu:.2f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
