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
    check_address,
    check_addresses,
    check_database,
    check_encoding,
    check_env_name,
    check_hhmm,
    check_http_url,
    check_index_series,
    check_log_format,
    check_log_level,
    check_night_pattern,
    check_not_negative,
    check_port,
    check_positive,
    check_regexes,
    check_rule_threshold,
    check_scheduler,
    check_share,
    check_some_addresses,
    check_timezone,
    setting,
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

    datadir: Path = setting(Path("~/.iopreport"))
    #: the SQLite file, or a ``postgresql://user@host:port/name`` URL (no password in it)
    database: str = setting("", check=check_database)
    #: name of the environment variable holding the PostgreSQL password (as for SMTP)
    database_password_env: str = setting("", check=check_env_name)
    astrometry_index_dir: Path = setting(Path("~/.iopreport/astrometry-index"))
    site_dir: Path = setting(Path("site_out"))
    outbox_dir: Path = setting(Path("outbox"))
    catalog: Path = setting(Path("catalog.toml"))
    flags: Path = setting(Path("flags.toml"))
    templates_dir: Path = setting(Path("templates"))
    static_dir: Path = setting(Path("static"))

    def data_subdir(self, name: str) -> Path:
        """One of :data:`DATA_SUBDIRS` under the data directory."""
        if name not in DATA_SUBDIRS:
            raise ValueError(f"unknown data sub-directory {name!r}")
        return self.datadir / name


@dataclass(frozen=True)
class ArchiveConfig:
    """One telescope's archive: where new nights are listed and downloaded from."""

    telescope: str
    protocol: Literal["ftp", "sftp", "local"] = setting()
    enabled: bool = setting(True)
    host: str = setting("")
    port: int = setting(0, check=check_port)
    user: str = setting("")
    password_env: str = setting("", check=check_env_name)
    root: str = setting("/")
    file_patterns: tuple[str, ...] = setting((), check=check_regexes)
    #: Night folders under ``root``, e.g. "{night:%Y-%m-%d}" or "{night:%Y}/{night:%m}/{night:%d}";
    #: empty: the telescope's usual layout (iopreport.nightlayout).
    night_folder: str = setting("", check=check_night_pattern)
    encoding: str = setting("utf-8", check=check_encoding)
    timeout_s: float = setting(60.0, check=check_positive)

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

    workers: int = setting(2, check=check_positive)
    astrometry_timeout_s: float = setting(120.0, check=check_positive)
    solver_recycle_frames: int = setting(500, check=check_positive)
    master_validity_days: int = setting(15, check=check_positive)


@dataclass(frozen=True)
class AstrometryConfig:
    """astrometry.net index files for the real sky (`iopreport index`, docs/astrometry-index.md)."""

    series: str = setting("auto", check=check_index_series)
    mirror_url: str = setting("", check=check_http_url)
    auto_download: bool = setting(False)


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the automatic quality flags, re-applied on every build (docs/flags.md)."""

    max_mag_err: float = setting(0.3, check=check_positive)  # the reference's 0.3 mag
    max_p_err_percent: float = setting(5.0, check=check_positive)
    max_chi_err_deg: float = setting(15.0, check=check_positive)
    min_calibrators: int = setting(2, check=check_positive)


@dataclass(frozen=True)
class SmtpConfig:
    """The mail server the night summaries go through."""

    host: str = setting("localhost")
    port: int = setting(0, check=check_port)
    security: Literal["none", "starttls", "tls"] = setting("none")
    user: str = setting("")
    password_env: str = setting("", check=check_env_name)
    sender: str = setting("iopreport@localhost", check=check_address, key="from")
    reply_to: str = setting("", check=check_address)
    contact_name: str = setting("")
    contact_email: str = setting("", check=check_address)
    site_url: str = setting("")
    timeout_s: float = setting(30.0, check=check_positive)
    ca_file: str = setting("")

    @property
    def effective_port(self) -> int:
        """The configured port, or the usual one for the security mode."""
        return self.port or {"none": 25, "starttls": 587, "tls": 465}[self.security]


@dataclass(frozen=True)
class SubscriberConfig:
    """One recipient (or list of recipients) of the night summary."""

    name: str = setting()
    to: tuple[str, ...] = setting(check=check_some_addresses)
    cc: tuple[str, ...] = setting((), check=check_addresses)
    bcc: tuple[str, ...] = setting((), check=check_addresses)
    sources: tuple[str, ...] = setting(())
    alerts_only: bool = setting(False)


@dataclass(frozen=True)
class AlertsConfig:
    """Rules that raise alerts in the night summary (docs/summaries.md); 0 turns a rule off."""

    mag_change: float = setting(0.3, check=check_rule_threshold)
    p_change: float = setting(0.03, check=check_rule_threshold)
    chi_change_deg: float = setting(20.0, check=check_rule_threshold)
    spread_sigma: float = setting(0.0, check=check_rule_threshold)
    new_brightest: bool = setting(True)
    min_history_nights: int = setting(3, check=check_positive)


@dataclass(frozen=True)
class ScheduleConfig:
    """When the daemon polls, summarises and retries."""

    poll_interval_minutes: int = setting(30, check=check_positive)
    summary_time: str = setting("08:00", check=check_hhmm)
    timezone: str = setting("Europe/Madrid", check=check_timezone)
    close_night_after_hours: float = setting(36.0, check=check_positive)
    retry_interval_minutes: int = setting(20, check=check_positive)


@dataclass(frozen=True)
class ClusterConfig:
    """Where reductions run: ``scheduler = ""`` the local process pool (default),
    ``"local"`` a Dask LocalCluster here, ``"tcp://host:8786"`` a Dask scheduler."""

    scheduler: str = setting("", check=check_scheduler)
    local_workers: int = setting(0, check=check_not_negative)  # 0: processing.workers
    connect_timeout_s: float = setting(30.0, check=check_positive)
    jobs_per_task: int = setting(4, check=check_positive)  # frames or masters per Dask task


@dataclass(frozen=True)
class LoggingConfig:
    """Log verbosity (logs go to the terminal and to <datadir>/logs/)."""

    level: str = setting("INFO", check=check_log_level)
    #: "text" (one line per record) or "json" (JSON lines, for log collectors)
    format: str = setting("text", check=check_log_format)


@dataclass(frozen=True)
class SafetyConfig:
    """Guards against mistakes in edited files, and who may read what iopreport writes."""

    #: A build refuses a catalog that would retire more than this share of the sources
    #: with results (or every source) unless ``--allow-retire`` is given.
    max_retire_share: float = setting(0.25, check=check_share)
    #: False: the store, logs and outbox are readable by their owner only (0600/0700);
    #: true: by the owner's group too (0640/0750).
    group_readable: bool = setting(False)

    @property
    def file_mode(self) -> int:
        return 0o640 if self.group_readable else 0o600

    @property
    def dir_mode(self) -> int:
        return 0o750 if self.group_readable else 0o700
