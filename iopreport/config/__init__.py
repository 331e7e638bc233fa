"""config.toml -> frozen dataclasses.

Every key of the file maps to a field of a section's dataclass; the file itself
(the repository's ``config.toml``) documents each one. Loading checks every key:
an unknown key, a wrong type or a bad value raises
:class:`~iopreport.errors.InputError` naming the key and its line, which the CLI
prints before exiting with code 2.

Lookup order: ``--config PATH``, then ``$IOPREPORT_CONFIG``, then
``./config.toml``. Relative paths inside the file are relative to the file's
folder, so a site project can be moved as a whole.

Modules: ``checks`` (the value checks), ``sections`` and ``instrument_sections``
(the sections' dataclasses), ``toplevel`` (:class:`Config`), ``database_url``,
``conversion`` (TOML values -> fields) and ``loading`` (lookup, reading, the
checks across tables).
"""

from __future__ import annotations

from iopreport.config.database_url import is_database_url, url_with_password
from iopreport.config.loading import CONFIG_ENV, config_from_source, load_config
from iopreport.config.sections import (
    AlertsConfig,
    ArchiveConfig,
    QualityConfig,
    SmtpConfig,
    SubscriberConfig,
)
from iopreport.config.toplevel import Config

__all__ = [
    "CONFIG_ENV",
    "AlertsConfig",
    "ArchiveConfig",
    "Config",
    "QualityConfig",
    "SmtpConfig",
    "SubscriberConfig",
    "config_from_source",
    "is_database_url",
    "load_config",
    "url_with_password",
]
