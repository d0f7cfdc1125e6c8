"""Training configuration: defaults, recipe files (TOML or JSON) and command-line overrides.

A recipe file holds any subset of the :class:`TrainConfig` fields as top-level keys (see ``configs/*.toml``);
values given on the command line override the file, which overrides the defaults. ``extends = "other.toml"``
(relative to the file) starts from another recipe and overrides its keys, so a variant states only what differs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None


@dataclass
class TrainConfig:
    model: str = "mlicpp-tiny"
    model_config: dict = field(default_factory=dict)  # keyword overrides for the registry factory
    data: list = field(default_factory=list)  # training image folder(s) or glob patterns
    data_weights: list = field(default_factory=list)  # repeats per data source (default 1 each)
    val: list = field(default_factory=list)   # held-out folder(s); empty: no validation
    out: str = "runs/train"
    lmbda: list = field(default_factory=lambda: [0.0067])  # one λ, or one per rate point (variable rate)
    metric: str = "mse"          # "mse" or "ms-ssim"
    steps: int = 1000
    batch_size: int = 8          # global batch (split across torchrun processes)
    crop: list = field(default_factory=lambda: [[0, 256]])  # crop-size schedule [[first_step, size], ...]
    flips: bool = True
    lr: float = 1e-4
    aux_lr: float = 1e-3
    lr_schedule: str = "multistep"  # multistep, cosine, constant
    milestones: list = field(default_factory=list)
    gamma: float = 0.1
    warmup: int = 0
    min_lr_factor: float = 0.0
    clip_grad: float = 1.0       # max gradient norm; 0 disables clipping
    amp: str = "auto"            # auto (bf16 on CUDA and on CPUs with AMX/AVX512-BF16, else off), bf16, fp16, off
    channels_last: str = "auto"  # auto (on CUDA), on, off
    compile: str = "off"         # on: torch.compile the training forward (numerics.compile_for_training)
    val_interval: int = 1000
    val_images: int = 24         # validation subset size (0: all)
    ckpt_interval: int = 200     # steps between resumable checkpoints
    ckpt_minutes: float = 5.0    # ... or minutes, whichever comes first
    log_interval: int = 10
    workers: int = 2
    seed: int = 0
    device: str = "auto"         # auto, cpu, cuda, cuda:N
    threads: int = 0             # torch intra-op threads (0: leave PyTorch's default)
    tensorboard: bool = True     # write event files when tensorboard is installed
    init: str = ""               # start from the weights of this fastlic checkpoint (fresh optimizers, step 0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_ALIASES = {"lambda": "lmbda", "lambdas": "lmbda", "batch": "batch_size", "crop_schedule": "crop"}


def _normalize(values: dict, source: str) -> dict:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    out = {}
    for key, value in values.items():
        key = _ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
        if key not in names:
            raise ValueError(f"{source}: unknown training option {key!r}")
        if key == "lmbda" and not isinstance(value, list):
            value = [value]
        if key in ("data", "val") and isinstance(value, str):
            value = [value] if value else []
        if key == "crop" and isinstance(value, int):
            value = [[0, value]]
        out[key] = value
    return out


def read_config_file(path, _seen: tuple = ()) -> dict:
    path = Path(path)
    here = path.resolve()
    if here in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, here))
        raise ValueError(f"{path}: recipes extend each other in a cycle ({chain})")
    text = path.read_text()
    if path.suffix == ".json":
        values = json.loads(text)
    elif path.suffix == ".toml":
        if tomllib is None:
            raise ValueError("TOML recipes need Python >= 3.11 (or use the JSON form)")
        values = tomllib.loads(text)
    else:
        raise ValueError(f"{path}: recipe files must be .toml or .json")
    values.pop("description", None)
    parent = values.pop("extends", None)
    if parent is None:
        return _normalize(values, str(path))
    if not isinstance(parent, str) or not parent:
        raise ValueError(f"{path}: extends must name one recipe file")
    parent_path = path.parent / parent
    if not parent_path.is_file():
        raise ValueError(f"{path}: extends {parent!r}, which is not a file ({parent_path})")
    merged = read_config_file(parent_path, (*_seen, here))
    merged.update(_normalize(values, str(path)))
    return merged


def make_config(file=None, base: dict | None = None, **overrides) -> TrainConfig:
    """Defaults <- ``base`` (a saved run's configuration) <- recipe ``file`` <- ``overrides`` (None ignored)."""
    values = _normalize(base, "saved configuration") if base else {}
    values.update(read_config_file(file) if file else {})
    values.update(_normalize({k: v for k, v in overrides.items() if v is not None}, "options"))
    cfg = TrainConfig(**values)
    if cfg.metric not in ("mse", "ms-ssim"):
        raise ValueError(f"metric must be mse or ms-ssim, not {cfg.metric!r}")
    cfg.lmbda = sorted(float(v) for v in cfg.lmbda)
    if not cfg.lmbda or min(cfg.lmbda) <= 0:
        raise ValueError("lambda must be positive")
    return cfg
