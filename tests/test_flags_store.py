"""flags.toml and [quality] applied to a store, run_build, and the `flags` commands (issue 6).

The store here is filled by hand (results with their member frames), so every
case is quick; tests/test_flags_roundtrip.py runs the real reduction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import subprocess
import textwrap

import pytest
import tomlkit

from iopreport import cli
from iopreport.build import run_build
from iopreport.catalog import load_catalog, sync_catalog
from iopreport.config import load_config
from iopreport.errors import InputError
from iopreport.flags.automatic import apply_automatic_flags
from iopreport.flags.check import check_flags
from iopreport.flags.frames import excluded_frames
from iopreport.flags.manual import apply_flags, evaluate
from iopreport.flags.parse import load_flags
from iopreport.store import (
    AperPhotResult,
    AstroSource,
    Epoch,
    ManualFlags,
    PhotometryFlags,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    RawFitFlags,
    ReducedFit,
    ReducedFitFlags,
    ResultFlags,
    close_store,
    open_store,
)

NIGHT = dt.date(2024, 10, 8)
JD0 = 2460592.30  # 2024-10-08 19:12 UTC


def add_result(
    source,
    files,
    *,
    telescope="OSN-T090",
    night=NIGHT,
    mode="photometry",
    band="R",
    instrument="AndorT90",
    jd=JD0,
    wcs=True,
    saturated=False,
    **columns,
):
    """A result of ``source`` made from raw ``files`` (created when new), with their frames."""
    epoch, _ = Epoch.get_or_create(telescope=telescope, night=night)
    target = AstroSource.get(AstroSource.name == source)
    rawfits = []
    for i, name in enumerate(files):
        rawfit, created = RawFit.get_or_create(
            epoch=epoch,
            filename=name,
            defaults={
                "imgtype": "light",
                "obsmode": mode,
                "band": band,
                "instrument": instrument,
                "juliandate": jd + i * 0.001,
                "object_name": source,
                "flags": int(RawFitFlags.DOWNLOADED | RawFitFlags.CLASSIFIED),
            },
        )
        if created:
            flags = ReducedFitFlags.CALIBRATED | (ReducedFitFlags.ASTROMETRY_OK if wcs else 0)
            reduced = ReducedFit.create(rawfit=rawfit, filename=f"r/{name}", flags=int(flags))
            AperPhotResult.create(
                reducedfit=reduced,
                astrosource=target,
                aperture_px=5,
                annulus_in_px=8,
                annulus_out_px=12,
                x_px=10,
                y_px=10,
                flags=int(PhotometryFlags.SATURATED if saturated else 0),
            )
        rawfits.append(rawfit)
    values = (
        {"mag": 14.0, "mag_err": 0.02, "n_calibrators": 3}
        if mode == "photometry"
        else {
            "q": 0.01,
            "u": 0.02,
            "p": 0.05,
            "p_err": 0.005,
            "chi": 30.0,
            "chi_err": 2.0,
        }
    )
    values.update(columns)
    result = PhotoPolResult.create(
        astrosource=target,
        epoch=epoch,
        members_key=PhotoPolResult.make_members_key(r.fileloc for r in rawfits),
        mode=mode,
        method="relphot" if mode == "photometry" else "osn-wheel",
        instrument=instrument,
        band=band,
        juliandate=jd + (len(files) - 1) * 0.0005,
        juliandate_min=jd,
        juliandate_max=jd + (len(files) - 1) * 0.001,
        n_frames=len(files),
        **values,
    )
    for rawfit in rawfits:
        PhotoPolMember.create(result=result, rawfit=rawfit)
    return result


def reload(result):
    return PhotoPolResult.get_by_id(result.id)


@pytest.fixture
def site(project, backend_location):
    """A project with a store holding three photometric and one polarimetric result,
    once in SQLite and once on PostgreSQL."""
    if isinstance(backend_location, str):  # a PostgreSQL URL
        document = tomlkit.parse((project / "config.toml").read_text())
        document["paths"]["database"] = backend_location
        (project / "config.toml").write_text(tomlkit.dumps(document))
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    catalog = load_catalog(config.paths.catalog)
    sync_catalog(catalog)
    results = {
        "bl_r": add_result("2200+420", ["BLLac-0001R.fit"], jd=JD0),
        "bl_v": add_result("2200+420", ["BLLac-0002V.fit"], band="V", jd=JD0 + 0.01),
        "3c_r": add_result(
            "2251+158",
            ["3C454-0001R.fit"],
            telescope="OSN-T150",
            instrument="AndorT150",
            jd=JD0 + 0.05,
        ),
        "bl_pol": add_result(
            "2200+420",
            [f"BLLac-00{i}R.fit" for i in range(10, 14)],
            mode="polarimetry",
            jd=JD0 + 0.02,
        ),
    }
    yield project, config, catalog, results
    close_store()


def write_flags(config, text: str) -> None:
    config.paths.flags.write_text(textwrap.dedent(text))


def load(config, catalog):
    return load_flags(config.paths.flags, catalog)


FLAGS = """\
# our flags
[[flag]]
id = "clouds"
what = "photometry"
source = "BL Lac"
night = 2024-10-08
band = "R"
reason = "cirrus after 22h"
author = "J. Doe"
date = 2024-10-09

