"""Polarimetry methods against Monte Carlo truth (issue 5): seed 004 Eqs. 1-20.

Each test draws many sequences from the forward model of
:mod:`iopreport.simulate.optics` with Poisson noise, runs the method, and
checks bias, the pull distribution (width 0.8-1.3) and the behaviours the
reference gets wrong.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from iopreport.reduce.cycleaverage import hwp_cycle_average, sigma_weights
from iopreport.reduce.hwpfit import hwp_least_squares, hwp_ratio, one_beam_fit
from iopreport.reduce.polarimetry import (
    Instrumental,
    PolarimetryError,
    Stokes,
    beam_difference,
    correct_instrumental,
    transparency_factors,
    wheel_modulation,
    wheel_stokes,
)
from iopreport.reduce.sequences import PolFrame, build_sequences
from iopreport.simulate.optics import (
    polarizer_transmission,
    sky_to_instrument,
    stokes_from_polarization,
    wollaston_beams,
)

WHEEL = np.array([0.0, 45.0, 90.0, -45.0])
DIPOL = np.arange(16) * 22.5
CAFOS = np.array([0.0, 22.48, 44.98, 67.48])
RNG_SEED = 20261202


def poisson(rng, expected):
    return rng.poisson(expected).astype(float), np.sqrt(expected)


def pulls_ok(pulls: np.ndarray) -> None:
    width = float(np.std(pulls))
    assert 0.8 <= width <= 1.3, f"pull width {width:.2f}"
    assert abs(float(np.mean(pulls))) < 0.15, f"pull mean {np.mean(pulls):.2f}"


def test_wheel_recovers_q_u_with_honest_errors():
    rng = np.random.default_rng(RNG_SEED)
    q_true, u_true = stokes_from_polarization(0.08, 35.0)
    pulls_q, pulls_u = [], []
    for _ in range(600):
        expected = 2e5 * polarizer_transmission(q_true, u_true, WHEEL)
        flux, err = poisson(rng, expected)
        s = wheel_stokes(WHEEL, flux, err)
        pulls_q.append((s.q - q_true) / s.q_err)
        pulls_u.append((s.u - u_true) / s.u_err)
    pulls_ok(np.array(pulls_q))
    pulls_ok(np.array(pulls_u))


def test_wheel_error_does_not_depend_on_the_sign_of_q():
    a = wheel_stokes(WHEEL, [110.0, 100.0, 90.0, 100.0], [3.0] * 4)
    b = wheel_stokes(WHEEL, [90.0, 100.0, 110.0, 100.0], [3.0] * 4)
    assert a.q == pytest.approx(-b.q)
    assert a.q_err == pytest.approx(b.q_err)


def test_wheel_missing_angle_fails_with_a_reason():
    with pytest.raises(PolarimetryError, match="lacks angle"):
        wheel_stokes(WHEEL[:3], [1.0, 1.0, 1.0], [0.1] * 3)


def test_comparison_stars_cancel_transparency_changes():
    """Cirrus of up to 10% between the four exposures: raw fluxes give several percent of
    spurious p; normalising by comparison stars (modulated by the instrumental polarization
    only) brings it back within the noise."""
    rng = np.random.default_rng(RNG_SEED + 1)
    q_inst, u_inst = 0.0579, 0.0583
    q_sky, u_sky = stokes_from_polarization(0.03, 120.0)
    q_raw, u_raw = sky_to_instrument(q_sky, u_sky, q_inst=q_inst, u_inst=u_inst, zero_angle_deg=0)
    raw_errors, normalised_pulls = [], []
    for _ in range(300):
        transparency = 1.0 - rng.uniform(0.0, 0.10, size=4)
        target = 3e5 * transparency * polarizer_transmission(q_raw, u_raw, WHEEL)
        stars = np.array(
            [
                f * transparency * polarizer_transmission(q_inst, u_inst, WHEEL)
                for f in (4e5, 2e5, 6e5)
            ]
        )
        t_flux, t_err = poisson(rng, target)
        s_flux, s_err = poisson(rng, stars)
        plain = wheel_stokes(WHEEL, t_flux, t_err)
        raw_errors.append(math.hypot(plain.q - q_raw, plain.u - u_raw))
        norm = transparency_factors(s_flux, s_err, wheel_modulation(q_inst, u_inst, WHEEL))
        assert norm.n_stars == 3
        flux = t_flux / norm.factor
        err = flux * np.hypot(t_err / t_flux, norm.factor_err / norm.factor)
        fixed = wheel_stokes(WHEEL, flux, err)
        normalised_pulls.append((fixed.q - q_raw) / fixed.q_err)
        normalised_pulls.append((fixed.u - u_raw) / fixed.u_err)
    assert np.median(raw_errors) > 0.01  # the reference's raw-flux method: >1% in p
    pulls_ok(np.array(normalised_pulls))


@pytest.mark.parametrize("angles", [DIPOL, CAFOS], ids=["dipol-16", "cafos-4"])
def test_half_wave_plate_fit_and_ratio(angles):
    rng = np.random.default_rng(RNG_SEED + 2)
    q_true, u_true = stokes_from_polarization(0.05, 70.0)
    pulls, ratio_pulls = [], []
    for _ in range(400):
        plus, minus = wollaston_beams(q_true, u_true, angles)
        # the beams transmit differently (1.5%): the fit's offset term absorbs it
        p_flux, p_err = poisson(rng, 1e5 * plus * 1.015)
        m_flux, m_err = poisson(rng, 1e5 * minus)
        value, error = beam_difference(p_flux, p_err, m_flux, m_err)
        fit = hwp_least_squares(angles, value, error, min_points=len(angles) // 2)
        pulls += [(fit.stokes.q - q_true) / fit.stokes.q_err]
        pulls += [(fit.stokes.u - u_true) / fit.stokes.u_err]
        if len(angles) == 4:
            r = hwp_ratio(angles, p_flux, p_err, m_flux, m_err)
            ratio_pulls += [(r.q - q_true) / r.q_err, (r.u - u_true) / r.u_err]
    pulls_ok(np.array(pulls))
    if ratio_pulls:
        pulls_ok(np.array(ratio_pulls))


def test_half_wave_plate_fit_works_with_missing_angles_and_rejects_an_outlier():
    q_true, u_true = 0.04, -0.02
    plus, minus = wollaston_beams(q_true, u_true, DIPOL)
    value, error = beam_difference(1e6 * plus, np.full(16, 1e3), 1e6 * minus, np.full(16, 1e3))
    value = value.copy()
    value[5] += 0.2  # a satellite trail in one beam
    keep = np.ones(16, dtype=bool)
    keep[[2, 9, 13]] = False  # three angles missing
    fit = hwp_least_squares(DIPOL[keep], value[keep], error[keep], clip_sigma=4.0, min_points=8)
    assert fit.rejected_angles == (DIPOL[5],)
    assert fit.stokes.q == pytest.approx(q_true, abs=3e-4)
    assert fit.stokes.u == pytest.approx(u_true, abs=3e-4)
    with pytest.raises(PolarimetryError, match="usable angle"):
        hwp_least_squares(DIPOL[:2], value[:2], error[:2], min_points=8)


def test_one_beam_fallback_is_unbiased_where_the_reference_shift_is_not():
    """The reference fakes the missing beam by shifting the measured one by one angle step
    (reference/iop4.md §8.3): p/sqrt(2) and chi - 22.5 deg. Ours fits the beam directly."""
    q_true, u_true = 0.05, 0.02
    plus, minus = wollaston_beams(q_true, u_true, DIPOL)
    flux = 1e6 * plus
    err = np.sqrt(flux)
    ours = one_beam_fit(DIPOL, flux, err, sign=+1.0)
    assert ours.stokes.q == pytest.approx(q_true, abs=5e-4)
    assert ours.stokes.u == pytest.approx(u_true, abs=5e-4)
    other = one_beam_fit(DIPOL, 1e6 * minus, np.sqrt(1e6 * minus), sign=-1.0)
    assert other.stokes.p == pytest.approx(math.hypot(q_true, u_true), abs=5e-4)
    # the reference's one-step shift, computed here for contrast
    fake_minus = np.roll(flux, 1)
    value, error = beam_difference(flux, err, fake_minus, np.sqrt(fake_minus))
    shifted = hwp_least_squares(DIPOL, value, error, with_offset=False).stokes
    true = Stokes(q_true, u_true, 0, 0)
    assert shifted.p == pytest.approx(true.p / math.sqrt(2), rel=0.02)
    assert (shifted.chi - true.chi + 90) % 180 - 90 == pytest.approx(-22.5, abs=0.5)


def test_one_beam_pulls():
    rng = np.random.default_rng(RNG_SEED + 3)
    q_true, u_true = stokes_from_polarization(0.06, 10.0)
    pulls = []
    for _ in range(300):
        plus, _ = wollaston_beams(q_true, u_true, DIPOL)
        flux, err = poisson(rng, 2e5 * plus)
        fit = one_beam_fit(DIPOL, flux, err, sign=+1.0)
        pulls += [(fit.stokes.q - q_true) / fit.stokes.q_err]
        pulls += [(fit.stokes.u - u_true) / fit.stokes.u_err]
    pulls_ok(np.array(pulls))


def test_instrumental_correction_inverts_the_forward_model():
    inst = Instrumental(0.0579, 0.003, 0.0583, 0.0023, -18.0, 0.5)
    q, u = stokes_from_polarization(0.07, 100.0)
    q_raw, u_raw = sky_to_instrument(q, u, q_inst=0.0579, u_inst=0.0583, zero_angle_deg=-18.0)
    corrected = correct_instrumental(Stokes(float(q_raw), float(u_raw), 0.001, 0.001), inst)
    assert corrected.stokes.p == pytest.approx(0.07, abs=1e-9)
    assert corrected.stokes.chi == pytest.approx(100.0, abs=1e-7)
    assert corrected.stokes.q_err == pytest.approx(0.001)  # statistical only
    assert corrected.p_sys_err == pytest.approx(0.0026, abs=0.0005)
    assert corrected.chi_sys_err > 0.5


def test_debiased_p_removes_the_ricean_bias():
    rng = np.random.default_rng(RNG_SEED + 4)
    sigma = 0.01
    for p_true in (0.0, 0.02, 0.05):
        q = p_true + rng.normal(0, sigma, 20000)
        u = rng.normal(0, sigma, 20000)
        measured = np.array([Stokes(a, b, sigma, sigma).p for a, b in zip(q, u, strict=True)])
        debiased = np.array(
            [Stokes(a, b, sigma, sigma).p_debiased for a, b in zip(q, u, strict=True)]
        )
        assert np.all(debiased >= 0)
        if p_true >= 0.02:  # MAS is nearly unbiased from p/sigma = 2
            assert abs(np.mean(debiased) - p_true) < 0.25 * abs(np.mean(measured) - p_true)
        else:
            assert np.mean(debiased) < 0.85 * np.mean(measured)  # MAS keeps some bias at 0


def test_sequences_split_by_gap_and_repeated_angle_never_across_a_missing_one():
    def frame(name, minute, angle, target="BL Lac"):
        return PolFrame(
            f"T/N/{name}", target, "AndorT90", "R", 60.0, angle, 2460000.5 + minute / 1440
        )

    frames = [
        frame("a1", 0, 0.0),
        frame("a2", 1.5, 45.0),
        frame("a4", 4.5, -45.0),  # the 90 of the first sequence is missing
        frame("b1", 6.0, 0.0),
        frame("b2", 7.5, 45.0),
        frame("b3", 9.0, 90.0),
        frame("b4", 10.5, -45.0),
        frame("c1", 60.0, 0.0),  # an hour later: a new sequence
        frame("x1", 1.0, 0.0, target="Hiltner 960"),
    ]
    sequences = build_sequences(frames, gap_minutes=10.0)
    names = [[f.fileloc.rsplit("/", 1)[-1] for f in s] for s in sequences]
    assert names == [["a1", "a2", "a4"], ["x1"], ["b1", "b2", "b3", "b4"], ["c1"]]


def test_sigma_weights_full_within_2_sigma_zero_beyond_3():
    weights = sigma_weights(np.array([0.0, -1.9, 2.0, 2.5, -2.75, 3.0, 8.0]))
    assert weights == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.25, 0.0, 0.0])


@pytest.mark.parametrize("outlier", [0.0, 0.02, 0.1], ids=["clean", "7-sigma", "wild"])
@pytest.mark.parametrize("method", ["cycles", "fit"])
def test_dipol_cycle_average_and_fit_with_outliers(method, outlier):
    """Both DIPOL averages: honest errors and no bias, with one bad frame in 16 or none."""
    rng = np.random.default_rng(RNG_SEED + 7)
    q_true, u_true = stokes_from_polarization(0.05, 70.0)
    pulls, rejected = [], 0
    for _ in range(300):
        plus, minus = wollaston_beams(q_true, u_true, DIPOL)
        p_flux, p_err = poisson(rng, 1e5 * plus * 1.015)
        m_flux, m_err = poisson(rng, 1e5 * minus)
        value, error = beam_difference(p_flux, p_err, m_flux, m_err)
        if outlier:
            value[rng.integers(len(value))] += outlier * rng.choice([-1.0, 1.0])
        if method == "cycles":
            fit = hwp_cycle_average(DIPOL, value, error)
        else:
            fit = hwp_least_squares(DIPOL, value, error, clip_sigma=4.0, min_points=8)
        rejected += bool(fit.rejected_angles)
        pulls += [(fit.stokes.q - q_true) / fit.stokes.q_err]
        pulls += [(fit.stokes.u - u_true) / fit.stokes.u_err]
    pulls_ok(np.array(pulls))
    if outlier >= 0.1:
        assert rejected >= 0.95 * 300  # a wild frame is always left out


def test_cycle_average_needs_three_complete_cycles():
    value = np.zeros(8)
    with pytest.raises(PolarimetryError, match="complete 4-position cycle"):
        hwp_cycle_average(DIPOL[:8], value, np.full(8, 0.001))
