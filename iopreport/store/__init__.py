"""The iopreport store: Peewee models over SQLite or PostgreSQL, usable from scripts and notebooks.

>>> from iopreport.store import open_store, last_epoch
>>> open_store("~/.iopreport/iopreport.db")          # doctest: +SKIP
>>> last_epoch()                                      # doctest: +SKIP

See docs/store.md for worked examples.
"""

from iopreport.store.bits import (
    EpochFlags,
    ManualFlags,
    MasterFlags,
    PhotometryFlags,
    RawFitFlags,
    ReducedFitFlags,
    ResultFlags,
)
from iopreport.store.database import close_store, open_store, schema_version
from iopreport.store.migrations import SCHEMA_VERSION
from iopreport.store.models import (
    ALL_MODELS,
    AperPhotResult,
    AstroSource,
    Calibrator,
    Epoch,
    FieldStarFlux,
    Heartbeat,
    ImportedResult,
    MasterBias,
    MasterBiasInput,
    MasterDark,
    MasterDarkInput,
    MasterFlat,
    MasterFlatInput,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    ReducedFit,
    RunLog,
    SentSummary,
    SourceInField,
    StandardPolarization,
)
from iopreport.store.queries import (
    epoch_counts,
    last_epoch,
    results_table,
    source_by_name,
    source_results,
)

__all__ = [
    "ALL_MODELS",
    "SCHEMA_VERSION",
    "AperPhotResult",
    "AstroSource",
    "Calibrator",
    "Epoch",
    "EpochFlags",
    "FieldStarFlux",
    "Heartbeat",
    "ImportedResult",
    "ManualFlags",
    "MasterBias",
    "MasterBiasInput",
    "MasterDark",
    "MasterDarkInput",
    "MasterFlags",
    "MasterFlat",
    "MasterFlatInput",
    "PhotoPolMember",
    "PhotoPolResult",
    "PhotometryFlags",
    "RawFit",
    "RawFitFlags",
    "ReducedFit",
    "ReducedFitFlags",
    "ResultFlags",
    "RunLog",
    "SentSummary",
    "SourceInField",
    "StandardPolarization",
    "close_store",
    "epoch_counts",
    "last_epoch",
    "open_store",
    "results_table",
    "schema_version",
    "source_by_name",
    "source_results",
]