[[flag]]
id = "pol"
what = ["polarimetry", "photometry"]
mode = "polarimetry"
telescope = "T090"
reason = "wheel stuck"
author = "A. B."
date = 2024-10-09
"""


def test_manual_flags_set_and_cleared(site):
    project, config, catalog, r = site
    write_flags(config, FLAGS)
    report = apply_flags(load(config, catalog))
    assert (report.results, report.flagged, report.changed) == (4, 2, 2)
    bl_r = reload(r["bl_r"])
    assert bl_r.manual_flags == ManualFlags.BAD_PHOTOMETRY
    assert bl_r.flag_reasons == [
        "manual: photometry [clouds] cirrus after 22h (J. Doe, 2024-10-09)"
    ]
    assert reload(r["bl_v"]).manual_flags == 0  # band V is not selected
    assert reload(r["3c_r"]).manual_flags == 0
    pol = reload(r["bl_pol"])
    assert pol.manual_flags == ManualFlags.BAD_PHOTOMETRY | ManualFlags.BAD_POLARIMETRY
    assert [t.split("]")[0] for t in pol.flag_reasons] == [
        "manual: photometry [clouds",  # the group is BL Lac, in R, that night too
        "manual: photometry [pol",
        "manual: polarimetry [pol",
    ]
    assert [len(report.matches[i].results) for i in ("clouds", "pol")] == [2, 1]
    assert apply_flags(load(config, catalog)).changed == 0  # the same file changes nothing

    write_flags(config, FLAGS.split('\n[[flag]]\nid = "pol"')[0])
    report = apply_flags(load(config, catalog))
    assert report.changed == 1
    pol = reload(r["bl_pol"])
    assert pol.manual_flags == ManualFlags.BAD_PHOTOMETRY and len(pol.flag_reasons) == 1
    assert reload(r["bl_r"]).manual_flags == ManualFlags.BAD_PHOTOMETRY


def test_time_range_and_file_selectors(site):
    project, config, catalog, r = site
    write_flags(
        config,
        f"""\
        [[flag]]
        id = "late"
        what = "photometry"
        from = {JD0 + 0.005}
        to = "2024-10-08T20:30:00"
        reason = "dome"
        author = "a"
        date = 2024-10-09

        [[flag]]
        id = "one-file"
        what = "photometry"
        file = "OSN-T150/2024-10-08/3C454-0001R.fit"
        reason = "trail"
        author = "a"
        date = 2024-10-09
        """,
    )
    apply_flags(load(config, catalog))
    flagged = {k for k, v in r.items() if reload(v).manual_flags}
    # 19:12 + 0.005 d = 19:19 .. 20:30 UTC: bl_v (19:26) and the group (19:40-19:44)
    assert flagged == {"bl_v", "bl_pol", "3c_r"}


def test_frame_flag_excludes_frames_and_marks_their_results(site):
    project, config, catalog, r = site
    write_flags(
        config,
        """\
        [[flag]]
        id = "trail"
        what = "frame"
        file = ["BLLac-0011R.fit", "BLLac-0001R.fit"]
        reason = "satellite trail"
        author = "a"
        date = 2024-10-09
        """,
    )
    flagset = load(config, catalog)
    assert excluded_frames(flagset, mark=False) == {
        "OSN-T090/2024-10-08/BLLac-0011R.fit",
        "OSN-T090/2024-10-08/BLLac-0001R.fit",
    }
    assert not RawFit.select().where(RawFit.flags.bin_and(int(RawFitFlags.EXCLUDED)) != 0).count()
    report = apply_flags(flagset)
    assert report.frames_excluded == 2
    excluded = RawFit.select().where(RawFit.flags.bin_and(int(RawFitFlags.EXCLUDED)) != 0)
    assert sorted(x.filename for x in excluded) == ["BLLac-0001R.fit", "BLLac-0011R.fit"]
    assert reload(r["bl_r"]).manual_flags == ManualFlags.BAD_FRAME
    pol = reload(r["bl_pol"])
    assert pol.manual_flags == ManualFlags.BAD_FRAME
    assert pol.flag_reasons == [
        "manual: frame [trail] satellite trail (a, 2024-10-09): OSN-T090/2024-10-08/BLLac-0011R.fit"
    ]
    assert reload(r["bl_v"]).manual_flags == 0
    assert report.matches["trail"].frames == tuple(sorted(excluded_frames(flagset, mark=False)))
    assert {x[2] for x in report.matches["trail"].frame_results} == {
        r["bl_r"].members_key,
        r["bl_pol"].members_key,
    }

    write_flags(config, "# no flags\n")
    apply_flags(load(config, catalog))
    assert not RawFit.select().where(RawFit.flags.bin_and(int(RawFitFlags.EXCLUDED)) != 0).count()
    assert reload(r["bl_pol"]).manual_flags == 0


def test_frame_flag_by_source_uses_the_frames_target(site):
    project, config, catalog, r = site
    write_flags(
        config,
        """\
        [[flag]]
        id = "bl"
        what = "frame"
        source = "BL Lacertae"
        mode = "photometry"
        reason = "r"
        author = "a"
        date = 2024-10-09
        """,
    )
    frames = excluded_frames(load(config, catalog))
    assert frames == {"OSN-T090/2024-10-08/BLLac-0001R.fit", "OSN-T090/2024-10-08/BLLac-0002V.fit"}


def test_automatic_flags_follow_the_quality_thresholds(site):
    project, config, catalog, r = site
    bad = {
        "p_range": add_result("2200+420", ["p1.fit", "p2.fit"], mode="polarimetry", p=1.2),
        "p_err": add_result("2200+420", ["p3.fit", "p4.fit"], mode="polarimetry", p_err=0.06),
        "chi_err": add_result("2200+420", ["p5.fit", "p6.fit"], mode="polarimetry", chi_err=20.0),
        "mag_err": add_result("2200+420", ["m1.fit"], mag_err=0.4),
        "few": add_result("2200+420", ["m2.fit"], n_calibrators=1),
        "no_wcs": add_result("2200+420", ["m3.fit"], wcs=False),
        "saturated": add_result("2200+420", ["m4.fit"], saturated=True),
    }
    PhotoPolResult.update(
        flags=int(ResultFlags.HOST_NOT_CORRECTED), flag_reasons=["host: no table for R"]
    ).where(PhotoPolResult.id == r["bl_v"].id).execute()
    report = apply_automatic_flags(config)
    assert report.results == 11
    expect = {
        "p_range": ResultFlags.P_OUT_OF_RANGE | ResultFlags.BAD_POLARIMETRY,
        "p_err": ResultFlags.LARGE_POL_ERROR | ResultFlags.BAD_POLARIMETRY,
        "chi_err": ResultFlags.LARGE_POL_ERROR | ResultFlags.BAD_POLARIMETRY,
        "mag_err": ResultFlags.LARGE_MAG_ERROR | ResultFlags.BAD_PHOTOMETRY,
        "few": ResultFlags.FEW_CALIBRATORS | ResultFlags.BAD_PHOTOMETRY,
        "no_wcs": ResultFlags.ASTROMETRY_FAILED | ResultFlags.BAD_PHOTOMETRY,
        "saturated": ResultFlags.TARGET_SATURATED | ResultFlags.BAD_PHOTOMETRY,
    }
    for name, bits in expect.items():
        assert reload(bad[name]).flags == bits, name
    assert reload(bad["mag_err"]).flag_reasons == [
        "auto: LARGE_MAG_ERROR: magnitude error 0.400 > 0.3 (quality.max_mag_err)"
    ]
    assert reload(bad["p_range"]).flag_reasons == ["auto: P_OUT_OF_RANGE: p = 1.2 outside [0, 1]"]
    # others' bits and texts are kept; good results stay clean
    assert reload(r["bl_v"]).flags == ResultFlags.HOST_NOT_CORRECTED
    assert reload(r["bl_v"]).flag_reasons == ["host: no table for R"]
    assert reload(r["bl_r"]).flags == 0 and reload(r["bl_pol"]).flags == 0
    assert apply_automatic_flags(config).changed == 0

    # looser thresholds in config.toml take effect at the next application
    text = config.source.read_text().replace("max_mag_err = 0.3", "max_mag_err = 0.5")
    text = text.replace("min_calibrators = 2", "min_calibrators = 1")
    config.source.write_text(text)
    config = load_config(config.source)
    assert config.quality.max_mag_err == 0.5
    report = apply_automatic_flags(config)
    assert report.changed == 2
    assert reload(bad["mag_err"]).flags == 0 and reload(bad["mag_err"]).flag_reasons == []
    assert reload(bad["few"]).flags == 0


def test_automatic_and_manual_texts_live_side_by_side(site):
    project, config, catalog, r = site
    PhotoPolResult.update(mag_err=0.5).where(PhotoPolResult.id == r["bl_r"].id).execute()
    write_flags(config, FLAGS)
    for _ in range(2):  # in either order, again and again: the same texts
        apply_automatic_flags(config)
        apply_flags(load(config, catalog))
    result = reload(r["bl_r"])
    assert [t.split(":")[0] for t in result.flag_reasons] == ["auto", "manual"]
    assert result.flags == ResultFlags.LARGE_MAG_ERROR | ResultFlags.BAD_PHOTOMETRY
    assert result.manual_flags == ManualFlags.BAD_PHOTOMETRY


@pytest.mark.parametrize(
    ("old", "line", "message"),
    [
        ("max_mag_err = 0.3", "max_mag_err = -1", "quality.max_mag_err: must be greater than 0"),
        ("min_calibrators = 2", "min_calibrators = 1.5", "quality.min_calibrators: must be an "),
        ("[quality]", "[quality]\nmax_p_er = 3", "quality.max_p_er: unknown key (did you mean"),
    ],
)
def test_quality_section_is_checked(project, old, line, message):
    path = project / "config.toml"
    text = path.read_text().replace(old, line)
    path.write_text(text)
    number = text.splitlines().index(line.split("\n")[-1]) + 1
    with pytest.raises(InputError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:{number}: {message}")


# ----------------------------------------------------------------------------- build


def store_name(config) -> str:
    from iopreport.store.dialect import describe

    path = config.database_path
    return describe(path) if isinstance(path, str) else path.name


def fingerprint(config) -> str:
    """The store's content, as an SQL dump (a build that fails must not change it).

    Not the file's bytes: those also change when SQLite checkpoints its write-ahead
    log, which happens when the last connection closes, e.g. one a finished thread
    left to the garbage collector.
    """
    import sqlite3

    from iopreport.config import is_database_url
    from iopreport.store.models import database_proxy

    if is_database_url(config.database_path):  # every row of every table, in id order
        tables = sorted(database_proxy.get_tables())
        rows = [
            database_proxy.execute_sql(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables
        ]
        return hashlib.sha256(repr(rows).encode()).hexdigest()
    connection = sqlite3.connect(f"file:{config.database_path}?mode=ro", uri=True)
    try:
        digest = hashlib.sha256("\n".join(connection.iterdump()).encode()).hexdigest()
    finally:
        connection.close()
    return digest


def fake_render(config, *, full=False):
    """Stands in for the site renderer: writes a page with a marker."""
    site = config.paths.site_dir
    site.mkdir(parents=True, exist_ok=True)
    flagged = PhotoPolResult.select().where(PhotoPolResult.manual_flags != 0).count()
    (site / "index.html").write_text(f"flagged={flagged} full={full}")
    return "rendered"


def test_build_reapplies_catalog_and_flags_then_renders(site):
    project, config, catalog, r = site
    write_flags(config, FLAGS)
    calls = []

    def recompute(catalog):
        calls.append(("recompute", AstroSource.get(name="2200+420 B").mag_R))
        return "recomputed"

    report = run_build(config, full=True, render=fake_render, recompute=recompute)
    assert report.rendered == "rendered" and report.recomputed == "recomputed"
    assert report.manual.flagged == 2 and report.automatic.results == 4
    assert (config.paths.site_dir / "index.html").read_text() == "flagged=2 full=True"

    # a catalog edit (a calibrator's magnitude, a new name) takes effect at the next build
    text = config.paths.catalog.read_text()
    assert 'other_names = ["3C 454.3"]' in text
    text = text.replace('other_names = ["3C 454.3"]', 'other_names = ["3C 454.3", "CTA 102x"]')
    old_mag = AstroSource.get(name="2200+420 B").mag_R
    text = text.replace(f"R = [{old_mag}", f"R = [{old_mag + 0.1:.2f}", 1)
    config.paths.catalog.write_text(text)
    with config.paths.flags.open("a") as stream:
        first = FLAGS.split("# our flags\n")[1].split("\n\n")[0]
        stream.write("\n" + first.replace('"clouds"', '"x"').replace("BL Lac", "CTA 102x") + "\n")
    run_build(config, render=fake_render, recompute=recompute)
    assert calls[-1] == ("recompute", pytest.approx(old_mag + 0.1))  # after the catalog sync
    assert AstroSource.get(name="2251+158").other_names == ["3C 454.3", "CTA 102x"]
    assert reload(r["3c_r"]).manual_flags == ManualFlags.BAD_PHOTOMETRY


@pytest.mark.parametrize("broken", ["flags", "catalog"])
def test_broken_input_stops_the_build_and_touches_nothing(site, broken):
    project, config, catalog, r = site
    write_flags(config, FLAGS)
    run_build(config, render=fake_render)
    page = config.paths.site_dir / "index.html"
    before_page = page.read_text()
    page_time = page.stat().st_mtime_ns
    before_db = fingerprint(config)
    if broken == "flags":
        # the curator removes one flag and mistypes a date in another
        text = FLAGS.replace('band = "R"\n', "").replace("date = 2024-10-09", "date = 2024-1-09")
        write_flags(config, text)
        line = text.splitlines().index("date = 2024-1-09") + 1
        expected = f"{config.paths.flags}:{line}: TOML syntax error"
    else:
        path = config.paths.catalog
        text = path.read_text().replace('type = "blazar"', 'type = "blazer"', 1)
        path.write_text(text)
        line = text.splitlines().index('type = "blazer"') + 1
        expected = f"{path}:{line}: source[0].type: unknown type 'blazer'"
    with pytest.raises(InputError) as info:
        run_build(config, render=fake_render)
    assert str(info.value).startswith(expected)
    assert fingerprint(config) == before_db
    assert page.read_text() == before_page and page.stat().st_mtime_ns == page_time

    # through the command line: exit 2 and the message (the `build` command is wired at merge,
    # so `flags check` stands in for the line-naming part)
    if broken == "flags":
        code = cli.main(["--config", str(config.source), "flags", "check"])
        assert code == 2


# ----------------------------------------------------------------------------- commands


def run(config, *args, capsys):
    code = cli.main(["--config", str(config.source), "flags", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_flags_check_reports_every_problem_with_its_line(site, capsys):
    project, config, catalog, r = site
    text = FLAGS + textwrap.dedent(
        """
        [[flag]]
        id = "ghost"
        what = "frame"
        file = "nowhere.fits"
        reason = "r"
        author = "a"
        date = 2024-10-09

        [[flag]]
        id = "no-match"
        what = "photometry"
        source = "3C 454.3"
        night = 2024-10-07
        reason = "r"
        author = "a"
        date = 2024-10-09
        """
    )
    write_flags(config, text)
    lines = text.splitlines()
    ghost = lines.index('id = "ghost"') - 1 + 1
    no_match = lines.index('id = "no-match"') - 1 + 1
    code, out = run(config, "check", capsys=capsys)
    assert code == 2
    path = config.paths.flags
    assert f"{path}:{ghost}: flag[2].file: unknown raw file 'nowhere.fits'" in out
    assert f"{path}:{ghost}: flag[2]: flag ghost selects no frame" in out
    assert f"{path}:{no_match}: flag[3]: flag no-match selects no result" in out
    assert "4 flags, 3 problems" in out
    problems = check_flags(load(config, catalog), raw_dir=config.paths.data_subdir("raw"))
    assert [p.line for p in problems] == [ghost, ghost, no_match]

    # a raw file fetched but not reduced yet is known
    raw = config.paths.data_subdir("raw") / "OSN-T090" / "2024-10-08"
    raw.mkdir(parents=True)
    (raw / "nowhere.fits").write_bytes(b"")
    problems = check_flags(load(config, catalog), raw_dir=config.paths.data_subdir("raw"))
    assert [p.key for p in problems] == ["flag[2]", "flag[3]"]

    write_flags(config, FLAGS)
    assert run(config, "check", capsys=capsys) == (
        0,
        f"{path}: 2 flags, valid; each selects something in {store_name(config)}\n",
    )


def test_flags_list_shows_what_each_flag_selects(site, capsys):
    project, config, catalog, r = site
    write_flags(config, FLAGS)
    code, out = run(config, "list", "--details", capsys=capsys)
    assert code == 0
    assert "clouds  (flags.toml:2)  bad photometry: source=2200+420 band=R night=2024-10-08" in out
    assert "    cirrus after 22h (J. Doe, 2024-10-09)" in out
    assert "selects 2 results (1 photometry, 1 polarimetry)" in out
    assert "2200+420  photometry  OSN-T090/2024-10-08/BLLac-0001R.fit" in out
    assert "2200+420  polarimetry  OSN-T090/2024-10-08/BLLac-0010R.fit (+3 more)" in out
    # list and check never write: nothing is flagged in the store yet
    assert PhotoPolResult.select().where(PhotoPolResult.manual_flags != 0).count() == 0


def test_flags_add_and_remove_from_the_command_line(site, capsys):
    project, config, catalog, r = site
    path = config.paths.flags
    original = path.read_text()
    code, out = run(
        config,
        "add",
        "--source",
        "BL Lac",
        "--night",
        "2024-10-08",
        "--band",
        "V",
        "--what",
        "photometry",
        "--reason",
        "clouds",
        "--author",
        "Ann",
        "--from",
        "2460592.3",
        "--to",
        "2024-10-08T23:00",
        capsys=capsys,
    )
    assert (code, out) == (0, f"{path}: added flag F0001; it applies at the next build\n")
    text = path.read_text()
    assert text.startswith(original)
    assert 'from = 2460592.3\nto = "2024-10-08T23:00"\n' in text
    flag = load(config, catalog).get("F0001")
    assert (flag.source, flag.band, flag.author) == (("2200+420",), ("V",), "Ann")
    evaluation = evaluate(load(config, catalog))  # only rows a flag may touch are read
    assert {k for k, v in r.items() if evaluation.new.get(v.id, (0,))[0]} == {"bl_v"}

    code, out = run(
        config,
        "add",
        "--file",
        "BLLac-0001R.fit",
        "--what",
        "frame",
        "--reason",
        "trail",
        capsys=capsys,
    )
    assert code == 0 and "F0002" in out
    assert load(config, catalog).get("F0002").author  # the login name by default

    code, out = run(
        config, "add", "--source", "Nowhere", "--what", "photometry", "--reason", "r", capsys=capsys
    )
    assert code == 2 and "unknown source 'Nowhere'" in out
    code, out = run(config, "remove", "--id", "F0001", capsys=capsys)
    assert code == 0
    assert [f.id for f in load(config, catalog)] == ["F0002"]
    assert path.read_text().startswith(original)
    code, out = run(config, "remove", "--id", "F0001", capsys=capsys)
    assert code == 2 and "no flag with id 'F0001' (ids: F0002)" in out


def test_broken_flags_file_exits_2_naming_the_line(site, iopreport_exe):
    project, config, catalog, r = site
    write_flags(config, FLAGS.replace('what = "photometry"', 'what = "photmetry"'))
    env = {**os.environ, "IOPREPORT_CONFIG": str(config.source)}
    done = subprocess.run(
        [iopreport_exe, "flags", "check"], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"iopreport: error: {config.paths.flags}:4: flag[0].what: unknown value 'photmetry'; "
        "one of photometry, polarimetry, frame"
    )


def test_identity_not_ids(site):
    """Flags find results by identity: the same rows written again under new ids match."""
    project, config, catalog, r = site
    write_flags(config, FLAGS)
    apply_flags(load(config, catalog))
    before = {
        (x.astrosource.name, x.members_key): (x.manual_flags, x.flag_reasons)
        for x in PhotoPolResult.select()
    }
    rows = list(PhotoPolResult.select().order_by(PhotoPolResult.id.desc()).dicts())
    members = list(PhotoPolMember.select().dicts())
    PhotoPolResult.delete().execute()
    old_to_new = {}
    for row in rows:  # reversed order: every result gets another id
        old = row.pop("id")
        row.update(manual_flags=0, flag_reasons=[])
        old_to_new[old] = PhotoPolResult.insert(**row).execute()
    assert all(old != new for old, new in old_to_new.items())
    PhotoPolMember.insert_many(
        [{"result": old_to_new[m["result"]], "rawfit": m["rawfit"]} for m in members]
    ).execute()
    apply_flags(load(config, catalog))
    after = {
        (x.astrosource.name, x.members_key): (x.manual_flags, x.flag_reasons)
        for x in PhotoPolResult.select()
    }
    assert after == before


def test_flags_without_a_database(project, capsys):
    config = load_config(project / "config.toml")
    code, out = run(config, "check", capsys=capsys)
    assert code == 0
    assert "0 flags, valid" in out and "no database yet" in out
    assert not config.database_path.exists()
    assert dataclasses.is_dataclass(config.quality)


def test_reduction_hook_reads_the_file_and_forgets_excluded_products(site):
    from iopreport.flags.frames import drop_frame_products, excluded_in_epoch

    project, config, catalog, r = site
    epoch = Epoch.get(telescope="OSN-T090", night=NIGHT)
    other = Epoch.get(telescope="OSN-T150", night=NIGHT)
    write_flags(
        config,
        """\
        [[flag]]
        id = "two"
        what = "frame"
        file = ["BLLac-0012R.fit", "3C454-0001R.fit"]
        reason = "r"
        author = "a"
        date = 2024-10-09
        """,
    )
    assert excluded_in_epoch(config, catalog, epoch) == {"BLLac-0012R.fit"}
    assert excluded_in_epoch(config, catalog, other) == {"3C454-0001R.fit"}
    config.paths.flags.write_text('[[flag]]\nid = "x"\nwhat = "frame"\n')
    with pytest.raises(InputError, match=r"flags.toml:1: flag\[0\]: \[\[flag\]\] is missing"):
        excluded_in_epoch(config, catalog, epoch)
    config.paths.flags.unlink()
    assert excluded_in_epoch(config, catalog, epoch) == set()  # no file: no flags
    assert not RawFit.select().where(RawFit.flags.bin_and(int(RawFitFlags.EXCLUDED)) != 0).count()

    frame = RawFit.get(filename="BLLac-0012R.fit")
    assert drop_frame_products(frame) == 1  # the polarimetric group it belongs to
    assert PhotoPolResult.get_or_none(PhotoPolResult.id == r["bl_pol"].id) is None
    assert ReducedFit.get_or_none(ReducedFit.rawfit == frame) is None
    assert RawFit.get_or_none(RawFit.id == frame.id) is not None  # the raw frame stays
    assert PhotoPolResult.select().count() == 3


def test_sql_prefilter_never_changes_the_answer(site, monkeypatch):
    """The SQL narrowing gives the same flags as testing every row in Python."""
    from iopreport.flags import prefilter

    project, config, catalog, r = site
    add_result("2251+158", ["3C-0002V.fit"], band="V", jd=JD0 + 0.4)
    add_result("2200+420", ["BLLac_x%-0001R.fit"], telescope="OSN-T150", night=NIGHT)
    text = FLAGS + textwrap.dedent(
        f"""
        [[flag]]
        id = "t"
        what = "photometry"
        from = {JD0 + 0.03}
        reason = "r"
        author = "a"
        date = 2024-10-09

        [[flag]]
        id = "f"
        what = ["photometry", "polarimetry"]
        file = ["BLLac-0012R.fit", "OSN-T150/2024-10-08/BLLac_x%-0001R.fit"]
        reason = "r"
        author = "a"
        date = 2024-10-09

        [[flag]]
        id = "fr"
        what = "frame"
        night = 2024-10-08
        band = "V"
        reason = "r"
        author = "a"
        date = 2024-10-09

        [[flag]]
        id = "src"
        what = "frame"
        source = "3C 454.3"
        reason = "r"
        author = "a"
        date = 2024-10-09
        """
    )
    write_flags(config, text)
    everything = load(config, catalog)
    subsets = [everything, *(dataclasses.replace(everything, flags=(f,)) for f in everything)]

    def answer(flagset):
        evaluation = evaluate(flagset)
        states = {rid: new for rid, new in evaluation.new.items() if new[0] or new[1]}
        matches = {k: (m.results, m.frames) for k, m in evaluation.matches.items()}
        return states, matches

    narrowed = [answer(flagset) for flagset in subsets]
    monkeypatch.setattr(prefilter, "MAX_FLAGS", -1)  # no SQL narrowing
    assert [answer(flagset) for flagset in subsets] == narrowed
    assert all(narrowed[0][1][k] != ((), ()) for k in ("t", "f", "fr", "src"))


def test_flags_add_creates_a_missing_file(project, capsys):
    config = load_config(project / "config.toml")
    config.paths.flags.unlink()
    code, out = run(
        config, "add", "--file", "x.fits", "--what", "frame", "--reason", "r", capsys=capsys
    )
    assert code == 0 and "added flag F0001" in out
    assert [f.id for f in load_flags(config.paths.flags)] == ["F0001"]
