"""Automatic flags from the thresholds of config.toml's ``[quality]`` section.

Recomputed from scratch on every build, so a changed threshold takes effect
at once. :func:`apply_automatic_flags` works in ONE transaction and writes
only the rows that change. Its texts in ``PhotoPolResult.flag_reasons`` start
with ``auto:``; the others (the manual flags' ``manual:``) are kept.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

from iopreport.flags.rows import raw_rows, reason_list, update_results
from iopreport.store.bits import PhotometryFlags, ReducedFitFlags
from iopreport.store.bits import ResultFlags as RF
from iopreport.store.models import (
    AperPhotResult,
    PhotoPolMember,
    PhotoPolResult,
    ReducedFit,
    database_proxy,
)

AUTO_PREFIX = "auto:"


@dataclass
class AutoReport:
    """What :func:`apply_automatic_flags` did."""

    results: int = 0
    changed: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # bit name -> results with it
    seconds: float = 0.0

    def summary(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in sorted(self.counts.items())) or "none"
        return f"automatic flags on {self.results} results ({counts}), {self.changed} changed"


#: Bits :func:`apply_automatic_flags` computes; others (HOST_NOT_CORRECTED) are kept as found.
OWNED_BITS = (
    RF.BAD_PHOTOMETRY
    | RF.BAD_POLARIMETRY
    | RF.P_OUT_OF_RANGE
    | RF.LARGE_MAG_ERROR
    | RF.LARGE_POL_ERROR
    | RF.FEW_CALIBRATORS
    | RF.ASTROMETRY_FAILED
    | RF.TARGET_SATURATED
    | RF.LOW_TRANSPARENCY
    | RF.HEADER_WCS
)
_OWNED = int(OWNED_BITS)
_OWNED_PREFIXES = tuple(f"{AUTO_PREFIX} {bit.name}:" for bit in RF if bit & OWNED_BITS and bit.name)


def _failed_astrometry() -> set[int]:
    """Results with a member frame reduced without a WCS."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .where(ReducedFit.flags.bin_and(int(ReducedFitFlags.ASTROMETRY_OK)) == 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


def _low_transparency() -> set[int]:
    """Results with a member frame that lost most of its light to clouds."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .where(ReducedFit.flags.bin_and(int(ReducedFitFlags.LOW_TRANSPARENCY)) != 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


def _header_wcs() -> set[int]:
    """Results with a member frame whose WCS came from its header (checked, not solved)."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .where(ReducedFit.flags.bin_and(int(ReducedFitFlags.HEADER_WCS)) != 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


def _saturated_target() -> set[int]:
    """Results whose own source has a saturated aperture on a member frame."""
    query = (
        PhotoPolMember.select(PhotoPolMember.result)
        .join(PhotoPolResult, on=(PhotoPolResult.id == PhotoPolMember.result))
        .join(ReducedFit, on=(ReducedFit.rawfit == PhotoPolMember.rawfit))
        .join(
            AperPhotResult,
            on=(
                (AperPhotResult.reducedfit == ReducedFit.id)
                & (AperPhotResult.astrosource == PhotoPolResult.astrosource)
            ),
        )
        .where(AperPhotResult.flags.bin_and(int(PhotometryFlags.SATURATED)) != 0)
        .distinct()
        .tuples()
    )
    return {rid for (rid,) in query}


_P_OUT_OF_RANGE = int(RF.P_OUT_OF_RANGE)
_LARGE_MAG_ERROR = int(RF.LARGE_MAG_ERROR)
_LARGE_POL_ERROR = int(RF.LARGE_POL_ERROR)
_FEW_CALIBRATORS = int(RF.FEW_CALIBRATORS)
_ASTROMETRY_FAILED = int(RF.ASTROMETRY_FAILED)
_TARGET_SATURATED = int(RF.TARGET_SATURATED)
_LOW_TRANSPARENCY = int(RF.LOW_TRANSPARENCY)
_PHOTOMETRY_TROUBLE = (
    _LARGE_MAG_ERROR | _FEW_CALIBRATORS | _ASTROMETRY_FAILED | _TARGET_SATURATED | _LOW_TRANSPARENCY
)
_POLARIMETRY_TROUBLE = _P_OUT_OF_RANGE | _LARGE_POL_ERROR | _ASTROMETRY_FAILED | _TARGET_SATURATED
_BIT_NAMES = tuple((bit.name, int(bit)) for bit in RF if bit.name)


