"""Training of fastlic models: data pipeline, rate-distortion loop, exact resume, torchrun/DDP.

Entry point: :class:`fastlic.training.trainer.Trainer` (used by ``fastlic train``). Modules:
``config`` (recipes and overrides), ``data`` (random crops, deterministic per sample), ``losses`` and
``metrics`` (λ·D + R, PSNR, MS-SSIM), ``schedules`` (learning-rate schedules), ``state`` (resumable training
state, atomic writes), ``distributed`` (process group helpers), ``logs`` (progress bar, CSV, TensorBoard).
"""
