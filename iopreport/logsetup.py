"""Logging: plain lines on stderr, and a rotating file under <datadir>/logs/.

With ``[logging] format = "json"`` (or ``--log-json``) every record is one JSON
object per line (JSON lines), on stderr and in the file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
from pathlib import Path

from iopreport.config import Config, is_database_url
from iopreport.fileio import create_private, ensure_dir

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
LOG_FILE_BYTES = 10_000_000
LOG_FILE_COUNT = 10


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, process, message."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def _formatter(json_lines: bool) -> logging.Formatter:
    return JsonLinesFormatter() if json_lines else logging.Formatter(LOG_FORMAT)


def configure_logging(
    config: Config, *, verbose: bool = False, to_file: bool = True, json_lines: bool = False
) -> None:
    """Apply ``[logging] level`` and, for commands that change data, log to a file too.

    The file is ``<datadir>/logs/iopreport.log``, rotated at 10 MB with ten
    old files kept, readable by its owner only unless ``[safety] group_readable``.
    ``json_lines`` (or ``[logging] format = "json"``) formats
    every handler's records as JSON lines.
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else getattr(logging, config.logging.level))
    json_lines = json_lines or config.logging.format == "json"
    if json_lines:
        for existing in root.handlers:
            existing.setFormatter(JsonLinesFormatter())
    if not to_file:
        return
    folder = ensure_dir(config.paths.data_subdir("logs"), config.safety.dir_mode)
    target = folder / "iopreport.log"
    create_private(target, config.safety.file_mode)
    apply_file_modes(config)
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == str(target):
            return
    handler = logging.handlers.RotatingFileHandler(
        target, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_COUNT, encoding="utf-8"
    )
    handler.setFormatter(_formatter(json_lines))
    root.addHandler(handler)


def apply_file_modes(config: Config) -> None:
    """Give the store, the logs and the outbox the modes ``[safety]`` asks for.

    Owner only (files 0600, folders 0700) by default; owner and group with
    ``group_readable = true``. New files get them when created; this also
    corrects files made by an older iopreport or under another umask.
    """
    safety = config.safety
    database = config.database_path
    stores = () if is_database_url(database) else (database, f"{database}-wal", f"{database}-shm")
    for path in map(Path, stores):  # a PostgreSQL store's files are the server's
        if path.is_file():
            os.chmod(path, safety.file_mode)
    logs = config.paths.data_subdir("logs")
    if logs.is_dir():
        os.chmod(logs, safety.dir_mode)
        for path in logs.glob("iopreport.log*"):
            os.chmod(path, safety.file_mode)
    if config.paths.outbox_dir.is_dir():
        os.chmod(config.paths.outbox_dir, safety.dir_mode)