def automatic_flags(
    values: dict, quality, *, no_wcs: bool, saturated: bool, cloudy=False, header_wcs=False
):
    """Automatic flags of one result (pure): ``(ResultFlags bits as int, reason texts)``.

    ``values`` holds the result's ``mode``, ``mag``, ``mag_err``,
    ``n_calibrators``, ``p``, ``p_err`` and ``chi_err``; ``quality`` is the
    ``[quality]`` section of config.toml.
    """
    bits = 0
    texts = []
    polarimetric = values["mode"] == "polarimetry"
    photometric = not polarimetric or values["mag"] is not None
    p = values["p"]
    if polarimetric and p is not None and not (math.isfinite(p) and 0.0 <= p <= 1.0):
        bits |= _P_OUT_OF_RANGE
        texts.append(f"{AUTO_PREFIX} P_OUT_OF_RANGE: p = {p:.4g} outside [0, 1]")
    mag_err = values["mag_err"]
    if mag_err is not None and mag_err > quality.max_mag_err:
        bits |= _LARGE_MAG_ERROR
        texts.append(
            f"{AUTO_PREFIX} LARGE_MAG_ERROR: magnitude error {mag_err:.3f} > "
            f"{quality.max_mag_err:g} (quality.max_mag_err)"
        )
    p_err, chi_err = values["p_err"], values["chi_err"]
    if polarimetric and p_err is not None and 100.0 * p_err > quality.max_p_err_percent:
        bits |= _LARGE_POL_ERROR
        texts.append(
            f"{AUTO_PREFIX} LARGE_POL_ERROR: p error {100.0 * p_err:.2f}% > "
            f"{quality.max_p_err_percent:g}% (quality.max_p_err_percent)"
        )
    elif polarimetric and chi_err is not None and chi_err > quality.max_chi_err_deg:
        bits |= _LARGE_POL_ERROR
        texts.append(
            f"{AUTO_PREFIX} LARGE_POL_ERROR: angle error {chi_err:.1f} deg > "
            f"{quality.max_chi_err_deg:g} deg (quality.max_chi_err_deg)"
        )
    n_cal = values["n_calibrators"]
    if n_cal is not None and n_cal < quality.min_calibrators:
        bits |= _FEW_CALIBRATORS
        texts.append(
            f"{AUTO_PREFIX} FEW_CALIBRATORS: {n_cal} calibrator(s) used < "
            f"{quality.min_calibrators} (quality.min_calibrators)"
        )
    if no_wcs:
        bits |= _ASTROMETRY_FAILED
        texts.append(f"{AUTO_PREFIX} ASTROMETRY_FAILED: a member frame has no astrometric solution")
    if cloudy:
        bits |= _LOW_TRANSPARENCY
        texts.append(
            f"{AUTO_PREFIX} LOW_TRANSPARENCY: a member frame lost most of its light to clouds"
        )
    if header_wcs:  # a note, not a fault: the WCS passed its check against the field
        bits |= int(RF.HEADER_WCS)
        texts.append(
            f"{AUTO_PREFIX} HEADER_WCS: a member frame's WCS is its header's "
            "(checked against the catalog sources, not plate-solved)"
        )
    if saturated:
        bits |= _TARGET_SATURATED
        texts.append(f"{AUTO_PREFIX} TARGET_SATURATED: the target is saturated in a member frame")
    if polarimetric and p is None:
        bits |= int(RF.BAD_POLARIMETRY)
        why = values.get("error") or "no polarization computed"
        texts.append(f"{AUTO_PREFIX} BAD_POLARIMETRY: {why}")
    if photometric and bits & _PHOTOMETRY_TROUBLE:
        bits |= int(RF.BAD_PHOTOMETRY)
    if polarimetric and bits & _POLARIMETRY_TROUBLE:
        bits |= int(RF.BAD_POLARIMETRY)
    return bits, texts


def apply_automatic_flags(config) -> AutoReport:
    """Recompute ``PhotoPolResult.flags`` of every result from ``config.quality``.

    One transaction. Bits other than :data:`OWNED_BITS` (set by other stages)
    are kept, and so are reason texts that are not this function's
    (``auto: <BIT>:`` for an owned bit).
    """
    started = time.perf_counter()
    quality = getattr(config, "quality", config)
    report = AutoReport()
    counts: dict[str, int] = defaultdict(int)
    with database_proxy.atomic():
        no_wcs = _failed_astrometry()
        saturated = _saturated_target()
        cloudy = _low_transparency()
        from_header = _header_wcs()
        query = PhotoPolResult.select(
            PhotoPolResult.id,
            PhotoPolResult.mode,
            PhotoPolResult.mag,
            PhotoPolResult.mag_err,
            PhotoPolResult.n_calibrators,
            PhotoPolResult.p,
            PhotoPolResult.p_err,
            PhotoPolResult.chi_err,
            PhotoPolResult.flags,
            PhotoPolResult.flag_reasons,
            PhotoPolResult.error,
        )
        names = ("id", "mode", "mag", "mag_err", "n_calibrators", "p", "p_err", "chi_err")
        names += ("flags", "flag_reasons", "error")
        changed = []
        for values in raw_rows(query):
            row = dict(zip(names, values, strict=True))
            report.results += 1
            bits, texts = automatic_flags(
                row,
                quality,
                no_wcs=row["id"] in no_wcs,
                saturated=row["id"] in saturated,
                cloudy=row["id"] in cloudy,
                header_wcs=row["id"] in from_header,
            )
            new_flags = bits | (row["flags"] & ~_OWNED)
            old_reasons = reason_list(row["flag_reasons"])
            kept = [r for r in old_reasons if not r.startswith(_OWNED_PREFIXES)]
            new_reasons = texts + kept
            if new_flags:
                for name, value in _BIT_NAMES:
                    if new_flags & value:
                        counts[name] += 1
            if new_flags != row["flags"] or new_reasons != old_reasons:
                changed.append((new_flags, new_reasons, row["id"]))
        update_results(changed, ("flags", "flag_reasons"))
    report.changed = len(changed)
    report.counts = dict(counts)
    report.seconds = time.perf_counter() - started
    return report
