"""Count rates of the simulated instruments and the exposure times observers choose.

How many photo-electrons a star or the dark sky gives per second in each band and
instrument, and :func:`choose_exptime`: the longest usual exposure that keeps the
brightest star of interest below saturation at the night's best seeing.
"""

from __future__ import annotations

#: Photo-electrons per second from a magnitude-0 star, R band, per instrument
#: (telescope area x throughput; simulator assumption giving realistic counts).
ZERO_MAG_RATE_R = {
    "AndorT90": 2.5e9,
    "RoperT90": 2.0e9,
    "DIPOL": 1.5e9,
    "AndorT150": 7.0e9,
    "CAFOS": 1.4e10,
}
#: Throughput in each band relative to R (simulator assumption).
BAND_THROUGHPUT = {"U": 0.12, "B": 0.55, "V": 0.85, "R": 1.0, "I": 0.65}
#: Dark-sky brightness, mag per square arcsec (typical of Spanish sites).
SKY_MAG_ARCSEC2 = {"U": 22.0, "B": 22.6, "V": 21.6, "R": 20.9, "I": 19.9}
#: Largest fraction of the flux one polarimetric image receives: a polarizer, or one
#: Wollaston beam behind a half-wave plate, passes (1 + p)/2 (optics.py), with p up to 10 %.
POL_IMAGE_FRACTION = 0.55
#: Seeing (arcsec) at which the usual exposure puts the brightest star at a third of
#: saturation (a typical night; simulator assumption).
TYPICAL_SEEING_ARCSEC = 2.2
#: Highest fraction of the detector's range above bias that the brightest star may
#: reach at the best seeing of the night: observers shorten the exposure of a bright
#: standard so that it does not saturate when the seeing improves (the planned peak,
#: a Moffat profile centred on a pixel, is the highest the star can reach).
BEST_SEEING_PEAK_FRACTION = 1.0


#: Longest single exposure per instrument (DIPOL's CMOS sequences use short
#: exposures; simulator assumption).
MAX_EXPTIME_S = {"DIPOL": 60.0, "CAFOS": 180.0}
NICE_EXPTIMES = (
    0.1,
    0.15,
    0.2,
    0.5,
    1.0,
    2.0,
    3.0,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    90.0,
    120.0,
    180.0,
    240.0,
    300.0,
)


def choose_exptime(
    spec, binning, name, target, band, brightness, transmission, best_seeing_arcsec=None
) -> float:
    """Longest usual exposure that keeps the brightest star of interest unsaturated.

    As observers plan: the brightest star in the field (target or calibrator,
    ``brightness(target, band)``) peaks near a third of saturation in typical seeing
    (:data:`TYPICAL_SEEING_ARCSEC`), and below :data:`BEST_SEEING_PEAK_FRACTION` of the
    range above bias at the night's best seeing (``best_seeing_arcsec``), so that a
    bright standard gets a short exposure. ``transmission`` is the largest fraction of
    the flux one image receives (1 for photometry, :data:`POL_IMAGE_FRACTION` for a
    polarizer position or a Wollaston beam).
    """
    from iopreport.simulate.render import moffat_peak_fraction

    magnitude = brightness(target, band)
    rate = ZERO_MAG_RATE_R[name] * BAND_THROUGHPUT[band] * 10 ** (-0.4 * magnitude) * transmission

    def peak_adu_per_s(seeing_arcsec: float) -> float:
        fwhm_px = seeing_arcsec / spec.pixscale_at(binning)
        return rate * moffat_peak_fraction(fwhm_px) / spec.gain_e_per_adu

    wanted = spec.saturation_adu / 3.0 / max(peak_adu_per_s(TYPICAL_SEEING_ARCSEC), 1e-9)
    if best_seeing_arcsec is not None:
        headroom = BEST_SEEING_PEAK_FRACTION * (spec.saturation_adu - spec.bias_level_adu)
        wanted = min(wanted, headroom / max(peak_adu_per_s(best_seeing_arcsec), 1e-9))
    wanted = min(wanted, MAX_EXPTIME_S.get(name, NICE_EXPTIMES[-1]))
    fitting = [t for t in NICE_EXPTIMES if t <= wanted]
    return fitting[-1] if fitting else NICE_EXPTIMES[0]
