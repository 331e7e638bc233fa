"""Helpers the command modules share: the configuration and the telescopes asked for."""

from __future__ import annotations

import argparse

from iopreport.errors import UsageError


def check_telescopes(names, config=None) -> None:
    """Refuse telescope names that neither iopreport nor the config's instruments know."""
    from iopreport.telescopes import TELESCOPES

    known = [*TELESCOPES]
    if config is not None:
        known += sorted({i.telescope for i in config.instruments.values()})
    for name in names or ():
        if name not in known:
            raise UsageError(f"unknown telescope {name!r}; known: {', '.join(known)}")


def load_config_and_logging(args: argparse.Namespace, *, log_to_file: bool = False):
    """The ``--config`` file, with logging set up as it and the command line say."""
    from iopreport.config import load_config
    from iopreport.logsetup import configure_logging

    config = load_config(args.config)
    configure_logging(config, verbose=args.verbose, to_file=log_to_file, json_lines=args.log_json)
    return config
