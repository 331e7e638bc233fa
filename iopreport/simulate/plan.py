"""What a simulated night contains: the list of exposures, in time order, per telescope.

:func:`plan_night` turns a preset (:mod:`iopreport.simulate.presets`) into
:class:`~iopreport.simulate.frameplan.FramePlan` entries with start times, exposure
times, pointing and geometry, as the night's clock, seeing and transparency
advance. Nothing here touches pixels, so plans are cheap to inspect and test.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from iopreport.instruments import InstrumentSpec
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.simulate.exptime import POL_IMAGE_FRACTION, choose_exptime
from iopreport.simulate.frameplan import FramePlan
from iopreport.simulate.presets import InstrumentPlan, Preset
from iopreport.simulate.render import Window, stable_seed

#: Where the night starts (UTC) for observatories in Spain: evening twilight.
EVENING_START_UTC = dt.time(18, 45)
#: Readout and overhead between exposures, seconds (simulator assumption).
OVERHEAD_S = {"AndorT90": 12.0, "RoperT90": 20.0, "AndorT150": 12.0, "DIPOL": 3.0, "CAFOS": 40.0}
#: Pointing error of the telescope, arcsec RMS per axis (simulator assumption; default 15).
POINTING_ERROR_ARCSEC = {"CAFOS": 10.0, "DIPOL": 6.0}
#: Scatter of the camera's position angle between pointings, degrees (simulator
#: assumption; default 0.4).
ROTATION_JITTER_DEG = {"DIPOL": 1.0}
#: Chance that a target is observed after a meridian flip (FLIPSTAT; simulator assumption).
FLIP_PROBABILITY = {"DIPOL": 0.5}
#: Header OBJECT names by archive style (OSN and DIPOL use short common names).
OBJECT_NAMES = {
    "2200+420": {"osn": "BLLac", "dipol": "BLLac", "cafos": "2200+420"},
    "2251+158": {"osn": "3C454.3", "dipol": "3C454.3", "cafos": "2251+158"},
    "1253-055": {"osn": "3C279", "dipol": "3C279", "cafos": "1253-055"},
    "0851+202": {"osn": "OJ287", "dipol": "OJ287", "cafos": "0851+202"},
    "0716+714": {"osn": "S50716+714", "dipol": "S50716", "cafos": "0716+714"},
    "1101+384": {"osn": "Mrk421", "dipol": "Mrk421", "cafos": "1101+384"},
    "1652+398": {"osn": "Mrk501", "dipol": "Mrk501", "cafos": "1652+398"},
    "Hiltner 960": {"osn": "Hiltner960", "dipol": "Hiltner960", "cafos": "Hiltner960"},
    "HD 204827": {"osn": "HD204827", "dipol": "HD204827", "cafos": "HD204827"},
    "BD+64 106": {"osn": "BD+64106", "dipol": "BD64106", "cafos": "BD+64106"},
    "BD+32 3739": {"osn": "BD+323739", "dipol": "BD323739", "cafos": "BD+323739"},
    "HD 212311": {"osn": "HD212311", "dipol": "HD212311", "cafos": "HD212311"},
}
#: Relative swing of the seeing through a simulated night (simulator assumption).
SEEING_SWING = 0.15

#: DIPOL polarimetry sub-frame size at 2x2 binning (about 2.5' x 2.0'; the IOP4 paper §6.3).
DIPOL_SUBFRAME_2X2 = (1120, 900)


def object_name(target: str, instrument_name: str) -> str:
    style = {"CAFOS": "cafos", "DIPOL": "dipol"}.get(instrument_name, "osn")
    return OBJECT_NAMES.get(target, {}).get(style, target.replace(" ", ""))


@dataclass
class _Night:
    """Mutable state while a telescope's night is planned: clock, weather, randomness."""

    telescope: str
    night: dt.date
    rng: np.random.Generator
    clock: dt.datetime
    cirrus: bool
    base_seeing: float
    seeing_phase: float

    def conditions(self, when: dt.datetime) -> tuple[float, float]:
        """Seeing FWHM (arcsec) and transparency at ``when``: slow drifts, optional cirrus."""
        hours = (when - dt.datetime.combine(self.night, EVENING_START_UTC)).total_seconds() / 3600
        phase = 2 * math.pi * hours / 5.0 + self.seeing_phase
        seeing = self.base_seeing * (1.0 + SEEING_SWING * math.sin(phase))
        transparency = 0.97 - 0.08 * hours / 10.0
        if self.cirrus:
            transparency *= self.rng.uniform(0.90, 1.0)
        return seeing, transparency

    @property
    def best_seeing(self) -> float:
        """The best seeing of the night (arcsec): what an observer sets exposures for."""
        return self.base_seeing * (1.0 - SEEING_SWING)

    def advance(self, exptime: float, overhead: float) -> dt.datetime:
        start = self.clock
        self.clock = self.clock + dt.timedelta(seconds=exptime + overhead)
        return start


