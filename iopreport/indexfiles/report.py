"""Text of ``iopreport index plan`` and of the index section of ``iopreport status``."""

from __future__ import annotations

from iopreport.indexfiles.plan import Plan
from iopreport.indexfiles.series import scale_range_arcmin
from iopreport.indexfiles.tiles import tiles_covering


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _ranges(values: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    parts: list[str] = []
    for value in sorted(values):
        if parts and value == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{value}"
        else:
            parts.append(str(value))
    return ", ".join(parts)


def render_plan(plan: Plan, *, by_source: bool = False) -> str:
    """The plan as text: instruments, files with sizes and presence, totals."""
    scan = plan.scan
    lines = [
        f"index folder: {scan.directory} ({len(scan.index)} index files"
        + (f", {len(scan.rejected)} other files" if scan.rejected else "")
        + ")",
    ]
    lines += [f"  not used: {path}: {reason}" for path, reason in scan.rejected.items()]
    lines += ["", f"{'instrument':<12} {'field':<15} {'quads':<15} series  scales"]
    for name, fov in plan.fields.items():
        needs = [n for n in plan.needs if n.instrument == name]
        series = sorted({n.series for n in needs})
        scales = sorted({s for n in needs for s in n.scales})
        absent = sorted({s for n in needs for s in n.missing_scales})
        low, high = fov.quad_range_arcmin
        size = f"{fov.width_arcmin:.1f}'x{fov.height_arcmin:.1f}'" + ("*" if fov.assumed else "")
        quads = f"{low:.2f}'-{high:.2f}'"
        line = f"{name:<12} {size:<15} {quads:<15} {','.join(series):<7} {_ranges(scales) or '-'}"
        if absent:
            gaps = [scale_range_arcmin(s) for s in absent]
            line += (
                f" (quads {min(g[0] for g in gaps):.1f}'-{max(g[1] for g in gaps):.1f}' "
                "wanted: no such scale in the series)"
            )
        lines.append(line)
    if any(fov.assumed for fov in plan.fields.values()):
        lines.append("* detector size unknown: 2048x2048 pixels assumed")
    if by_source:
        lines += ["", "tiles per source (HEALPix, astrometry.net numbering):"]
        for need in plan.needs:
            tiles = sorted({f.tile for f in need.files if f.tile >= 0})
            lines.append(
                f"  {need.source:<22} {need.instrument:<10} "
                f"tiles {', '.join(str(t) for t in tiles) or 'all-sky'}"
            )
    lines += ["", f"{'file':<28} {'size':>12}  status      sources"]
    for name, file in sorted(plan.files.items()):
        users = sorted({need.source for need in plan.users(name)})
        status = "present" if name in plan.present else "missing"
        lines.append(f"{name:<28} {megabytes(file.size):>12}  {status:<10}  {len(users)}")
    present_bytes = plan.total_bytes - plan.missing_bytes
    lines += [
        "",
        f"needed: {len(plan.files)} files, {megabytes(plan.total_bytes)}; "
        f"present: {len(plan.present)} ({megabytes(present_bytes)}); "
        f"to download: {len(plan.missing)} ({megabytes(plan.missing_bytes)})",
    ]
    if plan.missing:
        lines.append("download them with `iopreport index fetch`")
    return "\n".join(lines)


def covering(plan: Plan, source, instrument: str) -> list:
    """Index headers whose quads fit ``instrument``'s field and whose sky holds ``source``'s
    field (an all-sky file, or a tile the field touches)."""
    fov = plan.fields[instrument]
    low, high = fov.quad_range_arcmin
    tiles: dict[int, set[int]] = {}
    found = []
    for header in plan.scan.index:
        if header.scale_upper_arcmin <= low or header.scale_lower_arcmin >= high:
            continue
        if not header.all_sky:
            if header.nside not in tiles:
                tiles[header.nside] = set(
                    tiles_covering(source.ra_deg, source.dec_deg, fov.radius_deg, header.nside)
                )
            if header.healpix not in tiles[header.nside]:
                continue
        found.append(header)
    return found


def coverage_text(plan: Plan, source, instrument: str) -> str:
    """ "ok" when every scale the plan wants is covered, else the quad sizes that are."""
    headers = covering(plan, source, instrument)
    if not headers:
        return "none"
    need = next(n for n in plan.needs if n.source == source.name and n.instrument == instrument)
    wanted = [scale_range_arcmin(scale)[0] for scale in need.scales]
    if all(
        any(abs(h.scale_lower_arcmin / lower - 1.0) < 0.05 for h in headers) for lower in wanted
    ):
        return "ok"
    low, high = plan.fields[instrument].quad_range_arcmin
    covered_low = max(low, min(h.scale_lower_arcmin for h in headers))
    covered_high = min(high, max(h.scale_upper_arcmin for h in headers))
    return f"quads {covered_low:.1f}'-{covered_high:.1f}' of {low:.1f}'-{high:.1f}'"


def coverage_lines(plan: Plan, sources) -> list[str]:
    """One line per catalog source: for each instrument, whether index files cover it."""
    scan = plan.scan
    lines = [
        f"index:     {scan.directory}: {len(scan.index)} index files"
        + (f" ({len(scan.rejected)} other files not used)" if scan.rejected else "")
    ]
    if not scan.index:
        lines.append("           none: see `iopreport index plan`, then `iopreport index fetch`")
        return lines
    for source in sources:
        parts = [f"{name} {coverage_text(plan, source, name)}" for name in plan.fields]
        lines.append(f"  {source.name:<22} " + ", ".join(parts))
    return lines
