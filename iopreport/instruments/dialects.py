"""Every header dialect, asked in turn which instrument a header designates.

The instruments described in config.toml come first, so a configured camera is
found even where a built-in rule would also claim its ``INSTRUME``.
"""

from __future__ import annotations

import datetime as dt

from astropy.io import fits

from iopreport.instruments.cafos import CafosDialect
from iopreport.instruments.dialect import HeaderDialect
from iopreport.instruments.dipol import DipolDialect
from iopreport.instruments.generic import GenericDialect
from iopreport.instruments.osn import OsnCcdDialect

DIALECTS: tuple[HeaderDialect, ...] = (
    GenericDialect(),
    OsnCcdDialect(),
    CafosDialect(),
    DipolDialect(),
)


def dialect_for(header: fits.Header, night: dt.date) -> tuple[HeaderDialect, str] | None:
    """The dialect that reads ``header`` and the instrument it names, or None."""
    for dialect in DIALECTS:
        name = dialect.instrument(header, night)
        if name is not None:
            return dialect, name
    return None


def dialect_of(name: str) -> HeaderDialect:
    """The dialect that reads instrument ``name``'s headers."""
    for dialect in DIALECTS:
        if dialect.owns(name):
            return dialect
    raise KeyError(f"no header dialect reads instrument {name!r}")
