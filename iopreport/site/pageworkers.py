"""Rendering the units of a build: in forked worker processes when there are
many (each opens its own store connection), otherwise in the building process.
"""

from __future__ import annotations

from iopreport.site import nightcontext
from iopreport.site.nightpages import make_night_page
from iopreport.site.sitebuild import PageUnit, SiteBuild
from iopreport.site.sourcepages import make_source_page

#: Most units given to a worker process at a time (nights are read in chunks of this size).
UNITS_PER_TASK = 50
#: Fewer units than this are rendered in the building process itself.
MIN_UNITS_FOR_WORKERS = 12
_WORKER_BUILD: SiteBuild | None = None  # the build a forked worker renders for


def render_units(build: SiteBuild, todo: list[PageUnit], workers: int) -> None:
    """Render the units, in ``workers`` forked processes when there are many."""
    global _WORKER_BUILD
    if workers <= 1 or len(todo) < MIN_UNITS_FOR_WORKERS or not _can_fork():
        results = _render_task(build, todo)
    else:
        import multiprocessing

        from iopreport.store.models import database_proxy

        # at least two tasks per worker, so a few pages are shared out too (not one task)
        size = max(1, min(UNITS_PER_TASK, -(-len(todo) // (2 * workers))))
        tasks = [todo[i : i + size] for i in range(0, len(todo), size)]
        database_proxy.close()  # each worker opens its own connection (never share one)
        _WORKER_BUILD = build
        try:
            with multiprocessing.get_context("fork").Pool(
                workers, initializer=_default_signals
            ) as pool:
                results = [r for part in pool.imap(_worker_task, tasks) for r in part]
        finally:
            _WORKER_BUILD = None
    for key, digest, files in results:
        build.new.units[key] = {"hash": digest, "files": files}
        build.rendered += 1


def _default_signals() -> None:
    """Forked workers must not inherit a caller's handlers (the daemon's SIGTERM stop)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _worker_task(units: list[PageUnit]) -> list[tuple[str, str, list[str]]]:
    assert _WORKER_BUILD is not None
    return _render_task(_WORKER_BUILD, units)


def _render_task(build: SiteBuild, units: list[PageUnit]) -> list[tuple[str, str, list[str]]]:
    night_ids = [unit.spec[0].id for unit in units if unit.kind == "night"]
    nights = nightcontext.nights_context(night_ids, build.sources) if night_ids else {}
    done = []
    for unit in units:
        if unit.kind == "source":
            files = make_source_page(build, *unit.spec)
        else:
            files = make_night_page(build, *unit.spec, nights[unit.spec[0].id])
        done.append((unit.key, unit.digest, files))
    return done
