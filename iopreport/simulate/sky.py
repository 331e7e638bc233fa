"""The simulated sky: a star catalog around every target and standard of catalog.toml.

Synthetic field stars follow realistic number counts (more at low Galactic
latitude) down to R = 20; the catalog's real calibrators and standards sit at
their real positions with their literature magnitudes. Blazars are not in the
sky file: the night simulator adds them with the night's light curve.

The file is committed (``iopreport/data/sky/skycatalog.fits``) so that the
simulator, the astrometry.net index files built from it and the tests agree.
Rebuild both with::

    python -m iopreport.simulate.sky            # writes the FITS table
    python -m iopreport.simulate.build_index    # needs Debian's astrometry.net
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from iopreport.catalog import Catalog, CatalogSource, load_catalog
from iopreport.telescopes import BANDS

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SKY_FILE = DATA_DIR / "sky" / "skycatalog.fits"
#: astrometry.net index files built from the sky file (python -m iopreport.simulate.build_index).
SKY_INDEX_DIR = DATA_DIR / "astrometry-index"

#: Radius of the simulated patch around each field centre (covers the 13.2'
#: AndorT90 field diagonal plus pointing errors).
FIELD_RADIUS_ARCMIN = 16.0
#: Faintest synthetic star.
FAINT_LIMIT_R = 20.0
#: Brightest synthetic star.
BRIGHT_LIMIT_R = 8.0
#: Slope of the cumulative counts, d log N(<R) / dR (Galactic star counts at
#: R ~ 14-20 are close to 0.3-0.35 dex/mag; simulator assumption).
COUNT_SLOPE = 0.33
#: N(R < 20) per square degree far from the Galactic plane (simulator assumption).
COUNTS_HIGH_LATITUDE = 3000.0
#: Extra counts towards the plane: N = N_high (1 + PLANE_BOOST exp(-|b| / PLANE_SCALE)).
PLANE_BOOST = 6.0
PLANE_SCALE_DEG = 10.0
#: No synthetic star this close to a catalog source (keeps calibrators clean).
EXCLUSION_ARCSEC = 8.0
#: R magnitudes of standards whose catalog entry has none (IOP3 calibrator
#: catalogue values, the IOP3 calibrator catalogue; simulator assumption where absent).
STANDARD_R_FALLBACK = {"HD 204827": 7.25, "HD 212311": 8.0, "BD+64 106": 10.0}


def colours_from_vr(v_minus_r: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Offsets X - R for every band from V - R, along a main-sequence-like locus.

    Simulator assumption: B-V = 1.85 (V-R) - 0.1, U-B = 0.95 (B-V) - 0.45,
    R-I = 0.9 (V-R) + 0.05, each with a little scatter.
    """
    n = len(v_minus_r)
    b_minus_v = 1.85 * v_minus_r - 0.1 + rng.normal(0, 0.04, n)
    u_minus_b = 0.95 * b_minus_v - 0.45 + rng.normal(0, 0.08, n)
    r_minus_i = 0.9 * v_minus_r + 0.05 + rng.normal(0, 0.03, n)
    return {
        "V": v_minus_r,
        "B": v_minus_r + b_minus_v,
        "U": v_minus_r + b_minus_v + u_minus_b,
        "R": np.zeros(n),
        "I": -r_minus_i,
    }


def field_centres(catalog: Catalog) -> list[CatalogSource]:
    """The sources the simulator can point at: blazars and polarization standards."""
    return [s for s in catalog.sources if s.srctype in ("blazar", "polarization_standard")]


def galactic_latitude(ra_deg: float, dec_deg: float) -> float:
    from astropy.coordinates import SkyCoord

    return float(SkyCoord(ra_deg, dec_deg, unit="deg").galactic.b.deg)


def expected_star_count(b_deg: float, radius_arcmin: float, faint_limit: float) -> float:
    """Expected number of stars brighter than ``faint_limit`` in a circle of ``radius_arcmin``."""
    per_deg2 = COUNTS_HIGH_LATITUDE * (1 + PLANE_BOOST * math.exp(-abs(b_deg) / PLANE_SCALE_DEG))
    per_deg2 *= 10 ** (COUNT_SLOPE * (faint_limit - 20.0))
    return per_deg2 * math.pi * (radius_arcmin / 60.0) ** 2


def _draw_magnitudes(n: int, rng: np.random.Generator) -> np.ndarray:
    """R magnitudes with cumulative counts proportional to 10**(COUNT_SLOPE * R)."""
    k = COUNT_SLOPE * math.log(10)
    lo, hi = math.exp(k * BRIGHT_LIMIT_R), math.exp(k * FAINT_LIMIT_R)
    return np.log(lo + rng.random(n) * (hi - lo)) / k


