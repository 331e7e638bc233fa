"""``iopreport catalog suggest``: comparison stars for a new target from PS1 and Gaia.

:mod:`~iopreport.suggest.query` asks the services (the only network use),
:mod:`~iopreport.suggest.rules` chooses the stars, :mod:`~iopreport.suggest.block`
writes the catalog.toml entries.
"""

from __future__ import annotations

from iopreport.suggest.block import suggestion_toml
from iopreport.suggest.rules import DEFAULT_RADIUS_ARCMIN, Choice, Rules, choose

__all__ = ["Choice", "Rules", "choose", "suggest", "suggestion_toml"]


def suggest(
    name: str,
    ra: float,
    dec: float,
    *,
    radius_arcmin: float = DEFAULT_RADIUS_ARCMIN,
    target_r: float | None = None,
    count: int = 5,
    gaia_tap: str | None = None,
) -> tuple[Choice, str]:
    """Query PS1 and Gaia around (ra, dec), choose the stars; the choice and the TOML."""
    from iopreport.suggest.query import GAIA_TAP_URL, query_gaia, query_panstarrs

    rules = Rules(radius_arcmin=radius_arcmin)
    # the isolation rule looks just beyond the field's edge too
    margin = radius_arcmin + rules.isolation_arcsec / 60.0
    stars = query_panstarrs(ra, dec, margin)
    gaia = query_gaia(ra, dec, margin, gaia_tap or GAIA_TAP_URL)
    choice = choose(stars, gaia, ra, dec, target_r=target_r, count=count, rules=rules)
    return choice, suggestion_toml(name, ra, dec, choice, rules)
