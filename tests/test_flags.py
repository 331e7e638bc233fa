"""flags.toml without a store: parsing and its errors, matching, editing (issue 6)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from iopreport.catalog import load_catalog
from iopreport.errors import InputError, UsageError
from iopreport.flags.edit import add_flag, next_id, remove_flag
from iopreport.flags.match import FrameView, ResultView, result_bits, selects_frame
from iopreport.flags.model import Flag
from iopreport.flags.parse import datetime_to_jd, flags_from_source, load_flags, parse_time
from iopreport.store.bits import ManualFlags
from iopreport.tomlsource import TomlSource

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "catalog.toml")


def parse(text: str, catalog=None):
    return flags_from_source(TomlSource.from_text(textwrap.dedent(text), "flags.toml"), catalog)


GOOD = """\
# a comment
[[flag]]
id = "F0001"
what = "photometry"
source = "BL Lac"
night = 2024-10-08
reason = "clouds"
author = "J. Doe"
date = 2024-10-09

[[flag]]
id = "dome-1"
what = ["photometry", "polarimetry"]
telescope = "T090"
instrument = "dipol"
band = ["r", "V"]
mode = "polarimetry"
from = "2024-10-08T22:30:00Z"
to = 2460592.5
reason = "dome shadow"
author = "A. B."
date = "2024-10-10"

[[flag]]
id = "F0003"
what = "frame"
file = ["OSN-T150/2024-10-08/BLLac-0019R.fit", "x.fits"]
reason = "satellite trail"
author = "C. D."
date = 2024-10-11
"""


def test_good_file_parses_with_lines_and_canonical_values(catalog):
    flagset = parse(GOOD, catalog)
    first, second, third = flagset.flags
    assert [f.id for f in flagset] == ["F0001", "dome-1", "F0003"]
    assert [f.line for f in flagset] == [2, 11, 24]
    assert first.source == ("2200+420",)  # other name -> the catalog's main name
    assert first.night == (dt.date(2024, 10, 8),)
    assert second.telescope == ("OSN-T090",)
    assert second.instrument == ("DIPOL",)
    assert second.band == ("R", "V")
    assert second.jd_from == pytest.approx(datetime_to_jd(dt.datetime(2024, 10, 8, 22, 30)))
    assert second.jd_to == 2460592.5
    assert second.date == dt.date(2024, 10, 10)
    assert third.is_frame_flag and flagset.frame_flags == (third,)
    assert flagset.get("dome-1") is second


def test_shipped_flags_file_is_valid_and_empty(catalog):
    assert len(load_flags(REPO / "flags.toml", catalog)) == 0


def test_example_in_docs_is_valid(catalog):
    """Every ```toml block of docs/flags.md that holds [[flag]] tables loads."""
    text = (REPO / "docs" / "flags.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```toml\n")[1:]]
    blocks = [b for b in blocks if "[[flag]]" in b]
    assert len(blocks) >= 2
    for block in blocks:
        assert len(parse(block, catalog)) >= 1


def bad(text: str, catalog=None) -> str:
    with pytest.raises(InputError) as info:
        parse(text, catalog)
    return str(info.value)


