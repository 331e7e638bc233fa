"""Instrument specifications (IOP4's instrument classes, Escudero Pedrosa et al. 2024 §6)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

PolarimetryKind = Literal["wheel", "hwp", "none"]


@dataclass(frozen=True)
class InstrumentSpec:
    """Fixed facts about one instrument.

    Attributes
    ----------
    name : str
        Name stored in the database (``RawFit.instrument``).
    telescope : str
        Telescope the instrument is mounted on.
    telescop_keyword : str
        Value of the TELESCOP header keyword (IOP4's telescope classes).
    pixscale_arcsec : float
        Pixel scale at ``reference_binning`` (IOP4's instrument classes).
    reference_binning : int
        Binning at which ``pixscale_arcsec`` and ``full_shape`` hold.
    full_shape : tuple of int
        Detector (NAXIS1, NAXIS2) at ``reference_binning``.
    gain_e_per_adu : float
        Detector gain (IOP4's instrument classes; DIPOL's 1.0 is IOP4's placeholder).
    pixel_size_um : float
        Physical pixel size at ``reference_binning`` (camera data sheets:
        Andor iKon-L and Roper 13.5 um, CAFOS SITe 24 um, DIPOL's ZWO ASI
        3.76 um binned 2x2).
    read_noise_e : float
        Read noise in electrons (simulator assumption, typical of the camera type).
    bias_level_adu : float
        Bias pedestal (simulator assumption).
    dark_e_per_s : float
        Mean dark current per pixel (simulator assumption; the OSN CCDs and
        CAFOS are cooled so far that it is negligible, Escudero Pedrosa et al. 2024 §6.1-6.2).
    saturation_adu : int
        ADC limit of the 16-bit converters.
    polarimetry : str
        "wheel" (OSN polarizer filter wheel, Escudero Pedrosa et al. 2024 Eqs. 1-9) or "hwp"
        (half-wave plate + Wollaston, Eqs. 10-20).
    pol_angles : tuple of float
        The polarizer or HWP angles of a full sequence (IOP4's instrument classes).
    min_pol_angles : int
        Fewest angles a sequence may have and still be reduced.
    oe_offset_px : tuple of float or None
        Signed displacement from the right-hand image to the left-hand one of
        a Wollaston pair, at ``reference_binning`` (IOP4's instrument classes).
    oe_offset_std_px : tuple of float or None
        Scatter of that displacement.
    needs_darks : bool
        Whether master darks are built and applied (only DIPOL; IOP4's instrument classes).
    hwp_average : {"fit", "cycles"}
        How a half-wave-plate sequence's Stokes parameters are averaged: one
        least-squares fit over all angles, or per 4-position cycle with the
        iterative 2-3 sigma weights of DIPOL's reduction software (Piirola et
        al. 2020); ``[polarimetry] hwp_average`` in config.toml overrides it.
    pairs_in_photometry : bool
        Whether photometric frames show O/E pairs too (IOP4's ``has_pairs``
        hook: CAFOS's Wollaston is in the beam only in polarimetry).
    subframes_by_quads : bool
        Whether cut-out sub-frames (``XORGSUBF``/``YORGSUBF``) are placed by
        quads against a solved full frame of the same target (DIPOL's
        polarimetry cuts) instead of being solved on their own.
    flats_per_pol_setup : bool
        Whether a polarimetric frame needs flats taken with its own
        polarimetric setup (mode and angle); DIPOL's flats serve every angle.
    hwp_fit_method : str
        The method name stored for a one-fit half-wave-plate result
        (``PhotoPolResult.method``; DIPOL's is ``"dipol-16"``).
    overscan_section, overscan_keyword : str
        The overscan (or prescan) columns or rows, as a fixed FITS section
        ``[x1:x2,y1:y2]`` or the header keyword that holds one (``BIASSEC``);
        the keyword wins when present. Empty: no overscan subtracted.
    trim_section, trim_keyword : str
        The data section kept after overscan subtraction, the same way
        (``TRIMSEC``, ``DATASEC``). Empty: the whole frame is kept.
    gain_keyword, read_noise_keyword, saturation_keyword : str
        Header keywords holding the frame's own gain (e-/ADU), read noise (e-) and
        saturation level (ADU), e.g. ``GAIN``/``RDNOISE`` or ESO's
        ``ESO DET OUT1 GAIN``/``ESO DET OUT1 RON``; a frame without a usable value
        uses the fixed one above (:meth:`for_header`). Empty: always the fixed value.
    sky_rotation_deg : float
        Typical position angle of the image +y axis East of North (DIPOL:
        177.6 deg, IOP4's instrument classes; others: aligned, simulator assumption).
    """

    name: str
    telescope: str
    telescop_keyword: str
    pixscale_arcsec: float
    reference_binning: int
    full_shape: tuple[int, int]
    gain_e_per_adu: float
    pixel_size_um: float
    read_noise_e: float
    bias_level_adu: float
    dark_e_per_s: float
    saturation_adu: int
    polarimetry: PolarimetryKind
    pol_angles: tuple[float, ...]
    min_pol_angles: int
    oe_offset_px: tuple[float, float] | None = None
    oe_offset_std_px: tuple[float, float] | None = None
    needs_darks: bool = False
    sky_rotation_deg: float = 0.0
    hwp_average: Literal["fit", "cycles"] = "fit"
    hwp_fit_method: str = "hwp-lsq"
    pairs_in_photometry: bool = True
    subframes_by_quads: bool = False
    flats_per_pol_setup: bool = True
    overscan_section: str = ""
    overscan_keyword: str = ""
    trim_section: str = ""
    trim_keyword: str = ""
    gain_keyword: str = ""
    read_noise_keyword: str = ""
    saturation_keyword: str = ""

    def for_header(self, header) -> InstrumentSpec:
        """This spec with the gain, read noise and saturation a frame's header gives.

        Each value comes from its keyword when the header holds a positive finite
        number there, else stays the fixed one; the spec itself is returned when no
        keyword changes anything.
        """
        changes = {}
        for keyword, attribute in (
            (self.gain_keyword, "gain_e_per_adu"),
            (self.read_noise_keyword, "read_noise_e"),
            (self.saturation_keyword, "saturation_adu"),
        ):
            value = _positive_number(header, keyword)
            if value is not None and value != getattr(self, attribute):
                changes[attribute] = int(value) if attribute == "saturation_adu" else value
        return replace(self, **changes) if changes else self

    def has_pairs(self, obsmode: str | None) -> bool:
        """Whether a frame in ``obsmode`` shows O/E image pairs (IOP4's ``has_pairs``)."""
        if self.oe_offset_px is None:
            return False
        return obsmode == "polarimetry" or self.pairs_in_photometry

    def solves_by_quads(self, subframe_origin: tuple[int, int]) -> bool:
        """Whether a frame cut at ``subframe_origin`` is placed by quads (see the attribute)."""
        return self.subframes_by_quads and subframe_origin != (0, 0)

    def pixscale_at(self, binning: int) -> float:
        """Pixel scale in arcsec/px at ``binning`` (IOP4's instrument classes)."""
        return self.pixscale_arcsec / self.reference_binning * binning

    def shape_at(self, binning: int) -> tuple[int, int]:
        """Full-frame (NAXIS1, NAXIS2) at ``binning``."""
        factor = self.reference_binning / binning
        return (round(self.full_shape[0] * factor), round(self.full_shape[1] * factor))

    def pixel_area_cm2_at(self, binning: int) -> float:
        """Physical area of one pixel at ``binning`` (for cosmic-ray rates)."""
        size_cm = self.pixel_size_um * 1e-4 / self.reference_binning * binning
        return size_cm**2

    def oe_offset_at(self, binning: int) -> tuple[float, float] | None:
        """O/E displacement in pixels at ``binning``."""
        if self.oe_offset_px is None:
            return None
        factor = self.reference_binning / binning
        return (self.oe_offset_px[0] * factor, self.oe_offset_px[1] * factor)


def _positive_number(header, keyword: str) -> float | None:
    """The positive finite number ``header`` holds under ``keyword``, or None."""
    if not keyword:
        return None
    try:
        value = float(header.get(keyword))
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) and value > 0 else None


#: OSN filter-wheel angles (FILTER R_45, R0, R45, R90; IOP4's instrument classes).
OSN_WHEEL_ANGLES = (-45.0, 0.0, 45.0, 90.0)
#: CAFOS INSPOROT values of a sequence (IOP4's instrument classes).
CAFOS_HWP_ANGLES = (0.0, 22.48, 44.98, 67.48)
#: DIPOL's 16 HWP angles in 22.5 degree steps (IOP4's instrument classes).
DIPOL_HWP_ANGLES = tuple(22.5 * i for i in range(16))

_OSN_CCD = {
    "saturation_adu": 65535,
    "polarimetry": "wheel",
    "pol_angles": OSN_WHEEL_ANGLES,
    "min_pol_angles": 4,
    "reference_binning": 1,
}

#: The built-in instruments, in the order they are listed.
BUILTIN_SPECS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec(
        name="AndorT90",
        telescope="OSN-T090",
        telescop_keyword="T90-OSN",
        pixscale_arcsec=0.387,  # 13.2' field (Escudero Pedrosa et al. 2024 §6.1)
        full_shape=(2048, 2048),
        gain_e_per_adu=4.5,
        pixel_size_um=13.5,
        read_noise_e=7.0,
        bias_level_adu=1000.0,
        dark_e_per_s=0.0005,
        **_OSN_CCD,
    ),
    InstrumentSpec(
        name="RoperT90",
        telescope="OSN-T090",
        telescop_keyword="T90-OSN",
        pixscale_arcsec=0.387,
        full_shape=(2048, 2048),
        gain_e_per_adu=7.14,
        pixel_size_um=13.5,
        read_noise_e=9.0,
        bias_level_adu=600.0,
        dark_e_per_s=0.001,
        **_OSN_CCD,
    ),
    InstrumentSpec(
        name="AndorT150",
        telescope="OSN-T150",
        telescop_keyword="T150-OSN",
        pixscale_arcsec=0.232,  # 7.92' field (Escudero Pedrosa et al. 2024 §6.1)
        full_shape=(2048, 2048),
        gain_e_per_adu=4.5,
        pixel_size_um=13.5,
        read_noise_e=7.0,
        bias_level_adu=1000.0,
        dark_e_per_s=0.0005,
        **_OSN_CCD,
    ),
    InstrumentSpec(
        name="CAFOS",
        telescope="CAHA-T220",
        telescop_keyword="CA-2.2",
        pixscale_arcsec=0.530,
        reference_binning=1,
        full_shape=(
            800,
            800,
        ),  # the 800x800 cut normally used (Escudero Pedrosa et al. 2024 §6.2)
        gain_e_per_adu=1.45,
        pixel_size_um=24.0,
        read_noise_e=5.0,
        bias_level_adu=650.0,
        dark_e_per_s=0.0,
        saturation_adu=65535,
        polarimetry="hwp",
        pol_angles=CAFOS_HWP_ANGLES,
        min_pol_angles=4,
        oe_offset_px=(-35.72, -0.197),
        oe_offset_std_px=(1.34, 1.02),
        pairs_in_photometry=False,
    ),
    InstrumentSpec(
        name="DIPOL",
        telescope="OSN-T090",
        telescop_keyword="T90-OSN",
        pixscale_arcsec=0.134,  # at 2x2 (IOP4's instrument classes)
        reference_binning=2,
        full_shape=(4128, 2812),  # 9.22' x 6.28' field at 0.134"/px
        gain_e_per_adu=1.0,
        pixel_size_um=7.52,
        read_noise_e=3.0,
        bias_level_adu=500.0,
        dark_e_per_s=0.05,
        saturation_adu=65535,
        polarimetry="hwp",
        pol_angles=DIPOL_HWP_ANGLES,
        min_pol_angles=8,
        oe_offset_px=(-209.0, 13.0),
        oe_offset_std_px=(12.0, 16.0),
        needs_darks=True,
        hwp_average="cycles",
        hwp_fit_method="dipol-16",
        subframes_by_quads=True,
        flats_per_pol_setup=False,
        sky_rotation_deg=177.6,
    ),
)
