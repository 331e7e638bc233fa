"""``iopreport daemon``: one cycle over FTP, the lock, signals, and kill -9 at random points.

The daemon runs as a real subprocess (the console script) against a pyftpdlib
server on 127.0.0.1 serving a tiny simulated OSN-T150 night.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from archive_helpers import NIGHT, make_project, simulate

from iopreport.archive.testserver import FtpTestServer

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

#: Kills with SIGKILL the crash test must land on a running daemon.
KILLS = 10
#: Seconds a killed daemon's worker processes get to notice and end themselves.
ORPHAN_WAIT_S = 60


@pytest.fixture(scope="module")
def ftp_archive(tmp_path_factory):
    root = simulate(tmp_path_factory.mktemp("sim") / "archive", ("OSN-T150",))
    with FtpTestServer(root / "OSN-T150") as server:
        yield server


def start(exe, config_path, *args):
    """The daemon as a subprocess; output goes to files (a pipe would be held open by
    worker processes, and the test would wait on them rather than on the daemon)."""
    log = config_path.parent / f"daemon-{time.monotonic_ns()}.out"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [exe, "--config", str(config_path), "daemon", *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: workers can be watched after a kill
        )
    process.output_path = log
    return process


def finish(process, timeout):
    """Wait for the process; return (exit code, its output)."""
    process.wait(timeout=timeout)
    return process.returncode, process.output_path.read_text()


def wait_group_gone(pgid: int, timeout: float = ORPHAN_WAIT_S) -> float:
    """Seconds until no process of group ``pgid`` is left (fails after ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return time.monotonic() - started
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)
    raise AssertionError(f"processes of the killed daemon still alive after {timeout} s")


def run_once(exe, config_path, timeout=900):
    process = start(exe, config_path, "--once")
    code, output = finish(process, timeout)
    wait_group_gone(process.pid)
    return code, output, output


