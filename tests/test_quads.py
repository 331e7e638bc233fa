"""DIPOL sub-frame astrometry by quad matching (iopreport.reduce.quads).

Synthetic point sets check the matcher against exactly known transforms; a
simulated OSN-T090 night checks the whole chain (detection, matching, WCS of
both beams, fallback) against the simulator's true WCS of the frames.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from iopreport.instruments import InstrumentRegistry
from iopreport.reduce.astrometry import find_pairs, pair_wcs
from iopreport.reduce.beammodel import default_scatter
from iopreport.reduce.centralpair import central_pair, central_pair_wcs
from iopreport.reduce.detect import detect
from iopreport.reduce.quads import Similarity, fit_similarity, match_to_reference, quad_codes
from iopreport.reduce.quadwcs import rotation_from_wcs, tan_wcs, wcs_from_reference
from iopreport.simulate import simulate_night
from iopreport.simulate.night import simulator_catalog

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2024, 10, 8)
REF_SHAPE = (1400, 2000)  # (ny, nx) of the synthetic reference frame
SUB_SHAPE = (450, 560)


def _field(rng: np.random.Generator, n: int = 220) -> tuple[np.ndarray, np.ndarray]:
    """Random star positions over the reference frame and power-law fluxes."""
    xy = rng.uniform([0, 0], [REF_SHAPE[1], REF_SHAPE[0]], size=(n, 2))
    flux = 1e3 * (rng.pareto(1.3, n) + 1.0)
    return xy, flux


def _inverse(transform: Similarity, ref_xy: np.ndarray) -> np.ndarray:
    """Sub-frame positions of reference points under ``transform`` (the exact inverse)."""
    a = transform.scale * complex(
        math.cos(math.radians(transform.rotation_deg)),
        math.sin(math.radians(transform.rotation_deg)),
    )
    w = ref_xy[:, 0] + 1j * ref_xy[:, 1]
    z = (w - complex(transform.tx, transform.ty)) / a
    if transform.mirrored:
        z = np.conj(z)
    return np.column_stack([z.real, z.imag])


def _sub_frame(rng, ref_xy, ref_flux, transform, *, noise=0.05, missing=0.2, spurious=5):
    """The sources a sub-frame sees of the reference field, degraded like real detections."""
    xy = _inverse(transform, ref_xy)
    ny, nx = SUB_SHAPE
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < nx) & (xy[:, 1] >= 0) & (xy[:, 1] < ny)
    keep = inside & (rng.random(len(xy)) >= missing)
    xy = xy[keep] + rng.normal(0.0, noise, (keep.sum(), 2))
    flux = ref_flux[keep] * rng.uniform(0.8, 1.2, keep.sum())
    fake = rng.uniform([0, 0], [nx, ny], size=(spurious, 2))
    fake_flux = rng.uniform(0.5, 3.0, spurious) * np.median(flux)
    return np.vstack([xy, fake]), np.concatenate([flux, fake_flux])


def _window(transform: Similarity, margin: float = 150.0) -> tuple[float, float, float, float]:
    """Where the sub-frame lies on the reference, widened by ``margin`` (as XORGSUBF/YORGSUBF
    and the pointing uncertainty give it in the pipeline)."""
    corners = transform.apply(_corners(SUB_SHAPE))
    low, high = corners.min(axis=0) - margin, corners.max(axis=0) + margin
    return (low[0], low[1], high[0], high[1])


def _corners(shape) -> np.ndarray:
    ny, nx = shape
    return np.array([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1], [nx / 2, ny / 2]])


def _transform_error(found: Similarity, true: Similarity, shape=SUB_SHAPE) -> float:
    """Largest distance, reference px, between the two transforms over the sub-frame."""
    corners = _corners(shape)
    return float(np.max(np.hypot(*(found.apply(corners) - true.apply(corners)).T)))


def test_similarity_fit_apply_and_matrix_agree():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 500, (10, 2))
    for true in (Similarity(1.02, 33.0, False, 5.0, -7.0), Similarity(0.5, -170.0, True, 9.0, 1.0)):
        moved = true.apply(xy)
        found = fit_similarity(xy, moved, true.mirrored)
        assert _transform_error(found, true) < 1e-9
        assert np.allclose(moved - moved[0], (true.matrix @ (xy - xy[0]).T).T)
        assert np.allclose(_inverse(true, moved), xy)


def test_codes_are_invariant_and_mirror_codes_need_the_mirrored_hash():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 500, (8, 2))
    codes, members, _ = quad_codes(xy)
    moved = Similarity(1.7, 123.0, False, 40.0, -900.0).apply(xy)
    moved_codes, moved_members, _ = quad_codes(moved)
    assert np.allclose(codes, moved_codes, atol=1e-9)
    assert np.array_equal(members, moved_members)  # same stars in the same roles
    assert np.all(codes[:, 0] <= codes[:, 2]) and np.all(codes[:, 0] + codes[:, 2] <= 1.0)
    mirrored = Similarity(1.0, 30.0, True, 0.0, 0.0).apply(xy)
    mirrored_codes, _, _ = quad_codes(mirrored)
    assert not np.allclose(codes, mirrored_codes, atol=1e-3)  # a reflection changes the code
    unmirrored_codes, _, _ = quad_codes(mirrored * [1.0, -1.0])
    assert np.allclose(codes, unmirrored_codes, atol=1e-9)


@pytest.mark.parametrize(
    ("true", "flip", "scale_ratio", "n_stars"),
    [
        (Similarity(1.0, 1.8, False, 730.0, 520.0), False, 1.0, 220),
        (Similarity(1.0, -2.5, True, 700.0, 950.0), True, 1.0, 220),
        (Similarity(1.0, 177.0, True, 1300.0, 1000.0), None, 1.0, 220),
        (Similarity(1.0, 45.0, False, 800.0, 200.0), None, None, 220),
        # a 2x2 sub-frame on a 4x4 reference: a quarter of the area, so a denser field
        (Similarity(0.5, -1.2, False, 760.0, 560.0), False, 0.5, 800),
    ],
)
def test_transform_recovered_with_noise_missing_and_spurious_sources(
    true, flip, scale_ratio, n_stars
):
    rng = np.random.default_rng(11)
    ref_xy, ref_flux = _field(rng, n_stars)
    sub_xy, sub_flux = _sub_frame(rng, ref_xy, ref_flux, true)
    match = match_to_reference(
        sub_xy,
        sub_flux,
        ref_xy,
        ref_flux,
        flip=flip,
        scale_ratio=scale_ratio,
        ref_window=_window(true),
        ref_shape=REF_SHAPE,
    )
    assert match is not None
    assert match.transform.mirrored == true.mirrored
    assert _transform_error(match.transform, true) < 0.1
    assert match.rms_px < 0.2
    assert match.fraction > 0.6  # the spurious sources are all that is left over
    mapped = match.transform.apply(sub_xy[match.sub_index])
    assert np.all(np.hypot(*(mapped - ref_xy[match.ref_index]).T) < 0.5)


def test_wrong_parity_or_scale_gives_no_match():
    rng = np.random.default_rng(12)
    ref_xy, ref_flux = _field(rng)
    true = Similarity(1.0, 2.0, True, 720.0, 980.0)
    sub_xy, sub_flux = _sub_frame(rng, ref_xy, ref_flux, true)
    window = _window(true)
    for flip, scale_ratio in ((False, 1.0), (True, 2.0), (True, 0.5)):
        found = match_to_reference(
            sub_xy,
            sub_flux,
            ref_xy,
            ref_flux,
            flip=flip,
            scale_ratio=scale_ratio,
            ref_window=window,
        )
        assert found is None, (flip, scale_ratio)
    found = match_to_reference(sub_xy, sub_flux, ref_xy, ref_flux, flip=True, ref_window=window)
    assert found is not None and _transform_error(found.transform, true) < 0.1


def test_without_a_window_the_reference_must_be_comparable():
    """No ref_window: quads come from the reference's brightest sources overall."""
    rng = np.random.default_rng(15)
    true = Similarity(1.0, -1.0, False, 300.0, 200.0)
    ref_xy, ref_flux = _field(rng, 300)
    near = np.all(np.abs(ref_xy - true.apply(_corners(SUB_SHAPE))[4]) < [500, 400], axis=1)
    ref_xy, ref_flux = ref_xy[near], ref_flux[near]  # a reference ~2x the sub-frame
    sub_xy, sub_flux = _sub_frame(rng, ref_xy, ref_flux, true)
    match = match_to_reference(sub_xy, sub_flux, ref_xy, ref_flux, flip=None)
    assert match is not None and _transform_error(match.transform, true) < 0.1


