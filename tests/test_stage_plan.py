"""The planner on a handful of RawFit rows in a temporary SQLite store (no night simulated).

It reads only: which masters to build, which masters a frame uses
(:data:`iopreport.reduce.plan.CALIBRATION_SET_CRITERIA`), which frames flags.toml
excludes, and nothing written to the store or the data folders.
"""

from __future__ import annotations

import datetime as dt

import pytest

from iopreport.catalog import load_catalog
from iopreport.config import load_config
from iopreport.reduce.classify import FrameInfo
from iopreport.reduce.plan import (
    CALIBRATION_SET_CRITERIA,
    criteria,
    master_work,
    match_master,
    science_tasks,
    uses,
)
from iopreport.reduce.state import Exclusions, NightReport, NightState
from iopreport.store import (
    Epoch,
    MasterBias,
    MasterFlags,
    MasterFlat,
    RawFit,
    RawFitFlags,
    close_store,
    open_store,
)

NIGHT = dt.date(2023, 2, 24)
TELESCOPE = "OSN-T090"
DETECTOR = {"instrument": "AndorT90", "imgsize": "2048x2048", "binning": "1x1"}


@pytest.fixture
def planner(project):
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    catalog = load_catalog(config.paths.catalog)
    epoch = Epoch.create(telescope=TELESCOPE, night=NIGHT)
    rawfits = []
    for i, (imgtype, band, extra) in enumerate(
        [("bias", None, {})] * 3
        + [("flat", "R", {"obsmode": "photometry"})] * 2
        + [("flat", "V", {"obsmode": "photometry"})]
        + [("light", "R", {"obsmode": "photometry", "object_name": "BL Lac"})] * 2
    ):
        rawfits.append(
            RawFit.create(
                epoch=epoch,
                filename=f"{imgtype}-{i:04d}.fit",
                flags=int(RawFitFlags.DOWNLOADED | RawFitFlags.CLASSIFIED),
                imgtype=imgtype,
                band=band,
                juliandate=2460000.5 + i / 1440,
                exptime=0.0 if imgtype == "bias" else 10.0,
                **DETECTOR,
                **extra,
            )
        )
    state = NightState(epoch, rawfits, NightReport(TELESCOPE, NIGHT))
    yield config, catalog, state
    close_store()


def _master(model, epoch, name, flags=0, **values):
    return model.create(
        epoch=epoch, filename=f"masters/{name}.fits", flags=flags, **{**DETECTOR, **values}
    )


def _info(rawfit) -> FrameInfo:
    return FrameInfo(
        instrument=rawfit.instrument,
        imgtype="light",
        band=rawfit.band,
        obsmode=rawfit.obsmode,
        angle=None,
        juliandate=rawfit.juliandate,
        exptime=rawfit.exptime,
        binning=(1, 1),
        size=(2048, 2048),
        object_name=rawfit.object_name,
    )


def test_the_criteria_table_says_what_must_match(project):
    spec = load_config(project / "config.toml").registry.get("AndorT90")
    assert CALIBRATION_SET_CRITERIA["bias"] == ("instrument", "imgsize", "binning")
    # the OSN wheel's flats are taken per polariser angle; DIPOL's serve every angle
    assert criteria("flat", spec)[3:] == ("band", "obsmode", "angle")
    assert uses("light", spec) == ("bias", "flat")  # the OSN CCDs take no darks
    dipol = load_config(project / "config.toml").registry.get("DIPOL")
    assert criteria("flat", dipol) == ("instrument", "imgsize", "binning", "band")
    assert uses("flat", dipol) == ("bias", "dark") and uses("light", dipol)[1] == "dark"


def test_master_jobs_group_by_the_criteria_and_write_nothing(planner):
    config, _, state = planner
    before = sorted(p.name for p in config.paths.datadir.rglob("*"))
    biases = master_work(config, state, "bias", force=False)
    assert [w.job.label for w in biases] == ["AndorT90_2048x2048_1x1"]
    assert len(biases[0].members) == 3 and biases[0].job.bias_path is None
    flats = master_work(config, state, "flat", force=False)
    assert sorted(w.values["band"] for w in flats) == ["R", "V"]
    assert {len(w.members) for w in flats} == {1, 2}
    assert all(w.master_bias is None for w in flats)  # no bias stored yet
    assert master_work(config, state, "flat", False, ("AndorT90", "1024x1024", "1x1")) == []
    assert sorted(p.name for p in config.paths.datadir.rglob("*")) == before
    assert MasterBias.select().count() == 0


