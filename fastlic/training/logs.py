"""Training logs: a progress line (loss / bpp / PSNR), CSV files, and TensorBoard event files when the
``tensorboard`` package is installed. Only rank 0 creates a :class:`RunLog`."""

from __future__ import annotations

import csv
import os
import sys
import time
from pathlib import Path


class CsvLog:
    """Appends rows to a CSV file (header written once); resumed runs keep appending to the same file.

    ``resume_step``: the step of the state a resumed run continues from. Rows logged after it were written by
    steps the run replays (a crash or power loss after the last checkpoint), so they are dropped before the
    replay logs them again; otherwise every row past the checkpoint would appear twice."""

    def __init__(self, path: Path, fields: list[str], resume_step: int | None = None):
        self.path, self.fields = Path(path), fields
        if resume_step is not None and self.path.exists():
            self._drop_after(resume_step)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", newline="")
        self._w = csv.DictWriter(self._fh, fieldnames=fields, extrasaction="ignore")
        if new:
            self._w.writeheader()

    def _drop_after(self, step: int) -> None:
        with open(self.path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if not (r.get("step") or "").isdigit() or int(r["step"]) <= step]
        if len(kept) == len(rows):
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", newline="") as fh:  # replaced in one rename: a crash here keeps the old log
            w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            w.writeheader()
            w.writerows(kept)
        os.replace(tmp, self.path)

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
    """``resume_step``: see :class:`CsvLog`; TensorBoard purges the replayed steps' events the same way."""

    def __init__(self, out: Path, tensorboard: bool = True, resume_step: int | None = None):
        self.train = CsvLog(out / "train.csv", TRAIN_FIELDS, resume_step)
        self.val = CsvLog(out / "val.csv", VAL_FIELDS, resume_step)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415  (optional dependency)
                purge = None if resume_step is None else resume_step + 1
                self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=purge)
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
