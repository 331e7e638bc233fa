"""The planner of a reduction run: which masters to build and which frames to reduce.

Reads the store and the raw headers only (the writer is
:mod:`iopreport.reduce.persist`). A master or frame is matched to the masters
it uses by :data:`CALIBRATION_SET_CRITERIA` (the attributes that must agree,
per kind of master, as BANZAI's ``CALIBRATION_SET_CRITERIA``; McCully et al.
2018), the same night first, else the nearest night within
``processing.master_validity_days`` (IOP4's master calibration, Escudero
Pedrosa et al. 2024, §3.2). Work already done for the same inputs is skipped.
See docs/architecture.md (reduction).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from iopreport import __version__
from iopreport.catalog import Catalog
from iopreport.config import Config
from iopreport.identify import identify_target
from iopreport.instruments import InstrumentSpec
from iopreport.reduce.classify import FrameInfo, classify_file
from iopreport.reduce.frametask import FrameTask
from iopreport.reduce.masterjob import MasterJob
from iopreport.reduce.masters import CalibrationFrame
from iopreport.reduce.measure import SkySource
from iopreport.reduce.references import SolvedDipolFrames
from iopreport.reduce.state import (
    NO_EXCLUSIONS,
    Exclusions,
    NightReport,
    NightState,
    raw_night_dir,
)
from iopreport.store import (
    Epoch,
    MasterBias,
    MasterBiasInput,
    MasterDark,
    MasterDarkInput,
    MasterFlags,
    MasterFlat,
    MasterFlatInput,
    RawFit,
    RawFitFlags,
    ReducedFit,
    ReducedFitFlags,
)

#: The attributes that say which detector a frame comes from.
DETECTOR = ("instrument", "imgsize", "binning")
#: Per kind of master, the attributes (RawFit columns, master columns) that must agree
#: between a master's frames, and between a master and what it calibrates.
CALIBRATION_SET_CRITERIA: Mapping[str, tuple[str, ...]] = {
    "bias": DETECTOR,
    "dark": DETECTOR,
    "flat": (*DETECTOR, "band", "obsmode", "angle"),
}
#: Flat attributes matched only for instruments that take flats per polarimetric setup
#: (``InstrumentSpec.flats_per_pol_setup``); other instruments' flats serve every mode.
POL_SETUP_CRITERIA = ("obsmode", "angle")
#: The masters each kind of job uses, in the order they are applied; darks only for
#: instruments that take them (``InstrumentSpec.needs_darks``).
USES: Mapping[str, tuple[str, ...]] = {
    "bias": (),
    "dark": ("bias",),
    "flat": ("bias", "dark"),
    "light": ("bias", "dark", "flat"),
}
#: The store's master and master-input tables, by kind.
MASTER_MODELS = {
    "bias": (MasterBias, MasterBiasInput),
    "dark": (MasterDark, MasterDarkInput),
    "flat": (MasterFlat, MasterFlatInput),
}
#: Frames whose astrometry depended on what the index folder held (no index covered them).
INDEX_DEPENDENT = ReducedFitFlags.HEADER_WCS | ReducedFitFlags.ERROR_ASTROMETRY


def criteria(kind: str, spec: InstrumentSpec) -> tuple[str, ...]:
    """The attributes a master of ``kind`` must share with what ``spec``'s frames it calibrates."""
    found = CALIBRATION_SET_CRITERIA[kind]
    if kind == "flat" and not spec.flats_per_pol_setup:
        found = tuple(a for a in found if a not in POL_SETUP_CRITERIA)
    return found


def uses(kind: str, spec: InstrumentSpec) -> tuple[str, ...]:
    """The kinds of master a job of ``kind`` (bias, dark, flat, light) uses on ``spec``."""
    return tuple(u for u in USES[kind] if u != "dark" or spec.needs_darks)


def master_keys(kind: str, rawfit: RawFit) -> tuple:
    """The values of :data:`CALIBRATION_SET_CRITERIA` that group ``rawfit`` into a master."""
    return tuple(getattr(rawfit, name) for name in CALIBRATION_SET_CRITERIA[kind])


