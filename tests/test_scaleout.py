"""Scale-out: a night on a Dask LocalCluster and on PostgreSQL equals the local pool on
SQLite; `store copy` both ways; a reprocessing campaign killed and resumed; a worker lost."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tomlkit
from pgserver import free_port
from store_snapshot import differences, snapshot

from iopreport.archive.nightdownload import fetch_night
from iopreport.catalog import load_catalog, sync_catalog
from iopreport.config import load_config
from iopreport.demo import point_archives_at
from iopreport.errors import StoreError
from iopreport.fileio import write_text_atomic
from iopreport.reduce.executor import ClusterError, DaskPool
from iopreport.reduce.night import reduce_nights
from iopreport.reprocess import reprocess
from iopreport.simulate import simulate_night
from iopreport.skeleton import init_project
from iopreport.store import PhotoPolResult, ReducedFit, close_store, open_store
from iopreport.store.copy import copy_store

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2024, 10, 8)
TELESCOPE = "OSN-T090"
#: Nights of the campaign tests (one telescope, tiny preset: a few seconds each).
CAMPAIGN = [NIGHT + dt.timedelta(days=i) for i in range(5)]


def _project(tmp_path: Path, nights=(NIGHT,), telescopes=(TELESCOPE,), **settings) -> Path:
    """A project with simulated tiny nights fetched into its data folder."""
    project = tmp_path / "site"
    init_project(project)
    point_archives_at(project / "config.toml", project / "archive")
    document = tomlkit.parse((project / "config.toml").read_text())
    for section, values in settings.items():
        table = document.setdefault(section, tomlkit.table())
        for key, value in values.items():
            table[key] = value
    write_text_atomic(project / "config.toml", tomlkit.dumps(document))
    config = load_config(project / "config.toml")
    for index, night in enumerate(nights):
        simulate_night(
            project / "archive", night, telescopes=telescopes, preset="tiny", seed=9 + index
        )
        for telescope in telescopes:
            root = Path(config.archives[telescope].root)
            fetch_night(root, telescope, night, config.paths.data_subdir("raw"))
    return project


#: A page's generation time (the only text that differs between two builds of one store).
GENERATED = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def _pages(config) -> dict[str, str]:
    """The site's night and source pages and data files, generation times masked."""
    site = Path(config.paths.site_dir).resolve()
    return {
        str(path.relative_to(site)): GENERATED.sub("<time>", path.read_text())
        for path in sorted(site.rglob("*"))
        if path.is_file()
        and path.suffix in (".html", ".json", ".csv")
        and path.name not in ("status.html", "index.html")  # run log, last update
        and not path.name.startswith(".")  # the incremental build's own bookkeeping
    }


def _reduce(project: Path, build: bool = False) -> dict:
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    catalog = load_catalog(config.paths.catalog)
    sync_catalog(catalog)
    run = reduce_nights(config, catalog, [(TELESCOPE, NIGHT)], workers=2)
    assert run.reports[0].frames_reduced > 0
    found = snapshot()
    if build:
        from iopreport.build import run_build

        run_build(config)
        found["pages"] = _pages(config)
    close_store()
    return found


@pytest.fixture(scope="module")
def local_sqlite(tmp_path_factory) -> tuple[Path, dict]:
    """The tiny night reduced by the local pool into SQLite: the reference."""
    project = _project(tmp_path_factory.mktemp("local"))
    return project, _reduce(project, build=True)


@pytest.mark.slow
def test_local_cluster_gives_every_stored_value_of_the_local_pool(tmp_path, local_sqlite, caplog):
    project = _project(tmp_path, cluster={"scheduler": "local", "local_workers": 2})
    with caplog.at_level(logging.INFO, logger="iopreport.reduce.executor"):
        found = _reduce(project, build=True)
    jobs, tasks = next(r.args for r in caplog.records if r.msg == "dask: %d jobs in %d tasks")
    assert jobs > tasks, "no task reduced several frames ([cluster] jobs_per_task)"
    assert found["photo_pol_result"], "the night gave no results"
    assert len(found["pages"]) > 10
    assert found["pages"] == local_sqlite[1]["pages"]  # the same site pages
    assert not differences(local_sqlite[1], found)


