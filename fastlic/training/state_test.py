"""Warm-start sources and damaged training states."""

import pytest
import torch

from fastlic.errors import CheckpointError
from fastlic.training.state import STATE_FILE, init_weights, load_state


def test_init_weights_reads_a_run_state(tmp_path):
    weights = {"w": torch.arange(3.0)}
    torch.save({"model": weights, "meta": {"step": 7}}, tmp_path / STATE_FILE)
    got, meta = init_weights(tmp_path / STATE_FILE)
    assert torch.equal(got["w"], weights["w"]) and meta == {"step": 7}


def test_init_weights_from_a_state_without_metadata_keeps_its_budget(tmp_path):
    # states of session-2 runs had no "meta": a warm start from one must still count that run's steps and time
    run = tmp_path / "ecf-vr"
    run.mkdir()
    torch.save({"model": {}, "step": 5020, "wall_s": 5708.9}, run / STATE_FILE)
    _, meta = init_weights(run / STATE_FILE)
    assert meta == {"step": 5020, "train_wall_s": 5708.9, "run": "ecf-vr"}


def test_damaged_or_missing_state_is_named_in_one_line(tmp_path):
    bad = tmp_path / STATE_FILE
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=f"{bad}: not a readable training state"):
        load_state(bad)
    with pytest.raises(CheckpointError, match=f"{bad}: not a readable training state"):
        init_weights(bad)
    with pytest.raises(CheckpointError, match="no such training state"):
        init_weights(tmp_path / "elsewhere" / STATE_FILE)
