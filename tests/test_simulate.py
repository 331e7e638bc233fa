"""The simulator: headers by each instrument's rules, truth against pixels, determinism, faults.

Header expectations are written here from reference/iop4.md §3-4 independently
of the simulator's code; polarization is recovered from the pixels with the IOP4
paper's formulas (seed 004 Eqs. 2-7, 11-15, 16-20).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time
from photutils.aperture import ApertureStats, CircularAnnulus, CircularAperture

from iopreport.simulate import simulate_night
from iopreport.simulate.faults import FAULTS

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2022, 9, 8)


@pytest.fixture(scope="module")
def tiny_night(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate_night(out, NIGHT, preset="tiny", seed=7)
    return out


def truth_of(folder: Path) -> dict:
    return json.loads((folder / "truth.json").read_text())


def night_folders(out: Path) -> dict[str, Path]:
    return {
        "OSN-T090": out / "OSN-T090" / "20220908",
        "OSN-T150": out / "OSN-T150" / "20220908",
        "CAHA-T220": out / "CAHA-T220" / "220908_CAFOS",
    }


# ---------------------------------------------------------------- layout and headers


def test_archive_layout_and_file_names(tiny_night):
    folders = night_folders(tiny_night)
    for telescope, folder in folders.items():
        assert folder.is_dir(), telescope
        truth = truth_of(folder)
        assert truth["telescope"] == telescope and truth["night"] == "2022-09-08"
        names = [p.name for p in folder.iterdir() if p.name != "truth.json"]
        assert set(names) == set(truth["files"])
        for name in names:
            assert re.search(r"\.fi?ts?$", name), name  # the archives' FITS extensions
            assert " " not in name
    osn = [p.name for p in folders["OSN-T090"].iterdir()]
    assert any(re.fullmatch(r"Bias-\d{4}\.fit", n) for n in osn)
    assert any(re.fullmatch(r"Flat-\d{4}R\.fit", n) for n in osn)
    assert any(re.fullmatch(r"BLLac-\d{4}R(0|45|90|_45|-45|\+45)\.fit", n) for n in osn)
    assert any(re.fullmatch(r"BLLAC_R_IAR-\d{4}\.fts", n) for n in osn)
    caha = [p.name for p in folders["CAHA-T220"].iterdir()]
    assert all(
        re.fullmatch(r"caf-20220908-\d\d:\d\d:\d\d-(sci|fla|bia)-agui\.fits", n)
        for n in caha
        if n != "truth.json"
    )


def osn_angle(filter_value: str) -> float | None:
    """Polarizer angle from FILTER by reference/iop4.md §4.2."""
    table = {"R_45": -45.0, "R-45": -45.0, "R0": 0.0, "R45": 45.0, "R+45": 45.0, "R90": 90.0}
    if filter_value in ("R", "R Johnson"):
        return None
    return table[filter_value]


def cafos_band(insflnam: str) -> str:
    match = re.fullmatch(r"(Bessell|John |Cous |Cousins|Johnson)([UBVRI])", insflnam)
    assert match, insflnam
    return match.group(2)


def test_osn_ccd_headers_follow_the_reference_rules(tiny_night):
    for telescope, instrume, telescop in (
        ("OSN-T090", "AndorT90", "T90-OSN"),
        ("OSN-T150", "Andor", "T150-OSN"),  # short name before 2023-01-11
    ):
        folder = night_folders(tiny_night)[telescope]
        truth = truth_of(folder)
        for name, record in truth["files"].items():
            if record["instrument"] == "DIPOL":
                continue
            header = fits.getheader(folder / name)
            assert header["INSTRUME"] == instrume
            assert header["TELESCOP"] == telescop
            assert (
                header["IMAGETYP"]
                == {"bias": "BIAS", "flat": "FLAT", "light": "LIGHT"}[record["imgtype"]]
            )
            assert header["JD"] == pytest.approx(record["jd_start"], abs=1e-8)
            assert header["EXPTIME"] == pytest.approx(record["exptime"])
            assert header["XBINNING"] == header["YBINNING"] == record["binning"]
            assert f"{header['NAXIS1']}x{header['NAXIS2']}" == "512x512"
            if record["imgtype"] == "bias":
                assert "FILTER" not in header
                continue
            assert header["FILTER"][0] == record["band"]
            angle = osn_angle(header["FILTER"])
            assert angle == record["angle"]
            assert (angle is not None) == (record["obsmode"] == "polarimetry")
            if record["imgtype"] == "light":
                assert header["OBJECT"] == "BLLac"
                assert header["OBJCTRA"] == "22 02 43.29"
                assert header["OBJCTDEC"] == "+42 16 40.0"


def test_all_wheel_filter_spellings_appear(tiny_night):
    folder = night_folders(tiny_night)["OSN-T090"]
    filters = {fits.getheader(path)["FILTER"] for path in folder.glob("Flat-*.fit")}
    assert {"R_45", "R-45", "R0", "R45", "R+45", "R90", "R"} <= filters | {"R"}
    assert {"R-45", "R+45"} <= filters


def test_dipol_headers_follow_the_reference_rules(tiny_night):
    folder = night_folders(tiny_night)["OSN-T090"]
    truth = truth_of(folder)
    seen = set()
    for name, record in truth["files"].items():
        if record["instrument"] != "DIPOL":
            continue
        header = fits.getheader(folder / name)
        assert header["INSTRUME"] == "ASI Camera (1)"
        assert header["TELESCOP"] == ""  # before 2023-10-11 (reference/iop4.md §3)
        imagetyp = header["IMAGETYP"]
        expected = {"bias": "Bias Frame", "dark": "Dark Frame", "flat": "Light Frame"}
        assert imagetyp == expected.get(record["imgtype"], "Light Frame")
        if record["imgtype"] == "flat":
            assert "skyflat" in header["OBJECT"]
        if record["band"]:
            assert {"Red": "R", "Green": "V", "Blue": "B"}[header["FILTER"]] == record["band"]
        if record["imgtype"] == "light":
            notes = header["NOTES"]
            if record["obsmode"] == "polarimetry":
                assert "deg" in notes
                assert float(notes.split()[0]) == record["angle"]
                assert header["NAXIS1"] < 1032
            else:
                assert "deg" not in notes
            assert header["XORGSUBF"] == record["window"]["x0"]
            assert header["YORGSUBF"] == record["window"]["y0"]
            assert header["FLIPSTAT"].strip() in ("", "Flip")
            assert (header["FLIPSTAT"].strip() == "Flip") == record["flip"]
        seen.add(record["imgtype"])
    assert seen == {"bias", "dark", "flat", "light"}
    angles = sorted(
        record["angle"]
        for record in truth["files"].values()
        if record["instrument"] == "DIPOL"
        and record["obsmode"] == "polarimetry"
        and record["imgtype"] == "light"
    )
    assert angles == [22.5 * i for i in range(16)]


def test_cafos_headers_follow_the_reference_rules(tiny_night):
    folder = night_folders(tiny_night)["CAHA-T220"]
    truth = truth_of(folder)
    for name, record in truth["files"].items():
        header = fits.getheader(folder / name)
        assert header["INSTRUME"] == "CAFOS 2.2"
        assert header["TELESCOP"] == "CA-2.2"
        assert (
            header["IMAGETYP"]
            == {"bias": "bias", "flat": "flat", "light": "science"}[record["imgtype"]]
        )
        jd = Time(header["DATE"], format="isot", scale="utc").jd
        assert jd == pytest.approx(record["jd_start"], abs=2e-5)
        if record["imgtype"] == "bias":
            continue
        assert cafos_band(header["INSFLNAM"]) == record["band"]
        if record["obsmode"] == "polarimetry":
            assert header["INSTRMOD"] == "Polarizer" and header["INSPOFPI"] == "Wollaston"
            assert header["INSPOROT"] in (0.0, 22.48, 44.98, 67.48)
            assert header["INSPOROT"] == record["angle"]
        else:
            assert header["INSPOFPI"] == "FREE"
        if record["imgtype"] == "light":
            assert isinstance(header["RA"], float) and isinstance(header["DEC"], float)


@pytest.mark.parametrize(
    ("night", "telescope", "key", "expected"),
    [
        (dt.date(2021, 10, 1), "OSN-T090", "INSTRUME", "RoperT90"),
        (dt.date(2021, 10, 23), "OSN-T090", "INSTRUME", "AndorT90"),
        (dt.date(2023, 1, 10), "OSN-T150", "INSTRUME", "Andor"),
        (dt.date(2023, 1, 11), "OSN-T150", "INSTRUME", "AndorT150"),
    ],
)
def test_dated_instrume_quirks(tmp_path, night, telescope, key, expected):
    (result,) = simulate_night(tmp_path, night, telescopes=(telescope,), preset="tiny", seed=1)
    bias = next(p for p in result.files if p.name.startswith("Bias"))
    assert fits.getheader(bias)[key] == expected


def test_dipol_late_headers(tmp_path):
    (result,) = simulate_night(
        tmp_path, dt.date(2025, 2, 1), telescopes=("OSN-T090",), preset="tiny", seed=1
    )
    truth = result.truth
    light = next(
        name
        for name, r in truth["files"].items()
        if r["instrument"] == "DIPOL" and r["imgtype"] == "light"
    )
    header = fits.getheader(result.folder / light)
    assert header["TELESCOP"] == "T90-OSN"
    assert "TELRA" in header and "TELDEC" in header


# ---------------------------------------------------------------- truth against pixels


@functools.lru_cache(maxsize=32)
def masters(folder: Path, instrument: str, binning: int, band: str, angle: float | None):
    """Master bias, dark rate and normalised flat made from the night's own frames (full frame)."""
    truth = truth_of(folder)
    same = [
        (n, r)
        for n, r in truth["files"].items()
        if r["instrument"] == instrument and r["binning"] == binning and not r["faults"]
    ]

    def load(n):
        return fits.getdata(folder / n).astype(float)

    bias = np.median([load(n) for n, r in same if r["imgtype"] == "bias"], axis=0)
    darks = [(load(n) - bias) / r["exptime"] for n, r in same if r["imgtype"] == "dark"]
    dark_rate = np.median(darks, axis=0) if darks else np.zeros_like(bias)
    flats = [
        n for n, r in same if r["imgtype"] == "flat" and r["band"] == band and r["angle"] == angle
    ]
    if not flats:  # DIPOL flats carry no angle; CAFOS may lack flats at an angle
        flats = [n for n, r in same if r["imgtype"] == "flat" and r["band"] == band]
    normalised = []
    for n in flats:
        frame = load(n) - bias
        normalised.append(frame / np.median(frame))
    return bias, dark_rate, np.median(normalised, axis=0)