def plan_night(
    telescope: str,
    night: dt.date,
    preset: Preset,
    sources: dict[str, tuple[float, float]],
    brightness,
    *,
    seed: int,
    cirrus: bool = False,
    registry: InstrumentRegistry | None = None,
) -> list[FramePlan]:
    """The exposures of one telescope's night, in time order.

    Parameters
    ----------
    registry : InstrumentRegistry, optional
        Where the preset's instruments are looked up (default: the built-in ones).
    sources : dict
        Catalog name -> (ra, dec) in degrees, for every target the preset uses.
    brightness : callable
        ``brightness(target, band) -> magnitude`` of the brightest star of
        interest, used to pick exposure times that stay below saturation.
    """
    rng = np.random.default_rng(stable_seed("plan", seed, telescope, night))
    state = _Night(
        telescope=telescope,
        night=night,
        rng=rng,
        clock=dt.datetime.combine(night, EVENING_START_UTC),
        cirrus=cirrus,
        base_seeing=rng.uniform(1.3, 2.2),
        seeing_phase=rng.uniform(0, 2 * math.pi),
    )
    registry = registry or InstrumentRegistry.builtin()
    plans: list[FramePlan] = []
    for instrument_plan in preset.telescopes.get(telescope, ()):
        plans.extend(_plan_instrument(state, instrument_plan, sources, brightness, registry))
    return sorted(plans, key=lambda p: (p.start, p.instrument))


