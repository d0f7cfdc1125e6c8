"""Training data: random crops of an image folder, drawn deterministically from (seed, sample number).

Every training sample has a global number ``s = step · global_batch + j``. Everything about it — which image
(a seeded permutation per epoch, so each epoch visits every image once), the crop position, the flips and, for
variable-rate models, the rate point — comes from ``numpy.random.default_rng([seed, s])``. A data loader
therefore has no state besides the step: resuming at step t reproduces exactly the samples an uninterrupted
run would have seen, whatever the number of worker processes, and under ``torchrun`` rank r of W simply takes
samples ``j ∈ [r·B/W, (r+1)·B/W)`` of every global batch, so the ranks together see the same batches as one
process with the global batch (see ``fastlic.training.distributed``).

Images smaller than the crop: the image is first upscaled (bicubic, aspect ratio kept) so that its shorter
side equals the crop size, then cropped. Reflection padding would copy content into the crop; upscaling keeps
every pixel natural at the price of a blurrier sample, and only hits images that are small for the crop
(e.g. the 321-pixel side of BSDS500 images for a 512 crop).

Crop-size schedule: ``[[0, 256], [N, 512]]`` means 256-pixel crops from step 0 and 512-pixel crops from step N
(the MLIC++ recipe); a batch always has one crop size.
"""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def list_images(roots, weights=None) -> list[Path]:
    """Image files of one source or a list of sources, in an order every process shares.

    A source is a folder (its images, recursively) or a glob pattern (``.../wikipedia/0[0-3]?.png``: a split of a
    folder without copying it). Each source's files are sorted by path; ``weights`` (one positive integer per
    source) repeats a source's files that many times, so that an epoch visits, e.g., the 39 clean lossless
    photos three times for every pass over BSDS500 (sampling weights without changing the per-sample
    determinism of :class:`CropDataset`)."""
    import glob as _glob  # noqa: PLC0415

    sources = [roots] if isinstance(roots, (str, Path)) else list(roots)
    weights = [1] * len(sources) if not weights else [int(w) for w in weights]
    if len(weights) != len(sources) or any(w < 1 for w in weights):
        raise ValueError(f"data weights {weights} do not fit {len(sources)} data sources (positive integers)")
    files = []
    for root, weight in zip(sources, weights):
        root = Path(root)
        if any(ch in str(root) for ch in "*?["):
            found = [Path(p) for p in _glob.glob(str(root))]
            found = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
            if not found:
                raise FileNotFoundError(f"{root}: no image matches")
        elif not root.is_dir():
            raise FileNotFoundError(f"{root}: not a directory")
        else:
            found = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        files += sorted(set(found)) * weight
    return files


def load_rgb(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))  # a writable copy (torch.from_numpy needs one)


class CropSchedule:
    """Crop size as a function of the step: a list of ``(first_step, size)`` pairs."""

    def __init__(self, schedule):
        if isinstance(schedule, int):
            schedule = [[0, schedule]]
        pairs = sorted((int(s), int(c)) for s, c in schedule)
        if not pairs or pairs[0][0] != 0:
            raise ValueError("crop schedule must start at step 0, e.g. [[0, 256], [1000000, 512]]")
        if any(c < 16 for _, c in pairs):
            raise ValueError("crop sizes must be at least 16 pixels")
        self.pairs = pairs

    def size_at(self, step: int) -> int:
        size = self.pairs[0][1]
        for first, c in self.pairs:
            if step >= first:
                size = c
        return size


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator, flips: bool = True) -> np.ndarray:
    """A ``size x size`` crop (upscaling images whose shorter side is below ``size``), randomly flipped."""
    h, w = img.shape[:2]
    if min(h, w) < size:
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BICUBIC))
        h, w = nh, nw
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    crop = img[top : top + size, left : left + size]
    if flips:
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
    return np.array(crop)  # contiguous and writable


class CropDataset(torch.utils.data.Dataset):
    """Indexed by ``(sample_number, crop_size)``; returns ``(image [3, S, S] float in [0, 1], rate_index)``."""

    def __init__(self, files, seed: int = 0, num_rates: int = 1, flips: bool = True):
        if not files:
            raise ValueError("no training images")
        self.files, self.seed, self.num_rates, self.flips = list(files), int(seed), int(num_rates), flips
        self._perm_epoch, self._perm = -1, None

    def __len__(self):  # nominal; samples are addressed by number, not by position
        return len(self.files)

    def image_for(self, sample: int) -> int:
        n = len(self.files)
        epoch = sample // n
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch, 0x5EED]).permutation(n)
            self._perm_epoch = epoch
        return int(self._perm[sample % n])

    def __getitem__(self, key):
        sample, size = key
        rng = np.random.default_rng([self.seed, int(sample)])
        img = load_rgb(self.files[self.image_for(int(sample))])
        crop = random_crop(img, int(size), rng, self.flips)
        rate = int(rng.integers(self.num_rates)) if self.num_rates > 1 else 0
        return torch.from_numpy(crop).permute(2, 0, 1).float().div_(255), rate


class StepBatches(torch.utils.data.Sampler):
    """Yields, for steps ``start..total-1``, this rank's keys ``(sample_number, crop_size)`` of the step."""

    def __init__(self, start: int, total: int, global_batch: int, crops: CropSchedule, rank: int = 0,
                 world: int = 1):
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by {world} processes")
        self.start, self.total, self.global_batch, self.crops = start, total, global_batch, crops
        self.local = global_batch // world
        self.offset = rank * self.local

    def __len__(self):
        return max(0, self.total - self.start)

    def __iter__(self):
        for step in range(self.start, self.total):
            first = step * self.global_batch + self.offset
            size = self.crops.size_at(step)
            yield [(first + j, size) for j in range(self.local)]


def _collate(items):
    return torch.stack([im for im, _ in items]), torch.tensor([r for _, r in items], dtype=torch.long)


def _worker_ignores_stop_signals(_worker_id: int) -> None:
    """Ctrl-C, ``kill -TERM -- -PGID`` or ``pkill -f`` reach the loader's workers as well as the trainer. The
    trainer stops at the end of the step, saves and shuts the workers down itself; a worker that died of the
    signal first would make the loader raise in the middle of that save."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def train_loader(files, *, start: int, total: int, global_batch: int, crops: CropSchedule, seed: int,
                 num_rates: int = 1, rank: int = 0, world: int = 1, workers: int = 0, flips: bool = True,
                 pin_memory: bool = False):
    """Batches ``(images, rate_indices)`` for steps ``start..total-1`` (see module docstring)."""
    ds = CropDataset(files, seed, num_rates, flips)
    sampler = StepBatches(start, total, global_batch, crops, rank, world)
    # a private generator: creating the iterator must not consume the global torch RNG (exact resume)
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=workers, collate_fn=_collate,
                                       pin_memory=pin_memory, persistent_workers=False,
                                       worker_init_fn=_worker_ignores_stop_signals if workers else None,
                                       generator=torch.Generator().manual_seed(seed),
                                       prefetch_factor=2 if workers else None)


class ValidationImages:
    """Held-out images for validation, whole (the model pads them); at most ``limit`` of them, every
    ``len / limit``-th so that the subset spans the folder."""

    def __init__(self, files, limit: int | None = None):
        files = list(files)
        if limit and len(files) > limit:
            idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
            files = [files[i] for i in idx]
        self.files = files

    def __iter__(self):
        for f in self.files:
            yield f, torch.from_numpy(load_rgb(f)).permute(2, 0, 1).float().div_(255)[None]

    def __len__(self):
        return len(self.files)
