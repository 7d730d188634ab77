"""Test helper for errors the user can cause."""

from contextlib import contextmanager

import pytest

from hrm_mlx.errors import HrmMlxError


@contextmanager
def raises_one_line(match: str):
    """pytest.raises for HrmMlxError that also insists on a one-line message."""
    with pytest.raises(HrmMlxError, match=match) as info:
        yield info
    assert "\n" not in str(info.value)


def assert_one_line_error(code, err, expected):
    """A command's exit for bad input: code 2 and one "hrm-mlx: error: ..." line on stderr naming ``expected``."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hrm-mlx: error: "), err
    assert expected in lines[0], lines[0]