def _offsets(ra0: float, dec0: float, dx_arcsec, dy_arcsec):
    """Positions at tangent-plane offsets (East, North) from (ra0, dec0)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(ra0, dec0, unit="deg")
    separation = np.hypot(dx_arcsec, dy_arcsec) * u.arcsec
    position_angle = np.arctan2(dx_arcsec, dy_arcsec) * u.rad
    moved = centre.directional_offset_by(position_angle, separation)
    return moved.ra.deg, moved.dec.deg


def generate_sky(catalog: Catalog, *, seed: int = 20260101):
    """Build the sky table for every field of ``catalog``.

    Returns
    -------
    astropy.table.Table
        Columns: ``field`` (catalog name of the field centre), ``name`` (catalog
        name, empty for synthetic stars), ``kind`` (synthetic | catalog),
        ``ra``, ``dec`` (deg, ICRS) and ``U B V R I`` magnitudes.
    """
    from astropy.table import Table, vstack

    rng = np.random.default_rng(seed)
    tables = []
    catalog_stars = [
        s for s in catalog.sources if s.srctype in ("calibrator", "star", "polarization_standard")
    ]
    for centre in field_centres(catalog):
        b = galactic_latitude(centre.ra_deg, centre.dec_deg)
        n = rng.poisson(expected_star_count(b, FIELD_RADIUS_ARCMIN, FAINT_LIMIT_R))
        radius = FIELD_RADIUS_ARCMIN * 60 * np.sqrt(rng.random(n))
        angle = rng.random(n) * 2 * np.pi
        ra, dec = _offsets(
            centre.ra_deg, centre.dec_deg, radius * np.sin(angle), radius * np.cos(angle)
        )
        r_mag = _draw_magnitudes(n, rng)
        colours = colours_from_vr(np.clip(rng.normal(0.45, 0.18, n), 0.05, 1.3), rng)
        nearby = [
            s
            for s in (*catalog_stars, centre)
            if _separation_arcmin(s, centre) < FIELD_RADIUS_ARCMIN + 1
        ]
        keep = np.ones(n, dtype=bool)
        for source in nearby:
            d = _angular_distance_arcsec(ra, dec, source.ra_deg, source.dec_deg)
            keep &= d > EXCLUSION_ARCSEC
        rows = {
            "field": np.full(keep.sum(), centre.name),
            "name": np.full(keep.sum(), ""),
            "kind": np.full(keep.sum(), "synthetic"),
            "ra": ra[keep],
            "dec": dec[keep],
        }
        for band in BANDS:
            rows[band] = (r_mag + colours[band])[keep].astype(np.float32)
        tables.append(Table(rows))
        real = list({s.name: s for s in nearby if s.srctype != "blazar"}.values())
        if real:
            tables.append(_catalog_rows(centre.name, real, rng))
    sky = vstack(tables, metadata_conflicts="silent")
    sky.meta["SEED"] = seed
    sky.meta["RADIUS"] = FIELD_RADIUS_ARCMIN
    sky.meta["COMMENT"] = "iopreport simulated sky; see iopreport/simulate/sky.py"
    return sky


def _catalog_rows(field: str, sources: list[CatalogSource], rng: np.random.Generator):
    from astropy.table import Table

    rows = {"field": [], "name": [], "kind": [], "ra": [], "dec": [], **{b: [] for b in BANDS}}
    for source in sources:
        mags = {band: m.value for band, m in source.mags.items()}
        if "R" not in mags:
            mags["R"] = STANDARD_R_FALLBACK.get(source.name, mags.get("V", 10.0) - 0.3)
        v_minus_r = mags["V"] - mags["R"] if "V" in mags else 0.4
        locus = colours_from_vr(np.array([v_minus_r]), rng)
        rows["field"].append(field)
        rows["name"].append(source.name)
        rows["kind"].append("catalog")
        rows["ra"].append(source.ra_deg)
        rows["dec"].append(source.dec_deg)
        for band in BANDS:
            rows[band].append(mags.get(band, mags["R"] + float(locus[band][0])))
    table = Table(rows)
    for band in BANDS:
        table[band] = table[band].astype(np.float32)
    return table


def _separation_arcmin(a: CatalogSource, b: CatalogSource) -> float:
    return float(_angular_distance_arcsec(a.ra_deg, a.dec_deg, b.ra_deg, b.dec_deg)) / 60.0


def _angular_distance_arcsec(ra1, dec1, ra2, dec2):
    """Great-circle distance (haversine), arcsec."""
    ra1, dec1, ra2, dec2 = (np.deg2rad(np.asarray(x, dtype=float)) for x in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.rad2deg(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0


def load_sky(path: Path = SKY_FILE):
    """The committed sky table (see :func:`generate_sky`)."""
    from astropy.table import Table

    return Table.read(path)


def stars_near(sky, ra_deg: float, dec_deg: float, radius_arcmin: float):
    """Rows of ``sky`` within ``radius_arcmin`` of a position (duplicates across fields removed)."""
    distance = _angular_distance_arcsec(sky["ra"], sky["dec"], ra_deg, dec_deg)
    near = sky[distance < radius_arcmin * 60.0]
    if len(near) == 0:
        return near
    # a catalog star can appear in several overlapping fields: keep one
    key = [
        f"{n}|{r:.7f}|{d:.7f}"
        for n, r, d in zip(near["name"], near["ra"], near["dec"], strict=False)
    ]
    _, first = np.unique(key, return_index=True)
    return near[np.sort(first)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write the simulated sky catalog.")
    parser.add_argument(
        "--catalog", type=Path, default=Path(__file__).resolve().parents[2] / "catalog.toml"
    )
    parser.add_argument("--out", type=Path, default=SKY_FILE)
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args(argv)
    sky = generate_sky(load_catalog(args.catalog), seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sky.write(args.out, overwrite=True)
    counts = {}
    for field in sky["field"]:
        counts[field] = counts.get(field, 0) + 1
    print(f"wrote {len(sky)} stars in {len(counts)} fields to {args.out}")
    for field, n in counts.items():
        print(f"  {field}: {n}")


if __name__ == "__main__":
    main()
