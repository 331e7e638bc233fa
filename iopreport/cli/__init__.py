"""The ``iopreport`` command: one function per subcommand.

Exit codes: 0 ok, 1 work failed (details logged and recorded), 2 usage or
configuration error (docs/architecture.md, "Command line").

The parser is in ``parser``; the subcommands' functions are grouped by area in
``data``, ``products`` and ``project``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from iopreport.cli.parser import build_parser
from iopreport.errors import EXIT_USAGE, EXIT_WORK_FAILED, IopreportError
from iopreport.logsetup import LOG_FORMAT

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``iopreport`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except IopreportError as exc:
        print(f"iopreport: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        from iopreport.store.database import is_locked_error, locked_message

        if not is_locked_error(exc):
            raise
        print(f"iopreport: error: {locked_message()}", file=sys.stderr)
        return EXIT_WORK_FAILED
    except KeyboardInterrupt:
        print("iopreport: interrupted", file=sys.stderr)
        return EXIT_WORK_FAILED
