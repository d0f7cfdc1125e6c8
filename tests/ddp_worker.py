"""Run under torchrun by tests/test_training.py: train a few steps and save this rank's weights."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_helpers import tiny_config  # noqa: E402

from fastlic.training.trainer import Trainer  # noqa: E402

data, out, steps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
trainer = Trainer(tiny_config(data, out, steps=steps), quiet=True)
trainer.fit()
torch.save(trainer.raw.state_dict(), out / f"rank{trainer.info.rank}.pt")
trainer.close()
