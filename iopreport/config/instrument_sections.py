"""The sections of config.toml about instruments: [polarimetry] with its
[[polarimetry.instrumental]] tables, and the cameras described in [instruments.NAME].
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from iopreport.config.checks import (
    _fraction,
    _frame_types,
    _iso_time,
    _non_negative,
    _pair,
    _positive,
    _section,
    _setting,
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

    instrument: str = _setting()
    valid_from: str = _setting(check=_iso_time)
    q_inst: float = _setting(check=_fraction)
    u_inst: float = _setting(check=_fraction)
    zero_angle_deg: float = _setting()
    q_inst_err: float = _setting(0.0, check=_non_negative)
    u_inst_err: float = _setting(0.0, check=_non_negative)
    zero_angle_err_deg: float = _setting(0.0, check=_non_negative)
    band: str = _setting("")  # empty: every band
    source: str = _setting("")

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

    sequence_gap_minutes: float = _setting(10.0, check=_positive)
    hwp_method: Literal["lsq", "ratio"] = _setting("lsq")
    hwp_average: Literal["instrument", "fit", "cycles"] = _setting("instrument")
    clip_sigma: float = _setting(4.0, check=_positive)
    normalise_by_comparison_stars: bool = _setting(True)
    instrumental: tuple[InstrumentalPolarization, ...] = ()


@dataclass(frozen=True)
class GenericInstrumentConfig:
    """An instrument described entirely in config.toml ([instruments.<NAME>]).

    Its frames are classified from the keywords named here and reduced like
    any other instrument's: photometry, and polarimetry when ``polarimetry`` names
    a method (docs/config.md).
    """

    name: str
    telescope: str = _setting()
    instrume: str = _setting()
    pixscale_arcsec: float = _setting(check=_positive)
    gain_e_per_adu: float = _setting(check=_positive)
    read_noise_e: float = _setting(5.0, check=_positive)
    saturation_adu: float = _setting(65535.0, check=_positive)
    #: header keywords of the frame's own gain, read noise and saturation (empty: the values
    #: above; a frame without a usable value there uses them too)
    gain_keyword: str = _setting("")
    read_noise_keyword: str = _setting("")
    saturation_keyword: str = _setting("")
    bias_level_adu: float = _setting(0.0)
    telescop: str = _setting("")
    type_keyword: str = _setting("IMAGETYP")
    frame_types: Mapping[str, str] = _setting(_EMPTY, check=_frame_types, key="types")
    zero_second_dark_is_bias: bool = _setting(True)
    filter_keyword: str = _setting("FILTER")
    bands: Mapping[str, str] = _setting(_EMPTY)
    exptime_keyword: str = _setting("EXPTIME")
    date_keyword: str = _setting("DATE-OBS")
    date_format: Literal["isot", "mjd", "jd"] = _setting("isot")
    binning_keyword: str = _setting("XBINNING")
    binning_y_keyword: str = _setting("")  # empty: binning_keyword holds both axes
    ra_keyword: str = _setting("RA")
    dec_keyword: str = _setting("DEC")
    overscan: str = _setting("", check=_section)
    overscan_keyword: str = _setting("")
    trim: str = _setting("", check=_section)
    trim_keyword: str = _setting("")
    instrume_keyword: str = _setting("INSTRUME")
    default_band: str = _setting("")
    polarimetry: Literal["none", "hwp", "wheel"] = _setting("none")
    angle_keyword: str = _setting("")
    angle_convention: Literal["number", "notes"] = _setting("number")
    pol_angles: tuple[float, ...] = _setting(())
    min_pol_angles: int = _setting(4, check=_positive)
    hwp_average: Literal["fit", "cycles"] = _setting("fit")
    oe_offset_px: tuple[float, ...] = _setting((), check=_pair)
    oe_offset_std_px: tuple[float, ...] = _setting((), check=_pair)
