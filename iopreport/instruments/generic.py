"""Instruments described in config.toml ([instruments.<NAME>]), registered at load time.

A generic instrument is a camera, or a polarimeter, described by its table: its
frames are classified from the keywords the table names, and every later stage
uses the same code as the built-in instruments through its
:class:`~iopreport.instruments.InstrumentSpec` (overscan and trim sections,
polarimetric method, plate angles and the O/E beam offset included).
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase as fnmatch

from iopreport.instruments.specs import INSTRUMENTS, InstrumentSpec

#: INSTRUME value -> the configuration of the instrument it selects.
GENERIC_BY_INSTRUME: dict = {}


def spec_of(config) -> InstrumentSpec:
    """The :class:`InstrumentSpec` of a generic instrument's configuration."""
    return InstrumentSpec(
        name=config.name,
        telescope=config.telescope,
        telescop_keyword=config.telescop,
        pixscale_arcsec=config.pixscale_arcsec,
        reference_binning=1,
        full_shape=(0, 0),
        gain_e_per_adu=config.gain_e_per_adu,
        pixel_size_um=15.0,
        read_noise_e=config.read_noise_e,
        bias_level_adu=config.bias_level_adu,
        dark_e_per_s=0.0,
        saturation_adu=int(config.saturation_adu),
        polarimetry=config.polarimetry,
        pol_angles=tuple(config.pol_angles),
        min_pol_angles=config.min_pol_angles if config.polarimetry != "none" else 0,
        oe_offset_px=tuple(config.oe_offset_px) if config.oe_offset_px else None,
        oe_offset_std_px=tuple(config.oe_offset_std_px) if config.oe_offset_std_px else None,
        hwp_average=config.hwp_average,
        overscan_section=config.overscan,
        overscan_keyword=config.overscan_keyword,
        trim_section=config.trim,
        trim_keyword=config.trim_keyword,
    )


def register(configs: Iterable) -> None:
    """Make the configured instruments known to classification and reduction."""
    for config in configs:
        if config.name in INSTRUMENTS and config.name not in {
            c.name for c in GENERIC_BY_INSTRUME.values()
        }:
            raise ValueError(f"instrument {config.name!r} is built in; choose another name")
        INSTRUMENTS[config.name] = spec_of(config)
        GENERIC_BY_INSTRUME[config.instrume] = config


def generic_for(header) -> object | None:
    """The configured instrument whose keyword matches ``header`` (exactly, or as a pattern).

    ``instrume`` is compared with the value of the instrument's
    ``instrume_keyword`` (``INSTRUME`` unless set); a value with ``*``, ``?`` or
    ``[`` is a shell-style pattern (``"DU897*"``).
    """
    for pattern, config in GENERIC_BY_INSTRUME.items():
        value = str(header.get(config.instrume_keyword, "")).strip()
        if not value:
            continue
        if value == pattern or (any(c in pattern for c in "*?[") and fnmatch(value, pattern)):
            return config
    return None
