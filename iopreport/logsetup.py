"""Logging: plain lines on stderr, and a rotating file under <datadir>/logs/."""

from __future__ import annotations

import logging
import logging.handlers

from iopreport.config import Config

LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
LOG_FILE_BYTES = 10_000_000
LOG_FILE_COUNT = 10


def configure_logging(config: Config, *, verbose: bool = False, to_file: bool = True) -> None:
    """Apply ``[logging] level`` and, for commands that change data, log to a file too.

    The file is ``<datadir>/logs/iopreport.log``, rotated at 10 MB with ten
    old files kept.
    """
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else getattr(logging, config.logging.level))
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
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
