"""``python -m iopreport.cli``, as when the command was one module (``python -m iopreport``
is the usual way)."""

from iopreport.cli import main

raise SystemExit(main())
