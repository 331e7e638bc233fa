"""The fault corpus: hundreds of hostile inputs through `fetch`, `reduce`, `build` and `summary`.

One tiny simulated night is served by the real FTP test server, fetched,
reduced and built once; then the hostile inputs of :mod:`faults_corpus`
(archive listings, FITS files, config/catalog/flags TOML files, markup and
control characters) go through the real command-line entry point. For every
input: no traceback, a recorded reason (a refusal in the fetch report, a
row's error, an error message naming the file or key), nothing written
outside the project, and the earlier results and the published site intact.
The test prints how many hostile inputs it tried.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sqlite3
import traceback
from pathlib import Path

import faults_corpus as corpus
import pytest
from archive_helpers import NIGHT, make_project, simulate

from iopreport.archive.testserver import FtpTestServer
from iopreport.cli import main
from iopreport.store import close_store

pytestmark = pytest.mark.slow  # simulates and reduces a tiny night

TELESCOPE = "OSN-T150"
FOLDER = "/20241008"
TRIED: dict[str, int] = {}
TRACEBACKS: list[str] = []


def run(config_path: Path, *args: str) -> tuple[int, str, str]:
    """``iopreport --config ... ARGS`` in this process: exit code, stdout, stderr.

    An exception escaping ``main`` is a traceback the user would have seen: it is
    recorded, and the run counts as exit code -1.
    """
    out, err = io.StringIO(), io.StringIO()
    close_store()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["--config", str(config_path), *args])
    except BaseException:  # what a user would see as a traceback
        TRACEBACKS.append(f"{args}: {traceback.format_exc()}")
        code = -1
    finally:
        close_store()
    return code, out.getvalue(), err.getvalue()


def count(kind: str, n: int = 1) -> None:
    TRIED[kind] = TRIED.get(kind, 0) + n


def outside_snapshot(base: Path) -> dict[str, int]:
    """Every file around the project (not in it, not in the served archive), with its size."""
    state = {
        str(p.relative_to(base)): p.stat().st_size
        for p in base.rglob("*")
        if p.is_file() and p.relative_to(base).parts[0] not in ("project", "archive")
    }
    for extra in (Path("/tmp/EVIL.fits"), Path.home() / ".iopreport", Path("/EVIL.fits")):
        state[str(extra)] = extra.exists()
    return state


def result_rows(config_path: Path) -> set[tuple]:
    with sqlite3.connect(config_path.parent / "data" / "iopreport.db") as connection:
        return set(
            connection.execute(
                "SELECT s.name, r.mode, round(r.juliandate, 6), round(r.mag, 6), round(r.p, 6) "
                "FROM photo_pol_result r JOIN astro_source s ON s.id = r.astrosource_id"
            )
        )


def pages(config_path: Path) -> dict[str, str]:
    site = (config_path.parent / "site_out").resolve()
    return {
        str(p.relative_to(site)): p.read_text(encoding="utf-8", errors="replace")
        for p in site.rglob("*.html")
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The served archive, the project after a clean first night, and the baseline."""
    base = tmp_path_factory.mktemp("corpus")
    archive = simulate(base / "archive", (TELESCOPE,))
    evil = archive / TELESCOPE / "EVIL.fits"  # what a traversal would fetch
    evil.write_bytes(b"SIMPLE  =                    T" + b" " * 2850)
    with FtpTestServer(archive / TELESCOPE) as server:
        config_path = make_project(base / "project", {TELESCOPE: server.archive_table()})
        for args in (
            ("fetch", "--night", NIGHT.isoformat()),
            ("reduce", "--night", NIGHT.isoformat()),
            ("build",),
            ("summary", "--night", NIGHT.isoformat(), "--dry-run"),
        ):
            code, out, err = run(config_path, *args)
            assert code == 0, (args, err)
        baseline = {
            "results": result_rows(config_path),
            "pages": set(pages(config_path)),
            "outside": outside_snapshot(base),
        }
        assert baseline["results"] and baseline["pages"]
        yield {
            "base": base,
            "archive": archive / TELESCOPE,
            "config": config_path,
            "server": server,
            "baseline": baseline,
        }


def test_hostile_listings(world):
    server, config_path = world["server"], world["config"]
    lines = corpus.listing_faults()
    server.extra_lines = {FOLDER: [item.content for item in lines]}
    try:
        code, out, err = run(config_path, "fetch", "--night", NIGHT.isoformat())
    finally:
        server.extra_lines = {}
    count("listing", len(lines))
    match = re.search(r"(\d+) copied, (\d+) already present, (\d+) failed, (\d+) listing", out)
    assert match, out + err
    copied, present, failed, refused = (int(g) for g in match.groups())
    assert copied == 0 and present > 0
    assert failed + refused == len(lines), out  # each line: refused, or failed with a reason
    assert code == 1  # the lines naming files that are not there fail, and say so

    server.endless = True
    try:
        code, out, err = run(config_path, "fetch", "--night", NIGHT.isoformat())
    finally:
        server.endless = False
    count("listing")
    assert code == 1 and "listing abandoned" in out, out + err


