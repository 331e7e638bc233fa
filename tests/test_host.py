"""Host-galaxy correction: catalog tables, interpolation, correction of R and p, table errors."""

from __future__ import annotations

import math

import pytest

from iopreport.catalog import HostTable, load_catalog
from iopreport.errors import InputError
from iopreport.reduce.host import (
    NILSSON2007_R_ZERO_POINT_MJY,
    HostFlux,
    correct,
    host_flux,
    mag_to_mjy,
)


@pytest.fixture(scope="module")
def catalog(repo_root):
    return load_catalog(repo_root / "catalog.toml")


@pytest.fixture(scope="module")
def bllac(catalog) -> HostTable:
    return catalog.get("BL Lac").host


def read_nilsson_tables(path) -> dict[str, tuple[list[float], list[float], list, list]]:
    """The reference data file, keyed by the table URL's name (e.g. 'B.20')."""
    tables = {}
    for block in path.read_text().split("#" * 80):
        source = [line for line in block.splitlines() if "tableB." in line]
        if not source:
            continue
        label = source[0].split("table")[-1].removesuffix(".html")
        rows = [line for line in block.splitlines() if line.strip() and line[0] != "#"]
        seeing = [float(x) for x in rows[0].split(",")[1:]]
        apertures, flux, err = [], [], []
        for row in rows[1:]:
            cells = row.split(",")
            apertures.append(float(cells[0]))
            flux.append([float(cell.split()[0]) for cell in cells[1:]])
            err.append([float(cell.split()[1]) for cell in cells[1:]])
        tables[label] = (apertures, seeing, flux, err)
    return tables


# --- the tables in catalog.toml ------------------------------------------------------------


def test_acceptance_bllac_aperture_6_seeing_4(bllac):
    """Nilsson et al. (2007) Table B.20: BL Lac, r = 6 arcsec, FWHM = 4 arcsec: 1.22 +- 0.03 mJy."""
    flux, err = host_flux(bllac, 6.0, 4.0)
    assert flux == pytest.approx(1.22)
    assert err == pytest.approx(0.03)
    assert bllac.reference.endswith("Table B.20")
    assert bllac.band == "R"


def test_catalog_tables_equal_the_published_tables(catalog, shared_dir):
    """Each table in catalog.toml is the Nilsson 2007 table of that object, number for number."""
    published = read_nilsson_tables(
        shared_dir / "reference/catalogs/iop4_host_correction_data_Nilsson2007.csv"
    )
    expected = {"BL Lacertae": "B.20", "Mrk 421": "B.8", "Mrk 501": "B.17"}
    with_tables = {s.name for s in catalog.sources if s.host is not None}
    assert with_tables == {catalog.get(name).name for name in expected}
    for name, label in expected.items():
        table = catalog.get(name).host
        assert table.reference == f"Nilsson et al. 2007, A&A 475, 199, Table {label}"
        apertures, seeing, flux, err = published[label]
        assert list(table.aperture_arcsec) == apertures
        assert list(table.seeing_arcsec) == seeing
        assert [list(row) for row in table.flux_mjy] == flux, name
        assert [list(row) for row in table.flux_err_mjy] == err, name


def test_only_covered_blazars_have_tables(catalog):
    """3C 454.3, 3C 279, OJ 287 and S5 0716+714 are not in Nilsson et al. (2007)."""
    for name in ("3C 454.3", "3C 279", "OJ 287", "S5 0716+714"):
        assert catalog.get(name).host is None, name
    for entry in catalog.sources:
        if entry.host is not None:
            assert entry.srctype == "blazar"


# --- interpolation -------------------------------------------------------------------------


def test_grid_points_are_returned_exactly(bllac):
    assert tuple(host_flux(bllac, 1.0, 1.0)) == pytest.approx((0.35, 0.02))
    assert tuple(host_flux(bllac, 10.0, 8.0)) == pytest.approx((1.6, 0.2))
    assert tuple(host_flux(bllac, 7.5, 3.0)) == pytest.approx((1.38, 0.03))


def test_interpolation_between_grid_points(bllac):
    # halfway in aperture: (r 6.0, 1.22) and (r 6.5, 1.27) at FWHM 4
    assert tuple(host_flux(bllac, 6.25, 4.0)) == pytest.approx((1.245, 0.03))
    # bilinear: corners (5.5, 4) 1.16 +- 0.03, (5.5, 5) 1.17 +- 0.04, (6, 4) 1.22 +- 0.03,
    # (6, 5) 1.22 +- 0.04; the centre is their mean
    assert tuple(host_flux(bllac, 5.75, 4.5)) == pytest.approx((1.1925, 0.035))
    # a quarter of the way in seeing at r = 8: 1.42 + 0.25 * (1.41 - 1.42)
    assert host_flux(bllac, 8.0, 4.25).flux_mjy == pytest.approx(1.4175)
    assert host_flux(bllac, 8.0, 4.25).notes == ()


