"""Astrometry of polarimetry sub-frames too small for a blind solve (DIPOL's O/E cuts).

Quads matched against a solved full frame of the same field
(:mod:`iopreport.reduce.quads`), else the central O/E pair at the target's
catalog position. Runs in the worker, within the frame's astrometry stage
(:mod:`iopreport.reduce.framestages`). See docs/architecture.md.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from astropy.io import fits

from iopreport.reduce.astrometry import find_pairs
from iopreport.reduce.detect import detect

#: Detection threshold on DIPOL polarimetry sub-frames (sigma above the background).
SUBFRAME_THRESHOLD = 3.0
#: Margin around the sub-frame's nominal place in the reference frame, px at 2x2
#: (pointing differences between the exposures; DIPOL pointing is good to ~6").
SUBFRAME_WINDOW_MARGIN_2X2 = 300.0


def solve_subframe(task, image: np.ndarray, offset: tuple[float, float]):
    """WCS of a DIPOL polarimetry sub-frame: quads, else the central O/E pair.

    ``task`` is the frame's :class:`iopreport.reduce.frametask.FrameTask`.
    Returns (wcs, pair_offset, detections, method, error).
    """
    from iopreport.reduce import quads
    from iopreport.reduce.beammodel import default_scatter
    from iopreport.reduce.centralpair import central_pair_wcs
    from iopreport.reduce.quadwcs import rotation_from_wcs, wcs_from_reference

    info = task.info
    spec = task.spec
    detections = detect(image, threshold_sigma=SUBFRAME_THRESHOLD)
    sub_xy = np.column_stack([detections.x, detections.y])
    scatter = default_scatter(offset, task.spec)
    pairs = find_pairs(detections.x, detections.y, offset, scatter) if len(detections) else None
    pair_offset = pairs.offset if pairs is not None else offset
    rotation, flip = spec.sky_rotation_deg, info.flipped
    if task.orientation is not None and task.orientation[1] == info.flipped:
        rotation = task.orientation[0]  # measured tonight, on another target's frame
    reasons = []
    if task.reference is None:
        reasons.append("no solved DIPOL photometry frame of this target to match quads against")
    else:
        try:
            ref_wcs, ref_xy, ref_flux, ref_shape, ref_method = _reference_detections(
                task.reference.path
            )
        except Exception as exc:
            ref_wcs = None
            reasons.append(f"reference {task.reference.path.name} unreadable: {exc}")
        if ref_wcs is not None:
            rotation, flip = rotation_from_wcs(ref_wcs)
            ratio = info.binning[0] / task.reference.binning
            x0, y0 = info.subframe_origin
            ny, nx = image.shape
            margin = SUBFRAME_WINDOW_MARGIN_2X2 * 2 / task.reference.binning
            window = (
                x0 * ratio - margin,
                y0 * ratio - margin,
                (x0 + nx) * ratio + margin,
                (y0 + ny) * ratio + margin,
            )
            match = quads.match_to_reference(
                sub_xy,
                detections.flux,
                ref_xy,
                ref_flux,
                flip=info.flipped != task.reference.flipped,
                scale_ratio=ratio,
                oe_offset=offset,
                ref_window=window,
                ref_shape=ref_shape,
            )
            if match is not None:
                wcs = wcs_from_reference(ref_wcs, match.transform, image.shape)
                method = (
                    f"quads against {task.reference.path.name}: {match.n_matched} sources "
                    f"matched, rms {match.rms_px:.2f} px"
                )
                if ref_method.startswith("header"):
                    method += f" (the reference placed by its header WCS: {ref_method})"
                return wcs, pair_offset, detections, method, ""
            reasons.append(f"no quad match against {task.reference.path.name}")
    if task.target_radec is not None and len(detections):
        wcs = central_pair_wcs(
            detections,
            image.shape,
            task.target_radec,
            offset,
            rotation,
            flip,
            spec.pixscale_at(info.binning[0]),
            scatter_px=scatter,
            field_radec=np.array(task.field_radec) if task.field_radec else None,
        )
        if wcs is not None:
            method = "central O/E pair at the target's catalog position ({})".format(
                "; ".join(reasons)
            )
            return wcs, pair_offset, detections, method, ""
        reasons.append("no single O/E pair near the centre")
    return None, None, detections, "", "sub-frame astrometry failed (" + "; ".join(reasons) + ")"


@functools.lru_cache(maxsize=4)
def _reference_detections(path: Path):
    """WCS (O beam), detections, shape and astrometry method (``IOPASTRO``) of a solved
    reference frame, cached per worker."""
    from astropy.wcs import WCS

    with fits.open(path, memmap=False) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        header = hdul[0].header
    wcs = WCS(header)
    if not wcs.has_celestial:
        raise ValueError("it has no WCS")
    method = str(header.get("IOPASTRO", ""))
    found = detect(data, threshold_sigma=SUBFRAME_THRESHOLD)
    return wcs, np.column_stack([found.x, found.y]), found.flux, data.shape, method
