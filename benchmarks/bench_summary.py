"""Night summary speed on a large store: content, plots, rendering, message size.

Usage: python benchmarks/bench_summary.py [--sources 200] [--years 10] [--tonight 30]

Builds a store like benchmarks/bench_store.py (every source observed on
random nights over the years, photometry and polarimetry), then times the
summary of the last night, where ``--tonight`` sources were observed: the
store queries, the plots, the HTML/text rendering and the MIME message, and
prints the message size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from iopreport.config import SmtpConfig, SubscriberConfig, load_config
from iopreport.mail.content import build_night_summary
from iopreport.mail.message import build_message
from iopreport.mail.render import render_summary
from iopreport.skeleton import init_project
from iopreport.store import AstroSource, Epoch, PhotoPolResult, open_store


def _row(rng, source, epoch, k, mode):
    jd = 2440587.5 + (epoch.night - dt.date(1970, 1, 1)).days + 0.9 + k * 1e-3
    row = {
        "astrosource": source.id,
        "epoch": epoch.id,
        "members_key": f"{epoch.epochname}/{mode[0]}{k:05d}.fits",
        "mode": mode,
        "method": "relphot" if mode == "photometry" else "osn-wheel",
        "instrument": "AndorT90",
        "band": "R",
        "juliandate": jd,
        "juliandate_min": jd,
        "juliandate_max": jd,
    }
    if mode == "photometry":
        row.update(mag=14 + rng.random(), mag_err=0.02)
    else:
        row.update(p=0.05 + 0.1 * rng.random(), p_err=0.005, chi=180 * rng.random(), chi_err=2.0)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--tonight", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / "site"
        init_project(project)
        config = load_config(project / "config.toml")
        database = open_store(config.database_path)
        sources = [
            AstroSource.create(name=f"SRC{i:04d}", srctype="blazar", ra_deg=i, dec_deg=10.0)
            for i in range(args.sources)
        ]
        last = dt.date(2024, 10, 8)
        nights = [last - dt.timedelta(days=d) for d in range(365 * args.years)][::-1]
        start = time.perf_counter()
        count = 0
        with database.atomic():
            batch = []
            for epoch_night in nights:
                epoch = Epoch.create(telescope="OSN-T090", night=epoch_night)
                observed = (
                    sources[: args.tonight]
                    if epoch_night == last
                    else rng.sample(sources, k=min(len(sources), 60))
                )
                for k, source in enumerate(observed):
                    for mode in ("photometry", "polarimetry"):
                        batch.append(_row(rng, source, epoch, k, mode))
                if len(batch) > 5000:
                    PhotoPolResult.insert_many(batch).execute()
                    count += len(batch)
                    batch = []
            PhotoPolResult.insert_many(batch).execute()
            count += len(batch)
        insert_s = time.perf_counter() - start

        start = time.perf_counter()
        plain = build_night_summary(config, last, plots=False)
        content_s = time.perf_counter() - start
        start = time.perf_counter()
        summary = build_night_summary(config, last)
        with_plots_s = time.perf_counter() - start
        start = time.perf_counter()
        rendered = render_summary(summary, config.paths.templates_dir)
        render_s = time.perf_counter() - start
        subscriber = SubscriberConfig(name="all", to=("a@example.org",))
        start = time.perf_counter()
        outgoing = build_message(summary, subscriber, SmtpConfig(), config.paths.templates_dir)
        size = len(outgoing.message.as_bytes())
        message_s = time.perf_counter() - start
        database.close()

    history = sum(len(line.points) for line in summary.sources)
    print(f"store: {count:,} results of {args.sources} sources over {len(nights)} nights "
          f"({insert_s:.1f} s to insert)")  # fmt: skip
    print(f"tonight: {len(plain.sources)} sources, {len(plain.alerts)} alerts, "
          f"{history:,} points in the 30-day plots")  # fmt: skip
    print(f"content without plots: {content_s:.2f} s "
          f"({content_s / max(1, len(plain.sources)) * 1e3:.0f} ms per source)")  # fmt: skip
    per_plot = (with_plots_s - content_s) / max(1, len(summary.sources))
    print(f"content with plots: {with_plots_s:.2f} s ({per_plot * 1e3:.0f} ms per plot)")
    print(f"render HTML + text: {render_s * 1e3:.0f} ms ({len(rendered.html):,} + "
          f"{len(rendered.text):,} characters)")  # fmt: skip
    print(f"MIME message: {message_s * 1e3:.0f} ms, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
