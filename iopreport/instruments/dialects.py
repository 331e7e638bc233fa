"""Every header dialect of a registry, asked in turn which instrument a header designates.

The instruments described in config.toml come first, so a configured camera is
found even where a built-in rule would also claim its ``INSTRUME``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from astropy.io import fits

from iopreport.instruments.cafos import CafosDialect
from iopreport.instruments.dialect import HeaderDialect
from iopreport.instruments.dipol import DipolDialect
from iopreport.instruments.generic import GenericDialect
from iopreport.instruments.osn import OsnCcdDialect

#: The built-in families' dialects (they hold no state).
BUILTIN_DIALECTS: tuple[HeaderDialect, ...] = (OsnCcdDialect(), CafosDialect(), DipolDialect())


def dialects(generic: Mapping[str, object]) -> tuple[HeaderDialect, ...]:
    """The dialects in the order they are asked: config-defined instruments first."""
    return (GenericDialect(generic), *BUILTIN_DIALECTS)


def dialect_for(
    header: fits.Header, night: dt.date, generic: Mapping[str, object]
) -> tuple[HeaderDialect, str] | None:
    """The dialect that reads ``header`` and the instrument it names, or None."""
    for dialect in dialects(generic):
        name = dialect.instrument(header, night)
        if name is not None:
            return dialect, name
    return None


def dialect_of(name: str, generic: Mapping[str, object]) -> HeaderDialect:
    """The dialect that reads (and writes) instrument ``name``'s headers."""
    for dialect in dialects(generic):
        if dialect.owns(name):
            return dialect
    raise KeyError(f"no header dialect reads instrument {name!r}")