def test_two_beam_frames_rotated_against_each_other():
    """Every star twice, the E image at a fixed pixel offset in both frames (a Wollaston)."""
    rng = np.random.default_rng(13)
    stars, flux = _field(rng, 110)
    offset = (-209.0, 13.0)  # DIPOL at 2x2
    true = Similarity(1.0, 3.0, False, 700.0, 500.0)  # O images: sub -> ref
    ref_xy = np.vstack([stars, stars + offset])
    ref_flux = np.concatenate([flux, flux * rng.uniform(0.7, 1.3, len(flux))])
    sub_o = _inverse(true, stars)
    sub_xy = np.vstack([sub_o, sub_o + offset])
    sub_flux = ref_flux.copy()
    ny, nx = SUB_SHAPE
    inside = (sub_xy[:, 0] >= 0) & (sub_xy[:, 0] < nx) & (sub_xy[:, 1] >= 0) & (sub_xy[:, 1] < ny)
    beam = np.repeat([0, 1], len(stars))[inside]
    sub_xy = sub_xy[inside] + rng.normal(0.0, 0.05, (inside.sum(), 2))
    sub_flux = sub_flux[inside]
    window = _window(true, margin=250.0)
    match = match_to_reference(
        sub_xy,
        sub_flux,
        ref_xy,
        ref_flux,
        flip=False,
        oe_offset=offset,
        ref_window=window,
        ref_shape=REF_SHAPE,
    )
    assert match is not None
    assert _transform_error(match.transform, true) < 0.1
    # E images land (|a| - a) o away from the O-image transform: 11 px for 3 deg at 2x2
    a = complex(math.cos(math.radians(3.0)), math.sin(math.radians(3.0)))
    expected = (1 - a) * complex(*offset)
    assert abs(complex(*match.e_shift) - expected) < 0.1
    assert abs(expected) > 10.0
    assert np.array_equal(match.sub_beam, beam[match.sub_index])
    assert match.n_matched >= 0.9 * len(sub_xy)
    # one similarity for both beams cannot fit them: the two-beam model is needed
    single = match_to_reference(sub_xy, sub_flux, ref_xy, ref_flux, flip=False, ref_window=window)
    assert single is None or _transform_error(single.transform, true) > 1.0


