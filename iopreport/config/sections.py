"""The sections of config.toml that configure the site: one frozen dataclass each.

[paths], [archives.TELESCOPE], [processing], [astrometry], [quality], [smtp],
[[subscribers]], [alerts], [schedule], [cluster], [logging] and [safety]; each
field is a key, with its default and its check (the repository's ``config.toml``
documents them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from iopreport.config.checks import (
    _address,
    _addresses,
    _database,
    _encoding,
    _env_name,
    _hhmm,
    _http_url,
    _index_series,
    _log_format,
    _log_level,
    _night_pattern,
    _not_negative,
    _not_negative_int,
    _port,
    _positive,
    _regexes,
    _scheduler,
    _setting,
    _share,
    _some_addresses,
    _timezone,
)

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


@dataclass(frozen=True)
class ClusterConfig:
    """Where reductions run: ``scheduler = ""`` the local process pool (default),
    ``"local"`` a Dask LocalCluster here, ``"tcp://host:8786"`` a Dask scheduler."""

    scheduler: str = _setting("", check=_scheduler)
    local_workers: int = _setting(0, check=_not_negative_int)  # 0: processing.workers
    connect_timeout_s: float = _setting(30.0, check=_positive)
    frames_per_task: int = _setting(4, check=_positive)  # frames one Dask task reduces


@dataclass(frozen=True)
class LoggingConfig:
    """Log verbosity (logs go to the terminal and to <datadir>/logs/)."""

    level: str = _setting("INFO", check=_log_level)
    #: "text" (one line per record) or "json" (JSON lines, for log collectors)
    format: str = _setting("text", check=_log_format)


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
