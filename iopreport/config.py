"""config.toml -> frozen dataclasses.

Every key of the file maps to a field below; the file itself (the repository's
``config.toml``) documents each one. Loading checks every key: an unknown key,
a wrong type or a bad value raises :class:`~iopreport.errors.InputError`
naming the key and its line, which the CLI prints before exiting with code 2.

Lookup order: ``--config PATH``, then ``$IOPREPORT_CONFIG``, then
``./config.toml``. Relative paths inside the file are relative to the file's
folder, so a site project can be moved as a whole.
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import email.utils
import functools
import math
import os
import re
import types
import typing
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from iopreport.errors import InputError
from iopreport.instruments.polarization import InstrumentalPolarization
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.instruments.sections import section_problem
from iopreport.telescopes import TELESCOPES
from iopreport.tomlsource import KeyPath, TomlSource

CONFIG_ENV = "IOPREPORT_CONFIG"
DEFAULT_CONFIG_NAME = "config.toml"

# Sub-folders of the data directory, as in the IOP4 concepts seed (IOP4's documentation).
DATA_SUBDIRS = (
    "raw",
    "masterbias",
    "masterdark",
    "masterflat",
    "calibration",
    "logs",
    "astrosource",
    "summaries",
    "campaigns",  # reprocessing journals (iopreport.reprocess)
)

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

Check = Callable[[Any], str | None]


def _setting(default: Any = dataclasses.MISSING, *, check: Check | None = None, key: str = ""):
    """A dataclass field with an optional value check and TOML key name."""
    metadata = {"check": check, "key": key}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use tuples for sequence defaults")
    if isinstance(default, types.MappingProxyType):  # unhashable: a factory per instance
        return field(default_factory=lambda: default, metadata=metadata)
    return field(default=default, metadata=metadata)


def _database(value: str) -> str | None:
    if not is_database_url(value):
        return None
    from urllib.parse import urlsplit

    if urlsplit(value).password:
        return (
            "never write a password in config.toml; put it in an environment variable "
            "and give that variable's name as database_password_env"
        )
    return None


def is_database_url(value: object) -> bool:
    """Whether a ``paths.database`` value names a PostgreSQL server rather than a file."""
    return str(value).startswith(("postgresql://", "postgres://"))


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port between 0 and 65535 (0 = default)"


def _env_name(value: str) -> str | None:
    if value == "" or _ENV_NAME_RE.match(value):
        return None
    return "must be the NAME of an environment variable (letters, digits, _), not a password"


def _regexes(values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            return f"invalid regular expression {value!r}: {exc}"
    return None


def _night_pattern(value: str) -> str | None:
    if not value:
        return None
    from iopreport.nightlayout import LayoutError, NightLayout  # pure: no I/O, no store

    try:
        NightLayout(value)
    except LayoutError as exc:
        return f"not a night-folder pattern: {exc}"
    return None


def _addresses(values: tuple[str, ...]) -> str | None:
    for value in values:
        _, address = email.utils.parseaddr(value)
        if "@" not in address:
            return f"not an e-mail address: {value!r}"
    return None


def _some_addresses(values: tuple[str, ...]) -> str | None:
    return _addresses(values) if values else "must list at least one address"


def _encoding(value: str) -> str | None:
    try:
        codecs.lookup(value)
    except LookupError:
        return f"unknown text encoding {value!r} (e.g. utf-8, latin-1)"
    return None


def _address(value: str) -> str | None:
    return _addresses((value,)) if value else None


def _hhmm(value: str) -> str | None:
    return None if _HHMM_RE.match(value) else "must be a local time HH:MM, e.g. 08:00"


def _timezone(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r} (use an IANA name such as Europe/Madrid)"
    return None


def _frame_types(value: Mapping[str, str]) -> str | None:
    kinds = ("bias", "dark", "flat", "light")
    for header_value, kind in value.items():
        if kind not in kinds:
            return f"{header_value!r} maps to {kind!r}; frame types are {', '.join(kinds)}"
    return None


def _section(value: str) -> str | None:
    return section_problem(value)


def _pair(value: tuple[float, ...]) -> str | None:
    return None if len(value) in (0, 2) else "must be [x, y] (two numbers) or left out"


def _log_level(value: str) -> str | None:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    return None if value in levels else f"must be one of {', '.join(levels)}"


def _log_format(value: str) -> str | None:
    return None if value in ("text", "json") else 'must be "text" or "json"'


@dataclass(frozen=True)
class PathsConfig:
    """Where things live. Relative paths are relative to the config file."""

    datadir: Path = _setting(Path("~/.iopreport"))
    #: the SQLite file, or a ``postgresql://user@host:port/name`` URL (no password in it)
    database: str = _setting("", check=_database)
    #: name of the environment variable holding the PostgreSQL password (as for SMTP)
    database_password_env: str = _setting("", check=_env_name)
    astrometry_index_dir: Path = _setting(Path("~/.iopreport/astrometry-index"))
    site_dir: Path = _setting(Path("site_out"))
    outbox_dir: Path = _setting(Path("outbox"))
    catalog: Path = _setting(Path("catalog.toml"))
    flags: Path = _setting(Path("flags.toml"))
    templates_dir: Path = _setting(Path("templates"))
    static_dir: Path = _setting(Path("static"))

    def data_subdir(self, name: str) -> Path:
        """One of :data:`DATA_SUBDIRS` under the data directory."""
        if name not in DATA_SUBDIRS:
            raise ValueError(f"unknown data sub-directory {name!r}")
        return self.datadir / name


@dataclass(frozen=True)
class ArchiveConfig:
    """One telescope's archive: where new nights are listed and downloaded from."""

    telescope: str
    protocol: Literal["ftp", "sftp", "local"] = _setting()
    enabled: bool = _setting(True)
    host: str = _setting("")
    port: int = _setting(0, check=_port)
    user: str = _setting("")
    password_env: str = _setting("", check=_env_name)
    root: str = _setting("/")
    file_patterns: tuple[str, ...] = _setting((), check=_regexes)
    #: Night folders under ``root``, e.g. "{night:%Y-%m-%d}" or "{night:%Y}/{night:%m}/{night:%d}";
    #: empty: the telescope's usual layout (iopreport.nightlayout).
    night_folder: str = _setting("", check=_night_pattern)
    encoding: str = _setting("utf-8", check=_encoding)
    timeout_s: float = _setting(60.0, check=_positive)

    @property
    def effective_port(self) -> int:
        """The configured port, or the protocol's usual one."""
        return self.port or {"ftp": 21, "sftp": 22, "local": 0}[self.protocol]

    def password(self) -> str:
        """The password from the environment variable named by ``password_env``."""
        return os.environ.get(self.password_env, "") if self.password_env else ""


