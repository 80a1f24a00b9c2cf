"""Strict JSON output: numpy values converted, non-finite floats to null, optional rounding,
unknown types refused, atomic write."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from simcache.jsonout import to_jsonable, write_json


def test_numpy_values_and_non_finite_floats(tmp_path):
    obj = {"a": np.float32(1.5), "b": np.arange(3), "c": float("nan"), "d": [np.inf, np.int64(4)], 5: True,
           "e": (np.bool_(False), None, "s"), "p": Path("x/y")}  # fmt: skip
    path = write_json(tmp_path / "x.json", obj)
    assert json.loads(path.read_text()) == {
        "a": 1.5, "b": [0, 1, 2], "c": None, "d": [None, 4], "5": True, "e": [False, None, "s"], "p": "x/y",
    }  # fmt: skip
    assert to_jsonable(math.inf) is None


def test_full_precision_unless_digits_given():
    x = np.float64(0.123456789012345)
    assert to_jsonable(x) == 0.123456789012345
    assert to_jsonable({"a": [x, np.float32(0.1)]}, digits=7) == {"a": [0.1234568, 0.1]}


def test_unknown_types_are_refused(tmp_path):
    with pytest.raises(TypeError, match="set"):
        write_json(tmp_path / "bad.json", {"a": {1, 2}})
    assert not (tmp_path / "bad.json").exists()
