"""Incremental site builds: every way a page's inputs change re-renders it, and only it.

A small store written by hand (as reduce would) over the project's real catalog:
two blazars observed on three nights. Each test changes the store the way one
writer does — flags.toml applied, a catalog edit synced, a recompute, a new
night, a deleted result, a raw frame flag set by hand in SQL, a master marked
bad — builds again, and compares the units rendered with the ones expected.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import tomlkit

from iopreport import urls
from iopreport.catalog import load_catalog, sync_catalog
from iopreport.config import load_config
from iopreport.flags.manual import apply_flags
from iopreport.flags.parse import load_flags
from iopreport.site import pageworkers, publish, render_site
from iopreport.store import (
    AstroSource,
    Epoch,
    MasterBias,
    PhotoPolResult,
    RawFit,
    ReducedFit,
    close_store,
    open_store,
)
from iopreport.store.models import database_proxy

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

TELESCOPE = "OSN-T090"
NIGHTS = [dt.date(2024, 5, 1), dt.date(2024, 5, 2), dt.date(2024, 5, 3)]
BLLAC = "2200+420"
OTHER = "2251+158"


def _jd(night: dt.date, hours: float) -> float:
    return 2440587.5 + (night - dt.date(1970, 1, 1)).days + 0.5 + hours / 24


def add_night(night: dt.date, names: list[str]) -> Epoch:
    """A night with a master bias, one reduced frame and one result per source."""
    epoch = Epoch.create(telescope=TELESCOPE, night=night)
    bias = MasterBias.create(
        epoch=epoch,
        filename=f"mb/{night}.fits",
        instrument="AndorT90",
        imgsize="1024x1024",
        binning="2x2",
    )
    for k, name in enumerate(names):
        source = AstroSource.get(AstroSource.name == name)
        raw = RawFit.create(
            epoch=epoch,
            filename=f"{k}-R.fits",
            instrument="AndorT90",
            imgtype="light",
            obsmode="photometry",
            band="R",
            juliandate=_jd(night, k),
            exptime=60.0,
            object_name=name,
        )
        ReducedFit.create(rawfit=raw, filename=f"red/{night}/{k}-R.fits", masterbias=bias)
        PhotoPolResult.create(
            astrosource=source,
            epoch=epoch,
            members_key=f"{TELESCOPE}/{night}/{k}-R.fits",
            mode="photometry",
            method="relphot",
            instrument="AndorT90",
            band="R",
            exptime=60.0,
            juliandate=_jd(night, k),
            juliandate_min=_jd(night, k),
            juliandate_max=_jd(night, k),
            mag=14.0 + k,
            mag_err=0.02,
        )
    return epoch


@pytest.fixture
def project(project: Path, backend_location):
    """The project with its catalog synced, three nights, and a first build; the store
    once in SQLite and once on PostgreSQL."""
    if isinstance(backend_location, str):  # a PostgreSQL URL
        document = tomlkit.parse((project / "config.toml").read_text())
        document["paths"]["database"] = backend_location
        (project / "config.toml").write_text(tomlkit.dumps(document))
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    sync_catalog(load_catalog(config.paths.catalog))
    for night in NIGHTS:
        add_night(night, [BLLAC, OTHER])
    render_site(config, workers=1)
    yield config
    publish.wait_for_cleanup()
    close_store()


@pytest.fixture
def rendered(monkeypatch):
    """Pages each build renders: the set is filled by the next ``render_site``."""
    pages: set[str] = set()
    make_source, make_night = pageworkers.make_source_page, pageworkers.make_night_page

    def source(build, info, *args):
        pages.add(info.page)
        return make_source(build, info, *args)

    def night(build, epoch, *args):
        pages.add(epoch.page)
        return make_night(build, epoch, *args)

    monkeypatch.setattr(pageworkers, "make_source_page", source)
    monkeypatch.setattr(pageworkers, "make_night_page", night)
    return pages


def _night(night: dt.date) -> str:
    return urls.night_page(night, TELESCOPE)


def _build(config, rendered: set[str]) -> set[str]:
    rendered.clear()
    report = render_site(config, workers=1)
    assert report.pages_rendered == len(rendered) + 4  # index, catalog, status, summaries
    return set(rendered)


def test_nothing_changed_renders_nothing(project, rendered):
    assert _build(project, rendered) == set()
    assert _build(project, rendered) == set()  # the other generation too


def test_flag_added_in_flags_toml(project, rendered):
    _build(project, rendered)  # both generations hold every page
    path = project.paths.flags
    path.write_text(
        path.read_text() + '\n[[flag]]\nid = "F0001"\nwhat = "photometry"\n'
        f'source = "{BLLAC}"\nnight = {NIGHTS[1]}\nreason = "thin cirrus"\n'
        'author = "J. Doe"\ndate = 2024-05-03\n'
    )
    flagset = load_flags(path, load_catalog(project.paths.catalog), telescopes=[TELESCOPE])
    assert apply_flags(flagset).changed == 1
    assert _build(project, rendered) == {urls.source_page(BLLAC), _night(NIGHTS[1])}
    site = Path(project.paths.site_dir)
    assert "thin cirrus" in (site / _night(NIGHTS[1])).read_text()
    # applying the same file again writes nothing, so nothing is rendered again
    assert apply_flags(flagset).changed == 0
    assert _build(project, rendered) == set()


def test_catalog_edit(project, rendered):
    path = project.paths.catalog
    text = path.read_text()
    start = text.index(f'name = "{OTHER}"')
    comment = text.index("comment = ", start)
    end = text.index("\n", comment)
    path.write_text(text[:comment] + 'comment = "edited <b>here</b>"' + text[end:])
    sync_catalog(load_catalog(path))
    assert _build(project, rendered) == {urls.source_page(OTHER)}
    page = (Path(project.paths.site_dir) / urls.source_page(OTHER)).read_text()
    assert "edited &lt;b&gt;here&lt;/b&gt;" in page


def test_recomputed_result(project, rendered):
    """recompute deletes a night's results and writes them again from the stored fluxes."""
    epoch = Epoch.get(Epoch.night == NIGHTS[0])
    result = PhotoPolResult.get(PhotoPolResult.epoch == epoch, PhotoPolResult.mag == 14.0)
    values = {k: v for k, v in result.__data__.items() if k != "id"}
    result.delete_instance()
    PhotoPolResult.create(**{**values, "mag": 13.5})
    assert _build(project, rendered) == {urls.source_page(BLLAC), _night(NIGHTS[0])}
    page = (Path(project.paths.site_dir) / urls.source_page(BLLAC)).read_text()
    assert "13.5" in page


