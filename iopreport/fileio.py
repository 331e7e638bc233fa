"""File writing that never leaves a half-written file behind; paths kept inside their folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from pathlib import Path

#: Longest file name accepted from outside (NAME_MAX of Linux file systems, in bytes).
NAME_MAX_BYTES = 255


class UnsafeNameError(ValueError):
    """A name from outside (an archive listing, a header) that must not become a path."""


def check_name(name: object) -> str:
    """Return ``name`` if it is safe as one file name inside a folder; else raise.

    Refused: non-strings and undecodable bytes (surrogate escapes), empty names,
    ``.`` and ``..``, any ``/`` or ``\\``, NUL and other control characters
    (Unicode category C*), leading or trailing white space, and names longer
    than :data:`NAME_MAX_BYTES` in UTF-8.

    Raises
    ------
    UnsafeNameError
        With the reason (the name is shown with ``repr``, so control characters
        stay visible and inert).
    """
    if not isinstance(name, str):
        raise UnsafeNameError(f"{name!r}: not a text name")
    if not name or name in (".", ".."):
        raise UnsafeNameError(f"{name!r}: not a file name")
    if "/" in name or "\\" in name:
        raise UnsafeNameError(f"{name!r}: contains a path separator")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise UnsafeNameError(f"{name!r}: contains control or undecodable characters")
    if name != name.strip():
        raise UnsafeNameError(f"{name!r}: begins or ends with white space")
    if len(name.encode("utf-8")) > NAME_MAX_BYTES:
        raise UnsafeNameError(f"{name[:40]!r}...: longer than {NAME_MAX_BYTES} bytes")
    return name


def path_inside(folder: Path | str, *parts: str) -> Path:
    """``folder/parts...``, refused unless it stays inside ``folder`` (symbolic links resolved).

    Every part must pass :func:`check_name`; the resolved result must lie
    below the resolved ``folder``.

    Raises
    ------
    UnsafeNameError
        A part is not a safe name, or the path leaves ``folder``.
    """
    folder = Path(folder)
    for part in parts:
        check_name(part)
    path = folder.joinpath(*parts)
    base = folder.resolve()
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafeNameError(f"{path}: leaves {folder}")
    return path


def write_bytes_atomic(path: Path | str, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    ``mode`` sets the permissions of the result (None keeps the temporary file's 0o600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(
    path: Path | str, text: str, *, encoding: str = "utf-8", mode: int | None = None
) -> None:
    """:func:`write_bytes_atomic` of ``text`` encoded with ``encoding``."""
    write_bytes_atomic(path, text.encode(encoding), mode=mode)


def ensure_dir(path: Path | str, mode: int) -> Path:
    """Create ``path`` (and its parents) if needed and give ``path`` itself ``mode``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def create_private(path: Path | str, mode: int = 0o600) -> None:
    """Create an empty ``path`` with ``mode`` unless it exists (an existing file is left alone)."""
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    except FileExistsError:
        return
    os.close(handle)


def file_stamp(status: os.stat_result) -> str:
    """Size, modification and status-change times (ns) and inode of a file's ``stat``, as text.

    A file whose stamp is unchanged still holds the bytes it held when the
    stamp was taken: writing the file, replacing it (a new inode) or touching
    its times changes the status-change time, which no program can set
    (POSIX ``stat``; git's index and rsync trust the same fields). The stamp is
    kept beside a raw file's SHA-256 so that the file is not read again to
    know it is unchanged.
    """
    return f"{status.st_size}:{status.st_mtime_ns}:{status.st_ctime_ns}:{status.st_ino}"


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, as hex (raw files are identified by it)."""
    # hashlib.file_digest reads into one reused buffer (a third less processor time
    # than reading blocks into new bytes objects)
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