def _plan_instrument(state: _Night, instrument_plan: InstrumentPlan, sources, brightness, registry):
    rng = state.rng
    dialect = registry.dialect_of(instrument_plan.instrument)
    name = dialect.camera_on(instrument_plan.instrument, state.night)
    spec = registry.get(name)
    binning = instrument_plan.binning
    nx, ny = spec.shape_at(binning)
    overhead = OVERHEAD_S[name]
    base = {
        "telescope": state.telescope,
        "instrument": name,
        "night": state.night,
        "binning": binning,
        "full_shape": (ny, nx),
        "window": Window(0, 0, nx, ny),
        "spec": spec,
    }
    flip_by_target: dict[str, bool] = {}
    best = state.best_seeing
    science: list[dict] = []
    sequence_counter = 0
    for block in instrument_plan.blocks:
        if block.kind not in ("phot", "pol"):
            continue
        if name in FLIP_PROBABILITY and block.target not in flip_by_target:
            flip_by_target[block.target] = bool(rng.random() < FLIP_PROBABILITY[name])
        for repeat in range(block.count):
            if block.kind == "phot":
                for band_index, band in enumerate(block.bands):
                    t = choose_exptime(
                        spec, binning, name, block.target, band, brightness, 1.0, best
                    )
                    science.append(
                        {
                            "block": block,
                            "band": band,
                            "exptime": t,
                            "spelling": repeat + band_index,
                        }
                    )
            else:
                sequence_counter += 1
                t = choose_exptime(
                    spec, binning, name, block.target, "R", brightness, POL_IMAGE_FRACTION, best
                )
                science.append(
                    {"block": block, "sequence": sequence_counter, "exptime": t, "spelling": repeat}
                )
    science_exptimes = sorted({item["exptime"] for item in science})

    plans: list[FramePlan] = []
    for block in instrument_plan.blocks:
        if block.kind == "bias":
            for _ in range(block.count):
                start = state.advance(0.0, overhead)
                plans.append(FramePlan(**base, imgtype="bias", exptime=0.0, start=start))
        elif block.kind == "dark":
            for t in science_exptimes or [60.0]:
                for _ in range(block.count):
                    start = state.advance(t, overhead)
                    plans.append(
                        FramePlan(
                            **base, imgtype="dark", exptime=t, start=start, object_name="dark"
                        )
                    )
        elif block.kind == "flat":
            for angle in block.angles or (None,):
                for k in range(block.count):
                    level = rng.uniform(0.35, 0.55) * spec.saturation_adu
                    t = round(float(rng.uniform(2.0, 8.0)), 1)
                    plans.append(
                        FramePlan(
                            **base,
                            imgtype="flat",
                            exptime=t,
                            start=state.advance(t, overhead),
                            band=block.band,
                            obsmode="polarimetry" if angle is not None else "photometry",
                            angle=angle,
                            object_name=dialect.flat_object_name,
                            flat_level_adu=level,
                            spelling=k,
                        )
                    )
    state.clock = max(state.clock, dt.datetime.combine(state.night, dt.time(19, 45)))

    for item in science:
        block = item["block"]
        target = block.target
        flip = flip_by_target.get(target, False)
        ra, dec = sources[target]
        error = POINTING_ERROR_ARCSEC.get(name, 15.0)
        offset_e, offset_n = rng.normal(0.0, error, 2)
        centre = (ra + offset_e / 3600.0 / math.cos(math.radians(dec)), dec + offset_n / 3600.0)
        rotation = spec.sky_rotation_deg + rng.normal(0.0, ROTATION_JITTER_DEG.get(name, 0.4))
        window = base["window"]
        if block.kind == "pol" and block.subframe:
            window = dipol_subframe(spec, binning, flip)
        common = dict(
            base,
            window=window,
            object_name=object_name(target, name),
            target=target,
            pointing=(ra, dec),
            rotation_deg=rotation,
            flip=flip,
            exptime=item["exptime"],
            spelling=item["spelling"],
            imgtype="light",
        )
        if block.kind == "phot":
            start = state.advance(item["exptime"], overhead)
            seeing, transparency = state.conditions(start)
            plans.append(
                FramePlan(
                    **common,
                    centre=centre,
                    start=start,
                    band=item["band"],
                    obsmode="photometry",
                    seeing_arcsec=seeing,
                    transparency=transparency,
                )
            )
            continue
        sequence_id = f"{state.telescope}/{state.night.isoformat()}/{name}/{item['sequence']:02d}"
        angles = (0.0, 45.0, 90.0, -45.0) if spec.polarimetry == "wheel" else spec.pol_angles
        for angle in angles:
            start = state.advance(item["exptime"], overhead)
            seeing, transparency = state.conditions(start)
            jitter = rng.normal(0.0, 1.0, 2) / 3600.0
            plans.append(
                FramePlan(
                    **common,
                    centre=(centre[0] + jitter[0], centre[1] + jitter[1]),
                    start=start,
                    band="R",
                    obsmode="polarimetry",
                    angle=angle,
                    seeing_arcsec=seeing,
                    transparency=transparency,
                    sequence=sequence_id,
                )
            )
    return plans


def dipol_subframe(spec: InstrumentSpec, binning: int, flip: bool) -> Window:
    """Central polarimetry cut holding both images of the target (XORGSUBF/YORGSUBF)."""
    nx, ny = spec.shape_at(binning)
    width = round(DIPOL_SUBFRAME_2X2[0] * 2 / binning)
    height = round(DIPOL_SUBFRAME_2X2[1] * 2 / binning)
    dx, dy = spec.oe_offset_at(binning)
    if flip:
        dy = -dy
    # the target's right-hand image is at the detector centre; centre the cut on the pair
    cx = (nx - 1) / 2.0 + dx / 2.0
    cy = (ny - 1) / 2.0 + dy / 2.0
    x0 = round(cx - width / 2.0)
    y0 = round(cy - height / 2.0)
    return Window(max(x0, 0), max(y0, 0), width, height)
