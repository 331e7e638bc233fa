"""Store throughput: bulk-insert results and run the per-source query the site makes.

Usage: python benchmarks/bench_store.py [--sources 200] [--results 500000]

Prints insert rate, the time to read every result of one source and of one
night, the query plans (to show the indexes are used), file size and peak
memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import tempfile
import time
from pathlib import Path

from iopreport.store import AstroSource, Epoch, PhotoPolResult, open_store, source_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--results", type=int, default=500_000)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        database = open_store(path)
        sources = [
            AstroSource.create(name=f"SRC{i:04d}", srctype="blazar", ra_deg=i, dec_deg=10.0)
            for i in range(args.sources)
        ]
        nights = [dt.date(2015, 1, 1) + dt.timedelta(days=d) for d in range(3650)]
        epochs = [Epoch.create(telescope="OSN-T090", night=night) for night in nights]
        per_night = max(1, args.results // len(epochs))
        start = time.perf_counter()
        batch = []
        count = 0
        with database.atomic():
            for epoch in epochs:
                jd0 = 2440587.5 + (epoch.night - dt.date(1970, 1, 1)).days + 0.9
                for k in range(per_night):
                    source = sources[rng.randrange(len(sources))]
                    batch.append(
                        {
                            "astrosource": source.id,
                            "epoch": epoch.id,
                            "members_key": f"{epoch.epochname}/f{k:04d}.fits",
                            "mode": "photometry",
                            "method": "relphot",
                            "instrument": "AndorT90",
                            "band": "R",
                            "juliandate": jd0 + k * 1e-3,
                            "juliandate_min": jd0,
                            "juliandate_max": jd0,
                            "mag": 14 + rng.random(),
                            "mag_err": 0.02,
                        }
                    )
                    count += 1
                    if len(batch) == 5000:
                        PhotoPolResult.insert_many(batch).execute()
                        batch = []
            if batch:
                PhotoPolResult.insert_many(batch).execute()
        insert_s = time.perf_counter() - start

        start = time.perf_counter()
        rows = list(source_results(sources[7]).dicts())
        source_s = time.perf_counter() - start
        start = time.perf_counter()
        night_rows = list(
            PhotoPolResult.select().where(PhotoPolResult.epoch == epochs[100]).dicts()
        )
        night_s = time.perf_counter() - start
        plan = database.execute_sql(
            "EXPLAIN QUERY PLAN SELECT * FROM photo_pol_result WHERE astrosource_id = ? "
            "ORDER BY juliandate",
            (sources[7].id,),
        ).fetchall()
        database.close()
        size_mb = path.stat().st_size / 1e6
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"inserted {count} results in {insert_s:.1f} s ({count / insert_s:,.0f} rows/s)")
    print(f"one source: {len(rows)} results read in {source_s * 1e3:.0f} ms")
    print(f"one night: {len(night_rows)} results read in {night_s * 1e3:.1f} ms")
    print("plan (source + time):", "; ".join(str(step[-1]) for step in plan))
    print(f"database file {size_mb:.0f} MB; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
