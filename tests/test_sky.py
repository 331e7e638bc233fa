"""The simulated sky: rebuildable from catalog.toml, real calibrators in place, sane star counts."""

from __future__ import annotations

import numpy as np
import pytest

from iopreport.catalog import load_catalog
from iopreport.simulate.sky import (
    EXCLUSION_ARCSEC,
    FIELD_RADIUS_ARCMIN,
    _angular_distance_arcsec,
    expected_star_count,
    galactic_latitude,
    generate_sky,
    load_sky,
    stars_near,
)


@pytest.fixture(scope="module")
def sky():
    return load_sky()


@pytest.fixture(scope="module")
def catalog(repo_root):
    return load_catalog(repo_root / "catalog.toml")


def test_committed_sky_is_what_the_generator_makes(sky, catalog):
    fresh = generate_sky(catalog, seed=int(sky.meta["SEED"]))
    assert len(fresh) == len(sky)
    assert names(fresh) == names(sky)
    np.testing.assert_allclose(fresh["ra"], sky["ra"], atol=1e-9)
    np.testing.assert_allclose(fresh["R"], sky["R"], atol=1e-5)


def names(table) -> list[str]:
    column = table["name"]
    return [str(v) for v in (column.filled("") if hasattr(column, "filled") else column)]


def test_every_calibrator_is_in_the_sky_at_its_catalog_values(sky, catalog):
    names = {str(n) for n in sky["name"]}
    for target in catalog.targets():
        for name in target.calibrators:
            assert name in names, name
            entry = catalog.get(name)
            row = sky[np.asarray(sky["name"]).astype(str) == name][0]
            assert row["ra"] == pytest.approx(entry.ra_deg, abs=1e-9)
            assert row["dec"] == pytest.approx(entry.dec_deg, abs=1e-9)
            for band, mag in entry.mags.items():
                assert row[band] == pytest.approx(mag.value, abs=1e-4), (name, band)


def test_no_synthetic_star_sits_on_a_catalog_source(sky, catalog):
    synthetic = sky[np.asarray(sky["kind"]).astype(str) == "synthetic"]
    for source in catalog.sources:
        distance = _angular_distance_arcsec(
            synthetic["ra"], synthetic["dec"], source.ra_deg, source.dec_deg
        )
        assert distance.min() > EXCLUSION_ARCSEC * 0.999, source.name


def test_star_counts_follow_latitude_and_magnitude(sky, catalog):
    for centre in catalog.sources:
        if centre.srctype not in ("blazar", "polarization_standard"):
            continue
        field = sky[np.asarray(sky["field"]).astype(str) == centre.name]
        expected = expected_star_count(
            galactic_latitude(centre.ra_deg, centre.dec_deg), FIELD_RADIUS_ARCMIN, 20.0
        )
        assert abs(len(field) - expected) < 5 * np.sqrt(expected) + 20, centre.name
        r = np.asarray(field["R"])
        # cumulative counts rise ~0.33 dex per magnitude between R = 16 and 19
        ratio = np.log10((r < 19).sum() / max((r < 16).sum(), 1)) / 3
        assert 0.2 < ratio < 0.45, (centre.name, ratio)
    plane = len(stars_near(sky, *_radec(catalog, "Hiltner 960"), 10))
    high = len(stars_near(sky, *_radec(catalog, "1253-055"), 10))
    assert plane > 3 * high


def _radec(catalog, name):
    source = catalog.get(name)
    return source.ra_deg, source.dec_deg
