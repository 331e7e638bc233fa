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
from astropy.io import fits

from iopreport import urls
from iopreport.archive.local import fetch_night
from iopreport.catalog import load_catalog, sync_catalog
from iopreport.cli import main
from iopreport.config import load_config
from iopreport.demo import point_archives_at
from iopreport.reduce.night import reduce_night
from iopreport.simulate import simulate_night
from iopreport.site import publish, render_site
from iopreport.site.plots import MAX_POINTS_PER_SERIES, bin_points, source_figure
from iopreport.site.render import script_json
from iopreport.skeleton import init_project
from iopreport.store import (
    AstroSource,
    Epoch,
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


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A project with one reduced tiny night, extra standard results, and a built site."""
    root = tmp_path_factory.mktemp("site")
    project = root / "site"
    init_project(project)
    point_archives_at(project / "config.toml", project / "archive")
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
    counts = _add_standard_results()
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
    yield {"project": project, "config": config, "report": report, "counts": counts}
    close_store()


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
    assert len(nights) == 1 + EXTRA_NIGHTS
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
    references = [t["name"] for t in figure["data"] if t["meta"]["kind"] == "reference"]
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
    import iopreport.site.render as render

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
    monkeypatch.setattr(render, "MIN_UNITS_FOR_WORKERS", 1)
    monkeypatch.setattr(render, "UNITS_PER_TASK", 3)
    report = render_site(config, full=True, workers=2)
    assert report.pages_kept == 0
    assert pages() == serial
    assert PhotoPolResult.select().count() > 0  # the store still answers after the fork


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


_COUNT = """(flaggedToo) => {
  const plot = document.getElementById('plot');
  return plot.data
    .filter(t => t.meta && t.meta.kind === 'data' && t.meta.panel === 'mag')
    .filter(t => flaggedToo || t.visible !== false)
    .reduce((n, t) => n + t.x.length, 0);
}"""


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
def test_browser_source_page_plot_and_flag_toggle(site, browser, server, scheme):
    base = server if scheme == "http" else _site(site).resolve().as_uri() + "/"
    page, problems = _open(browser, base + urls.source_page(STANDARD))
    page.wait_for_function("document.getElementById('plot').data !== undefined")
    counts = site["counts"]
    total = counts["photometry"] + counts["polarimetry"]
    assert page.evaluate(_COUNT, False) == total
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() > total
    assert page.locator("#points tbody tr").count() == total
    _shot(page, f"source-{scheme}")
    page.check("#hide-flagged")
    flagged = PhotoPolResult.select().where(
        (PhotoPolResult.flags != 0) | (PhotoPolResult.manual_flags != 0),
        PhotoPolResult.astrosource == AstroSource.get(AstroSource.name == STANDARD),
    )
    assert page.evaluate(_COUNT, False) == total - flagged.count()
    assert page.locator("#points tbody tr:not([hidden])").count() == total - flagged.count()
    page.uncheck("#hide-flagged")
    assert page.evaluate(_COUNT, False) == total
    assert problems == []
    page.close()


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
    stored = sorted(
        r.p * 100 for r in PhotoPolResult.select().where(PhotoPolResult.mode == "polarimetry")
    )
    assert sorted(float(r["p_pct"]) for r in rows if r["p_pct"]) == pytest.approx(stored, abs=1e-3)
    assert problems == []
    page.close()


_PLOTTED = """(panel) => document.getElementById('plot').data
  .filter(t => t.meta && t.meta.kind === 'data' && t.meta.panel === panel)
  .flatMap(t => t.y.map((y, k) => [t.x[k], y, t.error_y.array[k]]))"""


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


def test_browser_artifacts_are_ignored_by_git(repo_root):
    assert "/tests/artifacts/" in (repo_root / ".gitignore").read_text().splitlines()
