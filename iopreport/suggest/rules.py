"""Which field stars make good comparison stars: the rules, as pure functions.

The rules follow IOP4's calibrator tool (Escudero Pedrosa et al. 2024, AJ 168,
84, Sec. 5.3: Pan-STARRS1 stars in the field with at least 10 detections, a
standard deviation of the gri aperture magnitudes below 0.01 mag, and
magnitudes between 13 and 18) and the practice of the WEBT for comparison
sequences (Villata et al. 1998, A&AS 130, 305: stars near the source, of similar
brightness and colour, free of close companions). Each rule is a named
check; :func:`choose` keeps the stars passing all of them, nearest the target's
magnitude first, and says for every other star which rule it failed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from iopreport.photsystems import to_johnson

#: IOP4 (Escudero Pedrosa et al. 2024, Sec. 5.3): at least this many PS1 detections.
MIN_DETECTIONS = 10
#: IOP4: standard deviation of the g, r, i mean aperture magnitudes below this (mag).
MAX_MAG_STD = 0.01
#: IOP4: R magnitudes between these (no saturation at 0.9-2.2 m, enough signal).
BRIGHT_LIMIT = 13.0
FAINT_LIMIT = 18.0
#: WEBT practice (Villata et al. 1998): brightness similar to the target. iopreport
#: takes stars within this many magnitudes of the target's R.
TARGET_WINDOW_MAG = 2.0
#: Isolation (WEBT practice): no neighbour within this distance (arcsec) ...
ISOLATION_ARCSEC = 10.0
#: ... brighter than the star plus this (a neighbour 5 mag fainter adds 1 % of its flux).
NEIGHBOUR_DELTA_MAG = 5.0
#: Colours (g - r, PS1) where the Tonry et al. (2012) stellar fits are well sampled.
COLOUR_RANGE = (0.0, 1.2)
#: WEBT practice: colour similar to the target's when it is known (|delta(g - r)|, mag).
TARGET_COLOUR_WINDOW = 0.6
#: PS1 point sources: iMeanPSFMag - iMeanKronMag below this (Farrow et al. 2014, MNRAS 437, 748).
POINT_SOURCE_MAX = 0.05
#: A Gaia DR3 counterpart within this distance (arcsec) gives the position.
GAIA_MATCH_ARCSEC = 1.0
#: Gaia DR3 astrometry of a single star: RUWE below this (Lindegren et al. 2021, A&A 649, A2).
MAX_RUWE = 1.4
#: The target itself (its PS1 counterpart) lies within this distance (arcsec).
TARGET_MATCH_ARCSEC = 2.0
#: Field radius (arcmin): the smallest field of the built-in instruments is CAFOS's 7.1'
#: square (half-width 3.5'); 0.5' is left for pointing (iopreport's choice).
DEFAULT_RADIUS_ARCMIN = 3.0
#: PS1 writes -999 for a missing value.
PS1_MISSING = -999.0


@dataclass(frozen=True)
class Ps1Star:
    """One Pan-STARRS1 DR2 mean-table object."""

    obj_name: str
    obj_id: str
    ra: float
    dec: float
    n_detections: int
    mags: dict[str, tuple[float, float, float]]  # band -> (mean ap mag, error, std)
    i_psf: float
    i_kron: float
    r_psf: float


@dataclass(frozen=True)
class GaiaStar:
    """One Gaia DR3 source."""

    source_id: int
    ra: float
    dec: float
    g_mag: float
    variable_flag: str
    ruwe: float


@dataclass
class Candidate:
    """A PS1 star with what the rules need, and the rules it failed."""

    star: Ps1Star
    distance_arcsec: float
    johnson: dict = field(default_factory=dict)  # band -> photsystems.Derived
    gaia: GaiaStar | None = None
    failed: list[str] = field(default_factory=list)

    @property
    def r(self) -> float | None:
        derived = self.johnson.get("R")
        return None if derived is None else derived.value

    @property
    def colour(self) -> float | None:
        g, r = self.star.mags.get("g"), self.star.mags.get("r")
        return None if g is None or r is None else g[0] - r[0]


@dataclass(frozen=True)
class Rules:
    """The thresholds in use (defaults: the module's constants)."""

    radius_arcmin: float = DEFAULT_RADIUS_ARCMIN
    min_detections: int = MIN_DETECTIONS
    max_mag_std: float = MAX_MAG_STD
    bright_limit: float = BRIGHT_LIMIT
    faint_limit: float = FAINT_LIMIT
    target_window: float = TARGET_WINDOW_MAG
    isolation_arcsec: float = ISOLATION_ARCSEC
    neighbour_delta_mag: float = NEIGHBOUR_DELTA_MAG
    colour_range: tuple[float, float] = COLOUR_RANGE
    target_colour_window: float = TARGET_COLOUR_WINDOW
    point_source_max: float = POINT_SOURCE_MAX
    gaia_match_arcsec: float = GAIA_MATCH_ARCSEC
    max_ruwe: float = MAX_RUWE

    def describe(self, target_r: float | None, target_colour: float | None) -> list[str]:
        """The rules as sentences (printed with the block)."""
        lines = [
            f"in the field: within {self.radius_arcmin:g} arcmin of the target",
            f"well measured: at least {self.min_detections} PS1 detections",
            f"not variable: std of the g, r, i aperture magnitudes < {self.max_mag_std:g} mag, "
            "and Gaia DR3 phot_variable_flag not VARIABLE",
            f"magnitude: {self.bright_limit:g} <= R <= {self.faint_limit:g}"
            + (
                f" and within {self.target_window:g} mag of the target (R = {target_r:.2f})"
                if target_r is not None
                else ""
            ),
            f"isolated: no PS1 neighbour within {self.isolation_arcsec:g} arcsec brighter than "
            f"the star + {self.neighbour_delta_mag:g} mag",
            f"colour: {self.colour_range[0]:g} <= g - r <= {self.colour_range[1]:g}"
            + (
                f" and within {self.target_colour_window:g} mag of the target's "
                f"({target_colour:.2f})"
                if target_colour is not None
                else ""
            ),
            f"a star: iMeanPSFMag - iMeanKronMag < {self.point_source_max:g} mag, and a Gaia DR3 "
            f"counterpart within {self.gaia_match_arcsec:g} arcsec with RUWE < {self.max_ruwe:g}",
        ]
        return lines


def separation_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (haversine), arcsec."""
    ra1, dec1, ra2, dec2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = (
        math.sin((dec2 - dec1) / 2) ** 2
        + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(math.sqrt(min(max(h, 0.0), 1.0)))) * 3600.0


def _valid(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value > PS1_MISSING + 1


def johnson_of(star: Ps1Star) -> dict:
    """B, V, R, I from the star's PS1 g, r, i (Tonry et al. 2012, :mod:`iopreport.photsystems`)."""
    mags = {band: (m[0], m[1]) for band, m in star.mags.items() if _valid(m[0])}
    return to_johnson("ps1", mags) if {"g", "r"} <= set(mags) else {}


def target_values(
    stars: Sequence[Ps1Star], ra: float, dec: float, target_r: float | None
) -> tuple[Ps1Star | None, float | None, float | None]:
    """The target's PS1 counterpart (if any), its R (``target_r`` wins) and its g - r."""
    nearest = min(stars, key=lambda s: separation_arcsec(ra, dec, s.ra, s.dec), default=None)
    if nearest is None or separation_arcsec(ra, dec, nearest.ra, nearest.dec) > (
        TARGET_MATCH_ARCSEC
    ):
        return None, target_r, None
    johnson = johnson_of(nearest)
    if target_r is None and "R" in johnson:
        target_r = johnson["R"].value
    g, r = nearest.mags.get("g"), nearest.mags.get("r")
    colour = g[0] - r[0] if g and r and _valid(g[0]) and _valid(r[0]) else None
    return nearest, target_r, colour


def check(
    candidate: Candidate,
    stars: Sequence[Ps1Star],
    rules: Rules,
    target_r: float | None,
    target_colour: float | None,
) -> list[str]:
    """The names of the rules ``candidate`` fails (empty: a good comparison star)."""
    star = candidate.star
    failed = []
    if candidate.distance_arcsec > rules.radius_arcmin * 60:
        failed.append("field")
    if star.n_detections < rules.min_detections:
        failed.append("detections")
    stds = [star.mags.get(b, (PS1_MISSING,) * 3)[2] for b in ("g", "r", "i")]
    if not all(_valid(s) and s < rules.max_mag_std for s in stds):
        failed.append("variability")
    if candidate.gaia is not None and candidate.gaia.variable_flag.strip().upper() == "VARIABLE":
        failed.append("variability")
    r = candidate.r
    if (
        r is None
        or not rules.bright_limit <= r <= rules.faint_limit
        or (target_r is not None and abs(r - target_r) > rules.target_window)
    ):
        failed.append("magnitude")
    for other in stars:
        if other is star:
            continue
        mag = other.r_psf if _valid(other.r_psf) else other.mags.get("r", (PS1_MISSING,))[0]
        if not _valid(mag) or r is None:
            continue
        near = separation_arcsec(star.ra, star.dec, other.ra, other.dec) < rules.isolation_arcsec
        if near and mag < r + rules.neighbour_delta_mag:
            failed.append("isolation")
            break
    colour = candidate.colour
    if (
        colour is None
        or not rules.colour_range[0] <= colour <= rules.colour_range[1]
        or (target_colour is not None and abs(colour - target_colour) > rules.target_colour_window)
    ):
        failed.append("colour")
    point = _valid(star.i_psf) and _valid(star.i_kron)
    if (
        not point
        or star.i_psf - star.i_kron >= rules.point_source_max
        or candidate.gaia is None
        or not (math.isfinite(candidate.gaia.ruwe) and candidate.gaia.ruwe < rules.max_ruwe)
    ):
        failed.append("star")
    return list(dict.fromkeys(failed))


def match_gaia(star: Ps1Star, gaia: Sequence[GaiaStar], radius_arcsec: float) -> GaiaStar | None:
    """The nearest Gaia source within ``radius_arcsec`` of a PS1 star."""
    best, best_d = None, radius_arcsec
    for source in gaia:
        d = separation_arcsec(star.ra, star.dec, source.ra, source.dec)
        if d <= best_d:
            best, best_d = source, d
    return best


@dataclass
class Choice:
    """What :func:`choose` decided."""

    chosen: list[Candidate]
    rejected: list[Candidate]
    target: Ps1Star | None
    target_r: float | None
    target_colour: float | None


def choose(
    stars: Sequence[Ps1Star],
    gaia: Sequence[GaiaStar],
    ra: float,
    dec: float,
    *,
    target_r: float | None = None,
    count: int = 5,
    rules: Rules = Rules(),
) -> Choice:
    """Up to ``count`` comparison stars, nearest the target's R (then nearest the target)."""
    target, target_r, target_colour = target_values(stars, ra, dec, target_r)
    chosen, rejected = [], []
    for star in stars:
        if star is target:
            continue
        candidate = Candidate(
            star,
            separation_arcsec(ra, dec, star.ra, star.dec),
            johnson_of(star),
            match_gaia(star, gaia, rules.gaia_match_arcsec),
        )
        candidate.failed = check(candidate, stars, rules, target_r, target_colour)
        (rejected if candidate.failed else chosen).append(candidate)
    reference = target_r if target_r is not None else (rules.bright_limit + rules.faint_limit) / 2
    chosen.sort(key=lambda c: (round(abs(c.r - reference), 1), c.distance_arcsec))
    rejected += chosen[count:]
    return Choice(chosen[:count], rejected, target, target_r, target_colour)
