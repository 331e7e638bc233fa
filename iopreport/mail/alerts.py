"""Alert rules of the night summary (config.toml ``[alerts]``, docs/summaries.md).

Every rule compares tonight's weighted mean of one quantity in one band with
earlier nights of the same source, using only results no flag marks bad:

========================  ==================================================
rule                      fires when
========================  ==================================================
``mag_change``            ``|mag tonight - mag previous night| > mag_change``
``p_change``              ``|p tonight - p previous night| > p_change`` (fraction)
``chi_change``            ``|chi tonight - chi previous night| > chi_change_deg``
                          (difference wrapped into [-90, 90) degrees)
``new_brightest``         tonight's mag is below every earlier nightly mean
                          (needs ``min_history_nights`` earlier nights)
``spread``                tonight is more than ``spread_sigma`` long-term
                          spreads (with tonight's error in quadrature) from
                          the long-term centre (same history rule)
========================  ==================================================

A threshold of 0 turns its rule off.
"""

from __future__ import annotations

from collections.abc import Iterator

from iopreport.config import AlertsConfig
from iopreport.mail.summary import Alert, QuantityLine, SourceLine

#: How each quantity is printed in alert texts: unit, scale, decimals.
_FORMAT = {"mag": ("mag", 1.0, 2), "p": ("%", 100.0, 1), "chi": ("deg", 1.0, 0)}


def _amount(quantity: str, value: float, *, signed: bool = True) -> str:
    unit, scale, decimals = _FORMAT[quantity]
    sign = "+" if signed else ""
    return f"{value * scale:{sign}.{decimals}f} {unit}"


def _change_alerts(source: str, line: QuantityLine, rules: AlertsConfig) -> Iterator[Alert]:
    limit = {"mag": rules.mag_change, "p": rules.p_change, "chi": rules.chi_change_deg}[
        line.quantity
    ]
    change = line.change
    if not limit or change is None or abs(change) <= limit:
        return
    q = line.quantity
    label = {"mag": f"{line.band} magnitude", "p": f"p ({line.band})", "chi": f"chi ({line.band})"}
    words = ""
    if q == "mag":
        words = " (brighter)" if change < 0 else " (fainter)"
    yield Alert(
        source=source,
        rule=f"{q}_change",
        band=line.band,
        message=(
            f"{label[q]} changed by {_amount(q, change)}{words} since "
            f"{line.previous_night.isoformat()}: "
            f"{_amount(q, line.previous.value, signed=False)} -> "
            f"{_amount(q, line.tonight.value, signed=False)} "
            f"(limit {_amount(q, limit, signed=False)})"
        ),
    )


def evaluate(source: SourceLine, rules: AlertsConfig) -> list[Alert]:
    """The alerts ``rules`` raise for one source's lines of tonight."""
    alerts: list[Alert] = []
    for line in source.quantities:
        alerts += _change_alerts(source.name, line, rules)
        enough_history = line.history_nights >= rules.min_history_nights
        if (
            rules.new_brightest
            and line.quantity == "mag"
            and enough_history
            and line.brightest_before is not None
            and line.tonight.value < line.brightest_before
        ):
            alerts.append(
                Alert(
                    source=source.name,
                    rule="new_brightest",
                    band=line.band,
                    message=(
                        f"brightest {line.band} magnitude so far: {line.tonight.value:.2f} "
                        f"(before: {line.brightest_before:.2f} over {line.history_nights} nights)"
                    ),
                )
            )
        offset = line.spread_offset
        if (
            rules.spread_sigma
            and enough_history
            and offset is not None
            and abs(offset) > rules.spread_sigma
        ):
            usual = _amount(line.quantity, line.longterm_centre, signed=False)
            alerts.append(
                Alert(
                    source=source.name,
                    rule="spread",
                    band=line.band,
                    message=(
                        f"{line.quantity} ({line.band}) is {offset:+.1f} long-term spreads "
                        f"from its usual {usual} (limit {rules.spread_sigma:g})"
                    ),
                )
            )
    return alerts
