"""A reprocessing campaign on three back ends: nights/s, frames/s, CPU s per science frame.

Usage: python benchmarks/bench_campaign.py [--nights 20] [--preset small] [--workers 2]
       [--rounds 2]

Simulates ``--nights`` nights (the three telescopes on consecutive dates, not
timed), then reprocesses the same nights from scratch (masters included, no
site build) in three configurations, each run into a fresh store and in a
fresh Python process (so that no configuration inherits another's imports,
forkserver or caches), ``--rounds`` times in mirrored order (a b c c b a ...)
so that a load on the machine that changes during the benchmark weighs on
every configuration alike:

(a) the local process pool, store on SQLite;
(b) a Dask ``LocalCluster`` of ``--workers`` processes, store on SQLite;
(c) the same cluster, store on a PostgreSQL server started here (as the
    ``postgres`` user when run as root; Debian's postgresql package).

CPU is that of this process, of every process it started (the pool's or the
cluster's workers, sampled from /proc) and, for (c), of the PostgreSQL
server's processes (that server's only, not other servers of the machine).
The wall time counts the start of the workers. For Dask it is also printed
apart as "executor start": the ``LocalCluster``, its client, the worker plugin
and the data-folder check, which run in a background thread while the first
nights' files are registered and classified (so they overlap that work); the
local pool starts its workers at the first job, inside the run.
The means over the rounds and the ratios (b)/(a) and (c)/(a) of the mean
throughputs are printed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomlkit
from proctree import TreeCpu, add_warm_memory_option, self_cpu, server_cpu, warm_memory

from iopreport.archive.nightdownload import fetch_night
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


def _configure(
    project: Path, database: str, scheduler: str, workers: int, jobs_per_task: int | None
) -> None:
    path = project / "config.toml"
    document = tomlkit.parse(path.read_text())
    document["paths"]["database"] = database
    document["processing"]["workers"] = workers
    document["cluster"] = {"scheduler": scheduler, "local_workers": workers}
    if jobs_per_task:
        document["cluster"]["jobs_per_task"] = jobs_per_task
    write_text_atomic(path, tomlkit.dumps(document))
    for folder in ("masterbias", "masterdark", "masterflat", "calibration", "campaigns"):
        shutil.rmtree(project / "data" / folder, ignore_errors=True)


def _run(project: Path, label: str, server_data: str, warm_gb: float = 0.0) -> dict:
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    warm_memory(warm_gb)
    server0, wall0, self0 = server_cpu(server_data), time.perf_counter(), sum(self_cpu())
    tree = TreeCpu().begin()  # processes left from an earlier configuration do not count
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
    writer = sum(self_cpu()) - self0  # this process: planning, storing every outcome (the writer)
    workers_user, workers_system = tree.stop()
    workers = workers_user + workers_system
    server = server_cpu(server_data) - server0
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
        "workers_user_s": workers_user,
        "workers_system_s": workers_system,
        "server_s": server,
        "failed": report.failed,
    }
    print(
        f"{label}: {figures['nights']} nights, {frames} frames ({science} science) in {wall:.1f} s"
        f" (executor start {start:.1f} s), {figures['nights_per_s']:.3f} nights/s,"
        f" {figures['frames_per_s']:.2f} frames/s,"
        f" {figures['cpu_per_science_s']:.3f} CPU s per science frame,"
        f" main process {figures['writer_per_frame_s'] * 1000:.0f} ms CPU per frame"
        f"{' (failures)' if report.failed else ''}; CPU of the workers {workers_user:.1f} s user"
        f" + {workers_system:.1f} s system, main process {writer:.1f} s, server {server:.1f} s",
        flush=True,
    )
    print(report.table(), flush=True)
    return figures


MODES = {
    "a": ("(a) local pool + SQLite", ""),
    "b": ("(b) Dask LocalCluster + SQLite", "local"),
    "c": ("(c) Dask LocalCluster + PostgreSQL", "local"),
}


#: Figures averaged over the rounds.
MEAN_KEYS = (
    "wall_s",
    "start_s",
    "nights_per_s",
    "frames_per_s",
    "cpu_per_science_s",
    "writer_per_frame_s",
)


def _child(args) -> None:
    """One configuration, in this (fresh) process: its figures as JSON on the last line."""
    label, scheduler = MODES[args.run]
    _configure(args.project, args.database, scheduler, args.workers, args.jobs_per_task)
    figures = _run(args.project, label, args.server_data, args.warm_memory_gb)
    print("RESULT " + json.dumps(figures), flush=True)


def _in_child(mode: str, project: Path, database: str, args, server_data: str) -> dict:
    command = [sys.executable, __file__, "--run", mode, "--project", str(project)]
    command += ["--database", database, "--workers", str(args.workers)]
    command += ["--server-data", server_data, "--warm-memory-gb", str(args.warm_memory_gb)]
    if args.jobs_per_task:
        command += ["--jobs-per-task", str(args.jobs_per_task)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    print("\n".join(line for line in lines if not line.startswith("RESULT ")), flush=True)
    return json.loads(next(line for line in lines if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nights", type=int, default=20)
    parser.add_argument(
        "--preset",
        default="small",
        choices=("tiny", "small", "full"),
        help="small (default): Andor frames binned 2x2 and CAFOS unbinned, closer to real"
        " frames; tiny: binned 4x4 (CAFOS 2x2), where the executor's cost per task weighs most",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work in this folder (default: a temporary one)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration")
    parser.add_argument(
        "--jobs-per-task",
        type=int,
        help="[cluster] jobs_per_task of (b) and (c) (default: the configuration's default)",
    )
    add_warm_memory_option(parser)
    parser.add_argument("--run", choices=sorted(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--server-data", default="", help=argparse.SUPPRESS)
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
    try:
        runs = _measure(args, root, nights)
    finally:
        if not args.keep:  # 2-8 GB of simulated nights, calibrated frames and stores
            shutil.rmtree(root, ignore_errors=True)
    _report(args, runs)


def _measure(args, root: Path, nights: list[tuple[str, dt.date]]) -> dict[str, list[dict]]:
    """Simulate the nights into ``root``, then run the rounds: each mode's figures."""
    started = time.perf_counter()
    project = _project(root, nights, args.preset)
    print(f"simulated {len(nights)} {args.preset} nights in {time.perf_counter() - started:.0f} s")
    print(f"load average before: {os.getloadavg()}", flush=True)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pgserver import PostgresServer  # the test suite's throw-away server

    # rounds in mirrored order (a b c, then c b a, ...): on a machine shared with other
    # work, a load that grows or falls during the benchmark weighs on every mode alike
    order = [m for r in range(args.rounds) for m in (("a", "b", "c") if r % 2 == 0 else "cba")]
    runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
    server = PostgresServer().start()
    try:
        for number, mode in enumerate(order):
            if mode == "c":
                database, data = server.database(), str(server.data)
            else:
                database, data = str(root / f"{mode}{number}.db"), ""
            runs[mode].append(_in_child(mode, project, database, args, data))
    finally:
        server.stop()
    return runs


