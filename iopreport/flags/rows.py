"""Plain SQL the flag writers share: rows as tuples, stored reason texts, one batched UPDATE.

A build reads and writes every result of the store, so these skip peewee's
per-field conversion: :func:`raw_rows` returns the driver's tuples and
:func:`update_results` writes the changed rows with one ``executemany``.
"""

from __future__ import annotations

import json

from iopreport.store.models import PhotoPolResult, database_proxy


def raw_rows(query):
    """Rows of ``query`` as plain tuples straight from SQLite (no per-field conversion)."""
    return database_proxy.execute(query)


def reason_list(text) -> list[str]:
    """The texts of a stored ``flag_reasons`` value (JSON text, or already a list)."""
    if not text or text == "[]":
        return []
    return json.loads(text) if isinstance(text, str) else list(text)


def update_results(rows: list[tuple], columns: tuple[str, ...]) -> None:
    """``UPDATE photo_pol_result SET <columns> WHERE id = ?`` for every row (values..., id)."""
    if not rows:
        return
    meta = PhotoPolResult._meta
    mark = database_proxy.param  # the driver's placeholder: ? (SQLite) or %s (PostgreSQL)
    names = ", ".join(f'"{meta.fields[c].column_name}" = {mark}' for c in columns)
    sql = f'UPDATE "{meta.table_name}" SET {names} WHERE "id" = {mark}'
    reasons = meta.fields["flag_reasons"]
    prepared = []
    for *values, rid in rows:
        converted = (
            reasons.db_value(v) if c == "flag_reasons" else v
            for c, v in zip(columns, values, strict=True)
        )
        prepared.append((*converted, rid))
    cursor = database_proxy.cursor()
    cursor.executemany(sql, prepared)
