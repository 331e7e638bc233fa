"""Reduction speed and accuracy on a simulated night: frames/s, seconds per stage, peak memory.

Usage: python benchmarks/bench_reduce.py [--preset full] [--workers 2] [--telescope T ...]
       [--keep DIR]

Simulates the night into a temporary project (not timed), fetches it, reduces
it with the process pool and compares the results with the truth.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from proctree import TreeCpu, add_warm_memory_option, self_cpu, warm_memory

from iopreport.archive.sync import sync_archive
from iopreport.catalog import load_catalog, sync_catalog
from iopreport.config import load_config
from iopreport.demo import point_archives_at
from iopreport.reduce.night import reduce_nights
from iopreport.simulate import simulate_night
from iopreport.simulate.evaluate import evaluate_night, evaluate_polarimetry, pull_statistics
from iopreport.simulate.night import NightResult
from iopreport.skeleton import init_project
from iopreport.store import open_store
from iopreport.telescopes import TELESCOPES

NIGHT = dt.date(2024, 10, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--telescope", action="append", choices=TELESCOPES)
    parser.add_argument("--cirrus", action="store_true", help="thin cirrus (up to 10%%)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep",
        type=Path,
        help="simulate into this folder, or reuse the night simulated there by an earlier run",
    )
    add_warm_memory_option(parser)
    args = parser.parse_args()
    telescopes = tuple(args.telescope or TELESCOPES)
    if args.keep and (args.keep / "site" / "archive").is_dir():
        # the simulated archive of an earlier run (same options): reduce it again from scratch
        project = args.keep / "site"
        shutil.rmtree(project / "data", ignore_errors=True)
        nights = [
            NightResult(folder.parent.name, folder)
            for folder in sorted((project / "archive").glob("*/*"))
            if (folder / "truth.json").exists() and folder.parent.name in telescopes
        ]
    else:
        parent = args.keep or Path(tempfile.mkdtemp(prefix="bench-reduce-"))
        if not args.keep:  # about 6 GB for the full night: gone when the benchmark ends
            atexit.register(shutil.rmtree, parent, ignore_errors=True)
        project = parent / "site"
        init_project(project)
        point_archives_at(project / "config.toml", project / "archive")
        nights = simulate_night(
            project / "archive",
            NIGHT,
            telescopes=telescopes,
            preset=args.preset,
            seed=args.seed,
            cirrus=args.cirrus,
        )
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    catalog = load_catalog(config.paths.catalog)
    sync_catalog(catalog)
    for telescope in telescopes:  # as `iopreport fetch` does: files and their rows
        synced = sync_archive(config, config.archives[telescope], nights=[NIGHT])
        if synced.failed:
            raise SystemExit(f"{telescope}: fetching the simulated night failed")
    warm_memory(args.warm_memory_gb)
    tree = TreeCpu().begin()
    started = time.perf_counter()
    user0, system0 = self_cpu()
    run = reduce_nights(
        config, catalog, [(telescope, NIGHT) for telescope in telescopes], workers=args.workers
    )
    elapsed = time.perf_counter() - started
    user, system = self_cpu()
    main_system = system - system0
    main_cpu = user - user0 + main_system
    workers_user, workers_system = tree.stop()
    reports, stages = run.reports, run.seconds
    science = sum(report.frames_reduced + len(report.frames_failed) for report in reports)
    peak_parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"preset {args.preset}, {args.workers} workers, project {project}")
    for report in reports:
        print(" ", report.summary())
    print(
        f"{science} science frames in {elapsed:.1f} s: "
        f"{science / elapsed:.2f} science frames/s end to end"
    )
    print("seconds per stage (wall time over all telescopes; worker: summed in the workers):")
    for stage, seconds in stages.items():
        print(f"  {stage:>20}: {seconds:8.1f}")
    masters_cpu = stages.get("worker:masters cpu", 0.0)
    frames_cpu = stages.get("worker:science cpu", 0.0)
    worker_cpu = masters_cpu + frames_cpu
    print(
        f"processor time: main process {main_cpu:.1f} s, workers {worker_cpu:.1f} s; "
        f"on {args.workers} idle cores at least {(main_cpu + worker_cpu) / args.workers:.1f} s, "
        f"{science * args.workers / (main_cpu + worker_cpu):.2f} frames/s at most"
    )
    print(
        f"CPU per science frame (masters, frames and main process): "
        f"{(main_cpu + worker_cpu) / max(science, 1):.3f} s "
        f"(masters {masters_cpu:.1f} s / frames {frames_cpu:.1f} s / main {main_cpu:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f}: compare processor time, not wall time)"
    )
    every = main_cpu + workers_user + workers_system
    print(
        f"CPU per science frame, every process: {every / max(science, 1):.3f} s (the line"
        f" above plus the pool's start: the forkserver's imports, each worker's start and"
        f" solver loading, {workers_user + workers_system - worker_cpu:.1f} s here; sampled"
        f" from /proc)"
    )
    print(
        f"  of which system time: workers {workers_system:.1f} s of"
        f" {workers_user + workers_system:.1f} s, main process {main_system:.1f} s of"
        f" {main_cpu:.1f} s (sampled from /proc; memory warmed first:"
        f" {args.warm_memory_gb:g} GB)"
    )
    worker_peak = max(report.worker_peak_rss_mb for report in reports)
    print(
        f"peak RSS of a worker {worker_peak:.0f} MB; {args.workers} workers and the main "
        f"process at most {args.workers * worker_peak + peak_parent:.0f} MB"
    )
    print(f"peak RSS of the main process (simulation included): {peak_parent:.0f} MB")
    evaluations = []
    for night in nights:
        evaluation = evaluate_night(night.folder, config.paths.datadir, night.telescope)
        evaluations.append(evaluation)
        print(night.telescope)
        print("  " + evaluation.summary().replace("\n", "\n  "))
        for name, reason in evaluation.failed_eligible.items():
            print(f"  failed: {name}: {reason}")
    pulls = [error / sigma for e in evaluations for _, error, sigma, _ in e.mag_errors if sigma > 0]
    pooled = pull_statistics(pulls)
    print(
        f"target magnitude pulls, all telescopes: n={pooled.n}, rms {pooled.rms:.2f} "
        f"(95% range for correct errors {pooled.low:.2f}-{pooled.high:.2f}), "
        f"MAD width {pooled.mad_width:.2f}, mean {pooled.mean:+.2f}"
    )
    checks = []
    for night in nights:
        checks += evaluate_polarimetry(night.folder, night.telescope)
    print_polarimetry(checks)


def print_polarimetry(checks) -> None:
    """Issue 5's acceptance figures: share within tolerance and pull widths, per instrument."""
    print("polarimetry against truth:")
    for check in checks:
        print("  " + check.line())
    for instrument in sorted({c.instrument for c in checks}):
        mine = [c for c in checks if c.instrument == instrument]
        done = [c for c in mine if not c.error]
        pulls = np.array([v for c in done for v in (c.q_pull, c.u_pull)])
        inside = sum(c.within_tolerance for c in done)
        width = float(np.std(pulls)) if len(pulls) > 1 else float("nan")
        print(
            f"  {instrument}: {len(done)}/{len(mine)} sequences computed, {inside} within "
            f"tolerance; q/u pull width {width:.2f} (n={len(pulls)})"
        )


if __name__ == "__main__":
    main()