def test_no_false_match_between_unrelated_fields():
    rng = np.random.default_rng(14)
    for _ in range(6):
        ref_xy, ref_flux = _field(rng)
        other_xy, other_flux = _field(rng)
        placed = Similarity(1.0, 0.0, False, 700.0, 500.0)
        sub_xy, sub_flux = _sub_frame(rng, other_xy, other_flux, placed)
        for flip, window in ((None, None), (False, _window(placed)), (None, _window(placed))):
            found = match_to_reference(
                sub_xy, sub_flux, ref_xy, ref_flux, flip=flip, scale_ratio=None, ref_window=window
            )
            assert found is None


def test_too_few_sources_and_bad_shapes():
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    assert match_to_reference(xy, np.ones(3), xy, np.ones(3), flip=None) is None
    with pytest.raises(ValueError, match="sub_xy"):
        match_to_reference(np.ones(5), np.ones(5), xy, np.ones(3), flip=None)
    with pytest.raises(ValueError, match="flux"):
        match_to_reference(xy, np.ones(2), xy, np.ones(3), flip=None)


def test_rotation_from_wcs_inverts_tan_wcs():
    for rotation, flip in ((177.6, False), (176.2, True), (3.0, False)):
        wcs = tan_wcs((100.0, 50.0), (330.68, 42.28), rotation, flip, 0.268)
        found_rotation, found_flip = rotation_from_wcs(wcs)
        assert found_flip == flip
        assert abs((found_rotation - rotation + 180) % 360 - 180) < 1e-9
        assert np.allclose(wcs.pixel_to_world_values(100.0, 50.0), (330.68, 42.28))


