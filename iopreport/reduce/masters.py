"""Master bias, dark (as a rate) and flat (normalised): selection and robust combination.

Improvements over the reference (reference/iop4.md §5.1, §17.5): frames are
checked before use (saturation, flat level), combined with sigma clipping
instead of a plain median, read once each, and combined in row strips so that
memory stays bounded however many frames a night has. Thresholds follow the
peers that set them (peers.md: BANZAI, photopipe).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clip

from iopreport.instruments import InstrumentSpec

#: Fewest frames a master may be built from (BANZAI and photopipe use 5, PyNOT 3).
MIN_FRAMES = {"bias": 3, "dark": 3, "flat": 3}
#: A flat's bias-subtracted median must lie within this fraction of the ADC
#: range above the bias (photopipe's amin/amax are 0.2-0.8; dim twilight
#: flats down to 0.1 are still linear and useful).
FLAT_LEVEL_WINDOW = (0.10, 0.80)
#: Largest fraction of saturated pixels a calibration frame may have (BANZAI
#: rejects science frames at 5%; calibrations must be cleaner). Real EFOSC2
#: twilight flats carry 0.03% of saturated pixels from bad columns, so the
#: limit sits above a detector's cosmetic defects: 0.1%.
MAX_SATURATED_FRACTION = 1.0e-3
#: Sigma clipping of the combination (ccdproc's sigma_clip defaults).
CLIP_SIGMA = 3.0
CLIP_ITERATIONS = 3
#: Memory the combination may use for its stack of strips.
DEFAULT_MEMORY_LIMIT = 256 * 1024**2


@dataclass(frozen=True)
class CalibrationFrame:
    """A raw calibration file and what classification said of it."""

    path: Path
    exptime: float


@dataclass
class MasterResult:
    """A combined master and how it was made."""

    kind: str
    data: np.ndarray | None
    inputs: list[Path] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # file name -> reason
    level: float | None = None
    noise: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.data is not None


def read_frame(path: Path) -> np.ndarray:
    """Primary-HDU data as float32 (raises for unreadable or truncated files)."""
    with fits.open(path, memmap=False) as hdul:
        data = hdul[0].data
        if data is None:
            raise ValueError("no image data in the primary HDU")
        return np.asarray(data, dtype=np.float32)


def build_master(
    kind: str,
    frames: Sequence[CalibrationFrame],
    spec: InstrumentSpec,
    *,
    bias: np.ndarray | None = None,
    dark_rate: np.ndarray | None = None,
    scratch_dir: Path | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
) -> MasterResult:
    """Select and combine calibration frames into a master.

    Each raw file is read once: it is checked, corrected (bias, dark; flats
    normalised by their own median) and written to a float32 scratch cube on
    disk; the cube is then combined strip by strip with sigma clipping, so
    memory is bounded by ``memory_limit`` plus one frame.

    Parameters
    ----------
    kind : {"bias", "dark", "flat"}
    frames : sequence of CalibrationFrame
    spec : InstrumentSpec
        For the saturation level.
    bias, dark_rate : ndarray, optional
        Master bias (ADU) and dark rate (ADU/s) to subtract first.

    Returns
    -------
    MasterResult
        ``data`` is None when fewer than ``MIN_FRAMES[kind]`` frames pass;
        ``error`` then says why and ``rejected`` gives each frame's reason.
    """
    result = MasterResult(kind=kind, data=None)
    accepted: list[tuple[Path, float]] = []
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix=f"master-{kind}-") as folder:
        cube_path = Path(folder) / "cube.f32"
        cube = None
        shape = None
        for frame in frames:
            try:
                data = read_frame(frame.path)
            except Exception as exc:
                result.rejected[frame.path.name] = f"unreadable: {exc}"
                continue
            if shape is None:
                shape = data.shape
                cube = np.lib.format.open_memmap(
                    cube_path, mode="w+", dtype=np.float32, shape=(len(frames), *shape)
                )
            if data.shape != shape:
                result.rejected[frame.path.name] = f"shape {data.shape} differs from {shape}"
                continue
            if not np.isfinite(data).all():
                result.rejected[frame.path.name] = "non-finite pixels"
                continue
            saturated = float(np.mean(data >= spec.saturation_adu))
            if saturated > MAX_SATURATED_FRACTION:
                result.rejected[frame.path.name] = f"{saturated:.2%} of pixels saturated"
                continue
            corrected = data
            if bias is not None:
                corrected = corrected - bias
            if dark_rate is not None and frame.exptime > 0:
                corrected = corrected - dark_rate * frame.exptime
            if kind == "dark":
                if frame.exptime <= 0:
                    result.rejected[frame.path.name] = "dark with zero exposure time"
                    continue
                corrected = corrected / frame.exptime
            if kind == "flat":
                level = float(np.median(corrected))
                low, high = (
                    f * (spec.saturation_adu - spec.bias_level_adu) for f in FLAT_LEVEL_WINDOW
                )
                if not low <= level <= high:
                    result.rejected[frame.path.name] = (
                        f"median level {level:.0f} ADU outside {low:.0f}-{high:.0f}"
                    )
                    continue
                corrected = corrected / level
            cube[len(accepted)] = corrected
            accepted.append((frame.path, frame.exptime))
        minimum = MIN_FRAMES[kind]
        if len(accepted) < minimum:
            result.error = (
                f"{len(accepted)} usable {kind} frame(s) of {len(frames)}; "
                f"at least {minimum} needed"
            )
            return result
        result.data = _combine(cube, len(accepted), memory_limit)
        del cube
    if kind == "flat":
        result.data /= np.median(result.data)
    result.inputs = [path for path, _ in accepted]
    result.level = float(np.median(result.data))
    result.noise = float(_mad_std(result.data))
    return result


def _combine(cube: np.ndarray, count: int, memory_limit: int) -> np.ndarray:
    """Sigma-clipped mean along the first axis, strip by strip."""
    _, ny, nx = cube.shape
    # the clipping works on float64 copies with masks: ~3 arrays of 8 bytes per value
    rows = max(1, int(memory_limit // max(1, count * nx * 8 * 3)))
    output = np.empty((ny, nx), dtype=np.float32)
    for start in range(0, ny, rows):
        stop = min(ny, start + rows)
        strip = np.asarray(cube[:count, start:stop], dtype=np.float64)
        if count >= 3:
            clipped = sigma_clip(
                strip,
                sigma=CLIP_SIGMA,
                maxiters=CLIP_ITERATIONS,
                axis=0,
                cenfunc="median",
                stdfunc="mad_std",
                masked=True,
                copy=False,
            )
            output[start:stop] = np.ma.mean(clipped, axis=0).filled(np.nan)
        else:
            output[start:stop] = strip.mean(axis=0)
    # pixels clipped in every frame fall back to the median
    bad = ~np.isfinite(output)
    if bad.any():
        output[bad] = np.median(np.asarray(cube[:count]), axis=0)[bad]
    return output


def _mad_std(data: np.ndarray) -> float:
    sample = data[:: max(1, data.shape[0] // 256), :: max(1, data.shape[1] // 256)]
    median = np.median(sample)
    return 1.4826 * float(np.median(np.abs(sample - median)))


def master_header(result: MasterResult, **keys) -> fits.Header:
    """Provenance header: type, selection keys, NCOMBINE and every input file (IMCMBnnn)."""
    header = fits.Header()
    header["MASTER"] = (result.kind, "kind of master calibration frame")
    for key, value in keys.items():
        if value is not None:
            header[key.upper()[:8]] = value
    header["NCOMBINE"] = (len(result.inputs), "number of frames combined")
    header["COMBMETH"] = (f"sigma-clipped mean {CLIP_SIGMA:g} sigma", "combination")
    for index, path in enumerate(result.inputs, start=1):
        header[f"IMCMB{index:03d}"] = path.name
    if result.kind == "dark":
        header["BUNIT"] = ("adu/s", "dark current rate")
    return header


def write_master(path: Path, result: MasterResult, header: fits.Header) -> None:
    """Write atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fits.PrimaryHDU(data=result.data.astype(np.float32), header=header).writeto(
        temporary, overwrite=True
    )
    temporary.replace(path)
