"""Fixtures of the evaluation tests: the published Kodak anchors (a copy in tests/data/anchors) and two small crops
of the package's photo (Kodak's kodim23), so that they run in every checkout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastlic.testing import PHOTO, REPO


@pytest.fixture(scope="session")
def anchors_dir() -> Path:
    return REPO / "tests" / "data" / "anchors" / "kodak"


@pytest.fixture(scope="session")
def crops_dir(tmp_path_factory) -> Path:
    """Two crops of the package's photo, 176 x 200 (odd sizes for the codecs, large enough for MS-SSIM's 5
    scales): the parrots' heads and the green background."""
    from PIL import Image

    d = tmp_path_factory.mktemp("crops")
    with Image.open(PHOTO) as im:
        photo = np.asarray(im.convert("RGB"))
    for name, (top, left) in (("kodim23-a.png", (150, 250)), ("kodim23-b.png", (20, 520))):
        Image.fromarray(photo[top:top + 176, left:left + 200]).save(d / name)
    return d
