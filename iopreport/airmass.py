"""Airmass of a source seen from a telescope at given times.

The altitude comes from the hour angle: Greenwich mean sidereal time (IAU 2006,
Capitaine et al. 2003, through ERFA's ``gmst06``, UT1 taken as UTC: under 1 s of
time), the observatory's longitude, and the source's coordinates precessed from
J2000 to the date (IAU 2006 precession, ERFA ``pmat06``). Nutation, aberration
and refraction are left out (under 0.01 deg; the airmass changes by less than
0.001 above 30 deg altitude). The airmass is Young's (1994) formula, valid down
to the horizon. No IERS table is needed, so nothing is downloaded.
"""

from __future__ import annotations

import math

import erfa
import numpy as np

from iopreport.telescopes import TELESCOPE_SITES

#: Julian date of J2000.0 (TT), the split point ERFA's two-part dates use.
JD_J2000 = 2451545.0


def altitude_deg(
    jd_utc: np.ndarray, ra_deg: float, dec_deg: float, lat_deg: float, lon_deg: float
) -> np.ndarray:
    """Altitude (degrees) of an ICRS/J2000 position at UTC Julian dates, from a site.

    ``lon_deg`` is East-positive.
    """
    jd = np.atleast_1d(np.asarray(jd_utc, dtype=float))
    # TT - UTC = 69.184 s since 2017 (32.184 s + 37 leap seconds); precession needs no better
    tt = jd + 69.184 / 86400.0
    rotation = erfa.pmat06(JD_J2000, tt - JD_J2000)  # J2000 -> mean equator and equinox of date
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    vector = np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec)])
    date = rotation @ vector
    ra_date = np.arctan2(date[..., 1], date[..., 0])
    dec_date = np.arcsin(np.clip(date[..., 2], -1.0, 1.0))
    gmst = erfa.gmst06(JD_J2000, jd - JD_J2000, JD_J2000, tt - JD_J2000)
    hour_angle = gmst + math.radians(lon_deg) - ra_date
    lat = math.radians(lat_deg)
    sin_alt = math.sin(lat) * np.sin(dec_date) + math.cos(lat) * np.cos(dec_date) * np.cos(
        hour_angle
    )
    return np.degrees(np.arcsin(np.clip(sin_alt, -1.0, 1.0)))


def young_airmass(altitude: np.ndarray) -> np.ndarray:
    """Airmass at a true altitude (degrees): Young (1994), Appl. Opt. 33, 1108, Eq. 2.

    NaN below the horizon.
    """
    cos_z = np.sin(np.radians(np.asarray(altitude, dtype=float)))
    numerator = 1.002432 * cos_z**2 + 0.148386 * cos_z + 0.0096467
    denominator = cos_z**3 + 0.149864 * cos_z**2 + 0.0102963 * cos_z + 0.000303978
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cos_z > 0, numerator / denominator, np.nan)


def airmass(jd_utc, ra_deg: float, dec_deg: float, telescope: str) -> np.ndarray:
    """Airmass of a source at ``jd_utc`` from ``telescope`` (NaN when its site is unknown)."""
    jd = np.atleast_1d(np.asarray(jd_utc, dtype=float))
    site = TELESCOPE_SITES.get(telescope)
    if site is None:
        return np.full(jd.shape, np.nan)
    lat, lon, _height = site
    return young_airmass(altitude_deg(jd, ra_deg, dec_deg, lat, lon))
