"""Does the plate solver's memory grow over many solves? (``processing.solver_recycle_frames``)

Usage: python benchmarks/bench_solver_memory.py DIR [--solves 1000]

``DIR`` is a folder of ``bench_reduce.py --keep DIR`` (a reduced simulated
night). The frames it plate-solved, except the Wollaston ones, are detected
again and solved over and over by one :class:`PlateSolver`, as a worker does,
in three kinds: with the frame's scale and position (they solve), with a scale
50% off (they fail after searching), and blind (no position). The resident
memory of this process is printed after each pass over the frames.

IOP4 forks a process for every solve to contain a leak reported upstream
(astrometry.net through the ``astrometry`` package, neuromorphicsystems/astrometry
issue 6); iopreport keeps one solver per worker and replaces the workers after
``solver_recycle_frames`` frames each. This measures how much that bound needs
to hold.
"""

from __future__ import annotations

import argparse
import os
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from iopreport.config import load_config
from iopreport.reduce.astrometry import PlateSolver, index_files_in
from iopreport.reduce.detect import detect
from iopreport.reduce.memory import keep_freed_memory


def resident_mb() -> float:
    """This process's resident memory (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path, help="the --keep folder of bench_reduce.py")
    parser.add_argument("--solves", type=int, default=1000, help="solves that succeed")
    args = parser.parse_args()
    keep_freed_memory()  # as in a worker
    config = load_config(args.folder / "site" / "config.toml")
    solver = PlateSolver(index_files_in(config.paths.astrometry_index_dir))
    cases = []
    for path in sorted(config.paths.datadir.glob("calibration/*/*/*/ReducedFit/*.fits")):
        header = fits.getheader(path)
        if header.get("IOPASTRO") != "solved" or "IOPPAIRX" in header:
            continue
        wcs = WCS(header, relax=True)
        found = detect(fits.getdata(path).astype(np.float32))
        scale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600)
        cases.append((np.column_stack([found.x, found.y]), scale, tuple(wcs.wcs.crval)))
    if not cases:
        raise SystemExit(f"{args.folder}: no plate-solved frames (run bench_reduce.py --keep)")
    print(f"astrometry {version('astrometry')}; {len(cases)} frames; {resident_mb():.1f} MB")
    kinds = (
        ("solving", 1.0, True, max(1, args.solves // len(cases))),
        ("failing (scale 50% off)", 1.5, True, 2),
        ("blind (no position)", 1.0, False, 1),
    )
    done = 0
    for label, factor, hinted, passes in kinds:
        for _ in range(passes):
            clock, solved = time.perf_counter(), 0
            for xy, scale, position in cases:
                result = solver.solve(
                    xy,
                    scale_arcsec=scale * factor,
                    position=position if hinted else None,
                    budget_s=5.0,
                )
                solved += result.ok
            done += len(cases)
            print(
                f"{label}: {solved}/{len(cases)} solved in {time.perf_counter() - clock:.1f} s;"
                f" after {done} solves in all, resident memory {resident_mb():.1f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