def test_central_pair_picks_the_pair_nearest_the_centre():
    offset = (-104.5, 6.5)
    x = np.array([300.0, 195.5, 500.0, 395.5, 20.0])
    y = np.array([230.0, 236.5, 100.0, 106.5, 400.0])
    pair = central_pair(x, y, SUB_SHAPE, offset, default_scatter(offset))
    assert (pair.o_index, pair.e_index) == (0, 1)
    assert pair.offset == pytest.approx(offset)
    hinted = central_pair(x, y, SUB_SHAPE, offset, default_scatter(offset), (495.0, 98.0))
    assert (hinted.o_index, hinted.e_index) == (2, 3)
    # a known field star 120 px right of the target's O image: a detection at (620, 100)
    # confirms pair (2, 3), nothing is at (420, 230) for the more central pair (0, 1)
    fx, fy = np.append(x, 620.0), np.append(y, 100.0)
    scored = central_pair(
        fx,
        fy,
        (450, 700),
        offset,
        default_scatter(offset),
        field_offsets_px=np.array([[120.0, 0.0]]),
        field_tolerance_px=5.0,
    )
    assert (scored.o_index, scored.e_index, scored.field_matches) == (2, 3, 1)
    assert central_pair(x[:1], y[:1], SUB_SHAPE, offset, default_scatter(offset)) is None
    assert central_pair(x[[0, 2]], y[[0, 2]], SUB_SHAPE, offset, default_scatter(offset)) is None


def test_central_pair_prefers_the_bright_target_to_a_faint_pair_nearer_the_centre():
    """Seed 9's Hiltner 960: the standard's pair 39 px from the centre, a faint pair at 32 px."""
    offset = (-104.5, -6.5)
    shape = (450, 560)
    x = np.array([309.5, 204.9, 359.1, 254.4, 40.0, 500.0])
    y = np.array([196.7, 190.2, 211.2, 204.7, 400.0, 30.0])
    flux = np.array([2.66e6, 2.55e6, 2.0e3, 1.8e3, 5.0e5, 4.0e5])
    assert central_pair(x, y, shape, offset, default_scatter(offset)).o_index == 2  # nearest
    pair = central_pair(x, y, shape, offset, default_scatter(offset), flux=flux)
    assert (pair.o_index, pair.e_index) == (0, 1)
    # a brighter pair (a calibrator) a little farther from the centre does not win
    brighter = central_pair(
        np.append(x, [390.0, 285.5]),
        np.append(y, [260.0, 253.5]),
        shape,
        offset,
        default_scatter(offset),
        flux=np.append(flux, [9e6, 9e6]),
    )
    assert (brighter.o_index, brighter.e_index) == (0, 1)


# --- a simulated night: the whole chain against the simulator's truth ---------------------


