"""`catalog suggest` against PS1 (MAST) and Gaia (TAP) served on 127.0.0.1 from the simulated sky.

astroquery is pointed at the local server through its own configuration file
(``$XDG_CONFIG_HOME/astropy/astroquery.cfg``, ``[mast] server``) and the Gaia
TAP URL option; nothing is patched. One run of the real command proposes
stars from a field with decoys, each decoy as good as the best star but for one
rule; a test per rule checks every proposed star against the served values.
"""

from __future__ import annotations

import math
import os
import subprocess
import tomllib
from pathlib import Path

import pytest
from catalog_services import ServiceServer, services_from_sky

from iopreport.photsystems import to_johnson
from iopreport.suggest.rules import separation_arcsec

TARGET = "2200+420"
RA, DEC = 330.680375, 42.2777722  # catalog.toml: 22:02:43.290 +42:16:39.98
TARGET_VRI = (14.3, 13.8, 13.25)
#: Decoys: as good as the best star (R of the target, ordinary colour) but for one rule.
DECOYS = {
    "detections": {"overrides": {"nDetections": 5}},
    "variability": {"overrides": {"rMeanApMagStd": 0.05}},
    "variability-gaia": {"gaia": {"phot_variable_flag": "VARIABLE"}},
    "magnitude": {"vri": (12.45, 12.0, 11.55)},
    "isolation": {"neighbour": 15.0},
    "colour": {"vri": (15.0, 13.8, 12.7)},
    "star": {"kron": -0.3},
    "star-ruwe": {"gaia": {"ruwe": 2.6}},
    "star-no-gaia": {"no_gaia": True},
    "field": {"distance_arcmin": 3.08},
}


def _offset(arcmin: float, angle_deg: float) -> tuple[float, float]:
    d = arcmin / 60.0
    a = math.radians(angle_deg)
    return RA + d * math.sin(a) / math.cos(math.radians(DEC)), DEC + d * math.cos(a)


def _free_spot(services, arcmin: float, start: float) -> tuple[float, float]:
    """A position ``arcmin`` from the target with no served object within 15 arcsec."""
    for step in range(144):
        ra, dec = _offset(arcmin, start + 2.5 * step)
        if all(
            separation_arcsec(ra, dec, r.values["raMean"], r.values["decMean"]) > 15
            for r in services.rows
        ):
            return ra, dec
    raise AssertionError("no free spot in the simulated field")


def _services():
    services = services_from_sky(RA, DEC, 4.0)
    services.add_star("PSO J220243.290+421639.98", RA, DEC, *TARGET_VRI)
    services.rows[-1].values["iMeanKronMag"] = services.rows[-1].values["iMeanPSFMag"] - 0.4
    decoys = {}
    for k, (rule, spec) in enumerate(DECOYS.items()):
        ra, dec = _free_spot(services, spec.get("distance_arcmin", 1.5 + 0.12 * k), 37.0 * k)
        vri = spec.get("vri", (14.25, 13.8, 13.35))
        row = services.add_star(
            f"PSO DECOY {rule}",
            ra,
            dec,
            *vri,
            gaia=not spec.get("no_gaia"),
            **spec.get("overrides", {}),
        )
        if "kron" in spec:
            row.values["iMeanKronMag"] = row.values["iMeanPSFMag"] + spec["kron"]
        if "gaia" in spec:
            row.gaia.update(spec["gaia"])
        if "neighbour" in spec:
            r = spec["neighbour"]
            services.add_star(f"PSO NEIGHBOUR {rule}", ra + 5 / 3600, dec, r + 0.45, r, r - 0.45)
        decoys[rule] = row
    return services, decoys


def _astroquery_config(folder: Path, url: str) -> dict[str, str]:
    """Environment whose astroquery configuration points MAST at ``url``."""
    config = folder / "xdg-config" / "astropy"
    config.mkdir(parents=True, exist_ok=True)
    (config / "astroquery.cfg").write_text(
        f"[mast]\nserver = {url}\ncatalogs_server = {url}\n", encoding="utf-8"
    )
    (folder / "xdg-cache").mkdir(exist_ok=True)
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(folder / "xdg-config"),
        "XDG_CACHE_HOME": str(folder / "xdg-cache"),
    }


