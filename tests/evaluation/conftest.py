"""Fixtures of the evaluation tests: the shared Kodak images and anchors, and two small crops of Kodak."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastlic.testing import require_shared


@pytest.fixture(scope="session")
def anchors_dir() -> Path:
    return require_shared("anchors", "kodak")


@pytest.fixture(scope="session")
def crops_dir(tmp_path_factory) -> Path:
    """Two crops of Kodak images, 176 x 200 (odd sizes for the codecs, large enough for MS-SSIM's 5 scales)."""
    from PIL import Image

    kodak = require_shared("data", "kodak")
    d = tmp_path_factory.mktemp("crops")
    for name, (top, left) in (("kodim05.png", (100, 300)), ("kodim23.png", (150, 250))):
        with Image.open(kodak / name) as im:
            a = np.asarray(im.convert("RGB"))[top:top + 176, left:left + 200]
        Image.fromarray(a).save(d / name)
    return d
