"""Delete the database, reprocess everything, build: exactly the same flagged points (issue 6).

Real simulated nights (tiny preset, OSN-T150 and CAHA-T220) are fetched and
reduced; photometry and polarimetry come from the reduction, and every build
recomputes the nights whose excluded frames changed (iopreport.reduce.recompute).
"""

from __future__ import annotations

import datetime as dt

import pytest
from test_reduce import NIGHT, make_project

from iopreport.build import run_build
from iopreport.catalog import sync_catalog
from iopreport.reduce.night import reduce_night
from iopreport.store import (
    ManualFlags,
    PhotoPolResult,
    RawFit,
    RawFitFlags,
    ReducedFit,
    ResultFlags,
    close_store,
    open_store,
)

pytestmark = pytest.mark.slow

TELESCOPES = ("OSN-T150", "CAHA-T220")

FLAGS = """\
# Flags of the round trip: one of each kind of selector.

[[flag]]
id = "cafos-phot"
what = "photometry"
source = "BL Lac"
telescope = "CAHA-T220"
mode = "photometry"
reason = "guiding lost"
author = "J. Doe"
date = 2024-10-09

[[flag]]
id = "wheel"
what = "polarimetry"
file = "BLLac-0021R45.fit"
reason = "wheel position uncertain"
author = "J. Doe"
date = 2024-10-09

# a cloud passed over Calar Alto
[[flag]]
id = "cloud"
what = ["photometry", "polarimetry"]
telescope = "CAHA-T220"
from = "2024-10-08T19:47:00"
to = "2024-10-08T19:48:00"
reason = "cloud"
author = "A. B."
date = 2024-10-10

[[flag]]
id = "trails"
what = "frame"
file = ["OSN-T150/2024-10-08/BLLac-0019R.fit", "caf-20241008-19:49:04-sci-agui.fits"]
reason = "satellite trails"
author = "A. B."
date = 2024-10-10
"""
EXCLUDED = {
    "OSN-T150/2024-10-08/BLLac-0019R.fit",
    "CAHA-T220/2024-10-08/caf-20241008-19:49:04-sci-agui.fits",
}


def reduce_all(config, catalog, telescopes) -> None:
    for telescope in telescopes:
        report = reduce_night(config, catalog, telescope, NIGHT, workers=2)
        assert not report.frames_failed, report.frames_failed


def snapshot() -> dict:
    """Every result by identity: its flags, reasons and values."""
    rows = {}
    for r in PhotoPolResult.select():
        identity = (r.astrosource.name, r.members_key, r.method)
        rows[identity] = {
            "id": r.id,
            "flags": r.flags,
            "manual_flags": r.manual_flags,
            "flag_reasons": r.flag_reasons,
            "mag": None if r.mag is None else round(r.mag, 6),
            "p": r.p,
        }
    return rows


def without_ids(rows: dict) -> dict:
    return {k: {n: v for n, v in row.items() if n != "id"} for k, row in rows.items()}


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    project, config, catalog = make_project(
        tmp_path_factory.mktemp("roundtrip"), telescopes=TELESCOPES
    )
    # 1. the first processing, then a curator writes flags.toml and builds
    reduce_all(config, catalog, TELESCOPES)
    first = snapshot()
    config.paths.flags.write_text(FLAGS)
    run_build(config)
    flagged = snapshot()
    # 2. the next reduction honours the frame flags; build again
    reduce_all(config, catalog, TELESCOPES)
    run_build(config)
    before = snapshot()
    # 3. delete the database, reprocess everything (other order: other ids), build
    close_store()
    config.database_path.unlink()
    open_store(config.database_path)
    sync_catalog(catalog)  # as `iopreport reduce` does first
    reduce_all(config, catalog, tuple(reversed(TELESCOPES)))
    run_build(config)
    after = snapshot()
    excluded = {
        r.fileloc
        for r in RawFit.select().where(RawFit.flags.bin_and(int(RawFitFlags.EXCLUDED)) != 0)
    }
    reduced = {r.rawfit.fileloc for r in ReducedFit.select()}
    yield first, flagged, before, after, excluded, reduced
    close_store()


def test_the_build_flags_what_the_file_says(roundtrip):
    first, flagged, *_ = roundtrip
    phot = {k for k in first if k[2] == "relphot"}
    assert len(phot) == 2 and len(first) == 5  # and 3 polarimetric sequences
    by_file = {k[1].split("\n")[0].rsplit("/", 1)[-1]: v for k, v in flagged.items()}
    cafos_phot = by_file["caf-20241008-19:45:00-sci-agui.fits"]
    assert cafos_phot["manual_flags"] == ManualFlags.BAD_PHOTOMETRY
    # the excluded frame's photometry is gone at the build (recomputed without it)
    assert "BLLac-0019R.fit" in {k[1].rsplit("/", 1)[-1] for k in first}
    assert "BLLac-0019R.fit" not in by_file
    t150_pol = by_file["BLLac-0020R0.fit"]
    assert t150_pol["manual_flags"] == ManualFlags.BAD_POLARIMETRY
    assert t150_pol["p"] is not None and not t150_pol["flags"] & ResultFlags.BAD_POLARIMETRY
    assert (
        "manual: polarimetry [wheel] wheel position uncertain (J. Doe, 2024-10-09)"
        in t150_pol["flag_reasons"]
    )
    cafos_bl = by_file["caf-20241008-19:45:40-sci-agui.fits"]
    assert cafos_bl["manual_flags"] == ManualFlags.BAD_PHOTOMETRY | ManualFlags.BAD_POLARIMETRY
    # Hiltner 960 lost one of its four angles to the frame flag: CAFOS needs four
    hiltner = by_file["caf-20241008-19:48:24-sci-agui.fits"]
    assert hiltner["manual_flags"] == 0 and hiltner["p"] is None
    assert hiltner["flags"] & ResultFlags.BAD_POLARIMETRY


def test_excluded_frames_are_not_reduced_and_their_sequence_is_recomputed(roundtrip):
    first, flagged, before, after, excluded, reduced = roundtrip
    assert excluded == EXCLUDED
    assert not excluded & reduced
    for rows in (before, after):
        assert not any(loc in key[1] for key in rows for loc in EXCLUDED)
        hiltner = [k for k in rows if k[0] == "Hiltner 960"]
        assert len(hiltner) == 1 and hiltner[0][1].count("\n") == 2  # 3 of its 4 frames
        assert rows[hiltner[0]]["manual_flags"] == 0


def test_delete_and_reprocess_gives_the_same_flagged_points(roundtrip):
    first, flagged, before, after, excluded, reduced = roundtrip
    assert without_ids(after) == without_ids(before)
    assert sum(1 for row in after.values() if row["manual_flags"]) == 3
    assert any(before[k]["id"] != after[k]["id"] for k in before)  # ids did change
    assert dt.date(2024, 10, 8) == NIGHT
