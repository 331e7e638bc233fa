"""Compare a reduced simulated night with its truth: astrometry, magnitudes, pulls.

Used by the tests and by ``benchmarks/bench_reduce.py``; works on any store
that reduced a night written by :func:`iopreport.simulate.simulate_night`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from iopreport.store import Epoch, PhotoPolResult, RawFit, ReducedFit, ReducedFitFlags

#: Central probability of the range :func:`pull_statistics` gives for correct errors.
PULL_RANGE_PROBABILITY = 0.95


@dataclass(frozen=True)
class PullStatistics:
    """How a set of pulls (measured - true) / error compares with unit-normal pulls.

    ``mad_width`` is 1.4826 x the MAD about the median, the figure the reduction's
    acceptance quotes. With the five or so target results of one simulated
    night it says little: for correct errors it falls inside 0.8-1.3 in only
    about 30% of nights (median 0.75, 5-95%: 0.18-1.72). ``rms`` is the root
    mean square about zero (the truth is known, so a bias counts against it),
    and ``low``-``high`` the central 95% range of ``rms`` for ``n`` correct
    (unit-normal) pulls, from the chi-square distribution: a night is
    inconsistent with its errors only when ``rms`` is outside it. Pool the
    pulls of several nights (seeds) to judge a width to +-10%.
    """

    n: int
    rms: float
    mean: float
    mad_width: float
    low: float
    high: float

    @property
    def consistent(self) -> bool:
        """Whether ``rms`` lies inside the range of correct errors."""
        return self.low <= self.rms <= self.high

    def line(self) -> str:
        return (
            f"pull rms {self.rms:.2f}, mean {self.mean:+.2f} "
            f"({100 * PULL_RANGE_PROBABILITY:.0f}% range for correct errors with "
            f"n={self.n}: {self.low:.2f}-{self.high:.2f})"
        )


def pull_statistics(pulls) -> PullStatistics:
    """Width statistics of ``pulls`` and the range correct errors give (see PullStatistics)."""
    from scipy.stats import chi2

    values = np.asarray(list(pulls), dtype=float)
    n = len(values)
    if n == 0:
        return PullStatistics(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    tail = (1.0 - PULL_RANGE_PROBABILITY) / 2.0
    return PullStatistics(
        n=n,
        rms=float(np.sqrt(np.mean(values**2))),
        mean=float(np.mean(values)),
        mad_width=float(1.4826 * np.median(np.abs(values - np.median(values)))),
        low=float(np.sqrt(chi2.ppf(tail, n) / n)),
        high=float(np.sqrt(chi2.ppf(1.0 - tail, n) / n)),
    )


@dataclass
class Evaluation:
    """Accuracy of one reduced night against its truth."""

    frames: int = 0
    eligible: int = 0  # science frames expected to solve (no fault, enough stars)
    solved: int = 0
    failed_eligible: dict[str, str] = field(default_factory=dict)
    faulty_failed: dict[str, str] = field(default_factory=dict)
    wcs_rms_arcsec: list[float] = field(default_factory=list)  # solved from the frame's stars
    #: DIPOL sub-frames placed by the central O/E pair with an assumed rotation
    #: (no solved photometry frame of their target): exact at the target only
    fallback_wcs_arcsec: list[float] = field(default_factory=list)
    mag_errors: list[tuple[str, float, float, float]] = field(
        default_factory=list
    )  # file, err, sigma, snr

    @property
    def astrometry_success(self) -> float:
        return self.solved / self.eligible if self.eligible else math.nan

    def summary(self) -> str:
        errors = np.array([e for _, e, _, _ in self.mag_errors])
        pulls = np.array([e / s for _, e, s, _ in self.mag_errors if s > 0])
        lines = [
            f"astrometry: {self.solved}/{self.eligible} eligible frames solved "
            f"({100 * self.astrometry_success:.1f}%)",
        ]
        if self.wcs_rms_arcsec:
            wcs = np.array(self.wcs_rms_arcsec)
            lines.append(f'WCS error vs truth: median {np.median(wcs):.3f}", max {wcs.max():.3f}"')
        if self.fallback_wcs_arcsec:
            fallback = np.array(self.fallback_wcs_arcsec)
            lines.append(
                f"WCS error of {len(fallback)} central-pair fallback sub-frames (rotation "
                f'assumed): median {np.median(fallback):.3f}", max {fallback.max():.3f}"'
            )
        if len(errors):
            stats = pull_statistics(pulls)
            lines.append(
                f"target magnitudes: {len(errors)} results, median |error| "
                f"{np.median(np.abs(errors)):.4f} mag, max {np.max(np.abs(errors)):.4f}; "
                f"pull width {stats.mad_width:.2f}; {stats.line()}"
            )
        return "\n".join(lines)


def wcs_error_arcsec(solved: WCS, true: WCS, shape: tuple[int, int]) -> float:
    """RMS separation of a 5x5 grid of pixels mapped through both WCS."""
    ny, nx = shape
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    ra1, dec1 = true.all_pix2world(gx, gy, 0)
    ra2, dec2 = solved.all_pix2world(gx, gy, 0)
    d_ra = (ra1 - ra2 + 180.0) % 360.0 - 180.0
    separation = np.hypot(d_ra * np.cos(np.radians(dec1)), dec1 - dec2) * 3600.0
    return float(np.sqrt(np.mean(separation**2)))


def evaluate_night(night_folder: Path, datadir: Path, telescope: str) -> Evaluation:
    """Compare the store's reduction of one simulated night folder with its truth.json."""
    truth = json.loads((night_folder / "truth.json").read_text())
    import datetime as dt

    night = dt.date.fromisoformat(truth["night"])
    epoch = Epoch.get_or_none((Epoch.telescope == telescope) & (Epoch.night == night))
    evaluation = Evaluation()
    if epoch is None:
        return evaluation
    for name, record in truth["files"].items():
        if record["imgtype"] != "light":
            continue
        evaluation.frames += 1
        rawfit = RawFit.get_or_none((RawFit.epoch == epoch) & (RawFit.filename == name))
        reduced = ReducedFit.get_or_none(ReducedFit.rawfit == rawfit) if rawfit else None
        solved = reduced is not None and reduced.flags & ReducedFitFlags.ASTROMETRY_OK
        reason = (
            reduced.error if reduced else (rawfit.error if rawfit else "not registered")
        ) or ""
        if record["faults"]:
            if not solved:
                evaluation.faulty_failed[name] = reason
            continue
        evaluation.eligible += 1
        if not solved:
            evaluation.failed_eligible[name] = reason
            continue
        evaluation.solved += 1
        path = datadir / reduced.filename
        with fits.open(path) as hdul:
            wcs = WCS(hdul[0].header, relax=True)
            shape = hdul[0].data.shape
        error = wcs_error_arcsec(wcs, WCS(record["wcs"]), shape)
        if reduced.astrometry_method == "central-pair":
            evaluation.fallback_wcs_arcsec.append(error)
        else:
            evaluation.wcs_rms_arcsec.append(error)
    for entry in truth["photometry"]:
        if entry["faults"]:
            continue
        rawfit = RawFit.get_or_none((RawFit.epoch == epoch) & (RawFit.filename == entry["file"]))
        if rawfit is None:
            continue
        result = (
            PhotoPolResult.select()
            .where(
                (PhotoPolResult.members_key == PhotoPolResult.make_members_key([rawfit.fileloc]))
                & (PhotoPolResult.method == "relphot")
            )
            .join_from(PhotoPolResult, PhotoPolResult.astrosource.rel_model)
            .where(PhotoPolResult.astrosource.rel_model.name == entry["target"])
            .first()
        )
        if result is None or result.mag is None:
            continue
        snr = result.flux_counts / result.flux_counts_err if result.flux_counts_err else 0.0
        evaluation.mag_errors.append(
            (entry["file"], result.mag - entry["mag"], result.mag_err, snr)
        )
    return evaluation


