"""The training loop: rate-distortion optimization of any registered fastlic model.

Recipe (Ballé et al. 2018 / MLIC++ §4 / eContextformer §4): Adam on every network parameter with loss
λ·D + R (:mod:`fastlic.training.losses`), a separate Adam on the factorized prior's quantiles (``*.quantiles``)
with the auxiliary loss ``model.aux_loss()``, gradient-norm clipping, a learning-rate schedule
(:mod:`fastlic.training.schedules`), and validation on held-out images at a fixed interval (estimated bpp from
the likelihoods of the rounded latents, PSNR, MS-SSIM, loss at every trained rate point).

Variable-rate models (:mod:`fastlic.models.gain`) get one λ per rate point; each sample of a batch draws its
rate point (deterministically, see :mod:`fastlic.training.data`) and is trained with that point's gain and λ.

On CUDA: mixed precision (bf16 autocast by default; the entropy models stay in float32 because likelihoods of
narrow bins lose all precision in 16-bit) and channels_last memory format.
"""

from __future__ import annotations

import json
import math
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .. import numerics
from ..checkpoint import save_checkpoint
from ..entropy.bottleneck import EntropyBottleneck
from ..entropy.gaussian import GaussianConditional
from ..models.gain import is_variable_rate
from ..registry import create_model
from . import distributed, state
from .config import TrainConfig
from .data import CropSchedule, ValidationImages, list_images, train_loader
from .logs import ProgressBar, RunLog
from .losses import RateDistortionLoss
from .metrics import ms_ssim, mse_per_sample, psnr_from_mse
from .schedules import make_scheduler


def build_model(cfg: TrainConfig):
    """The model of ``cfg``; a variable-rate model gets one rate point per λ unless its config says otherwise."""
    config = dict(cfg.model_config)
    model = create_model(cfg.model, **config)
    if is_variable_rate(model):
        if "num_rates" not in config and model.num_rates != len(cfg.lmbda):
            model = create_model(cfg.model, **{**config, "num_rates": len(cfg.lmbda)})
        if model.num_rates != len(cfg.lmbda):
            raise ValueError(f"{cfg.model} has {model.num_rates} rate points but {len(cfg.lmbda)} lambdas were given")
    elif len(cfg.lmbda) != 1:
        raise ValueError(f"{cfg.model} is a fixed-rate model: give one lambda (or use a variable-rate '-vr' model)")
    return model


