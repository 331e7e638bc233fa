"""Bit flags stored in the ``flags`` columns, one :class:`enum.IntFlag` per table.

Each enum states what every bit means; the integer values are part of the
store's schema and never change meaning (add new bits, never renumber). As in
astropop, "what kind of problem" and "what caused it" are separate: a status
bit says how far a row got, an ``ERROR_*`` bit says which step failed, and the
reason is kept as text in the row's ``error`` column.

Manual quality flags from flags.toml are kept apart from automatic ones
(:class:`ResultFlags` vs :class:`ManualFlags`) so the site can show which is
which; both are recomputed on every build.
"""

from __future__ import annotations

import enum


class _Labelled(enum.IntFlag):
    @classmethod
    def labels(cls, value: int) -> list[str]:
        """Names of the bits set in ``value``, lowest bit first."""
        return [member.name for member in cls if member.value & value and member.name]


class EpochFlags(_Labelled):
    """State of a night at one telescope (``Epoch.flags``)."""

    LISTED = 1 << 0  #: the archive listing of this night succeeded at least once
    ERROR_LISTING = 1 << 1  #: the last listing attempt failed (reason in ``Epoch.error``)
    DOWNLOADED = 1 << 2  #: every listed file is present and verified
    REDUCED = 1 << 3  #: every frame of the night went through the reduction
    CLOSED = 1 << 4  #: no longer polled for new files


class RawFitFlags(_Labelled):
    """State of a raw frame (``RawFit.flags``)."""

    DOWNLOADED = 1 << 0  #: file present, size (and checksum) verified, made read-only
    CLASSIFIED = 1 << 1  #: header rules gave type, instrument, band, mode
    ERROR_DOWNLOAD = 1 << 2  #: download failed (reason in ``RawFit.error``)
    ERROR_CLASSIFY = 1 << 3  #: header could not be classified (reason in ``RawFit.error``)
    EXCLUDED = 1 << 4  #: excluded from reduction by a frame flag in flags.toml
    SATURATED = 1 << 5  #: more saturated pixels than the selection threshold
    DUPLICATE = 1 << 6  #: same bytes as another file of the night (named in ``RawFit.error``)


class MasterFlags(_Labelled):
    """State of a master calibration frame (``Master*.flags``)."""

    BAD = 1 << 0  #: never used for matching (set by a person or by a check)
    FEW_FRAMES = 1 << 1  #: built from fewer frames than recommended


class ReducedFitFlags(_Labelled):
    """State of a calibrated science frame (``ReducedFit.flags``)."""

    CALIBRATED = 1 << 0  #: bias, dark and flat applied
    ASTROMETRY_OK = 1 << 1  #: a WCS was found and checked
    PHOTOMETRY_DONE = 1 << 2  #: apertures measured for the sources in the field
    ERROR_CALIBRATION = 1 << 3  #: no usable masters, or calibration raised
    ERROR_ASTROMETRY = 1 << 4  #: plate solving failed (reason in ``ReducedFit.error``)
    ERROR_PHOTOMETRY = 1 << 5  #: aperture photometry failed
    NO_MASTER_BIAS = 1 << 6  #: calibrated without a master bias
    NO_MASTER_DARK = 1 << 7  #: calibrated without a master dark
    NO_MASTER_FLAT = 1 << 8  #: calibrated without a master flat
    COSMIC_RAYS_MASKED = 1 << 9  #: cosmic-ray hits were detected and masked
    LOW_TRANSPARENCY = 1 << 10  #: zero point far below the night's (clouds); reason in error
    HEADER_WCS = 1 << 11  #: WCS from the raw header, checked against the field (not solved)


class PhotometryFlags(_Labelled):
    """Quality of one aperture measurement (``AperPhotResult.flags``)."""

    SATURATED = 1 << 0  #: a pixel in the aperture reached the saturation level
    NEAR_EDGE = 1 << 1  #: the aperture or annulus leaves the image
    COSMIC_RAY = 1 << 2  #: a masked cosmic-ray pixel lies in the aperture
    CROWDED = 1 << 3  #: another source falls inside the annulus
    LOW_SNR = 1 << 4  #: signal-to-noise below 5


class ResultFlags(_Labelled):
    """Automatic quality flags of a final result (``PhotoPolResult.flags``)."""

    BAD_PHOTOMETRY = 1 << 0  #: photometry judged bad (any reason below)
    BAD_POLARIMETRY = 1 << 1  #: polarimetry judged bad (any reason below)
    P_OUT_OF_RANGE = 1 << 2  #: p outside [0, 1]
    LARGE_MAG_ERROR = 1 << 3  #: magnitude error above the configured limit
    LARGE_POL_ERROR = 1 << 4  #: p or chi error above the configured limit
    FEW_CALIBRATORS = 1 << 5  #: fewer calibrators than the configured minimum
    ASTROMETRY_FAILED = 1 << 6  #: a member frame has no WCS
    TARGET_SATURATED = 1 << 7  #: the target saturated in a member frame
    HOST_NOT_CORRECTED = 1 << 8  #: a host-galaxy table exists but could not be applied
    LOW_TRANSPARENCY = 1 << 9  #: a member frame lost most of its light to clouds
    HEADER_WCS = 1 << 10  #: a member frame's WCS is its header's, checked, not plate-solved


class ManualFlags(_Labelled):
    """Flags a person set in flags.toml (``PhotoPolResult.manual_flags``)."""

    BAD_PHOTOMETRY = 1 << 0  #: a curator marked the photometry bad
    BAD_POLARIMETRY = 1 << 1  #: a curator marked the polarimetry bad
    BAD_FRAME = 1 << 2  #: a member frame was excluded by a frame flag
