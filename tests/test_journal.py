"""A campaign's journal: resumed when it is this campaign's, started afresh (with a warning
naming the file) when it is unreadable or not a journal, which an edit or a disk can make."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from iopreport.reprocess import JOURNAL_VERSION, Journal

KEY = {"from": "2024-10-08", "to": "2024-10-12", "telescopes": ["OSN-T090"]}
NIGHT = ("OSN-T090", dt.date(2024, 10, 8))
LATER = ("OSN-T090", dt.date(2024, 10, 9))


def test_a_journal_of_the_same_campaign_is_resumed(tmp_path):
    path = tmp_path / "campaigns" / "c.json"
    Journal(path, KEY).record("masters", [NIGHT, LATER])
    Journal(path, KEY).record("nights", [NIGHT])
    resumed = Journal(path, KEY)
    assert resumed.done("masters", LATER) and resumed.done("nights", NIGHT)
    assert not resumed.done("nights", LATER)
    other = Journal(path, {**KEY, "to": "2024-10-13"})  # another campaign's key
    assert not other.done("masters", NIGHT)


@pytest.mark.parametrize(
    "text, problem",
    [
        ('{"version": 1, "key": ', "Expecting value"),
        ("[1, 2]", "a JSON list, not an object"),
        ('"masters"', "a JSON str, not an object"),
        (None, "masters: not a list of night names"),
    ],
)
def test_an_unreadable_journal_starts_the_campaign_afresh(tmp_path, caplog, text, problem):
    path = tmp_path / "c.json"
    if text is None:  # this campaign's version and key, but an edited list of steps
        text = json.dumps({"version": JOURNAL_VERSION, "key": KEY, "masters": 5, "nights": []})
    path.write_text(text)
    with caplog.at_level(logging.WARNING, logger="iopreport.reprocess"):
        journal = Journal(path, KEY)
    assert f"{path}: unreadable campaign journal ({problem}" in caplog.text
    assert not journal.done("masters", NIGHT)
    journal.record("masters", [NIGHT])  # and it records again, into a valid file
    assert json.loads(path.read_text())["masters"] == ["OSN-T090 2024-10-08"]
    assert Journal(path, KEY).done("masters", NIGHT)
