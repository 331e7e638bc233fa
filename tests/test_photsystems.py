"""SDSS (Lupton 2005) and PS1 (Tonry et al. 2012) to Johnson-Cousins; catalog sdss/ps1 keys."""

from __future__ import annotations

import math
import re

import pytest

from iopreport.catalog import load_catalog, sync_catalog
from iopreport.errors import InputError
from iopreport.photsystems import (
    LUPTON2005_SDSS_TO_JC,
    TONRY2012_PS1_TO_JC,
    apply,
    to_johnson,
)
from iopreport.store import AstroSource

# --- Lupton (2005) ---------------------------------------------------------------------------


def test_lupton_hand_computation():
    """g = 15.00, r = 14.50, i = 14.30 (g - r = 0.50, r - i = 0.20), by hand from the relations."""
    out = to_johnson("sdss", {"g": (15.0, None), "r": (14.5, None), "i": (14.3, None)})
    assert out["B"].value == pytest.approx(15.0 + 0.3130 * 0.5 + 0.2271)  # 15.3836
    assert out["V"].value == pytest.approx(15.0 - 0.5784 * 0.5 - 0.0038)  # 14.7070
    assert out["R"].value == pytest.approx(14.5 - 0.2936 * 0.2 - 0.1439)  # 14.29738
    assert out["I"].value == pytest.approx(14.5 - 1.2444 * 0.2 - 0.3820)  # 13.86912
    # no input errors: the error is the published scatter alone
    assert [out[b].err for b in "BVRI"] == pytest.approx([0.0107, 0.0054, 0.0072, 0.0078])
    assert "input errors unknown" in out["B"].note


def test_lupton_relations_equal_the_published_block(shared_dir):
    """Each relation we use is one of the Lupton (2005) block and gives what it gives."""
    text = (shared_dir / "reference/catalogs/lupton2005_sdss_to_johnson.txt").read_text()
    pattern = re.compile(
        r"^\s*([BVRI]) = ([gr]) ([+-]) ([\d.]+)\*\(([gri]) - ([gri])\)\s*([+-])\s*([\d.]+);"
        r"\s*sigma = ([\d.]+)",
        re.MULTILINE,
    )
    published = {}
    for band, base, s1, a, c1, c2, s0, b, sigma in pattern.findall(text):
        slope = float(a) * (1 if s1 == "+" else -1)
        offset = float(b) * (1 if s0 == "+" else -1)
        published[(band, base, (c1, c2))] = (slope, offset, float(sigma))
    assert len(published) == 5  # the block's relations without u or z
    mags = {"g": (16.3, 0.0), "r": (15.4, 0.0), "i": (15.05, 0.0)}
    checked = 0
    for band, relation in LUPTON2005_SDSS_TO_JC.items():
        slope, offset, sigma = published[(band, relation.base, relation.colour)]
        c1, c2 = relation.colour
        expected = mags[relation.base][0] + slope * (mags[c1][0] - mags[c2][0]) + offset
        assert apply(relation, mags).value == pytest.approx(expected, abs=1e-12), band
        assert relation.scatter == sigma
        checked += 1
    assert checked == 4


def sigma_from(coefficients, sigmas, scatter):
    return math.sqrt(
        sum((c * s) ** 2 for c, s in zip(coefficients, sigmas, strict=True)) + scatter**2
    )


@pytest.mark.parametrize(
    ("name", "g", "g_r", "r_i", "sigmas", "johnson"),
    [
        # SDSS page "Estimates for the ugriz colors of Vega and the Sun": for the Sun
        # M(g) = +5.12, g-r = +0.44, r-i = +0.11 (each +-0.02), from M(V) = +4.82,
        # B-V = +0.650, V-Rc = +0.36, Rc-Ic = +0.32.
        ("Sun", 5.12, 0.44, 0.11, (0.02, 0.02, 0.02), {"B": 5.47, "V": 4.82, "R": 4.46, "I": 4.14}),
        # Vega: g = -0.08 (+-0.03), g-r = -0.25 (+-0.03), r-i = -0.23 (+-0.02), from V = +0.03
        # and all Johnson-Cousins colours 0.
        ("Vega", -0.08, -0.25, -0.23, (0.03, 0.03, 0.02), dict.fromkeys("BVRI", 0.03)),
    ],
)
def test_lupton_against_published_sun_and_vega(name, g, g_r, r_i, sigmas, johnson):
    """Published ugriz of the Sun and Vega go back to their Johnson-Cousins values.

    The SDSS page derived those ugriz with other transformations (Bilir et al. 2005,
    Rodgers et al. 2006) and quotes their uncertainty, so agreement is required within
    twice that uncertainty propagated through the relation (plus the Lupton scatter).
    """
    r = g - g_r
    i = r - r_i
    out = to_johnson("sdss", {"g": (g, None), "r": (r, None), "i": (i, None)})
    # each band as a linear combination of (g, g-r, r-i)
    weights = {
        "B": (1.0, 0.3130, 0.0),
        "V": (1.0, -0.5784, 0.0),
        "R": (1.0, -1.0, -0.2936),
        "I": (1.0, -1.0, -1.2444),
    }
    for band, value in johnson.items():
        tolerance = 2 * sigma_from(weights[band], sigmas, LUPTON2005_SDSS_TO_JC[band].scatter)
        assert abs(out[band].value - value) < tolerance, (name, band, out[band].value, value)


