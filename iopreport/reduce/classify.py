"""Classification of raw files from their headers, by each instrument family's dialect.

Each instrument family reads its own keywords (:mod:`iopreport.instruments.dialect`
and the family modules beside it: OSN CCDs, CAFOS, DIPOL, and the instruments
described in config.toml); this module asks the dialects which instrument a
header designates and applies what every frame shares: the telescope check, the
image size, exposure and binning, and the range checks. Deliberate differences
from IOP4 (Escudero Pedrosa et al. 2024):

* the stored Julian date is mid-exposure (IOP4 stores the start);
* OSN dark frames are accepted as darks (IOP4 rejects them);
* every failure names the file and the keyword, and never stops the night:
  :func:`classify_file` raises :class:`ClassificationError` with a reason the
  caller records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from iopreport.instruments.dialect import ClassificationError, header_number, readable_header
from iopreport.instruments.registry import InstrumentRegistry

#: Julian dates a frame may carry: 1980-01-01 (before any archive this reads) to
#: 2132-08-31 (JD 2500000.5, the end of the range flags.toml accepts too).
JD_PLAUSIBLE = (2444239.5, 2500000.5)
#: Longest exposure accepted, seconds (one day: longer is a header error).
EXPTIME_MAX_S = 86400.0
#: Binning factors accepted along each axis.
BINNING_RANGE = (1, 64)
#: Image sizes accepted along each axis, pixels (one pixel to a 64k-pixel mosaic row).
SIZE_RANGE = (1, 65536)


@dataclass(frozen=True)
class FrameInfo:
    """What a raw file is, read from its header."""

    instrument: str
    imgtype: str  # bias | dark | flat | light
    band: str | None
    obsmode: str | None  # photometry | polarimetry (None for bias and dark)
    angle: float | None  # polarizer or half-wave-plate angle, degrees
    juliandate: float  # mid-exposure, UTC
    exptime: float
    binning: tuple[int, int]
    size: tuple[int, int]  # (NAXIS1, NAXIS2)
    object_name: str
    pointing: tuple[float, float] | None = None  # RA, Dec in degrees from the header
    subframe_origin: tuple[int, int] = (0, 0)  # DIPOL XORGSUBF, YORGSUBF
    flipped: bool = False

    @property
    def imgsize(self) -> str:
        return f"{self.size[0]}x{self.size[1]}"

    @property
    def binning_text(self) -> str:
        return f"{self.binning[0]}x{self.binning[1]}"


def classify_file(
    path: Path | str,
    telescope: str,
    night: dt.date,
    registry: InstrumentRegistry | None = None,
) -> FrameInfo:
    """Read ``path``'s primary header and classify it with ``registry``'s dialects.

    ``registry`` is the configuration's (``config.registry``); None means the
    built-in instruments only.

    Raises
    ------
    ClassificationError
        With a reason naming the keyword (or the read error) when the file
        cannot be classified.
    """
    path = Path(path)
    try:
        header = fits.getheader(path, 0)
    except Exception as exc:  # astropy raises many kinds for damaged files
        raise ClassificationError(f"cannot read FITS header: {exc}") from None
    return classify_header(header, path.name, telescope, night, registry)


def instrument_from_header(
    header: fits.Header, telescope: str, night: dt.date, registry: InstrumentRegistry
) -> str:
    """The instrument a header designates on ``night``, checked against ``telescope``."""
    found = registry.dialect_for(header, night)
    if found is None:
        value = str(header.get("INSTRUME", "")).strip()
        if not value:
            raise ClassificationError("INSTRUME keyword missing or empty")
        raise ClassificationError(f"unknown INSTRUME {value!r}")
    dialect, name = found
    spec = registry.get(name)
    if spec.telescope != telescope:
        value = str(header.get("INSTRUME", "")).strip() or name
        raise ClassificationError(f"INSTRUME {value!r} is not an instrument of {telescope}")
    telescop = str(header.get("TELESCOP", "")).strip()
    if spec.telescop_keyword and telescop and telescop != spec.telescop_keyword:
        raise ClassificationError(
            f"TELESCOP {telescop!r} does not match {telescope} ({spec.telescop_keyword!r})"
        )
    if (
        spec.telescop_keyword
        and not telescop
        and "TELESCOP" in header
        and not dialect.telescop_may_be_empty(name, night)
    ):
        raise ClassificationError("TELESCOP is empty")
    return name


def classify_header(
    header: fits.Header,
    filename: str,
    telescope: str,
    night: dt.date,
    registry: InstrumentRegistry | None = None,
) -> FrameInfo:
    """Classify from an already-read header (see :func:`classify_file`).

    A header card astropy cannot parse is reported once and left out, and the rest
    of the header is used (:func:`~iopreport.instruments.dialect.readable_header`);
    when the frame needs that card, the ClassificationError says it is malformed.
    """
    if registry is None:
        registry = InstrumentRegistry.builtin()
    header, malformed = readable_header(header, filename)
    try:
        return _classify_header(header, filename, telescope, night, registry)
    except ClassificationError as exc:
        key = str(exc).split(" ", 1)[0]
        if key in malformed:  # the reason names a card that was left out
            raise ClassificationError(
                f"{exc} (its card is malformed: {malformed[key]!r})"
            ) from None
        raise
    except (fits.VerifyError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ClassificationError(f"header not usable: {type(exc).__name__}: {exc}") from None


def _classify_header(
    header: fits.Header,
    filename: str,
    telescope: str,
    night: dt.date,
    registry: InstrumentRegistry,
) -> FrameInfo:
    name = instrument_from_header(header, telescope, night, registry)
    if header.get("NAXIS") != 2:
        raise ClassificationError(f"NAXIS is {header.get('NAXIS')!r}, not 2")
    dialect = registry.dialect_of(name)
    exptime = header_number(header, dialect.exptime_keyword(name))
    fields = dialect.fields(header, name, filename)
    binning = fields.binning or (
        _binning(header, "XBINNING", "CCDBINX"),
        _binning(header, "YBINNING", "CCDBINY"),
    )
    return _checked(
        FrameInfo(
            instrument=name,
            imgtype=fields.imgtype,
            band=fields.band,
            obsmode=fields.obsmode,
            angle=fields.angle,
            juliandate=fields.start_jd + exptime / 2.0 / 86400.0,
            exptime=exptime,
            binning=binning,
            size=(_integer(header, "NAXIS1"), _integer(header, "NAXIS2")),
            object_name=str(header.get("OBJECT", "")).strip(),
            pointing=fields.pointing,
            subframe_origin=(_integer(header, "XORGSUBF"), _integer(header, "YORGSUBF")),
            flipped=str(header.get("FLIPSTAT", "")).strip() == "Flip",
        ),
        fields.start_jd,
    )


def _checked(info: FrameInfo, start_jd: float) -> FrameInfo:
    """``info`` if its header values are physically possible, else a ClassificationError.

    Julian date within :data:`JD_PLAUSIBLE`; exposure above 0 s (0 s allowed
    for bias frames) and at most :data:`EXPTIME_MAX_S`; binning within
    :data:`BINNING_RANGE`; image size within :data:`SIZE_RANGE`.
    """
    low, high = JD_PLAUSIBLE
    if not low <= start_jd <= high:
        raise ClassificationError(
            f"Julian date {start_jd!r} is outside {low}..{high} (1980 to 2132): not a real date"
        )
    if info.exptime < 0 or (info.exptime == 0 and info.imgtype != "bias"):
        raise ClassificationError(
            f"exposure time {info.exptime!r} s on a {info.imgtype} frame: must be above 0"
        )
    if info.exptime > EXPTIME_MAX_S:
        raise ClassificationError(
            f"exposure time {info.exptime!r} s is longer than {EXPTIME_MAX_S:g} s"
        )
    for axis, factor in zip("XY", info.binning, strict=True):
        if not BINNING_RANGE[0] <= factor <= BINNING_RANGE[1]:
            raise ClassificationError(
                f"{axis} binning {factor} is outside {BINNING_RANGE[0]}..{BINNING_RANGE[1]}"
            )
    for axis, pixels in zip((1, 2), info.size, strict=True):
        if not SIZE_RANGE[0] <= pixels <= SIZE_RANGE[1]:
            raise ClassificationError(
                f"NAXIS{axis} = {pixels} is outside {SIZE_RANGE[0]}..{SIZE_RANGE[1]}"
            )
    return info


def _integer(header: fits.Header, key: str, default: int = 0) -> int:
    value = header.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ClassificationError(f"{key} = {value!r} is not an integer") from None


def _binning(header: fits.Header, key: str, alternative: str) -> int:
    value = header.get(key, header.get(alternative, 1))
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise ClassificationError(f"{key} = {value!r} is not an integer") from None


__all__ = ["ClassificationError", "FrameInfo", "classify_file", "classify_header"]