def calibrated(folder: Path, truth: dict, name: str) -> np.ndarray:
    """(raw - bias - dark_rate t) / flat, with masters cut to the file's window."""
    record = truth["files"][name]
    angle = None if record["instrument"] == "DIPOL" else record["angle"]
    bias, dark_rate, flat = masters(
        folder, record["instrument"], record["binning"], record["band"], angle
    )
    w = record["window"]
    cut = (slice(w["y0"], w["y0"] + w["ny"]), slice(w["x0"], w["x0"] + w["nx"]))
    raw = fits.getdata(folder / name).astype(float)
    return (raw - bias[cut] - dark_rate[cut] * record["exptime"]) / flat[cut]


def aperture_flux(image: np.ndarray, x: float, y: float, radius: float) -> float:
    aperture = CircularAperture((x, y), radius)
    annulus = CircularAnnulus((x, y), radius * 1.6, radius * 2.6)
    background = ApertureStats(image, annulus).median
    return float(ApertureStats(image, aperture).sum - background * aperture.area)


def cosmic_ray_in(record: dict, x: float, y: float, radius: float) -> bool:
    return any(math.hypot(cx - x, cy - y) < radius + 1 for cx, cy, _ in record["cosmic_ray_pixels"])


def beam_fluxes(folder: Path, truth: dict, name: str) -> tuple[list[float], list[float]]:
    """Measured and true electrons in each beam of the file's target.

    A beam hit by a cosmic ray inside the aperture (the truth lists every hit
    pixel) is returned as NaN: no cleaning happens here.
    """
    record = truth["files"][name]
    image = calibrated(folder, truth, name)
    gain = {"AndorT90": 4.5, "AndorT150": 4.5, "CAFOS": 1.45, "DIPOL": 1.0}[record["instrument"]]
    scale = {"AndorT90": 0.387, "AndorT150": 0.232, "CAFOS": 0.53, "DIPOL": 0.067}[
        record["instrument"]
    ] * record["binning"]
    radius = 3.0 * record["seeing_fwhm_arcsec"] / scale
    target = next(t for t in record["targets"] if t["name"] == record["target"])
    measured = [
        math.nan
        if cosmic_ray_in(record, b["x"], b["y"], radius)
        else aperture_flux(image, b["x"], b["y"], radius) * gain
        for b in target["beams"]
    ]
    assert all(b["peak_adu"] < 60000 for b in target["beams"]), f"{name}: target saturated"
    expected = [b["flux_e"] for b in target["beams"]]
    return measured, expected


