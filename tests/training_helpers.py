"""Shared pieces of the training tests (also imported by the torchrun worker script)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fastlic.training.config import make_config


def make_images(folder, count: int = 6, seed: int = 0) -> None:
    """Small smooth-ish RGB images of assorted sizes (some smaller than the crops used in the tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
        base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((w, h), Image.BILINEAR)
        img.save(folder / f"img{i}.png")


def tiny_config(data, out, **over):
    values = dict(model="mlicpp-tiny", data=[str(data)], out=str(out), lmbda=[0.01], steps=4, batch_size=4,
                  crop=[[0, 64]], workers=0, threads=1, tensorboard=False, val_interval=1000, ckpt_interval=1000,
                  lr=1e-3, log_interval=1)
    values.update(over)
    return make_config(**values)