@pytest.fixture(scope="module")
def dipol_night(tmp_path_factory):
    """A small OSN-T090 night; with seed 1 BL Lac is observed flipped (FLIPSTAT)."""
    out = tmp_path_factory.mktemp("quads")
    (result,) = simulate_night(out, NIGHT, telescopes=("OSN-T090",), preset="small", seed=1)
    return result.folder, json.loads((result.folder / "truth.json").read_text())


def _detect(data: np.ndarray):
    return detect(data - np.median(data))


def _dipol_light(truth, obsmode, target):
    return sorted(
        name
        for name, record in truth["files"].items()
        if record["instrument"] == "DIPOL"
        and record["imgtype"] == "light"
        and record["obsmode"] == obsmode
        and record["target"] == target
    )


def _oe_offset(record, flipped: bool) -> tuple[float, float]:
    dx, dy = InstrumentRegistry.builtin().get("DIPOL").oe_offset_at(record["binning"])
    return (dx, -dy) if flipped else (dx, dy)


class _Truth:
    """The sky at a sub-frame pixel, from the simulator's WCS (optionally of the mirrored cut)."""

    def __init__(self, header: dict, ny: int, mirrored: bool):
        self.wcs = WCS(fits.Header(header))
        self.ny = ny
        self.mirrored = mirrored

    def pixel(self, x, y):
        """A truth-file pixel position in the (possibly mirrored) cut."""
        return (x, self.ny - 1 - y) if self.mirrored else (x, y)

    def errors(self, wcs: WCS, points: np.ndarray) -> np.ndarray:
        x, y = points[:, 0], points[:, 1]
        true = self.wcs.pixel_to_world(x, self.ny - 1 - y if self.mirrored else y)
        return wcs.pixel_to_world(x, y).separation(true).arcsec


def _sub_frame_case(dipol_night, mirrored: bool = False):
    """The first BL Lac polarimetry cut and the R photometry frame, detected.

    ``mirrored`` flips the cut upside down, as if its FLIPSTAT differed from
    the photometry frame's (the simulator flips both frames of a target alike).
    """
    folder, truth = dipol_night
    name = _dipol_light(truth, "polarimetry", "2200+420")[0]
    ref_name = next(n for n in _dipol_light(truth, "photometry", "2200+420") if n.endswith("R.fit"))
    record, ref_record = truth["files"][name], truth["files"][ref_name]
    data = fits.getdata(folder / name).astype(float)
    if mirrored:
        data = data[::-1].copy()
    ref_data = fits.getdata(folder / ref_name).astype(float)
    target = next(t for t in record["targets"] if t["name"] == "2200+420")
    return record, ref_record, data, _detect(data), ref_data, _detect(ref_data), target


@pytest.mark.parametrize("mirrored", [False, True])
def test_simulated_sub_frame_wcs_from_quads(dipol_night, mirrored):
    record, ref_record, data, found, ref_data, ref_found, target = _sub_frame_case(
        dipol_night, mirrored
    )
    assert data.shape == (450, 560) and ref_data.shape == (1406, 2064)  # a cut and a full frame
    assert record["flip"] and ref_record["flip"]  # seed 1: both frames flipped
    flipped = record["flip"] != mirrored
    offset = _oe_offset(record, flipped)
    window = record["window"]
    margin = 100  # px at 4x4, 27": the two frames' pointings differ
    match = match_to_reference(
        np.column_stack([found.x, found.y]),
        found.flux,
        np.column_stack([ref_found.x, ref_found.y]),
        ref_found.flux,
        flip=flipped != ref_record["flip"],
        scale_ratio=record["binning"] / ref_record["binning"],
        oe_offset=offset,
        ref_window=(
            window["x0"] - margin,
            window["y0"] - margin,
            window["x0"] + window["nx"] + margin,
            window["y0"] + window["ny"] + margin,
        ),
        ref_shape=ref_data.shape,
    )
    assert match is not None
    assert match.transform.mirrored == mirrored
    assert match.n_matched >= 8 and match.fraction > 0.7
    assert match.rms_px < 0.5
    ref_wcs = WCS(fits.Header(ref_record["wcs"]))
    wcs_o = wcs_from_reference(ref_wcs, match.transform, data.shape)
    pairs = find_pairs(found.x, found.y, offset, default_scatter(offset))
    wcs_e = pair_wcs(wcs_o, pairs.offset)
    ny = data.shape[0]
    true_o = _Truth(record["wcs"], ny, mirrored)
    true_e = _Truth(record["wcs_pair"], ny, mirrored)
    source = simulator_catalog().get("2200+420")  # the simulator puts it at its catalog position
    for wcs, beam, true in zip((wcs_o, wcs_e), target["beams"], (true_o, true_e), strict=True):
        x, y = true.pixel(beam["x"], beam["y"])
        errors = true.errors(wcs, np.vstack([[x, y], _corners(data.shape)]))
        assert errors.max() < 0.5, errors
        sky = wcs.pixel_to_world(x, y)
        assert abs(sky.ra.deg - source.ra_deg) * math.cos(math.radians(source.dec_deg)) < 0.5 / 3600
        assert abs(sky.dec.deg - source.dec_deg) < 0.5 / 3600