def match_master(kind: str, epoch: Epoch, values: Mapping[str, object], config: Config):
    """The stored master of ``kind`` to use: agreeing on ``values``, never one flagged bad;
    the same night first, otherwise the nearest night within the validity window."""
    return nearest_master(masters_in_window(kind, epoch, config), epoch, values)


def masters_in_window(kind: str, epoch: Epoch, config: Config) -> list:
    """The telescope's masters of ``kind`` not flagged bad, of the nights within the
    validity window around ``epoch`` (an archive's history holds thousands)."""
    model, _ = MASTER_MODELS[kind]
    window = dt.timedelta(days=config.processing.master_validity_days)
    query = (
        model.select(model, Epoch)
        .join(Epoch)
        .where(
            (Epoch.telescope == epoch.telescope)
            & Epoch.night.between(epoch.night - window, epoch.night + window)
            & ((model.flags.bin_and(int(MasterFlags.BAD))) == 0)
        )
    )
    return list(query)


def nearest_master(candidates: list, epoch: Epoch, values: Mapping[str, object]):
    """Of ``candidates`` (:func:`masters_in_window`), the one agreeing on ``values`` from
    the nearest night (the first in store order among equals), or None."""
    best = None
    for master in candidates:
        if any(getattr(master, name) != value for name, value in values.items()):
            continue
        distance = abs(master.epoch.night - epoch.night)
        if best is None or distance < abs(best.epoch.night - epoch.night):
            best = master
    return best


def matched_masters(
    kind: str,
    spec: InstrumentSpec,
    epoch: Epoch,
    values: Mapping[str, object],
    config: Config,
    cache: dict,
) -> dict[str, object]:
    """The masters (kind -> row or None) that a job of ``kind`` with attribute ``values`` uses.

    ``cache`` (one per planning pass, while the stored masters do not change) keeps
    the masters of each kind within the night's window: one query per kind, not one
    per frame.
    """
    found = {}
    for used in uses(kind, spec):
        wanted = {a: values[a] for a in criteria(used, spec)}
        key = (used, epoch.id)
        if key not in cache:
            cache[key] = masters_in_window(used, epoch, config)
        found[used] = nearest_master(cache[key], epoch, wanted)
    return found


def frame_info(config: Config, state: NightState, rawfit: RawFit) -> FrameInfo:
    """``rawfit``'s classification: made in this run, else read again from its header."""
    info = state.infos.get(rawfit.filename)
    if info is None:  # unchanged since an earlier run, which classified it
        epoch = state.epoch
        folder = raw_night_dir(config, epoch.telescope, epoch.night)
        info = classify_file(
            folder / rawfit.filename, epoch.telescope, epoch.night, config.registry
        )
        state.infos[rawfit.filename] = info
    return info


def job_of(config: Config, state: NightState, rawfit: RawFit) -> tuple[str, tuple] | None:
    """(kind of job, detector) of a raw frame, None for frames that are not reduced.

    Calibration frames are jobs of their kind; light frames are ``frames``, or
    ``subframes`` when placed by quads (their detector is the full frame's).
    """
    if not rawfit.flags & RawFitFlags.CLASSIFIED:
        return None
    if rawfit.imgtype in ("bias", "dark", "flat"):
        return rawfit.imgtype, (rawfit.instrument, rawfit.imgsize, rawfit.binning)
    if rawfit.imgtype != "light":
        return None
    info = frame_info(config, state, rawfit)
    spec = config.registry.get(info.instrument)
    full = spec.shape_at(info.binning[0])
    subframe = spec.solves_by_quads(info.subframe_origin)
    size = f"{full[0]}x{full[1]}" if subframe else info.imgsize
    return ("subframes" if subframe else "frames"), (info.instrument, size, info.binning_text)


@dataclass
class MasterWork:
    """A master job with what is needed to write its row afterwards."""

    job: MasterJob
    keys: tuple
    members: list[RawFit]
    existing: object
    master_bias: object
    master_dark: object
    state: NightState

    @property
    def values(self) -> dict[str, object]:
        """The master's attributes (:data:`CALIBRATION_SET_CRITERIA`) by name."""
        return dict(zip(CALIBRATION_SET_CRITERIA[self.job.kind], self.keys, strict=True))


