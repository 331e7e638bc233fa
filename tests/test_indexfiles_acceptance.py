"""A new project gets its index files from an HTTP mirror and solves a simulated night."""

from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest
import tomlkit
from index_helpers import Mirror, build_tile, mirror_series, sky_table

from iopreport.catalog import load_catalog
from iopreport.cli import main
from iopreport.fileio import write_text_atomic
from iopreport.indexfiles.plan import make_plan
from iopreport.indexfiles.series import SERIES
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.skeleton import init_project, skeleton_dir

INSTRUMENTS = InstrumentRegistry.builtin().specs

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2024, 10, 8)
SHIPPED_CATALOG = skeleton_dir() / "catalog.toml"


def test_plan_of_the_shipped_catalog(capsys, tmp_path):
    """43 sources, every instrument, with the real 5200 series' sizes."""
    catalog = load_catalog(SHIPPED_CATALOG)
    assert len(catalog) == 43
    plan = make_plan(catalog.sources, INSTRUMENTS, series="auto", index_dir=tmp_path)
    # every built-in field is under a degree: the 5200 series, scales 0-5 at most
    assert {need.series for need in plan.needs} == {"5200"}
    assert {s for need in plan.needs for s in need.scales} == set(range(6))
    # BL Lac's fields, by hand: Debian's get-healpix puts 22:02:43 +42:16:40 in
    # tile 14 at nside 2, and the field (AndorT90: 13.2' plus 5' margin) is far
    # from its borders; AndorT90 needs scales 0-5 (quads 1.3'-13.2'), DIPOL 0-4
    out = subprocess.run(
        ["get-healpix", "-N", "2", "330.680375", "42.277772"], capture_output=True, text=True
    ).stdout
    assert "Healpix=14 in the XY scheme" in out
    bllac = {n.instrument: n for n in plan.needs if n.source == "2200+420"}
    assert [f.name for f in bllac["AndorT90"].files] == [
        f"index-52{s:02d}-14.fits" for s in range(6)
    ]
    assert bllac["DIPOL"].scales == [0, 1, 2, 3, 4]
    # the total is the sum of the distinct (scale, tile) files the fields need
    pairs = {(f.scale, f.tile) for need in plan.needs for f in need.files}
    sizes = SERIES["5200"].scale_to_sizes
    assert plan.total_bytes == sum(sizes[s][t] for s, t in pairs)
    assert len(plan.files) == len(pairs) < 7 * 48
    # printed with sizes
    project = tmp_path / "site"
    init_project(project)
    assert main(["--config", str(project / "config.toml"), "index", "plan"]) == 0
    text = capsys.readouterr().out
    assert f"needed: {len(pairs)} files, {plan.total_bytes / 1e6:,.1f} MB" in text
    assert re.search(r"index-5200-14\.fits +\d[\d,]*\.\d MB +missing", text)
    for name in INSTRUMENTS:
        assert re.search(rf"^{name} ", text, re.M)


@pytest.fixture(scope="module")
def sky_mirror(tmp_path_factory):
    """Every file the shipped catalog's plan names, built from the simulated sky."""
    root = tmp_path_factory.mktemp("sky-mirror")
    catalog = load_catalog(SHIPPED_CATALOG)
    plan = make_plan(catalog.sources, INSTRUMENTS, series="5200", index_dir=root / "none")
    table = sky_table(root / "sky.fits")
    for file in plan.files.values():
        build_tile(table, root / "5200" / file.name, file.scale, file.tile, file.nside)
    table.unlink()
    return root


