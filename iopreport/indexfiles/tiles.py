"""HEALPix tiles in astrometry.net's own numbering (the "XY" scheme).

astrometry.net numbers a tile ``bighp * nside**2 + x * nside + y``, where
``bighp`` is one of the 12 base pixels and ``(x, y)`` the position inside it
(astrometry.net ``util/healpix.c``; Debian's ``get-healpix`` prints it as "the
XY scheme"). The base pixels are those of the standard HEALPix grid (Gorski et
al. 2005, ApJ 622, 759), and ``x``/``y`` are the even/odd bits of the NESTED
sub-index, so the numbers differ from NESTED for nside > 1 (the tests check
this against ``get-healpix``). Geometry comes from ``astropy-healpix``.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy_healpix import HEALPix


def nested_to_xy(nested: int, nside: int) -> int:
    """astrometry.net's XY number of the NESTED pixel ``nested`` at ``nside``."""
    base, sub = divmod(int(nested), nside * nside)
    x = y = 0
    bit = 0
    while sub >> (2 * bit):
        x |= ((sub >> (2 * bit)) & 1) << bit
        y |= ((sub >> (2 * bit + 1)) & 1) << bit
        bit += 1
    return base * nside * nside + x * nside + y


def tile_of(ra_deg: float, dec_deg: float, nside: int) -> int:
    """The tile (XY scheme) holding a position."""
    nested = HEALPix(nside=nside, order="nested").lonlat_to_healpix(ra_deg * u.deg, dec_deg * u.deg)
    return nested_to_xy(int(nested), nside)


def tiles_covering(ra_deg: float, dec_deg: float, radius_deg: float, nside: int) -> list[int]:
    """Every tile (XY scheme) that a circle of ``radius_deg`` around a position touches."""
    grid = HEALPix(nside=nside, order="nested")
    nested = grid.cone_search_lonlat(ra_deg * u.deg, dec_deg * u.deg, radius_deg * u.deg)
    return sorted({nested_to_xy(int(p), nside) for p in np.atleast_1d(nested)})
