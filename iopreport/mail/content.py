"""What a night summary says, read from the store into plain dataclasses.

:func:`build_night_summary` gathers, for one night (the evening date, as
``Epoch.night``):

* per telescope: frames by type, reduced and failed counts, and every failure
  with its reason (``RawFit.error``, ``ReducedFit.error``, masters with an
  error or marked bad);
* per source with results that night (calibrators excepted): tonight's
  weighted mean magnitude, p and chi per band, the previous night it was
  observed, the change since then, the long-term centre and spread of its
  nightly means, how many results were flagged bad (left out of the means),
  the points of the last :data:`PLOT_DAYS` days for the plot, and its alerts;
* targets observed that night whose frames gave no calibrated magnitude.

Rendering and sending use only these dataclasses, so they are tested without
a database and the same summary is rendered for every subscriber.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter, defaultdict

from iopreport import urls
from iopreport.config import Config
from iopreport.identify import identify_target
from iopreport.mail.alerts import evaluate
from iopreport.mail.plots import plot_source
from iopreport.mail.stats import spread
from iopreport.mail.summary import (
    PLOT_DAYS,
    Failure,
    MissingCalibration,
    NightSummary,
    PlotPoint,
    QuantityLine,
    SourceLine,
    TelescopeNight,
)
from iopreport.stokes import (
    Estimate,
    angle_mean,
    mean_polarization,
    weighted_mean,
)
from iopreport.store import (
    AstroSource,
    Calibrator,
    Epoch,
    ManualFlags,
    MasterBias,
    MasterDark,
    MasterFlags,
    MasterFlat,
    PhotoPolResult,
    RawFit,
    ReducedFit,
    ResultFlags,
    SourceInField,
)
from iopreport.store.models import utcnow

#: Quantities summarised, in display order: result column, error column, mode.
QUANTITIES = (
    ("mag", "mag_err", "photometry"),
    ("p", "p_err", "polarimetry"),
    ("chi", "chi_err", "polarimetry"),
)
#: The error column of each quantity.
_ERROR_COLUMN = {quantity: error for quantity, error, _ in QUANTITIES}
#: Frame types in the order the per-telescope table shows them.
FRAME_TYPES = ("bias", "dark", "flat", "light")
#: Flags that keep a result out of tonight's photometry (automatic, manual).
BAD_PHOTOMETRY = (
    int(ResultFlags.BAD_PHOTOMETRY),
    int(ManualFlags.BAD_PHOTOMETRY | ManualFlags.BAD_FRAME),
)
#: Flags that keep a result out of tonight's polarimetry (automatic, manual).
BAD_POLARIMETRY = (
    int(ResultFlags.BAD_POLARIMETRY),
    int(ManualFlags.BAD_POLARIMETRY | ManualFlags.BAD_FRAME),
)


def site_link(config: Config, path: str) -> str | None:
    """``smtp.site_url`` + a site path from :mod:`iopreport.urls`; None without a site URL."""
    base = config.smtp.site_url.strip()
    if not base:
        return None
    return f"{base.rstrip('/')}/{path}"


def _bad(result: PhotoPolResult, masks: tuple[int, int]) -> bool:
    return bool(result.flags & masks[0] or result.manual_flags & masks[1])


def _telescope_night(config: Config, epoch: Epoch) -> TelescopeNight:
    frames: Counter[str] = Counter()
    failures: list[Failure] = []
    for rawfit in RawFit.select().where(RawFit.epoch == epoch).order_by(RawFit.filename):
        frames[rawfit.imgtype or "unclassified"] += 1
        if rawfit.error:
            failures.append(Failure("raw", rawfit.filename, rawfit.error))
    reduced = list(
        ReducedFit.select(ReducedFit, RawFit)
        .join(RawFit)
        .where(RawFit.epoch == epoch)
        .order_by(RawFit.filename)
    )
    failed = [r for r in reduced if r.error]
    failures += [Failure("reduced", r.rawfit.filename, r.error) for r in failed]
    for kind, model in (("bias", MasterBias), ("dark", MasterDark), ("flat", MasterFlat)):
        for master in model.select().where(model.epoch == epoch).order_by(model.filename):
            if master.error or master.flags & MasterFlags.BAD:
                reason = master.error or "marked bad"
                failures.append(Failure(f"master {kind}", master.filename, reason))
    counts = {kind: frames.pop(kind, 0) for kind in FRAME_TYPES}
    counts.update(sorted(frames.items()))
    return TelescopeNight(
        telescope=epoch.telescope,
        frames=counts,
        reduced=len(reduced) - len(failed),
        failed=len(failed),
        failures=tuple(failures),
        url=site_link(config, urls.night_page(epoch.night, epoch.telescope)),
    )


def _series(results: list, night: dt.date):
    """Good results by (quantity, band) -> {night: [result]}, and plot points."""
    nightly: dict[tuple[str, str], dict[dt.date, list]] = defaultdict(lambda: defaultdict(list))
    points = []
    first_plot_night = night - dt.timedelta(days=PLOT_DAYS - 1)
    for result in results:
        result_night = result.night
        if result_night > night:
            continue
        for quantity, error_name, mode in QUANTITIES:
            value = getattr(result, quantity)
            if result.mode != mode or value is None:
                continue
            good = not _bad(result, BAD_PHOTOMETRY if mode == "photometry" else BAD_POLARIMETRY)
            if good:
                nightly[(quantity, result.band)][result_night].append(result)
            if result_night >= first_plot_night:
                points.append(
                    PlotPoint(
                        jd=result.juliandate,
                        quantity=quantity,
                        band=result.band,
                        value=value,
                        error=getattr(result, error_name),
                        tonight=result_night == night,
                        good=good,
                    )
                )
    return nightly, points


def _mean(quantity: str, results: list) -> Estimate:
    """A night's mean of one quantity; p and chi from the mean q and u (:mod:`iopreport.stokes`)."""
    if quantity != "mag" and all(r.q is not None and r.u is not None for r in results):
        mean = mean_polarization(
            [r.q for r in results],
            [r.q_err for r in results],
            [r.u for r in results],
            [r.u_err for r in results],
        )
        return mean.p if quantity == "p" else mean.chi
    values = [getattr(r, quantity) for r in results]
    errors = [getattr(r, _ERROR_COLUMN[quantity]) for r in results]
    return angle_mean(values, errors) if quantity == "chi" else weighted_mean(values, errors)


