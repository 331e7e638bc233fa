"""Night summary content, alerts, plots and rendering, on a reduced simulated night (issue 8).

The night is the simulator's tiny OSN-T150 night, fetched and reduced for real
(one calibrated BL Lac magnitude); earlier nights, polarimetry, flagged results
and frames that gave nothing are inserted as rows (tests/mail_data.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import io
import math
import sqlite3
import subprocess
from email import policy

import numpy as np
import pytest
from mail_data import NIGHT, add_frame, add_result, configure
from matplotlib import image as mpimg
from test_cli import run

from iopreport.config import AlertsConfig, load_config
from iopreport.errors import InputError
from iopreport.mail.content import build_night_summary
from iopreport.mail.render import render_summary
from iopreport.mail.stats import spread
from iopreport.mail.summary import QuantityLine
from iopreport.reduce.night import reduce_night
from iopreport.stokes import Estimate, angle_mean, weighted_mean, wrap_chi_difference
from iopreport.store import (
    Epoch,
    ManualFlags,
    MasterFlat,
    PhotoPolMember,
    PhotoPolResult,
    ResultFlags,
    close_store,
    open_store,
)

SITE_URL = "https://blazars.example.org/iop"
#: Earlier nights of BL Lac at OSN-T090 (days before NIGHT) and their R magnitudes.
HISTORY = {60: 13.90, 50: 13.88, **{d: 13.70 + 0.04 * (d // 3 % 3) for d in range(30, 2, -3)}}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    from test_reduce import make_project

    tmp_path = tmp_path_factory.mktemp("mail")
    project, config, catalog = make_project(tmp_path, telescopes=("OSN-T150",))
    reduce_night(config, catalog, "OSN-T150", NIGHT, workers=2)
    configure(
        project / "config.toml",
        smtp={"site_url": SITE_URL, "contact_name": "Night Desk", "contact_email": "desk@x.org"},
        subscribers=[
            {"name": "everyone", "to": ["a@x.org"], "cc": ["b@x.org"], "bcc": ["c@x.org"]},
            {"name": "BL Lac fans", "to": ["d@x.org"], "sources": ["BL Lac"]},
            {"name": "quiet", "to": ["e@x.org"], "sources": ["3C 454.3"], "alerts_only": True},
        ],
    )
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    # the reduction's own polarimetric sequence is replaced by the hand-made rows below,
    # whose values the assertions know (the summary's arithmetic is what is tested here)
    PhotoPolResult.delete().where(PhotoPolResult.mode == "polarimetry").execute()
    # BL Lac: history at OSN-T090, the previous night D-1, polarimetry tonight
    for days, mag in HISTORY.items():
        when = NIGHT - dt.timedelta(days=days)
        add_result("2200+420", "OSN-T090", when, mode="photometry", mag=mag, mag_err=0.02)
        add_result("2200+420", "OSN-T090", when, mode="polarimetry", p=0.08, p_err=0.005, chi=5)
    add_result("2200+420", "OSN-T090", NIGHT - dt.timedelta(days=12), mode="photometry",
               hour=23, mag=13.72, mag_err=0.01)  # fmt: skip
    previous = NIGHT - dt.timedelta(days=1)
    add_result("2200+420", "OSN-T090", previous, mode="photometry", mag=13.59, mag_err=0.02)
    add_result("2200+420", "OSN-T090", previous, mode="photometry", mag=13.61, mag_err=0.02)
    add_result("2200+420", "OSN-T090", previous, mode="polarimetry", p=0.08, p_err=0.005, chi=2,
               chi_err=2.0)  # fmt: skip
    for p, p_err, chi, chi_err, hour in ((0.120, 0.005, 175, 2.0, 22.5), (0.124, 0.01, 178, 4, 23)):
        add_result("2200+420", "OSN-T150", NIGHT, mode="polarimetry", hour=hour, p=p,
                   p_err=p_err, chi=chi, chi_err=chi_err)  # fmt: skip
    add_result("2200+420", "OSN-T150", NIGHT, mode="polarimetry", hour=23.5, p=0.40, p_err=0.2,
               chi=90, chi_err=20,
               flags=int(ResultFlags.BAD_POLARIMETRY | ResultFlags.LARGE_POL_ERROR))  # fmt: skip
    add_result("2200+420", "OSN-T150", NIGHT, mode="photometry", hour=24, mag=12.0,
               mag_err=0.02, manual_flags=int(ManualFlags.BAD_PHOTOMETRY))  # fmt: skip
    # 3C 454.3: a quiet source
    add_result("2251+158", "OSN-T150", NIGHT - dt.timedelta(days=2), mode="photometry",
               mag=15.45, mag_err=0.03)  # fmt: skip
    add_result("2251+158", "OSN-T150", NIGHT, mode="photometry", mag=15.50, mag_err=0.03)
    # observed without a calibrated magnitude
    add_frame("OSN-T150", NIGHT, "3C279-0030R.fit", object_name="3C 279")
    add_frame("OSN-T150", NIGHT, "OJ287-0031R.fit", object_name="OJ287")
    add_result("0851+202", "OSN-T150", NIGHT, mode="photometry", n_calibrators=1,
               flags=int(ResultFlags.FEW_CALIBRATORS | ResultFlags.BAD_PHOTOMETRY))  # fmt: skip
    # failures
    add_frame("OSN-T150", NIGHT, "Focus-0032.fit", imgtype=None, obsmode=None,
              error="classify: IMAGETYP 'FOCUS' is not a MaxIm DL frame type")  # fmt: skip
    MasterFlat.create(
        epoch=Epoch.get(telescope="OSN-T150", night=NIGHT), filename="masterflat/bad.fits",
        instrument="AndorT150", imgsize="512x512", binning="1x1", band="V",
        obsmode="photometry", error="fewer than 3 usable flats",
    )  # fmt: skip
    yield project, config
    close_store()


def line_of(summary, name):
    return next(line for line in summary.sources if line.name == name)


def quantity(line, name, band="R"):
    return next(q for q in line.quantities if q.quantity == name and q.band == band)


def test_telescope_counts_and_failures(night):
    project, config = night
    summary = build_night_summary(config, NIGHT, plots=False)
    assert [t.telescope for t in summary.telescopes] == ["OSN-T150"]
    t150 = summary.telescopes[0]
    with sqlite3.connect(config.database_path) as db:  # counted independently, in SQL
        rows = db.execute(
            "SELECT COALESCE(r.imgtype, 'unclassified'), COUNT(*) FROM raw_fit r "
            "JOIN epoch e ON r.epoch_id = e.id WHERE e.night = ? GROUP BY 1",
            (NIGHT.isoformat(),),
        ).fetchall()
    assert {k: v for k, v in t150.frames.items() if v} == dict(rows)
    assert t150.frames["light"] == 7 and t150.frames["unclassified"] == 1
    assert t150.reduced == 5 and t150.failed == 0
    failures = {(f.kind, f.name): f.reason for f in t150.failures}
    assert failures == {
        ("raw", "Focus-0032.fit"): "classify: IMAGETYP 'FOCUS' is not a MaxIm DL frame type",
        ("master flat", "masterflat/bad.fits"): "fewer than 3 usable flats",
    }
    assert t150.status == "2 failed"
    assert t150.url == f"{SITE_URL}/nights/2024-10-08/osn-t150.html"


def test_tonight_previous_and_long_term_values(night):
    project, config = night
    summary = build_night_summary(config, NIGHT, plots=False)
    assert [line.name for line in summary.sources] == ["2200+420", "0851+202", "2251+158"]
    bl_lac = line_of(summary, "2200+420")
    reduced = PhotoPolMember.get().result  # the one magnitude the reduction measured
    mag = quantity(bl_lac, "mag")
    assert mag.tonight.value == pytest.approx(reduced.mag) and mag.tonight.n == 1
    assert mag.tonight.error == pytest.approx(reduced.mag_err)
    assert mag.previous_night == NIGHT - dt.timedelta(days=1)
    assert mag.previous.value == pytest.approx(13.60) and mag.previous.n == 2
    assert mag.previous.error == pytest.approx(0.02 / math.sqrt(2))
    assert mag.change == pytest.approx(reduced.mag - 13.60)
    # long term: one mean per earlier night (D-12 has two points, weights 1/0.02², 1/0.01²)
    means = dict(HISTORY)
    means[12] = (HISTORY[12] / 0.02**2 + 13.72 / 0.01**2) / (1 / 0.02**2 + 1 / 0.01**2)
    means[1] = 13.60
    values = np.array(list(means.values()))
    assert mag.history_nights == len(values)
    assert mag.longterm_centre == pytest.approx(np.median(values))
    assert mag.longterm_spread == pytest.approx(np.std(values, ddof=1))
    assert mag.brightest_before == pytest.approx(values.min())
    # polarimetry: the flagged point (p = 0.40) is left out
    weights = np.array([1 / 0.005**2, 1 / 0.01**2])
    p = quantity(bl_lac, "p")
    assert p.tonight.value == pytest.approx(np.average([0.120, 0.124], weights=weights))
    assert p.tonight.error == pytest.approx(1 / math.sqrt(weights.sum()))
    assert p.change == pytest.approx(p.tonight.value - 0.08)
    chi = quantity(bl_lac, "chi")
    chi_weights = np.array([1 / 2.0**2, 1 / 4.0**2])
    assert chi.tonight.value == pytest.approx(np.average([175, 178], weights=chi_weights), abs=0.01)
    assert chi.change == pytest.approx(chi.tonight.value - 180 - 2, abs=0.01)  # wrapped, not +173
    assert bl_lac.n_results == 5 and bl_lac.n_flagged == 2
    assert bl_lac.flag_reasons == {"bad photometry": 1, "large pol error": 1}
    assert bl_lac.telescopes == ("OSN-T150",)
    assert bl_lac.url == f"{SITE_URL}/sources/2200p420.html"
    assert summary.n_flagged == 3  # BL Lac's two and OJ 287's


def test_alert_rules(night):
    project, config = night
    summary = build_night_summary(config, NIGHT, plots=False)
    rules = {(a.source, a.rule) for a in summary.alerts}
    assert rules == {
        ("2200+420", "mag_change"),
        ("2200+420", "new_brightest"),
        ("2200+420", "p_change"),
    }
    texts = " | ".join(a.message for a in summary.alerts)
    assert "(brighter) since 2024-10-07" in texts and "p (R) changed by +4.1 %" in texts
    assert summary.subject == "iopreport night 2024-10-08: 3 sources, 3 alerts"
    # thresholds from [alerts]: a looser magnitude rule, the chi rule tight enough to fire
    looser = dataclasses.replace(
        config,
        alerts=dataclasses.replace(
            config.alerts, mag_change=1.0, chi_change_deg=3.0, new_brightest=False, p_change=0
        ),
    )
    rules = {(a.source, a.rule) for a in build_night_summary(looser, NIGHT, plots=False).alerts}
    assert rules == {("2200+420", "chi_change")}
    # the long-term spread rule, off by default
    spread_rule = dataclasses.replace(
        config, alerts=dataclasses.replace(config.alerts, spread_sigma=3.0)
    )
    alerts = build_night_summary(spread_rule, NIGHT, plots=False).alerts
    assert ("2200+420", "spread", "R") in {(a.source, a.rule, a.band) for a in alerts}


def test_targets_without_calibrated_magnitude(night):
    project, config = night
    summary = build_night_summary(config, NIGHT, plots=False)
    missing = {(m.source, m.telescope): m.reason for m in summary.missing}
    assert missing == {
        ("0851+202", "OSN-T150"): "too few calibrators measured (at most 1 of 3 listed) "
        "in 1 result(s)",
        ("1253-055", "OSN-T150"): "no calibrated magnitude from its frames",
    }
    oj287 = line_of(summary, "0851+202")
    assert oj287.quantities == () and oj287.n_flagged == 1


def test_subscriber_filter_uses_other_names(night):
    project, config = night
    summary = build_night_summary(config, NIGHT, plots=False)
    fans = summary.for_subscriber(config.subscribers[1])
    assert [line.name for line in fans.sources] == ["2200+420"]
    assert fans.missing == ()
    quiet = summary.for_subscriber(config.subscribers[2])
    assert [line.name for line in quiet.sources] == ["2251+158"] and quiet.alerts == ()
    assert summary.for_subscriber(config.subscribers[0]) is summary


def test_plot_png_has_a_panel_per_quantity(night):
    project, config = night
    summary = build_night_summary(config, NIGHT)
    bl_lac = line_of(summary, "2200+420")
    assert bl_lac.plot_png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = mpimg.imread(io.BytesIO(bl_lac.plot_png), format="png")
    assert pixels.shape[:2] == (510, 640)  # 3 panels: mag, p, chi
    quiet = line_of(summary, "2251+158")
    assert mpimg.imread(io.BytesIO(quiet.plot_png), format="png").shape[:2] == (210, 640)
    # only the last 30 days are drawn: the D-50 and D-60 points are not
    jds = [p.jd for p in bl_lac.points]
    assert min(jds) >= 2440587.5 + (NIGHT - dt.timedelta(days=29) - dt.date(1970, 1, 1)).days
    assert sum(p.tonight for p in bl_lac.points) == 8  # mag, p and chi of tonight's results


def test_rendered_text_and_html(night):
    project, config = night
    summary = build_night_summary(config, NIGHT)
    rendered = render_summary(summary, config.paths.templates_dir)
    text = rendered.text
    assert text.index("ALERTS") < text.index("OBSERVED WITHOUT") < text.index("TELESCOPES")
    assert text.index("TELESCOPES") < text.index("SOURCES")
    assert "R p: 12.1 ± 0.4 % (n=2)" in text
    assert "2 of 5 flagged bad and left out (bad photometry: 1, large pol error: 1)" in text
    assert "\nContact: Night Desk <desk@x.org>\nSite: https://blazars" in text
    assert f"{SITE_URL}/summaries/2024-10-08.html" in text
    html = rendered.html
    assert html.index('id="alerts"') < html.index('id="telescopes"')
    assert f'href="{SITE_URL}/sources/2200p420.html"' in html
    assert html.count('src="cid:plot-') == 2  # OJ 287 has no point to draw


def test_dry_run_writes_outbox_and_site_copy(night, iopreport_exe):
    project, config = night
    result = run(
        iopreport_exe, "--config", str(project / "config.toml"), "summary", "--night",
        NIGHT.isoformat(), "--dry-run",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    outbox = config.paths.outbox_dir / NIGHT.isoformat()
    assert sorted(p.name for p in outbox.iterdir()) == [
        "bl-lac-fans.eml", "bl-lac-fans.html", "everyone.eml", "everyone.html", "quiet.eml",
        "quiet.html",
    ]  # fmt: skip
    assert "[not sent: alerts_only and no alert]" in result.stdout
    message = email.message_from_bytes((outbox / "everyone.eml").read_bytes(), policy=policy.SMTP)
    assert message["To"] == "a@x.org" and message["Cc"] == "b@x.org" and "Bcc" not in message
    assert message["Subject"] == "iopreport night 2024-10-08: 3 sources, 3 alerts"
    page = (outbox / "everyone.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "cid:" not in page
    copy = config.paths.datadir / "summaries" / "2024-10-08.html"
    site_page = copy.read_text()
    assert site_page.count('src="data:image/png;base64,') == 2
    assert "Limited to" not in site_page and "0851+202" in site_page
    assert copy.stat().st_mode & 0o777 == 0o644
    # nothing was recorded as sent by a dry run
    with sqlite3.connect(config.database_path) as db:
        assert db.execute("SELECT COUNT(*) FROM sent_summary").fetchone() == (0,)


def test_cli_prints_text_and_rejects_unknown_subscriber(night, iopreport_exe):
    project, config = night
    base = [iopreport_exe, "--config", str(project / "config.toml"), "summary"]
    printed = run(*base, "--night", NIGHT.isoformat(), "--subscriber", "BL Lac fans")
    assert printed.returncode == 0, printed.stderr
    assert "Limited to: BL Lac" in printed.stdout and "2251+158" not in printed.stdout
    unknown = run(*base, "--night", NIGHT.isoformat(), "--subscriber", "nobody")
    assert unknown.returncode == 2
    assert "no subscriber named 'nobody'" in unknown.stderr
    both = subprocess.run([*base, "--night", "2024-10-08", "--send", "--dry-run"],
                          capture_output=True, text=True)  # fmt: skip
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_means_of_angles_and_values():
    assert angle_mean([179.0, 1.0], [None, None]).value == pytest.approx(0.0, abs=1e-9)
    assert angle_mean([170.0, 10.0], [1.0, 1.0]).value == pytest.approx(0.0, abs=1e-9)
    assert wrap_chi_difference(176 - 2) == pytest.approx(-6)
    assert wrap_chi_difference(-100) == pytest.approx(80)
    estimate = weighted_mean([1.0, 3.0], [None, None])
    assert (estimate.value, estimate.error) == (2.0, pytest.approx(1.0))
    assert weighted_mean([5.0], [None]).error is None
    centre, std = spread([178.0, 2.0, 0.0], angle=True)
    assert centre == pytest.approx(0.0, abs=1e-9) and std == pytest.approx(math.sqrt(4))
    assert spread([1.0]) is None


def test_alerts_section_and_ca_file_in_config(tmp_path, repo_root):
    shipped = load_config(repo_root / "config.toml")
    assert shipped.alerts == AlertsConfig()  # the shipped file states the defaults
    assert (shipped.alerts.mag_change, shipped.alerts.p_change) == (0.3, 0.03)
    assert (shipped.alerts.chi_change_deg, shipped.alerts.new_brightest) == (20.0, True)
    assert shipped.smtp.ca_file == ""
    path = tmp_path / "config.toml"
    path.write_text(
        "[smtp]\nca_file = 'certs/ca.pem'\n[alerts]\nmag_change = 0.5\nspread_sigma = 3\n"
        "new_brightest = false\n"
    )
    config = load_config(path)
    assert config.smtp.ca_file == str(tmp_path / "certs" / "ca.pem")
    assert config.alerts == AlertsConfig(mag_change=0.5, spread_sigma=3.0, new_brightest=False)


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("[alerts]\nmag_change = -0.3\n", 2, "alerts.mag_change: must be 0 (rule off) or greater"),
        ("[alerts]\n\nnew_brightest = 'yes'\n", 3, "alerts.new_brightest: must be true or false"),
        ("[alerts]\nmin_history_nights = 0\n", 2, "alerts.min_history_nights: must be greater"),
        ("[alerts]\nmag_jump = 0.3\n", 2, "alerts.mag_jump: unknown key"),
    ],
)
def test_bad_alert_rules_name_key_and_line(tmp_path, text, line, expected):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path.resolve()}:{line}: ")
    assert expected in str(caught.value)


def test_offset_from_the_long_term_median():
    line = QuantityLine("p", "R", Estimate(0.12, 0.004, 2), longterm_centre=0.08,
                        longterm_spread=0.003, history_nights=9)  # fmt: skip
    assert line.spread_offset == pytest.approx(0.04 / 0.005)
    flat = dataclasses.replace(line, tonight=Estimate(0.12, None, 1), longterm_spread=1e-17)
    assert flat.spread_offset is None  # identical history and no error: no scale to compare with
    chi = QuantityLine("chi", "R", Estimate(176.0, 3.0, 1), longterm_centre=2.0,
                       longterm_spread=4.0)  # fmt: skip
    assert chi.spread_offset == pytest.approx(-6 / 5)
