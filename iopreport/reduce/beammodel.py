"""The O and E images of a DIPOL frame in a quad match (:mod:`iopreport.reduce.quads`).

Every star of a DIPOL image appears twice, in the Wollaston O and E beams,
a fixed displacement ``o`` apart in detector pixels. When the sub-frame and
its reference are rotated against each other, the transform that maps the O
images exactly puts the E images ``(|a| - a) o`` off (:func:`beam_shift`).
:class:`BeamModel` holds the O-image transform and that E shift, pairs
sub-frame sources with reference sources under either beam, and refits both
by weighted least squares (:func:`weights`); :func:`beam_labels` marks the
sources whose O/E pair is found in the sub-frame itself, and
:func:`default_scatter` gives the O/E displacement scatter such pairs are
looked for within. docs/dipol-astrometry.md has the derivation and figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from iopreport.instruments.specs import InstrumentSpec


def _complex(xy: np.ndarray) -> np.ndarray:
    return xy[:, 0] + 1j * xy[:, 1]


def beam_shift(a: np.ndarray, mirrored: np.ndarray, oe_offset) -> np.ndarray:
    """Where E images land relative to the O-image transform, reference px, per candidate.

    The Wollaston displacement ``o`` is fixed in detector pixels, so a
    transform ``w = a z + b`` that maps O images exactly maps E images to
    ``a o`` from their O images instead of the reference's ``|a| o`` (its
    own displacement, in its pixels; mirrored with the image): the E images
    land off by ``(|a| - a) o``, which grows with the rotation between the
    frames (2.6 px for 1.4 deg at 4x4, 5 px at 2x2).
    """
    if oe_offset is None:
        return np.zeros(len(a), dtype=complex)
    o = complex(oe_offset[0], oe_offset[1])
    o = np.where(mirrored, np.conj(o), o)
    return (np.abs(a) - a) * o


@dataclass(frozen=True)
class BeamModel:
    """O images at ``w = a z' + b``, E images at ``a z' + b + shift`` (z' = conj z if mirrored)."""

    a: complex
    b: complex
    shift: complex
    mirrored: bool
    two_beams: bool

    def _z(self, xy: np.ndarray) -> np.ndarray:
        z = _complex(xy)
        return np.conj(z) if self.mirrored else z

    def _nearest(self, xy, known, ref_tree, radius, signs):
        """Nearest reference source of each point under each beam hypothesis allowed."""
        mapped = self.a * self._z(xy) + self.b
        best = np.full(len(xy), np.inf)
        index = np.full(len(xy), ref_tree.n)
        beam = np.zeros(len(xy), dtype=int)
        for sign in signs:
            moved = mapped + sign * self.shift
            found, where = ref_tree.query(
                np.column_stack([moved.real, moved.imag]), distance_upper_bound=radius, workers=1
            )
            # a source paired inside the sub-frame is known to be O (0) or E (1)
            allowed = (known < 0) | (known == abs(sign)) if sign >= 0 else known < 0
            better = (found < best) & allowed
            best[better], index[better], beam[better] = found[better], where[better], sign
        return best, index, beam

    def with_o_reference(self, xy, known, ref_tree, radius) -> BeamModel:
        """The same model anchored on O images (a quad of E images gives the E transform)."""
        if not self.two_beams:
            return self
        distance, _, beam = self._nearest(xy, np.full(len(xy), -1), ref_tree, radius, (0, 1, -1))
        found = np.isfinite(distance)
        e_at_zero = np.sum(found & (beam == 0) & (known == 1))
        o_at_zero = np.sum(found & (beam == 0) & (known == 0))
        if np.sum(beam == -1) + e_at_zero > np.sum(beam == 1) + o_at_zero:
            return BeamModel(self.a, self.b - self.shift, self.shift, self.mirrored, True)
        return self

    def pair_up(self, xy, known, ref_tree, radius):
        """One-to-one nearest matches within ``radius``: sub and ref indices, beam, distance."""
        signs = (0, 1) if self.two_beams else (0,)
        distance, index, beam = self._nearest(xy, known, ref_tree, radius, signs)
        found = np.flatnonzero(np.isfinite(distance))
        # a reference source claimed twice keeps its closer sub-frame source
        order = found[np.argsort(distance[found], kind="stable")]
        _, first = np.unique(index[order], return_index=True)
        chosen = np.sort(order[first])
        return chosen, index[chosen], beam[chosen], distance[chosen]

    def refit(self, sub_xy, ref_xy, beam, weights) -> BeamModel:
        """Weighted least squares on the matches: a, b, and the E shift when both beams matched."""
        z = self._z(sub_xy)
        w = _complex(ref_xy)
        columns = [z, np.ones_like(z)]
        fit_shift = self.two_beams and 0 < beam.sum() < len(beam) and len(beam) >= 4
        if fit_shift:
            columns.append(beam.astype(complex))
        elif self.two_beams:
            w = w - beam * self.shift
        root = np.sqrt(weights)
        solution, *_ = np.linalg.lstsq(
            np.column_stack(columns) * root[:, None], w * root, rcond=None
        )
        shift = complex(solution[2]) if fit_shift else self.shift
        return BeamModel(
            complex(solution[0]), complex(solution[1]), shift, self.mirrored, self.two_beams
        )

    def residuals(self, sub_xy, ref_xy, beam) -> np.ndarray:
        """Distances between the modelled and the reference positions, px."""
        predicted = self.a * self._z(sub_xy) + self.b + beam * self.shift
        return np.abs(predicted - _complex(ref_xy))


def weights(flux: np.ndarray) -> np.ndarray:
    """Least-squares weights: inverse centroid variance, ``f**2 / (f + k)``.

    A centroid's variance goes as (f + background) / f**2; the median flux
    of the matched sources, ``k``, stands in for the unknown background term,
    so bright stars count about in proportion to their flux and faint ones
    much less. On the simulated DIPOL cuts this keeps a blended or
    mismatched fainter source from pulling the fit: ``f / (f + k)`` (bright
    stars alike) gave WCS errors up to 0.18" where this gives 0.04".
    """
    flux = np.clip(np.asarray(flux, dtype=float), 1e-12, None)
    k = float(np.median(flux))
    weights = flux**2 / (flux + k)
    return weights / weights.max()


def beam_labels(sub_xy: np.ndarray, oe_offset) -> np.ndarray:
    """0 for the O (right-hand) image of a pair found in the sub-frame, 1 for E, -1 unknown."""
    from iopreport.reduce.astrometry import find_pairs

    known = np.full(len(sub_xy), -1)
    if oe_offset is None:
        return known
    pairs = find_pairs(sub_xy[:, 0], sub_xy[:, 1], oe_offset, default_scatter(oe_offset))
    if pairs is not None:
        known[pairs.o_index] = 0
        known[pairs.e_index] = 1
    return known


def default_scatter(
    oe_offset: tuple[float, float], spec: InstrumentSpec | None = None
) -> tuple[float, float]:
    """3 sigma of the O/E displacement scatter of instrument ``spec``, scaled to ``oe_offset``.

    ``spec`` defaults to the built-in instrument whose sub-frames are placed by quads.
    """
    from iopreport.instruments.registry import InstrumentRegistry

    if spec is None:
        builtin = InstrumentRegistry.builtin()
        spec = builtin.get(builtin.quad_instruments()[0])
    reference = math.hypot(*spec.oe_offset_px)
    factor = math.hypot(*oe_offset) / reference
    sx, sy = spec.oe_offset_std_px
    return (3.0 * sx * factor, 3.0 * sy * factor)
