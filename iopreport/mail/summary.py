"""What a night summary says: plain dataclasses, filled by :mod:`iopreport.mail.content`.

Rendering, alerts, plots and sending read only these, so they are tested
without a database and the same summary is rendered for every subscriber.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass

from iopreport import urls
from iopreport.config import SubscriberConfig
from iopreport.stokes import Estimate, wrap_chi_difference

#: Days of history drawn in each source's plot.
PLOT_DAYS = 30
#: Spreads (with tonight's error) at or below these are too small to compare with.
SPREAD_FLOOR = {"mag": 1e-4, "p": 1e-5, "chi": 1e-3}


@dataclass(frozen=True)
class Failure:
    """One thing that failed tonight, and why."""

    kind: str  # raw | reduced | master bias | master dark | master flat
    name: str
    reason: str


@dataclass(frozen=True)
class TelescopeNight:
    """Frames and reduction state of one telescope's night."""

    telescope: str
    frames: dict[str, int]  # by type: bias, dark, flat, light, unclassified
    reduced: int  # frames calibrated without error
    failed: int  # frames whose reduction recorded an error
    failures: tuple[Failure, ...]
    url: str | None

    @property
    def status(self) -> str:
        """``OK``, or how many things failed."""
        return "OK" if not self.failures else f"{len(self.failures)} failed"


@dataclass(frozen=True)
class PlotPoint:
    """One result on a source's plot."""

    jd: float
    quantity: str  # mag | p | chi
    band: str
    value: float
    error: float | None
    tonight: bool
    good: bool


@dataclass(frozen=True)
class QuantityLine:
    """Tonight's value of one quantity in one band, and how it compares."""

    quantity: str  # mag | p | chi
    band: str
    tonight: Estimate
    previous_night: dt.date | None = None
    previous: Estimate | None = None
    history_nights: int = 0  # nights with good results before tonight
    longterm_centre: float | None = None
    longterm_spread: float | None = None
    brightest_before: float | None = None  # smallest earlier nightly mean magnitude

    @property
    def change(self) -> float | None:
        """Tonight minus the previous night (chi wrapped into [-90, 90))."""
        if self.previous is None:
            return None
        difference = self.tonight.value - self.previous.value
        return wrap_chi_difference(difference) if self.quantity == "chi" else difference

    @property
    def spread_offset(self) -> float | None:
        """How unusual tonight is: (tonight - long-term centre) in units of the long-term
        spread and tonight's error added in quadrature; None without a spread."""
        if self.longterm_centre is None or self.longterm_spread is None:
            return None
        scale = math.hypot(self.longterm_spread, self.tonight.error or 0.0)
        if scale <= SPREAD_FLOOR[self.quantity]:
            return None
        difference = self.tonight.value - self.longterm_centre
        if self.quantity == "chi":
            difference = wrap_chi_difference(difference)
        return difference / scale


@dataclass(frozen=True)
class Alert:
    """A rule that fired for a source tonight."""

    source: str
    rule: str  # mag_change | p_change | chi_change | new_brightest | spread
    band: str
    message: str


@dataclass(frozen=True)
class SourceLine:
    """One source observed tonight."""

    name: str
    other_names: tuple[str, ...]
    srctype: str
    telescopes: tuple[str, ...]
    quantities: tuple[QuantityLine, ...]
    n_results: int
    n_flagged: int
    flag_reasons: dict[str, int]
    points: tuple[PlotPoint, ...]
    url: str | None
    alerts: tuple[Alert, ...] = ()
    plot_png: bytes | None = None

    @property
    def plot_cid(self) -> str:
        """Content-ID stem of the plot image (unique within a message)."""
        return f"plot-{urls.slug(self.name)}"

    def matches(self, names: Iterable[str]) -> bool:
        """Whether any of ``names`` is this source's name or another name (case-insensitive)."""
        mine = {n.casefold() for n in (self.name, *self.other_names)}
        return any(n.casefold() in mine for n in names)


@dataclass(frozen=True)
class MissingCalibration:
    """A target observed tonight whose frames gave no calibrated magnitude."""

    source: str
    other_names: tuple[str, ...]
    telescope: str
    frames: int
    reason: str


@dataclass(frozen=True)
class NightSummary:
    """Everything a night's summary shows (see the module docstring)."""

    night: dt.date
    generated_at: dt.datetime
    telescopes: tuple[TelescopeNight, ...]
    sources: tuple[SourceLine, ...]
    missing: tuple[MissingCalibration, ...]
    contact_name: str = ""
    contact_email: str = ""
    site_url: str = ""
    summary_url: str | None = None
    source_filter: tuple[str, ...] = ()

    @property
    def alerts(self) -> tuple[Alert, ...]:
        """Every alert, sources in display order."""
        return tuple(alert for line in self.sources for alert in line.alerts)

    @property
    def n_flagged(self) -> int:
        """Results of tonight left out because a flag marks them bad."""
        return sum(line.n_flagged for line in self.sources)

    @property
    def subject(self) -> str:
        """The e-mail subject: night, number of sources and of alerts."""
        n_sources, n_alerts = len(self.sources), len(self.alerts)
        return (
            f"iopreport night {self.night.isoformat()}: "
            f"{n_sources} source{'s' * (n_sources != 1)}, "
            f"{n_alerts} alert{'s' * (n_alerts != 1)}"
        )

    def for_subscriber(self, subscriber: SubscriberConfig) -> NightSummary:
        """The summary limited to the subscriber's ``sources`` (all when empty)."""
        if not subscriber.sources:
            return self
        names = subscriber.sources
        return dataclasses.replace(
            self,
            sources=tuple(line for line in self.sources if line.matches(names)),
            missing=tuple(
                m
                for m in self.missing
                if {n.casefold() for n in (m.source, *m.other_names)}
                & {n.casefold() for n in names}
            ),
            source_filter=tuple(names),
        )
