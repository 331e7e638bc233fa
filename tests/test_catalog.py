"""catalog.toml: the shipped catalog against its published sources, loading, errors, sync."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from astropy.coordinates import Angle

from iopreport.catalog import load_catalog, sync_catalog
from iopreport.errors import InputError
from iopreport.store import AstroSource, Calibrator, StandardPolarization


@pytest.fixture(scope="module")
def catalog(repo_root):
    return load_catalog(repo_root / "catalog.toml")


def read_reference_csv(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def test_shipped_catalog_has_the_demo_sources(catalog):
    targets = {
        "2200+420": "BL Lacertae",
        "2251+158": "3C 454.3",
        "1253-055": "3C 279",
        "0851+202": "OJ 287",
        "0716+714": "S5 0716+714",
        "1101+384": "Mrk 421",
        "1652+398": "Mrk 501",
    }
    for name, common in targets.items():
        source = catalog.get(common)
        assert source is not None and source.name == name, common
        assert source.srctype == "blazar"
        assert len(source.calibrators) >= 3, name
    bllac = catalog.get("BL Lac")
    assert set(bllac.calibrators) >= {"2200+420 B", "2200+420 C", "2200+420 H"}
    assert bllac.redshift == pytest.approx(0.0686)
    for standard in ("Hiltner 960", "HD 204827", "BD+64 106", "BD+32 3739", "HD 212311"):
        entry = catalog.get(standard)
        assert entry is not None and entry.srctype == "polarization_standard", standard
        assert entry.pol, standard
    for entry in catalog.sources:
        assert entry.comment, entry.name
        assert entry.references, entry.name


def test_standards_match_published_polarization(catalog):
    """Schmidt, Elston & Lupie (1992) values, as the polarization-standards table gives them."""
    hiltner = catalog.get("Hiltner960").pol["R"]
    assert hiltner.p == pytest.approx(0.05210)
    assert hiltner.p_err == pytest.approx(0.00029)
    assert hiltner.chi == pytest.approx(54.54)
    assert catalog.get("HD 204827").pol["R"].chi == pytest.approx(59.10)
    assert catalog.get("BD+64 106").pol["R"].p == pytest.approx(0.0515)
    for unpolarized in ("BD+32 3739", "HD 212311"):
        assert all(pol.p < 0.001 for pol in catalog.get(unpolarized).pol.values())


def test_calibrator_magnitudes_match_the_reference_table(catalog, shared_dir):
    """Every calibrator magnitude equals the IOP3 (C1) row it was typed from."""
    table = read_reference_csv(
        shared_dir / "reference/catalogs/blazar_comparison_stars_as_found.csv"
    )
    rows = [row for row in table if row["source"] == "C1" and "commented out" not in row["note"]]
    blazar_names = {
        "BL Lac (2200+420)": "2200+420",
        "S5 0716+714": "0716+714",
        "OJ 287 (0851+202)": "0851+202",
        "Mrk 421 (1101+384)": "1101+384",
        "3C 279 (1253-055)": "1253-055",
        "Mrk 501 (1652+398)": "1652+398",
        "3C 454.3 (2251+158)": "2251+158",
    }
    checked = 0
    for row in rows:
        name = f"{blazar_names[row['blazar']]} {row['star']}"
        entry = catalog.get(name)
        assert entry is not None, name
        assert name in catalog.get(blazar_names[row["blazar"]]).calibrators
        assert entry.ra_deg == pytest.approx(Angle(row["ra_j2000"], unit="hourangle").deg, abs=1e-5)
        assert entry.dec_deg == pytest.approx(Angle(row["dec_j2000"], unit="deg").deg, abs=1e-5)
        for band in "UBVRI":
            if row[band]:
                assert entry.mags[band].value == pytest.approx(float(row[band])), (name, band)
                assert entry.mags[band].err == pytest.approx(float(row["e" + band])), (name, band)
                checked += 1
    assert checked > 80


def test_sync_writes_sources_links_and_polarization(catalog, store):
    counts = sync_catalog(catalog)
    assert counts == {"added": len(catalog), "updated": 0, "retired": 0}
    bllac = AstroSource.get(name="2200+420")
    assert bllac.other_names[0] == "BL Lacertae"
    assert [s.name for s in bllac.calibrator_sources] == ["2200+420 B", "2200+420 C", "2200+420 H"]
    star_b = AstroSource.get(name="2200+420 B")
    assert star_b.literature_mag("R") == (pytest.approx(11.99), pytest.approx(0.04))
    assert star_b.ra_deg == pytest.approx(330.6894567, abs=1e-6)
    hiltner = StandardPolarization.get(
        StandardPolarization.source == AstroSource.get(name="Hiltner 960"),
        StandardPolarization.band == "R",
    )
    assert hiltner.p == pytest.approx(0.0521)
    # running again updates in place
    assert sync_catalog(catalog)["updated"] == len(catalog)
    assert Calibrator.select().count() == sum(len(s.calibrators) for s in catalog.sources)


def test_removed_source_is_retired_not_deleted(tmp_path, store):
    path = tmp_path / "catalog.toml"
    path.write_text(ENTRY_A + ENTRY_STAR)
    sync_catalog(load_catalog(path))
    path.write_text(ENTRY_STAR)
    counts = sync_catalog(load_catalog(path))
    assert counts["retired"] == 1
    assert AstroSource.get(name="A").in_catalog is False
    assert AstroSource.get(name="S1").in_catalog is True


ENTRY_A = """
[[source]]
name = "A"
type = "blazar"
ra = "01:00:00"
dec = "+10:00:00"
calibrators = ["S1"]
"""
ENTRY_STAR = """
[[source]]
name = "S1"
type = "calibrator"
ra = 15.5
dec = -5.25
mag.R = [12.0, 0.02]
mag.V = 12.5
"""


def test_small_catalog_values(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(ENTRY_A + ENTRY_STAR)
    catalog = load_catalog(path)
    a, s1 = catalog.sources
    assert a.ra_deg == pytest.approx(15.0) and a.dec_deg == pytest.approx(10.0)
    assert a.line == 2
    assert s1.ra_deg == 15.5 and s1.dec_deg == -5.25
    assert s1.mags["V"].err is None
    assert catalog.targets() == [a]


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            ENTRY_STAR.replace('type = "calibrator"', 'typ = "calibrator"'),
            4,
            "source[0].typ: unknown key",
        ),
        (ENTRY_STAR.replace("calibrator", "quasar"), 4, "source[0].type: unknown type 'quasar'"),
        (ENTRY_STAR + ENTRY_STAR, 11, "source[1].name: name 'S1' is already used by 'S1' (line 2)"),
        (
            ENTRY_STAR + ENTRY_A.replace('name = "A"', 'name = "a"\nother_names = ["s1"]'),
            12,
            "source[1].other_names: name 's1' is already used by 'S1'",
        ),
        (
            ENTRY_A + ENTRY_STAR.replace('name = "S1"', 'name = "S2"'),
            7,
            "source[0].calibrators: calibrator 'S1' is not a source in this catalog",
        ),
        (ENTRY_A.replace('["S1"]', '["A"]'), 7, "a source cannot calibrate itself"),
        (ENTRY_A.replace('"01:00:00"', '"25:00:00"'), 5, "source[0].ra: cannot read '25:00:00'"),
        (ENTRY_A.replace('"01:00:00"', '"1:75:00"'), 5, "source[0].ra: cannot read '1:75:00'"),
        (ENTRY_A.replace('"01:00:00"', '"one hour"'), 5, "source[0].ra: cannot read 'one hour'"),
        (ENTRY_A.replace('"+10:00:00"', '"+95:00:00"'), 6, "source[0].dec: '+95:00:00' is outside"),
        (
            ENTRY_A.replace('dec = "+10:00:00"\n', ""),
            2,
            "source[0]: [[source]] entry is missing required key 'dec'",
        ),
        (ENTRY_STAR.replace("mag.V = 12.5", "mag.Z = 12.5"), 8, "source[0].mag.Z: unknown band"),
        (ENTRY_STAR.replace("mag.V = 12.5", "mag.V = [12.5]"), 8, "must be [value, error]"),
        (ENTRY_STAR.replace("mag.V = 12.5", "mag.V = [12.5, -0.1]"), 8, "must be positive"),
        (
            ENTRY_STAR.replace("mag.V = 12.5", "pol.R = { p_percent = 150.0 }"),
            8,
            "source[0].pol.R.p_percent: must be between 0 and 100",
        ),
        (
            ENTRY_STAR.replace("mag.V = 12.5", "pol.R = { p = 5.0 }"),
            8,
            "source[0].pol.R.p: unknown key",
        ),
        ("[[source]]\nname = 1\n", 1, "source[0]: [[source]] entry is missing required key 'type'"),
        ("title = 'x'\n", 1, "title: unknown key; a catalog holds only [[source]] tables"),
        ("[[source]\n", 1, "TOML syntax error"),
    ],
)
def test_errors_name_key_and_line(tmp_path, text, line, expected):
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert expected in str(caught.value)


def test_rename_through_other_names_keeps_the_row(tmp_path, store):
    path = tmp_path / "catalog.toml"
    path.write_text(ENTRY_A + ENTRY_STAR)
    sync_catalog(load_catalog(path))
    old_id = AstroSource.get(name="A").id
    path.write_text(
        ENTRY_A.replace('name = "A"', 'name = "A new"\nother_names = ["a"]') + ENTRY_STAR
    )
    counts = sync_catalog(load_catalog(path))
    assert counts == {"added": 0, "updated": 2, "retired": 0}
    renamed = AstroSource.get(name="A new")
    assert renamed.id == old_id
    assert [s.name for s in renamed.calibrator_sources] == ["S1"]


def test_retired_source_loses_its_links(tmp_path, store):
    path = tmp_path / "catalog.toml"
    path.write_text(ENTRY_A + ENTRY_STAR)
    sync_catalog(load_catalog(path))
    path.write_text(ENTRY_STAR)
    sync_catalog(load_catalog(path))
    assert Calibrator.select().count() == 0


def test_a_name_repeated_within_one_entry(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(ENTRY_STAR.replace('name = "S1"', 'name = "S1"\nother_names = ["s1"]'))
    with pytest.raises(InputError, match="repeats the name 's1'"):
        load_catalog(path)
