"""Neural-network building blocks shared by the codecs."""

from .gdn import GDN
from .blocks import (AttentionBlock, ResidualBlock, ResidualBlockUpsample, ResidualBlockWithStride, conv1x1,
                     conv3x3, subpel_conv3x3)

__all__ = ["GDN", "AttentionBlock", "ResidualBlock", "ResidualBlockUpsample", "ResidualBlockWithStride",
           "conv1x1", "conv3x3", "subpel_conv3x3"]
