"""The true brightness and polarization of every simulated target through the night.

Blazars vary (magnitude, p and chi drift within a night, as they do); standards
are constant at their catalog values. Every value the simulator puts into
pixels comes from here, and truth.json records it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from iopreport.catalog import Catalog, CatalogSource
from iopreport.simulate.render import stable_seed

#: Typical R magnitude, polarization degree and angle of each demo blazar
#: (round values in the range each object shows; simulator assumption).
BLAZAR_STATE = {
    "2200+420": (13.3, 0.12, 15.0),
    "2251+158": (15.6, 0.08, 120.0),
    "1253-055": (15.0, 0.15, 60.0),
    "0851+202": (14.6, 0.10, 150.0),
    "0716+714": (13.6, 0.07, 20.0),
    "1101+384": (12.4, 0.04, 170.0),
    "1652+398": (13.4, 0.03, 120.0),
}
#: Blazar colours X - R (simulator assumption: a red power-law continuum plus host).
BLAZAR_COLOURS = {"U": 1.6, "B": 1.3, "V": 0.55, "R": 0.0, "I": -0.65}
#: R magnitudes of standards without one in the catalog (IOP3 values; see sky.py).
STANDARD_R_FALLBACK = {"HD 204827": 7.25, "HD 212311": 8.0, "BD+64 106": 10.0}
#: Variability amplitudes and period (simulator assumption). The fastest change,
#: 2 pi MAG_AMPLITUDE / PERIOD_DAYS = 0.25 mag/day, is brisk intranight variability
#: for a blazar. A period of 0.35 d (2.2 mag/day, 0.0015 mag/min) made the target
#: brighten by ~0.4% between the exposures of one polarizer-wheel sequence, which the
#: four-exposure wheel method cannot tell from ~0.2% of polarization (docs/polarimetry.md).
MAG_AMPLITUDE = 0.12
P_AMPLITUDE = 0.02
CHI_DRIFT_DEG_PER_DAY = 12.0
PERIOD_DAYS = 3.0


@dataclass(frozen=True)
class Flare:
    """A flare of a blazar: a Gaussian brightening in time, with the polarization rising.

    ``peak`` is naive UTC; ``amplitude_mag`` the brightening at the peak (positive),
    ``sigma_days`` its width and ``p_rise`` the added degree of polarization at the peak.
    """

    peak: dt.datetime
    amplitude_mag: float
    sigma_days: float
    p_rise: float = 0.0

    def strength(self, when: dt.datetime) -> float:
        """0 far from the flare, 1 at its peak."""
        days = (when - self.peak).total_seconds() / 86400.0
        return math.exp(-0.5 * (days / self.sigma_days) ** 2)


#: Simulated flares by source (simulator assumption): BL Lac brightens by 0.6 mag on
#: the demo's third night (2024-10-10), enough for the summary's ``mag_change`` alert
#: (0.3 mag in the skeleton's config.toml) against the night before. The flare is
#: flat within a night (its width is a day), so a polarizer-wheel sequence still
#: sees a steady source.
FLARES: dict[str, tuple[Flare, ...]] = {
    "2200+420": (
        Flare(
            peak=dt.datetime(2024, 10, 10, 22, 0),
            amplitude_mag=0.6,
            sigma_days=0.5,
            p_rise=0.04,
        ),
    ),
}


@dataclass(frozen=True)
class TargetModel:
    """The truth for one source on one night; ``epoch`` is the night's reference time."""

    name: str
    ra_deg: float
    dec_deg: float
    variable: bool
    mag_r: float
    colours: dict[str, float]
    p: float
    chi_deg: float
    epoch: dt.datetime
    phase: float = 0.0
    pol_by_band: dict[str, tuple[float, float]] = field(default_factory=dict)
    flares: tuple[Flare, ...] = ()

    def _flare(self, when: dt.datetime) -> tuple[float, float]:
        """(brightening in mag, added p) of the source's flares at ``when``."""
        mag = sum(f.amplitude_mag * f.strength(when) for f in self.flares)
        p = sum(f.p_rise * f.strength(when) for f in self.flares)
        return mag, p

    def _days(self, when: dt.datetime) -> float:
        return (when - self.epoch).total_seconds() / 86400.0

    def magnitude(self, band: str, when: dt.datetime) -> float:
        """True magnitude in ``band`` at ``when``."""
        base = self.mag_r + self.colours.get(band, 0.0)
        if not self.variable:
            return base
        days = self._days(when)
        flare_mag, _ = self._flare(when)
        return (
            base
            + MAG_AMPLITUDE * math.sin(2 * math.pi * days / PERIOD_DAYS + self.phase)
            - flare_mag
        )

    def polarization(self, when: dt.datetime, band: str = "R") -> tuple[float, float]:
        """True (p, chi in degrees) at ``when``."""
        if not self.variable:
            return self.pol_by_band.get(band, (self.p, self.chi_deg))
        days = self._days(when)
        p = self.p + P_AMPLITUDE * math.sin(2 * math.pi * days / PERIOD_DAYS + self.phase + 1.0)
        p += self._flare(when)[1]
        chi = (self.chi_deg + CHI_DRIFT_DEG_PER_DAY * days) % 180.0
        return max(p, 0.0), chi


def target_model(source: CatalogSource, night: dt.date, seed: int) -> TargetModel:
    """The model of a catalog source for a night."""
    epoch = dt.datetime.combine(night, dt.time(22, 0))
    if source.srctype == "blazar":
        mag, p, chi = BLAZAR_STATE.get(source.name, (15.0, 0.05, 90.0))
        phase = (stable_seed("phase", seed, source.name, night) % 6283) / 1000.0
        drift = ((stable_seed("drift", source.name, night) % 2000) / 1000.0 - 1.0) * 0.3
        return TargetModel(
            name=source.name,
            ra_deg=source.ra_deg,
            dec_deg=source.dec_deg,
            variable=True,
            mag_r=mag + drift,
            colours=BLAZAR_COLOURS,
            p=p,
            chi_deg=chi,
            epoch=epoch,
            phase=phase,
            flares=FLARES.get(source.name, ()),
        )
    mags = {band: m.value for band, m in source.mags.items()}
    mag_r = mags.get("R", STANDARD_R_FALLBACK.get(source.name, mags.get("V", 10.4) - 0.4))
    colours = {band: value - mag_r for band, value in mags.items()}
    for band, default in (("U", 0.9), ("B", 0.7), ("V", 0.4), ("I", -0.35)):
        colours.setdefault(band, default)
    colours["R"] = 0.0
    pol = {band: (value.p, value.chi or 0.0) for band, value in source.pol.items()}
    p, chi = pol.get("R", next(iter(pol.values()), (0.0, 0.0)))
    return TargetModel(
        name=source.name,
        ra_deg=source.ra_deg,
        dec_deg=source.dec_deg,
        variable=False,
        mag_r=mag_r,
        colours=colours,
        p=p,
        chi_deg=chi,
        epoch=epoch,
        pol_by_band=pol,
    )


def target_models(catalog: Catalog, names, night: dt.date, seed: int) -> dict[str, TargetModel]:
    """Models for the named sources."""
    models = {}
    for name in names:
        source = catalog.get(name)
        if source is None:
            raise KeyError(f"the simulator's catalog has no source {name!r}")
        models[source.name] = target_model(source, night, seed)
    return models
