"""Strict JSON for results that hold numpy values: one converter and one atomic writer for every
command (replay summaries, sweeps, analyses, the demo).

JSON has no NaN or infinity, so non-finite floats become ``null``; numpy scalars and arrays become
plain numbers and lists; paths become strings. Anything else is refused with a ``TypeError``
naming its type, rather than written half-converted.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recvae.storage import atomic_path


def to_jsonable(obj: Any, *, digits: int | None = None) -> Any:
    """``obj`` with numpy values converted (recursively) for strict JSON.

    ``digits``: round floats to this many significant digits (analyses report 7, enough for
    float32-derived statistics and short to read); ``None`` keeps full precision.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, digits=digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, digits=digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), digits=digits)
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        if not math.isfinite(f):
            return None
        return f if digits is None else float(f"{f:.{digits}g}")
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, obj: Any, *, digits: int | None = None) -> Path:
    """Write ``obj`` (through :func:`to_jsonable`) as indented strict JSON, atomically."""
    dest = Path(path)
    text = json.dumps(to_jsonable(obj, digits=digits), indent=2, allow_nan=False)
    with atomic_path(dest) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return dest
