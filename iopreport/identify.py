"""Which catalog source a frame is pointed at, from its OBJECT keyword.

The reference matches substrings and can pick an arbitrary source for a bare
"+" (IOP4's instrument classes). Here names are compared whole after
folding case and dropping spaces, '-', '+' and '_'; a prefix match (DIPOL's
"S50716" for "S5 0716+714") is accepted only when it is unique and at least
five characters long.
"""

from __future__ import annotations

import re

_DROP = re.compile(r"[\s\-+_]")
MIN_PREFIX = 5


def fold(text: str) -> str:
    """Case-folded name without spaces, '-', '+' or '_'."""
    return _DROP.sub("", text).casefold()


def identify_target(object_name: str, sources) -> str | None:
    """Name of the catalog source ``object_name`` designates, or None.

    ``sources`` are catalog entries with ``name``, ``other_names`` and
    ``srctype``; calibrators are never targets.
    """
    candidates = [s for s in sources if s.srctype != "calibrator"]
    text = object_name.strip()
    if not text:
        return None
    # the whole OBJECT first ("BL Lac"), then its first word ("1652+398 0.0 deg" at CAFOS)
    for wanted in dict.fromkeys((fold(text), fold(text.split()[0]))):
        found = _match(wanted, candidates)
        if found:
            return found
    return None


def _match(wanted: str, candidates) -> str | None:
    if len(wanted) < 3:
        return None
    for source in candidates:
        if any(fold(n) == wanted for n in (source.name, *source.other_names)):
            return source.name
    if len(wanted) >= MIN_PREFIX:
        matches = {
            source.name
            for source in candidates
            for n in (source.name, *source.other_names)
            if fold(n).startswith(wanted)
        }
        if len(matches) == 1:
            return matches.pop()
    return None
