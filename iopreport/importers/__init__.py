"""Importers of other pipelines' databases (``iopreport import``).

:mod:`iopreport.importers.iop4db` reads an IOP4 database read-only;
:mod:`iopreport.importers.iop4` turns it into catalog.toml entries, flags.toml
entries and imported results; :mod:`iopreport.importers.compare` lists
imported and own results side by side.
"""