FLAG = """\
# first line
[[flag]]
id = "F1"
what = "photometry"
source = "BL Lac"
reason = "r"
author = "a"
date = 2024-10-09
"""


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("source", 'sorce = "BL Lac"'), "flags.toml:5: flag[0].sorce: unknown key (did you mean"),
        (("date", "date = 2024-13-09"), "flags.toml:8: TOML syntax error"),
        (("date", 'date = "09/10/2024"'), "flags.toml:8: flag[0].date: not a date YYYY-MM-DD"),
        (("date", "date = 2999-01-01"), "flags.toml:8: flag[0].date: 2999-01-01 is in the future"),
        (("source", 'source = "BL Lca"'), "flags.toml:5: flag[0].source: unknown source 'BL Lca'"),
        (("what", 'what = "photo"'), "flags.toml:4: flag[0].what: unknown value 'photo'"),
        (("source", 'night = "2024-10-32"'), "flags.toml:5: flag[0].night: not a date"),
        (("source", 'from = "yesterday"'), "flags.toml:5: flag[0].from: not an ISO date-time"),
        (("source", "from = 12.5"), "flags.toml:5: flag[0].from: 12.5 is not a Julian date"),
        (("source", "from = 2024-10-08"), "flags.toml:5: flag[0].from: 2024-10-08 is a date"),
        (("source", 'telescope = "T300"'), "flags.toml:5: flag[0].telescope: unknown telescope"),
        (("source", 'band = "Q"'), "flags.toml:5: flag[0].band: unknown value 'Q'"),
        (("source", 'instrument = "HST"'), "flags.toml:5: flag[0].instrument: unknown value"),
        (("source", 'file = "a/b.fits"'), "flags.toml:5: flag[0].file: 'a/b.fits' is not"),
        (("source", "source = []"), "flags.toml:5: flag[0].source: must not be an empty array"),
        (("id", 'id = "my flag"'), "flags.toml:3: flag[0].id: must be letters"),
        (("reason", 'reason = " "'), "flags.toml:6: flag[0].reason: must not be empty"),
        (("author", ""), "flags.toml:2: flag[0]: [[flag]] is missing required key 'author'"),
        (("source", ""), "flags.toml:2: flag[0]: selects everything"),
    ],
)
def test_each_mistake_is_named_with_its_line(catalog, change, expected):
    key, replacement = change
    lines = [replacement if line.startswith(f"{key} =") else line for line in FLAG.splitlines()]
    assert bad("\n".join(lines) + "\n", catalog).startswith(expected)


def test_whole_file_mistakes(catalog):
    twice = FLAG + FLAG.replace("# first line\n", "\n", 1)
    assert bad(twice, catalog).startswith(
        "flags.toml:11: flag[1].id: id 'F1' is already used by the flag on line 2"
    )
    assert bad('[flag]\nid = "x"\n').startswith("flags.toml:1: flag: must be an array of tables")
    assert bad("flag_list = 3\n").startswith("flags.toml:1: flag_list: unknown key")
    text = FLAG.replace("date = 2024-10-09", "date = 2024-10-09\nfrom = 2460593.0\nto = 2460592.0")
    assert bad(text, catalog).startswith("flags.toml:10: flag[0].to: is before 'from'")
    text = FLAG.replace('what = "photometry"', 'what = "polarimetry"\nmode = "photometry"')
    assert "polarimetry cannot be bad" in bad(text, catalog)


def test_missing_file_means_no_flags(tmp_path):
    """docs/flags.md: a missing flags.toml means no flags (a deleted file must not stop builds)."""
    assert len(load_flags(tmp_path / "flags.toml").flags) == 0


def test_times_iso_and_jd():
    assert parse_time("2000-01-01T12:00:00") == 2451545.0
    assert parse_time("2000-01-01 12:00:00+02:00") == pytest.approx(2451545.0 - 2 / 24)
    assert parse_time(2451545) == 2451545.0
    assert parse_time("2451545.25") == 2451545.25
    assert parse_time(dt.datetime(2000, 1, 1, 18, tzinfo=dt.UTC)) == 2451545.25
    with pytest.raises(ValueError):
        parse_time(True)


# ----------------------------------------------------------------------------- matching


def flag(**selectors) -> Flag:
    values = {"what": ("photometry",), "reason": "r", "author": "a", "date": dt.date(2024, 1, 1)}
    values.update(selectors)
    return Flag(id="F", **values)


NIGHT = dt.date(2024, 10, 8)
PHOT = ResultView(
    source="2200+420",
    mode="photometry",
    instrument="AndorT150",
    band="R",
    telescope="OSN-T150",
    night=NIGHT,
    jd_min=2460592.32,
    jd_max=2460592.32,
    members=("OSN-T150/2024-10-08/BLLac-0019R.fit",),
)
POL = ResultView(
    source="2200+420",
    mode="polarimetry",
    instrument="AndorT150",
    band="R",
    telescope="OSN-T150",
    night=NIGHT,
    jd_min=2460592.30,
    jd_max=2460592.34,
    members=tuple(f"OSN-T150/2024-10-08/BLLac-002{i}R.fit" for i in range(4)),
)


