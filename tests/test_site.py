"""The static site (issue 7): pages from a reduced simulated night, escaping, incremental
builds, atomic publishing, and the pages in a real browser (Debian's chromium)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import http.server
import io
import json
import re
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import tomlkit
from astropy.io import fits

from iopreport import urls
from iopreport.archive.nightdownload import fetch_night
from iopreport.catalog import load_catalog, sync_catalog
from iopreport.cli import main
from iopreport.config import load_config
from iopreport.demo import point_archives_at
from iopreport.reduce.night import reduce_night
from iopreport.simulate import simulate_night
from iopreport.site import publish, render_site
from iopreport.site.flagmasks import MAG_MANUAL_FLAGS, MAG_RESULT_FLAGS
from iopreport.site.plots import MAX_POINTS_PER_SERIES, bin_points, source_figure
from iopreport.site.templating import script_json
from iopreport.skeleton import init_project
from iopreport.store import (
    AstroSource,
    Epoch,
    EpochFlags,
    Heartbeat,
    ManualFlags,
    PhotoPolMember,
    PhotoPolResult,
    RawFit,
    ResultFlags,
    RunLog,
    close_store,
    open_store,
)
from iopreport.store.columns import COLUMN_NAMES
from iopreport.store.models import utcnow

NIGHT = dt.date(2024, 10, 8)
TELESCOPE = "OSN-T150"
STANDARD = "Hiltner 960"
BLLAC = "2200+420"  # BL Lacertae, the target of the simulated night
#: Markup put into a raw frame's OBJECT keyword and into flag reasons and the catalog.
OBJECT_MARKUP = '<img src=x onerror="alert(1)">Bias</b>'
REASON_MARKUP = 'seeing </script><script>alert("flag")</script> & clouds'
COMMENT_MARKUP = "<script>alert('catalog')</script>"
EXTRA_NIGHTS = 6
#: A polarization standard with one epoch whose only result has a magnitude flag.
ONE_EPOCH_STANDARD = "HD 204827"
ONE_EPOCH_P, ONE_EPOCH_CHI = 0.0493, 59.4
#: Nights of BL Lac photometry in several bands from two instruments at OSN-T090.
BAND_NIGHTS = 3
BAND_TELESCOPE = "OSN-T090"
BAND_RESULTS = {"AndorT90": "BVRI", "DIPOL": "R"}
#: Pages made on every build: index, catalog, status and the summaries list.
ALWAYS_MADE = 4
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _jd(night: dt.date, hours: float) -> float:
    return 2440587.5 + (night - dt.date(1970, 1, 1)).days + 0.5 + hours / 24


def _add_standard_results() -> dict:
    """Polarimetry and photometry of Hiltner 960 on earlier nights (written as reduce would).

    One point is flagged automatically, one by a curator with a reason full of markup.
    """
    source = AstroSource.get(AstroSource.name == STANDARD)
    counts = {"photometry": 0, "polarimetry": 0, "flagged": 0}
    for k in range(EXTRA_NIGHTS):
        night = NIGHT - dt.timedelta(days=10 * (EXTRA_NIGHTS - k))
        epoch = Epoch.create(telescope=TELESCOPE, night=night)
        files = []
        for angle in (0.0, 45.0, 90.0, -45.0):
            raw = RawFit.create(
                epoch=epoch,
                filename=f"Hiltner960-{k:02d}R{angle:+.0f}.fit",
                instrument="AndorT150",
                imgtype="light",
                obsmode="polarimetry",
                band="R",
                angle=angle,
                juliandate=_jd(night, 1 + angle / 1000),
                exptime=30.0,
                object_name="Hiltner 960",
                target=source,
            )
            files.append(raw)
        p = 0.0521 + 0.001 * (k % 3 - 1)
        chi = 54.5 + 0.5 * (k % 2)
        flags = int(ResultFlags.BAD_POLARIMETRY | ResultFlags.LARGE_POL_ERROR) if k == 1 else 0
        manual = int(ManualFlags.BAD_POLARIMETRY) if k == 3 else 0
        reasons = [REASON_MARKUP] if manual else (["p error above limit"] if flags else [])
        result = PhotoPolResult.create(
            astrosource=source,
            epoch=epoch,
            members_key=PhotoPolResult.make_members_key(r.fileloc for r in files),
            mode="polarimetry",
            method="osn-wheel",
            instrument="AndorT150",
            band="R",
            exptime=30.0,
            juliandate=_jd(night, 1.01),
            juliandate_min=_jd(night, 1.0),
            juliandate_max=_jd(night, 1.02),
            n_frames=4,
            mag=9.79 + 0.01 * k,
            mag_err=0.01,
            q=p * 0.2,
            q_err=0.001,
            u=p * 0.98,
            u_err=0.001,
            p=p,
            p_err=0.001,
            chi=chi,
            chi_err=0.3,
            flags=flags,
            manual_flags=manual,
            flag_reasons=reasons,
        )
        for raw in files:
            PhotoPolMember.create(result=result, rawfit=raw)
        counts["polarimetry"] += 1
        counts["flagged"] += bool(flags or manual)
        photometry = PhotoPolResult.create(
            astrosource=source,
            epoch=epoch,
            members_key=files[0].fileloc,
            mode="photometry",
            method="relphot",
            instrument="AndorT150",
            band="R",
            exptime=30.0,
            juliandate=_jd(night, 0.9),
            juliandate_min=_jd(night, 0.9),
            juliandate_max=_jd(night, 0.9),
            mag=9.78 + 0.01 * k,
            mag_err=0.012,
        )
        PhotoPolMember.create(result=photometry, rawfit=files[0])
        counts["photometry"] += 1
    return counts


def _add_one_epoch_standard() -> None:
    """One polarimetric result of a second standard, flagged FEW_CALIBRATORS (a magnitude
    flag), on the oldest of the extra nights."""
    source = AstroSource.get(AstroSource.name == ONE_EPOCH_STANDARD)
    night = NIGHT - dt.timedelta(days=10 * EXTRA_NIGHTS)
    epoch = Epoch.get(telescope=TELESCOPE, night=night)
    raws = [
        RawFit.create(
            epoch=epoch,
            filename=f"HD204827R{angle:+.0f}.fit",
            instrument="AndorT150",
            imgtype="light",
            obsmode="polarimetry",
            band="R",
            angle=angle,
            juliandate=_jd(night, 3 + angle / 1000),
            exptime=10.0,
            object_name="HD204827",
            target=source,
        )
        for angle in (0.0, 45.0, 90.0, -45.0)
    ]
    result = PhotoPolResult.create(
        astrosource=source,
        epoch=epoch,
        members_key=PhotoPolResult.make_members_key(r.fileloc for r in raws),
        mode="polarimetry",
        method="osn-wheel",
        instrument="AndorT150",
        band="R",
        exptime=10.0,
        juliandate=_jd(night, 3.01),
        juliandate_min=_jd(night, 3.0),
        juliandate_max=_jd(night, 3.02),
        n_frames=4,
        mag=7.31,
        mag_err=0.02,
        q=-0.02,
        q_err=0.001,
        u=0.045,
        u_err=0.001,
        p=ONE_EPOCH_P,
        p_err=0.001,
        chi=ONE_EPOCH_CHI,
        chi_err=0.4,
        flags=int(ResultFlags.FEW_CALIBRATORS),
        flag_reasons=["auto FEW_CALIBRATORS: 1 calibrator < 2"],
    )
    for raw in raws:
        PhotoPolMember.create(result=result, rawfit=raw)


def _add_band_results() -> dict[str, int]:
    """BL Lac photometry in several bands by two instruments on nights at OSN-T090."""
    source = AstroSource.get(AstroSource.name == BLLAC)
    counts: dict[str, int] = {}
    for k in range(BAND_NIGHTS):
        night = NIGHT - dt.timedelta(days=3 * (BAND_NIGHTS - k))
        epoch = Epoch.create(telescope=BAND_TELESCOPE, night=night)
        for instrument, bands in BAND_RESULTS.items():
            for j, band in enumerate(bands):
                raw = RawFit.create(
                    epoch=epoch,
                    filename=f"BLLac-{instrument}-{k}{band}.fit",
                    instrument=instrument,
                    imgtype="light",
                    obsmode="photometry",
                    band=band,
                    juliandate=_jd(night, 2 + j / 10 + (instrument == "DIPOL")),
                    exptime=60.0,
                    object_name="BLLac",
                    target=source,
                )
                result = PhotoPolResult.create(
                    astrosource=source,
                    epoch=epoch,
                    members_key=raw.fileloc,
                    mode="photometry",
                    method="relphot",
                    instrument=instrument,
                    band=band,
                    exptime=60.0,
                    juliandate=raw.juliandate,
                    juliandate_min=raw.juliandate,
                    juliandate_max=raw.juliandate,
                    n_frames=1,
                    mag=13.2 + "BVRI".index(band) * -0.4 + 0.05 * k,
                    mag_err=0.01,
                )
                PhotoPolMember.create(result=result, rawfit=raw)
                counts[band] = counts.get(band, 0) + 1
    return counts


def _flag_a_frame(config) -> str:
    """Mark the last reduced light frame of the night as lost to clouds (as reduce would)."""
    from iopreport.store import ReducedFit, ReducedFitFlags

    frame = (
        ReducedFit.select()
        .join(RawFit)
        .where(RawFit.imgtype == "light")
        .order_by(RawFit.juliandate.desc())
        .first()
    )
    flags = int(ReducedFitFlags.LOW_TRANSPARENCY | ReducedFitFlags.ERROR_PHOTOMETRY)
    ReducedFit.update(flags=ReducedFit.flags.bin_or(flags), error="photometry: clouds").where(
        ReducedFit.id == frame.id
    ).execute()
    return frame.rawfit.filename


#: Tests that read the site's pages only (a browser, or a copy of the project run by the
#: CLI, which would share a PostgreSQL store with the module): on the SQLite store alone.
SQLITE_ONLY = pytest.mark.parametrize("site", ["sqlite"], indirect=True)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    """A project with one reduced tiny night, extra standard results, and a built site;
    once with the store on SQLite and once on PostgreSQL (tests/pgserver.py)."""
    root = tmp_path_factory.mktemp(f"site-{request.param}")
    project = root / "site"
    init_project(project)
    point_archives_at(project / "config.toml", project / "archive")
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    database = server.database() if server else ""
    if database:
        document = tomlkit.parse((project / "config.toml").read_text())
        document["paths"]["database"] = database
        (project / "config.toml").write_text(tomlkit.dumps(document))
    simulate_night(project / "archive", NIGHT, telescopes=(TELESCOPE,), preset="tiny", seed=9)
    folder = next((project / "archive" / TELESCOPE).iterdir())
    bias = sorted(folder.glob("Bias-*.fit"))[0]
    with fits.open(bias, mode="update") as hdul:  # markup in a real FITS header
        hdul[0].header["OBJECT"] = OBJECT_MARKUP
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    catalog = load_catalog(config.paths.catalog)
    sync_catalog(catalog)
    fetch_night(
        Path(config.archives[TELESCOPE].root), TELESCOPE, NIGHT, config.paths.data_subdir("raw")
    )
    reduce_night(config, catalog, TELESCOPE, NIGHT, workers=2)
    # the reduction's own polarimetric sequences are replaced by hand-made rows whose
    # values and flags the assertions know (the pages are what is tested here)
    PhotoPolResult.delete().where(PhotoPolResult.mode == "polarimetry").execute()
    Epoch.update(flags=Epoch.flags.bin_or(int(EpochFlags.REDUCED | EpochFlags.CLOSED))).where(
        Epoch.night == NIGHT
    ).execute()
    counts = _add_standard_results()
    _add_one_epoch_standard()
    band_counts = _add_band_results()
    flagged_frame = _flag_a_frame(config)
    AstroSource.update(comment=COMMENT_MARKUP).where(AstroSource.name == STANDARD).execute()
    summaries = config.paths.datadir / "summaries"
    summaries.mkdir(parents=True, exist_ok=True)
    (summaries / f"{NIGHT.isoformat()}.html").write_text(
        "<!DOCTYPE html><html><body><h1>Night summary</h1></body></html>"
    )
    RunLog.create(command="reduce", outcome="failed", detail="one frame <failed>")
    Heartbeat.create(
        name="daemon",
        pid=1234,
        hostname="obs",
        state="polling <archives>",
        beat_at=utcnow() - dt.timedelta(hours=5),
    )
    report = render_site(config)
    yield {
        "project": project,
        "config": config,
        "report": report,
        "counts": counts,
        "band_counts": band_counts,
        "flagged_frame": flagged_frame,
    }
    close_store()
    if server:
        server.drop(database)


def _site(site) -> Path:
    return Path(site["config"].paths.site_dir)


def _page(site, path: str) -> str:
    return (_site(site) / path).read_text(encoding="utf-8")


def _script_json(html: str, element_id: str):
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html)
    assert match, element_id
    return json.loads(match.group(1))


# --------------------------------------------------------------------------- pages


def test_every_page_is_written(site):
    out = _site(site)
    report = site["report"]
    assert report.output == out and report.pages_kept == 0
    for path in (
        urls.index_page(),
        urls.catalog_page(),
        urls.status_page(),
        "summaries/index.html",
        urls.summary_page(NIGHT),
        urls.night_page(NIGHT, TELESCOPE),
        urls.source_page(BLLAC),
        urls.source_page(STANDARD),
        "static/plotly.min.js",
        "static/site.css",
        "static/source.js",
    ):
        assert (out / path).is_file(), path
    nights = list((out / "nights").rglob("*.html"))
    assert len(nights) == 1 + EXTRA_NIGHTS + BAND_NIGHTS
    assert not list(out.parent.glob(f".{out.name}.new-*")), "fresh folder left behind"


def test_index_lists_sources_with_last_values(site):
    html = _page(site, urls.index_page())
    assert 'id="search"' in html and "sortable" in html
    row = html[html.index(f'href="{urls.source_page(STANDARD)}"') :].split("</tr>")[0]
    last_mag = 9.79 + 0.01 * (EXTRA_NIGHTS - 1)  # the newest unflagged R magnitude
    assert f"{last_mag:.2f}" in row
    assert ">6<" in row  # nights
    assert "<polyline" in row  # trend


def test_figure_holds_every_result_with_flags_apart(site):
    html = _page(site, urls.source_page(STANDARD))
    figure = _script_json(html, "figure-data")
    data = _script_json(html, "points-data")
    counts = site["counts"]
    assert len(data["rows"]) == counts["photometry"] + counts["polarimetry"]
    traces = [t for t in figure["data"] if t["meta"]["kind"] == "data"]
    mag_points = sum(len(t["customdata"]) for t in traces if t["meta"]["panel"] == "mag")
    assert mag_points == counts["photometry"] + counts["polarimetry"]
    p_flagged = sum(
        len(t["customdata"]) for t in traces if t["meta"]["panel"] == "p" and t["meta"]["flagged"]
    )
    assert p_flagged == counts["flagged"]
    references = [shape["name"] for shape in figure["layout"]["shapes"]]
    assert figure["shape_bands"] == ["R"] * len(references)
    assert all(shape["xref"] == "x domain" for shape in figure["layout"]["shapes"])
    assert "R catalog 9.786" in references  # catalog magnitude
    assert any("literature p 5.21" in name for name in references)  # StandardPolarization
    assert any("literature χ 54.5" in name for name in references)
    assert {"p", "chi", "q", "u"} <= {t["meta"]["panel"] for t in traces}


def test_header_catalog_and_flag_text_is_escaped(site):
    night = _page(site, urls.night_page(NIGHT, TELESCOPE))
    assert OBJECT_MARKUP not in night and "<img" not in night
    tables = _script_json(night, "night-data")
    column = tables["frame_columns"].index("object")
    assert OBJECT_MARKUP in {row[column] for row in tables["frames"] if row[0] == "bias"}
    source = _page(site, urls.source_page(STANDARD))
    assert COMMENT_MARKUP not in source and "&lt;script&gt;alert(&#39;catalog&#39;)" in source
    # exactly the page's own script elements, none smuggled in through the data
    assert source.count("<script") == source.count("</script>") == 5
    data = _script_json(source, "points-data")
    column = data["columns"].index("flag_reasons")
    assert REASON_MARKUP in {row[column] for row in data["rows"]}  # through the escaped JSON
    status = _page(site, urls.status_page())
    assert "one frame &lt;failed&gt;" in status and "polling &lt;archives&gt;" in status
    catalog = _page(site, urls.catalog_page())
    assert COMMENT_MARKUP not in catalog


def test_script_json_cannot_close_the_script_element():
    text = script_json({"a": "</script><!-- & 'x' \u2028"})
    assert "<" not in text and ">" not in text and "&" not in text and "'" not in text
    assert json.loads(str(text)) == {"a": "</script><!-- & 'x' \u2028"}


def test_night_page_shows_frames_masters_failures_and_results(site):
    html = _page(site, urls.night_page(NIGHT, TELESCOPE))
    for text in ("light (", "flat (", "bias (", "Masters", "Failures", "Results"):
        assert text in html
    tables = _script_json(html, "night-data")
    kinds = [row[0] for row in tables["frames"]]
    assert kinds.count("light") == 5 and kinds.count("bias") == 3 and kinds.count("flat") == 15
    assert len(tables["thumbs"]) == 5  # one preview per reduced frame
    assert f'href="../../{urls.source_page(BLLAC)}"' in html
    assert f'href="../../{urls.summary_page(NIGHT)}"' in html
    previous = NIGHT - dt.timedelta(days=10)
    assert f'href="../../{urls.night_page(previous, TELESCOPE)}" rel="prev"' in html
    thumbs = list((_site(site) / urls.night_page(NIGHT, TELESCOPE)[:-5]).glob("*.png"))
    assert thumbs and all(t.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for t in thumbs)


def test_finding_chart_is_a_small_png(site):
    stem = urls.source_page(BLLAC)[: -len(".html")]
    chart = _site(site) / f"{stem}-chart.png"
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 300_000
    assert "Finding chart from OSN-T150/2024-10-08/" in _page(site, urls.source_page(BLLAC))


def test_status_page(site):
    html = _page(site, urls.status_page())
    assert "daemon" in html and "<strong>stale</strong>" in html  # last beat 5 hours ago
    assert "reduce" in html and "failed" in html


def test_no_external_url_and_plotly_served_once(site):
    out = _site(site)
    for path in out.rglob("*"):
        if path.suffix not in (".html", ".js", ".css") or path.name == "plotly.min.js":
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "cdn." not in text, path
    source = _page(site, urls.source_page(STANDARD))
    assert source.count("plotly.min.js") == 1 and "../static/plotly.min.js" in source
    assert len(source.encode()) < 1_500_000


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def _internal_links(out: Path) -> list[tuple[Path, str, Path]]:
    found = []
    for page in out.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            found.append((page, link, (page.parent / unquote(parts.path)).resolve()))
    return found


def test_every_internal_link_resolves(site):
    out = _site(site).resolve()
    links = _internal_links(out)
    assert len(links) > 100
    broken = [(str(page), link) for page, link, target in links if not target.is_file()]
    assert broken == []
    outside = [link for _, link, target in links if out not in target.parents]
    assert outside == []


# --------------------------------------------------------------------------- builds


def test_unchanged_build_keeps_every_page_by_hard_link(site, monkeypatch):
    config = site["config"]
    out = _site(site)
    page = urls.source_page(STANDARD)
    inode = (out / page).stat().st_ino
    first = out.resolve()
    report = render_site(config)
    assert report.pages_kept == site["report"].pages_rendered - ALWAYS_MADE
    assert out.is_symlink() and out.resolve() != first  # the other generation
    assert (out / page).stat().st_ino == inode
    assert (out / page).stat().st_nlink == 2  # one file, in both generations
    # a third build writes the first generation again: it holds every unit already,
    # so no file of a kept page is linked or written
    linked: list = []
    original = publish.link_or_copy
    monkeypatch.setattr(
        publish, "link_or_copy", lambda *a, **k: (linked.append(a[1]), original(*a, **k))
    )
    third = render_site(config)
    assert out.resolve() == first
    assert third.pages_kept == report.pages_kept
    assert [p for p in linked if "summaries" not in str(p)] == []
    assert (out / page).stat().st_ino == inode
    publish.wait_for_cleanup()
    assert not list(out.parent.glob(f".{out.name}.old-*"))
    assert not list(out.parent.glob(f".{out.name}.link-*"))


def test_changed_result_renders_only_its_pages(site):
    config = site["config"]
    out = _site(site)
    source = AstroSource.get(AstroSource.name == STANDARD)
    result = (
        PhotoPolResult.select()
        .where(PhotoPolResult.astrosource == source, PhotoPolResult.mode == "photometry")
        .order_by(PhotoPolResult.juliandate)
        .first()
    )
    result.manual_flags = int(ManualFlags.BAD_PHOTOMETRY)
    result.flag_reasons = ["satellite trail"]
    result.save()
    night_page = urls.night_page(result.epoch.night, TELESCOPE)
    other = urls.source_page(BLLAC)
    inode = (out / other).stat().st_ino
    report = render_site(config)
    assert report.pages_rendered == 2 + ALWAYS_MADE  # the source and its night
    assert (out / other).stat().st_ino == inode
    assert "satellite trail" in (out / night_page).read_text()
    full = render_site(config, full=True)
    assert full.pages_kept == 0 and (out / other).stat().st_ino != inode


def test_failed_build_leaves_the_published_site(site):
    config = site["config"]
    out = _site(site)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    template = config.paths.templates_dir / "night.html"
    original = template.read_text()
    template.write_text(original.replace("{{ epoch.telescope }}", "{{ epoch.no_such_field }}"))
    try:
        with pytest.raises(Exception, match="no_such_field"):
            render_site(config, full=True)
    finally:
        template.write_text(original)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not list(out.parent.glob(f".{out.name}.new-*"))


def test_worker_processes_render_the_same_pages(site, monkeypatch):
    import iopreport.site.pageworkers as pageworkers

    config = site["config"]
    out = _site(site)

    def pages() -> dict:
        return {
            p.relative_to(out): re.sub(r"Built .* UTC", "", p.read_text())
            for p in out.rglob("*.html")
            if p.name != "status.html"  # the heartbeat's age changes between builds
        }

    render_site(config, full=True, workers=1)
    serial = pages()
    monkeypatch.setattr(pageworkers, "MIN_UNITS_FOR_WORKERS", 1)
    monkeypatch.setattr(pageworkers, "UNITS_PER_TASK", 3)
    report = render_site(config, full=True, workers=2)
    assert report.pages_kept == 0
    assert pages() == serial
    assert PhotoPolResult.select().count() > 0  # the store still answers after the fork


@SQLITE_ONLY
def test_cli_build_records_a_run(site, tmp_path):
    """`iopreport build` on a copy of the project (a build re-applies flags and recomputes,
    which would replace the fixture's hand-made rows for the other tests)."""
    import shutil

    config = site["config"]
    copy = tmp_path / "copy"
    # the published site is left out: old copies are deleted in the background meanwhile
    ignore = shutil.ignore_patterns(".site_out*", "site_out")
    shutil.copytree(site["project"], copy, symlinks=True, ignore=ignore)
    try:
        assert main(["--config", str(copy / "config.toml"), "build"]) == 0
        run = RunLog.select().where(RunLog.command == "build").order_by(RunLog.id.desc()).get()
        assert run.outcome == "ok" and "pages rendered" in run.detail
    finally:
        close_store()
        open_store(config.database_path)


def test_empty_store_gives_a_site_and_a_second_build_keeps_it(site, tmp_path):
    project = tmp_path / "empty"
    init_project(project)
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    try:
        first = render_site(config)
        out = Path(config.paths.site_dir)
        assert (out / urls.index_page()).is_file() and (out / urls.status_page()).is_file()
        assert "No night summary has been written yet" in (out / "summaries/index.html").read_text()
        second = render_site(config)
        assert second.pages_rendered == ALWAYS_MADE and second.nights == 0
        assert first.output == second.output == out
    finally:
        close_store()
        open_store(site["config"].database_path)  # back to the module's store


def test_init_copies_the_site_templates(tmp_path):
    init_project(tmp_path / "p")
    for name in ("base.html", "index.html", "source.html", "night.html", "status.html"):
        assert (tmp_path / "p" / "templates" / name).is_file()
    for name in ("site.css", "site.js", "source.js"):
        assert (tmp_path / "p" / "static" / name).is_file()


# --------------------------------------------------------------------------- plots


def _point(mjd: float, mag: float, flagged: bool = False) -> dict:
    return {
        "date": "2020-01-01T00:00:00",
        "mjd": mjd,
        "night": "2020-01-01",
        "telescope": "OSN-T090",
        "instrument": "AndorT90",
        "band": "R",
        "mode": "photometry",
        "method": "relphot",
        "exptime": 60.0,
        "n_frames": 1,
        "mag": mag,
        "mag_err": 0.02,
        **dict.fromkeys(
            ("p_pct", "p_pct_err", "chi_deg", "chi_deg_err", "q_pct", "q_pct_err", "u_pct"),
        ),
        "u_pct_err": None,
        "flagged": flagged,
        "auto_flags": "BAD_PHOTOMETRY" if flagged else "",
        "manual_flags": "",
        "flag_reasons": "",
        "members": "OSN-T090/2020-01-01/a.fit",
        "night_page": "nights/2020-01-01/osn-t090.html",
        "n_binned": 1,
    }


def test_short_series_are_not_binned():
    points = [_point(58000 + i, 15.0) for i in range(100)]
    assert bin_points(points) == (points, 0.0)


def test_long_series_are_binned_by_night_with_weighted_means():
    per_night = 3
    nights = MAX_POINTS_PER_SERIES // per_night + 10
    points = [
        _point(58000 + n + 0.01 * k, 15.0 + 0.1 * k)
        for n in range(nights)
        for k in range(per_night)
    ]
    binned, width = bin_points(points)
    assert width == 1.0 and len(binned) == nights
    assert all(p["n_binned"] == per_night for p in binned)
    assert binned[0]["mag"] == pytest.approx(15.1)
    assert binned[0]["mag_err"] == pytest.approx(0.02 / per_night**0.5, abs=1e-4)
    figure = source_figure(binned)
    assert sum(len(t["customdata"]) for t in figure["data"]) == nights


def test_flagged_points_get_their_own_traces():
    points = [_point(58000 + i, 15.0, flagged=i % 4 == 0) for i in range(20)]
    figure = source_figure(points)
    flagged = [t for t in figure["data"] if t["meta"]["flagged"]]
    assert len(flagged) == 1 and len(flagged[0]["customdata"]) == 5
    assert flagged[0]["marker"]["symbol"] == "circle-open"
    assert figure["layout"]["yaxis"]["autorange"] == "reversed"


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    """A plain static file server on 127.0.0.1 over the published site."""
    handler = functools.partial(_QuietHandler, directory=str(_site(site)))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}"))
    page.on("dialog", lambda d: problems.append(f"dialog {d.message}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


_COUNT = """([flaggedToo, panel]) => {
  const plot = document.getElementById('plot');
  return plot.data
    .filter(t => t.meta && t.meta.kind === 'data' && t.meta.panel === (panel || 'mag'))
    .filter(t => flaggedToo || t.visible !== false)
    .reduce((n, t) => n + t.x.length, 0);
}"""


@SQLITE_ONLY
def test_browser_index_search_and_sort(site, browser, server):
    page, problems = _open(browser, server + urls.index_page())
    _shot(page, "index")
    rows = page.locator("#sources tbody tr")
    total = rows.count()
    assert total > 5
    page.fill("#search", "hiltner")
    assert page.locator("#sources tbody tr:not([hidden])").count() == 1
    page.fill("#search", "")
    page.click("#sources th:has-text('Nights')")
    page.click("#sources th:has-text('Nights')")  # descending: most nights first
    assert page.locator("#sources tbody tr").first.locator("td").first.inner_text() == STANDARD
    assert problems == []
    page.close()


@pytest.mark.parametrize("scheme", ["http", "file"])
@SQLITE_ONLY
def test_browser_source_page_plot_and_flag_toggle(site, browser, server, scheme):
    base = server if scheme == "http" else _site(site).resolve().as_uri() + "/"
    page, problems = _open(browser, base + urls.source_page(STANDARD))
    page.wait_for_function("document.getElementById('plot').data !== undefined")
    counts = site["counts"]
    total = counts["photometry"] + counts["polarimetry"]
    assert page.evaluate(_COUNT, [False, "mag"]) == total
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() > total
    assert page.locator("#points tbody tr").count() == total
    _shot(page, f"source-{scheme}")
    page.check("#hide-flagged")
    flagged = PhotoPolResult.select().where(
        (PhotoPolResult.flags != 0) | (PhotoPolResult.manual_flags != 0),
        PhotoPolResult.astrosource == AstroSource.get(AstroSource.name == STANDARD),
    )
    # a flag hides the quantity it concerns: the fixture's flags are all polarization
    # flags (an earlier test may have flagged a magnitude by hand)
    mag_flagged = sum(
        1 for r in flagged if r.flags & MAG_RESULT_FLAGS or r.manual_flags & MAG_MANUAL_FLAGS
    )
    assert mag_flagged < flagged.count()
    assert page.evaluate(_COUNT, [False, "mag"]) == total - mag_flagged
    assert page.evaluate(_COUNT, [False, "p"]) == counts["polarimetry"] - counts["flagged"]
    assert page.locator("#points tbody tr:not([hidden])").count() == total - flagged.count()
    page.uncheck("#hide-flagged")
    assert page.evaluate(_COUNT, [False, "p"]) == counts["polarimetry"]
    assert problems == []
    page.close()


@SQLITE_ONLY
def test_browser_downloads_hold_exactly_what_is_plotted(site, browser, server):
    page, problems = _open(browser, server + urls.source_page(STANDARD))
    data = _script_json(_page(site, urls.source_page(STANDARD)), "points-data")
    with page.expect_download() as csv_download:
        page.click("#download-csv")
    assert csv_download.value.suggested_filename == "hiltner-960.csv"
    text = Path(csv_download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    # the downloads carry the one column set of every table (results_table, export)
    assert data["download"] == [*COLUMN_NAMES, "n_binned"]
    assert list(rows[0]) == data["download"] and len(rows) == len(data["rows"])
    with page.expect_download() as json_download:
        page.click("#download-json")
    downloaded = json.loads(Path(json_download.value.path()).read_text(encoding="utf-8"))
    index = [data["columns"].index(name) for name in data["download"]]
    projected = [[row[i] for i in index] for row in data["rows"]]
    assert downloaded == {"source": data["source"], "columns": data["download"], "rows": projected}
    assert all(float(r["jd"]) == pytest.approx(float(r["mjd"]) + 2400000.5) for r in rows)
    # the fixture's standard results are at 12:54 UTC: below the horizon, no airmass
    assert all(r["airmass"] == "" or float(r["airmass"]) >= 1.0 for r in rows)
    manual = [r for r in rows if r["manual_flags"]]
    assert {r["manual_flags"] for r in manual} >= {"BAD_POLARIMETRY"}
    assert REASON_MARKUP in {r["flag_reasons"] for r in manual}
    auto = [r for r in rows if r["auto_flags"]]
    assert auto[0]["auto_flags"] == "BAD_POLARIMETRY|LARGE_POL_ERROR"
    assert {r["flagged"] for r in rows} == {"true", "false"}
    standard = AstroSource.get(AstroSource.name == STANDARD)
    stored = sorted(
        r.p * 100
        for r in PhotoPolResult.select().where(
            PhotoPolResult.mode == "polarimetry", PhotoPolResult.astrosource == standard
        )
    )
    assert sorted(float(r["p_pct"]) for r in rows if r["p_pct"]) == pytest.approx(stored, abs=1e-3)
    assert problems == []
    page.close()


_PLOTTED = """(panel) => document.getElementById('plot').data
  .filter(t => t.meta && t.meta.kind === 'data' && t.meta.panel === panel)
  .flatMap(t => t.y.map((y, k) => [t.x[k], y, t.error_y.array[k]]))"""


@SQLITE_ONLY
def test_browser_plotted_points_are_the_stored_values(site, browser, server):
    """x, y and the error bars are filled in the browser from the data rows."""
    page, problems = _open(browser, server + urls.source_page(STANDARD))
    page.wait_for_function("document.getElementById('plot').data !== undefined")
    source = AstroSource.get(AstroSource.name == STANDARD)
    results = list(PhotoPolResult.select().where(PhotoPolResult.astrosource == source))
    polarimetry = [r for r in results if r.mode == "polarimetry"]
    plotted = page.evaluate(_PLOTTED, "p")
    expected = sorted((r.p * 100, r.p_err * 100) for r in polarimetry)
    got = sorted((y, e) for _, y, e in plotted)
    assert [v for pair in got for v in pair] == pytest.approx(
        [v for pair in expected for v in pair], abs=1e-3
    )
    mags = page.evaluate(_PLOTTED, "mag")
    assert sorted(y for _, y, _ in mags) == pytest.approx(sorted(r.mag for r in results))
    data = _script_json(_page(site, urls.source_page(STANDARD)), "points-data")
    dates = {row[data["columns"].index("date")] for row in data["rows"]}
    assert {x for x, _, _ in mags} == dates
    assert problems == []
    page.close()


@SQLITE_ONLY
def test_browser_click_on_a_point_opens_its_night(site, browser, server):
    page, problems = _open(browser, server + urls.source_page(STANDARD))
    page.wait_for_function("document.getElementById('plot').data !== undefined")
    point = page.locator(".js-plotly-plot .scatterlayer .trace").first.locator(".point").first
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector(".hoverlayer .hovertext")
    hover = page.locator(".hoverlayer .hovertext").text_content()
    assert "MJD" in hover and "exposure 30.0 s" in hover and "Hiltner960-" in hover
    with page.expect_navigation():
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert "/nights/" in page.url
    assert problems == []
    page.close()


@pytest.mark.slow  # every page of the site in the browser: 12 s
@SQLITE_ONLY
def test_browser_every_page_loads_without_errors(site, browser, server):
    out = _site(site)
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    for path in pages:
        page, problems = _open(browser, server + path)
        assert problems == [], path
        if path == urls.night_page(NIGHT, TELESCOPE):
            page.locator("img.thumb").evaluate_all("els => els.forEach(e => e.scrollIntoView())")
            page.wait_for_function(
                "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
            )
            assert page.locator("img.thumb").count() == 5
            # the OBJECT markup is shown as text, never made into an element
            assert OBJECT_MARKUP in page.locator("table.frames[data-kind=bias]").inner_text()
            assert page.locator("table.frames img[src=x]").count() == 0
            light = page.locator("table.frames[data-kind=light]").inner_text()
            assert "DOWNLOADED, CLASSIFIED" in light and "ASTROMETRY_OK" in light
            assert page.locator("#results-table tbody tr").count() == 1
            _shot(page, "night")
        page.close()


#: Screenshots kept in the repository (the others the tests write are ignored by git).
KEPT_SCREENSHOTS = ("index.png", "source-bands.png", "night.png")


def test_browser_artifacts_kept_are_the_chosen_screenshots(repo_root):
    lines = (repo_root / ".gitignore").read_text().splitlines()
    assert "/tests/artifacts/*" in lines
    assert {f"!/tests/artifacts/{name}" for name in KEPT_SCREENSHOTS} <= set(lines)


# --------------------------------------------------------------------------- views

_SHAPES = """() => {
  const plot = document.getElementById('plot');
  const full = plot._fullLayout;
  const left = full.xaxis._offset, width = full.xaxis._length;
  return Array.from(plot.querySelectorAll('.shapelayer path')).map(path => {
    const box = path.getBoundingClientRect(), origin = plot.getBoundingClientRect();
    return {left: box.left - origin.left - left, width: box.width, axis: width};
  });
}"""


def _wait_plot(page) -> None:
    page.wait_for_function(
        "document.getElementById('plot') && document.getElementById('plot')._fullLayout"
    )


@pytest.mark.parametrize("name", [ONE_EPOCH_STANDARD, STANDARD])
@SQLITE_ONLY
def test_browser_literature_lines_span_the_whole_time_axis(site, browser, server, name):
    page, problems = _open(browser, server + urls.source_page(name))
    _wait_plot(page)
    shapes = page.evaluate(_SHAPES)
    figure = _script_json(_page(site, urls.source_page(name)), "figure-data")
    names = [shape["name"] for shape in figure["layout"]["shapes"]]
    assert any("literature p" in n for n in names) and any("literature χ" in n for n in names)
    assert len(shapes) == len(names)
    for shape in shapes:  # every line from the left end of the axis to the right end
        assert shape["left"] == pytest.approx(0, abs=2)
        assert shape["width"] == pytest.approx(shape["axis"], abs=2)
    legend = page.locator(".legend").text_content()
    assert "literature p" in legend and "literature χ" in legend
    page.close()
    assert problems == []


def _ticks(page) -> list[str]:
    texts = page.locator("#plot .xtick text").evaluate_all("els => els.map(e => e.textContent)")
    return [t.strip() for t in texts if t.strip()]


@SQLITE_ONLY
def test_browser_short_span_ticks_and_mjd_toggle(site, browser, server):
    page, problems = _open(browser, server + urls.source_page(ONE_EPOCH_STANDARD))
    _wait_plot(page)
    low, high = page.evaluate("document.getElementById('plot').layout.xaxis.range")
    span = (dt.datetime.fromisoformat(high) - dt.datetime.fromisoformat(low)).total_seconds()
    assert 86400 <= span <= 1.2 * 86400  # one epoch: shown over a day
    ticks = _ticks(page)
    assert len(ticks) >= 3
    assert not any(re.search(r"\d:\d\d\.\d", t) for t in ticks), ticks  # no sub-second ticks
    assert any(re.search(r"\d\d:\d\d", t) for t in ticks), ticks  # labelled in hours
    page.check("input[name=time-axis][value=mjd]")
    page.wait_for_function("document.getElementById('plot').layout.xaxis.type === 'linear'")
    data = _script_json(_page(site, urls.source_page(ONE_EPOCH_STANDARD)), "points-data")
    mjd = data["rows"][0][data["columns"].index("mjd")]
    xs = page.evaluate(
        "document.getElementById('plot').data.filter(t => t.meta && t.meta.kind === 'data')"
        ".flatMap(t => t.x)"
    )
    assert xs and all(x == pytest.approx(mjd) for x in xs)
    values = [float(t.replace(",", "")) for t in _ticks(page)]
    assert values and all(mjd - 1 <= v <= mjd + 1 for v in values)
    assert "MJD" in page.locator("#plot .g-xtitle").text_content()
    assert "x=mjd" in page.get_attribute("#view-link", "href")
    page.check("input[name=time-axis][value=date]")
    page.wait_for_function("document.getElementById('plot').layout.xaxis.type === 'date'")
    assert "date" in page.locator("#plot .g-xtitle").text_content()
    page.close()
    assert problems == []


_VISIBLE = """() => document.getElementById('plot').data
  .filter(t => t.meta && t.meta.kind === 'data' && t.visible !== false)
  .map(t => [t.meta.band, t.meta.instrument, t.x.length])"""


@SQLITE_ONLY
def test_browser_band_selector_and_instrument_toggle(site, browser, server):
    page, problems = _open(browser, server + urls.source_page(BLLAC))
    _wait_plot(page)
    _shot(page, "source-bands")
    options = page.locator("#band-select option").all_inner_texts()
    assert options == ["all bands", "B", "V", "R", "I"]
    assert {band for band, _, _ in page.evaluate(_VISIBLE)} == set("BVRI")
    page.select_option("#band-select", "V")
    visible = page.evaluate(_VISIBLE)
    assert {band for band, _, _ in visible} == {"V"}
    assert sum(n for _, _, n in visible) == site["band_counts"]["V"]
    rows = page.locator("#points tbody tr:not([hidden])")
    assert rows.count() == site["band_counts"]["V"]
    page.select_option("#band-select", "R")
    instruments = {i for _, i, _ in page.evaluate(_VISIBLE)}
    assert {"AndorT90", "DIPOL"} <= instruments
    page.uncheck(".instrument-toggle[value=AndorT90]")
    visible = page.evaluate(_VISIBLE)
    assert visible and {i for _, i, _ in visible} == instruments - {"AndorT90"}
    shown = page.locator("#points tbody tr:not([hidden])").all_inner_texts()
    assert shown and not any("AndorT90" in row for row in shown)
    link = page.get_attribute("#view-link", "href")
    assert "band=R" in link and "instrument=" in link and "AndorT90" not in link
    page.check(".instrument-toggle[value=AndorT90]")
    page.select_option("#band-select", "")
    assert {band for band, _, _ in page.evaluate(_VISIBLE)} == set("BVRI")
    page.close()
    assert problems == []


@SQLITE_ONLY
def test_browser_url_opens_a_band_and_time_range(site, browser, server):
    start, end = NIGHT - dt.timedelta(days=7), NIGHT - dt.timedelta(days=2)
    query = f"?band=V&from={start.isoformat()}&to={end.isoformat()}"
    page, problems = _open(browser, server + urls.source_page(BLLAC) + query)
    _wait_plot(page)
    assert page.input_value("#band-select") == "V"
    assert {band for band, _, _ in page.evaluate(_VISIBLE)} == {"V"}
    low, high = page.evaluate("document.getElementById('plot').layout.xaxis.range")
    assert low.startswith(start.isoformat()) and high.startswith(end.isoformat())
    page.close()
    # the same in MJD
    mjd = (NIGHT - dt.date(1858, 11, 17)).days
    page, problems2 = _open(
        browser, server + urls.source_page(BLLAC) + f"?from={mjd - 10}&to={mjd + 1.5}&x=mjd"
    )
    _wait_plot(page)
    assert page.input_value("#band-select") == ""
    assert page.evaluate("document.getElementById('plot').layout.xaxis.range") == [
        mjd - 10,
        mjd + 1.5,
    ]
    page.close()
    # a night page's result links open the source at the result's band, around that night
    page, problems3 = _open(browser, server + urls.night_page(NIGHT, TELESCOPE))
    link = page.locator("#results-table a").first
    href = link.get_attribute("href")
    assert "band=R" in href and f"from={(NIGHT - dt.timedelta(days=15)).isoformat()}" in href
    with page.expect_navigation():
        link.click()
    _wait_plot(page)
    assert page.input_value("#band-select") == "R"
    low, high = page.evaluate("document.getElementById('plot').layout.xaxis.range")
    assert low.startswith((NIGHT - dt.timedelta(days=15)).isoformat())
    assert high.startswith((NIGHT + dt.timedelta(days=16)).isoformat())
    # and the index's last magnitude opens the light curve in its band
    page.goto(server + urls.index_page())
    href = page.locator(f"#sources a[href^='{urls.source_page(BLLAC)}?band=']").get_attribute(
        "href"
    )
    assert href.endswith("?band=R")
    page.close()
    assert problems == problems2 == problems3 == []


@SQLITE_ONLY
def test_browser_standard_polarization_survives_a_magnitude_flag(site, browser, server):
    page, problems = _open(browser, server + urls.index_page())
    row = page.locator("#sources tbody tr", has_text=ONE_EPOCH_STANDARD)
    cells = row.locator("td").all_inner_texts()
    assert cells[3].strip() == "—"  # its only magnitude is FEW_CALIBRATORS-flagged
    assert cells[4].strip() == f"{ONE_EPOCH_P * 100:.2f}" and cells[5].strip() == "59.4"
    page.goto(server + urls.source_page(ONE_EPOCH_STANDARD))
    _wait_plot(page)
    page.check("#hide-flagged")
    assert page.evaluate(_COUNT, [False, "p"]) == 1  # p and chi stay
    assert page.evaluate(_COUNT, [False, "chi"]) == 1
    assert page.evaluate(_COUNT, [False, "mag"]) == 0  # the magnitude is what is flagged
    page.close()
    assert problems == []


@SQLITE_ONLY
def test_browser_index_shows_observed_sources_first(site, browser, server):
    page, problems = _open(browser, server + urls.index_page())
    _shot(page, "index")
    visible = page.locator("#sources tbody tr:not([hidden])")
    hidden = page.locator("#sources tbody tr.unobserved")
    n_observed = visible.count()
    observed = PhotoPolResult.select(PhotoPolResult.astrosource).distinct().count()
    assert n_observed == observed >= 3  # Hiltner 960, HD 204827, BL Lac, ...
    assert (
        hidden.count() > 5 and page.locator("#sources tbody tr[hidden]").count() == hidden.count()
    )
    nights = [int(t) for t in visible.locator("td:nth-child(7)").all_inner_texts()]
    assert all(n > 0 for n in nights)
    page.check("#show-unobserved")
    assert page.locator("#sources tbody tr:not([hidden])").count() == n_observed + hidden.count()
    first = page.locator("#sources tbody tr").first.locator("td").nth(6).inner_text()
    assert int(first) > 0  # observed first
    page.fill("#search", "hiltner")
    assert page.locator("#sources tbody tr:not([hidden])").count() == 1
    page.fill("#search", "")
    page.uncheck("#show-unobserved")
    assert page.locator("#sources tbody tr:not([hidden])").count() == n_observed
    assert "never observed" in page.locator(".lead").inner_text()
    page.close()
    assert problems == []


@SQLITE_ONLY
def test_browser_night_header_is_separated(site, browser, server):
    page, problems = _open(browser, server + urls.night_page(NIGHT, TELESCOPE))
    lead = page.locator("p.lead").inner_text()
    assert re.search(r"failures · State: [A-Z_, ]+ · Night summary$", lead.strip()), lead
    page.close()
    assert problems == []


_CHART_PIXELS = """(img) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const grey = [];
  for (let i = 0; i < data.length; i += 4) grey.push(data[i]);
  grey.sort((a, b) => a - b);
  const dark = grey.filter(v => v < 16).length / grey.length;
  return {width: img.naturalWidth, median: grey[grey.length >> 1], dark: dark};
}"""


@SQLITE_ONLY
def test_browser_finding_chart_asinh_on_zscale(site, browser, server):
    """The chart's sky is a light grey, not noise at full contrast; stars stay dark."""
    import numpy as np
    from astropy.visualization import ZScaleInterval

    from iopreport.site import charts

    page, problems = _open(browser, server + urls.source_page(BLLAC))
    image = page.locator("figure.chart img")
    page.wait_for_function("document.querySelector('figure.chart img').complete")
    pixels = image.evaluate(_CHART_PIXELS)
    assert pixels["width"] == 320
    assert 150 <= pixels["median"] <= 240, pixels  # sky a light grey (gray_r: white is faint)
    assert 0.0 < pixels["dark"] < 0.05, pixels  # the stars' cores, and little else
    page.close()
    assert problems == []
    from iopreport.site.sourcecontext import chart_frame, load_sources

    source = next(s for s in load_sources().values() if s.name == BLLAC)
    frame = chart_frame(source, site["config"].paths.datadir)
    data, _ = charts._read_image(frame.path)
    low, high = ZScaleInterval(contrast=charts.ZSCALE_CONTRAST).get_limits(data)
    scaled = charts._stretch(data)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    assert np.all(scaled[data <= low] == 0.0) and np.all(scaled[data >= high] == 1.0)
    middle = (data > low) & (data < high)
    linear = (data[middle] - low) / (high - low)
    assert np.all(scaled[middle] >= linear - 1e-6)  # asinh lifts the faint end


_CONDITIONS = """() => document.getElementById('conditions-plot').data
  .map(t => [t.meta.panel, t.meta.instrument, t.meta.flagged, t.x.length, t.y])"""


@SQLITE_ONLY
def test_browser_night_observing_conditions(site, browser, server):
    from iopreport.store import ReducedFit

    page, problems = _open(browser, server + urls.night_page(NIGHT, TELESCOPE))
    page.wait_for_function("document.getElementById('conditions-plot')._fullLayout")
    traces = page.evaluate(_CONDITIONS)
    assert {panel for panel, *_ in traces} == {"seeing", "zero_point", "sky"}
    seeing = sorted(y for panel, *_, ys in traces if panel == "seeing" for y in ys)
    stored = sorted(
        round(f.seeing_fwhm_arcsec, 2)
        for f in ReducedFit.select().join(RawFit).where(RawFit.imgtype == "light")
        if f.seeing_fwhm_arcsec is not None and f.rawfit.epoch.night == NIGHT
    )
    assert seeing == pytest.approx(stored)
    flagged = [t for t in traces if t[2]]
    assert flagged and all(n == 1 for _, _, _, n, _ in flagged)  # the clouded frame
    symbols = page.evaluate(
        "document.getElementById('conditions-plot').data.filter(t => t.meta.flagged)"
        ".map(t => t.marker.symbol)"
    )
    assert set(symbols) == {"x"}
    hover = page.evaluate(
        "document.getElementById('conditions-plot').data.filter(t => t.meta.flagged)[0].text[0]"
    )
    assert site["flagged_frame"] in hover and "LOW_TRANSPARENCY" in hover
    assert page.locator("#conditions-plot .xtick").count() >= 2
    page.close()
    assert problems == []
