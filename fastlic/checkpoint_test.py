"""The weights fingerprint: cached for as long as the weights are the same tensors, carried by checkpoints."""

import numpy as np
import torch

import fastlic
from fastlic import checkpoint, codec
from fastlic.models import base


def _counting(monkeypatch):
    calls = []
    real = base.state_dict_fingerprint

    def counted(sd):
        calls.append(1)
        return real(sd)

    monkeypatch.setattr(base, "state_dict_fingerprint", counted)
    return calls


def _fresh_tiny(seed=0):
    torch.manual_seed(seed)
    m = fastlic.create_model("mlicpp-tiny").eval()
    m.update()
    return m


def test_fingerprint_is_the_digest_of_the_state_dict():
    m = _fresh_tiny()
    assert m.fingerprint() == base.state_dict_fingerprint(m.state_dict())
    assert len(m.fingerprint()) == 16


def test_fingerprint_survives_coding_passes_and_follows_every_change(monkeypatch):
    m = _fresh_tiny()
    calls = _counting(monkeypatch)
    fp = m.fingerprint()
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    # the float64 parameter path swaps the weights' storage during a pass and puts the originals back
    for _ in range(2):
        codec.decode_image(codec.encode_image(m, image), m)
    assert m.fingerprint() == fp and len(calls) == 1

    p = next(m.parameters())
    with torch.no_grad():
        p.mul_(1.5)  # an in-place write, as an optimizer step does
    assert m.fingerprint() != fp and len(calls) == 2
    fp2 = m.fingerprint()
    p.data = p.data.clone() * 2  # a new storage behind the same Parameter
    assert m.fingerprint() != fp2 and len(calls) == 3
    m.load_state_dict(_fresh_tiny().state_dict())  # load_state_dict copies in place
    assert m.fingerprint() == fp and len(calls) == 4


def test_checkpoint_carries_the_fingerprint_of_its_tensors(tmp_path, monkeypatch):
    m = _fresh_tiny()
    path = tmp_path / "m.pt"
    checkpoint.save_checkpoint(path, m)
    assert checkpoint.read_checkpoint(path)["fingerprint"] == m.fingerprint().hex()
    calls = _counting(monkeypatch)
    loaded = checkpoint.load_checkpoint(path)
    assert loaded.fingerprint() == m.fingerprint() and not calls  # a fresh process does not hash again
    monkeypatch.undo()
    assert base.state_dict_fingerprint(loaded.state_dict()) == m.fingerprint()


def test_a_stored_fingerprint_that_cannot_apply_is_ignored(monkeypatch):
    m = _fresh_tiny()
    expected = m.fingerprint()
    ckpt = checkpoint.checkpoint_dict(m)
    key = next(k for k, v in ckpt["state_dict"].items() if v.dtype == torch.float32)
    # malformed digests, and a state dict whose tensors load_state_dict would convert (float64 -> float32)
    cases = [{"fingerprint": bad} for bad in ("zz" * 16, "00" * 8, 12345)]
    cases.append({"state_dict": {**ckpt["state_dict"], key: ckpt["state_dict"][key].double()}})
    for change in cases:
        calls = _counting(monkeypatch)
        loaded = checkpoint.model_from_checkpoint_dict({**ckpt, **change})
        assert loaded.fingerprint() == expected and len(calls) == 1
        monkeypatch.undo()
