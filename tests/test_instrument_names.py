"""An instrument is data plus hooks in instruments/: no code elsewhere compares its name."""

from __future__ import annotations

import re
from pathlib import Path

from iopreport.instruments.registry import InstrumentRegistry

PACKAGE = Path(__file__).resolve().parents[1] / "iopreport"
#: Where instrument names may be compared: their own data and hooks (the simulator's
#: header writing is in the dialects too).
ALLOWED = ("instruments",)


def comparisons(text: str, names) -> list[str]:
    """Lines that compare a value with an instrument name or look one up by name."""
    quoted = "|".join(re.escape(f'"{name}"') for name in names)
    pattern = re.compile(
        rf"(==|!=|\bin\s*\(|startswith\(|\binstrument\()\s*({quoted})|({quoted})\s*(==|!=)"
    )
    return [line.strip() for line in text.splitlines() if pattern.search(line)]


def test_the_pattern_finds_comparisons():
    names = ("DIPOL", "CAFOS")
    assert comparisons('if info.instrument == "DIPOL":', names)
    assert comparisons('spec = instrument("CAFOS")', names)
    assert comparisons('if name in ("CAFOS", "X"):', names)
    assert not comparisons('method = "dipol-16"  # DIPOL', names)


def test_no_instrument_name_is_compared_outside_instruments():
    names = InstrumentRegistry.builtin().names()
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0]
        if part in ALLOWED:
            continue
        lines = comparisons(path.read_text(encoding="utf-8"), names)
        if lines:
            found[str(path.relative_to(PACKAGE))] = lines
    assert found == {}