@pytest.mark.parametrize(
    ("selectors", "phot", "pol"),
    [
        ({"source": ("2200+420",)}, True, True),
        ({"source": ("2251+158",)}, False, False),
        ({"telescope": ("OSN-T090",)}, False, False),
        ({"telescope": ("OSN-T150",), "night": (NIGHT,)}, True, True),
        ({"night": (dt.date(2024, 10, 9),)}, False, False),
        ({"mode": ("polarimetry",)}, False, True),
        ({"band": ("V", "R")}, True, True),
        ({"instrument": ("DIPOL",)}, False, False),
        ({"file": ("BLLac-0019R.fit",)}, True, False),
        ({"file": ("BLLac-0022R.fit",)}, False, True),  # any member of a group
        ({"file": ("OSN-T090/2024-10-08/BLLac-0019R.fit",)}, False, False),
        ({"jd_from": 2460592.33}, False, True),  # the group's span overlaps
        ({"jd_to": 2460592.31}, False, True),
        ({"jd_from": 2460592.31, "jd_to": 2460592.325}, True, True),
        ({"jd_from": 2460592.35, "jd_to": 2460592.4}, False, False),
        ({"source": ("2200+420",), "band": ("V",)}, False, False),  # every selector must accept
    ],
)
def test_selectors(selectors, phot, pol):
    assert bool(result_bits(flag(**selectors), PHOT)) is phot
    assert bool(result_bits(flag(**selectors), POL)) is pol


def test_what_sets_its_bit_and_polarimetry_only_on_polarimetric_results():
    both = flag(source=("2200+420",), what=("photometry", "polarimetry"))
    assert result_bits(both, PHOT) == ManualFlags.BAD_PHOTOMETRY
    assert result_bits(both, POL) == ManualFlags.BAD_PHOTOMETRY | ManualFlags.BAD_POLARIMETRY
    pol_only = flag(source=("2200+420",), what=("polarimetry",))
    assert result_bits(pol_only, PHOT) == 0
    assert result_bits(flag(source=("2200+420",), what=("frame",)), POL) == 0


def test_frame_selection():
    frame = FrameView(
        fileloc="OSN-T150/2024-10-08/BLLac-0019R.fit",
        telescope="OSN-T150",
        night=NIGHT,
        instrument="AndorT150",
        band="R",
        mode="photometry",
        jd=2460592.32,
        target="2200+420",
    )
    assert selects_frame(flag(what=("frame",), file=("BLLac-0019R.fit",)), frame)
    assert selects_frame(flag(what=("frame",), source=("2200+420",), night=(NIGHT,)), frame)
    assert not selects_frame(flag(what=("frame",), source=("2251+158",)), frame)
    assert not selects_frame(flag(what=("frame",), jd_from=2460592.33), frame)
    untargeted = FrameView(**{**frame.__dict__, "target": None, "jd": None})
    assert not selects_frame(flag(what=("frame",), source=("2200+420",)), untargeted)
    assert not selects_frame(flag(what=("frame",), jd_to=2460593.0), untargeted)


# ----------------------------------------------------------------------------- editing

COMMENTED = """\
# Quality flags.
# header comment kept

# about F0001
[[flag]]
id = "F0001"  # inline comment
what = "photometry"
# inside F0001
source = "BL Lac"
reason = "clouds"
author = "J. Doe"
date = 2024-10-09

# about F0002
[[flag]]
id = "F0002"
what = "frame"
file = "x.fits"
reason = "trail"
author = "J. Doe"
date = 2024-10-09
# last comment
"""


def validator(catalog):
    def validate(text):
        return flags_from_source(TomlSource.from_text(text, "flags.toml"), catalog)

    return validate


def test_add_keeps_comments_and_order(tmp_path, catalog):
    path = tmp_path / "flags.toml"
    path.write_text(COMMENTED)
    values = {
        "what": ["photometry", "polarimetry"],
        "source": ["3C 454.3"],
        "night": ["2024-10-08"],
        "from": "2024-10-08T22:00:00",
        "to": 2460592.5,
        "reason": "focus drift",
        "author": "Ann",
        "date": dt.date(2024, 10, 10),
    }
    assert add_flag(path, values, validator(catalog)) == "F0003"
    text = path.read_text()
    assert text.startswith(COMMENTED)  # everything before is byte for byte the same
    added = text[len(COMMENTED) :]
    assert added == textwrap.dedent(
        """
        [[flag]]
        id = "F0003"
        what = ["photometry", "polarimetry"]
        source = "3C 454.3"
        night = "2024-10-08"
        from = "2024-10-08T22:00:00"
        to = 2460592.5
        reason = "focus drift"
        author = "Ann"
        date = 2024-10-10
        """
    )
    flagset = load_flags(path, catalog)
    assert [f.id for f in flagset] == ["F0001", "F0002", "F0003"]
    assert flagset.get("F0003").source == ("2251+158",)


