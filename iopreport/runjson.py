"""The ``--json`` summaries of ``fetch``, ``reduce`` and ``build``.

Each is one JSON object on stdout, described by a JSON Schema in
``docs/schemas/`` (``fetch.schema.json``, ``reduce.schema.json``,
``build.schema.json``; ``status.schema.json`` for ``status --json``). Every
document has ``schema`` (its version, raised when a key changes meaning),
``command`` and ``ok`` (false exactly when the command exits 1).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

#: Version of the run summaries' documents.
RUN_SCHEMA = 1


def dumps(document: dict) -> str:
    """The document as printed: indented, NaN refused (JSON has none)."""
    return json.dumps(document, indent=2, allow_nan=False, default=str)


def fetch_document(results: Sequence, ok: bool) -> dict:
    """``fetch --json`` from the :class:`iopreport.archive.sync.ArchiveSync` of each archive."""
    archives = []
    for result in results:
        archives.append(
            {
                "telescope": result.telescope,
                "error": result.error,
                "nights": [
                    {
                        "night": report.night.isoformat(),
                        "copied": len(report.copied),
                        "present": len(report.present),
                        "skipped": len(report.skipped),
                        "failed": {k: v for k, v in report.failed.items() if k != "listing"},
                        "listing_error": report.listing_error,
                    }
                    for report in result.nights
                ],
                "new_files": sum(len(files) for files in result.new_files.values()),
            }
        )
    return {"schema": RUN_SCHEMA, "command": "fetch", "ok": ok, "archives": archives}


def reduce_document(reports: Sequence, missing: dict[str, str], ok: bool, night) -> dict:
    """``reduce --json`` from the :class:`iopreport.reduce.night.NightReport` of each night."""
    nights = []
    for report in reports:
        nights.append(
            {
                "telescope": report.telescope,
                "night": report.night.isoformat(),
                "files": report.files,
                "unclassified": dict(report.unclassified),
                "masters_built": report.masters_built,
                "masters_failed": dict(report.masters_failed),
                "frames_reduced": report.frames_reduced,
                "frames_skipped": report.frames_skipped,
                "frames_failed": dict(report.frames_failed),
                "results": report.results,
                "sequences": report.sequences,
                "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
            }
        )
    return {
        "schema": RUN_SCHEMA,
        "command": "reduce",
        "ok": ok,
        "night": night.isoformat(),
        "missing": dict(missing),
        "nights": nights,
    }


def build_document(report) -> dict:
    """``build --json`` from a :class:`iopreport.build.BuildReport`."""
    recomputed = report.recomputed
    site = report.rendered
    return {
        "schema": RUN_SCHEMA,
        "command": "build",
        "ok": True,
        "catalog": dict(report.catalog_counts),
        "recomputed": None
        if recomputed is None
        else {
            "reason": recomputed.reason,
            "epochs": list(recomputed.epochs),
            "photometry_results": recomputed.photometry_results,
            "sequences": recomputed.sequences,
        },
        "automatic_flags": None
        if report.automatic is None
        else {
            "results": report.automatic.results,
            "changed": report.automatic.changed,
            "counts": dict(report.automatic.counts),
        },
        "manual_flags": None
        if report.manual is None
        else {
            "flags": len(report.manual.matches),
            "results": report.manual.results,
            "flagged": report.manual.flagged,
            "frames_excluded": report.manual.frames_excluded,
            "changed": report.manual.changed,
        },
        "site": None
        if site is None
        else {
            **{
                k: v
                for k, v in dataclasses.asdict(site).items()
                if k in ("pages_rendered", "pages_kept", "sources", "nights", "full")
            },
            "output": str(site.output),
            "seconds": round(site.seconds, 3),
        },
        "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
    }
