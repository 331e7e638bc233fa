"""flags.toml -> :class:`~iopreport.flags.model.FlagSet`, checked as a whole.

Every mistake raises :class:`~iopreport.errors.InputError` as
``flags.toml:LINE: flag[i].key: message`` (through
:class:`~iopreport.tomlsource.TomlSource`, like catalog.toml and config.toml).
What needs the store (unknown files, flags that match nothing) is checked by
:mod:`iopreport.flags.check`, not here: a fresh database must not make a good
file invalid.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from iopreport.flags.model import MODES, SELECTORS, WHAT, Flag, FlagSet
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.store.columns import JD_UNIX_EPOCH
from iopreport.telescopes import BANDS, TELESCOPE_ALIASES, TELESCOPES
from iopreport.tomlsource import KeyPath, TomlSource

FLAG_KEYS = ("id", "what", *SELECTORS, "from", "to", "reason", "author", "date")
_REQUIRED = ("id", "what", "reason", "author", "date")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FILE_RE = re.compile(r"^(?:[^/\s]+/\d{4}-\d{2}-\d{2}/)?[^/]+$")
#: Julian dates accepted in ``from``/``to``: 1858-11-17 (MJD 0) to 2132-08-31.
JD_RANGE = (2400000.5, 2500000.5)
#: Slack for "in the future" (a curator east of UTC writes tomorrow's UTC date).
_FUTURE_SLACK = dt.timedelta(days=1)


def _safe_parts(location: str) -> bool:
    """Every part of a file location is one plain file name (no '..', no control characters)."""
    from iopreport.fileio import UnsafeNameError, check_name

    try:
        for part in location.split("/"):
            check_name(part)
    except UnsafeNameError:
        return False
    return True


def load_flags(
    path: Path | str,
    catalog=None,
    *,
    telescopes: Iterable[str] | None = None,
    registry: InstrumentRegistry | None = None,
) -> FlagSet:
    """Read and check a flags file.

    Parameters
    ----------
    path : path-like
        The flags.toml file.
    catalog : iopreport.catalog.Catalog, optional
        When given, every ``source`` must be one of its names or other names,
        and is stored under the source's main name.
    telescopes : iterable of str, optional
        Telescope names allowed besides the built-in ones (configured instruments).
    registry : InstrumentRegistry, optional
        The instruments an ``instrument`` selector may name (``config.registry``;
        default: the built-in ones); their telescopes are allowed too.

    Raises
    ------
    InputError
        For the first problem found, naming its key and line. A missing file
        is no error: it holds no flags.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():  # docs/flags.md: a missing file, no flags
        source = TomlSource.from_text("", path)
    else:
        source = TomlSource.read(path)
    return flags_from_source(source, catalog, telescopes=telescopes, registry=registry)


def flags_from_source(
    source: TomlSource,
    catalog=None,
    *,
    telescopes: Iterable[str] | None = None,
    registry: InstrumentRegistry | None = None,
) -> FlagSet:
    """Check already-parsed flags TOML and build the :class:`FlagSet` (see :func:`load_flags`)."""
    registry = registry or InstrumentRegistry.builtin()
    for key in source.data:
        if key != "flag":
            raise source.error((key,), "unknown key; a flags file holds only [[flag]] tables")
    entries = source.data.get("flag", [])
    if not isinstance(entries, list):
        raise source.error(("flag",), "must be an array of tables: write each flag as [[flag]]")
    configured = sorted({spec.telescope for spec in registry.specs.values()} - set(TELESCOPES))
    known_telescopes = tuple(dict.fromkeys((*TELESCOPES, *configured, *(telescopes or ()))))
    flags: list[Flag] = []
    seen: dict[str, Flag] = {}
    for index, entry in enumerate(entries):
        flag = _parse_flag(source, index, entry, catalog, known_telescopes, registry.names())
        if flag.id in seen:
            where = seen[flag.id].line
            raise source.error(
                ("flag", index, "id"), f"id {flag.id!r} is already used by the flag on line {where}"
            )
        seen[flag.id] = flag
        flags.append(flag)
    return FlagSet(path=source.path, flags=tuple(flags), catalog=catalog)


