"""What a frame worker keeps between its frames: the plate solver and the masters.

The astrometry.net index is loaded once per process (:func:`get_solver`, by
:func:`iopreport.reduce.frame.init_worker`), and the few masters a night uses
are read once each (:func:`read_master`): module state, one cache per process.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from astropy.io import fits

from iopreport.reduce.astrometry import PlateSolver, index_files_in
from iopreport.reduce.calibrate import usable_flat

_solver: PlateSolver | None = None
_solver_key: tuple[str, ...] = ()
_solver_error = ""


def solver_error() -> str:
    """Why this process has no solver ("" when it has one or has not tried)."""
    return _solver_error


def get_solver(index_dir: Path) -> PlateSolver | None:
    """This process's solver (None, with :func:`solver_error` saying why, if it cannot load)."""
    global _solver, _solver_key, _solver_error
    files = index_files_in(index_dir)
    key = tuple(str(f) for f in files)
    if key != _solver_key or (_solver is None and not _solver_error):
        _solver_key = key
        _solver = None
        _solver_error = "" if files else f"no astrometry.net index files in {index_dir}"
        if files:
            try:
                _solver = PlateSolver(files)
            except Exception as exc:  # a damaged index file must not kill the worker
                _solver_error = f"cannot load the index files in {index_dir}: {exc}"
    return _solver


def read_master(path: Path | None, flat: bool = False):
    """A master frame, cached in this worker (a night uses few masters for many frames);
    flats with their untrusted pixels set to NaN once (:func:`usable_flat`)."""
    if path is None:
        return None
    return _read_cached(str(path), path.stat().st_mtime_ns, flat)


@functools.lru_cache(maxsize=6)
def _read_cached(path: str, mtime_ns: int, flat: bool) -> np.ndarray:
    data = fits.getdata(path).astype(np.float32)
    if flat:
        data = usable_flat(data)
    data.setflags(write=False)
    return data