def test_the_nearest_good_master_within_the_window_is_used(planner):
    config, _, state = planner
    epoch = state.epoch
    earlier = Epoch.create(telescope=TELESCOPE, night=NIGHT - dt.timedelta(days=3))
    too_old = Epoch.create(telescope=TELESCOPE, night=NIGHT - dt.timedelta(days=40))
    other = Epoch.create(telescope="OSN-T150", night=NIGHT)
    _master(MasterBias, too_old, "old")
    _master(MasterBias, other, "other telescope")
    assert match_master("bias", epoch, DETECTOR, config) is None
    three_days = _master(MasterBias, earlier, "three days")
    _master(MasterBias, epoch, "tonight but bad", flags=int(MasterFlags.BAD))
    assert match_master("bias", epoch, DETECTOR, config) == three_days
    tonight = _master(MasterBias, epoch, "tonight")
    assert match_master("bias", epoch, DETECTOR, config) == tonight
    assert match_master("bias", epoch, {**DETECTOR, "binning": "2x2"}, config) is None


def test_frames_use_the_masters_the_table_matches(planner):
    config, catalog, state = planner
    epoch = state.epoch
    bias = _master(MasterBias, epoch, "bias")
    flat_r = _master(MasterFlat, epoch, "flat R", band="R", obsmode="photometry")
    _master(MasterFlat, epoch, "flat V", band="V", obsmode="photometry")
    lights = [r for r in state.rawfits if r.imgtype == "light"]
    infos = {r.filename: _info(r) for r in lights}
    tasks = science_tasks(config, catalog, epoch, lights, False, state.report, infos=infos)
    assert [t.raw_path.name for t in tasks] == [r.filename for r in lights]
    for task in tasks:
        assert task.bias_path == config.paths.datadir / bias.filename
        assert task.flat_path == config.paths.datadir / flat_r.filename
        assert task.dark_path is None and task.spec.name == "AndorT90"
        assert task.target_radec is not None  # "BL Lac" identified in the catalog
        assert not task.reduced_path.exists()


def test_excluded_frames_are_left_out(planner):
    config, catalog, state = planner
    lights = [r for r in state.rawfits if r.imgtype == "light"]
    infos = {r.filename: _info(r) for r in lights}
    exclusions = Exclusions(frozenset({lights[0].fileloc, "OSN-T150/2023-02-24/x.fit"}))
    assert exclusions.in_night(state.epoch) == {lights[0].filename}
    tasks = science_tasks(
        config, catalog, state.epoch, lights, False, state.report, infos=infos,
        exclusions=exclusions,
    )  # fmt: skip
    assert [t.raw_path.name for t in tasks] == [lights[1].filename]


FLAG = """\
[[flag]]
id = "trail"
what = "frame"
file = ["light-0007.fit"]
reason = "satellite trail"
author = "a"
date = 2024-10-09
"""


def test_exclusions_are_decided_once_for_the_run(planner):
    from iopreport.errors import InputError
    from iopreport.reduce.run import decide_exclusions
    from iopreport.store import ReducedFit

    config, catalog, state = planner
    excluded = state.by_name["light-0007.fit"]
    ReducedFit.create(rawfit=excluded, filename="reduced.fits")
    config.paths.flags.write_text(FLAG)
    exclusions = decide_exclusions(config, catalog, [state])
    assert exclusions.in_night(state.epoch) == {"light-0007.fit"}
    assert RawFit.get_by_id(excluded.id).flags & RawFitFlags.EXCLUDED
    assert ReducedFit.get_or_none(ReducedFit.rawfit == excluded) is None  # forgotten
    config.paths.flags.write_text('[[flag]]\nid = "x"\nwhat = "frame"\n')
    with pytest.raises(InputError, match=r"flags\.toml"):
        decide_exclusions(config, catalog, [state])
    # a run without light frames does not read flags.toml
    masters_only = NightState(state.epoch, state.rawfits[:3], state.report)
    assert decide_exclusions(config, catalog, [masters_only]) == Exclusions()


def _statements(call) -> int:
    """How many SQL statements ``call()`` sends to the store."""
    database = Epoch._meta.database.obj
    sent = 0
    execute = database.execute_sql

    def counted(*args, **kwargs):
        nonlocal sent
        sent += 1
        return execute(*args, **kwargs)

    database.execute_sql = counted
    try:
        call()
    finally:
        del database.execute_sql
    return sent


def test_planning_a_night_reads_the_store_a_fixed_number_of_times(planner):
    """The store is read per night and per kind of master, not per frame: planning ten
    times as many light frames sends the same statements."""
    config, catalog, state = planner
    epoch = state.epoch
    _master(MasterBias, epoch, "bias")
    _master(MasterFlat, epoch, "flat-R", band="R", obsmode="photometry")
    template = next(r for r in state.rawfits if r.imgtype == "light")
    lights = [
        RawFit.create(
            **{**template.__data__, "id": None, "filename": f"more-{i:04d}.fit"},
        )
        for i in range(20)
    ]

    def plan(frames):
        infos = {r.filename: _info(r) for r in frames}
        return lambda: science_tasks(
            config, catalog, epoch, frames, False, state.report, infos=infos
        )

    assert _statements(plan(lights[:2])) == _statements(plan(lights))