@dataclass(frozen=True)
class PolarimetryCheck:
    """One simulated polarimetric sequence against its stored result."""

    instrument: str
    target: str
    method: str
    error: str  # why the result failed ("" when computed; "missing" when not stored)
    p: float = math.nan
    p_err: float = math.nan
    p_true: float = math.nan
    chi: float = math.nan
    chi_err: float = math.nan
    chi_true: float = math.nan
    q_pull: float = math.nan
    u_pull: float = math.nan
    mag: float | None = None
    mag_true: float | None = None
    missing_angles: int = 0

    @property
    def chi_diff(self) -> float:
        return (self.chi - self.chi_true + 90.0) % 180.0 - 90.0

    @property
    def within_tolerance(self) -> bool:
        """Issue 5: p within max(2 sigma, 0.3%) and chi within max(2 sigma, 2 deg) of truth."""
        if self.error:
            return False
        p_ok = abs(self.p - self.p_true) <= max(2 * self.p_err, 0.003)
        chi_ok = self.p_true < 0.005 or abs(self.chi_diff) <= max(2 * self.chi_err, 2.0)
        return p_ok and chi_ok

    def line(self) -> str:
        if self.error:
            return f"{self.instrument:9} {self.target:12} failed: {self.error}"
        mag = f"mag {self.mag:.3f} (true {self.mag_true:.3f})" if self.mag else "no mag"
        return (
            f"{self.instrument:9} {self.target:12} {self.method:9} "
            f"p {100 * self.p:5.2f}+-{100 * self.p_err:.2f}% (true {100 * self.p_true:5.2f}) "
            f"chi {self.chi:6.1f}+-{self.chi_err:.1f} (true {self.chi_true:6.1f}) "
            f"pulls q {self.q_pull:+.2f} u {self.u_pull:+.2f}; {mag}"
        )


def evaluate_polarimetry(night_folder: Path, telescope: str) -> list[PolarimetryCheck]:
    """Match every simulated sequence of a night with its stored result (by member files)."""
    truth = json.loads((night_folder / "truth.json").read_text())
    night = truth["night"]
    checks = []
    for sequence in truth["polarimetry"]:
        key = PhotoPolResult.make_members_key(
            f"{telescope}/{night}/{m}" for m in sequence["members"]
        )
        result = PhotoPolResult.get_or_none(
            (PhotoPolResult.members_key == key) & (PhotoPolResult.mode == "polarimetry")
        )
        base = {
            "instrument": sequence["instrument"],
            "target": sequence["target"],
            "missing_angles": len(sequence["missing_angles"]),
        }
        if result is None:
            checks.append(PolarimetryCheck(method="", error="missing", **base))
            continue
        if result.p is None:
            checks.append(PolarimetryCheck(method=result.method, error=result.error, **base))
            continue
        checks.append(
            PolarimetryCheck(
                method=result.method,
                error="",
                p=result.p,
                p_err=result.p_err,
                p_true=sequence["p"],
                chi=result.chi,
                chi_err=result.chi_err,
                chi_true=sequence["chi"],
                q_pull=(result.q - sequence["q"]) / result.q_err,
                u_pull=(result.u - sequence["u"]) / result.u_err,
                mag=result.mag,
                mag_true=sequence["mag"],
                **base,
            )
        )
    return checks