@dataclass(frozen=True)
class ProcessingConfig:
    """How reductions run."""

    workers: int = _setting(2, check=_positive)
    astrometry_timeout_s: float = _setting(120.0, check=_positive)
    solver_recycle_frames: int = _setting(50, check=_positive)
    master_validity_days: int = _setting(15, check=_positive)


def _index_series(value: str) -> str | None:
    if value == "auto":
        return None
    from iopreport.indexfiles.series import SERIES

    if value in SERIES:
        return None
    return f'must be "auto" or one of {", ".join(SERIES)}'


def _http_url(value: str) -> str | None:
    if value == "" or re.match(r"^https?://[^/\s]+", value):
        return None
    return "must be empty (the series' own server) or an http:// or https:// address"


@dataclass(frozen=True)
class AstrometryConfig:
    """astrometry.net index files for the real sky (`iopreport index`, docs/astrometry-index.md)."""

    series: str = _setting("auto", check=_index_series)
    mirror_url: str = _setting("", check=_http_url)
    auto_download: bool = _setting(False)


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the automatic quality flags, re-applied on every build (docs/flags.md)."""

    max_mag_err: float = _setting(0.3, check=_positive)  # the reference's 0.3 mag
    max_p_err_percent: float = _setting(5.0, check=_positive)
    max_chi_err_deg: float = _setting(15.0, check=_positive)
    min_calibrators: int = _setting(2, check=_positive)


@dataclass(frozen=True)
class SmtpConfig:
    """The mail server the night summaries go through."""

    host: str = _setting("localhost")
    port: int = _setting(0, check=_port)
    security: Literal["none", "starttls", "tls"] = _setting("none")
    user: str = _setting("")
    password_env: str = _setting("", check=_env_name)
    sender: str = _setting("iopreport@localhost", check=_address, key="from")
    reply_to: str = _setting("", check=_address)
    contact_name: str = _setting("")
    contact_email: str = _setting("", check=_address)
    site_url: str = _setting("")
    timeout_s: float = _setting(30.0, check=_positive)
    ca_file: str = _setting("")

    @property
    def effective_port(self) -> int:
        """The configured port, or the usual one for the security mode."""
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]


@dataclass(frozen=True)
class SubscriberConfig:
    """One recipient (or list of recipients) of the night summary."""

    name: str = _setting()
    to: tuple[str, ...] = _setting(check=_some_addresses)
    cc: tuple[str, ...] = _setting((), check=_addresses)
    bcc: tuple[str, ...] = _setting((), check=_addresses)
    sources: tuple[str, ...] = _setting(())
    alerts_only: bool = _setting(False)


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 (rule off) or greater"


@dataclass(frozen=True)
class AlertsConfig:
    """Rules that raise alerts in the night summary (docs/summaries.md); 0 turns a rule off."""

    mag_change: float = _setting(0.3, check=_not_negative)
    p_change: float = _setting(0.03, check=_not_negative)
    chi_change_deg: float = _setting(20.0, check=_not_negative)
    spread_sigma: float = _setting(0.0, check=_not_negative)
    new_brightest: bool = _setting(True)
    min_history_nights: int = _setting(3, check=_positive)


@dataclass(frozen=True)
class ScheduleConfig:
    """When the daemon polls, summarises and retries."""

    poll_interval_minutes: int = _setting(30, check=_positive)
    summary_time: str = _setting("08:00", check=_hhmm)
    timezone: str = _setting("Europe/Madrid", check=_timezone)
    close_night_after_hours: float = _setting(36.0, check=_positive)
    retry_interval_minutes: int = _setting(20, check=_positive)


_EMPTY: Mapping[str, str] = types.MappingProxyType({})


def _iso_time(value: str) -> str | None:
    import datetime as dt

    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return "must be an ISO date or date-time in UTC, e.g. 2023-09-28 or 2023-09-28T12:00"
    return None


def _fraction(value: float) -> str | None:
    return None if -1.0 <= value <= 1.0 else "must be a fraction between -1 and 1 (not percent)"


def _non_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


@dataclass(frozen=True)
class InstrumentalPolarizationTable:
    """The keys and checks of one ``[[polarimetry.instrumental]]`` table.

    Only the schema of the TOML table: it is parsed into an
    :class:`~iopreport.instruments.polarization.InstrumentalPolarization`, the one
    type for these values. Valid from ``valid_from`` (UTC) until the next entry of
    the same instrument (and band, when given): an instrument changes when a mirror
    is cleaned (IOP4's polarimetry). Escudero Pedrosa et al. 2024, Eqs. 4-7, 15, 19-20.
    """

    instrument: str = _setting()
    valid_from: str = _setting(check=_iso_time)
    q_inst: float = _setting(check=_fraction)
    u_inst: float = _setting(check=_fraction)
    zero_angle_deg: float = _setting()
    q_inst_err: float = _setting(0.0, check=_non_negative)
    u_inst_err: float = _setting(0.0, check=_non_negative)
    zero_angle_err_deg: float = _setting(0.0, check=_non_negative)
    band: str = _setting("")  # empty: every band
    source: str = _setting("")

    def parsed(self) -> InstrumentalPolarization:
        """The entry, ``valid_from`` as a naive UTC datetime."""
        import datetime as dt

        valid_from = dt.datetime.fromisoformat(self.valid_from)
        if valid_from.tzinfo is not None:
            valid_from = valid_from.astimezone(dt.UTC)
        return InstrumentalPolarization(
            q_inst=self.q_inst,
            q_inst_err=self.q_inst_err,
            u_inst=self.u_inst,
            u_inst_err=self.u_inst_err,
            zero_angle_deg=self.zero_angle_deg,
            zero_angle_err_deg=self.zero_angle_err_deg,
            valid_from=valid_from.replace(tzinfo=None),
            source=self.source or "config.toml",
            instrument=self.instrument,
            band=self.band,
        )


@dataclass(frozen=True)
class PolarimetryConfig:
    """How polarimetric sequences are built and computed (docs/polarimetry.md)."""

    sequence_gap_minutes: float = _setting(10.0, check=_positive)
    hwp_method: Literal["lsq", "ratio"] = _setting("lsq")
    hwp_average: Literal["instrument", "fit", "cycles"] = _setting("instrument")
    clip_sigma: float = _setting(4.0, check=_positive)
    normalise_by_comparison_stars: bool = _setting(True)
    instrumental: tuple[InstrumentalPolarization, ...] = ()


@dataclass(frozen=True)
class GenericInstrumentConfig:
    """An instrument described entirely in config.toml ([instruments.<NAME>]).

    Its frames are classified from the keywords named here and reduced like
    any other instrument's: photometry, and polarimetry when ``polarimetry`` names
    a method (docs/config.md).
    """

    name: str
    telescope: str = _setting()
    instrume: str = _setting()
    pixscale_arcsec: float = _setting(check=_positive)
    gain_e_per_adu: float = _setting(check=_positive)
    read_noise_e: float = _setting(5.0, check=_positive)
    saturation_adu: float = _setting(65535.0, check=_positive)
    #: header keywords of the frame's own gain, read noise and saturation (empty: the values
    #: above; a frame without a usable value there uses them too)
    gain_keyword: str = _setting("")
    read_noise_keyword: str = _setting("")
    saturation_keyword: str = _setting("")
    bias_level_adu: float = _setting(0.0)
    telescop: str = _setting("")
    type_keyword: str = _setting("IMAGETYP")
    frame_types: Mapping[str, str] = _setting(_EMPTY, check=_frame_types, key="types")
    zero_second_dark_is_bias: bool = _setting(True)
    filter_keyword: str = _setting("FILTER")
    bands: Mapping[str, str] = _setting(_EMPTY)
    exptime_keyword: str = _setting("EXPTIME")
    date_keyword: str = _setting("DATE-OBS")
    date_format: Literal["isot", "mjd", "jd"] = _setting("isot")
    binning_keyword: str = _setting("XBINNING")
    binning_y_keyword: str = _setting("")  # empty: binning_keyword holds both axes
    ra_keyword: str = _setting("RA")
    dec_keyword: str = _setting("DEC")
    overscan: str = _setting("", check=_section)
    overscan_keyword: str = _setting("")
    trim: str = _setting("", check=_section)
    trim_keyword: str = _setting("")
    instrume_keyword: str = _setting("INSTRUME")
    default_band: str = _setting("")
    polarimetry: Literal["none", "hwp", "wheel"] = _setting("none")
    angle_keyword: str = _setting("")
    angle_convention: Literal["number", "notes"] = _setting("number")
    pol_angles: tuple[float, ...] = _setting(())
    min_pol_angles: int = _setting(4, check=_positive)
    hwp_average: Literal["fit", "cycles"] = _setting("fit")
    oe_offset_px: tuple[float, ...] = _setting((), check=_pair)
    oe_offset_std_px: tuple[float, ...] = _setting((), check=_pair)


def _scheduler(value: str) -> str | None:
    if value in ("", "local") or value.startswith(("tcp://", "tls://", "inproc://")):
        return None
    return 'must be "", "local" or a Dask scheduler address such as "tcp://host:8786"'


def _not_negative_int(value: int) -> str | None:
    return None if value >= 0 else "must be 0 or more"


@dataclass(frozen=True)
class ClusterConfig:
    """Where reductions run: ``scheduler = ""`` the local process pool (default),
    ``"local"`` a Dask LocalCluster here, ``"tcp://host:8786"`` a Dask scheduler."""

    scheduler: str = _setting("", check=_scheduler)
    local_workers: int = _setting(0, check=_not_negative_int)  # 0: processing.workers
    connect_timeout_s: float = _setting(30.0, check=_positive)


@dataclass(frozen=True)
class LoggingConfig:
    """Log verbosity (logs go to the terminal and to <datadir>/logs/)."""

    level: str = _setting("INFO", check=_log_level)
    #: "text" (one line per record) or "json" (JSON lines, for log collectors)
    format: str = _setting("text", check=_log_format)


def _share(value: float) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be a share between 0 and 1 (not percent)"


@dataclass(frozen=True)
class SafetyConfig:
    """Guards against mistakes in edited files, and who may read what iopreport writes."""

    #: A build refuses a catalog that would retire more than this share of the sources
    #: with results (or every source) unless ``--allow-retire`` is given.
    max_retire_share: float = _setting(0.25, check=_share)
    #: False: the store, logs and outbox are readable by their owner only (0600/0700);
    #: true: by the owner's group too (0640/0750).
    group_readable: bool = _setting(False)

    @property
    def file_mode(self) -> int:
        return 0o640 if self.group_readable else 0o600

    @property
    def dir_mode(self) -> int:
        return 0o750 if self.group_readable else 0o700


@dataclass(frozen=True)
class Config:
    """The whole configuration. Build it with :func:`load_config`."""

    source: Path | None
    paths: PathsConfig = field(default_factory=PathsConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    astrometry: AstrometryConfig = field(default_factory=AstrometryConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    archives: Mapping[str, ArchiveConfig] = field(
        default_factory=lambda: types.MappingProxyType({})
    )
    instruments: Mapping[str, GenericInstrumentConfig] = field(
        default_factory=lambda: types.MappingProxyType({})
    )
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    subscribers: tuple[SubscriberConfig, ...] = ()
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    polarimetry: PolarimetryConfig = field(default_factory=PolarimetryConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    @functools.cached_property
    def registry(self) -> InstrumentRegistry:
        """Every instrument this configuration knows: the built-in ones and ``[instruments]``."""
        return InstrumentRegistry.builtin().with_generic(self.instruments.values())

    @property
    def database_path(self) -> Path | str:
        """The store: the SQLite file ``paths.database`` (default ``<datadir>/iopreport.db``),
        or the ``postgresql://`` URL, with the password from ``database_password_env``."""
        value = self.paths.database
        if is_database_url(value):
            return url_with_password(str(value), self.paths.database_password_env)
        if str(value) not in ("", "."):
            return Path(value)
        return self.paths.datadir / "iopreport.db"

    @property
    def store_exists(self) -> bool:
        """Whether the store may hold data: a PostgreSQL URL, or a SQLite file that exists."""
        path = self.database_path
        return is_database_url(path) or Path(path).exists()


def url_with_password(url: str, variable: str) -> str:
    """``url`` with the password read from environment variable ``variable`` (if set)."""
    from urllib.parse import quote, urlsplit, urlunsplit

    password = os.environ.get(variable, "") if variable else ""
    if not password:
        return url
    parts = urlsplit(url)
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_SECTIONS = {
    "cluster": ClusterConfig,
    "paths": PathsConfig,
    "processing": ProcessingConfig,
    "astrometry": AstrometryConfig,
    "quality": QualityConfig,
    "smtp": SmtpConfig,
    "schedule": ScheduleConfig,
    "alerts": AlertsConfig,
    "logging": LoggingConfig,
    "safety": SafetyConfig,
}
_TOP_LEVEL_KEYS = (*_SECTIONS, "archives", "subscribers", "instruments", "polarimetry")


def find_config(explicit: Path | str | None = None) -> Path:
    """Resolve the config file: ``explicit``, ``$IOPREPORT_CONFIG``, ``./config.toml``."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    candidate = Path.cwd() / DEFAULT_CONFIG_NAME
    if candidate.exists():
        return candidate
    raise InputError(
        candidate,
        None,
        f"no configuration found (tried --config, ${CONFIG_ENV}, ./{DEFAULT_CONFIG_NAME}); "
        "create one with `iopreport init DIR`",
    )


def load_config(path: Path | str | None = None) -> Config:
    """Load and check a config file (see :func:`find_config` for the lookup).

    Raises
    ------
    InputError
        For a missing file, a TOML syntax error, an unknown key, a wrong type
        or a bad value; the message names the key and its line.
    """
    path = find_config(path).expanduser().resolve()
    source = TomlSource.read(path)
    config = config_from_source(source)
    return config


def config_from_source(source: TomlSource) -> Config:
    """Build a :class:`Config` from already-parsed TOML."""
    data = source.data
    _reject_unknown(source, (), data, _TOP_LEVEL_KEYS)
    sections = {}
    for name, cls in _SECTIONS.items():
        table = _expect_table(source, (name,), data.get(name, {}))
        sections[name] = _build(cls, table, source, (name,))
    base = source.path.parent
    sections["paths"] = _resolve_paths(sections["paths"], base)
    if sections["smtp"].ca_file:
        ca_file = str(_resolve(Path(sections["smtp"].ca_file), base))
        sections["smtp"] = dataclasses.replace(sections["smtp"], ca_file=ca_file)

    instruments_table = _expect_table(source, ("instruments",), data.get("instruments", {}))
    instruments = {}
    for name, table in instruments_table.items():
        key = ("instruments", name)
        table = _expect_table(source, key, table)
        if name in InstrumentRegistry.builtin():
            raise source.error(key, f"instrument {name!r} is built in; choose another name")
        instruments[name] = _build(GenericInstrumentConfig, {**table, "name": name}, source, key)
    known_telescopes = (*TELESCOPES, *sorted({i.telescope for i in instruments.values()}))

    archives_table = _expect_table(source, ("archives",), data.get("archives", {}))
    archives = {}
    for telescope, table in archives_table.items():
        key = ("archives", telescope)
        if telescope not in known_telescopes:
            raise source.error(key, f"unknown telescope; known: {', '.join(known_telescopes)}")
        table = _expect_table(source, key, table)
        archive = _build(ArchiveConfig, {**table, "telescope": telescope}, source, key)
        if archive.protocol in ("ftp", "sftp") and archive.enabled and not archive.host:
            raise source.error((*key, "host"), f"{archive.protocol} archive needs a host")
        if archive.protocol == "local":
            archive = dataclasses.replace(archive, root=str(_resolve(Path(archive.root), base)))
        archives[telescope] = archive

    subscribers_value = data.get("subscribers", [])
    if not isinstance(subscribers_value, list):
        raise source.error(("subscribers",), "must be an array of tables: [[subscribers]]")
    subscribers = []
    for index, table in enumerate(subscribers_value):
        key = ("subscribers", index)
        table = _expect_table(source, key, table)
        subscriber = _build(SubscriberConfig, table, source, key)
        if any(s.name.casefold() == subscriber.name.casefold() for s in subscribers):
            raise source.error((*key, "name"), f"subscriber name {subscriber.name!r} is used twice")
        subscribers.append(subscriber)
    registry = InstrumentRegistry.builtin().with_generic(instruments.values())
    polarimetry = _polarimetry(source, data.get("polarimetry", {}), registry)
    return Config(
        source=source.path,
        polarimetry=polarimetry,
        archives=types.MappingProxyType(archives),
        instruments=types.MappingProxyType(instruments),
        subscribers=tuple(subscribers),
        **sections,
    )


def _polarimetry(source: TomlSource, value: Any, registry: InstrumentRegistry) -> PolarimetryConfig:
    key = ("polarimetry",)
    table = dict(_expect_table(source, key, value))
    entries_value = table.pop("instrumental", [])
    if not isinstance(entries_value, list):
        raise source.error((*key, "instrumental"), "must be an array of tables")
    entries = []
    for index, entry_table in enumerate(entries_value):
        entry_key = (*key, "instrumental", index)
        entry_table = _expect_table(source, entry_key, entry_table)
        if "valid_from" in entry_table and not isinstance(entry_table["valid_from"], str):
            entry_table = {**entry_table, "valid_from": entry_table["valid_from"].isoformat()}
        entry = _build(InstrumentalPolarizationTable, entry_table, source, entry_key).parsed()
        if entry.instrument not in registry:
            known = ", ".join(registry.names())
            raise source.error((*entry_key, "instrument"), f"unknown instrument; known: {known}")
        entries.append(entry)
    settings = _build(PolarimetryConfig, table, source, key)
    return dataclasses.replace(settings, instrumental=tuple(entries))


def _resolve(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base / path)


def _resolve_paths(paths: PathsConfig, base: Path) -> PathsConfig:
    changes = {}
    for item in dataclasses.fields(paths):
        value = getattr(paths, item.name)
        if item.name == "database_password_env":
            continue
        if item.name == "database" and (str(value) in ("", ".") or is_database_url(value)):
            continue
        changes[item.name] = _resolve(Path(value), base)
    return dataclasses.replace(paths, **changes)


def _expect_table(source: TomlSource, key: KeyPath, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise source.error(key, f"must be a table, got {_type_name(value)}")
    return value


def _reject_unknown(source: TomlSource, key: KeyPath, table: Mapping, known) -> None:
    for name in table:
        if name not in known:
            hint = difflib.get_close_matches(name, list(known), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            allowed = ", ".join(sorted(known))
            raise source.error((*key, name), f"unknown key{suggestion}; allowed here: {allowed}")


def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _build(cls: type, table: Mapping[str, Any], source: TomlSource, key: KeyPath):
    """Make dataclass ``cls`` from ``table``, checking every key and value."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    toml_names = {f.metadata.get("key") or f.name: f for f in fields}
    if "password" in table and "password_env" in toml_names:
        raise source.error(
            (*key, "password"),
            "never write a password in config.toml; put it in an environment variable "
            "and give that variable's name as password_env",
        )
    _reject_unknown(source, key, table, toml_names)
    values = {}
    for toml_name, item in toml_names.items():
        item_key = (*key, toml_name)
        if toml_name not in table:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise source.error(item_key, "required key is missing")
            continue
        value = _convert(hints[item.name], table[toml_name], source, item_key)
        check = item.metadata.get("check")
        if check and (problem := check(value)):
            raise source.error(item_key, problem)
        values[item.name] = value
    return cls(**values)


def _convert(kind: Any, value: Any, source: TomlSource, key: KeyPath) -> Any:
    origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            return _bad(source, key, "one of " + ", ".join(repr(c) for c in choices), value)
        return value
    if origin in (Mapping, dict):
        if not isinstance(value, dict):
            return _bad(source, key, "a table", value)
        _, value_kind = typing.get_args(kind)
        return types.MappingProxyType(
            {str(k): _convert(value_kind, v, source, (*key, k)) for k, v in value.items()}
        )
    if origin is tuple:
        (item_kind, _ellipsis) = typing.get_args(kind)
        if not isinstance(value, list):
            return _bad(source, key, "an array", value)
        return tuple(_convert(item_kind, item, source, key) for item in value)
    if kind is bool:
        return value if isinstance(value, bool) else _bad(source, key, "true or false", value)
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value if ok else _bad(source, key, "an integer", value)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            return _bad(source, key, "a finite number", value)
        return float(value) if ok else _bad(source, key, "a number", value)
    if kind is str:
        return value if isinstance(value, str) else _bad(source, key, "a string", value)
    if kind is Path:
        return Path(value) if isinstance(value, str) else _bad(source, key, "a path string", value)
    raise TypeError(f"unsupported config type {kind!r}")  # a programming error, not user input


def _bad(source: TomlSource, key: KeyPath, expected: str, value: Any):
    raise source.error(key, f"must be {expected}, got {_type_name(value)} {value!r}")