@pytest.mark.slow
def test_postgresql_store_gives_every_stored_value_of_sqlite(tmp_path, local_sqlite, postgres_url):
    project = _project(tmp_path, paths={"database": postgres_url})
    assert load_config(project / "config.toml").database_path == postgres_url
    found = _reduce(project, build=True)
    assert found["pages"] == local_sqlite[1]["pages"]  # the same site pages
    assert not differences(local_sqlite[1], found)


@pytest.mark.slow
def test_store_copy_sqlite_to_postgresql_and_back(tmp_path, local_sqlite, postgres_url):
    project = local_sqlite[0]
    source = load_config(project / "config.toml").database_path
    counts = copy_store(source, postgres_url)
    assert counts["photo_pol_result"] == len(local_sqlite[1]["photo_pol_result"])
    assert counts["epoch_change"] > 0
    assert not differences(local_sqlite[1], snapshot())
    before = PhotoPolResult.select().count()
    back = tmp_path / "back.db"
    close_store()
    assert copy_store(postgres_url, back) == counts
    assert not differences(local_sqlite[1], snapshot())
    assert PhotoPolResult.select().count() == before
    # a new row on the copy gets a fresh id (the sequence continues after the copied ids)
    open_store(postgres_url)
    row = ReducedFit.select().first()
    row.delete_instance(recursive=True)
    assert ReducedFit.select().count() == counts["reduced_fit"] - 1
    close_store()
    with pytest.raises(Exception, match="not empty"):
        copy_store(source, postgres_url)


