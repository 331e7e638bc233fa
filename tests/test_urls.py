import datetime as dt

from iopreport import urls


def test_slugs_are_safe_and_distinct():
    assert urls.slug("BL Lac") == "bl-lac"
    assert urls.slug("S5 0716+714") == "s5-0716p714"
    assert urls.slug("PKS 0735-17") == "pks-0735-17"
    assert urls.slug("BD+32 3739") != urls.slug("BD-32 3739")
    assert urls.source_page("BL Lac") == "sources/bl-lac.html"
    assert urls.night_page(dt.date(2024, 10, 8), "OSN-T090") == "nights/2024-10-08/osn-t090.html"
    assert urls.summary_page(dt.date(2024, 10, 8)) == "summaries/2024-10-08.html"
