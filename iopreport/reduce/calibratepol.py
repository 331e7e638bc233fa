"""Instrumental polarization and zero angle from observed polarization standards.

The raw Stokes parameters of a standard obey (Escudero Pedrosa et al. 2024 Eqs. 4-7, 15, 19-20)

    (q_raw, u_raw) = R(-2 theta0) (q_lit, u_lit) + (q_inst, u_inst),

so unpolarized standards give (q_inst, u_inst) directly and polarized ones,
once the offset is removed, give theta0 = chi_lit - chi_c. The two are solved
together by iterating (the few-percent literature p of an "unpolarized" star
is rotated with the current theta0). Every observation is weighted by its
errors; the errors of the result come from the scatter of the observations
(standard error of the weighted mean, never smaller than the propagated one).
``iopreport calibrate-pol`` prints the fit and the config.toml entry to paste.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from astropy.time import Time

from iopreport.catalog import Catalog
from iopreport.instruments.polarization import InstrumentalPolarization
from iopreport.stokes import Stokes, qu_from_p_chi, rotate_qu, wrap_chi_difference
from iopreport.store import AstroSource, PhotoPolResult

#: Literature p below which a standard counts as unpolarized (fraction).
UNPOLARIZED_P_MAX = 0.005


@dataclass(frozen=True)
class StandardObservation:
    """One polarimetric result of a standard, with its literature values."""

    source: str
    juliandate: float
    q_raw: float
    q_raw_err: float
    u_raw: float
    u_raw_err: float
    p_lit: float
    chi_lit: float | None

    @property
    def unpolarized(self) -> bool:
        return self.p_lit < UNPOLARIZED_P_MAX


#: Values not fitted yet.
UNFITTED = InstrumentalPolarization(*(math.nan,) * 6)


@dataclass
class PolCalibration:
    """The fitted instrumental polarization and zero angle, and what they came from."""

    instrument: str
    band: str
    #: The fitted values (NaN until fitted), as the one instrumental-polarization type.
    values: InstrumentalPolarization = field(default_factory=lambda: UNFITTED)
    n_unpolarized: int = 0
    n_polarized: int = 0
    observations: list[StandardObservation] = field(default_factory=list)
    residuals: list[tuple[str, float, float]] = field(default_factory=list)  # name, dp, dchi
    problems: list[str] = field(default_factory=list)

    q_inst = property(lambda self: self.values.q_inst)
    q_inst_err = property(lambda self: self.values.q_inst_err)
    u_inst = property(lambda self: self.values.u_inst)
    u_inst_err = property(lambda self: self.values.u_inst_err)
    zero_angle_deg = property(lambda self: self.values.zero_angle_deg)
    zero_angle_err_deg = property(lambda self: self.values.zero_angle_err_deg)

    @property
    def complete(self) -> bool:
        return math.isfinite(self.q_inst) and math.isfinite(self.zero_angle_deg)

    def report(self) -> str:
        """Human-readable fit, residuals and the config.toml entry."""
        lines = [
            f"{self.instrument} {self.band}: {self.n_unpolarized} unpolarized and "
            f"{self.n_polarized} polarized standard observation(s)"
        ]
        if math.isfinite(self.q_inst):
            lines.append(
                f"  q_inst = {self.q_inst * 100:+.3f} +- {self.q_inst_err * 100:.3f} %   "
                f"u_inst = {self.u_inst * 100:+.3f} +- {self.u_inst_err * 100:.3f} %"
            )
        if math.isfinite(self.zero_angle_deg):
            lines.append(
                f"  zero angle = {self.zero_angle_deg:+.2f} +- {self.zero_angle_err_deg:.2f} deg"
            )
        for name, dp, dchi in self.residuals:
            lines.append(
                f"    {name:<16} p - p_lit = {dp * 100:+.3f} %   chi - chi_lit = {dchi:+.2f} deg"
            )
        lines += [f"  ! {problem}" for problem in self.problems]
        if self.complete:
            lines.append("  config.toml entry:")
            lines += [f"  {line}" for line in self.entry().toml_lines()]
        return "\n".join(lines)

    def entry(self) -> InstrumentalPolarization:
        """The fitted values as an entry valid from the first standard's night."""
        first = min(o.juliandate for o in self.observations)
        since = Time(first, format="jd").to_datetime()
        return dataclasses.replace(
            self.values,
            valid_from=dt.datetime.combine(since.date(), dt.time()),
            source=f"iopreport calibrate-pol on {dt.date.today().isoformat()}",
            instrument=self.instrument,
            band=self.band,
        )


