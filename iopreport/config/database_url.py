"""The store's location in ``paths.database``: a SQLite file or a PostgreSQL URL.

A URL never holds the password in config.toml; :func:`url_with_password` adds the
one read from the environment variable named by ``paths.database_password_env``.
"""

from __future__ import annotations

import os


def is_database_url(value: object) -> bool:
    """Whether a ``paths.database`` value names a PostgreSQL server rather than a file."""
    return str(value).startswith(("postgresql://", "postgres://"))


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
