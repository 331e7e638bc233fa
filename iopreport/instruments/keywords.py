"""Header keyword conventions of each instrument, shared by the reader and the simulator.

Source: IOP4's telescope classes (INSTRUME, TELESCOP and their dated quirks) and
§4.2 (per-instrument keywords and values).
"""

from __future__ import annotations

import datetime as dt

#: Nights before this had the Roper camera at the T090; later files may still
#: say RoperT90 (the control PC kept the name after the camera swap).
ROPER_UNTIL = dt.date(2021, 10, 23)
#: The T150 camera wrote INSTRUME = 'Andor' until this night.
ANDOR150_SHORT_NAME_UNTIL = dt.date(2023, 1, 11)
#: DIPOL files from before this night may have an empty TELESCOP.
DIPOL_EMPTY_TELESCOP_UNTIL = dt.date(2023, 10, 11)
#: DIPOL files carry TELRA/TELDEC from about January 2025.
DIPOL_TELRA_FROM = dt.date(2025, 1, 1)

#: OSN polarizer wheel: FILTER -> angle, every spelling in use.
OSN_WHEEL_ANGLES = {"R_45": -45.0, "R-45": -45.0, "R0": 0.0, "R45": 45.0, "R+45": 45.0, "R90": 90.0}
#: OSN FILTER values meaning R-band photometry.
OSN_PHOTOMETRY_R = ("R", "R Johnson")
#: OSN IMAGETYP -> type.
OSN_IMAGETYP = {"BIAS": "bias", "DARK": "dark", "FLAT": "flat", "LIGHT": "light"}

#: CAFOS IMAGETYP -> type.
CAFOS_IMAGETYP = {"bias": "bias", "dark": "dark", "flat": "flat", "science": "light"}
#: CAFOS INSFLNAM prefixes before the band letter (e.g. "Cous R", "BessellV").
CAFOS_FILTER_PREFIXES = ("Bessell", "John ", "Cous ", "Cousins", "Johnson")

#: DIPOL FILTER -> band (the Baader R/G/B filters are mapped as IOP4 does).
DIPOL_BANDS = {"Red": "R", "Green": "V", "Blue": "B"}
#: DIPOL (MaxIm DL) IMAGETYP -> type; sky flats are Light Frames named skyflat.
DIPOL_IMAGETYP = {
    "Bias Frame": "bias",
    "Dark Frame": "dark",
    "Flat Field": "flat",
    "Light Frame": "light",
}
