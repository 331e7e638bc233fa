"""Frame flags: the raw frames they exclude, marked ``RawFitFlags.EXCLUDED`` in the store.

The reduction skips excluded frames (:func:`excluded_frames`,
:func:`excluded_in_epoch`) and forgets what one of them produced before
(:func:`drop_frame_products`), so its sequence is recomputed without it.
"""

from __future__ import annotations

from iopreport.flags import prefilter
from iopreport.flags.match import FlagIndex, selects_frame
from iopreport.flags.model import Flag, FlagSet
from iopreport.flags.views import frame_views
from iopreport.store.bits import RawFitFlags
from iopreport.store.models import (
    Epoch,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    ReducedFit,
    database_proxy,
)


def frame_flag_hits(flagset: FlagSet) -> tuple[dict[str, list[Flag]], dict[str, tuple[int, int]]]:
    """Frames selected by frame flags: location -> flags; and location -> (id, flags)."""
    hits: dict[str, list[Flag]] = {}
    rows: dict[str, tuple[int, int]] = {}
    frame_flags = flagset.frame_flags
    if not frame_flags:
        return hits, rows
    need_target = any(f.source for f in frame_flags)
    index = FlagIndex(frame_flags)
    where = prefilter.frames_where(frame_flags)
    for rid, flags, view in frame_views(flagset.catalog, need_target=need_target, where=where):
        candidates = index.candidates(view.target, view.night, (view.fileloc,), view.jd, view.jd)
        selected = [f for f in candidates if selects_frame(f, view)]
        if selected:
            hits[view.fileloc] = selected
            rows[view.fileloc] = (rid, flags)
    return hits, rows


def mark_excluded(hits: dict[str, tuple[int, int]]) -> int:
    """Set ``RawFitFlags.EXCLUDED`` on exactly the frames in ``hits``; return how many."""
    excluded = int(RawFitFlags.EXCLUDED)
    ids = {rid for rid, _ in hits.values()}
    with database_proxy.atomic():
        # only the frames whose bit changes are written: a frame that stays excluded is
        # not touched, so the site's change counters (store.changes) do not move for it
        query = RawFit.select(RawFit.id).where(RawFit.flags.bin_and(excluded) != 0)
        marked = {rid for (rid,) in query.tuples()}
        for chosen, value in (
            (sorted(marked - ids), RawFit.flags.bin_and(~excluded)),
            (sorted(ids - marked), RawFit.flags.bin_or(excluded)),
        ):
            for start in range(0, len(chosen), 500):
                RawFit.update(flags=value).where(
                    RawFit.id.in_(chosen[start : start + 500])
                ).execute()
    return len(ids)


def excluded_frames(flagset: FlagSet, *, mark: bool = True) -> set[str]:
    """Raw file locations (``TEL/YYYY-MM-DD/file``) that frame flags exclude.

    With ``mark`` (the default) the store agrees afterwards: exactly these
    frames carry ``RawFitFlags.EXCLUDED`` (a frame whose flag was removed
    loses it). The reduction skips them (``iopreport/reduce/night.py``).
    """
    hits, rows = frame_flag_hits(flagset)
    if mark:
        mark_excluded(rows)
    return set(hits)


def drop_frame_products(rawfit: RawFit) -> int:
    """Forget what an excluded frame produced: its reduced frame and every result it is in.

    Called by the reduction for a frame excluded by flags.toml, so that its
    sequence (a polarimetric group) is recomputed without it and a database
    rebuilt from scratch holds the same results. Returns the results removed.
    """
    with database_proxy.atomic():
        result_ids = [
            m.result_id
            for m in PhotoPolMember.select(PhotoPolMember.result).where(
                PhotoPolMember.rawfit == rawfit
            )
        ]
        removed = 0
        if result_ids:
            removed = PhotoPolResult.delete().where(PhotoPolResult.id.in_(result_ids)).execute()
        ReducedFit.delete().where(ReducedFit.rawfit == rawfit).execute()
    return removed


def excluded_in_epoch(config, catalog, epoch: Epoch) -> set[str]:
    """File names of ``epoch`` that frame flags exclude (for the reduction).

    Reads flags.toml (``config.paths.flags``; a missing file means no flags),
    marks ``RawFitFlags.EXCLUDED`` on the store, and returns the names.

    Raises
    ------
    InputError
        flags.toml has a mistake (the reduction of this night stops).
    """
    from iopreport.flags.parse import load_flags

    path = config.paths.flags
    if path.exists():
        telescopes = sorted({i.telescope for i in config.instruments.values()})
        flagset = load_flags(path, catalog, telescopes=telescopes, registry=config.registry)
    else:
        flagset = FlagSet(path=path, catalog=catalog)
    prefix = f"{epoch.epochname}/"
    return {loc[len(prefix) :] for loc in excluded_frames(flagset) if loc.startswith(prefix)}
