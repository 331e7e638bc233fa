"""Polarization math in one place: means in (q, u), and the site and the summary agree."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from iopreport.mail.content import _mean as summary_mean
from iopreport.site.plots import MAX_POINTS_PER_SERIES, bin_points
from iopreport.stokes import (
    Stokes,
    angle_mean,
    mean_polarization,
    qu_from_p_chi,
    rotate_qu,
    wrap_chi_difference,
)


def test_p_and_chi_round_trip_through_q_u():
    q, u = qu_from_p_chi(0.05, 170.0)
    stokes = Stokes(q, u, 0.001, 0.001)
    assert stokes.p == pytest.approx(0.05)
    assert stokes.chi == pytest.approx(170.0)
    assert Stokes(*rotate_qu(q, u, 20.0), 0.0, 0.0).chi == pytest.approx(10.0)
    assert wrap_chi_difference(175.0 - 5.0) == pytest.approx(-10.0)


def test_mean_in_q_u_is_not_biased_high_like_the_mean_of_p():
    """Averaging p of low-S/N results is biased high; averaging q and u is not."""
    rng = np.random.default_rng(7)
    p_true, chi_true, sigma, n, trials = 0.01, 30.0, 0.01, 10, 400
    q0, u0 = qu_from_p_chi(p_true, chi_true)
    mean_of_p, p_of_mean = [], []
    for _ in range(trials):
        q = q0 + sigma * rng.standard_normal(n)
        u = u0 + sigma * rng.standard_normal(n)
        mean_of_p.append(np.mean(np.hypot(q, u)))
        mean = mean_polarization(list(q), [sigma] * n, list(u), [sigma] * n)
        p_of_mean.append(mean.stokes.p_debiased)
    assert np.mean(mean_of_p) > 1.4 * p_true  # the old summary's estimator
    assert np.mean(p_of_mean) == pytest.approx(p_true, rel=0.1)


def test_mean_polarization_errors_shrink_with_n():
    q, u = qu_from_p_chi(0.04, 60.0)
    one = mean_polarization([q], [0.002], [u], [0.002])
    four = mean_polarization([q] * 4, [0.002] * 4, [u] * 4, [0.002] * 4)
    assert four.p.value == pytest.approx(one.p.value)
    assert four.p.error == pytest.approx(one.p.error / 2)
    assert four.chi.value == pytest.approx(60.0)


def test_angle_mean_wraps_at_180():
    assert angle_mean([179.0, 1.0], [1.0, 1.0]).value == pytest.approx(0.0, abs=1e-9)


def _site_point(mjd: float, q: float, u: float, err: float) -> dict:
    stokes = Stokes(q, u, err, err)
    return {
        "mjd": mjd,
        "instrument": "DIPOL",
        "band": "R",
        "mode": "polarimetry",
        "flagged": False,
        "n_binned": 1,
        "n_frames": 16,
        "mag": 15.0,
        "mag_err": 0.01,
        "q_pct": q * 100,
        "q_pct_err": err * 100,
        "u_pct": u * 100,
        "u_pct_err": err * 100,
        "p_pct": stokes.p * 100,
        "p_pct_err": stokes.p_err * 100,
        "chi_deg": stokes.chi,
        "chi_deg_err": stokes.chi_err,
        "auto_flags": "",
        "manual_flags": "",
        "flag_reasons": "",
        "members": "x",
    }


def test_site_binned_point_and_summary_nightly_mean_agree():
    """The same night's results give the same p and chi on the site and in the summary."""
    rng = np.random.default_rng(3)
    per_night = 4
    nights = MAX_POINTS_PER_SERIES // per_night + 5
    points, by_night = [], {}
    for night in range(nights):
        for k in range(per_night):
            q, u = qu_from_p_chi(0.03 + 0.01 * rng.random(), 100 + 80 * rng.random())
            err = 0.002 + 0.003 * rng.random()
            points.append(_site_point(58000 + night + 0.01 * k, q, u, err))
            by_night.setdefault(night, []).append(
                SimpleNamespace(
                    q=q, q_err=err, u=u, u_err=err, p=math.hypot(q, u), p_err=err, chi=0.0
                )
            )
    binned, width = bin_points(points)
    assert width == 1.0 and len(binned) == nights
    for night, point in enumerate(binned):
        p = summary_mean("p", by_night[night])
        chi = summary_mean("chi", by_night[night])
        assert point["p_pct"] == pytest.approx(p.value * 100, abs=1e-3)
        assert point["p_pct_err"] == pytest.approx(p.error * 100, abs=1e-3)
        assert wrap_chi_difference(point["chi_deg"] - chi.value) == pytest.approx(0, abs=0.01)
