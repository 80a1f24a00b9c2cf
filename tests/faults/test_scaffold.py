"""The suite's own assertion: it accepts a clean error and rejects a traceback or a second line."""

from __future__ import annotations

import pytest

from tests.faults.conftest import fails_cleanly


def test_accepts_one_error_line(tmp_path):
    line = fails_cleanly(["data", "info", "ml30m"], "unknown dataset", untouched=tmp_path)
    assert line.startswith("error: ")


def test_rejects_a_successful_command():
    with pytest.raises(AssertionError):
        fails_cleanly(["version"])