def _report(args, runs: dict[str, list[dict]]) -> None:
    """The means over the rounds and the ratios (b)/(a), (c)/(a)."""
    mean = {
        mode: {key: sum(r[key] for r in found) / len(found) for key in MEAN_KEYS}
        for mode, found in runs.items()
    }
    print(f"mean of {args.rounds} round(s):")
    for mode, figures in mean.items():
        print(
            f"{MODES[mode][0]}: wall {figures['wall_s']:.1f} s (executor start"
            f" {figures['start_s']:.1f} s), {figures['nights_per_s']:.3f} nights/s,"
            f" {figures['frames_per_s']:.2f} frames/s, {figures['cpu_per_science_s']:.3f} CPU s"
            f" per science frame, main process {figures['writer_per_frame_s'] * 1000:.0f} ms"
            " CPU per frame"
        )
    base = mean["a"]
    for mode in ("b", "c"):
        speed = mean[mode]["nights_per_s"] / base["nights_per_s"]
        cpu = mean[mode]["cpu_per_science_s"] / base["cpu_per_science_s"]
        print(f"{MODES[mode][0]} / (a): nights/s x{speed:.2f}, CPU per science frame x{cpu:.2f}")
        # the same ratio within each round (runs close in time), and their median
        pairs = zip(runs["a"], runs[mode], strict=True)
        rounds = [b["nights_per_s"] / a["nights_per_s"] for a, b in pairs]
        print(
            f"  per round: {', '.join(f'{r:.2f}' for r in rounds)};"
            f" median {statistics.median(rounds):.2f}"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
