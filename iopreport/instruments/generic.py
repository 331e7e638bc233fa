"""Instruments described in config.toml ([instruments.<NAME>]), registered at load time.

A generic instrument is a photometric camera: its frames are classified from
the keywords its table names, and every later stage uses the same code as the
built-in instruments through its :class:`~iopreport.instruments.InstrumentSpec`.
"""

from __future__ import annotations

from collections.abc import Iterable

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
        polarimetry="none",
        pol_angles=(),
        min_pol_angles=0,
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
