"""The whole configuration, :class:`Config`: every section, the instrument registry
built from it, and the store's location.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.config.database_url import is_database_url, url_with_password
from iopreport.config.instrument_sections import GenericInstrumentConfig, PolarimetryConfig
from iopreport.config.sections import (
    AlertsConfig,
    ArchiveConfig,
    AstrometryConfig,
    ClusterConfig,
    LoggingConfig,
    PathsConfig,
    ProcessingConfig,
    QualityConfig,
    SafetyConfig,
    ScheduleConfig,
    SmtpConfig,
    SubscriberConfig,
)
from iopreport.instruments.registry import InstrumentRegistry


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
