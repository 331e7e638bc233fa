"""The simulator's presets: which instruments observe which sources, and how.

A :class:`Preset` lists per telescope the instruments used, their binning and
their :class:`Block` requests (biases, darks, flats per band or polarizer angle,
photometry and polarimetry of sources). ``tiny``, ``small`` and ``full`` differ
in size; ``unbinned`` and ``monitor`` serve the seeing checks and the demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Block:
    """A request in a preset: calibrations or observations of one source."""

    kind: str  # bias | dark | flat | phot | pol
    count: int = 1
    band: str = "R"
    bands: tuple[str, ...] = ()
    target: str = ""
    angles: tuple[float, ...] | None = None  # flats per polarizer/HWP angle
    subframe: bool = False


@dataclass(frozen=True)
class InstrumentPlan:
    instrument: str
    binning: int
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Preset:
    name: str
    telescopes: dict[str, tuple[InstrumentPlan, ...]] = field(default_factory=dict)
    #: cosmic-ray rate as a multiple of the simulator's (render.COSMIC_RATE_PER_CM2_S)
    cosmic_ray_scale: float = 1.0


HWP_CAFOS = (0.0, 22.48, 44.98, 67.48)
WHEEL = (-45.0, 0.0, 45.0, 90.0)


def _blocks(*items: Block) -> tuple[Block, ...]:
    return items


def _flats(bands: str, count: int, angles=None) -> tuple[Block, ...]:
    return tuple(Block("flat", count, band, angles=angles) for band in bands)


def _phot(target: str, bands: str, count: int = 1) -> Block:
    return Block("phot", count, bands=tuple(bands), target=target)


def _pol(target: str, count: int = 1, subframe: bool = False) -> Block:
    return Block("pol", count, target=target, subframe=subframe)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        "tiny",
        {
            "OSN-T090": (
                InstrumentPlan(
                    "AndorT90",
                    4,
                    _blocks(
                        Block("bias", 3),
                        *_flats("R", 3),
                        *_flats("R", 3, WHEEL),
                        _phot("2200+420", "R"),
                        _pol("2200+420"),
                    ),
                ),
                InstrumentPlan(
                    "DIPOL",
                    4,
                    _blocks(
                        Block("bias", 3),
                        Block("dark", 3),
                        *_flats("R", 3),
                        _phot("2200+420", "R"),
                        _pol("2200+420", subframe=True),
                    ),
                ),
            ),
            "OSN-T150": (
                InstrumentPlan(
                    "AndorT150",
                    4,
                    _blocks(
                        Block("bias", 3),
                        *_flats("R", 3),
                        *_flats("R", 3, WHEEL),
                        _phot("2200+420", "R"),
                        _pol("2200+420"),
                    ),
                ),
            ),
            "CAHA-T220": (
                InstrumentPlan(
                    "CAFOS",
                    2,
                    _blocks(
                        Block("bias", 3),
                        *_flats("R", 3),
                        *_flats("R", 3, HWP_CAFOS),
                        _phot("2200+420", "R"),
                        _pol("2200+420"),
                        _pol("Hiltner 960"),
                    ),
                ),
            ),
        },
    ),
    "small": Preset(
        "small",
        {
            "OSN-T090": (
                InstrumentPlan(
                    "AndorT90",
                    2,
                    _blocks(
                        Block("bias", 5),
                        *_flats("UBVRI", 3),
                        *_flats("R", 3, WHEEL),
                        _phot("2200+420", "UBVRI"),
                        _pol("2200+420", 2),
                        _pol("Hiltner 960"),
                        _pol("BD+32 3739"),
                        _phot("2251+158", "R", 2),
                        _pol("2251+158"),
                    ),
                ),
                InstrumentPlan(
                    "DIPOL",
                    4,
                    _blocks(
                        Block("bias", 5),
                        Block("dark", 3),
                        *_flats("BVR", 3),
                        _phot("2200+420", "BVR"),
                        _pol("2200+420", subframe=True),
                        _pol("Hiltner 960", subframe=True),
                    ),
                ),
            ),
            "OSN-T150": (
                InstrumentPlan(
                    "AndorT150",
                    2,
                    _blocks(
                        Block("bias", 5),
                        *_flats("VR", 3),
                        *_flats("R", 3, WHEEL),
                        _phot("2200+420", "RV", 2),
                        _pol("2200+420"),
                        _phot("1652+398", "R"),
                    ),
                ),
            ),
            "CAHA-T220": (
                InstrumentPlan(
                    "CAFOS",
                    1,
                    _blocks(
                        Block("bias", 5),
                        *_flats("VR", 3),
                        *_flats("R", 3, HWP_CAFOS),
                        _phot("2200+420", "RV"),
                        _pol("2200+420"),
                        _pol("Hiltner 960"),
                        _pol("HD 212311"),
                    ),
                ),
            ),
        },
    ),
    "full": Preset(
        "full",
        {
            "OSN-T090": (
                InstrumentPlan(
                    "AndorT90",
                    1,
                    _blocks(
                        Block("bias", 10),
                        *_flats("UBVRI", 5),
                        *_flats("R", 5, WHEEL),
                        _phot("2200+420", "BVRI", 2),
                        _pol("2200+420", 3),
                        _pol("Hiltner 960", 2),
                        _pol("BD+32 3739"),
                        _phot("2251+158", "VR", 2),
                        _pol("2251+158", 2),
                        _phot("0716+714", "R", 2),
                        _pol("0716+714"),
                    ),
                ),
                InstrumentPlan(
                    "DIPOL",
                    2,
                    _blocks(
                        Block("bias", 8),
                        Block("dark", 5),
                        *_flats("BVR", 4),
                        _phot("2200+420", "BVR"),
                        _pol("2200+420", 2, subframe=True),
                        _pol("Hiltner 960", subframe=True),
                    ),
                ),
            ),
            "OSN-T150": (
                InstrumentPlan(
                    "AndorT150",
                    1,
                    _blocks(
                        Block("bias", 8),
                        *_flats("VR", 4),
                        *_flats("R", 4, WHEEL),
                        _phot("2200+420", "VR", 2),
                        _pol("2200+420", 2),
                        _phot("1652+398", "R", 2),
                        _phot("1101+384", "R", 2),
                    ),
                ),
            ),
            "CAHA-T220": (
                InstrumentPlan(
                    "CAFOS",
                    1,
                    _blocks(
                        Block("bias", 8),
                        *_flats("VR", 4),
                        *_flats("R", 4, HWP_CAFOS),
                        _phot("2200+420", "RV", 2),
                        _pol("2200+420", 2),
                        _pol("Hiltner 960"),
                        _pol("HD 212311"),
                        _pol("1253-055"),
                    ),
                ),
            ),
        },
    ),
}


#: Unbinned 2048x2048 frames with three times the cosmic-ray rate: long multi-pixel
#: tracks among the brightest detections (the test bed of the seeing and trailing checks).
PRESETS["unbinned"] = Preset(
    "unbinned",
    {
        "OSN-T090": (
            InstrumentPlan(
                "AndorT90",
                1,
                _blocks(
                    Block("bias", 3),
                    *_flats("R", 3),
                    *_flats("R", 3, WHEEL),
                    _phot("2200+420", "R", 4),
                    _pol("2200+420"),
                ),
            ),
        ),
    },
    cosmic_ray_scale=3.0,
)


#: The demo's nights after the first (iopreport/demo.py): BL Lac monitored at every
#: telescope, and at each polarimeter a standard of the kind the first (small) night
#: lacks, so that every polarimeter's instrumental polarization and zero angle can be
#: fitted from the nights together (unpolarized BD+32 3739 for DIPOL, both kinds for
#: AndorT150). Binnings as in ``tiny``, CAFOS unbinned as in ``small`` (a bright
#: standard's short exposure then still shows enough stars to plate-solve).
PRESETS["monitor"] = Preset(
    "monitor",
    {
        "OSN-T090": (
            InstrumentPlan(
                "AndorT90",
                4,
                _blocks(
                    Block("bias", 3),
                    *_flats("R", 3),
                    *_flats("R", 3, WHEEL),
                    _phot("2200+420", "R"),
                    _pol("2200+420"),
                    _pol("Hiltner 960"),
                ),
            ),
            InstrumentPlan(
                "DIPOL",
                4,
                _blocks(
                    Block("bias", 3),
                    Block("dark", 3),
                    *_flats("R", 3),
                    _phot("2200+420", "R"),
                    _pol("2200+420", subframe=True),
                    _pol("BD+32 3739", subframe=True),
                ),
            ),
        ),
        "OSN-T150": (
            InstrumentPlan(
                "AndorT150",
                4,
                _blocks(
                    Block("bias", 3),
                    *_flats("R", 3),
                    *_flats("R", 3, WHEEL),
                    _phot("2200+420", "R"),
                    _pol("2200+420"),
                    _pol("Hiltner 960"),
                    _pol("BD+32 3739"),
                ),
            ),
        ),
        "CAHA-T220": (
            InstrumentPlan(
                "CAFOS",
                1,
                _blocks(
                    Block("bias", 3),
                    *_flats("R", 3),
                    *_flats("R", 3, HWP_CAFOS),
                    _phot("2200+420", "R"),
                    _pol("2200+420"),
                    _pol("Hiltner 960"),
                ),
            ),
        ),
    },
)