def test_cli_store_copy_and_migrate_on_postgresql(tmp_path, postgres_url, iopreport_exe):
    source = tmp_path / "s.db"
    open_store(source)
    close_store()
    out = subprocess.run(
        [iopreport_exe, "store", "copy", str(source), postgres_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "every count checked" in out
    project = tmp_path / "p"
    init_project(project)
    config = project / "config.toml"
    document = tomlkit.parse(config.read_text())
    document["paths"]["database"] = postgres_url
    write_text_atomic(config, tomlkit.dumps(document))
    out = subprocess.run(
        [iopreport_exe, "--config", str(config), "migrate"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "already at schema" in out


def test_a_password_in_the_url_is_refused(tmp_path):
    project = tmp_path / "p"
    init_project(project)
    document = tomlkit.parse((project / "config.toml").read_text())
    document["paths"]["database"] = "postgresql://me:secret@db.example/iop"
    write_text_atomic(project / "config.toml", tomlkit.dumps(document))
    with pytest.raises(Exception, match="database_password_env"):
        load_config(project / "config.toml")


def test_password_comes_from_the_environment(tmp_path, monkeypatch):
    project = tmp_path / "p"
    init_project(project)
    document = tomlkit.parse((project / "config.toml").read_text())
    document["paths"]["database"] = "postgresql://me@db.example:5433/iop"
    document["paths"]["database_password_env"] = "IOP_DB_PASSWORD"
    write_text_atomic(project / "config.toml", tomlkit.dumps(document))
    monkeypatch.setenv("IOP_DB_PASSWORD", "s3cr:t")
    config = load_config(project / "config.toml")
    assert config.database_path == "postgresql://me:s3cr%3At@db.example:5433/iop"


@pytest.mark.slow
def test_a_worker_that_cannot_see_the_data_folder_is_refused(tmp_path):
    """A worker in its own mount namespace, with an empty file system over the data folder
    (a machine that does not share it): the reduction refuses to start."""
    import distributed

    project = _project(tmp_path, nights=())
    datadir = project / "data"
    datadir.mkdir(exist_ok=True)
    cluster = distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None)
    worker = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs tmpfs {datadir} && exec {sys.executable}"
            " -m distributed.cli.dask_worker"
            f" {cluster.scheduler_address} --nthreads 1 --no-dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(1, timeout=60)
        document = tomlkit.parse((project / "config.toml").read_text())
        document["cluster"] = {"scheduler": cluster.scheduler_address}
        write_text_atomic(project / "config.toml", tomlkit.dumps(document))
        config = load_config(project / "config.toml")
        with pytest.raises(ClusterError, match="not visible at the same path"):
            DaskPool(config)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        cluster.close()


def _campaign(project: Path, *extra: str) -> subprocess.Popen:
    # output to a file, not a pipe: the pool's processes inherit the pipe and would keep a
    # reader waiting after the campaign is killed
    log = open(project / "campaign.log", "a")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "iopreport",
            "--config",
            str(project / "config.toml"),
            "reprocess",
            "--from",
            str(CAMPAIGN[0]),
            "--to",
            str(CAMPAIGN[-1]),
            "--no-build",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _finish(run: subprocess.Popen, project: Path) -> str:
    run.wait(timeout=600)
    return (project / "campaign.log").read_text()


def _journal(project: Path) -> Path:
    return next((project / "data" / "campaigns").glob("*.json"), Path("/nonexistent"))


@pytest.mark.slow
def test_campaign_killed_twice_and_resumed_equals_an_uninterrupted_run(tmp_path):
    reference = _project(tmp_path / "ref", nights=CAMPAIGN)
    done = _campaign(reference)
    out = _finish(done, reference)
    assert done.returncode in (0, 1), out
    assert "total" in out
    open_store(load_config(reference / "config.toml").database_path)
    expected = snapshot()
    close_store()

    project = _project(tmp_path / "killed", nights=CAMPAIGN)
    for wanted in ("masters", "nights"):  # killed after the masters, then after a night
        run = _campaign(project)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and run.poll() is None:
            journal = _journal(project)
            if journal.is_file() and f'"{wanted}": [\n  "' in journal.read_text():
                break
            time.sleep(0.2)
        time.sleep(1.0)  # into the next step
        assert run.poll() is None, "the campaign ended before it could be killed"
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
    resumed = _campaign(project)
    out = _finish(resumed, project)
    assert resumed.returncode in (0, 1), out
    assert out.count(" nights in ") == 1, out  # only the last run got to the final table
    open_store(load_config(project / "config.toml").database_path)
    found = snapshot()
    close_store()
    assert found["photo_pol_result"]
    assert not differences(expected, found)


@pytest.mark.slow
def test_a_worker_killed_during_a_campaign_changes_nothing(tmp_path, local_sqlite):
    project = _project(tmp_path, cluster={"scheduler": "local", "local_workers": 2})
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    pool = DaskPool(config)
    killed = []

    def kill_one_worker() -> None:  # once frames are being reduced: a worker dies
        while not ReducedFit.select().count() and len(killed) < 1:
            time.sleep(0.05)
        pids = pool.client.run(os.getpid)
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    try:
        thread = threading.Thread(target=kill_one_worker, daemon=True)
        thread.start()
        report = reprocess(config, NIGHT, NIGHT, build=False, progress=False, executor=pool)
        thread.join(timeout=60)
    finally:
        pool.close()
    assert killed, "no worker was killed"
    assert not report.failed, report.table()
    assert not differences(local_sqlite[1], snapshot())
    close_store()


def test_migrate_upgrades_a_postgresql_store(tmp_path, postgres_url, iopreport_exe):
    """A schema-3 store on PostgreSQL (made by removing what schemas 4 to 7 added) is
    upgraded by `iopreport migrate` with the same steps as SQLite's."""
    from iopreport.store import SCHEMA_VERSION, Epoch, RawFit
    from iopreport.store.changes import epoch_changes, imported_trigger_sql, trigger_sql
    from iopreport.store.dialect import set_schema_version

    database = open_store(postgres_url)
    statements = [*trigger_sql(True), *imported_trigger_sql(True)]
    functions = {statement.split()[4].removesuffix("()") for statement in statements[::3]}
    for name in functions:
        database.execute_sql(f"DROP FUNCTION {name}() CASCADE")
    database.execute_sql("DROP TABLE epoch_change, source_change, field_star_flux")
    database.execute_sql("DROP TABLE imported_result")  # schema 7
    database.execute_sql("ALTER TABLE reduced_fit DROP COLUMN astrometry_detail")  # schema 6
    for column in ("mag_sys_err", "p_sys_err", "chi_sys_err"):
        database.execute_sql(f"ALTER TABLE photo_pol_result DROP COLUMN {column}")
    set_schema_version(database, 3)
    close_store()
    project = tmp_path / "p"
    init_project(project)
    document = tomlkit.parse((project / "config.toml").read_text())
    document["paths"]["database"] = postgres_url
    write_text_atomic(project / "config.toml", tomlkit.dumps(document))
    out = subprocess.run(
        [iopreport_exe, "--config", str(project / "config.toml"), "migrate"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"upgraded schema 3 -> {SCHEMA_VERSION} in one transaction" in out
    database = open_store(postgres_url, upgrade=False)
    columns = {c.name for c in database.get_columns("photo_pol_result")}
    assert {"mag_sys_err", "p_sys_err", "chi_sys_err"} <= columns
    epoch = Epoch.create(telescope="OSN-T090", night=NIGHT)
    RawFit.create(epoch=epoch, filename="a.fits")
    assert epoch_changes() == {epoch.id: 1}  # the counters' triggers are back


@pytest.mark.slow
def test_reprocess_through_a_dask_scheduler_and_two_workers(tmp_path, local_sqlite):
    """docs/operations.md step by step: `dask scheduler`, two `dask worker`, then
    `iopreport reprocess` through them gives the local pool's results."""
    dask = Path(sys.executable).parent / "dask"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    project = _project(tmp_path, cluster={"scheduler": address})
    logs = open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed below
    commands = [
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        *[[dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"]] * 2,
    ]
    processes = []
    try:
        for command in commands:
            processes.append(subprocess.Popen(command, stdout=logs, stderr=subprocess.STDOUT))
            time.sleep(1.0)
        run = subprocess.run(
            [
                sys.executable, "-m", "iopreport", "--config", str(project / "config.toml"),
                "reprocess", "--from", str(NIGHT), "--to", str(NIGHT), "--no-build",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        logs.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 worker threads" in run.stderr, run.stderr
    assert "is visible on all 2 workers" in run.stderr, run.stderr  # the data-folder check
    open_store(load_config(project / "config.toml").database_path)
    assert not differences(local_sqlite[1], snapshot())
    close_store()


def test_a_plain_install_names_the_extra(tmp_path):
    """Without Dask and psycopg2 (hidden from the interpreter), a config asking for a
    cluster or a PostgreSQL store is refused with the extra to install."""
    project = tmp_path / "p"
    init_project(project)
    document = tomlkit.parse((project / "config.toml").read_text())
    document["paths"]["database"] = "postgresql://me@127.0.0.1:1/iop"
    write_text_atomic(project / "config.toml", tomlkit.dumps(document))
    hide = "import sys; sys.modules.update(distributed=None, psycopg2=None); "
    run = subprocess.run(
        [
            sys.executable, "-c",
            hide + "from iopreport.cli import main; sys.exit(main(sys.argv[1:]))",
            "--config", str(project / "config.toml"), "status",
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "pip install 'iopreport[cluster]'" in run.stderr
    document["paths"]["database"] = ""
    document["cluster"]["scheduler"] = "local"
    write_text_atomic(project / "config.toml", tomlkit.dumps(document))
    (project / "data" / "raw" / TELESCOPE / str(NIGHT)).mkdir(parents=True)
    run = subprocess.run(
        [
            sys.executable, "-c",
            hide + "from iopreport.cli import main; sys.exit(main(sys.argv[1:]))",
            "--config", str(project / "config.toml"), "reduce", "--night", str(NIGHT),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "[cluster] scheduler needs Dask" in run.stderr
    assert "pip install 'iopreport[cluster]'" in run.stderr


def test_a_server_asking_for_a_password_gets_a_clear_error_then_the_one_from_the_environment(
    tmp_path, postgres_server, monkeypatch
):
    """A role whose connections need a password (as on Debian's own server): without it,
    the error says where the password goes; with it in database_password_env, the store opens."""
    postgres_server.require_password("walker", "w4lk:er")
    url = postgres_server.database(owner="walker").replace("//postgres@", "//walker@")
    with pytest.raises(StoreError, match=r"asks for a password.*database_password_env"):
        open_store(url)
    project = tmp_path / "p"
    init_project(project)
    document = tomlkit.parse((project / "config.toml").read_text())
    document["paths"]["database"] = url
    document["paths"]["database_password_env"] = "WALKER_PASSWORD"
    write_text_atomic(project / "config.toml", tomlkit.dumps(document))
    monkeypatch.setenv("WALKER_PASSWORD", "w4lk:er")
    config = load_config(project / "config.toml")
    try:
        open_store(config.database_path)  # the role's own database: the store is created
        assert ReducedFit.select().count() == 0
    finally:
        close_store()
