"""The checked catalog as values: :class:`Catalog` of :class:`CatalogSource` entries.

A source carries its literature :class:`Magnitude` and :class:`Polarization`
values per band and, for a blazar, its host-galaxy :class:`HostTable`. All
are frozen; :mod:`iopreport.catalog.parse` builds them from catalog.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Magnitude:
    """A literature magnitude; ``err`` is None when the source gives none.

    ``derived`` is empty for a magnitude written in the file's ``mag`` table.
    For one computed at load time from ``sdss`` or ``ps1`` magnitudes it says
    how (relation and reference) and why (the band had no literature value).
    """

    value: float
    err: float | None = None
    derived: str = ""


@dataclass(frozen=True)
class HostTable:
    """Host-galaxy (contaminating) flux of a source, tabulated as published.

    ``flux_mjy[i][j]`` is the flux inside an aperture of radius
    ``aperture_arcsec[i]`` at seeing FWHM ``seeing_arcsec[j]`` (a 2-D table),
    or ``flux_mjy[i]`` for ``aperture_arcsec[i]`` when the table has no seeing
    axis (``seeing_arcsec`` is None). ``flux_err_mjy`` has the same shape, or
    is None when the reference gives no uncertainties.
    :func:`iopreport.reduce.host.host_flux` interpolates it.
    """

    reference: str
    band: str
    aperture_arcsec: tuple[float, ...]
    seeing_arcsec: tuple[float, ...] | None
    flux_mjy: tuple
    flux_err_mjy: tuple | None = None
    line: int | None = None

    @property
    def two_dimensional(self) -> bool:
        return self.seeing_arcsec is not None


@dataclass(frozen=True)
class Polarization:
    """Literature polarization in one band: p as a fraction, chi in degrees."""

    p: float
    p_err: float | None = None
    chi: float | None = None
    chi_err: float | None = None


@dataclass(frozen=True)
class CatalogSource:
    """One ``[[source]]`` entry, checked."""

    name: str
    srctype: str
    ra_deg: float
    dec_deg: float
    other_names: tuple[str, ...] = ()
    redshift: float | None = None
    calibrators: tuple[str, ...] = ()
    mags: Mapping[str, Magnitude] = field(default_factory=dict)
    pol: Mapping[str, Polarization] = field(default_factory=dict)
    comment: str = ""
    references: tuple[str, ...] = ()
    line: int | None = None
    host: HostTable | None = None
    sdss: Mapping[str, Magnitude] = field(default_factory=dict)
    ps1: Mapping[str, Magnitude] = field(default_factory=dict)

    @property
    def derived_mags(self) -> dict[str, Magnitude]:
        """The magnitudes computed at load time from ``sdss`` or ``ps1`` values."""
        return {band: mag for band, mag in self.mags.items() if mag.derived}

    @property
    def all_names(self) -> tuple[str, ...]:
        return (self.name, *self.other_names)


@dataclass(frozen=True)
class Catalog:
    """All sources of a catalog file, in file order."""

    path: Path
    sources: tuple[CatalogSource, ...]

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, name: str) -> CatalogSource | None:
        """The source with this name or other name (case-insensitive), or None."""
        wanted = name.casefold()
        for source in self.sources:
            if any(n.casefold() == wanted for n in source.all_names):
                return source
        return None

    def targets(self) -> list[CatalogSource]:
        """Sources that have calibrators (what the pipeline measures)."""
        return [s for s in self.sources if s.calibrators]
