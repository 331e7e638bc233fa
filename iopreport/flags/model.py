"""The values a flags.toml file holds, once checked.

A :class:`Flag` selects results with any combination of selectors (each a
tuple of accepted values; empty means "any") and says what is bad
(``what``). A result is selected when every selector given accepts it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

#: What a flag can mark bad.
WHAT = ("photometry", "polarimetry", "frame")
#: Observing modes a result (or frame) can have.
MODES = ("photometry", "polarimetry")
#: Selector keys, in the order flags.toml and ``flags list`` show them.
SELECTORS = ("source", "telescope", "instrument", "band", "mode", "night", "file")


@dataclass(frozen=True)
class Flag:
    """One ``[[flag]]`` table of flags.toml.

    Attributes
    ----------
    id : str
        Unique name of the flag in its file (``flags remove --id`` uses it).
    what : tuple of str
        What is bad: ``photometry``, ``polarimetry`` and/or ``frame`` (the
        frames selected are excluded from reduction).
    reason, author : str
        Why, and who said so.
    date : datetime.date
        When the flag was written.
    source : tuple of str
        Catalog names (the main name, whatever name the file used).
    telescope, instrument, band, mode : tuple of str
        Accepted values, as the store writes them.
    night : tuple of datetime.date
        Nights (evening dates, as ``Epoch.night``).
    file : tuple of str
        Raw file names, bare (``x.fits``) or located (``OSN-T090/2024-10-08/x.fits``).
    jd_from, jd_to : float or None
        Time range (UTC Julian dates, inclusive); a result overlapping it is selected.
    line : int or None
        Line of the ``[[flag]]`` header in its file.
    """

    id: str
    what: tuple[str, ...]
    reason: str
    author: str
    date: dt.date
    source: tuple[str, ...] = ()
    telescope: tuple[str, ...] = ()
    instrument: tuple[str, ...] = ()
    band: tuple[str, ...] = ()
    mode: tuple[str, ...] = ()
    night: tuple[dt.date, ...] = ()
    file: tuple[str, ...] = ()
    jd_from: float | None = None
    jd_to: float | None = None
    line: int | None = None

    @functools.cached_property
    def sources_folded(self) -> frozenset[str]:
        """``source`` names folded for comparison (computed once)."""
        return frozenset(name.casefold() for name in self.source)

    @property
    def is_frame_flag(self) -> bool:
        return "frame" in self.what

    def selectors_text(self) -> str:
        """The selectors as one line, e.g. ``source=BL Lac night=2024-10-08``."""
        parts = []
        for name in SELECTORS:
            values = getattr(self, name)
            if values:
                parts.append(f"{name}={','.join(str(v) for v in values)}")
        if self.jd_from is not None:
            parts.append(f"from=JD{self.jd_from:.5f}")
        if self.jd_to is not None:
            parts.append(f"to=JD{self.jd_to:.5f}")
        return " ".join(parts)

    def reason_text(self, what: str) -> str:
        """The text written to ``PhotoPolResult.flag_reasons`` (prefix ``manual:``)."""
        return f"manual: {what} [{self.id}] {self.reason} ({self.author}, {self.date.isoformat()})"


@dataclass(frozen=True)
class FlagSet:
    """All flags of one file, in file order."""

    path: Path
    flags: tuple[Flag, ...] = ()
    #: the catalog the source names were checked against (frame flags need it)
    catalog: object | None = field(default=None, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.flags)

    def __iter__(self):
        return iter(self.flags)

    def get(self, flag_id: str) -> Flag | None:
        """The flag with this id, or None."""
        return next((f for f in self.flags if f.id == flag_id), None)

    @property
    def frame_flags(self) -> tuple[Flag, ...]:
        return tuple(f for f in self.flags if f.is_frame_flag)
