"""Exposure planning of the simulator: a bright standard gets a short exposure, so that it
stays below saturation at the night's best seeing (the demo's standards are measured)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from iopreport.instruments import InstrumentRegistry
from iopreport.simulate import simulate_night
from iopreport.simulate.exptime import (
    POL_IMAGE_FRACTION,
    choose_exptime,
)

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

#: The demo's nights and seed (iopreport/demo.py), where the standards used to saturate.
NIGHTS = (dt.date(2024, 10, 8), dt.date(2024, 10, 9))
SEED = 2024
STANDARDS = ("Hiltner 960", "HD 212311", "BD+32 3739")


def test_brighter_stars_and_better_seeing_get_shorter_exposures():
    spec = InstrumentRegistry.builtin().get("CAFOS")
    times = [
        choose_exptime(spec, 1, "CAFOS", "x", "R", lambda *_, m=mag: m, POL_IMAGE_FRACTION, 1.2)
        for mag in (13.0, 11.0, 9.8, 8.0)
    ]
    assert times == sorted(times, reverse=True) and times[0] > times[-1]
    good, poor = (
        choose_exptime(spec, 1, "CAFOS", "x", "R", lambda *_: 11.0, 1.0, seeing)
        for seeing in (1.0, 2.0)
    )
    assert good < poor  # planned for the best seeing of the night


@pytest.mark.slow
@pytest.mark.parametrize("night", NIGHTS)
@pytest.mark.parametrize(("telescope", "instrument_name"), [("CAHA-T220", "CAFOS")])
def test_standards_stay_below_saturation(tmp_path, night, telescope, instrument_name):
    """Every beam of every standard, in the simulator's truth, peaks below the planned
    fraction of the range above bias (plus the sky), on the demo's nights."""
    (result,) = simulate_night(tmp_path, night, telescopes=(telescope,), preset="small", seed=SEED)
    truth = json.loads((result.folder / "truth.json").read_text())
    spec = InstrumentRegistry.builtin().get(instrument_name)
    limit = spec.bias_level_adu + (spec.saturation_adu - spec.bias_level_adu) * 0.95
    peaks = {}
    for name, record in truth["files"].items():
        if record.get("target") not in STANDARDS or record.get("obsmode") != "polarimetry":
            continue
        target = next(t for t in record["targets"] if t["name"] == record["target"])
        peaks[name] = max(beam["peak_adu"] for beam in target["beams"])
    assert {truth["files"][n]["target"] for n in peaks} >= {"Hiltner 960", "HD 212311"}
    assert all(peak < limit for peak in peaks.values()), peaks
