"""Telescopes and instruments iopreport knows, with the names the store uses.

Names follow the IOP4 reference (IOP4's data model "Enums", §3), except
CAFOS, which IOP4 calls ``CAFOS2.2``; iopreport writes ``CAFOS`` and accepts
the old spelling when reading.
"""

from __future__ import annotations

#: Telescope names as stored in ``Epoch.telescope`` (IOP4's telescope classes).
TELESCOPES: tuple[str, ...] = ("OSN-T090", "OSN-T150", "CAHA-T220")

#: Short forms accepted on the command line (IOP4's abbreviations).
TELESCOPE_ALIASES: dict[str, str] = {"T090": "OSN-T090", "T150": "OSN-T150", "T220": "CAHA-T220"}

#: Photometric bands (Johnson-Cousins), in wavelength order.
BANDS: tuple[str, ...] = ("U", "B", "V", "R", "I")


def telescope_name(text: str) -> str:
    """Full telescope name from a full name or an abbreviation (``T090``)."""
    name = TELESCOPE_ALIASES.get(text.upper(), text)
    if name not in TELESCOPES:
        known = ", ".join((*TELESCOPES, *TELESCOPE_ALIASES))
        raise ValueError(f"unknown telescope {text!r}; known: {known}")
    return name


#: Geodetic latitude (deg, North +), longitude (deg, East +) and height (m) of each
#: telescope, for airmasses: Observatorio de Sierra Nevada (OSN, Loma de Dilar) and
#: Calar Alto (CAHA), as published by the observatories (osn.iaa.csic.es, caha.es).
TELESCOPE_SITES: dict[str, tuple[float, float, float]] = {
    "OSN-T090": (37.0642, -3.3847, 2896.0),
    "OSN-T150": (37.0642, -3.3847, 2896.0),
    "CAHA-T220": (37.2236, -2.5461, 2168.0),
}
