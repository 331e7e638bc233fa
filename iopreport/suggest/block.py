"""The ``[[source]]`` entries ``catalog suggest`` prints for catalog.toml."""

from __future__ import annotations

import datetime as dt

import tomlkit

from iopreport.suggest.rules import Choice, Rules

#: Published sources of the data and rules, named in every entry.
PS1_REFERENCE = (
    "Pan-STARRS1 DR2 mean aperture magnitudes (Chambers et al. 2016, arXiv:1612.05560; "
    "Flewelling et al. 2020, ApJS 251, 7) via MAST"
)
GAIA_REFERENCE = "Gaia DR3 (Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1), epoch 2016.0"
RULES_REFERENCE = (
    "chosen by iopreport catalog suggest: rules of IOP4 (Escudero Pedrosa et al. 2024, "
    "AJ 168, 84) and WEBT practice (Villata et al. 1998, A&AS 130, 305)"
)


def _pair(value: float, err: float) -> list[float]:
    return [round(value, 4), round(max(err, 0.0001), 4)]


def calibrator_name(target: str, index: int) -> str:
    """``<target> cmp<k>``: distinct from the lettered names of published sequences."""
    return f"{target} cmp{index}"


def suggestion_toml(name: str, ra: float, dec: float, choice: Choice, rules: Rules) -> str:
    """The target's entry and one entry per chosen star, with the rules as comments."""
    document = tomlkit.document()
    today = dt.date.today().isoformat()
    document.add(tomlkit.comment(f"Comparison stars for {name} suggested on {today}."))
    document.add(tomlkit.comment("Rules (a star passes all of them):"))
    for line in rules.describe(choice.target_r, choice.target_colour):
        document.add(tomlkit.comment(f"  - {line}"))
    document.add(tomlkit.comment("B, V, R, I are derived from ps1.g/r/i when the file is read"))
    document.add(tomlkit.comment("(Tonry et al. 2012, ApJ 750, 99; docs/catalog.md)."))
    sources = tomlkit.aot()
    target = tomlkit.table()
    target["name"] = name
    target["type"] = "blazar"
    target["ra"] = round(ra, 7)
    target["dec"] = round(dec, 7)
    target["calibrators"] = [calibrator_name(name, k + 1) for k in range(len(choice.chosen))]
    target["references"] = [f"Position as given to catalog suggest; calibrators {RULES_REFERENCE}"]
    sources.append(target)
    for k, candidate in enumerate(choice.chosen, start=1):
        star, gaia = candidate.star, candidate.gaia
        entry = tomlkit.table()
        entry["name"] = calibrator_name(name, k)
        if star.obj_name:
            entry["other_names"] = [star.obj_name]
        entry["type"] = "calibrator"
        entry["ra"] = round(gaia.ra if gaia else star.ra, 7)
        entry["dec"] = round(gaia.dec if gaia else star.dec, 7)
        ps1 = tomlkit.inline_table()
        for band in ("g", "r", "i"):
            value, err, _std = star.mags[band]
            ps1[band] = _pair(value, err)
        entry["ps1"] = ps1
        derived = ", ".join(
            f"{band} = {d.value:.3f} +- {d.err:.3f}" for band, d in candidate.johnson.items()
        )
        entry["comment"] = (
            f"{candidate.distance_arcsec / 60:.2f} arcmin from {name}; g - r = "
            f"{candidate.colour:.2f}; {derived}"
        )
        references = [f"{PS1_REFERENCE}, objID {star.obj_id}"]
        if gaia:
            references.append(f"Position: {GAIA_REFERENCE}, source_id {gaia.source_id}")
        references.append(RULES_REFERENCE)
        entry["references"] = references
        sources.append(entry)
    document["source"] = sources
    return tomlkit.dumps(document)
