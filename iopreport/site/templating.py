"""The Jinja2 environment of the site's pages, and its filters.

Autoescaping is on for every template; ``fmt`` writes a value for a table cell,
``script_json`` writes data into a ``<script>`` element so that no string in it
can close the element.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
from markupsafe import Markup

from iopreport import __version__

#: Templates of the pages (compiled before worker processes are forked).
PAGE_TEMPLATES = (
    "index.html",
    "source.html",
    "night.html",
    "catalog.html",
    "status.html",
    "summaries.html",
)


def script_json(value) -> Markup:
    """JSON that is safe inside ``<script>`` (``<``, ``>``, ``&``, ``'`` and U+2028/9 escaped).

    ``</script>`` inside a string can then never close the element.
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("'", "\\u0027"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return Markup(text)


def _fmt(value, digits: int = 3, empty: str = "—") -> str:
    if value is None or value == "":
        return empty
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def jinja_environment(templates: list[Path]) -> jinja2.Environment:
    """The pages' Jinja2 environment over ``templates`` (first folder wins), with the filters."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in templates]),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["fmt"] = _fmt
    environment.filters["script_json"] = script_json
    environment.globals["site_version"] = __version__
    return environment
