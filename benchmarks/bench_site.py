"""Site build speed and page size on a store of many years of nights.

Usage: python benchmarks/bench_site.py [--sources 200] [--years 10] [--per-night 28]
                                      [--workers 2] [--keep DIR]

Makes a project with ``iopreport init`` in a temporary folder and fills its
store as ``reduce`` would: every night at OSN-T090 has calibration frames
(10 bias, 12 flats, 3 masters) and ``--per-night`` sources observed, each with
B, V, R and I photometry (one raw frame each) and one R polarimetry result
(four raw frames), 3 % of the results flagged. The defaults give 200 sources,
3,650 nights, 511,000 results and 1.2 million raw frames. Then it measures

* a full build (``render_site(config, full=True)``),
* an incremental build with nothing changed,
* an incremental build after one new night was added,
* the size of the largest source page (without plotly.js, which is served once
  from static/) and of the whole site,

and prints them with the peak memory of the process. Targets: full
build under 60 s, incremental under 5 s, a source page under 1.5 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import shutil
import tempfile
import time
from pathlib import Path

from iopreport.config import load_config
from iopreport.site import render_site
from iopreport.skeleton import init_project
from iopreport.store import (
    AstroSource,
    Epoch,
    MasterBias,
    MasterFlat,
    PhotoPolResult,
    RawFit,
    ReducedFitFlags,
    ResultFlags,
    open_store,
)
from iopreport.store.models import ReducedFit

TELESCOPE = "OSN-T090"
INSTRUMENT = "AndorT90"
BANDS = ("B", "V", "R", "I")
ANGLES = (0.0, 45.0, 90.0, -45.0)
FLAGGED_FRACTION = 0.03
FIRST_NIGHT = dt.date(2015, 1, 1)
BATCH = 5000
ORDER = (RawFit, ReducedFit, MasterBias, MasterFlat, PhotoPolResult)


def _jd(night: dt.date, hours: float) -> float:
    return 2440587.5 + (night - dt.date(1970, 1, 1)).days + 0.5 + hours / 24


class _Writer:
    """Bulk inserts in batches, one list per model."""

    def __init__(self) -> None:
        self.rows: dict = {}
        self.next_raw = (RawFit.select(RawFit.id).order_by(RawFit.id.desc()).scalar() or 0) + 1

    def add(self, model, row: dict) -> None:
        rows = self.rows.setdefault(model, [])
        rows.append(row)
        if len(rows) >= BATCH:
            self.flush(model)

    def raw(self, row: dict) -> int:
        row["id"] = self.next_raw
        self.next_raw += 1
        self.add(RawFit, row)
        return row["id"]

    def flush(self, model=None) -> None:
        """Insert what is pending (raw frames first: reduced frames refer to them)."""
        models = [model] if model is not None else [*ORDER]
        for each in models:
            if each is not RawFit and self.rows.get(RawFit):
                self._insert(RawFit)
            self._insert(each)

    def _insert(self, model) -> None:
        """executemany on the raw connection: a million rows in seconds, not minutes."""
        rows = self.rows.pop(model, [])
        if not rows:
            return
        fields = {f.name: f for f in model._meta.sorted_fields}
        names = sorted({key for row in rows for key in row})
        columns = ", ".join(fields[n].column_name for n in names)
        marks = ", ".join("?" * len(names))
        defaults = {n: fields[n].default for n in names}
        values = [
            tuple(
                fields[n].db_value(
                    row[n] if n in row else (d() if callable(d := defaults[n]) else d)
                )
                for n in names
            )
            for row in rows
        ]
        missing = [f for f in model._meta.sorted_fields if f.name not in names and f.name != "id"]
        extra = [f for f in missing if f.default is not None]
        if extra:
            columns += ", " + ", ".join(f.column_name for f in extra)
            marks += ", " + ", ".join("?" * len(extra))
            fill = tuple(
                f.db_value(f.default() if callable(f.default) else f.default) for f in extra
            )
            values = [v + fill for v in values]
        sql = f"INSERT INTO {model._meta.table_name} ({columns}) VALUES ({marks})"
        model._meta.database.connection().executemany(sql, values)


def add_night(writer: _Writer, night: dt.date, sources: list, per_night: int, rng) -> int:
    """One night as reduce leaves it; returns the number of results written."""
    epoch = Epoch.create(telescope=TELESCOPE, night=night, flags=15)
    base = {"epoch": epoch.id, "instrument": INSTRUMENT, "flags": 3, "binning": "2x2"}
    for k in range(10):
        writer.raw(
            {
                **base,
                "filename": f"bias-{k:03d}.fits",
                "imgtype": "bias",
                "exptime": 0.0,
                "juliandate": _jd(night, -2 + k / 100),
                "imgsize": "1024x1024",
            }
        )
    for k in range(12):
        writer.raw(
            {
                **base,
                "filename": f"flat-{k:03d}-{BANDS[k % 4]}.fits",
                "imgtype": "flat",
                "band": BANDS[k % 4],
                "obsmode": "photometry",
                "exptime": 2.0,
                "juliandate": _jd(night, -1 + k / 100),
                "imgsize": "1024x1024",
            }
        )
    writer.add(
        MasterBias,
        {
            "epoch": epoch.id,
            "filename": f"mb/{night}.fits",
            "instrument": INSTRUMENT,
            "imgsize": "1024x1024",
            "binning": "2x2",
            "n_frames": 10,
            "level": 300.0,
            "noise": 4.0,
        },
    )
    for band in ("R", "V"):
        writer.add(
            MasterFlat,
            {
                "epoch": epoch.id,
                "filename": f"mf/{night}-{band}.fits",
                "instrument": INSTRUMENT,
                "imgsize": "1024x1024",
                "binning": "2x2",
                "n_frames": 3,
                "level": 1.0,
                "noise": 0.01,
                "band": band,
                "obsmode": "photometry",
            },
        )
    results = 0
    hours = 0.0
    for source in rng.sample(sources, per_night):
        light = {
            **base,
            "imgtype": "light",
            "object_name": source.name,
            "target": source.id,
            "imgsize": "1024x1024",
        }
        fileloc = f"{TELESCOPE}/{night}"
        for band in BANDS:
            hours += 0.02
            name = f"{source.name}-{band}-{hours:.2f}.fits"
            rid = writer.raw(
                {
                    **light,
                    "filename": name,
                    "band": band,
                    "obsmode": "photometry",
                    "exptime": 60.0,
                    "juliandate": _jd(night, hours),
                }
            )
            writer.add(
                ReducedFit,
                {
                    "rawfit": rid,
                    "filename": f"red/{night}/{name}",
                    "flags": 7,
                    "seeing_fwhm_arcsec": 1.5,
                    "n_detected": 80,
                },
            )
            flagged = rng.random() < FLAGGED_FRACTION
            writer.add(
                PhotoPolResult,
                {
                    "astrosource": source.id,
                    "epoch": epoch.id,
                    "members_key": f"{fileloc}/{name}",
                    "mode": "photometry",
                    "method": "relphot",
                    "instrument": INSTRUMENT,
                    "band": band,
                    "exptime": 60.0,
                    "juliandate": _jd(night, hours),
                    "juliandate_min": _jd(night, hours),
                    "juliandate_max": _jd(night, hours),
                    "n_frames": 1,
                    "mag": 15 + rng.gauss(0, 0.3),
                    "mag_err": 0.02,
                    "n_calibrators": 3,
                    "flags": int(ResultFlags.LARGE_MAG_ERROR) if flagged else 0,
                    "flag_reasons": ["magnitude error above limit"] if flagged else [],
                },
            )
            results += 1
        members = []
        for angle in ANGLES:
            hours += 0.01
            name = f"{source.name}-pol{angle:+.0f}-{hours:.2f}.fits"
            rid = writer.raw(
                {
                    **light,
                    "filename": name,
                    "band": "R",
                    "obsmode": "polarimetry",
                    "angle": angle,
                    "exptime": 120.0,
                    "juliandate": _jd(night, hours),
                }
            )
            writer.add(
                ReducedFit,
                {
                    "rawfit": rid,
                    "filename": f"red/{night}/{name}",
                    "flags": int(ReducedFitFlags.CALIBRATED),
                },
            )
            members.append(f"{fileloc}/{name}")
        p = abs(rng.gauss(0.08, 0.03))
        chi = rng.uniform(0, 180)
        flagged = rng.random() < FLAGGED_FRACTION
        writer.add(
            PhotoPolResult,
            {
                "astrosource": source.id,
                "epoch": epoch.id,
                "members_key": PhotoPolResult.make_members_key(members),
                "mode": "polarimetry",
                "method": "osn-wheel",
                "instrument": INSTRUMENT,
                "band": "R",
                "exptime": 120.0,
                "juliandate": _jd(night, hours),
                "juliandate_min": _jd(night, hours - 0.04),
                "juliandate_max": _jd(night, hours),
                "n_frames": 4,
                "mag": 15 + rng.gauss(0, 0.3),
                "mag_err": 0.03,
                "q": p * 0.6,
                "q_err": 0.004,
                "u": p * 0.8,
                "u_err": 0.004,
                "p": p,
                "p_err": 0.004,
                "chi": chi,
                "chi_err": 1.5,
                "manual_flags": 1 if flagged else 0,
                "flag_reasons": ["curator: clouds"] if flagged else [],
            },
        )
        results += 1
    return results


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--per-night", type=int, default=28)
    parser.add_argument("--workers", type=int, default=2, help="render processes")
    parser.add_argument(
        "--keep", type=Path, help="keep the filled project here and reuse it on the next run"
    )
    args = parser.parse_args()
    if args.keep:
        run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory() as folder:
            run(args, Path(folder))


def run(args, folder: Path) -> None:
    """Fill (unless ``folder`` already holds a filled project) and measure."""
    rng = random.Random(1)
    project = folder / "site"
    reuse = (project / "filled").is_file()
    if not reuse:
        init_project(project)
    for name in ("templates", "static"):  # use the installed templates, never stale copies
        shutil.rmtree(project / name, ignore_errors=True)
    config = load_config(project / "config.toml")
    database = open_store(config.database_path)
    if not reuse:
        sources = [
            AstroSource.create(
                name=f"SRC {i:04d}+{i % 90:02d}",
                srctype="blazar",
                ra_deg=i * 1.8,
                dec_deg=i % 90,
                mag_R=15.0,
            )
            for i in range(args.sources)
        ]
        nights = [FIRST_NIGHT + dt.timedelta(days=d) for d in range(365 * args.years)]
        start = time.perf_counter()
        writer = _Writer()
        count = 0
        with database.atomic():
            for night in nights:
                count += add_night(writer, night, sources, args.per_night, rng)
            writer.flush()
        fill_s = time.perf_counter() - start
        raws = RawFit.select().count()
        print(
            f"store: {len(sources)} sources, {len(nights)} nights, {count} results, "
            f"{raws} raw frames, filled in {fill_s:.0f} s"
        )
        (project / "filled").write_text("yes")
    full = render_site(config, full=True, workers=args.workers)
    print(
        f"full build: {full.seconds:.1f} s ({full.pages_rendered} pages, "
        f"{full.sources} sources, {full.nights} nights, {args.workers} workers)"
    )
    same = render_site(config, workers=args.workers)
    print(
        f"incremental, nothing changed: {same.seconds:.1f} s "
        f"({same.pages_rendered} rendered, {same.pages_kept} kept)"
    )
    sources = list(AstroSource.select().order_by(AstroSource.id))
    last = Epoch.select().order_by(Epoch.night.desc()).first().night
    writer = _Writer()
    with database.atomic():
        add_night(writer, last + dt.timedelta(days=1), sources, args.per_night, rng)
        writer.flush()
    new = render_site(config, workers=args.workers)
    print(
        f"incremental, one new night: {new.seconds:.1f} s "
        f"({new.pages_rendered} rendered, {new.pages_kept} kept)"
    )
    site = Path(config.paths.site_dir)
    pages = sorted((site / "sources").glob("*.html"), key=lambda p: p.stat().st_size)
    largest = pages[-1]
    points = sum(1 for _ in largest.read_text().split("],[")) if largest else 0
    print(
        f"largest source page: {largest.stat().st_size / 1e6:.2f} MB ({largest.name}, "
        f"about {points} points; plotly.js not included)"
    )
    nights_pages = list((site / "nights").rglob("*.html"))
    mean_night = sum(p.stat().st_size for p in nights_pages) / len(nights_pages)
    print(
        f"night page: {mean_night / 1e3:.0f} kB on average; whole site {_size(site) / 1e6:.0f} MB"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
