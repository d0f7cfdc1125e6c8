"""Training: exact resume, torchrun (2 CPU processes, gloo) against one process, CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastlic.checkpoint import load_checkpoint
from fastlic.cli import train_cmd
from fastlic.training.bundle import bundle
from fastlic.training.config import make_config
from fastlic.training.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_helpers import make_images, tiny_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    make_images(folder, 6)
    return folder


def _fit(cfg, resume=False):
    t = Trainer(cfg, resume=resume, quiet=True)
    res = t.fit()
    t.close()
    return t, res["losses"]


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].is_floating_point())


def test_resume_reproduces_the_uninterrupted_run(data, tmp_path):
    # variable-rate model: per-sample rate points, both optimizers, a warm-up schedule and training noise
    kw = dict(model="mlicpp-tiny-vr", lmbda=[0.004, 0.04], lr_schedule="cosine", warmup=2)
    full, losses = _fit(tiny_config(data, tmp_path / "a", steps=5, **kw))
    _, first = _fit(tiny_config(data, tmp_path / "b", steps=2, **kw))
    resumed, rest = _fit(tiny_config(data, tmp_path / "b", steps=5, workers=1, **kw), resume=True)
    assert first + rest == losses  # bit for bit
    assert _max_diff(full.raw.state_dict(), resumed.raw.state_dict()) == 0
    assert full.opt.state_dict()["state"][0]["exp_avg"].equal(resumed.opt.state_dict()["state"][0]["exp_avg"])


def test_mixed_precision_keeps_entropy_models_in_float32(data, tmp_path):
    # bf16 autocast also exists on CPU, so the GPU code path is exercised here (channels_last too)
    t = Trainer(tiny_config(data, tmp_path, steps=2, amp="bf16", channels_last="on"), quiet=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = t.raw(torch.rand(2, 3, 64, 64))
    assert out["x_hat"].dtype == torch.bfloat16  # the transforms do run in 16 bits
    assert all(v.dtype == torch.float32 for v in out["likelihoods"].values())
    losses = t.fit()["losses"]
    t.close()
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_compiled_training_follows_the_eager_run(data, tmp_path, monkeypatch):
    # the whole training forward traced by TorchDynamo and differentiated by AOTAutograd, as with --compile on;
    # the kernels are PyTorch's own (aot_eager) because Inductor's code generation takes ~150 s on 2 cores (its
    # speed and losses are in results/benchmarks/training_compile.json). Same samples, losses equal to rounding.
    import functools

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    kw = dict(model="mlicpp-tiny-vr", lmbda=[0.004, 0.04], steps=3, batch_size=2, crop=[[0, 32]])
    _, eager = _fit(tiny_config(data, tmp_path / "eager", **kw))
    compiled, losses = _fit(tiny_config(data, tmp_path / "compiled", compile="on", **kw))
    assert "torch.compile" in compiled.precision
    assert len(losses) == 3
    assert max(abs(b / a - 1) for a, b in zip(eager, losses)) < 1e-3


def test_one_trainer_per_run_directory(data, tmp_path):
    from fastlic.training.state import RunLocked

    first = Trainer(tiny_config(data, tmp_path), quiet=True)
    with pytest.raises(RunLocked, match="in use"):
        Trainer(tiny_config(data, tmp_path), quiet=True)
    first.close()
    Trainer(tiny_config(data, tmp_path), quiet=True).close()  # free again


def test_resume_refuses_another_model(data, tmp_path):
    _fit(tiny_config(data, tmp_path, steps=1))
    with pytest.raises(ValueError, match="lmbda"):
        Trainer(tiny_config(data, tmp_path, steps=2, lmbda=[0.05]), resume=True, quiet=True)


def test_torchrun_two_processes_match_one(data, tmp_path):
    """gloo, 2 ranks x 2 samples against 1 process x 4 samples (same samples: data are split per rank).

    The ranks must hold identical weights. They cannot match the single process bit for bit: the entropy
    models' training noise is drawn per process, and the gradient all-reduce sums in another order. Tolerance:
    the distance between the two runs must stay below 25 % of the distance either travelled from the initial
    weights (measured: 0.26 against 1.74, i.e. 15 %), and a single process trained on *other* batches must be further away.
    """
    steps = 3
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "ddp_worker.py"), str(data), str(tmp_path / "ddp"), str(steps)]
    (tmp_path / "ddp").mkdir()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1))
    assert _max_diff(r0, r1) == 0

    single, _ = _fit(tiny_config(data, tmp_path / "one", steps=steps))
    other, _ = _fit(tiny_config(data, tmp_path / "other", steps=steps, crop=[[0, 48]]))
    torch.manual_seed(0)
    init = tiny_config(data, tmp_path / "x")
    from fastlic.training.trainer import build_model

    torch.manual_seed(init.seed)
    w0 = build_model(init).state_dict()
    ws, wo = single.raw.state_dict(), other.raw.state_dict()
    keys = [k for k in ws if ws[k].is_floating_point() and not k.startswith("entropy_bottleneck.quantiles")
            and "_table" not in k]

    def dist(a, b):
        return float(torch.sqrt(sum(((a[k] - b[k]).double() ** 2).sum() for k in keys)))

    travelled = dist(ws, w0)
    assert travelled > 0
    print(f"ddp-vs-single {dist(r0, ws):.4g} travelled {travelled:.4g} other-batches {dist(wo, ws):.4g}")
    assert dist(r0, ws) < 0.25 * travelled, (dist(r0, ws), travelled)
    assert dist(r0, ws) < dist(wo, ws)


def _cli(argv):
    import argparse

    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


def test_cli_trains_validates_and_resumes(data, tmp_path):
    out = tmp_path / "run"
    common = ["--out", str(out), "--quiet"]
    args = _cli(["--config", str(REPO / "configs" / "tiny_cpu.toml"), "--data", str(data), "--val", str(data),
                 "--steps", "2", "--val-interval", "2", *common])
    assert train_cmd.run(args) == 0
    for name in ("state.pt", "best.pt", "last.pt", "train.csv", "val.csv", "config.json"):
        assert (out / name).is_file(), name
    model = load_checkpoint(out / "best.pt")
    assert model.model_name == "mlicpp-tiny" and model.checkpoint_meta["step"] == 2
    with pytest.raises(train_cmd.TrainingError, match="--resume"):
        train_cmd.run(_cli(["--model", "mlicpp-tiny", "--data", str(data), "--lambda", "0.01", *common]))
    with open(out / "train.csv", "a") as fh:  # as if it had crashed after logging step 3, before saving it
        fh.write("3,9.9,0.001,9.9,9.9,9.9,9.9,,9.9,9.9,64\n")
    assert train_cmd.run(_cli(["--resume", "--steps", "3", *common])) == 0  # saved configuration reused
    assert torch.load(out / "state.pt", weights_only=False)["step"] == 3
    logged = [line.split(",")[0] for line in (out / "train.csv").read_text().splitlines()[1:]]
    assert logged == ["2", "3"]  # the replayed step logged once, not beside the stale row
    # warm start of a new run from the weights of the first one
    warm = tmp_path / "warm"
    args = _cli(["--config", str(REPO / "configs" / "tiny_cpu.toml"), "--data", str(data), "--steps", "1",
                 "--init", str(out / "best.pt"), "--out", str(warm), "--quiet"])
    assert train_cmd.run(args) == 0
    assert torch.load(warm / "state.pt", weights_only=False)["step"] == 1
    key = "g_a.analysis_transform.0.conv1.weight"
    start = load_checkpoint(out / "best.pt").state_dict()[key]
    after = load_checkpoint(warm / "last.pt").state_dict()[key]
    # one step moves the weights little; another initialization would be far away
    assert (after - start).abs().max() < 0.01 < (torch.randn_like(start) * 0.1 - start).abs().max()
    # the warm start's checkpoints carry the training behind their --init weights; a bundle adds it up
    first = load_checkpoint(out / "best.pt").checkpoint_meta
    assert [st["steps"] for st in load_checkpoint(warm / "last.pt").checkpoint_meta["stages_before"]] == [first["step"]]
    card = bundle(warm, tmp_path / "weights", which="state").with_suffix(".json")
    assert json.loads(card.read_text())["training"]["steps"] == first["step"] + 1
    # or from another run's state.pt: its latest weights (here step 3, past the last validation)
    latest = tmp_path / "latest"
    trainer = Trainer(make_config(REPO / "configs" / "tiny_cpu.toml", data=[str(data)], out=str(latest),
                                  init=str(out / "state.pt")), quiet=True)
    try:
        state_weights = torch.load(out / "state.pt", weights_only=False)["model"]
        assert all(torch.equal(v, state_weights[k]) for k, v in trainer.raw.state_dict().items())
        assert [st["steps"] for st in trainer.stages_before] == [3]
    finally:
        trainer.close()


def test_stop_signal_to_the_whole_process_group_saves_and_exits_cleanly(data, tmp_path):
    """Ctrl-C in a terminal (or kill -TERM -- -PGID) signals the data-loader workers too: the run must still
    stop at a step boundary, save its state and exit 0, with no traceback."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "fastlic.training", "--config", str(REPO / "configs" / "tiny_cpu.toml"),
           "--data", str(data), "--steps", "100000", "--workers", "1", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        log, deadline = out / "train.csv", time.monotonic() + 120
        while time.monotonic() < deadline and not (log.exists() and len(log.read_text().splitlines()) >= 2):
            time.sleep(0.2)  # a first logged step: the workers are running
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert torch.load(out / "state.pt", weights_only=False)["step"] >= 10


def test_cli_errors_are_one_line(data, tmp_path):
    with pytest.raises(train_cmd.TrainingError, match="not a directory"):
        train_cmd.run(_cli(["--model", "mlicpp-tiny", "--data", str(tmp_path / "missing"), "--lambda", "0.01"]))
    with pytest.raises(train_cmd.TrainingError, match="fixed-rate"):
        train_cmd.run(_cli(["--model", "mlicpp-tiny", "--data", str(data), "--lambda", "0.01", "0.02",
                            "--out", str(tmp_path / "r")]))
    with pytest.raises(train_cmd.TrainingError, match="unknown model"):
        train_cmd.run(_cli(["--model", "nope", "--data", str(data), "--out", str(tmp_path / "s")]))
    with pytest.raises(train_cmd.TrainingError, match="--resume"):
        train_cmd.run(_cli(["--resume", "--out", str(tmp_path / "none")]))
