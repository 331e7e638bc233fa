"""Registration hashes a raw file only when it may have changed since its SHA-256 was stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import pytest

from iopreport.instruments.registry import InstrumentRegistry
from iopreport.reduce import register as register_module
from iopreport.reduce.register import register
from iopreport.reduce.state import NightReport
from iopreport.simulate import simulate_night
from iopreport.store import Epoch, RawFit, RawFitFlags

#: Simulates a night: run by `make test`, not by `-m "not slow"`.
pytestmark = pytest.mark.slow

NIGHT = dt.date(2024, 10, 8)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A tiny CAHA night's raw files (simulated once for the module)."""
    (result,) = simulate_night(
        tmp_path_factory.mktemp("register"), NIGHT, telescopes=("CAHA-T220",), preset="tiny"
    )
    return result.folder


@pytest.fixture
def folder(simulated, tmp_path):
    """A writable copy of the night's raw folder."""
    copy = tmp_path / "raw"
    copy.mkdir()
    for path in simulated.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    return copy


@pytest.fixture
def hashed(monkeypatch):
    """The files registration reads to hash, in order (the real hashing still runs)."""
    names: list[str] = []
    real = register_module.sha256_of

    def counting(path):
        names.append(path.name)
        return real(path)

    monkeypatch.setattr(register_module, "sha256_of", counting)
    return names


def _register(folder, force=False):
    epoch, _ = Epoch.get_or_create(telescope="CAHA-T220", night=NIGHT)
    report = NightReport("CAHA-T220", NIGHT)
    rows = register(epoch, folder, force, report, {}, InstrumentRegistry.builtin())
    return {row.filename: row for row in rows}


def test_unchanged_files_are_not_read_again(store, folder, hashed):
    first = _register(folder)
    assert sorted(hashed) == sorted(first) and len(first) > 10
    for name, row in first.items():
        assert row.sha256 == hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert row.file_stamp and row.flags & RawFitFlags.CLASSIFIED
    hashed.clear()
    second = _register(folder)
    assert hashed == []
    assert {n: (r.sha256, r.file_stamp, r.flags) for n, r in second.items()} == {
        n: (r.sha256, r.file_stamp, r.flags) for n, r in first.items()
    }


def test_a_file_rewritten_with_its_old_size_and_times_is_hashed_again(store, folder, hashed):
    first = _register(folder)
    name = sorted(first)[0]
    path = folder / name
    status = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the pixel data's padding block
    path.write_bytes(bytes(data))
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))  # size and mtime as before
    assert path.stat().st_size == status.st_size
    hashed.clear()
    second = _register(folder)
    assert hashed == [name]
    assert second[name].sha256 == hashlib.sha256(bytes(data)).hexdigest() != first[name].sha256
    assert RawFit.get_by_id(first[name].id).sha256 == second[name].sha256


def test_force_hashes_every_file_again(store, folder, hashed):
    first = _register(folder)
    hashed.clear()
    _register(folder, force=True)
    assert sorted(hashed) == sorted(first)


def test_a_stored_checksum_without_a_stamp_is_checked(store, folder, hashed):
    """Rows from before the stamp (or from an importer) are hashed once, then trusted."""
    first = _register(folder)
    RawFit.update(file_stamp=None).execute()
    hashed.clear()
    second = _register(folder)
    assert sorted(hashed) == sorted(first)
    assert all(row.file_stamp for row in second.values())
    hashed.clear()
    _register(folder)
    assert hashed == []