@pytest.mark.slow
def test_new_project_fetches_index_files_and_solves_a_night(
    sky_mirror, tmp_path, capsys, monkeypatch
):
    from iopreport.daemon import Cycle, DaemonState, step_reduce
    from iopreport.demo import point_archives_at
    from iopreport.simulate import simulate_night
    from iopreport.simulate.evaluate import evaluate_night
    from iopreport.status import render_status
    from iopreport.store import ReducedFit, close_store, open_store

    project = tmp_path / "site"
    init_project(project)
    config_path = project / "config.toml"
    point_archives_at(config_path, project / "archive")
    simulate_night(project / "archive", NIGHT, telescopes=("OSN-T090",), preset="tiny", seed=9)
    with Mirror(sky_mirror) as mirror:
        monkeypatch.setitem(SERIES, "5200", mirror_series(sky_mirror, mirror.url))
        document = tomlkit.parse(config_path.read_text())
        document["paths"]["astrometry_index_dir"] = "data/astrometry-index"
        document["astrometry"]["mirror_url"] = mirror.url
        write_text_atomic(config_path, tomlkit.dumps(document))
        args = ["--config", str(config_path)]
        from iopreport.config import load_config

        config = load_config(config_path)
        assert main([*args, "fetch", "--night", str(NIGHT), "--telescope", "OSN-T090"]) == 0
        # no index yet: said once, up front, with what to do; frames are placed by their
        # header (the pointing keywords and the plate scale) where that passes its check
        assert main([*args, "reduce", "--night", str(NIGHT)]) == 1
        error = capsys.readouterr().err
        assert error.count("no usable astrometry.net index files") == 1
        assert "iopreport index fetch" in error
        placed = ReducedFit.select().where(ReducedFit.astrometry_method.startswith("header"))
        assert placed.count() > 0
        # the daemon says it once per cycle too, and tries again next cycle
        open_store(config.database_path)
        cycle = Cycle(config, "test", DaemonState())
        step_reduce(cycle)
        said = [f for f in cycle.failures if "no usable astrometry.net index files" in f]
        assert len(said) == 1 and "iopreport index fetch" in said[0]
        close_store()

        assert main([*args, "index", "fetch"]) == 0
        out = capsys.readouterr().out
        n_files = len(list((sky_mirror / "5200").iterdir()))
        assert f"{n_files} downloaded" in out and "0 already present" in out
        requests = sum(mirror.requests.values())
        assert requests == n_files
        # a second fetch downloads nothing and asks the server nothing
        assert main([*args, "index", "fetch"]) == 0
        out = capsys.readouterr().out
        assert f"0 downloaded (0.0 MB), {n_files} already present" in out
        assert sum(mirror.requests.values()) == requests

    assert main([*args, "reduce", "--night", str(NIGHT)]) == 0
    capsys.readouterr()
    folder = next((project / "archive" / "OSN-T090").iterdir())
    evaluation = evaluate_night(folder, config.paths.datadir, "OSN-T090")
    assert evaluation.eligible > 0
    assert evaluation.astrometry_success == 1.0, evaluation.failed_eligible
    assert ReducedFit.select().where(ReducedFit.error != "").count() == 0
    status = render_status(load_config(config_path))
    line = next(x for x in status.splitlines() if x.strip().startswith("2200+420 "))
    assert "AndorT90 ok" in line and "DIPOL ok" in line
    close_store()


@pytest.mark.slow
def test_auto_download_before_a_run(sky_mirror, tmp_path, monkeypatch):
    """With auto_download the run's index check fetches what the catalog needs; without
    it the check stops the run and the network is not used."""
    import dataclasses

    from iopreport.config import load_config
    from iopreport.indexfiles.ready import NoIndexError, prepare_index

    project = tmp_path / "site"
    init_project(project)
    config = load_config(project / "config.toml")
    catalog = load_catalog(config.paths.catalog)
    with Mirror(sky_mirror) as mirror:
        monkeypatch.setitem(SERIES, "5200", mirror_series(sky_mirror, mirror.url))
        astrometry = dataclasses.replace(config.astrometry, mirror_url=mirror.url)
        config = dataclasses.replace(config, astrometry=astrometry)
        with pytest.raises(NoIndexError, match="iopreport index fetch"):
            prepare_index(config, catalog)
        assert sum(mirror.requests.values()) == 0
        config = dataclasses.replace(
            config, astrometry=dataclasses.replace(astrometry, auto_download=True)
        )
        scan = prepare_index(config, catalog)
        n_files = len(list((sky_mirror / "5200").iterdir()))
        assert len(scan.index) == n_files == sum(mirror.requests.values())
        prepare_index(config, catalog)  # nothing missing: no request
        assert sum(mirror.requests.values()) == n_files
