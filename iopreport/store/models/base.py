"""The Peewee ground every model stands on: the database proxy, the base model, shared fields.

:data:`database_proxy` is bound to the open database by
:func:`iopreport.store.database.open_store`; :class:`BaseModel` ties every table
to it and names tables in snake case from the class name. Times are naive UTC
``datetime`` values (:func:`utcnow`).
"""

from __future__ import annotations

import datetime as dt
import json

import peewee as pw

database_proxy = pw.DatabaseProxy()


def utcnow() -> dt.datetime:
    """Current UTC time without tzinfo (how the store keeps timestamps)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class JSONField(pw.TextField):
    """A value stored as JSON text (lists and dicts of plain values)."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False
