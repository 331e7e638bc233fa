"""The sections of config.toml about instruments: [polarimetry] with its
[[polarimetry.instrumental]] tables, and the cameras described in [instruments.NAME].
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from iopreport.config.checks import (
    check_fraction,
    check_frame_types,
    check_iso_time,
    check_not_negative,
    check_pair,
    check_positive,
    check_section,
    setting,
)
from iopreport.instruments.polarization import InstrumentalPolarization

_EMPTY: Mapping[str, str] = types.MappingProxyType({})


@dataclass(frozen=True)
class InstrumentalPolarizationTable:
    """The keys and checks of one ``[[polarimetry.instrumental]]`` table.

    Only the schema of the TOML table: it is parsed into an
    :class:`~iopreport.instruments.polarization.InstrumentalPolarization`, the one
    type for these values. Valid from ``valid_from`` (UTC) until the next entry of
    the same instrument (and band, when given): an instrument changes when a mirror
    is cleaned (IOP4's polarimetry). Escudero Pedrosa et al. 2024, Eqs. 4-7, 15, 19-20.
    """

    instrument: str = setting()
    valid_from: str = setting(check=check_iso_time)
    q_inst: float = setting(check=check_fraction)
    u_inst: float = setting(check=check_fraction)
    zero_angle_deg: float = setting()
    q_inst_err: float = setting(0.0, check=check_not_negative)
    u_inst_err: float = setting(0.0, check=check_not_negative)
    zero_angle_err_deg: float = setting(0.0, check=check_not_negative)
    band: str = setting("")  # empty: every band
    source: str = setting("")

    def parsed(self) -> InstrumentalPolarization:
        """The entry, ``valid_from`` as a naive UTC datetime."""
        import datetime as dt

        valid_from = dt.datetime.fromisoformat(self.valid_from)
        if valid_from.tzinfo is not None:
            valid_from = valid_from.astimezone(dt.UTC)
        return InstrumentalPolarization(
            q_inst=self.q_inst,
            q_inst_err=self.q_inst_err,
            u_inst=self.u_inst,
            u_inst_err=self.u_inst_err,
            zero_angle_deg=self.zero_angle_deg,
            zero_angle_err_deg=self.zero_angle_err_deg,
            valid_from=valid_from.replace(tzinfo=None),
            source=self.source or "config.toml",
            instrument=self.instrument,
            band=self.band,
        )


@dataclass(frozen=True)
class PolarimetryConfig:
    """How polarimetric sequences are built and computed (docs/polarimetry.md)."""

    sequence_gap_minutes: float = setting(10.0, check=check_positive)
    hwp_method: Literal["lsq", "ratio"] = setting("lsq")
    hwp_average: Literal["instrument", "fit", "cycles"] = setting("instrument")
    clip_sigma: float = setting(4.0, check=check_positive)
    normalise_by_comparison_stars: bool = setting(True)
    instrumental: tuple[InstrumentalPolarization, ...] = ()


@dataclass(frozen=True)
class GenericInstrumentConfig:
    """An instrument described entirely in config.toml ([instruments.<NAME>]).

    Its frames are classified from the keywords named here and reduced like
    any other instrument's: photometry, and polarimetry when ``polarimetry`` names
    a method (docs/config.md).
    """

    name: str
    telescope: str = setting()
    instrume: str = setting()
    pixscale_arcsec: float = setting(check=check_positive)
    gain_e_per_adu: float = setting(check=check_positive)
    read_noise_e: float = setting(5.0, check=check_positive)
    saturation_adu: float = setting(65535.0, check=check_positive)
    #: header keywords of the frame's own gain, read noise and saturation (empty: the values
    #: above; a frame without a usable value there uses them too)
    gain_keyword: str = setting("")
    read_noise_keyword: str = setting("")
    saturation_keyword: str = setting("")
    bias_level_adu: float = setting(0.0)
    telescop: str = setting("")
    type_keyword: str = setting("IMAGETYP")
    frame_types: Mapping[str, str] = setting(_EMPTY, check=check_frame_types, key="types")
    zero_second_dark_is_bias: bool = setting(True)
    filter_keyword: str = setting("FILTER")
    bands: Mapping[str, str] = setting(_EMPTY)
    exptime_keyword: str = setting("EXPTIME")
    date_keyword: str = setting("DATE-OBS")
    date_format: Literal["isot", "mjd", "jd"] = setting("isot")
    binning_keyword: str = setting("XBINNING")
    binning_y_keyword: str = setting("")  # empty: binning_keyword holds both axes
    ra_keyword: str = setting("RA")
    dec_keyword: str = setting("DEC")
    overscan: str = setting("", check=check_section)
    overscan_keyword: str = setting("")
    trim: str = setting("", check=check_section)
    trim_keyword: str = setting("")
    instrume_keyword: str = setting("INSTRUME")
    default_band: str = setting("")
    polarimetry: Literal["none", "hwp", "wheel"] = setting("none")
    angle_keyword: str = setting("")
    angle_convention: Literal["number", "notes"] = setting("number")
    pol_angles: tuple[float, ...] = setting(())
    min_pol_angles: int = setting(4, check=check_positive)
    hwp_average: Literal["fit", "cycles"] = setting("fit")
    oe_offset_px: tuple[float, ...] = setting((), check=check_pair)
    oe_offset_std_px: tuple[float, ...] = setting((), check=check_pair)
