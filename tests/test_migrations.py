"""Upgrading a database written with an older schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from iopreport.errors import StoreError
from iopreport.store import SCHEMA_VERSION, PhotoPolResult, open_store, schema_version

V1_SQL = Path(__file__).parent / "data" / "schema_v1.sql"


def make_v1_database(path: Path) -> None:
    """A schema-1 database with one result in it, written with plain sqlite3."""
    with sqlite3.connect(path) as connection:
        connection.executescript(V1_SQL.read_text())
        connection.execute(
            "INSERT INTO astro_source (name, other_names, srctype, ra_deg, dec_deg, comment,"
            ' "references", in_catalog, modified) VALUES'
            " ('2200+420', '[]', 'blazar', 330.68, 42.28, '', '[]', 1, '2024-01-01 00:00:00')"
        )
        connection.execute(
            "INSERT INTO epoch (telescope, night, flags, error, first_seen)"
            " VALUES ('OSN-T090', '2022-09-08', 0, '', '2024-01-01 00:00:00')"
        )
        connection.execute(
            "INSERT INTO photo_pol_result (astrosource_id, epoch_id, members_key, mode, method,"
            " instrument, band, juliandate, juliandate_min, juliandate_max, n_frames, p, chi,"
            " q_raw, u_raw, flags, manual_flags, flag_reasons, error, modified)"
            " VALUES (1, 1, 'OSN-T090/2022-09-08/a.fit', 'polarimetry', 'osn-wheel', 'AndorT90',"
            " 'R', 2459831.4, 2459831.4, 2459831.4, 4, 0.125, 15.5, 0.1, 0.07, 0, 2,"
            " '[\"seeing\"]', '', '2024-01-01 00:00:00')"
        )
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1


def columns(database_path: Path) -> dict[str, set[tuple]]:
    """Tables -> {(column, type, notnull)} and indexes -> SQL, to compare schemas."""
    with sqlite3.connect(database_path) as connection:
        tables = [
            r[0]
            for r in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        shape = {
            table: {(c[1], c[2], c[3]) for c in connection.execute(f'PRAGMA table_info("{table}")')}
            for table in tables
        }
        shape["indexes"] = {
            (r[0], r[1])
            for r in connection.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
        shape["triggers"] = {
            (r[0], r[1], r[2])
            for r in connection.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
            )
        }
    return shape


def test_v1_database_upgrades_to_current(tmp_path):
    old = tmp_path / "old.db"
    make_v1_database(old)
    database = open_store(old)
    assert schema_version(database) == SCHEMA_VERSION
    result = PhotoPolResult.get()
    assert result.p == pytest.approx(0.125)
    assert result.manual_flags == 2
    assert result.flag_reasons == ["seeing"]
    assert result.q is None and result.p_debiased is None
    result.q, result.p_debiased = 0.1, 0.124
    result.save()
    database.close()
    assert Path(f"{old}.v1.bak").exists()

    fresh = tmp_path / "fresh.db"
    open_store(fresh).close()
    assert columns(old) == columns(fresh)
    assert len(columns(old)["triggers"]) >= 19


def test_v1_database_upgraded_counts_changes_for_the_site(tmp_path):
    """Schema 5: the upgraded store counts a flag edit per night and per source."""
    from iopreport.store.changes import epoch_changes, source_changes

    old = tmp_path / "old.db"
    make_v1_database(old)
    database = open_store(old)
    assert epoch_changes() == {} and source_changes() == {}
    PhotoPolResult.update(manual_flags=2).execute()  # the value it has: no change
    assert epoch_changes() == {}
    PhotoPolResult.update(manual_flags=4, flag_reasons=["clouds"]).execute()
    result = PhotoPolResult.get()
    assert epoch_changes()[result.epoch_id] > 0
    assert source_changes()[result.astrosource_id] > 0
    database.close()


def test_upgrade_can_be_refused(tmp_path):
    old = tmp_path / "old.db"
    make_v1_database(old)
    with pytest.raises(StoreError, match="needs an upgrade"):
        open_store(old, upgrade=False)
    with sqlite3.connect(old) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 1


def test_missing_file_is_refused_when_asked(tmp_path):
    with pytest.raises(StoreError, match="no such database"):
        open_store(tmp_path / "typo.db", create=False)
    assert not (tmp_path / "typo.db").exists()


def test_migrate_command_upgrades_and_status_explains(iopreport_exe, tmp_path):
    import subprocess

    config = tmp_path / "config.toml"
    config.write_text('[paths]\ndatadir = "data"\n')
    (tmp_path / "catalog.toml").write_text("")
    database = tmp_path / "data" / "iopreport.db"
    database.parent.mkdir()
    make_v1_database(database)

    def run(*args):
        return subprocess.run(
            [iopreport_exe, "--config", str(config), *args], capture_output=True, text=True
        )

    status = run("status")
    assert status.returncode == 2
    assert "run `iopreport migrate`" in status.stderr
    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert f"upgraded schema 1 -> {SCHEMA_VERSION}" in migrated.stdout
    assert Path(f"{database}.v1.bak").exists()
    assert run("status").returncode == 0
    assert "already at schema" in run("migrate").stdout