def wait_for_children(process, timeout: float = 300) -> None:
    """Until ``process`` has started a child (the reduction's worker pool)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        for entry in Path("/proc").iterdir():
            try:
                if (
                    entry.name.isdigit()
                    and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    == process.pid
                ):
                    return
            except (OSError, IndexError, ValueError):
                continue
        assert process.poll() is None, process.output_path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"the daemon started no worker process in {timeout} s")


def heartbeat(database: Path):
    if not database.exists():
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute(
                "SELECT pid, state, beat_at FROM heartbeat WHERE name = 'daemon'"
            ).fetchone()
    except sqlite3.OperationalError:  # not created yet
        return None


def wait_for_state(database: Path, text: str, process, timeout=300):
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        beat = heartbeat(database)
        if beat and text in beat[1]:
            return beat
        assert process.poll() is None, process.output_path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"daemon never reported {text!r}; last heartbeat {heartbeat(database)}")


def snapshot(datadir: Path) -> dict:
    """The store and the data directory by identity (names, keys, values), never by id."""
    with sqlite3.connect(datadir / "iopreport.db") as connection:

        def rows(sql):
            return sorted(connection.execute(sql).fetchall(), key=repr)

        state = {
            "epochs": rows("SELECT telescope, night, flags, error FROM epoch"),
            "rawfits": rows(
                "SELECT e.telescope, e.night, r.filename, r.size_bytes, r.sha256, r.flags, "
                "r.error, r.instrument, r.imgtype, r.obsmode, r.band, r.angle, r.juliandate, "
                "r.exptime FROM raw_fit r JOIN epoch e ON r.epoch_id = e.id"
            ),
            "reduced": rows(
                "SELECT r.filename, d.filename, d.flags, d.error, round(d.center_ra_deg, 6), "
                "round(d.center_dec_deg, 6), d.n_detected FROM reduced_fit d "
                "JOIN raw_fit r ON d.rawfit_id = r.id"
            ),
            "results": rows(
                "SELECT s.name, p.members_key, p.method, p.mode, p.band, p.n_frames, "
                "round(p.mag, 5), round(p.mag_err, 5), p.n_calibrators, p.flags "
                "FROM photo_pol_result p JOIN astro_source s ON p.astrosource_id = s.id"
            ),
            "members": rows(
                "SELECT s.name, p.members_key, r.filename FROM photo_pol_member m "
                "JOIN photo_pol_result p ON m.result_id = p.id "
                "JOIN astro_source s ON p.astrosource_id = s.id "
                "JOIN raw_fit r ON m.rawfit_id = r.id"
            ),
            "apertures": rows(
                "SELECT r.filename, s.name, a.pair, a.aperture_px, round(a.flux_counts, 3) "
                "FROM aper_phot_result a JOIN reduced_fit d ON a.reducedfit_id = d.id "
                "JOIN raw_fit r ON d.rawfit_id = r.id JOIN astro_source s "
                "ON a.astrosource_id = s.id"
            ),
        }
        for table in ("master_bias", "master_dark", "master_flat"):
            state[table] = rows(
                f"SELECT m.filename, m.n_frames, m.flags, m.error, round(m.level, 4), "
                f"(SELECT group_concat(r.filename) FROM (SELECT r.filename FROM "
                f"{table}_input i JOIN raw_fit r ON i.rawfit_id = r.id "
                f"WHERE i.master_id = m.id ORDER BY r.filename) r) FROM {table} m"
            )
    files = sorted(
        str(path.relative_to(datadir))
        for path in datadir.rglob("*")
        if path.is_file()
        and path.parts[len(datadir.parts)] not in ("logs",)
        and not path.name.startswith(("iopreport.db", "daemon.lock"))
    )
    state["files"] = files
    return state


def status_text(exe: str, config_path) -> str:
    run = subprocess.run(
        [exe, "--config", str(config_path), "status"], capture_output=True, text=True, timeout=120
    )
    return run.stdout


@pytest.fixture(scope="module")
def clean_run(ftp_archive, tmp_path_factory, iopreport_exe):
    """One uninterrupted `daemon --once`: the reference end state and its duration."""
    config_path = make_project(
        tmp_path_factory.mktemp("clean") / "site", {"OSN-T150": ftp_archive.archive_table()}
    )
    started = time.monotonic()
    code, out, err = run_once(iopreport_exe, config_path)
    seconds = time.monotonic() - started
    assert code == 0, err
    return config_path, snapshot(config_path.parent / "data"), seconds, err


def test_once_fetches_and_reduces_a_new_night(clean_run, iopreport_exe):
    config_path, state, seconds, log_text = clean_run
    assert state["epochs"] == [("OSN-T150", NIGHT.isoformat(), 1 | 4 | 8 | 16, "")]
    assert len(state["rawfits"]) > 20 and all(r[5] & 1 for r in state["rawfits"])
    assert state["results"] and state["reduced"]
    assert not [f for f in state["files"] if f.endswith(".part") or "/." in f]
    database = config_path.parent / "data" / "iopreport.db"
    assert heartbeat(database)[1] == "finished (--once)"
    with sqlite3.connect(database) as connection:
        runs = connection.execute("SELECT command, outcome, detail FROM run_log").fetchall()
    assert [(command, outcome) for command, outcome, _ in runs] == [("daemon once", "ok")]
    assert "copied" in runs[0][2] and "frames reduced" in runs[0][2]
    status = subprocess.run(
        [iopreport_exe, "--config", str(config_path), "status"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "daemon:    NOT RUNNING (finished (--once))" in status.stdout  # it has exited
    # nothing new: a second cycle downloads and reduces nothing, and changes nothing
    code, out, err = run_once(iopreport_exe, config_path)
    assert code == 0, err
    assert snapshot(config_path.parent / "data") == state
    with sqlite3.connect(database) as connection:
        detail = connection.execute(
            "SELECT detail FROM run_log ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
    assert "copied" not in detail and "frames reduced" not in detail


def test_second_daemon_is_refused_and_sigterm_stops_the_first(tmp_path, iopreport_exe):
    config_path = make_project(tmp_path / "site", {})
    database = config_path.parent / "data" / "iopreport.db"
    first = start(iopreport_exe, config_path)
    try:
        wait_for_state(database, "idle", first, timeout=120)
        second = subprocess.run(
            [iopreport_exe, "--config", str(config_path), "daemon", "--once"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert "in use by another iopreport daemon" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert first.poll() is None
        assert "daemon:    alive" in status_text(iopreport_exe, config_path)
        started = time.monotonic()
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
        assert time.monotonic() - started < 5
        assert first.returncode == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert heartbeat(database)[1] == "stopped on SIGTERM"
    assert "NOT RUNNING (stopped on SIGTERM)" in status_text(iopreport_exe, config_path)
    # the lock went with the process: a new daemon starts
    code, out, err = run_once(iopreport_exe, config_path)
    assert code == 0, err


@pytest.mark.slow
def test_killed_at_random_points_ends_like_a_clean_run(
    clean_run, ftp_archive, tmp_path, iopreport_exe
):
    """SIGTERM while reducing stops within seconds; then SIGKILL at 10+ random moments;
    a last run completes, and the store and files equal the uninterrupted run's."""
    _, reference, clean_seconds, _ = clean_run
    config_path = make_project(tmp_path / "site", {"OSN-T150": ftp_archive.archive_table()})
    datadir = config_path.parent / "data"
    database = datadir / "iopreport.db"

    process = start(iopreport_exe, config_path, "--once")
    wait_for_state(database, "reducing", process)
    # the workers are up: the reduction is under way (a fixed wait here could outlast
    # the whole small night on a fast machine, and the signal then came after the end)
    wait_for_children(process)
    stopped_at = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    stop_seconds = time.monotonic() - stopped_at
    wait_group_gone(process.pid)
    assert process.returncode == 1  # an interrupted --once did not finish its cycle
    assert stop_seconds < 20, f"SIGTERM took {stop_seconds:.1f} s"

    rng = random.Random(int(os.environ.get("IOPREPORT_KILL_SEED", "20261202")))
    kills, attempts, moments = 0, 0, []
    while kills < KILLS and attempts < 4 * KILLS:
        attempts += 1
        process = start(iopreport_exe, config_path, "--once")
        moment = rng.uniform(0.2, max(1.0, clean_seconds))
        try:
            process.wait(timeout=moment)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            moments.append(round(moment, 1))
        wait_group_gone(process.pid)
    assert kills >= KILLS, f"only {kills} kills landed in {attempts} runs"

    code, out, err = run_once(iopreport_exe, config_path)
    assert code == 0, err
    print(
        f"clean run {clean_seconds:.1f} s; SIGTERM while reducing stopped in {stop_seconds:.1f} s; "
        f"SIGKILL at {moments} s ({attempts} runs)"
    )
    state = snapshot(datadir)
    for key in reference:
        assert state[key] == reference[key], f"{key} differs after kills at {moments} s"


