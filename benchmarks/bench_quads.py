"""DIPOL polarimetry sub-frames: quad-matching astrometry against simulated truth.

Simulates OSN-T090 nights (preset small: DIPOL at 4x4; full: at 2x2) and,
for every DIPOL polarimetry sub-frame, matches its detections against the
DIPOL photometry frame of the same target (reference WCS: the photometry
frame's true WCS, standing in for its astrometry.net solution), derives the
sub-frame WCS of both beams and compares them with the sub-frame's true WCS
at the target and the corners. The central-pair fallback is measured on
every frame too.

    .venv/bin/python benchmarks/bench_quads.py --seeds 1 2 3 4 5 6
    .venv/bin/python benchmarks/bench_quads.py --preset full --seeds 1 2

Detection runs on raw minus median (no masters), as in tests/test_quads.py.
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
from astropy.wcs import WCS

from iopreport.instruments import InstrumentRegistry
from iopreport.reduce.astrometry import find_pairs, pair_wcs
from iopreport.reduce.beammodel import default_scatter
from iopreport.reduce.centralpair import central_pair_wcs
from iopreport.reduce.detect import detect
from iopreport.reduce.quads import match_to_reference
from iopreport.reduce.quadwcs import rotation_from_wcs, wcs_from_reference
from iopreport.simulate import simulate_night
from iopreport.simulate.night import simulator_catalog

NIGHT = dt.date(2024, 10, 8)
#: Reference sources searched this far around the sub-frame's cut (pointing
#: differences between the frames), in pixels at 2x2 binning.
WINDOW_MARGIN_2X2 = 200


def _detections(path: Path):
    data = fits.getdata(path).astype(float)
    return data, detect(data - np.median(data))


def _errors(wcs: WCS, true: WCS, points: np.ndarray) -> np.ndarray:
    found = wcs.pixel_to_world(points[:, 0], points[:, 1])
    truth = true.pixel_to_world(points[:, 0], points[:, 1])
    return found.separation(truth).arcsec


def measure_night(folder: Path) -> list[dict]:
    """One row per DIPOL polarimetry frame of a simulated night folder."""
    truth = json.loads((folder / "truth.json").read_text())
    files = truth["files"]
    spec = InstrumentRegistry.builtin().get("DIPOL")
    catalog = simulator_catalog()
    photometry: dict[str, list[str]] = {}
    for name, record in sorted(files.items()):
        dipol = record["instrument"] == "DIPOL" and record["imgtype"] == "light"
        if dipol and record["obsmode"] == "photometry":
            photometry.setdefault(record["target"], []).append(name)
    references = {}
    rows = []
    for name, record in sorted(files.items()):
        dipol = record["instrument"] == "DIPOL" and record["imgtype"] == "light"
        if not dipol or record["obsmode"] != "polarimetry":
            continue
        started = time.perf_counter()
        data, found = _detections(folder / name)
        detect_s = time.perf_counter() - started
        ny, nx = data.shape
        target = next(t for t in record["targets"] if t["name"] == record["target"])
        o_xy = (target["beams"][0]["x"], target["beams"][0]["y"])
        e_xy = (target["beams"][1]["x"], target["beams"][1]["y"])
        points = np.array([o_xy, (0, 0), (nx - 1, 0), (0, ny - 1), (nx - 1, ny - 1)])
        true_o = WCS(fits.Header(record["wcs"]))
        true_e = WCS(fits.Header(record["wcs_pair"]))
        radec = tuple(float(v) for v in true_o.pixel_to_world_values(*o_xy))
        offset = spec.oe_offset_at(record["binning"])
        if record["flip"]:
            offset = (offset[0], -offset[1])
        window = record["window"]
        row = {
            "file": name,
            "target": record["target"],
            "flip": record["flip"],
            "n_sub": len(found),
            "detect_s": detect_s,
        }
        candidates = photometry.get(record["target"], [])
        candidates = sorted(candidates, key=lambda n: (not n.endswith("R.fit"), n))
        rotation, flip = spec.sky_rotation_deg, record["flip"]
        expected = None
        if candidates:
            ref_name = candidates[0]
            if ref_name not in references:
                references[ref_name] = _detections(folder / ref_name)
            ref_data, ref_found = references[ref_name]
            ref_record = files[ref_name]
            ref_wcs = WCS(fits.Header(ref_record["wcs"]))
            rotation, flip = rotation_from_wcs(ref_wcs)
            ref_o = ref_wcs.world_to_pixel_values(*radec)
            expected = (float(ref_o[0]) - window["x0"], float(ref_o[1]) - window["y0"])
            margin = WINDOW_MARGIN_2X2 * 2 / record["binning"]
            started = time.perf_counter()
            started_cpu = time.process_time()
            match = match_to_reference(
                np.column_stack([found.x, found.y]),
                found.flux,
                np.column_stack([ref_found.x, ref_found.y]),
                ref_found.flux,
                flip=record["flip"] != ref_record["flip"],
                scale_ratio=record["binning"] / ref_record["binning"],
                oe_offset=offset,
                ref_window=(
                    window["x0"] - margin,
                    window["y0"] - margin,
                    window["x0"] + window["nx"] + margin,
                    window["y0"] + window["ny"] + margin,
                ),
                ref_shape=ref_data.shape,
            )
            row["reference"] = ref_name
            if match is not None:
                wcs_o = wcs_from_reference(ref_wcs, match.transform, data.shape)
                pairs = find_pairs(found.x, found.y, offset, default_scatter(offset))
                wcs_e = pair_wcs(wcs_o, pairs.offset if pairs else offset)
                row["match_s"] = time.perf_counter() - started
                row["match_cpu_s"] = time.process_time() - started_cpu
                row["quads_error_o"] = _errors(wcs_o, true_o, points).tolist()
                e_points = points.copy()
                e_points[0] = e_xy
                row["quads_error_e"] = _errors(wcs_e, true_e, e_points).tolist()
                row["n_matched"] = match.n_matched
                row["rms_px"] = match.rms_px
            else:
                row["match_s"] = time.perf_counter() - started
        source = catalog.get(record["target"])
        field = [(catalog.get(n).ra_deg, catalog.get(n).dec_deg) for n in source.calibrators]
        variants = {"fallback": {}, "fallback_field": {"field_radec": field or None}}
        if expected is not None:
            variants["fallback_hint"] = {"expected_o_xy": expected}
        for label, extra in variants.items():
            wcs = central_pair_wcs(
                found,
                data.shape,
                radec,
                offset,
                rotation,
                flip,
                spec.pixscale_at(record["binning"]),
                **extra,
            )
            row[label] = None if wcs is None else _errors(wcs, true_o, points).tolist()
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> None:
    with_reference = [r for r in rows if "reference" in r]
    solved = [r for r in with_reference if "quads_error_o" in r]
    print(f"DIPOL polarimetry frames: {len(rows)}; with a photometry frame: {len(with_reference)}")
    if with_reference:
        print(f"quads: {len(solved)}/{len(with_reference)} solved")
    if solved:
        target = [r["quads_error_o"][0] for r in solved]
        worst = [max(r["quads_error_o"] + r["quads_error_e"]) for r in solved]
        match_s = [r["match_s"] for r in with_reference]
        cpu_s = [r["match_cpu_s"] for r in solved]
        print(
            f'  WCS error at the target (O): median {statistics.median(target):.3f}", '
            f'max {max(target):.3f}"; worst of O/E target and corners: '
            f'median {statistics.median(worst):.3f}", max {max(worst):.3f}"'
        )
        print(
            f"  matched sources median {statistics.median(r['n_matched'] for r in solved)}, "
            f"rms median {statistics.median(r['rms_px'] for r in solved):.3f} px"
        )
        print(
            f"  time per frame: match + WCS median {statistics.median(match_s):.3f} s, "
            f"max {max(match_s):.3f} s (CPU median {statistics.median(cpu_s):.3f} s); "
            "detection median "
            f"{statistics.median(r['detect_s'] for r in rows):.3f} s"
        )
    for label in ("fallback", "fallback_field", "fallback_hint"):
        tried = [r for r in rows if label in r]
        good = [r for r in tried if r[label] is not None and r[label][0] < 1.0]
        if not tried:
            continue
        corners = [max(r[label][1:]) for r in good]
        text = f'{label}: target within 1" on {len(good)}/{len(tried)}'
        if corners:
            text += (
                f'; corner error median {statistics.median(corners):.2f}", max {max(corners):.2f}"'
            )
        print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument(
        "--preset", default="small", help="small: DIPOL at 4x4; full: at 2x2 (slower, ~1 GB)"
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the simulated nights here")
    parser.add_argument("--json", type=Path, default=None, help="write every row here")
    parser.add_argument(
        "--reuse", action="store_true", help="measure nights already simulated under --out"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-quads-"))
    rows = []
    for seed in args.seeds:
        night_dir = out / f"{args.preset}-seed{seed}"
        folder = night_dir / "OSN-T090" / NIGHT.strftime("%Y%m%d")
        if not (args.reuse and (folder / "truth.json").is_file()):
            (result,) = simulate_night(
                night_dir, NIGHT, telescopes=("OSN-T090",), preset=args.preset, seed=seed
            )
            folder = result.folder
        night_rows = measure_night(folder)
        for row in night_rows:
            row["seed"] = seed
        rows.extend(night_rows)
        print(f"seed {seed}:")
        summarize(night_rows)
    print("all seeds:")
    summarize(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
