"""The published astrometry.net index series, from the ``astrometry`` package's definitions.

File names, sizes per HEALPix tile and download addresses come from the
``astrometry`` package (``astrometry.series_5200`` etc.,
https://github.com/neuromorphicsystems/astrometry), not from a copied table.
A series splits a scale into ``12 nside**2`` HEALPix tiles when it lists that
many sizes for it (the 5200 series: 48 tiles, nside 2, at every scale), and
has one all-sky file per scale otherwise (the 4100 series).

Quad sizes of an index scale follow ``build-astrometry-index``'s presets
(Lang et al. 2010, AJ 139, 1782; the builder's ``-P`` help): scale 0 holds
quads 2.0'-2.8' across and each step multiplies both bounds by sqrt(2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import astrometry

#: Diameter of the smallest quad of index scale 0, arcmin (build-astrometry-index -P 0: -l 2.0).
SCALE0_LOWER_ARCMIN = 2.0
#: Ratio of the quad sizes of consecutive scales (the builder's presets go in steps of sqrt(2)).
SCALE_STEP = math.sqrt(2.0)

#: The series a configuration may name; "5200" is the LITE Gaia-DR2 + Tycho-2 series.
SERIES: dict[str, astrometry.series.Series] = {
    "4100": astrometry.series_4100,
    "4200": astrometry.series_4200,
    "5000": astrometry.series_5000,
    "5200": astrometry.series_5200,
    "5200_heavy": astrometry.series_5200_heavy,
}
#: Narrow fields use the Gaia series, fields wider than this the Tycho-2 one
#: (the package's own advice: 5200 "good for images narrower than 1 degree").
WIDE_FIELD_ARCMIN = 60.0
NARROW_SERIES = "5200"
WIDE_SERIES = "4100"


def series_for(name: str, field_arcmin: float) -> str:
    """The series to use for a field: ``name`` itself, or by width when ``name`` is "auto"."""
    if name != "auto":
        return name
    return WIDE_SERIES if field_arcmin > WIDE_FIELD_ARCMIN else NARROW_SERIES


def scale_range_arcmin(scale: int) -> tuple[float, float]:
    """Smallest and largest quad diameter (arcmin) of index scale ``scale``."""
    lower = SCALE0_LOWER_ARCMIN * SCALE_STEP**scale
    return lower, lower * SCALE_STEP


def scales_for(
    series: astrometry.series.Series, low_arcmin: float, high_arcmin: float
) -> list[int]:
    """The series' scales whose quad sizes overlap ``[low_arcmin, high_arcmin]``."""
    chosen = []
    for scale in sorted(series.scale_to_sizes):
        lower, upper = scale_range_arcmin(scale)
        if upper > low_arcmin and lower < high_arcmin:
            chosen.append(scale)
    return chosen


def tile_nside(series: astrometry.series.Series, scale: int) -> int:
    """HEALPix nside of a scale's tiles (0 when the scale is one all-sky file)."""
    count = len(series.scale_to_sizes[scale])
    if count == 1:
        return 0
    nside = math.isqrt(count // 12)
    if 12 * nside * nside != count:
        raise ValueError(f"series {series.name} scale {scale}: {count} files is not 12 nside^2")
    return nside


@dataclass(frozen=True)
class IndexFile:
    """One file of a series: its name, expected size, and where it comes from."""

    series: str
    scale: int
    tile: int  # astrometry.net HEALPix number (XY scheme), -1 for an all-sky file
    nside: int  # 0 for an all-sky file
    name: str
    size: int
    url: str  # the series' own address

    @property
    def index_id(self) -> int:
        """The INDEXID astrometry.net gives the files of this scale (e.g. 5206, 4110)."""
        return int(self.series.split("_")[0][:2]) * 100 + self.scale

    def url_from(self, mirror_url: str) -> str:
        """Address of the file: the series' own, or ``<mirror_url>/<series>/<name>``."""
        if not mirror_url:
            return self.url
        return f"{mirror_url.rstrip('/')}/{self.series}/{self.name}"


def index_file(series_name: str, scale: int, tile: int = -1) -> IndexFile:
    """The file of ``series_name`` at ``scale`` (and HEALPix ``tile`` for a split scale)."""
    series = SERIES[series_name]
    sizes = series.scale_to_sizes[scale]
    nside = tile_nside(series, scale)
    if nside:
        if not 0 <= tile < len(sizes):
            raise ValueError(f"series {series_name} scale {scale} has no tile {tile}")
        url = series.url_pattern.format(scale=f"{scale:02d}", index=f"-{tile:02d}")
        size = sizes[tile]
    else:
        tile = -1
        url = series.url_pattern.format(scale=f"{scale:02d}", index="")
        size = sizes[0]
    return IndexFile(
        series=series.name,
        scale=scale,
        tile=tile,
        nside=nside,
        name=url.rsplit("/", 1)[1],
        size=size,
        url=url,
    )