def test_simulated_sub_frame_central_pair_fallback(dipol_night):
    """The fallback on the same cut, and on a Hiltner 960 cut (no photometry frame for it)."""
    folder, truth = dipol_night
    record, ref_record, data, found, _, _, target = _sub_frame_case(dipol_night)
    spec = InstrumentRegistry.builtin().get("DIPOL")
    pixscale = spec.pixscale_at(record["binning"])
    ref_rotation, flip = rotation_from_wcs(WCS(fits.Header(ref_record["wcs"])))  # history angle
    cases = [(record, found, data.shape, target, ref_rotation, flip)]
    name = _dipol_light(truth, "polarimetry", "Hiltner 960")[0]
    hiltner = truth["files"][name]
    assert not _dipol_light(truth, "photometry", "Hiltner 960")
    hiltner_data = fits.getdata(folder / name).astype(float)
    star = next(t for t in hiltner["targets"] if t["name"] == "Hiltner 960")
    cases.append(
        (
            hiltner,
            _detect(hiltner_data),
            hiltner_data.shape,
            star,
            spec.sky_rotation_deg,
            hiltner["flip"],
        )
    )
    catalog = simulator_catalog()
    for (record, found, shape, star, rotation, flip), field in itertools.product(
        cases, (False, True)
    ):
        true = WCS(fits.Header(record["wcs"]))
        o_beam = star["beams"][0]
        radec = tuple(float(v) for v in true.pixel_to_world_values(o_beam["x"], o_beam["y"]))
        source = catalog.get(star["name"])
        field_radec = [(catalog.get(n).ra_deg, catalog.get(n).dec_deg) for n in source.calibrators]
        wcs = central_pair_wcs(
            found,
            shape,
            radec,
            _oe_offset(record, record["flip"]),
            rotation,
            flip,
            pixscale,
            field_radec=field_radec if field else None,
        )
        assert wcs is not None
        corners = _corners(shape)
        points = np.vstack([[o_beam["x"], o_beam["y"]], corners])
        errors = _Truth(record["wcs"], shape[0], False).errors(wcs, points)
        assert errors[0] < 0.5
        # away from the target only the rotation is off: by how much the assumed
        # rotation differs from the cut's true one
        true_rotation, true_flip = rotation_from_wcs(true)
        assert true_flip == flip
        wrong = math.radians(abs((rotation - true_rotation + 180) % 360 - 180))
        reach = np.hypot(*(corners - [o_beam["x"], o_beam["y"]]).T) * pixscale
        assert np.all(errors[1:] < wrong * reach + 0.3), (errors, math.degrees(wrong))
        assert np.all(errors[1:] > 0.5 * wrong * reach - 0.3)
