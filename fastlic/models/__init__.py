"""Learned image codecs. Importing this package registers them with :mod:`fastlic.registry`."""

from .base import CompressionModel
from .mlicpp import MLICPlusPlus
from .econtextformer import EContextformer

__all__ = ["CompressionModel", "MLICPlusPlus", "EContextformer"]
