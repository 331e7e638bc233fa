"""A frame's header WCS as the astrometry of last resort: checked, shifted or refused."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import numpy as np
import pytest
from astropy.io import fits

from iopreport.reduce.headerwcs import (
    HEADER,
    HEADER_SHIFT,
    check_header_wcs,
    header_celestial_wcs,
    pointing_wcs,
    strip_wcs,
)
from iopreport.reduce.quadwcs import tan_wcs

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

SCALE = 0.5  # arcsec per pixel
SHAPE = (800, 800)


def _field(seed=1, n_sources=5, n_stars=150, pair=None):
    """A true WCS, catalog sources on the frame and detections (sources + field stars)."""
    rng = np.random.default_rng(seed)
    truth = tan_wcs((399.5, 399.5), (150.0, 30.0), 3.0, False, SCALE)
    source_xy = rng.uniform(60, 740, (n_sources, 2))
    ra, dec = truth.all_pix2world(source_xy[:, 0], source_xy[:, 1], 0)
    radec = np.column_stack([ra, dec])
    stars = rng.uniform(0, 800, (n_stars, 2))
    xy = np.vstack([source_xy + rng.normal(0, 0.2, source_xy.shape), stars])
    if pair is not None:
        xy = np.vstack([xy, xy + np.asarray(pair)])
    return truth, radec, xy


def _shifted(wcs, north_arcsec):
    moved = wcs.deepcopy()
    moved.wcs.crval = [moved.wcs.crval[0], moved.wcs.crval[1] + north_arcsec / 3600.0]
    return moved


def _error_arcsec(wcs, truth):
    x, y = np.meshgrid([0, 400, 799], [0, 400, 799])
    a = np.array(wcs.all_pix2world(x.ravel(), y.ravel(), 0))
    b = np.array(truth.all_pix2world(x.ravel(), y.ravel(), 0))
    return float(np.max(np.hypot((a[0] - b[0]) * np.cos(np.radians(30.0)), a[1] - b[1]))) * 3600


def test_an_exact_header_wcs_is_used_as_written():
    truth, radec, xy = _field()
    check = check_header_wcs(truth, xy, SHAPE, radec, SCALE)
    assert check.ok and check.method == HEADER, check.error
    assert "5 of 5 catalog source(s)" in check.detail


@pytest.mark.parametrize("offset", [30.0, -75.0])
def test_a_shifted_header_wcs_is_caught_and_corrected(offset):
    truth, radec, xy = _field(seed=2)
    check = check_header_wcs(_shifted(truth, offset), xy, SHAPE, radec, SCALE)
    assert check.ok and check.method == HEADER_SHIFT, check.error
    assert f'= {abs(offset):.1f}"' in check.detail
    assert _error_arcsec(check.wcs, truth) < 0.3


def test_a_header_wcs_matching_nothing_is_refused():
    truth, radec, xy = _field(seed=3)
    far = _shifted(truth, 150.0)  # beyond the shift searched, sources still on the frame
    check = check_header_wcs(far, xy, SHAPE, radec, SCALE)
    assert not check.ok and "refused" in check.error
    # so far off that no source is on the frame: the target says it is wrong
    lost = check_header_wcs(
        _shifted(truth, 1000.0), xy, SHAPE, radec, SCALE, target_radec=tuple(radec[0])
    )
    assert not lost.ok and "target off the frame" in lost.error
    # too few sources to trust a shift: refused, not guessed
    one = check_header_wcs(_shifted(truth, 30.0), xy, SHAPE, radec[:1], SCALE)
    assert not one.ok and "needs" in one.error


def test_wrong_scale_is_refused():
    truth, radec, xy = _field()
    wrong = tan_wcs((399.5, 399.5), (150.0, 30.0), 3.0, False, SCALE * 1.2)
    check = check_header_wcs(wrong, xy, SHAPE, radec, SCALE)
    assert not check.ok and "scale" in check.error


def test_wollaston_pairs_are_not_matched_on_the_other_beam():
    """Both images of every source are detections: a shift onto the E images fits one beam
    as well as the true shift; with the pair offset only the true shift fits."""
    pair = (-36.0, 0.5)
    truth, radec, xy = _field(seed=4, pair=pair)
    check = check_header_wcs(_shifted(truth, 30.0), xy, SHAPE, radec, SCALE, pair_offset=pair)
    assert check.ok and check.method == HEADER_SHIFT, check.error
    assert _error_arcsec(check.wcs, truth) < 0.3


def test_without_catalog_sources_only_the_geometry_is_checked():
    truth, _, xy = _field()
    check = check_header_wcs(truth, xy, SHAPE, np.zeros((0, 2)), SCALE)
    assert check.ok and check.method == HEADER
    assert "not verified" in check.detail


def test_header_keywords_and_pointing_give_the_same_wcs():
    truth = tan_wcs((1023.5, 1023.5), (330.68, 42.28), 0.4, False, 0.387)
    header = fits.Header()
    header["OBJECT"] = "BLLac"
    header.update(truth.to_header())
    read = header_celestial_wcs(header)
    assert read is not None and _error_arcsec(read, truth) < 1e-6
    built = pointing_wcs((330.68, 42.28), (2048, 2048), (0, 0), 0.4, False, 0.387)
    assert _error_arcsec(built, truth) < 1e-6
    strip_wcs(header)
    assert header_celestial_wcs(header) is None and header["OBJECT"] == "BLLac"


def test_schema_6_splits_the_astrometry_method(tmp_path):
    """An older store's descriptions move to astrometry_detail; the method gets its name."""
    from iopreport.store import SCHEMA_VERSION, Epoch, RawFit, ReducedFit, close_store, open_store

    path = tmp_path / "store.db"
    open_store(path)
    epoch = Epoch.create(telescope="OSN-T090", night="2024-10-08")
    texts = {
        "a.fit": "sep 5 sigma; 40 stars; logodds 80",
        "b.fts": "quads against a.fits: 13 sources matched, rms 0.2 px",
        "c.fts": "central O/E pair at the target's catalog position (no reference)",
        "d.fit": "",
    }
    for name, text in texts.items():
        rawfit = RawFit.create(epoch=epoch, filename=name)
        ReducedFit.create(rawfit=rawfit, filename=f"r/{name}", astrometry_method=text)
    close_store()
    with sqlite3.connect(path) as connection:  # back to schema 5
        connection.execute("ALTER TABLE reduced_fit DROP COLUMN astrometry_detail")
        connection.execute("PRAGMA user_version = 5")
    database = open_store(path)
    assert database.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    found = {
        f.rawfit.filename: (f.astrometry_method, f.astrometry_detail)
        for f in ReducedFit.select().join(RawFit)
    }
    assert found == {
        "a.fit": ("solved", texts["a.fit"]),
        "b.fts": ("quads", texts["b.fts"]),
        "c.fts": ("central-pair", texts["c.fts"]),
        "d.fit": ("", ""),
    }
    close_store()


