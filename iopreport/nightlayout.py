"""How each archive names its night folders (IOP4's telescope classes), as configurable patterns.

A pattern is a folder name, or several joined by ``/``, with the night's
evening date written as ``{night:FORMAT}`` (``strftime`` directives):
``"{night:%Y%m%d}"`` (OSN, the default), ``"{night:%y%m%d}_CAFOS"`` (CAHA),
``"{night:%Y-%m-%d}"``, nested ``"{night:%Y}/{night:%m}/{night:%d}"``. The
same pattern names a night's folder and recognises night folders in a listing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

#: Files an archive listing takes: FITS under its usual extensions.
FITS_NAME = re.compile(r".*\.(fits?|fts)(\.gz)?$", re.IGNORECASE)

#: Today's layouts: CAHA ``YYMMDD_CAFOS``, every other archive ``YYYYMMDD``.
DEFAULT_NIGHT_FOLDER = "{night:%Y%m%d}"
NIGHT_FOLDERS = {"CAHA-T220": "{night:%y%m%d}_CAFOS"}

_FIELD = re.compile(r"\{night:([^{}]*)\}")
_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "j": r"\d{3}",
    "b": r"[A-Za-z]{3}",
    "B": r"[A-Za-z]{3,9}",
    "%": "%",
}


class LayoutError(ValueError):
    """A night-folder pattern that cannot name and recognise every date."""


@dataclass(frozen=True)
class NightLayout:
    """One archive's night-folder pattern."""

    pattern: str
    _regexes: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_pattern(self.pattern)
        object.__setattr__(self, "_regexes", tuple(_segment_regex(s) for s in self.segments))
        for sample in (dt.date(2024, 10, 8), dt.date(1999, 12, 31), dt.date(2031, 2, 3)):
            if self.night(self.folder(sample)) != sample:
                raise LayoutError(
                    f"{self.pattern!r}: the folder name does not give the date back "
                    f"({self.folder(sample)!r} for {sample})"
                )

    @cached_property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.pattern.split("/"))

    def folder(self, night: dt.date) -> str:
        """The night's folder, relative to the archive root (``/`` between levels)."""
        return self.pattern.format(night=night)

    def matches(self, level: int, name: str) -> bool:
        """Whether ``name`` can be the folder at ``level`` (0 = directly under the root)."""
        return bool(self._regexes[level].fullmatch(name))

    def night(self, path: str) -> dt.date | None:
        """The night a folder path (levels joined by ``/``) stands for, or None."""
        names = path.split("/")
        if len(names) != len(self.segments):
            return None
        values, formats = [], []
        for regex, name, segment in zip(self._regexes, names, self.segments, strict=True):
            match = regex.fullmatch(name)
            if not match:
                return None
            fields = _FIELD.findall(segment)
            values += [match.group(f"f{i}") for i in range(len(fields))]
            formats += fields
        try:
            night = dt.datetime.strptime("\x00".join(values), "\x00".join(formats)).date()
        except ValueError:
            return None
        return night if self.folder(night) == path else None


def _segment_regex(segment: str) -> re.Pattern[str]:
    parts, last, index = [], 0, 0
    for match in _FIELD.finditer(segment):
        parts.append(re.escape(segment[last : match.start()]))
        parts.append(f"(?P<f{index}>{_format_regex(match.group(1))})")
        last, index = match.end(), index + 1
    parts.append(re.escape(segment[last:]))
    return re.compile("".join(parts))


def _format_regex(fmt: str) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in _DIRECTIVES:
                raise LayoutError(f"{fmt!r}: a night pattern knows only %Y %y %m %d %j %b %B")
            out.append(_DIRECTIVES[fmt[i + 1]])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "".join(out)


def check_pattern(pattern: str) -> None:
    """Raise :class:`LayoutError` unless ``pattern`` names and recognises every night."""
    if not _FIELD.search(pattern):
        raise LayoutError(f"{pattern!r}: no {{night:FORMAT}} field")
    if pattern.startswith("/") or pattern.endswith("/") or "//" in pattern:
        raise LayoutError(f"{pattern!r}: folder levels must not be empty")
    if any(part in (".", "..") for part in pattern.split("/")) or "\\" in pattern:
        raise LayoutError(f"{pattern!r}: '.', '..' and '\\' are not allowed")
    if _FIELD.sub("", pattern).count("{") or _FIELD.sub("", pattern).count("}"):
        raise LayoutError(f"{pattern!r}: only {{night:FORMAT}} fields are allowed")
    for segment in pattern.split("/"):
        for fmt in _FIELD.findall(segment):
            _format_regex(fmt)


def night_layout(telescope: str, pattern: str = "") -> NightLayout:
    """The configured pattern, or the telescope's usual one."""
    return NightLayout(pattern or NIGHT_FOLDERS.get(telescope, DEFAULT_NIGHT_FOLDER))


def night_folder(telescope: str, night: dt.date) -> str:
    """Today's folder name of a night: OSN ``YYYYMMDD``; CAHA ``YYMMDD_CAFOS``."""
    return night_layout(telescope).folder(night)


def night_from_folder(telescope: str, name: str) -> dt.date | None:
    """The night a folder name stands for in today's layout, or None."""
    return night_layout(telescope).night(name)


def walk_nights(
    layout: NightLayout,
    list_dirs: Callable[[str], list[str]],
    root: str,
    join: Callable[[str, str], str],
) -> tuple[list[dt.date], list[str]]:
    """Nights under ``root``, oldest first, and the folders that match no pattern.

    ``list_dirs(path)`` lists the folder names directly under ``path``; only
    folders that can lead to a night are entered (one listing per level).
    """
    nights: set[dt.date] = set()
    unmatched: list[str] = []

    def visit(path: str, relative: tuple[str, ...]) -> None:
        level = len(relative)
        for name in sorted(set(list_dirs(path)) - {".", ".."}):
            here = (*relative, name)
            if not layout.matches(level, name):
                unmatched.append("/".join(here))
            elif level + 1 < len(layout.segments):
                visit(join(path, name), here)
            elif (night := layout.night("/".join(here))) is not None:
                nights.add(night)
            else:
                unmatched.append("/".join(here))

    visit(root, ())
    return sorted(nights), unmatched