def _entropy_models_in_fp32(model: torch.nn.Module, device_type: str) -> None:
    """Run entropy models outside autocast, on float32 inputs (likelihoods need the precision), and keep the
    latent y in float32 (16-bit floats cannot hold y - mu to the precision rounding needs)."""
    if hasattr(model, "g_a"):
        model.g_a.register_forward_hook(lambda _m, _inputs, out: out.float())
    for m in model.modules():
        if isinstance(m, (EntropyBottleneck, GaussianConditional)):
            inner = m.forward

            def forward(*args, _inner=inner, **kwargs):
                args = [a.float() if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
                with torch.autocast(device_type, enabled=False):
                    return _inner(*args, **kwargs)

            m.forward = forward


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False, quiet: bool = False):
        self.cfg = cfg
        self.info, self.device = distributed.setup(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.out = Path(cfg.out)
        self.quiet = quiet or not self.info.is_main
        self._lock = None
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self._lock = state.lock_run(self.out)
        try:
            self._setup(resume)
        except BaseException:
            self.close()
            raise

    def _setup(self, resume: bool) -> None:
        cfg = self.cfg
        cuda = self.device.type == "cuda"

        torch.manual_seed(cfg.seed)  # same initial weights in every process (and as a single process)
        self.raw = build_model(cfg)
        self.stages_before = []  # the training behind --init weights (bundle cards add it to this run's budget)
        if cfg.init and not resume:
            # warm start, e.g. from the bundled weights when a run's state was lost
            from .bundle import stages_of

            weights, meta = state.init_weights(cfg.init)
            self.raw.load_state_dict(weights)
            self.stages_before = stages_of(meta)
        self.raw = self.raw.to(self.device)
        self.variable_rate = is_variable_rate(self.raw)
        self.num_rates = self.raw.num_rates if self.variable_rate else 1
        self.channels_last = cfg.channels_last == "on" or (cfg.channels_last == "auto" and cuda)
        if self.channels_last:
            self.raw = self.raw.to(memory_format=torch.channels_last)
        # auto: bf16 where it is native (measured 0.66x the time at +0.13 % loss, docs/training.md#precision-on-the-cpu)
        amp = ("bf16" if cuda or numerics.native_bf16_cpu() else "off") if cfg.amp == "auto" else cfg.amp
        if amp not in ("off", "bf16", "fp16"):
            raise ValueError(f"amp must be auto, bf16, fp16 or off, not {cfg.amp!r}")
        self.amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
        if cfg.compile not in ("on", "off"):
            raise ValueError(f"compile must be on or off, not {cfg.compile!r}")
        #: what `fastlic train` reports
        self.precision = ("float32" if amp == "off" else f"{amp} autocast, entropy models float32") + \
            (", channels_last" if self.channels_last else "")
        if self.amp_dtype is not None:
            _entropy_models_in_fp32(self.raw, self.device.type)
        self.raw.train()

        main = [p for n, p in self.raw.named_parameters() if not n.endswith("quantiles")]
        aux = [p for n, p in self.raw.named_parameters() if n.endswith("quantiles")]
        self.main_params = main
        self.opt = torch.optim.Adam(main, lr=cfg.lr)
        self.aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr) if aux else None
        self.sched = make_scheduler(self.opt, cfg.lr_schedule, steps=cfg.steps, milestones=cfg.milestones,
                                    gamma=cfg.gamma, warmup=cfg.warmup, min_factor=cfg.min_lr_factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self.loss_fn = RateDistortionLoss(cfg.metric)
        self.lmbda = torch.tensor(cfg.lmbda, dtype=torch.float32, device=self.device)
        self.step = 0
        self.best = math.inf
        self.wall_s = 0.0  # wall time of all sessions since construction (validation, checkpoints included)
        self._t0 = time.monotonic()

        seed = [cfg.seed, self.info.rank, 0x7EA1]  # training noise: own stream per process
        torch.manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        np.random.seed(np.random.SeedSequence(seed).generate_state(1))
        random.seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
        if resume and (self.out / state.STATE_FILE).exists():
            self._load(self.out / state.STATE_FILE)
        self.net = distributed.wrap(self.raw, self.info, self.device)
        if cfg.compile == "on":
            self.net = numerics.compile_for_training(self.net, self.device)
            self.precision += ", torch.compile"

        self.files = list_images(cfg.data, cfg.data_weights)
        self.val = ValidationImages(list_images(cfg.val), cfg.val_images or None) if cfg.val else None
        self.crops = CropSchedule(cfg.crop)
        self.log = None
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
            self.log = RunLog(self.out, cfg.tensorboard, resume_step=self.step if self.step else None)
        self._stop = False

    # ------------------------------------------------------------------ state
    def state_dict(self, rng_states: list) -> dict:
        return {"step": self.step, "model": self.raw.state_dict(), "opt": self.opt.state_dict(),
                "aux_opt": self.aux_opt.state_dict() if self.aux_opt else None, "sched": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_states, "best": self.best,
                "config": self.cfg.to_dict(), "world": self.info.world, "wall_s": self.elapsed(),
                "meta": self._meta()}  # what a checkpoint of these weights records (bundle --which state)

    def elapsed(self) -> float:
        return self.wall_s + time.monotonic() - self._t0

    def _load(self, path: Path) -> None:
        st = state.load_state(path)
        saved = st["config"]
        for key in ("model", "model_config", "lmbda", "metric"):
            if saved[key] != getattr(self.cfg, key):
                raise ValueError(f"cannot resume {path}: {key} was {saved[key]!r}, now {getattr(self.cfg, key)!r}")
        self.raw.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        if self.aux_opt is not None:
            self.aux_opt.load_state_dict(st["aux_opt"])
        self.sched.load_state_dict(st["sched"])
        self.scaler.load_state_dict(st["scaler"])
        self.step, self.best = int(st["step"]), float(st["best"])
        self.wall_s = float(st.get("wall_s", 0.0))
        self.stages_before = st.get("meta", {}).get("stages_before", [])
        self._t0 = time.monotonic()
        rng = st["rng"]
        if len(rng) == self.info.world:  # same process count: every process continues its own noise stream
            state.set_rng_state(rng[self.info.rank])

    def save_state(self) -> None:
        rng = [state.rng_state()]
        if self.info.enabled:
            gathered = [None] * self.info.world
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if self.info.is_main:
            state.atomic_save(self.state_dict(rng), self.out / state.STATE_FILE)

    def export_model(self):
        """A fresh CPU copy of the current weights, in eval mode with coding tables built."""
        model = create_model(self.raw.model_name, **self.raw.config)
        model.load_state_dict({k: v.detach().cpu() for k, v in self.raw.state_dict().items()}, strict=False)
        model.eval()
        model.update()
        return model

    def _meta(self, extra: dict | None = None) -> dict:
        return {"step": self.step, "train_wall_s": round(self.elapsed(), 1), "world_size": self.info.world,
                "batch_size": self.cfg.batch_size, "crop": self.cfg.crop, "lambda": list(self.cfg.lmbda),
                "metric": self.cfg.metric, "precision": self.precision,
                "data": [str(d) for d in self.cfg.data], "run": self.out.name, "stages_before": self.stages_before,
                "init": str(self.cfg.init) if self.cfg.init else None,
                **(extra or {})}

    # ------------------------------------------------------------------ steps
    def train_step(self, x: torch.Tensor, rates: torch.Tensor) -> dict:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        rates = rates.to(self.device)
        if self.variable_rate:
            self.raw.set_rate_indices(rates)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            out = self.net(x)
        res = self.loss_fn(out, x, self.lmbda[rates])
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(res["loss"]).backward()
        self.scaler.unscale_(self.opt)
        clip = self.cfg.clip_grad if self.cfg.clip_grad > 0 else math.inf
        res["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.main_params, clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.aux_opt is not None:
            aux = self.raw.aux_loss()
            self.aux_opt.zero_grad(set_to_none=True)
            aux.backward()
            self.aux_opt.step()
            res["aux_loss"] = aux.detach()
        self.sched.step()
        self.step += 1
        return {k: float(v.detach()) for k, v in res.items()}

    @torch.no_grad()
    def validate(self) -> list[dict]:
        """Per rate point: mean loss, estimated bpp, PSNR and MS-SSIM over the validation images."""
        model = self.raw
        model.eval()
        rows = []
        try:
            for k in range(self.num_rates):
                if self.variable_rate:
                    model.set_rate_indices(None)
                    model.set_quality(k)
                acc = {"loss": 0.0, "bpp": 0.0, "psnr": 0.0, "ms_ssim": 0.0}
                for _, x in self.val:
                    x = x.to(self.device)
                    out = model(x)
                    x_hat = out["x_hat"].clamp(0, 1)
                    bpp = float(model.bpp(out["likelihoods"], x.shape[-2] * x.shape[-1]))
                    mse = mse_per_sample(x_hat, x)
                    msssim = float(ms_ssim(x_hat, x)[0])
                    dist_ = 255.0 ** 2 * float(mse[0]) if self.cfg.metric == "mse" else 1 - msssim
                    acc["loss"] += self.cfg.lmbda[k] * dist_ + bpp
                    acc["bpp"] += bpp
                    acc["psnr"] += float(psnr_from_mse(mse)[0])
                    acc["ms_ssim"] += msssim
                n = max(1, len(self.val))
                rows.append({"step": self.step, "rate": k, "lambda": self.cfg.lmbda[k],
                             **{key: v / n for key, v in acc.items()}})
        finally:
            model.train()
        return rows

    # ------------------------------------------------------------------ loop
    def _on_signal(self, signum, _frame):
        self._stop = True

    def fit(self) -> dict:
        cfg, main = self.cfg, self.info.is_main
        if self.step >= cfg.steps:
            return {"step": self.step}
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        loader = train_loader(self.files, start=self.step, total=cfg.steps, global_batch=cfg.batch_size,
                              crops=self.crops, seed=cfg.seed, num_rates=self.num_rates, rank=self.info.rank,
                              world=self.info.world, workers=cfg.workers, flips=cfg.flips,
                              pin_memory=self.device.type == "cuda")
        bar = ProgressBar(cfg.steps, self.step, cfg.log_interval) if main and not self.quiet else None
        last_save = time.monotonic()
        history = []
        try:
            for x, rates in loader:
                res = self.train_step(x, rates)
                history.append(res["loss"])
                if not math.isfinite(res["loss"]):
                    raise FloatingPointError(f"loss is {res['loss']} at step {self.step}; resume from the last "
                                             f"checkpoint with a lower learning rate")
                if main and (self.step % cfg.log_interval == 0 or self.step == cfg.steps):
                    row = {"step": self.step, "time_s": self.elapsed(), "lr": self.sched.get_last_lr()[0],
                           "crop": x.shape[-1], **res}
                    self.log.train.write(row)
                    self.log.scalars("train", row, self.step)
                if bar:
                    bar.update(self.step - 1, {k: res[k] for k in ("loss", "bpp", "psnr")})
                if self.val is not None and (self.step % cfg.val_interval == 0 or self.step == cfg.steps):
                    self._validate_and_export(bar)
                due = self.step % cfg.ckpt_interval == 0 or self.step == cfg.steps
                if not self.info.enabled:  # a wall-clock trigger would need agreement between processes
                    due = due or time.monotonic() - last_save > 60 * cfg.ckpt_minutes
                stop = self._stop
                if self.info.enabled:
                    flag = torch.tensor([int(stop)], device=self.device)
                    dist.all_reduce(flag)  # any process interrupted: all save and stop together
                    stop = bool(flag.item())
                if due or stop:
                    self.save_state()
                    last_save = time.monotonic()
                if stop:
                    if bar:
                        bar.message(f"interrupted at step {self.step}; state saved in {self.out}")
                    break
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if bar:
                bar.close()
        if main and self.val is None:
            save_checkpoint(self.out / "last.pt", self.export_model(), self._meta())
        return {"step": self.step, "losses": history}

    def _validate_and_export(self, bar) -> None:
        if self.info.is_main:
            rows = self.validate()
            for row in rows:
                self.log.val.write(row)
                self.log.scalars(f"val/rate{row['rate']}", row, self.step)
            mean_loss = sum(r["loss"] for r in rows) / len(rows)
            summary = {"val": [{k: r[k] for k in ("rate", "lambda", "bpp", "psnr", "ms_ssim", "loss")}
                               for r in rows]}
            model = self.export_model()
            save_checkpoint(self.out / "last.pt", model, self._meta(summary))
            if mean_loss < self.best:
                self.best = mean_loss
                save_checkpoint(self.out / "best.pt", model, self._meta(summary))
            if bar:
                bar.message("val step %d: " % self.step + "; ".join(
                    f"q{r['rate']} {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for r in rows))
        distributed.barrier(self.info)

    def close(self) -> None:
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        distributed.cleanup(self.info)