def test_outside_the_grid_clamps_by_default(bllac):
    result = host_flux(bllac, 12.0, 4.0)
    assert tuple(result) == pytest.approx((1.59, 0.07))  # the r = 10 row
    assert result.outside_grid and result.outside_axes == ("aperture",)
    assert "aperture 12 arcsec is outside the table (1-10); clamped to 10" in result.notes[0]
    low = host_flux(bllac, 6.0, 0.5)
    assert low.flux_mjy == pytest.approx(1.26)  # the FWHM = 1 column
    assert "seeing 0.5 arcsec is outside" in low.notes[0]
    assert low.outside_axes == ("seeing",)
    assert host_flux(bllac, 0.5, 9.0).outside_axes == ("aperture", "seeing")
    assert not host_flux(bllac, 10.0, 8.0).outside_grid


def test_outside_the_grid_extrapolates_on_request(bllac):
    # linear continuation of (9.5, 1.55) and (10.0, 1.59) at FWHM 4
    result = host_flux(bllac, 10.5, 4.0, outside="extrapolate")
    assert result.flux_mjy == pytest.approx(1.63)
    assert "extrapolated linearly" in result.notes[0]
    # continuation of (FWHM 2, 1.24) and (FWHM 1, 1.26) at r = 6
    assert host_flux(bllac, 6.0, 0.5, outside="extrapolate").flux_mjy == pytest.approx(1.27)


def test_one_dimensional_table_and_negative_extrapolation():
    table = HostTable(
        reference="test",
        band="R",
        aperture_arcsec=(2.0, 4.0, 6.0),
        seeing_arcsec=None,
        flux_mjy=(0.1, 1.0, 3.0),
        flux_err_mjy=None,
    )
    result = host_flux(table, 5.0, 3.0)  # seeing is ignored by a 1-D table
    assert result.flux_mjy == pytest.approx(2.0)
    assert result.err_mjy == 0.0
    assert any("no uncertainties" in note for note in result.notes)
    assert host_flux(table, 5.0).flux_mjy == pytest.approx(2.0)
    below = host_flux(table, 1.0, outside="extrapolate")  # 0.1 - 0.45 < 0
    assert below.flux_mjy == 0.0 and below.outside_axes == ("aperture",)
    assert any("negative; set to 0" in note for note in below.notes)


def test_bad_interpolation_requests(bllac):
    with pytest.raises(ValueError, match="give seeing_arcsec"):
        host_flux(bllac, 6.0)
    with pytest.raises(ValueError, match="aperture_arcsec must be positive"):
        host_flux(bllac, 0.0, 4.0)
    with pytest.raises(ValueError, match="seeing_arcsec must be positive"):
        host_flux(bllac, 6.0, float("nan"))
    with pytest.raises(ValueError, match="outside must be"):
        host_flux(bllac, 6.0, 4.0, outside="nearest")


# --- the correction ------------------------------------------------------------------------

HOST = HostFlux(1.22, 0.03, "R", "test", 6.0, 4.0)


def test_correction_against_a_hand_computation():
    """R = 13.00 +- 0.02, p = 10.0 +- 0.5 %, host 1.22 +- 0.03 mJy, worked by hand.

    F_obs  = 3.080e6 mJy * 10**(-5.2) = 19.43349 mJy
    dF_obs = F_obs * 0.4 ln 10 * 0.02 = 0.357978 mJy
    F_corr = 19.43349 - 1.22 = 18.21349 mJy, dF_corr = hypot(0.357978, 0.03) = 0.359233
    R_corr = 13 - 2.5 log10(18.21349 / 19.43349) = 13 + 2.5 * 0.0281576 = 13.07039
    dR     = 0.359233 / (18.21349 * 0.921034) = 0.021414
    p_corr = 0.10 * 19.43349 / 18.21349 = 0.1066983
    dp     = hypot(1.066983 * 0.005, 0.1 * 1.22 / 18.21349**2 * 0.357978,
                   0.1 * 19.43349 / 18.21349**2 * 0.03) = 0.0053394
    """
    result = correct(13.0, 0.02, 0.10, 0.005, HOST, band="R")
    assert result.applied and result.reason == ""
    assert result.flux_obs_mjy == pytest.approx(19.43349, abs=1e-5)
    assert result.flux_obs_err_mjy == pytest.approx(0.357978, abs=1e-6)
    assert result.flux_corr_mjy == pytest.approx(18.21349, abs=1e-5)
    assert result.flux_corr_err_mjy == pytest.approx(0.359233, abs=1e-6)
    assert result.mag == pytest.approx(13.07039, abs=1e-5)
    assert result.mag_err == pytest.approx(0.021414, abs=1e-6)
    assert result.p == pytest.approx(0.1066983, abs=1e-7)
    assert result.p_err == pytest.approx(0.0053394, abs=1e-7)