def test_step_slots_run_in_order_and_build_only_after_news(tmp_path, monkeypatch):
    """build/summary slots (filled at merge by the site and mail modules) run when filled."""
    from iopreport import daemon
    from iopreport.config import load_config
    from iopreport.store import RunLog, close_store, open_store

    config = load_config(make_project(tmp_path / "site", {}))
    open_store(config.database_path)
    calls = []
    monkeypatch.setitem(daemon.STEPS, "build", lambda cycle: calls.append(("build", cycle.job)))
    monkeypatch.setitem(daemon.STEPS, "summary", lambda cycle: calls.append(("summary", cycle.job)))
    runner = daemon.Daemon(config)
    try:
        runner.run_job("once")
        runner.run_job("poll")  # nothing new: no build
        runner.run_job("summary")
        assert calls == [("build", "once"), ("summary", "once"), ("summary", "summary")]

        def broken(cycle):
            raise RuntimeError("smtp down")

        monkeypatch.setitem(daemon.STEPS, "summary", broken)
        cycle = runner.run_job("summary")
        assert cycle.failures == ["summary: RuntimeError: smtp down"]
        last = RunLog.select().order_by(RunLog.id.desc()).first()
        assert (last.command, last.outcome) == ("daemon summary", "failed")
        assert "smtp down" in last.detail
    finally:
        close_store()


def test_nights_to_reduce(store):
    import datetime as dt

    from iopreport.daemon import nights_to_reduce
    from iopreport.store import Epoch, EpochFlags, RawFit, RawFitFlags

    def night(day, flags, file_flags=RawFitFlags.DOWNLOADED):
        epoch = Epoch.create(telescope="OSN-T150", night=dt.date(2024, 10, day), flags=flags)
        RawFit.create(epoch=epoch, filename="a.fit", flags=file_flags)

    night(1, EpochFlags.LISTED | EpochFlags.DOWNLOADED)  # fetched, not reduced
    night(2, EpochFlags.LISTED | EpochFlags.REDUCED)  # done
    night(3, 0)  # reduced by hand from an old raw folder: left alone
    night(4, EpochFlags.LISTED, RawFitFlags.ERROR_DOWNLOAD)  # nothing arrived yet
    night(5, EpochFlags.LISTED | EpochFlags.CLOSED)  # closed but interrupted
    assert nights_to_reduce() == [
        ("OSN-T150", dt.date(2024, 10, 5)),
        ("OSN-T150", dt.date(2024, 10, 1)),
    ]
