"""config.toml: the shipped file loads, lookup order, and every error names key and line."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from iopreport.config import CONFIG_ENV, load_config
from iopreport.errors import EXIT_USAGE, InputError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_loads(repo_root):
    config = load_config(repo_root / "config.toml")
    assert config.source == (repo_root / "config.toml").resolve()
    assert config.paths.datadir == Path("~/.iopreport").expanduser()
    assert config.database_path == config.paths.datadir / "iopreport.db"
    assert config.paths.catalog == repo_root / "catalog.toml"
    assert set(config.archives) == {"OSN-T090", "OSN-T150", "CAHA-T220"}
    assert config.archives["CAHA-T220"].protocol == "sftp"
    assert config.archives["CAHA-T220"].effective_port == 22
    assert config.archives["OSN-T090"].encoding == "latin-1"
    assert config.smtp.sender == "iopreport@localhost"
    assert config.schedule.timezone == "Europe/Madrid"
    assert config.processing.workers == 2


def test_config_is_frozen(repo_root):
    config = load_config(repo_root / "config.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.processing.workers = 8  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.archives["X"] = None  # type: ignore[index]


def test_every_key_of_the_shipped_config_is_commented(repo_root):
    """Each key line has a comment on it or in the comment block right above it."""
    lines = (repo_root / "config.toml").read_text().splitlines()
    first_seen: dict[str, int] = {}
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "[")):
            continue
        key = stripped.split("=")[0].strip()
        first_seen.setdefault(key, number)
    for key, number in first_seen.items():
        above = lines[number - 1].strip() if number else ""
        assert "#" in lines[number] or above.startswith("#"), f"key {key!r} has no comment"


def test_empty_file_gives_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.paths.site_dir == tmp_path / "site_out"
    assert config.archives == {}
    assert config.subscribers == ()
    assert config.smtp.effective_port == 25


def test_relative_paths_are_relative_to_the_file(tmp_path):
    config = load_config(
        write(
            tmp_path,
            '[paths]\ndatadir = "d"\ndatabase = "db/x.db"\n'
            '[archives.OSN-T090]\nprotocol = "local"\nroot = "archive"\n',
        )
    )
    assert config.paths.datadir == tmp_path / "d"
    assert config.database_path == tmp_path / "db" / "x.db"
    assert config.archives["OSN-T090"].root == str(tmp_path / "archive")


def test_subscribers_and_smtp(tmp_path, monkeypatch):
    text = """
[smtp]
host = "mail.example.org"
security = "starttls"
user = "bot"
password_env = "MY_SMTP_PASSWORD"
from = "IOP <iop@example.org>"

[[subscribers]]
name = "group"
to = ["a@example.org", "B <b@example.org>"]
bcc = ["c@example.org"]
sources = ["2200+420"]

