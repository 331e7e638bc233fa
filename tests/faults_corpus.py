"""Hostile inputs for the fault corpus test (tests/test_fault_corpus.py).

Each generator returns :class:`Hostile` items: what the input is (its kind
and a label) and its content. Nothing here runs iopreport; the test feeds the
inputs through the real commands.
"""

from __future__ import annotations

import dataclasses
import json
import random
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

#: Markup that must never reach a page or a mail unescaped.
MARKUP = '<script>alert("iop")</script>'
#: A terminal escape and other control characters.
CONTROL = "\x1b[31m\x07\x08"


@dataclass(frozen=True)
class Hostile:
    """One hostile input."""

    kind: str  # fits | listing | config | catalog | flags | text
    label: str
    content: typing.Any  # bytes for files, str/bytes for listing lines, text for TOML


# -- FITS ---------------------------------------------------------------------------------


def _with(template: Path, change) -> bytes:
    with fits.open(template) as hdul:
        header = hdul[0].header.copy()
        data = hdul[0].data.copy()
    data, header = change(data, header)
    hdu = fits.PrimaryHDU(data, header=header)
    from io import BytesIO

    stream = BytesIO()
    hdu.writeto(stream, output_verify="silentfix")
    return stream.getvalue()


def _keyword(key: str, value):
    def change(data, header):
        if value is None:
            header.remove(key, ignore_missing=True)
        else:
            header[key] = _placeholder(value)
        return data, header

    return change


def _placeholder(value):
    """Control characters, which astropy will not write, as '~' (patched in by _patched)."""
    if isinstance(value, str):
        return "".join("~" if ord(c) < 32 or ord(c) == 127 else c for c in value)
    return value


def _patched(content: bytes, value) -> bytes:
    if not isinstance(value, str) or _placeholder(value) == value:
        return content
    return content.replace(_placeholder(value).encode(), value.encode("latin-1"), 1)


