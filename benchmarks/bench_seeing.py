"""Seeing and trailing-test star selection on unbinned 2048x2048 frames, and plate solving.

Simulates the ``unbinned`` preset (OSN-T090 AndorT90 at 1x1, three times the
cosmic-ray rate) and, for every science frame, times on the same detections:

- the selection before (the six brightest clean detections fitted, median a/b of
  the 20 brightest clean ones, no shape test), kept here as the baseline;
- the selection now (:meth:`Detections.seeing_fwhm_px` and
  :meth:`Detections.median_elongation`: shape test, up to eight fits, clipped median);
- a plate solve of the frame's 5-sigma detections (the committed sky index).

    .venv/bin/python benchmarks/bench_seeing.py [--seed 1] [--keep DIR]

Detection runs on raw minus median (no masters), as in benchmarks/bench_quads.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from iopreport.instruments import InstrumentRegistry
from iopreport.reduce.astrometry import PlateSolver, index_files_in
from iopreport.reduce.detect import detect, gaussian_fwhm
from iopreport.simulate import simulate_night
from iopreport.simulate.sky import SKY_INDEX_DIR


def before(detections, image, saturation):
    """The former selection: six brightest clean unsaturated detections, no shape test."""
    good = (detections.flags == 0) & np.isfinite(detections.fwhm_px) & (detections.fwhm_px > 0.8)
    good &= detections.peak < 0.7 * saturation
    guess = float(np.median(detections.fwhm_px[good][:6]))
    half = max(2, int(np.ceil(0.8 * guess)))
    ny, nx = image.shape
    inside = good & (detections.x > half) & (detections.y > half)
    inside &= (detections.x < nx - half - 1) & (detections.y < ny - half - 1)
    fitted = []
    for x, y in zip(detections.x[inside][:6], detections.y[inside][:6], strict=True):
        xi, yi = round(x), round(y)
        cut = image[yi - half : yi + half + 1, xi - half : xi + half + 1]
        fwhm = gaussian_fwhm(cut, x - (xi - half), y - (yi - half), guess / 2)
        if np.isfinite(fwhm) and fwhm > 0.5:
            fitted.append(fwhm)
    clean = (detections.flags == 0) & (detections.peak < 0.7 * saturation)
    elongation = float(np.median(detections.elongation[clean][:20]))
    return (float(np.median(fitted)) if len(fitted) >= 3 else guess), elongation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="simulate into DIR (reused when present)")
    args = parser.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="bench-seeing-"))
    if not list(out.glob("OSN-T090/*/truth.json")):
        simulate_night(
            out, dt.date(2024, 10, 8), telescopes=("OSN-T090",), preset="unbinned", seed=args.seed
        )
    folder = next(out.glob("OSN-T090/*"))
    truth = json.loads((folder / "truth.json").read_text())
    spec = InstrumentRegistry.builtin().get("AndorT90")
    solver = PlateSolver(index_files_in(SKY_INDEX_DIR))
    old_ms, new_ms, solve_s = [], [], []
    print(
        f"{'frame':24s} {'CR px':>6s} {'true':>5s} {'before':>6s} {'now':>5s} "
        f"{'a/b before':>10s} {'a/b now':>7s} {'solve s':>7s}"
    )
    for name, record in sorted(truth["files"].items()):
        if record["imgtype"] != "light":
            continue
        image = fits.getdata(folder / name).astype(np.float32)
        image -= np.float32(np.median(image))
        detections = detect(image)
        started = time.perf_counter()
        old_fwhm, old_elongation = before(detections, image, spec.saturation_adu)
        old_ms.append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        fwhm = detections.seeing_fwhm_px(image, spec.saturation_adu)
        elongation = detections.median_elongation(saturation=spec.saturation_adu)
        new_ms.append(1000 * (time.perf_counter() - started))
        xy = np.column_stack([detections.x, detections.y])
        result = solver.solve(
            xy, scale_arcsec=spec.pixscale_at(1), position=tuple(record["pointing"]), budget_s=60
        )
        solve_s.append(result.seconds)
        true = record["seeing_fwhm_arcsec"] / spec.pixscale_at(1)
        print(
            f"{name:24s} {len(record['cosmic_ray_pixels']):6d} {true:5.2f} {old_fwhm:6.2f} "
            f"{fwhm:5.2f} {old_elongation:10.2f} {elongation:7.2f} {result.seconds:7.3f}"
            + ("" if result.ok else " (no solution)")
        )
    solver.close()
    print(
        f"selection per frame, median: before {statistics.median(old_ms):.1f} ms, "
        f"now {statistics.median(new_ms):.1f} ms "
        f"(added {statistics.median(new_ms) - statistics.median(old_ms):+.1f} ms); "
        f"plate solving median {statistics.median(solve_s):.3f} s per frame"
    )


if __name__ == "__main__":
    main()
