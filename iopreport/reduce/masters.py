"""Master bias, dark (as a rate) and flat (normalised): selection and robust combination.

Improvements over the reference (IOP4's master calibration): frames are
checked before use (saturation, flat level), combined with sigma clipping
instead of a plain median, read once each, and combined in row strips so that
memory stays bounded however many frames a night has. Thresholds follow the
peers that set them (peers.md: BANZAI, photopipe).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from iopreport.instruments import InstrumentSpec
from iopreport.reduce.rawframe import read_raw

#: Fewest frames a master may be built from (BANZAI and photopipe use 5, PyNOT 3).
MIN_FRAMES = {"bias": 3, "dark": 3, "flat": 3}
#: Fewer frames than this give a usable but noisier master, flagged FEW_FRAMES
#: (BANZAI's and photopipe's minimum).
RECOMMENDED_FRAMES = 5
#: A flat's bias-subtracted median must lie within this fraction of the ADC
#: range above the bias (photopipe's amin/amax are 0.2-0.8; dim twilight
#: flats down to 0.1 are still linear and useful).
FLAT_LEVEL_WINDOW = (0.10, 0.80)
#: Largest fraction of saturated pixels a calibration frame may have (BANZAI
#: rejects science frames at 5%; calibrations must be cleaner). Real EFOSC2
#: twilight flats carry 0.03% of saturated pixels from bad columns, so the
#: limit sits above a detector's cosmetic defects: 0.1%.
MAX_SATURATED_FRACTION = 1.0e-3
#: Sigma clipping of the combination (ccdproc's sigma_clip defaults: 3 sigma, 3 iterations).
CLIP_SIGMA = 3.0
CLIP_ITERATIONS = 3
#: Memory the combination may use for its stack of strips.
DEFAULT_MEMORY_LIMIT = 512 * 1024**2
#: Working memory of one strip of the combination: small enough to stay in the
#: processor's cache (a 10-frame 2048x2048 stack: 1.5 s in 512 MiB strips, 0.5 s in 4 MiB).
STRIP_WORK_BYTES = 4 * 1024**2


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
    saturated: list[str] = field(default_factory=list)  # rejected for saturated pixels
    level: float | None = None
    noise: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.data is not None


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
    disk (in memory when it fits within ``memory_limit``); the cube is then
    combined strip by strip with sigma clipping, so memory is bounded by
    ``memory_limit`` plus one frame.

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
                raw = read_raw(frame.path, spec)
            except Exception as exc:
                result.rejected[frame.path.name] = f"unreadable: {exc}"
                continue
            data = raw.data
            if shape is None:
                shape = data.shape
                cube_shape = (len(frames), *shape)
                if len(frames) * data.nbytes <= memory_limit:
                    cube = np.empty(cube_shape, dtype=np.float32)  # fits: no disk round trip
                else:
                    cube = np.lib.format.open_memmap(
                        cube_path, mode="w+", dtype=np.float32, shape=cube_shape
                    )
            if data.shape != shape:
                result.rejected[frame.path.name] = f"shape {data.shape} differs from {shape}"
                continue
            if not np.isfinite(data).all():
                result.rejected[frame.path.name] = "non-finite pixels"
                continue
            saturated = raw.saturated_fraction
            if saturated > MAX_SATURATED_FRACTION:
                result.rejected[frame.path.name] = f"{saturated:.2%} of pixels saturated"
                result.saturated.append(frame.path.name)
                continue
            corrected = data  # a fresh float32 array: corrected in place
            if bias is not None:
                corrected -= bias
            if dark_rate is not None and frame.exptime > 0:
                corrected -= dark_rate * np.float32(frame.exptime)
            if kind == "dark":
                if frame.exptime <= 0:
                    result.rejected[frame.path.name] = "dark with zero exposure time"
                    continue
                corrected /= np.float32(frame.exptime)
            if kind == "flat":
                level = _sample_median(corrected)
                low, high = (
                    f * (spec.saturation_adu - spec.bias_level_adu) for f in FLAT_LEVEL_WINDOW
                )
                if not low <= level <= high:
                    result.rejected[frame.path.name] = (
                        f"median level {level:.0f} ADU outside {low:.0f}-{high:.0f}"
                    )
                    continue
                corrected /= np.float32(level)
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
        result.data /= np.float32(exact_median(result.data))  # exactly 1, once per master
    result.inputs = [path for path, _ in accepted]
    result.level = _sample_median(result.data)
    result.noise = float(_mad_std(result.data))
    return result


def _combine(cube: np.ndarray, count: int, memory_limit: int) -> np.ndarray:
    """Sigma-clipped mean along the first axis, strip by strip.

    Each pixel's values are sorted once; the values kept by clipping are then a
    contiguous run of the sorted values, so every iteration (median of the run,
    new bounds) is a few vectorised lookups instead of masked-array passes (8x
    faster than astropy's ``sigma_clip`` here). The clipping scale is the
    stack's noise measured once over the whole cube (:func:`_stack_noise`), not
    each pixel's MAD of a handful of values: with 3 to 10 frames a per-pixel
    MAD is so noisy that it clips good values (three values' MAD is the
    smaller of the two gaps) and misses outliers, while the noise of a
    calibration stack is nearly the same over the detector.
    """
    _, ny, nx = cube.shape
    sigma = _stack_noise(cube, count)
    # the sorted strip (4 bytes a value) and about ten per-pixel work arrays
    budget = min(memory_limit, STRIP_WORK_BYTES)
    rows = max(1, int(budget // max(1, (count * 4 + 60) * nx)))
    output = np.empty((ny, nx), dtype=np.float32)
    for start in range(0, ny, rows):
        stop = min(ny, start + rows)
        strip = sort_stack(np.array(cube[:count, start:stop], dtype=np.float32))
        output[start:stop] = _clipped_mean_of_sorted(strip.reshape(count, -1), sigma).reshape(
            stop - start, nx
        )
    return output


#: Largest stack sorted by a sorting network (above it, numpy's sort).
NETWORK_MAX_FRAMES = 32


def sort_stack(stack: np.ndarray) -> np.ndarray:
    """Sort a stack of frames along its first axis, in place, and return it.

    A few frames of many pixels: Batcher's odd-even merge sorting network
    (Knuth, TAOCP vol. 3, §5.3.4) does it as element-wise minimum/maximum of
    whole frames, 5-10x faster than ``np.sort(axis=0)`` for 3-16 frames.
    """
    count = stack.shape[0]
    if count > NETWORK_MAX_FRAMES:
        stack.sort(axis=0)
        return stack
    smaller = np.empty_like(stack[0])
    for low, high in _batcher_network(count):
        np.minimum(stack[low], stack[high], out=smaller)
        np.maximum(stack[low], stack[high], out=stack[high])
        stack[low] = smaller
    return stack


@functools.cache
def _batcher_network(count: int) -> tuple[tuple[int, int], ...]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for ``count`` items.

    Built for the next power of two; comparators that touch the padding are
    dropped (padding with +inf, they would never exchange anything).
    """
    size = 1
    while size < count:
        size *= 2
    pairs = []
    block = 1
    while block < size:
        step = block
        while step >= 1:
            for start in range(step % block, size - step, 2 * step):
                for offset in range(min(step, size - start - step)):
                    i, j = start + offset, start + offset + step
                    if i // (2 * block) == j // (2 * block) and j < count:
                        pairs.append((i, j))
            step //= 2
        block *= 2
    return tuple(pairs)


def _clipped_mean_of_sorted(values: np.ndarray, sigma: float) -> np.ndarray:
    """Mean of each column's values within CLIP_SIGMA * sigma of their median, iterated.

    ``values`` (count, pixels) is sorted along axis 0. A column's kept values are
    the run [low, high) of its sorted values, which always holds the median
    element(s); a column whose run empties falls back to its median. Most
    columns clip nothing, which their smallest and largest values (the first and
    last rows) show at once: they take the plain mean, and only the others run
    the iteration (:func:`_clipped_runs`; 1.6 -> 0.4 ms a 10-frame strip of 40,000
    pixels).
    """
    count = values.shape[0]
    if count < 3 or not sigma > 0:
        return values.mean(axis=0)
    width = np.float32(CLIP_SIGMA * sigma)
    median = 0.5 * (values[(count - 1) // 2] + values[count // 2])
    clipping = np.flatnonzero((values[0] < median - width) | (values[-1] > median + width))
    mean = (values.sum(axis=0, dtype=np.float64) / count).astype(np.float32)
    if clipping.size:
        mean[clipping] = _clipped_runs(values[:, clipping], width)
    return mean


def _clipped_runs(values: np.ndarray, width: np.float32) -> np.ndarray:
    """The iteration of :func:`_clipped_mean_of_sorted` on sorted columns: each pass takes
    the median of the run [low, high) and keeps the values within ``width`` of it; the
    loops run over the few frames, each step a contiguous row."""
    count, pixels = values.shape
    low = np.zeros(pixels, dtype=np.int16)
    high = np.full(pixels, count, dtype=np.int16)
    flat = values.ravel()
    column = np.arange(pixels, dtype=np.intp)
    for _ in range(CLIP_ITERATIONS):
        size = high - low
        lower_middle = (low + (size - 1) // 2).astype(np.intp) * pixels + column
        upper_middle = (low + size // 2).astype(np.intp) * pixels + column
        median = 0.5 * (flat[lower_middle] + flat[upper_middle])
        below, above = median - width, median + width
        new_low = np.zeros(pixels, dtype=np.int16)
        new_high = np.full(pixels, count, dtype=np.int16)
        for row in values:
            new_low += row < below
            new_high -= row > above
        if np.array_equal(new_low, low) and np.array_equal(new_high, high):
            break
        low, high = new_low, new_high
    total = np.zeros(pixels, dtype=np.float64)
    for index, row in enumerate(values):
        total += row * ((low <= index) & (index < high))
    size = high - low
    empty = size <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total / size).astype(np.float32)
    if empty.any():
        mean[empty] = median[empty]
    return mean


def _stack_noise(cube: np.ndarray, count: int) -> float:
    """Typical standard deviation of one pixel across the stack.

    The median over a sample of rows of each pixel's sample standard
    deviation, divided by the median of a chi distribution with count - 1
    degrees of freedom (so it is unbiased for Gaussian noise); outliers touch
    too few pixels to move a median.
    """
    if count < 2:
        return 0.0
    ny = cube.shape[1]
    step = max(1, ny // 64)
    sample = np.asarray(cube[:count, ::step], dtype=np.float64)
    spread = np.std(sample, axis=0, ddof=1)
    spread = spread[np.isfinite(spread)]
    if spread.size == 0:
        return 0.0
    dof = count - 1
    chi2_median = dof * (1 - 2 / (9 * dof)) ** 3  # Wilson & Hilferty (1931), 0.3% at 2 dof
    return float(np.median(spread) / np.sqrt(chi2_median / dof))


#: Sample step and half-width (in sample ranks) of the window :func:`exact_median`
#: selects before the exact selection.
MEDIAN_SAMPLE_STEP = 64
MEDIAN_WINDOW_RANKS = 64


def exact_median(data: np.ndarray) -> float:
    """``np.median(data)``, the same value, about 5x faster on a whole frame.

    The median of a regular sample brackets the true one: values between two
    sample ranks around it are taken out (a few percent of the frame), their
    count below checked to hold the median, and the exact order statistics
    selected among them (Floyd & Rivest 1975, "Expected time bounds for
    selection", CACM 18, 165: sampling to narrow a selection). A window that
    misses the median, or non-finite pixels, fall back to ``np.median``.
    """
    values = np.ravel(data)
    n = values.size
    if n < 16 * MEDIAN_SAMPLE_STEP:
        return float(np.median(values))
    sample = np.sort(values[::MEDIAN_SAMPLE_STEP])
    middle = len(sample) // 2
    low = sample[max(0, middle - MEDIAN_WINDOW_RANKS)]
    high = sample[min(len(sample) - 1, middle + MEDIAN_WINDOW_RANKS)]
    below = int(np.count_nonzero(values < low))
    inside = (values >= low) & (values <= high)
    window = values[inside]
    first, second = (n - 1) // 2 - below, n // 2 - below
    if below + window.size + int(np.count_nonzero(values > high)) != n:
        return float(np.median(values))  # NaN somewhere: np.median says so
    if first < 0 or second >= window.size:
        return float(np.median(values))
    window.partition((first, second))
    return float(np.mean(np.array([window[first], window[second]], dtype=values.dtype)))


def _sample_median(data: np.ndarray) -> float:
    """Median of every 4th pixel of every 4th row (a frame's level to ~1e-4, 16x faster)."""
    return float(np.median(data[::4, ::4]))


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
    fits.PrimaryHDU(data=result.data.astype(">f4"), header=header).writeto(  # FITS byte order
        temporary, overwrite=True
    )
    temporary.replace(path)