def test_beam_fluxes_match_truth(tiny_night):
    """Aperture sums of each beam (and so O+E) match the truth within noise and aperture loss."""
    checked = 0
    for folder in night_folders(tiny_night).values():
        truth = truth_of(folder)
        for name, record in truth["files"].items():
            if record["imgtype"] != "light" or record["faults"]:
                continue
            measured, expected = beam_fluxes(folder, truth, name)
            if any(math.isnan(m) for m in measured):
                continue
            # a 3 FWHM radius holds ~97% of a beta=3 Moffat profile
            assert sum(measured) == pytest.approx(0.975 * sum(expected), rel=0.04), name
            checked += 1
    assert checked > 25


def instrument_correction(truth: dict, instrument: str, q_raw: float, u_raw: float):
    """Seed 004 Eqs. 4-7 / 19-20 then the zero-angle rotation (sign as in the IOP4 code)."""
    entry = truth["instrumental_polarization"][instrument]
    q_c, u_c = q_raw - entry["q_inst"], u_raw - entry["u_inst"]
    two = math.radians(2 * entry["zero_angle_deg"])
    return q_c * math.cos(two) - u_c * math.sin(two), q_c * math.sin(two) + u_c * math.cos(two)


def test_polarizer_wheel_sequence_recovers_q_u(tiny_night):
    for telescope in ("OSN-T090", "OSN-T150"):
        folder = night_folders(tiny_night)[telescope]
        truth = truth_of(folder)
        sequence = next(s for s in truth["polarimetry"] if s["instrument"] != "DIPOL")
        flux = {}
        for name, angle in zip(sequence["members"], sequence["angles"], strict=True):
            measured, _ = beam_fluxes(folder, truth, name)
            flux[angle] = measured[0]
        q_raw = (flux[0.0] - flux[90.0]) / (flux[0.0] + flux[90.0])  # Eq. 2
        u_raw = (flux[45.0] - flux[-45.0]) / (flux[45.0] + flux[-45.0])  # Eq. 3
        q, u = instrument_correction(truth, sequence["instrument"], q_raw, u_raw)
        assert q == pytest.approx(sequence["q"], abs=0.006), telescope
        assert u == pytest.approx(sequence["u"], abs=0.006), telescope