def master_work(
    config: Config, state: NightState, kind: str, force: bool, detector=None
) -> list[MasterWork]:
    """Jobs of one kind of master for one night (those not already built from the same frames).

    ``detector`` (instrument, frame size, binning) keeps only that detector's.
    """
    epoch = state.epoch
    folder = raw_night_dir(config, epoch.telescope, epoch.night)
    groups: dict[tuple, list[RawFit]] = defaultdict(list)
    for rawfit in state.rawfits:
        if rawfit.imgtype == kind and rawfit.flags & RawFitFlags.CLASSIFIED:
            groups[master_keys(kind, rawfit)].append(rawfit)
    model, _ = MASTER_MODELS[kind]
    work = []
    matches: dict = {}  # no master is stored while planning
    stored = {  # the night's masters of this kind by file name, in one query
        master.filename: master for master in model.select().where(model.epoch == epoch)
    }
    for keys, members in sorted(groups.items(), key=lambda item: str(item[0])):
        values = dict(zip(CALIBRATION_SET_CRITERIA[kind], keys, strict=True))
        spec = config.registry.get(values["instrument"])
        if detector is not None and tuple(keys[:3]) != tuple(detector):
            continue
        label = "_".join(str(k) for k in keys if k is not None).replace(" ", "")
        path = (
            config.paths.data_subdir(f"master{kind}")
            / epoch.telescope
            / epoch.night.isoformat()
            / f"master{kind}_{label}.fits"
        )
        existing = stored.get(str(path.relative_to(config.paths.datadir)))
        if existing is not None and not force and path.exists():
            used = {i.rawfit.filename for i in existing.inputs}
            if used <= {m.filename for m in members}:
                continue
        masters = matched_masters(kind, spec, epoch, values, config, matches)
        master_bias, master_dark = masters.get("bias"), masters.get("dark")
        header_keys = {
            "instrume": values["instrument"],
            "imgsize": values["imgsize"],
            "binning": values["binning"],
            "band": values.get("band"),
            "obsmode": values.get("obsmode"),
            "angle": values.get("angle"),
            "night": epoch.night.isoformat(),
            "telescop": epoch.telescope,
            "iopvers": __version__,
        }
        job = MasterJob(
            kind=kind,
            label=label,
            spec=spec,
            frames=tuple(CalibrationFrame(folder / m.filename, m.exptime or 0.0) for m in members),
            path=path,
            bias_path=config.paths.datadir / master_bias.filename if master_bias else None,
            dark_path=config.paths.datadir / master_dark.filename if master_dark else None,
            header_keys=tuple(header_keys.items()),
        )
        work.append(MasterWork(job, keys, members, existing, master_bias, master_dark, state))
    return work


