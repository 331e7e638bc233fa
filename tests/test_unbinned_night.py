"""An unbinned 2048x2048 night with three times the cosmic-ray rate, through `iopreport reduce`.

Seeing within 10% of the truth on every frame, no untrailed frame taken for
trailed, the trailed one still refused, no polarimetric sequence lost; a
rerun still reports the failed frame and exits 1.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from iopreport.store import PhotoPolResult, RawFit, ReducedFit, RunLog, close_store, open_store

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = "2024-10-08"


@pytest.mark.slow
def test_unbinned_night_with_cosmic_rays(tmp_path, iopreport_exe):
    from test_reduce import folder_of, make_project

    project, config, _ = make_project(
        tmp_path, faults=["trail"], telescopes=("OSN-T090",), preset="unbinned"
    )
    close_store()
    folder = folder_of(project, "OSN-T090")
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["cosmic_ray_scale"] == 3.0
    trailed = next(f["file"] for f in truth["faults"] if f["fault"] == "trail")
    command = [iopreport_exe, "--config", str(project / "config.toml"), "reduce", "--night", NIGHT]
    first = subprocess.run(command, capture_output=True, text=True, timeout=900)
    # the trailed frame fails: exit 1, named with its reason and honest digits
    assert first.returncode == 1, first.stderr
    assert f"{trailed}: photometry: stars trailed or elongated (median a/b " in first.stdout
    assert "> 1.60)" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert again.returncode == 1, again.stderr  # still failed: a rerun does not hide it
    assert f"{trailed}: photometry: stars trailed" in again.stdout
    assert "(unchanged since an earlier run)" in again.stdout
    assert "OSN-T090 2024-10-08: failed: 1 frames failed (1 unchanged" in again.stdout

    open_store(config.database_path)
    logs = list(RunLog.select().where(RunLog.command == "reduce").order_by(RunLog.id))
    assert len(logs) == 2 and all(log.outcome == "failed" for log in logs)
    assert logs[-1].detail.startswith("OSN-T090 2024-10-08: failed: 1 frames failed")
    scale = 0.387  # AndorT90 unbinned, arcsec per pixel
    lights = {n: r for n, r in truth["files"].items() if r["imgtype"] == "light"}
    assert len(lights) >= 8
    frames = {f.rawfit.filename: f for f in ReducedFit.select().join(RawFit)}
    for name, record in lights.items():
        frame = frames[name]
        if name == trailed:
            assert "trailed" in frame.error
            continue
        assert frame.error == "", (name, frame.error)
        true = record["seeing_fwhm_arcsec"]
        # (the Gaussian fitted to the simulator's Moffat profile reads ~5% wide)
        assert abs(frame.seeing_fwhm_arcsec / true - 1.0) < 0.10, (name, frame.seeing_fwhm_arcsec)
        assert frame.pixscale_arcsec == pytest.approx(scale, rel=0.01)
        assert len(record["cosmic_ray_pixels"]) > 100
    sequences = [
        r
        for r in PhotoPolResult.select().where(PhotoPolResult.mode == "polarimetry")
        if r.p is not None
    ]
    assert len(sequences) == len(truth["polarimetry"]) >= 1
    close_store()
