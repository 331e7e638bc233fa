"""catalog.toml: the sources iopreport knows, read on every run.

The file is a list of ``[[source]]`` tables (format in docs/catalog.md). It is
checked as a whole before anything is written, and :func:`sync_catalog` then
writes it into the ``AstroSource`` table in one transaction. Modules, one job each:

* :mod:`~iopreport.catalog.model` -- the :class:`Catalog` and :class:`CatalogSource` values;
* :mod:`~iopreport.catalog.parse` -- catalog.toml -> :class:`Catalog`, every error with its line;
* :mod:`~iopreport.catalog.sync` -- the catalog into the store, and what that would retire.
"""

from iopreport.catalog.model import Catalog, CatalogSource, HostTable, Magnitude, Polarization
from iopreport.catalog.parse import catalog_from_source, load_catalog
from iopreport.catalog.sync import Retirement, retirement, sync_catalog

__all__ = [
    "Catalog",
    "CatalogSource",
    "HostTable",
    "Magnitude",
    "Polarization",
    "Retirement",
    "catalog_from_source",
    "load_catalog",
    "retirement",
    "sync_catalog",
]
