"""``iopreport build``: re-apply catalog.toml and flags.toml, then render the site.

Order (docs/flags.md, "What a build does"):

1. read and check catalog.toml and flags.toml -- any mistake raises
   :class:`~iopreport.errors.InputError` naming the line, *before* the store
   is opened: the database and the published site are left untouched;
2. in ONE transaction: write the catalog into the store, recompute what
   depends on it (``recompute``), the automatic flags, and the manual flags;
3. render the site (``render``), which publishes atomically itself.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iopreport.catalog import Catalog, load_catalog, retirement, sync_catalog
from iopreport.config import Config
from iopreport.errors import UsageError
from iopreport.flags.automatic import AutoReport, apply_automatic_flags
from iopreport.flags.manual import ApplyReport, apply_flags
from iopreport.flags.model import FlagSet
from iopreport.flags.parse import load_flags

log = logging.getLogger(__name__)

Render = Callable[..., Any]
Recompute = Callable[[Catalog], Any]


@dataclass
class BuildReport:
    """What :func:`run_build` did."""

    catalog_counts: dict[str, int] = field(default_factory=dict)
    recomputed: Any = None
    automatic: AutoReport | None = None
    manual: ApplyReport | None = None
    rendered: Any = None
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [
            "catalog: " + ", ".join(f"{v} {k}" for k, v in self.catalog_counts.items()),
        ]
        if self.recomputed is not None and hasattr(self.recomputed, "summary"):
            parts.append(self.recomputed.summary())
        if self.automatic:
            parts.append(self.automatic.summary())
        if self.manual:
            parts.append(self.manual.summary())
        return "; ".join(parts)


def load_inputs(config: Config) -> tuple[Catalog, FlagSet]:
    """catalog.toml and flags.toml, checked (InputError naming the line on any mistake)."""
    catalog = load_catalog(config.paths.catalog)
    telescopes = sorted({i.telescope for i in config.instruments.values()})
    flagset = load_flags(
        config.paths.flags, catalog, telescopes=telescopes, registry=config.registry
    )
    return catalog, flagset


def apply_inputs(
    config: Config,
    catalog: Catalog,
    flagset: FlagSet,
    *,
    recompute: Recompute | None = None,
    report: BuildReport | None = None,
) -> BuildReport:
    """Step 2 of a build, on an open store, in one transaction."""
    from iopreport.store.database import write_transaction

    report = report or BuildReport()
    started = time.perf_counter()
    with write_transaction():
        report.catalog_counts = sync_catalog(catalog)
        if recompute is not None:  # magnitudes from stored fluxes with the new catalog
            report.recomputed = recompute(catalog)
        report.automatic = apply_automatic_flags(config)
        report.manual = apply_flags(flagset)
    report.seconds["apply"] = time.perf_counter() - started
    return report


def check_retirement(config: Config, catalog: Catalog) -> None:
    """Refuse (UsageError) a catalog that would retire too many sources; the store is open."""
    refusal = retirement(catalog).refusal(config.safety.max_retire_share)
    if refusal:
        raise UsageError(
            f"{catalog.path}: not applied: {refusal}. If that is meant, run "
            "`iopreport build --allow-retire`; otherwise restore the file "
            "(the store and the published site are unchanged)"
        )


def _recompute(config: Config, flagset: FlagSet, full: bool, catalog: Catalog):
    """Mark the frames flags.toml excludes, then recompute stale nights from stored fluxes."""
    from iopreport.flags.frames import excluded_frames
    from iopreport.reduce.recompute import recompute_if_needed

    excluded_frames(flagset, mark=True)
    return recompute_if_needed(config, catalog, force=full)


def _default_render() -> Render | None:
    try:
        from iopreport.site import render_site
    except ImportError:  # the site package is optional for library users
        return None
    return render_site


def run_build(
    config: Config,
    *,
    full: bool = False,
    render: Render | None = None,
    recompute: Recompute | None = None,
    allow_retire: bool = False,
) -> BuildReport:
    """Re-apply catalog.toml and flags.toml to the store, then render the site.

    Parameters
    ----------
    config : Config
        The loaded configuration.
    full : bool
        Passed to ``render``: rebuild every page, not only what changed.
    render : callable, optional
        ``render(config, full=full)``; default ``iopreport.site.render_site``.
    recompute : callable, optional
        ``recompute(catalog)``, run after the catalog is written and before
        the automatic flags; default: mark the frames flags.toml excludes and
        recompute, from the stored fluxes, the nights whose catalog, polarimetry
        settings or excluded frames changed (all of them with ``full``;
        :mod:`iopreport.reduce.recompute`).
    allow_retire : bool
        Write a catalog even if it retires every source, or more than
        ``safety.max_retire_share`` of those with results (an emptied or
        truncated catalog.toml would otherwise empty the site).

    Raises
    ------
    InputError
        catalog.toml or flags.toml has a mistake; nothing was written.
    UsageError
        The catalog would retire too many sources; nothing was written.
    """
    from iopreport.store import open_store

    report = BuildReport()
    started = time.perf_counter()
    catalog, flagset = load_inputs(config)
    report.seconds["load"] = time.perf_counter() - started
    open_store(config.database_path)
    if not allow_retire:
        check_retirement(config, catalog)
    if recompute is None:
        recompute = functools.partial(_recompute, config, flagset, full)
    if render is None:
        render = _default_render()
    apply_inputs(config, catalog, flagset, recompute=recompute, report=report)
    log.info("build: %s", report.summary())
    if render is not None:
        started = time.perf_counter()
        report.rendered = render(config, full=full)
        report.seconds["render"] = time.perf_counter() - started
    return report
