"""Synthetic point sets with known answers for the analysis tests."""

from __future__ import annotations

import numpy as np
import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > 5_000, f"{path} is suspiciously small ({len(data)} bytes)"


@pytest.fixture
def assert_png():
    """A checker: ``assert_png(path)`` fails unless ``path`` is a non-empty PNG file."""
    return _assert_png


@pytest.fixture
def subspace5() -> np.ndarray:
    """1,500 Gaussian points on a random 5-dimensional linear subspace of R^20 (intrinsic dimension 5)."""
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.standard_normal((20, 5)))
    return rng.standard_normal((1500, 5)) @ basis.T + 2.0


@pytest.fixture
def three_clusters() -> tuple[np.ndarray, np.ndarray]:
    """900 points from three well-separated Gaussian clusters in R^6, with their labels."""
    rng = np.random.default_rng(2)
    centres = np.array([[0.0] * 6, [8.0] + [0.0] * 5, [0.0, 8.0] + [0.0] * 4])
    labels = np.repeat(np.arange(3), 300)
    return centres[labels] + rng.standard_normal((900, 6)), labels


@pytest.fixture
def isotropic() -> np.ndarray:
    """2,000 points of a centred isotropic Gaussian in R^12."""
    return np.random.default_rng(3).standard_normal((2000, 12))


@pytest.fixture
def anisotropic() -> np.ndarray:
    """2,000 centred Gaussian points in R^12 whose standard deviations fall from 10 to 0.1."""
    rng = np.random.default_rng(4)
    return rng.standard_normal((2000, 12)) * np.geomspace(10.0, 0.1, 12)


def unlisted_lines(fig) -> list[str]:
    """The lines, markers, step histograms, scatters and bar groups of ``fig`` that no legend names."""
    from matplotlib.collections import PathCollection
    from matplotlib.container import BarContainer
    from matplotlib.patches import StepPatch

    legends = [ax.get_legend() for ax in fig.axes] + list(fig.legends)
    named = {t.get_text() for leg in legends if leg is not None for t in leg.get_texts()}
    missing = []
    for ax in fig.axes:
        if not ax.get_visible() or not ax.axison:
            continue
        drawn = [*ax.lines, *(c for c in ax.collections if isinstance(c, PathCollection)),
                 *(p for p in ax.patches if isinstance(p, StepPatch)),
                 *(c for c in ax.containers if isinstance(c, BarContainer))]
        for artist in drawn:
            label = artist.get_label()
            if not label or label.startswith("_") or label not in named:
                missing.append(f"{ax.get_title()!r}: {type(artist).__name__} labelled {label!r}")
    return missing


@pytest.fixture
def legend_lists_every_line():
    """A checker: ``legend_lists_every_line(fig)`` fails naming every drawn line that no legend lists."""
    def check(fig) -> None:
        missing = unlisted_lines(fig)
        assert not missing, "lines without a legend entry:\n" + "\n".join(missing)

    return check