def fits_faults(template: Path) -> list[Hostile]:
    """Hostile FITS files built from a real light frame of the simulated night."""
    raw = template.read_bytes()
    rng = random.Random(18)
    items = [
        Hostile("fits", "zero bytes", b""),
        Hostile("fits", "text with a FITS name", b"this is not a FITS file\n" * 10),
        Hostile("fits", "PNG with a FITS name", b"\x89PNG\r\n\x1a\n" + bytes(200)),
        Hostile("fits", "random bytes", bytes(rng.getrandbits(8) for _ in range(5000))),
        Hostile("fits", "markup file", (MARKUP * 100).encode()),
        Hostile("fits", "duplicate content", raw),
    ]
    for cut in (1, 80, 2879, 2880, 2881, len(raw) // 2, len(raw) - 1):
        items.append(Hostile("fits", f"truncated at {cut} bytes", raw[:cut]))
    header_end = raw.index(b"END" + b" " * 77) + 80
    bitpix = raw[:header_end].replace(
        b"BITPIX  =                  -32", b"BITPIX  =                    8"
    )
    bitpix = bitpix.replace(b"BITPIX  =                   16", b"BITPIX  =                   64")
    items.append(Hostile("fits", "wrong BITPIX", bitpix + raw[header_end:]))
    values = {
        "JD": [1e12, -1e12, 0.0, "nan", "soon", 2400000.0],
        "EXPTIME": [0.0, -1.0, 1e12, "long", None],
        "XBINNING": [0, -4, 10**20, "two"],
        "YBINNING": [1000],
        "IMAGETYP": ["", MARKUP, CONTROL + "LIGHT", "Light Frame", None],
        "FILTER": ["", "CLEAR", MARKUP, "Z", CONTROL],
        "INSTRUME": [None, "", MARKUP, "A" * 68, "Andor" + CONTROL],
        "TELESCOP": ["Hubble", MARKUP],
        "XORGSUBF": ["left", 10**25],
    }
    for key, options in values.items():
        for value in options:
            content = _patched(_with(template, _keyword(key, value)), value)
            items.append(Hostile("fits", f"{key} = {value!r}", content))
    items += [
        Hostile(
            "fits",
            "NaN data",
            _with(template, lambda d, h: (np.full(d.shape, np.nan, np.float32), h)),
        ),
        Hostile(
            "fits",
            "Inf data",
            _with(template, lambda d, h: (np.full(d.shape, np.inf, np.float32), h)),
        ),
        Hostile("fits", "a 3-D cube", _with(template, lambda d, h: (np.stack([d, d]), h))),
        Hostile("fits", "a 1-D row", _with(template, lambda d, h: (d[0].copy(), h))),
        Hostile("fits", "OBJECT with markup", _with(template, _keyword("OBJECT", MARKUP))),
        Hostile(
            "fits",
            "huge header",
            _with(template, lambda d, h: (d, _huge(h))),
        ),
    ]
    return items


def _huge(header: fits.Header) -> fits.Header:
    for index in range(3000):
        header.add_comment(f"padding card {index} {CONTROL!r}")
    return header


# -- archive listings --------------------------------------------------------------------


def listing_faults() -> list[Hostile]:
    """MLSD lines (after a folder's real entries) that a hostile or broken server sends."""
    names = [
        "./../../../../EVIL.fits",
        "../EVIL.fits",
        "../../EVIL.fits",
        "/EVIL.fits",
        "/etc/EVIL.fits",
        "//server/EVIL.fits",
        "a/../../EVIL.fits",
        "..\\..\\EVIL.fits",
        "C:\\EVIL.fits",
        "..",
        ".",
        "EVIL\x00.fits",
        "EVIL\x01.fits",
        "EVIL\t.fits",
        "EVIL\x1b[2J.fits",
        "EVIL\x7f.fits",
        "EVIL\u202e.fits",
        " EVIL.fits",
        "EVIL.fits ",
        "E" * 300 + ".fits",
        f"<b>{MARKUP}</b>.fits",
    ]
    lines: list[Hostile] = [
        Hostile("listing", f"name {name!r}", f"type=file;size=2880; {name}") for name in names
    ]
    raw_names = [b"EVIL\xff\xfe.fits", b"\xc3\x28.fits", b"EVIL\xed\xa0\x80.fits"]
    lines += [
        Hostile("listing", f"bytes {raw!r}", b"type=file;size=2880; " + raw) for raw in raw_names
    ]
    sizes = ["abc", "-1", "1e5", "0x10", "12.5", " ", "9" * 40]
    lines += [
        Hostile("listing", f"size {size!r}", f"type=file;size={size}; size-{index}.fits")
        for index, size in enumerate(sizes)
    ]
    dates = ["abc", "99999999999999", "20241308250000", "-1", "2024"]
    lines += [
        Hostile("listing", f"modify {date!r}", f"type=file;size=2880;modify={date}; date-{i}.fits")
        for i, date in enumerate(dates)
    ]
    lines += [
        Hostile("listing", "markup name", f"type=file;size=2880; {MARKUP}.fits"),
        Hostile("listing", "listed, not there", "type=file;size=2880; ghost.fits"),
        Hostile("listing", "type=weird", "type=weird;size=10; weird.fits"),
        Hostile("listing", "no facts", "no facts here.fits"),
        Hostile("listing", "empty facts", "; nothing.fits"),
    ]
    return lines


# -- TOML ---------------------------------------------------------------------------------


def wrong_value(kind: typing.Any):
    """A TOML literal of another type than ``kind`` wants."""
    origin = typing.get_origin(kind)
    if kind is bool:
        return '"yes"'
    if kind in (int, float):
        return '"many"'
    if kind is str or kind is Path or origin is typing.Literal:
        return "12"
    if origin is tuple:
        return "5"
    if origin in (dict, typing.Mapping) or str(origin).endswith("Mapping"):
        return "1"
    return "[1, {a = 2}]"


def config_faults(config_text: str) -> list[Hostile]:
    """config.toml with one key of one section given a value of the wrong type (each key),
    non-finite numbers, unknown keys, a huge and a deeply nested file."""
    from iopreport.config import ArchiveConfig
    from iopreport.config.loading import _SECTIONS

    items = []
    for section, cls in {**_SECTIONS, "archives.OSN-T150": ArchiveConfig}.items():
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            if not item.init or item.name == "telescope":
                continue
            key = item.metadata.get("key") or item.name
            kind = hints[item.name]
            text = config_text
            items.append(
                Hostile(
                    "config",
                    f"{section}.{key} wrong type",
                    _set_key(text, section, key, wrong_value(kind)),
                )
            )
            if kind is float:
                items.append(
                    Hostile("config", f"{section}.{key} = inf", _set_key(text, section, key, "inf"))
                )
    items += [
        Hostile("config", "unknown section", config_text + "\n[hostile]\nx = 1\n"),
        Hostile("config", "deeply nested", "x = " + "[" * 5000 + "]" * 5000 + "\n"),
        Hostile("config", "huge", config_text + "\n".join(f"k{i} = {i}" for i in range(50000))),
        Hostile("config", "not UTF-8", (config_text + "\n# ").encode() + b"\xff\n"),
        Hostile("config", "binary", "\x00\x01\x02" * 100),
    ]
    return items


def _set_key(text: str, section: str, key: str, literal: str) -> str:
    """``text`` with ``key = literal`` in ``[section]`` (replacing the key if it is there)."""
    lines = text.splitlines()
    header = f"[{section}]"
    if header not in lines:
        return text + f"\n{header}\n{key} = {literal}\n"
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    for index in range(start, end):
        if lines[index].split("=")[0].strip() == key and not lines[index].startswith("#"):
            lines[index] = f"{key} = {literal}"
            return "\n".join(lines) + "\n"
    lines.insert(start, f"{key} = {literal}")
    return "\n".join(lines) + "\n"


CATALOG_VALUES = {
    "name": ["12", '""', json.dumps(MARKUP)],
    "other_names": ['"one"', "[1]"],
    "type": ["3", '"galaxy cluster"'],
    "ra": ["true", '"25:00:00"', "1e400"],
    "dec": ['"+95:00:00"', "nan"],
    "redshift": ['"far"', "-1", "inf"],
    "calibrators": ['"x"', '["nobody"]'],
    "mag": ["5", '{R = "bright"}'],
    "comment": ["[1]"],
    "references": ['"one"'],
}


def catalog_faults(catalog_text: str) -> list[Hostile]:
    """catalog.toml with one hostile source appended (one bad key each), empty, huge, nested."""
    good = '[[source]]\nname = "Hostile"\ntype = "star"\nra = "01:00:00"\ndec = "+01:00:00"\n'
    items = []
    for key, literals in CATALOG_VALUES.items():
        for literal in literals:
            entry = good.replace(f"\n{key} = ", f"\n#{key} = ") + f"{key} = {literal}\n"
            items.append(Hostile("catalog", f"{key} = {literal}", catalog_text + "\n" + entry))
    items += [
        Hostile("catalog", "empty", ""),
        Hostile("catalog", "comments only", "# nothing\n"),
        Hostile("catalog", "deeply nested", "source = " + "[" * 5000 + "]" * 5000),
        Hostile("catalog", "huge", catalog_text + good * 3000),
        Hostile("catalog", "not a table", "source = 5\n"),
    ]
    return items


FLAG_VALUES = {
    "id": ["5", '"bad id!"'],
    "what": ['"everything"', "1"],
    "source": ['"Nobody"', "[1]"],
    "night": ['"yesterday"', '"2024-13-45"'],
    "from": ['"never"', "1e400"],
    "reason": ["3", '""'],
    "author": ["[]"],
    "date": ['"2999-01-01"', "true"],
    "file": ['"../../etc/passwd"', '"/etc/passwd"', '"../2024-10-08/x.fits"', '"x\\u001b.fits"'],
    "telescope": ['"Hubble"'],
}


def flags_faults() -> list[Hostile]:
    """flags.toml with one bad key each, markup and control characters, empty, huge, nested."""
    good = (
        '[[flag]]\nid = "H1"\nwhat = "photometry"\nsource = "BL Lac"\nnight = 2024-10-08\n'
        'reason = "hostile"\nauthor = "tester"\ndate = 2024-10-09\n'
    )
    items = []
    for key, literals in FLAG_VALUES.items():
        for literal in literals:
            lines = [line for line in good.splitlines() if not line.startswith(f"{key} =")]
            items.append(
                Hostile("flags", f"{key} = {literal}", "\n".join([*lines, f"{key} = {literal}"]))
            )
    items += [
        Hostile("flags", "deeply nested", "flag = " + "[" * 5000 + "]" * 5000),
        Hostile("flags", "huge", good * 5000),
        Hostile("flags", "unknown table", "[hostile]\nx = 1\n"),
    ]
    return items


def text_faults() -> list[Hostile]:
    """Valid inputs whose text reaches pages and mails: markup and control characters."""
    reason = json.dumps(f"{MARKUP} {CONTROL}")  # a JSON string is a TOML basic string
    flag = (
        f'[[flag]]\nid = "T1"\nwhat = "photometry"\nsource = "BL Lac"\nnight = 2024-10-08\n'
        f"reason = {reason}\nauthor = {json.dumps(MARKUP)}\ndate = 2024-10-09\n"
    )
    return [Hostile("text", "flag reason and author with markup", flag)]
