"""Writing a checked catalog into the store: the ``AstroSource`` table and its links.

:func:`sync_catalog` writes it in one transaction, matching sources by name;
:func:`retirement` tells beforehand which sources it would retire, so that a
build can refuse a catalog that would retire too many (:class:`Retirement`).
"""

from __future__ import annotations

from dataclasses import dataclass

from iopreport.catalog.model import Catalog
from iopreport.telescopes import BANDS


@dataclass(frozen=True)
class Retirement:
    """What writing a catalog into the store would retire (read from the open store)."""

    retired: tuple[str, ...]  # sources now in the catalog that the file no longer lists
    retired_observed: tuple[str, ...]  # those of them with results
    in_catalog: int  # sources in the catalog now
    observed: int  # sources in the catalog now with results

    def refusal(self, max_share: float) -> str | None:
        """Why a build must not write this catalog without ``--allow-retire``, or None.

        Refused: retiring every source of the store's catalog, or more than
        ``max_share`` of the sources that have results.
        """
        if not self.retired:
            return None
        if len(self.retired) == self.in_catalog:
            return f"it would retire every one of the {self.in_catalog} sources"
        if self.observed and len(self.retired_observed) > max_share * self.observed:
            return (
                f"it would retire {len(self.retired_observed)} of the {self.observed} sources "
                f"with results (more than safety.max_retire_share = {max_share:g}): "
                + ", ".join(self.retired_observed[:10])
                + (" ..." if len(self.retired_observed) > 10 else "")
            )
        return None


def retirement(catalog: Catalog) -> Retirement:
    """Which sources :func:`sync_catalog` would retire, matched as it matches them."""
    from iopreport.store.models import AstroSource, PhotoPolResult

    current = {s.name.casefold(): s for s in AstroSource.select().where(AstroSource.in_catalog)}
    for entry in catalog.sources:
        for name in (entry.name, *entry.other_names):
            current.pop(name.casefold(), None)
    observed = {
        row.astrosource_id
        for row in PhotoPolResult.select(PhotoPolResult.astrosource)
        .join(AstroSource)
        .where(AstroSource.in_catalog)
        .distinct()
    }
    retired = sorted(current.values(), key=lambda s: s.name)
    in_catalog = AstroSource.select().where(AstroSource.in_catalog).count()
    return Retirement(
        retired=tuple(s.name for s in retired),
        retired_observed=tuple(s.name for s in retired if s.id in observed),
        in_catalog=in_catalog,
        observed=len(observed),
    )


def sync_catalog(catalog: Catalog) -> dict[str, int]:
    """Write ``catalog`` into the store (``AstroSource`` and its link tables).

    Sources are matched by name, ignoring case. A source renamed in the file
    keeps its row (and so its results) when its old name is listed in
    ``other_names``. A source missing from the file keeps its row with
    ``in_catalog = False`` (results pointing at it stay readable) and loses its
    calibrator and polarization links.

    Returns
    -------
    dict
        Counts: ``added``, ``updated``, ``retired``.
    """
    from iopreport.store.models import (
        AstroSource,
        Calibrator,
        StandardPolarization,
        database_proxy,
        utcnow,
    )

    counts = {"added": 0, "updated": 0, "retired": 0}
    with database_proxy.atomic():
        existing = {s.name.casefold(): s for s in AstroSource.select()}
        rows: dict[str, AstroSource] = {}
        for entry in catalog.sources:
            row = existing.pop(entry.name.casefold(), None)
            for old_name in entry.other_names:
                if row is None:
                    row = existing.pop(old_name.casefold(), None)
            values = {
                "other_names": list(entry.other_names),
                "srctype": entry.srctype,
                "ra_deg": entry.ra_deg,
                "dec_deg": entry.dec_deg,
                "redshift": entry.redshift,
                "comment": entry.comment,
                "references": list(entry.references)
                + [f"mag.{band}: {mag.derived}" for band, mag in entry.derived_mags.items()],
                "in_catalog": True,
                "catalog_line": entry.line,
                "modified": utcnow(),
            }
            for band in BANDS:
                mag = entry.mags.get(band)
                values[f"mag_{band}"] = mag.value if mag else None
                values[f"mag_{band}_err"] = mag.err if mag else None
            if row is None:
                row = AstroSource.create(name=entry.name, **values)
                counts["added"] += 1
            else:
                AstroSource.update(name=entry.name, **values).where(
                    AstroSource.id == row.id
                ).execute()
                counts["updated"] += 1
            rows[entry.name] = row
        retired_ids = [row.id for row in existing.values() if row.in_catalog]
        if retired_ids:
            AstroSource.update(in_catalog=False).where(AstroSource.id.in_(retired_ids)).execute()
        counts["retired"] = len(retired_ids)

        Calibrator.delete().execute()
        StandardPolarization.delete().execute()
        links = []
        pols = []
        for entry in catalog.sources:
            for calibrator in entry.calibrators:
                other = catalog.get(calibrator)
                links.append({"target": rows[entry.name].id, "calibrator": rows[other.name].id})
            for band, pol in entry.pol.items():
                pols.append(
                    {
                        "source": rows[entry.name].id,
                        "band": band,
                        "p": pol.p,
                        "p_err": pol.p_err,
                        "chi": pol.chi,
                        "chi_err": pol.chi_err,
                    }
                )
        if links:
            Calibrator.insert_many(links).execute()
        if pols:
            StandardPolarization.insert_many(pols).execute()
    return counts