def test_lupton_error_propagation():
    """B = g + 0.3130 (g - r) + c: dB/dg = 1.3130, dB/dr = -0.3130, plus the 0.0107 scatter."""
    out = to_johnson("sdss", {"g": (15.0, 0.02), "r": (14.5, 0.03), "i": (14.3, 0.04)})
    assert out["B"].err == pytest.approx(
        math.sqrt((1.313 * 0.02) ** 2 + (0.313 * 0.03) ** 2 + 0.0107**2)
    )
    assert out["I"].err == pytest.approx(
        math.sqrt((-0.2444 * 0.03) ** 2 + (1.2444 * 0.04) ** 2 + 0.0078**2)
    )
    assert "input errors unknown" not in out["B"].note
    assert out["B"].note.startswith("derived from SDSS g, r: B = g + 0.2271 + 0.313*(g - r)")


def test_missing_inputs_leave_bands_out():
    out = to_johnson("sdss", {"g": (15.0, 0.02), "r": (14.5, 0.02)})
    assert set(out) == {"B", "V"}
    assert to_johnson("sdss", {"r": (14.5, 0.02), "i": (14.3, 0.02)}).keys() == {"R", "I"}
    with pytest.raises(ValueError, match="unknown photometric system"):
        to_johnson("gaia", {})


# --- Tonry et al. (2012), PS1 ----------------------------------------------------------------


def test_tonry_hand_computation():
    """g = 15.00, r = 14.40, i = 14.20: x = (g - r) = 0.60, Table 6 quadratic fits by hand."""
    out = to_johnson("ps1", {"g": (15.0, 0.02), "r": (14.4, 0.02), "i": (14.2, 0.02)})
    x = 0.6
    assert out["B"].value == pytest.approx(15.0 + 0.212 + 0.556 * x + 0.034 * x * x)  # 15.55784
    assert out["V"].value == pytest.approx(14.4 + 0.005 + 0.462 * x + 0.013 * x * x)  # 14.68688
    assert out["R"].value == pytest.approx(14.4 - 0.137 - 0.108 * x - 0.029 * x * x)  # 14.18176
    assert out["I"].value == pytest.approx(14.2 - 0.366 - 0.136 * x - 0.018 * x * x)  # 13.75592
    # V = r + f(g - r), f' = 0.462 + 2 * 0.013 * 0.6 = 0.4776: dV/dg = 0.4776, dV/dr = 0.5224
    assert out["V"].err == pytest.approx(
        math.sqrt((0.4776 * 0.02) ** 2 + (0.5224 * 0.02) ** 2 + 0.012**2)
    )
    assert "Tonry et al. 2012" in out["V"].note and "derived from PS1 g, r" in out["V"].note
    assert TONRY2012_PS1_TO_JC["I"].inputs == ("g", "r", "i")


def test_ps1_is_not_treated_as_sdss():
    """The same numbers as SDSS and as PS1 give different B (what IOP4 got wrong)."""
    mags = {"g": (15.0, None), "r": (14.4, None), "i": (14.2, None)}
    assert abs(to_johnson("ps1", mags)["B"].value - to_johnson("sdss", mags)["B"].value) > 0.05


# --- catalog.toml sdss / ps1 keys -----------------------------------------------------------

TARGET = """[[source]]
name = "T"
type = "blazar"
ra = "01:00:00"
dec = "+10:00:00"
calibrators = ["S"]

"""