def _quantity_lines(nightly, night: dt.date) -> list[QuantityLine]:
    order = {q: i for i, (q, _, _) in enumerate(QUANTITIES)}
    lines = []
    for (quantity, band), by_night in sorted(
        nightly.items(), key=lambda item: (item[0][1], order[item[0][0]])
    ):
        if night not in by_night:
            continue
        before = {n: _mean(quantity, pairs) for n, pairs in by_night.items() if n < night}
        previous_night = max(before, default=None)
        centre_spread = spread([e.value for e in before.values()], angle=quantity == "chi")
        lines.append(
            QuantityLine(
                quantity=quantity,
                band=band,
                tonight=_mean(quantity, by_night[night]),
                previous_night=previous_night,
                previous=before.get(previous_night) if previous_night else None,
                history_nights=len(before),
                longterm_centre=centre_spread[0] if centre_spread else None,
                longterm_spread=centre_spread[1] if centre_spread else None,
                brightest_before=(
                    min(e.value for e in before.values()) if quantity == "mag" and before else None
                ),
            )
        )
    return lines


#: Columns read for a source's history (see :func:`_source_line`).
_HISTORY_COLUMNS = (
    Epoch.night.alias("night"),
    Epoch.telescope.alias("telescope"),
    PhotoPolResult.mode,
    PhotoPolResult.band,
    PhotoPolResult.juliandate,
    PhotoPolResult.mag,
    PhotoPolResult.mag_err,
    PhotoPolResult.q,
    PhotoPolResult.q_err,
    PhotoPolResult.u,
    PhotoPolResult.u_err,
    PhotoPolResult.p,
    PhotoPolResult.p_err,
    PhotoPolResult.chi,
    PhotoPolResult.chi_err,
    PhotoPolResult.flags,
    PhotoPolResult.manual_flags,
)


def _source_line(config: Config, source: AstroSource, night: dt.date) -> SourceLine:
    results = list(
        PhotoPolResult.select(*_HISTORY_COLUMNS)
        .join(Epoch)
        .where(PhotoPolResult.astrosource == source)
        .order_by(PhotoPolResult.juliandate)
        .namedtuples()
    )  # plain tuples: a source may have thousands of results
    tonight = [r for r in results if r.night == night]
    flagged = [
        r for r in tonight if _bad(r, BAD_PHOTOMETRY if r.mode == "photometry" else BAD_POLARIMETRY)
    ]
    reasons: Counter[str] = Counter()
    for result in flagged:
        labels = [*ResultFlags.labels(result.flags), *ManualFlags.labels(result.manual_flags)]
        labels = [label for label in labels if not label.startswith("BAD_")] or labels
        reasons.update(label.lower().replace("_", " ") for label in labels)
    nightly, points = _series(results, night)
    return SourceLine(
        name=source.name,
        other_names=tuple(source.other_names or ()),
        srctype=source.srctype,
        telescopes=tuple(sorted({r.telescope for r in tonight})),
        quantities=tuple(_quantity_lines(nightly, night)),
        n_results=len(tonight),
        n_flagged=len(flagged),
        flag_reasons=dict(sorted(reasons.items())),
        points=tuple(points),
        url=site_link(config, urls.source_page(source.name)),
    )


#: Source types that are observed for their own sake (not comparison or field stars).
_TARGET_TYPES_EXCLUDED = ("calibrator", "star")


