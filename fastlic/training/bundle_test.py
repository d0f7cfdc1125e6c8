import json

import torch

from fastlic.checkpoint import load_checkpoint, save_checkpoint
from fastlic.registry import create_model
from fastlic.training.bundle import bundle


def test_bundle_writes_weights_card_and_index(tmp_path):
    run, dest = tmp_path / "run", tmp_path / "weights"
    run.mkdir()
    torch.manual_seed(0)
    model = create_model("mlicpp-tiny-vr", num_rates=3)
    meta = {"step": 7, "train_wall_s": 7200.0, "lambda": [0.01, 0.02, 0.04], "batch_size": 8, "crop": [[0, 64]],
            "data": ["/x/shared/data/train/bsds500/train"], "val": [{"rate": 0, "bpp": 0.3, "psnr": 28.0}]}
    save_checkpoint(run / "best.pt", model, meta)
    (run / "config.json").write_text(json.dumps({"lr": 2e-4, "threads": 1, "val": ["v"], "val_images": 12}))
    from PIL import Image

    Image.new("RGB", (40, 24), (120, 60, 200)).save(tmp_path / "img.png")
    path = bundle(run, dest, check_image=tmp_path / "img.png")
    assert load_checkpoint(path).fingerprint() == load_checkpoint(run / "best.pt").fingerprint()
    card = json.loads((dest / "mlicpp-tiny-vr.json").read_text())
    assert card["training"]["steps"] == 7 and card["training"]["wall_time_h"] == 2.0
    assert card["training"]["data"] == ["shared/data/train/bsds500/train"]
    assert card["quality_range"] == [0, 2] and card["validation"][0]["psnr"] == 28.0
    check = card["coding_check"]["points"]
    assert [p["quality"] for p in check] == [0, 1, 2] and all(p["decoded_exactly"] for p in check)
    assert all(p["bytes"] > 0 for p in check)
    index = json.loads((dest / "index.json").read_text())
    assert index["models"]["mlicpp-tiny-vr"]["file"] == "mlicpp-tiny-vr.pt"