def run_suggest(folder: Path, services, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = folder / "suggested.toml"
    with ServiceServer(services) as server:
        result = subprocess.run(
            [
                str(Path(os.sys.executable).parent / "iopreport"),
                "catalog",
                "suggest",
                TARGET,
                "--ra",
                "22:02:43.290",
                "--dec",
                "+42:16:39.98",
                "--gaia-tap",
                f"{server.url}/tap-server/tap",
                "--out",
                str(out),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=_astroquery_config(folder, server.url),
            cwd=folder,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == out.read_text(encoding="utf-8")
    return result, tomllib.loads(result.stdout)


@pytest.fixture(scope="module")
def suggested(tmp_path_factory):
    """Every star that passes (--count 40) from the field with decoys."""
    folder = tmp_path_factory.mktemp("suggest")
    services, decoys = _services()
    result, document = run_suggest(folder, services, "--count", "40")
    rows = {row.values["objName"]: row for row in services.rows}
    chosen = [
        (entry, rows[entry["other_names"][0]])
        for entry in document["source"]
        if entry["type"] == "calibrator"
    ]
    return {
        "services": services,
        "decoys": decoys,
        "document": document,
        "chosen": chosen,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "folder": folder,
    }


def _names(suggested) -> set[str]:
    return {row.values["objName"] for _, row in suggested["chosen"]}


def _johnson(row) -> dict:
    v = row.values
    mags = {b: (v[f"{b}MeanApMag"], v[f"{b}MeanApMagErr"]) for b in "gri"}
    return to_johnson("ps1", mags)


def test_queries_went_to_the_local_services_in_their_formats(suggested):
    paths = [path for _, path in suggested["services"].requests]
    assert any(p.startswith("/api/v0.1/panstarrs/dr2/mean.json") for p in paths)
    assert any(p.endswith("/tap-server/tap/sync") for p in paths)
    assert len(suggested["chosen"]) >= 4
    target = suggested["document"]["source"][0]
    assert target["name"] == TARGET and target["type"] == "blazar"
    assert target["calibrators"] == [e["name"] for e, _ in suggested["chosen"]]
    assert "rejected by rule:" in suggested["stderr"]


def test_rule_field(suggested):
    for _, row in suggested["chosen"]:
        v = row.values
        assert separation_arcsec(RA, DEC, v["raMean"], v["decMean"]) <= 3.0 * 60
    assert "PSO DECOY field" not in _names(suggested)


def test_rule_detections(suggested):
    assert all(row.values["nDetections"] >= 10 for _, row in suggested["chosen"])
    assert "PSO DECOY detections" not in _names(suggested)


def test_rule_not_variable(suggested):
    for _, row in suggested["chosen"]:
        assert all(row.values[f"{b}MeanApMagStd"] < 0.01 for b in "gri")
        assert row.gaia["phot_variable_flag"] != "VARIABLE"
    assert not {"PSO DECOY variability", "PSO DECOY variability-gaia"} & _names(suggested)


def test_rule_magnitude_range_around_the_target(suggested):
    target_r = TARGET_VRI[1]
    assert f"within 2 mag of the target (R = {target_r:.2f})" in suggested["stdout"]
    for _, row in suggested["chosen"]:
        r = _johnson(row)["R"].value
        assert 13.0 <= r <= 18.0 and abs(r - target_r) <= 2.0
    assert "PSO DECOY magnitude" not in _names(suggested)


def test_rule_isolation(suggested):
    rows = suggested["services"].rows
    for _, row in suggested["chosen"]:
        v = row.values
        r = _johnson(row)["R"].value
        for other in rows:
            if other is row:
                continue
            d = separation_arcsec(
                v["raMean"], v["decMean"], other.values["raMean"], other.values["decMean"]
            )
            assert d >= 10.0 or other.values["rMeanPSFMag"] >= r + 5.0
    assert "PSO DECOY isolation" not in _names(suggested)


def test_rule_colour(suggested):
    target = next(
        r for r in suggested["services"].rows if r.values["objName"].startswith("PSO J2202")
    )
    target_colour = target.values["gMeanApMag"] - target.values["rMeanApMag"]
    for _, row in suggested["chosen"]:
        colour = row.values["gMeanApMag"] - row.values["rMeanApMag"]
        assert 0.0 <= colour <= 1.2 and abs(colour - target_colour) <= 0.6
    assert "PSO DECOY colour" not in _names(suggested)


def test_rule_point_source_with_gaia_position(suggested):
    for entry, row in suggested["chosen"]:
        v = row.values
        assert v["iMeanPSFMag"] - v["iMeanKronMag"] < 0.05
        assert row.gaia is not None and row.gaia["ruwe"] < 1.4
        assert entry["ra"] == pytest.approx(row.gaia["ra"], abs=1e-6)
        assert any(str(row.gaia["source_id"]) in ref for ref in entry["references"])
    assert not {"PSO DECOY star", "PSO DECOY star-ruwe", "PSO DECOY star-no-gaia"} & _names(
        suggested
    )
    assert not any(name.startswith("PSO J2202") for name in _names(suggested))  # the target


def test_block_loads_with_catalog_check_and_derives_the_sky_magnitudes(suggested, tmp_path):
    from iopreport.catalog import load_catalog
    from iopreport.cli import main

    path = tmp_path / "catalog.toml"
    path.write_text(suggested["stdout"], encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text('[paths]\ncatalog = "catalog.toml"\n', encoding="utf-8")
    assert main(["--config", str(config), "catalog", "check"]) == 0
    catalog = load_catalog(path)
    assert len(catalog.targets()) == 1
    sky = {row.values["objName"]: row for _, row in suggested["chosen"]}
    for source in catalog.sources:
        if source.srctype != "calibrator":
            continue
        row = sky[source.other_names[0]]
        expected = _johnson(row)["R"].value
        assert source.mags["R"].value == pytest.approx(expected, abs=1e-3)


def test_no_star_found_exits_1(tmp_path):
    services = services_from_sky(RA, DEC, 0.01)  # an empty sky
    with ServiceServer(services) as server:
        result = subprocess.run(
            [
                str(Path(os.sys.executable).parent / "iopreport"),
                "catalog",
                "suggest",
                TARGET,
                "--ra",
                "330.680375",
                "--dec",
                "42.2777722",
                "--gaia-tap",
                f"{server.url}/tap-server/tap",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=_astroquery_config(tmp_path, server.url),
        )
    assert result.returncode == 1
    assert "0 stars proposed" in result.stderr


@pytest.mark.slow
def test_suggested_stars_calibrate_the_simulated_target(tmp_path):
    """The default five stars, written into the catalog, calibrate BL Lac within 0.02 mag."""
    from archive_helpers import NIGHT, make_project, simulate

    from iopreport.cli import main
    from iopreport.config import load_config
    from iopreport.simulate.evaluate import evaluate_night
    from iopreport.store import close_store, open_store

    services = services_from_sky(RA, DEC, 4.0)
    services.add_star("PSO J220243.290+421639.98", RA, DEC, *TARGET_VRI)
    _, document = run_suggest(tmp_path, services)
    entries = document["source"]
    calibrators = entries[0]["calibrators"]
    assert 2 <= len(calibrators) <= 5
    archive = simulate(tmp_path / "archive", ("OSN-T150",))
    config_path = make_project(
        tmp_path / "site",
        {"OSN-T150": {"enabled": True, "protocol": "local", "root": str(archive / "OSN-T150")}},
    )
    catalog_path = config_path.parent / "catalog.toml"
    text = catalog_path.read_text(encoding="utf-8")
    old = 'calibrators = ["2200+420 B", "2200+420 C", "2200+420 H"]'
    assert old in text
    text = text.replace(old, "calibrators = " + str(calibrators).replace("'", '"'))
    block = suggested_entries_text(entries[1:])
    catalog_path.write_text(text + "\n" + block, encoding="utf-8")
    argv = ["--config", str(config_path)]
    assert main([*argv, "catalog", "check"]) == 0
    assert main([*argv, "fetch", "--night", NIGHT.isoformat()]) == 0
    main([*argv, "reduce", "--night", NIGHT.isoformat(), "--workers", "1"])
    config = load_config(config_path)
    open_store(config.database_path)
    folder = next((archive / "OSN-T150").iterdir())
    evaluation = evaluate_night(folder, config.paths.datadir, "OSN-T150")
    close_store()
    errors = [error for _, error, _, _ in evaluation.mag_errors]
    print(f"calibrators {calibrators}; target errors {[round(e, 4) for e in errors]}")
    assert errors, evaluation.summary()
    assert max(abs(e) for e in errors) < 0.02, evaluation.summary()


def suggested_entries_text(entries: list[dict]) -> str:
    """The calibrator entries as TOML (written by tomlkit, as the command does)."""
    import tomlkit

    document = tomlkit.document()
    table = tomlkit.aot()
    for entry in entries:
        item = tomlkit.table()
        for key, value in entry.items():
            if key == "ps1":
                inline = tomlkit.inline_table()
                inline.update(value)
                item[key] = inline
            else:
                item[key] = value
        table.append(item)
    document["source"] = table
    return tomlkit.dumps(document)


def test_unreachable_service_is_a_clear_error(tmp_path):
    """No server on the configured port: exit 1 naming the service, no traceback."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = subprocess.run(
        [
            str(Path(os.sys.executable).parent / "iopreport"),
            "catalog",
            "suggest",
            TARGET,
            "--ra",
            "330.680375",
            "--dec",
            "42.2777722",
            "--gaia-tap",
            f"{url}/tap-server/tap",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=_astroquery_config(tmp_path, url),
    )
    assert result.returncode == 1
    assert "Pan-STARRS1 DR2 query at MAST failed" in result.stderr
    assert "Traceback" not in result.stderr
