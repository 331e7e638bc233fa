"""Every model of the store in one tuple, in the order their tables are created."""

from __future__ import annotations

from iopreport.store.models.base import BaseModel
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

#: Every table, in dependency order (create in this order, drop in reverse).
ALL_MODELS: tuple[type[BaseModel], ...] = (
    AstroSource,
    Calibrator,
    StandardPolarization,
    Epoch,
    RawFit,
    MasterBias,
    MasterDark,
    MasterFlat,
    MasterBiasInput,
    MasterDarkInput,
    MasterFlatInput,
    ReducedFit,
    SourceInField,
    AperPhotResult,
    FieldStarFlux,
    PhotoPolResult,
    PhotoPolMember,
    ImportedResult,
    RunLog,
    SentSummary,
    Heartbeat,
)
