"""Host-galaxy correction of blazar photometry and polarimetry (R band).

A BL Lac object sits in an elliptical galaxy whose starlight enters the
photometry aperture, adds unpolarized flux and so dilutes the measured
polarization. Nilsson et al. (2007, A&A 475, 199) tabulate, per object, the R-band
flux of everything that is not the nucleus (host galaxy plus significant
nearby objects) inside an aperture of radius r at seeing FWHM s. The tables
are data in catalog.toml (``[source.host]``, :class:`iopreport.catalog.HostTable`).

Two pure functions:

:func:`host_flux`
    The contaminating flux for one aperture radius and seeing: linear
    interpolation on the table grid (scipy ``RegularGridInterpolator``; a table
    without a seeing axis is interpolated in aperture only). Outside the grid
    the default ``outside="clamp"`` uses the nearest edge of the grid on each
    axis, so the result never leaves the range of published values;
    ``outside="extrapolate"`` extends the edge cells linearly (what IOP4 does;
    an extrapolated flux below zero is set to zero). Either way the result
    lists in ``notes`` which axis was outside.

:func:`correct`
    Subtracts it::

        F_obs  = 3080 Jy * 10**(-0.4 R)        (Nilsson et al. 2007)
        F_corr = F_obs - F_host
        R_corr = -2.5 log10(F_corr / 3080 Jy)
        p_corr = p * F_obs / F_corr

    with first-order error propagation in the independent quantities p,
    F_obs (from R and its error) and F_host, all partial derivatives
    included (``F_obs`` and ``F_corr`` are correlated, so the errors are not
    combined as if they were independent). It refuses,
    with a reason and no numbers, outside the R band, without a magnitude, or
    when the host flux is not smaller than the observed flux.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from iopreport.catalog import HostTable

#: R-band flux of magnitude 0 in mJy: Nilsson et al. (2007, A&A 475, 199) convert
#: R magnitudes to fluxes with F = 3080 Jy * 10**(-0.4 R); their tables are in mJy.
NILSSON2007_R_ZERO_POINT_MJY = 3080.0e3

#: The only band the correction is defined for (Nilsson et al. 2007 is R-band work).
HOST_BAND = "R"

_LN10_04 = 0.4 * math.log(10.0)  # d ln F / d m = -0.4 ln 10

OutsideMode = Literal["clamp", "extrapolate"]


@dataclass(frozen=True)
class HostFlux:
    """The host flux for one aperture and seeing.

    Unpacks as ``flux_mjy, err_mjy = host_flux(...)``.

    Attributes
    ----------
    flux_mjy, err_mjy : float
        Contaminating flux and its uncertainty in mJy (``err_mjy`` is 0 when
        the table gives no uncertainties; ``notes`` then says so).
    band : str
        Band of the table.
    reference : str
        The table's reference (e.g. "Nilsson et al. 2007, ..., Table B.20").
    aperture_arcsec, seeing_arcsec : float
        What was asked for (``seeing_arcsec`` is None for a 1-D table asked without it).
    notes : tuple of str
        Caveats: axis outside the grid (clamped or extrapolated), no uncertainties.
    outside_axes : tuple of str
        The axes (``"aperture"``, ``"seeing"``) whose value was outside the grid.
    """

    flux_mjy: float
    err_mjy: float
    band: str
    reference: str
    aperture_arcsec: float
    seeing_arcsec: float | None
    notes: tuple[str, ...] = ()
    outside_axes: tuple[str, ...] = ()

    def __iter__(self):
        yield self.flux_mjy
        yield self.err_mjy

    @property
    def outside_grid(self) -> bool:
        """True when the aperture or the seeing was outside the table."""
        return bool(self.outside_axes)


@dataclass(frozen=True)
class HostCorrected:
    """Result of :func:`correct`.

    When ``reason`` is not empty the correction was refused and every number
    is None. ``p`` and ``p_err`` are fractions like the input; they are None
    when no polarization was given.
    """

    reason: str = ""
    mag: float | None = None
    mag_err: float | None = None
    p: float | None = None
    p_err: float | None = None
    flux_obs_mjy: float | None = None
    flux_obs_err_mjy: float | None = None
    flux_host_mjy: float | None = None
    flux_host_err_mjy: float | None = None
    flux_corr_mjy: float | None = None
    flux_corr_err_mjy: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def applied(self) -> bool:
        return not self.reason


def mag_to_mjy(mag: float) -> float:
    """R magnitude to flux in mJy with the Nilsson et al. (2007) zero point."""
    return NILSSON2007_R_ZERO_POINT_MJY * 10.0 ** (-0.4 * mag)


def mjy_to_mag(flux_mjy: float) -> float:
    """Flux in mJy to R magnitude with the Nilsson et al. (2007) zero point."""
    return -2.5 * math.log10(flux_mjy / NILSSON2007_R_ZERO_POINT_MJY)


def host_flux(
    table: HostTable,
    aperture_arcsec: float,
    seeing_arcsec: float | None = None,
    *,
    outside: OutsideMode = "clamp",
) -> HostFlux:
    """Interpolate a host table at an aperture radius and seeing FWHM.

    Parameters
    ----------
    table : HostTable
        The source's table from the catalog.
    aperture_arcsec : float
        Photometry aperture **radius** in arcsec.
    seeing_arcsec : float, optional
        Seeing FWHM in arcsec. Required for a 2-D table, ignored by a 1-D one.
    outside : {"clamp", "extrapolate"}
        What to do outside the grid (see the module docstring).

    Returns
    -------
    HostFlux

    Raises
    ------
    ValueError
        For a non-positive or non-finite aperture or seeing, a 2-D table
        without seeing, or an unknown ``outside`` mode.
    """
    if outside not in ("clamp", "extrapolate"):
        raise ValueError(f"outside must be 'clamp' or 'extrapolate', not {outside!r}")
    _check_positive("aperture_arcsec", aperture_arcsec)
    axes = [("aperture", np.asarray(table.aperture_arcsec, dtype=float), float(aperture_arcsec))]
    if table.two_dimensional:
        if seeing_arcsec is None:
            raise ValueError("this host table has a seeing axis: give seeing_arcsec")
        _check_positive("seeing_arcsec", seeing_arcsec)
        axes.append(("seeing", np.asarray(table.seeing_arcsec, dtype=float), float(seeing_arcsec)))

    notes = []
    outside_axes = []
    point = []
    for name, grid, value in axes:
        low, high = grid[0], grid[-1]
        if low <= value <= high:
            point.append(value)
            continue
        outside_axes.append(name)
        edge = low if value < low else high
        if outside == "clamp":
            notes.append(
                f"{name} {value:g} arcsec is outside the table ({low:g}-{high:g}); "
                f"clamped to {edge:g}"
            )
            point.append(edge)
        else:
            notes.append(
                f"{name} {value:g} arcsec is outside the table ({low:g}-{high:g}); "
                "extrapolated linearly"
            )
            point.append(value)

    grids = tuple(grid for _, grid, _ in axes)
    flux = _interpolate(grids, table.flux_mjy, point)
    if flux < 0:
        notes.append(f"extrapolated host flux {flux:.3g} mJy is negative; set to 0")
        flux = 0.0
    if table.flux_err_mjy is None:
        err = 0.0
        notes.append("the host table gives no uncertainties; host flux error taken as 0")
    else:
        err = max(_interpolate(grids, table.flux_err_mjy, point), 0.0)
    return HostFlux(
        flux_mjy=flux,
        err_mjy=err,
        band=table.band,
        reference=table.reference,
        aperture_arcsec=float(aperture_arcsec),
        seeing_arcsec=None if seeing_arcsec is None else float(seeing_arcsec),
        notes=tuple(notes),
        outside_axes=tuple(outside_axes),
    )


def correct(
    mag: float | None,
    mag_err: float | None,
    p: float | None,
    p_err: float | None,
    host: HostFlux,
    *,
    band: str,
) -> HostCorrected:
    """Remove the host-galaxy flux from an R magnitude and polarization fraction.

    Parameters
    ----------
    mag, mag_err : float
        Calibrated magnitude of the blazar in the same aperture as ``host``
        (``mag_err`` None is taken as 0 and noted).
    p, p_err : float or None
        Polarization degree as a fraction, or None for a photometry-only result.
    host : HostFlux
        From :func:`host_flux`.
    band : str
        Band of the measurement; only R is corrected.

    Returns
    -------
    HostCorrected
        With ``reason`` set (and no numbers) when the correction does not apply.
    """
    if band != HOST_BAND:
        return HostCorrected(
            reason=f"host correction is defined for the {HOST_BAND} band only "
            f"(Nilsson et al. 2007); this result is {band}"
        )
    if host.band != HOST_BAND:
        return HostCorrected(
            reason=f"the host table is for band {host.band}, but the 3080 Jy zero point "
            f"is for {HOST_BAND}"
        )
    if mag is None or not math.isfinite(mag):
        return HostCorrected(reason="no magnitude: the correction needs the observed R flux")
    notes = list(host.notes)
    if mag_err is None:
        notes.append("magnitude error unknown; taken as 0")
        mag_err = 0.0

    f_obs = mag_to_mjy(mag)
    f_obs_err = f_obs * _LN10_04 * mag_err
    f_host, f_host_err = host.flux_mjy, host.err_mjy
    f_corr = f_obs - f_host
    if f_corr <= 0:
        return HostCorrected(
            reason=f"host flux {f_host:.3g} mJy is not below the observed flux {f_obs:.3g} mJy "
            f"(R = {mag:.3f}); nothing left of the nucleus",
            flux_obs_mjy=f_obs,
            flux_host_mjy=f_host,
            notes=tuple(notes),
        )
    f_corr_err = math.hypot(f_obs_err, f_host_err)
    mag_corr = mjy_to_mag(f_corr)
    mag_corr_err = f_corr_err / (f_corr * _LN10_04)

    p_corr = p_corr_err = None
    if p is not None:
        p_corr = p * f_obs / f_corr
        if p_err is not None:
            # partial derivatives of p * F_obs / (F_obs - F_host)
            d_p = f_obs / f_corr
            d_fobs = -p * f_host / f_corr**2
            d_fhost = p * f_obs / f_corr**2
            p_corr_err = math.sqrt(
                (d_p * p_err) ** 2 + (d_fobs * f_obs_err) ** 2 + (d_fhost * f_host_err) ** 2
            )
    return HostCorrected(
        mag=mag_corr,
        mag_err=mag_corr_err,
        p=p_corr,
        p_err=p_corr_err,
        flux_obs_mjy=f_obs,
        flux_obs_err_mjy=f_obs_err,
        flux_host_mjy=f_host,
        flux_host_err_mjy=f_host_err,
        flux_corr_mjy=f_corr,
        flux_corr_err_mjy=f_corr_err,
        notes=tuple(notes),
    )


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")


def _interpolate(grids: tuple[np.ndarray, ...], values, point: list[float]) -> float:
    interpolator = RegularGridInterpolator(
        grids, np.asarray(values, dtype=float), method="linear", bounds_error=False, fill_value=None
    )
    return float(interpolator([point])[0])
