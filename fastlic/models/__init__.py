"""Learned image codecs. Importing this package registers them with :mod:`fastlic.registry`."""

from .base import CompressionModel
from .mlicpp import MLICPlusPlus
from .econtextformer import EContextformer
from .contextformer import Contextformer

__all__ = ["CompressionModel", "MLICPlusPlus", "EContextformer", "Contextformer"]
