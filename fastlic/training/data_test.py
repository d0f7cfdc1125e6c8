import numpy as np
import pytest
import torch
from PIL import Image

from fastlic.training.data import CropDataset, CropSchedule, StepBatches, list_images, random_crop, train_loader


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(1)
    sizes = [(40, 30), (200, 150), (90, 130), (64, 64)]  # (w, h): two are smaller than the 96 crop
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_lists_images_only_sorted(folder):
    files = list_images(folder)
    assert [f.name for f in files] == ["im0.png", "im1.png", "im2.png", "im3.png"]


def test_small_images_are_upscaled_to_the_crop():
    img = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    crop = random_crop(img, 96, np.random.default_rng(0))
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    # upscaling keeps the aspect ratio: 30x40 -> 96x128, so the crop is not a stretched copy of the whole image
    assert crop.flags.writeable and crop.flags.c_contiguous


def test_every_image_gives_the_crop_size(folder):
    ds = CropDataset(list_images(folder), seed=3, num_rates=5)
    for s in range(8):
        x, rate = ds[(s, 96)]
        assert x.shape == (3, 96, 96) and 0 <= float(x.min()) and float(x.max()) <= 1
        assert 0 <= rate < 5


def test_samples_depend_only_on_seed_and_number(folder):
    files = list_images(folder)
    a, b = CropDataset(files, seed=7, num_rates=3), CropDataset(files, seed=7, num_rates=3)
    for s in (5, 0, 11, 5):  # any access order
        xa, ra = a[(s, 32)]
        xb, rb = b[(s, 32)]
        assert torch.equal(xa, xb) and ra == rb
    assert not torch.equal(a[(1, 32)][0], CropDataset(files, seed=8)[(1, 32)][0])


def test_each_epoch_visits_every_image_once(folder):
    ds = CropDataset(list_images(folder), seed=2)
    for epoch in range(3):
        assert sorted(ds.image_for(epoch * 4 + j) for j in range(4)) == [0, 1, 2, 3]


def test_ranks_split_the_global_batch():
    crops = CropSchedule([[0, 64], [3, 128]])
    whole = list(StepBatches(1, 5, 8, crops))
    parts = [list(StepBatches(1, 5, 8, crops, rank=r, world=2)) for r in range(2)]
    assert [p0 + p1 for p0, p1 in zip(*parts)] == whole
    assert [b[0][1] for b in whole] == [64, 64, 128, 128]
    with pytest.raises(ValueError):
        StepBatches(0, 1, 7, crops, world=2)


def test_crop_schedule():
    s = CropSchedule([[0, 256], [1000, 512]])
    assert (s.size_at(0), s.size_at(999), s.size_at(1000)) == (256, 256, 512)
    with pytest.raises(ValueError):
        CropSchedule([[5, 256]])


def test_loader_resumes_at_a_step_with_workers(folder):
    files = list_images(folder)
    kw = dict(total=4, global_batch=2, crops=CropSchedule(48), seed=0, num_rates=2)
    full = list(train_loader(files, start=0, **kw))
    tail = list(train_loader(files, start=2, workers=2, **kw))
    assert len(full) == 4 and len(tail) == 2
    for (xa, ra), (xb, rb) in zip(full[2:], tail):
        assert torch.equal(xa, xb) and torch.equal(ra, rb)


def test_glob_sources_and_weights(tmp_path):
    """A glob pattern splits a folder (training vs held-out photos) and a weight repeats a source per epoch."""
    import numpy as np
    import pytest
    from PIL import Image

    a, b = tmp_path / "bsds", tmp_path / "wiki"
    a.mkdir()
    b.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(a / f"{i}.jpg")
    for i in range(6):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(b / f"{i:03d}.png")
    train = list_images([a, b / "00[0-3].png"], [1, 2])
    assert [p.name for p in train] == ["0.jpg", "1.jpg", "2.jpg"] + ["000.png", "001.png", "002.png", "003.png"] * 2
    assert [p.name for p in list_images(str(b / "00[45].png"))] == ["004.png", "005.png"]
    with pytest.raises(ValueError, match="weights"):
        list_images([a, b], [1])
    with pytest.raises(FileNotFoundError, match="no image matches"):
        list_images(str(b / "9*.png"))
    ds = CropDataset(train, seed=0)
    epoch = sorted(ds.image_for(s) for s in range(len(train)))
    assert epoch == list(range(len(train)))  # an epoch visits every (repeated) entry once
