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


def test_bundle_counts_the_stages_of_a_warm_started_run(tmp_path):
    """A run started with --init from bundled weights: the card's budget adds the earlier stages."""
    run, dest = tmp_path / "run", tmp_path / "weights"
    run.mkdir()
    torch.manual_seed(0)
    model = create_model("mlicpp-tiny", N=16, M=16)
    save_checkpoint(tmp_path / "first.pt", model, {"step": 100, "train_wall_s": 3600.0})
    save_checkpoint(run / "best.pt", model, {"step": 50, "train_wall_s": 1800.0})
    (run / "config.json").write_text(json.dumps({"init": str(tmp_path / "first.pt"), "threads": 1}))
    path = bundle(run, dest)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["training"]["steps"] == 150 and card["training"]["wall_time_h"] == 1.5
    assert [st["steps"] for st in card["training"]["stages"]] == [100, 50]
    # a third stage started from the bundled file: its stages carry over through the checkpoint's metadata
    run2 = tmp_path / "run2"
    run2.mkdir()
    save_checkpoint(run2 / "best.pt", model, {"step": 25, "train_wall_s": 900.0})
    (run2 / "config.json").write_text(json.dumps({"init": str(path)}))
    card = json.loads(bundle(run2, dest).with_suffix(".json").read_text())
    assert [st["steps"] for st in card["training"]["stages"]] == [100, 50, 25]
    assert card["training"]["steps"] == 175


def test_bundle_counts_a_warm_start_from_a_state_without_metadata(tmp_path):
    """--init OLD_RUN/state.pt where that state predates recorded metadata: the run it came from still counts."""
    old, run, dest = tmp_path / "ecf-vr", tmp_path / "run", tmp_path / "weights"
    old.mkdir()
    run.mkdir()
    torch.manual_seed(0)
    model = create_model("mlicpp-tiny", N=16, M=16)
    torch.save({"model": model.state_dict(), "step": 5020, "wall_s": 5400.0}, old / "state.pt")
    save_checkpoint(run / "best.pt", model, {"step": 1050, "train_wall_s": 1800.0, "stages_before": []})
    (run / "config.json").write_text(json.dumps({"init": str(old / "state.pt")}))
    card = json.loads(bundle(run, dest).with_suffix(".json").read_text())
    assert [(st["steps"], st["run"]) for st in card["training"]["stages"]] == [(5020, "ecf-vr"), (1050, "run")]
    assert card["training"]["wall_time_h"] == 2.0


def test_command_line_errors_are_one_line(tmp_path, capsys):
    import pytest

    from fastlic.training.bundle import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "nope"), "--which", "state", "--dest", str(tmp_path / "w")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "nope/state.pt: no such file" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()
    # a damaged state file: named, one line, nothing written
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.pt").write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exc:
        main([str(run), "--which", "state", "--dest", str(tmp_path / "w")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "run/state.pt: not a readable training state" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()
    # the --init file of a run that recorded no earlier stage is gone: named, one line, nothing written
    gone = tmp_path / "gone"
    gone.mkdir()
    save_checkpoint(gone / "best.pt", create_model("mlicpp-tiny", N=16, M=16), {"step": 5, "stages_before": []})
    (gone / "config.json").write_text(json.dumps({"init": str(tmp_path / "lost" / "state.pt")}))
    with pytest.raises(SystemExit) as exc:
        main([str(gone), "--dest", str(tmp_path / "w")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "lost/state.pt: no such file; the run warm-started from it" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()


def test_bundle_follows_the_chain_of_warm_starts_back_to_the_start(tmp_path):
    """The eContextformer's lost stage: run B warm-started from an old state A that predates metadata, and
    recorded no earlier stage (its trainer predated the record); run C warm-started from B's state and
    recorded only B. The card must count A, B and C."""
    a, b, c, dest = (tmp_path / n for n in ("ecf-vr", "ecf-vr2", "ecf-vr3", "weights"))
    for d in (a, b, c):
        d.mkdir()
    torch.manual_seed(0)
    model = create_model("mlicpp-tiny", N=16, M=16)
    torch.save({"model": model.state_dict(), "step": 5024, "wall_s": 3600.0}, a / "state.pt")
    torch.save({"model": model.state_dict(), "step": 1050, "wall_s": 1332.0, "config": {"init": str(a / "state.pt")},
                "meta": {"step": 1050, "train_wall_s": 1332.0, "run": "ecf-vr2", "stages_before": []}}, b / "state.pt")
    save_checkpoint(c / "best.pt", model, {"step": 1400, "train_wall_s": 988.0, "run": "ecf-vr3",
                                           "stages_before": [{"steps": 1050, "wall_s": 1332.0, "run": "ecf-vr2"}]})
    (c / "config.json").write_text(json.dumps({"init": str(b / "state.pt")}))
    card = json.loads(bundle(c, dest).with_suffix(".json").read_text())
    assert [(st["steps"], st["run"]) for st in card["training"]["stages"]] == [
        (5024, "ecf-vr"), (1050, "ecf-vr2"), (1400, "ecf-vr3")]
    assert card["training"]["steps"] == 7474
    # and a new run warm-started from C's weights records the whole chain before it
    from fastlic.training.state import init_weights

    assert [st["steps"] for st in init_weights(c / "best.pt")[1]["stages_before"]] == [5024, 1050]
