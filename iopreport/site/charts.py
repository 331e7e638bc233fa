"""Small PNG images written at build time: frame thumbnails and finding charts."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

#: Longest side of a frame thumbnail, pixels.
THUMBNAIL_PX = 160
#: Half side of a finding chart cut-out, pixels of the reduced frame.
CHART_HALF_PX = 150
#: Display stretch: zscale limits (IRAF's ``display`` algorithm, as astropy.visualization
#: implements it) with an asinh stretch (Lupton et al. 2004, PASP 116, 133). The limits
#: follow the sky and its noise, not the brightest pixels, so crowded or noisy fields are
#: not flooded with noise. The zscale contrast is wider than IRAF's 0.25 so the sky is a
#: light grey with faint grain; the asinh softness ``a`` (astropy's ``AsinhStretch``)
#: lifts faint stars while bright cores keep their shape.
ZSCALE_CONTRAST = 0.1
ASINH_A = 0.5
#: Length of the N/E arrows on a finding chart, as a fraction of the cut-out side.
ARROW_FRACTION = 0.15


def _read_image(path: Path) -> tuple[np.ndarray, fits.Header]:
    with fits.open(path, memmap=False) as hdul:
        hdu = next((h for h in hdul if h.data is not None and h.data.ndim == 2), None)
        if hdu is None:
            raise ValueError(f"{path}: no 2-D image in the file")
        return np.asarray(hdu.data, dtype=np.float32), hdu.header


def _stretch(image: np.ndarray) -> np.ndarray:
    """Image scaled to [0, 1]: zscale limits, asinh stretch (astropy.visualization)."""
    from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval

    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros_like(image)
    filled = np.where(finite, image, np.nanmedian(image[finite]))
    norm = ImageNormalize(
        filled,
        interval=ZScaleInterval(contrast=ZSCALE_CONTRAST),
        stretch=AsinhStretch(ASINH_A),
        clip=True,
    )
    return np.asarray(norm(filled).filled(0.0), dtype=np.float32)


def thumbnail_png(path: Path, *, size: int = THUMBNAIL_PX) -> bytes:
    """A grey PNG preview of a FITS image, its longest side ``size`` pixels (block mean)."""
    image, _ = _read_image(path)
    step = max(1, int(np.ceil(max(image.shape) / size)))
    ny, nx = (image.shape[0] // step) * step, (image.shape[1] // step) * step
    small = image[:ny, :nx].reshape(ny // step, step, nx // step, step).mean(axis=(1, 3))
    buffer = io.BytesIO()
    plt.imsave(buffer, _stretch(small), cmap="gray", origin="lower", format="png")
    return buffer.getvalue()


def finding_chart_png(
    path: Path,
    target: tuple[str, float, float],
    calibrators: list[tuple[str, float, float]],
    *,
    half: int = CHART_HALF_PX,
) -> bytes:
    """A finding chart: a cut-out of a reduced frame around the target, calibrators marked.

    Parameters
    ----------
    path
        Reduced FITS file with a WCS (used for the North and East arrows).
    target, calibrators
        ``(name, x_px, y_px)`` in 0-based pixel coordinates of the frame
        (as ``SourceInField`` stores them).
    """
    image, header = _read_image(path)
    name, tx, ty = target
    x0, x1 = max(0, int(tx) - half), min(image.shape[1], int(tx) + half)
    y0, y1 = max(0, int(ty) - half), min(image.shape[0], int(ty) + half)
    cut = image[y0:y1, x0:x1]
    figure = Figure(figsize=(4, 4), dpi=80)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(_stretch(cut), cmap="gray_r", origin="lower", extent=(x0, x1, y0, y1))
    radius = max(6.0, 0.04 * (x1 - x0))
    axes.add_patch(matplotlib.patches.Circle((tx, ty), radius, fill=False, color="red", lw=1.5))
    axes.text(tx + radius, ty + radius, name, color="red", fontsize=8)
    for label, cx, cy in calibrators:
        if x0 <= cx < x1 and y0 <= cy < y1:
            axes.add_patch(
                matplotlib.patches.Circle((cx, cy), radius, fill=False, color="#0077cc", lw=1.2)
            )
            axes.text(cx + radius, cy - radius, label, color="#0077cc", fontsize=7)
    _compass(axes, header, (x0, x1, y0, y1))
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)
    axes.set_axis_off()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _compass(axes, header: fits.Header, box: tuple[int, int, int, int]) -> None:
    """North and East arrows from the frame's WCS (nothing when it has none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception:  # a frame without a usable WCS gets no compass
            return
    if not wcs.has_celestial:
        return
    x0, x1, y0, y1 = box
    side = min(x1 - x0, y1 - y0)
    origin = np.array([x0 + 0.2 * side, y0 + 0.2 * side])
    ra, dec = wcs.wcs_pix2world([origin], 0)[0]
    step = 1.0 / 3600.0 * 10  # 10 arcsec, only the direction is used
    for label, (dra, ddec) in (("N", (0.0, step)), ("E", (step / np.cos(np.radians(dec)), 0.0))):
        tip = wcs.wcs_world2pix([[ra + dra, dec + ddec]], 0)[0]
        direction = tip - origin
        norm = np.hypot(*direction)
        if not np.isfinite(norm) or norm == 0:
            return
        end = origin + direction / norm * ARROW_FRACTION * side
        axes.annotate(
            "",
            xy=end,
            xytext=origin,
            arrowprops={"arrowstyle": "->", "color": "#cc6600", "lw": 1.2},
        )
        axes.text(*end, label, color="#cc6600", fontsize=8)