[[subscribers]]
name = "alerts"
to = ["d@example.org"]
alerts_only = true
"""
    monkeypatch.setenv("MY_SMTP_PASSWORD", "s3cret")
    config = load_config(write(tmp_path, text))
    assert config.smtp.effective_port == 587
    assert config.smtp.sender == "IOP <iop@example.org>"
    assert [s.name for s in config.subscribers] == ["group", "alerts"]
    assert config.subscribers[0].bcc == ("c@example.org",)
    assert config.subscribers[1].alerts_only is True


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("[paths]\ndatadri = 'x'\n", 2, "paths.datadri: unknown key (did you mean 'datadir'?)"),
        (
            "[proccessing]\nworkers = 2\n",
            1,
            "proccessing: unknown key (did you mean 'processing'?)",
        ),
        (
            "[processing]\nworkers = 'four'\n",
            2,
            "processing.workers: must be an integer, got a string",
        ),
        ("[processing]\nworkers = 0\n", 2, "processing.workers: must be greater than 0"),
        ("[processing]\nworkers = true\n", 2, "processing.workers: must be an integer"),
        (
            "[archives.OSN-T090]\nprotocol = 'ftp'\nhost = 'h'\nport = 70000\n",
            4,
            "archives.OSN-T090.port: must be a TCP port",
        ),
        (
            "[archives.OSN-T090]\nprotocol = 'http'\n",
            2,
            "archives.OSN-T090.protocol: must be one of 'ftp'",
        ),
        (
            "[archives.OSN-T090]\nhost = 'h'\n",
            1,
            "archives.OSN-T090.protocol: required key is missing",
        ),
        (
            "[archives.OSN-T090]\nprotocol = 'ftp'\n",
            1,
            "archives.OSN-T090.host: ftp archive needs a host",
        ),
        ("[archives.T999]\nprotocol = 'ftp'\n", 1, "archives.T999: unknown telescope"),
        (
            "[archives.OSN-T090]\nprotocol = 'ftp'\nhost = 'h'\npassword = 'hunter2'\n",
            4,
            "archives.OSN-T090.password: never write a password in config.toml",
        ),
        (
            "[archives.OSN-T090]\nprotocol = 'ftp'\nhost = 'h'\npassword_env = 'hunter 2!'\n",
            4,
            "must be the NAME of an environment variable",
        ),
        (
            "[archives.OSN-T090]\nprotocol = 'ftp'\nhost = 'h'\nfile_patterns = ['(unclosed']\n",
            4,
            "archives.OSN-T090.file_patterns: invalid regular expression",
        ),
        ("[smtp]\npassword = 'x'\n", 2, "smtp.password: never write a password"),
        (
            "[smtp]\nsecurity = 'ssl'\n",
            2,
            "smtp.security: must be one of 'none', 'starttls', 'tls'",
        ),
        ("[smtp]\nfrom = 'not an address'\n", 2, "smtp.from: not an e-mail address"),
        (
            "[schedule]\nsummary_time = '8am'\n",
            2,
            "schedule.summary_time: must be a local time HH:MM",
        ),
        ("[schedule]\ntimezone = 'Mars/Olympus'\n", 2, "schedule.timezone: unknown time zone"),
        ("[logging]\nlevel = 'LOUD'\n", 2, "logging.level: must be one of DEBUG"),
        ("[[subscribers]]\nname = 'x'\n", 1, "subscribers[0].to: required key is missing"),
        (
            "[[subscribers]]\nname = 'x'\nto = ['nobody']\n",
            3,
            "subscribers[0].to: not an e-mail address",
        ),
        ("[[subscribers]]\nname = 'x'\nto = 'a@b.org'\n", 3, "subscribers[0].to: must be an array"),
        ("paths = 3\n", 1, "paths: must be a table"),
        ("[paths]\ndatadir = 'x'\n[paths]\n", 3, "TOML syntax error"),
    ],
)
def test_errors_name_key_and_line(tmp_path, text, line, expected):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    error = caught.value
    assert error.exit_code == EXIT_USAGE
    assert error.line == line, str(error)
    assert str(error).startswith(f"{path.resolve()}:{line}: "), str(error)
    assert expected in str(error)


def test_lookup_order(tmp_path, monkeypatch):
    explicit = tmp_path / "a" / "config.toml"
    from_env = tmp_path / "b" / "config.toml"
    in_cwd = tmp_path / "c" / "config.toml"
    for path, workers in ((explicit, 1), (from_env, 2), (in_cwd, 3)):
        path.parent.mkdir()
        path.write_text(f"[processing]\nworkers = {workers}\n")
    monkeypatch.chdir(in_cwd.parent)
    monkeypatch.setenv(CONFIG_ENV, str(from_env))
    assert load_config(explicit).processing.workers == 1
    assert load_config().processing.workers == 2
    monkeypatch.delenv(CONFIG_ENV)
    assert load_config().processing.workers == 3
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="no configuration found"):
        load_config()


def test_password_comes_from_the_named_environment_variable(tmp_path, monkeypatch):
    path = write(
        tmp_path, "[archives.OSN-T150]\nprotocol='ftp'\nhost='h'\npassword_env='T150_PW'\n"
    )
    archive = load_config(path).archives["OSN-T150"]
    assert archive.password() == ""
    monkeypatch.setenv("T150_PW", "pw")
    assert archive.password() == "pw"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[[subscribers]]\nname = 'x'\nto = []\n",
            "subscribers[0].to: must list at least one address",
        ),
        (
            "[[subscribers]]\nname = 'x'\nto = ['a@b.org']\n"
            "[[subscribers]]\nname = 'x'\nto = ['c@d.org']\n",
            "subscribers[1].name: subscriber name 'x' is used twice",
        ),
        (
            "[archives.OSN-T090]\nprotocol = 'ftp'\nhost = 'h'\nencoding = 'klingon'\n",
            "archives.OSN-T090.encoding: unknown text encoding 'klingon'",
        ),
    ],
)
def test_more_value_checks(tmp_path, text, expected):
    with pytest.raises(InputError, match=re.escape(expected)):
        load_config(write(tmp_path, text))
