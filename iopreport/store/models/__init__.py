"""Peewee models of the iopreport store.

The tables follow IOP4's data model (IOP4's documentation "IOP4 concepts";
IOP4's data model) and mend the weaknesses listed there:

* a result's identity does not depend on database ids: a photometry result is
  (source, raw file) and a polarimetric one (source, sorted member files),
  kept in ``PhotoPolResult.members_key``, so flags in flags.toml survive a
  full reprocessing;
* raw *and* corrected q and u are stored, and the Ricean-debiased p is a
  separate column;
* every failure keeps its reason as text (``error`` columns), beside the
  ``flags`` bit enums of :mod:`iopreport.store.bits`;
* masters record their inputs, reduced frames record their masters, and
  masters can be marked bad (``MasterFlags.BAD``) so matching skips them;
* automatic and manual (flags.toml) quality flags are separate columns.

Times are naive UTC ``datetime`` values; Julian dates are UTC JD floats.

The models live in modules by what they describe: :mod:`~.base` (database
proxy, base model, JSON field, ``utcnow``), :mod:`~.sources` (the catalog),
:mod:`~.raw` (epochs and raw files), :mod:`~.masters`, :mod:`~.reduced`
(reduced frames and per-frame measurements), :mod:`~.results`,
:mod:`~.bookkeeping` (runs, summaries sent, heartbeat); :data:`ALL_MODELS`
(:mod:`~.tables`) lists every table in dependency order.
"""

from iopreport.store.models.base import database_proxy, utcnow
from iopreport.store.models.bookkeeping import Heartbeat, RunLog, SentSummary
from iopreport.store.models.masters import (
    MasterBias,
    MasterBiasInput,
    MasterDark,
    MasterDarkInput,
    MasterFlat,
    MasterFlatInput,
)
from iopreport.store.models.raw import Epoch, RawFit
from iopreport.store.models.reduced import AperPhotResult, FieldStarFlux, ReducedFit, SourceInField
from iopreport.store.models.results import ImportedResult, PhotoPolMember, PhotoPolResult
from iopreport.store.models.sources import AstroSource, Calibrator, StandardPolarization
from iopreport.store.models.tables import ALL_MODELS

__all__ = [
    "ALL_MODELS",
    "AperPhotResult",
    "AstroSource",
    "Calibrator",
    "Epoch",
    "FieldStarFlux",
    "Heartbeat",
    "ImportedResult",
    "MasterBias",
    "MasterBiasInput",
    "MasterDark",
    "MasterDarkInput",
    "MasterFlat",
    "MasterFlatInput",
    "PhotoPolMember",
    "PhotoPolResult",
    "RawFit",
    "ReducedFit",
    "RunLog",
    "SentSummary",
    "SourceInField",
    "StandardPolarization",
    "database_proxy",
    "utcnow",
]