def test_error_propagation_matches_numerical_derivatives():
    """The analytic errors equal a finite-difference propagation in (R, p, F_host)."""
    mag, mag_err, p, p_err = 14.2, 0.05, 0.08, 0.01
    host = HostFlux(4.0, 0.4, "R", "test", 6.0, 4.0)

    def values(m, pp, fh):
        f_obs = NILSSON2007_R_ZERO_POINT_MJY * 10 ** (-0.4 * m)
        f_corr = f_obs - fh
        return -2.5 * math.log10(f_corr / NILSSON2007_R_ZERO_POINT_MJY), pp * f_obs / f_corr

    base = (mag, p, host.flux_mjy)
    sigmas = (mag_err, p_err, host.err_mjy)
    var_m = var_p = 0.0
    for k, sigma in enumerate(sigmas):
        h = 1e-6
        up = list(base)
        down = list(base)
        up[k] += h
        down[k] -= h
        dm = (values(*up)[0] - values(*down)[0]) / (2 * h)
        dp = (values(*up)[1] - values(*down)[1]) / (2 * h)
        var_m += (dm * sigma) ** 2
        var_p += (dp * sigma) ** 2
    result = correct(mag, mag_err, p, p_err, host, band="R")
    assert result.mag == pytest.approx(values(*base)[0])
    assert result.p == pytest.approx(values(*base)[1])
    assert result.mag_err == pytest.approx(math.sqrt(var_m), rel=1e-5)
    assert result.p_err == pytest.approx(math.sqrt(var_p), rel=1e-5)


def test_photometry_only_and_unknown_errors():
    result = correct(13.0, 0.02, None, None, HOST, band="R")
    assert result.applied and result.p is None and result.p_err is None
    assert result.mag == pytest.approx(13.07039, abs=1e-5)
    no_err = correct(13.0, None, 0.1, None, HOST, band="R")
    assert no_err.applied and no_err.p_err is None
    assert no_err.mag_err == pytest.approx(0.03 / (18.21349 * 0.4 * math.log(10)), rel=1e-4)
    assert "magnitude error unknown" in no_err.notes[0]


def test_refusals_give_a_reason_and_no_numbers():
    other_band = correct(13.0, 0.02, 0.1, 0.005, HOST, band="V")
    assert not other_band.applied
    assert "R band only" in other_band.reason and "this result is V" in other_band.reason
    assert other_band.mag is None and other_band.p is None
    no_mag = correct(None, None, 0.1, 0.005, HOST, band="R")
    assert not no_mag.applied and "no magnitude" in no_mag.reason
    # R = 19 gives 3.080e6 * 10**-7.6 = 0.0774 mJy, far below the 1.22 mJy host
    faint = correct(19.0, 0.1, 0.1, 0.01, HOST, band="R")
    assert not faint.applied
    assert "host flux 1.22 mJy is not below the observed flux 0.0774 mJy" in faint.reason
    assert faint.mag is None and faint.p is None
    # exactly equal fluxes leave nothing: refused, not a division by zero
    equal = HostFlux(mag_to_mjy(15.0), 0.0, "R", "test", 6.0, 4.0)
    assert not correct(15.0, 0.01, 0.1, 0.01, equal, band="R").applied
    v_table = HostFlux(1.0, 0.1, "V", "test", 6.0, 4.0)
    assert "host table is for band V" in correct(13.0, 0.02, None, None, v_table, band="R").reason


def test_end_to_end_from_the_catalog(bllac):
    """BL Lac at R = 13.5 in a 6 arcsec aperture, 4 arcsec seeing: the host is 10 % of the flux."""
    host = host_flux(bllac, 6.0, 4.0)
    result = correct(13.5, 0.03, 0.12, 0.004, host, band="R")
    f_obs = 3080e3 * 10 ** (-0.4 * 13.5)
    assert result.flux_host_mjy == pytest.approx(1.22)
    assert result.p == pytest.approx(0.12 * f_obs / (f_obs - 1.22))
    assert result.mag > 13.5 and result.p > 0.12


# --- catalog.toml: [source.host] checks ------------------------------------------------------

