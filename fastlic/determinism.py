"""Bit-identical computation of entropy parameters, whatever the CPU thread count.

Encoder and decoder must compute the same scales and means to the last bit: a difference of 1e-6 can move a
scale across a table boundary or a value ``y - mu`` across a rounding boundary, after which the ANS decoder
desynchronizes (the MLIC++ reference decodes NaN images when its stream is decoded with another thread count).
PyTorch's CPU kernels split reductions (GEMM, 1x1 convolutions, elementwise tails) differently with different
thread counts, so float results depend on ``torch.get_num_threads()``.

:func:`deterministic` therefore runs a block with a *fixed* number of intra-op threads (the model's
``coding_threads``, :data:`DEFAULT_CODING_THREADS` unless changed) and restores the caller's setting afterwards.
The results depend on that number, not on the caller's setting nor on how many cores the machine has (with
fewer cores the threads simply share them), so the number is part of the stream's contract: the ``.flic``
header records it as the numeric mode, and the decoder uses the same. Every codec runs the *entropy-parameter path* (hyper decoder, context models, latent residual
prediction, parameter networks, likelihood tables) inside it, in ``forward`` (eval mode), ``compress`` and
``decompress`` alike, so all three compute identical values on the same machine. The analysis and synthesis
transforms run with the caller's threads: the encoder's analysis is never replayed, and the synthesis only
produces pixels (its thread-dependence is bounded by float noise, ~1e-6, far below one 8-bit level but it
can, very rarely, flip a pixel rounding; :mod:`fastlic.codec` documents this).

Cost: the entropy path cannot use more than ``coding_threads`` cores (measured in the README).
"""

from __future__ import annotations

import contextlib

import torch


#: intra-op threads of the deterministic path. 1 by default: on a loaded machine, a fixed team of OpenMP
#: threads waits for its slowest member, and with the many small operations of the context models 2 threads
#: were 2-10x *slower* than 1 under load (measured on the 2-core dev machine with 3 other jobs). Files may
#: use more (``--coding-threads``); the decoder follows the header.
DEFAULT_CODING_THREADS = 1
MAX_CODING_THREADS = 16


@contextlib.contextmanager
def deterministic(enabled: bool = True, threads: int = DEFAULT_CODING_THREADS):
    """Run the enclosed block with exactly ``threads`` intra-op threads (see module docstring); a no-op when
    ``enabled`` is False."""
    if not enabled:
        yield
        return
    if not 1 <= threads <= MAX_CODING_THREADS:
        raise ValueError(f"coding threads must be in 1..{MAX_CODING_THREADS}")
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if before != threads:
            torch.set_num_threads(before)
