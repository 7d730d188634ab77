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