def index_folder_state(folder: Path) -> str:
    """A fingerprint of the FITS files in ``folder`` (names, sizes, times), '' when none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return ""
    entries = sorted(
        (str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns)
        for path in folder.rglob("*.fits")
        if (stat := path.stat())
    )
    return hashlib.sha256(repr(entries).encode()).hexdigest()[:16] if entries else ""


def reduced_name(raw_name: str) -> str:
    """``x.fit``, ``x.fts``, ``x.fits.gz`` -> ``x.fits``."""
    stem = raw_name[: -len(".gz")] if raw_name.lower().endswith(".gz") else raw_name
    return Path(stem).with_suffix(".fits").name


def inputs_key(task: FrameTask, sha256: str | None, *, index_state: bool = False) -> str:
    """What a reduced frame depends on: raw checksum, masters, index folder, code version.

    With ``index_state`` (frames placed by their header, or that failed plate
    solving) the key holds the index folder's content too, so such a frame is
    reduced again when index files are added, and no other frame is.
    """
    parts = [
        sha256 or "",
        str(task.bias_path or ""),
        str(task.dark_path or ""),
        str(task.flat_path or ""),
        str(task.index_dir),
        __version__,
        str(task.reference.path) if task.reference else "",
        str(task.orientation or ""),
        task.index_state if index_state else "",
    ]
    for path in (task.bias_path, task.dark_path, task.flat_path):
        parts.append(str(path.stat().st_mtime_ns) if path and path.exists() else "")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def science_tasks(
    config: Config,
    catalog: Catalog,
    epoch: Epoch,
    rawfits: list[RawFit],
    force: bool,
    report: NightReport,
    subframes: bool = False,
    infos: Mapping[str, FrameInfo] | None = None,
    exclusions: Exclusions = NO_EXCLUSIONS,
) -> list[FrameTask]:
    """Tasks of the light frames that need (re)doing: quad-placed sub-frames only, or all others.

    ``infos`` maps file names to their classification when the caller has it;
    frames in ``exclusions`` (flags.toml) are left out.
    """
    folder = raw_night_dir(config, epoch.telescope, epoch.night)
    sources = tuple(SkySource(s.name, s.ra_deg, s.dec_deg) for s in catalog.sources)
    tasks = []
    solved = SolvedDipolFrames(config, catalog) if subframes else None
    # frames placed by their header's WCS, or that failed plate solving, are tried again
    # when the index folder changes (their inputs key holds the folder's state)
    index_state = index_folder_state(config.paths.astrometry_index_dir)
    matches: dict = {}  # (kind, night) -> masters in its window: none is stored while planning
    reduced_before = {
        row.rawfit_id: row
        for row in ReducedFit.select().where(ReducedFit.rawfit.in_([r.id for r in rawfits]))
    }

    for rawfit in rawfits:
        if rawfit.imgtype != "light" or not rawfit.flags & RawFitFlags.CLASSIFIED:
            continue
        if exclusions.excludes(epoch, rawfit.filename):
            continue
        info = (
            infos[rawfit.filename]
            if infos
            else classify_file(
                folder / rawfit.filename, epoch.telescope, epoch.night, config.registry
            )
        )
        spec = config.registry.get(info.instrument)
        is_subframe = spec.solves_by_quads(info.subframe_origin)
        if is_subframe != subframes:
            continue
        full = spec.shape_at(info.binning[0])
        size = info.imgsize if info.subframe_origin == (0, 0) else f"{full[0]}x{full[1]}"
        values = {
            "instrument": info.instrument,
            "imgsize": size,
            "binning": info.binning_text,
            "band": info.band,
            "obsmode": info.obsmode,
            "angle": info.angle,
        }
        masters = matched_masters("light", spec, epoch, values, config, matches)
        bias, dark, flat = (masters.get(kind) for kind in ("bias", "dark", "flat"))
        target = identify_target(info.object_name, catalog.sources)
        hint = info.pointing
        target_radec = None
        field_radec: tuple[tuple[float, float], ...] = ()
        if target:
            entry = catalog.get(target)
            target_radec = (entry.ra_deg, entry.dec_deg)
            hint = hint or target_radec
            field_radec = tuple(
                (catalog.get(c).ra_deg, catalog.get(c).dec_deg)
                for c in entry.calibrators
                if catalog.get(c) is not None
            )
        reduced = (
            config.paths.data_subdir("calibration")
            / epoch.telescope
            / epoch.night.isoformat()
            / f"{rawfit.filename}.d"
            / "ReducedFit"
            / reduced_name(rawfit.filename)
        )
        task = FrameTask(
            raw_path=folder / rawfit.filename,
            reduced_path=reduced,
            info=info,
            bias_path=config.paths.datadir / bias.filename if bias else None,
            dark_path=config.paths.datadir / dark.filename if dark else None,
            flat_path=config.paths.datadir / flat.filename if flat else None,
            sources=sources,
            position_hint=hint,
            index_dir=config.paths.astrometry_index_dir,
            index_state=index_state,
            budget_s=config.processing.astrometry_timeout_s,
            spec=spec,
            target_radec=target_radec,
            field_radec=field_radec if is_subframe else (),
            reference=solved.reference(target, epoch, rawfit) if is_subframe and target else None,
        )
        if is_subframe and task.reference is None:  # the fallback's orientation, to 0.1 deg
            found = solved.orientation(epoch, info.flipped)
            if found is not None:
                task = dataclasses.replace(task, orientation=(round(found[0], 1), found[1]))
        existing = reduced_before.get(rawfit.id)
        if (
            existing is not None
            and not force
            and existing.inputs_key
            == inputs_key(
                task,
                rawfit.sha256,
                index_state=bool(existing.flags & INDEX_DEPENDENT),
            )
            and reduced.exists()
        ):
            report.frames_skipped += 1
            continue
        tasks.append(task)
    return tasks
