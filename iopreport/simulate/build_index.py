"""Build the astrometry.net index files of the simulated sky (committed in iopreport/data).

Usage::

    python -m iopreport.simulate.build_index [--sky PATH] [--out DIR]

Needs Debian's ``build-astrometry-index`` (``apt-get install astrometry.net``);
the files it writes are committed, so nothing else needs it.

One index file per field of the sky catalog and quad-size preset ``-P``
(reference/astrometry-offline.md). Preset ``p`` holds quads of
2.0 * sqrt(2)**p to 2.8 * sqrt(2)**p arcmin; a field is solved by quads of
roughly 10-100% of its width, so :data:`PRESETS` spans the ~2' DIPOL
polarimetry sub-frames (0.5-0.7' quads, preset -4) to the 13.2' AndorT90
frames (5.6-8' quads, preset 3). ``-E`` because each field is a small patch of
sky (without it a build takes minutes), ``-S MAG`` so that the brightest stars
are kept where the sky is crowded, a distinct ``-I`` id per file and ``-j``
for the catalog's positional error.

The build is reproducible: the tool is run inside a scratch directory on
fixed file names (its command line goes into HISTORY cards) and the DATE
cards it writes are blanked, so the same sky catalog gives byte-identical
files. ``manifest.json`` beside the files lists field, preset, id, number of
stars and size of each.
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

#: Where the committed index files live.
DEFAULT_DIR = SKY_INDEX_DIR
#: Quad-size presets built for every field (see the module docstring).
PRESETS = (-4, -3, -2, -1, 0, 1, 2, 3)
#: Faintest star put in the index (R); the simulated frames detect stars to about R = 19-20.
INDEX_FAINT_LIMIT_R = 20.0
#: Positional error of the catalog stars, arcsec (``-j``; the simulated sky is exact).
JITTER_ARCSEC = 0.1
BUILDER = "build-astrometry-index"
#: What the builder says when a preset's quads find too few stars in a field.
_NO_QUADS = "Data, N, or D is zero"
MANIFEST = "manifest.json"
#: Replaces the DATE cards the builder writes (same length: 80 characters).
_DATE_CARD = b"DATE    = '" + b"2000-01-01T00:00:00" + b"' / blanked for reproducible builds"


def slug(name: str) -> str:
    """File-name form of a field name (``BD+32 3739`` -> ``BD_32_3739``)."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def index_id(field_number: int, preset: int) -> int:
    """The unique positive ``-I`` id of a field's (1-based number) index at ``preset``."""
    return field_number * 100 + preset + 50