def test_hostile_fits_files(world):
    archive, config_path = world["archive"] / FOLDER.strip("/"), world["config"]
    template = next(p for p in sorted(archive.iterdir()) if p.name.endswith("R.fit"))
    items = corpus.fits_faults(template)
    names = {}
    for index, item in enumerate(items):
        name = f"hostile-{index:03d}.fits"
        (archive / name).write_bytes(item.content)
        names[name] = item.label
    count("fits", len(items))
    try:
        code, out, err = run(config_path, "fetch", "--night", NIGHT.isoformat())
        assert code == 0, out + err
        code, out, err = run(config_path, "reduce", "--night", NIGHT.isoformat())
        assert code in (0, 1), "\n".join(TRACEBACKS[-1:]) or err
    finally:
        for name in names:
            (archive / name).unlink()
    with sqlite3.connect(config_path.parent / "data" / "iopreport.db") as connection:
        rows = {
            filename: (flags, error, reduced, reduced_error)
            for filename, flags, error, reduced, reduced_error in connection.execute(
                "SELECT r.filename, r.flags, r.error, f.id, f.error FROM raw_fit r "
                "LEFT JOIN reduced_fit f ON f.rawfit_id = r.id WHERE r.filename LIKE 'hostile-%'"
            )
        }
    without_reason = []
    for name, label in names.items():
        flags, error, reduced, reduced_error = rows[name]
        accepted = reduced is not None or flags & 2  # classified: a frame like any other
        if not (error or reduced_error or accepted):
            without_reason.append(label)
        if label != "duplicate content" and "duplicate of" in (error or ""):
            without_reason.append(f"{label}: called a duplicate")
    assert without_reason == []
    duplicate = next(n for n, label in names.items() if label == "duplicate content")
    assert rows[duplicate][1].startswith("duplicate of")
    for label in ("JD = 1000000000000.0", "EXPTIME = 0.0", "XBINNING = 0", "zero bytes"):
        name = next(n for n, text in names.items() if text == label)
        assert rows[name][1], label  # refused at classification, with the reason stored
    assert world["baseline"]["results"] <= result_rows(config_path)


def _build_fails_naming(config_path: Path, what: str, expect: str | None) -> str:
    code, out, err = run(config_path, "build")
    if code != 2 or "iopreport: error:" not in err or (expect and expect not in err):
        return f"{what}: exit {code}: {err.strip()[-300:]}"
    return ""


def test_hostile_config_files(world):
    config_path = world["config"]
    text = config_path.read_text()
    problems = []
    items = corpus.config_faults(text)
    for index, item in enumerate(items):
        hostile = config_path.parent / f"hostile-{index:03d}.toml"
        if isinstance(item.content, bytes):
            hostile.write_bytes(item.content)
        else:
            hostile.write_text(item.content, encoding="utf-8")
        key = item.label.split(" ")[0] if "." in item.label.split(" ")[0] else None
        problems.append(_build_fails_naming(hostile, item.label, key and key.split(".")[-1]))
        hostile.unlink()
    count("config", len(items))
    assert [p for p in problems if p] == []


ACCEPTED_CATALOG = {
    f"name = {json.dumps(corpus.MARKUP)}"
}  # a valid, if unkind, name: escaped on pages


def test_hostile_catalog_and_flags_files(world):
    config_path = world["config"]
    catalog_path = config_path.parent / "catalog.toml"
    flags_path = config_path.parent / "flags.toml"
    catalog_text, flags_text = catalog_path.read_text(), flags_path.read_text()
    problems = []
    catalog_items = corpus.catalog_faults(catalog_text)
    try:
        for item in catalog_items:
            catalog_path.write_text(item.content)
            if item.label in ACCEPTED_CATALOG:
                code, out, err = run(config_path, "build")
                problems.append("" if code == 0 else f"{item.label}: {err[-300:]}")
            else:
                problems.append(_build_fails_naming(config_path, item.label, "catalog.toml"))
    finally:
        catalog_path.write_text(catalog_text)
    flag_items = corpus.flags_faults()
    try:
        for item in flag_items:
            flags_path.write_text(item.content)
            problems.append(_build_fails_naming(config_path, item.label, "flags.toml"))
    finally:
        flags_path.write_text(flags_text)
    count("catalog", len(catalog_items))
    count("flags", len(flag_items))
    assert [p for p in problems if p] == []


def test_markup_and_control_characters_stay_inert(world):
    config_path = world["config"]
    flags_path = config_path.parent / "flags.toml"
    items = corpus.text_faults()
    original = flags_path.read_text()
    try:
        for item in items:
            flags_path.write_text(original + "\n" + item.content)
            code, out, err = run(config_path, "build")
            assert code == 0, err
        code, out, err = run(config_path, "summary", "--night", NIGHT.isoformat(), "--dry-run")
        assert code == 0, err
    finally:
        flags_path.write_text(original)
    count("text", len(items))
    written = pages(config_path)
    for folder in (config_path.parent / "outbox", config_path.parent / "data" / "summaries"):
        written.update(
            {str(p): p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()}
        )
    live = re.compile(r"<script>\s*alert\(")
    assert [name for name, text in written.items() if live.search(text)] == []
    assert [name for name, text in written.items() if "\x1b" in text] == []
    reasons = "".join(written.values())
    assert "&lt;script&gt;alert" in reasons or "\\u003cscript\\u003e" in reasons


def test_nothing_outside_and_the_site_intact(world, capsys):
    config_path = world["config"]
    code, out, err = run(config_path, "build")
    assert code == 0, err
    baseline = world["baseline"]
    assert outside_snapshot(world["base"]) == baseline["outside"]
    assert baseline["results"] <= result_rows(config_path)
    assert baseline["pages"] <= set(pages(config_path))
    log_text = (config_path.parent / "data" / "logs" / "iopreport.log").read_text()
    assert "Traceback" not in log_text
    assert TRACEBACKS == []
    total = sum(TRIED.values())
    with capsys.disabled():
        print(f"\nfault corpus: {total} hostile inputs tried ({TRIED}), 0 tracebacks")
    assert total >= 200
