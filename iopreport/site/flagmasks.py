"""Which flag bits concern a magnitude and which a polarization.

A flag acts on what it concerns: the site hides or marks a result's magnitude
for the bits of :data:`MAG_RESULT_FLAGS` and :data:`MAG_MANUAL_FLAGS` only, its
p, chi, q and u for those of :data:`POL_RESULT_FLAGS` and :data:`POL_MANUAL_FLAGS`.
"""

from __future__ import annotations

import functools

from iopreport.store.bits import ManualFlags, ResultFlags

#: Automatic and manual flag bits that concern a magnitude. A flag acts on what it
#: concerns: FEW_CALIBRATORS (a magnitude-calibration flag) leaves p and chi standing.
MAG_RESULT_FLAGS = int(
    ResultFlags.BAD_PHOTOMETRY
    | ResultFlags.LARGE_MAG_ERROR
    | ResultFlags.FEW_CALIBRATORS
    | ResultFlags.ASTROMETRY_FAILED
    | ResultFlags.TARGET_SATURATED
    | ResultFlags.HOST_NOT_CORRECTED
    | ResultFlags.LOW_TRANSPARENCY
)
MAG_MANUAL_FLAGS = int(ManualFlags.BAD_PHOTOMETRY | ManualFlags.BAD_FRAME)
#: Flag bits that concern the polarization (p, chi, q, u).
POL_RESULT_FLAGS = int(
    ResultFlags.BAD_POLARIMETRY
    | ResultFlags.P_OUT_OF_RANGE
    | ResultFlags.LARGE_POL_ERROR
    | ResultFlags.ASTROMETRY_FAILED
    | ResultFlags.TARGET_SATURATED
    | ResultFlags.HOST_NOT_CORRECTED
)
POL_MANUAL_FLAGS = int(ManualFlags.BAD_POLARIMETRY | ManualFlags.BAD_FRAME)


def flags_concern(quantity: str, auto_labels: str, manual_labels: str) -> bool:
    """Whether a result's flags (bit names joined by ``|``) concern ``quantity``.

    ``quantity`` is ``"mag"`` or one of the polarization panels (p, chi, q, u).
    """
    auto_mask, manual_mask = (
        (MAG_RESULT_FLAGS, MAG_MANUAL_FLAGS)
        if quantity == "mag"
        else (POL_RESULT_FLAGS, POL_MANUAL_FLAGS)
    )
    auto = _bits(ResultFlags, auto_labels)
    manual = _bits(ManualFlags, manual_labels)
    return bool(auto & auto_mask or manual & manual_mask)


@functools.lru_cache(maxsize=1024)
def _bits(enum, labels: str) -> int:
    """Integer of flag bit names joined by ``|`` or ``, `` (unknown names ignored)."""
    value = 0
    for name in labels.replace(",", "|").split("|"):
        member = enum.__members__.get(name.strip())
        if member is not None:
            value |= int(member)
    return value
