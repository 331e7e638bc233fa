"""Speed of a build's flag step on a big store.

Usage: python benchmarks/bench_flags.py [--sources 200] [--results 500000] [--flags 100]

Makes a store like benchmarks/bench_store.py (photometry results of many
sources over 10 years, each with its raw frame and member row), a flags file
with ``--flags`` manual flags of every kind (a few frame flags), and times
what ``iopreport build`` does with them: automatic flags and manual flags,
first application (rows change) and again (nothing changes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import tempfile
import time
from pathlib import Path

from iopreport.config import QualityConfig
from iopreport.flags.automatic import apply_automatic_flags
from iopreport.flags.manual import apply_flags
from iopreport.flags.parse import flags_from_source
from iopreport.store import (
    AstroSource,
    Epoch,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    open_store,
)
from iopreport.tomlsource import TomlSource


def fill(database, n_sources: int, n_results: int, rng: random.Random) -> list[str]:
    sources = [
        AstroSource.create(name=f"SRC{i:04d}", srctype="blazar", ra_deg=i, dec_deg=10.0)
        for i in range(n_sources)
    ]
    nights = [dt.date(2015, 1, 1) + dt.timedelta(days=d) for d in range(3650)]
    per_night = max(1, n_results // len(nights))
    files = []
    with database.atomic():
        for night in nights:
            epoch = Epoch.create(telescope="OSN-T090", night=night)
            jd0 = 2440587.5 + (night - dt.date(1970, 1, 1)).days + 0.9
            raws, results = [], []
            for k in range(per_night):
                name = f"f{k:04d}.fits"
                band = "RV"[k % 2]
                raws.append(
                    {
                        "epoch": epoch.id,
                        "filename": name,
                        "imgtype": "light",
                        "obsmode": "photometry",
                        "band": band,
                        "instrument": "AndorT90",
                        "juliandate": jd0 + k * 1e-3,
                        "flags": 3,
                    }
                )
                results.append(
                    {
                        "astrosource": sources[rng.randrange(n_sources)].id,
                        "epoch": epoch.id,
                        "members_key": f"{epoch.epochname}/{name}",
                        "mode": "photometry",
                        "method": "relphot",
                        "instrument": "AndorT90",
                        "band": band,
                        "juliandate": jd0 + k * 1e-3,
                        "juliandate_min": jd0 + k * 1e-3,
                        "juliandate_max": jd0 + k * 1e-3,
                        "mag": 14 + rng.random(),
                        "mag_err": rng.choice((0.02, 0.03, 0.5)),
                        "n_calibrators": rng.choice((1, 3, 4)),
                    }
                )
                files.append(f"{epoch.epochname}/{name}")
            RawFit.insert_many(raws).execute()
            PhotoPolResult.insert_many(results).execute()
            raw_ids = {r.filename: r.id for r in RawFit.select().where(RawFit.epoch == epoch)}
            PhotoPolMember.insert_many(
                [
                    {"result": r.id, "rawfit": raw_ids[r.members_key.rsplit("/", 1)[1]]}
                    for r in PhotoPolResult.select().where(PhotoPolResult.epoch == epoch)
                ]
            ).execute()
    return files


def flags_text(n_flags: int, n_sources: int, files: list[str], rng: random.Random) -> str:
    blocks = []
    for i in range(n_flags):
        night = dt.date(2015, 1, 1) + dt.timedelta(days=rng.randrange(3650))
        kind = i % 5
        lines = [f'id = "F{i:04d}"']
        if kind == 0:
            lines += ['what = "photometry"', f'source = "SRC{rng.randrange(n_sources):04d}"']
            lines += [f"night = {night}"]
        elif kind == 1:
            lines += ['what = "photometry"', f'source = "SRC{rng.randrange(n_sources):04d}"']
            lines += ['band = "V"']
        elif kind == 2:
            lines += ['what = "photometry"', f'from = "{night}T21:00:00"']
            lines += [f'to = "{night}T23:00:00"']
        elif kind == 3:
            lines += ['what = "photometry"', f'file = "{rng.choice(files)}"']
        else:
            lines += ['what = "frame"', f'file = "{rng.choice(files)}"']
        lines += ['reason = "benchmark"', 'author = "bench"', "date = 2024-01-01"]
        blocks.append("[[flag]]\n" + "\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def timed(label: str, function, *args):
    start = time.perf_counter()
    value = function(*args)
    print(f"{label}: {time.perf_counter() - start:.2f} s; {value.summary()}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--results", type=int, default=500_000)
    parser.add_argument("--flags", type=int, default=100)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        database = open_store(Path(folder) / "bench.db")
        start = time.perf_counter()
        files = fill(database, args.sources, args.results, rng)
        print(f"store: {len(files)} results with frames in {time.perf_counter() - start:.1f} s")
        text = flags_text(args.flags, args.sources, files, rng)
        start = time.perf_counter()
        flagset = flags_from_source(TomlSource.from_text(text, "flags.toml"))
        print(f"parse {len(flagset)} flags: {time.perf_counter() - start:.3f} s")
        quality = QualityConfig()
        timed("automatic flags, first", apply_automatic_flags, quality)
        timed("automatic flags, again", apply_automatic_flags, quality)
        timed("manual flags, first", apply_flags, flagset)
        timed("manual flags, again", apply_flags, flagset)
        database.close()
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
