"""Distributed data parallel training under ``torchrun`` (single node or many).

``torchrun --nproc_per_node G [--nnodes N --node_rank R --rdzv_endpoint HOST:PORT] -m fastlic.cli train ...``
runs the same command in every process; :func:`setup` reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the
environment, joins the process group (NCCL on CUDA, gloo on CPU) and picks the local GPU. Data are split per
rank deterministically (``fastlic.training.data``: rank r takes its slice of every global batch), gradients are
averaged by DistributedDataParallel, and only rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; -> (info, this process's device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", info.local_rank if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return info, dev


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device):
    """DistributedDataParallel around ``model`` (or the model itself in a single process).

    The factorized prior's quantiles get no gradient from the main loss (their own aux optimizer updates them
    from a loss every rank computes identically), so DDP is told to ignore them.
    """
    if not info.enabled:
        return model
    ignore = [n for n, _ in model.named_parameters() if n.endswith("quantiles")]
    torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignore)
    ids = [device.index] if device.type == "cuda" else None
    ddp = torch.nn.parallel.DistributedDataParallel
    try:  # no buffer needs syncing (no batch norm); the option was renamed in torch 2.12
        return ddp(model, device_ids=ids, forward_sync_buffers=False)
    except TypeError:
        return ddp(model, device_ids=ids, broadcast_buffers=False)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(obj, info: DistInfo):
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
