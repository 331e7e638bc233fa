"""Which index files the catalog's fields need, per instrument, and which are present.

The usual rule (astrometry.net README, "Getting index files"): an image is
solved with index files whose quads are about 10% to 100% of the image's
width, so an instrument needs the scales whose quad sizes overlap
``[QUAD_MIN_FRACTION * width, width]``. A split series also needs, for each
catalog source, only the HEALPix tiles that a circle around the source touches:
half the field's diagonal plus a pointing margin (a field near a tile border
needs both tiles).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.indexfiles.identify import IndexScan, scan_index_folder
from iopreport.indexfiles.series import (
    SERIES,
    IndexFile,
    index_file,
    scale_range_arcmin,
    scales_for,
    series_for,
    tile_nside,
)
from iopreport.indexfiles.tiles import tiles_covering

#: Smallest useful quad as a fraction of the field width (astrometry.net README: 10%).
QUAD_MIN_FRACTION = 0.1
#: Pointing error allowed around a catalog position, arcmin (a telescope's
#: blind pointing is good to a few arcmin; iopreport assumption).
POINTING_MARGIN_ARCMIN = 5.0
#: Detector side assumed for an instrument whose size is not known (config-defined ones).
ASSUMED_DETECTOR_PX = 2048


@dataclass(frozen=True)
class Field:
    """An instrument's field of view."""

    instrument: str
    width_arcmin: float
    height_arcmin: float
    assumed: bool = False  # the detector size was not known

    @property
    def size_arcmin(self) -> float:
        """The field's width (its larger side), which sets the largest useful quad."""
        return max(self.width_arcmin, self.height_arcmin)

    @property
    def radius_deg(self) -> float:
        """Half the diagonal plus the pointing margin: the sky a frame may cover."""
        half_diagonal = 0.5 * math.hypot(self.width_arcmin, self.height_arcmin)
        return (half_diagonal + POINTING_MARGIN_ARCMIN) / 60.0

    @property
    def quad_range_arcmin(self) -> tuple[float, float]:
        return QUAD_MIN_FRACTION * self.size_arcmin, self.size_arcmin


def field_of(spec) -> Field:
    """The :class:`Field` of an :class:`~iopreport.instruments.InstrumentSpec`."""
    width_px, height_px = spec.full_shape
    assumed = width_px <= 0 or height_px <= 0
    if assumed:
        width_px = height_px = ASSUMED_DETECTOR_PX
    scale = spec.pixscale_arcsec / 60.0
    return Field(spec.name, width_px * scale, height_px * scale, assumed)


@dataclass
class Need:
    """The files one source needs for one instrument."""

    source: str
    instrument: str
    series: str
    scales: list[int]
    files: list[IndexFile]
    missing_scales: list[int] = field(default_factory=list)  # wanted, absent from the series


@dataclass
class Plan:
    """Every file the catalog needs, which are present, and the totals."""

    fields: dict[str, Field]
    needs: list[Need]
    files: dict[str, IndexFile]  # name -> file, each once
    present: dict[str, Path]  # name -> the file found for it
    scan: IndexScan

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    @property
    def missing(self) -> list[IndexFile]:
        return [f for name, f in sorted(self.files.items()) if name not in self.present]

    @property
    def missing_bytes(self) -> int:
        return sum(f.size for f in self.missing)

    def users(self, name: str) -> list[Need]:
        return [need for need in self.needs if any(f.name == name for f in need.files)]


def needed_files(
    ra_deg: float, dec_deg: float, fov: Field, series_name: str
) -> tuple[list[int], list[IndexFile], list[int]]:
    """Scales, files and wanted-but-absent scales of one field with one series."""
    series = SERIES[series_name]
    low, high = fov.quad_range_arcmin
    scales = scales_for(series, low, high)
    files = []
    for scale in scales:
        nside = tile_nside(series, scale)
        if nside == 0:
            files.append(index_file(series_name, scale))
            continue
        for tile in tiles_covering(ra_deg, dec_deg, fov.radius_deg, nside):
            files.append(index_file(series_name, scale, tile))
    wanted = [
        s
        for s in range(-5, 20)
        if scale_range_arcmin(s)[1] > low and scale_range_arcmin(s)[0] < high
    ]
    return scales, files, [s for s in wanted if s not in series.scale_to_sizes]


def matches(header, file: IndexFile) -> bool:
    """Whether an index file's header is that of ``file`` (same scale id and tile)."""
    if header.index_id is not None and header.index_id != file.index_id:
        return False
    lower, _ = scale_range_arcmin(file.scale)
    if abs(header.scale_lower_arcmin / lower - 1.0) > 0.05:
        return False
    if file.nside:
        return header.healpix == file.tile and header.nside == file.nside
    return True


def make_plan(
    sources: Iterable,
    instruments: Mapping,
    *,
    series: str,
    index_dir: Path,
    scan: IndexScan | None = None,
) -> Plan:
    """The plan for ``sources`` (with ``name``, ``ra_deg``, ``dec_deg``) and ``instruments``
    (name -> InstrumentSpec); ``series`` is a series name or "auto"."""
    fields = {name: field_of(spec) for name, spec in instruments.items()}
    needs = []
    files: dict[str, IndexFile] = {}
    for source in sources:
        for name, fov in fields.items():
            series_name = series_for(series, fov.size_arcmin)
            scales, chosen, absent = needed_files(source.ra_deg, source.dec_deg, fov, series_name)
            needs.append(Need(source.name, name, series_name, scales, chosen, absent))
            for file in chosen:
                files.setdefault(file.name, file)
    scan = scan if scan is not None else scan_index_folder(index_dir)
    present = {}
    for name, file in files.items():
        for header in scan.index:
            if header.path.name == name or matches(header, file):
                present[name] = header.path
                break
    return Plan(fields, needs, files, present, scan)
