"""Polarimetry of whole simulated nights, and the instrument calibration (issue 5)."""

from __future__ import annotations

import datetime as dt
import math
import subprocess

import numpy as np
import pytest
from test_reduce import NIGHT, folder_of, make_project

from iopreport.catalog import load_catalog, sync_catalog
from iopreport.reduce.calibratepol import (
    fit_instrumental,
    literature_polarization,
    standard_observations,
)
from iopreport.reduce.night import reduce_night
from iopreport.simulate.evaluate import evaluate_polarimetry
from iopreport.simulate.optics import sky_to_instrument, stokes_from_polarization
from iopreport.store import (
    AstroSource,
    Epoch,
    PhotoPolResult,
    close_store,
    open_store,
)

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

TELESCOPES = ("OSN-T090", "OSN-T150", "CAHA-T220")


@pytest.fixture(scope="module")
def cirrus_night(tmp_path_factory):
    """A tiny night of every telescope under thin cirrus (transparency varies up to 10%)."""
    tmp_path = tmp_path_factory.mktemp("cirrus")
    project, config, catalog = make_project(tmp_path, preset="tiny", cirrus=True, seed=21)
    for telescope in TELESCOPES:
        reduce_night(config, catalog, telescope, NIGHT, workers=2)
    checks = []
    for telescope in TELESCOPES:
        checks += evaluate_polarimetry(folder_of(project, telescope), telescope)
    yield project, config, catalog, checks
    close_store()


def test_cirrus_does_not_become_polarization(cirrus_night):
    project, config, catalog, checks = cirrus_night
    computed = [c for c in checks if not c.error]
    instruments = {c.instrument for c in computed}
    assert {"AndorT90", "AndorT150", "CAFOS", "DIPOL"} <= instruments, [c.line() for c in checks]
    inside = [c.within_tolerance for c in computed]
    assert sum(inside) >= 0.95 * len(inside), "\n".join(c.line() for c in computed)
    wheel = [c for c in computed if c.method == "osn-wheel"]
    assert wheel
    results = PhotoPolResult.select().where(PhotoPolResult.method == "osn-wheel")
    for result in results:  # every wheel sequence was normalised by comparison stars
        assert any("normalised by" in note for note in result.flag_reasons), result.flag_reasons


def test_results_carry_raw_corrected_debiased_and_systematic_values(cirrus_night):
    open_store(cirrus_night[1].database_path)
    result = PhotoPolResult.select().where(PhotoPolResult.p.is_null(False)).first()
    assert result.q_raw is not None and result.u_raw is not None
    assert result.p == pytest.approx(math.hypot(result.q, result.u))
    assert 0 <= result.p_debiased <= result.p
    assert result.p_sys_err > 0 and result.chi_sys_err > 0
    assert 0 <= result.chi < 180


def test_incomplete_wheel_sequence_fails_alone(tmp_path):
    """A missing polarizer angle fails its own sequence, with the reason; the next is intact."""
    project, config, catalog = make_project(
        tmp_path, telescopes=("OSN-T150",), preset="full", faults=("missing_angle",), seed=4
    )
    reduce_night(config, catalog, "OSN-T150", NIGHT, workers=2)
    checks = evaluate_polarimetry(folder_of(project, "OSN-T150"), "OSN-T150")
    incomplete = [c for c in checks if c.missing_angles]
    assert incomplete and all(c.error for c in incomplete), [c.line() for c in checks]
    assert all("lacks angle" in c.error for c in incomplete)
    complete = [c for c in checks if not c.missing_angles]
    assert complete and all(c.within_tolerance for c in complete), [c.line() for c in checks]
    close_store()


def _standards_store(tmp_path, q_inst, u_inst, theta0, n=6, sigma=0.0008, seed=3):
    """A store holding polarimetric results of standards made with the forward model."""
    from iopreport.skeleton import init_project

    project = tmp_path / "site"
    init_project(project)
    from iopreport.config import load_config

    config = load_config(project / "config.toml")
    open_store(config.database_path)
    catalog = load_catalog(config.paths.catalog)
    sync_catalog(catalog)
    epoch = Epoch.create(telescope="OSN-T090", night=dt.date(2024, 10, 8))
    rng = np.random.default_rng(seed)
    standards = [s for s in catalog.sources if s.srctype == "polarization_standard"]
    for index in range(n):
        for source in standards:
            lit = literature_polarization(source.pol, "R")
            if lit is None:
                continue
            q, u = stokes_from_polarization(lit.p, lit.chi or 0.0)
            q_raw, u_raw = sky_to_instrument(
                q, u, q_inst=q_inst, u_inst=u_inst, zero_angle_deg=theta0
            )
            PhotoPolResult.create(
                astrosource=AstroSource.get(AstroSource.name == source.name),
                epoch=epoch,
                members_key=f"OSN-T090/2024-10-08/{source.name}-{index}",
                mode="polarimetry",
                method="osn-wheel",
                instrument="AndorT90",
                band="R",
                juliandate=2460592.5 + index * 0.01,
                juliandate_min=2460592.5,
                juliandate_max=2460592.6,
                q_raw=float(q_raw) + rng.normal(0, sigma),
                q_raw_err=sigma,
                u_raw=float(u_raw) + rng.normal(0, sigma),
                u_raw_err=sigma,
            )
    return project, config, catalog


