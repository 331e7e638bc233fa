"""Line numbers of keys, which every error message about a TOML file relies on."""

from __future__ import annotations

import pytest

from iopreport.errors import InputError
from iopreport.tomlsource import TomlSource, format_key

TEXT = """\
# comment
title = "x"          # line 2

[paths]
datadir = "data"     # line 5
"quoted key" = 1     # line 6

[archives.OSN-T090]
host = "h"           # line 9
file_patterns = [
  "a=b",
  "c",
]
port = 21            # line 14

[[source]]
name = "A"           # line 17
mag.R = [1.0, 0.1]   # line 18
comment = '''
name = "not a key"
'''
[[source]]
name = "B"           # line 23
ra = "1:00:00"       # line 24
"""


def test_lines_of_keys_tables_and_array_elements():
    source = TomlSource.from_text(TEXT, "x.toml")
    assert source.line_of(("title",)) == 2
    assert source.line_of(("paths", "datadir")) == 5
    assert source.line_of(("paths", "quoted key")) == 6
    assert source.line_of(("archives", "OSN-T090")) == 8
    assert source.line_of(("archives", "OSN-T090", "host")) == 9
    assert source.line_of(("archives", "OSN-T090", "port")) == 14
    assert source.line_of(("source", 0, "name")) == 17
    assert source.line_of(("source", 0, "mag", "R")) == 18
    assert source.line_of(("source", 1, "name")) == 23
    assert source.line_of(("source", 1, "ra")) == 24
    # an unwritten key falls back to its table
    assert source.line_of(("source", 1, "dec")) == 22
    assert source.line_of(("paths", "nothing")) == 4


def test_syntax_error_reports_line():
    with pytest.raises(InputError) as caught:
        TomlSource.from_text('a = 1\n[paths]\ndatadir = "unterminated\n', "broken.toml")
    assert caught.value.line == 3
    assert str(caught.value).startswith("broken.toml:3: TOML syntax error")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        TomlSource.read(tmp_path / "nope.toml")


def test_format_key():
    assert format_key(("source", 3, "ra")) == "source[3].ra"
    assert format_key(("archives", "OSN-T090", "port")) == "archives.OSN-T090.port"
