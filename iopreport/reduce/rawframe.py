"""Reading a raw frame: its pixels as float32, overscan subtracted and trimmed where the
instrument says so.

Masters and science frames are read through :func:`read_raw`, so both are cut to
the same pixels. An instrument names its overscan (or prescan) and its data
section either with a header keyword (``BIASSEC``, ``TRIMSEC``, ``DATASEC``, ...)
or as a fixed FITS section in its spec (``[x1:x2,y1:y2]``, 1-based, inclusive);
the keyword wins when the header has it. The overscan level is subtracted row by
row (or column by column, along the section's long side) as the median of the
section, and the frame is then trimmed, with ccdproc's ``subtract_overscan`` and
``trim_image`` (Craig et al., astropy/ccdproc), the same operations the astropy CCD
reduction guide describes. Instruments with neither are read unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from iopreport.instruments import InstrumentSpec
from iopreport.instruments.sections import parse_section


@dataclass(frozen=True)
class RawFrame:
    """A raw frame as the reduction uses it.

    ``saturated_fraction`` is measured on the trimmed raw counts, before any
    level is subtracted, against the frame's saturation level. ``spec`` is the
    instrument's spec with this frame's gain, read noise and saturation from its
    header keywords where the instrument names them
    (:meth:`~iopreport.instruments.InstrumentSpec.for_header`); the calibration and
    photometry of the frame use it.
    """

    data: np.ndarray
    header: fits.Header
    saturated_fraction: float
    overscan_level: float | None = None
    trimmed_from: tuple[int, int] | None = None  # (NAXIS1, NAXIS2) before trimming
    spec: InstrumentSpec | None = None


def section_of(header: fits.Header, keyword: str, fixed: str) -> tuple[str, str] | None:
    """The section text to use and where it came from: the header keyword, else the fixed one."""
    if keyword and str(header.get(keyword, "")).strip():
        return str(header[keyword]).strip(), keyword
    if fixed:
        return fixed, "the instrument's fixed section"
    return None


def prepare(data: np.ndarray, header: fits.Header, spec: InstrumentSpec) -> RawFrame:
    """Overscan-subtract and trim ``data`` as ``spec`` says (see the module docstring)."""
    spec = spec.for_header(header)
    overscan = section_of(header, spec.overscan_keyword, spec.overscan_section)
    trim = section_of(header, spec.trim_keyword, spec.trim_section)
    trim_slices = parse_section(trim[0], data.shape, trim[1]) if trim else None
    counted = data[trim_slices] if trim_slices else data
    # counted, not averaged: a mean of booleans goes through floats (3x slower)
    saturated = (
        np.count_nonzero(counted >= spec.saturation_adu) / counted.size if counted.size else 0.0
    )
    if overscan is None and trim is None:
        return RawFrame(data, header, saturated, spec=spec)
    from astropy.nddata import CCDData
    from ccdproc import subtract_overscan, trim_image

    ccd = CCDData(data, unit="adu")
    level = None
    if overscan is not None:
        text, name = overscan
        rows, columns = parse_section(text, data.shape, name)
        section = data[rows, columns]
        # combine along the section's short side: one level per row (or per column)
        axis = 1 if section.shape[1] <= section.shape[0] else 0
        ccd = subtract_overscan(
            ccd, fits_section=text.replace(" ", ""), overscan_axis=axis, median=True
        )
        level = float(np.median(section))
    if trim is not None:
        ccd = trim_image(ccd, fits_section=trim[0].replace(" ", ""))
        # a header WCS refers to the untrimmed pixels: move its reference pixel with the cut
        rows, columns = trim_slices
        for key, start in (("CRPIX1", columns.start), ("CRPIX2", rows.start)):
            if start and isinstance(header.get(key), int | float):
                header[key] = header[key] - start
    prepared = np.ascontiguousarray(ccd.data, dtype=np.float32)
    return RawFrame(
        prepared,
        header,
        saturated,
        overscan_level=level,
        trimmed_from=(data.shape[1], data.shape[0]) if trim else None,
        spec=spec,
    )


def read_raw(path: Path, spec: InstrumentSpec) -> RawFrame:
    """Primary-HDU pixels of ``path`` as float32, prepared for ``spec`` (:func:`prepare`).

    Raises for unreadable or truncated files and for frames without a 2-D image;
    a bad section raises :class:`SectionError` naming the keyword.
    """
    with fits.open(path, memmap=False, do_not_scale_image_data=True) as hdul:
        stored = hdul[0].data
        if stored is None:
            raise ValueError("no image data in the primary HDU")
        if stored.ndim != 2:
            raise ValueError(f"the primary HDU holds a {stored.ndim}-D array, not an image")
        header = hdul[0].header.copy()
        data = _small_integers_as_float32(stored, header)
    if data is None:  # floats, wide integers, BSCALE or BLANK: astropy's own scaling
        with fits.open(path, memmap=False) as hdul:
            data = np.asarray(hdul[0].data, dtype=np.float32)
    return prepare(data, header, spec)


def _small_integers_as_float32(stored: np.ndarray, header: fits.Header) -> np.ndarray | None:
    """8- or 16-bit integer pixels plus an integer ``BZERO`` (FITS Standard 4.0 §4.4.2.5: unsigned
    16-bit data are stored as signed with BZERO = 32768) as float32, in one pass.

    Every such value is exact in float32, so this equals astropy's scaling, which
    goes through an unsigned integer copy first (3.5x slower on a 2048x2048 frame).
    None for anything else (the caller lets astropy scale it).
    """
    bzero = header.get("BZERO", 0)
    if (
        stored.dtype.kind not in "iu"
        or stored.dtype.itemsize > 2
        or header.get("BSCALE", 1) != 1
        or "BLANK" in header
        or not isinstance(bzero, int | float)
        or bzero != int(bzero)
        or abs(bzero) > 2**16
    ):
        return None
    data = stored.astype(np.float32)
    if bzero:
        data += np.float32(bzero)
    return data