def _parse_flag(
    source: TomlSource, index: int, entry: Any, catalog, telescopes, instruments
) -> Flag:
    key: KeyPath = ("flag", index)
    if not isinstance(entry, dict):
        raise source.error(key, "must be a table")
    for name in entry:
        if name not in FLAG_KEYS:
            hint = difflib.get_close_matches(name, FLAG_KEYS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise source.error(
                (*key, name), f"unknown key{suggestion}; allowed: {', '.join(FLAG_KEYS)}"
            )
    for required in _REQUIRED:
        if required not in entry:
            raise source.error(key, f"[[flag]] is missing required key {required!r}")
    flag_id = _string(source, (*key, "id"), entry["id"])
    if not _ID_RE.match(flag_id):
        raise source.error(
            (*key, "id"), "must be letters, digits, '.', '_' or '-' (no spaces), e.g. \"F0007\""
        )
    what = _choices(source, (*key, "what"), entry["what"], WHAT)
    selectors: dict[str, Any] = {}
    if "source" in entry:
        selectors["source"] = _sources(source, (*key, "source"), entry["source"], catalog)
    if "telescope" in entry:
        names = _strings(source, (*key, "telescope"), entry["telescope"])
        names = tuple(TELESCOPE_ALIASES.get(n.upper(), n) for n in names)
        _check_known(source, (*key, "telescope"), names, telescopes, "telescope")
        selectors["telescope"] = names
    if "instrument" in entry:
        names = _strings(source, (*key, "instrument"), entry["instrument"])
        # built-in instruments and those config.toml describes (the registry's)
        selectors["instrument"] = _canonical(source, (*key, "instrument"), names, instruments)
    if "band" in entry:
        names = _strings(source, (*key, "band"), entry["band"])
        selectors["band"] = _canonical(source, (*key, "band"), names, BANDS)
    if "mode" in entry:
        selectors["mode"] = _choices(source, (*key, "mode"), entry["mode"], MODES)
    if "night" in entry:
        values = entry["night"] if isinstance(entry["night"], list) else [entry["night"]]
        selectors["night"] = tuple(_date(source, (*key, "night"), v) for v in values)
        if not values:
            raise source.error((*key, "night"), "must not be an empty array")
    if "file" in entry:
        names = _strings(source, (*key, "file"), entry["file"])
        for name in names:
            if not _FILE_RE.match(name) or not _safe_parts(name):
                raise source.error(
                    (*key, "file"),
                    f"{name!r} is not a raw file name (x.fits) or location "
                    "(TELESCOPE/YYYY-MM-DD/x.fits)",
                )
        selectors["file"] = names
    jd_from = _time(source, (*key, "from"), entry["from"]) if "from" in entry else None
    jd_to = _time(source, (*key, "to"), entry["to"]) if "to" in entry else None
    if jd_from is not None and jd_to is not None and jd_from > jd_to:
        raise source.error((*key, "to"), "is before 'from'")
    if not selectors and jd_from is None and jd_to is None:
        raise source.error(
            key,
            "selects everything: give at least one of " + ", ".join((*SELECTORS, "from", "to")),
        )
    if "mode" in selectors and "polarimetry" in what and "polarimetry" not in selectors["mode"]:
        raise source.error(
            (*key, "what"), "polarimetry cannot be bad in results selected with mode = photometry"
        )
    return Flag(
        id=flag_id,
        what=what,
        reason=_string(source, (*key, "reason"), entry["reason"]),
        author=_string(source, (*key, "author"), entry["author"]),
        date=_date(source, (*key, "date"), entry["date"]),
        jd_from=jd_from,
        jd_to=jd_to,
        line=source.line_of(key),
        **selectors,
    )


def _string(source: TomlSource, key: KeyPath, value: Any) -> str:
    if not isinstance(value, str):
        raise source.error(key, f"must be a string, got {value!r}")
    if not value.strip():
        raise source.error(key, "must not be empty")
    return value.strip()


def _strings(source: TomlSource, key: KeyPath, value: Any) -> tuple[str, ...]:
    """A string or a non-empty array of strings (any of them is accepted)."""
    if isinstance(value, list):
        if not value:
            raise source.error(key, "must not be an empty array")
        return tuple(dict.fromkeys(_string(source, key, item) for item in value))
    return (_string(source, key, value),)


def _choices(source: TomlSource, key: KeyPath, value: Any, allowed) -> tuple[str, ...]:
    names = _strings(source, key, value)
    for name in names:
        if name not in allowed:
            raise source.error(key, f"unknown value {name!r}; one of {', '.join(allowed)}")
    return names


def _canonical(source: TomlSource, key: KeyPath, names, allowed) -> tuple[str, ...]:
    """Names as the store writes them (case-insensitive match against ``allowed``)."""
    folded = {a.casefold(): a for a in allowed}
    result = []
    for name in names:
        if name.casefold() not in folded:
            raise source.error(key, f"unknown value {name!r}; one of {', '.join(allowed)}")
        result.append(folded[name.casefold()])
    return tuple(result)


def _check_known(source, key, names, allowed, what: str) -> None:
    for name in names:
        if name not in allowed:
            raise source.error(key, f"unknown {what} {name!r}; known: {', '.join(allowed)}")


def _sources(source: TomlSource, key: KeyPath, value: Any, catalog) -> tuple[str, ...]:
    names = _strings(source, key, value)
    if catalog is None:
        return names
    canonical = []
    for name in names:
        entry = catalog.get(name)
        if entry is None:
            close = difflib.get_close_matches(
                name, [n for s in catalog.sources for n in s.all_names], n=1
            )
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise source.error(
                key, f"unknown source {name!r}{suggestion}; not a name in {catalog.path.name}"
            )
        canonical.append(entry.name)
    return tuple(dict.fromkeys(canonical))


def _date(source: TomlSource, key: KeyPath, value: Any) -> dt.date:
    """A TOML date (2024-10-08) or a string "2024-10-08", not in the future."""
    if isinstance(value, dt.datetime):
        raise source.error(key, f"must be a date YYYY-MM-DD without a time, got {value}")
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise source.error(key, f"not a date YYYY-MM-DD: {value!r}") from None
    if not isinstance(value, dt.date):
        raise source.error(key, f"must be a date YYYY-MM-DD, got {value!r}")
    if value > dt.datetime.now(dt.UTC).date() + _FUTURE_SLACK:
        raise source.error(key, f"{value} is in the future")
    return value


def datetime_to_jd(moment: dt.datetime) -> float:
    """UTC Julian date of ``moment`` (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp() / 86400.0 + JD_UNIX_EPOCH


def parse_time(value: Any) -> float:
    """``from``/``to`` value -> UTC Julian date.

    Accepts a Julian date (number), a TOML date-time, or an ISO 8601 string
    (``2024-10-08T22:30``, ``2024-10-08 22:30:00Z``); times without an offset
    are UTC. Raises ValueError with the reason.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a Julian date or an ISO date-time, got {value!r}")
    if isinstance(value, (int, float)):
        jd = float(value)
        if not math.isfinite(jd) or not JD_RANGE[0] <= jd <= JD_RANGE[1]:
            raise ValueError(
                f"{value!r} is not a Julian date between {JD_RANGE[0]} and {JD_RANGE[1]}"
            )
        return jd
    if isinstance(value, str):
        text = value.strip()
        try:
            jd = float(text)
        except ValueError:
            pass
        else:
            return parse_time(jd)
        try:
            value = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValueError(
                f"not an ISO date-time (2024-10-08T22:30:00) or Julian date: {text!r}"
            ) from None
    if isinstance(value, dt.datetime):
        return datetime_to_jd(value)
    if isinstance(value, dt.date):
        raise ValueError(
            f"{value} is a date without a time: write {value}T00:00:00 or use night = ..."
        )
    if isinstance(value, dt.time):
        raise ValueError(f"{value} is a time without a date")
    raise ValueError(f"must be a Julian date or an ISO date-time, got {value!r}")


def _time(source: TomlSource, key: KeyPath, value: Any) -> float:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise source.error(key, str(exc)) from None