def test_cafos_sequence_recovers_q_u_by_the_ratio_method(tiny_night):
    folder = night_folders(tiny_night)["CAHA-T220"]
    truth = truth_of(folder)
    for sequence in truth["polarimetry"]:
        ratio = {}
        for name, angle in zip(sequence["members"], sequence["angles"], strict=True):
            (right, left), _ = beam_fluxes(folder, truth, name)
            ratio[round(angle / 22.5)] = left / right  # "+" beam over "-" beam
        r_q = math.sqrt(ratio[0] / ratio[2])  # Eq. 11
        r_u = math.sqrt(ratio[1] / ratio[3])  # Eq. 12
        q_raw, u_raw = (r_q - 1) / (r_q + 1), (r_u - 1) / (r_u + 1)  # Eqs. 13-14
        q, u = instrument_correction(truth, "CAFOS", q_raw, u_raw)
        assert q == pytest.approx(sequence["q"], abs=0.006), sequence["target"]
        assert u == pytest.approx(sequence["u"], abs=0.006), sequence["target"]


def test_dipol_sequence_recovers_q_u_by_eqs_16_to_20(tiny_night):
    folder = night_folders(tiny_night)["OSN-T090"]
    truth = truth_of(folder)
    sequence = next(s for s in truth["polarimetry"] if s["instrument"] == "DIPOL")
    terms = []
    for name, angle in zip(sequence["members"], sequence["angles"], strict=True):
        (right, left), _ = beam_fluxes(folder, truth, name)
        f = (left - right) / (left + right)  # Eq. 18
        i = round(angle / 22.5)
        terms.append((f, math.cos(math.pi / 2 * i), math.sin(math.pi / 2 * i)))
    usable = [t for t in terms if math.isfinite(t[0])]  # a beam hit by a cosmic ray is NaN
    assert len(usable) >= 12
    if len(usable) == len(terms):
        n = len(terms)
        q_raw = 2 / n * sum(f * c for f, c, _ in terms)  # Eq. 16
        u_raw = 2 / n * sum(f * s for f, _, s in terms)  # Eq. 17
    else:  # Eqs. 16-17 need all 16 angles; least squares is their generalisation
        design = np.array([[c, s] for _, c, s in usable])
        values = np.array([f for f, _, _ in usable])
        q_raw, u_raw = np.linalg.lstsq(design, values, rcond=None)[0]
    q, u = instrument_correction(truth, "DIPOL", q_raw, u_raw)
    assert q == pytest.approx(sequence["q"], abs=0.008)
    assert u == pytest.approx(sequence["u"], abs=0.008)


