"""Training logs: a progress line (loss / bpp / PSNR), CSV files, and TensorBoard event files when the
``tensorboard`` package is installed. Only rank 0 creates a :class:`RunLog`."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path


class CsvLog:
    """Appends rows to a CSV file (header written once); resumed runs keep appending to the same file."""

    def __init__(self, path: Path, fields: list[str]):
        self.path, self.fields = Path(path), fields
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", newline="")
        self._w = csv.DictWriter(self._fh, fieldnames=fields, extrasaction="ignore")
        if new:
            self._w.writeheader()

    def write(self, row: dict) -> None:
        self._w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._fh.flush()

    def close(self):
        self._fh.close()


class ProgressBar:
    """One status line: redrawn in place on a terminal, printed every ``every`` steps otherwise."""

    def __init__(self, total: int, start: int, every: int, stream=sys.stderr):
        self.total, self.start, self.every, self.stream = total, start, max(1, every), stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()

    def update(self, step: int, values: dict) -> None:
        done = step + 1
        if not self.tty and done % self.every and done != self.total:
            return
        rate = (done - self.start) / max(1e-9, time.monotonic() - self.t0)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * done / max(1, self.total))
        parts = " ".join(f"{k} {v:.4g}" for k, v in values.items())
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {parts} "
                f"{rate:.2f} it/s eta {eta / 60:.1f} min")
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\n" if self.tty else "") + text + "\n")
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")


TRAIN_FIELDS = ["step", "time_s", "lr", "loss", "bpp", "mse", "psnr", "ms_ssim", "aux_loss", "grad_norm", "crop"]
VAL_FIELDS = ["step", "rate", "lambda", "loss", "bpp", "psnr", "ms_ssim"]


class RunLog:
    def __init__(self, out: Path, tensorboard: bool = True):
        self.train = CsvLog(out / "train.csv", TRAIN_FIELDS)
        self.val = CsvLog(out / "val.csv", VAL_FIELDS)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415  (optional dependency)
                self.tb = SummaryWriter(str(out / "tensorboard"))
            except ImportError:
                self.tb = None

    def scalars(self, prefix: str, values: dict, step: int) -> None:
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(f"{prefix}/{k}", v, step)

    def close(self):
        self.train.close()
        self.val.close()
        if self.tb is not None:
            self.tb.close()