# --------------------------------------------------------------------------- whole nights


def _header_wcs_night(tmp_path, offset, telescopes):
    """A tiny night whose frames carry a header WCS, reduced with an empty index folder."""
    from test_reduce import NIGHT, make_project

    import iopreport.simulate.night as simulated

    original = simulated.simulate_night

    def with_header_wcs(*args, **kwargs):
        return original(*args, header_wcs=True, header_wcs_offset_arcsec=offset, **kwargs)

    import test_reduce

    test_reduce.simulate_night = with_header_wcs
    try:
        project, config, catalog = make_project(tmp_path, telescopes=telescopes, preset="tiny")
    finally:
        test_reduce.simulate_night = original
    empty = tmp_path / "no-index"
    empty.mkdir()
    paths = dataclasses.replace(config.paths, astrometry_index_dir=empty)
    config = dataclasses.replace(config, paths=paths)
    from iopreport.reduce.night import reduce_nights

    run = reduce_nights(config, catalog, [(t, NIGHT) for t in telescopes], workers=2)
    return project, config, run


@pytest.mark.slow
def test_night_with_header_wcs_and_no_index_reduces_from_the_header(tmp_path):
    from test_reduce import folder_of

    from iopreport.build import run_build
    from iopreport.flags.automatic import apply_automatic_flags
    from iopreport.simulate.evaluate import evaluate_night
    from iopreport.store import (
        PhotoPolResult,
        RawFit,
        ReducedFit,
        ReducedFitFlags,
        ResultFlags,
        close_store,
    )

    telescopes = ("OSN-T090", "OSN-T150", "CAHA-T220")
    project, config, run = _header_wcs_night(tmp_path, 0.0, telescopes)
    for report in run.reports:
        assert report.frames_failed == {}, report.frames_failed
    frames = list(ReducedFit.select().join(RawFit).where(RawFit.imgtype == "light"))
    by_method = {}
    for frame in frames:
        by_method.setdefault(frame.astrometry_method, []).append(frame)
    # DIPOL sub-frames: quads against a DIPOL frame that was placed by its header
    assert set(by_method) == {"header", "quads"} and len(by_method["header"]) >= 14
    assert all("no astrometry.net index" in f.astrometry_detail for f in by_method["header"])
    assert all("placed by its header WCS" in f.astrometry_detail for f in by_method["quads"])
    assert all(f.flags & ReducedFitFlags.HEADER_WCS for f in frames)
    mag_errors = []
    for telescope in telescopes:
        evaluation = evaluate_night(folder_of(project, telescope), config.paths.datadir, telescope)
        assert evaluation.astrometry_success == 1.0, evaluation.failed_eligible
        assert max(evaluation.wcs_rms_arcsec) < 0.5
        mag_errors += [error for _, error, _, _ in evaluation.mag_errors]
    assert mag_errors and max(abs(e) for e in mag_errors) <= 0.01, mag_errors
    apply_automatic_flags(config)
    results = list(PhotoPolResult.select())
    assert results and all(r.flags & ResultFlags.HEADER_WCS for r in results)
    assert not any(r.flags & ResultFlags.BAD_PHOTOMETRY for r in results if r.mag is not None)
    close_store()
    run_build(config)
    night_page = next((project / "site_out").rglob("2024-10-08*.html"), None) or next(
        p
        for p in (project / "site_out").rglob("*.html")
        if "2024-10-08" in p.read_text() and "placed on the sky" in p.read_text()
    )
    text = night_page.read_text()
    assert "placed on the sky by the WCS in their header" in text
    assert '"header"' in text  # the frame table's method column

    # once index files are there, a rerun solves the frames placed by their header
    from iopreport.reduce.night import reduce_nights
    from iopreport.simulate.sky import SKY_INDEX_DIR
    from iopreport.store import open_store

    paths = dataclasses.replace(config.paths, astrometry_index_dir=SKY_INDEX_DIR)
    config = dataclasses.replace(config, paths=paths)
    open_store(config.database_path)
    from test_reduce import NIGHT

    reduce_nights(config, catalog_of(config), [(t, NIGHT) for t in telescopes], workers=2)
    frames = list(ReducedFit.select().join(RawFit).where(RawFit.imgtype == "light"))
    assert {f.astrometry_method for f in frames} == {"solved", "quads"}
    assert not any(f.flags & ReducedFitFlags.HEADER_WCS for f in frames)
    close_store()


