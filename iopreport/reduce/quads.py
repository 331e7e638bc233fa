"""Astrometry of DIPOL polarimetry sub-frames by quad matching against a solved frame.

DIPOL saves polarimetry frames as small central cuts (XORGSUBF/YORGSUBF) that
hold too few stars for a blind astrometry.net solve, while the full-frame
photometry frames of the same field, taken the same night, do solve. This
module finds the similarity transform (rotation, optional reflection,
translation, scale close to 1) that maps sub-frame pixels onto the pixels of
such a solved reference frame; :mod:`iopreport.reduce.quadwcs` derives the
sub-frame's WCS from it.

Method (astrometry.net's geometric hash, Lang et al. 2010, AJ 139, 1782, §2.1):

- every 4-point combination ("quad") of the brightest sources of each frame
  is hashed: its two most distant stars A and B fix a frame in which A is
  (0, 0) and B is (1, 1); the positions of the other two stars C and D in
  that frame give a 4-number code invariant to translation, rotation and
  scale. The code is made canonical (``xC + xD <= 1``, else A and B swap;
  ``xC <= xD``, else C and D swap), so equal quads give equal codes;
- a mirror image (FLIPSTAT) changes the code, so the sub-frame is hashed a
  second time with y negated and both sets are looked up;
- codes are matched with a k-d tree (:class:`scipy.spatial.cKDTree`); every
  code pair gives a candidate transform from its four stars, which must have
  the expected scale (and rotation, when given);
- each candidate is verified by counting the sub-frame's bright sources that
  land within :data:`MATCH_RADIUS_PX` of a reference source; the best one is
  refined by least squares on all matched sources and accepted only with at
  least :data:`MIN_MATCHES` matches and a majority (:data:`MIN_FRACTION`)
  of the sub-frame's verification sources.

Both beams. In a DIPOL image every star appears twice (Wollaston O and E
beams, about (-209, +13) px apart at 2x2). The reference is a DIPOL image
too, with the same O/E displacement in its own pixels, so the two frames are
matched directly with *all* their detections, without pairing them first:
the O image of a star maps onto its O image and the E image onto its E
image. A transform shifted by one O/E displacement (sub-frame O images onto
reference E images) also matches quads made of one beam only, but then the
other beam of every star lands on empty sky, so it verifies only about half
of the sources and loses to the true one. One similarity does not fit both
beams exactly, though: the displacement is fixed in detector pixels, so
when the frames are rotated against each other by theta the E images land
``(1 - exp(i theta)) o`` away from where the O-image transform puts them
(2.6 px for 1.4 deg at 4x4 binning). Given ``oe_offset``, the fit models that
shift (O images at ``T(z)``, E images at ``T(z) + shift``;
:mod:`iopreport.reduce.beammodel`), and :attr:`QuadMatch.transform` is the
O-image transform. The sub-frame WCS derived from the reference's WCS then
describes the beam that WCS describes (the right-hand, O, images when the
reference was solved on them, as :mod:`iopreport.reduce.framestages` does); the
other beam's WCS is :func:`iopreport.reduce.astrometry.pair_wcs` of it.

Against the reference (IOP4's astrometry "photo quads"): a
scale-invariant hash instead of side lengths in pixels, all detections
instead of the 10 brightest per frame, quads matched by a tree instead of a
fixed distance cut, reflections handled by hashing the mirror image instead
of trying 24 permutations, every candidate verified on the sub-frame's
brightest sources instead of taking the transform nearest the median
translation, a least-squares fit on all matches instead of four points, and
the O and E beams mapped separately. docs/dipol-astrometry.md has the
measured figures.

The fallback when no quad matches is in :mod:`iopreport.reduce.centralpair`.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from iopreport.reduce.beammodel import BeamModel, beam_labels, beam_shift, weights

#: Brightest sub-frame sources whose quads are hashed (15 give 1365 quads).
N_SUB = 15
#: Brightest reference sources (inside ``ref_window``) whose quads are hashed.
N_REF = 40
#: Largest distance between two quad codes that still counts as a match
#: (a 0.3 px centroid error on a 100 px quad moves the code by ~0.005).
CODE_TOLERANCE = 0.015
#: Shortest quad diagonal (A-B distance) hashed, in sub-frame pixels: shorter
#: quads have codes too noisy to match.
MIN_QUAD_PX = 30.0
#: A sub-frame source matches a reference source within this distance (reference px).
MATCH_RADIUS_PX = 3.0
#: Fewest matched sources for a transform to be accepted (a quad's own four
#: stars always match, so at least one more must confirm it).
MIN_MATCHES = 5
#: Fewest fraction of the verification sources (those landing inside the
#: reference frame) that must match: a clear majority.
MIN_FRACTION = 0.5
#: Brightest sub-frame sources used to verify a candidate.
N_VERIFY = 30
#: Allowed relative error of the transform's scale against ``scale_ratio``.
SCALE_TOLERANCE = 0.05
#: Candidates verified at most (closest codes first); bounds the work per frame.
MAX_CANDIDATES = 2000
#: Least-squares refinement passes over all matched sources.
REFINE_PASSES = 3
#: Matches farther than CLIP_SIGMA x the median residual of the previous fit (but at
#: least CLIP_FLOOR_PX) are left out of the next least-squares pass: faint
#: sources and blends have poor centroids.
CLIP_SIGMA = 4.0
CLIP_FLOOR_PX = 0.75

#: Order (A, B, C, D) of a quad's points when its longest side joins points
#: ``_PAIRS[k]``; indexed by the argmax over the six sides.
_PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
_ORDER = np.array([[a, b, *sorted({0, 1, 2, 3} - {a, b})] for a, b in _PAIRS])


@dataclass(frozen=True)
class Similarity:
    """``ref = scale * R(rotation) * M * sub + (tx, ty)``, pixels, 0-based.

    ``M`` is the identity, or the reflection y -> -y when ``mirrored``. In
    complex numbers: ``w = a * z + b`` with ``z = x + iy`` (its conjugate when
    mirrored), ``a = scale * exp(i rotation)`` and ``b = tx + i ty``.
    """

    scale: float
    rotation_deg: float
    mirrored: bool
    tx: float
    ty: float

    @property
    def _a(self) -> complex:
        return self.scale * complex(
            math.cos(math.radians(self.rotation_deg)), math.sin(math.radians(self.rotation_deg))
        )

    @property
    def matrix(self) -> np.ndarray:
        """The 2x2 linear part (acts on column vectors (x, y))."""
        a = self._a
        linear = np.array([[a.real, -a.imag], [a.imag, a.real]])
        return linear @ np.diag([1.0, -1.0]) if self.mirrored else linear

    def apply(self, xy: np.ndarray) -> np.ndarray:
        """Map sub-frame pixels ``xy`` (N, 2) to reference pixels."""
        z = _complex(np.asarray(xy, dtype=float))
        if self.mirrored:
            z = np.conj(z)
        w = self._a * z + complex(self.tx, self.ty)
        return np.column_stack([w.real, w.imag])

    @classmethod
    def from_complex(cls, a: complex, b: complex, mirrored: bool) -> Similarity:
        return cls(
            scale=abs(a),
            rotation_deg=math.degrees(math.atan2(a.imag, a.real)),
            mirrored=mirrored,
            tx=b.real,
            ty=b.imag,
        )


@dataclass(frozen=True)
class QuadMatch:
    """A verified sub-frame -> reference transform and the sources it matches."""

    transform: Similarity  # maps O images (and every image, without ``oe_offset``)
    e_shift: tuple[float, float]  # E images land at transform + e_shift, reference px
    sub_index: np.ndarray  # matched sub-frame sources (indices into sub_xy)
    ref_index: np.ndarray  # their reference sources (indices into ref_xy)
    sub_beam: np.ndarray  # 0 where the match is an O image, 1 an E image
    rms_px: float  # residual of the least-squares fit, reference pixels
    n_verify: int  # sub-frame verification sources that land on the reference
    n_verified: int  # ... of which matched
    n_candidates: int  # quad code matches tried

    @property
    def n_matched(self) -> int:
        return len(self.sub_index)

    @property
    def fraction(self) -> float:
        """Matched fraction of the verification sources."""
        return self.n_verified / self.n_verify if self.n_verify else 0.0


def _complex(xy: np.ndarray) -> np.ndarray:
    return xy[:, 0] + 1j * xy[:, 1]


@functools.lru_cache(maxsize=8)
def _combinations(n: int) -> np.ndarray:
    """Every 4-index combination of ``range(n)``, (C(n, 4), 4), cached per worker."""
    count = math.comb(n, 4)
    flat = itertools.chain.from_iterable(itertools.combinations(range(n), 4))
    combos = np.fromiter(flat, dtype=np.intp, count=4 * count).reshape(count, 4)
    combos.setflags(write=False)
    return combos


def quad_codes(
    xy: np.ndarray, *, min_size: float = 0.0, max_size: float = math.inf
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Geometric hash codes of every quad of the points ``xy`` (N, 2).

    Returns
    -------
    codes : ndarray (Q, 4)
        ``(xC, yC, xD, yD)`` in the frame where A is (0, 0) and B is (1, 1),
        canonical (``xC + xD <= 1`` and ``xC <= xD``).
    members : ndarray (Q, 4) of int
        Indices into ``xy`` of A, B, C, D in that canonical order, so equal
        codes put corresponding stars in the same column.
    size : ndarray (Q,)
        The A-B distance (the quad's diameter) in pixels.
    Quads whose diameter lies outside ``[min_size, max_size]`` are left out.
    """
    xy = np.asarray(xy, dtype=float)
    if len(xy) < 4:
        return np.empty((0, 4)), np.empty((0, 4), dtype=int), np.empty(0)
    combos = _combinations(len(xy))
    z = _complex(xy)[combos]
    sides = np.column_stack([np.abs(z[:, i] - z[:, j]) for i, j in _PAIRS])
    longest = np.argmax(sides, axis=1)
    size = sides[np.arange(len(combos)), longest]
    keep = (size >= min_size) & (size <= max_size)
    combos, longest, size = combos[keep], longest[keep], size[keep]
    members = np.take_along_axis(combos, _ORDER[longest], axis=1)
    z = _complex(xy)[members]
    w = (z[:, 2:] - z[:, :1]) / (z[:, 1:2] - z[:, :1]) * (1 + 1j)
    swap_ab = w[:, 0].real + w[:, 1].real > 1.0
    w[swap_ab] = (1 + 1j) - w[swap_ab]
    members[swap_ab] = members[swap_ab][:, [1, 0, 2, 3]]
    swap_cd = w[:, 0].real > w[:, 1].real
    w[swap_cd] = w[swap_cd][:, ::-1]
    members[swap_cd] = members[swap_cd][:, [0, 1, 3, 2]]
    codes = np.column_stack([w[:, 0].real, w[:, 0].imag, w[:, 1].real, w[:, 1].imag])
    return codes, members, size