def _observed_targets(night: dt.date) -> dict[tuple[int, str], list[RawFit]]:
    """Photometric light frames of tonight by (target id, telescope).

    A frame's targets: ``RawFit.target`` when set, the source its OBJECT names
    (:func:`iopreport.identify.identify_target`), and the catalog
    targets found in its field after plate solving (``SourceInField``).
    """
    candidates = [s for s in AstroSource.select() if s.srctype not in _TARGET_TYPES_EXCLUDED]
    by_name = {s.name: s for s in candidates}
    frames = list(
        RawFit.select(RawFit, Epoch)
        .join(Epoch)
        .where(
            (Epoch.night == night)
            & (RawFit.imgtype == "light")
            & ((RawFit.obsmode == "photometry") | RawFit.obsmode.is_null())
        )
        .order_by(RawFit.filename)
    )
    in_field: dict[int, set[int]] = defaultdict(set)
    for row in (
        SourceInField.select(SourceInField.astrosource, RawFit.id.alias("rawfit_id"))
        .join(ReducedFit)
        .join(RawFit)
        .join(Epoch)
        .where(Epoch.night == night)
        .dicts()
    ):
        in_field[row["rawfit_id"]].add(row["astrosource"])
    groups: dict[tuple[int, str], list[RawFit]] = defaultdict(list)
    for rawfit in frames:
        ids = {i for i in in_field[rawfit.id] if any(s.id == i for s in candidates)}
        if rawfit.target_id and rawfit.target_id in {s.id for s in candidates}:
            ids.add(rawfit.target_id)
        named = identify_target(rawfit.object_name or "", candidates)
        if named:
            ids.add(by_name[named].id)
        for source_id in ids:
            groups[(source_id, rawfit.epoch.telescope)].append(rawfit)
    return groups


def _missing(night: dt.date) -> list[MissingCalibration]:
    """Targets with photometric frames tonight and no calibrated magnitude from them."""
    groups = _observed_targets(night)
    missing = []
    for (source_id, telescope), rawfits in groups.items():
        source = AstroSource.get_by_id(source_id)
        results = list(
            PhotoPolResult.select(PhotoPolResult)
            .join(Epoch)
            .where(
                (PhotoPolResult.astrosource == source_id)
                & (Epoch.night == night)
                & (Epoch.telescope == telescope)
                & (PhotoPolResult.mode == "photometry")
            )
        )
        calibrated = [
            r for r in results if r.mag is not None and not r.flags & ResultFlags.FEW_CALIBRATORS
        ]
        if calibrated:
            continue
        n_catalog = Calibrator.select().where(Calibrator.target == source_id).count()
        failed = sum(1 for r in rawfits if r.error) + (
            ReducedFit.select()
            .where(ReducedFit.rawfit.in_([r.id for r in rawfits]) & (ReducedFit.error != ""))
            .count()
        )
        if n_catalog == 0:
            reason = "no calibrators listed in catalog.toml"
        elif results:
            used = max((r.n_calibrators or 0) for r in results)
            reason = (
                f"too few calibrators measured (at most {used} of {n_catalog} listed) "
                f"in {len(results)} result(s)"
            )
        elif failed:
            reason = f"reduction failed on {failed} of {len(rawfits)} frame(s)"
        else:
            reason = "no calibrated magnitude from its frames"
        missing.append(
            MissingCalibration(
                source=source.name,
                other_names=tuple(source.other_names or ()),
                telescope=telescope,
                frames=len(rawfits),
                reason=reason,
            )
        )
    return sorted(missing, key=lambda m: (m.source, m.telescope))


def build_night_summary(
    config: Config,
    night: dt.date,
    *,
    now: dt.datetime | None = None,
    plots: bool = True,
) -> NightSummary:
    """Read the store (already open) into a :class:`NightSummary` of ``night``.

    Parameters
    ----------
    config : Config
        For the alert rules, the site URL and the contact.
    night : datetime.date
        The evening date of the night.
    now : datetime.datetime, optional
        Generation time (naive UTC) shown in the footer; default now.
    plots : bool
        Draw each source's PNG plot (:mod:`iopreport.mail.plots`).
    """
    epochs = Epoch.select().where(Epoch.night == night).order_by(Epoch.telescope)
    telescopes = tuple(_telescope_night(config, epoch) for epoch in epochs)
    source_ids = {
        r.astrosource_id
        for r in PhotoPolResult.select(PhotoPolResult.astrosource)
        .join(Epoch)
        .where(Epoch.night == night)
    }
    sources = (
        AstroSource.select()
        .where(AstroSource.id.in_(list(source_ids)) & (AstroSource.srctype != "calibrator"))
        .order_by(AstroSource.name)
    )
    lines = []
    for source in sources:
        line = _source_line(config, source, night)
        line = dataclasses.replace(line, alerts=tuple(evaluate(line, config.alerts)))
        if plots:
            line = dataclasses.replace(line, plot_png=plot_source(line, night))
        lines.append(line)
    lines.sort(key=lambda line: (not line.alerts, line.name.casefold()))
    return NightSummary(
        night=night,
        generated_at=now or utcnow(),
        telescopes=telescopes,
        sources=tuple(lines),
        missing=tuple(_missing(night)),
        contact_name=config.smtp.contact_name,
        contact_email=config.smtp.contact_email,
        site_url=config.smtp.site_url,
        summary_url=site_link(config, urls.summary_page(night)),
    )


__all__ = ["build_night_summary", "site_link"]
