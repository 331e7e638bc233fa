"""One night at one telescope: the names other packages import from the reduction.

The reduction is split by job: :mod:`.run` (the entry), :mod:`.register`,
:mod:`.plan`, :mod:`.schedule`, :mod:`.persist`, :mod:`.relphot`; this module
re-exports their public names so that ``iopreport.reduce.night`` keeps working.
See docs/architecture.md (reduction).
"""

from __future__ import annotations

from iopreport.reduce.masterjob import MasterJob, MasterJobResult, make_master
from iopreport.reduce.persist import check_transparency, store_frame, store_relphot
from iopreport.reduce.plan import index_folder_state, reduced_name
from iopreport.reduce.relphot import LARGE_MAG_ERROR, MIN_CALIBRATORS
from iopreport.reduce.run import (
    ReductionRun,
    reduce_night,
    reduce_nights,
    remeasure_off_trend,
    report_still_failed,
)
from iopreport.reduce.state import NightReport, NightState, raw_night_dir

__all__ = [
    "LARGE_MAG_ERROR",
    "MIN_CALIBRATORS",
    "MasterJob",
    "MasterJobResult",
    "NightReport",
    "NightState",
    "ReductionRun",
    "check_transparency",
    "index_folder_state",
    "make_master",
    "raw_night_dir",
    "reduce_night",
    "reduce_nights",
    "reduced_name",
    "remeasure_off_trend",
    "report_still_failed",
    "store_frame",
    "store_relphot",
]
