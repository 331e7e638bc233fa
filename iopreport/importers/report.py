"""The report of an import: counts per kind, conflicts and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("sources", "links", "flags", "results")
#: Order of the counts in the report.
ORDER = ("new", "updated", "unchanged", "conflicts", "imported")


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    database: Path
    migrations: tuple[str, ...]
    counts: dict[str, dict[str, int]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def count(self, kind: str, what: str, n: int = 1) -> None:
        self.counts[kind][what] = self.counts[kind].get(what, 0) + n

    def text(self, *, dry_run: bool) -> str:
        """Counts per kind, then every conflict and note."""
        verb = "would be" if dry_run else "were"
        lines = [
            f"{self.database}: IOP4 database (migrations {', '.join(self.migrations)})"
            + (" — dry run, nothing written" if dry_run else "")
        ]
        for kind in KINDS:
            counts = self.counts[kind]
            order = [w for w in ORDER if w in counts] + [w for w in counts if w not in ORDER]
            parts = ", ".join(f"{counts[what]} {what}" for what in order if counts[what])
            if parts:
                lines.append(f"  {kind}: {parts}")
        if self.conflicts:
            lines.append(f"{len(self.conflicts)} conflicts (left as they are):")
            lines += [f"  {c}" for c in self.conflicts]
        if self.notes:
            lines.append("notes:")
            lines += [f"  {n}" for n in self.notes]
        if not dry_run:
            lines.append(
                f"written: {', '.join(self.written)}" if self.written else "nothing to write"
            )
        elif any(self.counts[k].get("new") or self.counts[k].get("updated") for k in KINDS):
            lines.append(f"(the counts say what {verb} written)")
        return "\n".join(lines)
