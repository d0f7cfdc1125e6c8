"""What the evaluation runner needs from a codec: one interface for classic and learned codecs alike.

A :class:`Codec` turns a uint8 RGB image into the bytes of a complete file at one of its quality points and
back. The runner never looks inside: a JPEG quality factor and a learned model's rate point are both just an
entry of :attr:`Codec.qualities`. Codecs must be picklable before :meth:`Codec.prepare` (the runner ships them
to worker processes), and do their expensive set-up (loading weights) in ``prepare``, once per process.
"""

from __future__ import annotations

import abc

import numpy as np

from ..errors import FastlicError


class EvaluationError(FastlicError):
    """A user mistake in an evaluation: bad data folder, bad results file, unknown codec or quality."""


class CodecUnavailableError(EvaluationError):
    """The codec needs a library or an external program that is not installed."""


class Codec(abc.ABC):
    """Base class: subclasses set :attr:`name`, :attr:`description`, :attr:`extension`, :attr:`qualities` and
    implement :meth:`encode` / :meth:`decode`."""

    name: str = "codec"
    description: str = ""
    extension: str = "bin"

    def __init__(self, qualities=None):
        self.qualities = list(qualities) if qualities is not None else list(self.default_qualities())
        if not self.qualities:
            raise EvaluationError(f"{self.name}: no quality points to evaluate")

    @abc.abstractmethod
    def default_qualities(self) -> list:
        """The quality sweep used when none is given."""

    def available(self) -> str | None:
        """``None`` when the codec can run here, else a one-line reason why not."""
        return None

    def check_available(self):
        reason = self.available()
        if reason:
            raise CodecUnavailableError(f"{self.name} is not available: {reason}")

    def prepare(self):
        """Per-process set-up (e.g. load model weights); called before the first encode in each worker."""

    @abc.abstractmethod
    def encode(self, image: np.ndarray, quality) -> bytes:
        """uint8 [H, W, 3] -> the bytes of a real file at this quality."""

    @abc.abstractmethod
    def decode(self, data: bytes, quality) -> np.ndarray:
        """The bytes of :meth:`encode` -> uint8 [H, W, 3]."""

    def info(self) -> dict:
        """Free-form description of the settings, stored in the results file."""
        return {}