def fit_similarity(sub_xy: np.ndarray, ref_xy: np.ndarray, mirrored: bool) -> Similarity:
    """Least-squares similarity mapping ``sub_xy`` onto ``ref_xy`` (both (N, 2), N >= 2)."""
    z = _complex(np.asarray(sub_xy, dtype=float))
    if mirrored:
        z = np.conj(z)
    w = _complex(np.asarray(ref_xy, dtype=float))
    z0, w0 = z.mean(), w.mean()
    dz = z - z0
    a = np.sum(np.conj(dz) * (w - w0)) / np.sum(np.abs(dz) ** 2)
    return Similarity.from_complex(complex(a), complex(w0 - a * z0), mirrored)


def _fit_batch(z: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity fits of many 4-point correspondences at once: a, b and rms residual."""
    z0 = z.mean(axis=1, keepdims=True)
    w0 = w.mean(axis=1, keepdims=True)
    dz, dw = z - z0, w - w0
    a = np.sum(np.conj(dz) * dw, axis=1) / np.sum(np.abs(dz) ** 2, axis=1)
    b = w0[:, 0] - a * z0[:, 0]
    residual = w - (a[:, None] * z + b[:, None])
    return a, b, np.sqrt(np.mean(np.abs(residual) ** 2, axis=1))


def _angle_difference(a: np.ndarray, b: float) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def match_to_reference(
    sub_xy: np.ndarray,
    sub_flux: np.ndarray,
    ref_xy: np.ndarray,
    ref_flux: np.ndarray,
    *,
    flip: bool | None,
    scale_ratio: float | None = 1.0,
    oe_offset: tuple[float, float] | None = None,
    rotation_deg: float | None = None,
    rotation_tolerance_deg: float = 10.0,
    ref_window: tuple[float, float, float, float] | None = None,
    ref_shape: tuple[int, int] | None = None,
    n_sub: int = N_SUB,
    n_ref: int = N_REF,
    code_tolerance: float = CODE_TOLERANCE,
    match_radius_px: float = MATCH_RADIUS_PX,
    min_matches: int = MIN_MATCHES,
    min_fraction: float = MIN_FRACTION,
) -> QuadMatch | None:
    """Find the transform from sub-frame pixels to reference pixels by quad matching.

    Parameters
    ----------
    sub_xy, sub_flux : ndarray
        Detections of the sub-frame, (N, 2) 0-based pixels and fluxes (all of
        them, both beams; the brightest are used for quads).
    ref_xy, ref_flux : ndarray
        Detections of the solved reference frame, likewise.
    flip : bool or None
        Whether the sub-frame is mirrored with respect to the reference (their
        FLIPSTAT differ); None tries both parities.
    scale_ratio : float or None
        Expected reference pixels per sub-frame pixel (binning of the sub-frame
        over that of the reference; 1 for equal binning), within
        :data:`SCALE_TOLERANCE`; None leaves the scale free.
    oe_offset : (dx, dy) or None
        The Wollaston E - O displacement in sub-frame pixels (as the frame
        worker computes it: scaled for binning, dy negated when flipped);
        the reference is taken to have the same displacement in its own
        pixels. With it, O and E images are mapped separately (E images
        land ``e_shift`` away from the O-image transform when the frames
        are rotated against each other); None maps every source with one
        similarity (single-beam images).
    rotation_deg : float or None
        Expected rotation of the transform (about 0 between DIPOL frames of
        one night), within ``rotation_tolerance_deg``; None allows any.
    ref_window : (x0, y0, x1, y1) or None
        Reference pixels where the sub-frame is expected (e.g. its
        XORGSUBF/YORGSUBF cut, widened by the pointing uncertainty): only
        reference sources inside it form quads. All of them verify.
    ref_shape : (ny, nx) or None
        The reference image shape: sub-frame sources mapped outside it are
        not counted against the match.
    n_sub, n_ref, code_tolerance, match_radius_px, min_matches, min_fraction
        See the module constants of the same names.

    Returns
    -------
    QuadMatch or None
        None when no candidate is verified (too few sources, no quad in
        common, or not enough sources confirm any transform).
    """
    from scipy.spatial import cKDTree

    sub_xy, ref_xy = _points(sub_xy, "sub_xy"), _points(ref_xy, "ref_xy")
    sub_flux, ref_flux = np.asarray(sub_flux, dtype=float), np.asarray(ref_flux, dtype=float)
    if len(sub_flux) != len(sub_xy) or len(ref_flux) != len(ref_xy):
        raise ValueError("each flux array must have one value per position")
    if len(sub_xy) < 4 or len(ref_xy) < 4:
        return None
    sub_order = np.argsort(-sub_flux, kind="stable")
    ref_candidates = np.arange(len(ref_xy))
    if ref_window is not None:
        x0, y0, x1, y1 = ref_window
        inside = (
            (ref_xy[:, 0] >= x0)
            & (ref_xy[:, 0] <= x1)
            & (ref_xy[:, 1] >= y0)
            & (ref_xy[:, 1] <= y1)
        )
        ref_candidates = ref_candidates[inside]
    ref_order = ref_candidates[np.argsort(-ref_flux[ref_candidates], kind="stable")][:n_ref]
    sub_quad_stars = sub_order[:n_sub]
    if len(sub_quad_stars) < 4 or len(ref_order) < 4:
        return None

    sub_span = np.ptp(sub_xy[sub_quad_stars], axis=0)
    max_ref_size = math.inf
    min_ref_size = 0.0
    if scale_ratio is not None:
        max_ref_size = float(np.hypot(*sub_span)) * scale_ratio * (1 + SCALE_TOLERANCE)
        min_ref_size = MIN_QUAD_PX * scale_ratio * (1 - SCALE_TOLERANCE)
    ref_codes, ref_members, _ = quad_codes(
        ref_xy[ref_order], min_size=min_ref_size, max_size=max_ref_size
    )
    if not len(ref_codes):
        return None
    ref_members = ref_order[ref_members]
    code_tree = cKDTree(ref_codes)
    ref_tree = cKDTree(ref_xy)
    ref_z = _complex(ref_xy)
    verify = sub_order[:N_VERIFY]

    parities = (False, True) if flip is None else (bool(flip),)
    candidates = []  # (code distance, a, b, mirrored)
    for mirrored in parities:
        points = sub_xy[sub_quad_stars] * ([1.0, -1.0] if mirrored else [1.0, 1.0])
        codes, members, _ = quad_codes(points, min_size=MIN_QUAD_PX)
        if not len(codes):
            continue
        members = sub_quad_stars[members]
        distance, index = code_tree.query(
            codes, k=8, distance_upper_bound=code_tolerance, workers=1
        )
        hit = np.isfinite(distance)
        sub_rows, slot = np.nonzero(hit)
        if not len(sub_rows):
            continue
        ref_rows = index[sub_rows, slot]
        z = _complex(sub_xy)[members[sub_rows]]
        if mirrored:
            z = np.conj(z)
        w = ref_z[ref_members[ref_rows]]
        a, b, rms = _fit_batch(z, w)
        ok = rms <= 2.0 * match_radius_px
        if scale_ratio is not None:
            ok &= np.abs(np.abs(a) / scale_ratio - 1.0) <= SCALE_TOLERANCE
        if rotation_deg is not None:
            ok &= _angle_difference(np.degrees(np.angle(a)), rotation_deg) <= (
                rotation_tolerance_deg
            )
        for d, ai, bi in zip(distance[sub_rows, slot][ok], a[ok], b[ok], strict=True):
            candidates.append((float(d), complex(ai), complex(bi), mirrored))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[0])
    candidates = candidates[:MAX_CANDIDATES]

    # verify every candidate on the brightest sub-frame sources, in one tree query
    a = np.array([c[1] for c in candidates])
    b = np.array([c[2] for c in candidates])
    mirror = np.array([c[3] for c in candidates])
    shift = beam_shift(a, mirror, oe_offset)
    verify_z = _complex(sub_xy[verify])
    z = np.where(mirror[:, None], np.conj(verify_z)[None, :], verify_z[None, :])
    mapped = a[:, None] * z + b[:, None]
    distance = np.full(mapped.shape, np.inf)
    for sign in (0.0, 1.0, -1.0) if oe_offset is not None else (0.0,):
        moved = mapped + sign * shift[:, None]
        flat = np.column_stack([moved.real.ravel(), moved.imag.ravel()])
        found, _ = ref_tree.query(flat, distance_upper_bound=match_radius_px, workers=1)
        distance = np.minimum(distance, found.reshape(mapped.shape))
    matched = np.isfinite(distance)
    score = matched.sum(axis=1)
    residual = np.where(matched, distance, 0.0).sum(axis=1)
    best = int(np.lexsort((residual, -score))[0])
    known = beam_labels(sub_xy, oe_offset)
    model = BeamModel(a[best], b[best], shift[best], bool(mirror[best]), oe_offset is not None)
    model = model.with_o_reference(sub_xy, known, ref_tree, match_radius_px)
    clip = match_radius_px
    for _ in range(REFINE_PASSES):
        sub_index, ref_index, beam, separation = model.pair_up(
            sub_xy, known, ref_tree, match_radius_px
        )
        use = separation <= clip
        if use.sum() < 3:
            return None
        chosen = sub_index[use]
        model = model.refit(
            sub_xy[chosen], ref_xy[ref_index[use]], beam[use], weights(sub_flux[chosen])
        )
        residual = model.residuals(sub_xy[chosen], ref_xy[ref_index[use]], beam[use])
        clip = min(match_radius_px, max(CLIP_FLOOR_PX, CLIP_SIGMA * float(np.median(residual))))
    sub_index, ref_index, beam, separation = model.pair_up(sub_xy, known, ref_tree, match_radius_px)
    rms_px = _rms(separation[separation <= clip]) if len(sub_index) else math.nan
    transform = Similarity.from_complex(model.a, model.b, model.mirrored)

    landing = transform.apply(sub_xy[verify])
    on_reference = np.ones(len(verify), dtype=bool)
    if ref_shape is not None:
        ny, nx = ref_shape
        margin = abs(model.shift)  # an E image may land up to one shift from its O mapping
        on_reference = (
            (landing[:, 0] > -0.5 + margin)
            & (landing[:, 0] < nx - 0.5 - margin)
            & (landing[:, 1] > -0.5 + margin)
            & (landing[:, 1] < ny - 0.5 - margin)
        )
    n_verify = int(on_reference.sum())
    n_verified = int(np.isin(verify[on_reference], sub_index).sum())
    result = QuadMatch(
        transform=transform,
        e_shift=(float(model.shift.real), float(model.shift.imag)),
        sub_index=sub_index,
        ref_index=ref_index,
        sub_beam=beam,
        rms_px=rms_px,
        n_verify=n_verify,
        n_verified=n_verified,
        n_candidates=len(candidates),
    )
    if result.n_matched < min_matches or result.fraction < min_fraction:
        return None
    if scale_ratio is not None and abs(transform.scale / scale_ratio - 1.0) > SCALE_TOLERANCE:
        return None
    return result


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if len(values) else math.nan


def _points(xy, name: str) -> np.ndarray:
    xy = np.asarray(xy, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2), not {xy.shape}")
    return xy