def standard_observations(
    catalog: Catalog,
    instrument: str,
    band: str,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[StandardObservation]:
    """Polarimetric results of the catalog's standards with raw q and u."""
    standards = {}
    for s in catalog.sources:
        if s.srctype == "polarization_standard":
            literature = literature_polarization(s.pol, band)
            if literature is not None:
                standards[s.name] = literature
    query = (
        PhotoPolResult.select(PhotoPolResult, AstroSource)
        .join(AstroSource)
        .where(
            (PhotoPolResult.mode == "polarimetry")
            & (PhotoPolResult.instrument == instrument)
            & (PhotoPolResult.band == band)
            & (AstroSource.name.in_(list(standards)))
            & PhotoPolResult.q_raw.is_null(False)
        )
    )
    if since:
        query = query.where(PhotoPolResult.juliandate >= Time(since.isoformat()).jd)
    if until:
        query = query.where(PhotoPolResult.juliandate < Time(until.isoformat()).jd + 1)
    observations = []
    for row in query:
        if row.manual_flags:
            continue
        lit = standards[row.astrosource.name]
        observations.append(
            StandardObservation(
                row.astrosource.name,
                row.juliandate,
                row.q_raw,
                row.q_raw_err,
                row.u_raw,
                row.u_raw_err,
                lit.p,
                lit.chi,
            )
        )
    return observations


#: Band order by wavelength, to find the nearest band with a literature value.
BANDS = ("U", "B", "V", "R", "I")


def literature_polarization(pol, band: str):
    """The literature polarization of a standard in ``band``.

    An unpolarized standard (every listed p below :data:`UNPOLARIZED_P_MAX`)
    often has values in B or V only; interstellar-free stars stay unpolarized
    in every band, so the nearest listed band is used for it. A polarized
    standard needs a value in the band itself (its p and chi depend on the band).
    """
    if band in pol:
        return pol[band]
    if not pol or any(value.p >= UNPOLARIZED_P_MAX for value in pol.values()):
        return None
    position = BANDS.index(band) if band in BANDS else 0
    nearest = min(pol, key=lambda b: abs((BANDS.index(b) if b in BANDS else 0) - position))
    return pol[nearest]


def fit_instrumental(
    observations: list[StandardObservation], instrument: str, band: str, iterations: int = 5
) -> PolCalibration:
    """Solve for (q_inst, u_inst, theta0) from standards (see the module docstring)."""
    fit = PolCalibration(instrument, band, observations=list(observations))
    unpolarized = [o for o in observations if o.unpolarized]
    polarized = [o for o in observations if not o.unpolarized and o.chi_lit is not None]
    fit.n_unpolarized, fit.n_polarized = len(unpolarized), len(polarized)
    if not unpolarized:
        fit.problems.append("no unpolarized standard observed: q_inst and u_inst not fitted")
    if not polarized:
        fit.problems.append("no polarized standard observed: the zero angle is not fitted")
    if not unpolarized or not polarized:
        return fit
    theta0 = 0.0
    for _ in range(iterations):
        q_values, u_values, q_errs, u_errs = [], [], [], []
        for o in unpolarized:
            q_lit, u_lit = rotate_qu(*qu_from_p_chi(o.p_lit, o.chi_lit or 0.0), -theta0)
            q_values.append(o.q_raw - q_lit)
            u_values.append(o.u_raw - u_lit)
            q_errs.append(o.q_raw_err)
            u_errs.append(o.u_raw_err)
        q_inst, q_inst_err = _weighted_mean(q_values, q_errs)
        u_inst, u_inst_err = _weighted_mean(u_values, u_errs)
        fit.values = dataclasses.replace(
            fit.values, q_inst=q_inst, q_inst_err=q_inst_err, u_inst=u_inst, u_inst_err=u_inst_err
        )
        offsets, offset_errs = [], []
        for o in polarized:
            q_c, u_c = o.q_raw - fit.q_inst, o.u_raw - fit.u_inst
            corrected = Stokes(q_c, u_c, 0.0, 0.0)
            p_c, chi_c = corrected.p, corrected.chi
            offsets.append(wrap_chi_difference(o.chi_lit - chi_c))
            offset_errs.append(0.5 * math.degrees(math.hypot(o.q_raw_err, o.u_raw_err) / p_c))
        centre = offsets[0]
        offsets = [centre + wrap_chi_difference(v - centre) for v in offsets]
        theta0, theta0_err = _weighted_mean(offsets, offset_errs)
        fit.values = dataclasses.replace(
            fit.values, zero_angle_deg=wrap_chi_difference(theta0), zero_angle_err_deg=theta0_err
        )
    for o in polarized:
        sky = Stokes(
            *rotate_qu(o.q_raw - fit.q_inst, o.u_raw - fit.u_inst, fit.zero_angle_deg), 0.0, 0.0
        )
        fit.residuals.append((o.source, sky.p - o.p_lit, wrap_chi_difference(sky.chi - o.chi_lit)))
    return fit


def _weighted_mean(values, errors) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    w = 1.0 / np.asarray(errors, dtype=float) ** 2
    mean = float(np.sum(w * v) / np.sum(w))
    propagated = float(1.0 / math.sqrt(np.sum(w)))
    if len(v) > 1:
        scatter = float(np.std(v, ddof=1) / math.sqrt(len(v)))
        return mean, max(propagated, scatter)
    return mean, propagated
