"""One master calibration frame built in a worker: the job, its result, the work.

The planner (:mod:`iopreport.reduce.plan`) makes :class:`MasterJob` values
(picklable: they carry the instrument's spec); a worker runs
:func:`make_master`, which writes the master's FITS file and returns a
:class:`MasterJobResult`; the writer (:mod:`iopreport.reduce.persist`) stores
its row. See docs/architecture.md (reduction).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.instruments import InstrumentSpec
from iopreport.reduce.masters import (
    CalibrationFrame,
    build_master,
    master_header,
    write_master,
)


@dataclass(frozen=True)
class MasterJob:
    """One master to build in a worker: its inputs, the masters it subtracts, its file."""

    kind: str
    label: str
    spec: InstrumentSpec
    frames: tuple[CalibrationFrame, ...]
    path: Path
    bias_path: Path | None
    dark_path: Path | None
    header_keys: tuple[tuple[str, object], ...]


@dataclass
class MasterJobResult:
    inputs: list[str]
    rejected: dict[str, str]
    level: float | None
    noise: float | None
    error: str
    saturated: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # processor time the worker spent on it
    peak_rss_mb: float = 0.0  # the worker's peak resident memory so far


def make_master(job: MasterJob) -> MasterJobResult:
    """Build and write one master (runs in a worker process)."""
    from astropy.io import fits

    cpu = time.process_time()
    spec = job.spec
    job.path.parent.mkdir(parents=True, exist_ok=True)
    bias = fits.getdata(job.bias_path).astype("float32") if job.bias_path else None
    dark = fits.getdata(job.dark_path).astype("float32") if job.dark_path else None
    result = build_master(
        job.kind, list(job.frames), spec, bias=bias, dark_rate=dark, scratch_dir=job.path.parent
    )
    if result.ok:
        header = master_header(result, **dict(job.header_keys))
        if job.bias_path:
            header["IOPBIAS"] = job.bias_path.name
        if job.dark_path:
            header["IOPDARK"] = job.dark_path.name
        write_master(job.path, result, header)
    return MasterJobResult(
        inputs=[p.name for p in result.inputs],
        rejected=result.rejected,
        level=result.level,
        noise=result.noise,
        error=result.error,
        saturated=result.saturated,
        cpu_s=time.process_time() - cpu,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
