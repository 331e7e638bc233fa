"""Host-galaxy correction of a night's stored results (Nilsson et al. 2007; R band).

For every result of a source whose catalog entry carries a host table, the
host flux is interpolated at the result's aperture radius and seeing (both in
arcsec, from the member frames) and removed from the observed flux; p is
scaled by F_obs / F_corr (:func:`iopreport.reduce.host.correct`). A
polarimetric sequence uses its own total-flux magnitude, so it needs no
interpolation in the light curve as the reference does (IOP4's code).
Results where a table exists but the correction cannot be made get
``HOST_NOT_CORRECTED`` and the reason among their notes.
"""

from __future__ import annotations

import math
import statistics

from iopreport.catalog import Catalog
from iopreport.reduce.host import correct, host_flux
from iopreport.store import AstroSource, Epoch, PhotoPolMember, PhotoPolResult, ReducedFit
from iopreport.store.bits import ResultFlags
from iopreport.store.models import database_proxy


def correct_host_galaxies(catalog: Catalog, epoch: Epoch) -> int:
    """Apply the host correction to ``epoch``'s results; returns how many were corrected."""
    names = [s.name for s in catalog.sources if s.host is not None]
    if not names:
        return 0
    corrected = 0
    query = (
        PhotoPolResult.select(PhotoPolResult, AstroSource)
        .join(AstroSource)
        .where((PhotoPolResult.epoch == epoch) & (AstroSource.name.in_(names)))
    )
    with database_proxy.atomic():
        for result in query:
            table = catalog.get(result.astrosource.name).host
            outcome = _correct_one(result, table)
            notes = [n for n in (result.flag_reasons or []) if not n.startswith("host:")]
            flags = ResultFlags(result.flags) & ~ResultFlags.HOST_NOT_CORRECTED
            values = {
                "mag_host_corrected": None,
                "mag_host_corrected_err": None,
                "p_host_corrected": None,
                "p_host_corrected_err": None,
            }
            if isinstance(outcome, str):
                flags |= ResultFlags.HOST_NOT_CORRECTED
                notes.append(f"host: not corrected: {outcome}")
            else:
                values.update(
                    mag_host_corrected=outcome.mag,
                    mag_host_corrected_err=outcome.mag_err,
                    p_host_corrected=outcome.p,
                    p_host_corrected_err=outcome.p_err,
                )
                notes.append(f"host: {outcome.flux_host_mjy:.2f} mJy removed ({table.reference})")
                corrected += 1
            PhotoPolResult.update(flags=int(flags), flag_reasons=notes, **values).where(
                PhotoPolResult.id == result.id
            ).execute()
    return corrected


def _correct_one(result: PhotoPolResult, table):
    if result.mag is None:
        return "no calibrated magnitude"
    aperture, seeing = _aperture_and_seeing(result)
    if aperture is None:
        return "aperture or pixel scale unknown"
    if seeing is None and table.two_dimensional:
        return "seeing unknown"
    try:
        host = host_flux(table, aperture, seeing)
    except ValueError as exc:
        return str(exc)
    outcome = correct(result.mag, result.mag_err, result.p, result.p_err, host, band=result.band)
    if not outcome.applied:
        return outcome.reason
    return outcome


def _aperture_and_seeing(result: PhotoPolResult) -> tuple[float | None, float | None]:
    """Aperture radius and seeing FWHM in arcsec, medians over the member frames."""
    reduced = list(
        ReducedFit.select()
        .join(PhotoPolMember, on=(PhotoPolMember.rawfit == ReducedFit.rawfit))
        .where(PhotoPolMember.result == result)
    )
    scales = [r.pixscale_arcsec for r in reduced if r.pixscale_arcsec]
    seeings = [r.seeing_fwhm_arcsec for r in reduced if r.seeing_fwhm_arcsec]
    if not scales or result.aperture_px is None or not math.isfinite(result.aperture_px):
        return None, None
    aperture = result.aperture_px * statistics.median(scales)
    return aperture, statistics.median(seeings) if seeings else None
