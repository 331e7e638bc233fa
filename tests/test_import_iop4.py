"""`iopreport import iop4`: a real IOP4 database, made by IOP4's own code, imported.

The database is built in a test-only virtualenv holding the ``iop4`` package
from PyPI (tests/iop4_fixture/make_venv.sh, which `make test` runs too):
IOP4's Django migrations create the schema and its ORM inserts the sources,
calibrators, standards, results and flags (tests/iop4_fixture/make_db.py).
What IOP4's ORM reads back (expected.json) is compared field by field with
what iopreport imported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from iopreport.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "iop4_fixture"
VENV = REPO / ".venv-iop4"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def iop4_db(tmp_path_factory) -> tuple[Path, dict]:
    """(IOP4 database, what IOP4's ORM reads back from it)."""
    subprocess.run(["sh", str(FIXTURE / "make_venv.sh"), str(VENV)], check=True, cwd=REPO)
    work = tmp_path_factory.mktemp("iop4")
    subprocess.run(
        [str(VENV / "bin" / "python"), str(FIXTURE / "make_db.py"), str(work)],
        check=True,
        cwd=work,
        capture_output=True,
    )
    expected = json.loads((work / "expected.json").read_text())
    (work / "expected.json").unlink()
    return work / "iop4.db", expected


def _digest(*paths: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


def _folder(path: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.iterdir() if p.is_file()
    }


def _run(project: Path, *args: str) -> int:
    return main(["--config", str(project / "config.toml"), *args])


@pytest.fixture(scope="module")
def imported(iop4_db, tmp_path_factory):
    """A fresh `iopreport init` project with the IOP4 database imported (catalog, flags,
    results), and the output of the import."""
    from iopreport.skeleton import init_project

    database, expected = iop4_db
    project = tmp_path_factory.mktemp("proj") / "site"
    init_project(project)
    before = _folder(database.parent)
    assert _run(project, "import", "iop4", "--db", str(database), "--results", "--flags") == 0
    assert _folder(database.parent) == before  # read-only: not a byte, not a -wal or -shm file
    return project, database, expected


def _source_type(source: dict) -> str:
    if source["srctype"] == "star":
        if source["p"] is not None:
            return "polarization_standard"
        return "calibrator" if source["calibrates"] else "star"
    return "blazar"


def test_catalog_sources_links_and_values_equal(imported, capsys):
    from iopreport.catalog import load_catalog
    from iopreport.catalog.parse import _coordinates
    from iopreport.tomlsource import TomlSource

    project, database, expected = imported
    assert _run(project, "catalog", "check") == 0
    catalog = load_catalog(project / "catalog.toml")
    sources = expected["sources"]
    assert len(sources) >= 10 + 2
    assert sum(1 for s in sources if s["p"] is not None) == 2
    calibrators_of: dict[str, list[str]] = {}
    for source in sources:
        for target in source["calibrates"]:
            calibrators_of.setdefault(target, []).append(source["name"])
    probe = TomlSource.from_text("", project / "catalog.toml")
    for source in sources:
        entry = catalog.get(source["name"])
        assert entry is not None, source["name"]
        assert entry.name == source["name"]
        others = [n for n in (source["other_names"] or "").split(";") if n]
        assert list(entry.other_names) == others
        assert entry.srctype == _source_type(source)
        ra, dec = _coordinates(probe, ("x",), source["ra_hms"], source["dec_dms"])
        assert (entry.ra_deg, entry.dec_deg) == (ra, dec)
        assert entry.redshift == source["redshift"]
        for band in "UBVRI":
            value, error = source[f"mag_{band}"], source[f"mag_{band}_err"]
            mag = entry.mags.get(band)
            if value is None:
                assert mag is None
            else:
                assert (mag.value, mag.err) == (value, error)
        if source["p"] is None:
            assert entry.pol == {}
        else:
            pol = entry.pol["R"]
            assert pol.p == pytest.approx(source["p"], rel=1e-12)
            assert pol.p_err == pytest.approx(source["p_err"], rel=1e-12)
            assert pol.chi == source["chi"]
            assert pol.chi_err == source["chi_err"]
        assert sorted(entry.calibrators) == sorted(calibrators_of.get(source["name"], []))
        assert entry.comment == (source["comment"] or "").strip()
        assert any(f"AstroSource id {source['id']}" in r for r in entry.references)
    text = (project / "catalog.toml").read_text()
    assert text.startswith(
        (REPO / "catalog.toml").read_text()
    )  # appended: the shipped file's comments and order kept


def test_flags_select_the_same_files(imported):
    from iopreport.catalog import load_catalog
    from iopreport.flags.match import ResultView, result_bits
    from iopreport.flags.parse import load_flags

    project, _database, expected = imported
    assert len(expected["manual_flags"]) == 3
    catalog = load_catalog(project / "catalog.toml")
    flagset = load_flags(project / "flags.toml", catalog)
    assert len(flagset) == 3
    bits = {1 << 1: "BAD_PHOTOMETRY", 1 << 2: "BAD_POLARIMETRY"}
    manual = {(f["id"], bits[f["bit"]]) for f in expected["manual_flags"]}
    found = set()
    for result in expected["results"]:
        view = ResultView(
            source=catalog.get(result["source"]).name,
            mode=result["obsmode"].lower(),
            instrument="CAFOS" if result["instrument"] == "CAFOS2.2" else result["instrument"],
            band=result["band"],
            telescope=result["telescope"],
            night=dt.date.fromisoformat(result["night"]),
            jd_min=result["juliandate"],
            jd_max=result["juliandate"],
            members=tuple(result["files"]),
        )
        for flag in flagset:
            for bit in result_bits(flag, view):
                found.add((result["id"], bit.name))
    assert found == manual  # the automatic one (mag error > 0.3) is left to [quality]
    for flag in expected["manual_flags"]:
        imported_flag = next(f for f in flagset if f.id == f"iop4-{flag['id']}")
        assert sorted(imported_flag.file) == flag["files"]


def test_results_imported_apart_with_every_value(imported):
    from iopreport.store import PhotoPolResult, close_store, open_store
    from iopreport.store.models import AstroSource, ImportedResult

    project, _database, expected = imported
    assert len(expected["results"]) >= 50
    open_store(project / "data" / "iopreport.db", create=False)
    try:
        rows = {r.origin_id: r for r in ImportedResult.select().join(AstroSource)}
        assert len(rows) == len(expected["results"])
        for result in expected["results"]:
            row = rows[result["id"]]
            assert row.method == "iop4-import"
            assert row.astrosource.name == result["source"]
            assert row.members_key.split("\n") == result["files"]
            assert row.n_frames == len(result["files"])
            assert (row.telescope, str(row.night), row.band) == (
                result["telescope"],
                result["night"],
                result["band"],
            )
            assert row.mode == result["obsmode"].lower()
            assert row.juliandate == result["juliandate"]
            assert row.exptime == result["exptime"]
            assert row.flags == result["flags"]
            for key in ("mag", "mag_err", "p", "p_err", "chi", "chi_err"):
                assert getattr(row, key) == result[key], key
        # never one of iopreport's own results (nightly means, alerts, summaries, recompute)
        assert PhotoPolResult.select().count() == 0
    finally:
        close_store()


def test_importing_twice_changes_nothing(imported, capsys):
    project, database, _expected = imported
    files = [project / "catalog.toml", project / "flags.toml"]
    before = _digest(*files)
    dump_before = _dump(project / "data" / "iopreport.db")
    capsys.readouterr()
    assert _run(project, "import", "iop4", "--db", str(database), "--results", "--flags") == 0
    out = capsys.readouterr().out
    assert "nothing to write" in out
    assert "new" not in out and "conflicts" not in out
    assert _digest(*files) == before
    assert _dump(project / "data" / "iopreport.db") == dump_before


def _dump(path: Path) -> list:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT * FROM imported_result ORDER BY id").fetchall()


def test_dry_run_reports_conflicts_and_writes_nothing(iop4_db, tmp_path, capsys):
    from iopreport.skeleton import init_project

    database, expected = iop4_db
    project = tmp_path / "site"
    init_project(project)
    target = expected["sources"][0]
    with (project / "catalog.toml").open("a") as catalog:
        catalog.write(
            f'\n# our own entry\n[[source]]\nname = "{target["name"]}"\ntype = "blazar"\n'
            'ra = "01:00:00"\ndec = "+10:00:00"\n'
        )
    files = [project / "catalog.toml", project / "flags.toml"]
    before = _digest(*files)
    args = ("import", "iop4", "--db", str(database), "--results", "--flags")
    assert _run(project, *args, "--dry-run") == 0
    out = capsys.readouterr().out
    n = len(expected["sources"])
    assert f"sources: {n - 1} new, 1 conflicts" in out
    assert f"results: {len(expected['results'])} new" in out
    assert "flags: 3 new, 1 automatic in IOP4, not imported" in out
    assert f"source {target['name']!r}: catalog.toml has" in out
    assert _digest(*files) == before
    assert not (project / "data" / "iopreport.db").exists()
    # the import keeps our entry; --update then overwrites it and keeps its comment
    assert _run(project, *args) == 0
    assert 'ra = "01:00:00"' in (project / "catalog.toml").read_text()
    assert _run(project, *args, "--update") == 0
    text = (project / "catalog.toml").read_text()
    assert "# our own entry" in text and 'ra = "01:00:00"' not in text
    assert text.count(f'name = "{target["name"]}"') == 1
    assert _run(project, "catalog", "check") == 0


def test_refuses_what_is_not_an_iop4_database(iop4_db, tmp_path, capsys):
    from iopreport.skeleton import init_project

    database, _expected = iop4_db
    project = tmp_path / "site"
    init_project(project)
    files = [project / "catalog.toml", project / "flags.toml"]
    before = _digest(*files)
    text = tmp_path / "notes.db"
    text.write_text("not a database\n" * 100)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE things (id INTEGER)")
    no_app = tmp_path / "no_app.db"
    shutil.copy(database, no_app)
    with sqlite3.connect(no_app) as connection:
        connection.execute("DELETE FROM django_migrations WHERE app = 'iop4api'")
    changed = tmp_path / "changed.db"
    shutil.copy(database, changed)
    with sqlite3.connect(changed) as connection:
        connection.execute("ALTER TABLE iop4api_astrosource DROP COLUMN redshift")
    cases = {
        text: "not an SQLite database",
        other: "no django_migrations table",
        no_app: "no applied 'iop4api' migration",
        changed: "unknown IOP4 schema (migrations 0001_initial): table iop4api_astrosource "
        "has no column redshift",
        tmp_path / "missing.db": "no such file",
    }
    for path, message in cases.items():
        capsys.readouterr()
        code = _run(project, "import", "iop4", "--db", str(path), "--results", "--flags")
        err = capsys.readouterr().err
        assert code == 2, path
        assert message in err and str(path) in err, err
        assert _digest(*files) == before
        assert not (project / "data").exists()  # no store, no log, no run record


def test_compare_lists_both_pipelines_per_source_and_night(imported, capsys):
    from iopreport.store import Epoch, PhotoPolResult, close_store, open_store
    from iopreport.store.models import AstroSource, ImportedResult

    project, database, _expected = imported
    copy = project.parent / "compare"
    shutil.copytree(project, copy)
    open_store(copy / "data" / "iopreport.db", create=False)
    try:
        row = (
            ImportedResult.select()
            .where(ImportedResult.mode == "photometry", ImportedResult.flags == 0)
            .first()
        )
        epoch = Epoch.create(telescope=row.telescope, night=row.night)
        PhotoPolResult.create(
            astrosource=row.astrosource,
            epoch=epoch,
            members_key=row.members_key,
            mode="photometry",
            method="relphot",
            instrument=row.instrument,
            band=row.band,
            juliandate=row.juliandate,
            juliandate_min=row.juliandate,
            juliandate_max=row.juliandate,
            mag=row.mag + 0.012,
            mag_err=0.01,
        )
        name = AstroSource.get_by_id(row.astrosource_id).name
    finally:
        close_store()
    capsys.readouterr()
    assert _run(copy, "import", "compare", "--night", str(row.night)) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2, out  # header and the one source/night with both
    assert out[1].startswith(name) and "+0.012" in out[1]


def test_source_page_draws_imported_results_as_their_own_trace(imported):
    from playwright.sync_api import sync_playwright

    from iopreport import urls

    project, _database, expected = imported
    copy = project.parent / "site-build"
    shutil.copytree(project, copy)
    assert _run(copy, "build") == 0
    site = copy / "site_out"
    polarimetric = next(r for r in expected["results"] if r["obsmode"] == "POLARIMETRY")
    name = polarimetric["source"]
    n = sum(1 for r in expected["results"] if r["source"] == name)
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    count = """(visibleOnly) => document.getElementById('plot').data
      .filter(t => t.meta && t.meta.kind === 'imported' && t.meta.panel === 'mag')
      .filter(t => !visibleOnly || t.visible !== false)
      .reduce((n, t) => n + t.x.length, 0)"""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(site.resolve().as_uri() + "/" + urls.source_page(name))
        page.wait_for_function("document.getElementById('plot').data !== undefined")
        assert page.evaluate(count, True) == n
        panels = page.evaluate(
            "[...new Set(document.getElementById('plot').data"
            ".filter(t => t.meta && t.meta.kind === 'imported').map(t => t.meta.panel))]"
        )
        assert sorted(panels) == ["chi", "mag", "p"]
        page.uncheck("#show-imported")
        assert page.evaluate(count, True) == 0
        page.check("#show-imported")
        assert page.evaluate(count, True) == n
        assert page.locator(".js-plotly-plot .scatterlayer .point").count() > 0
        assert problems == []
        browser.close()


def test_database_in_use_is_read_through_its_write_ahead_log(iop4_db, tmp_path, capsys):
    """IOP4 writing (a non-empty -wal file): rows not yet in the main file are read too."""
    from iopreport.importers.iop4db import read_iop4

    database, expected = iop4_db
    live = tmp_path / "live.db"
    shutil.copy(database, live)
    writer = sqlite3.connect(live)
    try:
        assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # as IOP4 sets it
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        columns = [r[1] for r in writer.execute("PRAGMA table_info(iop4api_astrosource)")]
        row = dict.fromkeys(columns)
        row.update(name="NEW 1", ra_hms="10:00:00", dec_dms="+20:00:00", srctype="blazar")
        del row["id"]
        marks = ", ".join("?" * len(row))
        writer.execute(
            f"INSERT INTO iop4api_astrosource ({', '.join(row)}) VALUES ({marks})",
            list(row.values()),
        )
        writer.commit()
        assert (tmp_path / "live.db-wal").stat().st_size > 0
        main_file = hashlib.sha256(live.read_bytes()).hexdigest()
        names = [s.name for s in read_iop4(live).sources]
        assert len(names) == len(expected["sources"]) + 1 and "NEW 1" in names
        assert hashlib.sha256(live.read_bytes()).hexdigest() == main_file
    finally:
        writer.close()


def test_long_imported_series_are_binned_and_drawn_apart():
    from iopreport.site import plots

    points = [
        {
            "date": f"2024-{1 + i // 1000:02d}-01T00:00:00",
            "mjd": 60300.0 + i * 0.01,
            "night": "2024-01-01",
            "telescope": "OSN-T090",
            "instrument": "AndorT90",
            "band": "R",
            "mode": "photometry",
            "method": "iop4-import",
            "n_frames": 1,
            "mag": 15.0 + (i % 7) * 0.01,
            "mag_err": 0.02,
            "p_pct": None,
            "p_pct_err": None,
            "chi_deg": None,
            "chi_deg_err": None,
            "flagged": False,
            "q_pct": None,
            "q_pct_err": None,
            "u_pct": None,
            "u_pct_err": None,
            "auto_flags": "",
            "manual_flags": "",
            "flag_reasons": "",
            "members": "",
            "n_binned": 1,
        }
        for i in range(plots.MAX_POINTS_PER_SERIES + 500)
    ]
    binned, width = plots.bin_points(points)
    assert width >= 1 and len(binned) <= plots.MAX_POINTS_PER_SERIES
    assert sum(p["n_binned"] for p in binned) == len(points)
    figure = plots.source_figure([], imported=binned)
    traces = [t for t in figure["data"] if t["meta"]["kind"] == "imported"]
    assert [t["name"] for t in traces] == ["IOP4 R"]
    assert len(traces[0]["x"]) == len(binned) and "bin of" in traces[0]["text"][0]
    assert all(t["meta"]["kind"] != "data" for t in figure["data"])


def test_update_of_an_entry_found_by_other_name_keeps_its_old_name(iop4_db, tmp_path, capsys):
    from iopreport.catalog import load_catalog
    from iopreport.store import close_store, open_store
    from iopreport.store.models import AstroSource, ImportedResult

    database, expected = iop4_db
    project = tmp_path / "site"
    from iopreport.skeleton import init_project

    init_project(project)
    target = next(s for s in expected["sources"] if s["srctype"] == "blazar")
    with (project / "catalog.toml").open("a") as catalog:
        catalog.write(
            f'\n[[source]]\nname = "Our Name"\nother_names = ["{target["name"]}"]\n'
            'type = "blazar"\nra = "01:00:00"\ndec = "+10:00:00"\n'
        )
    args = ("import", "iop4", "--db", str(database), "--results", "--flags")
    assert _run(project, *args) == 0
    assert "catalog.toml has 'Our Name'" in capsys.readouterr().out
    assert _run(project, *args, "--update") == 0
    entry = load_catalog(project / "catalog.toml").get("Our Name")
    assert entry.name == target["name"] and "Our Name" in entry.other_names
    capsys.readouterr()
    assert _run(project, *args) == 0
    out = capsys.readouterr().out
    assert "nothing to write" in out and "conflicts" not in out
    open_store(project / "data" / "iopreport.db", create=False)
    try:
        source = AstroSource.get(AstroSource.name == target["name"])
        n = sum(1 for r in expected["results"] if r["source"] == target["name"])
        assert ImportedResult.select().where(ImportedResult.astrosource == source).count() == n
    finally:
        close_store()