def test_new_night(project, rendered):
    new = NIGHTS[-1] + dt.timedelta(days=1)
    add_night(new, [OTHER])
    # the new night, the night before it (its "next" link) and the source observed
    assert _build(project, rendered) == {_night(new), _night(NIGHTS[-1]), urls.source_page(OTHER)}
    before = (Path(project.paths.site_dir) / _night(NIGHTS[-1])).read_text()
    assert new.isoformat() in before


def test_deleted_result(project, rendered):
    epoch = Epoch.get(Epoch.night == NIGHTS[2])
    PhotoPolResult.delete().where(
        PhotoPolResult.epoch == epoch, PhotoPolResult.mag == 15.0
    ).execute()
    assert _build(project, rendered) == {urls.source_page(OTHER), _night(NIGHTS[2])}
    index = (Path(project.paths.site_dir) / urls.index_page()).read_text()
    assert index  # made on every build


def test_raw_frame_flag_set_by_hand_in_sql(project, rendered):
    epoch = Epoch.get(Epoch.night == NIGHTS[1])
    database_proxy.execute_sql(
        "UPDATE raw_fit SET error = 'cosmic ray storm' WHERE epoch_id = ?", (epoch.id,)
    )
    assert _build(project, rendered) == {_night(NIGHTS[1])}
    page = (Path(project.paths.site_dir) / _night(NIGHTS[1])).read_text()
    assert "cosmic ray storm" in page


