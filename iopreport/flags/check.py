"""``flags check`` and ``flags list``: what a flags file means against the store now.

:func:`iopreport.flags.parse.load_flags` already rejects unknown keys, bad
dates, unknown sources and bad values (the first one, with its line). Here
come the checks that need the store: raw files the store and the raw data
folder do not know, and flags that select nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iopreport.flags.manual import Evaluation, evaluate
from iopreport.flags.model import Flag, FlagSet
from iopreport.store.models import Epoch, RawFit


@dataclass(frozen=True)
class Problem:
    """One problem of a flags file, located like an InputError."""

    path: Path
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else f"{self.path}"
        return f"{where}: {self.key}: {self.message}"


def _known_file(pattern: str, raw_dir: Path | None) -> bool:
    if "/" in pattern:
        telescope, night, name = pattern.split("/")
        in_store = (
            RawFit.select()
            .join(Epoch)
            .where(
                (RawFit.filename == name) & (Epoch.telescope == telescope) & (Epoch.night == night)
            )
            .exists()
        )
        return in_store or bool(raw_dir and (raw_dir / pattern).is_file())
    if RawFit.select().where(RawFit.filename == pattern).exists():
        return True
    return bool(raw_dir and any(raw_dir.glob(f"*/*/{pattern}")))


def check_flags(
    flagset: FlagSet, *, raw_dir: Path | None = None, evaluation: Evaluation | None = None
) -> list[Problem]:
    """Problems of an already loaded flag set against the open store, in file order.

    Parameters
    ----------
    flagset : FlagSet
        From :func:`~iopreport.flags.parse.load_flags`.
    raw_dir : Path, optional
        ``<datadir>/raw``: a file found there but not yet in the store is known.
    evaluation : Evaluation, optional
        A ready :func:`~iopreport.flags.manual.evaluate` of ``flagset``.
    """
    evaluation = evaluation or evaluate(flagset)
    problems = []
    for index, flag in enumerate(flagset):
        key = f"flag[{index}]"
        for pattern in flag.file:
            if not _known_file(pattern, raw_dir):
                problems.append(
                    Problem(
                        flagset.path,
                        flag.line,
                        f"{key}.file",
                        f"unknown raw file {pattern!r}: not in the store nor in {raw_dir}",
                    )
                )
        matches = evaluation.matches[flag.id]
        if matches.empty:
            kinds = " or ".join(
                {"photometry": "result", "polarimetry": "polarimetric result", "frame": "frame"}[w]
                for w in flag.what
            )
            problems.append(
                Problem(
                    flagset.path,
                    flag.line,
                    key,
                    f"flag {flag.id} selects no {kinds} in the store ({flag.selectors_text()})",
                )
            )
    return problems


def _members_text(members_key: str) -> str:
    members = members_key.split("\n")
    if len(members) == 1:
        return members[0]
    return f"{members[0]} (+{len(members) - 1} more)"


def describe_flag(flag: Flag, path: Path) -> str:
    """First lines of ``flags list`` for one flag."""
    where = f"{path.name}:{flag.line}" if flag.line else path.name
    return (
        f"{flag.id}  ({where})  bad {'+'.join(flag.what)}: {flag.selectors_text()}\n"
        f"    {flag.reason} ({flag.author}, {flag.date.isoformat()})"
    )


def list_text(flagset: FlagSet, evaluation: Evaluation, *, details: bool = False) -> str:
    """What each flag selects now, as ``flags list`` prints it."""
    if not len(flagset):
        return f"{flagset.path}: no flags"
    blocks = []
    for flag in flagset:
        matches = evaluation.matches[flag.id]
        modes = {"photometry": 0, "polarimetry": 0}
        for _source, mode, _key in matches.results:
            modes[mode] = modes.get(mode, 0) + 1
        lines = [describe_flag(flag, flagset.path)]
        counts = f"{modes['photometry']} photometry, {modes['polarimetry']} polarimetry"
        parts = []
        if {"photometry", "polarimetry"} & set(flag.what):
            parts.append(f"selects {len(matches.results)} results ({counts})")
        if flag.is_frame_flag:
            parts.append(
                f"excludes {len(matches.frames)} frames "
                f"(members of {len(matches.frame_results)} results now)"
            )
        lines.append("    " + "; ".join(parts))
        if details:
            lines += [
                f"      {source}  {mode}  {_members_text(key)}"
                for source, mode, key in matches.results
            ]
            lines += [f"      frame {loc}" for loc in matches.frames]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