def test_truth_wcs_puts_catalog_calibrators_on_stars(tiny_night):
    """Calibrator BL Lac B, projected with the true WCS, sits on a star in the pixels."""
    from astropy.wcs import WCS

    from iopreport.catalog import load_catalog
    from iopreport.skeleton import skeleton_dir

    star_b = load_catalog(skeleton_dir() / "catalog.toml").get("2200+420 B")
    folder = night_folders(tiny_night)["OSN-T090"]
    truth = truth_of(folder)
    name = next(
        n
        for n, r in truth["files"].items()
        if r["instrument"] == "AndorT90"
        and r["obsmode"] == "photometry"
        and r["imgtype"] == "light"
    )
    wcs = WCS(truth["files"][name]["wcs"])
    x, y = wcs.all_world2pix(star_b.ra_deg, star_b.dec_deg, 0)
    image = calibrated(folder, truth, name)
    cut = image[int(y) - 5 : int(y) + 6, int(x) - 5 : int(x) + 6]
    yy, xx = np.unravel_index(np.argmax(cut), cut.shape)
    assert abs(xx - 5 + int(x) - x) <= 1.5 and abs(yy - 5 + int(y) - y) <= 1.5
    assert cut.max() > 50 * np.std(image[:50, :50])


# ---------------------------------------------------------------- determinism and faults


def digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        simulate_night(out, NIGHT, telescopes=("CAHA-T220",), preset="tiny", seed=seed)
    assert digest(a) == digest(b)
    differing = [k for k, v in digest(a).items() if digest(c).get(k) != v]
    assert len(differing) > 5