def index_files(directory: Path = DEFAULT_DIR) -> list[Path]:
    """The index files (``index-*.fits``) of ``directory``, sorted; empty if there are none."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("index-*.fits") if p.is_file())


def field_stars(sky, field: str, faint_limit: float = INDEX_FAINT_LIMIT_R):
    """A field's stars as the builder's input table (RA, DEC, MAG = R), brightest first.

    Stars listed twice (a catalog star in the field's own rows) are kept once.
    """
    from astropy.table import Table

    rows = sky[(np.asarray(sky["field"]).astype(str) == field) & (sky["R"] < faint_limit)]
    ra = np.asarray(rows["ra"], dtype=float)
    dec = np.asarray(rows["dec"], dtype=float)
    mag = np.asarray(rows["R"], dtype=float)
    _, first = np.unique(np.round(np.column_stack([ra, dec]), 7), axis=0, return_index=True)
    keep = np.sort(first)
    order = keep[np.lexsort((dec[keep], ra[keep], mag[keep]))]
    return Table({"RA": ra[order], "DEC": dec[order], "MAG": mag[order]})


def _blank_dates(path: Path) -> int:
    """Overwrite the DATE cards of every header with a fixed card; returns how many."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        spans = [(hdul.fileinfo(i)["hdrLoc"], hdul.fileinfo(i)["datLoc"]) for i in range(len(hdul))]
    data = bytearray(path.read_bytes())
    card = _DATE_CARD.ljust(80)
    count = 0
    for start, end in spans:
        for offset in range(start, end, 80):
            if data[offset : offset + 8] == b"DATE    ":
                data[offset : offset + 80] = card
                count += 1
    path.write_bytes(bytes(data))
    return count


def builder() -> str:
    """Path of ``build-astrometry-index``; exits with the install hint if it is missing."""
    found = shutil.which(BUILDER)
    if found is None:
        raise SystemExit(
            f"{BUILDER} not found on PATH. It comes with Debian's astrometry.net package: "
            "apt-get install astrometry.net"
        )
    return found


def build_index(
    sky_path: Path = SKY_FILE,
    out: Path = DEFAULT_DIR,
    *,
    presets: tuple[int, ...] = PRESETS,
    faint_limit: float = INDEX_FAINT_LIMIT_R,
    jitter_arcsec: float = JITTER_ARCSEC,
) -> list[dict]:
    """Write ``index-<field>-P<preset>.fits`` for every field of the sky file into ``out``.

    Index files and the manifest already in ``out`` are replaced. Returns the
    manifest rows (also written to ``out/manifest.json``).
    """
    tool = builder()
    sky = load_sky(sky_path)
    fields = sorted(set(np.asarray(sky["field"]).astype(str)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in index_files(out):
        old.unlink()
    manifest, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="iopreport-index-") as scratch:
        folder = Path(scratch)
        for number, field in enumerate(fields, start=1):
            stars = field_stars(sky, field, faint_limit)
            catalog = folder / "catalog.fits"
            stars.write(catalog, overwrite=True)
            for preset in presets:
                ident = index_id(number, preset)
                produced = folder / "index.fits"
                target = out / f"index-{slug(field)}-P{preset}.fits"
                command = [
                    tool,
                    *("-i", catalog.name, "-e", "1", "-o", produced.name),
                    *("-P", str(preset), "-S", "MAG", "-E"),
                    *("-I", str(ident), "-j", str(jitter_arcsec)),
                ]
                started = time.perf_counter()
                result = subprocess.run(command, cwd=folder, capture_output=True, text=True)
                seconds = time.perf_counter() - started
                if result.returncode != 0 and _NO_QUADS in result.stderr:
                    skipped.append({"field": field, "preset": preset, "stars": len(stars)})
                    continue
                if result.returncode != 0 or not produced.is_file():
                    raise RuntimeError(
                        f"{BUILDER} failed for {field} preset {preset} "
                        f"(exit {result.returncode}):\n{result.stderr[-2000:]}"
                    )
                _blank_dates(produced)
                shutil.move(produced, target)
                manifest.append(
                    {
                        "file": target.name,
                        "field": field,
                        "preset": preset,
                        "id": ident,
                        "stars": len(stars),
                        "bytes": target.stat().st_size,
                        "seconds": round(seconds, 2),
                    }
                )
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Build the astrometry.net index files of the simulated sky "
        "(needs build-astrometry-index: apt-get install astrometry.net)."
    )
    parser.add_argument("--sky", type=Path, default=SKY_FILE, help="sky catalog FITS table")
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="output directory")
    parser.add_argument(
        "--presets",
        type=lambda text: tuple(int(p) for p in text.split(",")),
        default=PRESETS,
        help="comma-separated quad-size presets (default: %(default)s)",
    )
    parser.add_argument("--faint", type=float, default=INDEX_FAINT_LIMIT_R, help="faintest R")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    manifest = build_index(args.sky, args.out, presets=args.presets, faint_limit=args.faint)
    total = sum(row["bytes"] for row in manifest)
    print(
        f"wrote {len(manifest)} index files, {total / 1e6:.1f} MB, "
        f"in {time.perf_counter() - started:.0f} s to {args.out}"
    )


if __name__ == "__main__":
    main()
