"""Instruments described in config.toml ([instruments.<NAME>]): their spec and header dialect.

A generic instrument is a camera, or a polarimeter, described by its table: its
frames are classified from the keywords the table names (and the simulator or a
test can write them the same way), and every later stage uses the same code as
the built-in instruments through its :class:`~iopreport.instruments.InstrumentSpec`
(overscan and trim sections, polarimetric method, plate angles and the O/E beam
offset included). The configurations travel in an
:class:`~iopreport.instruments.registry.InstrumentRegistry`, never in a global.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase as fnmatch

from astropy.io import fits

from iopreport.instruments.dialect import (
    ClassificationError,
    FrameFields,
    FrameKeywords,
    HeaderDialect,
    degrees_pointing,
    header_number,
    slug,
)
from iopreport.instruments.specs import InstrumentSpec

#: Characters that make an ``instrume`` value a shell-style pattern.
PATTERN_CHARACTERS = "*?["


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
        gain_keyword=config.gain_keyword,
        read_noise_keyword=config.read_noise_keyword,
        saturation_keyword=config.saturation_keyword,
    )


def generic_for(header, configs: Iterable) -> object | None:
    """The configured instrument whose keyword matches ``header`` (exactly, or as a pattern).

    ``instrume`` is compared with the value of the instrument's
    ``instrume_keyword`` (``INSTRUME`` unless set); a value with ``*``, ``?`` or
    ``[`` is a shell-style pattern (``"DU897*"``).
    """
    for config in configs:
        pattern = config.instrume
        value = str(header.get(config.instrume_keyword, "")).strip()
        if not value:
            continue
        if value == pattern or (
            any(c in pattern for c in PATTERN_CHARACTERS) and fnmatch(value, pattern)
        ):
            return config
    return None


class GenericDialect(HeaderDialect):
    """Instruments described in config.toml: every keyword and value map from their table.

    Parameters
    ----------
    configs
        The ``[instruments.NAME]`` configurations by name (``registry.generic``).
    """

    def __init__(self, configs: Mapping[str, object]) -> None:
        self.configs = configs

    def _config(self, name: str):
        return self.configs.get(name)

    def instrument(self, header: fits.Header, night: dt.date) -> str | None:
        config = generic_for(header, self.configs.values())
        return None if config is None else config.name

    def owns(self, name: str) -> bool:
        return self._config(name) is not None

    def telescop_may_be_empty(self, name: str, night: dt.date) -> bool:
        return True

    def exptime_keyword(self, name: str) -> str:
        return self._config(name).exptime_keyword

    def fields(self, header: fits.Header, name: str, filename: str) -> FrameFields:
        config = self._config(name)
        raw_type = str(header.get(config.type_keyword, "")).strip()
        if raw_type not in config.frame_types:
            known = ", ".join(repr(v) for v in config.frame_types)
            raise ClassificationError(f"{config.type_keyword} {raw_type!r} is none of {known}")
        imgtype = config.frame_types[raw_type]
        exptime = header_number(header, config.exptime_keyword)
        if imgtype == "dark" and exptime == 0 and config.zero_second_dark_is_bias:
            imgtype = "bias"
        band = obsmode = angle = None
        if imgtype in ("flat", "light"):
            value = str(header.get(config.filter_keyword, "")).strip()
            if not value and not config.default_band:
                raise ClassificationError(f"{config.filter_keyword} keyword missing or empty")
            band = config.bands.get(value, value) if value else config.default_band
            obsmode = "photometry"
        if imgtype == "light" and config.polarimetry != "none":
            obsmode, angle = _mode_and_angle(header, config)
        binning = _binning(header, config.binning_keyword)
        binning_y = _binning(header, config.binning_y_keyword or config.binning_keyword)
        return FrameFields(
            imgtype,
            band,
            obsmode,
            angle,
            start_jd=_start_jd(header, config),
            pointing=degrees_pointing(header, config.ra_keyword, config.dec_keyword),
            binning=(binning, binning_y),
        )

    # Writing: the inverse of fields(), from the same table.

    def instrume_value(self, name: str, night: dt.date) -> str:
        pattern = self._config(name).instrume
        value = pattern.replace("*", "").replace("?", "0")
        if "[" in value or (value != pattern and not fnmatch(value, pattern)):
            raise ValueError(f"instrument {name}: cannot write a value of pattern {pattern!r}")
        return value

    def telescop_value(self, name: str, night: dt.date, telescop: str) -> str:
        return self._config(name).telescop or telescop

    def header_for(self, frame: FrameKeywords, telescop: str) -> fits.Header:
        from astropy.time import Time

        config = self._config(frame.instrument)
        start = Time(frame.start, scale="utc")
        header = fits.Header()
        header["OBJECT"] = frame.object_name
        header[config.instrume_keyword] = self.instrume_value(frame.instrument, frame.night)
        header["TELESCOP"] = self.telescop_value(frame.instrument, frame.night, telescop)
        header[config.exptime_keyword] = round(frame.exptime, 3)
        header[config.binning_keyword] = frame.binning
        if config.binning_y_keyword:
            header[config.binning_y_keyword] = frame.binning
        dates = {"isot": start.isot[:23], "mjd": start.mjd, "jd": start.jd}
        header[config.date_keyword] = dates[config.date_format]
        header[config.type_keyword] = _written_type(config, frame)
        if frame.band and frame.imgtype in ("flat", "light"):
            names = {band: value for value, band in reversed(config.bands.items())}
            header[config.filter_keyword] = names.get(frame.band, frame.band)
        if frame.pointing is not None:
            header[config.ra_keyword] = round(frame.pointing[0], 6)
            header[config.dec_keyword] = round(frame.pointing[1], 6)
        if frame.imgtype == "light" and config.polarimetry != "none" and config.angle_keyword:
            if config.angle_convention == "notes":
                polarimetric = frame.obsmode == "polarimetry"
                header[config.angle_keyword] = f"{frame.angle:g} deg" if polarimetric else " "
            elif frame.obsmode == "polarimetry":
                header[config.angle_keyword] = frame.angle
        return header

    def file_name(self, frame: FrameKeywords, counter: int) -> str:
        label = slug(frame.object_name) or frame.imgtype
        return f"{slug(frame.instrument)}-{label}-{counter:04d}{frame.band or ''}.fits"


def _written_type(config, frame: FrameKeywords) -> str:
    """The ``type_keyword`` value of ``frame``'s type (a 0 s dark for a bias when so read)."""
    kinds = {kind: value for value, kind in reversed(config.frame_types.items())}
    if frame.imgtype in kinds:
        return kinds[frame.imgtype]
    if frame.imgtype == "bias" and config.zero_second_dark_is_bias and "dark" in kinds:
        return kinds["dark"]
    raise ValueError(
        f"instrument {config.name}: no {config.type_keyword} value for a {frame.imgtype}"
    )


def _start_jd(header: fits.Header, config) -> float:
    from astropy.time import Time

    if config.date_keyword not in header:
        raise ClassificationError(f"{config.date_keyword} keyword missing")
    date = header[config.date_keyword]
    try:
        if config.date_format == "isot":
            return float(Time(str(date), format="isot", scale="utc").jd)
        if config.date_format == "mjd":
            return float(date) + 2400000.5
        return float(date)
    except (ValueError, TypeError, OverflowError):
        raise ClassificationError(
            f"{config.date_keyword} = {date!r} is not a {config.date_format} date"
        ) from None


def _binning(header: fits.Header, key: str) -> int:
    value = header.get(key, 1)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ClassificationError(f"{key} = {value!r} is not an integer") from None


def _mode_and_angle(header: fits.Header, config) -> tuple[str, float | None]:
    """Observing mode and plate angle of a configured polarimeter's light frame.

    ``angle_convention = "number"``: the keyword holds the angle in degrees;
    ``"notes"``: DIPOL's MaxIm DL convention, where the keyword (``NOTES``) reads
    ``"<angle> deg ..."`` on polarimetric frames and anything without "deg" marks
    a photometric one.
    """
    key = config.angle_keyword
    if not key:
        raise ClassificationError(
            f"instrument {config.name}: set angle_keyword in config.toml to read plate angles"
        )
    if key not in header:
        raise ClassificationError(f"{key} keyword missing: no plate angle")
    text = str(header[key]).strip()
    if config.angle_convention == "notes":
        if "deg" not in text:
            return "photometry", None
        text = text.split()[0] if text.split() else ""
    try:
        angle = float(text)
    except ValueError:
        raise ClassificationError(f"{key} = {header[key]!r}: no plate angle") from None
    if not math.isfinite(angle):
        raise ClassificationError(f"{key} = {header[key]!r} is not a finite angle")
    return "polarimetry", angle
