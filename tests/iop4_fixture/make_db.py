"""Build a real IOP4 database with IOP4's own code (run inside the test-only IOP4 venv).

Usage: ``.venv-iop4/bin/python tests/iop4_fixture/make_db.py WORKDIR``

IOP4's Django migrations (``makemigrations iop4api`` then ``migrate``, as its
README installs it) create the schema in ``WORKDIR/iop4.db``; its ORM inserts
the sources, calibration links, polarization standards, epochs, frames and
results; three results get a flag set by hand and one is flagged by IOP4's
``auto_flag``. ``WORKDIR/expected.json`` is what IOP4's ORM reads back, for the
tests to compare the import with. Values are synthetic (no real photometry).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

N_TARGETS = 11


def main(work: Path) -> None:
    import iop4lib

    work.mkdir(parents=True, exist_ok=True)
    db = work / "iop4.db"
    if db.exists():
        db.unlink()
    conf = iop4lib.Config(
        config_db=False,
        datadir=str(work / "iop4data"),
        db_path=str(db),
        config_logging=False,
    )
    conf.configure_db()
    from django.core.management import call_command

    call_command("makemigrations", "iop4api", verbosity=0)
    call_command("migrate", verbosity=0)

    from iop4api.models import AstroSource, Epoch, PhotoPolResult, ReducedFit

    rng = random.Random(19)
    targets, calibrators = [], []
    for i in range(N_TARGETS):
        ra_h, dec_d = 1 + 2 * i, -10 + 6 * i
        target = AstroSource.objects.create(
            name=f"{ra_h:02d}{30 + i:02d}+{abs(dec_d):03d}" if dec_d >= 0 else f"T{i:02d}-{i}",
            other_names=f"Target {i};Tgt{i}" if i % 3 else "",
            ra_hms=f"{ra_h:02d}:{10 + i:02d}:{12.345 + i:06.3f}",
            dec_dms=f"{'+' if dec_d >= 0 else '-'}{abs(dec_d):02d}:{20 + i:02d}:{30.5 + i:04.1f}",
            srctype="tde" if i == N_TARGETS - 1 else "blazar",
            comment="Monitored target.\n\n*Markdown* comment." if i == 0 else None,
            redshift=round(0.05 + 0.1 * i, 4) if i % 2 == 0 else None,
        )
        targets.append(target)
        for letter in "AB":
            star = AstroSource.objects.create(
                name=f"{target.name} {letter}",
                ra_hms=f"{ra_h:02d}:{10 + i:02d}:{20.1 + (letter == 'B') * 5:06.3f}",
                dec_dms=f"{'+' if dec_d >= 0 else '-'}{abs(dec_d):02d}:{21 + i:02d}:10.0",
                srctype="star",
                mag_R=round(rng.uniform(11, 15), 3),
                mag_R_err=round(rng.uniform(0.01, 0.05), 3),
                mag_V=round(rng.uniform(11.5, 15.5), 3),
                mag_V_err=round(rng.uniform(0.01, 0.05), 3) if letter == "A" else None,
                mag_B=round(rng.uniform(12, 16), 3) if i % 2 else None,
                mag_B_err=round(rng.uniform(0.02, 0.06), 3) if i % 2 else None,
            )
            star.calibrates.add(target)
            calibrators.append(star)
    # a comparison star shared by two targets
    calibrators[0].calibrates.add(targets[1])
    standards = [
        AstroSource.objects.create(
            name="BD+25 727",
            other_names="BD+25727",
            ra_hms="04:44:24.93",
            dec_dms="+25:31:42.6",
            srctype="star",
            p=0.0489,
            p_err=0.0003,
            chi=59.1,
            chi_err=0.2,
            mag_R=7.6,
        ),
        AstroSource.objects.create(
            name="HD 14069",
            ra_hms="02:16:45.19",
            dec_dms="+07:41:10.6",
            srctype="star",
            p=0.0002,
            p_err=0.0002,
            chi=None,
            mag_V=9.0,
            mag_V_err=0.01,
        ),
    ]
    epochs = {
        ("OSN-T090", "2024-10-08"): None,
        ("OSN-T090", "2024-10-09"): None,
        ("OSN-T150", "2024-10-08"): None,
        ("CAHA-T220", "2024-10-08"): None,
    }
    for telescope, night in epochs:
        epochs[(telescope, night)] = Epoch.objects.create(telescope=telescope, night=night)
    jd0 = {"2024-10-08": 2460592.40, "2024-10-09": 2460593.40}
    counter = [0]

    def frame(telescope, night, instrument, obsmode, band, name, angle=None):
        counter[0] += 1
        return ReducedFit.objects.create(
            epoch=epochs[(telescope, night)],
            filename=f"{name}-{counter[0]:04d}{band}.fit",
            instrument=instrument,
            obsmode=obsmode,
            band=band,
            imgtype="LIGHT",
            juliandate=jd0[night] + counter[0] * 0.002,
            exptime=60.0,
            rotangle=angle,
            imgsize="2048x2048",
        )

    results = []

    def photometry(target, telescope, night, instrument, band):
        rf = frame(telescope, night, instrument, "PHOTOMETRY", band, target.name.replace(" ", ""))
        mag = round(rng.uniform(13, 17), 4)
        result = PhotoPolResult.create(
            reducedfits=[rf],
            astrosource=target,
            reduction="relphot",
            aperpix=round(rng.uniform(6, 12), 2),
            flux_counts=round(rng.uniform(1e4, 1e5), 1),
            flux_counts_err=round(rng.uniform(50, 300), 1),
            mag_inst=round(mag - 25.0, 4),
            mag_inst_err=0.01,
            mag_zp=25.0,
            mag_zp_err=0.02,
            mag=mag,
            mag_err=round(rng.uniform(0.01, 0.08), 4),
        )
        results.append(result)
        return result

    def polarimetry(target, telescope, night, instrument, band, angles):
        rfs = [
            frame(
                telescope, night, instrument, "POLARIMETRY", band, target.name.replace(" ", ""), a
            )
            for a in angles
        ]
        result = PhotoPolResult.create(
            reducedfits=rfs,
            astrosource=target,
            reduction="relpol",
            mag=round(rng.uniform(13, 17), 4),
            mag_err=round(rng.uniform(0.01, 0.05), 4),
            p=round(rng.uniform(0.01, 0.2), 5),
            p_err=round(rng.uniform(0.001, 0.01), 5),
            chi=round(rng.uniform(0, 180), 3),
            chi_err=round(rng.uniform(0.5, 5), 3),
            _q_nocorr=round(rng.uniform(-0.1, 0.1), 5),
            _u_nocorr=round(rng.uniform(-0.1, 0.1), 5),
        )
        results.append(result)
        return result

    for target in targets:
        photometry(target, "OSN-T090", "2024-10-08", "AndorT90", "R")
        photometry(target, "OSN-T090", "2024-10-09", "AndorT90", "R")
        photometry(target, "OSN-T090", "2024-10-09", "AndorT90", "B")
        photometry(target, "OSN-T150", "2024-10-08", "AndorT150", "V")
    for target in [*targets[:5], *standards]:
        polarimetry(target, "OSN-T090", "2024-10-08", "DIPOL", "R", (0.0, 22.5, 45.0, 67.5))
    for target in targets[5:8]:
        polarimetry(target, "CAHA-T220", "2024-10-08", "CAFOS2.2", "R", (0.0, 22.5, 45.0, 67.5))

    # flags set by hand, as IOP4's web interface sets them
    manual = [
        (results[0], PhotoPolResult.FLAGS.BAD_PHOTOMETRY),
        (results[5], PhotoPolResult.FLAGS.BAD_PHOTOMETRY),
        (results[-2], PhotoPolResult.FLAGS.BAD_POLARIMETRY),
    ]
    for result, bit in manual:
        result.set_flag(bit)
        result.save()
    # one result flagged by IOP4's automatic rule (magnitude error above 0.3)
    noisy = photometry(targets[2], "OSN-T150", "2024-10-08", "AndorT150", "R")
    noisy.mag_err = 0.45
    noisy.save()
    noisy.auto_flag()

    expected = {
        "sources": [
            {
                **{
                    k: getattr(s, k)
                    for k in (
                        "id",
                        "name",
                        "other_names",
                        "ra_hms",
                        "dec_dms",
                        "srctype",
                        "comment",
                        "redshift",
                        "p",
                        "p_err",
                        "chi",
                        "chi_err",
                        *(f"mag_{b}{e}" for b in "UBVRI" for e in ("", "_err")),
                    )
                },
                "calibrates": sorted(t.name for t in s.calibrates.all()),
            }
            for s in AstroSource.objects.order_by("id")
        ],
        "results": [
            {
                "id": r.id,
                "source": r.astrosource.name,
                "reduction": r.reduction,
                "obsmode": r.obsmode,
                "instrument": r.instrument,
                "band": r.band,
                "telescope": r.epoch.telescope,
                "night": str(r.epoch.night),
                "juliandate": r.juliandate,
                "exptime": r.exptime,
                "files": sorted(
                    f"{rf.epoch.telescope}/{rf.epoch.night}/{rf.filename}"
                    for rf in r.reducedfits.all()
                ),
                "flags": int(r.flags),
                **{k: getattr(r, k) for k in ("mag", "mag_err", "p", "p_err", "chi", "chi_err")},
            }
            for r in PhotoPolResult.objects.order_by("id")
        ],
        "manual_flags": [
            {
                "id": r.id,
                "bit": int(bit.value),
                "files": sorted(rf.fileloc for rf in r.reducedfits.all()),
            }
            for r, bit in manual
        ],
        "auto_flagged": [noisy.id],
    }
    (work / "expected.json").write_text(json.dumps(expected, indent=1, default=str))
    from django.db import connection

    connection.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
