"""flags.toml: human quality judgement that survives every reprocessing.

A flag selects results (or raw frames) by what they are, never by database
id, and says what is bad and why. Modules, one job each:

* :mod:`~iopreport.flags.model` -- the :class:`Flag` and :class:`FlagSet` values;
* :mod:`~iopreport.flags.parse` -- flags.toml -> :class:`FlagSet`, every error with its line;
* :mod:`~iopreport.flags.match` -- pure matching of a flag against a result or a frame;
* :mod:`~iopreport.flags.views` -- the store's frames and results as the views flags match;
* :mod:`~iopreport.flags.frames` -- the frames frame flags exclude, marked in the store;
* :mod:`~iopreport.flags.manual` -- the results each flag selects, written into the store;
* :mod:`~iopreport.flags.automatic` -- the automatic flags from config.toml's thresholds;
* :mod:`~iopreport.flags.rows` -- the plain SQL reads and batched writes they share;
* :mod:`~iopreport.flags.check` -- ``flags check`` and ``flags list`` reports;
* :mod:`~iopreport.flags.edit` -- ``flags add`` / ``flags remove`` keeping comments.

Format and examples: docs/flags.md.
"""

from iopreport.flags.model import Flag, FlagSet
from iopreport.flags.parse import flags_from_source, load_flags

__all__ = ["Flag", "FlagSet", "flags_from_source", "load_flags"]
