"""Find config.toml, read it and build the :class:`~iopreport.config.toplevel.Config`.

Lookup order: ``--config PATH``, then ``$IOPREPORT_CONFIG``, then
``./config.toml``. Relative paths inside the file are relative to the file's
folder, so a site project can be moved as a whole. The checks across tables
(known telescopes and instruments, archive hosts, unique subscriber names) are here.
"""

from __future__ import annotations

import dataclasses
import os
import types
from pathlib import Path
from typing import Any

from iopreport.config.conversion import build_section, expect_table, reject_unknown
from iopreport.config.database_url import is_database_url
from iopreport.config.instrument_sections import (
    GenericInstrumentConfig,
    InstrumentalPolarizationTable,
    PolarimetryConfig,
)
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
from iopreport.config.toplevel import Config
from iopreport.errors import InputError
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.telescopes import TELESCOPES
from iopreport.tomlsource import TomlSource

CONFIG_ENV = "IOPREPORT_CONFIG"
DEFAULT_CONFIG_NAME = "config.toml"
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
    reject_unknown(source, (), data, _TOP_LEVEL_KEYS)
    sections = {}
    for name, cls in _SECTIONS.items():
        table = expect_table(source, (name,), data.get(name, {}))
        sections[name] = build_section(cls, table, source, (name,))
    base = source.path.parent
    sections["paths"] = _resolve_paths(sections["paths"], base)
    if sections["smtp"].ca_file:
        ca_file = str(_resolve(Path(sections["smtp"].ca_file), base))
        sections["smtp"] = dataclasses.replace(sections["smtp"], ca_file=ca_file)

    instruments_table = expect_table(source, ("instruments",), data.get("instruments", {}))
    instruments = {}
    for name, table in instruments_table.items():
        key = ("instruments", name)
        table = expect_table(source, key, table)
        if name in InstrumentRegistry.builtin():
            raise source.error(key, f"instrument {name!r} is built in; choose another name")
        instruments[name] = build_section(
            GenericInstrumentConfig, {**table, "name": name}, source, key
        )
    known_telescopes = (*TELESCOPES, *sorted({i.telescope for i in instruments.values()}))

    archives_table = expect_table(source, ("archives",), data.get("archives", {}))
    archives = {}
    for telescope, table in archives_table.items():
        key = ("archives", telescope)
        if telescope not in known_telescopes:
            raise source.error(key, f"unknown telescope; known: {', '.join(known_telescopes)}")
        table = expect_table(source, key, table)
        archive = build_section(ArchiveConfig, {**table, "telescope": telescope}, source, key)
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
        table = expect_table(source, key, table)
        subscriber = build_section(SubscriberConfig, table, source, key)
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
    table = dict(expect_table(source, key, value))
    entries_value = table.pop("instrumental", [])
    if not isinstance(entries_value, list):
        raise source.error((*key, "instrumental"), "must be an array of tables")
    entries = []
    for index, entry_table in enumerate(entries_value):
        entry_key = (*key, "instrumental", index)
        entry_table = expect_table(source, entry_key, entry_table)
        if "valid_from" in entry_table and not isinstance(entry_table["valid_from"], str):
            entry_table = {**entry_table, "valid_from": entry_table["valid_from"].isoformat()}
        entry = build_section(
            InstrumentalPolarizationTable, entry_table, source, entry_key
        ).parsed()
        if entry.instrument not in registry:
            known = ", ".join(registry.names())
            raise source.error((*entry_key, "instrument"), f"unknown instrument; known: {known}")
        entries.append(entry)
    settings = build_section(PolarimetryConfig, table, source, key)
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
