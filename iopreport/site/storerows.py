"""Rows read from the store for the site's pages, and their numbers made fit for JSON.

The context modules (:mod:`.sourcecontext`, :mod:`.indexcontext`,
:mod:`.nightcontext`, :mod:`.statuscontext`) read with :func:`sql_rows`; JSON has
no NaN, so :func:`rounded` and :func:`scaled` give None for non-finite values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from iopreport.store.models import database_proxy


def sql_rows(query: str, params: Sequence = ()) -> list[tuple]:
    """Every row of ``query`` run with ``params`` on the open store."""
    return database_proxy.execute_sql(query, params).fetchall()


def _clean(value):
    """None for NaN and infinities (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rounded(value, digits: int):
    """``value`` rounded to ``digits``; None for None, NaN and infinities."""
    value = _clean(value)
    return None if value is None else round(value, digits)


def scaled(value, factor: float, digits: int):
    """``value * factor`` rounded to ``digits``; None for None, NaN and infinities."""
    value = _clean(value)
    return None if value is None else round(value * factor, digits)
