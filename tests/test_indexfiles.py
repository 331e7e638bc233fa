"""Index files for the real sky: tiles, plan, recognition by header, downloads over HTTP."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from index_helpers import Mirror, build_tile, builder, mirror_series, star_table

from iopreport.indexfiles import series as series_module
from iopreport.indexfiles.fetch import fetch_files
from iopreport.indexfiles.identify import PARTIAL_SUFFIX, scan_index_folder
from iopreport.indexfiles.plan import field_of, make_plan
from iopreport.indexfiles.series import SERIES, scales_for
from iopreport.indexfiles.tiles import tile_of, tiles_covering
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.reduce.astrometry import index_files_in

INSTRUMENTS = InstrumentRegistry.builtin().specs

#: A field on the border of two nside-2 tiles: Debian's get-healpix puts the
#: centre in tile 1 (bighp 0, x 0, y 1) and a point 0.14 deg north, still
#: inside the AndorT90 field plus margin, in tile 3 (bighp 0, x 1, y 1). In
#: the NESTED scheme of other libraries these are pixels 2 and 3.
BORDER = SimpleNamespace(name="border", ra_deg=30.0, dec_deg=54.3)
BORDER_TILES = [1, 3]


def get_healpix(ra: float, dec: float, nside: int) -> int:
    out = subprocess.run(
        ["get-healpix", "-N", str(nside), "--", str(ra), str(dec)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(re.search(r"Healpix=(\d+) in the XY scheme", out).group(1))


def test_tile_numbers_are_astrometry_nets_xy_scheme():
    builder()  # the Debian tools are installed
    rng = np.random.default_rng(3)
    for nside in (1, 2, 4):
        for _ in range(15):
            ra = float(rng.uniform(0, 360))
            dec = float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
            assert tile_of(ra, dec, nside) == get_healpix(ra, dec, nside), (ra, dec, nside)


def test_border_field_needs_both_tiles_checked_by_hand():
    fov = field_of(INSTRUMENTS["AndorT90"])
    assert get_healpix(BORDER.ra_deg, BORDER.dec_deg, 2) == 1
    assert get_healpix(BORDER.ra_deg, BORDER.dec_deg + 0.139, 2) == 3
    assert fov.radius_deg > 0.139
    assert tiles_covering(BORDER.ra_deg, BORDER.dec_deg, fov.radius_deg, 2) == BORDER_TILES
    # away from the border, one tile
    assert tiles_covering(BORDER.ra_deg, BORDER.dec_deg - 2.0, fov.radius_deg, 2) == [1]
    plan = make_plan(
        [BORDER], {"AndorT90": INSTRUMENTS["AndorT90"]}, series="5200", index_dir=Path("/none")
    )
    names = sorted(plan.files)
    assert names == [f"index-52{s:02d}-{t:02d}.fits" for s in range(6) for t in BORDER_TILES]
    sizes = SERIES["5200"].scale_to_sizes
    assert plan.total_bytes == sum(sizes[s][t] for s in range(6) for t in BORDER_TILES)


def test_scales_follow_the_field_width():
    fields = {name: field_of(spec) for name, spec in INSTRUMENTS.items()}
    assert abs(fields["AndorT90"].size_arcmin - 13.21) < 0.01
    assert abs(fields["DIPOL"].width_arcmin - 9.22) < 0.01
    # quads 10%-100% of the width; the 5200 series starts at 2' quads (scale 0)
    assert scales_for(SERIES["5200"], *fields["AndorT90"].quad_range_arcmin) == [0, 1, 2, 3, 4, 5]
    assert scales_for(SERIES["5200"], *fields["CAFOS"].quad_range_arcmin) == [0, 1, 2, 3]
    # a 2-degree field: auto picks the Tycho-2 series and its 12'-120' scales
    assert series_module.series_for("auto", 120.0) == "4100"
    assert series_module.series_for("auto", 13.2) == "5200"
    assert scales_for(SERIES["4100"], 12.0, 120.0) == [7, 8, 9, 10, 11]
    import dataclasses

    wide = dataclasses.replace(INSTRUMENTS["AndorT90"], name="Wide", pixscale_arcsec=3.5)
    plan = make_plan([BORDER], {"Wide": wide}, series="auto", index_dir=Path("/none"))
    assert sorted(plan.files) == [f"index-41{s:02d}.fits" for s in range(7, 12)]
    file = plan.files["index-4107.fits"]
    assert (file.tile, file.index_id, file.size) == (-1, 4107, SERIES["4100"].scale_to_sizes[7][0])
    assert file.url_from("http://m/x/") == "http://m/x/4100/index-4107.fits"


def test_index_files_recognised_by_header_whatever_their_names(tmp_path):
    from iopreport.simulate.sky import SKY_INDEX_DIR

    folder = tmp_path / "index"
    (folder / "deep").mkdir(parents=True)
    shutil.copyfile(SKY_INDEX_DIR / "index-2200_420-P0.fits", folder / "deep" / "blzr_p0.dat")
    shutil.copyfile(SKY_INDEX_DIR / "index-2200_420-P1.fits", folder / "index-a.fits")
    (folder / "notes.txt").write_text("not an index\n")
    data = (SKY_INDEX_DIR / "index-2200_420-P2.fits").read_bytes()
    (folder / "index-cut.fits").write_bytes(data[:5000])
    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((4, 4))).writeto(folder / "image.fits")
    (folder / "x.fits.part").write_bytes(data[:2880])
    scan = scan_index_folder(folder)
    assert sorted(p.name for p in scan.files) == ["blzr_p0.dat", "index-a.fits"]
    reasons = {p.name: r for p, r in scan.rejected.items()}
    assert reasons["notes.txt"] == "not a FITS file"
    assert "incomplete FITS file" in reasons["index-cut.fits"]
    assert "without the index keys" in reasons["image.fits"]
    assert "download in progress" in reasons["x.fits.part"]
    assert index_files_in(folder) == scan.files


@pytest.fixture(scope="module")
def border_mirror(tmp_path_factory):
    """Index files of the border field (both tiles, scales 0-5) from synthetic stars."""
    root = tmp_path_factory.mktemp("border-mirror")
    rng = np.random.default_rng(5)
    n = 600
    ra = BORDER.ra_deg + rng.uniform(-0.6, 0.6, n) / np.cos(np.radians(BORDER.dec_deg))
    dec = BORDER.dec_deg + rng.uniform(-0.6, 0.6, n)
    catalog = star_table(root / "stars.fits", ra, dec)
    for scale in range(6):
        for tile in BORDER_TILES:
            build_tile(catalog, root / "5200" / f"index-52{scale:02d}-{tile:02d}.fits", scale, tile)
    catalog.unlink()
    return root


def test_download_resumes_refuses_and_never_twice(border_mirror, tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    shutil.copytree(border_mirror, root)
    index_dir = tmp_path / "index"
    with Mirror(root) as mirror:
        monkeypatch.setitem(SERIES, "5200", mirror_series(root, mirror.url))
        specs = {"AndorT90": INSTRUMENTS["AndorT90"]}
        plan = make_plan([BORDER], specs, series="5200", index_dir=index_dir)
        assert len(plan.missing) == 12
        # the mirror goes wrong on three files: a dropped connection, a wrong
        # size, a file with another tile's header under this tile's name
        dropped = "/5200/index-5205-03.fits"
        mirror.drop_after[dropped] = 20000
        good_size = root / "5200/index-5204-01.fits"
        good_header = root / "5200/index-5203-03.fits"
        kept = {p: p.read_bytes() for p in (good_size, good_header)}
        with open(good_size, "ab") as stream:
            stream.write(b"\0" * 2880)
        wrong_tile = (root / "5200/index-5203-01.fits").read_bytes()
        monkeypatch.setitem(
            SERIES["5200"].scale_to_sizes,
            3,
            tuple(
                len(wrong_tile) if t == 3 else s
                for t, s in enumerate(SERIES["5200"].scale_to_sizes[3])
            ),
        )
        good_header.write_bytes(wrong_tile)
        plan = make_plan([BORDER], specs, series="5200", index_dir=index_dir)
        report = fetch_files(plan.missing, index_dir, mirror.url, progress=False)
        assert sorted(report.failed) == ["index-5203-03.fits", "index-5204-01.fits"]
        assert "size" in report.failed["index-5204-01.fits"]
        assert (
            "HEALPix 1 (nside 2); expected INDEXID 5203, HEALPix 3"
            in (report.failed["index-5203-03.fits"])
        )
        assert len(report.downloaded) == 10
        # the dropped file was resumed with a Range request and is whole
        assert (dropped, "bytes=20000-") in mirror.ranges
        downloaded = index_dir / "5200" / "index-5205-03.fits"
        assert downloaded.read_bytes() == (root / dropped.lstrip("/")).read_bytes()
        # refused files are not kept, not even as partial downloads
        assert not list(index_dir.rglob("*" + PARTIAL_SUFFIX))
        assert not (index_dir / "5200/index-5204-01.fits").exists()
        # the mirror is repaired: only the two refused files are fetched again
        for path, data in kept.items():
            path.write_bytes(data)
        monkeypatch.setitem(SERIES, "5200", mirror_series(root, mirror.url))
        before = sum(mirror.requests.values())
        plan = make_plan([BORDER], specs, series="5200", index_dir=index_dir)
        assert sorted(f.name for f in plan.missing) == ["index-5203-03.fits", "index-5204-01.fits"]
        report = fetch_files(plan.missing, index_dir, mirror.url, progress=False)
        assert report.ok and len(report.downloaded) == 2
        assert sum(mirror.requests.values()) - before == 2
        # everything present: nothing is asked of the server again
        before = sum(mirror.requests.values())
        plan = make_plan([BORDER], specs, series="5200", index_dir=index_dir)
        assert plan.missing == [] and len(plan.present) == 12
        report = fetch_files(plan.missing, index_dir, mirror.url, progress=False)
        assert report.downloaded == [] and sum(mirror.requests.values()) == before
        # a file moved and renamed is still recognised by its header
        (index_dir / "mine").mkdir()
        (index_dir / "5200/index-5202-03.fits").rename(index_dir / "mine/tile3-scale2.bin")
        plan = make_plan([BORDER], specs, series="5200", index_dir=index_dir)
        assert plan.missing == []
        assert plan.present["index-5202-03.fits"].name == "tile3-scale2.bin"
    headers = {h.path.name: h for h in scan_index_folder(index_dir).index}
    assert {(h.index_id, h.healpix, h.nside) for h in headers.values()} == {
        (5200 + s, t, 2) for s in range(6) for t in BORDER_TILES
    }


def test_resume_of_a_partial_file_left_by_an_earlier_run(border_mirror, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    with Mirror(border_mirror) as mirror:
        monkeypatch.setitem(SERIES, "5200", mirror_series(border_mirror, mirror.url))
        file = series_module.index_file("5200", 2, 1)
        source = border_mirror / "5200" / file.name
        part = index_dir / "5200" / (file.name + PARTIAL_SUFFIX)
        part.parent.mkdir(parents=True)
        part.write_bytes(source.read_bytes()[:7000])  # an earlier run stopped here
        report = fetch_files([file], index_dir, mirror.url, progress=False)
        assert report.ok and report.bytes_downloaded == file.size - 7000
        assert mirror.ranges == [(f"/5200/{file.name}", "bytes=7000-")]
        assert (index_dir / "5200" / file.name).read_bytes() == source.read_bytes()
        assert not part.exists()
        # a server that ignores the range sends the whole file: it is written afresh
        mirror.ignore_ranges = True
        other = series_module.index_file("5200", 3, 1)
        part = index_dir / "5200" / (other.name + PARTIAL_SUFFIX)
        part.write_bytes(b"x" * 9000)  # not even the right bytes
        report = fetch_files([other], index_dir, mirror.url, progress=False)
        assert report.ok, report.failed
        assert report.bytes_downloaded == other.size
        source = border_mirror / "5200" / other.name
        assert (index_dir / "5200" / other.name).read_bytes() == source.read_bytes()


def test_unreachable_server_is_said_once(tmp_path, monkeypatch):
    import socket

    from iopreport.indexfiles import fetch as fetch_module

    monkeypatch.setattr(fetch_module, "RETRY_DELAYS_S", (0.0,))
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    specs = {"AndorT90": INSTRUMENTS["AndorT90"]}
    plan = make_plan([BORDER], specs, series="5200", index_dir=tmp_path)
    report = fetch_files(plan.missing, tmp_path, f"http://127.0.0.1:{port}", progress=False)
    reasons = [report.failed[f.name] for f in plan.missing]
    assert "Connection refused" in reasons[0]
    assert all(r == f"not tried: 127.0.0.1:{port} cannot be reached" for r in reasons[1:])
    assert not any(tmp_path.rglob("*.fits*"))


def test_astrometry_config_section(tmp_path):
    from iopreport.config import load_config
    from iopreport.errors import InputError

    path = tmp_path / "config.toml"
    path.write_text('[astrometry]\nseries = "4100"\nmirror_url = "https://m.example.org/a"\n')
    config = load_config(path)
    assert (config.astrometry.series, config.astrometry.auto_download) == ("4100", False)
    assert config.astrometry.mirror_url == "https://m.example.org/a"
    path.write_text('[astrometry]\nseries = "5300"\n')
    with pytest.raises(InputError, match=r"config.toml:2: astrometry.series: must be"):
        load_config(path)
    path.write_text('[astrometry]\nmirror_url = "ftp://m"\n')
    with pytest.raises(InputError, match=r"astrometry.mirror_url: must be empty"):
        load_config(path)
    path.write_text("[astrometry]\nauto_download = 1\n")
    with pytest.raises(InputError, match=r"astrometry.auto_download"):
        load_config(path)