def test_calibrate_pol_recovers_the_instrument(tmp_path):
    project, config, catalog = _standards_store(tmp_path, 0.031, -0.012, -17.0)
    observations = standard_observations(catalog, "AndorT90", "R")
    fit = fit_instrumental(observations, "AndorT90", "R")
    assert fit.n_unpolarized >= 6 and fit.n_polarized >= 6
    assert fit.q_inst == pytest.approx(0.031, abs=3 * fit.q_inst_err + 2e-4)
    assert fit.u_inst == pytest.approx(-0.012, abs=3 * fit.u_inst_err + 2e-4)
    assert fit.zero_angle_deg == pytest.approx(-17.0, abs=3 * fit.zero_angle_err_deg + 0.2)
    for _, dp, dchi in fit.residuals:
        assert abs(dp) < 0.004 and abs(dchi) < 1.5
    close_store()


def test_calibrate_pol_command_prints_the_fit_and_the_config_entry(tmp_path, iopreport_exe):
    project, config, catalog = _standards_store(tmp_path, 0.05, 0.05, -18.0)
    close_store()
    command = [iopreport_exe, "--config", str(project / "config.toml")]
    command += ["calibrate-pol", "--instrument"]
    done = subprocess.run(
        [
            iopreport_exe,
            "--config",
            str(project / "config.toml"),
            "calibrate-pol",
            "--instrument",
            "AndorT90",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "[[polarimetry.instrumental]]" in done.stdout
    assert "zero_angle_deg = -18.0" in done.stdout
    other = subprocess.run(
        [
            iopreport_exe,
            "--config",
            str(project / "config.toml"),
            "calibrate-pol",
            "--instrument",
            "CAFOS",
        ],
        capture_output=True,
        text=True,
    )
    assert other.returncode == 1 and "no unpolarized standard" in other.stdout


def test_catalog_edit_recomputes_magnitudes_from_stored_fluxes(cirrus_night):
    """Issue 6: a corrected calibrator magnitude takes effect without re-running astrometry."""
    from iopreport.reduce.recompute import recompute_if_needed

    project, config, catalog, checks = cirrus_night
    open_store(config.database_path)  # other tests of this module opened their own stores
    first = recompute_if_needed(config, catalog)
    assert first.epochs  # the first build recomputes everything
    assert not recompute_if_needed(config, catalog).epochs  # nothing changed since

    def mags():
        rows = (
            PhotoPolResult.select()
            .join(AstroSource)
            .where((AstroSource.name == "2200+420") & PhotoPolResult.mag.is_null(False))
        )
        return {(r.members_key, r.method): r.mag for r in rows}

    before = mags()
    assert before
    path = config.paths.catalog
    text = path.read_text()
    edited = text
    for star in ("2200+420 B", "2200+420 C", "2200+420 H"):
        start = edited.index(f'name = "{star}"')
        line_start = edited.index("mag.R = ", start)
        line_end = edited.index("\n", line_start)
        value, error = edited[line_start + len("mag.R = [") : line_end].rstrip("]").split(",")
        new = f"mag.R = [{float(value) + 0.1:.3f}, {error.strip()}]"
        edited = edited[:line_start] + new + edited[line_end:]
    path.write_text(edited)
    try:
        edited_catalog = load_catalog(path)
        sync_catalog(edited_catalog)
        report = recompute_if_needed(config, edited_catalog)
        assert report.epochs and "catalog" in report.reason
        after = mags()
        assert set(after) == set(before)
        for key, mag in before.items():
            if key[0].count("\n") == 0 and after[key] is not None:
                assert after[key] - mag == pytest.approx(0.1, abs=0.01), key
    finally:
        path.write_text(text)
        sync_catalog(load_catalog(path))
        recompute_if_needed(config, load_catalog(path))
