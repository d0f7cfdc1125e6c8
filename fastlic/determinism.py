"""Bit-identical computation of entropy parameters, whatever the CPU thread count.

Encoder and decoder must compute the same scales and means to the last bit: a difference of 1e-6 can move a
scale across a table boundary or a value ``y - mu`` across a rounding boundary, after which the ANS decoder
desynchronizes (the MLIC++ reference decodes NaN images when its stream is decoded with another thread count).
PyTorch's CPU kernels split reductions (GEMM, 1x1 convolutions, elementwise tails) differently with different
thread counts, so float results depend on ``torch.get_num_threads()``.

:func:`deterministic` therefore runs a block with exactly one intra-op thread and restores the caller's setting
afterwards. Every codec runs the *entropy-parameter path* (hyper decoder, context models, latent residual
prediction, parameter networks, likelihood tables) inside it, in ``forward`` (eval mode), ``compress`` and
``decompress`` alike, so all three compute identical values on the same machine. The analysis and synthesis
transforms run with the caller's threads: the encoder's analysis is never replayed, and the synthesis only
produces pixels (its thread-dependence is bounded by float noise, ~1e-6, far below one 8-bit level but it
can, very rarely, flip a pixel rounding; :mod:`fastlic.codec` documents this).

Cost: the entropy path loses intra-op parallelism (measured in the README).
"""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def deterministic(enabled: bool = True):
    """Run the enclosed block single-threaded (see module docstring); a no-op when ``enabled`` is False."""
    if not enabled:
        yield
        return
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)
