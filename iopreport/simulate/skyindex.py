"""Build the astrometry.net index files of the simulated sky (committed in iopreport/data).

Usage::

    python -m iopreport.simulate.skyindex [--sky PATH] [--out DIR]

Needs Debian's ``build-astrometry-index`` (``apt-get install astrometry.net``);
the files it writes are committed, so nothing else needs it. One index file
per field and quad-size preset: presets -3..2 cover fields from about 3' to
the 13.2' of the AndorT90 (astrometry.net's documentation: -1..3 for 13'
fields, -3..1 for 7' fields); ``-E`` because each field is a small patch of
sky, ``-S MAG`` so the brightest stars are kept, one ``-I`` id per file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from iopreport.simulate.sky import SKY_FILE, SKY_INDEX_DIR, load_sky

PRESETS = (-3, -2, -1, 0, 1, 2)
#: Faintest star put in the index (fainter ones are rarely among the detected brightest).
INDEX_FAINT_LIMIT = 19.0
#: Positional jitter of the catalog, arcsec.
JITTER_ARCSEC = 0.1
BUILDER = "build-astrometry-index"


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def build_index(sky_path: Path = SKY_FILE, out: Path = SKY_INDEX_DIR) -> list[dict]:
    """Write ``index-<field>-P<preset>.fits`` for every field; returns the manifest rows."""
    from astropy.table import Table

    if shutil.which(BUILDER) is None:
        raise SystemExit(f"{BUILDER} not found: apt-get install astrometry.net")
    sky = load_sky(sky_path)
    fields = sorted(set(np.asarray(sky["field"]).astype(str)))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("index-*.fits"):
        old.unlink()
    manifest = []
    with tempfile.TemporaryDirectory() as folder:
        for number, field in enumerate(fields, start=1):
            rows = sky[
                (np.asarray(sky["field"]).astype(str) == field) & (sky["R"] < INDEX_FAINT_LIMIT)
            ]
            catalog = Path(folder) / f"{slug(field)}.fits"
            Table(
                {
                    "RA": np.asarray(rows["ra"], dtype=float),
                    "DEC": np.asarray(rows["dec"], dtype=float),
                    "MAG": np.asarray(rows["R"], dtype=float),
                }
            ).write(catalog, overwrite=True)
            for preset in PRESETS:
                index_id = number * 100 + preset + 10
                target = out / f"index-{slug(field)}-P{preset}.fits"
                started = time.perf_counter()
                subprocess.run(
                    [
                        BUILDER,
                        "-i", str(catalog),
                        "-e", "1",
                        "-o", str(target),
                        "-P", str(preset),
                        "-S", "MAG",
                        "-E",
                        "-I", str(index_id),
                        "-j", str(JITTER_ARCSEC),
                    ],
                    check=True,
                    capture_output=True,
                )  # fmt: skip
                manifest.append(
                    {
                        "file": target.name,
                        "field": field,
                        "preset": preset,
                        "id": index_id,
                        "stars": len(rows),
                        "bytes": target.stat().st_size,
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Build the simulated sky's index files.")
    parser.add_argument("--sky", type=Path, default=SKY_FILE)
    parser.add_argument("--out", type=Path, default=SKY_INDEX_DIR)
    args = parser.parse_args(argv)
    manifest = build_index(args.sky, args.out)
    total = sum(row["bytes"] for row in manifest)
    seconds = sum(row["seconds"] for row in manifest)
    print(
        f"wrote {len(manifest)} index files, {total / 1e6:.1f} MB, in {seconds:.0f} s to {args.out}"
    )


if __name__ == "__main__":
    main()
