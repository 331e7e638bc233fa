"""Simulate a night at one or more telescopes: raw FITS files in archive layout, and truth.json."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.time import Time
from astropy.wcs import WCS

from iopreport.catalog import Catalog, load_catalog
from iopreport.fileio import write_text_atomic
from iopreport.instruments import instrumental_polarization
from iopreport.instruments.registry import InstrumentRegistry
from iopreport.nightlayout import night_folder
from iopreport.simulate import faults as fault_rules
from iopreport.simulate.exptime import BAND_THROUGHPUT, SKY_MAG_ARCSEC2, ZERO_MAG_RATE_R
from iopreport.simulate.frameplan import FramePlan
from iopreport.simulate.headers import add_header_wcs, build_header, file_name
from iopreport.simulate.optics import (
    polarizer_transmission,
    sky_to_instrument,
    stokes_from_polarization,
    wollaston_beams,
)
from iopreport.simulate.plan import plan_night
from iopreport.simulate.presets import PRESETS
from iopreport.simulate.render import (
    add_stars,
    expose,
    flat_pattern,
    moffat_peak_fraction,
    stable_seed,
)
from iopreport.simulate.sky import load_sky, stars_near
from iopreport.simulate.targets import TargetModel, target_models
from iopreport.telescopes import TELESCOPES

TRUTH_SCHEMA = "iopreport-simulation-truth/1"
TRUTH_FILE = "truth.json"
#: Stars fainter than this add nothing useful and cost time.
RENDER_FAINT_LIMIT = 20.0


@dataclass
class NightResult:
    """What :func:`simulate_night` wrote for one telescope."""

    telescope: str
    folder: Path
    files: list[Path] = field(default_factory=list)
    truth: dict = field(default_factory=dict)


def simulator_catalog() -> Catalog:
    """The catalog the simulator draws targets from (the shipped catalog.toml)."""
    from iopreport.skeleton import skeleton_dir

    return load_catalog(skeleton_dir() / "catalog.toml")


def simulate_night(
    out: Path | str,
    night: dt.date,
    *,
    telescopes=TELESCOPES,
    preset: str = "small",
    seed: int = 1,
    faults=(),
    cirrus: bool = False,
    header_wcs: bool = False,
    header_wcs_offset_arcsec: float = 0.0,
    cosmic_ray_scale: float | None = None,
    registry: InstrumentRegistry | None = None,
) -> list[NightResult]:
    """Write the raw files of ``night`` for each telescope under ``out``.

    Layout: ``out/<TELESCOPE>/<night folder>/`` with each archive's folder
    names (OSN ``YYYYMMDD``, CAHA ``YYMMDD_CAFOS``) and file names, and a
    ``truth.json`` beside the files (schema in docs/simulator.md).

    With ``header_wcs`` every science frame carries a celestial TAN WCS in its
    header, ``header_wcs_offset_arcsec`` north of the truth. ``cosmic_ray_scale``
    multiplies the cosmic-ray rate (default: the preset's). ``registry`` holds the
    instruments' specs and header dialects (default: the built-in instruments).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")
    unknown = [f for f in faults if f not in fault_rules.FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; one of {', '.join(fault_rules.FAULTS)}")
    catalog = simulator_catalog()
    sky = load_sky()
    results = []
    remaining_faults = list(faults)
    options = _Options(
        header_wcs=header_wcs,
        header_wcs_offset_arcsec=float(header_wcs_offset_arcsec),
        cosmic_ray_scale=(
            PRESETS[preset].cosmic_ray_scale if cosmic_ray_scale is None else cosmic_ray_scale
        ),
        registry=registry or InstrumentRegistry.builtin(),
    )
    for telescope in telescopes:
        result = _simulate_telescope(
            Path(out),
            telescope,
            night,
            PRESETS[preset],
            seed,
            catalog,
            sky,
            remaining_faults,
            cirrus,
            options,
        )
        remaining_faults = [f for f in remaining_faults if f not in result.truth["applied_faults"]]
        results.append(result)
    return results


@dataclass(frozen=True)
class _Options:
    """Switches of a simulated night beyond the preset (see :func:`simulate_night`)."""

    header_wcs: bool = False
    header_wcs_offset_arcsec: float = 0.0
    cosmic_ray_scale: float = 1.0
    registry: InstrumentRegistry = field(default_factory=InstrumentRegistry.builtin)


def _simulate_telescope(
    out, telescope, night, preset, seed, catalog, sky, faults, cirrus, options=_Options()
):
    names = {
        block.target
        for instrument_plan in preset.telescopes.get(telescope, ())
        for block in instrument_plan.blocks
        if block.target
    }
    models = target_models(catalog, sorted(names), night, seed)

    def brightness(target: str, band: str) -> float:
        model = models[target]
        mags = [model.magnitude(band, model.epoch)]
        source = catalog.get(target)
        for calibrator in source.calibrators:
            entry = catalog.get(calibrator)
            if band in entry.mags:
                mags.append(entry.mags[band].value)
        return min(mags)

    positions = {name: (m.ra_deg, m.dec_deg) for name, m in models.items()}
    registry = options.registry
    plans = plan_night(
        telescope, night, preset, positions, brightness, seed=seed, cirrus=cirrus, registry=registry
    )
    plans, applied = fault_rules.assign(plans, faults)
    folder = out / telescope / night_folder(telescope, night)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    truth = {
        "schema": TRUTH_SCHEMA,
        "telescope": telescope,
        "night": night.isoformat(),
        "folder": folder.name,
        "preset": preset.name,
        "seed": seed,
        "cirrus": cirrus,
        "header_wcs": options.header_wcs,
        "header_wcs_offset_arcsec": options.header_wcs_offset_arcsec,
        "cosmic_ray_scale": options.cosmic_ray_scale,
        "instrumental_polarization": {},
        "files": {},
        "photometry": [],
        "polarimetry": [],
        "faults": [],
        "applied_faults": [],
    }
    result = NightResult(telescope=telescope, folder=folder, truth=truth)
    counters: dict[str, int] = {}
    sequences: dict[str, list[tuple[str, FramePlan]]] = {}
    for index, plan in enumerate(plans):
        counter_key = f"{plan.instrument}"
        counters[counter_key] = counters.get(counter_key, 0) + 1
        dialect = registry.dialect_of(plan.instrument)
        name = file_name(plan, counters[counter_key], dialect)
        rng = np.random.default_rng(stable_seed("frame", seed, telescope, night, index))
        if "missing_angle" in plan.faults:
            truth["faults"].append(fault_rules.describe("missing_angle", name, plan))
            continue
        data, record = render_frame(plan, models, sky, rng, options.cosmic_ray_scale)
        header = build_header(plan, plan.spec.telescop_keyword, dialect)
        if options.header_wcs and plan.imgtype == "light" and plan.centre is not None:
            add_header_wcs(header, frame_wcs(plan), options.header_wcs_offset_arcsec)
        path = folder / name
        fault_rules.write_with_faults(path, data, header, plan.faults)
        result.files.append(path)
        for fault in plan.faults:
            truth["faults"].append(fault_rules.describe(fault, name, plan))
            if fault == "duplicate":
                copy = fault_rules.duplicate_name(name)
                shutil.copyfile(path, folder / copy)
                result.files.append(folder / copy)
        record["file"] = name
        truth["files"][name] = record
        if plan.instrument not in truth["instrumental_polarization"]:
            entry = instrumental_polarization(plan.instrument, plan.start)
            truth["instrumental_polarization"][plan.instrument] = {
                "q_inst": entry.q_inst,
                "u_inst": entry.u_inst,
                "zero_angle_deg": entry.zero_angle_deg,
                "source": entry.source,
            }
        if plan.imgtype == "light" and plan.target:
            model = models[plan.target]
            if plan.obsmode == "photometry":
                p, chi = model.polarization(plan.mid_time, plan.band)
                truth["photometry"].append(
                    {
                        "file": name,
                        "target": plan.target,
                        "instrument": plan.instrument,
                        "band": plan.band,
                        "jd_mid": Time(plan.mid_time, scale="utc").jd,
                        "mag": model.magnitude(plan.band, plan.mid_time),
                        "p": p,
                        "chi": chi,
                        "faults": list(plan.faults),
                    }
                )
            else:
                sequences.setdefault(plan.sequence, []).append((name, plan))
    for sequence, members in sequences.items():
        truth["polarimetry"].append(_sequence_truth(sequence, members, models))
    truth["applied_faults"] = applied
    write_text_atomic(folder / TRUTH_FILE, json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return result


def _sequence_truth(sequence: str, members, models: dict[str, TargetModel]) -> dict:
    first = members[0][1]
    model = models[first.target]
    times = [plan.mid_time for _, plan in members]
    mid = times[0] + (times[-1] - times[0]) / 2
    ps, chis, mags = [], [], []
    for when in times:
        p, chi = model.polarization(when, "R")
        ps.append(p)
        chis.append(chi)
        mags.append(model.magnitude("R", when))
    q, u = stokes_from_polarization(np.array(ps), np.array(chis))
    q_mean, u_mean = float(np.mean(q)), float(np.mean(u))
    p_mean = math.hypot(q_mean, u_mean)
    chi_mean = math.degrees(0.5 * math.atan2(u_mean, q_mean)) % 180.0
    spec = first.spec
    expected = {float(a) for a in spec.pol_angles}
    present = {float(plan.angle) for _, plan in members}
    return {
        "sequence": sequence,
        "target": first.target,
        "instrument": first.instrument,
        "band": "R",
        "members": [name for name, _ in members],
        "angles": [plan.angle for _, plan in members],
        "missing_angles": sorted(expected - present),
        "jd_mid": Time(mid, scale="utc").jd,
        "mag": float(np.mean(mags)),
        "p": p_mean,
        "chi": chi_mean,
        "q": q_mean,
        "u": u_mean,
    }


def frame_wcs(plan: FramePlan) -> WCS:
    """The true TAN WCS of the frame's pixels (1-based FITS convention)."""
    spec = plan.spec
    ny, nx = plan.full_shape
    scale = spec.pixscale_at(plan.binning) / 3600.0
    theta = math.radians(plan.rotation_deg)
    parity = -1.0 if plan.flip else 1.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(plan.centre)
    wcs.wcs.crpix = [(nx + 1) / 2.0 - plan.window.x0, (ny + 1) / 2.0 - plan.window.y0]
    wcs.wcs.cd = np.array(
        [
            [-scale * math.cos(theta), parity * scale * math.sin(theta)],
            [scale * math.sin(theta), parity * scale * math.cos(theta)],
        ]
    )
    return wcs


def pair_offset(plan: FramePlan) -> tuple[float, float] | None:
    """Pixel displacement of the left-hand Wollaston image from the right-hand one."""
    if not plan.spec.has_pairs(plan.obsmode):
        return None
    offset = plan.spec.oe_offset_at(plan.binning)
    dx, dy = offset
    return (dx, -dy) if plan.flip else (dx, dy)


def render_frame(
    plan: FramePlan,
    models: dict[str, TargetModel],
    sky,
    rng: np.random.Generator,
    cosmic_ray_scale: float = 1.0,
):
    """Pixels and truth record of one exposure (cosmic rays at ``cosmic_ray_scale`` times
    the simulator's rate)."""
    spec = plan.spec
    window = plan.window
    shape = (window.ny, window.nx)
    record = {
        "imgtype": plan.imgtype,
        "instrument": plan.instrument,
        "band": plan.band,
        "obsmode": plan.obsmode,
        "angle": plan.angle,
        "exptime": plan.exptime,
        "jd_start": Time(plan.start, scale="utc").jd,
        "jd_mid": Time(plan.mid_time, scale="utc").jd,
        "binning": plan.binning,
        "shape": [window.nx, window.ny],
        "window": dataclasses.asdict(window),
        "flip": plan.flip,
        "target": plan.target,
        "sequence": plan.sequence,
        "faults": list(plan.faults),
    }
    if plan.imgtype in ("bias", "dark"):
        signal = np.zeros(shape)
    elif plan.imgtype == "flat":
        level_e = (
            plan.flat_level_adu * spec.gain_e_per_adu - spec.bias_level_adu * spec.gain_e_per_adu
        )
        signal = level_e * window.cut(
            flat_pattern(spec.name, plan.band, plan.full_shape, plan.binning)
        )
        record["flat_level_adu"] = plan.flat_level_adu
    else:
        signal, extra = _render_light(plan, models, sky)
        record.update(extra)
    data, hits = expose(
        signal,
        spec,
        exptime=plan.exptime,
        window=window,
        full_shape=plan.full_shape,
        rng=rng,
        cosmic_rays=plan.imgtype != "bias",
        cosmic_ray_scale=cosmic_ray_scale,
    )
    record["cosmic_ray_pixels"] = [list(hit) for hit in hits]
    return data, record


def _render_light(plan: FramePlan, models: dict[str, TargetModel], sky):
    spec = plan.spec
    window = plan.window
    transparency = plan.transparency * (0.03 if "clouds" in plan.faults else 1.0)
    wcs = frame_wcs(plan)
    ny, nx = plan.full_shape
    scale = spec.pixscale_at(plan.binning)
    radius_arcmin = math.hypot(nx, ny) / 2.0 * scale / 60.0 + 1.0
    stars = stars_near(sky, plan.centre[0], plan.centre[1], radius_arcmin)
    stars = stars[stars["R"] < RENDER_FAINT_LIMIT + 1.5]
    ra = np.array(stars["ra"], dtype=float)
    dec = np.array(stars["dec"], dtype=float)
    mags = np.array(stars[plan.band], dtype=float)
    q = np.zeros(len(stars))
    u = np.zeros(len(stars))
    names = [str(n) for n in np.ma.filled(np.asarray(stars["name"]).astype(str), "")]
    for index, star_name in enumerate(names):
        if star_name in models:
            model = models[star_name]
            mags[index] = model.magnitude(plan.band, plan.mid_time)
            q[index], u[index] = stokes_from_polarization(
                *model.polarization(plan.mid_time, plan.band)
            )
    for model in models.values():
        if model.variable:
            ra = np.append(ra, model.ra_deg)
            dec = np.append(dec, model.dec_deg)
            mags = np.append(mags, model.magnitude(plan.band, plan.mid_time))
            qs, us = stokes_from_polarization(*model.polarization(plan.mid_time, plan.band))
            q = np.append(q, qs)
            u = np.append(u, us)
            names.append(model.name)
    x, y = wcs.all_world2pix(ra, dec, 0)  # 0-based pixels of this file (window)
    rate0 = ZERO_MAG_RATE_R[plan.instrument] * BAND_THROUGHPUT[plan.band]
    flux = rate0 * 10 ** (-0.4 * mags) * plan.exptime * transparency
    entry = instrumental_polarization(plan.instrument, plan.start)
    q_raw, u_raw = sky_to_instrument(
        q, u, q_inst=entry.q_inst, u_inst=entry.u_inst, zero_angle_deg=entry.zero_angle_deg
    )
    sky_e = (
        rate0 * 10 ** (-0.4 * SKY_MAG_ARCSEC2[plan.band]) * scale**2 * plan.exptime * transparency
    )
    fwhm_px = plan.seeing_arcsec / scale
    image = np.zeros((window.ny, window.nx))
    beams = []
    offset = pair_offset(plan)
    if spec.polarimetry == "wheel" and plan.obsmode == "polarimetry":
        beams.append((0.0, 0.0, polarizer_transmission(q_raw, u_raw, plan.angle)))
        sky_e *= 0.5
    elif offset is not None:
        angle = plan.angle if plan.obsmode == "polarimetry" else 0.0
        plus, minus = wollaston_beams(q_raw, u_raw, angle)
        beams.append((0.0, 0.0, minus))
        beams.append((offset[0], offset[1], plus))
    else:
        beams.append((0.0, 0.0, np.ones(len(flux))))
    margin = 30.0 * fwhm_px
    trail = (20.0, 4.0) if "trail" in plan.faults else (0.0, 0.0)
    for dx, dy, factor in beams:
        bx = x + dx
        by = y + dy
        inside = (
            (bx > -margin) & (bx < window.nx + margin) & (by > -margin) & (by < window.ny + margin)
        )
        add_stars(image, bx[inside], by[inside], (flux * factor)[inside], fwhm_px, trail=trail)
    image += sky_e
    image *= window.cut(flat_pattern(spec.name, plan.band, plan.full_shape, plan.binning))
    header = wcs.to_header()
    extra = {
        "seeing_fwhm_arcsec": plan.seeing_arcsec,
        "transparency": transparency,
        "sky_e_per_pixel": sky_e,
        "pointing": list(plan.pointing) if plan.pointing else None,
        "wcs": {key: header[key] for key in header},
        "wcs_pair": None,
        "pair_offset_px": list(offset) if offset else None,
    }
    if offset is not None:
        pair = wcs.deepcopy()
        pair.wcs.crpix = [pair.wcs.crpix[0] + offset[0], pair.wcs.crpix[1] + offset[1]]
        pair_header = pair.to_header()
        extra["wcs_pair"] = {key: pair_header[key] for key in pair_header}
    peak_fraction = moffat_peak_fraction(fwhm_px)
    targets = []
    for index, star_name in enumerate(names):
        if star_name in models:
            targets.append(
                {
                    "name": star_name,
                    "x": float(x[index]),
                    "y": float(y[index]),
                    "flux_e": float(flux[index]),
                    "q_raw": float(q_raw[index]),
                    "u_raw": float(u_raw[index]),
                    "beams": [
                        {
                            "x": float(x[index] + dx),
                            "y": float(y[index] + dy),
                            "flux_e": float(flux[index] * factor[index]),
                            "peak_adu": float(
                                spec.bias_level_adu
                                + (flux[index] * factor[index] * peak_fraction + sky_e)
                                / spec.gain_e_per_adu
                            ),
                        }
                        for dx, dy, factor in beams
                    ],
                }
            )
    extra["targets"] = targets
    return image, extra
