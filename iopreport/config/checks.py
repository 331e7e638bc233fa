"""The value checks of config.toml's keys, and :func:`setting`, which attaches one to a field.

A check takes the converted value and returns ``None`` when it is fine, else the
problem in words; loading raises it as an InputError naming the key and its line.
"""

from __future__ import annotations

import codecs
import dataclasses
import email.utils
import re
import types
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

from iopreport.config.database_url import is_database_url
from iopreport.instruments.sections import section_problem

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
Check = Callable[[Any], str | None]


def setting(default: Any = dataclasses.MISSING, *, check: Check | None = None, key: str = ""):
    """A dataclass field with an optional value check and TOML key name."""
    metadata = {"check": check, "key": key}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    if isinstance(default, types.MappingProxyType):  # unhashable: a factory per instance
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


def check_database(value: str) -> str | None:
    if not is_database_url(value):
        return None
    from urllib.parse import urlsplit

    if urlsplit(value).password:
        return (
            "never write a password in config.toml; put it in an environment variable "
            "and give that variable's name as database_password_env"
        )
    return None


def check_positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def check_port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port between 0 and 65535 (0 = default)"


def check_env_name(value: str) -> str | None:
    if value == "" or _ENV_NAME_RE.match(value):
        return None
    return "must be the NAME of an environment variable (letters, digits, _), not a password"


def check_regexes(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            return f"invalid regular expression {value!r}: {exc}"
    return None


def check_night_pattern(value: str) -> str | None:
    if not value:
        return None
    from iopreport.nightlayout import LayoutError, NightLayout  # pure: no I/O, no store

    try:
        NightLayout(value)
    except LayoutError as exc:
        return f"not a night-folder pattern: {exc}"
    return None


def check_addresses(values: tuple[str, ...]) -> str | None:
    for value in values:
        _, address = email.utils.parseaddr(value)
        if "@" not in address:
            return f"not an e-mail address: {value!r}"
    return None


def check_some_addresses(values: tuple[str, ...]) -> str | None:
    return check_addresses(values) if values else "must list at least one address"


def check_encoding(value: str) -> str | None:
    try:
        codecs.lookup(value)
    except LookupError:
        return f"unknown text encoding {value!r} (e.g. utf-8, latin-1)"
    return None


def check_address(value: str) -> str | None:
    return check_addresses((value,)) if value else None


def check_hhmm(value: str) -> str | None:
    return None if _HHMM_RE.match(value) else "must be a local time HH:MM, e.g. 08:00"


def check_timezone(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r} (use an IANA name such as Europe/Madrid)"
    return None


def check_frame_types(value: Mapping[str, str]) -> str | None:
    kinds = ("bias", "dark", "flat", "light")
    for header_value, kind in value.items():
        if kind not in kinds:
            return f"{header_value!r} maps to {kind!r}; frame types are {', '.join(kinds)}"
    return None


def check_section(value: str) -> str | None:
    return section_problem(value)


def check_pair(value: tuple[float, ...]) -> str | None:
    return None if len(value) in (0, 2) else "must be [x, y] (two numbers) or left out"


def check_log_level(value: str) -> str | None:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    return None if value in levels else f"must be one of {', '.join(levels)}"


def check_log_format(value: str) -> str | None:
    return None if value in ("text", "json") else 'must be "text" or "json"'


def check_index_series(value: str) -> str | None:
    if value == "auto":
        return None
    from iopreport.indexfiles.series import SERIES

    if value in SERIES:
        return None
    return f'must be "auto" or one of {", ".join(SERIES)}'


def check_http_url(value: str) -> str | None:
    if value == "" or re.match(r"^https?://[^/\s]+", value):
        return None
    return "must be empty (the series' own server) or an http:// or https:// address"


def check_rule_threshold(value: float) -> str | None:
    return None if value >= 0 else "must be 0 (rule off) or greater"


def check_iso_time(value: str) -> str | None:
    import datetime as dt

    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return "must be an ISO date or date-time in UTC, e.g. 2023-09-28 or 2023-09-28T12:00"
    return None


def check_fraction(value: float) -> str | None:
    return None if -1.0 <= value <= 1.0 else "must be a fraction between -1 and 1 (not percent)"


def check_scheduler(value: str) -> str | None:
    if value in ("", "local") or value.startswith(("tcp://", "tls://", "inproc://")):
        return None
    return 'must be "", "local" or a Dask scheduler address such as "tcp://host:8786"'


def check_not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def check_share(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be a share between 0 and 1 (not percent)"
