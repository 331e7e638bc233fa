"""FITS image sections (``[x1:x2,y1:y2]``, 1-based, inclusive): parsing and checking.

Used by config checks and by the reduction's raw-frame reading
(:mod:`iopreport.reduce.rawframe`); the notation is the FITS/IRAF one (Pence et
al. 2010 for FITS; ``BIASSEC``, ``TRIMSEC``, ``DATASEC`` keywords).
"""

from __future__ import annotations

import re

#: A FITS image section: "[x1:x2,y1:y2]", 1-based and inclusive, spaces allowed.
_SECTION = re.compile(r"^\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]$")


class SectionError(ValueError):
    """A section that cannot be read or does not fit the frame; the message says which."""


def parse_section(text: str, shape: tuple[int, int], name: str) -> tuple[slice, slice]:
    """Numpy (row, column) slices of a FITS section, checked against ``shape`` (rows, columns).

    Raises
    ------
    SectionError
        Naming ``name`` (the keyword or setting it came from) when the text is
        not a section or the section falls outside the frame.
    """
    match = _SECTION.match(str(text).strip())
    if not match:
        raise SectionError(f"{name} = {text!r} is not a FITS section like [x1:x2,y1:y2]")
    x1, x2, y1, y2 = (int(v) for v in match.groups())
    rows, columns = shape
    if not (1 <= x1 <= x2 <= columns and 1 <= y1 <= y2 <= rows):
        raise SectionError(f"{name} = {text!r} falls outside the {columns}x{rows} frame")
    return slice(y1 - 1, y2), slice(x1 - 1, x2)


def section_problem(text: str) -> str | None:
    """Why ``text`` is not a FITS section (None when it is one, or empty: no section)."""
    if not text or _SECTION.match(str(text).strip()):
        return None
    return f"{text!r} is not a FITS section like [x1:x2,y1:y2] (1-based, inclusive)"