BLAZAR = """[[source]]
name = "B1"
type = "blazar"
ra = "01:00:00"
dec = "+10:00:00"

[source.host]
reference = "Test table"
band = "R"
aperture_arcsec = [2.0, 4.0, 6.0]
seeing_arcsec = [1.0, 3.0]
flux_mjy = [
    [0.5, 0.6],
    [1.0, 1.1],
    [1.5, 1.6],
]
flux_err_mjy = [[0.1, 0.1], [0.1, 0.1], [0.2, 0.2]]
"""


def test_host_table_is_loaded(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(BLAZAR)
    table = load_catalog(path).get("B1").host
    assert table.line == 7
    assert table.aperture_arcsec == (2.0, 4.0, 6.0)
    assert table.flux_mjy[2] == (1.5, 1.6)
    assert tuple(host_flux(table, 3.0, 2.0)) == pytest.approx((0.8, 0.1))


def test_one_dimensional_table_in_the_catalog(tmp_path):
    path = tmp_path / "catalog.toml"
    text = BLAZAR.split("seeing_arcsec")[0] + "flux_mjy = [0.5, 1.0, 1.5]\n"
    path.write_text(text)
    table = load_catalog(path).get("B1").host
    assert not table.two_dimensional and table.flux_err_mjy is None
    assert host_flux(table, 5.0).flux_mjy == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("old", "new", "line", "expected"),
    [
        (
            "aperture_arcsec = [2.0, 4.0, 6.0]",
            "aperture_arcsec = [2.0, 6.0, 4.0]",
            10,
            "source[0].host.aperture_arcsec: must be strictly increasing: element 3 (4) follows 6",
        ),
        (
            "seeing_arcsec = [1.0, 3.0]",
            "seeing_arcsec = [1.0, 1.0]",
            11,
            "source[0].host.seeing_arcsec: must be strictly increasing",
        ),
        (
            "aperture_arcsec = [2.0, 4.0, 6.0]",
            "aperture_arcsec = [0.0, 4.0, 6.0]",
            10,
            "values must be positive (arcsec)",
        ),
        (
            "    [1.5, 1.6],\n",
            "",
            12,
            "source[0].host.flux_mjy: must have 3 rows, one per aperture_arcsec value, "
            "each of 2 numbers, one per seeing_arcsec value (got 2 rows)",
        ),
        (
            "    [1.0, 1.1],",
            "    [1.0, 1.1, 1.2],",
            12,
            "row 2 (aperture 4 arcsec) must have 2 numbers, one per seeing_arcsec value (got 3",
        ),
        (
            "    [1.0, 1.1],",
            "    [1.0, -1.1],",
            12,
            "source[0].host.flux_mjy: row 2 (aperture 4 arcsec), column 2 (seeing 3 arcsec) "
            "is negative (-1.1 mJy)",
        ),
        (
            "    [1.0, 1.1],",
            '    [1.0, "x"],',
            12,
            "column 2 (seeing 3 arcsec) must be a number, got 'x'",
        ),
        (
            "[0.2, 0.2]]",
            "[0.2, -0.2]]",
            17,
            "source[0].host.flux_err_mjy: row 3 (aperture 6 arcsec), column 2 (seeing 3 arcsec) "
            "is negative",
        ),
        (
            "[0.2, 0.2]]",
            "[0.2]]",
            17,
            "source[0].host.flux_err_mjy: row 3 (aperture 6 arcsec) must have 2 numbers",
        ),
        ('band = "R"', 'band = "r"', 9, "source[0].host.band: unknown band; one of U, B, V, R, I"),
        ('band = "R"', 'band = "R"\nunits = "mJy"', 10, "source[0].host.units: unknown key"),
        (
            'reference = "Test table"\n',
            "",
            7,
            "source[0].host: host table is missing required key 'reference'",
        ),
        ('type = "blazar"', 'type = "star"', 7, "a host-galaxy table belongs to a blazar, not"),
        (
            "seeing_arcsec = [1.0, 3.0]\n",
            "",
            11,
            "source[0].host.flux_mjy: element 1 (aperture 2 arcsec) must be a number",
        ),
    ],
)
def test_host_table_errors_name_key_and_line(tmp_path, old, new, line, expected):
    assert old in BLAZAR
    path = tmp_path / "catalog.toml"
    path.write_text(BLAZAR.replace(old, new, 1))
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert caught.value.line == line, str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert expected in str(caught.value)


def test_one_dimensional_length_mismatch(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(BLAZAR.split("seeing_arcsec")[0] + "flux_mjy = [0.5, 1.0]\n")
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert caught.value.line == 11
    assert "must be an array of 3 numbers, one per aperture_arcsec value (got 2)" in str(
        caught.value
    )
