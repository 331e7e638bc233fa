"""Recompute the results of reduced nights from the stored fluxes (no pixels, no astrometry).

``iopreport build`` calls :func:`recompute_if_needed`: when catalog.toml or the
``[polarimetry]`` configuration changed since the last build (a new
calibrator, a corrected magnitude, a new instrumental-polarization entry), or
when a frame flag excluded or re-admitted frames of a night, the relative
photometry, the polarimetric sequences and the host-galaxy correction of the
nights concerned are computed again from ``AperPhotResult`` rows. The state
of the last recomputation is kept in ``<datadir>/recompute-state.json``
(derived data: deleting it only makes the next build recompute everything).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from iopreport.catalog import Catalog
from iopreport.config import Config
from iopreport.fileio import write_text_atomic
from iopreport.reduce.hostnight import correct_host_galaxies
from iopreport.reduce.night import store_relphot
from iopreport.reduce.polnight import compute_night_polarimetry
from iopreport.store import (
    AperPhotResult,
    AstroSource,
    Epoch,
    PhotoPolResult,
    RawFit,
    RawFitFlags,
    ReducedFit,
    ReducedFitFlags,
)
from iopreport.store.models import database_proxy

log = logging.getLogger(__name__)

STATE_FILE = "recompute-state.json"


@dataclass
class RecomputeReport:
    """What a recomputation did."""

    reason: str = ""
    epochs: list[str] = field(default_factory=list)
    photometry_results: int = 0
    sequences: int = 0

    def summary(self) -> str:
        if not self.epochs:
            return "results up to date with catalog.toml, flags and [polarimetry]"
        return (
            f"recomputed {len(self.epochs)} night(s) from stored fluxes ({self.reason}): "
            f"{self.photometry_results} photometry results, {self.sequences} sequences"
        )


def inputs_fingerprint(config: Config, catalog: Catalog) -> str:
    """Hash of what results depend on beyond the pixels: catalog and [polarimetry]."""
    parts = [Path(catalog.path).read_bytes().hex() if Path(catalog.path).exists() else ""]
    parts.append(repr(config.polarimetry))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _excluded_by_epoch() -> dict[str, list[str]]:
    query = (
        RawFit.select(RawFit.filename, Epoch.telescope, Epoch.night)
        .join(Epoch)
        .where(RawFit.flags.bin_and(int(RawFitFlags.EXCLUDED)) != 0)
        .order_by(RawFit.filename)
    )
    excluded: dict[str, list[str]] = {}
    for row in query:
        excluded.setdefault(row.epoch.epochname, []).append(row.filename)
    return excluded


def recompute_if_needed(
    config: Config, catalog: Catalog, *, force: bool = False
) -> RecomputeReport:
    """Recompute the nights whose results are stale (see the module docstring)."""
    state_path = config.paths.datadir / STATE_FILE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    fingerprint = inputs_fingerprint(config, catalog)
    excluded = _excluded_by_epoch()
    report = RecomputeReport()
    epochs = list(Epoch.select().order_by(Epoch.night, Epoch.telescope))
    if force or state.get("fingerprint") != fingerprint:
        report.reason = "catalog.toml or [polarimetry] changed" if state else "first build"
        chosen = epochs
    else:
        before = state.get("excluded", {})
        changed = {
            name for name in set(before) | set(excluded) if before.get(name) != excluded.get(name)
        }
        chosen = [e for e in epochs if e.epochname in changed]
        report.reason = "frame flags changed"
    for epoch in chosen:
        reduced = ReducedFit.select().join(RawFit).where(RawFit.epoch == epoch).exists()
        if not reduced:  # nothing measured here (e.g. imported results): nothing to redo
            continue
        with database_proxy.atomic():
            report.photometry_results += recompute_photometry(catalog, epoch)
            report.sequences += compute_night_polarimetry(config, catalog, epoch)
            correct_host_galaxies(catalog, epoch)
        report.epochs.append(epoch.epochname)
    write_text_atomic(
        state_path,
        json.dumps({"fingerprint": fingerprint, "excluded": excluded}, indent=1, sort_keys=True),
    )
    if report.epochs:
        log.info(report.summary())
    return report


def recompute_photometry(catalog: Catalog, epoch: Epoch) -> int:
    """Relphot results of every measured photometric frame of ``epoch``, from stored fluxes."""
    sources = {s.name: s for s in AstroSource.select()}
    frames = (
        ReducedFit.select(ReducedFit, RawFit)
        .join(RawFit)
        .where(
            (RawFit.epoch == epoch)
            & (RawFit.obsmode == "photometry")
            & (ReducedFit.flags.bin_and(int(ReducedFitFlags.PHOTOMETRY_DONE)) != 0)
        )
    )
    count = 0
    for reduced in frames:
        rawfit = reduced.rawfit
        members_key = PhotoPolResult.make_members_key([f"{epoch.epochname}/{rawfit.filename}"])
        PhotoPolResult.delete().where(
            (PhotoPolResult.members_key == members_key) & (PhotoPolResult.method == "relphot")
        ).execute()
        if rawfit.flags & RawFitFlags.EXCLUDED or reduced.error:
            continue
        totals: dict[str, tuple[float, float, int]] = {}
        radius = None
        rows = (
            AperPhotResult.select(AperPhotResult, AstroSource)
            .join(AstroSource)
            .where(AperPhotResult.reducedfit == reduced)
        )
        for row in rows:
            if row.flux_counts is None or row.flux_counts_err is None:
                continue
            name = row.astrosource.name
            flux, variance, flags = totals.get(name, (0.0, 0.0, 0))
            totals[name] = (
                flux + row.flux_counts,
                variance + row.flux_counts_err**2,
                flags | row.flags,
            )
            radius = row.aperture_px
        count += store_relphot(rawfit, catalog, sources, totals, radius)
    return count