def test_add_to_the_shipped_file_and_default_date(tmp_path, catalog):
    path = tmp_path / "flags.toml"
    original = (REPO / "flags.toml").read_text()
    path.write_text(original)
    add_flag(
        path, {"what": "frame", "file": "a.fits", "reason": "r", "author": "a"}, validator(catalog)
    )
    text = path.read_text()
    assert text.startswith(original)
    assert load_flags(path, catalog).get("F0001").date == dt.datetime.now(dt.UTC).date()


def test_add_refuses_what_would_not_load_and_leaves_the_file(tmp_path, catalog):
    path = tmp_path / "flags.toml"
    path.write_text(COMMENTED)
    with pytest.raises(InputError, match="unknown source 'Nowhere'"):
        add_flag(
            path,
            {"what": "photometry", "source": "Nowhere", "reason": "r", "author": "a"},
            validator(catalog),
        )
    with pytest.raises(UsageError, match="exists already"):
        add_flag(path, {"id": "F0001", "what": "frame", "file": "a.fits"}, validator(catalog))
    assert path.read_text() == COMMENTED
    assert [p.name for p in tmp_path.iterdir()] == ["flags.toml"]  # no temporary left


def test_remove_keeps_every_other_line(tmp_path, catalog):
    path = tmp_path / "flags.toml"
    path.write_text(COMMENTED)
    remove_flag(path, "F0001", validator(catalog))
    text = path.read_text()
    before = COMMENTED.splitlines()
    removed = before[4:12]  # the [[flag]] header to its last key
    assert "# inside F0001" in removed
    assert text.splitlines() == [line for i, line in enumerate(before) if not 4 <= i < 12]
    assert [f.id for f in load_flags(path, catalog)] == ["F0002"]
    remove_flag(path, "F0002", validator(catalog))
    assert "[[flag]]" not in path.read_text()
    assert "# about F0002" in path.read_text() and "# last comment" in path.read_text()
    with pytest.raises(UsageError, match="no flag with id 'F0002'"):
        remove_flag(path, "F0002", validator(catalog))


def test_remove_middle_flag_keeps_the_next_flags_comment(tmp_path, catalog):
    path = tmp_path / "flags.toml"
    text = (
        COMMENTED
        + "\n# about F0003\n"
        + COMMENTED.split("# about F0002\n")[1]
        .replace("F0002", "F0003")
        .replace("# last comment\n", "")
    )
    path.write_text(text)
    remove_flag(path, "F0002", validator(catalog))
    after = path.read_text()
    assert '# about F0003\n[[flag]]\nid = "F0003"' in after
    assert "# last comment" in after and 'id = "F0002"' not in after


def test_next_id():
    assert next_id([]) == "F0001"
    assert next_id(["F0001", "dome-1", "F0041"]) == "F0042"


def test_a_flag_may_name_an_instrument_described_in_config(tmp_path):
    """One registry: an instrument from config.toml is a known flag selector of that config
    (and of no other: loading a config changes nothing process-wide)."""
    from iopreport.config import load_config
    from iopreport.skeleton import init_project

    text = (
        '[[flag]]\nid = "F1"\nwhat = "photometry"\ninstrument = "FLAGCAM"\n'
        'reason = "r"\nauthor = "a"\ndate = 2024-10-09\n'
    )
    with pytest.raises(InputError, match="instrument: unknown value"):
        parse(text)
    init_project(tmp_path / "site")
    path = tmp_path / "site" / "config.toml"
    path.write_text(
        path.read_text()
        + '\n[instruments.FLAGCAM]\ntelescope = "OSN-T090"\ninstrume = "FlagCam"\n'
        + "pixscale_arcsec = 0.5\ngain_e_per_adu = 1.0\n"
    )
    config = load_config(path)
    source = TomlSource.from_text(text, "flags.toml")
    (flag,) = flags_from_source(source, registry=config.registry).flags
    assert flag.instrument == ("FLAGCAM",)
    with pytest.raises(InputError, match="instrument: unknown value"):
        parse(text)