def catalog_of(config):
    from iopreport.catalog import load_catalog

    return load_catalog(config.paths.catalog)


@pytest.mark.slow
def test_header_wcs_shifted_30_arcsec_is_corrected_or_refused(tmp_path):
    from test_reduce import folder_of

    from iopreport.simulate.evaluate import evaluate_night
    from iopreport.store import RawFit, ReducedFit, close_store

    telescopes = ("OSN-T150", "CAHA-T220")
    project, config, run = _header_wcs_night(tmp_path, 30.0, telescopes)
    frames = list(ReducedFit.select().join(RawFit).where(RawFit.imgtype == "light"))
    methods = {f.rawfit.filename: f.astrometry_method for f in frames}
    assert "header" not in methods.values()  # never used as written
    corrected = [name for name, method in methods.items() if method == "header+shift"]
    assert len(corrected) >= 8
    for report in run.reports:
        for name, reason in report.frames_failed.items():
            assert methods[name] == "" and "header WCS refused" in reason, reason
    for telescope in telescopes:
        folder = folder_of(project, telescope)
        truth = json.loads((folder / "truth.json").read_text())
        assert truth["header_wcs_offset_arcsec"] == 30.0
        evaluation = evaluate_night(folder, config.paths.datadir, telescope)
        # every WCS in use is right: the shift found and removed
        assert evaluation.wcs_rms_arcsec and max(evaluation.wcs_rms_arcsec) < 0.5
    close_store()
