"""Simulator speed: time, frames per second, disk and peak memory for a preset night.

Usage: python benchmarks/bench_simulate.py [--preset full] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import tempfile
import time
from pathlib import Path

from iopreport.simulate import simulate_night


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="full", choices=("tiny", "small", "full"))
    parser.add_argument("--out", type=Path, default=None, help="keep the night here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-sim-"))
    start = time.perf_counter()
    nights = simulate_night(out, dt.date(2024, 10, 8), preset=args.preset, seed=1)
    elapsed = time.perf_counter() - start
    files = [f for night in nights for f in night.files]
    size = sum(f.stat().st_size for f in files)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"preset {args.preset}: {len(files)} raw files, {size / 1e9:.2f} GB, {elapsed:.1f} s")
    print(f"{len(files) / elapsed:.2f} frames/s, {size / 1e6 / elapsed:.0f} MB/s written")
    for night in nights:
        print(f"  {night.telescope}: {len(night.files)} files")
    print(f"peak RSS {peak:.0f} MB")
    if args.out is None:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
