"""Logging: plain lines on stderr, and a rotating file under <datadir>/logs/.

With ``[logging] format = "json"`` (or ``--log-json``) every record is one JSON
object per line (JSON lines), on stderr and in the file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers

from iopreport.config import Config

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
    old files kept. ``json_lines`` (or ``[logging] format = "json"``) formats
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
    folder = config.paths.data_subdir("logs")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "iopreport.log"
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler) and handler.baseFilename == str(target):
            return
    handler = logging.handlers.RotatingFileHandler(
        target, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_COUNT, encoding="utf-8"
    )
    handler.setFormatter(_formatter(json_lines))
    root.addHandler(handler)
