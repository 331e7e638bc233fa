"""The network side of ``catalog suggest``: Pan-STARRS1 DR2 at MAST and Gaia DR3 at ESA.

Both through astroquery (https://astroquery.readthedocs.io): Pan-STARRS1 with
``astroquery.mast.Catalogs`` (the Catalogs.MAST API, ``panstarrs/dr2/mean``),
whose servers come from astroquery's own configuration (``[mast] server`` and
``catalogs_server`` in ``<config dir>/astropy/astroquery.cfg``); Gaia with
astroquery's TAP client (``TapPlus``) at ``gaia_tap`` (the ESA Gaia archive by
default). This is the only module of iopreport that queries these services.
"""

from __future__ import annotations

import math

from iopreport.errors import IopreportError
from iopreport.suggest.rules import PS1_MISSING, GaiaStar, Ps1Star

#: The ESA Gaia archive's TAP service.
GAIA_TAP_URL = "https://gea.esac.esa.int/tap-server/tap"
#: Gaia DR3 source table.
GAIA_TABLE = "gaiadr3.gaia_source"
#: PS1 DR2 mean-table columns the rules read (Flewelling et al. 2020, ApJS 251, 7).
PS1_COLUMNS = (
    "objName",
    "objID",
    "raMean",
    "decMean",
    "nDetections",
    "gMeanApMag",
    "gMeanApMagErr",
    "gMeanApMagStd",
    "rMeanApMag",
    "rMeanApMagErr",
    "rMeanApMagStd",
    "iMeanApMag",
    "iMeanApMagErr",
    "iMeanApMagStd",
    "iMeanPSFMag",
    "iMeanKronMag",
    "rMeanPSFMag",
)
#: Gaia DR3 columns (Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1).
GAIA_COLUMNS = ("source_id", "ra", "dec", "phot_g_mean_mag", "phot_variable_flag", "ruwe")


class CatalogServiceError(IopreportError):
    """A catalog service could not be reached or answered with an error."""

    exit_code = 1


def _float(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return PS1_MISSING
    return number if math.isfinite(number) else PS1_MISSING


def query_panstarrs(ra: float, dec: float, radius_arcmin: float) -> list[Ps1Star]:
    """Every PS1 DR2 mean-table object within ``radius_arcmin`` (no filter: the rules
    need the faint neighbours too)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astroquery.mast import Catalogs

    try:
        table = Catalogs.query_region(
            SkyCoord(ra, dec, unit="deg"),
            radius=radius_arcmin * u.arcmin,
            catalog="Panstarrs",
            data_release="dr2",
            table="mean",
            columns=list(PS1_COLUMNS),
        )
    except Exception as exc:  # astroquery raises requests', http.client's and its own errors
        raise CatalogServiceError(f"Pan-STARRS1 DR2 query at MAST failed: {exc}") from exc
    table = table.filled(PS1_MISSING) if getattr(table, "masked", False) else table
    stars = []
    for row in table:
        mags = {
            band: (
                _float(row[f"{band}MeanApMag"]),
                _float(row[f"{band}MeanApMagErr"]),
                _float(row[f"{band}MeanApMagStd"]),
            )
            for band in ("g", "r", "i")
        }
        stars.append(
            Ps1Star(
                obj_name=str(row["objName"]).strip(),
                obj_id=str(row["objID"]),
                ra=float(row["raMean"]),
                dec=float(row["decMean"]),
                n_detections=int(row["nDetections"]),
                mags=mags,
                i_psf=_float(row["iMeanPSFMag"]),
                i_kron=_float(row["iMeanKronMag"]),
                r_psf=_float(row["rMeanPSFMag"]),
            )
        )
    return stars


def gaia_query_text(ra: float, dec: float, radius_arcmin: float) -> str:
    """The ADQL cone search."""
    return (
        f"SELECT {', '.join(GAIA_COLUMNS)} FROM {GAIA_TABLE} WHERE 1 = CONTAINS("
        f"POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra:.7f}, {dec:.7f}, {radius_arcmin / 60:.7f}))"
    )


def query_gaia(
    ra: float, dec: float, radius_arcmin: float, tap_url: str = GAIA_TAP_URL
) -> list[GaiaStar]:
    """Gaia DR3 sources within ``radius_arcmin`` (a synchronous TAP query)."""
    from astroquery.utils.tap.core import TapPlus

    try:
        job = TapPlus(url=tap_url, verbose=False).launch_job(
            gaia_query_text(ra, dec, radius_arcmin), output_format="votable"
        )
        table = job.get_results()
    except Exception as exc:
        raise CatalogServiceError(f"Gaia DR3 query at {tap_url} failed: {exc}") from exc
    sources = []
    for row in table:
        flag = row["phot_variable_flag"]
        flag = flag.decode() if isinstance(flag, bytes) else str(flag)
        sources.append(
            GaiaStar(
                source_id=int(row["source_id"]),
                ra=float(row["ra"]),
                dec=float(row["dec"]),
                g_mag=_float(row["phot_g_mean_mag"]),
                variable_flag=flag,
                ruwe=float(row["ruwe"]) if row["ruwe"] is not None else float("nan"),
            )
        )
    return sources
