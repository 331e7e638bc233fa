"""`--json` documents against their schemas (docs/schemas/), JSON-lines logs, fetch progress."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import jsonschema
import pytest
from archive_helpers import NIGHT, make_project, simulate

from iopreport.cli import main

#: Simulates or reduces nights, or starts servers: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"


def _validate(document: dict, name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(
        document
    )


def _json(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_schemas_are_valid_and_reject_a_wrong_document():
    for path in SCHEMAS.glob("*.schema.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
    with pytest.raises(jsonschema.ValidationError):
        _validate({"schema": 1, "command": "fetch", "ok": "yes", "archives": []}, "fetch")


def test_status_json_without_a_database(project, capsys):
    code, document = _json(capsys, "--config", str(project / "config.toml"), "status", "--json")
    assert code == 0
    _validate(document, "status")
    assert document["database"] == {
        "path": str(project / "data" / "iopreport.db"),
        "exists": False,
        "schema": None,
    }
    assert not (project / "data").exists()


def test_status_json_and_text_come_from_the_same_values(project, capsys, monkeypatch):
    from test_export import _populate

    from iopreport.config import load_config
    from iopreport.status import render_status

    config = load_config(project / "config.toml")
    _populate(config)
    config_arg = ("--config", str(project / "config.toml"))
    assert main([*config_arg, "catalog", "load"]) == 0
    capsys.readouterr()
    code, document = _json(capsys, *config_arg, "status", "--json", "--nights", "1")
    assert code == 0
    _validate(document, "status")
    assert document["nights_total"] == 2 and len(document["nights"]) == 1
    assert document["results"] == {"photometry": 6, "polarimetry": 1}
    assert document["runs"][0]["command"] == "catalog load"
    assert document["daemon"] is None
    text = render_status(config, nights=1)
    night = document["nights"][0]
    assert f"  {night['epoch']:<22} light {night['frames']['light']};" in text
    assert "results:   6 photometry, 1 polarimetry" in text
    assert f"catalog load: {document['runs'][0]['outcome']}" in text

    from iopreport.store import Heartbeat, close_store, open_store

    open_store(config.database_path)
    Heartbeat.create(name="daemon", pid=4242, hostname="obs1", state="idle")
    close_store()
    code, document = _json(capsys, *config_arg, "status", "--json")
    _validate(document, "status")
    assert document["daemon"]["pid"] == 4242 and document["daemon"]["alive"] is True
    assert "daemon:    alive; pid 4242 on obs1" in render_status(config)


@pytest.mark.slow
def test_fetch_reduce_build_json_validate(tmp_path, capsys):
    """A tiny simulated night through fetch, reduce and build, each with --json."""
    archive = simulate(tmp_path / "archive", ("OSN-T090",))
    config_path = make_project(
        tmp_path / "site",
        {"OSN-T090": {"enabled": True, "protocol": "local", "root": str(archive / "OSN-T090")}},
    )
    config_arg = ("--config", str(config_path))
    code, fetched = _json(capsys, *config_arg, "fetch", "--night", NIGHT.isoformat(), "--json")
    _validate(fetched, "fetch")
    assert code == 0 and fetched["ok"] is True
    night = fetched["archives"][0]["nights"][0]
    assert night["copied"] > 0 and night["failed"] == {}
    assert fetched["archives"][0]["new_files"] == night["copied"]

    argv = (*config_arg, "reduce", "--night", NIGHT.isoformat(), "--workers", "1", "--json")
    code, reduced = _json(capsys, *argv)
    _validate(reduced, "reduce")
    assert reduced["ok"] is (code == 0)
    assert reduced["nights"][0]["telescope"] == "OSN-T090"
    assert reduced["nights"][0]["files"] == night["copied"]
    assert reduced["nights"][0]["results"] > 0

    code, built = _json(capsys, *config_arg, "build", "--json")
    assert code == 0
    _validate(built, "build")
    assert built["site"]["pages_rendered"] > 0

    code, missing = _json(
        capsys, *config_arg, "reduce", "--night", "2024-10-01", "--telescope", "T090", "--json"
    )
    _validate(missing, "reduce")
    assert code == 1 and missing["ok"] is False and "OSN-T090" in missing["missing"]


def test_log_json_writes_one_json_object_per_line(project, iopreport_exe):
    result = subprocess.run(
        [iopreport_exe, "--log-json", "--config", str(project / "config.toml"), "catalog", "load"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    log_file = project / "data" / "logs" / "iopreport.log"
    for text in (result.stderr, log_file.read_text(encoding="utf-8")):
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines
        records = [json.loads(line) for line in lines]
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


def test_logging_format_json_in_config(project):
    from iopreport.config import load_config
    from iopreport.logsetup import JsonLinesFormatter, configure_logging

    path = project / "config.toml"
    path.write_text(
        path.read_text().replace('format = "text"', 'format = "json"'), encoding="utf-8"
    )
    config = load_config(path)
    assert config.logging.format == "json"
    root = logging.getLogger()
    before = list(root.handlers)
    formatters = [h.formatter for h in before]  # configure_logging re-formats them: put back
    try:
        configure_logging(config, to_file=True)
        added = [h for h in root.handlers if h not in before]
        assert added and all(isinstance(h.formatter, JsonLinesFormatter) for h in added)
        try:
            raise ValueError("boom")
        except ValueError:
            record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("a",), None)
            import sys

            record.exc_info = sys.exc_info()
        document = json.loads(JsonLinesFormatter().format(record))
        assert document["message"] == "failed a" and "ValueError: boom" in document["exception"]
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        for handler, formatter in zip(before, formatters, strict=True):
            handler.setFormatter(formatter)
    path.write_text(path.read_text().replace('format = "json"', 'format = "xml"'))
    from iopreport.errors import InputError

    with pytest.raises(InputError, match="format"):
        load_config(path)


def test_fetch_hooks_count_every_file(tmp_path):
    """The progress hooks see each night's listing and every file (what the bar counts)."""
    from iopreport.archive.nightsync import SyncHooks
    from iopreport.archive.sync import sync_archive
    from iopreport.config import load_config
    from iopreport.store import close_store, open_store

    archive = simulate(tmp_path / "archive", ("OSN-T150",))
    config_path = make_project(
        tmp_path / "site",
        {"OSN-T150": {"enabled": True, "protocol": "local", "root": str(archive / "OSN-T150")}},
    )
    config = load_config(config_path)
    open_store(config.database_path)
    seen: dict[str, list] = {"listed": [], "files": [], "nights": []}
    hooks = SyncHooks(
        listed=lambda label, n: seen["listed"].append((label, n)),
        file_done=lambda outcome: seen["files"].append(outcome.status),
        night_done=lambda report: seen["nights"].append(report.night),
    )
    result = sync_archive(config, config.archives["OSN-T150"], nights=[NIGHT], hooks=hooks)
    close_store()
    copied = len(result.nights[0].copied)
    assert seen["listed"] == [(f"fetch OSN-T150 {NIGHT}", copied)]
    assert seen["files"] == ["copied"] * copied and seen["nights"] == [NIGHT]


def test_progress_draws_a_bar_only_on_request_of_a_terminal(capsys, caplog):
    from iopreport.progress import Progress

    caplog.set_level(logging.INFO, logger="iopreport.progress")
    bar = Progress(3, "reduce", unit="frame", enabled=True)
    assert bar.drawn
    bar.update(3)
    bar.close()
    assert "reduce" in capsys.readouterr().err
    quiet = Progress(3, "reduce", unit="frame", enabled=False)
    assert not quiet.drawn
    quiet.update()
    quiet.close()
    assert not caplog.records
