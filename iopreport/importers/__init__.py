"""Importers of other pipelines' databases (``iopreport import``).

:mod:`iopreport.importers.iop4db` reads an IOP4 database read-only;
:mod:`~iopreport.importers.iop4catalog`, :mod:`~iopreport.importers.iop4flags`
and :mod:`~iopreport.importers.iop4results` turn it into catalog.toml entries,
flags.toml entries and imported results; :mod:`iopreport.importers.iop4` runs
them (``iopreport import iop4``); :mod:`iopreport.importers.compare` lists
imported and own results side by side.
"""
