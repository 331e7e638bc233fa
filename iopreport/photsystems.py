"""Johnson-Cousins B, V, R, I from SDSS or Pan-STARRS1 (PS1) g, r, i magnitudes.

Comparison stars are often published only in SDSS or PS1 bands, while the
pipeline calibrates in Johnson B, V and Cousins R, I. This module holds the
published colour transformations for **stars** and applies them with error
propagation:

* SDSS: Lupton (2005), the relations Robert Lupton derived by matching SDSS
  DR4 photometry to Peter Stetson's standard-star photometry, as published on
  the SDSS "Transformations between SDSS magnitudes and UBVRcIc" page
  (sdss.org/dr12/algorithms/sdssubvritransform, section "Lupton (2005)").
  They take SDSS magnitudes *as measured* (not corrected to AB).
* PS1: Tonry et al. (2012), ApJ 750, 99, Table 6, the quadratic fits
  ``y = A0 + A1 x + A2 x^2`` with ``x = (g - r)_P1`` for ``B - g_P1``,
  ``V - r_P1``, ``R_C - r_P1`` and ``I_C - i_P1``. These go straight from PS1
  to Johnson-Cousins, with no SDSS step.

IOP4 applies the SDSS (Lupton) relations directly to PS1 magnitudes. PS1 and
SDSS filters differ (the PS1 - SDSS terms of Tonry et al. 2012 Table 6 reach
about 0.1 mag in g for a star with g - r = 0.6), so iopreport uses the PS1
relations for PS1 input.

Each relation has the form ``out = base + sum_k c_k * (first - second)^k``.
The error of a derived magnitude is the propagated error of its inputs plus,
in quadrature, the scatter the source quotes for the relation, so it is never
smaller than that scatter (the scatter is an error floor). When the inputs
have no errors, the scatter alone is the error, and :attr:`Derived.note` says
so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

LUPTON2005_REFERENCE = (
    "Lupton (2005), SDSS to UBVRcIc transformations for stars "
    "(sdss.org/dr12/algorithms/sdssubvritransform)"
)
TONRY2012_REFERENCE = "Tonry et al. 2012, ApJ 750, 99, Table 6 (quadratic fits)"

#: The photometric systems a catalog may give magnitudes in, besides Johnson-Cousins.
SYSTEMS = ("sdss", "ps1")
#: The input bands the transformations use (in both systems).
INPUT_BANDS = ("g", "r", "i")
#: The Johnson-Cousins bands that can be derived.
OUTPUT_BANDS = ("B", "V", "R", "I")


@dataclass(frozen=True)
class Relation:
    """``out = base + sum_k coefficients[k] * (colour[0] - colour[1])**k``.

    Attributes
    ----------
    band : str
        The Johnson-Cousins band it gives.
    base : str
        The input band the colour term is added to.
    colour : tuple of str
        The two input bands whose difference is the colour.
    coefficients : tuple of float
        Polynomial coefficients in the colour, constant term first.
    scatter : float
        The rms scatter the source quotes for the relation (mag).
    reference : str
        Where the relation is published.
    """

    band: str
    base: str
    colour: tuple[str, str]
    coefficients: tuple[float, ...]
    scatter: float
    reference: str

    @property
    def inputs(self) -> tuple[str, ...]:
        """The input bands it needs, without repeats, in g, r, i order."""
        used = {self.base, *self.colour}
        return tuple(band for band in INPUT_BANDS if band in used)

    def formula(self) -> str:
        """The relation as text, e.g. ``B = g + 0.2271 + 0.3130*(g - r)``."""
        colour = f"({self.colour[0]} - {self.colour[1]})"
        terms = [self.base]
        for power, coefficient in enumerate(self.coefficients):
            sign = "-" if coefficient < 0 else "+"
            factor = "" if power == 0 else ("*" + colour + ("" if power == 1 else f"^{power}"))
            terms.append(f"{sign} {abs(coefficient):g}{factor}")
        return f"{self.band} = {' '.join(terms)}"


#: Lupton (2005) SDSS -> Johnson-Cousins, the g, r, i relations (scatter in mag).
LUPTON2005_SDSS_TO_JC: dict[str, Relation] = {
    "B": Relation("B", "g", ("g", "r"), (0.2271, 0.3130), 0.0107, LUPTON2005_REFERENCE),
    "V": Relation("V", "g", ("g", "r"), (-0.0038, -0.5784), 0.0054, LUPTON2005_REFERENCE),
    "R": Relation("R", "r", ("r", "i"), (-0.1439, -0.2936), 0.0072, LUPTON2005_REFERENCE),
    "I": Relation("I", "r", ("r", "i"), (-0.3820, -1.2444), 0.0078, LUPTON2005_REFERENCE),
}

#: Tonry et al. (2012) Table 6, PS1 -> Johnson-Cousins, quadratic in (g - r)_P1.
TONRY2012_PS1_TO_JC: dict[str, Relation] = {
    "B": Relation("B", "g", ("g", "r"), (0.212, 0.556, 0.034), 0.032, TONRY2012_REFERENCE),
    "V": Relation("V", "r", ("g", "r"), (0.005, 0.462, 0.013), 0.012, TONRY2012_REFERENCE),
    "R": Relation("R", "r", ("g", "r"), (-0.137, -0.108, -0.029), 0.015, TONRY2012_REFERENCE),
    "I": Relation("I", "i", ("g", "r"), (-0.366, -0.136, -0.018), 0.017, TONRY2012_REFERENCE),
}

RELATIONS: dict[str, dict[str, Relation]] = {
    "sdss": LUPTON2005_SDSS_TO_JC,
    "ps1": TONRY2012_PS1_TO_JC,
}

_SYSTEM_NAMES = {"sdss": "SDSS", "ps1": "PS1"}


@dataclass(frozen=True)
class Derived:
    """A Johnson-Cousins magnitude derived from another system.

    Attributes
    ----------
    band : str
        B, V, R or I.
    value, err : float
        The magnitude and its error (propagated inputs and relation scatter).
    note : str
        How it was derived, for people: relation, reference, input bands.
    """

    band: str
    value: float
    err: float
    note: str


def apply(relation: Relation, mags: Mapping[str, tuple[float, float | None]]) -> Derived:
    """Apply one relation to input magnitudes.

    Parameters
    ----------
    relation : Relation
        The transformation.
    mags : mapping
        Input band to ``(value, error)``; the error may be None (unknown).

    Returns
    -------
    Derived

    Raises
    ------
    KeyError
        If an input band the relation needs is missing.
    """
    values = {band: float(mags[band][0]) for band in relation.inputs}
    errors = {band: mags[band][1] for band in relation.inputs}
    x = values[relation.colour[0]] - values[relation.colour[1]]
    value = values[relation.base] + sum(c * x**k for k, c in enumerate(relation.coefficients))
    slope = sum(k * c * x ** (k - 1) for k, c in enumerate(relation.coefficients) if k > 0)
    gradient = dict.fromkeys(relation.inputs, 0.0)
    gradient[relation.base] += 1.0
    gradient[relation.colour[0]] += slope
    gradient[relation.colour[1]] -= slope
    known = all(errors[band] is not None for band in relation.inputs)
    variance = relation.scatter**2
    if known:
        variance += sum((gradient[band] * float(errors[band])) ** 2 for band in relation.inputs)
    note = f"{relation.formula()} ({relation.reference})"
    if not known:
        note += "; input errors unknown, the error is the relation scatter only"
    return Derived(relation.band, value, math.sqrt(variance), note)


def to_johnson(
    system: str, mags: Mapping[str, tuple[float, float | None]], bands=OUTPUT_BANDS
) -> dict[str, Derived]:
    """Every Johnson-Cousins band of ``bands`` that ``mags`` has the inputs for.

    Parameters
    ----------
    system : str
        ``"sdss"`` (Lupton 2005) or ``"ps1"`` (Tonry et al. 2012).
    mags : mapping
        Input band (``g``, ``r``, ``i``) to ``(value, error or None)``.
    bands : iterable of str
        The wanted output bands (default B, V, R, I).

    Returns
    -------
    dict
        Band to :class:`Derived`; bands whose inputs are missing are left out.
    """
    if system not in RELATIONS:
        raise ValueError(f"unknown photometric system {system!r}; one of {', '.join(SYSTEMS)}")
    derived = {}
    for band in bands:
        relation = RELATIONS[system][band]
        if all(name in mags for name in relation.inputs):
            result = apply(relation, mags)
            inputs = ", ".join(relation.inputs)
            derived[band] = Derived(
                band,
                result.value,
                result.err,
                f"derived from {_SYSTEM_NAMES[system]} {inputs}: {result.note}",
            )
    return derived