def test_master_used_by_another_night(project, rendered):
    first, second = (Epoch.get(Epoch.night == night) for night in NIGHTS[:2])
    bias = MasterBias.get(MasterBias.epoch == first)
    ReducedFit.update(masterbias=bias).where(
        ReducedFit.rawfit.in_(RawFit.select(RawFit.id).where(RawFit.epoch == second))
    ).execute()
    assert _build(project, rendered) == {_night(NIGHTS[1])}  # it now lists the master used
    bias.error = "bias level jumped"
    bias.save()
    assert _build(project, rendered) == {_night(NIGHTS[0]), _night(NIGHTS[1])}


def test_full_build_renders_everything_and_a_failed_build_leaves_the_site(project, rendered):
    site = Path(project.paths.site_dir)
    full = render_site(project, full=True, workers=1)
    assert full.pages_kept == 0 and len(rendered) == full.pages_rendered - 4
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    add_night(NIGHTS[-1] + dt.timedelta(days=1), [BLLAC])
    template = project.paths.templates_dir / "night.html"
    original = template.read_text()
    template.write_text(original.replace("{{ epoch.telescope }}", "{{ epoch.no_such_field }}"))
    try:
        with pytest.raises(Exception, match="no_such_field"):
            render_site(project, workers=1)
    finally:
        template.write_text(original)
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert len(_build(project, rendered)) == 3  # the new night, the one before, the source


def test_interrupted_build_leaves_no_generation_to_trust(project, rendered):
    """A build killed while writing leaves a generation without a manifest: it is redone."""
    site = Path(project.paths.site_dir)
    other = publish.generations_folder(site) / next(
        n for n in publish.GENERATIONS if site.resolve().name != n
    )
    _build(project, rendered)  # writes ``other``: it is published now
    assert site.resolve() == other
    _build(project, rendered)  # the first generation again
    # as if a build had been killed after changing a page of ``other`` and before its manifest
    page = other / urls.source_page(BLLAC)
    os.unlink(page)
    page.write_text("half written")
    (other / publish.MANIFEST_NAME).unlink()
    assert _build(project, rendered) == set()  # every unit linked from the published site
    assert site.resolve() == other
    assert "half written" not in (site / urls.source_page(BLLAC)).read_text()


def test_a_plain_site_folder_is_replaced_by_the_link(project, rendered, tmp_path):
    """A site published by an older iopreport (a plain folder) becomes the link."""
    site = Path(project.paths.site_dir)
    old = tmp_path / "old-site"
    os.rename(site.resolve(), old)
    site.unlink()
    os.rename(old, site)  # a plain folder with the pages and no generations
    for name in publish.GENERATIONS:
        assert not (publish.generations_folder(site) / name).exists()
    assert _build(project, rendered) == set()  # its pages are linked from the folder
    assert site.is_symlink() and (site / urls.index_page()).is_file()
    publish.wait_for_cleanup()
    assert not list(site.parent.glob(f".{site.name}.old-*"))


def test_a_build_killed_while_publishing_leaves_nothing_behind(project, rendered):
    """A link made but not yet renamed over the site, or an old plain folder exchanged
    with it, are removed by the next build."""
    site = Path(project.paths.site_dir)
    os.symlink(".site_out.gen/a", site.parent / f".{site.name}.link-999999")
    (site.parent / f".{site.name}.link-999998").mkdir()
    (site.parent / f".{site.name}.link-999998" / "index.html").write_text("old")
    assert _build(project, rendered) == set()
    publish.wait_for_cleanup()
    assert not list(site.parent.glob(f".{site.name}.link-*"))
    assert not list(site.parent.glob(f".{site.name}.old-*"))
    assert site.is_symlink() and (site / urls.index_page()).is_file()