def test_every_fault_is_applied_and_recorded(tmp_path):
    (result,) = simulate_night(
        tmp_path, NIGHT, telescopes=("OSN-T090",), preset="small", seed=2, faults=list(FAULTS)
    )
    truth = result.truth
    assert sorted(truth["applied_faults"]) == sorted(FAULTS)
    by_fault = {f["fault"]: f for f in truth["faults"]}
    folder = result.folder

    with pytest.raises(Exception), warnings.catch_warnings():  # noqa: B017 - any error
        warnings.simplefilter("ignore")
        fits.getdata(folder / by_fault["truncated"]["file"])
    header = fits.getheader(folder / by_fault["missing_keywords"]["file"])
    assert "EXPTIME" not in header and "JD" not in header
    assert np.isnan(fits.getdata(folder / by_fault["all_nan"]["file"])).all()
    assert fits.getheader(folder / by_fault["wrong_imagetyp"]["file"])["IMAGETYP"] == "FOCUS"
    assert fits.getheader(folder / by_fault["unknown_instrume"]["file"])["INSTRUME"] == "MysteryCam"
    original = folder / by_fault["duplicate"]["file"]
    copy = original.with_name(original.stem + "_dup" + original.suffix)
    assert copy.read_bytes() == original.read_bytes()
    missing = by_fault["missing_angle"]
    assert not (folder / missing["file"]).exists()
    sequence = next(s for s in truth["polarimetry"] if s["sequence"] == missing["sequence"])
    assert len(sequence["missing_angles"]) == 1 and len(sequence["members"]) == 3
    clouds = truth["files"][by_fault["clouds"]["file"]]
    assert clouds["transparency"] < 0.05
    assert truth["files"][by_fault["trail"]["file"]]["faults"] == ["trail"]


def test_cirrus_varies_transparency_frame_to_frame(tmp_path):
    (result,) = simulate_night(
        tmp_path, NIGHT, telescopes=("OSN-T150",), preset="tiny", seed=5, cirrus=True
    )
    values = [r["transparency"] for r in result.truth["files"].values() if r["imgtype"] == "light"]
    steps = np.abs(np.diff(values))
    assert steps.max() > 0.02 and min(values) > 0.97 * 0.9 - 0.1


def test_cli_simulate(iopreport_exe, tmp_path):
    import subprocess

    done = subprocess.run(
        [
            iopreport_exe,
            "simulate",
            "--out",
            str(tmp_path),
            "--night",
            "2022-09-08",
            "--telescope",
            "T220",
            "--preset",
            "tiny",
            "--fault",
            "clouds",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "truth in" in done.stdout and "fault clouds" in done.stdout
    bad = subprocess.run(
        [iopreport_exe, "simulate", "--out", str(tmp_path), "--night", "2022-13-45"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a date" in bad.stderr
    bad_fault = subprocess.run(
        [
            iopreport_exe,
            "simulate",
            "--out",
            str(tmp_path),
            "--night",
            "2022-09-08",
            "--fault",
            "gremlins",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_fault.returncode == 2 and "unknown fault 'gremlins'" in bad_fault.stderr


def test_pull_statistics_range_holds_for_correct_errors():
    """Unit-normal pulls of a 5-result night fall inside the stated range 95% of the time.

    The MAD width alone (issue 4's figure) lands in 0.8-1.3 for only ~30% of such
    nights, which is why the summary gives the rms and its range too.
    """
    from iopreport.simulate.evaluate import pull_statistics

    rng = np.random.default_rng(20261202)
    stats = [pull_statistics(rng.normal(size=5)) for _ in range(4000)]
    inside = np.mean([s.consistent for s in stats])
    assert 0.93 <= inside <= 0.97, inside
    assert abs(np.mean([s.rms**2 for s in stats]) - 1.0) < 0.05
    mad_ok = np.mean([0.8 <= s.mad_width <= 1.3 for s in stats])
    assert mad_ok < 0.4, mad_ok
    wide = [pull_statistics(2.0 * rng.normal(size=50)) for _ in range(200)]
    assert np.mean([s.consistent for s in wide]) < 0.01


def test_evaluation_summary_gives_pull_rms_and_its_range():
    """OSN-T150, small preset, seed 3: MAD width 2.56 from five pulls; rms 1.93 against
    0.41-1.60 for correct errors (a 1-in-500 night), not a width to judge errors by."""
    from iopreport.simulate.evaluate import Evaluation

    pulls = [0.82, 1.79, -2.42, -2.91, -0.69]
    evaluation = Evaluation(
        mag_errors=[(f"f{i}", 0.001 * p, 0.001, 800.0) for i, p in enumerate(pulls)]
    )
    line = evaluation.summary().splitlines()[-1]
    assert "pull width 2.56" in line
    assert "pull rms 1.93, mean -0.68 (95% range for correct errors with n=5: 0.41-1.60)" in line
