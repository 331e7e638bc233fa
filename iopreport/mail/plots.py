"""PNG plot of a source's last 30 days for the night summary (matplotlib, Agg).

One panel per quantity the source has in that period (magnitude with the axis
inverted, p in percent, chi in degrees), colours by band. Good points are
filled, points a flag marks bad are hollow grey, tonight's points are drawn
larger with a black edge and the night is shaded. The vertical range is set by
the good points, so a wild flagged point does not flatten the curve: flagged
points outside it are drawn as diamonds on the edge. Angles are drawn within
90 degrees of the period's circular mean, so 175 and 5 degrees sit 10 apart.
The figure is rendered with the Agg canvas directly, so the process-wide
matplotlib backend is untouched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

from iopreport.mail.summary import PLOT_DAYS, PlotPoint, SourceLine
from iopreport.stokes import angle_mean, wrap_chi_difference
from iopreport.store.columns import jd_to_datetime

#: Figure size in inches and resolution: 640 x 150 px per panel + margins.
WIDTH_IN, PANEL_IN, DPI = 6.4, 1.5, 100
#: Colours per band (matplotlib's tab10 order), others fall back to grey.
BAND_COLOURS = {
    "U": "tab:purple",
    "B": "tab:blue",
    "V": "tab:green",
    "R": "tab:red",
    "I": "tab:brown",
    "g": "tab:cyan",
    "r": "tab:orange",
    "i": "tab:pink",
}
#: Days between labelled ticks of the time axis.
TICK_DAYS = 5
_LABELS = {"mag": "mag", "p": "p (%)", "chi": "χ (deg)"}
_SCALE = {"mag": 1.0, "p": 100.0, "chi": 1.0}


def plot_source(line: SourceLine, night: dt.date) -> bytes | None:
    """PNG bytes of ``line``'s last :data:`PLOT_DAYS` days, or None without points."""
    from matplotlib import dates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    quantities = [q for q in ("mag", "p", "chi") if any(p.quantity == q for p in line.points)]
    if not quantities:
        return None
    figure = Figure(figsize=(WIDTH_IN, 0.6 + PANEL_IN * len(quantities)), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(quantities), 1, sharex=True, squeeze=False)[:, 0]
    start = dt.datetime.combine(night - dt.timedelta(days=PLOT_DAYS - 1), dt.time(12))
    evening = dt.datetime.combine(night, dt.time(12))
    end = evening + dt.timedelta(days=1)
    for ax, quantity in zip(axes, quantities, strict=True):
        points = _unwrapped([p for p in line.points if p.quantity == quantity], quantity)
        limits = _limits(points, quantity)
        ax.axvspan(evening, end, color="gold", alpha=0.25, lw=0)
        for band in sorted({p.band for p in points}):
            colour = BAND_COLOURS.get(band, "tab:gray")
            _draw(ax, [p for p in points if p.band == band], quantity, colour, band, limits)
        if limits:
            ax.set_ylim(*limits)
        ax.set_ylabel(_LABELS[quantity])
        ax.grid(alpha=0.3)
        if quantity == "mag":
            ax.invert_yaxis()
    axes[0].set_title(f"{line.name}: last {PLOT_DAYS} days to {night.isoformat()}", fontsize=10)
    axes[0].legend(loc="best", fontsize=7, ncols=4)
    axes[-1].set_xlim(start, end)
    # fixed day ticks and margins: automatic date ticks and tight_layout were most of the time
    axes[-1].xaxis.set_major_locator(dates.DayLocator(interval=TICK_DAYS))
    axes[-1].xaxis.set_minor_locator(dates.DayLocator())
    axes[-1].xaxis.set_major_formatter(dates.DateFormatter("%b %d"))
    height = figure.get_figheight()
    figure.subplots_adjust(
        left=0.11, right=0.98, top=1 - 0.35 / height, bottom=0.3 / height, hspace=0.12
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _unwrapped(points: list[PlotPoint], quantity: str) -> list[PlotPoint]:
    """Angles moved by multiples of 180 degrees to within 90 of the good points' mean."""
    good = [p.value for p in points if p.good]
    if quantity != "chi" or not good:
        return points
    centre = angle_mean(good, [None] * len(good)).value
    return [
        dataclasses.replace(p, value=centre + wrap_chi_difference(p.value - centre)) for p in points
    ]


def _limits(points: list[PlotPoint], quantity: str) -> tuple[float, float] | None:
    """Vertical range of the good points with their error bars, padded by 10%."""
    scale = _SCALE[quantity]
    good = [p for p in points if p.good]
    if not good:
        return None
    low = min(p.value - (p.error or 0.0) for p in good) * scale
    high = max(p.value + (p.error or 0.0) for p in good) * scale
    pad = max((high - low) * 0.1, {"mag": 0.05, "p": 0.5, "chi": 2.0}[quantity])
    return low - pad, high + pad


def _draw(ax, points, quantity: str, colour: str, band: str, limits) -> None:
    scale = _SCALE[quantity]
    if limits:  # flagged points beyond the good points' range: diamonds on the edge
        low, high = limits
        inside = [p for p in points if p.good or low <= p.value * scale <= high]
        outside = [p for p in points if p not in inside]
        if outside:
            ax.plot(
                [jd_to_datetime(p.jd) for p in outside],
                [min(max(p.value * scale, low), high) for p in outside],
                "D",
                ms=6,
                mfc="none",
                mec="0.4",
                clip_on=False,
                label=f"{band} flagged, off scale",
            )
        points = inside
    labelled = False
    for tonight, good in ((False, True), (True, True), (False, False), (True, False)):
        chosen = [p for p in points if p.tonight == tonight and p.good == good]
        if not chosen:
            continue
        times = [jd_to_datetime(p.jd) for p in chosen]
        values = [p.value * scale for p in chosen]
        errors = [(p.error or 0.0) * scale for p in chosen]
        style = {
            "fmt": "o",
            "ms": 7 if tonight else 4,
            "capsize": 0,
            "elinewidth": 0.8,
            "color": colour if good else "0.6",
            "mfc": colour if good else "none",
            "mec": "black" if tonight else (colour if good else "0.6"),
        }
        label = None
        if good and not labelled:
            label, labelled = band, True
        elif not good:
            label = f"{band} flagged"
        ax.errorbar(times, values, yerr=errors, label=label, **style)