STAR = """[[source]]
name = "S"
type = "calibrator"
ra = "01:00:10"
dec = "+10:01:00"
sdss.g = [15.00, 0.02]
sdss.r = [14.50, 0.02]
sdss.i = [14.30, 0.03]
references = ["SDSS DR-something (test)"]
"""


def load(tmp_path, text):
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return load_catalog(path)


def test_calibrator_given_in_sdss_gets_johnson_magnitudes(tmp_path):
    star = load(tmp_path, TARGET + STAR).get("S")
    assert set(star.mags) == {"B", "V", "R", "I"}
    assert star.mags["B"].value == pytest.approx(15.3836)
    assert star.mags["R"].value == pytest.approx(14.29738)
    assert star.mags["B"].derived.startswith("no literature B in mag.B; derived from SDSS g, r")
    assert "Lupton (2005)" in star.mags["B"].derived
    assert star.derived_mags.keys() == {"B", "V", "R", "I"}
    assert star.sdss["g"].value == 15.0 and star.sdss["i"].err == 0.03


def test_literature_magnitude_wins_over_a_derived_one(tmp_path):
    star = load(tmp_path, TARGET + STAR.replace("sdss.g", "mag.R = [14.40, 0.05]\nsdss.g")).get("S")
    assert star.mags["R"].value == 14.40 and star.mags["R"].derived == ""
    assert star.derived_mags.keys() == {"B", "V", "I"}


def test_ps1_used_when_there_is_no_sdss(tmp_path):
    star = load(tmp_path, TARGET + STAR.replace("sdss.", "ps1.")).get("S")
    assert star.mags["B"].value == pytest.approx(15.0 + 0.212 + 0.556 * 0.5 + 0.034 * 0.25)
    assert "derived from PS1" in star.mags["B"].derived
    both = TARGET + STAR.replace("sdss.g", "ps1.g = [15.1, 0.02]\nps1.r = [14.5, 0.02]\nsdss.g")
    star = load(tmp_path, both).get("S")
    assert "derived from SDSS" in star.mags["B"].derived  # SDSS preferred when both are given


def test_sdss_only_g_gives_no_magnitude_and_the_calibrator_check_says_so(tmp_path):
    text = TARGET + STAR.replace("sdss.r = [14.50, 0.02]\nsdss.i = [14.30, 0.03]\n", "")
    with pytest.raises(InputError, match="calibrator 'S' has no literature magnitude"):
        load(tmp_path, text)


@pytest.mark.parametrize(
    ("old", "new", "line", "expected"),
    [
        ("sdss.g", "sdss.z", 6, "source[0].sdss.z: unknown band; one of g, r, i"),
        ("sdss.g = [15.00, 0.02]", "sdss.g = [15.00]", 6, "must be [value, error]"),
        ("sdss.r = [14.50, 0.02]", "sdss.r = [14.50, 0.0]", 7, "source[0].sdss.r: error 0.0"),
        ("sdss.g = [15.00, 0.02]", "ps1.G = 15.0", 6, "source[0].ps1.G: unknown band"),
        (
            "sdss.g = [15.00, 0.02]\nsdss.r = [14.50, 0.02]\nsdss.i = [14.30, 0.03]",
            'sdss = "gri"',
            6,
            "source[0].sdss: must be a table of bands, e.g. sdss.r = [13.79, 0.05]",
        ),
    ],
)
def test_sdss_ps1_errors_name_key_and_line(tmp_path, old, new, line, expected):
    path = tmp_path / "catalog.toml"
    path.write_text(STAR.replace(old, new))
    with pytest.raises(InputError) as caught:
        load_catalog(path)
    assert caught.value.line == line, str(caught.value)
    assert expected in str(caught.value)


def test_derived_magnitudes_reach_the_store_with_their_reason(tmp_path, store):
    sync_catalog(load(tmp_path, TARGET + STAR))
    row = AstroSource.get(AstroSource.name == "S")
    assert row.mag_B == pytest.approx(15.3836)
    assert row.mag_V_err == pytest.approx(
        math.sqrt((0.4216 * 0.02) ** 2 + (0.5784 * 0.02) ** 2 + 0.0054**2)
    )
    assert row.mag_U is None
    notes = [ref for ref in row.references if ref.startswith("mag.")]
    assert len(notes) == 4 and notes[0].startswith("mag.B: no literature B in mag.B; derived")
