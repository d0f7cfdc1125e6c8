"""Peak memory of one encode or decode.

Method (recorded in every results file as ``memory_method``):

* ``rss-hwm`` (Linux): memory that glibc keeps after ``free`` is returned first (``malloc_trim``), then the
  kernel's resident-set high-water mark ``VmHWM`` is reset by writing ``5`` to ``/proc/self/clear_refs``, the
  block runs, and the peak is ``VmHWM - VmRSS(before)``: the extra resident
  memory of the whole process (Python, NumPy, PyTorch's allocator and C libraries such as libavif alike).
  Memory already resident before the block (e.g. model weights) is not counted.
* ``tracemalloc`` (elsewhere): the peak of Python-traced allocations during the block; NumPy buffers are traced,
  PyTorch tensors and C libraries are *not*, so it underestimates learned and C codecs.
"""

from __future__ import annotations

import re

_STATUS = "/proc/self/status"


def _status_kib(key: str) -> int:
    with open(_STATUS) as f:
        m = re.search(rf"^{key}:\s+(\d+)\s+kB", f.read(), re.M)
    if not m:
        raise OSError(f"{key} missing from {_STATUS}")
    return int(m.group(1))


def _rss_hwm_works() -> bool:
    try:
        _status_kib("VmHWM")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


METHOD = "rss-hwm" if _rss_hwm_works() else "tracemalloc"


def _trim():
    """Give memory that glibc's allocator keeps after ``free`` back to the system, so that the next block's
    peak is measured from what is really in use (else a second identical call can read ~0)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def resident_mib() -> float:
    """The process's resident set now, in MiB (0 where /proc is unavailable)."""
    try:
        return _status_kib("VmRSS") / 1024.0
    except OSError:
        return 0.0


class PeakMemory:
    """Context manager; after the block ``.mib`` is the peak extra memory in MiB (see module docstring).

    ``baseline_mib``: measure the peak above this resident size (e.g. taken right after loading a model)
    instead of above the resident size at entry. After a warm-up run the allocator keeps freed blocks, so
    the growth during a second identical call can read ~0; the peak above a baseline taken before the
    warm-up is the memory the call needs.
    """

    def __init__(self, baseline_mib: float | None = None):
        self.mib = 0.0
        self.baseline_mib = baseline_mib

    def __enter__(self):
        if METHOD == "rss-hwm":
            _trim()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self._before = _status_kib("VmRSS") if self.baseline_mib is None else self.baseline_mib * 1024
        else:
            import tracemalloc

            self._started = not tracemalloc.is_tracing()
            if self._started:
                tracemalloc.start()
            tracemalloc.reset_peak()
            self._before = tracemalloc.get_traced_memory()[0]
        return self

    def __exit__(self, *exc):
        if METHOD == "rss-hwm":
            self.mib = max(0, _status_kib("VmHWM") - self._before) / 1024.0
        else:
            import tracemalloc

            self.mib = max(0, tracemalloc.get_traced_memory()[1] - self._before) / 2**20
            if self._started:
                tracemalloc.stop()
        return False

