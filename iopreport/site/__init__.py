"""The static site: index, per-source and per-night pages, catalog, status, summaries.

Entry point: :func:`render_site` (``iopreport build``). See docs/site.md.
"""

from iopreport.site.render import SiteReport, render_site

__all__ = ["SiteReport", "render_site"]
