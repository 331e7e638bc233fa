"""Fault switches: damaged or odd files, for robustness tests.

Each fault is applied to one frame of the night (the first science frame that
suits it and carries no other fault) and recorded in truth.json with what the
reduction is expected to do with it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from astropy.io import fits

from iopreport.simulate.frameplan import FramePlan

#: Fault name -> what a correct pipeline does with the damaged frame.
FAULTS: dict[str, str] = {
    "truncated": "file cut in half: reading fails; recorded with its reason, the night goes on",
    "missing_keywords": "EXPTIME and date keywords removed: classification fails naming them",
    "all_nan": "every pixel is NaN: calibration or photometry fails for this frame alone",
    "wrong_imagetyp": "IMAGETYP = 'FOCUS': not a known image type, classification fails",
    "unknown_instrume": "INSTRUME = 'MysteryCam': unknown instrument, classification fails",
    "duplicate": "a byte-identical copy under another name: must not give a second result",
    "missing_angle": "one frame of a polarimetric sequence is not written: an incomplete sequence",
    "clouds": "transparency 3%: few stars, astrometry or calibration may fail for this frame alone",
    "trail": "tracking error smears every star 20 px: the frame fails or is flagged",
}


def assign(plans: list[FramePlan], faults) -> tuple[list[FramePlan], list[str]]:
    """Attach each requested fault to a suitable frame; returns the plans and the faults used."""
    plans = list(plans)
    used: set[int] = set()
    applied = []
    for fault in faults:
        for index, plan in enumerate(plans):
            if index in used or not _suits(fault, plan, plans):
                continue
            plans[index] = dataclasses.replace(plan, faults=(*plan.faults, fault))
            used.add(index)
            applied.append(fault)
            break
    return plans, applied


def _suits(fault: str, plan: FramePlan, plans: list[FramePlan]) -> bool:
    if plan.imgtype != "light":
        return False
    if fault == "missing_angle":
        # not the first frame of its sequence, and only in a complete sequence
        members = [p for p in plans if p.sequence and p.sequence == plan.sequence]
        return plan.obsmode == "polarimetry" and members and members[0] is not plan
    return plan.obsmode == "photometry"


def describe(fault: str, file_name: str, plan: FramePlan) -> dict:
    return {
        "fault": fault,
        "file": file_name,
        "instrument": plan.instrument,
        "sequence": plan.sequence,
        "expect": FAULTS[fault],
    }


def duplicate_name(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return f"{stem}_dup.{extension}" if dot else f"{name}_dup"


def write_with_faults(path: Path, data: np.ndarray, header: fits.Header, faults) -> None:
    """Write the raw file (temporary name, then rename), damaged as ``faults`` say."""
    header = header.copy()
    if "all_nan" in faults:
        data = np.full(data.shape, np.nan, dtype=np.float32)
    if "missing_keywords" in faults:
        for key in ("EXPTIME", "JD", "DATE", "DATE-OBS"):
            header.remove(key, ignore_missing=True)
    if "wrong_imagetyp" in faults:
        header["IMAGETYP"] = "FOCUS"
    if "unknown_instrume" in faults:
        header["INSTRUME"] = "MysteryCam"
    hdu = fits.PrimaryHDU(data=data, header=header)
    temporary = path.with_name(f".{path.name}.tmp")
    hdu.writeto(temporary, overwrite=True, output_verify="silentfix")
    if "truncated" in faults:
        size = temporary.stat().st_size
        with open(temporary, "r+b") as stream:
            stream.truncate(size // 2)
    os.replace(temporary, path)
